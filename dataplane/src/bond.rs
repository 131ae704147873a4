//! Bond distribution on the workers: the flow hash, and the table of distributing members
//! that the control thread publishes and workers read once per burst.
//!
//! A table is immutable once published; a change is a new table swapped in whole
//! (arc-swap), so a worker sees either the old or the new member set, never a mix, and
//! the next burst after the swap uses the new one.

use std::sync::Arc;
use types::ethertype;

use arc_swap::ArcSwap;

/// Which header fields choose the member for a frame (config `hash`): layer2 (MACs and
/// the VLAN id), layer2+3 (plus IP addresses), layer3+4 (plus TCP/UDP/SCTP ports; not for
/// fragments, whose ports are unknown).
pub use types::HashPolicy;

#[inline(always)]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline(always)]
fn word(b: &[u8], at: usize, len: usize) -> u64 {
    // Folds `len` bytes (<= 8) at `at` into a word; missing bytes read as zero.
    let mut w = [0u8; 8];
    if let Some(s) = b.get(at..at + len) {
        w[..len].copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

/// True for an untagged Slow Protocols frame (LACPDU, Marker PDU, OAM...). Tagged slow
/// frames are not LACP (802.1AX: slow protocols run on the untagged port).
#[inline]
pub fn is_slow_protocol(frame: &[u8]) -> bool {
    be16(frame, 12) == Some(ethertype::SLOW_PROTOCOLS)
}

/// The flow hash of a frame under `policy`. Both directions of a flow hash the same
/// (source and destination are combined symmetrically), so a flow and its replies use
/// one member each way. Malformed or short frames hash on what is there.
#[inline]
pub fn flow_hash(frame: &[u8], policy: HashPolicy) -> u32 {
    let dst = word(frame, 0, 6);
    let src = word(frame, 6, 6);
    let mut h = dst ^ src;
    let mut off = 12;
    let mut ethertype = be16(frame, off).unwrap_or(0);
    // Up to two VLAN tags (QinQ); the VLAN ids are part of the layer-2 identity.
    for _ in 0..2 {
        if ethertype == ethertype::VLAN || ethertype == ethertype::QINQ {
            let tci = be16(frame, off + 2).unwrap_or(0) & 0x0fff;
            h ^= (tci as u64) << 48;
            off += 4;
            ethertype = be16(frame, off).unwrap_or(0);
        } else {
            break;
        }
    }
    if policy == HashPolicy::Layer2 {
        return finish(h);
    }
    let l3 = off + 2;
    let (proto, l4, fragment) = match ethertype {
        ethertype::IPV4 => {
            let ihl = (frame.get(l3).copied().unwrap_or(0) & 0x0f) as usize * 4;
            let frag = be16(frame, l3 + 6).unwrap_or(0) & 0x3fff != 0;
            h ^= word(frame, l3 + 12, 4) ^ word(frame, l3 + 16, 4);
            (
                frame.get(l3 + 9).copied().unwrap_or(0),
                l3 + ihl.max(20),
                frag,
            )
        }
        ethertype::IPV6 => {
            let a = word(frame, l3 + 8, 8) ^ word(frame, l3 + 16, 8);
            let b = word(frame, l3 + 24, 8) ^ word(frame, l3 + 32, 8);
            h ^= a ^ b.rotate_left(29);
            // Extension headers are not walked: such packets hash on addresses only,
            // which keeps every packet of the flow on one member.
            (frame.get(l3 + 6).copied().unwrap_or(0), l3 + 40, false)
        }
        _ => return finish(h),
    };
    if policy == HashPolicy::Layer34 && !fragment && matches!(proto, 6 | 17 | 132) {
        let sp = be16(frame, l4).unwrap_or(0) as u64;
        let dp = be16(frame, l4 + 2).unwrap_or(0) as u64;
        h ^= ((sp ^ dp) << 32) | (proto as u64) << 16;
    }
    finish(h)
}

#[inline(always)]
fn finish(mut h: u64) -> u32 {
    // MurmurHash3's 64-bit finaliser: every input bit affects every output bit, so
    // addresses that differ in a few bits still land in different slots (the slot is
    // taken from the low bits).
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h ^ (h >> 32)) as u32
}

/// Number of hash slots; a power of two so the slot is `hash & (SLOTS - 1)`.
pub const SLOTS: usize = 256;

/// The member set of one bond at one moment: who distributes (egress) and who collects
/// (ingress accepted). Port numbers are the runtime's port indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondTable {
    /// Distributing members, in the order the control plane gave.
    pub distributing: Vec<u16>,
    /// `collecting[port]` for every port index the runtime has.
    pub collecting: Vec<bool>,
    /// Hash slot -> member port index; empty when nothing distributes.
    slots: Vec<u16>,
    /// Increases with every published table (for logs and tests).
    pub version: u64,
}

impl BondTable {
    /// A table: `distributing` members carry egress; `collecting` ports accept ingress.
    pub fn new(distributing: Vec<u16>, collecting: Vec<bool>, version: u64) -> BondTable {
        let slots = if distributing.is_empty() {
            Vec::new()
        } else {
            (0..SLOTS)
                .map(|s| distributing[s % distributing.len()])
                .collect()
        };
        BondTable {
            distributing,
            collecting,
            slots,
            version,
        }
    }

    /// Nothing distributes and nothing collects.
    pub fn down(ports: usize) -> BondTable {
        BondTable::new(Vec::new(), vec![false; ports], 0)
    }

    /// The member that carries a frame with this hash, or None when the bond is down.
    #[inline(always)]
    pub fn pick(&self, hash: u32) -> Option<u16> {
        self.slots.get(hash as usize & (SLOTS - 1)).copied()
    }

    /// Whether ingress on `port` is accepted.
    #[inline(always)]
    pub fn collects(&self, port: usize) -> bool {
        self.collecting.get(port).copied().unwrap_or(false)
    }
}

/// Where a bond's current table lives; the control thread stores, workers load.
pub type SharedTable = Arc<ArcSwap<BondTable>>;

/// A shared table that starts down.
pub fn shared_down(ports: usize) -> SharedTable {
    Arc::new(ArcSwap::from_pointee(BondTable::down(ports)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(src_ip: [u8; 4], dst_ip: [u8; 4], sp: u16, dp: u16, vlan: Option<u16>) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        if let Some(v) = vlan {
            f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&v.to_be_bytes());
            f.extend_from_slice(&0x0800u16.to_be_bytes());
        } else {
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        }
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&src_ip);
        ip.extend_from_slice(&dst_ip);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn symmetric_per_flow() {
        let a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, None);
        let mut b = udp4([10, 0, 0, 2], [10, 0, 0, 1], 53, 1000, None);
        b[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        for p in [HashPolicy::Layer2, HashPolicy::Layer23, HashPolicy::Layer34] {
            assert_eq!(flow_hash(&a, p), flow_hash(&b, p), "{p:?}");
        }
    }

    #[test]
    fn policies_look_at_their_fields() {
        let a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, None);
        let other_port = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1001, 53, None);
        let other_ip = udp4([10, 0, 0, 3], [10, 0, 0, 2], 1000, 53, None);
        assert_eq!(
            flow_hash(&a, HashPolicy::Layer2),
            flow_hash(&other_ip, HashPolicy::Layer2)
        );
        assert_ne!(
            flow_hash(&a, HashPolicy::Layer23),
            flow_hash(&other_ip, HashPolicy::Layer23)
        );
        assert_eq!(
            flow_hash(&a, HashPolicy::Layer23),
            flow_hash(&other_port, HashPolicy::Layer23)
        );
        assert_ne!(
            flow_hash(&a, HashPolicy::Layer34),
            flow_hash(&other_port, HashPolicy::Layer34)
        );
        // VLAN-tagged frames are parsed past the tag.
        let tagged = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, Some(100));
        let tagged_port = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1001, 53, Some(100));
        assert_ne!(
            flow_hash(&tagged, HashPolicy::Layer34),
            flow_hash(&tagged_port, HashPolicy::Layer34)
        );
    }

    #[test]
    fn fragments_ignore_ports() {
        let mut a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53, None);
        let mut b = udp4([10, 0, 0, 1], [10, 0, 0, 2], 2000, 80, None);
        a[14 + 6] = 0x20; // more fragments
        b[14 + 6] = 0x20;
        assert_eq!(
            flow_hash(&a, HashPolicy::Layer34),
            flow_hash(&b, HashPolicy::Layer34)
        );
    }

    #[test]
    fn spreads_flows_evenly() {
        let t = BondTable::new(vec![3, 7], vec![false; 8], 1);
        let mut count = [0u32; 8];
        for sp in 0..2000u16 {
            let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 10000 + sp, 80, None);
            count[t.pick(flow_hash(&f, HashPolicy::Layer34)).unwrap() as usize] += 1;
        }
        assert!(count[3] > 800 && count[7] > 800, "{count:?}");
        assert_eq!(count[3] + count[7], 2000);
    }

    #[test]
    fn addresses_differing_in_one_byte_spread() {
        // Hosts on one segment differ in the last MAC/IP byte only: they must still spread.
        let t = BondTable::new(vec![0, 1], vec![false; 2], 1);
        let mut count = [0u32; 2];
        for i in 0..64u8 {
            let mut f = udp4([10, 0, 0, 1], [10, 0, 0, i], 1000, 80, None);
            f[11] = i;
            for p in [HashPolicy::Layer2, HashPolicy::Layer23] {
                count[t.pick(flow_hash(&f, p)).unwrap() as usize] += 1;
            }
        }
        assert!(count[0] > 40 && count[1] > 40, "{count:?}");
    }

    #[test]
    fn short_and_garbage_frames_do_not_panic() {
        for len in 0..80 {
            let f: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            for p in [HashPolicy::Layer2, HashPolicy::Layer23, HashPolicy::Layer34] {
                flow_hash(&f, p);
            }
            let _ = is_slow_protocol(&f);
        }
    }

    #[test]
    fn down_table_picks_nothing() {
        let t = BondTable::down(4);
        assert_eq!(t.pick(12345), None);
        assert!(!t.collects(2));
        assert!(!t.collects(99));
    }

    #[test]
    fn slow_protocol_detection() {
        let mut f = vec![0u8; 60];
        f[12] = 0x88;
        f[13] = 0x09;
        assert!(is_slow_protocol(&f));
        f[12] = 0x81;
        f[13] = 0x00;
        assert!(!is_slow_protocol(&f));
    }
}
