//! Router mode: `show interfaces` and `show routes`.

use serde::{Deserialize, Serialize};

use crate::counters::IfaceSnapshot;

/// Counters of one interface's exception path (the control thread's side).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionCounters {
    /// Frames handed to the kernel (TAP).
    pub to_kernel: u64,
    /// Frames the kernel sent out through the interface.
    pub from_kernel: u64,
    /// Frames the TAP did not take (full).
    pub to_kernel_dropped: u64,
    /// Frames from the kernel that could not be sent (queue full, no headroom).
    pub from_kernel_dropped: u64,
    /// Frames from the kernel discarded because the interface could not send (bond not
    /// distributing): only around start-up and outages, while the TAP's carrier follows.
    pub from_kernel_link_down: u64,
}

/// One L3 interface with its TAP and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceView {
    /// Name.
    pub name: String,
    /// Kernel TAP name.
    pub tap: Option<String>,
    /// The exception path's control-thread counters.
    pub kernel: ExceptionCounters,
    /// The workers' counters.
    pub counters: Option<IfaceSnapshot>,
}

/// The FIB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutesView {
    /// Version of the FIB the workers use.
    pub fib_version: u64,
    /// IPv4 prefixes routed.
    pub routes_v4: usize,
    /// IPv6 prefixes routed.
    pub routes_v6: usize,
    /// Routes mirrored from the kernel.
    pub kernel_routes: usize,
    /// Neighbors mirrored from the kernel.
    pub kernel_neighbors: usize,
    /// Every route.
    pub routes: Vec<RouteView>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// "prefix/len".
    pub prefix: String,
    /// "connected", "static" or "kernel".
    pub origin: String,
    /// Egress interface.
    pub interface: Option<String>,
    /// Gateway; none for a directly connected destination.
    pub gateway: Option<String>,
    /// In use (not shadowed or unresolvable).
    pub active: bool,
    /// This next hop's weight among the route's hops (an ECMP route lists one entry per
    /// hop, with the same prefix and origin); 1 for a plain route.
    #[serde(default = "one")]
    pub weight: u16,
    /// "up" (its interface can send), "skipped" (it cannot: an ECMP route's flows go to
    /// its other hops) or "down" (it cannot, and no other hop of the route can either).
    #[serde(default)]
    pub state: String,
}

fn one() -> u16 {
    1
}
