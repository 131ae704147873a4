//! fastlag's daemon library: everything between a validated configuration and the running
//! fast path, in the order a configuration flows through it.
//!
//! * [`plan`]: pure. A [`conf::Config`] becomes a [`plan::Plan`] (ports and queues, links,
//!   bonds with their LACP settings, the workers' egress, spare ports, EAL arguments); a
//!   hitless reload is the [`plan::diff`] of two plans.
//! * [`status`]: pure data. What fastlag shows of itself (the management API's types).
//! * [`runtime`]: applies a plan in named steps (EAL, pool, links, ports, rings, LACP
//!   engine, router, threads) and takes it down in order.
//! * [`control_thread`]: the LACP I/O loop (slow-protocol frames in and out, link polling,
//!   bond tables), with [`control_thread::reload`] and [`control_thread::drain`]; it answers
//!   the management socket.
//! * [`router`]: router mode's control side (TAP exception path, FIB upkeep from netlink).
//! * [`mgmt`]: the management socket's transport and the [`mgmt::Handler`] it calls;
//!   [`metrics`]: Prometheus text from a status snapshot, and a small HTTP server.
//! * [`daemon`]: `fastlag run`'s main thread: signals, reload, the status file, metrics;
//!   [`notify`]: the service manager's notify protocol (readiness, status, watchdog).
//!
//! Dependencies run one way: plan, status -> runtime -> control thread -> mgmt, metrics
//! (which read status only).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod control_thread;
pub mod daemon;
pub mod handoff;
pub mod metrics;
pub mod mgmt;
pub mod notify;
pub mod plan;
pub mod report;
pub mod router;
pub mod runtime;
pub mod status;
