//! DPDK's own bonding PMD (`net_bonding,mode=4`), read back for the test peer that uses it
//! as an independent LACP implementation (feature `bonding`; fastlag itself never uses it).

use crate::{DpdkError, MacAddr, PortId};

/// The devarg that names a member in `net_bonding0,mode=4,MEMBER=net_x,...`: `slave` on
/// DPDK 22.11, `member` from 23.11 (the DPDK this was built against decides).
pub fn member_devarg() -> &'static str {
    // SAFETY: returns a pointer to a static NUL-terminated ASCII literal.
    let p = unsafe { dpdk_sys::fl_bond_member_devarg() };
    // SAFETY: as above: static, NUL-terminated.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    s.to_str().expect("ASCII devarg name")
}

/// 802.3ad state of one member of DPDK's own bonding PMD (`net_bonding,mode=4`), which
/// tests and benchmarks use as an independent LACP peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BondMemberInfo {
    /// DPDK's selection state (0 unselected, 1 standby, 2 selected).
    pub selected: i32,
    /// Actor state bits (802.1AX order, LSB = Activity).
    pub actor_state: u8,
    /// Partner state bits.
    pub partner_state: u8,
    /// Actor key.
    pub actor_key: u16,
    /// Actor port number.
    pub actor_port_number: u16,
    /// Partner key.
    pub partner_key: u16,
    /// Partner port number.
    pub partner_port_number: u16,
    /// Partner system priority.
    pub partner_system_priority: u16,
    /// Partner system id.
    pub partner_system: MacAddr,
    /// Aggregator (port id of the aggregating member).
    pub agg_port_id: u16,
}

/// Reads the 802.3ad state of `member` in DPDK bonding port `bond`.
pub fn bond_member_info(bond: PortId, member: PortId) -> Result<BondMemberInfo, DpdkError> {
    let mut out = dpdk_sys::fl_bond_member_info::default();
    // SAFETY: out pointer to a properly sized struct; DPDK validates both port ids.
    let ret = unsafe { dpdk_sys::fl_bond_8023ad_member_info(bond.0, member.0, &mut out) };
    DpdkError::check("rte_eth_bond_8023ad_slave_info", ret)?;
    Ok(BondMemberInfo {
        selected: out.selected,
        actor_state: out.actor_state,
        partner_state: out.partner_state,
        actor_key: out.actor_key,
        actor_port_number: out.actor_port_number,
        partner_key: out.partner_key,
        partner_port_number: out.partner_port_number,
        partner_system_priority: out.partner_system_priority,
        partner_system: MacAddr(out.partner_system),
        agg_port_id: out.agg_port_id,
    })
}
