//! Receive machine (802.1AX-2014 clause 6.4.12) and the functions of 6.4.9 it calls:
//! recordPDU, recordDefault, update_Selected, update_Default_Selected and update_NTT.
//! The names follow the standard and Linux `bond_3ad.c` (`__record_pdu`, `__record_default`,
//! `__update_selected`, `__update_default_selected`, `__update_ntt`, `__choose_matched`).

use crate::config::{BondConfig, Fallback, Rate};
use crate::info::{Event, Machine, RxState, Selected};
use crate::time::Instant;
use crate::wire::{LacpduRepr, MacAddr, ParticipantInfo, PortState};

use super::{Ctx, Port, Timer};

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

/// What a received LACPDU did, so that the engine settles the bond only when it must.
pub(crate) enum PduOutcome {
    /// Not acted on (link down, machine not listening).
    Ignored,
    /// From our own system.
    Loopback { new: bool },
    /// Recorded; `relevant` when selection or mux inputs changed.
    Accepted { relevant: bool },
}

/// Same partner identity as far as update_Selected is concerned (6.4.9).
fn same_identity(a: &ParticipantInfo, b: &ParticipantInfo) -> bool {
    a.port == b.port
        && a.port_priority == b.port_priority
        && a.system == b.system
        && a.system_priority == b.system_priority
        && a.key == b.key
        && a.state.aggregation() == b.state.aggregation()
}

/// Matched (recordPDU, 6.4.9; Linux `__choose_matched`): the partner's view of us is our
/// port, port priority, system, system priority, key and Aggregation bit, or the partner is
/// individual (then nothing needs to match).
fn choose_matched(pdu: &LacpduRepr, actor: &ParticipantInfo) -> bool {
    let view = &pdu.partner;
    (view.port == actor.port
        && view.port_priority == actor.port_priority
        && view.system == actor.system
        && view.system_priority == actor.system_priority
        && view.key == actor.key
        && view.state.aggregation() == actor.state.aggregation())
        || !pdu.actor.state.aggregation()
}

/// The Actor_Oper_Port_State bits update_NTT compares with the partner's view of them.
const NTT_BITS: PortState = PortState::from_bits(
    PortState::ACTIVITY.bits()
        | PortState::TIMEOUT.bits()
        | PortState::SYNCHRONIZATION.bits()
        | PortState::AGGREGATION.bits(),
);

impl Port {
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

    /// recordPDU (6.4.9): the PDU's actor information becomes the Partner_Oper values, and
    /// the partner is in sync only when it has the right view of us (choose_matched), says it
    /// is in sync, and one of us is active. `actor` is our information as we send it now.
    fn record_pdu(&mut self, pdu: &LacpduRepr, actor: &ParticipantInfo) {
        let matched = choose_matched(pdu, actor);
        let sync = matched
            && pdu.actor.state.synchronization()
            && (pdu.actor.state.activity()
                || (actor.state.activity() && pdu.partner.state.activity()));
        // Keep the old Synchronization bit for a moment so that set_partner_sync counts a
        // transition only when the bit really changes.
        let old_sync = self.partner.state.synchronization();
        self.partner = pdu.actor;
        self.partner.state.set(PortState::SYNCHRONIZATION, old_sync);
        self.set_partner_sync(sync);
        self.partner_from_pdu = true;
        self.matched = matched;
        self.actor_state.remove(PortState::DEFAULTED);
    }

    /// update_Selected (6.4.9): the partner on this link is not who it was (port, port
    /// priority, system, system priority, key or Aggregation bit), so the port reselects.
    fn update_selected(&mut self, pdu: &LacpduRepr, ctx: &Ctx<'_>) {
        // Fallback: from "nobody hears us" (defaulted, or the partner said it defaulted us)
        // to a partner that still says it defaulted us, the member's LAG ID stays that of
        // the fallback (selection::lag_id), so nothing to reselect.
        if self.fallback_candidate(ctx) && pdu.actor.state.defaulted() {
            return;
        }
        if !same_identity(&pdu.actor, &self.partner) {
            self.set_selected(Selected::Unselected, ctx);
        }
    }

    /// update_Default_Selected (6.4.9): entering DEFAULTED reselects unless the partner
    /// information already is Partner_Admin.
    fn update_default_selected(&mut self, ctx: &Ctx<'_>) {
        // Fallback: a partner that said it defaulted us gave the member the fallback LAG ID
        // already (selection::lag_id); defaulting it too changes nothing.
        if ctx.bond.fallback == Fallback::Individual
            && self.partner_from_pdu
            && self.partner.state.defaulted()
        {
            return;
        }
        if !same_identity(&self.partner, &PARTNER_ADMIN) {
            self.set_selected(Selected::Unselected, ctx);
        }
    }

    /// With `fallback = individual`, no LACP partner hears us on this member: DEFAULTED, or
    /// the partner's LACPDUs say it defaulted us.
    fn fallback_candidate(&self, ctx: &Ctx<'_>) -> bool {
        ctx.bond.fallback == Fallback::Individual
            && (self.rx == RxState::Defaulted
                || (self.partner_from_pdu && self.partner.state.defaulted()))
    }

    /// update_NTT (6.4.9): the partner's view of us is out of date, so it must hear from us.
    /// Of the state bits only the four the standard lists count (`NTT_BITS`), so two engines in
    /// steady state exchange nothing but the periodic LACPDUs.
    fn update_ntt(&mut self, pdu: &LacpduRepr, actor: &ParticipantInfo) {
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
    }

    /// Entry actions of the Receive states (6.4.12). CURRENT's actions depend on the PDU and
    /// are in [`Port::rx_pdu`].
    pub(crate) fn enter_rx(&mut self, to: RxState, ctx: &mut Ctx<'_>) {
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
                self.update_default_selected(ctx);
                self.record_default();
                self.actor_state.remove(PortState::EXPIRED);
                self.stop(Timer::CurrentWhile);
            }
            RxState::Current => {}
        }
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
        let was_short = self
            .last_lacpdu
            .is_some_and(|l| l.actor.state.short_timeout());
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

        // CURRENT (6.4.12): update_Selected, update_NTT, recordPDU, then restart
        // current_while with our own timeout and clear Expired.
        self.update_selected(pdu, ctx);
        self.update_ntt(pdu, &actor);
        self.record_pdu(pdu, &actor);
        self.start(Timer::CurrentWhile, ctx.now + self.our_timeout(ctx.bond));
        self.actor_state.remove(PortState::EXPIRED);
        if was_short && !pdu.actor.state.short_timeout() {
            self.partner_slowed(ctx);
        }
        if self.rx != RxState::Current {
            self.enter_rx(RxState::Current, ctx);
        }
        let after = (self.rx, self.partner, self.matched, self.selected);
        PduOutcome::Accepted {
            relevant: was_loopback || before != after,
        }
    }

    /// No looped-back LACPDU for one of our timeouts (or a PDU from another system): the port may
    /// take part in selection again.
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

    /// The partner's own Timeout bit went short -> long (it was told to go slow). Its
    /// current_while still runs with the short timeout our last LACPDU armed, and 802.1AX
    /// re-arms it only when a PDU from us arrives; going straight to SLOW_PERIODIC (Figure
    /// 6-19) would let it expire us about 3 s later. So: one LACPDU now, and FAST_PERIODIC for
    /// one short timeout (the partner's old current_while ends within it), which also covers a
    /// lost LACPDU. The mirror of `rearm_current_while`.
    fn partner_slowed(&mut self, ctx: &Ctx<'_>) {
        self.partner_short_until = Some(ctx.now + ctx.bond.timers.short_timeout);
        self.ntt = true;
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
}
