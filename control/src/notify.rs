//! The service manager's notify protocol (systemd's sd_notify(3)), a few lines over std's
//! `UnixDatagram`: when `NOTIFY_SOCKET` is set (a path, or `@name` for an abstract socket),
//! `fastlag run` sends `READY=1` once the ports are started and the control thread runs,
//! `STATUS=` with a one-line state when it changes, `RELOADING=1` with `MONOTONIC_USEC=`
//! around a reload and `READY=1` after it, `STOPPING=1` on stop, and `WATCHDOG=1` at half
//! of `WATCHDOG_USEC` from the control thread's own loop ([`Heartbeat`]), so a control
//! thread that stops making progress stops petting the watchdog and the service manager
//! restarts fastlag. Without `NOTIFY_SOCKET` nothing is sent and nothing changes.
//!
//! The notifier is process-wide (the protocol is: one socket named in the environment):
//! [`init`] reads the environment once (`fastlag run` calls it); everything else here is a
//! no-op until then, so the demo, the benchmarks and in-process tests never send.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::status::Status;

/// Test-only hook (never set in production): while the file this environment variable
/// names exists, the control thread stalls (it does no work and sends no `WATCHDOG=1`,
/// as a hung control thread would) until the file is removed or fastlag stops. The
/// systemd notify test uses it to see the watchdog stop.
pub const STALL_HOOK_ENV: &str = "FASTLAG_TEST_STALL_CONTROL";

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

/// The service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog: Option<Duration>,
    /// A send failed once (warned once; later failures are debug).
    failed: AtomicBool,
}

/// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` once; returns the notifier
/// when fastlag runs under a service manager that listens. Bad values are logged and
/// turn notification off.
pub fn init() -> Option<&'static Notifier> {
    NOTIFIER
        .get_or_init(|| match Notifier::from_env() {
            Ok(Some(n)) => {
                tracing::info!(
                    socket = %std::env::var("NOTIFY_SOCKET").unwrap_or_default(),
                    watchdog = ?n.watchdog,
                    "service manager notification on (READY, STATUS, RELOADING, STOPPING{})",
                    if n.watchdog.is_some() { ", WATCHDOG" } else { "" }
                );
                Some(n)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("NOTIFY_SOCKET: {e}; not notifying the service manager");
                None
            }
        })
        .as_ref()
}

/// The notifier, once [`init`] found one.
pub fn get() -> Option<&'static Notifier> {
    NOTIFIER.get().and_then(Option::as_ref)
}

/// Sends `msg` when there is a notifier.
pub fn send(msg: &str) {
    if let Some(n) = get() {
        n.send(msg);
    }
}

/// `READY=1`: started (or a reload is over).
pub fn ready() {
    send("READY=1");
}

/// `RELOADING=1` with the monotonic time it began (systemd matches it to the reload job).
pub fn reloading() {
    send(&format!(
        "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC={}",
        dpdk::monotonic_usec()
    ));
}

/// `RELOADING=1` for a planned restart in exec mode: the same PID says `READY=1` again once
/// the new binary runs (docs/restart.md).
pub fn restarting() {
    send(&format!(
        "RELOADING=1\nSTATUS=planned restart: handing the LACP state over\nMONOTONIC_USEC={}",
        dpdk::monotonic_usec()
    ));
}

/// `STOPPING=1`.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping");
}

impl Notifier {
    fn from_env() -> Result<Option<Notifier>, String> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path
            .into_string()
            .map_err(|_| "not valid UTF-8".to_string())?;
        let addr = if let Some(name) = path.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())
        } else if path.starts_with('/') {
            SocketAddr::from_pathname(&path)
        } else {
            return Err(format!(
                "{path:?} is neither an absolute path nor an abstract name (@...)"
            ));
        }
        .map_err(|e| format!("{path:?}: {e}"))?;
        let sock = UnixDatagram::unbound().map_err(|e| format!("socket: {e}"))?;
        Ok(Some(Notifier {
            sock,
            addr,
            watchdog: watchdog_from_env()?,
            failed: AtomicBool::new(false),
        }))
    }

    /// Sends one notification (newline-separated `KEY=value` lines). Never blocks for long:
    /// the socket is a datagram socket the service manager reads.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.sock.send_to_addr(msg.as_bytes(), &self.addr) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!("service manager notification failed: {e} (further failures are logged at debug)");
            } else {
                tracing::debug!("service manager notification failed: {e}");
            }
        }
    }

    /// How often `WATCHDOG=1` is due (half of `WATCHDOG_USEC`), when the watchdog is on.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// Half of `WATCHDOG_USEC`, when it is set for this process (`WATCHDOG_PID` unset or ours).
fn watchdog_from_env() -> Result<Option<Duration>, String> {
    let Ok(usec) = std::env::var("WATCHDOG_USEC") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim() != std::process::id().to_string() {
            return Ok(None);
        }
    }
    match usec.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(us) => Ok(Some(Duration::from_micros(us / 2))),
        Err(_) => Err(format!(
            "WATCHDOG_USEC={usec:?} is not a number of microseconds"
        )),
    }
}

/// The one-line state `STATUS=` carries: "2 bonds, 3/4 members distributing", with the
/// router's interfaces and routes in router mode, or the port count when there is
/// neither.
pub fn status_line(status: &Status, ports: usize) -> String {
    let mut parts = Vec::new();
    if !status.bonds.is_empty() {
        let members: usize = status.bonds.iter().map(|b| b.members.len()).sum();
        let distributing: usize = status
            .bonds
            .iter()
            .map(|b| b.members.iter().filter(|m| m.distributing).count())
            .sum();
        let n = status.bonds.len();
        parts.push(format!(
            "{n} bond{}, {distributing}/{members} members distributing",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(r) = &status.router {
        parts.push(format!(
            "router: {} interfaces, {} IPv4 and {} IPv6 routes",
            r.interfaces.len(),
            r.routes_v4,
            r.routes_v6
        ));
    }
    if parts.is_empty() {
        parts.push(format!(
            "forwarding on {ports} port{} (no bond, no router)",
            if ports == 1 { "" } else { "s" }
        ));
    }
    parts.join("; ")
}

/// A loop's share of the protocol: call [`Heartbeat::beat`] once per iteration of the
/// loop whose progress the watchdog stands for (the control thread's; the main thread's
/// when there is no control thread). It sends `WATCHDOG=1` when due, so a loop that stops
/// stops the pings; nothing else pings.
#[derive(Debug)]
pub struct Heartbeat {
    next: Instant,
    ready: bool,
    status: String,
    stall: Option<PathBuf>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// Reads the test-only [`STALL_HOOK_ENV`].
    pub fn new() -> Heartbeat {
        Heartbeat {
            next: Instant::now(),
            ready: false,
            status: String::new(),
            stall: std::env::var_os(STALL_HOOK_ENV).map(PathBuf::from),
        }
    }

    /// One iteration of the loop: `WATCHDOG=1` when due.
    pub fn beat(&mut self) {
        let Some(n) = get() else { return };
        let Some(every) = n.watchdog else { return };
        let now = Instant::now();
        if now >= self.next {
            n.send("WATCHDOG=1");
            self.next = now + every;
        }
    }

    /// `READY=1` the first time; then `STATUS=` whenever `line` differs from the last sent.
    pub fn state(&mut self, line: impl FnOnce() -> String) {
        let Some(n) = get() else { return };
        let line = line();
        if !self.ready {
            self.ready = true;
            n.send(&format!("READY=1\nSTATUS={line}"));
            tracing::info!(status = %line, "told the service manager: ready");
            self.status = line;
        } else if line != self.status {
            n.send(&format!("STATUS={line}"));
            self.status = line;
        }
    }

    /// A reload is over: `READY=1`, and the next [`Heartbeat::state`] sends `STATUS=` again
    /// (the service manager showed "reloading" meanwhile).
    pub fn reloaded(&mut self) {
        ready();
        self.status.clear();
    }

    /// Test-only ([`STALL_HOOK_ENV`]): while its file exists, blocks the calling loop
    /// (no work, no `WATCHDOG=1`) until the file goes or `stop` is set.
    pub fn stall_hook(&self, stop: &AtomicBool) {
        let Some(f) = &self.stall else { return };
        if !f.exists() {
            return;
        }
        tracing::warn!(file = %f.display(), "test hook {STALL_HOOK_ENV}: control thread stalled while the file exists");
        while f.exists() && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("test hook {STALL_HOOK_ENV}: control thread resumed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{BondStatus, MemberStatus};

    fn member(name: &str, distributing: bool) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            link_up: true,
            speed_mbps: None,
            duplex: "full".into(),
            collecting: distributing,
            distributing,
            reason: None,
            lacp: None,
        }
    }

    fn bond(name: &str, members: Vec<MemberStatus>) -> BondStatus {
        BondStatus {
            name: name.into(),
            mode: "802.3ad".into(),
            distributing: Vec::new(),
            table_version: 1,
            mac: "02:00:00:00:00:01".into(),
            system: None,
            min_links: 1,
            members,
        }
    }

    #[test]
    fn status_line_counts_members_distributing() {
        let s = Status {
            uptime_ms: 1,
            bonds: vec![
                bond("a", vec![member("p0", true), member("p1", false)]),
                bond("b", vec![member("p2", true), member("p3", true)]),
            ],
            router: None,
        };
        assert_eq!(status_line(&s, 4), "2 bonds, 3/4 members distributing");
        let one = Status {
            bonds: vec![bond("a", vec![member("p0", false)])],
            ..Status::default()
        };
        assert_eq!(status_line(&one, 1), "1 bond, 0/1 members distributing");
        assert_eq!(
            status_line(&Status::default(), 2),
            "forwarding on 2 ports (no bond, no router)"
        );
    }
}
