#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_version.h>

uint16_t fl_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t fl_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *fl_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int fl_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void fl_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

char *fl_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *fl_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *fl_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int fl_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

uint16_t fl_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

uint16_t fl_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

int fl_errno(void)
{
	return rte_errno;
}

unsigned int fl_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t fl_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t fl_clock_monotonic_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned int fl_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned int fl_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}

unsigned int fl_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

static void fl_ethertype_rule(uint16_t ethertype, uint16_t queue, struct rte_flow_attr *attr,
			      struct rte_flow_item_eth *spec, struct rte_flow_item_eth *mask,
			      struct rte_flow_item *pattern, struct rte_flow_action_queue *q,
			      struct rte_flow_action *actions)
{
	memset(attr, 0, sizeof(*attr));
	attr->ingress = 1;
	memset(spec, 0, sizeof(*spec));
	memset(mask, 0, sizeof(*mask));
	spec->type = rte_cpu_to_be_16(ethertype);
	mask->type = 0xffff;
	memset(pattern, 0, 2 * sizeof(*pattern));
	pattern[0].type = RTE_FLOW_ITEM_TYPE_ETH;
	pattern[0].spec = spec;
	pattern[0].mask = mask;
	pattern[1].type = RTE_FLOW_ITEM_TYPE_END;
	memset(q, 0, sizeof(*q));
	q->index = queue;
	memset(actions, 0, 2 * sizeof(*actions));
	actions[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
	actions[0].conf = q;
	actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

static void fl_flow_message(const struct rte_flow_error *e, char *msg, size_t msg_len)
{
	if (msg_len == 0)
		return;
	snprintf(msg, msg_len, "%s", e->message ? e->message : "no message from the PMD");
}

int fl_flow_ethertype_validate(uint16_t port_id, uint16_t ethertype, uint16_t queue, char *msg, size_t msg_len)
{
	struct rte_flow_attr attr;
	struct rte_flow_item_eth spec, mask;
	struct rte_flow_item pattern[2];
	struct rte_flow_action_queue q;
	struct rte_flow_action actions[2];
	struct rte_flow_error error;
	int ret;

	fl_ethertype_rule(ethertype, queue, &attr, &spec, &mask, pattern, &q, actions);
	memset(&error, 0, sizeof(error));
	ret = rte_flow_validate(port_id, &attr, pattern, actions, &error);
	if (ret != 0)
		fl_flow_message(&error, msg, msg_len);
	return ret;
}

struct rte_flow *fl_flow_ethertype_create(uint16_t port_id, uint16_t ethertype, uint16_t queue, int *err,
					  char *msg, size_t msg_len)
{
	struct rte_flow_attr attr;
	struct rte_flow_item_eth spec, mask;
	struct rte_flow_item pattern[2];
	struct rte_flow_action_queue q;
	struct rte_flow_action actions[2];
	struct rte_flow_error error;
	struct rte_flow *flow;

	fl_ethertype_rule(ethertype, queue, &attr, &spec, &mask, pattern, &q, actions);
	memset(&error, 0, sizeof(error));
	flow = rte_flow_create(port_id, &attr, pattern, actions, &error);
	*err = flow ? 0 : -rte_errno;
	if (!flow)
		fl_flow_message(&error, msg, msg_len);
	return flow;
}

int fl_flow_destroy(uint16_t port_id, struct rte_flow *flow)
{
	struct rte_flow_error error;
	return rte_flow_destroy(port_id, flow, &error);
}

int fl_rss_reta_spread(uint16_t port_id, uint16_t reta_size, uint16_t nb_queues)
{
	struct rte_eth_rss_reta_entry64 conf[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	uint16_t i;

	if (nb_queues == 0 || reta_size == 0 || reta_size > RTE_ETH_RSS_RETA_SIZE_512)
		return -EINVAL;
	memset(conf, 0, sizeof(conf));
	for (i = 0; i < reta_size; i++) {
		conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = i % nb_queues;
	}
	return rte_eth_dev_rss_reta_update(port_id, conf, reta_size);
}

void fl_layout(struct fl_layout *out)
{
	out->mbuf_size = sizeof(struct rte_mbuf);
	out->mbuf_buf_addr = offsetof(struct rte_mbuf, buf_addr);
	out->mbuf_data_off = offsetof(struct rte_mbuf, data_off);
	out->mbuf_nb_segs = offsetof(struct rte_mbuf, nb_segs);
	out->mbuf_port = offsetof(struct rte_mbuf, port);
	out->mbuf_pkt_len = offsetof(struct rte_mbuf, pkt_len);
	out->mbuf_data_len = offsetof(struct rte_mbuf, data_len);
	out->mbuf_hash_rss = offsetof(struct rte_mbuf, hash.rss);
	out->mbuf_pool = offsetof(struct rte_mbuf, pool);
	out->mbuf_next = offsetof(struct rte_mbuf, next);
	out->eth_stats_size = sizeof(struct rte_eth_stats);
	out->eth_link_size = sizeof(struct rte_eth_link);
	out->eth_conf_size = sizeof(struct rte_eth_conf);
	out->eth_dev_info_size = sizeof(struct rte_eth_dev_info);
	out->ether_addr_size = sizeof(struct rte_ether_addr);
	out->version_year = RTE_VER_YEAR;
	out->version_month = RTE_VER_MONTH;
}

int fl_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop)
{
	return rte_lpm_lookup(lpm, ip, next_hop);
}

int fl_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t *next_hops, unsigned int n)
{
	return rte_lpm_lookup_bulk(lpm, ips, next_hops, n);
}

#if RTE_VERSION >= RTE_VERSION_NUM(24, 11, 0, 0)
#define FL_IP6(p) ((const struct rte_ipv6_addr *)(const void *)(p))
#define FL_IP6_MUT(p) ((struct rte_ipv6_addr *)(void *)(p))
#else
#define FL_IP6(p) (p)
#define FL_IP6_MUT(p) ((uint8_t (*)[16])(void *)(p))
#endif

int fl_lpm6_add(struct rte_lpm6 *lpm, const uint8_t *ip, uint8_t depth, uint32_t next_hop)
{
	return rte_lpm6_add(lpm, FL_IP6(ip), depth, next_hop);
}

int fl_lpm6_delete(struct rte_lpm6 *lpm, const uint8_t *ip, uint8_t depth)
{
	return rte_lpm6_delete(lpm, FL_IP6(ip), depth);
}

int fl_lpm6_lookup(const struct rte_lpm6 *lpm, const uint8_t *ip, uint32_t *next_hop)
{
	return rte_lpm6_lookup(lpm, FL_IP6(ip), next_hop);
}

int fl_lpm6_lookup_bulk(const struct rte_lpm6 *lpm, const uint8_t *ips, int32_t *next_hops, unsigned int n)
{
	/* DPDK's prototype takes the addresses as non-const; it only reads them. */
	return rte_lpm6_lookup_bulk_func(lpm, FL_IP6_MUT(ips), next_hops, n);
}

int fl_link_get_nowait(uint16_t port_id, struct fl_link *out)
{
	struct rte_eth_link l;
	int ret;

	memset(&l, 0, sizeof(l));
	ret = rte_eth_link_get_nowait(port_id, &l);
	if (ret < 0)
		return ret;
	out->speed_mbps = l.link_speed;
	out->full_duplex = l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	out->autoneg = l.link_autoneg != 0;
	out->up = l.link_status == RTE_ETH_LINK_UP;
	return 0;
}

void fl_mbuf_peek(const struct rte_mbuf *m, struct fl_mbuf_seen *out)
{
	out->data_off = m->data_off;
	out->data_len = m->data_len;
	out->pkt_len = m->pkt_len;
	out->port = m->port;
	out->rss = m->hash.rss;
}
