//! Bond distribution on the workers: the flow hash ([`flow_hash`]), and the table of
//! distributing members that the control thread publishes and workers read once per burst.
//!
//! A table is immutable once published; a change is a new table swapped in whole
//! (arc-swap), so a worker sees either the old or the new member set, never a mix, and
//! the next burst after the swap uses the new one.

mod hash;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use hash::{
    flow_hash, hash_for, hash_untagged, is_slow_protocol, rss_usable, Policy, L2, L23, L34,
};

/// Which header fields choose the member for a frame (config `hash`): layer2 (MACs and
/// the VLAN id), layer2+3 (plus IP addresses), layer3+4 (plus TCP/UDP/SCTP ports; not for
/// fragments, whose ports are unknown).
pub use types::HashPolicy;

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
    /// Hash slot -> member port index (all zero when nothing distributes). A fixed-size
    /// array: indexing with `hash & (SLOTS - 1)` needs no bounds check.
    slots: Box<[u16; SLOTS]>,
    /// Increases with every published table (for logs and tests).
    pub version: u64,
}

impl BondTable {
    /// A table: `distributing` members carry egress; `collecting` ports accept ingress.
    pub fn new(distributing: Vec<u16>, collecting: Vec<bool>, version: u64) -> BondTable {
        let mut slots = Box::new([0u16; SLOTS]);
        if !distributing.is_empty() {
            for (s, slot) in slots.iter_mut().enumerate() {
                *slot = distributing[s % distributing.len()];
            }
        }
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
        (!self.distributing.is_empty()).then(|| self.slot(hash))
    }

    /// The member for this hash when the caller knows the bond distributes (at least one
    /// member); meaningless (port 0) otherwise.
    #[inline(always)]
    pub fn slot(&self, hash: u32) -> u16 {
        self.slots[hash as usize & (SLOTS - 1)]
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

    #[test]
    fn down_table_picks_nothing() {
        let t = BondTable::down(4);
        assert_eq!(t.pick(12345), None);
        assert!(!t.collects(2));
        assert!(!t.collects(99));
    }

    #[test]
    fn slots_cycle_over_the_distributing_members() {
        let t = BondTable::new(vec![3, 7, 9], vec![false; 10], 1);
        let picks: Vec<u16> = (0..6).map(|h| t.pick(h).unwrap()).collect();
        assert_eq!(picks, [3, 7, 9, 3, 7, 9]);
        assert_eq!(
            t.pick(SLOTS as u32),
            Some(3),
            "the slot is the hash's low bits"
        );
    }
}
