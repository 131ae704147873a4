//! Router interfaces as the runtime sees them, and the FIB's static part from the config
//! (interfaces, their addresses, static routes).

use std::net::IpAddr;

use conf::Config;
use dataplane::router::{FibBuilder, IfaceId, Interface, NextHop, Origin};
use dpdk::MacAddr;

/// What an interface sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A port, by runtime port index.
    Port(usize),
    /// A bond, by bond index.
    Bond(usize),
}

/// An L3 interface as the runtime sees it.
#[derive(Debug, Clone)]
pub struct Iface {
    /// Name from the config.
    pub name: String,
    /// Port or bond.
    pub device: Device,
    /// 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// Its MAC: the port's, or the bond's.
    pub mac: MacAddr,
    /// IP MTU.
    pub mtu: u16,
    /// Addresses with prefix length.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Kernel TAP name, when it has one.
    pub tap: Option<String>,
}

/// Builds the interface list from the config; `port_macs`/`bond_macs` are the effective
/// MACs of ports and bonds.
pub fn interfaces(cfg: &Config, port_macs: &[MacAddr], bond_macs: &[MacAddr]) -> Vec<Iface> {
    cfg.interfaces
        .iter()
        .map(|i| {
            let (device, mac, device_mtu) = match cfg.ports.iter().position(|p| p.name == i.on) {
                Some(p) => (Device::Port(p), port_macs[p], cfg.ports[p].mtu),
                None => {
                    let b = cfg
                        .bonds
                        .iter()
                        .position(|b| b.name == i.on)
                        .expect("config validation: an interface sits on a port or a bond");
                    let mtu = cfg.bonds[b]
                        .members
                        .first()
                        .and_then(|m| cfg.port(&m.port))
                        .map(|p| p.mtu)
                        .unwrap_or(1500);
                    (Device::Bond(b), bond_macs[b], mtu)
                }
            };
            Iface {
                name: i.name.clone(),
                device,
                vlan: i.vlan,
                mac,
                mtu: i.mtu.unwrap_or(device_mtu),
                addresses: i.addresses.iter().map(|a| (a.addr, a.len)).collect(),
                tap: i.tap.then(|| i.tap_name.clone()),
            }
        })
        .collect()
}

/// Builds the FIB's static part from the config: interfaces (ids = config order), their
/// addresses (connected and local routes) and the static routes.
pub fn fib_builder(cfg: &Config, ifaces: &[Iface]) -> Result<FibBuilder, String> {
    let mut b = FibBuilder::new();
    for i in ifaces {
        b.add_interface(Interface {
            mac: i.mac,
            vlan: i.vlan,
            mtu: i.mtu,
        })
        .map_err(|e| format!("interface {}: {e}", i.name))?;
    }
    for (n, i) in ifaces.iter().enumerate() {
        for &(addr, len) in &i.addresses {
            b.add_interface_address(IfaceId(n as u16), addr, len)
                .map_err(|e| format!("interface {} address {addr}/{len}: {e}", i.name))?;
        }
    }
    add_static_routes(&mut b, cfg, ifaces)?;
    for (iface, ip, mac) in static_neighbors(cfg, ifaces) {
        b.add_neighbor(iface, ip, mac)
            .map_err(|e| format!("neighbor {ip}: {e}"))?;
    }
    Ok(b)
}

/// `cfg`'s `[[neighbor]]`s with their interface resolved (validation guarantees it exists).
pub(crate) fn static_neighbors(cfg: &Config, ifaces: &[Iface]) -> Vec<(IfaceId, IpAddr, MacAddr)> {
    cfg.neighbors
        .iter()
        .filter_map(|n| {
            let i = ifaces.iter().position(|i| i.name == n.interface)?;
            Some((IfaceId(i as u16), n.address, n.mac))
        })
        .collect()
}

/// A route's next hops with their weights.
pub(crate) type Hops = Vec<(NextHop, u16)>;

/// `cfg`'s static routes with each next hop's egress interface resolved, and its weight.
pub(crate) fn static_routes(
    cfg: &Config,
    ifaces: &[Iface],
) -> Result<Vec<(conf::IpPrefix, Hops)>, String> {
    cfg.routes
        .iter()
        .map(|r| {
            let hops = r
                .hops()
                .iter()
                .map(|h| {
                    let iface = match &h.interface {
                        Some(name) => ifaces.iter().position(|i| &i.name == name),
                        // Validation guarantees the gateway is on a configured subnet.
                        None => h.via.and_then(|gw| {
                            ifaces.iter().position(|i| {
                                i.addresses
                                    .iter()
                                    .any(|&(a, len)| conf::IpPrefix { addr: a, len }.contains(&gw))
                            })
                        }),
                    }
                    .ok_or_else(|| format!("route {}: no interface reaches it", r.prefix))?;
                    Ok((
                        NextHop {
                            iface: IfaceId(iface as u16),
                            gateway: h.via,
                        },
                        h.weight,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok((r.prefix, hops))
        })
        .collect()
}

/// Adds `cfg`'s static routes to `b`.
pub(crate) fn add_static_routes(
    b: &mut FibBuilder,
    cfg: &Config,
    ifaces: &[Iface],
) -> Result<(), String> {
    for (prefix, hops) in static_routes(cfg, ifaces)? {
        b.add_multipath_route(prefix.addr, prefix.len, &hops, Origin::Static)
            .map_err(|e| format!("route {prefix}: {e}"))?;
    }
    Ok(())
}
