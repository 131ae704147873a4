//! The forwarding information base: interfaces, routes, local addresses and neighbors,
//! compiled into an immutable [`Fib`] snapshot that workers read lock-free.
//!
//! The control thread owns a [`FibBuilder`], applies changes (config, kernel routes and
//! neighbors mirrored over rtnetlink), calls [`FibBuilder::build`] and publishes the result
//! whole (arc-swap). A build recompiles an address family's LPM table only when its
//! routes or addresses changed; neighbor changes only rebuild the (small) next-hop and
//! neighbor tables and share the LPM tables with the previous snapshot.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use dpdk::MacAddr;

use super::lpm::{Key, Lpm4, Lpm6, LpmError, Rules, Trie};
use super::neigh::{NeighKey, NeighTable};
use super::IfaceId;

/// An L3 interface as the fast path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// Its MAC: frames to it are accepted, frames it sends carry it as source.
    pub mac: MacAddr,
    /// The 802.1Q VLAN id frames carry on it; `None` for untagged.
    pub vlan: Option<u16>,
    /// IP MTU (largest IPv4 total length / IPv6 header + payload it sends).
    pub mtu: u16,
}

/// Where a route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// Egress interface.
    pub iface: IfaceId,
    /// The router to send to; `None` for a directly connected destination (the next hop
    /// is the destination itself).
    pub gateway: Option<IpAddr>,
}

/// Most next hops one route may have (ECMP).
pub const MAX_HOPS: usize = 16;

/// Most weight one next hop may have (the kernel's range: `rtnh_hops` + 1).
pub const MAX_WEIGHT: u16 = 256;

/// ECMP next hops (gateways) counted per egress interface: the first this many gateways
/// of ECMP routes on an interface get a packet counter ([`Fib::ecmp_counter`]).
pub const COUNTED_HOPS: usize = 32;

/// Buckets of an ECMP group's table: a flow's hash picks one, the bucket names the hop.
/// Each hop has at least one, the rest are shared by weight.
pub const BUCKETS: usize = 256;

/// One next hop of a route as [`FibBuilder::routes`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteHop {
    /// Where it sends.
    pub next_hop: NextHop,
    /// Its weight (share of flows relative to the route's other hops), 1..=256.
    pub weight: u16,
    /// Its interface can send (false: the fast path skips it while another hop is up).
    pub up: bool,
}

/// One route as [`FibBuilder::routes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// Prefix (network address).
    pub prefix: IpAddr,
    /// Prefix length.
    pub len: u8,
    /// Who installed it; `None` for the connected prefix of an interface address (there
    /// `prefix` is the address itself).
    pub origin: Option<Origin>,
    /// Where it sends packets: its first next hop.
    pub next_hop: NextHop,
    /// Every next hop (one for a plain route, up to [`MAX_HOPS`] for ECMP).
    pub hops: Vec<RouteHop>,
    /// The FIB uses this one for the prefix.
    pub active: bool,
}

/// Who installed a route. For the same prefix a static route wins over a kernel one, and
/// each origin is replaced or cleared on its own (a netlink resync clears `Kernel` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// Mirrored from the kernel routing table on the TAP side (rtnetlink).
    Kernel,
    /// From the configuration.
    Static,
}

/// The answer for a destination address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<A> {
    /// No route covers it.
    NoRoute,
    /// One of our own addresses (or an IPv4 subnet broadcast of ours).
    Local,
    /// Send it out of `iface` to `next_hop`, whose MAC is `mac` when known.
    Forward {
        /// Egress interface.
        iface: IfaceId,
        /// The gateway, or the destination itself on a connected subnet.
        next_hop: A,
        /// The neighbor's MAC; `None` when unresolved.
        mac: Option<MacAddr>,
    },
}

/// A refused FIB change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// The interface id was never added.
    #[error("interface {0} does not exist")]
    UnknownInterface(IfaceId),
    /// More interfaces than ids (u16::MAX is reserved).
    #[error("too many interfaces (at most {max})", max = u16::MAX)]
    TooManyInterfaces,
    /// IPv4 prefix with an IPv6 gateway or the other way round.
    #[error("the gateway's address family differs from the prefix's")]
    GatewayFamily,
    /// A route without next hops, or with more than [`MAX_HOPS`].
    #[error("a route has 1 to {MAX_HOPS} next hops, not {0}")]
    HopCount(usize),
    /// A next hop's weight outside 1..=[`MAX_WEIGHT`].
    #[error("a next hop's weight is 1 to {MAX_WEIGHT}, not {0}")]
    Weight(u16),
    /// Bad prefix.
    #[error(transparent)]
    Prefix(#[from] LpmError),
}

/// An LPM table type a [`Fib`] can use for one address family.
pub trait LpmTable<K: Key>: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// Compiles `rules`.
    fn compile(rules: &Rules<K>) -> Self;
    /// Next-hop id of the longest matching prefix.
    fn lookup(&self, addr: K) -> Option<u32>;
    /// Bytes of lookup tables.
    fn memory_bytes(&self) -> usize;
}

impl<K: Key, const F: u32, const S: u32> LpmTable<K> for Trie<K, F, S> {
    fn compile(rules: &Rules<K>) -> Self {
        rules.compile()
    }
    #[inline(always)]
    fn lookup(&self, addr: K) -> Option<u32> {
        Trie::lookup(self, addr)
    }
    fn memory_bytes(&self) -> usize {
        Trie::memory_bytes(self)
    }
}

/// An address family's key with what the FIB needs to know about it.
pub trait Family: Key + NeighKey {
    /// The std address type.
    type Addr: Copy + std::fmt::Debug;
    /// To the std type.
    fn to_addr(self) -> Self::Addr;
    /// To `IpAddr`.
    fn to_ip(self) -> IpAddr;
    /// From an `IpAddr` of this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// The subnet broadcast address that the kernel treats as local (IPv4, /30 and wider).
    fn subnet_broadcast(self, len: u8) -> Option<Self>;
    /// The host number within a subnet of `n` (a power of two) addresses.
    fn host(self, n: usize) -> usize;
}

impl Family for u32 {
    type Addr = Ipv4Addr;
    fn to_addr(self) -> Ipv4Addr {
        Ipv4Addr::from(self)
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self.to_addr())
    }
    fn from_ip(ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => Some(a.into()),
            IpAddr::V6(_) => None,
        }
    }
    fn subnet_broadcast(self, len: u8) -> Option<u32> {
        (len <= 30).then(|| self | (u32::MAX >> len))
    }
    #[inline(always)]
    fn host(self, n: usize) -> usize {
        self as usize & (n - 1)
    }
}

impl Family for u128 {
    type Addr = Ipv6Addr;
    fn to_addr(self) -> Ipv6Addr {
        Ipv6Addr::from(self)
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self.to_addr())
    }
    fn from_ip(ip: IpAddr) -> Option<u128> {
        match ip {
            IpAddr::V6(a) => Some(a.into()),
            IpAddr::V4(_) => None,
        }
    }
    fn subnet_broadcast(self, _len: u8) -> Option<u128> {
        None
    }
    #[inline(always)]
    fn host(self, n: usize) -> usize {
        self as usize & (n - 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HopKey<K> {
    Local,
    /// A directly connected destination; with the subnet (network, length) when it is an
    /// interface address's subnet small enough for a dense host table.
    Connected(IfaceId, Option<(K, u8)>),
    Gateway(IfaceId, K),
    /// An ECMP route's hops: index into the compiled group list.
    Group(u32),
}

/// An ECMP group as compiled: (hop id, weight, egress interface) per next hop.
type GroupKey = Vec<(u32, u16, IfaceId)>;

/// Connected subnets with at most this many host bits get a dense host table (the
/// neighbours' MACs by host number, 2^bits words): IPv4 /20 and longer, 32 KiB at most.
const DENSE_HOST_BITS: u32 = 12;

/// In [`Hop::Connected`]: no dense host table.
const NO_DENSE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
enum Hop<K> {
    Local,
    /// `dense`: index into [`Table::dense`], or [`NO_DENSE`].
    Connected {
        iface: IfaceId,
        dense: u32,
    },
    Gateway {
        iface: IfaceId,
        addr: K,
        mac: Option<MacAddr>,
    },
    /// An ECMP route: its buckets are `buckets[group * BUCKETS..][..BUCKETS]`.
    Group {
        group: u32,
    },
}

/// The bucket a flow hash picks. The bond's member choice uses the hash's low bits: the
/// hash is mixed again and its high bits taken, so the two choices do not go together.
#[inline(always)]
fn bucket(hash: u32) -> usize {
    (hash.wrapping_mul(0x9e37_79b1) >> 24) as usize
}

/// One address family of a snapshot.
#[derive(Debug, Clone)]
struct Table<K: Family, T> {
    lpm: Arc<T>,
    hops: Box<[Hop<K>]>,
    /// Per hop, for the fast path: a gateway whose MAC is known, packed as
    /// [`pack_adjacency`] does; [`NO_ADJACENCY`] for every other hop. Rebuilt with the
    /// hops whenever a neighbour changes.
    adjacency: Box<[u64]>,
    /// Dense host tables of small connected subnets: per host number, the neighbour as
    /// [`pack_adjacency`] packs it, or [`NO_ADJACENCY`]. Rebuilt with the hops.
    dense: Box<[Box<[u64]>]>,
    /// ECMP groups: [`BUCKETS`] hop ids each, hops whose interface is down left out
    /// (while one is up). Rebuilt with the hops.
    buckets: Box<[u32]>,
    neigh: NeighTable<K>,
}

/// In [`Table::adjacency`]: not a resolved gateway (interface ids stop below u16::MAX).
const NO_ADJACENCY: u64 = u64::MAX;

/// An egress interface and a next hop's MAC in one word.
fn pack_adjacency(iface: IfaceId, mac: MacAddr) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&mac.0);
    b[6..].copy_from_slice(&iface.0.to_le_bytes());
    u64::from_le_bytes(b)
}

#[inline(always)]
fn unpack_adjacency(a: u64) -> (IfaceId, MacAddr) {
    let b = a.to_le_bytes();
    (
        IfaceId(u16::from_le_bytes([b[6], b[7]])),
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]]),
    )
}

impl<K: Family, T: LpmTable<K>> Table<K, T> {
    /// The fast path's question: where a unicast destination goes when the answer is a
    /// known MAC (a resolved gateway: one load after the LPM; a connected destination: a
    /// neighbour probe). `None` for everything else (local, no route, unresolved).
    /// `hash`: the frame's flow hash, asked for only when the route is an ECMP group.
    #[inline(always)]
    fn adjacency(&self, dst: K, hash: impl FnOnce() -> u32) -> Option<(IfaceId, MacAddr)> {
        let h = self.lpm.lookup(dst)? as usize;
        let a = *self.adjacency.get(h)?;
        if a != NO_ADJACENCY {
            return Some(unpack_adjacency(a));
        }
        match self.hops.get(h) {
            Some(&Hop::Group { group }) => {
                let h = self.member(group, hash());
                let a = *self.adjacency.get(h)?;
                if a != NO_ADJACENCY {
                    return Some(unpack_adjacency(a));
                }
                self.connected_adjacency(h, dst)
            }
            _ => self.connected_adjacency(h, dst),
        }
    }

    /// The hop of `group` that a flow with this hash takes.
    #[inline(always)]
    fn member(&self, group: u32, hash: u32) -> usize {
        let at = group as usize * BUCKETS + bucket(hash);
        self.buckets.get(at).map_or(usize::MAX, |&h| h as usize)
    }

    #[inline(always)]
    fn connected_adjacency(&self, h: usize, dst: K) -> Option<(IfaceId, MacAddr)> {
        match self.hops.get(h) {
            Some(&Hop::Connected { iface, dense }) => match self.dense.get(dense as usize) {
                Some(hosts) => {
                    // The LPM matched this subnet's own hop, so dst is inside it and its
                    // host number is below the table's length.
                    let a = *hosts.get(dst.host(hosts.len()))?;
                    (a != NO_ADJACENCY).then(|| unpack_adjacency(a))
                }
                None => Some((iface, self.neigh.get(iface, dst)?)),
            },
            _ => None,
        }
    }

    /// `hash`: the frame's flow hash, asked for only when the route is an ECMP group.
    #[inline(always)]
    fn resolve(&self, dst: K, hash: impl FnOnce() -> u32) -> Lookup<K> {
        let Some(h) = self.lpm.lookup(dst) else {
            return Lookup::NoRoute;
        };
        let mut h = h as usize;
        if let Some(&Hop::Group { group }) = self.hops.get(h) {
            h = self.member(group, hash());
        }
        match self.hops.get(h) {
            Some(&Hop::Gateway { iface, addr, mac }) => Lookup::Forward {
                iface,
                next_hop: addr,
                mac,
            },
            Some(&Hop::Connected { iface, .. }) => Lookup::Forward {
                iface,
                next_hop: dst,
                mac: self.neigh.get(iface, dst),
            },
            Some(Hop::Local) => Lookup::Local,
            // Groups hold no groups.
            Some(Hop::Group { .. }) | None => Lookup::NoRoute,
        }
    }

    fn memory_bytes(&self) -> usize {
        self.lpm.memory_bytes()
            + std::mem::size_of_val(&*self.hops)
            + std::mem::size_of_val(&*self.adjacency)
            + self.dense.iter().map(|d| d.len() * 8).sum::<usize>()
            + std::mem::size_of_val(&*self.buckets)
            + self.neigh.memory_bytes()
    }
}

/// One interface's counted ECMP next hops: (MAC, counter).
type EcmpMacs = Box<[(MacAddr, u8)]>;

/// An immutable forwarding snapshot: interfaces, both LPM tables, next hops, neighbors.
#[derive(Debug, Clone)]
pub struct Fib {
    interfaces: Box<[Interface]>,
    v4: Table<u32, Lpm4>,
    v6: Table<u128, Lpm6>,
    /// Per interface: (MAC, counter) of the resolved gateways of ECMP routes on it; empty
    /// for most interfaces, so a forwarded frame costs one load and a length test.
    ecmp_macs: Box<[EcmpMacs]>,
    /// Per interface: what each ECMP counter counts (index = counter): its gateways, or
    /// none when its MAC is another counter's.
    ecmp_gateways: Box<[Box<[Vec<IpAddr>]>]>,
    version: u64,
}

impl Fib {
    /// The interface with this id.
    #[inline(always)]
    pub fn interface(&self, id: IfaceId) -> Option<&Interface> {
        self.interfaces.get(id.0 as usize)
    }

    /// All interfaces, indexed by id.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Where an IPv4 destination goes (for an ECMP route: the hop of flow hash 0).
    pub fn lookup_v4(&self, dst: Ipv4Addr) -> Lookup<Ipv4Addr> {
        self.lookup_v4_flow(dst, 0)
    }

    /// Where an IPv6 destination goes (for an ECMP route: the hop of flow hash 0).
    pub fn lookup_v6(&self, dst: Ipv6Addr) -> Lookup<Ipv6Addr> {
        self.lookup_v6_flow(dst, 0)
    }

    /// Where a flow with this hash ([`crate::bond::flow_hash`], layer3+4, of the frame as
    /// received) to an IPv4 destination goes.
    pub fn lookup_v4_flow(&self, dst: Ipv4Addr, hash: u32) -> Lookup<Ipv4Addr> {
        map_lookup(self.v4.resolve(dst.into(), || hash))
    }

    /// [`Fib::lookup_v4_flow`] for IPv6.
    pub fn lookup_v6_flow(&self, dst: Ipv6Addr, hash: u32) -> Lookup<Ipv6Addr> {
        map_lookup(self.v6.resolve(dst.into(), || hash))
    }

    /// See [`Table::adjacency`].
    #[inline(always)]
    pub(super) fn adjacency_v4(
        &self,
        dst: u32,
        hash: impl FnOnce() -> u32,
    ) -> Option<(IfaceId, MacAddr)> {
        self.v4.adjacency(dst, hash)
    }

    /// See [`Table::adjacency`].
    #[inline(always)]
    pub(super) fn adjacency_v6(
        &self,
        dst: u128,
        hash: impl FnOnce() -> u32,
    ) -> Option<(IfaceId, MacAddr)> {
        self.v6.adjacency(dst, hash)
    }

    #[inline(always)]
    pub(super) fn resolve_v4(&self, dst: u32, hash: impl FnOnce() -> u32) -> Lookup<u32> {
        self.v4.resolve(dst, hash)
    }

    #[inline(always)]
    pub(super) fn resolve_v6(&self, dst: u128, hash: impl FnOnce() -> u32) -> Lookup<u128> {
        self.v6.resolve(dst, hash)
    }

    /// The MAC of an IPv4 neighbor.
    pub fn neighbor_v4(&self, iface: IfaceId, addr: Ipv4Addr) -> Option<MacAddr> {
        self.v4.neigh.get(iface, addr.into())
    }

    /// The MAC of an IPv6 neighbor.
    pub fn neighbor_v6(&self, iface: IfaceId, addr: Ipv6Addr) -> Option<MacAddr> {
        self.v6.neigh.get(iface, addr.into())
    }

    /// The packet counter (`0..COUNTED_HOPS`) of ECMP next hop `mac` on `iface`, for a frame
    /// forwarded there; `None` when it is no counted ECMP hop. Two gateways with one MAC on
    /// an interface share the first one's counter.
    #[inline(always)]
    pub fn ecmp_counter(&self, iface: IfaceId, mac: MacAddr) -> Option<usize> {
        let hops = self.ecmp_macs.get(iface.0 as usize)?;
        if hops.is_empty() {
            return None;
        }
        hops.iter().find(|h| h.0 == mac).map(|h| h.1 as usize)
    }

    /// The gateways [`Fib::ecmp_counter`] counts on `iface`, by counter: a router's
    /// gateways that share one MAC (its IPv4 and IPv6 address) share the first one's
    /// counter, whose entry names them all; the others' entries are empty.
    pub fn ecmp_gateways(&self, iface: IfaceId) -> &[Vec<IpAddr>] {
        self.ecmp_gateways
            .get(iface.0 as usize)
            .map_or(&[], |g| &g[..])
    }

    /// Build counter of the builder that made it (1 for the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Bytes of lookup tables (shared LPM tables counted in full).
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }

    /// True when both snapshots share the same IPv4 and IPv6 LPM tables (nothing but
    /// neighbors or interfaces changed between them).
    pub fn shares_lpm_with(&self, other: &Fib) -> bool {
        Arc::ptr_eq(&self.v4.lpm, &other.v4.lpm) && Arc::ptr_eq(&self.v6.lpm, &other.v6.lpm)
    }
}

fn map_lookup<K: Family>(l: Lookup<K>) -> Lookup<K::Addr> {
    match l {
        Lookup::NoRoute => Lookup::NoRoute,
        Lookup::Local => Lookup::Local,
        Lookup::Forward {
            iface,
            next_hop,
            mac,
        } => Lookup::Forward {
            iface,
            next_hop: next_hop.to_addr(),
            mac,
        },
    }
}

/// A route's next hop inside a family: egress interface, gateway and weight.
type Via<K> = (IfaceId, Option<K>, u16);

/// One prefix's routes: next hops per origin.
type ByOrigin<K> = BTreeMap<Origin, Vec<Via<K>>>;

type Compiled<K, T> = (Arc<T>, Vec<HopKey<K>>, Arc<Vec<GroupKey>>);

#[derive(Debug, Clone)]
struct FamilyBuilder<K: Family, T> {
    /// Prefix -> next hops (sorted, one for a plain route) per origin (the highest origin
    /// wins).
    routes: BTreeMap<(K, u8), ByOrigin<K>>,
    /// Interface addresses: (iface, address) -> prefix length.
    addresses: BTreeMap<(IfaceId, K), u8>,
    /// Local addresses added on their own.
    locals: BTreeMap<K, IfaceId>,
    neighbors: HashMap<(IfaceId, K), MacAddr>,
    /// The last compiled table, its hop list and its ECMP groups; `None` after a
    /// route/address change.
    compiled: Option<Compiled<K, T>>,
}

impl<K: Family, T> Default for FamilyBuilder<K, T> {
    fn default() -> Self {
        FamilyBuilder {
            routes: BTreeMap::new(),
            addresses: BTreeMap::new(),
            locals: BTreeMap::new(),
            neighbors: HashMap::new(),
            compiled: None,
        }
    }
}

impl<K: Family + std::hash::Hash, T: LpmTable<K>> FamilyBuilder<K, T> {
    fn compile(&self) -> Compiled<K, T> {
        let mut ids: HashMap<HopKey<K>, u32> = HashMap::new();
        let mut hops = Vec::new();
        let mut intern = |k: HopKey<K>| {
            *ids.entry(k).or_insert_with(|| {
                hops.push(k);
                hops.len() as u32 - 1
            })
        };
        let mut groups: Vec<GroupKey> = Vec::new();
        let mut group_ids: HashMap<GroupKey, u32> = HashMap::new();
        let mut rules = Rules::new();
        let single = |(iface, gateway, _): Via<K>| match gateway {
            Some(g) => HopKey::Gateway(iface, g),
            None => HopKey::Connected(iface, None),
        };
        // Later inserts replace earlier ones for the same prefix: routes, then connected
        // subnets, then local addresses (the kernel's local table is consulted first).
        for (&(prefix, len), by_origin) in &self.routes {
            if let Some((_, vias)) = by_origin.iter().next_back() {
                let hop = match vias.as_slice() {
                    &[via] => intern(single(via)),
                    vias => {
                        let key: GroupKey = vias
                            .iter()
                            .map(|&v| (intern(single(v)), v.2, v.0))
                            .collect();
                        let g = *group_ids.entry(key.clone()).or_insert_with(|| {
                            groups.push(key);
                            groups.len() as u32 - 1
                        });
                        intern(HopKey::Group(g))
                    }
                };
                // Validated on insert.
                let _ = rules.insert(prefix, len, hop);
            }
        }
        for (&(iface, addr), &len) in &self.addresses {
            let net = addr.masked(len);
            let dense = (K::BITS - len as u32 <= DENSE_HOST_BITS).then_some((net, len));
            let _ = rules.insert(net, len, intern(HopKey::Connected(iface, dense)));
        }
        let bits = K::BITS as u8;
        for (&(_, addr), &len) in &self.addresses {
            let _ = rules.insert(addr, bits, intern(HopKey::Local));
            if let Some(b) = addr.masked(len).subnet_broadcast(len) {
                let _ = rules.insert(b, bits, intern(HopKey::Local));
            }
        }
        for &addr in self.locals.keys() {
            let _ = rules.insert(addr, bits, intern(HopKey::Local));
        }
        (Arc::new(T::compile(&rules)), hops, Arc::new(groups))
    }

    /// `down`: per interface id, true when it cannot send. `counted`: per interface, the
    /// gateways of ECMP routes with a counter; `ecmp_macs` gets (MAC, counter) of those
    /// resolved.
    fn build(
        &mut self,
        down: &[bool],
        counted: &[Vec<IpAddr>],
        ecmp_macs: &mut [Vec<(MacAddr, u8)>],
        labels: &mut [Vec<Vec<IpAddr>>],
    ) -> Table<K, T> {
        let (lpm, keys, groups) = match &self.compiled {
            Some(c) => c.clone(),
            None => {
                let c = self.compile();
                self.compiled = Some(c.clone());
                c
            }
        };
        let neigh = NeighTable::new(self.neighbors.iter().map(|(&(i, a), &m)| (i, a, m)));
        let mut dense: Vec<Box<[u64]>> = Vec::new();
        let hops: Box<[Hop<K>]> = keys
            .iter()
            .map(|&k| match k {
                HopKey::Local => Hop::Local,
                HopKey::Connected(iface, None) => Hop::Connected {
                    iface,
                    dense: NO_DENSE,
                },
                HopKey::Connected(iface, Some((net, len))) => {
                    let n = 1usize << (K::BITS - len as u32);
                    let mut hosts = vec![NO_ADJACENCY; n].into_boxed_slice();
                    for (&(i, addr), &mac) in &self.neighbors {
                        if i == iface && addr.masked(len) == net {
                            hosts[addr.host(n)] = pack_adjacency(iface, mac);
                        }
                    }
                    dense.push(hosts);
                    Hop::Connected {
                        iface,
                        dense: dense.len() as u32 - 1,
                    }
                }
                HopKey::Gateway(iface, addr) => Hop::Gateway {
                    iface,
                    addr,
                    mac: neigh.get(iface, addr),
                },
                HopKey::Group(group) => Hop::Group { group },
            })
            .collect();
        let mut buckets = Vec::with_capacity(groups.len() * BUCKETS);
        for g in groups.iter() {
            fill_buckets(g, down, &mut buckets);
            for &(h, _, iface) in g {
                let Some(&Hop::Gateway {
                    addr,
                    mac: Some(mac),
                    ..
                }) = hops.get(h as usize)
                else {
                    continue;
                };
                let i = iface.0 as usize;
                let slot = counted
                    .get(i)
                    .and_then(|c| c.iter().position(|&g| g == addr.to_ip()));
                if let (Some(slot), Some(out), Some(l)) =
                    (slot, ecmp_macs.get_mut(i), labels.get_mut(i))
                {
                    let owner = match out.iter().find(|e| e.0 == mac) {
                        Some(e) => e.1 as usize,
                        None => {
                            out.push((mac, slot as u8));
                            slot
                        }
                    };
                    if let Some(names) = l.get_mut(owner) {
                        if !names.contains(&addr.to_ip()) {
                            names.push(addr.to_ip());
                        }
                    }
                }
            }
        }
        let adjacency = hops
            .iter()
            .map(|h| match *h {
                Hop::Gateway {
                    iface,
                    mac: Some(mac),
                    ..
                } => pack_adjacency(iface, mac),
                _ => NO_ADJACENCY,
            })
            .collect();
        Table {
            lpm,
            hops,
            adjacency,
            dense: dense.into_boxed_slice(),
            buckets: buckets.into_boxed_slice(),
            neigh,
        }
    }
}

/// Shares `n` buckets among `weights` in proportion, each at least one (`n` is at least
/// the number of weights): largest remainder first, ties to the earlier entry.
fn shares(weights: &[u16], n: usize) -> Vec<usize> {
    let total: usize = weights.iter().map(|&w| w as usize).sum::<usize>().max(1);
    let spare = n - weights.len();
    let mut out: Vec<usize> = weights
        .iter()
        .map(|&w| 1 + w as usize * spare / total)
        .collect();
    let mut left = n - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weights[i] as usize * spare % total));
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Appends `group`'s [`BUCKETS`] hop ids to `out`. The buckets are shared among all its
/// hops by weight; then, while at least one hop's interface is up, the buckets of hops
/// whose interface is down are shared again among the live hops by weight. Flows on live
/// hops keep their hop when another goes down or comes back.
fn fill_buckets(group: &GroupKey, down: &[bool], out: &mut Vec<u32>) {
    let start = out.len();
    let weights: Vec<u16> = group.iter().map(|&(_, w, _)| w).collect();
    for (&(hop, _, _), n) in group.iter().zip(shares(&weights, BUCKETS)) {
        out.extend(std::iter::repeat_n(hop, n));
    }
    let is_down = |iface: IfaceId| down.get(iface.0 as usize).copied().unwrap_or(false);
    let live: Vec<&(u32, u16, IfaceId)> = group.iter().filter(|h| !is_down(h.2)).collect();
    if live.is_empty() || live.len() == group.len() {
        return;
    }
    let dead: Vec<u32> = group.iter().filter(|h| is_down(h.2)).map(|h| h.0).collect();
    let moved: Vec<usize> = (start..out.len())
        .filter(|&i| dead.contains(&out[i]))
        .collect();
    if moved.len() < live.len() {
        // Fewer buckets to move than live hops: one each, in order.
        for (&i, h) in moved.iter().zip(live.iter()) {
            out[i] = h.0;
        }
        return;
    }
    let weights: Vec<u16> = live.iter().map(|h| h.1).collect();
    let mut slots = moved.into_iter();
    for (h, n) in live.iter().zip(shares(&weights, slots.len())) {
        for i in slots.by_ref().take(n) {
            out[i] = h.0;
        }
    }
}

/// The control plane's editable FIB. Not for workers: they get [`Fib`] snapshots.
#[derive(Debug, Default)]
pub struct FibBuilder {
    interfaces: Vec<Interface>,
    /// Per interface: it cannot send (port link down, bond without a distributing
    /// member). ECMP groups skip its hops; plain routes keep using it.
    down: Vec<bool>,
    /// Per interface: the gateways of ECMP routes that have a packet counter (index =
    /// counter; kept once given, at most [`COUNTED_HOPS`]).
    counted: Vec<Vec<IpAddr>>,
    v4: FamilyBuilder<u32, Lpm4>,
    v6: FamilyBuilder<u128, Lpm6>,
    version: u64,
}

fn check_len(len: u8, bits: u32) -> Result<(), FibError> {
    if len as u32 > bits {
        return Err(LpmError::PrefixLength { len, bits }.into());
    }
    Ok(())
}

impl FibBuilder {
    /// No interfaces, no routes.
    pub fn new() -> FibBuilder {
        FibBuilder::default()
    }

    /// Adds an interface; ids are handed out in order from 0.
    pub fn add_interface(&mut self, iface: Interface) -> Result<IfaceId, FibError> {
        let id = u16::try_from(self.interfaces.len())
            .ok()
            .filter(|&i| i != u16::MAX)
            .ok_or(FibError::TooManyInterfaces)?;
        self.interfaces.push(iface);
        self.down.push(false);
        self.counted.push(Vec::new());
        Ok(IfaceId(id))
    }

    /// Whether interface `id` can send (true when added). ECMP routes skip the hops of an
    /// interface that cannot, as long as one of their hops can; the next [`build`] has it
    /// (LPM tables are not recompiled). Returns whether it changed.
    ///
    /// [`build`]: FibBuilder::build
    pub fn set_interface_up(&mut self, id: IfaceId, up: bool) -> Result<bool, FibError> {
        let d = self
            .down
            .get_mut(id.0 as usize)
            .ok_or(FibError::UnknownInterface(id))?;
        let changed = *d == up;
        *d = !up;
        Ok(changed)
    }

    /// Whether interface `id` can send, as last set with [`FibBuilder::set_interface_up`].
    pub fn interface_up(&self, id: IfaceId) -> bool {
        !self.down.get(id.0 as usize).copied().unwrap_or(false)
    }

    /// Changes an interface's MAC, VLAN or MTU.
    pub fn set_interface(&mut self, id: IfaceId, iface: Interface) -> Result<(), FibError> {
        *self
            .interfaces
            .get_mut(id.0 as usize)
            .ok_or(FibError::UnknownInterface(id))? = iface;
        Ok(())
    }

    /// The interface with this id.
    pub fn interface(&self, id: IfaceId) -> Option<&Interface> {
        self.interfaces.get(id.0 as usize)
    }

    fn check_iface(&self, id: IfaceId) -> Result<(), FibError> {
        if (id.0 as usize) < self.interfaces.len() {
            Ok(())
        } else {
            Err(FibError::UnknownInterface(id))
        }
    }

    /// Adds `addr/len` on `iface`: the connected route `addr/len` via `iface` and the local
    /// address `addr` (for IPv4 /30 and wider also the subnet broadcast, as local).
    pub fn add_interface_address(
        &mut self,
        iface: IfaceId,
        addr: IpAddr,
        len: u8,
    ) -> Result<(), FibError> {
        self.check_iface(iface)?;
        match addr {
            IpAddr::V4(a) => {
                check_len(len, 32)?;
                self.v4.addresses.insert((iface, a.into()), len);
                self.v4.compiled = None;
            }
            IpAddr::V6(a) => {
                check_len(len, 128)?;
                self.v6.addresses.insert((iface, a.into()), len);
                self.v6.compiled = None;
            }
        }
        Ok(())
    }

    /// Removes an interface address (and its connected route); false if absent.
    pub fn remove_interface_address(&mut self, iface: IfaceId, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                let r = self.v4.addresses.remove(&(iface, a.into())).is_some();
                if r {
                    self.v4.compiled = None;
                }
                r
            }
            IpAddr::V6(a) => {
                let r = self.v6.addresses.remove(&(iface, a.into())).is_some();
                if r {
                    self.v6.compiled = None;
                }
                r
            }
        }
    }

    /// Adds a local address without a connected route (e.g. a loopback/service address).
    pub fn add_local(&mut self, addr: IpAddr, iface: IfaceId) -> Result<(), FibError> {
        self.check_iface(iface)?;
        match addr {
            IpAddr::V4(a) => {
                self.v4.locals.insert(a.into(), iface);
                self.v4.compiled = None;
            }
            IpAddr::V6(a) => {
                self.v6.locals.insert(a.into(), iface);
                self.v6.compiled = None;
            }
        }
        Ok(())
    }

    /// Removes a local address added with [`FibBuilder::add_local`].
    pub fn remove_local(&mut self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => {
                let r = self.v4.locals.remove(&a.into()).is_some();
                if r {
                    self.v4.compiled = None;
                }
                r
            }
            IpAddr::V6(a) => {
                let r = self.v6.locals.remove(&a.into()).is_some();
                if r {
                    self.v6.compiled = None;
                }
                r
            }
        }
    }

    /// Adds or replaces the `origin` route for `prefix/len`; returns the (first) next hop
    /// it replaced. Host bits after `len` are an error (write the network address).
    pub fn add_route(
        &mut self,
        prefix: IpAddr,
        len: u8,
        next_hop: NextHop,
        origin: Origin,
    ) -> Result<Option<NextHop>, FibError> {
        self.add_multipath_route(prefix, len, &[(next_hop, 1)], origin)
    }

    /// Adds or replaces the `origin` route for `prefix/len` with up to [`MAX_HOPS`] next
    /// hops and their weights (1..=[`MAX_WEIGHT`]): an ECMP route when there are several,
    /// where each flow (by its hash) takes one hop, in proportion to the weights. The same
    /// hop twice counts once, with the weights added. Returns the (first) next hop it
    /// replaced.
    pub fn add_multipath_route(
        &mut self,
        prefix: IpAddr,
        len: u8,
        hops: &[(NextHop, u16)],
        origin: Origin,
    ) -> Result<Option<NextHop>, FibError> {
        if hops.is_empty() || hops.len() > MAX_HOPS {
            return Err(FibError::HopCount(hops.len()));
        }
        for &(h, w) in hops {
            self.check_iface(h.iface)?;
            if w == 0 || w > MAX_WEIGHT {
                return Err(FibError::Weight(w));
            }
        }
        let old = match prefix {
            IpAddr::V4(p) => add_route(&mut self.v4, p.into(), len, hops, origin),
            IpAddr::V6(p) => add_route(&mut self.v6, p.into(), len, hops, origin),
        }?;
        if hops.len() > 1 {
            for &(h, _) in hops {
                let (Some(gw), Some(c)) = (h.gateway, self.counted.get_mut(h.iface.0 as usize))
                else {
                    continue;
                };
                if !c.contains(&gw) && c.len() < COUNTED_HOPS {
                    c.push(gw);
                }
            }
        }
        Ok(old)
    }

    /// Removes the `origin` route for `prefix/len`; returns its (first) next hop if it
    /// existed.
    pub fn remove_route(&mut self, prefix: IpAddr, len: u8, origin: Origin) -> Option<NextHop> {
        match prefix {
            IpAddr::V4(p) => remove_route(&mut self.v4, p.into(), len, origin),
            IpAddr::V6(p) => remove_route(&mut self.v6, p.into(), len, origin),
        }
    }

    /// Removes every route of `origin` (e.g. before a full netlink resync).
    pub fn clear_routes(&mut self, origin: Origin) {
        fn clear<K: Family, T>(f: &mut FamilyBuilder<K, T>, origin: Origin) {
            let mut changed = false;
            f.routes.retain(|_, by| {
                changed |= by.remove(&origin).is_some();
                !by.is_empty()
            });
            if changed {
                f.compiled = None;
            }
        }
        clear(&mut self.v4, origin);
        clear(&mut self.v6, origin);
    }

    /// Every route for display (`fastlag ctl show routes`): connected prefixes of the
    /// interface addresses, then each prefix's routes by origin; `active` marks the one the
    /// FIB uses (a static route wins over a kernel one for the same prefix).
    pub fn routes(&self) -> Vec<RouteEntry> {
        fn list<K: Family, T>(f: &FamilyBuilder<K, T>, b: &FibBuilder, out: &mut Vec<RouteEntry>) {
            for (&(iface, addr), &len) in &f.addresses {
                let next_hop = NextHop {
                    iface,
                    gateway: None,
                };
                out.push(RouteEntry {
                    prefix: addr.to_ip(),
                    len,
                    origin: None,
                    next_hop,
                    hops: vec![RouteHop {
                        next_hop,
                        weight: 1,
                        up: b.interface_up(iface),
                    }],
                    active: true,
                });
            }
            for (&(prefix, len), by) in &f.routes {
                let best = by.keys().next_back().copied();
                for (&origin, vias) in by {
                    let hops: Vec<RouteHop> = vias
                        .iter()
                        .map(|&(iface, gw, weight)| RouteHop {
                            next_hop: NextHop {
                                iface,
                                gateway: gw.map(Family::to_ip),
                            },
                            weight,
                            up: b.interface_up(iface),
                        })
                        .collect();
                    out.push(RouteEntry {
                        prefix: prefix.to_ip(),
                        len,
                        origin: Some(origin),
                        next_hop: hops[0].next_hop,
                        hops,
                        active: Some(origin) == best,
                    });
                }
            }
        }
        let mut out = Vec::new();
        list(&self.v4, self, &mut out);
        list(&self.v6, self, &mut out);
        out
    }

    /// Number of IPv4 and IPv6 prefixes with at least one route.
    pub fn route_count(&self) -> (usize, usize) {
        (self.v4.routes.len(), self.v6.routes.len())
    }

    /// Sets the MAC of neighbor `addr` on `iface` (a resolved ARP/ND entry).
    pub fn add_neighbor(
        &mut self,
        iface: IfaceId,
        addr: IpAddr,
        mac: MacAddr,
    ) -> Result<(), FibError> {
        self.check_iface(iface)?;
        match addr {
            IpAddr::V4(a) => self.v4.neighbors.insert((iface, a.into()), mac),
            IpAddr::V6(a) => self.v6.neighbors.insert((iface, a.into()), mac),
        };
        Ok(())
    }

    /// Forgets a neighbor; false if absent.
    pub fn remove_neighbor(&mut self, iface: IfaceId, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.neighbors.remove(&(iface, a.into())).is_some(),
            IpAddr::V6(a) => self.v6.neighbors.remove(&(iface, a.into())).is_some(),
        }
    }

    /// Forgets every neighbor (of one interface, or all).
    pub fn clear_neighbors(&mut self, iface: Option<IfaceId>) {
        let keep = |i: &IfaceId| iface.is_some_and(|x| x != *i);
        self.v4.neighbors.retain(|(i, _), _| keep(i));
        self.v6.neighbors.retain(|(i, _), _| keep(i));
    }

    /// Compiles a snapshot. LPM tables are recompiled only for a family whose routes or
    /// addresses changed since the last build; otherwise the new snapshot shares them.
    pub fn build(&mut self) -> Fib {
        self.version += 1;
        let mut ecmp_macs = vec![Vec::new(); self.interfaces.len()];
        let mut labels: Vec<Vec<Vec<IpAddr>>> = self
            .counted
            .iter()
            .map(|c| vec![Vec::new(); c.len()])
            .collect();
        let v4 = self
            .v4
            .build(&self.down, &self.counted, &mut ecmp_macs, &mut labels);
        let v6 = self
            .v6
            .build(&self.down, &self.counted, &mut ecmp_macs, &mut labels);
        Fib {
            interfaces: self.interfaces.clone().into_boxed_slice(),
            v4,
            v6,
            ecmp_macs: ecmp_macs.into_iter().map(Vec::into_boxed_slice).collect(),
            ecmp_gateways: labels.into_iter().map(Vec::into_boxed_slice).collect(),
            version: self.version,
        }
    }
}

fn add_route<K: Family + std::hash::Hash, T>(
    f: &mut FamilyBuilder<K, T>,
    prefix: K,
    len: u8,
    hops: &[(NextHop, u16)],
    origin: Origin,
) -> Result<Option<NextHop>, FibError> {
    check_len(len, K::BITS)?;
    if prefix.masked(len) != prefix {
        return Err(LpmError::HostBits.into());
    }
    let mut vias: Vec<Via<K>> = Vec::with_capacity(hops.len());
    for &(nh, w) in hops {
        let gateway = match nh.gateway {
            None => None,
            Some(g) => Some(K::from_ip(g).ok_or(FibError::GatewayFamily)?),
        };
        match vias.iter_mut().find(|v| (v.0, v.1) == (nh.iface, gateway)) {
            Some(v) => v.2 = (v.2 + w).min(MAX_WEIGHT),
            None => vias.push((nh.iface, gateway, w)),
        }
    }
    // In a canonical order, so the same set of hops compiles the same and compares equal.
    vias.sort();
    if let [v] = vias.as_mut_slice() {
        // One hop: its weight means nothing.
        v.2 = 1;
    }
    let old = f
        .routes
        .entry((prefix, len))
        .or_default()
        .insert(origin, vias.clone());
    if old.as_ref() != Some(&vias) {
        f.compiled = None;
    }
    Ok(old.map(|v| NextHop {
        iface: v[0].0,
        gateway: v[0].1.map(Family::to_ip),
    }))
}

fn remove_route<K: Family, T>(
    f: &mut FamilyBuilder<K, T>,
    prefix: K,
    len: u8,
    origin: Origin,
) -> Option<NextHop> {
    let key = (prefix.masked(len), len);
    let by = f.routes.get_mut(&key)?;
    let vias = by.remove(&origin)?;
    if by.is_empty() {
        f.routes.remove(&key);
    }
    f.compiled = None;
    Some(NextHop {
        iface: vias[0].0,
        gateway: vias[0].1.map(Family::to_ip),
    })
}

#[cfg(test)]
mod tests;
