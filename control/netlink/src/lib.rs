//! The kernel side of the TAP exception path, over rtnetlink.
//!
//! fastlag gives every L3 interface a kernel TAP (created by DPDK's `net_tap` PMD). This module
//! * configures the kernel side of each TAP: [`Kernel::set_link`] (up, MTU) and
//!   [`Kernel::add_address`] (the interface's addresses, the same as the fast path's), and
//! * mirrors the kernel's routes and neighbors into the fast path: [`Kernel::nexthops`] (the
//!   nexthop objects routes may use), [`Kernel::routes`] and [`Kernel::neighbors`] dump them,
//!   [`Kernel::poll_events`] drains the changes without ever blocking, [`KernelTables`] keeps
//!   the current set up to date from those events, and [`KernelTables::mirror`] ([`mirror`])
//!   turns it into what the fast path needs, restricted to the TAPs fastlag owns.
//!
//! So a routing daemon (BIRD, FRR) or an operator with `ip route` on the TAP side drives the
//! fast path. Everything runs in the network namespace of the calling thread.
//!
//! The socket comes from `netlink-sys` (its `unsafe` stays inside it); messages are encoded and
//! decoded by a small codec of our own (`codec.rs`), which bounds-checks everything and skips
//! what it does not understand.
//!
//! ## Kernel behaviours the caller must know
//! * IPv4 removes routes **without notification** when a link goes admin-down or is deleted, or
//!   when an address is removed (its gateway routes go with it), and flags them
//!   `RTNH_F_LINKDOWN` on carrier loss silently. [`KernelTables::apply`] answers
//!   [`Applied::Resync`] for those events when routes use the link: dump again.
//! * When the event socket's buffer overflows (a full BGP table arriving at once), events are
//!   lost: [`KernelEvent::Overrun`]; dump again.
//! * Routes that use nexthop objects (`RTA_NH_ID`, FRR's default) carry their expanded hops only
//!   while `net.ipv4.nexthop_compat_mode=1` (the default); with 0 they carry the id alone, and
//!   [`KernelTables`] resolves it through the nexthop objects (`RTM_NEWNEXTHOP`), which come
//!   before the routes that use them. Deleting a nexthop deletes its routes without a route
//!   notification (IPv4 always, IPv6 without compat mode); a link going down, losing carrier
//!   or being deleted flushes the nexthops on it silently: [`KernelTables::apply`] follows
//!   the first and asks for [`Applied::Resync`] for the others when routes use them.
//! * ECMP (`RTA_MULTIPATH`, nexthop groups): [`mirror`] keeps up to [`MAX_MIRRORED_HOPS`]
//!   weighted hops (see there).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod mirror;
mod socket;

use std::net::IpAddr;

pub use mirror::{
    mirror, Applied, KernelTables, Mirrored, MirroredHop, MirroredNeighbor, MirroredRoute,
    RouteTarget, Tap, MAX_MIRRORED_HOPS,
};
pub use socket::Kernel;

/// The main routing table (`RT_TABLE_MAIN`), the one [`Kernel`] follows by default.
pub const RT_TABLE_MAIN: u32 = 254;

/// `rtm_protocol` values (`RTPROT_*`): who installed a route.
pub mod protocol {
    /// Redirects (`RTPROT_REDIRECT`).
    pub const REDIRECT: u8 = 1;
    /// The kernel itself: connected routes of an interface's addresses (`RTPROT_KERNEL`).
    pub const KERNEL: u8 = 2;
    /// `ip route add` without `proto` (`RTPROT_BOOT`).
    pub const BOOT: u8 = 3;
    /// Static routes (`RTPROT_STATIC`).
    pub const STATIC: u8 = 4;
    /// IPv6 router advertisements (`RTPROT_RA`).
    pub const RA: u8 = 9;
    /// FRR's zebra (`RTPROT_ZEBRA`).
    pub const ZEBRA: u8 = 11;
    /// BIRD (`RTPROT_BIRD`).
    pub const BIRD: u8 = 12;
    /// FRR BGP (`RTPROT_BGP`).
    pub const BGP: u8 = 186;
    /// FRR OSPF (`RTPROT_OSPF`).
    pub const OSPF: u8 = 188;
}

/// Next-hop flags (`RTNH_F_*`) in [`NextHop::flags`].
pub mod nh_flags {
    /// The next hop is dead (its link is down): the kernel does not use it.
    pub const DEAD: u8 = 0x01;
    /// The gateway is on-link even though no subnet says so.
    pub const ONLINK: u8 = 0x04;
    /// The next hop's link has no carrier (the kernel still uses it unless
    /// `ignore_routes_with_linkdown` is set).
    pub const LINKDOWN: u8 = 0x10;
}

/// `rtm_type`: what a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// A gateway or direct route (`RTN_UNICAST`).
    Unicast,
    /// Addressed to this host (`RTN_LOCAL`, local table).
    Local,
    /// Broadcast address (`RTN_BROADCAST`, local table).
    Broadcast,
    /// Anycast (`RTN_ANYCAST`, IPv6 local table).
    Anycast,
    /// Multicast (`RTN_MULTICAST`).
    Multicast,
    /// Silently dropped (`RTN_BLACKHOLE`).
    Blackhole,
    /// Dropped with ICMP unreachable (`RTN_UNREACHABLE`).
    Unreachable,
    /// Dropped with ICMP administratively prohibited (`RTN_PROHIBIT`).
    Prohibit,
    /// Lookup continues in the next rule's table (`RTN_THROW`).
    Throw,
    /// Anything else, raw `rtm_type`.
    Other(u8),
}

impl RouteKind {
    /// From `rtm_type`.
    pub fn from_raw(raw: u8) -> RouteKind {
        match raw {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            4 => RouteKind::Anycast,
            5 => RouteKind::Multicast,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            9 => RouteKind::Throw,
            other => RouteKind::Other(other),
        }
    }
}

/// One next hop of a route: the only one of a plain route, or one leg of an ECMP route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The gateway (`RTA_GATEWAY`, or `RTA_VIA` for an IPv4 route through an IPv6 gateway);
    /// `None` for a directly connected destination.
    pub gateway: Option<IpAddr>,
    /// The output interface (`RTA_OIF` / `rtnh_ifindex`).
    pub oif: Option<u32>,
    /// ECMP weight (`rtnh_hops + 1`); 1 for a plain route.
    pub weight: u16,
    /// `RTNH_F_*` ([`nh_flags`]).
    pub flags: u8,
}

impl NextHop {
    /// Not [`nh_flags::DEAD`]: the kernel would use it.
    pub fn is_alive(&self) -> bool {
        self.flags & nh_flags::DEAD == 0
    }
}

/// A route of the kernel's FIB (`RTM_NEWROUTE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelRoute {
    /// Destination prefix (`0.0.0.0` / `::` for a default route).
    pub dst: IpAddr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Source prefix length (IPv6 source-specific routes); 0 for ordinary routes.
    pub src_prefix_len: u8,
    /// IPv4 TOS selector; 0 for ordinary routes.
    pub tos: u8,
    /// Routing table (`RTA_TABLE`); [`RT_TABLE_MAIN`] for the main table.
    pub table: u32,
    /// What the route does.
    pub kind: RouteKind,
    /// Who installed it ([`protocol`]).
    pub protocol: u8,
    /// `rtm_scope` (0 universe, 253 link, 254 host).
    pub scope: u8,
    /// `rtm_flags` (`RTM_F_*`, and the hop's `RTNH_F_*` in the low byte for a plain route).
    pub flags: u32,
    /// Metric (`RTA_PRIORITY`); lower wins.
    pub priority: Option<u32>,
    /// Preferred source address (`RTA_PREFSRC`).
    pub prefsrc: Option<IpAddr>,
    /// Nexthop object id (`RTA_NH_ID`) when the route uses one.
    pub nexthop_id: Option<u32>,
    /// Next hops: one for a plain route, several for ECMP (`RTA_MULTIPATH`), none for
    /// blackhole/unreachable/prohibit routes.
    pub nexthops: Vec<NextHop>,
}

impl KernelRoute {
    /// The first hop's gateway.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.nexthops.first().and_then(|h| h.gateway)
    }

    /// The first hop's output interface.
    pub fn oif(&self) -> Option<u32> {
        self.nexthops.first().and_then(|h| h.oif)
    }
}

/// A kernel nexthop object (`RTM_NEWNEXTHOP`, `ip nexthop`): routes refer to it by id
/// ([`KernelRoute::nexthop_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelNexthop {
    /// Its id (`NHA_ID`).
    pub id: u32,
    /// Who installed it ([`protocol`]).
    pub protocol: u8,
    /// `nh_flags` (`RTNH_F_*`, [`nh_flags`]).
    pub flags: u32,
    /// A bridge FDB nexthop (`NHA_FDB`, VXLAN): routes cannot use it.
    pub fdb: bool,
    /// What it is.
    pub kind: NexthopKind,
}

/// What a [`KernelNexthop`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NexthopKind {
    /// One hop: a gateway (`NHA_GATEWAY`, IPv4 or IPv6 whatever the nexthop's family) and/or
    /// an output interface (`NHA_OIF`).
    Hop {
        /// The gateway; `None` for a directly connected hop.
        gateway: Option<IpAddr>,
        /// The output interface.
        oif: Option<u32>,
    },
    /// Drops packets (`NHA_BLACKHOLE`).
    Blackhole,
    /// A group of other (single-hop) nexthops (`NHA_GROUP`).
    Group {
        /// Its members, in the kernel's order.
        members: Vec<NexthopMember>,
        /// A resilient group (`NEXTHOP_GRP_TYPE_RES`) rather than a plain multipath one.
        resilient: bool,
    },
}

/// One member of a nexthop group: `struct nexthop_grp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NexthopMember {
    /// The member nexthop's id.
    pub id: u32,
    /// Its weight (1 to 256; to 65536 on kernels with 16-bit weights).
    pub weight: u32,
}

/// Neighbor cache state (`NUD_*` bits of `ndm_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighState(pub u16);

impl NeighState {
    /// `NUD_INCOMPLETE`: resolution in progress.
    pub const INCOMPLETE: u16 = 0x01;
    /// `NUD_REACHABLE`: confirmed recently.
    pub const REACHABLE: u16 = 0x02;
    /// `NUD_STALE`: usable, to be confirmed on next use.
    pub const STALE: u16 = 0x04;
    /// `NUD_DELAY`: usable, confirmation scheduled.
    pub const DELAY: u16 = 0x08;
    /// `NUD_PROBE`: usable, being probed.
    pub const PROBE: u16 = 0x10;
    /// `NUD_FAILED`: resolution failed.
    pub const FAILED: u16 = 0x20;
    /// `NUD_NOARP`: no resolution needed (static by nature).
    pub const NOARP: u16 = 0x40;
    /// `NUD_PERMANENT`: configured statically.
    pub const PERMANENT: u16 = 0x80;

    /// Whether the entry's MAC may be used to send: reachable, stale, delay, probe, permanent
    /// or noarp.
    pub fn is_usable(self) -> bool {
        self.0
            & (Self::REACHABLE
                | Self::STALE
                | Self::DELAY
                | Self::PROBE
                | Self::PERMANENT
                | Self::NOARP)
            != 0
    }
}

/// A neighbor (ARP / NDP) entry (`RTM_NEWNEIGH`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelNeighbor {
    /// Interface.
    pub ifindex: u32,
    /// Protocol address.
    pub ip: IpAddr,
    /// Link-layer address, when the kernel has one (6 bytes).
    pub mac: Option<[u8; 6]>,
    /// `NUD_*` state.
    pub state: NeighState,
    /// `NTF_*` flags (`0x80` router, `0x08` proxy...).
    pub flags: u8,
}

/// A network interface (`RTM_NEWLINK`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelLink {
    /// Interface index.
    pub ifindex: u32,
    /// Name (`IFLA_IFNAME`); empty when the message had none.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up (`IFF_RUNNING`).
    pub running: bool,
    /// Carrier (`IFF_LOWER_UP`); for a TAP: a process holds its file descriptor.
    pub lower_up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// MAC address.
    pub mac: Option<[u8; 6]>,
}

/// An interface address (`RTM_NEWADDR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelAddress {
    /// Interface index.
    pub ifindex: u32,
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// `IFA_F_*` flags (`0x40` tentative: IPv6 DAD not finished).
    pub flags: u32,
}

/// A change reported by the kernel, from [`Kernel::poll_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    /// A route was added or changed. `replace` is set when it replaced an existing route with
    /// the same key (`NLM_F_REPLACE`: `ip route replace`, a daemon updating a prefix).
    RouteAdded {
        /// The route as it is now.
        route: KernelRoute,
        /// It replaced the route of the same key.
        replace: bool,
    },
    /// A route was removed.
    RouteRemoved(KernelRoute),
    /// A neighbor entry was created or changed state.
    NeighborChanged(KernelNeighbor),
    /// A neighbor entry was removed.
    NeighborRemoved(KernelNeighbor),
    /// A link was created or changed (flags, MTU, name...).
    LinkChanged(KernelLink),
    /// A link was deleted.
    LinkRemoved(KernelLink),
    /// An address was added.
    AddressAdded(KernelAddress),
    /// An address was removed.
    AddressRemoved(KernelAddress),
    /// A nexthop object was created or replaced.
    NexthopChanged(KernelNexthop),
    /// A nexthop object was deleted (the kernel deletes the routes that use it, IPv4 ones
    /// silently, and drops it from its groups).
    NexthopRemoved(KernelNexthop),
    /// The event socket overflowed and events were lost: the caller must dump
    /// ([`Kernel::routes`], [`Kernel::neighbors`]) again.
    Overrun,
}
