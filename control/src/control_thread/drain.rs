//! `ctl member drain|undrain`: taking a member out of an 802.3ad bond without losing a
//! frame, and bringing it back. A pure state machine on the LACP engine's clock; the
//! control thread performs what each step asks (LACP drain flag, table republish, log,
//! admin event), so the timing is testable without a dataplane.
//!
//! Drain: our egress leaves the member first; [`DRAIN_EGRESS_SETTLE`] later LACP advertises
//! it out of sync; it keeps collecting until the partner has stopped sending on it. Undrain:
//! it collects at once, LACP advertises it in sync, our egress returns after
//! [`UNDRAIN_EGRESS_HOLD`].

use std::time::Duration;

use lacp::Instant;

/// Drain: time between taking a member out of our distribution table and advertising it
/// out of sync, so that no frame a worker already hashed to it leaves after the partner
/// has stopped accepting on it.
pub const DRAIN_EGRESS_SETTLE: Duration = Duration::from_millis(20);
/// Drain: a drained member keeps collecting after it was advertised out of sync, for the
/// frames the partner sends until it has acted on our LACPDU (and those in flight): at
/// least this long, and until no data frame arrived on it for [`DRAIN_QUIET`].
pub const DRAIN_COLLECT_HOLD: Duration = Duration::from_secs(1);
/// Drain: the partner counts as gone from the member after this long without a data frame.
pub const DRAIN_QUIET: Duration = Duration::from_millis(300);
/// Drain: collecting stops after this long even if the partner keeps sending (it ignores
/// our out-of-sync LACPDUs); a warning says so.
pub const DRAIN_COLLECT_MAX: Duration = Duration::from_secs(30);
/// Undrain: the member collects from the start; the hold ends when the engine collects
/// on it, or after this long.
pub const UNDRAIN_COLLECT_HOLD: Duration = Duration::from_secs(10);
/// Undrain: our egress returns to the member this long after it was advertised in sync
/// again, so that the partner has acted on that LACPDU (a partner drops frames on a link
/// it has not enabled yet; Open vSwitch does).
pub const UNDRAIN_EGRESS_HOLD: Duration = Duration::from_millis(500);

/// A member's drain state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum Drain {
    /// Not drained.
    #[default]
    Off,
    /// Out of our distribution table; LACP not told yet.
    Leaving { since: Instant },
    /// Advertised out of sync; collecting until `hold_until` and the partner is quiet.
    Drained {
        since: Instant,
        hold_until: Instant,
        hold_over: bool,
        /// Data frames received on the member (workers' count), and when it last changed.
        rx: u64,
        rx_changed: Instant,
    },
    /// Undrained: collecting (forced) until the engine collects, or `until`; no egress
    /// before `since + UNDRAIN_EGRESS_HOLD`.
    Rejoining { since: Instant, until: Instant },
}

/// What an operator's request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requested {
    /// The member's state now ("draining", "drained", "undrained", "rejoining").
    pub(crate) state: &'static str,
    /// When nothing changed, why.
    pub(crate) note: Option<&'static str>,
    /// Tell the LACP engine: drained (`true`) or not (`false`).
    pub(crate) engine_drain: Option<bool>,
    /// The table overlay changed: publish again.
    pub(crate) changed: bool,
    /// For `show events`.
    pub(crate) admin: Option<&'static str>,
}

/// What time did to a drain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// Egress has settled: tell LACP the member is drained (advertise it out of sync).
    AdvertiseOutOfSync,
    /// The member stops collecting: the partner went quiet (`quiet`), or it kept sending
    /// for [`DRAIN_COLLECT_MAX`].
    CollectingOff { quiet: bool, after: Duration },
    /// The rejoin is complete (the engine collects, or the hold ran out).
    Rejoined { lacp_collecting: bool },
}

impl Drain {
    /// The member carries no egress (drain in progress or drained, or just undrained).
    pub(crate) fn egress_blocked(&self, now: Instant) -> bool {
        match self {
            Drain::Leaving { .. } | Drain::Drained { .. } => true,
            Drain::Rejoining { since, .. } => {
                now.saturating_duration_since(*since) < UNDRAIN_EGRESS_HOLD
            }
            Drain::Off => false,
        }
    }

    /// The member keeps collecting whatever LACP says (drain and undrain transitions).
    pub(crate) fn collect_forced(&self) -> bool {
        match self {
            Drain::Leaving { .. } | Drain::Rejoining { .. } => true,
            Drain::Drained { hold_over, .. } => !hold_over,
            Drain::Off => false,
        }
    }

    /// The operator asks to drain (`on`) or undrain the member.
    pub(crate) fn request(&mut self, on: bool, now: Instant) -> Result<Requested, String> {
        let done = |state, engine_drain, admin| Requested {
            state,
            note: None,
            engine_drain,
            changed: true,
            admin: Some(admin),
        };
        let unchanged = |state, note| Requested {
            state,
            note: Some(note),
            engine_drain: None,
            changed: false,
            admin: None,
        };
        match (on, *self) {
            (true, Drain::Off | Drain::Rejoining { .. }) => {
                // Back from rejoining: the engine was told to undrain already; telling it
                // again changes nothing but keeps the two in step.
                let engine = matches!(self, Drain::Rejoining { .. }).then_some(false);
                *self = Drain::Leaving { since: now };
                Ok(done(
                    "draining",
                    engine,
                    "drain requested: egress moved off",
                ))
            }
            (true, _) => Ok(unchanged("drained", "already drained")),
            (false, Drain::Off) => Err("not drained".into()),
            (false, Drain::Leaving { .. }) => {
                *self = Drain::Off;
                Ok(done("undrained", None, "undrained (drain cancelled)"))
            }
            (false, Drain::Rejoining { .. }) => Ok(unchanged("rejoining", "already undrained")),
            (false, Drain::Drained { .. }) => {
                *self = Drain::Rejoining {
                    since: now,
                    until: now + UNDRAIN_COLLECT_HOLD,
                };
                Ok(done("rejoining", Some(false), "undrained: rejoining"))
            }
        }
    }

    /// Advances with time. `data_rx` is the workers' count of data frames received on the
    /// member (when known), `lacp_collecting` whether the engine collects on it.
    pub(crate) fn advance(
        &mut self,
        now: Instant,
        data_rx: Option<u64>,
        lacp_collecting: bool,
    ) -> Option<Step> {
        match *self {
            Drain::Leaving { since }
                if now.saturating_duration_since(since) >= DRAIN_EGRESS_SETTLE =>
            {
                *self = Drain::Drained {
                    since: now,
                    hold_until: now + DRAIN_COLLECT_HOLD,
                    hold_over: false,
                    rx: data_rx.unwrap_or(0),
                    rx_changed: now,
                };
                Some(Step::AdvertiseOutOfSync)
            }
            Drain::Drained {
                since,
                hold_until,
                hold_over: false,
                rx,
                rx_changed,
            } => {
                let (rx, rx_changed) = match data_rx {
                    Some(n) if n != rx => (n, now),
                    _ => (rx, rx_changed),
                };
                let quiet = now.saturating_duration_since(rx_changed) >= DRAIN_QUIET;
                let too_long = now.saturating_duration_since(since) >= DRAIN_COLLECT_MAX;
                let over = now >= hold_until && (quiet || too_long);
                *self = Drain::Drained {
                    since,
                    hold_until,
                    hold_over: over,
                    rx,
                    rx_changed,
                };
                over.then(|| Step::CollectingOff {
                    quiet,
                    after: now.saturating_duration_since(since),
                })
            }
            Drain::Rejoining { since, until } => {
                let egress_held = now.saturating_duration_since(since) < UNDRAIN_EGRESS_HOLD;
                if (lacp_collecting && !egress_held) || now >= until {
                    *self = Drain::Off;
                    Some(Step::Rejoined { lacp_collecting })
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn drain_settles_then_holds_until_the_partner_is_quiet() {
        let mut d = Drain::Off;
        let r = d.request(true, ms(1000)).unwrap();
        assert_eq!(
            (r.state, r.engine_drain, r.changed),
            ("draining", None, true)
        );
        assert!(d.egress_blocked(ms(1000)) && d.collect_forced());
        assert_eq!(d.advance(ms(1010), Some(5), false), None, "settling");
        assert_eq!(
            d.advance(ms(1020), Some(5), false),
            Some(Step::AdvertiseOutOfSync)
        );
        // The partner keeps sending for 1.5 s: collecting stays on past the 1 s hold.
        let mut rx = 5;
        for t in (1030..=2520).step_by(10) {
            rx += 1;
            assert_eq!(d.advance(ms(t), Some(rx), false), None, "at {t} ms");
        }
        assert!(d.collect_forced());
        // Quiet for DRAIN_QUIET: collecting goes off.
        assert_eq!(d.advance(ms(2810), Some(rx), false), None);
        assert_eq!(
            d.advance(ms(2820), Some(rx), false),
            Some(Step::CollectingOff {
                quiet: true,
                after: Duration::from_millis(1800)
            })
        );
        assert!(!d.collect_forced() && d.egress_blocked(ms(2820)));
        assert_eq!(d.advance(ms(9000), Some(rx), false), None, "stays drained");
        let r = d.request(true, ms(9000)).unwrap();
        assert_eq!(
            (r.state, r.note, r.changed),
            ("drained", Some("already drained"), false)
        );
    }

    #[test]
    fn a_partner_that_never_stops_is_cut_off_after_the_maximum() {
        let mut d = Drain::Off;
        d.request(true, ms(0)).unwrap();
        d.advance(ms(20), Some(0), false);
        let mut step = None;
        for t in (30..=40_000).step_by(10) {
            if let Some(s) = d.advance(ms(t), Some(t), false) {
                step = Some((t, s));
                break;
            }
        }
        let (t, s) = step.expect("collecting stops");
        assert_eq!(t, 20 + DRAIN_COLLECT_MAX.as_millis() as u64);
        assert!(matches!(s, Step::CollectingOff { quiet: false, .. }));
    }

    #[test]
    fn undrain_collects_at_once_and_holds_egress() {
        let mut d = Drain::Off;
        assert!(d.request(false, ms(0)).is_err(), "nothing to undrain");
        d.request(true, ms(0)).unwrap();
        d.advance(ms(20), None, false);
        let r = d.request(false, ms(100)).unwrap();
        assert_eq!((r.state, r.engine_drain), ("rejoining", Some(false)));
        assert!(d.collect_forced() && d.egress_blocked(ms(599)) && !d.egress_blocked(ms(600)));
        // The engine collects at once, but our egress waits for the hold.
        assert_eq!(d.advance(ms(300), None, true), None);
        assert_eq!(
            d.advance(ms(600), None, true),
            Some(Step::Rejoined {
                lacp_collecting: true
            })
        );
        assert_eq!(d, Drain::Off);
    }

    #[test]
    fn undrain_without_lacp_ends_after_the_collect_hold() {
        let mut d = Drain::Off;
        d.request(true, ms(0)).unwrap();
        d.advance(ms(20), None, false);
        d.request(false, ms(1000)).unwrap();
        assert_eq!(d.advance(ms(10_999), None, false), None);
        assert_eq!(
            d.advance(ms(11_000), None, false),
            Some(Step::Rejoined {
                lacp_collecting: false
            })
        );
    }

    #[test]
    fn cancelling_before_lacp_was_told() {
        let mut d = Drain::Off;
        d.request(true, ms(0)).unwrap();
        let r = d.request(false, ms(5)).unwrap();
        assert_eq!((r.state, r.engine_drain), ("undrained", None));
        assert_eq!(d, Drain::Off);
    }
}
