//! Prometheus metrics: text exposition format 0.0.4 over a minimal HTTP/1.x server on the
//! loopback address from `[management] metrics`.
//!
//! The numbers come from the same snapshot as the `--status` file (and `fastlag ctl show
//! stats`): the main thread takes the control thread's status and the port/worker
//! counters every 50 ms, writes the status file and publishes the same [`Scrape`] here
//! (arc-swap). The server runs on a thread of its own that only reads that published
//! snapshot, so no client can delay the control thread's LACP timers or a worker.
//!
//! It cannot be monopolised either: every connection is non-blocking and served in turn
//! by one loop, so a slow client (one byte a second, a "slowloris") costs a slot, not the
//! others' time; each connection has one deadline for its whole request and response
//! ([`DEADLINE`]); at most [`MAX_CONNS`] are open, and one more is answered 503 and closed
//! at once, so a connection flood cannot make the endpoint unreachable. What it did is
//! exported with the metrics (`fastlag_metrics_http_*`), next to the management socket's
//! counters (`fastlag_mgmt_*`).
mod render;

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

pub use render::render;

use crate::mgmt::server::ServerStats as MgmtStats;
use crate::status::Scrape;

/// Where the main thread publishes [`Scrape`]s for the server.
pub type SharedScrape = Arc<ArcSwapOption<Scrape>>;

/// The metrics server thread.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
    /// What it serves.
    pub scrape: SharedScrape,
    /// What it did.
    pub stats: Arc<HttpStats>,
}

/// Longest request head accepted.
const MAX_REQUEST: usize = 8192;
/// Whole request and response of one connection, from accept to the last byte written.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Connections open at once; one more is answered 503 and closed.
pub const MAX_CONNS: usize = 64;
/// After the response: how long unread input is drained before closing (closing with
/// unread input resets the connection and can discard the response at the client).
const LINGER: Duration = Duration::from_millis(200);
const LINGER_BYTES: usize = 256 * 1024;

/// The HTTP server's counters.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Answered 503 at once: [`MAX_CONNS`] were open.
    pub rejected_busy: AtomicU64,
    /// Closed at their [`DEADLINE`] before the response was out.
    pub timed_out: AtomicU64,
    /// Responses sent in full.
    pub responses: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

impl Server {
    /// Listens on `addr` (a loopback address, checked by the config) and serves from a
    /// thread of its own until dropped; `mgmt` are the management socket's counters,
    /// exported with the rest.
    pub fn start(addr: SocketAddr, mgmt: Option<Arc<MgmtStats>>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let scrape: SharedScrape = Arc::new(ArcSwapOption::empty());
        let stats = Arc::new(HttpStats::default());
        let (s, sc, st) = (stop.clone(), scrape.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("fl-metrics".into())
            .spawn(move || serve(listener, &s, &sc, &st, mgmt.as_deref()))?;
        tracing::info!(%addr, "Prometheus metrics on http://{addr}/metrics");
        Ok(Server {
            stop,
            thread: Some(thread),
            addr,
            scrape,
            stats,
        })
    }

    /// The address it listens on (the port chosen when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes the latest snapshot.
    pub fn publish(&self, s: Arc<Scrape>) {
        self.scrape.store(Some(s));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Phase {
    /// Reading the request head.
    Reading,
    /// Writing the response.
    Writing,
    /// Response out, write side shut: draining what the client still sends, until.
    Lingering(Instant),
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    deadline: Instant,
    phase: Phase,
    drained: usize,
    done: bool,
}

impl Conn {
    /// Moves the connection on as far as its socket allows; returns whether anything
    /// happened.
    fn step(&mut self, now: Instant, ctx: &Ctx<'_>) -> bool {
        let mut chunk = [0u8; 4096];
        let mut moved = false;
        if let Phase::Reading = self.phase {
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => {
                        self.done = true;
                        return true;
                    }
                    Ok(n) => {
                        moved = true;
                        self.buf.extend_from_slice(&chunk[..n]);
                        let head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n");
                        if head_end.is_some() || self.buf.len() > MAX_REQUEST {
                            self.out = response(&self.buf, head_end, ctx);
                            self.phase = Phase::Writing;
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.done = true;
                        return true;
                    }
                }
            }
        }
        if let Phase::Writing = self.phase {
            while self.written < self.out.len() {
                match self.stream.write(&self.out[self.written..]) {
                    Ok(0) => {
                        self.done = true;
                        return true;
                    }
                    Ok(n) => {
                        moved = true;
                        self.written += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.done = true;
                        return true;
                    }
                }
            }
            if self.written == self.out.len() {
                ctx.stats.responses.fetch_add(1, Ordering::Relaxed);
                let _ = self.stream.shutdown(std::net::Shutdown::Write);
                self.phase = Phase::Lingering(now + LINGER);
                self.out = Vec::new();
                self.buf = Vec::new();
            }
        }
        if let Phase::Lingering(until) = self.phase {
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => {
                        self.done = true;
                        break;
                    }
                    Ok(n) => {
                        moved = true;
                        self.drained += n;
                        if self.drained > LINGER_BYTES {
                            self.done = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.done = true;
                        break;
                    }
                }
            }
            if now >= until {
                self.done = true;
            }
            return moved;
        }
        if now >= self.deadline {
            ctx.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            self.done = true;
        }
        moved
    }
}

/// What a response is made from.
struct Ctx<'a> {
    scrape: &'a SharedScrape,
    stats: &'a HttpStats,
    mgmt: Option<&'a MgmtStats>,
}

fn serve(
    listener: TcpListener,
    stop: &AtomicBool,
    scrape: &SharedScrape,
    stats: &HttpStats,
    mgmt: Option<&MgmtStats>,
) {
    let ctx = Ctx {
        scrape,
        stats,
        mgmt,
    };
    let mut conns: Vec<Conn> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut moved = false;
        // Accept everything waiting: a flood is answered (503) as fast as it comes.
        for _ in 0..1024 {
            match listener.accept() {
                Ok((stream, _)) => {
                    moved = true;
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if conns.len() >= MAX_CONNS {
                        stats.rejected_busy.fetch_add(1, Ordering::Relaxed);
                        let mut s = stream;
                        // Best effort: the socket buffer takes this at once or never.
                        let _ = s.write(&busy_response());
                        continue;
                    }
                    conns.push(Conn {
                        stream,
                        buf: Vec::new(),
                        out: Vec::new(),
                        written: 0,
                        deadline: now + DEADLINE,
                        phase: Phase::Reading,
                        drained: 0,
                        done: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("metrics: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
        }
        for c in &mut conns {
            moved |= c.step(now, &ctx);
        }
        conns.retain(|c| !c.done);
        stats.open.store(conns.len() as u64, Ordering::Relaxed);
        // Idle: wake often enough for a scrape to wait a few ms at most; busy: at once.
        if !moved {
            let nap = if conns.is_empty() { 10 } else { 1 };
            std::thread::sleep(Duration::from_millis(nap));
        }
    }
}

fn busy_response() -> Vec<u8> {
    let body = "too many connections; try again\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The whole response to `buf` (a request head ended at `head_end`, or one too large).
fn response(buf: &[u8], head_end: Option<usize>, ctx: &Ctx<'_>) -> Vec<u8> {
    let snapshot = ctx.scrape.load_full();
    let (code, reason, mut body) = match head_end {
        Some(i) => respond(&buf[..i], snapshot.as_deref()),
        None => (
            431,
            "Request Header Fields Too Large",
            "request too large\n".into(),
        ),
    };
    if code == 200 {
        body.push_str(&render_servers(ctx.stats, ctx.mgmt));
    }
    let head_only = buf.starts_with(b"HEAD ") && code == 200;
    let content_type = if code == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    out.into_bytes()
}

/// The metrics server's and the management socket's own counters.
fn render_servers(http: &HttpStats, mgmt: Option<&MgmtStats>) -> String {
    let mut o = String::new();
    let mut one = |name: &str, kind: &str, help: &str, v: u64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    one(
        "fastlag_metrics_http_connections_total",
        "counter",
        "Connections accepted by the metrics endpoint.",
        r(&http.accepted),
    );
    one(
        "fastlag_metrics_http_rejected_total",
        "counter",
        "Connections answered 503 at once: the connection cap was reached.",
        r(&http.rejected_busy),
    );
    one(
        "fastlag_metrics_http_timeouts_total",
        "counter",
        "Connections closed at their deadline before the response was out.",
        r(&http.timed_out),
    );
    one(
        "fastlag_metrics_http_open_connections",
        "gauge",
        "Connections open on the metrics endpoint.",
        r(&http.open),
    );
    if let Some(m) = mgmt {
        one(
            "fastlag_mgmt_connections_total",
            "counter",
            "Connections accepted on the management socket.",
            r(&m.accepted),
        );
        one(
            "fastlag_mgmt_refused_total",
            "counter",
            "Management connections refused: too many at once.",
            r(&m.refused),
        );
        one(
            "fastlag_mgmt_requests_total",
            "counter",
            "Management requests answered.",
            r(&m.requests),
        );
        one(
            "fastlag_mgmt_closed_not_reading_total",
            "counter",
            "Management clients closed because they did not read their answers.",
            r(&m.closed_not_reading),
        );
        one(
            "fastlag_mgmt_closed_bad_request_total",
            "counter",
            "Management clients closed for an incomplete request.",
            r(&m.closed_bad_request),
        );
        one(
            "fastlag_mgmt_budget_exhausted_total",
            "counter",
            "Control-loop passes whose time for management requests ran out.",
            r(&m.budget_exhausted),
        );
        one(
            "fastlag_mgmt_total_cap_total",
            "counter",
            "Passes in which the memory cap for all management clients held them back.",
            r(&m.total_cap_hit),
        );
        one(
            "fastlag_mgmt_held_bytes",
            "gauge",
            "Bytes held for management clients (input and unsent output).",
            r(&m.held_bytes),
        );
        one(
            "fastlag_mgmt_held_bytes_max",
            "gauge",
            "The most bytes ever held for management clients.",
            r(&m.held_bytes_max),
        );
        one(
            "fastlag_mgmt_open_connections",
            "gauge",
            "Management connections open.",
            r(&m.open),
        );
    }
    o
}

/// The response to a request head (everything up to the blank line).
pub fn respond(head: &[u8], scrape: Option<&Scrape>) -> (u16, &'static str, String) {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (400, "Bad Request", "malformed request line\n".into());
    };
    if !version.starts_with("HTTP/1.") {
        return (400, "Bad Request", "HTTP/1.0 or HTTP/1.1 only\n".into());
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return (404, "Not Found", "only /metrics is served here\n".into());
    }
    if method != "GET" && method != "HEAD" {
        return (405, "Method Not Allowed", "use GET\n".into());
    }
    match scrape {
        Some(s) => (200, "OK", render(s)),
        None => (503, "Service Unavailable", "starting\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr) -> (u16, Duration) {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, t.elapsed())
    }

    /// Ten clients that send their request a byte at a time do not hold up a scrape
    /// (one connection at a time used to make it wait for each of them), and each of them
    /// is closed at its deadline.
    #[test]
    fn slow_clients_do_not_delay_a_scrape() {
        let srv = Server::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = srv.local_addr();
        let mut slow: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for s in &mut slow {
            s.write_all(b"GET /met").unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let (code, took) = get(addr);
        // No snapshot is published here: "starting" is the answer.
        assert_eq!(code, 503);
        println!("MEASURE metrics: a scrape next to 10 slow clients answered in {took:?}");
        assert!(took < Duration::from_millis(500), "scrape took {took:?}");
        // A byte every 100 ms: still closed at the deadline, not kept alive by the bytes.
        let t0 = Instant::now();
        let mut closed = 0;
        while t0.elapsed() < DEADLINE + Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(100));
            closed = 0;
            for s in &mut slow {
                let _ = s.write_all(b"r");
                s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
                let mut b = [0u8; 16];
                // The server closed it: FIN, or a reset for the bytes it did not read.
                let gone = match s.read(&mut b) {
                    Ok(n) => n == 0,
                    Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                };
                closed += usize::from(gone);
            }
            if closed == slow.len() {
                break;
            }
        }
        assert!(t0.elapsed() >= DEADLINE - Duration::from_millis(200));
        assert_eq!(closed, 10, "slow clients still open after the deadline");
        assert_eq!(srv.stats.timed_out.load(Ordering::Relaxed), 10);
    }

    /// A flood of idle connections: the ones over the cap get 503 at once, a scrape is
    /// still answered, and the endpoint serves normally once the flood is gone.
    #[test]
    fn a_connection_flood_is_answered_not_waited_for() {
        let srv = Server::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = srv.local_addr();
        let flood: Vec<TcpStream> = (0..300)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let (code, took) = get(addr);
        assert_eq!(code, 503, "over the cap: busy");
        assert!(took < Duration::from_millis(500), "answer took {took:?}");
        // Every connection beyond the cap was answered busy, except where a slot was freed
        // meanwhile by a connection closed at its deadline (a loaded machine can take longer
        // than DEADLINE to open 300 connections): count both, so the check does not depend
        // on scheduling.
        let busy = srv.stats.rejected_busy.load(Ordering::Relaxed);
        let timed_out = srv.stats.timed_out.load(Ordering::Relaxed);
        assert!(
            busy + timed_out >= (300 - MAX_CONNS) as u64,
            "busy {busy} + timed out {timed_out} < {}",
            300 - MAX_CONNS
        );
        drop(flood);
        std::thread::sleep(Duration::from_millis(100));
        let (code, took) = get(addr);
        assert_eq!(code, 503, "no snapshot yet: starting");
        assert!(took < Duration::from_millis(500));
        assert!(srv.stats.open.load(Ordering::Relaxed) <= 1);
    }

    #[test]
    fn requests_are_answered_by_method_and_path() {
        assert_eq!(respond(b"GET /metrics HTTP/1.1\r\nHost: x", None).0, 503);
        assert_eq!(respond(b"GET /other HTTP/1.1", None).0, 404);
        assert_eq!(respond(b"POST /metrics HTTP/1.1", None).0, 405);
        assert_eq!(respond(b"GET /metrics", None).0, 400);
        assert_eq!(respond(b"\xff\xfe garbage", None).0, 400);
        assert_eq!(respond(b"GET /metrics SPDY/3", None).0, 400);
    }
}
