//! The management API: a Unix socket served by the control thread.
//!
//! The socket is polled from the control loop with non-blocking calls only (accept, read,
//! write; partial writes stay buffered), so a slow or hostile client can never stall LACP.
//! Workers never see it. Requests and responses are JSON, one per line (see
//! docs/management.md). The control loop also keeps, for the API, a fixed ring of recent
//! slow-protocol frames per bond (`ctl capture`) and the drain state of members
//! (`ctl member drain`).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use lacp::info::{BondInfo, PortInfo};
use lacp::time::Instant;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::control_loop::ControlLoop;
use crate::runtime::Snapshot;

/// Largest request accepted (one line of JSON).
pub const MAX_REQUEST: usize = 64 * 1024;
/// A request must be complete this long after its first byte.
pub const REQUEST_TIME: Duration = Duration::from_secs(2);
/// An idle connection (no partial request, nothing to write) is closed after this long.
pub const IDLE_TIME: Duration = Duration::from_secs(10);
/// A response the client does not read within this long is dropped with the connection.
pub const WRITE_TIME: Duration = Duration::from_secs(10);
/// Connections served at once; more are answered with an error and closed.
pub const MAX_CONNS: usize = 16;
/// Requests handled per connection per control-loop iteration.
const REQUESTS_PER_POLL: usize = 4;
/// Bytes read per connection per iteration.
const READ_PER_POLL: usize = 16 * 1024;

/// Slow-protocol frames kept per bond for `ctl capture`.
pub const CAPTURE_FRAMES: usize = 512;
/// Bytes kept of each (LACPDUs and marker PDUs are 124; slow protocols frames at most 128).
pub const CAPTURE_SNAP: usize = 128;

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

// ---------------------------------------------------------------------------------------
// Shared between the main thread and the control thread

/// What the main thread hands the control thread for the API: the listening socket and
/// fresh counter snapshots.
#[derive(Default)]
pub struct Hub {
    pending: AtomicBool,
    server: Mutex<Option<Server>>,
    snapshot: ArcSwapOption<Rated>,
}

/// A counter snapshot with per-port rates over the last second or so.
pub struct Rated {
    /// The counters.
    pub now: Snapshot,
    /// Per port (same order as `now.ports`): rx pps, tx pps, rx bit/s, tx bit/s.
    pub rates: Vec<[f64; 4]>,
    /// When `now` was taken.
    pub at: WallInstant,
    /// Start of the current rate window.
    base: (Snapshot, WallInstant),
}

impl Hub {
    /// Hands the control thread a bound socket.
    pub fn serve(&self, server: Server) {
        *self.server.lock().expect("hub lock") = Some(server);
        self.pending.store(true, Ordering::Release);
    }

    fn take_server(&self) -> Option<Server> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        // Only ever contended with `serve`, once.
        self.server.lock().ok()?.take()
    }

    /// Publishes fresh counters (the main thread calls this every few tens of ms). Rates
    /// are computed over windows of at least a second and kept between windows.
    pub fn publish(&self, snap: Snapshot) {
        let at = WallInstant::now();
        let old = self.snapshot.load_full();
        let (rates, base) = match old.as_ref() {
            None => (vec![[0.0; 4]; snap.ports.len()], (snap.clone(), at)),
            Some(o) if at.duration_since(o.base.1) >= Duration::from_secs(1) => {
                let (p, t) = &o.base;
                let dt = at.duration_since(*t).as_secs_f64();
                let rates = snap
                    .ports
                    .iter()
                    .map(|c| {
                        let Some(o) = p.ports.iter().find(|o| o.name == c.name) else {
                            return [0.0; 4];
                        };
                        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                        [
                            d(c.pmd.rx_packets, o.pmd.rx_packets),
                            d(c.pmd.tx_packets, o.pmd.tx_packets),
                            8.0 * d(c.pmd.rx_bytes, o.pmd.rx_bytes),
                            8.0 * d(c.pmd.tx_bytes, o.pmd.tx_bytes),
                        ]
                    })
                    .collect();
                (rates, (snap.clone(), at))
            }
            Some(o) => (o.rates.clone(), o.base.clone()),
        };
        self.snapshot.store(Some(Arc::new(Rated {
            now: snap,
            rates,
            at,
            base,
        })));
    }

    fn counters(&self) -> Option<Arc<Rated>> {
        self.snapshot.load_full()
    }
}

// ---------------------------------------------------------------------------------------
// The socket

/// Errors creating the socket.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process answers on the path.
    #[error("management socket {0}: another process (a running fastlag?) is serving it; stop it or set [management] socket to another path")]
    InUse(PathBuf),
    /// A file that is not a socket is in the way.
    #[error("management socket {0}: a file that is not a socket exists there; remove it or set [management] socket to another path")]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("management socket {path}: {what}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// The listening socket and its connections. Dropping it removes the socket file.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    conns: Vec<Conn>,
    next_id: u64,
}

struct Conn {
    id: u64,
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    /// First byte of the current (incomplete) request.
    started: Option<WallInstant>,
    last_activity: WallInstant,
    /// Stop reading; close once `out` is written.
    closing: bool,
    dead: bool,
}

impl Server {
    /// Creates the socket at `path` (mode 0600), replacing a stale socket file left by a
    /// process that is gone; refuses when a live process answers there.
    pub fn bind(path: &Path) -> Result<Server, BindError> {
        let io = |what, source| BindError::Io {
            path: path.to_path_buf(),
            what,
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| io("creating its directory", e))?;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(BindError::InUse(path.to_path_buf()));
                }
                std::fs::remove_file(path).map_err(|e| io("removing the stale socket", e))?;
                tracing::info!(path = %path.display(), "replaced a stale management socket");
            }
            Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(|e| io("bind", e))?;
        // Before anyone can use it: only our user may connect (connect needs write access).
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("chmod 0600", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| io("set non-blocking", e))?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            conns: Vec::new(),
            next_id: 0,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn accept(&mut self, now: WallInstant) {
        for _ in 0..8 {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.next_id += 1;
                    let id = self.next_id;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let mut c = Conn {
                        id,
                        stream,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        written: 0,
                        started: None,
                        last_activity: now,
                        closing: false,
                        dead: false,
                    };
                    if self.conns.len() >= MAX_CONNS {
                        tracing::warn!(
                            conn = id,
                            "management: too many connections ({MAX_CONNS}); refusing one"
                        );
                        c.reply_err("too many management connections; try again");
                        c.closing = true;
                    }
                    self.conns.push(c);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("management: accept failed: {e}");
                    break;
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Conn {
    fn reply(&mut self, v: &Value) {
        if let Ok(mut s) = serde_json::to_vec(v) {
            s.push(b'\n');
            self.out.extend_from_slice(&s);
        }
    }

    fn reply_err(&mut self, msg: &str) {
        self.reply(&json!({"ok": false, "error": msg}));
    }

    /// Reads what is there (non-blocking). Returns complete request lines.
    fn read(&mut self, now: WallInstant) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        if self.closing || self.dead {
            return lines;
        }
        let mut buf = [0u8; 4096];
        let mut got = 0;
        while got < READ_PER_POLL {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    // Half-close: answer what is complete, then close.
                    self.closing = true;
                    break;
                }
                Ok(n) => {
                    got += n;
                    if self.inbuf.is_empty() && self.started.is_none() {
                        self.started = Some(now);
                    }
                    self.inbuf.extend_from_slice(&buf[..n]);
                    self.last_activity = now;
                    if self.inbuf.len() > MAX_REQUEST + 1 {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    return lines;
                }
            }
        }
        while lines.len() < REQUESTS_PER_POLL {
            let Some(nl) = self.inbuf.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
            self.started = (!self.inbuf.is_empty()).then_some(now);
            if nl > MAX_REQUEST {
                lines.push(Vec::new()); // marker: oversized
                self.inbuf.clear();
                break;
            }
            lines.push(line);
        }
        if self.inbuf.len() > MAX_REQUEST && !self.inbuf.contains(&b'\n') {
            tracing::warn!(
                conn = self.id,
                bytes = self.inbuf.len(),
                "management: request larger than {MAX_REQUEST} bytes; closing the connection"
            );
            self.reply_err(&format!(
                "request larger than {MAX_REQUEST} bytes; closing the connection"
            ));
            self.inbuf.clear();
            self.closing = true;
        }
        if self.closing && !self.inbuf.is_empty() && lines.is_empty() {
            // The client closed its side with an unterminated request: take it as one.
            lines.push(std::mem::take(&mut self.inbuf));
        }
        lines
    }

    fn write(&mut self, now: WallInstant) {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => {
                    self.written += n;
                    self.last_activity = now;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
    }

    fn expire(&mut self, now: WallInstant) {
        if self.dead {
            return;
        }
        if !self.out.is_empty() {
            if now.duration_since(self.last_activity) > WRITE_TIME {
                tracing::warn!(
                    conn = self.id,
                    "management: client does not read its response; closing"
                );
                self.dead = true;
            }
            return;
        }
        if self.closing {
            self.dead = true;
            return;
        }
        if let Some(t) = self.started {
            if now.duration_since(t) > REQUEST_TIME {
                tracing::warn!(
                    conn = self.id,
                    bytes = self.inbuf.len(),
                    "management: request not complete within {REQUEST_TIME:?}; closing"
                );
                self.reply_err(&format!(
                    "request not complete within {} s (one JSON object per line, ended by a newline); closing",
                    REQUEST_TIME.as_secs()
                ));
                self.inbuf.clear();
                self.closing = true;
                self.write(now);
            }
        } else if now.duration_since(self.last_activity) > IDLE_TIME {
            self.dead = true;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Capture ring

#[derive(Clone, Copy)]
struct Slot {
    at_ns: u64,
    member: u16,
    tx: bool,
    len: u16,
    orig_len: u32,
    bytes: [u8; CAPTURE_SNAP],
}

/// A fixed ring of the last [`CAPTURE_FRAMES`] slow-protocol frames of one bond, both
/// directions. Allocated once; recording copies at most [`CAPTURE_SNAP`] bytes.
pub struct CaptureRing {
    slots: Vec<Slot>,
    next: usize,
    total: u64,
}

impl CaptureRing {
    fn new() -> CaptureRing {
        CaptureRing {
            slots: vec![
                Slot {
                    at_ns: 0,
                    member: 0,
                    tx: false,
                    len: 0,
                    orig_len: 0,
                    bytes: [0; CAPTURE_SNAP],
                };
                CAPTURE_FRAMES
            ],
            next: 0,
            total: 0,
        }
    }

    fn record(&mut self, at: Instant, member: usize, tx: bool, frame: &[u8]) {
        let s = &mut self.slots[self.next];
        let n = frame.len().min(CAPTURE_SNAP);
        s.at_ns = at.as_nanos();
        s.member = member as u16;
        s.tx = tx;
        s.len = n as u16;
        s.orig_len = frame.len() as u32;
        s.bytes[..n].copy_from_slice(&frame[..n]);
        self.next = (self.next + 1) % CAPTURE_FRAMES;
        self.total += 1;
    }

    /// Oldest first.
    fn frames(&self) -> impl Iterator<Item = &Slot> {
        let kept = (self.total as usize).min(CAPTURE_FRAMES);
        let start = (self.next + CAPTURE_FRAMES - kept) % CAPTURE_FRAMES;
        (0..kept).map(move |i| &self.slots[(start + i) % CAPTURE_FRAMES])
    }
}

// ---------------------------------------------------------------------------------------
// Drain

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Drain {
    #[default]
    Off,
    /// Out of our distribution table; LACP not told yet.
    Leaving { since: WallInstant },
    /// Advertised out of sync; collecting until `hold_until` and the partner is quiet.
    Drained {
        since: WallInstant,
        hold_until: WallInstant,
        hold_over: bool,
        /// Data frames received on the member (workers' count), and when it last changed.
        rx: u64,
        rx_changed: WallInstant,
    },
    /// Undrained: collecting (forced) until the engine collects, or `until`; no egress
    /// before `since + UNDRAIN_EGRESS_HOLD`.
    Rejoining {
        since: WallInstant,
        until: WallInstant,
    },
}

/// An admin event for `show events`.
struct AdminEvent {
    at_ns: u64,
    member: usize,
    text: String,
}

// ---------------------------------------------------------------------------------------
// The control thread's part

/// Management state owned by the control loop.
#[derive(Default)]
pub struct Ops {
    hub: Arc<Hub>,
    server: Option<Server>,
    capture: Vec<CaptureRing>,
    drain: Vec<Drain>,
    admin: VecDeque<AdminEvent>,
    /// Unix time (ns) of engine time zero.
    wall0_ns: u128,
    /// Hash policy per bond, for display.
    hash: Vec<String>,
}

fn unix_ns_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `2026-11-26T08:50:01.123Z` from Unix nanoseconds.
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

impl Ops {
    /// State for `bonds` bonds and `members` members; `epoch` is the engine's time zero.
    pub fn new(
        hub: Arc<Hub>,
        epoch: WallInstant,
        bonds: usize,
        members: usize,
        hash: Vec<String>,
    ) -> Ops {
        let wall0_ns = unix_ns_now().saturating_sub(epoch.elapsed().as_nanos());
        Ops {
            hub,
            server: None,
            capture: (0..bonds).map(|_| CaptureRing::new()).collect(),
            drain: vec![Drain::Off; members],
            admin: VecDeque::new(),
            wall0_ns,
            hash,
        }
    }

    fn unix_ns(&self, t: Instant) -> u128 {
        self.wall0_ns + t.as_nanos() as u128
    }

    fn wall(&self, t: Instant) -> String {
        rfc3339(self.unix_ns(t))
    }

    /// A reload appended a member (its index is the next one): not drained.
    pub fn member_added(&mut self) {
        self.drain.push(Drain::Off);
    }

    /// A reload removed member `mi`; later members' indexes moved down by one.
    pub fn member_removed(&mut self, mi: usize) {
        if mi < self.drain.len() {
            self.drain.remove(mi);
        }
    }

    /// Records a slow-protocol frame of member `member` of bond `bond`.
    pub fn capture(&mut self, bond: usize, member: usize, tx: bool, frame: &[u8], at: Instant) {
        if let Some(r) = self.capture.get_mut(bond) {
            r.record(at, member, tx, frame);
        }
    }

    /// The member carries no egress (drain in progress or drained).
    pub fn egress_blocked(&self, member: usize) -> bool {
        match self.drain.get(member) {
            Some(Drain::Leaving { .. } | Drain::Drained { .. }) => true,
            Some(Drain::Rejoining { since, .. }) => since.elapsed() < UNDRAIN_EGRESS_HOLD,
            _ => false,
        }
    }

    /// The member keeps collecting whatever LACP says (drain and undrain transitions).
    pub fn collect_forced(&self, member: usize) -> bool {
        match self.drain.get(member) {
            Some(Drain::Leaving { .. } | Drain::Rejoining { .. }) => true,
            Some(Drain::Drained { hold_over, .. }) => !hold_over,
            _ => false,
        }
    }

    fn admin_event(&mut self, at: Instant, member: usize, text: String) {
        if self.admin.len() >= 256 {
            self.admin.pop_front();
        }
        self.admin.push_back(AdminEvent {
            at_ns: at.as_nanos(),
            member,
            text,
        });
    }
}

/// Polls the management socket and advances drains; called once per control-loop
/// iteration. Never blocks.
pub fn poll(cl: &mut ControlLoop) {
    if let Some(s) = cl.ops.hub.take_server() {
        tracing::info!(path = %s.path().display(), "management socket ready (fastlag ctl)");
        cl.ops.server = Some(s);
    }
    advance_drains(cl);
    let Some(mut server) = cl.ops.server.take() else {
        return;
    };
    server.serve(|id, req| handle(cl, req).map_err(|e| (id, e)));
    cl.ops.server = Some(server);
}

impl Server {
    /// One non-blocking round: accept, read, answer complete requests with `answer`,
    /// write, expire.
    fn serve(&mut self, mut answer: impl FnMut(u64, Request) -> Result<Value, (u64, String)>) {
        let now = WallInstant::now();
        self.accept(now);
        for c in &mut self.conns {
            for line in c.read(now) {
                let resp = if line.is_empty() {
                    tracing::warn!(
                        conn = c.id,
                        "management: request larger than {MAX_REQUEST} bytes"
                    );
                    json!({"ok": false, "error": format!("request larger than {MAX_REQUEST} bytes")})
                } else {
                    match parse(c.id, &line) {
                        Err(e) => e,
                        Ok(req) => match answer(c.id, req) {
                            Ok(v) => json!({"ok": true, "result": v}),
                            Err((_, e)) => json!({"ok": false, "error": e}),
                        },
                    }
                };
                c.reply(&resp);
            }
            c.write(now);
            c.expire(now);
        }
        self.conns.retain(|c| !c.dead);
    }

    /// Serves from the main thread when there is no control thread (no bond, no router):
    /// liveness and counters only.
    pub fn serve_without_control(&mut self, hub: &Hub) {
        self.serve(|id, req| {
            let r = match req {
                Request::Ping {} => Ok(json!({})),
                Request::Bonds {} => Ok(json!([])),
                Request::Stats {} => match hub.counters() {
                    Some(c) => serde_json::to_value(&c.now).map_err(|e| e.to_string()),
                    None => Err("no counters yet; try again in a moment".into()),
                },
                Request::Ports {} => Ok(hub
                    .counters()
                    .map_or(json!([]), |c| ports_json(&c, &|_| None))),
                other => Err(format!(
                    "{other:?}: this fastlag has no bond and no router (xconnect between ports); only ping, show bonds and show stats apply"
                )),
            };
            r.map_err(|e| (id, e))
        });
    }
}

fn parse(conn: u64, line: &[u8]) -> Result<Request, Value> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => {
            tracing::warn!(conn, "management: request is not UTF-8");
            return Err(json!({"ok": false, "error": "request is not UTF-8 text"}));
        }
    };
    match serde_json::from_str::<Request>(text) {
        Ok(r) => {
            tracing::debug!(conn, ?r, "management request");
            Ok(r)
        }
        Err(e) => {
            tracing::warn!(conn, "management: malformed request: {e}");
            Err(
                json!({"ok": false, "error": format!("malformed request: {e} (expected one JSON object per line, e.g. {{\"cmd\":\"bonds\"}})")}),
            )
        }
    }
}

/// A request.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Liveness.
    Ping {},
    /// All bonds.
    Bonds {},
    /// One bond.
    Bond {
        /// Bond name.
        name: String,
    },
    /// LACP detail per member.
    Lacp {
        /// One bond, or all.
        #[serde(default)]
        bond: Option<String>,
    },
    /// Why members are not distributing.
    Why {
        /// Bond name.
        bond: String,
    },
    /// Port counters.
    Ports {},
    /// Counters (ports, workers, interfaces).
    Stats {},
    /// Router interfaces.
    Interfaces {},
    /// FIB routes.
    Routes {},
    /// LACP transitions and admin events.
    Events {
        /// One bond, or all.
        #[serde(default)]
        bond: Option<String>,
        /// Only events after this Unix time (ns).
        #[serde(default)]
        since_ns: Option<u64>,
    },
    /// Recent slow-protocol frames of a bond.
    Capture {
        /// Bond name.
        bond: String,
    },
    /// Drain a member.
    Drain {
        /// Bond name.
        bond: String,
        /// Member name.
        member: String,
    },
    /// Undrain a member.
    Undrain {
        /// Bond name.
        bond: String,
        /// Member name.
        member: String,
    },
    /// Re-read the configuration.
    Reload {},
}

type Reply = Result<Value, String>;

fn handle(cl: &mut ControlLoop, req: Request) -> Reply {
    match req {
        Request::Ping {} => Ok(json!({"uptime_ms": cl.epoch.elapsed().as_millis() as u64})),
        Request::Bonds {} => Ok(Value::Array(
            (0..cl.bonds.len()).map(|b| bond_view(cl, b)).collect(),
        )),
        Request::Bond { name } => Ok(bond_view(cl, find_bond(cl, &name)?)),
        Request::Lacp { bond } => {
            let bonds = match bond {
                Some(n) => vec![find_bond(cl, &n)?],
                None => (0..cl.bonds.len()).collect(),
            };
            Ok(Value::Array(
                bonds
                    .into_iter()
                    .filter(|&b| cl.bonds[b].lacp.is_some())
                    .map(|b| lacp_view(cl, b))
                    .collect(),
            ))
        }
        Request::Why { bond } => why_view(cl, find_bond(cl, &bond)?),
        Request::Ports {} => Ok(ports_view(cl)),
        Request::Stats {} => {
            let c = cl
                .ops
                .hub
                .counters()
                .ok_or("no counters yet; try again in a moment")?;
            let mut v = serde_json::to_value(&c.now).map_err(|e| e.to_string())?;
            v["age_ms"] = json!(c.at.elapsed().as_secs_f64() * 1e3);
            Ok(v)
        }
        Request::Interfaces {} => interfaces_view(cl),
        Request::Routes {} => routes_view(cl),
        Request::Events { bond, since_ns } => {
            let b = match bond {
                Some(n) => Some(find_bond(cl, &n)?),
                None => None,
            };
            Ok(events_view(cl, b, u128::from(since_ns.unwrap_or(0))))
        }
        Request::Capture { bond } => capture_view(cl, find_bond(cl, &bond)?),
        Request::Drain { bond, member } => drain(cl, &bond, &member, true),
        Request::Undrain { bond, member } => drain(cl, &bond, &member, false),
        // Validated whole before anything changes; a refusal changes nothing.
        Request::Reload {} => cl
            .reload()
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::to_value(s).map_err(|e| e.to_string())),
    }
}

fn find_bond(cl: &ControlLoop, name: &str) -> Result<usize, String> {
    cl.bonds.iter().position(|b| b.name == name).ok_or_else(|| {
        let names: Vec<&str> = cl.bonds.iter().map(|b| b.name.as_str()).collect();
        format!("no bond {name:?}; bonds: {}", names.join(", "))
    })
}

fn find_member(cl: &ControlLoop, bond: usize, name: &str) -> Result<usize, String> {
    cl.bonds[bond]
        .members
        .iter()
        .copied()
        .find(|&m| cl.members[m].name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = cl.bonds[bond]
                .members
                .iter()
                .map(|&m| cl.members[m].name.as_str())
                .collect();
            format!(
                "bond {} has no member {name:?}; members: {}",
                cl.bonds[bond].name,
                names.join(", ")
            )
        })
}

fn now(cl: &ControlLoop) -> Instant {
    Instant::from_nanos(cl.epoch.elapsed().as_nanos() as u64)
}

fn participant(p: &lacp::ParticipantInfo) -> Value {
    json!({
        "system_priority": p.system_priority,
        "system": p.system.to_string(),
        "key": p.key,
        "port_priority": p.port_priority,
        "port": p.port,
        "state": p.state.bits(),
        "state_names": p.state.names().collect::<Vec<_>>(),
    })
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64() * 1e3))
}

fn bond_info(cl: &ControlLoop, b: usize) -> Option<BondInfo> {
    cl.bonds[b].lacp.and_then(|id| cl.engine.bond_info(id).ok())
}

fn port_info(cl: &ControlLoop, m: usize) -> Option<PortInfo> {
    let t = now(cl);
    cl.members[m]
        .lacp
        .and_then(|p| cl.engine.port_info(p, t).ok())
}

fn bond_view(cl: &ControlLoop, b: usize) -> Value {
    let bond = &cl.bonds[b];
    let table = bond.table.load();
    let info = bond_info(cl, b);
    let counters = cl.ops.hub.counters();
    let t = now(cl);
    let members: Vec<Value> = bond
        .members
        .iter()
        .map(|&m| {
            let mem = &cl.members[m];
            let link = mem.last_link.unwrap_or_default();
            let pi = port_info(cl, m);
            let rate = counters.as_ref().and_then(|c| {
                c.now
                    .ports
                    .iter()
                    .position(|p| p.name == mem.name)
                    .and_then(|i| c.rates.get(i))
            });
            let reason = if cl.ops.egress_blocked(m) {
                Some("drained by the operator".to_string())
            } else {
                pi.as_ref().and_then(|i| i.reason.as_ref()).map(|r| r.to_string())
            };
            json!({
                "name": mem.name,
                "link_up": link.up,
                "speed_mbps": link.speed.mbps(),
                "duplex": duplex(link.duplex),
                "collecting": table.collects(mem.port),
                "distributing": table.distributing.contains(&(mem.port as u16)),
                "selected": pi.as_ref().map(|i| i.selected.name()),
                "aggregator": pi.as_ref().and_then(|i| i.aggregator).map(|a| a.to_string()),
                "drained": cl.ops.egress_blocked(m),
                "reason": reason,
                "rx_pps": rate.map(|r| r[0]),
                "tx_pps": rate.map(|r| r[1]),
                "rx_bps": rate.map(|r| r[2]),
                "tx_bps": rate.map(|r| r[3]),
                "last_rx": pi.as_ref().and_then(|i| i.last_rx).map(|x| cl.ops.wall(x)),
                "last_rx_age_s": pi.as_ref().and_then(|i| i.last_rx).map(|x| t.saturating_duration_since(x).as_secs_f64()),
            })
        })
        .collect();
    let active = info.as_ref().and_then(|i| {
        i.aggregators
            .iter()
            .find(|a| a.active)
            .map(|a| {
                json!({
                    "id": a.id.to_string(),
                    "actor_key": a.actor_key,
                    "partner_system": a.partner_system.to_string(),
                    "partner_key": a.partner_key,
                    "individual": a.individual,
                    "members": a.members.iter().filter_map(|p| cl.members.iter().find(|m| m.lacp == Some(*p)).map(|m| m.name.clone())).collect::<Vec<_>>(),
                })
            })
    });
    let distributing = table.distributing.len();
    json!({
        "name": bond.name,
        "mode": bond.mode.as_str(),
        "mac": bond.mac.to_string(),
        "hash": cl.ops.hash.get(b),
        "system": info.as_ref().map(|i| i.system.to_string()),
        "admin_key": info.as_ref().map(|i| i.admin_key),
        "activity": info.as_ref().map(|i| format!("{:?}", i.activity).to_lowercase()),
        "rate": info.as_ref().map(|i| format!("{:?}", i.rate).to_lowercase()),
        "selection": info.as_ref().map(|i| format!("{:?}", i.selection).to_lowercase()),
        "max_active": info.as_ref().and_then(|i| i.max_active),
        "fallback_active": info.as_ref().map(|i| i.fallback_active),
        "min_links": bond.min_links,
        "min_links_met": info.as_ref().map_or(distributing as u16 >= bond.min_links.max(1), |i| i.min_links_met),
        "active_aggregator": active,
        "distributing": table.distributing.iter().map(|&p| cl.port_names[p as usize].clone()).collect::<Vec<_>>(),
        "table_version": table.version,
        "members": members,
    })
}

fn duplex(d: lacp::Duplex) -> &'static str {
    match d {
        lacp::Duplex::Full => "full",
        lacp::Duplex::Half => "half",
        lacp::Duplex::Unknown => "unknown",
    }
}

fn lacp_view(cl: &ControlLoop, b: usize) -> Value {
    let bond = &cl.bonds[b];
    let info = bond_info(cl, b);
    let t = now(cl);
    let members: Vec<Value> = bond
        .members
        .iter()
        .filter_map(|&m| port_info(cl, m).map(|i| (m, i)))
        .map(|(m, i)| {
            let age = |x: Option<Instant>| x.map(|x| t.saturating_duration_since(x).as_secs_f64());
            let counters = json!({
                "lacpdus_rx": i.counters.lacpdus_rx,
                "lacpdus_tx": i.counters.lacpdus_tx,
                "marker_pdus_rx": i.counters.marker_pdus_rx,
                "marker_response_pdus_rx": i.counters.marker_response_pdus_rx,
                "marker_pdus_tx": i.counters.marker_pdus_tx,
                "marker_response_pdus_tx": i.counters.marker_response_pdus_tx,
                "unknown_rx": i.counters.unknown_rx,
                "illegal_rx": i.counters.illegal_rx,
                "actor_churn_count": i.counters.actor_churn_count,
                "partner_churn_count": i.counters.partner_churn_count,
                "actor_sync_transitions": i.counters.actor_sync_transitions,
                "partner_sync_transitions": i.counters.partner_sync_transitions,
                "vlan_tagged_rx": i.counters.vlan_tagged_rx,
                "foreign_dst_rx": i.counters.foreign_dst_rx,
                "loopback_rx": i.counters.loopback_rx,
                "rx_while_link_down": i.counters.rx_while_link_down,
                "marker_rate_limited": i.counters.marker_rate_limited,
                "tx_deferred": i.counters.tx_deferred,
            });
            json!({
                "name": cl.members[m].name,
                "mac": i.mac.to_string(),
                "link_up": i.link.up,
                "speed_mbps": i.link.speed.mbps(),
                "duplex": duplex(i.link.duplex),
                "speed_or_duplex_unknown_seen": i.unknown_link.speed || i.unknown_link.duplex,
                "actor": participant(&i.actor),
                "partner": participant(&i.partner),
                "partner_from_lacpdu": i.partner_from_lacpdu,
                "matched": i.matched,
                "rx_state": i.rx_state.name(),
                "periodic_state": i.periodic_state.name(),
                "mux_state": i.mux_state.name(),
                "actor_churn": i.actor_churn.name(),
                "partner_churn": i.partner_churn.name(),
                "selected": i.selected.name(),
                "aggregator": i.aggregator.map(|a| a.to_string()),
                "ntt": i.ntt,
                "timers_ms": {
                    "current_while": ms(i.timers.current_while),
                    "periodic": ms(i.timers.periodic),
                    "wait_while": ms(i.timers.wait_while),
                    "actor_churn": ms(i.timers.actor_churn),
                    "partner_churn": ms(i.timers.partner_churn),
                },
                "collecting": i.collecting,
                "distributing": i.distributing,
                "fallback": i.fallback,
                "drained": i.drained || cl.ops.egress_blocked(m),
                "loopback": i.loopback,
                "reason": i.reason.as_ref().map(|r| r.to_string()),
                "counters": counters,
                "last_rx": i.last_rx.map(|x| cl.ops.wall(x)),
                "last_rx_age_s": age(i.last_rx),
                "last_tx": i.last_tx.map(|x| cl.ops.wall(x)),
                "last_tx_age_s": age(i.last_tx),
                "lacpdu_departures": cl.members[m].tx_gaps,
                "slow_tx_failed": cl.members[m].tx_dropped,
            })
        })
        .collect();
    json!({
        "bond": bond.name,
        "system": info.as_ref().map(|i| i.system.to_string()),
        "system_priority": info.as_ref().map(|i| i.system.priority),
        "system_mac": info.as_ref().map(|i| i.system.mac.to_string()),
        "admin_key": info.as_ref().map(|i| i.admin_key),
        "activity": info.as_ref().map(|i| format!("{:?}", i.activity).to_lowercase()),
        "rate": info.as_ref().map(|i| format!("{:?}", i.rate).to_lowercase()),
        "active_aggregator": info.as_ref().and_then(|i| i.active_aggregator).map(|a| a.to_string()),
        "min_links": info.as_ref().map(|i| i.min_links),
        "min_links_met": info.as_ref().map(|i| i.min_links_met),
        "members": members,
    })
}

fn why_view(cl: &ControlLoop, b: usize) -> Reply {
    let bond = &cl.bonds[b];
    let t = now(cl);
    let table = bond.table.load();
    let info = bond_info(cl, b);
    let wall = |x: Instant| cl.ops.wall(x);
    let mut out = Vec::new();
    for &m in &bond.members {
        let mem = &cl.members[m];
        let distributing = table.distributing.contains(&(mem.port as u16));
        let (class, summary, evidence) = match (&info, port_info(cl, m)) {
            (Some(bi), Some(pi)) => {
                if cl.ops.egress_blocked(m) && pi.reason.is_none() {
                    (
                        Some("drain"),
                        Some(
                            "drained by the operator: leaving (egress moved to the other members)"
                                .to_string(),
                        ),
                        vec![],
                    )
                } else {
                    match lacp::why::explain(&pi, bi, t, &wall) {
                        Some(w) => (Some(w.class.name()), Some(w.summary), w.evidence),
                        None => (None, None, vec![]),
                    }
                }
            }
            _ => {
                // Static modes decide from link state alone.
                let up = mem.last_link.is_some_and(|l| l.up);
                if distributing {
                    (None, None, vec![])
                } else if !up {
                    (
                        Some("link_down"),
                        Some("link down: no carrier on this member".to_string()),
                        vec![],
                    )
                } else if table.distributing.is_empty() {
                    (
                        Some("below_min_links"),
                        Some(format!(
                            "bond below min_links: fewer than {} members up",
                            bond.min_links.max(1)
                        )),
                        vec![],
                    )
                } else {
                    (
                        Some("standby"),
                        Some(format!(
                            "standby: {} carries the traffic ({})",
                            table
                                .distributing
                                .first()
                                .map(|&p| cl.port_names[p as usize].as_str())
                                .unwrap_or("another member"),
                            bond.mode.as_str()
                        )),
                        vec![],
                    )
                }
            }
        };
        out.push(json!({
            "member": mem.name,
            "distributing": distributing,
            "class": class,
            "reason": summary,
            "evidence": evidence,
        }));
    }
    Ok(json!({"bond": bond.name, "mode": bond.mode.as_str(), "members": out}))
}

fn ports_view(cl: &ControlLoop) -> Value {
    let Some(c) = cl.ops.hub.counters() else {
        return json!([]);
    };
    ports_json(&c, &|name| {
        cl.members
            .iter()
            .find(|m| m.name == name)
            .map(|m| cl.bonds[m.bond].name.clone())
    })
}

fn ports_json(c: &Rated, bond_of: &dyn Fn(&str) -> Option<String>) -> Value {
    Value::Array(
        c.now
            .ports
            .iter()
            .zip(&c.rates)
            .map(|(p, r)| {
                json!({
                    "name": p.name,
                    "device": p.device,
                    "link": p.link,
                    "bond": bond_of(&p.name),
                    "rx_packets": p.pmd.rx_packets,
                    "tx_packets": p.pmd.tx_packets,
                    "rx_bytes": p.pmd.rx_bytes,
                    "tx_bytes": p.pmd.tx_bytes,
                    "rx_missed": p.pmd.rx_missed,
                    "rx_errors": p.pmd.rx_errors,
                    "tx_errors": p.pmd.tx_errors,
                    "rx_pps": r[0],
                    "tx_pps": r[1],
                    "rx_bps": r[2],
                    "tx_bps": r[3],
                    "drops": p.workers.drops(),
                    "workers": p.workers,
                })
            })
            .collect(),
    )
}

fn interfaces_view(cl: &ControlLoop) -> Reply {
    let r = cl
        .router
        .as_ref()
        .ok_or("no interfaces: fastlag runs in xconnect mode (interfaces exist in router mode)")?;
    let st = r.status();
    let counters = cl.ops.hub.counters();
    Ok(Value::Array(
        st.interfaces
            .iter()
            .map(|i| {
                let c = counters
                    .as_ref()
                    .and_then(|c| c.now.interfaces.iter().find(|x| x.name == i.name));
                json!({
                    "name": i.name,
                    "tap": i.tap,
                    "kernel": i.kernel,
                    "counters": c,
                })
            })
            .collect(),
    ))
}

fn routes_view(cl: &ControlLoop) -> Reply {
    let r = cl
        .router
        .as_ref()
        .ok_or("no routes: fastlag runs in xconnect mode (routes exist in router mode)")?;
    let st = r.status();
    Ok(json!({
        "fib_version": st.fib_version,
        "routes_v4": st.routes_v4,
        "routes_v6": st.routes_v6,
        "kernel_routes": st.kernel_routes,
        "kernel_neighbors": st.kernel_neighbors,
        "routes": r.routes(),
    }))
}

fn events_view(cl: &ControlLoop, bond: Option<usize>, since_ns: u128) -> Value {
    let t = now(cl);
    let mut ev: Vec<(u128, Value)> = Vec::new();
    for (mi, m) in cl.members.iter().enumerate() {
        if bond.is_some_and(|b| b != m.bond) {
            continue;
        }
        let Some(p) = m.lacp else { continue };
        let Ok(info) = cl.engine.port_info(p, t) else {
            continue;
        };
        for tr in &info.history {
            let at = cl.ops.unix_ns(tr.at);
            if at <= since_ns {
                continue;
            }
            ev.push((
                at,
                json!({
                    "at_ns": at.to_string(),
                    "at": rfc3339(at),
                    "bond": cl.bonds[m.bond].name,
                    "member": m.name,
                    "machine": format!("{:?}", tr.machine),
                    "from": tr.from,
                    "to": tr.to,
                    "cause": format!("{:?}", tr.cause),
                }),
            ));
        }
        for a in cl.ops.admin.iter().filter(|a| a.member == mi) {
            let at = cl.ops.wall0_ns + a.at_ns as u128;
            if at <= since_ns {
                continue;
            }
            ev.push((
                at,
                json!({
                    "at_ns": at.to_string(),
                    "at": rfc3339(at),
                    "bond": cl.bonds[m.bond].name,
                    "member": m.name,
                    "machine": "Admin",
                    "from": "",
                    "to": a.text,
                    "cause": "Admin",
                }),
            ));
        }
    }
    ev.sort_by_key(|(at, _)| *at);
    Value::Array(ev.into_iter().map(|(_, v)| v).collect())
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

fn capture_view(cl: &ControlLoop, b: usize) -> Reply {
    let ring = &cl.ops.capture[b];
    let frames: Vec<Value> = ring
        .frames()
        .map(|s| {
            let at = cl.ops.wall0_ns + s.at_ns as u128;
            json!({
                "at_ns": at.to_string(),
                "member": cl.members.get(s.member as usize).map(|m| m.name.clone()),
                "direction": if s.tx { "tx" } else { "rx" },
                "orig_len": s.orig_len,
                "hex": hex(&s.bytes[..s.len as usize]),
            })
        })
        .collect();
    Ok(json!({
        "bond": cl.bonds[b].name,
        "recorded_total": ring.total,
        "kept": frames.len(),
        "frames": frames,
    }))
}

fn drain(cl: &mut ControlLoop, bond: &str, member: &str, on: bool) -> Reply {
    let b = find_bond(cl, bond)?;
    let m = find_member(cl, b, member)?;
    if cl.members[m].lacp.is_none() {
        return Err(format!(
            "bond {bond} is {}: drain needs an 802.3ad bond (it works by advertising the member out of sync)",
            cl.bonds[b].mode.as_str()
        ));
    }
    let t = now(cl);
    let wall = WallInstant::now();
    let state = cl.ops.drain[m];
    match (on, state) {
        (true, Drain::Off | Drain::Rejoining { .. }) => {
            if let Drain::Rejoining { .. } = state {
                // Back to drained straight away: the engine was told to undrain.
                if let Some(p) = cl.members[m].lacp {
                    cl.engine
                        .set_drain(p, false, t)
                        .map_err(|e| e.to_string())?;
                }
            }
            cl.ops.drain[m] = Drain::Leaving { since: wall };
            cl.bonds[b].mark_dirty();
            tracing::info!(bond, member, "drain: member out of our distribution table; advertising it out of sync in {DRAIN_EGRESS_SETTLE:?}");
            cl.ops
                .admin_event(t, m, "drain requested: egress moved off".into());
            Ok(json!({"bond": bond, "member": member, "state": "draining"}))
        }
        (true, _) => Ok(
            json!({"bond": bond, "member": member, "state": "drained", "note": "already drained"}),
        ),
        (false, Drain::Off) => Err(format!("{member} of {bond} is not drained")),
        (false, Drain::Leaving { .. }) => {
            cl.ops.drain[m] = Drain::Off;
            cl.bonds[b].mark_dirty();
            tracing::info!(
                bond,
                member,
                "undrain: drain cancelled before LACP was told"
            );
            cl.ops
                .admin_event(t, m, "undrained (drain cancelled)".into());
            Ok(json!({"bond": bond, "member": member, "state": "undrained"}))
        }
        (false, Drain::Rejoining { .. }) => Ok(
            json!({"bond": bond, "member": member, "state": "rejoining", "note": "already undrained"}),
        ),
        (false, Drain::Drained { .. }) => {
            cl.ops.drain[m] = Drain::Rejoining {
                since: wall,
                until: wall + UNDRAIN_COLLECT_HOLD,
            };
            cl.bonds[b].mark_dirty();
            // Collecting goes on (table published this iteration) before LACP advertises
            // the member in sync again.
            if let Some(p) = cl.members[m].lacp {
                cl.engine
                    .set_drain(p, false, t)
                    .map_err(|e| e.to_string())?;
            }
            tracing::info!(
                bond,
                member,
                "undrain: member collecting; LACP rejoins it to the aggregate"
            );
            cl.ops.admin_event(t, m, "undrained: rejoining".into());
            Ok(json!({"bond": bond, "member": member, "state": "rejoining"}))
        }
    }
}

/// Data frames the workers received on member `m` (slow-protocol frames excluded), from the
/// main thread's latest counter snapshot.
fn data_rx(cl: &ControlLoop, m: usize) -> Option<u64> {
    let c = cl.ops.hub.counters()?;
    let p = c.now.ports.iter().find(|p| p.name == cl.members[m].name)?;
    Some(p.workers.rx.saturating_sub(p.workers.slow_to_control))
}

fn advance_drains(cl: &mut ControlLoop) {
    if cl.ops.drain.iter().all(|d| *d == Drain::Off) {
        return;
    }
    let wall = WallInstant::now();
    let t = now(cl);
    for m in 0..cl.ops.drain.len() {
        let b = cl.members[m].bond;
        match cl.ops.drain[m] {
            Drain::Leaving { since } if wall.duration_since(since) >= DRAIN_EGRESS_SETTLE => {
                if let Some(p) = cl.members[m].lacp {
                    if let Err(e) = cl.engine.set_drain(p, true, t) {
                        tracing::warn!(member = %cl.members[m].name, "drain refused by the LACP engine: {e}");
                    }
                }
                cl.ops.drain[m] = Drain::Drained {
                    since: wall,
                    hold_until: wall + DRAIN_COLLECT_HOLD,
                    hold_over: false,
                    rx: data_rx(cl, m).unwrap_or(0),
                    rx_changed: wall,
                };
                tracing::info!(bond = %cl.bonds[b].name, member = %cl.members[m].name, "drain: advertising out of sync; still collecting until the partner has stopped sending on it (at least {DRAIN_COLLECT_HOLD:?})");
                cl.ops
                    .admin_event(t, m, "drained: advertised out of sync".into());
                cl.bonds[b].mark_dirty();
            }
            Drain::Drained {
                since,
                hold_until,
                hold_over: false,
                rx,
                rx_changed,
            } => {
                let (rx, rx_changed) = match data_rx(cl, m) {
                    Some(n) if n != rx => (n, wall),
                    _ => (rx, rx_changed),
                };
                let quiet = wall.duration_since(rx_changed) >= DRAIN_QUIET;
                let too_long = wall.duration_since(since) >= DRAIN_COLLECT_MAX;
                let over = wall >= hold_until && (quiet || too_long);
                cl.ops.drain[m] = Drain::Drained {
                    since,
                    hold_until,
                    hold_over: over,
                    rx,
                    rx_changed,
                };
                if over {
                    if quiet {
                        tracing::info!(bond = %cl.bonds[b].name, member = %cl.members[m].name, after = ?wall.duration_since(since), "drain: the partner stopped sending on the member; it is out (not collecting) until undrain");
                    } else {
                        tracing::warn!(bond = %cl.bonds[b].name, member = %cl.members[m].name, "drain: the partner still sends on the member {DRAIN_COLLECT_MAX:?} after it was advertised out of sync; collecting stops now (its frames are dropped)");
                    }
                    cl.ops.admin_event(t, m, "drained: collecting off".into());
                    cl.bonds[b].mark_dirty();
                }
            }
            Drain::Rejoining { since, until } => {
                let collecting = cl.members[m]
                    .lacp
                    .is_some_and(|p| cl.engine.is_collecting(p));
                let egress_held = wall.duration_since(since) < UNDRAIN_EGRESS_HOLD;
                if (collecting && !egress_held) || wall >= until {
                    cl.ops.drain[m] = Drain::Off;
                    cl.bonds[b].mark_dirty();
                    tracing::info!(bond = %cl.bonds[b].name, member = %cl.members[m].name, lacp_collecting = collecting, "undrain: rejoin complete");
                }
            }
            _ => {}
        }
    }
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
    fn capture_ring_keeps_the_newest_frames_oldest_first() {
        let mut r = CaptureRing::new();
        assert_eq!(r.frames().count(), 0);
        let big = [0xabu8; 200];
        for i in 0..(CAPTURE_FRAMES + 10) {
            let n = 60 + i % 100;
            r.record(Instant::from_nanos(i as u64), i % 3, i % 2 == 0, &big[..n]);
        }
        let kept: Vec<&Slot> = r.frames().collect();
        assert_eq!(kept.len(), CAPTURE_FRAMES);
        assert_eq!(kept[0].at_ns, 10);
        assert_eq!(kept.last().unwrap().at_ns, (CAPTURE_FRAMES + 9) as u64);
        assert!(kept.windows(2).all(|w| w[0].at_ns < w[1].at_ns));
        // Frames longer than the snap length keep their original length.
        let long = kept
            .iter()
            .find(|s| s.orig_len as usize > CAPTURE_SNAP)
            .unwrap();
        assert_eq!(long.len as usize, CAPTURE_SNAP);
    }
}
