//! The router's fast path for the frames that make up nearly all traffic: unicast to the
//! ingress interface, IPv4 without options or IPv6 without ICMPv6, TTL/hop limit above 1,
//! a route whose next hop's MAC is known, within the egress MTU. Split in two stages so a
//! worker can run each over a whole burst (the way DPDK's l3fwd does): [`classify`]
//! parses, checks and looks up without writing; [`rewrite`] checks the egress MTU and
//! rewrites in place.
//!
//! Whatever the fast path declines (`None` from either stage) is untouched and goes
//! through [`super::route_segment`], which decides every case. For a frame the fast path
//! takes, both give the same result (the unit tests check this on every frame they build
//! and on random mutations of them).

use dpdk::{MacAddr, RxChecksum};
use types::ethertype;

use super::{
    be128, be16, be32, checksum_ok, decrement_ttl, forwardable_v4, link_local_v6, rewrite_macs,
    IPPROTO_ICMPV6,
};
use crate::bond::{hash_for, L34};
use crate::router::fib::{Fib, Interface};
use crate::router::IfaceId;

const VLAN_BE: [u8; 2] = ethertype::VLAN.to_be_bytes();
const IPV4_BE: [u8; 2] = ethertype::IPV4.to_be_bytes();
const IPV6_BE: [u8; 2] = ethertype::IPV6.to_be_bytes();

/// What [`classify`] found: where the frame goes and what [`rewrite`] needs, in eight
/// bytes (a burst's worth sits in a few cache lines between the stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Egress interface.
    pub iface: IfaceId,
    /// The next hop's MAC.
    pub mac: MacAddr,
}

/// The frame's shape, as [`classify`] found it (0: not for the fast path).
pub type Shape = u8;
/// Not for the fast path.
pub const SLOW: Shape = 0;
const V4: Shape = 1;
const V4_TAGGED: Shape = 2;
const V6: Shape = 3;
const V6_TAGGED: Shape = 4;

/// Whether the frame carries a VLAN tag.
#[inline(always)]
pub fn tagged(shape: Shape) -> bool {
    shape == V4_TAGGED || shape == V6_TAGGED
}

/// Stage one: parses and checks the frame (received on `iif`; `pkt_len` bytes in all,
/// `csum` the PMD's IPv4 checksum verdict) and looks its destination up. [`SLOW`]: not a
/// fast-path frame (`hop` is then meaningless).
#[inline(always)]
pub fn classify(
    fib: &Fib,
    iif: &Interface,
    f: &[u8],
    pkt_len: usize,
    csum: RxChecksum,
) -> (Shape, Hop) {
    let none = (
        SLOW,
        Hop {
            iface: IfaceId(0),
            mac: MacAddr([0; 6]),
        },
    );
    // The longest header the fast path reads: a tagged IPv4 header ends at 38.
    let Some(h) = f.first_chunk::<38>() else {
        return none;
    };
    // Unicast to us (an interface MAC is never a group address).
    if h[0..6] != iif.mac.0 || h[0] & 1 != 0 {
        return none;
    }
    let pkt_len = pkt_len.max(f.len());
    let et = [h[12], h[13]];
    // An ECMP route's hop: by the flow hash of the frame as received (computed only for
    // such routes; the full path hashes the same bytes).
    let hash = || hash_for::<L34>(f);
    let found = if et == IPV4_BE {
        v4::<14>(fib, h, pkt_len, csum, hash).map(|hop| (V4, hop))
    } else if et == IPV6_BE {
        f.first_chunk::<54>()
            .and_then(|h| v6::<14, 54>(fib, h, pkt_len, hash))
            .map(|hop| (V6, hop))
    } else if et == VLAN_BE {
        let inner = [h[16], h[17]];
        if inner == IPV4_BE {
            v4::<18>(fib, h, pkt_len, csum, hash).map(|hop| (V4_TAGGED, hop))
        } else if inner == IPV6_BE {
            f.first_chunk::<58>()
                .and_then(|h| v6::<18, 58>(fib, h, pkt_len, hash))
                .map(|hop| (V6_TAGGED, hop))
        } else {
            None
        }
    } else {
        None
    };
    found.unwrap_or(none)
}

/// The IPv4 header at `L3` of `f`.
#[inline(always)]
fn v4<const L3: usize>(
    fib: &Fib,
    f: &[u8; 38],
    pkt_len: usize,
    csum: RxChecksum,
    hash: impl FnOnce() -> u32,
) -> Option<Hop> {
    let ip = &f[L3..L3 + 20];
    // Version 4, no options.
    if ip[0] != 0x45 {
        return None;
    }
    let total = be16(ip, 2) as usize;
    if total < 20 || L3 + total > pkt_len || !checksum_ok(csum, ip) {
        return None;
    }
    let (src, dst) = (be32(ip, 12), be32(ip, 16));
    if !forwardable_v4(src, dst) || ip[8] <= 1 {
        return None;
    }
    let (iface, mac) = fib.adjacency_v4(dst, hash)?;
    Some(Hop { iface, mac })
}

/// The IPv6 header at `L3` of `f` (`N` = `L3 + 40`).
#[inline(always)]
fn v6<const L3: usize, const N: usize>(
    fib: &Fib,
    f: &[u8; N],
    pkt_len: usize,
    hash: impl FnOnce() -> u32,
) -> Option<Hop> {
    let ip = &f[L3..L3 + 40];
    // ICMPv6 (neighbour discovery among it) takes the full path.
    if ip[0] >> 4 != 6 || ip[6] == IPPROTO_ICMPV6 || ip[7] <= 1 {
        return None;
    }
    if L3 + 40 + be16(ip, 4) as usize > pkt_len {
        return None;
    }
    let (src, dst) = (be128(ip, 8), be128(ip, 24));
    // Multicast either way, loopback, unspecified, link-local either way.
    if dst >> 120 == 0xff || src >> 120 == 0xff || src <= 1 || dst <= 1 {
        return None;
    }
    if link_local_v6(dst) || link_local_v6(src) {
        return None;
    }
    let (iface, mac) = fib.adjacency_v6(dst, hash)?;
    Some(Hop { iface, mac })
}

/// Stage two: checks the egress MTU and rewrites the frame [`classify`] passed (TTL or
/// hop limit, IPv4 checksum, MACs). Returns the egress interface (its VLAN is still to
/// set); `None` leaves the frame untouched for [`super::route_segment`].
#[inline(always)]
pub fn rewrite<'f>(fib: &'f Fib, shape: Shape, hop: Hop, f: &mut [u8]) -> Option<&'f Interface> {
    let oif = fib.interface(hop.iface)?;
    let mtu = oif.mtu as usize;
    let fits = match shape {
        V4 => rewrite_v4::<14>(f, mtu),
        V4_TAGGED => rewrite_v4::<18>(f, mtu),
        V6 => rewrite_v6::<14, 54>(f, mtu),
        V6_TAGGED => rewrite_v6::<18, 58>(f, mtu),
        _ => false,
    };
    if !fits {
        return None;
    }
    rewrite_macs(f, hop.mac, oif.mac);
    Some(oif)
}

#[inline(always)]
fn rewrite_v4<const L3: usize>(f: &mut [u8], mtu: usize) -> bool {
    let Some(f) = f.first_chunk_mut::<38>() else {
        return false;
    };
    let ip = &mut f[L3..L3 + 20];
    if be16(ip, 2) as usize > mtu {
        return false;
    }
    decrement_ttl(&mut ip[..12]);
    true
}

#[inline(always)]
fn rewrite_v6<const L3: usize, const N: usize>(f: &mut [u8], mtu: usize) -> bool {
    let Some(f) = f.first_chunk_mut::<N>() else {
        return false;
    };
    let ip = &mut f[L3..L3 + 40];
    if 40 + be16(ip, 4) as usize > mtu {
        return false;
    }
    ip[7] -= 1;
    true
}
