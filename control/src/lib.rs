//! fastlag's daemon library: everything between a validated configuration and the running
//! fast path, in the order a configuration flows through it.
//!
//! * [`plan`]: pure. A [`conf::Config`] becomes a [`plan::Plan`] (ports and queues, links,
//!   bonds with their LACP settings, the workers' egress, spare ports, EAL arguments); a
//!   hitless reload is the [`plan::diff`] of two plans.
//! * [`status`]: pure data. What fastlag shows of itself (the management API's types).
//! * [`runtime`]: applies a plan in named steps (EAL, pool, links, ports, rings, LACP
//!   engine, router, threads) and takes it down in order.
//! * [`control_thread`]: the LACP I/O loop (slow-protocol frames in and out, link polling,
//!   bond tables), with [`control_thread::reload`] and [`control_thread::drain`]; it answers
//!   the management socket.
//! * [`router`]: router mode's control side (TAP exception path, FIB upkeep from netlink).
//! * [`mgmt`]: the management socket's transport and the [`mgmt::Handler`] it calls;
//!   [`metrics`]: Prometheus text from a status snapshot, and a small HTTP server.
//! * [`daemon`]: `fastlag run`'s main thread: signals, reload, the status file, metrics;
//!   [`notify`]: the service manager's notify protocol (readiness, status, watchdog).
//!
//! Dependencies run one way: plan, status -> runtime -> control thread -> mgmt, metrics
//! (which read status only).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod control_thread;
pub mod daemon;
pub mod handoff;
pub mod metrics;
pub mod mgmt;
pub mod notify;
pub mod plan;
pub mod report;
pub mod router;
pub mod runtime;
pub mod status;

/// What the DPDK fastlag is built against allows, for [`conf::load_with`]: `fastlag
/// check-config`, `fastlag run` and reloads check a file against the same limits.
pub fn limits() -> conf::Limits {
    conf::Limits {
        max_ethports: dpdk::MAX_ETHPORTS,
        max_lcores: dpdk::MAX_LCORE,
        mempool_cache_max: dpdk::MEMPOOL_CACHE_MAX_SIZE,
        max_memory_mb: dpdk::MAX_MEM_MB,
        mbuf_struct_bytes: dpdk::MBUF_STRUCT_BYTES,
        mbuf_headroom: dpdk::PKTMBUF_HEADROOM,
        default_buf_size: dpdk::DEFAULT_BUF_SIZE,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stock_limits_are_this_dpdk_build_or_tighter() {
        // conf's default stands in where DPDK is not linked; it must not accept what
        // this build refuses.
        let (dpdk, stock) = (super::limits(), conf::Limits::default());
        assert!(stock.max_ethports <= dpdk.max_ethports, "{dpdk:?}");
        assert!(stock.max_lcores <= dpdk.max_lcores, "{dpdk:?}");
        assert!(
            stock.mempool_cache_max <= dpdk.mempool_cache_max,
            "{dpdk:?}"
        );
        assert!(stock.max_memory_mb <= dpdk.max_memory_mb, "{dpdk:?}");
        assert_eq!(stock.mbuf_struct_bytes, dpdk.mbuf_struct_bytes);
        assert_eq!(stock.mbuf_headroom, dpdk.mbuf_headroom);
        assert_eq!(stock.default_buf_size, dpdk.default_buf_size);
    }
}
