//! Periodic Transmission machine (802.1AX-2014 clause 6.4.13, Figure 6-19): how often NTT is
//! set for a port, from the partner's Timeout bit.

use crate::info::{Machine, PeriodicState};
use crate::time::Instant;

use super::{Ctx, Port, Timer};

impl Port {
    /// Entry actions of the Periodic Transmission states (Figure 6-19).
    fn enter_ptx(&mut self, to: PeriodicState, ctx: &mut Ctx<'_>) {
        self.record(Machine::Periodic, self.ptx.name(), to.name(), ctx);
        self.ptx = to;
        let t = &ctx.bond.timers;
        match to {
            PeriodicState::NoPeriodic => {
                self.partner_short_until = None;
                self.stop(Timer::Periodic)
            }
            PeriodicState::FastPeriodic => {
                self.start(Timer::Periodic, ctx.now + t.fast_periodic_tx)
            }
            PeriodicState::SlowPeriodic => {
                self.partner_short_until = None;
                self.start(Timer::Periodic, ctx.now + t.slow_periodic_tx)
            }
            PeriodicState::PeriodicTx => self.ntt = true,
        }
    }

    /// fastlag: FAST_PERIODIC is kept after the partner went short -> long while the periodic
    /// tick at `next_tick` still falls before the partner's old short current_while has
    /// certainly ended (`partner_short_until`, set by the Receive machine); a later tick could
    /// not save it, so the machine goes SLOW then.
    fn hold_fast(&self, next_tick: Option<Instant>) -> bool {
        matches!((next_tick, self.partner_short_until), (Some(t), Some(u)) if t < u)
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
        let hold = self.hold_fast(self.timer(Timer::Periodic));
        match self.ptx {
            PeriodicState::NoPeriodic => {
                // fastlag: the first LACPDU leaves as soon as LACP starts on a port (link up,
                // port added, active partner heard by a passive port) instead of one period
                // later; the transmit limit still applies.
                self.enter_ptx(PeriodicState::FastPeriodic, ctx);
                self.ntt = true;
                true
            }
            PeriodicState::FastPeriodic if !partner_short && !hold => {
                // fast -> slow does not send at once (Figure 6-19); a partner we heard go
                // short -> long is first held FAST (`hold`, Port::partner_slowed).
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
                let to = if partner_short || hold {
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
                let next_fast = ctx.now + t.fast_periodic_tx;
                if self.partner.state.short_timeout() || self.hold_fast(Some(next_fast)) {
                    self.ptx = PeriodicState::FastPeriodic;
                    self.start(Timer::Periodic, next_fast);
                } else {
                    self.partner_short_until = None;
                    self.ptx = PeriodicState::SlowPeriodic;
                    self.start(Timer::Periodic, ctx.now + t.slow_periodic_tx);
                }
            }
            _ => self.stop(Timer::Periodic),
        }
    }
}
