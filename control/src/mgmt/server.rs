//! The management socket's transport: a Unix stream socket (mode 0600) polled without
//! ever blocking (accept, read, write; partial writes stay buffered), one JSON request per
//! line in, one [`Envelope`] per line out. What a request means is the [`Handler`]'s
//! business.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
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
    fn reply<T: serde::Serialize>(&mut self, v: &Envelope<T>) {
        if let Ok(mut s) = serde_json::to_vec(v) {
            s.push(b'\n');
            self.out.extend_from_slice(&s);
        }
    }

    fn reply_err(&mut self, msg: &str) {
        self.reply(&Envelope::<()>::err(msg));
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

impl Server {
    /// One non-blocking round: accept, read, answer complete requests with `handler`,
    /// write, expire.
    pub fn serve(&mut self, handler: &mut dyn Handler) {
        let now = WallInstant::now();
        self.accept(now);
        for c in &mut self.conns {
            for line in c.read(now) {
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
                c.reply(&resp);
            }
            c.write(now);
            c.expire(now);
        }
        self.conns.retain(|c| !c.dead);
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
