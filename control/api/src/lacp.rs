//! `show lacp`: per member, the actor and partner side by side, machine states, timers,
//! counters.

use serde::{Deserialize, Serialize};

/// An 802.3ad bond's LACP state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LacpBond {
    /// Bond name.
    pub bond: String,
    /// System id ("priority,mac").
    pub system: Option<String>,
    /// System priority.
    pub system_priority: Option<u16>,
    /// System MAC.
    pub system_mac: Option<String>,
    /// Administrative key.
    pub admin_key: Option<u16>,
    /// "active" or "passive".
    pub activity: Option<String>,
    /// "fast" or "slow".
    pub rate: Option<String>,
    /// The active aggregator's id.
    pub active_aggregator: Option<String>,
    /// Configured min_links.
    pub min_links: Option<u16>,
    /// Whether it is met.
    pub min_links_met: Option<bool>,
    /// Per member.
    pub members: Vec<LacpMember>,
}

/// One side of the protocol (802.1AX actor or partner information).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// System priority.
    pub system_priority: u16,
    /// System MAC.
    pub system: String,
    /// Key.
    pub key: u16,
    /// Port priority.
    pub port_priority: u16,
    /// Port number.
    pub port: u16,
    /// State bits (LSB first: Activity, Timeout, Aggregation, Synchronization, Collecting,
    /// Distributing, Defaulted, Expired).
    pub state: u8,
    /// The bits that are set, by name.
    pub state_names: Vec<String>,
}

/// A member's LACP timers, milliseconds left (`None`: not running).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LacpTimers {
    /// Receive machine's current_while.
    pub current_while: Option<f64>,
    /// Periodic transmission.
    pub periodic: Option<f64>,
    /// Mux machine's wait_while.
    pub wait_while: Option<f64>,
    /// Actor churn detection.
    pub actor_churn: Option<f64>,
    /// Partner churn detection.
    pub partner_churn: Option<f64>,
}

/// A member's 802.3ad counters (MIB names where the MIB has them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LacpCounters {
    /// Actor churn entries.
    pub actor_churn_count: u64,
    /// Changes of our Synchronization bit.
    pub actor_sync_transitions: u64,
    /// Slow-protocol frames to another destination address.
    pub foreign_dst_rx: u64,
    /// Malformed PDUs.
    pub illegal_rx: u64,
    /// Valid LACPDUs received.
    pub lacpdus_rx: u64,
    /// LACPDUs sent.
    pub lacpdus_tx: u64,
    /// PDUs from our own system.
    pub loopback_rx: u64,
    /// Marker PDUs received.
    pub marker_pdus_rx: u64,
    /// Marker PDUs sent.
    pub marker_pdus_tx: u64,
    /// Marker requests not answered (rate limit).
    pub marker_rate_limited: u64,
    /// Marker responses received.
    pub marker_response_pdus_rx: u64,
    /// Marker responses sent.
    pub marker_response_pdus_tx: u64,
    /// Partner churn entries.
    pub partner_churn_count: u64,
    /// Changes of the partner's Synchronization bit.
    pub partner_sync_transitions: u64,
    /// Frames received while the link was down.
    pub rx_while_link_down: u64,
    /// Transmissions deferred by the 3-per-second limit.
    pub tx_deferred: u64,
    /// Slow-protocol frames of an unknown subtype.
    pub unknown_rx: u64,
    /// VLAN-tagged slow-protocol frames.
    pub vlan_tagged_rx: u64,
}

impl LacpCounters {
    /// Every counter with its name, in name order (how `show lacp --detail` lists them).
    pub fn named(&self) -> [(&'static str, u64); 18] {
        [
            ("actor_churn_count", self.actor_churn_count),
            ("actor_sync_transitions", self.actor_sync_transitions),
            ("foreign_dst_rx", self.foreign_dst_rx),
            ("illegal_rx", self.illegal_rx),
            ("lacpdus_rx", self.lacpdus_rx),
            ("lacpdus_tx", self.lacpdus_tx),
            ("loopback_rx", self.loopback_rx),
            ("marker_pdus_rx", self.marker_pdus_rx),
            ("marker_pdus_tx", self.marker_pdus_tx),
            ("marker_rate_limited", self.marker_rate_limited),
            ("marker_response_pdus_rx", self.marker_response_pdus_rx),
            ("marker_response_pdus_tx", self.marker_response_pdus_tx),
            ("partner_churn_count", self.partner_churn_count),
            ("partner_sync_transitions", self.partner_sync_transitions),
            ("rx_while_link_down", self.rx_while_link_down),
            ("tx_deferred", self.tx_deferred),
            ("unknown_rx", self.unknown_rx),
            ("vlan_tagged_rx", self.vlan_tagged_rx),
        ]
    }
}

/// Intervals between a member's LACPDU departures: the partner expires us if a gap reaches
/// its timeout, so the largest gap is what an operator watches (under load too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TxGaps {
    /// LACPDUs sent.
    pub count: u64,
    /// Shortest interval between two LACPDUs, ms.
    pub min_ms: f64,
    /// Longest interval, ms.
    pub max_ms: f64,
    /// Mean interval, ms.
    pub mean_ms: f64,
}

/// One member of a [`LacpBond`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LacpMember {
    /// Port name.
    pub name: String,
    /// The port's MAC (source of its LACPDUs).
    pub mac: String,
    /// Carrier.
    pub link_up: bool,
    /// Speed in Mb/s, when known.
    pub speed_mbps: Option<u32>,
    /// "full", "half" or "unknown".
    pub duplex: String,
    /// The PMD did not report speed or duplex at some point.
    pub speed_or_duplex_unknown_seen: bool,
    /// Us.
    pub actor: Participant,
    /// The partner as we record it.
    pub partner: Participant,
    /// Partner information came from a LACPDU (not from defaults).
    pub partner_from_lacpdu: bool,
    /// The partner's view of us is right (802.1AX Matched).
    pub matched: bool,
    /// Receive machine state.
    pub rx_state: String,
    /// Periodic transmission machine state.
    pub periodic_state: String,
    /// Mux machine state.
    pub mux_state: String,
    /// Actor churn machine state.
    pub actor_churn: String,
    /// Partner churn machine state.
    pub partner_churn: String,
    /// "selected", "unselected" or "standby".
    pub selected: String,
    /// Aggregator it is attached to.
    pub aggregator: Option<String>,
    /// Need To Transmit.
    pub ntt: bool,
    /// Timers.
    pub timers_ms: LacpTimers,
    /// Ingress accepted.
    pub collecting: bool,
    /// Carries egress.
    pub distributing: bool,
    /// Distributing by fallback (no partner).
    pub fallback: bool,
    /// Drained by the operator.
    pub drained: bool,
    /// LACPDUs from our own system arrive here.
    pub loopback: bool,
    /// Why it is not distributing; times in RFC 3339 with their age at the moment of the
    /// answer.
    pub reason: Option<String>,
    /// Counters.
    pub counters: LacpCounters,
    /// Last LACPDU received (RFC 3339).
    pub last_rx: Option<String>,
    /// Its age, seconds.
    pub last_rx_age_s: Option<f64>,
    /// Last LACPDU sent (RFC 3339).
    pub last_tx: Option<String>,
    /// Its age, seconds.
    pub last_tx_age_s: Option<f64>,
    /// Intervals between our LACPDU departures.
    pub lacpdu_departures: TxGaps,
    /// Slow-protocol frames that could not be sent.
    pub slow_tx_failed: u64,
}
