//! The control thread's published state: what the `--status` file, the demo's live view
//! and the metrics endpoint show of bonds, members and the router.

use serde::{Deserialize, Serialize};

use crate::counters::{IfaceSnapshot, PortSnapshot, WorkerSnapshot};
use crate::lacp::TxGaps;
use crate::router::ExceptionCounters;

/// What the control thread knows, refreshed every 100 ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Milliseconds since the control thread started.
    pub uptime_ms: u64,
    /// Per bond.
    pub bonds: Vec<BondStatus>,
    /// Router mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterStatus>,
}

/// One bond in [`Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BondStatus {
    /// Name.
    pub name: String,
    /// "802.3ad", "active-backup" or "balance-xor".
    pub mode: String,
    /// Members carrying egress now, in table order.
    pub distributing: Vec<String>,
    /// Version of the table the workers use.
    pub table_version: u64,
    /// The bond's MAC address (configured, else its first member's).
    pub mac: String,
    /// LACP system id ("priority,mac") of an 802.3ad bond.
    pub system: Option<String>,
    /// Fewest distributing members for the bond to be up.
    pub min_links: u16,
    /// Per member.
    pub members: Vec<MemberStatus>,
}

/// One member in [`BondStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Port name.
    pub name: String,
    /// Carrier.
    pub link_up: bool,
    /// Speed in Mb/s, when known.
    pub speed_mbps: Option<u32>,
    /// "full", "half" or "unknown".
    pub duplex: String,
    /// Ingress accepted.
    pub collecting: bool,
    /// In the distribution table.
    pub distributing: bool,
    /// Why not distributing (802.3ad members), in plain words. Times in it are RFC 3339, never
    /// ages: this text is read after it is written, and an age would be stale.
    pub reason: Option<String>,
    /// LACP details (802.3ad members).
    pub lacp: Option<MemberLacp>,
}

/// LACP view of a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberLacp {
    /// Actor state bits.
    pub actor_state: u8,
    /// Actor state decoded.
    pub actor_state_names: String,
    /// Partner state bits.
    pub partner_state: u8,
    /// Partner state decoded.
    pub partner_state_names: String,
    /// Partner system priority and MAC.
    pub partner_system: String,
    /// Partner key.
    pub partner_key: u16,
    /// Partner port number.
    pub partner_port: u16,
    /// Actor key.
    pub actor_key: u16,
    /// Actor port number.
    pub actor_port: u16,
    /// Receive machine state.
    pub rx_state: String,
    /// Mux machine state.
    pub mux_state: String,
    /// LACPDUs received.
    pub lacpdus_rx: u64,
    /// LACPDUs sent.
    pub lacpdus_tx: u64,
    /// Intervals between our LACPDU departures on this member.
    pub tx_gaps: TxGaps,
    /// 802.3ad MIB counters.
    pub mib: Mib,
    /// Selection (802.1AX Selected): "selected", "unselected" or "standby".
    pub selected: String,
}

/// 802.3ad MIB counters of a member (dot3adAggPortStats / Debug), as in the status file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mib {
    /// LACPDUs received.
    pub lacpdus_rx: u64,
    /// LACPDUs sent.
    pub lacpdus_tx: u64,
    /// Marker PDUs received.
    pub marker_pdus_rx: u64,
    /// Marker responses received.
    pub marker_response_pdus_rx: u64,
    /// Marker responses sent.
    pub marker_response_pdus_tx: u64,
    /// Slow-protocol frames of an unknown subtype.
    pub unknown_rx: u64,
    /// Malformed PDUs.
    pub illegal_rx: u64,
    /// Entries into actor churn.
    pub actor_churn_count: u64,
    /// Entries into partner churn.
    pub partner_churn_count: u64,
    /// Changes of our Synchronization bit.
    pub actor_sync_transitions: u64,
    /// Changes of the partner's Synchronization bit.
    pub partner_sync_transitions: u64,
}

/// The router in [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterStatus {
    /// FIB snapshot version.
    pub fib_version: u64,
    /// IPv4 routes in the FIB (static, connected and mirrored).
    pub routes_v4: usize,
    /// IPv6 routes in the FIB.
    pub routes_v6: usize,
    /// Routes mirrored from the kernel.
    pub kernel_routes: usize,
    /// Neighbors mirrored from the kernel.
    pub kernel_neighbors: usize,
    /// Per interface.
    pub interfaces: Vec<IfaceStatus>,
}

/// One interface in [`RouterStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfaceStatus {
    /// Name.
    pub name: String,
    /// Kernel TAP.
    pub tap: Option<String>,
    /// Exception path counters (control thread side).
    pub kernel: ExceptionCounters,
}

/// The `--status` file: the control thread's [`Status`] plus live port, interface and
/// worker counters, rewritten atomically every 100 ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFile {
    /// The snapshot's number (the metrics endpoint serves it as fastlag_status_sequence).
    pub sequence: u64,
    /// Bonds, members, router.
    #[serde(flatten)]
    pub control: Status,
    /// Per port.
    pub ports: Vec<PortSnapshot>,
    /// Router mode: per interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<IfaceSnapshot>,
    /// Per worker.
    pub workers: Vec<WorkerSnapshot>,
    /// TSC frequency, for turning workers' busy cycles into time (older files lack it).
    #[serde(default)]
    pub tsc_hz: u64,
}
