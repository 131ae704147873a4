/* DPDK's bonding PMD, for the test peer tool (tools/bond-peer) only: built with the
 * `bonding` feature of dpdk-sys. fastlag itself never links the bonding PMD. */
#ifndef FASTLAG_BOND_H
#define FASTLAG_BOND_H

#include "shim.h"
#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>

/* 802.3ad state of a member of DPDK's bonding PMD, flattened (DPDK's own struct is packed
 * around an aligned type, which Rust cannot express). */
struct fl_bond_member_info {
	int selected;
	uint8_t actor_state;
	uint8_t partner_state;
	uint16_t actor_key;
	uint16_t actor_port_number;
	uint16_t partner_key;
	uint16_t partner_port_number;
	uint16_t partner_system_priority;
	uint8_t partner_system[6];
	uint16_t agg_port_id;
};
/* The devarg that names a member of net_bonding: "slave" up to 23.07, "member" from 23.11. */
const char *fl_bond_member_devarg(void);
int fl_bond_8023ad_member_info(uint16_t bond_port, uint16_t member_port, struct fl_bond_member_info *out);

#endif
