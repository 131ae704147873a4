//! Counters: per port (the PMD's and the workers'), per worker, per router interface. The
//! same snapshot serves `show stats`, `show ports`, the `--status` and `--report` files and
//! the metrics endpoint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A port's counters as the PMD reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped by the hardware/PMD because no RX descriptor was free.
    pub rx_missed: u64,
    /// Erroneous received packets.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// What the workers counted for one port, summed over workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerPortCounts {
    /// Packets received.
    pub rx: u64,
    /// Packets transmitted.
    pub tx: u64,
    /// Drops: TX queue full.
    pub drop_tx_full: u64,
    /// Drops: no egress for the ingress port.
    pub drop_no_egress: u64,
    /// Drops: member not collecting.
    pub drop_not_collecting: u64,
    /// Drops: egress bond has no distributing member.
    pub drop_bond_down: u64,
    /// Slow-protocol frames passed to the control thread.
    pub slow_to_control: u64,
    /// Drops: ring to the control thread full.
    pub drop_slow_ring_full: u64,
}

impl WorkerPortCounts {
    /// All drops.
    pub fn drops(&self) -> u64 {
        self.drop_tx_full
            + self.drop_no_egress
            + self.drop_not_collecting
            + self.drop_bond_down
            + self.drop_slow_ring_full
    }
}

/// Counters of one port: the PMD's and the workers' summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortSnapshot {
    /// Port name.
    pub name: String,
    /// DPDK device.
    pub device: String,
    /// Link state as text.
    pub link: String,
    /// PMD counters.
    pub pmd: PmdStats,
    /// Worker counters summed over workers.
    pub workers: WorkerPortCounts,
}

/// Counters of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// Worker number.
    pub index: usize,
    /// Loop iterations.
    pub loops: u64,
    /// Polls that returned packets.
    pub busy_polls: u64,
    /// Polls that returned nothing.
    pub idle_polls: u64,
    /// TSC cycles in busy polls.
    pub busy_cycles: u64,
    /// Packets received.
    pub rx: u64,
    /// Packets transmitted.
    pub tx: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Busy cycles per transmitted packet.
    pub cycles_per_packet: Option<f64>,
}

/// Router counters of one interface, summed over workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfaceSnapshot {
    /// Interface name.
    pub name: String,
    /// Frames received on it.
    pub rx: u64,
    /// Frames routed out of it.
    pub forwarded: u64,
    /// Frames handed to the kernel, by exception class (classes with a count only).
    pub exceptions: BTreeMap<String, u64>,
    /// Exception frames the policer dropped, by class.
    pub policed: BTreeMap<String, u64>,
    /// Exception frames dropped for a full ring (or no TAP).
    pub exception_ring_full: u64,
    /// Dropped frames, by reason.
    pub drops: BTreeMap<String, u64>,
    /// Frames that could not leave (no headroom for a VLAN tag, egress bond down).
    pub egress_failed: u64,
    /// Frames routed out of it to each next hop of ECMP routes, by gateway address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub next_hops: BTreeMap<String, u64>,
}

/// Everything countable, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Per port.
    pub ports: Vec<PortSnapshot>,
    /// Router mode: per interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<IfaceSnapshot>,
    /// Per worker.
    pub workers: Vec<WorkerSnapshot>,
    /// TSC frequency, for converting cycles.
    pub tsc_hz: u64,
}

/// `show stats`: the latest snapshot and its age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The counters.
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// How old they are, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<f64>,
}

/// `show ports`: one port with its bond, PMD counters and rates over the last second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortView {
    /// Port name.
    pub name: String,
    /// DPDK device.
    pub device: String,
    /// Link state as text.
    pub link: String,
    /// The bond it is a member of.
    pub bond: Option<String>,
    /// Packets received (PMD).
    pub rx_packets: u64,
    /// Packets sent (PMD).
    pub tx_packets: u64,
    /// Bytes received (PMD).
    pub rx_bytes: u64,
    /// Bytes sent (PMD).
    pub tx_bytes: u64,
    /// No RX descriptor free (PMD).
    pub rx_missed: u64,
    /// Erroneous packets received (PMD).
    pub rx_errors: u64,
    /// Failed transmissions (PMD).
    pub tx_errors: u64,
    /// Packets received per second.
    pub rx_pps: f64,
    /// Packets sent per second.
    pub tx_pps: f64,
    /// Bits received per second.
    pub rx_bps: f64,
    /// Bits sent per second.
    pub tx_bps: f64,
    /// Frames the workers dropped (all reasons).
    pub drops: u64,
    /// The workers' counters.
    pub workers: WorkerPortCounts,
}
