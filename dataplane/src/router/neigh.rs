//! Neighbor tables: `(interface, address) -> MAC`, fixed-capacity open addressing with
//! linear probing, built once per FIB snapshot. Lookups hash with one multiply (no
//! SipHash) and touch one or two adjacent slots at a load factor of at most one half.

use dpdk::MacAddr;

use super::IfaceId;

/// Marks a free slot (interface ids stop below it).
const FREE: u16 = u16::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot<K> {
    addr: K,
    iface: u16,
    mac: [u8; 6],
}

/// An address family's neighbor key.
pub trait NeighKey: Copy + Eq + Default + std::fmt::Debug {
    /// A well-mixed 64-bit hash of `(iface, self)`; the table takes the top bits.
    fn hash(self, iface: u16) -> u64;
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl NeighKey for u32 {
    #[inline(always)]
    fn hash(self, iface: u16) -> u64 {
        // Fibonacci hashing: the top bits of the product depend on every input bit.
        (((self as u64) << 16) | iface as u64).wrapping_mul(MUL)
    }
}

impl NeighKey for u128 {
    #[inline(always)]
    fn hash(self, iface: u16) -> u64 {
        let x = (self as u64) ^ ((self >> 64) as u64).rotate_left(29) ^ ((iface as u64) << 48);
        let x = x.wrapping_mul(MUL);
        (x ^ (x >> 29)).wrapping_mul(MUL)
    }
}

/// An immutable neighbor table.
#[derive(Debug, Clone)]
pub struct NeighTable<K: NeighKey> {
    slots: Box<[Slot<K>]>,
    shift: u32,
    len: usize,
}

impl<K: NeighKey> NeighTable<K> {
    /// A table holding `entries` (a later duplicate of `(iface, addr)` wins). Entries
    /// with interface `u16::MAX` are ignored (that id is reserved).
    pub fn new(entries: impl IntoIterator<Item = (IfaceId, K, MacAddr)>) -> Self {
        let entries: Vec<_> = entries.into_iter().filter(|e| e.0 .0 != FREE).collect();
        // At most half full, so a probe always ends at a free slot within a few steps.
        let cap = (entries.len() * 2).next_power_of_two().max(8);
        let mut t = NeighTable {
            slots: vec![
                Slot {
                    addr: K::default(),
                    iface: FREE,
                    mac: [0; 6],
                };
                cap
            ]
            .into_boxed_slice(),
            shift: 64 - cap.trailing_zeros(),
            len: 0,
        };
        for (iface, addr, mac) in entries {
            let mut i = t.home(iface.0, addr);
            loop {
                let s = &mut t.slots[i];
                if s.iface == FREE {
                    *s = Slot {
                        addr,
                        iface: iface.0,
                        mac: mac.0,
                    };
                    t.len += 1;
                    break;
                }
                if s.iface == iface.0 && s.addr == addr {
                    s.mac = mac.0;
                    break;
                }
                i = (i + 1) & (cap - 1);
            }
        }
        t
    }

    #[inline(always)]
    fn home(&self, iface: u16, addr: K) -> usize {
        (addr.hash(iface) >> self.shift) as usize
    }

    /// The MAC of `addr` on `iface`.
    #[inline]
    pub fn get(&self, iface: IfaceId, addr: K) -> Option<MacAddr> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(iface.0, addr);
        loop {
            let s = self.slots.get(i)?;
            if s.iface == FREE {
                return None;
            }
            if s.iface == iface.0 && s.addr == addr {
                return Some(MacAddr(s.mac));
            }
            i = (i + 1) & mask;
        }
    }

    /// Number of neighbors.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the slot array.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u32) -> MacAddr {
        let b = i.to_be_bytes();
        MacAddr([2, 0, b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn finds_every_entry_and_nothing_else() {
        let n = 5000u32;
        let t = NeighTable::new((0..n).map(|i| (IfaceId((i % 3) as u16), 0x0a00_0000 + i, mac(i))));
        assert_eq!(t.len(), n as usize);
        assert!(t.memory_bytes() <= 4 * n as usize * 12);
        for i in 0..n {
            assert_eq!(
                t.get(IfaceId((i % 3) as u16), 0x0a00_0000 + i),
                Some(mac(i))
            );
            assert_eq!(
                t.get(IfaceId((i % 3 + 1) as u16), 0x0a00_0000 + i),
                None,
                "other iface"
            );
        }
        assert_eq!(t.get(IfaceId(0), 0x0b00_0000), None);
    }

    #[test]
    fn ipv6_keys_and_duplicates() {
        let a: u128 = 0xfe80_0000_0000_0000_0000_0000_0000_0001;
        let t = NeighTable::new([
            (IfaceId(0), a, mac(1)),
            (IfaceId(1), a, mac(2)),
            (IfaceId(0), a, mac(3)),
            (IfaceId(u16::MAX), a, mac(4)),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(IfaceId(0), a), Some(mac(3)), "later duplicate wins");
        assert_eq!(t.get(IfaceId(1), a), Some(mac(2)));
        assert_eq!(t.get(IfaceId(2), a), None);
        assert_eq!(t.get(IfaceId(u16::MAX), a), None);
    }

    #[test]
    fn empty_table() {
        let t = NeighTable::<u32>::new([]);
        assert!(t.is_empty());
        assert_eq!(t.get(IfaceId(0), 0), None);
    }
}
