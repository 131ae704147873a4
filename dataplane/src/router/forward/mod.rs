//! The per-packet routing decision on a raw Ethernet frame: parse, classify, look up,
//! rewrite in place. Independent of DPDK (a byte slice in, a [`Verdict`] out), so every
//! rule is unit-tested on hand-built frames.

use dpdk::{MacAddr, RxChecksum};
use types::ethertype;

use super::fib::{Fib, Lookup};
use super::IfaceId;
use crate::bond::{hash_for, L34};

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
/// at most 60 bytes). The reference [`sums_to_ones`] is tested against.
#[cfg(test)]
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

/// The PMD's checksum verdict where it gave one, else the sum over `header`.
#[inline(always)]
fn checksum_ok(csum: RxChecksum, header: &[u8]) -> bool {
    match csum {
        RxChecksum::Good => true,
        RxChecksum::Bad => false,
        RxChecksum::Unknown => sums_to_ones(header),
    }
}

/// Whether the one's complement sum of the 16-bit words of `header` (length a multiple
/// of 4, at most 60 bytes: an IPv4 header) is 0xffff, i.e. its checksum verifies.
///
/// Without folding: a one's complement sum is the plain sum modulo 0xffff (2^16 = 1 mod
/// 0xffff), and a sum of 0xffff is a plain sum that is a non-zero multiple of 0xffff.
/// Words are read in the CPU's byte order and two at a time: swapping a word's bytes
/// multiplies it by 256 modulo 0xffff, which is coprime to 0xffff, so a multiple stays
/// one; a 32-bit word is `hi * 2^16 + lo`, the same as `hi + lo` modulo 0xffff.
#[inline(always)]
fn sums_to_ones(header: &[u8]) -> bool {
    let mut s: u64 = 0;
    if let Some(h) = header.first_chunk::<20>().filter(|_| header.len() == 20) {
        // The usual header without options, unrolled.
        for i in 0..5 {
            s += u32::from_ne_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]) as u64;
        }
    } else {
        for c in header.chunks_exact(4) {
            s += u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as u64;
        }
    }
    s != 0 && s.is_multiple_of(0xffff)
}

/// Folds a sum of up to 2^32 32-bit words into 16 bits with end-around carries
/// (branch-free).
#[cfg(test)]
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
/// (RFC 1624: the TTL is the high byte of the header's fifth 16-bit word, so the word
/// drops by 0x0100 and the checksum, its one's complement, rises by 0x0100 with an
/// end-around carry; a result of 0xffff wraps to 0x0000, as RFC 1624's eqn. 3 gives,
/// which never produces the -0 that eqn. 2 can).
#[inline(always)]
fn decrement_ttl(h: &mut [u8]) {
    h[8] = h[8].wrapping_sub(1);
    let c = u16::from_be_bytes([h[10], h[11]]) as u32 + 0x0100;
    let c = c + (c >= 0xffff) as u32;
    h[10..12].copy_from_slice(&(c as u16).to_be_bytes());
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
    route_segment(fib, ingress, frame, len, RxChecksum::Unknown)
}

/// [`route_frame`] for a packet whose first segment is `seg` and whose total length is
/// `pkt_len` (multi-segment mbufs: lengths are checked against `pkt_len`; headers must be
/// in the first segment, or the packet goes to the kernel as [`ExceptionClass::Other`]).
/// `csum` is what the PMD said of the IPv4 header checksum: trusted when it checked,
/// verified in software when it did not.
#[inline]
pub fn route_segment(
    fib: &Fib,
    ingress: IfaceId,
    seg: &mut [u8],
    pkt_len: usize,
    csum: RxChecksum,
) -> Verdict {
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
        ethertype::IPV4 => ipv4(fib, seg, l3, pkt_len, group, csum),
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

/// By first octet: an IPv4 address a forwarded packet may carry as source or destination
/// (not 0/8, 127/8, multicast 224/4, 240/4 or the limited broadcast).
static FORWARDABLE: [bool; 256] = {
    let mut t = [true; 256];
    t[0] = false;
    t[127] = false;
    let mut i = 224;
    while i < 256 {
        t[i] = false;
        i += 1;
    }
    t
};

/// What [`martian_v4`] and the multicast/broadcast tests together accept: a source and
/// destination the fast path may forward. Two table loads.
#[inline(always)]
fn forwardable_v4(src: u32, dst: u32) -> bool {
    FORWARDABLE[(src >> 24) as usize] & FORWARDABLE[(dst >> 24) as usize]
}

#[inline(always)]
fn ipv4(
    fib: &Fib,
    f: &mut [u8],
    l3: usize,
    pkt_len: usize,
    group: bool,
    csum: RxChecksum,
) -> Verdict {
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
    if !checksum_ok(csum, &f[l3..l3 + ihl]) {
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
    // An ECMP route's hop: by the flow hash of the frame as received, as the fast path.
    let (iface, mac) = match fib.resolve_v4(dst, || hash_for::<L34>(f)) {
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
    let (iface, mac) = match fib.resolve_v6(dst, || hash_for::<L34>(f)) {
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

pub mod fast;

#[cfg(test)]
mod tests;
