//! A blocking client for the management socket (what `fastlag ctl` uses).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::{Envelope, Request};

/// A connection to the management socket.
pub struct Client {
    reader: BufReader<UnixStream>,
    path: PathBuf,
}

impl Client {
    /// Connects (10 s read and write timeouts).
    pub fn connect(path: &Path) -> Result<Client, String> {
        let s = UnixStream::connect(path).map_err(|e| {
            format!(
                "cannot connect to the management socket {}: {e} (is fastlag running? is [management] socket set elsewhere? use --socket)",
                path.display()
            )
        })?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        Ok(Client {
            reader: BufReader::new(s),
            path: path.to_path_buf(),
        })
    }

    /// Sends `req`; returns its result as `T` (the type [`Request`] names for the verb), or
    /// the server's error.
    pub fn call<T: DeserializeOwned>(&mut self, req: &Request) -> Result<T, String> {
        let line = self.call_line(req)?;
        let env: Envelope<T> = serde_json::from_str(&line)
            .map_err(|e| format!("bad answer to {}: {e}", req.verb()))?;
        env.into_result()
    }

    /// Sends `req`; returns the result as the server wrote it (for `--json`).
    pub fn call_json(&mut self, req: &Request) -> Result<serde_json::Value, String> {
        self.call(req)
    }

    fn call_line(&mut self, req: &Request) -> Result<String, String> {
        let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut resp = String::new();
        self.reader
            .read_line(&mut resp)
            .map_err(|e| format!("{}: no answer: {e}", self.path.display()))?;
        if resp.is_empty() {
            return Err(format!("{}: connection closed", self.path.display()));
        }
        Ok(resp)
    }
}
