//! What fastlag shows of itself, as pure data: the control thread's [`Status`], counter
//! [`Snapshot`]s, the `--report` written at stop. The types are the management API's
//! ([`api`]), so the socket, the `--status` file and the metrics endpoint agree; this module
//! adds the conversions from the engine's and the dataplane's own counters.

use std::sync::Arc;

use serde::Serialize;

pub use api::status::StatusFile;
pub use api::{
    BondStatus, IfaceSnapshot, IfaceStatus, MemberLacp, MemberStatus, Mib, PmdStats, PortSnapshot,
    RouterStatus, Snapshot, Status, WorkerPortCounts, WorkerSnapshot,
};

/// Where the control thread publishes [`Status`].
pub type SharedStatus = Arc<arc_swap::ArcSwap<Status>>;

/// Everything one status file (and one scrape) shows, taken at one moment.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Increases with every snapshot; the status file carries it as `sequence`.
    pub sequence: u64,
    /// The control thread's view.
    pub control: Arc<Status>,
    /// Port, interface and worker counters.
    pub counters: Snapshot,
}

impl Scrape {
    /// The `--status` file's contents.
    pub fn status_file(&self) -> StatusFile {
        StatusFile {
            sequence: self.sequence,
            control: (*self.control).clone(),
            ports: self.counters.ports.clone(),
            interfaces: self.counters.interfaces.clone(),
            workers: self.counters.workers.clone(),
            tsc_hz: self.counters.tsc_hz,
        }
    }
}

/// The packet pool after shutdown.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    /// Pool name.
    pub name: String,
    /// Mbufs it was created with.
    pub size: u32,
    /// Mbufs back in it.
    pub available: u32,
}

/// Final state after an orderly stop (the `--report` file).
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownReport {
    /// Counters at stop.
    pub stats: Snapshot,
    /// The pool, with every mbuf returned when `available == size`.
    pub pool: PoolReport,
    /// Problems met while stopping (empty when clean).
    pub errors: Vec<String>,
}

impl ShutdownReport {
    /// True when nothing failed and every mbuf came back.
    pub fn clean(&self) -> bool {
        self.errors.is_empty() && self.pool.available == self.pool.size
    }
}

/// A port's PMD counters as shown.
pub fn pmd_stats(s: dpdk::PortStats) -> PmdStats {
    PmdStats {
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        rx_missed: s.rx_missed,
        rx_errors: s.rx_errors,
        tx_errors: s.tx_errors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// A port's worker counters as shown.
pub fn worker_port_counts(c: dataplane::counters::PortCounts) -> WorkerPortCounts {
    WorkerPortCounts {
        rx: c.rx,
        tx: c.tx,
        drop_tx_full: c.drop_tx_full,
        drop_no_egress: c.drop_no_egress,
        drop_not_collecting: c.drop_not_collecting,
        drop_bond_down: c.drop_bond_down,
        slow_to_control: c.slow_to_control,
        drop_slow_ring_full: c.drop_slow_ring_full,
    }
}

/// One worker's counters as shown.
pub fn worker_snapshot(index: usize, c: &dataplane::counters::WorkerCounts) -> WorkerSnapshot {
    let t = c.total();
    WorkerSnapshot {
        index,
        loops: c.loops,
        busy_polls: c.busy_polls,
        idle_polls: c.idle_polls,
        busy_cycles: c.busy_cycles,
        rx: t.rx,
        tx: t.tx,
        drops: t.drops(),
        cycles_per_packet: c.cycles_per_packet(),
    }
}

/// A member's 802.3ad MIB counters as the status file shows them.
pub fn mib(c: &lacp::info::PortCounters) -> Mib {
    Mib {
        lacpdus_rx: c.lacpdus_rx,
        lacpdus_tx: c.lacpdus_tx,
        marker_pdus_rx: c.marker_pdus_rx,
        marker_response_pdus_rx: c.marker_response_pdus_rx,
        marker_response_pdus_tx: c.marker_response_pdus_tx,
        unknown_rx: c.unknown_rx,
        illegal_rx: c.illegal_rx,
        actor_churn_count: c.actor_churn_count,
        partner_churn_count: c.partner_churn_count,
        actor_sync_transitions: c.actor_sync_transitions,
        partner_sync_transitions: c.partner_sync_transitions,
    }
}

/// Every counter of a member as `show lacp` shows them.
pub fn lacp_counters(c: &lacp::info::PortCounters) -> api::LacpCounters {
    api::LacpCounters {
        actor_churn_count: c.actor_churn_count,
        actor_sync_transitions: c.actor_sync_transitions,
        foreign_dst_rx: c.foreign_dst_rx,
        illegal_rx: c.illegal_rx,
        lacpdus_rx: c.lacpdus_rx,
        lacpdus_tx: c.lacpdus_tx,
        loopback_rx: c.loopback_rx,
        marker_pdus_rx: c.marker_pdus_rx,
        marker_pdus_tx: c.marker_pdus_tx,
        marker_rate_limited: c.marker_rate_limited,
        marker_response_pdus_rx: c.marker_response_pdus_rx,
        marker_response_pdus_tx: c.marker_response_pdus_tx,
        partner_churn_count: c.partner_churn_count,
        partner_sync_transitions: c.partner_sync_transitions,
        rx_while_link_down: c.rx_while_link_down,
        tx_deferred: c.tx_deferred,
        unknown_rx: c.unknown_rx,
        vlan_tagged_rx: c.vlan_tagged_rx,
    }
}

/// One side of the protocol as shown.
pub fn participant(p: &lacp::ParticipantInfo) -> api::Participant {
    api::Participant {
        system_priority: p.system_priority,
        system: p.system.to_string(),
        key: p.key,
        port_priority: p.port_priority,
        port: p.port,
        state: p.state.bits(),
        state_names: p.state.names().map(str::to_string).collect(),
    }
}

/// "full", "half" or "unknown".
pub fn duplex(d: types::Duplex) -> &'static str {
    d.as_str()
}
