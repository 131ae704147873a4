//! Events, captures and the administrative verbs (ping, drain, reload).

use serde::{Deserialize, Serialize};

/// `ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// Milliseconds since the control thread started.
    pub uptime_ms: u64,
}

/// One LACP state transition or admin event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Unix time, ns (a string: JSON numbers lose precision beyond 2^53).
    pub at_ns: String,
    /// The same instant, RFC 3339.
    pub at: String,
    /// Bond name.
    pub bond: String,
    /// Member name.
    pub member: String,
    /// The 802.1AX machine ("Receive", "Mux", ...) or "Admin".
    pub machine: String,
    /// Previous state ("" for admin events).
    pub from: String,
    /// New state, or what the operator did.
    pub to: String,
    /// Why.
    pub cause: String,
}

impl EventView {
    /// Whether this is an operator's action rather than a protocol transition.
    pub fn is_admin(&self) -> bool {
        self.machine == "Admin"
    }
}

/// `capture`: the bond's recent slow-protocol frames, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureView {
    /// Bond name.
    pub bond: String,
    /// Frames recorded since start (older ones were overwritten).
    pub recorded_total: u64,
    /// Frames in `frames`.
    pub kept: usize,
    /// The frames.
    pub frames: Vec<CapturedFrame>,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedFrame {
    /// Unix time, ns (a string, see [`EventView::at_ns`]).
    pub at_ns: String,
    /// Member it was received or sent on.
    pub member: Option<String>,
    /// "rx" or "tx".
    pub direction: String,
    /// Length on the wire.
    pub orig_len: u32,
    /// The bytes kept (up to 128), hex.
    pub hex: String,
}

/// `drain` / `undrain`: the member's new state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainView {
    /// Bond name.
    pub bond: String,
    /// Member name.
    pub member: String,
    /// "draining", "drained", "undrained" or "rejoining".
    pub state: String,
    /// When nothing changed, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A planned restart accepted (`fastlag ctl restart`): the process writes the handoff state
/// file and is replaced (or exits for the service manager) right after this answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartView {
    /// Where the handoff state goes.
    pub state_file: String,
    /// `exec` (the process replaces itself) or `exit` (status 75, for a service manager).
    pub mode: String,
    /// Process uptime when the restart was asked for (ms); `ctl restart --wait` waits for a
    /// process with a shorter one.
    pub uptime_ms: u64,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadSummary {
    /// One line per change applied, in the order applied (empty: the file matches what runs).
    pub changes: Vec<String>,
}
