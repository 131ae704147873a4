//! From the kernel's routes and neighbors to what the fast path needs: [`mirror`] (pure) and
//! [`KernelTables`] (the current set, kept up to date from events).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::{
    nh_flags, KernelEvent, KernelNeighbor, KernelNexthop, KernelRoute, NextHop, NexthopKind,
    RouteKind,
};

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
    /// Its weight (`rtnh_hops + 1`, or the nexthop group's weight, scaled down to 1..=256
    /// when the group has larger ones).
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
/// Routes (all of them from one table, as [`super::Kernel::routes`] gives them) count with the
/// hops they carry: a route through a nexthop object carries them only in compat mode;
/// [`KernelTables::mirror`] resolves the others through the nexthop objects.
///
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
    mirror_routes(routes.into_iter().map(Cow::Borrowed), neighbors, taps)
}

/// [`mirror`] of routes that may have been resolved on the way.
fn mirror_routes<'a>(
    routes: impl Iterator<Item = Cow<'a, KernelRoute>>,
    neighbors: impl IntoIterator<Item = &'a KernelNeighbor>,
    taps: &[Tap],
) -> Mirrored {
    let mut all: Vec<(u32, MirroredRoute)> = routes
        .filter_map(|r| {
            let target = target(&r, taps)?;
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
    /// The tables can no longer be trusted: dump nexthops, routes and neighbors again and
    /// [`KernelTables::reset_nexthops`], [`KernelTables::reset`]. On an overrun; when a link
    /// that routes use (directly or through a nexthop object) goes admin-down, changes carrier
    /// or is deleted (the kernel flushes the nexthop objects on it silently, too); when an
    /// IPv4 address is removed from a link that IPv4 routes use; and on a route change this
    /// model does not follow exactly (a second route for a key: `ip route append`, an IPv6
    /// hop joining or leaving a multipath route).
    Resync,
}

/// The kernel's routes, nexthop objects and neighbors as of the last dump plus the events
/// since.
///
/// Routes are keyed like the kernel keys them (family, destination, prefix lengths, TOS,
/// metric, table); a key may hold several routes (IPv6 routes of one prefix on several links,
/// IPv4 `ip route append`), in the kernel's order.
///
/// A route through a nexthop object (`RTA_NH_ID`) is mirrored with the hops the kernel put in
/// the route (compat mode, `net.ipv4.nexthop_compat_mode=1`), else with the object's: a single
/// hop, a group's members with their weights, or, for a blackhole nexthop, as a blackhole
/// route (that one also in compat mode, where the kernel shows it as a route via `lo`). A route
/// whose nexthop is not known (yet) is left out. A nexthop's change or removal changes every
/// route that uses it, directly or through a group, without a dump; removing one removes its
/// routes and drops it from its groups (removing a group it empties), as the kernel does.
#[derive(Debug, Clone, Default)]
pub struct KernelTables {
    routes: BTreeMap<RouteKey, Vec<KernelRoute>>,
    nexthops: BTreeMap<u32, KernelNexthop>,
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

/// The same route (kind, nexthop object and hops), whatever its flags say now.
fn same_route(a: &KernelRoute, b: &KernelRoute) -> bool {
    a.kind == b.kind
        && a.nexthop_id == b.nexthop_id
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

    /// Replaces the routes and neighbors with a fresh dump ([`super::Kernel::routes`],
    /// [`super::Kernel::neighbors`]); the nexthop objects stay (see
    /// [`KernelTables::reset_nexthops`]).
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

    /// Replaces the nexthop objects with a fresh dump ([`super::Kernel::nexthops`], taken
    /// before the routes').
    pub fn reset_nexthops(&mut self, nexthops: Vec<KernelNexthop>) {
        self.nexthops = nexthops.into_iter().map(|n| (n.id, n)).collect();
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
                // A link first seen without carrier may just have lost it (a dump does not
                // tell the tables the links' states).
                let carrier_changed =
                    was.map_or(!l.lower_up, |(_, lower_up)| lower_up != l.lower_up);
                let lost = !l.up || carrier_changed;
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
            KernelEvent::NexthopChanged(nh) => {
                let old = self.nexthops.insert(nh.id, nh.clone());
                changed(old.as_ref() != Some(nh) && self.nexthop_in_use(nh.id))
            }
            KernelEvent::NexthopRemoved(nh) => self.nexthop_removed(nh.id),
            KernelEvent::Overrun => Applied::Resync,
        }
    }

    /// Whether a route uses nexthop `id`, directly or as a member of its group.
    fn nexthop_in_use(&self, id: u32) -> bool {
        let groups: Vec<u32> = self
            .nexthops
            .values()
            .filter(|g| match &g.kind {
                NexthopKind::Group { members, .. } => members.iter().any(|m| m.id == id),
                _ => false,
            })
            .map(|g| g.id)
            .collect();
        self.routes()
            .filter_map(|r| r.nexthop_id)
            .any(|n| n == id || groups.contains(&n))
    }

    /// The kernel deletes the routes through a deleted nexthop (IPv4's silently, IPv6's too
    /// without compat mode) and drops it from its groups, deleting a group with it when it
    /// was the last member (and that group's routes).
    fn nexthop_removed(&mut self, id: u32) -> Applied {
        if self.nexthops.remove(&id).is_none() {
            return Applied::Unchanged;
        }
        let mut gone = vec![id];
        let mut shrunk = Vec::new();
        for nh in self.nexthops.values_mut() {
            if let NexthopKind::Group { members, .. } = &mut nh.kind {
                let before = members.len();
                members.retain(|m| m.id != id);
                if members.is_empty() {
                    gone.push(nh.id);
                } else if members.len() != before {
                    shrunk.push(nh.id);
                }
            }
        }
        for g in &gone[1..] {
            self.nexthops.remove(g);
        }
        let mut removed = false;
        self.routes.retain(|_, entries| {
            let before = entries.len();
            entries.retain(|r| !r.nexthop_id.is_some_and(|n| gone.contains(&n)));
            removed |= entries.len() != before;
            !entries.is_empty()
        });
        let shrunk_in_use = self
            .routes()
            .filter_map(|r| r.nexthop_id)
            .any(|n| shrunk.contains(&n));
        changed(removed || shrunk_in_use)
    }

    /// A route as the mirror sees it: with its own hops (the kernel's expansion of its
    /// nexthop object in compat mode), else with its nexthop object's; `None` when it has
    /// neither. A blackhole nexthop makes a blackhole route.
    fn resolve<'a>(&self, r: &'a KernelRoute) -> Option<Cow<'a, KernelRoute>> {
        let Some(nh) = r.nexthop_id.and_then(|id| self.nexthops.get(&id)) else {
            return Some(Cow::Borrowed(r)); // no object, or not known yet: as it came
        };
        let via = self.expand(nh);
        if !matches!(via, Some(Via::Blackhole)) && !r.nexthops.is_empty() {
            return Some(Cow::Borrowed(r));
        }
        let mut resolved = r.clone();
        match via? {
            Via::Blackhole => {
                resolved.kind = RouteKind::Blackhole;
                resolved.nexthops.clear();
            }
            Via::Hops(hops) => resolved.nexthops = hops,
        }
        Some(Cow::Owned(resolved))
    }

    /// The hops of a nexthop object: its own, or its group members' with their weights
    /// (scaled down to 1..=256 when larger: the FIB's range).
    fn expand(&self, nh: &KernelNexthop) -> Option<Via> {
        let hop = |nh: &KernelNexthop, weight: u16| match nh.kind {
            NexthopKind::Hop { gateway, oif } if !nh.fdb => Some(NextHop {
                gateway,
                oif,
                weight,
                flags: (nh.flags & 0xff) as u8,
            }),
            _ => None,
        };
        match &nh.kind {
            _ if nh.fdb => None, // bridge FDB nexthops are not for routes
            NexthopKind::Blackhole => Some(Via::Blackhole),
            NexthopKind::Hop { .. } => Some(Via::Hops(vec![hop(nh, 1)?])),
            NexthopKind::Group { members, .. } => {
                let max = members.iter().map(|m| m.weight).max().unwrap_or(1);
                let mut hops = Vec::with_capacity(members.len());
                for m in members {
                    // Members come before their group; one not known is left out.
                    let Some(member) = self.nexthops.get(&m.id) else {
                        continue;
                    };
                    if member.kind == NexthopKind::Blackhole {
                        return Some(Via::Blackhole); // the kernel allows it alone only
                    }
                    let weight = if max <= MAX_WEIGHT {
                        m.weight
                    } else {
                        (u64::from(m.weight) * u64::from(MAX_WEIGHT) / u64::from(max)) as u32
                    };
                    hops.extend(hop(member, weight.clamp(1, MAX_WEIGHT) as u16));
                }
                Some(Via::Hops(hops))
            }
        }
    }

    /// Whether nexthop `id` (or a member of it) sends out of `ifindex`.
    fn nexthop_uses_link(&self, id: u32, ifindex: u32) -> bool {
        let on_link = |id: &u32| {
            self.nexthops.get(id).is_some_and(
                |nh| matches!(nh.kind, NexthopKind::Hop { oif: Some(o), .. } if o == ifindex),
            )
        };
        match self.nexthops.get(&id).map(|nh| &nh.kind) {
            Some(NexthopKind::Group { members, .. }) => members.iter().any(|m| on_link(&m.id)),
            Some(_) => on_link(&id),
            None => false,
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
        self.routes.values().flatten().filter(move |r| {
            r.nexthops.iter().any(|h| h.oif == Some(ifindex))
                || r.nexthop_id
                    .is_some_and(|id| self.nexthop_uses_link(id, ifindex))
        })
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

    /// All nexthop objects, by id.
    pub fn nexthops(&self) -> impl Iterator<Item = &KernelNexthop> {
        self.nexthops.values()
    }

    /// [`mirror`] of the current tables, routes through nexthop objects resolved (see
    /// [`KernelTables`]).
    pub fn mirror(&self, taps: &[Tap]) -> Mirrored {
        let routes = self.routes().filter_map(|r| self.resolve(r));
        mirror_routes(routes, self.neighbors(), taps)
    }
}

/// The largest hop weight the FIB takes.
const MAX_WEIGHT: u32 = 256;

/// What a nexthop object leads to.
enum Via {
    Hops(Vec<NextHop>),
    Blackhole,
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
