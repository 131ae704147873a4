//! "Why is this member not distributing?" in plain words, with the evidence an operator
//! needs to act on it. The management API (`fastlag ctl why`) and the tests that drive the
//! simulator both call [`explain`], so what the simulator proves is what operators read.

use core::time::Duration;

use crate::config::{Activity, Duplex, Speed};
use crate::engine::PortId;
use crate::info::{BondInfo, Cause, KeySide, PortInfo, Reason};
use crate::time::Instant;

/// Broad classes of reasons, stable names for scripts (`ctl why --json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// No carrier.
    LinkDown,
    /// The partner sends no LACPDUs (never heard, expired, or defaulted).
    SilentPartner,
    /// Our key or the partner's differs from the active aggregator's.
    KeyMismatch,
    /// Both ends passive: we are, and the partner's LACPDUs said it is (silence alone is
    /// [`Class::SilentPartner`]).
    PassivePassive,
    /// The bond has fewer usable members than min_links.
    BelowMinLinks,
    /// max_active reached: kept in standby.
    Standby,
    /// Drained by the operator.
    Drain,
    /// Another partner system, another aggregator, an individual link, fallback.
    OtherAggregator,
    /// The partner does not (yet) agree: not in sync, not collecting, wrong view of us,
    /// not hearing us.
    PartnerState,
    /// Loopback.
    Loopback,
    /// A transition in progress (aggregate wait, reselecting, settling).
    Settling,
}

impl Class {
    /// Snake-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Class::LinkDown => "link_down",
            Class::SilentPartner => "silent_partner",
            Class::KeyMismatch => "key_mismatch",
            Class::PassivePassive => "passive_passive",
            Class::BelowMinLinks => "below_min_links",
            Class::Standby => "standby",
            Class::Drain => "drain",
            Class::OtherAggregator => "other_aggregator",
            Class::PartnerState => "partner_state",
            Class::Loopback => "loopback",
            Class::Settling => "settling",
        }
    }
}

/// One member's explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    /// The class.
    pub class: Class,
    /// One sentence.
    pub summary: String,
    /// Facts behind it, one per line.
    pub evidence: Vec<String>,
}

/// Seconds with one decimal ("3.2 s").
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// An instant for people: the wall-clock time `at` gives, and with `now` also its age.
/// Text that is stored and read later (the status file) passes `None`: an age would freeze
/// there. An engine [`Instant`] itself is never shown: it is neither a time nor an age.
fn when(t: Instant, now: Option<Instant>, at: &dyn Fn(Instant) -> String) -> String {
    match now {
        Some(now) => format!(
            "{} ago (at {})",
            secs(now.saturating_duration_since(t)),
            at(t)
        ),
        None => format!("at {}", at(t)),
    }
}

fn activity_word(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "passive"
    }
}

/// The only evidence of a passive partner: its last LACPDU on this member said
/// Activity = passive. Silence is none (an active partner whose LACPDUs are lost, or that
/// does not run LACP, is silent too). A looped-back LACPDU of our own is not the partner's.
fn partner_said_passive(port: &PortInfo) -> bool {
    port.last_lacpdu
        .is_some_and(|l| !l.actor.state.activity() && l.actor.system != port.actor.system)
}

/// What this member received, from the same counter and record the other statements use,
/// so that `why` never says "never received" next to a non-zero count.
fn receipts(port: &PortInfo, now: Option<Instant>, at: &dyn Fn(Instant) -> String) -> String {
    let c = &port.counters;
    match (port.last_rx, port.last_lacpdu) {
        _ if c.lacpdus_rx == 0 => "no LACPDU was ever received on this member".to_string(),
        (Some(t), Some(l)) => format!(
            "last LACPDU received {}, from {} with Activity = {}",
            when(t, now, at),
            l.actor.system_id(),
            activity_word(l.actor.state.activity())
        ),
        (Some(t), None) => format!("last LACPDU received {}", when(t, now, at)),
        (None, _) => format!(
            "{} LACPDU(s) arrived on this member but none was used ({} while the link was down)",
            c.lacpdus_rx, c.rx_while_link_down
        ),
    }
}

/// [`Reason::PassivePassive`] in words: both ends passive only on evidence; otherwise what
/// was (not) heard, and that the partner must be active since we are not.
fn passive_summary(
    port: &PortInfo,
    now: Option<Instant>,
    at: &dyn Fn(Instant) -> String,
) -> (Class, String) {
    match port.last_rx {
        Some(t) if partner_said_passive(port) => (
            Class::PassivePassive,
            format!(
                "both ends passive: the partner's last LACPDU, received {}, said Activity = \
                 passive and we are passive, so neither side sends (set lacp activity = \
                 \"active\" here or on the partner)",
                when(t, now, at)
            ),
        ),
        Some(t) => (
            Class::SilentPartner,
            format!(
                "partner silent: last LACPDU {}; we are passive and only answer an active \
                 partner, so LACP resumes when the partner sends again (or set lacp activity = \
                 \"active\" here)",
                when(t, now, at)
            ),
        ),
        None => (
            Class::SilentPartner,
            format!(
                "{} from the partner and we are passive: LACP starts only if the partner is \
                 active (check that it runs LACP in active mode on this link, or set lacp \
                 activity = \"active\" here)",
                if port.counters.lacpdus_rx == 0 {
                    "no LACPDU received"
                } else {
                    "no usable LACPDU"
                }
            ),
        ),
    }
}

/// The member's reason in one line, for `ctl show bond`, `ctl show lacp`, the status file
/// and the logs: instants as wall-clock times from `at`, with ages when `now` is given (only
/// for text rendered when it is read; stored text passes `None`). `None` when distributing.
pub fn reason_text(
    port: &PortInfo,
    now: Option<Instant>,
    at: &dyn Fn(Instant) -> String,
    name: &dyn Fn(PortId) -> Option<String>,
) -> Option<String> {
    let reason = port.reason.as_ref()?;
    Some(match reason {
        Reason::FallbackStandby { active_port } => format!(
            "fallback: no LACPDU heard from the partner on this link; member {} carries the \
             traffic",
            name(*active_port).unwrap_or_else(|| active_port.to_string())
        ),
        Reason::PassivePassive => passive_summary(port, now, at).1,
        Reason::LacpNotHeard { since } => format!(
            "LACP not heard from the partner since the link came up {}: partner not running \
             LACP, or not sending to us",
            when(*since, now, at)
        ),
        Reason::PartnerExpired { last_rx, timeout } => format!(
            "partner silent: last LACPDU {}, expired after {}",
            when(*last_rx, now, at),
            secs(*timeout)
        ),
        Reason::Defaulted { last_rx: Some(t) } => format!(
            "partner silent: last LACPDU {}, using default partner information",
            when(*t, now, at)
        ),
        // The other reasons hold no instant.
        r => r.to_string(),
    })
}

fn timeout_words(short: bool) -> &'static str {
    if short {
        "short timeout"
    } else {
        "long timeout"
    }
}

/// Explains why `port` (a member of `bond`) is not distributing; `None` when it is.
/// `at` renders an engine instant as a time of day for people (the simulator passes
/// `Instant`'s own display).
pub fn explain(
    port: &PortInfo,
    bond: &BondInfo,
    now: Instant,
    at: &dyn Fn(Instant) -> String,
) -> Option<Why> {
    let reason = port.reason.as_ref()?;
    let ago = |t: Instant| now.saturating_duration_since(t);
    let mut evidence = Vec::new();
    let rx_count = format!(
        "LACPDUs received on this member: {}, sent: {}{}",
        port.counters.lacpdus_rx,
        port.counters.lacpdus_tx,
        port.last_tx
            .map(|t| format!(" (last sent at {}, {} ago)", at(t), secs(ago(t))))
            .unwrap_or_default()
    );
    let (class, summary) = match reason {
        Reason::LinkDown => {
            if let Some(t) = port
                .history
                .iter()
                .rev()
                .find(|t| t.cause == Cause::LinkDown)
                .map(|t| t.at)
            {
                evidence.push(format!(
                    "link went down at {} ({} ago)",
                    at(t),
                    secs(ago(t))
                ));
            }
            (
                Class::LinkDown,
                "link down: no carrier on this member".to_string(),
            )
        }
        Reason::Loopback => (Class::Loopback, reason.to_string()),
        Reason::PassivePassive => {
            evidence.push(format!(
                "our LACP activity is {}: we send LACPDUs only while we hear an active partner",
                activity_word(bond.activity == Activity::Active)
            ));
            evidence.push(receipts(port, Some(now), at));
            evidence.push(rx_count.clone());
            evidence.push(format!("receive machine {}", port.rx_state));
            passive_summary(port, Some(now), at)
        }
        Reason::LacpNotHeard { since } => {
            evidence.push(receipts(port, Some(now), at));
            evidence.push(rx_count.clone());
            evidence.push(format!("receive machine {}", port.rx_state));
            (
                Class::SilentPartner,
                format!(
                    "no LACPDU from the partner since the link came up {} ago (at {}): the \
                     partner does not run LACP on this link or does not send to us",
                    secs(ago(*since)),
                    at(*since)
                ),
            )
        }
        Reason::PartnerExpired { last_rx, timeout } => {
            evidence.push(rx_count.clone());
            evidence.push(format!("receive machine {}", port.rx_state));
            (
                Class::SilentPartner,
                format!(
                    "no LACPDU from partner for {} ({}, {}); last one at {}",
                    secs(ago(*last_rx)),
                    timeout_words(port.actor.state.short_timeout()),
                    secs(*timeout),
                    at(*last_rx)
                ),
            )
        }
        Reason::Defaulted { last_rx } => {
            evidence.push(rx_count.clone());
            evidence.push(format!(
                "receive machine {}: default partner information in use",
                port.rx_state
            ));
            let s = match last_rx {
                Some(t) => format!(
                    "no LACPDU from partner for {} ({}); last one at {}",
                    secs(ago(*t)),
                    timeout_words(port.actor.state.short_timeout()),
                    at(*t)
                ),
                None if port.counters.lacpdus_rx == 0 => {
                    "no LACPDU ever received from the partner".to_string()
                }
                None => format!(
                    "no usable LACPDU from the partner ({})",
                    receipts(port, Some(now), at)
                ),
            };
            (Class::SilentPartner, s)
        }
        Reason::Drained => {
            evidence.push(format!(
                "we advertise {} (synchronization cleared), so the partner stops sending on it",
                port.actor.state
            ));
            (
                Class::Drain,
                "drained by the operator (fastlag ctl member undrain brings it back)".to_string(),
            )
        }
        Reason::Standby { max_active } => {
            evidence.push(format!(
                "this member: port priority {}, port number {} (lower wins)",
                port.actor.port_priority, port.actor.port
            ));
            (
                Class::Standby,
                format!(
                    "standby: max_active is {max_active} and that many members with better \
                     priority are active"
                ),
            )
        }
        Reason::BelowMinLinks {
            available,
            min_links,
        } => {
            evidence.push(format!(
                "distributing members of the bond: {}",
                bond.distribution.len()
            ));
            (
                Class::BelowMinLinks,
                format!(
                    "bond below min_links: {available} usable member(s), {min_links} required, so \
                     no member distributes"
                ),
            )
        }
        Reason::KeyMismatch {
            side,
            aggregator_key,
            port_key,
        } => {
            evidence.push(format!(
                "this member: our key {:#06x}, partner {} key {:#06x}",
                port.actor.key,
                port.partner.system_id(),
                port.partner.key
            ));
            let s = match side {
                KeySide::Partner => format!(
                    "partner key {port_key:#06x} differs from active aggregator's \
                     {aggregator_key:#06x}"
                ),
                KeySide::Actor => format!(
                    "our key {port_key:#06x} on this member differs from active aggregator's \
                     {aggregator_key:#06x}"
                ),
            };
            (Class::KeyMismatch, s)
        }
        Reason::OtherPartnerSystem { .. }
        | Reason::Individual { .. }
        | Reason::NotActiveAggregator { .. }
        | Reason::FallbackStandby { .. } => (Class::OtherAggregator, reason.to_string()),
        Reason::NotMatched { .. }
        | Reason::PartnerNotInSync
        | Reason::PartnerNotHearingUs
        | Reason::PartnerNotCollecting => {
            evidence.push(format!("partner state: {}", port.partner.state));
            (Class::PartnerState, reason.to_string())
        }
        Reason::Reselecting | Reason::AggregateWait { .. } | Reason::Settling => {
            evidence.push(format!("mux machine {}", port.mux_state));
            (Class::Settling, reason.to_string())
        }
    };
    if port.link.up
        && (port.link.speed == Speed::Unknown || port.link.duplex == Duplex::Unknown)
        && !matches!(reason, Reason::LinkDown)
    {
        evidence.push(format!(
            "speed/duplex unknown (PMD does not report them): key {:#06x} from config",
            port.actor.key
        ));
    }
    Some(Why {
        class,
        summary,
        evidence,
    })
}
