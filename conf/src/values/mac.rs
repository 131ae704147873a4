//! MAC addresses.

use std::fmt;
use std::str::FromStr;

use super::{serde_via_string, Expected, InvalidValue};

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
}
