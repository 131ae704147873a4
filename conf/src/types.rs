//! Value types of the configuration: addresses, devices and keyword enums.
//!
//! Each type parses from the string an operator writes (`FromStr`), prints back in canonical
//! form (`Display`) and (de)serializes through that string, so the same spelling works in the
//! TOML file, in logs and in the management API.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value did not parse; the message says what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! serde_via_string {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// What a string value is, for "expected ..." in messages.
pub(crate) trait Expected {
    /// Noun phrase, e.g. `a MAC address like "02:00:00:00:00:01"`.
    fn expected() -> String;
}

/// Defines an enum of TOML keywords with `FromStr`, `Display`, `as_str` and serde.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every accepted spelling, in documentation order.
            pub const KEYWORDS: &'static [&'static str] = &[$($text),+];

            /// The keyword as written in the configuration file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(InvalidValue(format!(
                        "{s:?} is not valid here; use one of {}",
                        quoted_list(Self::KEYWORDS)
                    ))),
                }
            }
        }

        impl Expected for $name {
            fn expected() -> String {
                format!("one of {}", quoted_list(Self::KEYWORDS))
            }
        }

        serde_via_string!($name);
    };
}

/// `"a", "b", "c"`.
pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

keyword_enum! {
    /// How a bond spreads traffic over its members.
    pub enum BondMode {
        /// IEEE 802.1AX (802.3ad) dynamic link aggregation with LACP.
        Lacp => "802.3ad",
        /// One member carries traffic; the others take over on link failure.
        ActiveBackup => "active-backup",
        /// Static aggregation: members chosen by hash, no negotiation.
        BalanceXor => "balance-xor",
    }
}

keyword_enum! {
    /// Which headers the bond distributor hashes to pick a member.
    pub enum HashPolicy {
        /// Source and destination MAC.
        Layer2 => "layer2",
        /// MACs and IP addresses.
        Layer23 => "layer2+3",
        /// IP addresses and TCP/UDP ports.
        Layer34 => "layer3+4",
    }
}

keyword_enum! {
    /// LACP_Activity (802.1AX 6.4.2.3): whether we send LACPDUs unprompted.
    pub enum LacpActivity {
        /// Send LACPDUs periodically.
        Active => "active",
        /// Send only after hearing an active partner.
        Passive => "passive",
    }
}

keyword_enum! {
    /// Our LACP_Timeout bit: how fast the partner must send LACPDUs to us.
    pub enum LacpRate {
        /// Short timeout: partner sends every 1 s, expires after 3 s.
        Fast => "fast",
        /// Long timeout: partner sends every 30 s, expires after 90 s.
        Slow => "slow",
    }
}

keyword_enum! {
    /// How the aggregator to distribute on is chosen among candidate partner groups.
    pub enum Selection {
        /// Keep the current aggregator while it has at least min_links ports.
        Stable => "stable",
        /// Prefer the group with the most total bandwidth.
        Bandwidth => "bandwidth",
        /// Prefer the group with the most ports.
        Count => "count",
    }
}

keyword_enum! {
    /// What a member does when no LACP partner answers.
    pub enum Fallback {
        /// Stay out of the aggregate until a partner is heard.
        None => "none",
        /// Forward as an individual link (one member) without a partner.
        Individual => "individual",
    }
}

keyword_enum! {
    /// Mux machine variant (802.1AX 6.4.15).
    pub enum MuxMode {
        /// Collecting and distributing are enabled together.
        Coupled => "coupled",
        /// Collecting is enabled before distributing.
        Independent => "independent",
    }
}

keyword_enum! {
    /// Link duplex override.
    pub enum Duplex {
        /// Full duplex (required for LACP aggregation).
        Full => "full",
        /// Half duplex.
        Half => "half",
    }
}

keyword_enum! {
    /// What the dataplane does with received frames.
    pub enum ForwardMode {
        /// Frames from one endpoint leave unchanged on the paired endpoint.
        Xconnect => "xconnect",
        /// IPv4/IPv6 routing between interfaces.
        Router => "router",
    }
}

keyword_enum! {
    /// Which end of an in-process ring link a port is.
    pub enum RingEnd {
        /// The `a` end.
        A => "a",
        /// The `b` end.
        B => "b",
    }
}

/// Link speed keywords and their value in Mbit/s.
pub(crate) const SPEEDS: &[(&str, u32)] = &[
    ("10M", 10),
    ("100M", 100),
    ("1G", 1_000),
    ("2.5G", 2_500),
    ("5G", 5_000),
    ("10G", 10_000),
    ("25G", 25_000),
    ("40G", 40_000),
    ("50G", 50_000),
    ("100G", 100_000),
    ("200G", 200_000),
    ("400G", 400_000),
];

/// Parses a speed keyword (`"10G"`) into Mbit/s.
pub(crate) fn parse_speed(text: &str) -> Result<u32, InvalidValue> {
    SPEEDS
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, mbps)| mbps)
        .ok_or_else(|| {
            let names: Vec<&str> = SPEEDS.iter().map(|(n, _)| *n).collect();
            InvalidValue(format!(
                "{text:?} is not a speed; use one of {}",
                quoted_list(&names)
            ))
        })
}

/// Formats Mbit/s as the speed keyword when there is one (`10000` -> `10G`).
pub(crate) fn speed_name(mbps: u32) -> String {
    SPEEDS
        .iter()
        .find(|&&(_, m)| m == mbps)
        .map_or_else(|| format!("{mbps}M"), |(n, _)| (*n).to_owned())
}

/// Marker for speed strings in type errors.
pub(crate) struct Speed;

impl Expected for Speed {
    fn expected() -> String {
        "a speed: one of \"10M\", \"100M\", \"1G\", \"2.5G\", \"5G\", \"10G\", \"25G\", \"40G\", \"50G\", \"100G\", \"200G\", \"400G\"".to_owned()
    }
}

/// An Ethernet MAC address, written `02:00:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The six octets, first transmitted first.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Individual (unicast) address: the I/G bit of the first octet is clear.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    /// `00:00:00:00:00:00`.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Locally administered: the U/L bit of the first octet is set.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let bad = || {
            InvalidValue(format!(
                "{s:?} is not a MAC address; write six two-digit hex octets separated by colons, like \"02:00:00:00:00:01\""
            ))
        };
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(octets))
    }
}

impl Expected for MacAddr {
    fn expected() -> String {
        "a MAC address string like \"02:00:00:00:00:01\"".to_owned()
    }
}

serde_via_string!(MacAddr);

/// A PCI address, written `DDDD:BB:DD.F` (domain:bus:device.function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddr {
    /// PCI domain (segment); 0 on most machines.
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0..=31.
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

fn hex_field(text: &str, min_digits: usize, max_digits: usize) -> Option<u32> {
    if text.len() < min_digits
        || text.len() > max_digits
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

impl FromStr for PciAddr {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let bad = |why: &str| {
            InvalidValue(format!(
                "{s:?} is not a PCI address ({why}); write DDDD:BB:DD.F or BB:DD.F in hex, like \"0000:03:00.0\" (see `dpdk-devbind.py --status`)"
            ))
        };
        let (rest, function) = s
            .rsplit_once('.')
            .ok_or_else(|| bad("missing \".function\""))?;
        let fields: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match fields.as_slice() {
            [bus, device] => (0, *bus, *device),
            [domain, bus, device] => (
                hex_field(domain, 4, 8).ok_or_else(|| bad("domain must be 4 hex digits"))?,
                *bus,
                *device,
            ),
            _ => return Err(bad("expected two or three colon-separated fields")),
        };
        let bus = hex_field(bus, 2, 2).ok_or_else(|| bad("bus must be 2 hex digits"))?;
        let device = hex_field(device, 2, 2)
            .filter(|&d| d <= 0x1f)
            .ok_or_else(|| bad("device must be 2 hex digits, 00..1f"))?;
        let function = hex_field(function, 1, 1)
            .filter(|&f| f <= 7)
            .ok_or_else(|| bad("function must be one digit 0..7"))?;
        Ok(PciAddr {
            domain,
            // Each fits: bus has two hex digits, device <= 0x1f, function <= 7.
            bus: u8::try_from(bus).map_err(|_| bad("bus out of range"))?,
            device: u8::try_from(device).map_err(|_| bad("device out of range"))?,
            function: u8::try_from(function).map_err(|_| bad("function out of range"))?,
        })
    }
}

impl Expected for PciAddr {
    fn expected() -> String {
        "a PCI address string like \"0000:03:00.0\"".to_owned()
    }
}

serde_via_string!(PciAddr);

/// An IP address with a prefix length, written `192.0.2.1/24` or `2001:db8::/32`.
///
/// The same type holds interface addresses (host address + prefix length) and route prefixes
/// (network address: host bits zero, see [`IpPrefix::is_network`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    /// The address as written.
    pub addr: IpAddr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub len: u8,
}

impl IpPrefix {
    /// Builds a prefix, checking the length against the address family.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, InvalidValue> {
        let max = max_len(&addr);
        if len > max {
            return Err(InvalidValue(format!(
                "prefix length /{len} is too long for {}; the maximum is /{max}",
                family(&addr)
            )));
        }
        Ok(IpPrefix { addr, len })
    }

    /// The network this address belongs to (host bits cleared).
    pub fn network(&self) -> IpPrefix {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask_v4(self.len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask_v6(self.len)).into()),
        };
        IpPrefix {
            addr,
            len: self.len,
        }
    }

    /// Whether all host bits are zero (a valid route prefix).
    pub fn is_network(&self) -> bool {
        self.network().addr == self.addr
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let m = mask_v4(self.len);
                u32::from(net) & m == u32::from(*a) & m
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let m = mask_v6(self.len);
                u128::from(net) & m == u128::from(*a) & m
            }
            _ => false,
        }
    }

    /// Whether the prefix is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask_v6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

pub(crate) fn max_len(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

pub(crate) fn family(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let (addr, len) = s.split_once('/').ok_or_else(|| {
            InvalidValue(format!(
                "{s:?} has no prefix length; write address/length, like \"192.0.2.1/24\" or \"2001:db8::1/64\""
            ))
        })?;
        let addr: IpAddr = addr.parse().map_err(|_| {
            InvalidValue(format!("{addr:?} in {s:?} is not an IPv4 or IPv6 address"))
        })?;
        let max = max_len(&addr);
        let len: u8 = len
            .parse()
            .ok()
            .filter(|_| len.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                InvalidValue(format!(
                    "prefix length {len:?} in {s:?} is not a number 0..={max}"
                ))
            })?;
        IpPrefix::new(addr, len).map_err(|e| InvalidValue(format!("{s:?}: {e}")))
    }
}

impl Expected for IpPrefix {
    fn expected() -> String {
        "an address/length string like \"192.0.2.0/24\"".to_owned()
    }
}

serde_via_string!(IpPrefix);

/// Marker for plain IP address strings in type errors.
pub(crate) struct IpAddrText;

impl Expected for IpAddrText {
    fn expected() -> String {
        "an IP address string like \"192.0.2.254\"".to_owned()
    }
}

/// Marker for socket address strings in type errors.
pub(crate) struct SocketAddrText;

impl Expected for SocketAddrText {
    fn expected() -> String {
        "an address:port string like \"127.0.0.1:9477\"".to_owned()
    }
}

/// What a port is attached to: a NIC, a DPDK virtual device, or one end of an in-process link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Device {
    /// A PCI NIC, probed with EAL `-a <addr>`.
    Pci(PciAddr),
    /// A DPDK virtual device, created with EAL `--vdev <spec>`.
    Vdev {
        /// The whole spec as written: `net_memif0,role=server,socket=/tmp/m0.sock`.
        spec: String,
        /// The device name: the spec before the first comma (`net_memif0`).
        name: String,
    },
    /// One end of an in-process back-to-back link between two ports (`ring:<link>:a|b`).
    Ring {
        /// Link name shared by both ends.
        link: String,
        /// Which end this port is.
        end: RingEnd,
    },
}

impl Device {
    /// The identity used to detect two ports on the same device: the normalized PCI address,
    /// the vdev name, or the ring link end.
    pub fn identity(&self) -> String {
        match self {
            Device::Pci(addr) => addr.to_string(),
            Device::Vdev { name, .. } => name.clone(),
            Device::Ring { link, end } => format!("ring:{link}:{end}"),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Pci(addr) => addr.fmt(f),
            Device::Vdev { spec, .. } => f.write_str(spec),
            Device::Ring { link, end } => write!(f, "ring:{link}:{end}"),
        }
    }
}

const DEVICE_FORMS: &str = "a PCI address (\"0000:03:00.0\"), a DPDK vdev spec (\"net_memif0,role=server,socket=/tmp/m0.sock\") or an in-process link end (\"ring:l0:a\")";

/// Longest ring link name: it becomes part of DPDK ring names, which are limited.
pub(crate) const MAX_RING_LINK: usize = 16;

fn parse_ring(s: &str, rest: &str) -> Result<Device, InvalidValue> {
    let (link, end) = rest.rsplit_once(':').ok_or_else(|| {
        InvalidValue(format!(
            "{s:?} is not a ring link end; write \"ring:<link>:a\" or \"ring:<link>:b\""
        ))
    })?;
    let link_ok = !link.is_empty()
        && link.len() <= MAX_RING_LINK
        && link
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !link_ok {
        return Err(InvalidValue(format!(
            "ring link name {link:?} in {s:?} is invalid; use 1..={MAX_RING_LINK} characters from A-Z a-z 0-9 _ -"
        )));
    }
    let end: RingEnd = end.parse().map_err(|_| {
        InvalidValue(format!(
            "ring link end {end:?} in {s:?} is invalid; the end must be \"a\" or \"b\" (\"ring:{link}:a\" or \"ring:{link}:b\")"
        ))
    })?;
    Ok(Device::Ring {
        link: link.to_owned(),
        end,
    })
}

fn parse_vdev(s: &str) -> Result<Device, InvalidValue> {
    if s.chars().any(char::is_whitespace) {
        return Err(InvalidValue(format!(
            "vdev spec {s:?} contains whitespace; DPDK device arguments are comma-separated key=value pairs without spaces"
        )));
    }
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or_default();
    let driver = name.strip_prefix("net_").unwrap_or_default();
    let name_ok = !driver.is_empty()
        && driver
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name_ok {
        return Err(InvalidValue(format!(
            "vdev name {name:?} is invalid; write \"net_<driver><id>\" (letters, digits, _), like \"net_memif0\" or \"net_af_packet0\""
        )));
    }
    for arg in parts {
        let valid = arg.split_once('=').is_some_and(|(key, _)| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !valid {
            return Err(InvalidValue(format!(
                "vdev argument {arg:?} in {s:?} is not key=value; write \"{name},key=value,...\""
            )));
        }
    }
    Ok(Device::Vdev {
        spec: s.to_owned(),
        name: name.to_owned(),
    })
}

impl FromStr for Device {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if let Some(rest) = s.strip_prefix("ring:") {
            return parse_ring(s, rest);
        }
        if s.starts_with("net_") {
            return parse_vdev(s);
        }
        let looks_pci = s.contains(':')
            && s.contains('.')
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if looks_pci {
            return s.parse().map(Device::Pci);
        }
        Err(InvalidValue(format!(
            "{s:?} is not a device; write {DEVICE_FORMS}"
        )))
    }
}

impl Expected for Device {
    fn expected() -> String {
        "a device string like \"0000:03:00.0\", \"net_memif0,role=server\" or \"ring:l0:a\""
            .to_owned()
    }
}

serde_via_string!(Device);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_and_classifies() {
        let mac: MacAddr = "02:00:00:00:0A:ff".parse().expect("valid mac");
        assert_eq!(mac.to_string(), "02:00:00:00:0a:ff");
        assert!(mac.is_unicast() && mac.is_local() && !mac.is_zero());
        let multicast: MacAddr = "01:80:c2:00:00:02".parse().expect("valid mac");
        assert!(!multicast.is_unicast());
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:00:00:00:00:01",
            "02-00-00-00-00-01",
            "0g:00:00:00:00:01",
            "+2:00:00:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad} must not parse");
        }
    }

    #[test]
    fn pci_accepts_both_forms_and_normalizes() {
        let long: PciAddr = "0000:03:00.1".parse().expect("valid");
        let short: PciAddr = "03:00.1".parse().expect("valid");
        assert_eq!(long, short);
        assert_eq!(short.to_string(), "0000:03:00.1");
        let upper: PciAddr = "0000:AF:1F.7".parse().expect("valid");
        assert_eq!(upper.to_string(), "0000:af:1f.7");
        let vmd: PciAddr = "10000:01:00.0".parse().expect("VMD domain");
        assert_eq!(vmd.domain, 0x10000);
    }

    #[test]
    fn pci_rejects_out_of_range_fields() {
        for bad in [
            "0000:03:00.8",
            "0000:03:20.0",
            "0000:3:00.0",
            "000:03:00.0",
            "0000:03:00",
            "03.00.0",
            "0000:03:00.00",
            "x0000:03:00.0",
            "1:2:3:4.0",
        ] {
            assert!(bad.parse::<PciAddr>().is_err(), "{bad} must not parse");
        }
    }

    #[test]
    fn prefix_parses_and_finds_networks() {
        let p: IpPrefix = "10.1.2.3/16".parse().expect("valid");
        assert!(!p.is_network());
        assert_eq!(p.network().to_string(), "10.1.0.0/16");
        assert!(p.contains(&"10.1.200.1".parse().expect("ip")));
        assert!(!p.contains(&"10.2.0.1".parse().expect("ip")));
        let default: IpPrefix = "0.0.0.0/0".parse().expect("valid");
        assert!(default.is_network());
        assert!(default.contains(&"203.0.113.9".parse().expect("ip")));
        let v6: IpPrefix = "2001:db8::1/64".parse().expect("valid");
        assert_eq!(v6.network().to_string(), "2001:db8::/64");
        assert!(!v6.contains(&"10.0.0.1".parse().expect("ip")));
        let host: IpPrefix = "2001:db8::1/128".parse().expect("valid");
        assert!(host.is_network());
    }

    #[test]
    fn prefix_rejects_bad_lengths_and_addresses() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0/8",
            "10.0.0.0/",
            "host/24",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad} must not parse");
        }
    }

    #[test]
    fn devices_parse_in_all_three_forms() {
        assert_eq!(
            "03:00.0".parse::<Device>().expect("pci").to_string(),
            "0000:03:00.0"
        );
        match "net_memif0,role=server,socket=/tmp/m0.sock".parse::<Device>() {
            Ok(Device::Vdev { name, spec }) => {
                assert_eq!(name, "net_memif0");
                assert_eq!(spec, "net_memif0,role=server,socket=/tmp/m0.sock");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            "ring:l0:b".parse::<Device>(),
            Ok(Device::Ring {
                link: "l0".into(),
                end: RingEnd::B
            })
        );
    }

    #[test]
    fn devices_reject_malformed_specs() {
        let err = |s: &str| s.parse::<Device>().expect_err(s).0;
        assert!(err("ring:l0:c").contains("must be \"a\" or \"b\""));
        assert!(err("ring:l0").contains("ring link end"));
        assert!(err("ring::a").contains("link name"));
        assert!(err("net_").contains("vdev name"));
        assert!(err("net_memif0,role").contains("key=value"));
        assert!(err("net_memif0, role=server").contains("whitespace"));
        assert!(err("eth0").contains("not a device"));
        assert!(err("0000:03:00.9").contains("PCI"));
    }

    #[test]
    fn keywords_parse_and_explain() {
        assert_eq!("802.3ad".parse::<BondMode>(), Ok(BondMode::Lacp));
        assert_eq!(BondMode::ActiveBackup.to_string(), "active-backup");
        let err = "lacp".parse::<BondMode>().expect_err("not a mode").0;
        assert!(err.contains("\"802.3ad\", \"active-backup\", \"balance-xor\""));
        assert_eq!(
            HashPolicy::expected(),
            "one of \"layer2\", \"layer2+3\", \"layer3+4\""
        );
    }

    #[test]
    fn speeds_map_to_mbps() {
        assert_eq!(parse_speed("2.5G"), Ok(2_500));
        assert_eq!(parse_speed("400G"), Ok(400_000));
        assert!(parse_speed("10g").is_err());
        assert_eq!(speed_name(25_000), "25G");
        assert_eq!(speed_name(7), "7M");
    }
}
