//! fastlag control plane: a sans-IO IEEE 802.1AX (802.3ad) LACP engine.
//!
//! The crate has no DPDK dependency, reads no clock, spawns no thread and draws no random
//! number inside the engine: the owner (the dataplane's control thread, a test, a benchmark)
//! passes time in and pulls frames and events out, in the style of quinn-proto.
//!
//! * [`wire`]: zero-copy packet views and validated `Repr` types for the LACPDU and the Marker
//!   PDU (802.1AX-2014 clause 6.4.2 and 6.5.3), in the style of smoltcp.
//! * [`engine`]: the [`Engine`]: bonds and members, the `handle_*`/`poll_*` interface, the
//!   administrative `set_*` calls, introspection, and the settle loop that runs a bond's
//!   machines until nothing changes.
//! * `machines` (private): one file per machine of clause 6.4, named as in the standard:
//!   Receive (6.4.12), Periodic Transmission (6.4.13), Selection Logic (6.4.14), Mux (6.4.15),
//!   Transmit (6.4.16), Churn Detection (6.4.17) and the Marker Responder (6.5.4.2).
//! * [`info`]: introspection (port and bond views, typed reasons, counters, history) and the
//!   [`Event`]/[`Transmit`] values the engine hands out; [`why`] turns a reason into words.
//! * [`sim`]: a deterministic simulator joining several engines by virtual links.
//!
//! Two simulated systems, one bond each with two links between them, converge: LACPDUs are
//! exchanged, each Mux machine waits out Aggregate_Wait_Time, and both sides put both members
//! in their distribution set. Time is virtual: nothing sleeps.
//!
//! ```
//! use core::time::Duration;
//! use lacp::sim::{system_mac, LinkParams, Sim};
//! use lacp::{BondConfig, Instant};
//!
//! let a = BondConfig::new("bond-a", system_mac(0, 1), 10);
//! let b = BondConfig::new("bond-b", system_mac(1, 1), 20);
//! let link = LinkParams {
//!     latency: Duration::from_millis(1),
//!     ..LinkParams::default()
//! };
//! let (mut sim, pair) = Sim::pair(7, 2, a, b, link)?;
//! // Check the safety invariants after every step, as the property tests do.
//! sim.set_check_invariants(true);
//!
//! // Aggregate_Wait_Time (2 s) plus a few one-way latencies.
//! let at = sim.run_until_cond(Instant::from_secs(10), |s| pair.all_distributing(s))?;
//! assert!(at < Instant::from_secs(3), "converged at {at}");
//! for (&pa, &pb) in pair.a_ports.iter().zip(&pair.b_ports) {
//!     assert!(sim.engine(pair.a).is_distributing(pa));
//!     assert!(sim.engine(pair.b).is_distributing(pb));
//! }
//! assert_eq!(sim.engine(pair.a).distribution(pair.a_bond)?, &pair.a_ports[..]);
//! assert_eq!(sim.engine(pair.b).distribution(pair.b_bond)?, &pair.b_ports[..]);
//!
//! // And they stay that way.
//! sim.run_for(Duration::from_secs(60))?;
//! assert!(pair.all_distributing(&sim));
//! # Ok::<(), lacp::sim::SimError>(())
//! ```
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
pub use engine::{
    BondId, Engine, EngineError, EngineStats, PortId, RestoreOutcome, RestoreRefusal, RxKind,
    SavedPort,
};
pub use info::{
    AggregatorId, AggregatorInfo, BondInfo, Cause, ChurnState, Event, IndividualCause, KeySide,
    Machine, MuxState, PeriodicState, PortCounters, PortInfo, Reason, RxState, Selected, Side,
    TimerInfo, Transition, Transmit, TxKind, UnknownLink,
};
pub use time::Instant;
pub use wire::{
    Frame, LacpduRepr, MacAddr, MarkerKind, MarkerRepr, ParticipantInfo, PortState, WireError,
};
