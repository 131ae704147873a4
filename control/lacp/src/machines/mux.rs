//! Mux machine (802.1AX-2014 clause 6.4.15), with independent control (COLLECTING and
//! DISTRIBUTING apart) or coupled control (COLLECTING_DISTRIBUTING), chosen per bond by
//! `MuxControl`.

use crate::config::MuxControl;
use crate::info::{Machine, MuxState, Selected};
use crate::wire::PortState;

use super::{Ctx, Port, Timer};

impl Port {
    /// Partner.Sync as the Mux machine sees it: the fallback member has no partner to wait for.
    pub(crate) fn partner_sync(&self) -> bool {
        self.partner.state.synchronization() || self.fallback
    }

    /// Partner.Collecting as the independent-control Mux machine sees it (fallback as above).
    fn partner_collecting(&self) -> bool {
        self.partner.state.collecting() || self.fallback
    }

    /// Entry actions of the Mux states (6.4.15).
    pub(crate) fn enter_mux(&mut self, to: MuxState, ctx: &mut Ctx<'_>) {
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

    /// wait_while_timer expired: Ready_N for this port if it is still WAITING (6.4.8).
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
}
