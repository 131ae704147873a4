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
    // Those that moved into anonymous unions in 24.11, by mbuf_fields' paths.
    assert_eq!(c.mbuf_data_off, mbuf_fields::DATA_OFF);
    assert_eq!(c.mbuf_nb_segs, mbuf_fields::NB_SEGS);
    assert_eq!(c.mbuf_port, mbuf_fields::PORT);
    assert_eq!(c.mbuf_pkt_len, mbuf_fields::PKT_LEN);
    assert_eq!(c.mbuf_data_len, mbuf_fields::DATA_LEN);
    assert_eq!(c.mbuf_hash_rss, mbuf_fields::RSS);
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
fn dpdk_is_a_supported_release() {
    let c = c_layout();
    assert!(
        (c.version_year, c.version_month) >= (22, 11),
        "DPDK {}.{} is older than 22.11",
        c.version_year,
        c.version_month
    );
    // The headers the shim was compiled with are the release pkg-config named.
    assert!(
        BUILD_VERSION.starts_with(&format!("{}.{:02}", c.version_year, c.version_month)),
        "pkg-config said {BUILD_VERSION}, the headers say {}.{:02}",
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

/// mbuf_fields reads and writes the fields the C compiler sees (a round trip through C).
#[test]
fn mbuf_fields_reach_the_c_fields() {
    let mut m = rte_mbuf::default();
    mbuf_fields::set_data_off(&mut m, 128);
    mbuf_fields::set_data_len(&mut m, 60);
    mbuf_fields::set_pkt_len(&mut m, 60);
    mbuf_fields::set_port(&mut m, 7);
    mbuf_fields::set_rss(&mut m, 0xdead_beef);
    let mut seen = fl_mbuf_seen::default();
    // SAFETY: fl_mbuf_peek only reads the mbuf header we pass.
    unsafe { fl_mbuf_peek(&m, &mut seen) };
    assert_eq!(
        (
            seen.data_off,
            seen.data_len,
            seen.pkt_len,
            seen.port,
            seen.rss
        ),
        (128, 60, 60, 7, 0xdead_beef)
    );
    assert_eq!(mbuf_fields::data_off(&m), 128);
    assert_eq!(mbuf_fields::rss(&m), 0xdead_beef);
}
