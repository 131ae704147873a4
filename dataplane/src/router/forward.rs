//! The per-packet routing decision on a raw Ethernet frame: parse, classify, look up,
//! rewrite in place. Independent of DPDK (a byte slice in, a [`Verdict`] out), so every
//! rule is unit-tested on hand-built frames.

use dpdk::MacAddr;
use types::ethertype;

use super::fib::{Fib, Lookup};
use super::IfaceId;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten in place (MACs, TTL/hop limit, IPv4 checksum); send it out of `iface`
    /// after giving it `vlan`'s tag (see [`super::set_vlan`]).
    Forward {
        /// Egress interface.
        iface: IfaceId,
        /// The next hop's MAC, already written into the frame.
        dst_mac: MacAddr,
        /// The egress interface's VLAN (`None`: untagged).
        vlan: Option<u16>,
    },
    /// Unchanged, to the kernel TAP of the ingress interface (policed per class).
    Exception(ExceptionClass),
    /// An untagged Slow Protocols frame (LACP, marker): the control thread's, never the TAP's.
    Slow,
    /// Discard and count.
    Drop(DropReason),
}

/// Why a frame goes to the kernel. Each class has its own policer and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ExceptionClass {
    /// ARP.
    Arp,
    /// IPv6 neighbor discovery: RS, RA, NS, NA, redirect (ICMPv6 133-137).
    Nd,
    /// ICMP or ICMPv6 to one of our addresses (ping to the gateway).
    LocalIcmp,
    /// Anything else to one of our addresses (BGP, SSH...), or to an IPv6 link-local
    /// address.
    Local,
    /// TTL or hop limit 1: the kernel sends time exceeded.
    TtlExceeded,
    /// No route: the kernel routes it itself or sends unreachable.
    NoRoute,
    /// Route found, next hop's MAC unknown: the kernel resolves it and sends the packet
    /// back through the TAP.
    Unresolved,
    /// Larger than the egress MTU: the kernel fragments, or sends fragmentation needed /
    /// packet too big.
    TooBig,
    /// Multicast or broadcast (L2 group address, IPv4 224/4 and 255.255.255.255, IPv6
    /// ff00::/8).
    Multicast,
    /// Everything else the fast path does not handle (other EtherTypes, IPv6 from a
    /// link-local source to elsewhere, headers split over mbuf segments).
    Other,
}

impl ExceptionClass {
    /// Number of classes.
    pub const COUNT: usize = 10;
    /// Every class, in `index()` order.
    pub const ALL: [ExceptionClass; Self::COUNT] = [
        ExceptionClass::Arp,
        ExceptionClass::Nd,
        ExceptionClass::LocalIcmp,
        ExceptionClass::Local,
        ExceptionClass::TtlExceeded,
        ExceptionClass::NoRoute,
        ExceptionClass::Unresolved,
        ExceptionClass::TooBig,
        ExceptionClass::Multicast,
        ExceptionClass::Other,
    ];

    /// Dense index `0..COUNT` for per-class arrays.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionClass::Arp => "arp",
            ExceptionClass::Nd => "nd",
            ExceptionClass::LocalIcmp => "local_icmp",
            ExceptionClass::Local => "local",
            ExceptionClass::TtlExceeded => "ttl_exceeded",
            ExceptionClass::NoRoute => "no_route",
            ExceptionClass::Unresolved => "unresolved",
            ExceptionClass::TooBig => "too_big",
            ExceptionClass::Multicast => "multicast",
            ExceptionClass::Other => "other",
        }
    }
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than its Ethernet (and VLAN) header.
    Short,
    /// Unicast to a MAC that is not the ingress interface's.
    NotForUs,
    /// Bad IP version, header length or total/payload length.
    Malformed,
    /// IPv4 header checksum wrong (RFC 1812 5.2.2: routers verify it).
    BadChecksum,
    /// TTL or hop limit 0 on a packet to forward.
    TtlZero,
    /// Addresses that never appear on the wire (loopback, multicast source, 0/8,
    /// 240/4, IPv6 unspecified source...).
    Martian,
    /// A VLAN-tagged Slow Protocols frame (not LACP, and never for the TAP).
    TaggedSlow,
    /// The ingress (or a route's egress) interface id is not in the FIB.
    UnknownInterface,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 8;
    /// Every reason, in `index()` order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Short,
        DropReason::NotForUs,
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::TtlZero,
        DropReason::Martian,
        DropReason::TaggedSlow,
        DropReason::UnknownInterface,
    ];

    /// Dense index `0..COUNT`.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Short => "short",
            DropReason::NotForUs => "not_for_us",
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::TtlZero => "ttl_zero",
            DropReason::Martian => "martian",
            DropReason::TaggedSlow => "tagged_slow",
            DropReason::UnknownInterface => "unknown_interface",
        }
    }
}

#[inline(always)]
fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

#[inline(always)]
fn be32(f: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]])
}

#[inline(always)]
fn be128(f: &[u8], at: usize) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&f[at..at + 16]);
    u128::from_be_bytes(b)
}

/// The 16-bit one's complement sum of `b` (length a multiple of 4, as IPv4 headers are, and
/// at most 60 bytes).
#[inline(always)]
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u64 = 0;
    if let Ok(h) = <&[u8; 20]>::try_from(b) {
        // The usual header without options, unrolled.
        for i in 0..5 {
            s += u32::from_be_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]) as u64;
        }
    } else {
        for c in b.chunks_exact(4) {
            s += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
        }
    }
    fold(s)
}

/// Folds a sum of up to 2^32 32-bit words into 16 bits with end-around carries
/// (branch-free).
#[inline(always)]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The IPv4 header checksum of `header` computed from scratch, the way RFC 791 defines
/// it (its own checksum field taken as zero). `header` is the whole header (IHL * 4 bytes).
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for (i, w) in header.chunks_exact(2).enumerate() {
        if i != 5 {
            s += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Decrements the TTL of the IPv4 header at `h` and updates its checksum incrementally
/// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), which never produces the -0 that eqn. 2 can).
#[inline(always)]
fn decrement_ttl(h: &mut [u8]) {
    let old = u16::from_be_bytes([h[8], h[9]]);
    h[8] = h[8].wrapping_sub(1);
    let new = u16::from_be_bytes([h[8], h[9]]);
    let hc = u16::from_be_bytes([h[10], h[11]]);
    let mut s = (!hc) as u32 + (!old) as u32 + new as u32;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    h[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// Bytes `..end` must be in the segment: when they are not but the packet is that long,
/// the header is split over mbuf segments (the kernel copes); otherwise it is truncated.
#[inline(always)]
fn need(f: &[u8], end: usize, pkt_len: usize) -> Result<(), Verdict> {
    if end <= f.len() {
        Ok(())
    } else if end <= pkt_len {
        Err(Verdict::Exception(ExceptionClass::Other))
    } else {
        Err(Verdict::Drop(DropReason::Malformed))
    }
}

/// Routes one frame received on interface `ingress`: the whole frame is in `frame`.
///
/// On [`Verdict::Forward`] the frame has been rewritten in place; on every other verdict
/// it is unchanged.
#[inline]
pub fn route_frame(fib: &Fib, ingress: IfaceId, frame: &mut [u8]) -> Verdict {
    let len = frame.len();
    route_segment(fib, ingress, frame, len)
}

/// [`route_frame`] for a packet whose first segment is `seg` and whose total length is
/// `pkt_len` (multi-segment mbufs: lengths are checked against `pkt_len`; headers must be
/// in the first segment, or the packet goes to the kernel as [`ExceptionClass::Other`]).
#[inline]
pub fn route_segment(fib: &Fib, ingress: IfaceId, seg: &mut [u8], pkt_len: usize) -> Verdict {
    let pkt_len = pkt_len.max(seg.len());
    let Some(iif) = fib.interface(ingress) else {
        return Verdict::Drop(DropReason::UnknownInterface);
    };
    if seg.len() < 14 {
        return Verdict::Drop(DropReason::Short);
    }
    let outer = be16(seg, 12);
    if outer == ethertype::SLOW_PROTOCOLS {
        return Verdict::Slow;
    }
    // Group (multicast/broadcast) destinations are for everyone; unicast only for us.
    let group = seg[0] & 1 != 0;
    if !group && seg[0..6] != iif.mac.0 {
        return Verdict::Drop(DropReason::NotForUs);
    }
    let (ethertype, l3) = if outer == ethertype::VLAN {
        if seg.len() < 18 {
            return Verdict::Drop(DropReason::Short);
        }
        (be16(seg, 16), 18)
    } else {
        (outer, 14)
    };
    match ethertype {
        ethertype::IPV4 => ipv4(fib, seg, l3, pkt_len, group),
        ethertype::IPV6 => ipv6(fib, seg, l3, pkt_len, group),
        ethertype::ARP => Verdict::Exception(ExceptionClass::Arp),
        ethertype::SLOW_PROTOCOLS => Verdict::Drop(DropReason::TaggedSlow),
        _ => Verdict::Exception(ExceptionClass::Other),
    }
}

#[inline(always)]
fn rewrite_macs(f: &mut [u8], dst: MacAddr, src: MacAddr) {
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
}

#[inline(always)]
fn martian_v4(src: u32, dst: u32) -> bool {
    let (s8, d8) = (src >> 24, dst >> 24);
    // Loopback and "this network" on either side; multicast, class E or broadcast as a
    // source; class E as a destination (224/4 and broadcast are handled before).
    s8 == 127 || s8 == 0 || src >= 0xe000_0000 || d8 == 127 || d8 == 0 || dst >= 0xf000_0000
}

#[inline(always)]
fn ipv4(fib: &Fib, f: &mut [u8], l3: usize, pkt_len: usize, group: bool) -> Verdict {
    if let Err(v) = need(f, l3 + 20, pkt_len) {
        return v;
    }
    let vihl = f[l3];
    let ihl = (vihl & 0x0f) as usize * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Verdict::Drop(DropReason::Malformed);
    }
    let total = be16(f, l3 + 2) as usize;
    if total < ihl || l3 + total > pkt_len {
        return Verdict::Drop(DropReason::Malformed);
    }
    if let Err(v) = need(f, l3 + ihl, pkt_len) {
        return v;
    }
    if ones_sum(&f[l3..l3 + ihl]) != 0xffff {
        return Verdict::Drop(DropReason::BadChecksum);
    }
    let src = be32(f, l3 + 12);
    let dst = be32(f, l3 + 16);
    if dst >> 28 == 0xe || dst == u32::MAX || group {
        return Verdict::Exception(ExceptionClass::Multicast);
    }
    if martian_v4(src, dst) {
        return Verdict::Drop(DropReason::Martian);
    }
    let (iface, mac) = match fib.resolve_v4(dst) {
        Lookup::Forward { iface, mac, .. } => (iface, mac),
        Lookup::Local if f[l3 + 9] == IPPROTO_ICMP => {
            return Verdict::Exception(ExceptionClass::LocalIcmp)
        }
        Lookup::Local => return Verdict::Exception(ExceptionClass::Local),
        Lookup::NoRoute => return Verdict::Exception(ExceptionClass::NoRoute),
    };
    match f[l3 + 8] {
        0 => return Verdict::Drop(DropReason::TtlZero),
        1 => return Verdict::Exception(ExceptionClass::TtlExceeded),
        _ => {}
    }
    let Some(mac) = mac else {
        return Verdict::Exception(ExceptionClass::Unresolved);
    };
    let Some(oif) = fib.interface(iface) else {
        return Verdict::Drop(DropReason::UnknownInterface);
    };
    // DF set or not, the kernel handles it: it fragments (DF clear) or sends
    // fragmentation needed (DF set). Fragmenting here would need new mbufs.
    if total > oif.mtu as usize {
        return Verdict::Exception(ExceptionClass::TooBig);
    }
    decrement_ttl(&mut f[l3..l3 + 12]);
    rewrite_macs(f, mac, oif.mac);
    Verdict::Forward {
        iface,
        dst_mac: mac,
        vlan: oif.vlan,
    }
}

/// fe80::/10
#[inline(always)]
fn link_local_v6(a: u128) -> bool {
    a >> 118 == 0x3fa
}

#[inline(always)]
fn ipv6(fib: &Fib, f: &mut [u8], l3: usize, pkt_len: usize, group: bool) -> Verdict {
    if let Err(v) = need(f, l3 + 40, pkt_len) {
        return v;
    }
    if f[l3] >> 4 != 6 {
        return Verdict::Drop(DropReason::Malformed);
    }
    let payload = be16(f, l3 + 4) as usize;
    if l3 + 40 + payload > pkt_len {
        return Verdict::Drop(DropReason::Malformed);
    }
    let next = f[l3 + 6];
    if next == IPPROTO_ICMPV6 && payload > 0 {
        match f.get(l3 + 40) {
            Some(133..=137) => return Verdict::Exception(ExceptionClass::Nd),
            Some(_) => {}
            None => return Verdict::Exception(ExceptionClass::Other),
        }
    }
    let src = be128(f, l3 + 8);
    let dst = be128(f, l3 + 24);
    if dst >> 120 == 0xff || group {
        return Verdict::Exception(ExceptionClass::Multicast);
    }
    if src >> 120 == 0xff || src == 1 || dst == 1 || dst == 0 {
        return Verdict::Drop(DropReason::Martian);
    }
    let local = if next == IPPROTO_ICMPV6 {
        ExceptionClass::LocalIcmp
    } else {
        ExceptionClass::Local
    };
    // Link-local destinations never leave the link: ours (the kernel knows them).
    if link_local_v6(dst) {
        return Verdict::Exception(local);
    }
    let (iface, mac) = match fib.resolve_v6(dst) {
        Lookup::Forward { iface, mac, .. } => (iface, mac),
        Lookup::Local => return Verdict::Exception(local),
        Lookup::NoRoute => return Verdict::Exception(ExceptionClass::NoRoute),
    };
    if src == 0 {
        return Verdict::Drop(DropReason::Martian);
    }
    // RFC 4291 2.5.6: not forwarded off the link; the kernel answers "beyond scope".
    if link_local_v6(src) {
        return Verdict::Exception(ExceptionClass::Other);
    }
    match f[l3 + 7] {
        0 => return Verdict::Drop(DropReason::TtlZero),
        1 => return Verdict::Exception(ExceptionClass::TtlExceeded),
        _ => {}
    }
    let Some(mac) = mac else {
        return Verdict::Exception(ExceptionClass::Unresolved);
    };
    let Some(oif) = fib.interface(iface) else {
        return Verdict::Drop(DropReason::UnknownInterface);
    };
    if 40 + payload > oif.mtu as usize {
        return Verdict::Exception(ExceptionClass::TooBig);
    }
    f[l3 + 7] -= 1;
    rewrite_macs(f, mac, oif.mac);
    Verdict::Forward {
        iface,
        dst_mac: mac,
        vlan: oif.vlan,
    }
}

#[cfg(test)]
mod tests {
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
                if len > 14 && x % 2 == 0 {
                    f[0..6].copy_from_slice(&IN_MAC.0);
                    f[12..14].copy_from_slice(&[0x08, 0x00]);
                }
                if len > 14 && x % 3 == 0 {
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
}
