//! fastlag's daemon library: everything between a validated configuration and the running
//! fast path.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod control_loop;
pub mod eal_args;
pub mod metrics;
pub mod mgmt;
pub mod reload;
pub mod report;
pub mod router;
pub mod runtime;
