//! Administrative model: what the operator configures for a bond and its members, and the
//! link state the dataplane reports.

use core::fmt;
use core::time::Duration;

use crate::wire::MacAddr;

/// A System Identifier: priority then MAC, compared in that order; numerically lower is higher
/// priority (802.1AX-2014 clause 6.3.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SystemId {
    /// System priority (default 65535, as Linux, OVS and VPP use).
    pub priority: u16,
    /// System MAC address. Configure it explicitly: it must not follow any member's MAC, so that
    /// losing a member never changes the LAG ID (DPDK Bugzilla 551).
    pub mac: MacAddr,
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.priority, self.mac)
    }
}

/// LACP_Activity of our ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Send LACPDUs whatever the partner does.
    #[default]
    Active,
    /// Send only once an active partner has been heard (802.1AX-2014 clause 6.4.13).
    Passive,
}

/// Our LACP_Timeout bit: how fast we ask the partner to send to us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rate {
    /// Short timeout: the partner sends every second and we expire it after 3 s. The dataplane
    /// default (a dead link is noticed in 3 s instead of 90 s).
    #[default]
    Fast,
    /// Long timeout: the partner sends every 30 s, we expire it after 90 s.
    Slow,
}

/// How a bond chooses its one active aggregator; see `docs/lacp-engine.md` for the exact order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SelectionPolicy {
    /// Keep the active aggregator while it still has an LACP partner and a usable member.
    #[default]
    Stable,
    /// Prefer the aggregator with the highest summed known link speed of usable members.
    Bandwidth,
    /// Prefer the aggregator with the most usable members.
    Count,
}

/// What a bond does when no member hears an LACP partner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// Nothing distributes without LACP.
    #[default]
    None,
    /// Exactly one member (best port priority, then lowest port number; kept while usable)
    /// carries traffic as an individual link until LACP is heard on any member.
    Individual,
}

/// Mux machine flavour (802.1AX-2014 clause 6.4.15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MuxControl {
    /// Coupled control: collecting and distributing are enabled together.
    #[default]
    Coupled,
    /// Independent control: collecting first, distributing once the partner is collecting.
    Independent,
}

/// How the operational key is derived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyPolicy {
    /// Operational key = admin key; link speed never changes it.
    #[default]
    Admin,
    /// The low 6 bits of the admin key are replaced by a speed class, so that members of other
    /// speeds land in other aggregators. Unknown speed is its own class (0x3f).
    AdminWithSpeedClass,
}

/// Timer constants (802.1AX-2014 clause 6.4.4) and our transmit margins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timers {
    /// Fast_Periodic_Time (1 s): also the window of the transmit limit.
    pub fast_periodic: Duration,
    /// Slow_Periodic_Time (30 s).
    pub slow_periodic: Duration,
    /// Period we actually use when the partner asked for fast PDUs (0.9 s): a margin below the
    /// partner's 3 s timeout that survives scheduling jitter (RTLPlayground#299).
    pub fast_periodic_tx: Duration,
    /// Period we actually use when the partner asked for slow PDUs (29 s).
    pub slow_periodic_tx: Duration,
    /// Short_Timeout_Time (3 s).
    pub short_timeout: Duration,
    /// Long_Timeout_Time (90 s).
    pub long_timeout: Duration,
    /// Aggregate_Wait_Time (2 s).
    pub aggregate_wait: Duration,
    /// Churn_Detection_Time (60 s).
    pub churn_detection: Duration,
    /// LACPDUs allowed per `fast_periodic` window per port (3, clause 6.4.16); 1..=8.
    pub tx_limit: u8,
    /// Marker Responses allowed per `fast_periodic` window per port (5; with 3 LACPDUs this
    /// stays under the Slow Protocols limit of 10 frames per second, IEEE 802.3 Annex 43B).
    pub marker_limit: u8,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            fast_periodic: Duration::from_secs(1),
            slow_periodic: Duration::from_secs(30),
            fast_periodic_tx: Duration::from_millis(900),
            slow_periodic_tx: Duration::from_secs(29),
            short_timeout: Duration::from_secs(3),
            long_timeout: Duration::from_secs(90),
            aggregate_wait: Duration::from_secs(2),
            churn_detection: Duration::from_secs(60),
            tx_limit: 3,
            marker_limit: 5,
        }
    }
}

/// A configuration the engine refuses, with what to do instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A timer relation the protocol needs does not hold.
    #[error("timers: {0}")]
    Timers(&'static str),
    /// Port numbers are 1-based (switches reject port 0, DPDK/grout#387).
    #[error(
        "port {name}: port number 0 is not allowed; use a 1-based number stable across restarts"
    )]
    PortNumberZero {
        /// The port's name.
        name: String,
    },
    /// Another port of the same system already uses this port number.
    #[error("port {name}: port number {number} is already used by port {other} of the same system id; give each member its own number")]
    DuplicatePortNumber {
        /// The port's name.
        name: String,
        /// The number.
        number: u16,
        /// The port already using it.
        other: String,
    },
    /// Two bonds with the same System ID and key would be one LAG to the partner.
    #[error("bond {name}: system id {system} with key {key} is already used by bond {other}; change the admin key or the system id")]
    DuplicateSystemKey {
        /// This bond.
        name: String,
        /// The System ID.
        system: SystemId,
        /// The key.
        key: u16,
        /// The bond already using it.
        other: String,
    },
    /// min_links above max_active can never be met.
    #[error("bond {name}: min_links {min_links} is above max_active {max_active}; nothing would ever distribute")]
    MinAboveMax {
        /// The bond.
        name: String,
        /// min_links.
        min_links: u16,
        /// max_active.
        max_active: u16,
    },
    /// The system MAC must be an individual (unicast) address.
    #[error("bond {name}: system id MAC {mac} is a group address; use a unicast, locally administered MAC")]
    GroupSystemMac {
        /// The bond.
        name: String,
        /// The MAC.
        mac: MacAddr,
    },
}

impl Timers {
    /// Checks the relations the machines rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let z = Duration::ZERO;
        if self.fast_periodic == z || self.fast_periodic_tx == z || self.slow_periodic_tx == z {
            return Err(ConfigError::Timers("periodic times must be non-zero"));
        }
        if self.fast_periodic_tx >= self.short_timeout {
            return Err(ConfigError::Timers(
                "fast_periodic_tx must be below short_timeout or fast partners expire",
            ));
        }
        if self.slow_periodic_tx >= self.long_timeout {
            return Err(ConfigError::Timers(
                "slow_periodic_tx must be below long_timeout or slow partners expire",
            ));
        }
        if self.short_timeout > self.long_timeout {
            return Err(ConfigError::Timers(
                "short_timeout must not exceed long_timeout",
            ));
        }
        if !(1..=8).contains(&self.tx_limit) {
            return Err(ConfigError::Timers("tx_limit must be 1..=8"));
        }
        if !(1..=8).contains(&self.marker_limit) {
            return Err(ConfigError::Timers("marker_limit must be 1..=8"));
        }
        Ok(())
    }
}

/// Configuration of one bond (one aggregate interface towards the dataplane).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondConfig {
    /// Name for operators (e.g. "bond0").
    pub name: String,
    /// Our System Identifier.
    pub system: SystemId,
    /// Admin key of every member unless a port overrides it.
    pub admin_key: u16,
    /// Active or passive LACP.
    pub activity: Activity,
    /// Our Timeout bit.
    pub rate: Rate,
    /// Active aggregator policy.
    pub selection: SelectionPolicy,
    /// Below this many usable members nothing distributes (0 and 1 mean "one is enough").
    pub min_links: u16,
    /// At most this many members distribute; the rest are STANDBY (None: no limit).
    pub max_active: Option<u16>,
    /// Silent-partner behaviour.
    pub fallback: Fallback,
    /// Coupled or independent mux control.
    pub mux: MuxControl,
    /// Operational key derivation.
    pub key_policy: KeyPolicy,
    /// Timer constants.
    pub timers: Timers,
    /// Transitions kept per port for introspection.
    pub history_len: usize,
}

impl BondConfig {
    /// A bond with the dataplane defaults: active, fast, stable selection, min_links 1, no
    /// max_active, no fallback, coupled mux, key from configuration, system priority 65535.
    pub fn new(name: impl Into<String>, system_mac: MacAddr, admin_key: u16) -> BondConfig {
        BondConfig {
            name: name.into(),
            system: SystemId {
                priority: 65535,
                mac: system_mac,
            },
            admin_key,
            activity: Activity::Active,
            rate: Rate::Fast,
            selection: SelectionPolicy::Stable,
            min_links: 1,
            max_active: None,
            fallback: Fallback::None,
            mux: MuxControl::Coupled,
            key_policy: KeyPolicy::Admin,
            timers: Timers::default(),
            history_len: 32,
        }
    }

    /// Checks this bond on its own (the engine also checks it against other bonds).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.timers.validate()?;
        if self.system.mac.is_multicast() {
            return Err(ConfigError::GroupSystemMac {
                name: self.name.clone(),
                mac: self.system.mac,
            });
        }
        if let Some(max) = self.max_active {
            if max > 0 && self.min_links > max {
                return Err(ConfigError::MinAboveMax {
                    name: self.name.clone(),
                    min_links: self.min_links,
                    max_active: max,
                });
            }
        }
        Ok(())
    }
}

/// Configuration of one member port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Name for operators (e.g. "0000:3b:00.0" or "eth1").
    pub name: String,
    /// The member's own MAC: the source address of its LACPDUs.
    pub mac: MacAddr,
    /// 1-based port number, unique within the system and stable across restarts.
    pub port_number: u16,
    /// Port priority (default 255; lower is preferred when max_active limits members).
    pub port_priority: u16,
    /// Admin key override (None: the bond's admin key).
    pub key: Option<u16>,
}

impl PortConfig {
    /// A member with default priority 255 and the bond's key.
    pub fn new(name: impl Into<String>, mac: MacAddr, port_number: u16) -> PortConfig {
        PortConfig {
            name: name.into(),
            mac,
            port_number,
            port_priority: 255,
            key: None,
        }
    }
}

/// Link speed and duplex as the PMD reports them (fastlag's one definition, from the
/// `types` crate). A speed of 0 counts as unknown; unknown speed or duplex never stops
/// LACP (half duplex makes the link Individual).
pub use types::{Duplex, Speed};

/// Link state input from the dataplane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkStatus {
    /// Carrier.
    pub up: bool,
    /// Speed.
    pub speed: Speed,
    /// Duplex.
    pub duplex: Duplex,
}

impl LinkStatus {
    /// Link down.
    pub const fn down() -> LinkStatus {
        LinkStatus {
            up: false,
            speed: Speed::Unknown,
            duplex: Duplex::Unknown,
        }
    }
    /// Link up, full duplex, known speed in Mb/s.
    pub const fn up_full(mbps: u32) -> LinkStatus {
        LinkStatus {
            up: true,
            speed: Speed::Mbps(mbps),
            duplex: Duplex::Full,
        }
    }
    /// Link up with unknown speed and duplex (what KNI, net_ring or memif may report).
    pub const fn up_unknown() -> LinkStatus {
        LinkStatus {
            up: true,
            speed: Speed::Unknown,
            duplex: Duplex::Unknown,
        }
    }
}

/// Speed class used by [`KeyPolicy::AdminWithSpeedClass`] (6 bits).
pub(crate) fn speed_class(speed: Speed) -> u16 {
    match speed.mbps() {
        None => 0x3f,
        Some(10) => 1,
        Some(100) => 2,
        Some(1_000) => 3,
        Some(2_500) => 4,
        Some(5_000) => 5,
        Some(10_000) => 6,
        Some(20_000) => 7,
        Some(25_000) => 8,
        Some(40_000) => 9,
        Some(50_000) => 10,
        Some(56_000) => 11,
        Some(100_000) => 12,
        Some(200_000) => 13,
        Some(400_000) => 14,
        Some(800_000) => 15,
        Some(_) => 0x3e,
    }
}
