//! fastlag's management API: one set of types for both ends.
//!
//! The daemon answers on a Unix socket (`[management] socket`), one JSON object per line
//! each way (docs/management.md). A request names its verb in `cmd`:
//!
//! ```
//! use api::Request;
//! let req: Request = serde_json::from_str(r#"{"cmd":"why","bond":"bond0"}"#).unwrap();
//! assert_eq!(req, Request::Why { bond: "bond0".into() });
//! assert_eq!(serde_json::to_string(&Request::Ping {}).unwrap(), r#"{"cmd":"ping"}"#);
//! ```
//!
//! and every answer is an [`Envelope`]: `{"ok":true,"result":...}` or
//! `{"ok":false,"error":"..."}`. Each verb's result has its own type ([`Request`] lists
//! them); the server builds them, `fastlag ctl` reads them back ([`client::Client`]) and
//! prints them for people ([`render`]). The same types describe the `--status` file and the
//! snapshot the metrics endpoint renders ([`status`], [`counters`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bond;
pub mod client;
pub mod counters;
pub mod events;
pub mod lacp;
pub mod render;
pub mod router;
pub mod status;
pub mod why;

use serde::{Deserialize, Serialize};

pub use bond::{ActiveAggregator, BondMember, BondView};
pub use counters::{
    IfaceSnapshot, PmdStats, PortSnapshot, PortView, Snapshot, Stats, WorkerPortCounts,
    WorkerSnapshot,
};
pub use events::{
    CaptureView, CapturedFrame, DrainView, EventView, Pong, ReloadSummary, RestartView,
};
pub use lacp::{LacpBond, LacpCounters, LacpMember, LacpTimers, Participant, TxGaps};
pub use router::{ExceptionCounters, InterfaceView, RouteView, RoutesView};
pub use status::{BondStatus, IfaceStatus, MemberLacp, MemberStatus, Mib, RouterStatus, Status};
pub use why::{WhyBond, WhyMember};

/// A request, one per line. The result type of each verb is named in its doc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Liveness: [`Pong`].
    Ping {},
    /// All bonds: `Vec<`[`BondView`]`>`.
    Bonds {},
    /// One bond: [`BondView`].
    Bond {
        /// Bond name.
        name: String,
    },
    /// LACP detail per member of 802.3ad bonds: `Vec<`[`LacpBond`]`>`.
    Lacp {
        /// One bond, or all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bond: Option<String>,
    },
    /// Why members are not distributing: [`WhyBond`].
    Why {
        /// Bond name.
        bond: String,
    },
    /// Ports with counters and rates: `Vec<`[`PortView`]`>`.
    Ports {},
    /// Counters of ports, workers and interfaces: [`Stats`].
    Stats {},
    /// Router interfaces: `Vec<`[`InterfaceView`]`>`.
    Interfaces {},
    /// FIB routes: [`RoutesView`].
    Routes {},
    /// LACP transitions and admin events, oldest first: `Vec<`[`EventView`]`>`.
    Events {
        /// One bond, or all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bond: Option<String>,
        /// Only events after this Unix time (ns).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_ns: Option<u64>,
    },
    /// Recent slow-protocol frames of a bond: [`CaptureView`].
    Capture {
        /// Bond name.
        bond: String,
    },
    /// Drain a member: [`DrainView`].
    Drain {
        /// Bond name.
        bond: String,
        /// Member name.
        member: String,
        /// Drain it even when it is the bond's last distributing member (which stops all
        /// traffic on the bond); refused otherwise.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Undrain a member: [`DrainView`].
    Undrain {
        /// Bond name.
        bond: String,
        /// Member name.
        member: String,
    },
    /// Re-read the configuration file: [`ReloadSummary`].
    Reload {},
    /// Planned restart with the handoff state file: [`RestartView`].
    Restart {},
}

impl Request {
    /// The verb as it is spelled on the wire (`cmd`).
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Ping {} => "ping",
            Request::Bonds {} => "bonds",
            Request::Bond { .. } => "bond",
            Request::Lacp { .. } => "lacp",
            Request::Why { .. } => "why",
            Request::Ports {} => "ports",
            Request::Stats {} => "stats",
            Request::Interfaces {} => "interfaces",
            Request::Routes {} => "routes",
            Request::Events { .. } => "events",
            Request::Capture { .. } => "capture",
            Request::Drain { .. } => "drain",
            Request::Undrain { .. } => "undrain",
            Request::Reload {} => "reload",
            Request::Restart {} => "restart",
        }
    }
}

/// What the server answers to a request (serialized as the bare result; the client knows
/// which type to expect from the request it sent).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// To [`Request::Ping`].
    Pong(Pong),
    /// To [`Request::Bonds`].
    Bonds(Vec<BondView>),
    /// To [`Request::Bond`].
    Bond(Box<BondView>),
    /// To [`Request::Lacp`].
    Lacp(Vec<LacpBond>),
    /// To [`Request::Why`].
    Why(WhyBond),
    /// To [`Request::Ports`].
    Ports(Vec<PortView>),
    /// To [`Request::Stats`].
    Stats(Box<Stats>),
    /// To [`Request::Interfaces`].
    Interfaces(Vec<InterfaceView>),
    /// To [`Request::Routes`].
    Routes(RoutesView),
    /// To [`Request::Events`].
    Events(Vec<EventView>),
    /// To [`Request::Capture`].
    Capture(CaptureView),
    /// To [`Request::Drain`] and [`Request::Undrain`].
    Drain(DrainView),
    /// To [`Request::Reload`].
    Reload(ReloadSummary),
    /// To [`Request::Restart`].
    Restart(RestartView),
}

/// Every answer on the socket: the result, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// True with `result`, false with `error`.
    pub ok: bool,
    /// The verb's result.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Envelope<T> {
    /// A successful answer.
    pub fn ok(result: T) -> Self {
        Envelope {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A refusal or failure.
    pub fn err(error: impl Into<String>) -> Self {
        Envelope {
            ok: false,
            result: None,
            error: Some(error.into()),
        }
    }

    /// The result, or the server's error text.
    pub fn into_result(self) -> Result<T, String> {
        match (self.ok, self.result, self.error) {
            (true, Some(r), _) => Ok(r),
            (_, _, Some(e)) => Err(e),
            _ => Err("unknown error".to_string()),
        }
    }
}

/// `2026-11-26T08:50:01.123Z` from Unix nanoseconds (UTC, milliseconds): how every instant
/// in the API reads for people.
pub fn rfc3339(unix_ns: u128) -> String {
    let secs = (unix_ns / 1_000_000_000) as i64;
    let ms = (unix_ns / 1_000_000 % 1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (leap day) 12:34:56.789
        assert_eq!(rfc3339(951_827_696_789_000_000), "2000-02-29T12:34:56.789Z");
        assert_eq!(
            rfc3339(1_795_680_000_000_000_000),
            "2026-11-26T08:00:00.000Z"
        );
    }

    #[test]
    fn requests_read_as_before() {
        let r: Request = serde_json::from_str(r#"{"cmd":"events","since_ns":5}"#).unwrap();
        assert_eq!(
            r,
            Request::Events {
                bond: None,
                since_ns: Some(5)
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"bonds","x":1}"#).is_err());
        let line = serde_json::to_string(&Request::Drain {
            bond: "b".into(),
            member: "m".into(),
            force: false,
        })
        .unwrap();
        assert_eq!(line, r#"{"cmd":"drain","bond":"b","member":"m"}"#);
        let forced = Request::Drain {
            bond: "b".into(),
            member: "m".into(),
            force: true,
        };
        let line = serde_json::to_string(&forced).unwrap();
        assert_eq!(
            line,
            r#"{"cmd":"drain","bond":"b","member":"m","force":true}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), forced);
    }

    #[test]
    fn envelopes_round_trip() {
        let ok = serde_json::to_string(&Envelope::ok(Pong { uptime_ms: 5 })).unwrap();
        assert_eq!(ok, r#"{"ok":true,"result":{"uptime_ms":5}}"#);
        let e: Envelope<Pong> = serde_json::from_str(r#"{"ok":false,"error":"no"}"#).unwrap();
        assert_eq!(e.into_result(), Err("no".to_string()));
    }
}
