//! "Why is this member not distributing?" in plain words, with the evidence an operator
//! needs to act on it. The management API (`fastlag ctl why`) and the tests that drive the
//! simulator both call [`explain`], so what the simulator proves is what operators read.

use core::time::Duration;

use crate::config::{Activity, Duplex, Speed};
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
    /// Both ends passive.
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
                "our LACP activity is {} and no LACPDU was ever received on this member",
                match bond.activity {
                    Activity::Active => "active",
                    Activity::Passive => "passive",
                }
            ));
            evidence.push(rx_count.clone());
            (
                Class::PassivePassive,
                "both ends passive: neither side starts sending LACPDUs, so the link can never \
                 aggregate (set lacp activity = \"active\" here or on the partner)"
                    .to_string(),
            )
        }
        Reason::LacpNotHeard { since } => {
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
                None => "no LACPDU ever received from the partner".to_string(),
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
