//! Periodic Transmission machine (802.1AX-2014 clause 6.4.13, Figure 6-19): how often NTT is
//! set for a port, from the partner's Timeout bit.

use crate::info::{Machine, PeriodicState};

use super::{Ctx, Port, Timer};

impl Port {
    /// Entry actions of the Periodic Transmission states (Figure 6-19).
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

    /// One Periodic Transmission transition that does not need the periodic timer: NO_PERIODIC
    /// while the link is down, LACP is disabled or both sides are passive, else FAST or SLOW
    /// from the partner's Timeout bit.
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
}
