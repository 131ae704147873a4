//! The flow hash that picks a bond member for a frame.
//!
//! Properties every policy keeps: **symmetric** (both directions of a flow hash the same,
//! so a flow and its replies use one member each way: source and destination are ordered
//! before mixing, never just XORed, so flows whose addresses XOR alike do not collide),
//! **per-flow stable** (every frame of a flow hashes the same: untagged and tagged frames
//! take different code but the same mixing), each policy's fields and no others:
//!
//! | policy | fields |
//! |---|---|
//! | layer2 | source and destination MAC, VLAN ids (up to two tags) |
//! | layer2+3 | MACs, VLAN ids, IPv4/IPv6 source and destination |
//! | layer3+4 | VLAN ids, addresses, and TCP/UDP/SCTP ports with the protocol; fragments (IPv4 MF or offset) and IPv6 packets whose next header is not TCP/UDP/SCTP hash on addresses only |
//!
//! Cost: untagged IPv4 (without options) and IPv6 frames of at least 58 bytes, which is
//! every real frame, take the fast path: one bounds check, then loads at fixed offsets and
//! two multiplications; frames with one 802.1Q tag take the same path four bytes on.
//! Everything else (QinQ, IPv4 options, short or garbage frames) takes a general parser
//! that mixes the same way; missing bytes read as zero.
//!
//! Where the NIC computes a symmetric Toeplitz RSS hash over the same fields, workers use
//! it instead ([`rss_usable`]); see docs/dataplane.md.

use types::{ethertype, HashPolicy};

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K3: u64 = 0x1656_67b1_9e37_79f9;

/// Bytes the fast path needs: Ethernet + IPv6 header + the ports (an IPv4 frame has them
/// too: Ethernet frames are at least 60 bytes).
const FAST_LEN: usize = 14 + 40 + 4;

/// True for an untagged Slow Protocols frame (LACPDU, Marker PDU, OAM...). Tagged slow
/// frames are not LACP (802.1AX: slow protocols run on the untagged port).
#[inline(always)]
pub fn is_slow_protocol(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&ethertype::SLOW_PROTOCOLS.to_be_bytes()[..])
}

/// Whether a NIC's RSS hash can stand for [`flow_hash`] under `policy`: the port's RSS
/// covers the policy's address and port fields (`rss_l4`: TCP/UDP ports too) with a
/// symmetric key. layer2 has no RSS equivalent (NICs do not hash MACs); layer2+3 under
/// RSS hashes addresses only (a routed flow's MACs are the same for every frame anyway).
#[inline(always)]
pub fn rss_usable(policy: HashPolicy, rss_l4: bool) -> bool {
    match policy {
        HashPolicy::Layer2 => false,
        HashPolicy::Layer23 => !rss_l4,
        HashPolicy::Layer34 => rss_l4,
    }
}

/// The flow hash of a frame under `policy`; see the module docs for what it covers.
#[inline]
pub fn flow_hash(frame: &[u8], policy: HashPolicy) -> u32 {
    match policy {
        HashPolicy::Layer2 => hash_for::<L2>(frame),
        HashPolicy::Layer23 => hash_for::<L23>(frame),
        HashPolicy::Layer34 => hash_for::<L34>(frame),
    }
}

/// `policy` as a type, so each policy's hash compiles without branches on the policy.
pub trait Policy {
    /// The policy.
    const POLICY: HashPolicy;
}

/// [`HashPolicy::Layer2`] as a type.
#[derive(Debug, Clone, Copy)]
pub enum L2 {}
/// [`HashPolicy::Layer23`] as a type.
#[derive(Debug, Clone, Copy)]
pub enum L23 {}
/// [`HashPolicy::Layer34`] as a type.
#[derive(Debug, Clone, Copy)]
pub enum L34 {}

impl Policy for L2 {
    const POLICY: HashPolicy = HashPolicy::Layer2;
}
impl Policy for L23 {
    const POLICY: HashPolicy = HashPolicy::Layer23;
}
impl Policy for L34 {
    const POLICY: HashPolicy = HashPolicy::Layer34;
}

/// [`flow_hash`] for the policy `P`, for loops that pick the policy once per burst.
#[inline(always)]
pub fn hash_for<P: Policy>(frame: &[u8]) -> u32 {
    match hash_untagged::<P>(frame) {
        Some(h) => h,
        None => hash_rest::<P>(frame),
    }
}

/// [`hash_for`] for the frames a bond carries nearly always: untagged IPv4 (no options)
/// and IPv6 of at least 58 bytes, and under layer2 any untagged frame but a Slow
/// Protocols one. `None` for every other frame (Slow Protocols frames included, so a
/// distributor that diverts them tests for them only here): [`hash_for`] has their hash.
#[inline(always)]
pub fn hash_untagged<P: Policy>(frame: &[u8]) -> Option<u32> {
    let policy = P::POLICY;
    let f = frame.first_chunk::<FAST_LEN>()?;
    let et = [f[12], f[13]];
    if policy == HashPolicy::Layer2 {
        // MACs only.
        return (et != VLAN_BE && et != QINQ_BE && et != SLOW_BE)
            .then(|| finish(l2_part(f, policy, 0)));
    }
    ip_fields::<14>(f, et, policy).map(|x| finish(x ^ l2_part(f, policy, 0)))
}

/// [`hash_for`] of a frame [`hash_untagged`] did not take.
#[inline(always)]
fn hash_rest<P: Policy>(frame: &[u8]) -> u32 {
    let policy = P::POLICY;
    if policy == HashPolicy::Layer2 {
        if let Some(f) = frame.first_chunk::<FAST_LEN>() {
            if [f[12], f[13]] == SLOW_BE {
                return finish(l2_part(f, policy, 0));
            }
        }
    }
    // One 802.1Q tag (a routed frame leaving on a VLAN interface): the same at offset 4.
    if let Some(f) = frame.first_chunk::<{ FAST_LEN + 4 }>() {
        if [f[12], f[13]] == VLAN_BE {
            let vlans = (u16::from_be_bytes([f[14], f[15]]) & 0x0fff) as u64 | 1 << 12;
            let inner = [f[16], f[17]];
            let x = match policy {
                // A second tag takes the general parser.
                HashPolicy::Layer2 => (inner != VLAN_BE && inner != QINQ_BE).then_some(0),
                _ => ip_fields::<18>(f, inner, policy),
            };
            if let Some(x) = x {
                return finish(x ^ l2_part(f, policy, vlans));
            }
        }
    }
    general(frame, policy)
}

/// The layer 3 (and 4) part of the hash for an IPv4 header without options or an IPv6
/// header at `L3` (ethertype `et`); `f` holds at least `L3 + 44` bytes. `None`: another
/// kind of frame.
#[inline(always)]
fn ip_fields<const L3: usize>(f: &[u8], et: [u8; 2], policy: HashPolicy) -> Option<u64> {
    // The addresses, the protocol (0: no ports to hash) and where ports would be.
    let (x, proto, l4) = if et == IPV4_BE && f[L3] == 0x45 {
        let proto = if frag4(f, L3) { 0 } else { f[L3 + 9] };
        (v4_addrs(f, L3), proto, L3 + 20)
    } else if et == IPV6_BE {
        (v6_addrs(f, L3), f[L3 + 6], L3 + 40)
    } else {
        return None;
    };
    let mut x = x;
    if policy == HashPolicy::Layer34 && l4_proto(proto) {
        x ^= ports(f, l4, proto);
    }
    Some(x)
}

const VLAN_BE: [u8; 2] = ethertype::VLAN.to_be_bytes();
const QINQ_BE: [u8; 2] = ethertype::QINQ.to_be_bytes();
const IPV4_BE: [u8; 2] = ethertype::IPV4.to_be_bytes();
const IPV6_BE: [u8; 2] = ethertype::IPV6.to_be_bytes();
const SLOW_BE: [u8; 2] = ethertype::SLOW_PROTOCOLS.to_be_bytes();

/// The source/destination pair in an order that does not depend on direction.
#[inline(always)]
fn ordered(a: u64, b: u64) -> (u64, u64) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Two 32-bit halves (source, destination) of `x` in a direction-independent order:
/// swapping them is a rotation by 32, and the smaller of the two rotations is canonical.
#[inline(always)]
fn sym64(x: u64) -> u64 {
    x.min(x.rotate_left(32))
}

/// As [`sym64`] for two 16-bit halves.
#[inline(always)]
fn sym32(x: u32) -> u32 {
    x.min(x.rotate_left(16))
}

#[inline(always)]
fn u32_at(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]])
}

#[inline(always)]
fn u64_at(f: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&f[at..at + 8]);
    u64::from_le_bytes(w)
}

/// MACs (for layer2 and layer2+3) and the VLAN ids seen so far (`vlans`).
#[inline(always)]
fn l2_part(f: &[u8], policy: HashPolicy, vlans: u64) -> u64 {
    let v = vlans.wrapping_mul(K3);
    if policy == HashPolicy::Layer34 {
        return v;
    }
    let dst = u64_at(f, 0) & 0xffff_ffff_ffff;
    let src = u64_at(f, 4) >> 16;
    let (lo, hi) = ordered(dst, src);
    v ^ lo.wrapping_mul(K2) ^ hi.rotate_left(23)
}

/// IPv4 fragment (more fragments, or an offset): its ports are unknown or absent.
#[inline(always)]
fn frag4(f: &[u8], l3: usize) -> bool {
    u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]) & 0x3fff != 0
}

/// TCP, UDP and SCTP carry ports where layer3+4 expects them.
#[inline(always)]
fn l4_proto(p: u8) -> bool {
    matches!(p, 6 | 17 | 132)
}

/// TCP/UDP/SCTP ports at `l4` with the protocol, direction-independent.
#[inline(always)]
fn ports(f: &[u8], l4: usize, proto: u8) -> u64 {
    ((sym32(u32_at(f, l4)) as u64) << 8 | proto as u64).wrapping_mul(K2)
}

/// IPv4 source and destination (adjacent at `l3 + 12`), direction-independent.
#[inline(always)]
fn v4_addrs(f: &[u8], l3: usize) -> u64 {
    sym64(u64_at(f, l3 + 12))
}

/// IPv6 source and destination, each folded to 64 bits, direction-independent.
#[inline(always)]
fn v6_addrs(f: &[u8], l3: usize) -> u64 {
    let src = u64_at(f, l3 + 8) ^ u64_at(f, l3 + 16).rotate_left(29);
    let dst = u64_at(f, l3 + 24) ^ u64_at(f, l3 + 32).rotate_left(29);
    let (lo, hi) = ordered(src, dst);
    lo.wrapping_mul(K1) ^ hi
}

/// IPv4 addresses (and for layer3+4 the ports after `ihl` header bytes), the header at
/// `l3`; the caller guarantees `l3 + ihl + 4` bytes.
#[inline(always)]
fn ipv4(f: &[u8], l3: usize, ihl: usize, policy: HashPolicy, frag: bool) -> u64 {
    if policy == HashPolicy::Layer2 {
        return 0;
    }
    let mut x = v4_addrs(f, l3);
    let proto = f[l3 + 9];
    if policy == HashPolicy::Layer34 && !frag && l4_proto(proto) {
        x ^= ports(f, l3 + ihl, proto);
    }
    x
}

/// IPv6 addresses (and for layer3+4 the ports when the next header is TCP/UDP/SCTP;
/// extension headers are not walked, so such packets hash on addresses only).
#[inline(always)]
fn ipv6(f: &[u8], l3: usize, policy: HashPolicy) -> u64 {
    if policy == HashPolicy::Layer2 {
        return 0;
    }
    let mut x = v6_addrs(f, l3);
    let proto = f[l3 + 6];
    if policy == HashPolicy::Layer34 && l4_proto(proto) {
        x ^= ports(f, l3 + 40, proto);
    }
    x
}

/// MurmurHash3-style finish: every input bit reaches the output's low bits, which choose
/// the slot.
#[inline(always)]
fn finish(mut x: u64) -> u32 {
    x ^= x >> 31;
    x = x.wrapping_mul(K1);
    (x >> 32) as u32 ^ x as u32
}

/// Tagged, short, IPv4-with-options and non-IP frames: parsed in full, bytes beyond the
/// frame read as zero, mixed as the fast path mixes. Frames that are not IP hash on their
/// layer-2 fields under every policy.
#[cold]
#[inline(never)]
pub(super) fn general(frame: &[u8], policy: HashPolicy) -> u32 {
    // A zero-padded copy keeps every fixed-offset read in bounds: two tags, a 60-byte
    // IPv4 header and the ports.
    let mut buf = [0u8; 22 + 60 + 4];
    let n = frame.len().min(buf.len());
    buf[..n].copy_from_slice(&frame[..n]);
    let f = &buf[..];
    let be16 = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    let mut off = 12;
    let mut et = be16(off);
    let mut vlans = 0u64;
    // Up to two VLAN tags (QinQ); their ids are part of every policy's identity.
    for _ in 0..2 {
        if et == ethertype::VLAN || et == ethertype::QINQ {
            vlans = vlans << 13 | (be16(off + 2) & 0x0fff) as u64 | 1 << 12;
            off += 4;
            et = be16(off);
        } else {
            break;
        }
    }
    let l3 = off + 2;
    // Within the real frame only: bytes beyond it read as zero, as if absent.
    let real = |end: usize| end <= frame.len();
    let x = match et {
        ethertype::IPV4 if real(l3 + 20) => {
            let ihl = (f[l3] & 0x0f) as usize * 4;
            // Ports only where the header is sane and the ports are in the frame.
            let ports_known = ihl >= 20 && real(l3 + ihl + 4);
            ipv4(f, l3, ihl.max(20), policy, frag4(f, l3) || !ports_known)
        }
        ethertype::IPV6 if real(l3 + 40) => {
            if real(l3 + 44) {
                ipv6(f, l3, policy)
            } else {
                // No room for ports: as if the next header were not TCP/UDP/SCTP.
                let mut g = buf;
                g[l3 + 6] = 0;
                ipv6(&g, l3, policy)
            }
        }
        _ => return finish(l2_part(f, HashPolicy::Layer2, vlans)),
    };
    finish(x ^ l2_part(f, policy, vlans))
}

#[cfg(test)]
mod tests;
