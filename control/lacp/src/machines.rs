//! Per-port state and the per-port machines of 802.1AX-2014 clause 6.4: Receive (6.4.12),
//! Periodic Transmission (6.4.13), Mux (6.4.15), Transmit gating (6.4.16), Churn Detection
//! (6.4.17), and the Marker Responder (6.5.4.2). Selection (6.4.14) is in `selection.rs`; the
//! engine runs the machines of a bond until nothing changes ("settle").
//!
//! Each machine is a `step` that takes at most one transition and says whether it did; entry
//! actions are in `enter_*`. Timers are data: `timers[Timer::X]` holds the instant it fires.

use std::collections::VecDeque;

use crate::config::{Activity, BondConfig, Duplex, KeyPolicy, LinkStatus, MuxControl, Rate};
use crate::engine::PortId;
use crate::info::{
    AggregatorId, Cause, ChurnState, Event, Machine, MuxState, PeriodicState, PortCounters, Reason,
    RxState, Selected, Side, Transition, UnknownLink,
};
use crate::time::Instant;
use crate::wire::{LacpduRepr, MacAddr, MarkerKind, MarkerRepr, ParticipantInfo, PortState};

/// The timers of a port, as indices into `Port::timers`.
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

/// Partner_Admin values used while the partner is silent (recordDefault, 802.1AX-2014 6.4.9):
/// passive, short timeout (so we keep sending fast to a silent partner and a late passive
/// partner hears us within a second), Individual, not in sync. With these, a defaulted port
/// never distributes unless the fallback option picks it.
pub(crate) const PARTNER_ADMIN: ParticipantInfo = ParticipantInfo {
    system_priority: 65535,
    system: MacAddr::ZERO,
    key: 0,
    port_priority: 65535,
    port: 0,
    state: PortState::TIMEOUT,
};

/// Remembers the last few instants something was sent, for "at most N per window" limits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendRing {
    times: [Instant; 8],
    len: u8,
    head: u8,
}

impl SendRing {
    pub(crate) fn push(&mut self, t: Instant) {
        self.times[self.head as usize] = t;
        self.head = (self.head + 1) % 8;
        self.len = (self.len + 1).min(8);
    }
    /// The `k`-th most recent instant (1 = latest).
    fn latest(&self, k: u8) -> Option<Instant> {
        if k == 0 || k > self.len {
            return None;
        }
        let idx = (self.head as usize + 8 - k as usize) % 8;
        Some(self.times[idx])
    }
    /// When the next send is allowed under "at most `limit` per `window`".
    pub(crate) fn release(&self, limit: u8, window: core::time::Duration) -> Option<Instant> {
        self.latest(limit).map(|t| t + window)
    }
}

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
    pub(crate) mux: MuxState,
    pub(crate) actor_churn: ChurnState,
    pub(crate) partner_churn: ChurnState,
    pub(crate) selected: Selected,
    pub(crate) aggregator: Option<AggregatorId>,
    /// Chosen by the fallback option: distributes without an LACP partner.
    pub(crate) fallback: bool,
    /// Why selection keeps this port out (set by selection each round).
    pub(crate) exclusion: Option<Reason>,
    pub(crate) ntt: bool,
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

pub(crate) enum PduOutcome {
    /// Not acted on (link down, machine not listening).
    Ignored,
    /// From our own system.
    Loopback { new: bool },
    /// Recorded; `relevant` when selection or mux inputs changed.
    Accepted { relevant: bool },
}

fn same_identity(a: &ParticipantInfo, b: &ParticipantInfo) -> bool {
    a.port == b.port
        && a.port_priority == b.port_priority
        && a.system == b.system
        && a.system_priority == b.system_priority
        && a.key == b.key
        && a.state.aggregation() == b.state.aggregation()
}

const NTT_BITS: PortState = PortState::from_bits(
    PortState::ACTIVITY.bits()
        | PortState::TIMEOUT.bits()
        | PortState::SYNCHRONIZATION.bits()
        | PortState::AGGREGATION.bits(),
);

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
            mux: MuxState::Detached,
            actor_churn: ChurnState::Monitor,
            partner_churn: ChurnState::Monitor,
            selected: Selected::Unselected,
            aggregator: None,
            fallback: false,
            exclusion: None,
            ntt: false,
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

    /// The LACPDU the Transmit machine sends now: always the newest state (6.4.16).
    pub(crate) fn lacpdu(&self, b: &BondConfig) -> LacpduRepr {
        LacpduRepr {
            version: 1,
            actor: self.actor_info(b),
            partner: self.partner,
            collector_max_delay: 0,
        }
    }

    fn our_timeout(&self, b: &BondConfig) -> core::time::Duration {
        if self.actor_state.short_timeout() {
            b.timers.short_timeout
        } else {
            b.timers.long_timeout
        }
    }

    fn set_partner_sync(&mut self, v: bool) {
        if self.partner.state.synchronization() != v {
            self.counters.partner_sync_transitions += 1;
            self.partner.state.set(PortState::SYNCHRONIZATION, v);
        }
    }

    fn set_actor_sync(&mut self, v: bool) {
        if self.actor_state.synchronization() != v {
            self.counters.actor_sync_transitions += 1;
            self.actor_state.set(PortState::SYNCHRONIZATION, v);
        }
    }

    pub(crate) fn set_selected(&mut self, s: Selected, ctx: &Ctx<'_>) -> bool {
        if self.selected == s {
            return false;
        }
        self.record(Machine::Selection, self.selected.name(), s.name(), ctx);
        self.selected = s;
        true
    }

    /// recordDefault (6.4.9).
    fn record_default(&mut self) {
        let sync = self.partner.state.synchronization();
        self.partner = PARTNER_ADMIN;
        if sync {
            self.counters.partner_sync_transitions += 1;
        }
        self.partner_from_pdu = false;
        self.matched = false;
        self.actor_state.insert(PortState::DEFAULTED);
    }

    // ----- Receive machine (6.4.12) ----------------------------------------------------------

    fn enter_rx(&mut self, to: RxState, ctx: &mut Ctx<'_>) {
        self.record(Machine::Receive, self.rx.name(), to.name(), ctx);
        self.rx = to;
        match to {
            RxState::Initialize => {
                self.set_selected(Selected::Unselected, ctx);
                self.record_default();
                self.actor_state.remove(PortState::EXPIRED);
            }
            RxState::PortDisabled => {
                self.set_partner_sync(false);
                self.stop(Timer::CurrentWhile);
            }
            RxState::Expired => {
                self.set_partner_sync(false);
                self.partner.state.insert(PortState::TIMEOUT);
                self.start(Timer::CurrentWhile, ctx.now + ctx.bond.timers.short_timeout);
                self.actor_state.insert(PortState::EXPIRED);
            }
            RxState::LacpDisabled => {
                self.set_selected(Selected::Unselected, ctx);
                self.record_default();
                self.partner.state.remove(PortState::AGGREGATION);
                self.actor_state.remove(PortState::EXPIRED);
                self.stop(Timer::CurrentWhile);
            }
            RxState::Defaulted => {
                // update_Default_Selected, then recordDefault.
                if !same_identity(&self.partner, &PARTNER_ADMIN) {
                    self.set_selected(Selected::Unselected, ctx);
                }
                self.record_default();
                self.actor_state.remove(PortState::EXPIRED);
                self.stop(Timer::CurrentWhile);
            }
            RxState::Current => {}
        }
    }

    /// BEGIN: INITIALIZE, then the machines' initial states.
    pub(crate) fn begin(&mut self, ctx: &mut Ctx<'_>) {
        self.refresh_admin_bits(ctx.bond);
        self.enter_rx(RxState::Initialize, ctx);
        self.enter_mux(MuxState::Detached, ctx);
    }

    /// The Receive machine's transitions that do not need a PDU or a timer.
    pub(crate) fn rx_step(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let enabled = self.link.up;
        let next = match self.rx {
            RxState::Initialize => Some(RxState::PortDisabled),
            RxState::PortDisabled if enabled && self.lacp_enabled => Some(RxState::Expired),
            RxState::PortDisabled if enabled => Some(RxState::LacpDisabled),
            RxState::PortDisabled => None,
            RxState::LacpDisabled if self.lacp_enabled || !enabled => Some(RxState::PortDisabled),
            _ if !enabled => Some(RxState::PortDisabled),
            _ => None,
        };
        match next {
            Some(to) => {
                self.enter_rx(to, ctx);
                true
            }
            None => false,
        }
    }

    /// A received LACPDU: CURRENT with update_Selected, update_NTT, recordPDU (6.4.12, 6.4.9).
    pub(crate) fn rx_pdu(&mut self, pdu: &LacpduRepr, ctx: &mut Ctx<'_>) -> PduOutcome {
        self.counters.lacpdus_rx += 1;
        if !self.link.up {
            // Carrier down but PDUs arriving (slow PHY reporting): ignore, as OVS b3e8cd6b3.
            self.counters.rx_while_link_down += 1;
            return PduOutcome::Ignored;
        }
        if !matches!(
            self.rx,
            RxState::Current | RxState::Expired | RxState::Defaulted
        ) {
            return PduOutcome::Ignored;
        }
        self.last_rx = Some(ctx.now);
        self.last_lacpdu = Some(*pdu);
        self.refresh_admin_bits(ctx.bond);

        // Loopback: our own System ID as the actor. Kept out of selection until no looped PDU has
        // been seen for one of our timeouts (the link may be recabled).
        if pdu.actor.system == ctx.bond.system.mac {
            self.counters.loopback_rx += 1;
            self.start(Timer::Loopback, ctx.now + self.our_timeout(ctx.bond));
            let new = !self.loopback;
            if new {
                self.loopback = true;
                ctx.events.push_back(Event::Loopback {
                    port: self.id,
                    detected: true,
                });
            }
            return PduOutcome::Loopback { new };
        }
        let was_loopback = self.loopback;
        if was_loopback {
            self.clear_loopback(ctx);
        }

        let before = (self.rx, self.partner, self.matched, self.selected);
        let actor = self.actor_info(ctx.bond);

        // update_Selected: the partner on this link is not who it was.
        if !same_identity(&pdu.actor, &self.partner) {
            self.set_selected(Selected::Unselected, ctx);
        }
        // update_NTT: the partner's view of us is out of date.
        let view = &pdu.partner;
        if view.port != actor.port
            || view.port_priority != actor.port_priority
            || view.system != actor.system
            || view.system_priority != actor.system_priority
            || view.key != actor.key
            || (view.state.bits() ^ actor.state.bits()) & NTT_BITS.bits() != 0
        {
            self.ntt = true;
        }
        // recordPDU: Matched is the partner's view of us (or an individual partner); the
        // partner is in sync only when matched, it says so, and one of us is active.
        let matched = (view.port == actor.port
            && view.port_priority == actor.port_priority
            && view.system == actor.system
            && view.system_priority == actor.system_priority
            && view.key == actor.key
            && view.state.aggregation() == actor.state.aggregation())
            || !pdu.actor.state.aggregation();
        let sync = matched
            && pdu.actor.state.synchronization()
            && (pdu.actor.state.activity()
                || (actor.state.activity() && pdu.partner.state.activity()));
        let old_sync = self.partner.state.synchronization();
        self.partner = pdu.actor;
        self.partner.state.set(PortState::SYNCHRONIZATION, old_sync);
        self.set_partner_sync(sync);
        self.partner_from_pdu = true;
        self.matched = matched;
        self.actor_state.remove(PortState::DEFAULTED);
        self.start(Timer::CurrentWhile, ctx.now + self.our_timeout(ctx.bond));
        self.actor_state.remove(PortState::EXPIRED);
        if self.rx != RxState::Current {
            self.enter_rx(RxState::Current, ctx);
        }
        let after = (self.rx, self.partner, self.matched, self.selected);
        PduOutcome::Accepted {
            relevant: was_loopback || before != after,
        }
    }

    pub(crate) fn clear_loopback(&mut self, ctx: &mut Ctx<'_>) {
        self.loopback = false;
        self.stop(Timer::Loopback);
        ctx.events.push_back(Event::Loopback {
            port: self.id,
            detected: false,
        });
    }

    /// Our Timeout bit changed: re-arm a running current_while with the new timeout, as if the
    /// last LACPDU had just arrived. (802.1AX leaves the old value running; a partner that
    /// obeys our switch to slow then sends its next LACPDU 30 s later and we would expire it
    /// at 3 s. Going fast, the partner answers our NTT at once.)
    pub(crate) fn rearm_current_while(&mut self, now: Instant, b: &BondConfig) {
        if self.rx == RxState::Current {
            let timeout = if b.rate == Rate::Fast {
                b.timers.short_timeout
            } else {
                b.timers.long_timeout
            };
            self.start(Timer::CurrentWhile, now + timeout);
        }
    }

    /// current_while expired: CURRENT -> EXPIRED, EXPIRED -> DEFAULTED.
    pub(crate) fn current_while_expired(&mut self, ctx: &mut Ctx<'_>) {
        self.stop(Timer::CurrentWhile);
        match self.rx {
            RxState::Current => self.enter_rx(RxState::Expired, ctx),
            RxState::Expired => self.enter_rx(RxState::Defaulted, ctx),
            _ => {}
        }
    }

    // ----- Periodic Transmission machine (6.4.13) --------------------------------------------

    fn enter_ptx(&mut self, to: PeriodicState, ctx: &mut Ctx<'_>) {
        self.record(Machine::Periodic, self.ptx.name(), to.name(), ctx);
        self.ptx = to;
        let t = &ctx.bond.timers;
        match to {
            PeriodicState::NoPeriodic => self.stop(Timer::Periodic),
            PeriodicState::FastPeriodic => {
                self.start(Timer::Periodic, ctx.now + t.fast_periodic_tx)
            }
            PeriodicState::SlowPeriodic => {
                self.start(Timer::Periodic, ctx.now + t.slow_periodic_tx)
            }
            PeriodicState::PeriodicTx => self.ntt = true,
        }
    }

    pub(crate) fn ptx_step(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let off = !self.link.up
            || !self.lacp_enabled
            || (!self.actor_state.activity() && !self.partner.state.activity());
        if off {
            if self.ptx != PeriodicState::NoPeriodic {
                self.enter_ptx(PeriodicState::NoPeriodic, ctx);
                return true;
            }
            return false;
        }
        let partner_short = self.partner.state.short_timeout();
        match self.ptx {
            PeriodicState::NoPeriodic => {
                // fastlag: the first LACPDU leaves as soon as LACP starts on a port (link up,
                // port added, active partner heard by a passive port) instead of one period
                // later; the transmit limit still applies.
                self.enter_ptx(PeriodicState::FastPeriodic, ctx);
                self.ntt = true;
                true
            }
            PeriodicState::FastPeriodic if !partner_short => {
                // fast -> slow does not send at once (Figure 6-19).
                self.enter_ptx(PeriodicState::SlowPeriodic, ctx);
                true
            }
            PeriodicState::SlowPeriodic if partner_short => {
                // slow -> fast sends at once through PERIODIC_TX.
                self.enter_ptx(PeriodicState::PeriodicTx, ctx);
                self.enter_ptx(PeriodicState::FastPeriodic, ctx);
                true
            }
            PeriodicState::PeriodicTx => {
                let to = if partner_short {
                    PeriodicState::FastPeriodic
                } else {
                    PeriodicState::SlowPeriodic
                };
                self.enter_ptx(to, ctx);
                true
            }
            _ => false,
        }
    }

    /// periodic_timer expired: PERIODIC_TX (NTT), then back to FAST or SLOW. These ticks are
    /// not written to the history (they would push every real transition out of it).
    pub(crate) fn periodic_expired(&mut self, ctx: &mut Ctx<'_>) {
        let t = &ctx.bond.timers;
        match self.ptx {
            PeriodicState::FastPeriodic | PeriodicState::SlowPeriodic => {
                self.ntt = true;
                if self.partner.state.short_timeout() {
                    self.ptx = PeriodicState::FastPeriodic;
                    self.start(Timer::Periodic, ctx.now + t.fast_periodic_tx);
                } else {
                    self.ptx = PeriodicState::SlowPeriodic;
                    self.start(Timer::Periodic, ctx.now + t.slow_periodic_tx);
                }
            }
            _ => self.stop(Timer::Periodic),
        }
    }

    // ----- Mux machine (6.4.15) --------------------------------------------------------------

    pub(crate) fn partner_sync(&self) -> bool {
        self.partner.state.synchronization() || self.fallback
    }

    fn partner_collecting(&self) -> bool {
        self.partner.state.collecting() || self.fallback
    }

    fn enter_mux(&mut self, to: MuxState, ctx: &mut Ctx<'_>) {
        self.record(Machine::Mux, self.mux.name(), to.name(), ctx);
        self.mux = to;
        match to {
            MuxState::Detached => {
                // Detach_Mux_From_Aggregator is done by the selection logic once DETACHED.
                self.set_actor_sync(false);
                self.actor_state
                    .remove(PortState::COLLECTING | PortState::DISTRIBUTING);
                self.stop(Timer::WaitWhile);
                self.ntt = true;
            }
            MuxState::Waiting => {
                self.ready_n = false;
                if ctx.bond.timers.aggregate_wait.is_zero() {
                    self.ready_n = true;
                } else {
                    self.start(Timer::WaitWhile, ctx.now + ctx.bond.timers.aggregate_wait);
                }
            }
            MuxState::Attached => {
                self.stop(Timer::WaitWhile);
                self.set_actor_sync(true);
                self.actor_state
                    .remove(PortState::COLLECTING | PortState::DISTRIBUTING);
                self.ntt = true;
            }
            MuxState::CollectingDistributing => {
                self.actor_state
                    .insert(PortState::COLLECTING | PortState::DISTRIBUTING);
                self.ntt = true;
            }
            MuxState::Collecting => {
                self.actor_state.insert(PortState::COLLECTING);
                self.actor_state.remove(PortState::DISTRIBUTING);
                self.ntt = true;
            }
            MuxState::Distributing => {
                self.actor_state.insert(PortState::DISTRIBUTING);
                // Not in Figure 6-21, but the partner learns we distribute one period earlier.
                self.ntt = true;
            }
        }
    }

    /// One Mux transition. `ready` is the aggregator's Ready (all SELECTED members waiting to
    /// attach to it have Ready_N).
    pub(crate) fn mux_step(&mut self, ready: bool, ctx: &mut Ctx<'_>) -> bool {
        use MuxState::*;
        let sel = self.selected;
        let unsel_or_standby = matches!(sel, Selected::Unselected | Selected::Standby);
        let in_sync = self.partner_sync();
        let next = match (ctx.bond.mux, self.mux) {
            (_, Detached) if sel != Selected::Unselected && self.aggregator.is_some() => {
                Some(Waiting)
            }
            (_, Detached) => None,
            (_, Waiting) if sel == Selected::Unselected => Some(Detached),
            (_, Waiting) if sel == Selected::Selected && ready => Some(Attached),
            (_, Waiting) => None,
            (_, Attached) if unsel_or_standby => Some(Detached),
            (MuxControl::Coupled, Attached) if in_sync => Some(CollectingDistributing),
            (MuxControl::Independent, Attached) if in_sync => Some(Collecting),
            (_, Attached) => None,
            (_, CollectingDistributing) if unsel_or_standby || !in_sync => Some(Attached),
            (_, CollectingDistributing) => None,
            (_, Collecting) if unsel_or_standby || !in_sync => Some(Attached),
            (MuxControl::Independent, Collecting) if self.partner_collecting() => {
                Some(Distributing)
            }
            (_, Collecting) => None,
            (_, Distributing) if unsel_or_standby || !in_sync || !self.partner_collecting() => {
                Some(Collecting)
            }
            (_, Distributing) => None,
        };
        match next {
            Some(to) => {
                self.enter_mux(to, ctx);
                true
            }
            None => false,
        }
    }

    pub(crate) fn wait_while_expired(&mut self) {
        self.stop(Timer::WaitWhile);
        if self.mux == MuxState::Waiting {
            self.ready_n = true;
        }
    }

    /// Collecting enabled on this port (Enable_Collecting).
    pub(crate) fn collecting(&self) -> bool {
        self.link.up && self.actor_state.collecting()
    }

    /// The mux enabled distributing and the partner can take our frames: it collects and does
    /// not report Expired (fastlag gates distribution on both, in coupled mode too, so a one-way
    /// link stops carrying traffic as soon as the partner says it is not hearing us).
    pub(crate) fn may_distribute(&self) -> bool {
        self.link.up
            && self.actor_state.distributing()
            && (self.fallback
                || (self.partner.state.synchronization()
                    && self.partner.state.collecting()
                    && !self.partner.state.expired()))
    }

    // ----- Churn Detection machines (6.4.17) -------------------------------------------------

    pub(crate) fn churn_step(&mut self, side: Side, ctx: &mut Ctx<'_>) -> bool {
        let (state, timer, sync, machine) = match side {
            Side::Actor => (
                self.actor_churn,
                Timer::ActorChurn,
                self.actor_state.synchronization(),
                Machine::ActorChurn,
            ),
            Side::Partner => (
                self.partner_churn,
                Timer::PartnerChurn,
                self.partner.state.synchronization(),
                Machine::PartnerChurn,
            ),
        };
        let set = |p: &mut Port, s: ChurnState| match side {
            Side::Actor => p.actor_churn = s,
            Side::Partner => p.partner_churn = s,
        };
        if !self.link.up {
            // (BEGIN || !port_enabled) holds the machine in MONITOR with the timer not running.
            let changed = state != ChurnState::Monitor;
            if changed {
                self.record(machine, state.name(), ChurnState::Monitor.name(), ctx);
                set(self, ChurnState::Monitor);
                if state == ChurnState::Churn {
                    ctx.events.push_back(Event::Churn {
                        port: self.id,
                        side,
                        detected: false,
                    });
                }
            }
            self.stop(timer);
            return changed;
        }
        let to = match state {
            ChurnState::Monitor if sync => ChurnState::NoChurn,
            ChurnState::Monitor => {
                if self.timer(timer).is_none() {
                    self.start(timer, ctx.now + ctx.bond.timers.churn_detection);
                }
                return false;
            }
            ChurnState::NoChurn if !sync => ChurnState::Monitor,
            ChurnState::Churn if sync => ChurnState::NoChurn,
            _ => return false,
        };
        self.record(machine, state.name(), to.name(), ctx);
        set(self, to);
        match to {
            ChurnState::Monitor => self.start(timer, ctx.now + ctx.bond.timers.churn_detection),
            _ => self.stop(timer),
        }
        if state == ChurnState::Churn {
            ctx.events.push_back(Event::Churn {
                port: self.id,
                side,
                detected: false,
            });
        }
        true
    }

    pub(crate) fn churn_expired(&mut self, side: Side, ctx: &mut Ctx<'_>) {
        let (state, timer, machine) = match side {
            Side::Actor => (self.actor_churn, Timer::ActorChurn, Machine::ActorChurn),
            Side::Partner => (
                self.partner_churn,
                Timer::PartnerChurn,
                Machine::PartnerChurn,
            ),
        };
        self.stop(timer);
        if state != ChurnState::Monitor {
            return;
        }
        self.record(machine, state.name(), ChurnState::Churn.name(), ctx);
        match side {
            Side::Actor => {
                self.actor_churn = ChurnState::Churn;
                self.counters.actor_churn_count += 1;
            }
            Side::Partner => {
                self.partner_churn = ChurnState::Churn;
                self.counters.partner_churn_count += 1;
            }
        }
        ctx.events.push_back(Event::Churn {
            port: self.id,
            side,
            detected: true,
        });
    }

    // ----- Transmit machine (6.4.16) ---------------------------------------------------------

    /// LACPDUs may leave this port at all: the link is up and the Periodic machine is not in
    /// NO_PERIODIC (6.4.16: no transmission, NTT cleared, in NO_PERIODIC; this is what keeps a
    /// passive port with a passive partner silent, VPP-1551).
    pub(crate) fn tx_allowed(&self) -> bool {
        self.link.up && self.lacp_enabled && self.ptx != PeriodicState::NoPeriodic
    }

    /// When the next LACPDU may leave (at most `tx_limit` per `fast_periodic`).
    pub(crate) fn tx_release(&self, b: &BondConfig) -> Option<Instant> {
        self.tx_ring
            .release(b.timers.tx_limit, b.timers.fast_periodic)
    }

    pub(crate) fn lacpdu_ready(&self, now: Instant, b: &BondConfig) -> bool {
        self.ntt && self.tx_allowed() && self.tx_release(b).is_none_or(|r| r <= now)
    }

    pub(crate) fn record_tx(&mut self, now: Instant) {
        self.ntt = false;
        self.tx_ring.push(now);
        self.last_tx = Some(now);
        self.counters.lacpdus_tx += 1;
    }

    // ----- Marker responder (6.5.4.2) --------------------------------------------------------

    pub(crate) fn marker_rx(&mut self, m: &MarkerRepr, now: Instant, b: &BondConfig) {
        match m.kind {
            MarkerKind::Response => self.counters.marker_response_pdus_rx += 1,
            MarkerKind::Information => {
                self.counters.marker_pdus_rx += 1;
                if !self.link.up {
                    self.counters.rx_while_link_down += 1;
                    return;
                }
                let limited = self
                    .marker_ring
                    .release(b.timers.marker_limit, b.timers.fast_periodic)
                    .is_some_and(|r| r > now);
                if limited || self.marker_queue.len() >= 8 {
                    self.counters.marker_rate_limited += 1;
                    return;
                }
                self.marker_ring.push(now);
                self.marker_queue.push_back(m.response());
            }
        }
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

    pub(crate) fn wants_tx(&self) -> bool {
        (self.ntt && self.tx_allowed()) || (!self.marker_queue.is_empty() && self.link.up)
    }
}
