//! IP addresses and prefixes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::{serde_via_string, Expected, InvalidValue};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
