//! `[[interface]]`, `[[route]]` and `[[neighbor]]` (router mode): attachments, addresses,
//! TAPs, gateways and static neighbours.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{known, unknown_endpoint, Validator, MAX_IFNAME};
use crate::model::{Bond, Interface, Neighbor, Port, Route, RouteHop};
use crate::raw::{RawInterface, RawNeighbor, RawRoute, Text};

/// Most next hops of one `[[route]]` (the FIB's limit).
const MAX_ROUTE_HOPS: usize = 16;
use crate::values::{family, InvalidValue, IpAddrText, IpPrefix};

impl Validator<'_> {
    pub(super) fn interfaces(
        &mut self,
        raw: Vec<RawInterface>,
        ports: &[Port],
        bonds: &[Bond],
    ) -> Vec<Interface> {
        let mut result = Vec::with_capacity(raw.len());
        // (on, vlan) -> path of the first interface
        let mut attachments: HashMap<(String, Option<u16>), String> = HashMap::new();
        // address -> (interface name, path)
        let mut addresses: HashMap<IpAddr, (String, String)> = HashMap::new();
        let mut tap_names: HashMap<String, String> = HashMap::new();
        // Connected subnets so far: (subnet, interface index, interface name, path).
        let mut subnets: Vec<(IpPrefix, usize, String, String)> = Vec::new();

        for (i, ri) in raw.into_iter().enumerate() {
            let path = format!("interface[{i}]");
            let name = self.name(&path, ri.name, "interface");
            let on_path = format!("{path}.on");
            // MTU of what the interface sits on, when known.
            let mut lower_mtu: Option<u16> = None;
            let on = match ri.on {
                None => {
                    self.ctx.error(
                        &on_path,
                        "missing required key `on`: the port or bond this interface sits on, e.g. `on = \"bond0\"`".to_owned(),
                    );
                    String::new()
                }
                Some(on) => {
                    if let Some(bond) = bonds.iter().find(|b| b.name == on) {
                        lower_mtu = bond
                            .members
                            .iter()
                            .filter_map(|m| ports.iter().find(|p| p.name == m.port))
                            .map(|p| p.mtu)
                            .min();
                    } else if let Some(port) = ports.iter().find(|p| p.name == on) {
                        if let Some(bond) = bonds.iter().find(|b| b.has_member(&on)) {
                            self.ctx.error(
                                &on_path,
                                format!("port {on} is a member of bond {0}; member ports carry no traffic of their own: use on = \"{0}\"", bond.name),
                            );
                        }
                        lower_mtu = Some(port.mtu);
                    } else {
                        self.ctx
                            .error(&on_path, unknown_endpoint(&on, ports, bonds));
                    }
                    on
                }
            };

            let vlan_path = format!("{path}.vlan");
            let vlan: Option<u16> = ri.vlan.and_then(|r| self.ctx.int(&vlan_path, r));
            if !on.is_empty() {
                let slot = (on.clone(), vlan);
                if let Some(first) = attachments.get(&slot) {
                    let line = self.ctx.line(first);
                    let what = match vlan {
                        Some(v) => format!("{on} vlan {v}"),
                        None => format!("{on} (untagged)"),
                    };
                    let at = if ri.vlan.is_some() {
                        &vlan_path
                    } else {
                        &on_path
                    };
                    self.ctx.error(
                        at,
                        format!("another interface already sits on {what} (line {line}); each (on, vlan) pair takes one interface: use a different vlan"),
                    );
                } else {
                    attachments.insert(slot, on_path.clone());
                }
            }

            let mut addrs = Vec::new();
            for (j, text) in ri
                .addresses
                .map(|l| l.0)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let apath = format!("{path}.addresses[{j}]");
                let Some(addr) = self.ctx.parse_with::<IpPrefix, _>(&apath, text, str::parse)
                else {
                    continue;
                };
                if let Some(problem) = host_address_problem(&addr) {
                    self.ctx.error(&apath, problem);
                    continue;
                }
                if let Some((owner, opath)) = addresses.get(&addr.addr) {
                    let line = self.ctx.line(opath);
                    self.ctx.error(
                        &apath,
                        format!("address {} is already assigned to interface {owner} (line {line}); an address may be configured once", addr.addr),
                    );
                    continue;
                }
                let net = addr.network();
                let overlap = subnets.iter().find(|(other, owner, _, _)| {
                    *owner != i && (other.contains(&net.addr) || net.contains(&other.addr))
                });
                if let Some((other, _, owner, opath)) = overlap {
                    let line = self.ctx.line(opath);
                    self.ctx.error(
                        &apath,
                        format!("subnet {net} of {addr} overlaps subnet {other} of interface {owner} (line {line}); the connected subnets of different interfaces must not overlap, or a destination in both would have two interfaces: change one of the prefixes"),
                    );
                    continue;
                }
                subnets.push((net, i, name.clone(), apath.clone()));
                addresses.insert(addr.addr, (name.clone(), apath));
                addrs.push(addr);
            }

            let mtu_path = format!("{path}.mtu");
            let mtu: Option<u16> = ri.mtu.and_then(|r| self.ctx.int(&mtu_path, r));
            if let (Some(mtu), Some(lower)) = (mtu, lower_mtu) {
                if mtu > lower {
                    self.ctx.error(
                        &mtu_path,
                        format!("mtu = {mtu} is larger than the mtu {lower} of {on}; lower it or raise the mtu of the port(s) under {on}"),
                    );
                }
            }

            let tap = ri.tap.unwrap_or(true);
            let tap_path = format!("{path}.tap_name");
            let tap_name = match ri.tap_name {
                Some(tap_name) => {
                    if !tap {
                        self.ctx.error_at_key(
                            &tap_path,
                            "tap_name has no effect with tap = false; remove it or set tap = true"
                                .to_owned(),
                        );
                    }
                    let ok = !tap_name.is_empty()
                        && tap_name.len() <= MAX_IFNAME
                        && tap_name != "."
                        && tap_name != ".."
                        && tap_name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                    if !ok {
                        self.ctx.error(
                            &tap_path,
                            format!("{tap_name:?} is not a valid kernel interface name; use 1..=15 of A-Z a-z 0-9 _ . -"),
                        );
                    } else if tap_name == "lo" {
                        self.ctx.error(
                            &tap_path,
                            "\"lo\" is the loopback interface, which exists in every network namespace; choose another tap_name (whether other names are free is checked by `fastlag run` on its host)".to_owned(),
                        );
                    }
                    tap_name
                }
                None => default_tap_name(&name),
            };
            if tap && !name.is_empty() {
                if let Some(first) = tap_names.get(&tap_name) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &format!("{path}.name"),
                        format!("TAP name {tap_name:?} is also used by the interface at line {line}; set tap_name to a distinct name (at most 15 bytes)"),
                    );
                } else {
                    tap_names.insert(tap_name.clone(), format!("{path}.name"));
                }
            }

            result.push(Interface {
                name,
                on,
                vlan,
                addresses: addrs,
                mtu,
                tap,
                tap_name,
            });
        }
        result
    }

    pub(super) fn routes(
        &mut self,
        raw: Vec<RawRoute>,
        interfaces: &[Interface],
        ports: &[Port],
        bonds: &[Bond],
    ) -> Vec<Route> {
        let mut result = Vec::with_capacity(raw.len());
        let mut prefixes: HashMap<IpPrefix, String> = HashMap::new();
        for (i, rr) in raw.into_iter().enumerate() {
            let path = format!("route[{i}]");
            let prefix_path = format!("{path}.prefix");
            let prefix: Option<IpPrefix> = match &rr.prefix {
                None => {
                    self.ctx.error(
                        &prefix_path,
                        "missing required key `prefix`: the destination network, e.g. `prefix = \"0.0.0.0/0\"`".to_owned(),
                    );
                    None
                }
                Some(text) => self.ctx.parse_with(&prefix_path, text, str::parse),
            };
            if let Some(p) = prefix {
                if !p.is_network() {
                    let ones = p.len;
                    self.ctx.error(
                        &prefix_path,
                        format!("prefix {p} has host bits set: the bits after the first {ones} must be zero; did you mean \"{}\"?", p.network()),
                    );
                } else if let Some(first) = prefixes.get(&p) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &prefix_path,
                        format!("duplicate route for {p} (also at line {line}); keep one route per prefix"),
                    );
                } else {
                    prefixes.insert(p, prefix_path.clone());
                }
            }

            let (via, interface, nexthops) = match &rr.nexthop {
                None => {
                    let (via, interface) = self.route_hop(
                        &path,
                        rr.via.as_ref(),
                        rr.interface.as_ref(),
                        prefix,
                        (interfaces, ports, bonds),
                    );
                    (via, interface, Vec::new())
                }
                Some(hops) => {
                    let hops_path = format!("{path}.nexthop");
                    if rr.via.is_some() || rr.interface.is_some() {
                        let at = if rr.via.is_some() { "via" } else { "interface" };
                        self.ctx.error(
                            &format!("{path}.{at}"),
                            "a route gives its next hops either with `via`/`interface` or as `nexthop = [...]`, not both; move this into `nexthop`".to_owned(),
                        );
                    }
                    if hops.0.len() < 2 || hops.0.len() > MAX_ROUTE_HOPS {
                        self.ctx.error(
                            &hops_path,
                            format!("{} next hops; an ECMP route has 2 to {MAX_ROUTE_HOPS} (for one, write `via`/`interface` on the route)", hops.0.len()),
                        );
                    }
                    let mut seen: HashMap<(Option<IpAddr>, Option<String>), String> =
                        HashMap::new();
                    let mut out = Vec::with_capacity(hops.0.len());
                    for (j, h) in hops.0.iter().enumerate() {
                        let hp = format!("{hops_path}[{j}]");
                        let (via, interface) = self.route_hop(
                            &hp,
                            h.via.as_ref(),
                            h.interface.as_ref(),
                            prefix,
                            (interfaces, ports, bonds),
                        );
                        let weight_path = format!("{hp}.weight");
                        let weight: u16 = h
                            .weight
                            .and_then(|w| self.ctx.int(&weight_path, w))
                            .unwrap_or(1);
                        let key = (via, interface.clone());
                        if let Some(first) = seen.get(&key) {
                            let line = self.ctx.line(first);
                            self.ctx.error(
                                &hp,
                                format!("the same next hop twice (also at line {line}); give it once, with a larger `weight` for a larger share"),
                            );
                        } else {
                            seen.insert(key, hp.clone());
                        }
                        out.push(RouteHop {
                            via,
                            interface,
                            weight,
                        });
                    }
                    (None, None, out)
                }
            };
            if let Some(p) = prefix {
                result.push(Route {
                    prefix: p,
                    via,
                    interface,
                    nexthops,
                });
            }
        }
        result
    }

    /// One next hop of `[[route]]` at `path` (the route, or one of its `nexthop`s): the
    /// gateway parsed and checked against `prefix` and the interfaces, the interface
    /// checked; at least one of the two given.
    fn route_hop(
        &mut self,
        path: &str,
        via_raw: Option<&Text<IpAddrText>>,
        iface_raw: Option<&String>,
        prefix: Option<IpPrefix>,
        (interfaces, ports, bonds): (&[Interface], &[Port], &[Bond]),
    ) -> (Option<IpAddr>, Option<String>) {
        let via_path = format!("{path}.via");
        let via: Option<IpAddr> = via_raw.and_then(|t| {
        self.ctx.parse_with(&via_path, t, |s| {
            s.parse().map_err(|_| {
            InvalidValue(format!("{s:?} is not an IP address; write the gateway address without a prefix length, like \"192.0.2.254\" or \"2001:db8::1\""))
            })
        })
    });

        let iface_path = format!("{path}.interface");
        let interface = match iface_raw {
            Some(name) if interfaces.iter().any(|x| &x.name == name) => Some(name.clone()),
            Some(name) => {
                let names: Vec<&str> = interfaces
                    .iter()
                    .filter(|x| !x.name.is_empty())
                    .map(|x| x.name.as_str())
                    .collect();
                let is_lower =
                    ports.iter().any(|p| &p.name == name) || bonds.iter().any(|b| &b.name == name);
                let message = if is_lower {
                    format!(
                        "{name:?} is a port or bond; routes leave through an [[interface]]: {}",
                        known(&names, "interface")
                    )
                } else {
                    format!("unknown interface {name:?}; {}", known(&names, "interface"))
                };
                self.ctx.error(&iface_path, message);
                Some(name.clone())
            }
            None => None,
        };

        if via_raw.is_none() && iface_raw.is_none() {
            self.ctx.error(
            path,
            "a route needs `via` (a gateway), `interface` (a directly connected network), or both".to_owned(),
        );
        }

        if let (Some(p), Some(gw)) = (prefix, via) {
            if p.is_ipv4() != gw.is_ipv4() {
                self.ctx.error(
                    &via_path,
                    format!(
                        "gateway {gw} is {} but prefix {p} is {}; use a gateway of the same family",
                        family(&gw),
                        family(&p.addr)
                    ),
                );
            } else {
                self.check_gateway(&via_path, gw, interface.as_deref(), interfaces);
            }
        }
        (via, interface)
    }

    pub(super) fn neighbors(
        &mut self,
        raw: Vec<RawNeighbor>,
        interfaces: &[Interface],
    ) -> Vec<Neighbor> {
        let mut result = Vec::with_capacity(raw.len());
        let mut seen: HashMap<(String, IpAddr), String> = HashMap::new();
        for (i, rn) in raw.into_iter().enumerate() {
            let path = format!("neighbor[{i}]");
            let iface_path = format!("{path}.interface");
            let addr_path = format!("{path}.address");
            let mac_path = format!("{path}.mac");
            let iface = match &rn.interface {
                None => {
                    self.ctx.error(
                        &path,
                        "missing required key `interface`: the [[interface]] the neighbour is on"
                            .to_owned(),
                    );
                    None
                }
                Some(name) => match interfaces.iter().find(|x| &x.name == name) {
                    Some(x) => Some(x),
                    None => {
                        let names: Vec<&str> = interfaces
                            .iter()
                            .filter(|x| !x.name.is_empty())
                            .map(|x| x.name.as_str())
                            .collect();
                        self.ctx.error(
                            &iface_path,
                            format!("unknown interface {name:?}; {}", known(&names, "interface")),
                        );
                        None
                    }
                },
            };
            let address: Option<IpAddr> = match &rn.address {
                None => {
                    self.ctx.error(
                        &path,
                        "missing required key `address`: the neighbour's IP address, e.g. `address = \"192.0.2.2\"`".to_owned(),
                    );
                    None
                }
                Some(t) => self.ctx.parse_with(&addr_path, t, |s| {
                    s.parse().map_err(|_| {
                        InvalidValue(format!("{s:?} is not an IP address; write it without a prefix length, like \"192.0.2.2\" or \"2001:db8::2\""))
                    })
                }),
            };
            let mac = match &rn.mac {
                None => {
                    self.ctx.error(
                        &path,
                        "missing required key `mac`: the neighbour's MAC address, e.g. `mac = \"02:00:00:00:00:02\"`".to_owned(),
                    );
                    None
                }
                Some(_) => self.mac(&mac_path, rn.mac.as_ref(), "neighbour MAC"),
            };
            if let (Some(x), Some(a)) = (iface, address) {
                if x.addresses.iter().any(|p| p.addr == a) {
                    self.ctx.error(
                        &addr_path,
                        format!("{a} is this router's own address on interface {}; a neighbour is another host on the subnet", x.name),
                    );
                } else if !x.addresses.iter().any(|p| p.contains(&a)) {
                    let nets: Vec<String> = x
                        .addresses
                        .iter()
                        .map(|p| p.network().to_string())
                        .collect();
                    self.ctx.error(
                        &addr_path,
                        format!(
                            "{a} is not on a subnet of interface {} ({}); a neighbour must be directly connected",
                            x.name,
                            if nets.is_empty() { "it has no address".to_string() } else { nets.join(", ") }
                        ),
                    );
                } else if let Some(first) = seen.get(&(x.name.clone(), a)) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &addr_path,
                        format!("duplicate neighbour {a} on interface {} (also at line {line}); keep one entry per address", x.name),
                    );
                } else {
                    seen.insert((x.name.clone(), a), addr_path.clone());
                    if let Some(mac) = mac {
                        result.push(Neighbor {
                            interface: x.name.clone(),
                            address: a,
                            mac,
                        });
                    }
                }
            }
        }
        result
    }

    /// A gateway must be on a connected subnet (of the named interface, if any), not our own.
    fn check_gateway(
        &mut self,
        path: &str,
        gw: IpAddr,
        interface: Option<&str>,
        interfaces: &[Interface],
    ) {
        if let Some(own) = interfaces
            .iter()
            .find(|x| x.addresses.iter().any(|a| a.addr == gw))
        {
            self.ctx.error(
                path,
                format!("gateway {gw} is this router's own address on interface {}; use the neighbor's address", own.name),
            );
            return;
        }
        let link_local = match gw {
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
            IpAddr::V4(_) => false,
        };
        let candidates: Vec<&Interface> = interfaces
            .iter()
            .filter(|x| interface.is_none_or(|name| x.name == name))
            .collect();
        if link_local {
            if interface.is_none() {
                self.ctx.error(
                    path,
                    format!("link-local gateway {gw} is ambiguous without an interface; add `interface = \"...\"` to this route"),
                );
            }
            return;
        }
        if interface.is_some() && candidates.is_empty() {
            return; // unknown interface, reported already
        }
        let subnet = candidates
            .iter()
            .flat_map(|x| x.addresses.iter().map(move |a| (x, a)))
            .find(|(_, a)| a.contains(&gw));
        if let Some((x, a)) = subnet {
            if let Some(what) = network_or_broadcast(a, gw) {
                self.ctx.error(
                    path,
                    format!("gateway {gw} is the {what} address of subnet {} on interface {}, not a host; use the next hop's own address", a.network(), x.name),
                );
            }
        } else {
            let message = match interface {
                Some(name) => format!("gateway {gw} is not on any subnet of interface {name}; use a neighbor address inside one of its address prefixes, or add an address covering it"),
                None => format!("gateway {gw} is not on any interface's subnet; use a neighbor address inside a configured prefix, or add the interface's address"),
            };
            self.ctx.error(path, message);
        }
    }
}

/// "fl-" + name, cut to the 15 bytes Linux allows.
fn default_tap_name(name: &str) -> String {
    let mut tap = format!("fl-{name}");
    while tap.len() > MAX_IFNAME {
        tap.pop();
    }
    tap
}

/// Whether `addr` is the network or the broadcast address of IPv4 subnet `p` (/31 and /32
/// have neither).
fn network_or_broadcast(p: &IpPrefix, addr: IpAddr) -> Option<&'static str> {
    let IpAddr::V4(a) = addr else {
        return None;
    };
    if !p.is_ipv4() || p.len > 30 {
        return None;
    }
    let host_mask = u32::MAX >> p.len;
    let host = u32::from(a) & host_mask;
    if host == 0 {
        Some("network")
    } else if host == host_mask {
        Some("broadcast")
    } else {
        None
    }
}

/// Why an interface address cannot be a host address, if it cannot.
fn host_address_problem(p: &IpPrefix) -> Option<String> {
    let a = p.addr;
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Some(format!(
            "{} is not a usable host address (unspecified, loopback or multicast); use the interface's unicast address",
            a
        ));
    }
    if let IpAddr::V4(v4) = a {
        if v4.is_broadcast() {
            return Some(format!("{v4} is the broadcast address; use a host address"));
        }
        // /31 (RFC 3021) and /32 have no network or broadcast address.
        if p.len <= 30 {
            let host_bits = u32::from(v4) & (u32::MAX >> p.len);
            if host_bits == 0 {
                return Some(format!("{p} is the network address of its subnet, not a host address; use a host inside it, e.g. \"{}/{}\"", std::net::Ipv4Addr::from(u32::from(v4) | 1), p.len));
            }
            if host_bits == u32::MAX >> p.len {
                return Some(format!("{p} is the broadcast address of its subnet, not a host address; use a host inside it"));
            }
        }
    }
    None
}
