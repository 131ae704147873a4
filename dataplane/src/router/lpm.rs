//! Longest-prefix match: a multibit trie with a direct-indexed first level and fixed
//! strides below it (DIR-24-8 for IPv4 is `Trie<u32, 24, 8>`, DIR-16-8-8 is
//! `Trie<u32, 16, 8>`), mapping prefixes to a next-hop id.
//!
//! Tables are compiled whole from a [`Rules`] set and are immutable afterwards: the
//! control thread edits the rules, compiles, and publishes the result; workers only read.
//! Compiling in increasing prefix-length order makes every rule simply overwrite the
//! (shorter) rules it refines, so insertion and deletion need no per-entry depth
//! bookkeeping and cannot leave stale entries behind.
//!
//! Entry encoding (one `u32` per slot): `0` is "no prefix longer than /0", bit 31 set
//! means "the child chunk with this index", anything else is `next hop id + 1`. The
//! default route (/0) is kept beside the table and answers for `0` entries, so it costs
//! no table writes: the pages of a direct-indexed first level that no other prefix
//! touches stay untouched zero pages (no resident memory, no rebuild time).

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

/// An address as a trie key: a big-endian bit string of `BITS` bits.
pub trait Key: Copy + Ord + Eq + Hash + fmt::Debug + Send + Sync + 'static {
    /// Address width in bits.
    const BITS: u32;
    /// The `len` bits (1..=24) starting `off` bits from the most significant end.
    fn bits(self, off: u32, len: u32) -> usize;
    /// The address with everything after the first `len` bits cleared.
    fn masked(self, len: u8) -> Self;
}

impl Key for u32 {
    const BITS: u32 = 32;
    #[inline(always)]
    fn bits(self, off: u32, len: u32) -> usize {
        ((self >> (32 - off - len)) & ((1u32 << len) - 1)) as usize
    }
    #[inline]
    fn masked(self, len: u8) -> u32 {
        match len {
            0 => 0,
            l if l >= 32 => self,
            l => self & !(u32::MAX >> l),
        }
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    #[inline(always)]
    fn bits(self, off: u32, len: u32) -> usize {
        ((self >> (128 - off - len)) as u32 & ((1u32 << len) - 1)) as usize
    }
    #[inline]
    fn masked(self, len: u8) -> u128 {
        match len {
            0 => 0,
            l if l >= 128 => self,
            l => self & !(u128::MAX >> l),
        }
    }
}

/// Largest next-hop id a trie can store (bit 31 marks child pointers, 0 marks a miss).
pub const MAX_NEXT_HOP: u32 = (1 << 31) - 2;

const EXT: u32 = 1 << 31;

/// Why a rule was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// Prefix length beyond the address width.
    #[error("prefix length {len} is longer than the address ({bits} bits)")]
    PrefixLength {
        /// Requested length.
        len: u8,
        /// Address width.
        bits: u32,
    },
    /// Bits set after the prefix length (e.g. 10.0.0.1/24); write the network address.
    #[error("address has bits set after the prefix length; use the network address")]
    HostBits,
    /// Next-hop id above [`MAX_NEXT_HOP`].
    #[error("next-hop id {0} is too large (max {MAX_NEXT_HOP})")]
    NextHop(u32),
}

/// A set of prefixes with their next-hop ids: what the control plane edits. Compile it
/// with [`Rules::compile`] to get a lookup table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules<K: Key> {
    // Ordered by (length, address): compiling walks shorter prefixes first.
    rules: BTreeMap<(u8, K), u32>,
}

impl<K: Key> Default for Rules<K> {
    fn default() -> Self {
        Rules {
            rules: BTreeMap::new(),
        }
    }
}

impl<K: Key> Rules<K> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `addr/len -> next_hop`; returns the next hop it replaced.
    pub fn insert(&mut self, addr: K, len: u8, next_hop: u32) -> Result<Option<u32>, LpmError> {
        if len as u32 > K::BITS {
            return Err(LpmError::PrefixLength { len, bits: K::BITS });
        }
        if addr.masked(len) != addr {
            return Err(LpmError::HostBits);
        }
        if next_hop > MAX_NEXT_HOP {
            return Err(LpmError::NextHop(next_hop));
        }
        Ok(self.rules.insert((len, addr), next_hop))
    }

    /// Removes `addr/len` (host bits are ignored); returns its next hop if it existed.
    pub fn remove(&mut self, addr: K, len: u8) -> Option<u32> {
        self.rules.remove(&(len, addr.masked(len)))
    }

    /// The next hop of exactly `addr/len`, if present.
    pub fn get(&self, addr: K, len: u8) -> Option<u32> {
        self.rules.get(&(len, addr.masked(len))).copied()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every `(addr, len, next_hop)`, shortest prefixes first.
    pub fn iter(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.rules.iter().map(|(&(l, a), &n)| (a, l, n))
    }

    /// Builds the lookup table.
    pub fn compile<const FIRST: u32, const STRIDE: u32>(&self) -> Trie<K, FIRST, STRIDE> {
        let mut t = Trie::empty();
        for (&(len, addr), &nh) in &self.rules {
            if len == 0 {
                t.default = Some(nh);
            } else {
                t.write(addr, len, nh + 1);
            }
        }
        t
    }

    /// The reference answer by linear scan (tests and debugging; O(rules)).
    pub fn lookup_slow(&self, addr: K) -> Option<u32> {
        self.rules
            .iter()
            .rev()
            .find(|(&(len, p), _)| addr.masked(len) == p)
            .map(|(_, &nh)| nh)
    }
}

/// A compiled, immutable longest-prefix-match table with a `2^FIRST`-entry first level and
/// `2^STRIDE`-entry chunks below it.
#[derive(Clone)]
pub struct Trie<K: Key, const FIRST: u32, const STRIDE: u32> {
    root: Box<[u32]>,
    chunks: Vec<u32>,
    /// The /0 route's next hop.
    default: Option<u32>,
    _key: PhantomData<K>,
}

impl<K: Key, const FIRST: u32, const STRIDE: u32> fmt::Debug for Trie<K, FIRST, STRIDE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trie")
            .field("bits", &K::BITS)
            .field("first", &FIRST)
            .field("stride", &STRIDE)
            .field("chunks", &self.chunk_count())
            .field("bytes", &self.memory_bytes())
            .finish()
    }
}

impl<K: Key, const FIRST: u32, const STRIDE: u32> Trie<K, FIRST, STRIDE> {
    const VALID: () = assert!(
        FIRST >= 1
            && FIRST <= 24
            && STRIDE >= 1
            && STRIDE <= 16
            && FIRST <= K::BITS
            && (K::BITS - FIRST).is_multiple_of(STRIDE),
        "strides must tile the address exactly"
    );

    /// A table without routes.
    pub fn empty() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        Trie {
            root: vec![0u32; 1 << FIRST].into_boxed_slice(),
            chunks: Vec::new(),
            default: None,
            _key: PhantomData,
        }
    }

    /// The next-hop id of the longest prefix containing `addr`.
    #[inline(always)]
    pub fn lookup(&self, addr: K) -> Option<u32> {
        let mut e = self.root.get(addr.bits(0, FIRST)).copied().unwrap_or(0);
        let mut off = FIRST;
        while e & EXT != 0 {
            let at = (((e & !EXT) as usize) << STRIDE) + addr.bits(off, STRIDE);
            e = self.chunks.get(at).copied().unwrap_or(0);
            off += STRIDE;
        }
        match e {
            0 => self.default,
            e => Some(e - 1),
        }
    }

    /// Number of chunks below the first level.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len() >> STRIDE
    }

    /// Bytes of lookup tables (first level plus chunks) as allocated; resident memory is
    /// less where first-level pages were never written.
    pub fn memory_bytes(&self) -> usize {
        (self.root.len() + self.chunks.len()) * 4
    }

    fn child(&mut self, slot: Option<usize>, off_root: usize) -> usize {
        // The entry at `slot` (a chunk slot) or root[off_root] becomes a child chunk if it
        // is not one already; a new chunk inherits the entry's route (prefix expansion).
        let e = match slot {
            Some(s) => self.chunks[s],
            None => self.root[off_root],
        };
        if e & EXT != 0 {
            return (e & !EXT) as usize;
        }
        let index = self.chunk_count();
        assert!(index < EXT as usize, "trie chunk index overflow");
        self.chunks.resize(self.chunks.len() + (1 << STRIDE), e);
        let ptr = EXT | index as u32;
        match slot {
            Some(s) => self.chunks[s] = ptr,
            None => self.root[off_root] = ptr,
        }
        index
    }

    // Writes `value` for `addr/len`. Callers go in increasing length, so the range written
    // never holds a child pointer (those come from longer prefixes, written later).
    fn write(&mut self, addr: K, len: u8, value: u32) {
        let len = len as u32;
        if len <= FIRST {
            let start = addr.bits(0, FIRST);
            let n = 1usize << (FIRST - len);
            self.root[start..start + n].fill(value);
            return;
        }
        let mut chunk = self.child(None, addr.bits(0, FIRST));
        let mut off = FIRST;
        loop {
            let base = chunk << STRIDE;
            if len <= off + STRIDE {
                let start = base + addr.bits(off, STRIDE);
                let n = 1usize << (off + STRIDE - len);
                self.chunks[start..start + n].fill(value);
                return;
            }
            chunk = self.child(Some(base + addr.bits(off, STRIDE)), 0);
            off += STRIDE;
        }
    }
}

/// IPv4 table: DIR-24-8 (see docs/router.md for the benchmark behind the choice).
pub type Lpm4 = Trie<u32, 24, 8>;
/// IPv6 table: 24-bit first level, then 8-bit strides (rte_lpm6's layout; see
/// docs/router.md).
pub type Lpm6 = Trie<u128, 24, 8>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    #[test]
    fn key_bits() {
        let a = v4("10.20.30.40");
        assert_eq!(a.bits(0, 24), 0x0a141e);
        assert_eq!(a.bits(24, 8), 40);
        assert_eq!(a.bits(16, 8), 30);
        assert_eq!(a.masked(0), 0);
        assert_eq!(a.masked(8), v4("10.0.0.0"));
        assert_eq!(a.masked(32), a);
        let b = v6("2001:db8::1");
        assert_eq!(b.bits(0, 16), 0x2001);
        assert_eq!(b.bits(120, 8), 1);
        assert_eq!(b.masked(32), v6("2001:db8::"));
        assert_eq!(b.masked(128), b);
    }

    #[test]
    fn rules_validate() {
        let mut r = Rules::<u32>::new();
        assert_eq!(
            r.insert(v4("10.0.0.1"), 24, 1),
            Err(LpmError::HostBits),
            "host bits"
        );
        assert!(matches!(
            r.insert(0, 33, 1),
            Err(LpmError::PrefixLength { .. })
        ));
        assert_eq!(
            r.insert(0, 0, MAX_NEXT_HOP + 1),
            Err(LpmError::NextHop(MAX_NEXT_HOP + 1))
        );
        assert_eq!(r.insert(0, 0, MAX_NEXT_HOP), Ok(None));
        assert_eq!(r.insert(0, 0, 7), Ok(Some(MAX_NEXT_HOP)));
        assert_eq!(
            r.remove(v4("1.2.3.4"), 0),
            Some(7),
            "remove ignores host bits"
        );
        assert!(r.is_empty());
    }

    fn check4<const F: u32, const S: u32>() {
        let mut r = Rules::<u32>::new();
        let t: Trie<u32, F, S> = r.compile();
        assert_eq!(t.lookup(v4("1.2.3.4")), None, "empty table");
        r.insert(0, 0, 1).unwrap();
        r.insert(v4("10.0.0.0"), 8, 2).unwrap();
        r.insert(v4("10.1.0.0"), 16, 3).unwrap();
        r.insert(v4("10.1.2.0"), 24, 4).unwrap();
        r.insert(v4("10.1.2.128"), 25, 5).unwrap();
        r.insert(v4("10.1.2.129"), 32, 6).unwrap();
        r.insert(v4("255.255.255.255"), 32, 7).unwrap();
        r.insert(v4("10.1.3.0"), 31, 8).unwrap();
        r.insert(v4("192.168.1.128"), 25, 9).unwrap();
        let t: Trie<u32, F, S> = r.compile();
        for (a, want) in [
            ("1.2.3.4", 1),
            ("10.9.9.9", 2),
            ("10.1.9.9", 3),
            ("10.1.2.3", 4),
            ("10.1.2.127", 4),
            ("10.1.2.128", 5),
            ("10.1.2.129", 6),
            ("10.1.2.130", 5),
            ("10.1.2.255", 5),
            ("255.255.255.255", 7),
            ("255.255.255.254", 1),
            ("10.1.3.0", 8),
            ("10.1.3.1", 8),
            ("10.1.3.2", 3),
            // Chunks below an entry that only the default route covers.
            ("192.168.1.1", 1),
            ("192.168.1.200", 9),
            ("192.168.0.1", 1),
        ] {
            assert_eq!(t.lookup(v4(a)), Some(want), "{a} F={F} S={S}");
        }
        // Deletion: the covering prefix takes over again.
        r.remove(v4("10.1.2.128"), 25);
        r.remove(0, 0);
        let t: Trie<u32, F, S> = r.compile();
        assert_eq!(t.lookup(v4("10.1.2.130")), Some(4));
        assert_eq!(t.lookup(v4("10.1.2.129")), Some(6));
        assert_eq!(t.lookup(v4("1.2.3.4")), None);
        assert_eq!(t.lookup(v4("255.255.255.255")), Some(7));
        assert_eq!(t.lookup(v4("192.168.1.1")), None);
        assert_eq!(t.lookup(v4("192.168.1.129")), Some(9));
    }

    #[test]
    fn ipv4_longest_prefix_dir_24_8() {
        check4::<24, 8>();
    }

    #[test]
    fn ipv4_longest_prefix_dir_16_8_8() {
        check4::<16, 8>();
    }

    #[test]
    fn ipv6_longest_prefix() {
        let mut r = Rules::<u128>::new();
        r.insert(0, 0, 1).unwrap();
        r.insert(v6("2001:db8::"), 32, 2).unwrap();
        r.insert(v6("2001:db8:1::"), 48, 3).unwrap();
        r.insert(v6("2001:db8:1:2::"), 64, 4).unwrap();
        r.insert(v6("2001:db8:1:2::1"), 128, 5).unwrap();
        r.insert(v6("2001:db8:1:2::80"), 121, 6).unwrap();
        r.insert(v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 128, 7)
            .unwrap();
        let t: Trie<u128, 16, 8> = r.compile();
        for (a, want) in [
            ("::1", 1),
            ("2001:db8:ffff::1", 2),
            ("2001:db8:1:ffff::1", 3),
            ("2001:db8:1:2::2", 4),
            ("2001:db8:1:2::1", 5),
            ("2001:db8:1:2::80", 6),
            ("2001:db8:1:2::ff", 6),
            ("2001:db8:1:2::100", 4),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 7),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 1),
        ] {
            assert_eq!(t.lookup(v6(a)), Some(want), "{a}");
        }
        r.remove(v6("2001:db8:1:2::"), 64);
        let t: Lpm6 = r.compile();
        assert_eq!(t.lookup(v6("2001:db8:1:2::2")), Some(3));
        assert_eq!(t.lookup(v6("2001:db8:1:2::1")), Some(5));
    }

    #[test]
    fn memory_accounting() {
        let t: Lpm4 = Rules::new().compile();
        assert_eq!(t.memory_bytes(), 64 << 20);
        let mut r = Rules::<u32>::new();
        r.insert(v4("10.0.0.1"), 32, 0).unwrap();
        r.insert(v4("10.0.0.2"), 32, 0).unwrap();
        let t: Trie<u32, 16, 8> = r.compile();
        assert_eq!(t.chunk_count(), 2, "one per level below 10.0/16");
        assert_eq!(t.memory_bytes(), (65536 + 512) * 4);
    }

    // Prefix lengths biased towards the level boundaries and the ends, where the bugs are.
    fn len_strategy(bits: u8) -> impl Strategy<Value = u8> {
        prop_oneof![
            0..=bits,
            prop::sample::select(vec![0u8, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32])
                .prop_map(move |l| l.min(bits)),
        ]
    }

    fn rules4() -> impl Strategy<Value = Vec<(u32, u8, u32)>> {
        // Addresses share a few /8s so that prefixes overlap.
        prop::collection::vec(
            (
                prop::sample::select(vec![10u32, 11, 192]),
                any::<u32>(),
                len_strategy(32),
                0..50u32,
            ),
            0..60,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(hi, lo, len, nh)| (((hi << 24) | (lo & 0x00ff_ffff)).masked(len), len, nh))
                .collect()
        })
    }

    proptest! {
        // Each case compiles 64 MB tables (slow in debug builds): fewer cases, each with
        // many routes and probes.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn ipv4_matches_linear_scan(
            routes in rules4(),
            removals in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            probes in prop::collection::vec(any::<u32>(), 64),
        ) {
            let mut r = Rules::<u32>::new();
            for &(a, l, n) in &routes {
                r.insert(a, l, n).unwrap();
            }
            for i in removals {
                if !routes.is_empty() {
                    let (a, l, _) = routes[i.index(routes.len())];
                    r.remove(a, l);
                }
            }
            let d24: Trie<u32, 24, 8> = r.compile();
            let d16: Trie<u32, 16, 8> = r.compile();
            // Probe random addresses, the routes' own edges and their neighbours.
            let mut addrs: Vec<u32> = probes.iter().map(|p| (p & 0x00ff_ffff) | 0x0a00_0000).collect();
            addrs.extend(probes.iter().copied());
            for &(a, l, _) in &routes {
                let last = a | (u32::MAX.checked_shr(l as u32).unwrap_or(0));
                addrs.extend([a, last, a.wrapping_sub(1), last.wrapping_add(1)]);
            }
            for a in addrs {
                let want = r.lookup_slow(a);
                prop_assert_eq!(d24.lookup(a), want, "DIR-24-8 {:#x}", a);
                prop_assert_eq!(d16.lookup(a), want, "DIR-16-8-8 {:#x}", a);
            }
        }

        #[test]
        fn ipv6_matches_linear_scan(
            routes in prop::collection::vec(
                (prop::sample::select(vec![0x2001_0db8u128, 0x2001_0db9, 0xfd00_0000]),
                 any::<u128>(), len_strategy(128).prop_flat_map(|l| prop_oneof![Just(l), 0..=128u8]), 0..50u32),
                0..60),
            probes in prop::collection::vec(any::<u128>(), 64),
        ) {
            let routes: Vec<(u128, u8, u32)> = routes
                .into_iter()
                .map(|(hi, lo, len, nh)| (((hi << 96) | (lo >> 32)).masked(len), len, nh))
                .collect();
            let mut r = Rules::<u128>::new();
            for &(a, l, n) in &routes {
                r.insert(a, l, n).unwrap();
            }
            if let Some(&(a, l, _)) = routes.first() {
                r.remove(a, l);
            }
            let t16: Trie<u128, 16, 8> = r.compile();
            let t24: Trie<u128, 24, 8> = r.compile();
            let mut addrs: Vec<u128> = probes.iter().map(|p| (0x2001_0db8u128 << 96) | (p >> 32)).collect();
            addrs.extend(probes.iter().copied());
            for &(a, l, _) in &routes {
                let last = a | u128::MAX.checked_shr(l as u32).unwrap_or(0);
                addrs.extend([a, last, a.wrapping_sub(1), last.wrapping_add(1)]);
            }
            for a in addrs {
                let want = r.lookup_slow(a);
                prop_assert_eq!(t16.lookup(a), want, "16-8 {:#x}", a);
                prop_assert_eq!(t24.lookup(a), want, "24-8 {:#x}", a);
            }
        }
    }
}
