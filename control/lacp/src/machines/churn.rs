//! Actor and Partner Churn Detection machines (802.1AX-2014 clause 6.4.17): a port whose
//! synchronization does not settle within Churn_Detection_Time is reported.

use crate::info::{ChurnState, Event, Machine, Side};

use super::{Ctx, Port, Timer};

impl Port {
    /// One transition of the Actor or Partner Churn Detection machine, from that side's
    /// Synchronization bit. Carrier loss holds the machine in MONITOR with its timer stopped.
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

    /// actor_churn_timer or partner_churn_timer expired: MONITOR -> CHURN, counted and reported
    /// as an [`Event::Churn`].
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
}
