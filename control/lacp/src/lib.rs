//! fastlag control plane: a sans-IO IEEE 802.1AX (802.3ad) LACP engine.
//!
//! The crate has no DPDK dependency, reads no clock, spawns no thread and draws no random
//! number inside the engine: the owner (the dataplane's control thread, a test, a benchmark)
//! passes time in and pulls frames and events out, in the style of quinn-proto.
//!
//! * [`wire`]: zero-copy packet views and validated `Repr` types for the LACPDU and the Marker
//!   PDU (802.1AX-2014 clause 6.4.2 and 6.5.3), in the style of smoltcp.
//! * [`engine`]: the per-port machines of clause 6.4 (Receive, Periodic Transmission, Mux,
//!   Transmit, Churn Detection), the Selection Logic per bond and the Marker responder.
//! * [`info`]: introspection (port and bond views, typed reasons, counters, history) and the
//!   [`Event`]/[`Transmit`] values the engine hands out.
//! * [`sim`]: a deterministic simulator joining several engines by virtual links.
//!
//! See `docs/lacp-engine.md` in the repository for the design note.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod info;
pub mod sim;
pub mod time;
pub mod why;
pub mod wire;

mod machines;

pub use config::{
    Activity, BondConfig, ConfigError, Duplex, Fallback, KeyPolicy, LinkStatus, MuxControl,
    PortConfig, Rate, SelectionPolicy, Speed, SystemId, Timers,
};
pub use engine::{BondId, Engine, EngineError, EngineStats, PortId, RxKind};
pub use info::{
    AggregatorId, AggregatorInfo, BondInfo, Cause, ChurnState, Event, IndividualCause, KeySide,
    Machine, MuxState, PeriodicState, PortCounters, PortInfo, Reason, RxState, Selected, Side,
    TimerInfo, Transition, Transmit, TxKind, UnknownLink,
};
pub use time::Instant;
pub use wire::{
    Frame, LacpduRepr, MacAddr, MarkerKind, MarkerRepr, ParticipantInfo, PortState, WireError,
};
