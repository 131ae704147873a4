//! fastlag's dataplane: the safe DPDK layer, pinned poll-mode workers and forwarding.
//!
//! `unsafe` is confined to [`dpdk`]; every other module forbids it.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod bond;
pub mod counters;
pub mod dpdk;
pub mod gen;
pub mod loadgen;
pub mod router;
pub mod router_worker;
pub mod testframe;
pub mod worker;
