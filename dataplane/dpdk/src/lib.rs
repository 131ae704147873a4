//! The safe layer over DPDK. All `unsafe` code of fastlag lives in this crate and in
//! `dpdk-sys`; each unsafe block states its invariant in a `// SAFETY:` comment.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "bonding")]
pub mod bond;

mod eal;
mod error;
mod lpm;
mod mbuf;
mod mempool;
mod port;
pub mod process;
mod ring;
mod ring_link;

pub use eal::{
    build_version, lcore_id, monotonic_usec, rdtsc, register_thread, remove_stale_runtime_dirs,
    runtime_base, runtime_version, unregister_thread, version_mismatch, Eal,
};
pub use error::{strerror, DpdkError};
pub use lpm::{RteLpm, RteLpm6, LPM_LOOKUP_SUCCESS};
pub use mbuf::{Burst, Drain, Mbuf, RxChecksum, MAX_BURST};
pub use mempool::Mempool;
pub use port::{
    device_limits, device_name, link, mac, port_by_name, stats, Configured, ConfiguredPort,
    DeviceLimits, Duplex, FlowRule, Link, MacAddr, Port, PortId, PortInfo, PortSetup, PortStats,
    QueueId, RxQueue, Speed, Started, TxQueue,
};
pub use ring::{mbuf_ring, Consumer, Producer};
pub use ring_link::ring_link;

/// Headroom DPDK reserves before packet data in every mbuf.
pub const PKTMBUF_HEADROOM: u32 = dpdk_sys::RTE_PKTMBUF_HEADROOM;
/// DPDK's default mbuf buffer size (2 KB of data plus headroom).
pub const DEFAULT_BUF_SIZE: u32 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE;
/// Ethdev ports one process can have (`RTE_MAX_ETHPORTS` of this build).
pub const MAX_ETHPORTS: u32 = dpdk_sys::RTE_MAX_ETHPORTS;
/// Lcores one process can have (`RTE_MAX_LCORE` of this build).
pub const MAX_LCORE: u32 = dpdk_sys::RTE_MAX_LCORE;
/// The largest per-lcore mempool cache (`RTE_MEMPOOL_CACHE_MAX_SIZE`).
pub const MEMPOOL_CACHE_MAX_SIZE: u32 = dpdk_sys::RTE_MEMPOOL_CACHE_MAX_SIZE;
/// The most memory EAL manages, in MiB (`RTE_MAX_MEM_MB`).
pub const MAX_MEM_MB: u32 = dpdk_sys::RTE_MAX_MEM_MB;
/// Bytes of `struct rte_mbuf` (the header before each mbuf's buffer).
pub const MBUF_STRUCT_BYTES: u32 = std::mem::size_of::<dpdk_sys::rte_mbuf>() as u32;
