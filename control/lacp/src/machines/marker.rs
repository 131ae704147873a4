//! Marker Responder (802.1AX-2014 clause 6.5.4.2): every Marker Information PDU is answered
//! with a Marker Response carrying the same requester fields, rate limited per port.

use crate::config::BondConfig;
use crate::time::Instant;
use crate::wire::{MarkerKind, MarkerRepr};

use super::Port;

impl Port {
    /// A received Marker PDU. A Response is only counted (we never send requests); an
    /// Information PDU queues its Response unless the link is down, the per-port limit
    /// (`timers.marker_limit` per `fast_periodic`) is reached, or 8 are already waiting.
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
}
