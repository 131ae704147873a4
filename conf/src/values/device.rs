//! What backs a port: PCI addresses, DPDK vdev specs and in-process ring link ends.

use std::fmt;
use std::str::FromStr;

use super::{serde_via_string, Expected, InvalidValue, RingEnd};

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
}
