//! What the engine hands out: transmissions, events, and plain-data introspection (port and
//! bond views, typed reasons, 802.3ad MIB counters, transition history). Everything here is
//! plain data (Debug, Clone, PartialEq) so the management API can serialise it later.

use core::fmt;
use core::time::Duration;

use crate::config::{Activity, Fallback, LinkStatus, MuxControl, Rate, SelectionPolicy, SystemId};
use crate::engine::{BondId, PortId};
use crate::time::Instant;
use crate::wire::{Frame, LacpduRepr, MacAddr, ParticipantInfo};

/// A frame to send on a member port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The member to send on. May be a port that was just removed: its final LACPDU.
    pub port: PortId,
    /// What the frame is.
    pub kind: TxKind,
    /// The whole Ethernet frame (124 octets, no FCS).
    pub frame: Frame,
}

/// Kind of a transmitted frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxKind {
    /// A periodic or NTT-driven LACPDU.
    Lacpdu,
    /// The final LACPDU of a removed member (synchronization, collecting, distributing and
    /// aggregation cleared).
    FinalLacpdu,
    /// A Marker Response.
    MarkerResponse,
}

/// Changes the owner must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Enable_Collecting / Disable_Collecting: accept (or drop) ingress on this member.
    Collecting {
        /// The member.
        port: PortId,
        /// New value.
        enabled: bool,
    },
    /// The member entered or left the bond's distribution set.
    Distributing {
        /// The member.
        port: PortId,
        /// New value.
        enabled: bool,
    },
    /// The full, ordered (by port number) list of members that carry egress for the bond now.
    /// Publish it to the workers as one table.
    Distribution {
        /// The bond.
        bond: BondId,
        /// Members, ordered by port number.
        members: Vec<PortId>,
    },
    /// The bond's active aggregator changed.
    ActiveAggregator {
        /// The bond.
        bond: BondId,
        /// The new active aggregator, if any.
        aggregator: Option<AggregatorId>,
    },
    /// Churn detected or cleared (802.1AX-2014 clause 6.4.17).
    Churn {
        /// The member.
        port: PortId,
        /// Whose synchronization is churning.
        side: Side,
        /// True on entering ACTOR_CHURN / PARTNER_CHURN.
        detected: bool,
    },
    /// Loopback detected or cleared on a member.
    Loopback {
        /// The member.
        port: PortId,
        /// True when detected.
        detected: bool,
    },
    /// Reported once per member: the link came up with unknown speed and/or duplex. LACP keeps
    /// running; the binary should warn once (the seed bug was this fact, silently).
    LinkAttributesUnknown {
        /// The member.
        port: PortId,
        /// Speed unknown.
        speed: bool,
        /// Duplex unknown.
        duplex: bool,
    },
    /// What became of a member's saved state after a restart ([`crate::Engine::offer_restore`]).
    Restore {
        /// The member.
        port: PortId,
        /// Applied, confirmed by the partner's first LACPDU, or refused with the reason.
        outcome: crate::engine::RestoreOutcome,
    },
}

/// Actor or partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// This system.
    Actor,
    /// The system at the other end of the link.
    Partner,
}

/// Identifier of an aggregator within a bond: the port number of the member that created it
/// (kept while the aggregator has members, so it does not churn on flaps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AggregatorId(pub u16);

impl fmt::Display for AggregatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agg{}", self.0)
    }
}

/// Receive machine states (802.1AX-2014 Figure 6-18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxState {
    /// INITIALIZE.
    Initialize,
    /// PORT_DISABLED.
    PortDisabled,
    /// EXPIRED.
    Expired,
    /// LACP_DISABLED (LACP_Enabled is TRUE on every point-to-point link, so only reachable if
    /// that ever changes; kept for completeness).
    LacpDisabled,
    /// DEFAULTED.
    Defaulted,
    /// CURRENT.
    Current,
}

/// Periodic Transmission machine states (802.1AX-2014 Figure 6-19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeriodicState {
    /// NO_PERIODIC.
    NoPeriodic,
    /// FAST_PERIODIC.
    FastPeriodic,
    /// SLOW_PERIODIC.
    SlowPeriodic,
    /// PERIODIC_TX (transient).
    PeriodicTx,
}

/// Mux machine states (802.1AX-2014 Figures 6-21 and 6-22).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MuxState {
    /// DETACHED.
    Detached,
    /// WAITING.
    Waiting,
    /// ATTACHED.
    Attached,
    /// COLLECTING_DISTRIBUTING (coupled control).
    CollectingDistributing,
    /// COLLECTING (independent control).
    Collecting,
    /// DISTRIBUTING (independent control).
    Distributing,
}

/// Churn Detection machine states (802.1AX-2014 Figures 6-23 and 6-24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChurnState {
    /// ACTOR_CHURN_MONITOR / PARTNER_CHURN_MONITOR.
    Monitor,
    /// NO_ACTOR_CHURN / NO_PARTNER_CHURN.
    NoChurn,
    /// ACTOR_CHURN / PARTNER_CHURN.
    Churn,
}

/// The Selected variable (802.1AX-2014 clause 6.4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Selected {
    /// UNSELECTED.
    Unselected,
    /// SELECTED.
    Selected,
    /// STANDBY.
    Standby,
}

macro_rules! state_names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The state's name as the standard writes it.
            pub const fn name(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl $t {
            /// The state called `name` (as [`Self::name`] writes it).
            pub fn from_name(name: &str) -> Option<$t> {
                match name { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}

state_names!(RxState {
    Initialize => "INITIALIZE", PortDisabled => "PORT_DISABLED", Expired => "EXPIRED",
    LacpDisabled => "LACP_DISABLED", Defaulted => "DEFAULTED", Current => "CURRENT",
});
state_names!(PeriodicState {
    NoPeriodic => "NO_PERIODIC", FastPeriodic => "FAST_PERIODIC",
    SlowPeriodic => "SLOW_PERIODIC", PeriodicTx => "PERIODIC_TX",
});
state_names!(MuxState {
    Detached => "DETACHED", Waiting => "WAITING", Attached => "ATTACHED",
    CollectingDistributing => "COLLECTING_DISTRIBUTING", Collecting => "COLLECTING",
    Distributing => "DISTRIBUTING",
});
state_names!(ChurnState { Monitor => "CHURN_MONITOR", NoChurn => "NO_CHURN", Churn => "CHURN" });
state_names!(Selected { Unselected => "UNSELECTED", Selected => "SELECTED", Standby => "STANDBY" });

/// Which machine a [`Transition`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Machine {
    /// Receive machine.
    Receive,
    /// Periodic Transmission machine (its PERIODIC_TX ticks are not recorded).
    Periodic,
    /// Mux machine.
    Mux,
    /// Selection Logic (the Selected variable).
    Selection,
    /// Actor Churn Detection machine.
    ActorChurn,
    /// Partner Churn Detection machine.
    PartnerChurn,
}

/// The input that was being processed when a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Port created (BEGIN).
    Begin,
    /// Link went up.
    LinkUp,
    /// Link went down.
    LinkDown,
    /// Speed or duplex changed.
    LinkChanged,
    /// An LACPDU was received.
    PduReceived,
    /// current_while expired.
    CurrentWhileExpired,
    /// periodic_timer expired.
    PeriodicTimerExpired,
    /// wait_while expired.
    WaitWhileExpired,
    /// A churn detection timer expired.
    ChurnTimerExpired,
    /// The loopback hold expired.
    LoopbackCleared,
    /// An administrative change (rate, key, priority, drain, removal...).
    Admin,
    /// Another member's change moved the bond's selection.
    Selection,
    /// Saved state from before a restart was applied, or undone (see `engine/restore.rs`).
    Restored,
}

/// One recorded state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub at: Instant,
    /// Which machine.
    pub machine: Machine,
    /// State left.
    pub from: &'static str,
    /// State entered.
    pub to: &'static str,
    /// The input being processed.
    pub cause: Cause,
}

/// Why a member is Individual (may only ever be used alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndividualCause {
    /// Our link is half duplex (aggregation needs full duplex; LACP still runs).
    HalfDuplex,
    /// The partner advertises Aggregation = 0 on this link.
    PartnerIndividual,
    /// The partner is silent (defaulted) and its defaults are Individual.
    PartnerDefaulted,
}

/// Which side's key differs in a [`Reason::KeyMismatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySide {
    /// Our operational key on this member differs from the active aggregator's.
    Actor,
    /// The partner's key on this member differs from the active aggregator's partner key.
    Partner,
}

/// Why a member is not in its bond's distribution set. `Display` gives plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No carrier.
    LinkDown,
    /// LACPDUs from our own system arrive on this member (cabled back to ourselves).
    Loopback,
    /// We are passive and the partner's information is not from LACPDUs: nothing starts
    /// unless the partner is active. Whether the partner is passive too only its LACPDUs can
    /// tell (`PortInfo::last_lacpdu`; see `why`).
    PassivePassive,
    /// No LACPDU heard since the link came up.
    LacpNotHeard {
        /// Link up since.
        since: Instant,
    },
    /// The partner stopped sending; its information expired (Receive machine EXPIRED).
    PartnerExpired {
        /// Last LACPDU received.
        last_rx: Instant,
        /// Our timeout that elapsed.
        timeout: Duration,
    },
    /// The partner has been silent long enough that administrative defaults are used.
    Defaulted {
        /// Last LACPDU received, if any.
        last_rx: Option<Instant>,
    },
    /// Drained by the operator.
    Drained,
    /// More usable members than max_active; this one has a worse priority.
    Standby {
        /// The configured limit.
        max_active: u16,
    },
    /// Fewer usable members than min_links: the whole aggregate is down.
    BelowMinLinks {
        /// Usable members.
        available: u16,
        /// Configured minimum.
        min_links: u16,
    },
    /// The key differs from the active aggregator's.
    KeyMismatch {
        /// Whose key.
        side: KeySide,
        /// Key of the active aggregator.
        aggregator_key: u16,
        /// Key on this member.
        port_key: u16,
    },
    /// The partner on this member is another system than on the active aggregator.
    OtherPartnerSystem {
        /// Partner system of the active aggregator.
        aggregator_partner: SystemId,
        /// Partner system on this member.
        port_partner: SystemId,
    },
    /// The link is Individual and another aggregator is active.
    Individual {
        /// Why individual.
        cause: IndividualCause,
    },
    /// Another aggregator is active (same keys and systems, chosen by the selection policy).
    NotActiveAggregator {
        /// The active aggregator.
        active: AggregatorId,
    },
    /// Fallback is on and another member carries the traffic.
    FallbackStandby {
        /// The member in use.
        active_port: PortId,
    },
    /// The partner's information changed; detaching before selecting again.
    Reselecting,
    /// Waiting for Aggregate_Wait_Time before attaching (802.1AX-2014 clause 6.4.15).
    AggregateWait {
        /// Time left on this member's wait_while (zero: waiting for other members).
        remaining: Duration,
    },
    /// The partner's view of us (the partner TLV it sends) does not match what we are.
    NotMatched {
        /// What the partner believes about us.
        partner_view: ParticipantInfo,
    },
    /// The partner has not set Synchronization for this link (it is still attaching, or keeps
    /// the link in standby, e.g. its max-bundle).
    PartnerNotInSync,
    /// The partner reports Expired: it is not hearing our LACPDUs (one-way link).
    PartnerNotHearingUs,
    /// The partner is not collecting on this link yet.
    PartnerNotCollecting,
    /// A transition is in progress within this instant.
    Settling,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LinkDown => write!(f, "link down"),
            Reason::Loopback => write!(f, "loopback: LACPDUs from our own system id arrive on this member"),
            // Says nothing of the partner's activity: silence is no evidence that it is passive
            // (`why::reason_text` tells the two apart from the member's last LACPDU).
            Reason::PassivePassive => write!(f, "we are passive and hear no partner: LACP starts only if the partner is active (or make this side active)"),
            // No instants here: an engine `Instant` is neither a time of day nor an age.
            // `why::reason_text` adds them as wall-clock times and ages.
            Reason::LacpNotHeard { .. } => write!(f, "LACP not heard from the partner since the link came up (partner not running LACP, or not sending to us)"),
            Reason::PartnerExpired { timeout, .. } => write!(f, "partner silent: no LACPDU within {}, its information expired", crate::why::secs(*timeout)),
            Reason::Defaulted { last_rx: Some(_) } => write!(f, "partner silent: using default partner information"),
            Reason::Defaulted { last_rx: None } => write!(f, "partner never heard: using default partner information"),
            Reason::Drained => write!(f, "drained by the operator"),
            Reason::Standby { max_active } => write!(f, "standby: max_active {max_active} members already active with better priority"),
            Reason::BelowMinLinks { available, min_links } => write!(f, "below min_links: {available} usable member(s), {min_links} required"),
            Reason::KeyMismatch { side: KeySide::Actor, aggregator_key, port_key } => write!(f, "key mismatch: our key on this member is {port_key:#06x}, the active aggregator uses {aggregator_key:#06x}"),
            Reason::KeyMismatch { side: KeySide::Partner, aggregator_key, port_key } => write!(f, "key mismatch: the partner's key on this member is {port_key:#06x}, the active aggregator's partner key is {aggregator_key:#06x}"),
            Reason::OtherPartnerSystem { aggregator_partner, port_partner } => write!(f, "another partner system: {port_partner} on this member, {aggregator_partner} on the active aggregator"),
            Reason::Individual { cause: IndividualCause::HalfDuplex } => write!(f, "individual link (half duplex) and another aggregator is active"),
            Reason::Individual { cause: IndividualCause::PartnerIndividual } => write!(f, "individual link (partner does not aggregate it) and another aggregator is active"),
            Reason::Individual { cause: IndividualCause::PartnerDefaulted } => write!(f, "individual link (partner silent) and another aggregator is active"),
            Reason::NotActiveAggregator { active } => write!(f, "another aggregator ({active}) is active"),
            Reason::FallbackStandby { active_port } => write!(f, "fallback: no LACPDU heard from the partner on this link; {active_port} carries the traffic"),
            Reason::Reselecting => write!(f, "partner information changed: detaching to select again"),
            Reason::AggregateWait { remaining } if remaining.is_zero() => write!(f, "waiting for other members to finish their aggregate wait"),
            Reason::AggregateWait { remaining } => write!(f, "waiting for aggregate wait: {} left", crate::why::secs(*remaining)),
            // A partner that never heard a LACPDU from us holds its defaults for us: system
            // 0 (or zero MAC), which says "it does not hear us", not "it is wrong".
            Reason::NotMatched { partner_view } if partner_view.system.is_zero() => write!(f, "partner does not hear our LACPDUs: its view of us is its default (system {},{} key {:#06x} port {}); check that our LACPDUs reach it (one-way link, or the partner drops them)", partner_view.system_priority, partner_view.system, partner_view.key, partner_view.port),
            Reason::NotMatched { partner_view } => write!(f, "partner's view of us is wrong (it sees system {},{} key {:#06x} port {} prio {})", partner_view.system_priority, partner_view.system, partner_view.key, partner_view.port, partner_view.port_priority),
            Reason::PartnerNotInSync => write!(f, "partner not in sync on this link (attaching, or kept standby by the partner)"),
            Reason::PartnerNotHearingUs => write!(f, "partner reports expired: it does not hear our LACPDUs (one-way link?)"),
            Reason::PartnerNotCollecting => write!(f, "partner not collecting on this link"),
            Reason::Settling => write!(f, "state change in progress"),
        }
    }
}

/// Counters named after dot3adAggPortStats (IEEE 802.3 clause 30.7.3), plus churn counts
/// (dot3adAggPortDebug) and fastlag's own detail counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Valid LACPDUs received (dot3adAggPortStatsLACPDUsRx).
    pub lacpdus_rx: u64,
    /// Marker Information PDUs received (dot3adAggPortStatsMarkerPDUsRx).
    pub marker_pdus_rx: u64,
    /// Marker Response PDUs received (dot3adAggPortStatsMarkerResponsePDUsRx).
    pub marker_response_pdus_rx: u64,
    /// Slow Protocols frames with an unknown PDU (dot3adAggPortStatsUnknownRx).
    pub unknown_rx: u64,
    /// Badly formed PDUs or illegal subtypes (dot3adAggPortStatsIllegalRx).
    pub illegal_rx: u64,
    /// LACPDUs transmitted (dot3adAggPortStatsLACPDUsTx).
    pub lacpdus_tx: u64,
    /// Marker PDUs transmitted (dot3adAggPortStatsMarkerPDUsTx; we never originate markers).
    pub marker_pdus_tx: u64,
    /// Marker Responses transmitted (dot3adAggPortStatsMarkerResponsePDUsTx).
    pub marker_response_pdus_tx: u64,
    /// Entries into ACTOR_CHURN (dot3adAggPortDebugActorChurnCount).
    pub actor_churn_count: u64,
    /// Entries into PARTNER_CHURN (dot3adAggPortDebugPartnerChurnCount).
    pub partner_churn_count: u64,
    /// Changes of our Synchronization bit (dot3adAggPortDebugActorSyncTransitionCount).
    pub actor_sync_transitions: u64,
    /// Changes of the partner's Synchronization (dot3adAggPortDebugPartnerSyncTransitionCount).
    pub partner_sync_transitions: u64,
    /// Of unknown_rx: VLAN-tagged Slow Protocols frames (ignored).
    pub vlan_tagged_rx: u64,
    /// Frames ignored because their destination is not a Slow Protocols group address or our MAC.
    pub foreign_dst_rx: u64,
    /// LACPDUs from our own system (loopback).
    pub loopback_rx: u64,
    /// LACPDUs ignored because the link was down when they arrived.
    pub rx_while_link_down: u64,
    /// Marker requests not answered because of the responder's rate limit.
    pub marker_rate_limited: u64,
    /// LACPDUs that had to wait for the 3-per-second limit (each counted once, however
    /// long it waited and however many state changes it absorbed).
    pub tx_deferred: u64,
}

/// Remaining time on each running timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerInfo {
    /// current_while.
    pub current_while: Option<Duration>,
    /// periodic_timer.
    pub periodic: Option<Duration>,
    /// wait_while.
    pub wait_while: Option<Duration>,
    /// actor_churn_timer.
    pub actor_churn: Option<Duration>,
    /// partner_churn_timer.
    pub partner_churn: Option<Duration>,
}

/// The one-time "speed/duplex unknown" fact of a member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnknownLink {
    /// Speed was reported unknown at least once while up.
    pub speed: bool,
    /// Duplex was reported unknown at least once while up.
    pub duplex: bool,
    /// When it was first seen.
    pub first_seen: Option<Instant>,
}

/// Everything the engine knows about a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// The member.
    pub id: PortId,
    /// Its bond.
    pub bond: BondId,
    /// Name.
    pub name: String,
    /// Its MAC.
    pub mac: MacAddr,
    /// Link state last reported.
    pub link: LinkStatus,
    /// Unknown speed/duplex fact.
    pub unknown_link: UnknownLink,
    /// What we advertise (Actor_Oper values and state).
    pub actor: ParticipantInfo,
    /// What we believe about the partner (Partner_Oper values and state).
    pub partner: ParticipantInfo,
    /// The partner information came from LACPDUs (false: administrative defaults).
    pub partner_from_lacpdu: bool,
    /// The partner's view of us matches what we are (802.1AX-2014 recordPDU).
    pub matched: bool,
    /// Receive machine state.
    pub rx_state: RxState,
    /// Periodic machine state.
    pub periodic_state: PeriodicState,
    /// Mux machine state.
    pub mux_state: MuxState,
    /// Actor churn state.
    pub actor_churn: ChurnState,
    /// Partner churn state.
    pub partner_churn: ChurnState,
    /// Selected / Standby / Unselected.
    pub selected: Selected,
    /// Aggregator the member is attached or selected to.
    pub aggregator: Option<AggregatorId>,
    /// Need To Transmit is pending.
    pub ntt: bool,
    /// Remaining timer values.
    pub timers: TimerInfo,
    /// Collecting (ingress accepted).
    pub collecting: bool,
    /// In the bond's distribution set (egress).
    pub distributing: bool,
    /// This member is the bond's fallback (individual, LACP not heard).
    pub fallback: bool,
    /// Drained by the operator.
    pub drained: bool,
    /// Loopback detected.
    pub loopback: bool,
    /// Why not distributing (None when distributing).
    pub reason: Option<Reason>,
    /// Counters.
    pub counters: PortCounters,
    /// Last LACPDU received.
    pub last_rx: Option<Instant>,
    /// Last LACPDU transmitted.
    pub last_tx: Option<Instant>,
    /// The last LACPDU received, as parsed.
    pub last_lacpdu: Option<LacpduRepr>,
    /// Recent transitions, oldest first.
    pub history: Vec<Transition>,
}

/// One aggregator of a bond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorInfo {
    /// Identifier.
    pub id: AggregatorId,
    /// Our operational key.
    pub actor_key: u16,
    /// Partner System Identifier.
    pub partner_system: SystemId,
    /// Partner key.
    pub partner_key: u16,
    /// Individual (one link only).
    pub individual: bool,
    /// Members selected to it (any Selected value), by port id.
    pub members: Vec<PortId>,
    /// Is the bond's active aggregator.
    pub active: bool,
}

/// Everything the engine knows about a bond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondInfo {
    /// The bond.
    pub id: BondId,
    /// Name.
    pub name: String,
    /// Our System Identifier.
    pub system: SystemId,
    /// Admin key.
    pub admin_key: u16,
    /// Active/passive.
    pub activity: Activity,
    /// Our timeout bit.
    pub rate: Rate,
    /// Selection policy.
    pub selection: SelectionPolicy,
    /// min_links.
    pub min_links: u16,
    /// max_active.
    pub max_active: Option<u16>,
    /// Fallback mode.
    pub fallback: Fallback,
    /// Fallback currently in use (a member carries traffic without LACP).
    pub fallback_active: bool,
    /// Mux control.
    pub mux: MuxControl,
    /// Active aggregator.
    pub active_aggregator: Option<AggregatorId>,
    /// All aggregators.
    pub aggregators: Vec<AggregatorInfo>,
    /// Members, by port id.
    pub ports: Vec<PortId>,
    /// Distribution set as published (ordered by port number).
    pub distribution: Vec<PortId>,
    /// The distributing members reach min_links.
    pub min_links_met: bool,
}
