//! The IPv4/IPv6 router of the fast path: longest-prefix match, next hop and neighbor
//! resolution, in-place rewrite (MACs, TTL/hop limit, incremental IPv4 checksum), VLAN
//! push/pop, and the classification of everything else for the kernel's TAP (the
//! exception path), with per-class policing.
//!
//! - [`lpm`]: the LPM tables (a multibit trie; DIR-24-8 for IPv4).
//! - [`fib`]: [`FibBuilder`] (control thread) and [`Fib`] snapshots (workers, via arc-swap).
//! - [`route_frame`]: the per-packet decision on a raw frame, returning a [`Verdict`].
//! - [`set_vlan`]: tag the frame for the egress interface.
//! - [`ExceptionPolicer`]: token buckets per [`ExceptionClass`].
//!
//! Nothing here allocates, locks or makes syscalls per packet; building a snapshot does.

pub mod fib;
pub mod forward;
pub mod lpm;
pub mod neigh;
pub mod police;
pub mod vlan;

pub use fib::{
    Fib, FibBuilder, FibError, Interface, Lookup, NextHop, Origin, RouteEntry, RouteHop, BUCKETS,
    COUNTED_HOPS, MAX_HOPS, MAX_WEIGHT,
};
pub use forward::{ipv4_checksum, route_frame, route_segment, DropReason, ExceptionClass, Verdict};
pub use lpm::{Lpm4, Lpm6};
pub use police::{ExceptionPolicer, Rate, TokenBucket};
pub use vlan::{set_vlan, set_vlan_in, set_vlan_vec, vlan_of, FrameBuf};

use std::fmt;

/// An L3 interface id: index into the FIB's interface table (`0..n`; `u16::MAX` is
/// reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IfaceId(pub u16);

impl fmt::Display for IfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "if{}", self.0)
    }
}
