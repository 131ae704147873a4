//! Prometheus metrics: text exposition format 0.0.4 over a minimal HTTP/1.x server on the
//! loopback address from `[management] metrics`.
//!
//! The numbers come from the same snapshot as the `--status` file (and `fastlag ctl show
//! stats`): the main thread takes the control thread's status and the port/worker
//! counters every 50 ms, writes the status file and publishes the same [`Scrape`] here
//! (arc-swap). The server runs on a thread of its own that only reads that published
//! snapshot: a slow or malicious client can delay other scrapes (each connection has
//! 2 s timeouts and an 8 KiB request limit) but never the control thread's LACP timers or
//! a worker. Serving from the control thread's loop would put HTTP parsing and socket
//! writes next to LACPDU deadlines for no gain; the snapshot is the same either way.

mod render;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwapOption;

pub use render::render;

use crate::status::Scrape;

/// Where the main thread publishes [`Scrape`]s for the server.
pub type SharedScrape = Arc<ArcSwapOption<Scrape>>;

/// The metrics server thread.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// What it serves.
    pub scrape: SharedScrape,
}

/// Longest request head accepted.
const MAX_REQUEST: usize = 8192;
/// Per-connection read and write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl Server {
    /// Listens on `addr` (a loopback address, checked by the config) and serves from a
    /// thread of its own until dropped.
    pub fn start(addr: SocketAddr) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let scrape: SharedScrape = Arc::new(ArcSwapOption::empty());
        let (s, sc) = (stop.clone(), scrape.clone());
        let thread = std::thread::Builder::new()
            .name("fl-metrics".into())
            .spawn(move || serve(listener, &s, &sc))?;
        tracing::info!(%addr, "Prometheus metrics on http://{addr}/metrics");
        Ok(Server {
            stop,
            thread: Some(thread),
            scrape,
        })
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

fn serve(listener: TcpListener, stop: &AtomicBool, scrape: &SharedScrape) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, peer)) => {
                if let Err(e) = handle(conn, scrape) {
                    tracing::debug!(%peer, "metrics connection: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
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

fn handle(mut conn: TcpStream, scrape: &SharedScrape) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(i);
        }
        if buf.len() > MAX_REQUEST {
            break None;
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let snapshot = scrape.load_full();
    let (code, reason, body) = match head_end {
        Some(i) => respond(&buf[..i], snapshot.as_deref()),
        None => (
            431,
            "Request Header Fields Too Large",
            "request too large\n".into(),
        ),
    };
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
    conn.write_all(out.as_bytes())?;
    conn.flush()?;
    // Closing with unread input would reset the connection and could discard the
    // response at the client: say we are done, then read (bounded) what it still sends.
    conn.shutdown(std::net::Shutdown::Write)?;
    conn.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut left: usize = 256 * 1024;
    while left > 0 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
