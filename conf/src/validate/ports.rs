//! `[[port]]`: devices, queues, descriptors, link overrides and MACs (of ports and bonds).

use std::collections::HashMap;

use super::Validator;
use crate::model::{Bond, Port};
use crate::raw::{Descriptors, RawPort};
use crate::values::{parse_speed, Device, MacAddr, RingEnd};

/// Defaults of the schema.
const DEFAULT_DESCRIPTORS: u16 = 1024;
const DEFAULT_MTU: u16 = 1500;

/// Powers of two around `n` for "use 512 or 1024".
fn powers_of_two_around(n: u16) -> String {
    let upper = n.checked_next_power_of_two().unwrap_or(16_384).min(16_384);
    let lower = (upper / 2).max(64);
    if lower == upper || n > upper {
        upper.to_string()
    } else {
        format!("{lower} or {upper}")
    }
}

/// `net_memif0` -> `net_memif1`.
fn bump_vdev(name: &str) -> String {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let n: u64 = name[stem.len()..].parse().unwrap_or(0);
    format!("{stem}{}", n.saturating_add(1))
}

impl Validator<'_> {
    pub(super) fn ports(&mut self, raw: Vec<RawPort>) -> (Vec<Port>, Vec<Option<Device>>) {
        let mut ports = Vec::with_capacity(raw.len());
        let mut devices = Vec::with_capacity(raw.len());
        for (i, rp) in raw.into_iter().enumerate() {
            let path = format!("port[{i}]");
            let name = self.name(&path, rp.name, "port");
            let ctx = &mut self.ctx;
            let device = match &rp.device {
                None => {
                    ctx.error(
                        &format!("{path}.device"),
                        "missing required key `device`: a PCI address (\"0000:03:00.0\"), a DPDK vdev spec (\"net_memif0,role=server\") or a ring link end (\"ring:l0:a\")".to_owned(),
                    );
                    None
                }
                Some(text) => ctx.parse_with(&format!("{path}.device"), text, str::parse),
            };

            let workers = self.workers;
            if let Some(q) = rp.queues {
                let qpath = format!("{path}.queues");
                if let (Some(q), Some(w)) = (ctx.int::<usize, 1, 1024>(&qpath, q), workers) {
                    if q != w {
                        ctx.error(
                            &qpath,
                            format!("queues = {q} does not match the {w} worker(s) in dataplane.worker_cores; worker i owns RX/TX queue i of every port, so set queues = {w} or remove the key"),
                        );
                    }
                }
            }
            let queues = u16::try_from(workers.unwrap_or(1)).unwrap_or(u16::MAX);

            let mut descriptors = |key: &str, raw: Option<Descriptors>| {
                let dpath = format!("{path}.{key}");
                let n: u16 = ctx.int_or(&dpath, raw, DEFAULT_DESCRIPTORS);
                if !n.is_power_of_two() {
                    ctx.error(
                        &dpath,
                        format!(
                            "{key} = {n} is not a power of two; use {}",
                            powers_of_two_around(n)
                        ),
                    );
                }
                n
            };
            let rx_descriptors = descriptors("rx_descriptors", rp.rx_descriptors);
            let tx_descriptors = descriptors("tx_descriptors", rp.tx_descriptors);

            let mtu = ctx.int_or(&format!("{path}.mtu"), rp.mtu, DEFAULT_MTU);
            let speed_mbps = rp
                .speed
                .as_ref()
                .and_then(|t| ctx.parse_with(&format!("{path}.speed"), t, parse_speed));
            let duplex = ctx.parse_opt(&format!("{path}.duplex"), rp.duplex.as_ref());
            let mac = self.mac(&format!("{path}.mac"), rp.mac.as_ref(), "port MAC");
            let ctx = &mut self.ctx;
            let lacp_port_priority = rp
                .lacp_port_priority
                .and_then(|r| ctx.int(&format!("{path}.lacp_port_priority"), r));
            let lacp_port_number = rp
                .lacp_port_number
                .and_then(|r| ctx.int(&format!("{path}.lacp_port_number"), r));

            ports.push(Port {
                name,
                device: device.clone().unwrap_or(Device::Vdev {
                    spec: String::new(),
                    name: String::new(),
                }),
                queues,
                rx_descriptors,
                tx_descriptors,
                mtu,
                speed_mbps,
                duplex,
                mac,
                lacp_port_priority,
                lacp_port_number,
            });
            devices.push(device);
        }
        (ports, devices)
    }

    /// Two ports on one device; ring links with two `a` or two `b` ends.
    pub(super) fn devices(&mut self, ports: &[Port], devices: &[Option<Device>]) {
        let mut first: HashMap<String, usize> = HashMap::new();
        for (i, device) in devices.iter().enumerate() {
            let Some(device) = device else { continue };
            let identity = device.identity();
            if let Some(&j) = first.get(&identity) {
                let owner = ports.get(j).map_or("", |p| p.name.as_str());
                let line = self.ctx.line(&format!("port[{j}].device"));
                let message = match device {
                    Device::Ring { link, end } => {
                        let other = match end {
                            RingEnd::A => RingEnd::B,
                            RingEnd::B => RingEnd::A,
                        };
                        format!("ring link {link:?} already has its {end:?} end on port {owner} (line {line}); a link joins exactly one \"a\" end and one \"b\" end: use \"ring:{link}:{other}\" or another link name")
                    }
                    Device::Pci(addr) => format!("device {addr} is already used by port {owner} (line {line}); each device backs one port only"),
                    Device::Vdev { name, .. } => format!("vdev name {name:?} is already used by port {owner} (line {line}); DPDK vdev names must be unique: change the number, e.g. {}", bump_vdev(name)),
                };
                self.ctx.error(&format!("port[{i}].device"), message);
            } else {
                first.insert(identity, i);
            }
        }
    }

    /// The same configured MAC twice (ports and bonds, except a bond reusing its member's).
    pub(super) fn macs(&mut self, ports: &[Port], bonds: &[Bond]) {
        let mut owners: HashMap<MacAddr, (String, String)> = HashMap::new();
        for (i, p) in ports.iter().enumerate() {
            if let Some(mac) = p.mac {
                let path = format!("port[{i}].mac");
                if let Some((owner, opath)) = owners.get(&mac) {
                    let line = self.ctx.line(opath);
                    self.ctx.error(
                        &path,
                        format!("MAC {mac} is also configured on {owner} (line {line}); every port needs its own MAC"),
                    );
                } else {
                    owners.insert(mac, (format!("port {}", p.name), path));
                }
            }
        }
        for (i, b) in bonds.iter().enumerate() {
            let Some(mac) = b.mac else { continue };
            let path = format!("bond[{i}].mac");
            let member_mac = b
                .members
                .iter()
                .any(|m| ports.iter().any(|p| p.name == m.port && p.mac == Some(mac)));
            if member_mac {
                continue;
            }
            if let Some((owner, opath)) = owners.get(&mac) {
                let line = self.ctx.line(opath);
                self.ctx.error(
                    &path,
                    format!("MAC {mac} is also configured on {owner} (line {line}); a bond may reuse the MAC of one of its own members only"),
                );
            } else {
                owners.insert(mac, (format!("bond {}", b.name), path));
            }
        }
    }
}
