//! Transmit machine (802.1AX-2014 clause 6.4.16): NTT gating, the "at most three LACPDUs per
//! Fast_Periodic_Time" limit, and the LACPDU built at send time from the newest state.

use crate::config::BondConfig;
use crate::info::PeriodicState;
use crate::time::Instant;
use crate::wire::LacpduRepr;

use super::Port;

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

impl Port {
    /// The LACPDU the Transmit machine sends now: always the newest state (6.4.16).
    pub(crate) fn lacpdu(&self, b: &BondConfig) -> LacpduRepr {
        LacpduRepr {
            version: 1,
            actor: self.actor_info(b),
            partner: self.partner,
            collector_max_delay: 0,
        }
    }

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

    /// NTT is set, LACPDUs may leave, and the transmit limit allows one now.
    pub(crate) fn lacpdu_ready(&self, now: Instant, b: &BondConfig) -> bool {
        self.ntt && self.tx_allowed() && self.tx_release(b).is_none_or(|r| r <= now)
    }

    /// A LACPDU left: NTT is cleared (6.4.16) and the send is remembered for the limit.
    pub(crate) fn record_tx(&mut self, now: Instant) {
        self.ntt = false;
        self.deferral_counted = false;
        self.tx_ring.push(now);
        self.last_tx = Some(now);
        self.counters.lacpdus_tx += 1;
    }

    /// Whether the port belongs in the engine's transmit queue: a LACPDU is owed, or a Marker
    /// Response is waiting on a live link.
    pub(crate) fn wants_tx(&self) -> bool {
        (self.ntt && self.tx_allowed()) || (!self.marker_queue.is_empty() && self.link.up)
    }
}
