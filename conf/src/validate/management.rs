//! `[management]`: the control socket, the metrics endpoint, the handoff state file and
//! what a planned restart does.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Validator;
use crate::model::{Management, DEFAULT_SOCKET};
use crate::raw::RawManagement;
use crate::values::InvalidValue;
use crate::values::RestartMode;

/// `sizeof(sockaddr_un.sun_path) - 1`.
const MAX_SOCKET_PATH: usize = 107;

impl Validator<'_> {
    pub(super) fn management(&mut self, raw: Option<RawManagement>) -> Management {
        let mut mgmt = Management::default();
        let Some(raw) = raw else { return mgmt };
        if let Some(socket) = raw.socket {
            let path = "management.socket";
            if !socket.starts_with('/') {
                self.ctx.error(
                    path,
                    format!("socket {socket:?} is not an absolute path; write the full path, e.g. \"{DEFAULT_SOCKET}\""),
                );
            } else if socket.len() > MAX_SOCKET_PATH || socket.contains('\0') {
                self.ctx.error(
                    path,
                    format!("socket path is {} bytes; a Unix socket path has at most {MAX_SOCKET_PATH}: use a shorter path", socket.len()),
                );
            }
            mgmt.socket = PathBuf::from(socket);
        }
        if let Some(file) = raw.state_file {
            let path = "management.state_file";
            if !file.starts_with('/') {
                self.ctx.error(
                    path,
                    format!("state_file {file:?} is not an absolute path; write the full path, e.g. \"/run/fastlag/handoff\""),
                );
            } else if file.ends_with('/') || file.contains('\0') {
                self.ctx.error(
                    path,
                    format!("state_file {file:?} names a directory; name a file in it, e.g. \"/run/fastlag/handoff\""),
                );
            }
            mgmt.state_file = Some(PathBuf::from(file));
        }
        mgmt.restart = self
            .ctx
            .keyword("management.restart", raw.restart, RestartMode::Exec);
        if let Some(text) = &raw.metrics {
            mgmt.metrics = self.ctx.parse_with("management.metrics", text, |s| {
                let addr: SocketAddr = s.parse().map_err(|_| {
                    InvalidValue(format!("{s:?} is not an address:port; write \"127.0.0.1:9477\" or \"[::1]:9477\" (names such as localhost are not resolved)"))
                })?;
                if !addr.ip().is_loopback() {
                    return Err(InvalidValue(format!("metrics address {addr} is not a loopback address; the metrics endpoint has no authentication, so it listens on 127.0.0.1 or ::1 only: use \"127.0.0.1:{}\"", addr.port())));
                }
                if addr.port() == 0 {
                    return Err(InvalidValue("port 0 picks a random port; choose a fixed one, e.g. \"127.0.0.1:9477\"".to_owned()));
                }
                Ok(addr)
            });
        }
        mgmt
    }
}
