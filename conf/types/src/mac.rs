//! MAC addresses.

use std::array::TryFromSliceError;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidValue;

/// A 48-bit IEEE 802 MAC address; the octets in transmission order.
///
/// Written (`Display`, and `Debug` too) as six lowercase two-digit hex octets separated by
/// colons: `02:00:00:00:0a:ff`. Parses (`FromStr`) from exactly that form, in either case.
/// Serializes as that string.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `00:00:00:00:00:00`; e.g. "no partner system known" in LACP.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets, first transmitted first.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is `00:00:00:00:00:00`.
    pub const fn is_zero(&self) -> bool {
        matches!(self.0, [0, 0, 0, 0, 0, 0])
    }

    /// Individual (unicast) address: the I/G bit of the first octet is clear.
    pub const fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    /// Group (multicast or broadcast) address: the I/G bit of the first octet is set.
    pub const fn is_multicast(&self) -> bool {
        !self.is_unicast()
    }

    /// Locally administered: the U/L bit of the first octet is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

/// From a slice of exactly six octets (e.g. `&frame[6..12]`); any other length is an error.
impl TryFrom<&[u8]> for MacAddr {
    type Error = TryFromSliceError;

    fn try_from(octets: &[u8]) -> Result<Self, TryFromSliceError> {
        <[u8; 6]>::try_from(octets).map(MacAddr)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The same as `Display`: `02:00:00:00:00:01`, not `MacAddr([2, 0, 0, 0, 0, 1])`.
impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = InvalidValue;

    /// Six two-digit hex octets separated by colons; nothing else (no `-`, no single digits).
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

/// As the `Display` string.
impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From a string, as `FromStr` parses it.
impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_classifies() {
        let mac: MacAddr = "02:00:00:00:0A:ff".parse().expect("valid mac");
        assert_eq!(mac, MacAddr([0x02, 0, 0, 0, 0x0a, 0xff]));
        assert_eq!(mac.to_string(), "02:00:00:00:0a:ff");
        assert_eq!(format!("{mac:?}"), "02:00:00:00:0a:ff");
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
        assert!(mac.is_unicast() && !mac.is_multicast() && mac.is_local() && !mac.is_zero());
        let multicast: MacAddr = "01:80:c2:00:00:02".parse().expect("valid mac");
        assert!(multicast.is_multicast() && !multicast.is_unicast() && !multicast.is_local());
        assert!(MacAddr([0xff; 6]).is_multicast());
        assert!(MacAddr::ZERO.is_zero() && MacAddr::default().is_zero());
        assert!(MacAddr::ZERO.is_unicast());
    }

    #[test]
    fn rejects_other_spellings() {
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:01:",
            "2:00:00:00:00:01",
            "002:00:00:00:00:01",
            "02-00-00-00-00-01",
            "0200.0000.0001",
            "0g:00:00:00:00:01",
            "+2:00:00:00:00:01",
            " 02:00:00:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?} must not parse");
        }
        assert_eq!(
            "02-00-00-00-00-01".parse::<MacAddr>(),
            Err(InvalidValue(
                "\"02-00-00-00-00-01\" is not a MAC address; write six two-digit hex octets separated by colons, like \"02:00:00:00:00:01\"".to_owned()
            ))
        );
    }

    #[test]
    fn converts_from_octets_and_slices() {
        let octets = [2, 0, 0, 0, 0, 1];
        let mac = MacAddr::from(octets);
        assert_eq!(mac.octets(), octets);
        assert_eq!(<[u8; 6]>::from(mac), octets);
        let frame = [0x01, 0x80, 0xc2, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x09];
        assert_eq!(MacAddr::try_from(&frame[6..12]).ok(), Some(mac));
        assert!(MacAddr::try_from(&frame[..5]).is_err());
        assert!(MacAddr::try_from(&frame[..7]).is_err());
    }

    #[test]
    fn orders_by_octets() {
        assert!(MacAddr([0, 0, 0, 0, 0, 1]) < MacAddr([0, 0, 0, 0, 1, 0]));
        assert!(MacAddr([1, 0, 0, 0, 0, 0]) > MacAddr([0, 0xff, 0xff, 0xff, 0xff, 0xff]));
    }

    #[test]
    fn deserializes_from_a_string() {
        use serde::de::value::{Error, StrDeserializer};
        let de = StrDeserializer::<Error>::new("02:00:00:00:0A:FF");
        assert_eq!(
            MacAddr::deserialize(de),
            Ok(MacAddr([2, 0, 0, 0, 0x0a, 0xff]))
        );
        let err =
            MacAddr::deserialize(StrDeserializer::<Error>::new("02:00")).expect_err("not a MAC");
        assert!(err.to_string().contains("is not a MAC address"), "{err}");
    }
}
