//! From the kernel's routes and neighbors to what the fast path needs: [`mirror`] (pure) and
//! [`KernelTables`] (the current set, kept up to date from events).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::{nh_flags, KernelEvent, KernelNeighbor, KernelRoute, RouteKind};

/// A TAP fastlag owns: the kernel's interface index and fastlag's interface id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tap {
    /// The TAP's kernel interface index.
    pub ifindex: u32,
    /// fastlag's L3 interface behind it.
    pub iface: u16,
}

/// Most next hops of a mirrored ECMP route (the FIB's limit); further hops are left out.
pub const MAX_MIRRORED_HOPS: usize = 16;

/// One next hop of a mirrored ECMP route ([`RouteTarget::Multipath`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MirroredHop {
    /// fastlag interface id.
    pub iface: u16,
    /// Next hop, `None` for on-link destinations.
    pub gateway: Option<IpAddr>,
    /// Its weight (`rtnh_hops + 1`, or the nexthop group's weight).
    pub weight: u16,
}

/// What the fast path does with packets matching a mirrored route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Out of fastlag interface `iface`, to `gateway`'s MAC, or to the destination's own MAC
    /// when `gateway` is `None` (a connected route). The gateway may be IPv6 link-local
    /// (`fe80::/10`, resolved on `iface`) and, for an IPv4 route, IPv6 (`RTA_VIA`).
    Forward {
        /// fastlag interface id.
        iface: u16,
        /// Next hop, `None` for on-link destinations.
        gateway: Option<IpAddr>,
    },
    /// ECMP: each flow out of one of these hops (2 to [`MAX_MIRRORED_HOPS`], all on TAPs),
    /// in proportion to the weights.
    Multipath(Vec<MirroredHop>),
    /// Drop silently (a `blackhole` route: null routing, aggregates).
    Drop,
    /// Hand to the kernel through the ingress interface's TAP: `unreachable`/`prohibit` routes
    /// (the kernel answers the ICMP error) and routes whose next hop is not on a TAP (the
    /// kernel forwards them itself). Keeping these entries keeps the fast path's
    /// longest-prefix match the same as the kernel's.
    Punt,
}

/// One fast-path route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MirroredRoute {
    /// Destination prefix.
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// What to do.
    pub target: RouteTarget,
}

/// One fast-path neighbor: the MAC of `ip` on fastlag interface `iface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MirroredNeighbor {
    /// fastlag interface id.
    pub iface: u16,
    /// Protocol address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: [u8; 6],
}

/// The fast path's view of the kernel's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// One entry per prefix, sorted (IPv4 first, then by address and length).
    pub routes: Vec<MirroredRoute>,
    /// Usable neighbors on the TAPs, sorted by interface and address.
    pub neighbors: Vec<MirroredNeighbor>,
}

fn iface_of(taps: &[Tap], ifindex: Option<u32>) -> Option<u16> {
    let ifindex = ifindex?;
    taps.iter().find(|t| t.ifindex == ifindex).map(|t| t.iface)
}

/// Destinations a router never forwards to: multicast, and IPv6 link-local.
fn is_unroutable(dst: &IpAddr, prefix_len: u8) -> bool {
    match dst {
        IpAddr::V4(a) => prefix_len >= 4 && a.is_multicast(),
        IpAddr::V6(a) => {
            (prefix_len >= 8 && a.is_multicast())
                || (prefix_len >= 10 && (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The target of one kernel route, or `None` when the fast path should not have it.
fn target(route: &KernelRoute, taps: &[Tap]) -> Option<RouteTarget> {
    if route.src_prefix_len != 0 || route.tos != 0 || is_unroutable(&route.dst, route.prefix_len) {
        return None; // source-specific and TOS routes: not expressible in the fast path
    }
    match route.kind {
        RouteKind::Unicast => {}
        RouteKind::Blackhole => return Some(RouteTarget::Drop),
        RouteKind::Unreachable | RouteKind::Prohibit => return Some(RouteTarget::Punt),
        _ => return None, // local, broadcast, multicast, anycast, throw, ...
    }
    let mut alive = route.nexthops.iter().filter(|h| h.is_alive()).peekable();
    alive.peek()?; // all hops dead (or a nexthop object without compat mode): kernel skips it
                   // The alive hops on TAPs, with carrier first.
    let (mut up, mut linkdown): (Vec<MirroredHop>, Vec<MirroredHop>) = (Vec::new(), Vec::new());
    for h in alive {
        if let Some(iface) = iface_of(taps, h.oif) {
            let hop = MirroredHop {
                iface,
                gateway: h.gateway,
                weight: h.weight.max(1),
            };
            if h.flags & nh_flags::LINKDOWN == 0 {
                up.push(hop);
            } else {
                linkdown.push(hop);
            }
        }
    }
    // ECMP over the hops with carrier (the kernel skips the others, and so does the fast
    // path for an interface that cannot send); without any, over those without.
    let mut hops = if up.is_empty() { linkdown } else { up };
    hops.truncate(MAX_MIRRORED_HOPS);
    Some(match hops.as_slice() {
        // No alive hop on a TAP: the kernel forwards through another interface.
        [] => RouteTarget::Punt,
        [h] => RouteTarget::Forward {
            iface: h.iface,
            gateway: h.gateway,
        },
        _ => RouteTarget::Multipath(hops),
    })
}

fn usable_mac(n: &KernelNeighbor) -> Option<[u8; 6]> {
    let mac = n.mac?;
    let bad_ip = match n.ip {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_multicast() || a.is_unspecified(),
    };
    (n.state.is_usable() && mac != [0; 6] && mac[0] & 1 == 0 && !bad_ip).then_some(mac)
}

/// Turns kernel routes and neighbors into the fast path's, restricted to fastlag's TAPs.
///
/// Routes (all of them from one table, as [`super::Kernel::routes`] gives them):
/// * unicast routes through a TAP become [`RouteTarget::Forward`], connected routes of the TAP
///   included (they duplicate the interface's configured subnets, harmlessly);
/// * ECMP routes (`RTA_MULTIPATH`) become [`RouteTarget::Multipath`] over their alive (not
///   `RTNH_F_DEAD`) hops on TAPs with carrier (or, with none, those without), with their
///   weights, at most [`MAX_MIRRORED_HOPS`]; one such hop left: [`RouteTarget::Forward`]; hops
///   off the TAPs are left out (the kernel's share through them is the fast path's too);
/// * unicast routes whose alive hops are all off the TAPs, and unreachable/prohibit routes,
///   become [`RouteTarget::Punt`]; blackhole routes become [`RouteTarget::Drop`];
/// * skipped: local/broadcast/multicast/anycast/throw kinds, routes with every hop dead,
///   multicast and IPv6 link-local destinations, source-specific (`from`) and TOS routes;
/// * several routes for one prefix (different metrics): the lowest metric wins, then the
///   first given.
///
/// Neighbors: those on a TAP in a usable state (reachable, stale, delay, probe, permanent,
/// noarp) with a unicast MAC, for unicast addresses.
pub fn mirror<'a>(
    routes: impl IntoIterator<Item = &'a KernelRoute>,
    neighbors: impl IntoIterator<Item = &'a KernelNeighbor>,
    taps: &[Tap],
) -> Mirrored {
    let mut all: Vec<(u32, MirroredRoute)> = routes
        .into_iter()
        .filter_map(|r| {
            let target = target(r, taps)?;
            let m = MirroredRoute {
                dst: r.dst,
                prefix_len: r.prefix_len,
                target,
            };
            Some((r.priority.unwrap_or(0), m))
        })
        .collect();
    // Stable: among equal metrics the first given stays first, and dedup keeps it.
    all.sort_by(|(ma, a), (mb, b)| {
        (a.dst.is_ipv6(), a.dst, a.prefix_len, ma).cmp(&(b.dst.is_ipv6(), b.dst, b.prefix_len, mb))
    });
    all.dedup_by(|(_, b), (_, a)| (a.dst, a.prefix_len) == (b.dst, b.prefix_len));
    let routes = all.into_iter().map(|(_, r)| r).collect();
    let mut neighbors: Vec<MirroredNeighbor> = neighbors
        .into_iter()
        .filter_map(|n| {
            Some(MirroredNeighbor {
                iface: iface_of(taps, Some(n.ifindex))?,
                ip: n.ip,
                mac: usable_mac(n)?,
            })
        })
        .collect();
    neighbors.sort();
    neighbors.dedup_by(|a, b| (a.iface, a.ip) == (b.iface, b.ip));
    Mirrored { routes, neighbors }
}

/// What [`KernelTables::apply`] made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing the fast path sees changed.
    Unchanged,
    /// The mirror changed: rebuild (coalesced) and publish.
    Changed,
    /// The tables can no longer be trusted: dump routes and neighbors again and
    /// [`KernelTables::reset`]. On an overrun; when a link that routes use goes admin-down,
    /// changes carrier or is deleted; when an IPv4 address is removed from a link that IPv4
    /// routes use; and on a route change this model does not follow exactly (a second route
    /// for a key: `ip route append`, an IPv6 hop joining or leaving a multipath route).
    Resync,
}

/// The kernel's routes and neighbors as of the last dump plus the events since.
///
/// Routes are keyed like the kernel keys them (family, destination, prefix lengths, TOS,
/// metric, table); a key may hold several routes (IPv6 routes of one prefix on several links,
/// IPv4 `ip route append`), in the kernel's order.
#[derive(Debug, Clone, Default)]
pub struct KernelTables {
    routes: BTreeMap<RouteKey, Vec<KernelRoute>>,
    neighbors: BTreeMap<(u32, IpAddr), KernelNeighbor>,
    /// (admin up, carrier) of the links seen in events.
    links: HashMap<u32, (bool, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct RouteKey {
    v6: bool,
    dst: IpAddr,
    prefix_len: u8,
    src_prefix_len: u8,
    tos: u8,
    priority: u32,
    table: u32,
}

impl RouteKey {
    fn of(r: &KernelRoute) -> RouteKey {
        RouteKey {
            v6: r.dst.is_ipv6(),
            dst: r.dst,
            prefix_len: r.prefix_len,
            src_prefix_len: r.src_prefix_len,
            tos: r.tos,
            priority: r.priority.unwrap_or(0),
            table: r.table,
        }
    }
}

fn has_gateway(r: &KernelRoute) -> bool {
    r.nexthops.iter().any(|h| h.gateway.is_some())
}

/// The same route (kind and hops), whatever its flags say now.
fn same_route(a: &KernelRoute, b: &KernelRoute) -> bool {
    a.kind == b.kind
        && a.nexthops.len() == b.nexthops.len()
        && a.nexthops
            .iter()
            .zip(&b.nexthops)
            .all(|(x, y)| x.gateway == y.gateway && x.oif == y.oif)
}

impl KernelTables {
    /// Empty tables.
    pub fn new() -> KernelTables {
        KernelTables::default()
    }

    /// Replaces the contents with a fresh dump ([`super::Kernel::routes`],
    /// [`super::Kernel::neighbors`]).
    pub fn reset(&mut self, routes: Vec<KernelRoute>, neighbors: Vec<KernelNeighbor>) {
        self.routes.clear();
        for r in routes {
            self.routes.entry(RouteKey::of(&r)).or_default().push(r);
        }
        self.neighbors = neighbors
            .into_iter()
            .map(|n| ((n.ifindex, n.ip), n))
            .collect();
    }

    /// Applies one event; see [`Applied`].
    pub fn apply(&mut self, event: &KernelEvent) -> Applied {
        match event {
            KernelEvent::RouteAdded { route, replace } => self.route_added(route, *replace),
            KernelEvent::RouteRemoved(route) => self.route_removed(route),
            KernelEvent::NeighborChanged(n) => {
                let old = self.neighbors.insert((n.ifindex, n.ip), n.clone());
                changed(old.as_ref().and_then(usable_mac) != usable_mac(n))
            }
            KernelEvent::NeighborRemoved(n) => {
                let old = self.neighbors.remove(&(n.ifindex, n.ip));
                changed(old.as_ref().and_then(usable_mac).is_some())
            }
            // IPv4 flushes the routes of a link that goes down (or away) silently, and marks
            // them RTNH_F_LINKDOWN on carrier changes silently too: when routes use the link,
            // only a dump tells what is left.
            KernelEvent::LinkChanged(l) => {
                let now = (l.up, l.lower_up);
                let was = self.links.insert(l.ifindex, now);
                let lost = !l.up || was.is_some_and(|(_, lower_up)| lower_up != l.lower_up);
                resync_if(was != Some(now) && lost && self.uses_link(l.ifindex))
            }
            KernelEvent::LinkRemoved(l) => {
                self.links.remove(&l.ifindex);
                resync_if(self.uses_link(l.ifindex))
            }
            KernelEvent::AddressAdded(_) => Applied::Unchanged,
            // IPv4 drops the routes through gateways of a removed subnet silently.
            KernelEvent::AddressRemoved(a) => {
                resync_if(a.addr.is_ipv4() && self.uses_link_v4(a.ifindex))
            }
            KernelEvent::Overrun => Applied::Resync,
        }
    }

    fn route_added(&mut self, route: &KernelRoute, replace: bool) -> Applied {
        let entries = self.routes.entry(RouteKey::of(route)).or_default();
        if entries.is_empty() {
            entries.push(route.clone());
            return Applied::Changed;
        }
        let i = if replace {
            Some(0)
        } else {
            entries.iter().position(|e| same_route(e, route))
        };
        if let Some(i) = i {
            // A replacement, or news of a route we have (flags changed, a dump raced it).
            let was = std::mem::replace(&mut entries[i], route.clone());
            return changed(was != *route);
        }
        // IPv6 keeps several routes of one key side by side (fe80::/64 on every link, one
        // prefix on two links), the newest last; but a gateway route joining another gateway
        // route merges into it as ECMP, which only a dump shows. IPv4 has several routes of a
        // key only through `ip route append`/`prepend`, whose position the event does not say.
        let merges = has_gateway(route) && entries.iter().any(has_gateway);
        if route.dst.is_ipv6() && !merges {
            entries.push(route.clone());
            Applied::Changed
        } else {
            Applied::Resync
        }
    }

    fn route_removed(&mut self, route: &KernelRoute) -> Applied {
        let key = RouteKey::of(route);
        let Some(entries) = self.routes.get_mut(&key) else {
            return Applied::Unchanged;
        };
        match entries.iter().position(|e| same_route(e, route)) {
            Some(i) => {
                entries.remove(i);
                if entries.is_empty() {
                    self.routes.remove(&key);
                }
                Applied::Changed
            }
            // IPv6 removing one hop of a multipath route, or a route we never saw.
            None => Applied::Resync,
        }
    }

    fn routes_via(&self, ifindex: u32) -> impl Iterator<Item = &KernelRoute> {
        self.routes
            .values()
            .flatten()
            .filter(move |r| r.nexthops.iter().any(|h| h.oif == Some(ifindex)))
    }

    fn uses_link(&self, ifindex: u32) -> bool {
        self.routes_via(ifindex).next().is_some()
    }

    fn uses_link_v4(&self, ifindex: u32) -> bool {
        self.routes_via(ifindex).any(|r| r.dst.is_ipv4())
    }

    /// All routes; those of one key in the kernel's order (the first is the one in use while
    /// it is usable).
    pub fn routes(&self) -> impl Iterator<Item = &KernelRoute> {
        self.routes.values().flatten()
    }

    /// All neighbor entries.
    pub fn neighbors(&self) -> impl Iterator<Item = &KernelNeighbor> {
        self.neighbors.values()
    }

    /// [`mirror`] of the current tables.
    pub fn mirror(&self, taps: &[Tap]) -> Mirrored {
        mirror(self.routes(), self.neighbors(), taps)
    }
}

fn resync_if(yes: bool) -> Applied {
    if yes {
        Applied::Resync
    } else {
        Applied::Unchanged
    }
}

fn changed(yes: bool) -> Applied {
    if yes {
        Applied::Changed
    } else {
        Applied::Unchanged
    }
}
