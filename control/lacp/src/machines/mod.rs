//! Per-port state and the per-port machines of 802.1AX-2014 clause 6.4, one file per machine,
//! named as in the standard:
//!
//! | file | machine |
//! |---|---|
//! | `receive.rs` | Receive machine (6.4.12), with recordPDU, update_Selected, update_NTT (6.4.9) |
//! | `periodic.rs` | Periodic Transmission machine (6.4.13) |
//! | `selection.rs` | Selection Logic (6.4.14), per bond |
//! | `mux.rs` | Mux machine (6.4.15), coupled and independent control |
//! | `transmit.rs` | Transmit machine (6.4.16): the rate limit and what a LACPDU carries |
//! | `churn.rs` | Actor and Partner Churn Detection machines (6.4.17) |
//! | `marker.rs` | Marker Responder (6.5.4.2) |
//!
//! This file holds what they share: the [`Port`] (the per-port variables of 6.4.7 and 6.4.8),
//! its timers (6.4.10), the administrative values, and BEGIN. The engine runs the machines of
//! a bond until nothing changes ("settle", see `engine/settle.rs`).
//!
//! Each machine is a `step` that takes at most one transition and says whether it did; entry
//! actions are in `enter_*`. Timers are data: `timers[Timer::X]` holds the instant it fires.

use std::collections::VecDeque;

use crate::config::{Activity, BondConfig, Duplex, KeyPolicy, LinkStatus, Rate};
use crate::engine::PortId;
use crate::info::{
    AggregatorId, Cause, ChurnState, Event, Machine, MuxState, PeriodicState, PortCounters, Reason,
    RxState, Selected, Transition, UnknownLink,
};
use crate::time::Instant;
use crate::wire::{LacpduRepr, MarkerRepr, ParticipantInfo, PortState};

mod churn;
mod marker;
mod mux;
mod periodic;
mod receive;
pub(crate) mod selection;
mod transmit;

pub(crate) use receive::PduOutcome;
use receive::PARTNER_ADMIN;
use transmit::SendRing;

/// The timers of a port (802.1AX-2014 clause 6.4.10), as indices into `Port::timers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    CurrentWhile = 0,
    Periodic = 1,
    WaitWhile = 2,
    ActorChurn = 3,
    PartnerChurn = 4,
    /// Not an 802.1AX timer: how long a loopback detection holds after the last looped PDU.
    Loopback = 5,
}
pub(crate) const TIMER_COUNT: usize = 6;

/// One member port: its configuration and link, the per-port variables of 802.1AX-2014
/// clauses 6.4.7 and 6.4.8 (Actor_Oper_Port_State, the Partner_Oper values, Selected, Ready_N,
/// NTT), the state of each machine, its timers, and what the engine last published for it.
pub(crate) struct Port {
    pub(crate) id: PortId,
    pub(crate) bond: usize,
    pub(crate) cfg: crate::config::PortConfig,
    pub(crate) link: LinkStatus,
    pub(crate) unknown_link: UnknownLink,
    pub(crate) link_up_since: Instant,
    pub(crate) drained: bool,
    /// LACP_Enabled: TRUE on point-to-point links (802.1AX-2014 6.4.8), which all our links are.
    pub(crate) lacp_enabled: bool,
    /// Actor_Oper_Port_State (admin bits refreshed by `refresh_admin_bits`).
    pub(crate) actor_state: PortState,
    /// Partner_Oper values.
    pub(crate) partner: ParticipantInfo,
    pub(crate) partner_from_pdu: bool,
    pub(crate) matched: bool,
    pub(crate) rx: RxState,
    pub(crate) ptx: PeriodicState,
    /// Set when the partner's Timeout bit went short -> long: until this instant it may still
    /// run a current_while that our last LACPDU armed with the short timeout, so the Periodic
    /// machine stays FAST (see `periodic.rs`).
    pub(crate) partner_short_until: Option<Instant>,
    pub(crate) mux: MuxState,
    pub(crate) actor_churn: ChurnState,
    pub(crate) partner_churn: ChurnState,
    pub(crate) selected: Selected,
    pub(crate) aggregator: Option<AggregatorId>,
    /// Chosen by the fallback option: distributes without an LACP partner.
    pub(crate) fallback: bool,
    /// The partner's data frames arrive on this member (reported by the caller, see
    /// [`crate::Engine::handle_partner_data`]): the link a partner without LACP uses.
    pub(crate) partner_data: bool,
    /// Why selection keeps this port out (set by selection each round).
    pub(crate) exclusion: Option<Reason>,
    pub(crate) ntt: bool,
    /// The LACPDU now owed has been counted in `tx_deferred` (once per LACPDU that waits
    /// for the rate limit, not once per poll while it waits).
    pub(crate) deferral_counted: bool,
    pub(crate) ready_n: bool,
    pub(crate) loopback: bool,
    pub(crate) timers: [Option<Instant>; TIMER_COUNT],
    pub(crate) tx_ring: SendRing,
    marker_ring: SendRing,
    pub(crate) marker_queue: VecDeque<MarkerRepr>,
    pub(crate) counters: PortCounters,
    pub(crate) last_rx: Option<Instant>,
    pub(crate) last_tx: Option<Instant>,
    pub(crate) last_lacpdu: Option<LacpduRepr>,
    pub(crate) history: VecDeque<Transition>,
    history_len: usize,
    pub(crate) published_collecting: bool,
    pub(crate) published_distributing: bool,
    pub(crate) indexed_deadline: Option<Instant>,
    pub(crate) in_tx_queue: bool,
}

/// What the engine passes to the machines.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) cause: Cause,
    pub(crate) bond: &'a BondConfig,
    pub(crate) events: &'a mut VecDeque<Event>,
}

impl Port {
    pub(crate) fn new(
        id: PortId,
        bond: usize,
        cfg: crate::config::PortConfig,
        history_len: usize,
        now: Instant,
    ) -> Port {
        Port {
            id,
            bond,
            cfg,
            link: LinkStatus::down(),
            unknown_link: UnknownLink::default(),
            link_up_since: now,
            drained: false,
            lacp_enabled: true,
            actor_state: PortState::empty(),
            partner: PARTNER_ADMIN,
            partner_from_pdu: false,
            matched: false,
            rx: RxState::Initialize,
            ptx: PeriodicState::NoPeriodic,
            partner_short_until: None,
            mux: MuxState::Detached,
            actor_churn: ChurnState::Monitor,
            partner_churn: ChurnState::Monitor,
            selected: Selected::Unselected,
            aggregator: None,
            fallback: false,
            partner_data: false,
            exclusion: None,
            ntt: false,
            deferral_counted: false,
            ready_n: false,
            loopback: false,
            timers: [None; TIMER_COUNT],
            tx_ring: SendRing::default(),
            marker_ring: SendRing::default(),
            marker_queue: VecDeque::new(),
            counters: PortCounters::default(),
            last_rx: None,
            last_tx: None,
            last_lacpdu: None,
            history: VecDeque::new(),
            history_len,
            published_collecting: false,
            published_distributing: false,
            indexed_deadline: None,
            in_tx_queue: false,
        }
    }

    /// Writes a transition to the port's history ring (`BondConfig::history_len` entries).
    fn record(&mut self, machine: Machine, from: &'static str, to: &'static str, ctx: &Ctx<'_>) {
        if self.history_len == 0 {
            return;
        }
        if self.history.len() >= self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(Transition {
            at: ctx.now,
            machine,
            // Only BEGIN enters a state from itself.
            from: if from == to { "BEGIN" } else { from },
            to,
            cause: ctx.cause,
        });
    }

    pub(crate) fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers[t as usize]
    }
    fn start(&mut self, t: Timer, at: Instant) {
        self.timers[t as usize] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.timers[t as usize] = None;
    }

    // ----- administrative values -------------------------------------------------------------

    /// Actor_Oper_Port_Key.
    pub(crate) fn oper_key(&self, b: &BondConfig) -> u16 {
        let admin = self.cfg.key.unwrap_or(b.admin_key);
        match b.key_policy {
            KeyPolicy::Admin => admin,
            KeyPolicy::AdminWithSpeedClass => {
                (admin & !0x3f) | crate::config::speed_class(self.link.speed)
            }
        }
    }

    /// Aggregation needs full duplex; unknown duplex is given the benefit of the doubt.
    pub(crate) fn aggregatable(&self) -> bool {
        self.link.duplex != Duplex::Half
    }

    /// Re-derives the administratively controlled bits of Actor_Oper_Port_State.
    pub(crate) fn refresh_admin_bits(&mut self, b: &BondConfig) {
        self.actor_state
            .set(PortState::ACTIVITY, b.activity == Activity::Active);
        self.actor_state
            .set(PortState::TIMEOUT, b.rate == Rate::Fast);
        self.actor_state
            .set(PortState::AGGREGATION, self.aggregatable());
    }

    /// The actor information we send (and compare the partner's view of us against).
    pub(crate) fn actor_info(&self, b: &BondConfig) -> ParticipantInfo {
        ParticipantInfo {
            system_priority: b.system.priority,
            system: b.system.mac,
            key: self.oper_key(b),
            port_priority: self.cfg.port_priority,
            port: self.cfg.port_number,
            state: self.actor_state,
        }
    }

    /// How long current_while runs: Short or Long_Timeout_Time by our own Timeout bit (6.4.4).
    fn our_timeout(&self, b: &BondConfig) -> core::time::Duration {
        if self.actor_state.short_timeout() {
            b.timers.short_timeout
        } else {
            b.timers.long_timeout
        }
    }

    // ----- variables shared by several machines ----------------------------------------------

    /// Partner_Oper_Port_State.Synchronization, counting transitions (dot3adAggPortDebug).
    fn set_partner_sync(&mut self, v: bool) {
        if self.partner.state.synchronization() != v {
            self.counters.partner_sync_transitions += 1;
            self.partner.state.set(PortState::SYNCHRONIZATION, v);
        }
    }

    /// Actor_Oper_Port_State.Synchronization, counting transitions (dot3adAggPortDebug).
    fn set_actor_sync(&mut self, v: bool) {
        if self.actor_state.synchronization() != v {
            self.counters.actor_sync_transitions += 1;
            self.actor_state.set(PortState::SYNCHRONIZATION, v);
        }
    }

    /// Selected (6.4.8): written by the Selection Logic, and set to UNSELECTED by the Receive
    /// machine when the partner changes (update_Selected).
    pub(crate) fn set_selected(&mut self, s: Selected, ctx: &Ctx<'_>) -> bool {
        if self.selected == s {
            return false;
        }
        self.record(Machine::Selection, self.selected.name(), s.name(), ctx);
        self.selected = s;
        true
    }

    /// BEGIN: INITIALIZE, then the machines' initial states.
    pub(crate) fn begin(&mut self, ctx: &mut Ctx<'_>) {
        self.refresh_admin_bits(ctx.bond);
        self.enter_rx(RxState::Initialize, ctx);
        self.enter_mux(MuxState::Detached, ctx);
    }

    /// Earliest instant at which one of this port's timers fires, or at which a deferred
    /// LACPDU becomes sendable.
    pub(crate) fn deadline(&self, now: Instant, b: &BondConfig) -> Option<Instant> {
        let mut d = self.timers.iter().flatten().min().copied();
        if self.ntt && self.tx_allowed() {
            if let Some(r) = self.tx_release(b) {
                if r > now {
                    d = Some(d.map_or(r, |x| x.min(r)));
                }
            }
        }
        d
    }
}
