//! The management socket's transport: a Unix stream socket (mode 0600) polled without
//! ever blocking (accept, read, write; partial writes stay buffered), one JSON request per
//! line in, one [`Envelope`] per line out. What a request means is the [`Handler`]'s
//! business.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use api::{Envelope, Request};

use super::Handler;

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

/// What one connection, and all of them together, may make the control thread hold and
/// spend. A client that pipelines requests without reading the answers is slowed to the
/// pace it reads at (no more requests are taken while its answers wait), then closed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Unparsed input held per connection; reading stops there (the client's writes then
    /// wait in the kernel's socket buffer).
    pub input: usize,
    /// Unsent output per connection above which no further request of it is handled.
    pub output_soft: usize,
    /// Unsent output per connection at which it is closed.
    pub output_hard: usize,
    /// Input and output held for all connections together; above it no connection with
    /// answers still waiting is read or answered until writes bring it down.
    pub total: usize,
    /// Unsent output older than this since the last byte the client took: closed.
    pub write_time: Duration,
    /// Time one pass may spend answering requests (the control loop's LACP deadlines
    /// come first); the rest wait for the next pass, the next connection first.
    pub pass_budget: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            input: MAX_REQUEST + READ_PER_POLL,
            output_soft: 128 * 1024,
            output_hard: 4 * 1024 * 1024,
            total: 8 * 1024 * 1024,
            write_time: WRITE_TIME,
            pass_budget: Duration::from_millis(2),
        }
    }
}

/// What the server did, for metrics (`fastlag_mgmt_*`); shared with the metrics thread.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted (including those refused as too many).
    pub accepted: AtomicU64,
    /// Connections refused: more than [`MAX_CONNS`] at once.
    pub refused: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Connections closed because the client did not take its answers (the write time or
    /// the hard output cap).
    pub closed_not_reading: AtomicU64,
    /// Connections closed for an oversized or incomplete request.
    pub closed_bad_request: AtomicU64,
    /// Passes that ran out of their time budget with requests still waiting.
    pub budget_exhausted: AtomicU64,
    /// Passes in which the total cap held every connection back.
    pub total_cap_hit: AtomicU64,
    /// Bytes held for clients at the end of the last pass (input and unsent output).
    pub held_bytes: AtomicU64,
    /// The most bytes ever held at the end of a pass.
    pub held_bytes_max: AtomicU64,
    /// Connections open at the end of the last pass.
    pub open: AtomicU64,
}

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
    limits: Limits,
    stats: Arc<ServerStats>,
    /// The connection served first in the next pass (fairness under the time budget).
    first: usize,
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
    /// When the client last took bytes of its answers (or when they started waiting).
    last_write: WallInstant,
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
            limits: Limits::default(),
            stats: Arc::default(),
            first: 0,
        })
    }

    /// Replaces the limits (tests; the defaults are documented in docs/management.md).
    pub fn with_limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// The server's counters (for metrics).
    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// Bytes held for clients now (input not yet parsed and output not yet sent).
    pub fn held_bytes(&self) -> usize {
        self.conns.iter().map(Conn::held).sum()
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
                        last_write: now,
                        closing: false,
                        dead: false,
                    };
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    if self.conns.len() >= MAX_CONNS {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
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
    fn reply<T: serde::Serialize>(&mut self, v: &Envelope<T>) {
        if let Ok(mut s) = serde_json::to_vec(v) {
            s.push(b'\n');
            if self.pending() == 0 {
                // The write clock starts when an answer starts waiting.
                self.last_write = WallInstant::now();
            }
            self.out.extend_from_slice(&s);
        }
    }

    /// Output not yet sent.
    fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Bytes held for this client.
    fn held(&self) -> usize {
        self.inbuf.capacity() + self.out.capacity()
    }

    fn reply_err(&mut self, msg: &str) {
        self.reply(&Envelope::<()>::err(msg));
    }

    /// Reads what is there (non-blocking), never holding more than `limits.input` bytes
    /// of input; returns up to `max` complete request lines.
    fn read(&mut self, now: WallInstant, limits: &Limits, max: usize) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        if self.closing || self.dead {
            return lines;
        }
        let mut buf = [0u8; 4096];
        let mut got = 0;
        while got < READ_PER_POLL && self.inbuf.len() < limits.input {
            let room = (limits.input - self.inbuf.len()).min(buf.len());
            match self.stream.read(&mut buf[..room]) {
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
        while lines.len() < max {
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
                    self.last_write = now;
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
            // A burst of answers must not keep its buffer for the connection's life.
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            }
        } else if self.written > 64 * 1024 {
            self.out.drain(..self.written);
            self.written = 0;
        }
        if self.inbuf.is_empty() && self.inbuf.capacity() > 64 * 1024 {
            self.inbuf = Vec::new();
        }
    }

    /// Closes what has waited too long; returns whether the client was closed for not
    /// reading, or for a request it did not complete.
    fn expire(&mut self, now: WallInstant, limits: &Limits) -> Option<Closed> {
        if self.dead {
            return None;
        }
        if self.pending() >= limits.output_hard {
            tracing::warn!(
                conn = self.id,
                bytes = self.pending(),
                "management: client does not read its answers ({} bytes wait); closing",
                self.pending()
            );
            self.dead = true;
            return Some(Closed::NotReading);
        }
        if self.pending() > 0 {
            // Measured from the last byte the client took, not from its last request.
            if now.duration_since(self.last_write) > limits.write_time {
                tracing::warn!(
                    conn = self.id,
                    "management: client does not read its response; closing"
                );
                self.dead = true;
                return Some(Closed::NotReading);
            }
            return None;
        }
        if self.closing {
            self.dead = true;
            return None;
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
                return Some(Closed::BadRequest);
            }
        } else if now.duration_since(self.last_activity) > IDLE_TIME {
            self.dead = true;
        }
        None
    }
}

/// Why [`Conn::expire`] closed a connection.
enum Closed {
    NotReading,
    BadRequest,
}

impl Server {
    /// One non-blocking round: accept, read, answer complete requests with `handler`,
    /// write, expire; within [`Limits`] (memory held, time spent).
    pub fn serve(&mut self, handler: &mut dyn Handler) {
        let now = WallInstant::now();
        let limits = self.limits;
        self.accept(now);
        let n = self.conns.len();
        let total_ok = self.held_bytes() <= limits.total;
        if !total_ok {
            self.stats.total_cap_hit.fetch_add(1, Ordering::Relaxed);
        }
        let mut out_of_time = false;
        for k in 0..n {
            let i = (self.first + k) % n;
            let c = &mut self.conns[i];
            // Requests of this client are taken only while its answers do not pile up,
            // the pass has time left, and (over the total) it has no answer waiting: a
            // client that reads is still served while others hold memory.
            let max = if (total_ok || c.pending() == 0)
                && c.pending() < limits.output_soft
                && !out_of_time
            {
                REQUESTS_PER_POLL
            } else {
                0
            };
            let lines = if max > 0 {
                c.read(now, &limits, max)
            } else {
                Vec::new()
            };
            for line in lines {
                if now.elapsed() > limits.pass_budget {
                    // Unhandled lines go back in front of the input for the next pass.
                    let mut rest = line;
                    rest.extend_from_slice(&c.inbuf);
                    c.inbuf = rest;
                    if !out_of_time {
                        self.stats.budget_exhausted.fetch_add(1, Ordering::Relaxed);
                        self.first = i;
                    }
                    out_of_time = true;
                    continue;
                }
                let resp = if line.is_empty() {
                    tracing::warn!(
                        conn = c.id,
                        "management: request larger than {MAX_REQUEST} bytes"
                    );
                    Envelope::err(format!("request larger than {MAX_REQUEST} bytes"))
                } else {
                    match parse(c.id, &line) {
                        Err(e) => Envelope::err(e),
                        Ok(req) => match handler.handle(req) {
                            Ok(v) => Envelope::ok(v),
                            Err(e) => Envelope::err(e),
                        },
                    }
                };
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                c.reply(&resp);
            }
            c.write(now);
            match c.expire(now, &limits) {
                Some(Closed::NotReading) => {
                    self.stats
                        .closed_not_reading
                        .fetch_add(1, Ordering::Relaxed);
                }
                Some(Closed::BadRequest) => {
                    self.stats
                        .closed_bad_request
                        .fetch_add(1, Ordering::Relaxed);
                }
                None => {}
            }
        }
        if !out_of_time && n > 0 {
            self.first = (self.first + 1) % n;
        }
        self.conns.retain(|c| !c.dead);
        if self.first >= self.conns.len() {
            self.first = 0;
        }
        let held = self.held_bytes() as u64;
        self.stats.held_bytes.store(held, Ordering::Relaxed);
        self.stats.held_bytes_max.fetch_max(held, Ordering::Relaxed);
        self.stats
            .open
            .store(self.conns.len() as u64, Ordering::Relaxed);
    }
}

fn parse(conn: u64, line: &[u8]) -> Result<Request, String> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => {
            tracing::warn!(conn, "management: request is not UTF-8");
            return Err("request is not UTF-8 text".into());
        }
    };
    match serde_json::from_str::<Request>(text) {
        Ok(r) => {
            tracing::debug!(conn, ?r, "management request");
            Ok(r)
        }
        Err(e) => {
            tracing::warn!(conn, "management: malformed request: {e}");
            Err(format!(
                "malformed request: {e} (expected one JSON object per line, e.g. {{\"cmd\":\"bonds\"}})"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// Answers every request with `size` bytes (a `capture` of many frames is this big).
    struct Big(usize);

    impl Handler for Big {
        fn handle(&mut self, _req: Request) -> Result<api::Reply, String> {
            Err("x".repeat(self.0))
        }
    }

    fn server(tag: &str, limits: Limits) -> (Server, PathBuf) {
        let dir = std::env::temp_dir().join(format!("fl-mgmt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("s.sock");
        (Server::bind(&path).unwrap().with_limits(limits), dir)
    }

    /// Clients that pipeline requests and never read: what the server holds stays under
    /// its caps, every such client is closed after the write time, and a client that does
    /// read is answered all along.
    #[test]
    fn clients_that_do_not_read_are_bounded_then_closed() {
        let limits = Limits {
            write_time: Duration::from_millis(400),
            ..Limits::default()
        };
        let (mut srv, dir) = server("noread", limits);
        let mut hogs = Vec::new();
        for _ in 0..15 {
            let s = UnixStream::connect(srv.path()).unwrap();
            s.set_nonblocking(true).unwrap();
            hogs.push(s);
        }
        let mut reader = UnixStream::connect(srv.path()).unwrap();
        let answers = std::io::BufReader::new(reader.try_clone().unwrap());
        // The reading client reads on a thread of its own, as a client would.
        let got = Arc::new(AtomicU64::new(0));
        let g = got.clone();
        let t = std::thread::spawn(move || {
            for line in answers.lines() {
                let Ok(line) = line else { break };
                assert!(line.len() > 100_000, "the reading client got {line:?}");
                g.fetch_add(1, Ordering::Relaxed);
            }
        });
        let req = b"{\"cmd\":\"ping\"}\n".repeat(64);
        let mut handler = Big(100_000);
        let mut max_held = 0;
        let t0 = WallInstant::now();
        while t0.elapsed() < Duration::from_millis(300) {
            for h in &mut hogs {
                let _ = h.write(&req); // as much as the socket takes
            }
            reader.write_all(b"{\"cmd\":\"ping\"}\n").unwrap();
            srv.serve(&mut handler);
            max_held = max_held.max(srv.held_bytes());
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..100 {
            srv.serve(&mut handler);
        }
        let answered = got.load(Ordering::Relaxed);
        assert!(
            answered > 5,
            "the reading client was answered {answered} times"
        );
        // Each hog: its input cap plus one pass of answers above the soft output cap;
        // all together never above the total cap plus one pass.
        let one_pass = REQUESTS_PER_POLL * 100_100;
        assert!(
            max_held <= limits.total + 16 * (limits.input + one_pass),
            "held {max_held} bytes"
        );
        for c in &srv.conns {
            assert!(c.pending() < limits.output_soft + one_pass + 4096);
            assert!(c.inbuf.len() <= limits.input);
        }
        // Nobody reads: after the write time every hog is gone; the reader stays.
        std::thread::sleep(limits.write_time + Duration::from_millis(100));
        srv.serve(&mut handler);
        assert_eq!(srv.conns.len(), 1, "hogs still open");
        assert_eq!(srv.stats.closed_not_reading.load(Ordering::Relaxed), 15);
        assert!(srv.stats.held_bytes_max.load(Ordering::Relaxed) as usize >= max_held);
        drop(reader);
        drop(srv);
        t.join().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The write time counts from the last byte the client took: a client that keeps
    /// sending requests but never reads is still closed (reads used to reset the clock).
    #[test]
    fn write_time_counts_from_the_last_write_not_the_last_read() {
        let limits = Limits {
            write_time: Duration::from_millis(300),
            ..Limits::default()
        };
        let (mut srv, dir) = server("wclock", limits);
        let mut c = UnixStream::connect(srv.path()).unwrap();
        c.set_nonblocking(true).unwrap();
        let mut handler = Big(1_000_000);
        let t0 = WallInstant::now();
        while t0.elapsed() < Duration::from_millis(900)
            && srv.stats.open.load(Ordering::Relaxed) != 0
            || t0.elapsed() < Duration::from_millis(50)
        {
            let _ = c.write(b"{\"cmd\":\"ping\"}\n");
            srv.serve(&mut handler);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            srv.conns.len(),
            0,
            "a client that only writes was kept open"
        );
        assert_eq!(srv.stats.closed_not_reading.load(Ordering::Relaxed), 1);
        drop(srv);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A client that floods small requests and never reads: its unparsed input stays
    /// under the input cap (it used to grow by 16 KiB a pass while 4 requests were taken).
    #[test]
    fn flooded_input_stays_under_its_cap() {
        let (mut srv, dir) = server("flood", Limits::default());
        let limits = srv.limits;
        let mut c = UnixStream::connect(srv.path()).unwrap();
        c.set_nonblocking(true).unwrap();
        let req = b"{\"cmd\":\"ping\"}\n".repeat(1024);
        let mut handler = Big(10);
        let mut most = 0;
        for _ in 0..300 {
            let _ = c.write(&req);
            srv.serve(&mut handler);
            most = most.max(srv.conns[0].inbuf.len());
        }
        assert!(most <= limits.input, "input grew to {most} bytes");
        assert!(srv.held_bytes() <= 2 * (limits.input + limits.output_soft));
        drop(srv);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// One pass answers for at most its time budget; the rest waits, nothing is lost.
    #[test]
    fn a_pass_keeps_to_its_time_budget_and_loses_no_request() {
        struct Slow;
        impl Handler for Slow {
            fn handle(&mut self, _req: Request) -> Result<api::Reply, String> {
                std::thread::sleep(Duration::from_millis(1));
                Err("slow".into())
            }
        }
        let (mut srv, dir) = server("budget", Limits::default());
        let mut clients: Vec<UnixStream> = (0..4)
            .map(|_| UnixStream::connect(srv.path()).unwrap())
            .collect();
        for c in &mut clients {
            c.write_all(&b"{\"cmd\":\"ping\"}\n".repeat(4)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        let t = WallInstant::now();
        srv.serve(&mut Slow);
        assert!(
            t.elapsed() < Duration::from_millis(8),
            "one pass took {:?}",
            t.elapsed()
        );
        assert!(srv.stats.budget_exhausted.load(Ordering::Relaxed) >= 1);
        for _ in 0..40 {
            srv.serve(&mut Slow);
        }
        assert_eq!(srv.stats.requests.load(Ordering::Relaxed), 16);
        for c in &mut clients {
            c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut r = std::io::BufReader::new(c.try_clone().unwrap());
            for _ in 0..4 {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                assert!(line.contains("slow"), "{line:?}");
            }
        }
        drop(srv);
        let _ = std::fs::remove_dir_all(dir);
    }
}
