#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! fastlag's shared value types: the one definition of each small type that the
//! configuration, the LACP engine, the DPDK bindings and the dataplane all use.
//!
//! * [`MacAddr`]: an IEEE 802 MAC address, written `02:00:00:00:00:01`.
//! * [`Speed`] and [`Duplex`]: link state as a PMD reports it.
//! * [`HashPolicy`]: which headers a bond hashes to pick a member (`layer2`, `layer2+3`,
//!   `layer3+4`).
//! * [`ethertype`]: the EtherType numbers the code matches on.
//! * [`InvalidValue`]: why a string did not parse into one of these.
//!
//! This crate depends on nothing of fastlag's and on no DPDK; only `serde`, for the types
//! that the configuration and the management API (de)serialize as strings.
//!
//! ```
//! use types::{ethertype, Duplex, HashPolicy, MacAddr, Speed};
//!
//! let mac: MacAddr = "02:00:00:00:0A:ff".parse().expect("a MAC address");
//! assert_eq!(mac.to_string(), "02:00:00:00:0a:ff");
//! assert!(mac.is_unicast() && mac.is_local());
//!
//! assert_eq!("layer3+4".parse(), Ok(HashPolicy::Layer34));
//! assert_eq!(Speed::Mbps(25_000).to_string(), "25 Gb/s");
//! assert_eq!(Duplex::default(), Duplex::Unknown);
//! assert_eq!(ethertype::SLOW_PROTOCOLS, 0x8809);
//! ```

pub mod ethertype;
mod hash;
mod invalid;
mod link;
mod mac;

pub use hash::HashPolicy;
pub use invalid::InvalidValue;
pub use link::{Duplex, Speed};
pub use mac::MacAddr;
