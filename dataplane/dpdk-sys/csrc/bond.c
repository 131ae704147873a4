#include "bond.h"

#include <string.h>
#include <rte_byteorder.h>
#include <rte_version.h>

const char *fl_bond_member_devarg(void)
{
#if RTE_VERSION >= RTE_VERSION_NUM(23, 11, 0, 0)
	return "member";
#else
	return "slave";
#endif
}

int fl_bond_8023ad_member_info(uint16_t bond_port, uint16_t member_port, struct fl_bond_member_info *out)
{
#if RTE_VERSION >= RTE_VERSION_NUM(23, 11, 0, 0)
	/* 23.11 renamed the bonding API's "slave" to "member"; the struct is the same. */
	struct rte_eth_bond_8023ad_member_info info;
	int ret = rte_eth_bond_8023ad_member_info(bond_port, member_port, &info);
#else
	struct rte_eth_bond_8023ad_slave_info info;
	int ret = rte_eth_bond_8023ad_slave_info(bond_port, member_port, &info);
#endif
	if (ret < 0)
		return ret;
	out->selected = (int)info.selected;
	out->actor_state = info.actor_state;
	out->partner_state = info.partner_state;
	/* DPDK keeps these in network byte order. */
	out->actor_key = rte_be_to_cpu_16(info.actor.key);
	out->actor_port_number = rte_be_to_cpu_16(info.actor.port_number);
	out->partner_key = rte_be_to_cpu_16(info.partner.key);
	out->partner_port_number = rte_be_to_cpu_16(info.partner.port_number);
	out->partner_system_priority = rte_be_to_cpu_16(info.partner.system_priority);
	memcpy(out->partner_system, info.partner.system.addr_bytes, 6);
	out->agg_port_id = info.agg_port_id;
	return 0;
}
