//! `show bonds` / `show bond NAME`: a bond and its members.

use serde::{Deserialize, Serialize};

/// A bond: mode, LACP system, active aggregator, members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BondView {
    /// Name.
    pub name: String,
    /// "802.3ad", "active-backup" or "balance-xor".
    pub mode: String,
    /// The bond's MAC address.
    pub mac: String,
    /// Distribution hash policy ("layer2", "layer2+3", "layer3+4").
    pub hash: Option<String>,
    /// LACP system id ("priority,mac"); 802.3ad bonds only (as every LACP field below).
    pub system: Option<String>,
    /// Our administrative key.
    pub admin_key: Option<u16>,
    /// "active" or "passive".
    pub activity: Option<String>,
    /// "fast" or "slow" (how often we ask the partner to send).
    pub rate: Option<String>,
    /// Aggregator selection policy.
    pub selection: Option<String>,
    /// At most this many members distribute.
    pub max_active: Option<u16>,
    /// The bond distributes on one member without a partner (`fallback`).
    pub fallback_active: Option<bool>,
    /// Fewest distributing members for the bond to be up.
    pub min_links: u16,
    /// At least `min_links` members distribute.
    pub min_links_met: bool,
    /// The aggregator carrying traffic.
    pub active_aggregator: Option<ActiveAggregator>,
    /// Members in the workers' table, in table order.
    pub distributing: Vec<String>,
    /// Version of that table.
    pub table_version: u64,
    /// Per member, in config order.
    pub members: Vec<BondMember>,
}

/// The active aggregator of an 802.3ad bond.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAggregator {
    /// Aggregator id.
    pub id: String,
    /// Our key on it.
    pub actor_key: u16,
    /// The partner system ("priority,mac").
    pub partner_system: String,
    /// The partner's key.
    pub partner_key: u16,
    /// An individual link (not aggregatable).
    pub individual: bool,
    /// Members attached to it.
    pub members: Vec<String>,
}

/// One member of a [`BondView`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BondMember {
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
    /// Carries egress.
    pub distributing: bool,
    /// 802.1AX Selected: "selected", "unselected" or "standby" (802.3ad).
    pub selected: Option<String>,
    /// Aggregator it is attached to (802.3ad).
    pub aggregator: Option<String>,
    /// Drained by the operator.
    pub drained: bool,
    /// The partner's LACPDUs on this member say Aggregation = 0 (Individual): it will not
    /// aggregate this link with any other (802.1AX-2014 6.4.2.3, actor_state bit 2).
    #[serde(default)]
    pub partner_individual: bool,
    /// Why it is not distributing, in plain words; times in RFC 3339 with their age at the
    /// moment of the answer.
    pub reason: Option<String>,
    /// Received packets per second (PMD).
    pub rx_pps: Option<f64>,
    /// Sent packets per second (PMD).
    pub tx_pps: Option<f64>,
    /// Received bits per second (PMD).
    pub rx_bps: Option<f64>,
    /// Sent bits per second (PMD).
    pub tx_bps: Option<f64>,
    /// When the last LACPDU arrived (RFC 3339).
    pub last_rx: Option<String>,
    /// How long ago, seconds.
    pub last_rx_age_s: Option<f64>,
}
