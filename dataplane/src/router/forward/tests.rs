//! Unit tests of [`super`].

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::router::{FibBuilder, Interface, NextHop, Origin};

const IN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const OUT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER: MacAddr = MacAddr([0x0a, 0, 0, 0, 0, 9]);
const HOST: MacAddr = MacAddr([0x0a, 0, 0, 0, 0, 7]);
const GW: MacAddr = MacAddr([0x0a, 0, 0, 0, 0, 0xfe]);
const IN: IfaceId = IfaceId(0);
const OUT: IfaceId = IfaceId(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Interface 0: untagged, 10.0.0.1/24, 2001:db8::1/64. Interface 1: VLAN 100,
/// 10.1.0.1/24, 2001:db8:1::1/64, MTU 1400. Default routes via 10.1.0.254 and
/// 2001:db8:1::fe (resolved); 10.1.0.7 and 2001:db8:1::7 resolved, 10.1.0.8 not.
fn fib() -> &'static Fib {
    static FIB: std::sync::OnceLock<Fib> = std::sync::OnceLock::new();
    FIB.get_or_init(build_fib)
}

fn build_fib() -> Fib {
    let mut b = FibBuilder::new();
    b.add_interface(Interface {
        mac: IN_MAC,
        vlan: None,
        mtu: 1500,
    })
    .unwrap();
    b.add_interface(Interface {
        mac: OUT_MAC,
        vlan: Some(100),
        mtu: 1400,
    })
    .unwrap();
    b.add_interface_address(IN, ip("10.0.0.1"), 24).unwrap();
    b.add_interface_address(OUT, ip("10.1.0.1"), 24).unwrap();
    b.add_interface_address(IN, ip("2001:db8::1"), 64).unwrap();
    b.add_interface_address(OUT, ip("2001:db8:1::1"), 64)
        .unwrap();
    for (prefix, gw) in [("0.0.0.0", "10.1.0.254"), ("::", "2001:db8:1::fe")] {
        b.add_route(
            ip(prefix),
            0,
            NextHop {
                iface: OUT,
                gateway: Some(ip(gw)),
            },
            Origin::Static,
        )
        .unwrap();
        b.add_neighbor(OUT, ip(gw), GW).unwrap();
    }
    b.add_route(
        ip("192.0.2.0"),
        24,
        NextHop {
            iface: OUT,
            gateway: Some(ip("10.1.0.99")),
        },
        Origin::Static,
    )
    .unwrap();
    b.add_neighbor(OUT, ip("10.1.0.7"), HOST).unwrap();
    b.add_neighbor(OUT, ip("2001:db8:1::7"), HOST).unwrap();
    b.add_neighbor(IN, ip("10.0.0.9"), PEER).unwrap();
    b.build()
}

fn eth(dst: MacAddr, vlan: Option<u16>, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&PEER.0);
    if let Some(v) = vlan {
        f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

struct V4 {
    src: &'static str,
    dst: &'static str,
    ttl: u8,
    proto: u8,
    payload: usize,
    options: usize,
    df: bool,
}

impl Default for V4 {
    fn default() -> Self {
        V4 {
            src: "10.0.0.9",
            dst: "10.1.0.7",
            ttl: 64,
            proto: 17,
            payload: 26,
            options: 0,
            df: false,
        }
    }
}

fn v4_frame(dst_mac: MacAddr, vlan: Option<u16>, p: V4) -> Vec<u8> {
    let mut f = eth(dst_mac, vlan, ethertype::IPV4);
    let ihl = 20 + p.options;
    let total = (ihl + p.payload) as u16;
    let l3 = f.len();
    f.extend_from_slice(&[0x40 | (ihl / 4) as u8, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[
        0x12,
        0x34,
        if p.df { 0x40 } else { 0 },
        0,
        p.ttl,
        p.proto,
        0,
        0,
    ]);
    f.extend_from_slice(&p.src.parse::<std::net::Ipv4Addr>().unwrap().octets());
    f.extend_from_slice(&p.dst.parse::<std::net::Ipv4Addr>().unwrap().octets());
    f.extend((0..p.options).map(|_| 1u8)); // NOP options
    let c = ipv4_checksum(&f[l3..l3 + ihl]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    f.extend((0..p.payload).map(|i| i as u8));
    f
}

fn v6_frame(
    dst_mac: MacAddr,
    vlan: Option<u16>,
    src: &str,
    dst: &str,
    next: u8,
    hlim: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth(dst_mac, vlan, ethertype::IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, hlim]);
    f.extend_from_slice(&src.parse::<std::net::Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&dst.parse::<std::net::Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(payload);
    f
}

fn v6(dst: &str, next: u8, hlim: u8) -> Vec<u8> {
    v6_frame(IN_MAC, None, "2001:db8::9", dst, next, hlim, &[0u8; 20])
}

fn route(f: &mut [u8]) -> Verdict {
    route_frame(fib(), IN, f)
}

// Every routing decision in these tests goes through the wrappers below (they shadow the
// module's functions), which also run the fast path on a copy and check that it agrees.

fn route_frame(fib: &Fib, ingress: IfaceId, f: &mut [u8]) -> Verdict {
    let len = f.len();
    route_segment(fib, ingress, f, len)
}

fn route_segment(fib: &Fib, ingress: IfaceId, seg: &mut [u8], pkt_len: usize) -> Verdict {
    route_checked(fib, ingress, seg, pkt_len, RxChecksum::Unknown).0
}

/// [`super::route_segment`], and whether the fast path took the frame (having checked
/// that it decided and rewrote exactly as the full path, or left the frame alone).
fn route_checked(
    fib: &Fib,
    ingress: IfaceId,
    seg: &mut [u8],
    pkt_len: usize,
    csum: RxChecksum,
) -> (Verdict, bool) {
    let orig = seg.to_vec();
    let v = super::route_segment(fib, ingress, seg, pkt_len, csum);
    let mut g = orig.clone();
    let fast = fib.interface(ingress).and_then(|iif| {
        let (shape, h) = fast::classify(fib, iif, &g, pkt_len, csum);
        if shape == fast::SLOW {
            return None;
        }
        fast::rewrite(fib, shape, h, &mut g).map(|o| (h, o.vlan))
    });
    match fast {
        Some((h, vlan)) => {
            assert_eq!(
                v,
                Verdict::Forward {
                    iface: h.iface,
                    dst_mac: h.mac,
                    vlan
                },
                "fast path verdict for {orig:02x?}"
            );
            assert_eq!(&g[..], &seg[..], "fast path rewrite of {orig:02x?}");
        }
        None => assert_eq!(g, orig, "the fast path changed a frame it declined"),
    }
    (v, fast.is_some())
}

fn exc(c: ExceptionClass) -> Verdict {
    Verdict::Exception(c)
}

fn drop(r: DropReason) -> Verdict {
    Verdict::Drop(r)
}

#[test]
fn forwards_ipv4_and_rewrites() {
    let fib = fib();
    for vlan in [None, Some(10)] {
        let orig = v4_frame(IN_MAC, vlan, V4::default());
        let mut f = orig.clone();
        let v = route_frame(fib, IN, &mut f);
        assert_eq!(
            v,
            Verdict::Forward {
                iface: OUT,
                dst_mac: HOST,
                vlan: Some(100)
            }
        );
        let l3 = if vlan.is_some() { 18 } else { 14 };
        assert_eq!(&f[0..6], &HOST.0);
        assert_eq!(&f[6..12], &OUT_MAC.0);
        assert_eq!(f[l3 + 8], 63, "TTL decremented");
        assert_eq!(
            ipv4_checksum(&f[l3..l3 + 20]),
            be16(&f, l3 + 10),
            "checksum"
        );
        assert_eq!(ones_sum(&f[l3..l3 + 20]), 0xffff);
        // Nothing else changed.
        assert_eq!(f[12..l3 + 8], orig[12..l3 + 8]);
        assert_eq!(f[l3 + 12..], orig[l3 + 12..]);
    }
    // Via a gateway.
    let mut f = v4_frame(
        IN_MAC,
        None,
        V4 {
            dst: "8.8.8.8",
            ..V4::default()
        },
    );
    assert!(matches!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward { dst_mac: GW, .. }
    ));
    // IPv4 options and fragments are forwarded.
    let mut f = v4_frame(
        IN_MAC,
        None,
        V4 {
            options: 8,
            ..V4::default()
        },
    );
    assert!(matches!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward { .. }
    ));
    assert_eq!(ipv4_checksum(&f[14..42]), be16(&f, 24));
    let mut f = v4_frame(IN_MAC, None, V4::default());
    f[14 + 6] = 0x20; // more fragments
    let c = ipv4_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    assert!(matches!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward { .. }
    ));
    // Back out of the interface it came in on (hairpin) is forwarded too.
    let mut f = v4_frame(
        IN_MAC,
        None,
        V4 {
            src: "10.1.0.7",
            dst: "10.0.0.9",
            ..V4::default()
        },
    );
    assert_eq!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward {
            iface: IN,
            dst_mac: PEER,
            vlan: None
        }
    );
}

#[test]
fn ipv4_exceptions() {
    let cases: Vec<(V4, Verdict)> = vec![
        (
            V4 {
                dst: "10.0.0.1",
                ..V4::default()
            },
            exc(ExceptionClass::Local),
        ),
        (
            V4 {
                dst: "10.1.0.1",
                proto: 1,
                ..V4::default()
            },
            exc(ExceptionClass::LocalIcmp),
        ),
        (
            V4 {
                dst: "10.0.0.1",
                ttl: 1,
                proto: 6,
                ..V4::default()
            },
            exc(ExceptionClass::Local),
        ),
        (
            V4 {
                dst: "10.0.0.1",
                ttl: 0,
                ..V4::default()
            },
            exc(ExceptionClass::Local),
        ),
        (
            V4 {
                dst: "10.0.0.255",
                ..V4::default()
            },
            exc(ExceptionClass::Local),
        ),
        (
            V4 {
                ttl: 1,
                ..V4::default()
            },
            exc(ExceptionClass::TtlExceeded),
        ),
        (
            V4 {
                ttl: 0,
                ..V4::default()
            },
            drop(DropReason::TtlZero),
        ),
        (
            V4 {
                dst: "10.1.0.8",
                ..V4::default()
            },
            exc(ExceptionClass::Unresolved),
        ),
        (
            V4 {
                dst: "192.0.2.1",
                ..V4::default()
            },
            exc(ExceptionClass::Unresolved),
        ),
        (
            V4 {
                dst: "224.0.0.5",
                ..V4::default()
            },
            exc(ExceptionClass::Multicast),
        ),
        (
            V4 {
                dst: "255.255.255.255",
                src: "0.0.0.0",
                ..V4::default()
            },
            exc(ExceptionClass::Multicast),
        ),
        (
            V4 {
                payload: 1381,
                ..V4::default()
            },
            exc(ExceptionClass::TooBig),
        ),
        (
            V4 {
                payload: 1381,
                df: true,
                ..V4::default()
            },
            exc(ExceptionClass::TooBig),
        ),
        (
            V4 {
                dst: "127.0.0.1",
                ..V4::default()
            },
            drop(DropReason::Martian),
        ),
        (
            V4 {
                src: "127.0.0.1",
                ..V4::default()
            },
            drop(DropReason::Martian),
        ),
        (
            V4 {
                src: "224.0.0.1",
                ..V4::default()
            },
            drop(DropReason::Martian),
        ),
        (
            V4 {
                dst: "240.0.0.1",
                ..V4::default()
            },
            drop(DropReason::Martian),
        ),
    ];
    for (p, want) in cases {
        let what = format!("{} -> {} ttl {}", p.src, p.dst, p.ttl);
        let orig = v4_frame(IN_MAC, None, p);
        let mut f = orig.clone();
        assert_eq!(route(&mut f), want, "{what}");
        assert_eq!(f, orig, "unchanged: {what}");
    }
    // Exactly the MTU is fine.
    let mut f = v4_frame(
        IN_MAC,
        None,
        V4 {
            payload: 1380,
            ..V4::default()
        },
    );
    assert!(matches!(route(&mut f), Verdict::Forward { .. }));
    // No route.
    let mut b = FibBuilder::new();
    b.add_interface(Interface {
        mac: IN_MAC,
        vlan: None,
        mtu: 1500,
    })
    .unwrap();
    let mut f = v4_frame(IN_MAC, None, V4::default());
    assert_eq!(
        route_frame(&b.build(), IN, &mut f),
        exc(ExceptionClass::NoRoute)
    );
}

#[test]
fn layer2_rules() {
    // Unicast to someone else: dropped, whatever it carries.
    let mut f = v4_frame(PEER, None, V4::default());
    assert_eq!(route(&mut f), drop(DropReason::NotForUs));
    // Broadcast/multicast MAC with a unicast IP: to the kernel.
    let mut f = v4_frame(MacAddr([0xff; 6]), None, V4::default());
    assert_eq!(route(&mut f), exc(ExceptionClass::Multicast));
    // ARP, broadcast or to us; tagged too.
    for (mac, vlan) in [
        (MacAddr([0xff; 6]), None),
        (IN_MAC, None),
        (IN_MAC, Some(5)),
    ] {
        let mut f = eth(mac, vlan, ethertype::ARP);
        f.resize(60, 0);
        assert_eq!(route(&mut f), exc(ExceptionClass::Arp));
    }
    let mut f = eth(PEER, None, ethertype::ARP);
    f.resize(60, 0);
    assert_eq!(route(&mut f), drop(DropReason::NotForUs));
    // Slow protocols: untagged is the control thread's, tagged is dropped.
    let mut f = eth(
        MacAddr([0x01, 0x80, 0xc2, 0, 0, 2]),
        None,
        ethertype::SLOW_PROTOCOLS,
    );
    f.resize(124, 0);
    assert_eq!(route(&mut f), Verdict::Slow);
    let mut f = eth(
        MacAddr([0x01, 0x80, 0xc2, 0, 0, 2]),
        Some(7),
        ethertype::SLOW_PROTOCOLS,
    );
    f.resize(124, 0);
    assert_eq!(route(&mut f), drop(DropReason::TaggedSlow));
    // Other EtherTypes (LLDP, QinQ inner tag, test frames).
    for et in [0x88cc, 0x8100, 0x88a8, 0x88b5] {
        let mut f = eth(IN_MAC, None, et);
        f.resize(60, 0);
        assert_eq!(route(&mut f), exc(ExceptionClass::Other), "{et:#x}");
    }
    // Truncated L2.
    assert_eq!(route(&mut [0u8; 13]), drop(DropReason::Short));
    let mut f = eth(IN_MAC, None, ethertype::VLAN);
    f.extend_from_slice(&[0, 1]);
    assert_eq!(route(&mut f), drop(DropReason::Short));
    // Unknown ingress interface.
    let mut f = v4_frame(IN_MAC, None, V4::default());
    assert_eq!(
        route_frame(fib(), IfaceId(9), &mut f),
        drop(DropReason::UnknownInterface)
    );
}

#[test]
fn malformed_ipv4() {
    let good = v4_frame(IN_MAC, None, V4::default());
    let fix = |f: &mut Vec<u8>| {
        let ihl = (f[14] & 0xf) as usize * 4;
        if ihl >= 20 && f.len() >= 14 + ihl {
            f[24] = 0;
            f[25] = 0;
            let c = ipv4_checksum(&f[14..14 + ihl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
    };
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    fix(&mut bad_version);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    let mut long_ihl = good.clone();
    long_ihl[14] = 0x4f; // 60 bytes of header in a 46-byte packet
    fix(&mut long_ihl);
    let mut total_short = good.clone();
    total_short[16..18].copy_from_slice(&19u16.to_be_bytes());
    fix(&mut total_short);
    let mut total_long = good.clone();
    total_long[16..18].copy_from_slice(&47u16.to_be_bytes());
    fix(&mut total_long);
    let truncated = good[..30].to_vec();
    for (name, mut f) in [
        ("version", bad_version),
        ("ihl", bad_ihl),
        ("ihl beyond total", long_ihl),
        ("total < ihl", total_short),
        ("total beyond frame", total_long),
        ("truncated", truncated),
    ] {
        assert_eq!(route(&mut f), drop(DropReason::Malformed), "{name}");
    }
    let mut bad_sum = good.clone();
    bad_sum[25] ^= 1;
    assert_eq!(route(&mut bad_sum), drop(DropReason::BadChecksum));
    // Ethernet padding after the IP packet is fine.
    let mut padded = v4_frame(
        IN_MAC,
        None,
        V4 {
            payload: 0,
            ..V4::default()
        },
    );
    padded.resize(60, 0);
    assert!(matches!(route(&mut padded), Verdict::Forward { .. }));
}

#[test]
fn forwards_ipv6_and_rewrites() {
    let fib = fib();
    let orig = v6("2001:db8:1::7", 17, 64);
    let mut f = orig.clone();
    assert_eq!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward {
            iface: OUT,
            dst_mac: HOST,
            vlan: Some(100)
        }
    );
    assert_eq!(&f[0..12], [HOST.0, OUT_MAC.0].concat());
    assert_eq!(f[14 + 7], 63);
    assert_eq!(f[12..21], orig[12..21]);
    assert_eq!(f[22..], orig[22..]);
    let mut f = v6("2001:db9::1", 6, 2);
    assert!(matches!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward { dst_mac: GW, .. }
    ));
    // ICMPv6 echo through the router is forwarded (only ND and local ICMPv6 are ours).
    let mut f = v6_frame(
        IN_MAC,
        Some(3),
        "2001:db8::9",
        "2001:db8:1::7",
        58,
        64,
        &[128, 0, 0, 0],
    );
    assert!(matches!(
        route_frame(fib, IN, &mut f),
        Verdict::Forward { .. }
    ));
}

#[test]
fn ipv6_exceptions() {
    let all_nodes = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
    let snm = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);
    let cases: Vec<(&str, Vec<u8>, Verdict)> = vec![
        (
            "RS",
            v6_frame(
                all_nodes,
                None,
                "fe80::9",
                "ff02::2",
                58,
                255,
                &[133, 0, 0, 0],
            ),
            exc(ExceptionClass::Nd),
        ),
        (
            "RA",
            v6_frame(
                all_nodes,
                None,
                "fe80::9",
                "ff02::1",
                58,
                255,
                &[134, 0, 0, 0],
            ),
            exc(ExceptionClass::Nd),
        ),
        (
            "NS",
            v6_frame(
                snm,
                None,
                "2001:db8::9",
                "ff02::1:ff00:1",
                58,
                255,
                &[135, 0, 0, 0],
            ),
            exc(ExceptionClass::Nd),
        ),
        (
            "NA",
            v6_frame(
                IN_MAC,
                None,
                "2001:db8::9",
                "2001:db8::1",
                58,
                255,
                &[136, 0, 0, 0],
            ),
            exc(ExceptionClass::Nd),
        ),
        (
            "redirect",
            v6_frame(IN_MAC, None, "fe80::9", "fe80::1", 58, 255, &[137, 0, 0, 0]),
            exc(ExceptionClass::Nd),
        ),
        (
            "MLD",
            v6_frame(
                all_nodes,
                None,
                "fe80::9",
                "ff02::16",
                0,
                1,
                &[58, 0, 5, 2, 0, 0, 1, 0],
            ),
            exc(ExceptionClass::Multicast),
        ),
        (
            "ping us",
            v6_frame(
                IN_MAC,
                None,
                "2001:db8::9",
                "2001:db8:1::1",
                58,
                64,
                &[128, 0, 0, 0],
            ),
            exc(ExceptionClass::LocalIcmp),
        ),
        (
            "ping link-local",
            v6_frame(IN_MAC, None, "fe80::9", "fe80::1", 58, 64, &[128, 0, 0, 0]),
            exc(ExceptionClass::LocalIcmp),
        ),
        (
            "tcp to us, hop limit 1",
            v6("2001:db8::1", 6, 1),
            exc(ExceptionClass::Local),
        ),
        (
            "tcp to link-local",
            v6("fe80::1", 6, 64),
            exc(ExceptionClass::Local),
        ),
        (
            "hop limit 1",
            v6("2001:db8:1::7", 17, 1),
            exc(ExceptionClass::TtlExceeded),
        ),
        (
            "hop limit 0",
            v6("2001:db8:1::7", 17, 0),
            drop(DropReason::TtlZero),
        ),
        (
            "unresolved",
            v6("2001:db8:1::8", 17, 64),
            exc(ExceptionClass::Unresolved),
        ),
        (
            "multicast",
            v6("ff0e::1", 17, 64),
            exc(ExceptionClass::Multicast),
        ),
        (
            "link-local source",
            v6_frame(IN_MAC, None, "fe80::9", "2001:db8:1::7", 17, 64, &[0; 8]),
            exc(ExceptionClass::Other),
        ),
        (
            "unspecified source",
            v6_frame(IN_MAC, None, "::", "2001:db8:1::7", 17, 64, &[0; 8]),
            drop(DropReason::Martian),
        ),
        ("loopback", v6("::1", 17, 64), drop(DropReason::Martian)),
        (
            "multicast source",
            v6_frame(IN_MAC, None, "ff02::1", "2001:db8:1::7", 17, 64, &[0; 8]),
            drop(DropReason::Martian),
        ),
        (
            "too big",
            v6_frame(
                IN_MAC,
                None,
                "2001:db8::9",
                "2001:db8:1::7",
                17,
                64,
                &[0; 1361],
            ),
            exc(ExceptionClass::TooBig),
        ),
    ];
    for (name, orig, want) in cases {
        let mut f = orig.clone();
        assert_eq!(route(&mut f), want, "{name}");
        assert_eq!(f, orig, "unchanged: {name}");
    }
    let mut f = v6_frame(
        IN_MAC,
        None,
        "2001:db8::9",
        "2001:db8:1::7",
        17,
        64,
        &[0; 1360],
    );
    assert!(
        matches!(route(&mut f), Verdict::Forward { .. }),
        "exactly the MTU"
    );
    let mut b = FibBuilder::new();
    b.add_interface(Interface {
        mac: IN_MAC,
        vlan: None,
        mtu: 1500,
    })
    .unwrap();
    let mut f = v6("2001:db8:1::7", 17, 64);
    assert_eq!(
        route_frame(&b.build(), IN, &mut f),
        exc(ExceptionClass::NoRoute)
    );
}

#[test]
fn malformed_ipv6() {
    let good = v6("2001:db8:1::7", 17, 64);
    let mut bad_version = good.clone();
    bad_version[14] = 0x40;
    let mut long_payload = good.clone();
    long_payload[18..20].copy_from_slice(&21u16.to_be_bytes());
    let truncated = good[..14 + 39].to_vec();
    for (name, mut f) in [
        ("version", bad_version),
        ("payload beyond frame", long_payload),
        ("truncated", truncated),
    ] {
        assert_eq!(route(&mut f), drop(DropReason::Malformed), "{name}");
    }
}

#[test]
fn headers_split_over_segments_go_to_the_kernel() {
    let fib = fib();
    let mut f = v4_frame(IN_MAC, None, V4::default());
    let len = f.len();
    assert_eq!(
        route_segment(fib, IN, &mut f[..30], len),
        exc(ExceptionClass::Other)
    );
    let mut f = v4_frame(IN_MAC, None, V4::default());
    assert!(matches!(
        route_segment(fib, IN, &mut f[..34], len),
        Verdict::Forward { .. }
    ));
    let mut f = v6("2001:db8:1::7", 17, 64);
    let len = f.len();
    assert_eq!(
        route_segment(fib, IN, &mut f[..40], len),
        exc(ExceptionClass::Other)
    );
}

#[test]
fn class_and_reason_tables() {
    for (i, c) in ExceptionClass::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
        assert!(!c.as_str().is_empty());
    }
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i);
        assert!(!r.as_str().is_empty());
    }
}

#[test]
fn the_fast_path_takes_plain_unicast_traffic() {
    let fib = fib();
    let frames = [
        v4_frame(IN_MAC, None, V4::default()),
        v4_frame(IN_MAC, Some(10), V4::default()),
        v4_frame(
            IN_MAC,
            None,
            V4 {
                dst: "8.8.8.8",
                proto: 6,
                ..V4::default()
            },
        ),
        v6("2001:db8:1::7", 17, 64),
        v6("2001:4860::8888", 6, 2),
    ];
    for f in frames {
        let len = f.len();
        let (v, fast) = route_checked(fib, IN, &mut f.clone(), len, RxChecksum::Unknown);
        assert!(fast, "{v:?} for {f:02x?}");
    }
    // Declined, for the full path to decide: options, TTL 1, unresolved, ICMPv6,
    // too big for the egress MTU (1400), not for us.
    let declined = [
        v4_frame(
            IN_MAC,
            None,
            V4 {
                options: 4,
                ..V4::default()
            },
        ),
        v4_frame(
            IN_MAC,
            None,
            V4 {
                ttl: 1,
                ..V4::default()
            },
        ),
        v4_frame(
            IN_MAC,
            None,
            V4 {
                dst: "10.1.0.8",
                ..V4::default()
            },
        ),
        v6("2001:db8:1::7", 58, 64),
        v4_frame(
            IN_MAC,
            None,
            V4 {
                payload: 1400,
                ..V4::default()
            },
        ),
        v4_frame(OUT_MAC, None, V4::default()),
    ];
    for f in declined {
        let len = f.len();
        let (_, fast) = route_checked(fib, IN, &mut f.clone(), len, RxChecksum::Unknown);
        assert!(!fast, "{f:02x?}");
    }
}

#[test]
fn the_pmds_checksum_verdict_is_trusted() {
    let fib = fib();
    let good = v4_frame(IN_MAC, None, V4::default());
    let mut bad = good.clone();
    bad[24] ^= 0x55;
    let len = good.len();
    let fwd = |v: Verdict| matches!(v, Verdict::Forward { .. });
    // Unknown: verified in software.
    assert!(fwd(route_checked(
        fib,
        IN,
        &mut good.clone(),
        len,
        RxChecksum::Unknown
    )
    .0));
    assert_eq!(
        route_checked(fib, IN, &mut bad.clone(), len, RxChecksum::Unknown).0,
        drop(DropReason::BadChecksum)
    );
    // The NIC said good or bad: not summed again.
    assert!(fwd(route_checked(
        fib,
        IN,
        &mut bad.clone(),
        len,
        RxChecksum::Good
    )
    .0));
    assert_eq!(
        route_checked(fib, IN, &mut good.clone(), len, RxChecksum::Bad).0,
        drop(DropReason::BadChecksum)
    );
    // IPv6 has no header checksum: the verdict does not matter.
    let f = v6("2001:db8:1::7", 17, 64);
    assert!(fwd(route_checked(
        fib,
        IN,
        &mut f.clone(),
        f.len(),
        RxChecksum::Bad
    )
    .0));
}

#[test]
fn the_fast_path_agrees_on_mutated_frames() {
    let fib = fib();
    let seeds = [
        v4_frame(IN_MAC, None, V4::default()),
        v4_frame(IN_MAC, Some(10), V4::default()),
        v4_frame(
            IN_MAC,
            None,
            V4 {
                dst: "192.0.2.5",
                ..V4::default()
            },
        ),
        v4_frame(
            IN_MAC,
            None,
            V4 {
                src: "10.1.0.7",
                dst: "10.0.0.9",
                ..V4::default()
            },
        ),
        v6("2001:db8:1::7", 17, 64),
        v6_frame(
            IN_MAC,
            Some(10),
            "2001:db8::9",
            "2001:4860::1",
            6,
            64,
            &[0u8; 20],
        ),
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut taken, mut tried) = (0, 0);
    for seed in &seeds {
        for _ in 0..4000 {
            let mut f = seed.clone();
            // One to three bytes of the headers changed, sometimes to a nearby value.
            for _ in 0..1 + next() % 3 {
                let at = (next() % f.len().min(62) as u64) as usize;
                let r = next();
                f[at] = match r % 4 {
                    0 => f[at].wrapping_add(1),
                    1 => f[at].wrapping_sub(1),
                    2 => 0,
                    _ => r as u8,
                };
            }
            if next() % 8 == 0 {
                f.truncate((next() % f.len() as u64) as usize);
            }
            let pkt_len = f.len() + if next() % 8 == 0 { 1500 } else { 0 };
            let csum =
                [RxChecksum::Unknown, RxChecksum::Good, RxChecksum::Bad][next() as usize % 3];
            taken += route_checked(fib, IN, &mut f, pkt_len, csum).1 as u32;
            tried += 1;
        }
    }
    // Most one-byte changes hit payload-irrelevant fields or break the frame; some pass.
    assert!(taken > 1000 && taken < tried, "{taken} of {tried} taken");
}

#[test]
fn garbage_does_not_panic() {
    let fib = fib();
    let mut x = 0x1234_5678u64;
    for len in 0..200 {
        for _ in 0..50 {
            let mut f: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if len > 14 && x.is_multiple_of(2) {
                f[0..6].copy_from_slice(&IN_MAC.0);
                f[12..14].copy_from_slice(&[0x08, 0x00]);
            }
            if len > 14 && x.is_multiple_of(3) {
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
            }
            let _ = route_frame(fib, IN, &mut f);
        }
    }
}

proptest! {
    // The incremental update agrees with a full recomputation for any header,
    // including the ones where RFC 1141's update (eqn. 2) would produce -0.
    #[test]
    fn incremental_checksum_matches_full(mut h in prop::array::uniform20(any::<u8>()), ttl in 1u8..=255) {
        h[8] = ttl;
        h[10] = 0;
        h[11] = 0;
        let c = ipv4_checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        prop_assert_eq!(ones_sum(&h), 0xffff);
        decrement_ttl(&mut h);
        prop_assert_eq!(h[8], ttl - 1);
        let stored = u16::from_be_bytes([h[10], h[11]]);
        prop_assert_eq!(stored, ipv4_checksum(&h));
    }

    #[test]
    fn forwarded_ipv4_checksums_verify(ttl in 2u8..=255, proto: u8, options in 0usize..=10, payload in 0usize..100) {
        let mut f = v4_frame(IN_MAC, None, V4 { ttl, proto, options: options * 4, payload, ..V4::default() });
        prop_assert!(matches!(route(&mut f), Verdict::Forward { .. }), "forwarded");
        let ihl = 20 + options * 4;
        prop_assert_eq!(ones_sum(&f[14..14 + ihl]), 0xffff);
        prop_assert_eq!(be16(&f, 24), ipv4_checksum(&f[14..14 + ihl]));
    }
}

#[test]
fn the_checksum_test_without_folding_agrees_with_the_folded_sum() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut verified = 0;
    for len in (20..=60).step_by(4) {
        for k in 0..3000 {
            let mut h: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if k % 3 == 0 {
                // Make it verify.
                h[10] = 0;
                h[11] = 0;
                let c = ipv4_checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            if k % 50 == 1 {
                h.iter_mut()
                    .for_each(|b| *b = if k % 100 == 1 { 0 } else { 0xff });
            }
            let want = ones_sum(&h) == 0xffff;
            assert_eq!(sums_to_ones(&h), want, "{h:02x?}");
            verified += want as u32;
        }
    }
    assert!(verified > 10_000);
}

#[test]
fn forwardable_is_neither_martian_nor_group() {
    for a in 0..=255u32 {
        for b in 0..=255u32 {
            for low in [0u32, 1, 0x00ff_ffff] {
                let (src, dst) = (a << 24 | low, b << 24 | low);
                let group = dst >> 28 == 0xe || dst == u32::MAX;
                assert_eq!(
                    forwardable_v4(src, dst),
                    !group && !martian_v4(src, dst),
                    "{src:#x} -> {dst:#x}"
                );
            }
        }
    }
}

#[test]
fn ones_sum_folds_every_carry() {
    // Against a plain 16-bit end-around-carry sum, headers with and without options.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for len in (20..=60).step_by(4) {
        for fill in [0x00u8, 0xff, 0x80] {
            let h = vec![fill; len];
            let mut want: u32 = 0;
            for w in h.chunks_exact(2) {
                want += u16::from_be_bytes([w[0], w[1]]) as u32;
                want = (want & 0xffff) + (want >> 16);
            }
            assert_eq!(ones_sum(&h) as u32, want, "{len} x {fill:#x}");
        }
        for _ in 0..1000 {
            let h: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut want: u32 = 0;
            for w in h.chunks_exact(2) {
                want += u16::from_be_bytes([w[0], w[1]]) as u32;
                want = (want & 0xffff) + (want >> 16);
            }
            assert_eq!(ones_sum(&h) as u32, want);
        }
    }
    assert_eq!(fold(u64::from(u32::MAX) * 15), 0xffff);
}

#[test]
fn checksum_edge_cases() {
    // Headers whose checksum is 0x0000 or 0xffff before or after the update.
    let mut seen_zero = false;
    for id in 0..=u16::MAX {
        let mut h = [
            0x45, 0, 0, 20, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        h[4..6].copy_from_slice(&id.to_be_bytes());
        let c = ipv4_checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        decrement_ttl(&mut h);
        let after = u16::from_be_bytes([h[10], h[11]]);
        assert_eq!(after, ipv4_checksum(&h), "id {id:#x}");
        seen_zero |= c == 0 || after == 0;
    }
    assert!(seen_zero);
}

// ECMP: routes with several next hops, one hop per flow by the flow hash.

const HOP_A: MacAddr = MacAddr([0x0a, 0, 0, 0, 0xa, 1]);
const HOP_B: MacAddr = MacAddr([0x0a, 0, 0, 0, 0xb, 1]);
const A: IfaceId = IfaceId(1);
const B: IfaceId = IfaceId(2);

/// Interface 0 (ingress) as in [`build_fib`]; interface 1 untagged 10.2.0.1/24 and
/// 2001:db8:2::1/64, interface 2 on VLAN 200 10.3.0.1/24 and 2001:db8:3::1/64; 198.51.100.0/24
/// and 2001:db8:100::/48 via 10.2.0.254 / 2001:db8:2::fe (weight `wa`) and 10.3.0.254 /
/// 2001:db8:3::fe (weight `wb`), all resolved.
fn ecmp_builder(wa: u16, wb: u16) -> FibBuilder {
    let mut b = FibBuilder::new();
    for (mac, vlan) in [
        (IN_MAC, None),
        (OUT_MAC, None),
        (MacAddr([2, 0, 0, 0, 0, 3]), Some(200)),
    ] {
        b.add_interface(Interface {
            mac,
            vlan,
            mtu: 1500,
        })
        .unwrap();
    }
    b.add_interface_address(IN, ip("10.0.0.1"), 24).unwrap();
    b.add_interface_address(IN, ip("2001:db8::1"), 64).unwrap();
    b.add_interface_address(A, ip("10.2.0.1"), 24).unwrap();
    b.add_interface_address(A, ip("2001:db8:2::1"), 64).unwrap();
    b.add_interface_address(B, ip("10.3.0.1"), 24).unwrap();
    b.add_interface_address(B, ip("2001:db8:3::1"), 64).unwrap();
    let via = |iface, gw: &str| NextHop {
        iface,
        gateway: Some(ip(gw)),
    };
    for (prefix, len, ga, gb) in [
        ("198.51.100.0", 24, "10.2.0.254", "10.3.0.254"),
        ("2001:db8:100::", 48, "2001:db8:2::fe", "2001:db8:3::fe"),
    ] {
        b.add_multipath_route(
            ip(prefix),
            len,
            &[(via(A, ga), wa), (via(B, gb), wb)],
            Origin::Static,
        )
        .unwrap();
        b.add_neighbor(A, ip(ga), HOP_A).unwrap();
        b.add_neighbor(B, ip(gb), HOP_B).unwrap();
    }
    b
}

/// UDP flow `n` (source port 1024 + n) to 198.51.100.7 or 2001:db8:100::7.
fn flow(n: u16, v6: bool) -> Vec<u8> {
    let port = 1024 + n;
    let mut payload = [0u8; 26];
    payload[0..2].copy_from_slice(&port.to_be_bytes());
    payload[2..4].copy_from_slice(&53u16.to_be_bytes());
    if v6 {
        v6_frame(
            IN_MAC,
            None,
            "2001:db8::9",
            "2001:db8:100::7",
            17,
            64,
            &payload,
        )
    } else {
        let mut f = v4_frame(
            IN_MAC,
            None,
            V4 {
                dst: "198.51.100.7",
                ..V4::default()
            },
        );
        f[34..60].copy_from_slice(&payload);
        f
    }
}

/// The hop (egress interface, MAC) each of flows `0..n` takes, checking that the fast path
/// agrees and that the frame is rewritten for it (VLAN of interface B included).
fn hops_of(fib: &Fib, n: u16, v6: bool) -> Vec<(IfaceId, MacAddr)> {
    (0..n)
        .map(|i| {
            let mut f = flow(i, v6);
            let len = f.len();
            let (v, fast) = route_checked(fib, IN, &mut f, len, RxChecksum::Unknown);
            assert!(fast, "flow {i}: the fast path takes ECMP routes");
            match v {
                Verdict::Forward {
                    iface,
                    dst_mac,
                    vlan,
                } => {
                    assert_eq!(vlan, (iface == B).then_some(200));
                    assert_eq!(&f[0..6], &dst_mac.0);
                    (iface, dst_mac)
                }
                other => panic!("flow {i}: {other:?}"),
            }
        })
        .collect()
}

fn share(hops: &[(IfaceId, MacAddr)], iface: IfaceId) -> f64 {
    hops.iter().filter(|h| h.0 == iface).count() as f64 / hops.len() as f64
}

#[test]
fn ecmp_spreads_1000_flows_over_both_hops_one_flow_one_hop() {
    let fib = ecmp_builder(1, 1).build();
    for v6 in [false, true] {
        let hops = hops_of(&fib, 1000, v6);
        for h in &hops {
            assert!(
                *h == (A, HOP_A) || *h == (B, HOP_B),
                "hop {h:?} is one of the route's"
            );
        }
        let a = share(&hops, A);
        assert!((0.42..=0.58).contains(&a), "v6 {v6}: hop A carries {a}");
        // One flow, one hop: every frame of a flow, again and again.
        assert_eq!(hops_of(&fib, 1000, v6), hops);
    }
}

#[test]
fn ecmp_hops_have_counters_per_interface() {
    let fib = ecmp_builder(1, 1).build();
    // Each router's IPv4 and IPv6 gateway share its MAC: one counter, named by both.
    assert_eq!(fib.ecmp_counter(A, HOP_A), Some(0));
    assert_eq!(fib.ecmp_counter(B, HOP_B), Some(0));
    assert_eq!(
        fib.ecmp_gateways(A),
        &[vec![ip("10.2.0.254"), ip("2001:db8:2::fe")], vec![]]
    );
    assert_eq!(fib.ecmp_counter(A, HOP_B), None, "not a hop on A");
    assert_eq!(fib.ecmp_counter(IN, PEER), None, "no ECMP route out of IN");
    // Plain routes are not counted per hop.
    assert_eq!(build_fib().ecmp_counter(OUT, GW), None);
}

#[test]
fn ecmp_weights_share_flows_in_proportion() {
    let fib = ecmp_builder(1, 3).build();
    for v6 in [false, true] {
        let a = share(&hops_of(&fib, 2000, v6), A);
        assert!(
            (0.20..=0.30).contains(&a),
            "v6 {v6}: weight 1 of 4 carries {a}"
        );
    }
    // The bucket table itself: 64 of 256 for weight 1 of 4.
    let fib = ecmp_builder(1, 3).build();
    let on_a = (0..=u32::MAX / 4096)
        .map(|h| fib.lookup_v4_flow("198.51.100.1".parse().unwrap(), h * 4096))
        .filter(|l| matches!(l, Lookup::Forward { iface, .. } if *iface == A))
        .count() as f64;
    assert!((on_a / (1 << 20) as f64 - 0.25).abs() < 0.01, "{on_a}");
}

#[test]
fn ecmp_skips_a_hop_whose_interface_is_down_and_keeps_the_others_flows() {
    let mut b = ecmp_builder(1, 1);
    let before = b.build();
    for v6 in [false, true] {
        let all = hops_of(&before, 1000, v6);
        b.set_interface_up(A, false).unwrap();
        let down = b.build();
        assert!(
            down.shares_lpm_with(&before),
            "liveness does not recompile LPM tables"
        );
        let now = hops_of(&down, 1000, v6);
        assert!(
            now.iter().all(|h| *h == (B, HOP_B)),
            "every flow moved to B"
        );
        b.set_interface_up(B, false).unwrap();
        // No hop can send: the route keeps all its hops (as a plain route does).
        assert_eq!(hops_of(&b.build(), 1000, v6), all);
        b.set_interface_up(A, true).unwrap();
        let b_down = hops_of(&b.build(), 1000, v6);
        assert!(b_down.iter().all(|h| *h == (A, HOP_A)));
        b.set_interface_up(B, true).unwrap();
        assert_eq!(hops_of(&b.build(), 1000, v6), all, "back as before");
    }
    // Three hops, one down: flows on the two others stay where they were.
    let mut b = ecmp_builder(1, 1);
    let c = b
        .add_interface(Interface {
            mac: MacAddr([2, 0, 0, 0, 0, 4]),
            vlan: None,
            mtu: 1500,
        })
        .unwrap();
    b.add_interface_address(c, ip("10.4.0.1"), 24).unwrap();
    b.add_neighbor(c, ip("10.4.0.254"), MacAddr([0x0a, 0, 0, 0, 0xc, 1]))
        .unwrap();
    let via = |iface, gw: &str| NextHop {
        iface,
        gateway: Some(ip(gw)),
    };
    b.add_multipath_route(
        ip("198.51.100.0"),
        24,
        &[
            (via(A, "10.2.0.254"), 1),
            (via(B, "10.3.0.254"), 1),
            (via(c, "10.4.0.254"), 1),
        ],
        Origin::Static,
    )
    .unwrap();
    let all = hops_of(&b.build(), 1000, false);
    for ifc in [A, B, c] {
        let s = share(&all, ifc);
        assert!((0.27..=0.40).contains(&s), "{ifc}: {s}");
    }
    b.set_interface_up(c, false).unwrap();
    let now = hops_of(&b.build(), 1000, false);
    for (x, y) in all.iter().zip(&now) {
        assert_ne!(y.0, c);
        if x.0 != c {
            assert_eq!(x, y, "a flow on a live hop stays on it");
        }
    }
    let a = share(&now, A);
    assert!(
        (0.40..=0.60).contains(&a),
        "C's flows shared by A and B: {a}"
    );
}

#[test]
fn ecmp_route_limits() {
    let mut b = ecmp_builder(1, 1);
    let via = |n: u8| {
        (
            NextHop {
                iface: A,
                gateway: Some(ip(&format!("10.2.0.{n}"))),
            },
            1,
        )
    };
    let sixteen: Vec<_> = (10..26).map(via).collect();
    b.add_multipath_route(ip("203.0.113.0"), 24, &sixteen, Origin::Static)
        .unwrap();
    let seventeen: Vec<_> = (10..27).map(via).collect();
    assert_eq!(
        b.add_multipath_route(ip("203.0.113.0"), 24, &seventeen, Origin::Static),
        Err(crate::router::FibError::HopCount(17))
    );
    assert_eq!(
        b.add_multipath_route(ip("203.0.113.0"), 24, &[], Origin::Static),
        Err(crate::router::FibError::HopCount(0))
    );
    let mut w0 = via(1);
    w0.1 = 0;
    assert_eq!(
        b.add_multipath_route(ip("203.0.113.0"), 24, &[w0], Origin::Static),
        Err(crate::router::FibError::Weight(0))
    );
    // Listed with every hop, weight and state.
    b.set_interface_up(B, false).unwrap();
    let r = b.routes();
    let e = r
        .iter()
        .find(|r| r.prefix == ip("198.51.100.0"))
        .expect("the ECMP route is listed");
    assert_eq!(e.hops.len(), 2);
    assert_eq!((e.hops[0].next_hop.iface, e.hops[0].up), (A, true));
    assert_eq!((e.hops[1].next_hop.iface, e.hops[1].up), (B, false));
    assert_eq!(
        r.iter()
            .find(|r| r.prefix == ip("203.0.113.0"))
            .unwrap()
            .hops
            .len(),
        16
    );
}
