/*
 * fastlag C shim: DPDK's fast-path functions are `static inline` in its headers (or read
 * thread-local state through macros), so bindgen cannot link to them. Each fl_* function below
 * is a thin, non-inline wrapper with the same meaning as the DPDK call it names.
 */
#ifndef FASTLAG_SHIM_H
#define FASTLAG_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ether.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_flow.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_version.h>

/* Burst I/O (rte_eth_rx_burst / rte_eth_tx_burst). */
uint16_t fl_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t fl_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* Mbuf allocation and release. */
struct rte_mbuf *fl_pktmbuf_alloc(struct rte_mempool *mp);
int fl_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void fl_pktmbuf_free(struct rte_mbuf *m);
char *fl_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *fl_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *fl_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int fl_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t fl_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t fl_pktmbuf_headroom(const struct rte_mbuf *m);

/* Thread-local state and time. */
int fl_errno(void);
unsigned int fl_lcore_id(void);
uint64_t fl_rdtsc(void);
/* clock_gettime(CLOCK_MONOTONIC) in nanoseconds (systemd's MONOTONIC_USEC= clock). */
uint64_t fl_clock_monotonic_ns(void);

/* SPSC/MPMC rings (rte_ring_enqueue_burst / dequeue_burst). */
unsigned int fl_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int fl_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
unsigned int fl_ring_count(const struct rte_ring *r);

/* rte_flow: steer untagged frames of one EtherType to one RX queue (the control thread's
 * slow-protocol queue). Return 0 / a flow on success; on failure -errno (in *err for create)
 * with the PMD's message copied to msg. */
int fl_flow_ethertype_validate(uint16_t port_id, uint16_t ethertype, uint16_t queue, char *msg, size_t msg_len);
struct rte_flow *fl_flow_ethertype_create(uint16_t port_id, uint16_t ethertype, uint16_t queue, int *err,
					  char *msg, size_t msg_len);
int fl_flow_destroy(uint16_t port_id, struct rte_flow *flow);

/* RSS: spread the whole redirection table (reta_size entries) over queues 0..nb_queues-1,
 * so queues beyond them receive only what rte_flow steers there. */
int fl_rss_reta_spread(uint16_t port_id, uint16_t reta_size, uint16_t nb_queues);


/* rte_lpm_lookup / rte_lpm_lookup_bulk (static inline in rte_lpm.h). fl_lpm_lookup returns 0
 * on a hit (next hop in *next_hop), -ENOENT on a miss; the bulk form writes
 * next_hops[i] with RTE_LPM_LOOKUP_SUCCESS (bit 24) set on a hit. */
int fl_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop);
int fl_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t *next_hops, unsigned int n);

/* rte_lpm6 by 16-byte address: DPDK 24.11 takes struct rte_ipv6_addr (16 bytes, no padding)
 * where 22.11 and 23.11 take uint8_t[16]; the same bytes either way. */
int fl_lpm6_add(struct rte_lpm6 *lpm, const uint8_t *ip, uint8_t depth, uint32_t next_hop);
int fl_lpm6_delete(struct rte_lpm6 *lpm, const uint8_t *ip, uint8_t depth);
int fl_lpm6_lookup(const struct rte_lpm6 *lpm, const uint8_t *ip, uint32_t *next_hop);
/* ips: n addresses of 16 bytes each; next_hops[i]: the next hop, or -1 on a miss. */
int fl_lpm6_lookup_bulk(const struct rte_lpm6 *lpm, const uint8_t *ips, int32_t *next_hops, unsigned int n);

/* Link state, flattened (rte_eth_link's bitfields sit in an anonymous union from 24.11). */
struct fl_link {
	uint32_t speed_mbps;	/* RTE_ETH_SPEED_NUM_* */
	uint8_t full_duplex;
	uint8_t autoneg;
	uint8_t up;
};
int fl_link_get_nowait(uint16_t port_id, struct fl_link *out);

/* Layout facts as the C compiler sees them, compared against bindgen's view in tests. */
struct fl_layout {
	size_t mbuf_size;
	size_t mbuf_buf_addr;
	size_t mbuf_data_off;
	size_t mbuf_nb_segs;
	size_t mbuf_port;
	size_t mbuf_pkt_len;
	size_t mbuf_data_len;
	size_t mbuf_hash_rss;
	size_t mbuf_pool;
	size_t mbuf_next;
	size_t eth_stats_size;
	size_t eth_link_size;
	size_t eth_conf_size;
	size_t eth_dev_info_size;
	size_t ether_addr_size;
	int version_year;
	int version_month;
};
void fl_layout(struct fl_layout *out);

/* The fields the safe layer uses, read by name in C (a test's round trip). */
struct fl_mbuf_seen {
	uint16_t data_off;
	uint16_t data_len;
	uint32_t pkt_len;
	uint16_t port;
	uint32_t rss;
};
void fl_mbuf_peek(const struct rte_mbuf *m, struct fl_mbuf_seen *out);

#endif
