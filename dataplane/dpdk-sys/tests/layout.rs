//! The C compiler's view of the structures fastlag touches directly must match bindgen's.
//! (bindgen's own compile-time layout asserts cover every bound type; this checks the
//! fields the safe layer reads in the fast path against `offsetof` in the C shim, which
//! is compiled with DPDK's real flags.)

use core::mem::{offset_of, size_of};
use dpdk_sys::*;

fn c_layout() -> fl_layout {
    let mut l = fl_layout::default();
    // SAFETY: fl_layout only writes into the struct we pass; it touches no DPDK state.
    unsafe { fl_layout(&mut l) };
    l
}

#[test]
fn mbuf_fields_match_c() {
    let c = c_layout();
    assert_eq!(c.mbuf_size, size_of::<rte_mbuf>());
    assert_eq!(c.mbuf_buf_addr, offset_of!(rte_mbuf, buf_addr));
    assert_eq!(c.mbuf_data_off, offset_of!(rte_mbuf, data_off));
    assert_eq!(c.mbuf_nb_segs, offset_of!(rte_mbuf, nb_segs));
    assert_eq!(c.mbuf_port, offset_of!(rte_mbuf, port));
    assert_eq!(c.mbuf_pkt_len, offset_of!(rte_mbuf, pkt_len));
    assert_eq!(c.mbuf_data_len, offset_of!(rte_mbuf, data_len));
    assert_eq!(c.mbuf_pool, offset_of!(rte_mbuf, pool));
    assert_eq!(c.mbuf_next, offset_of!(rte_mbuf, next));
}

#[test]
fn ethdev_structs_match_c() {
    let c = c_layout();
    assert_eq!(c.eth_stats_size, size_of::<rte_eth_stats>());
    assert_eq!(c.eth_link_size, size_of::<rte_eth_link>());
    assert_eq!(c.eth_conf_size, size_of::<rte_eth_conf>());
    assert_eq!(c.eth_dev_info_size, size_of::<rte_eth_dev_info>());
    assert_eq!(c.ether_addr_size, size_of::<rte_ether_addr>());
}

#[test]
fn dpdk_is_at_least_22_11() {
    let c = c_layout();
    assert!(
        (c.version_year, c.version_month) >= (22, 11),
        "DPDK {}.{} is older than 22.11",
        c.version_year,
        c.version_month
    );
}

#[test]
fn newtype_enums_default_to_zero() {
    // Zeroed configuration structs must be valid: NewType enums make that sound.
    let conf = rte_eth_conf::default();
    assert_eq!(conf.rxmode.mq_mode.0, 0);
    assert_eq!(rte_flow_item_type::default().0, 0);
}
