//! fastlag's dataplane: pinned poll-mode workers, the bond distributor and the forwarding
//! fast paths (xconnect, IPv4/IPv6 router). DPDK is reached only through the safe `dpdk`
//! crate; this crate has no unsafe code.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bond;
pub mod counters;
#[cfg(feature = "gen")]
pub mod gen;
pub mod router;
#[cfg(feature = "gen")]
pub mod testframe;
pub mod worker;
