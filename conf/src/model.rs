//! The validated configuration handed to the binary, the dataplane and the control plane.
//!
//! Every default is already applied and every cross-reference checked: a name in
//! [`Bond::members`], [`Interface::on`], [`Forward::Xconnect`] or [`Route::interface`] always
//! resolves through [`Config::port`], [`Config::bond`], [`Config::endpoint`] or
//! [`Config::interface`].

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Serialize;

use crate::values::{
    speed_name, BondMode, Device, Duplex, Fallback, ForwardMode, HashPolicy, IpPrefix,
    LacpActivity, LacpRate, MacAddr, MuxMode, RestartMode, Selection,
};

/// A complete, validated fastlag configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// `[dataplane]`: cores, memory and EAL settings.
    pub dataplane: Dataplane,
    /// `[[port]]` in file order.
    pub ports: Vec<Port>,
    /// `[[bond]]` in file order.
    pub bonds: Vec<Bond>,
    /// `[[interface]]` in file order (router mode only; empty in xconnect mode).
    pub interfaces: Vec<Interface>,
    /// `[[route]]` in file order (router mode only; empty in xconnect mode).
    pub routes: Vec<Route>,
    /// `[[neighbor]]` in file order: static neighbours (router mode only).
    pub neighbors: Vec<Neighbor>,
    /// `[forward]`: what happens to received frames.
    pub forward: Forward,
    /// `[management]`: control socket and metrics endpoint.
    pub management: Management,
}

/// `[dataplane]`: process-wide DPDK settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataplane {
    /// CPU id of the control thread (LACP, link polling, management).
    pub control_core: u32,
    /// CPU ids of the poll-mode workers; worker `i` owns RX/TX queue `i` of every port.
    /// Never empty, distinct, never contains `control_core`.
    pub worker_cores: Vec<u32>,
    /// Use hugepages; `false` runs EAL with `--no-huge`.
    pub hugepages: bool,
    /// EAL `-m`: memory to reserve, in MiB.
    pub memory_mb: u32,
    /// Number of mbufs in the packet pool.
    pub mbufs: u32,
    /// Per-lcore mbuf cache size.
    pub mbuf_cache: u32,
    /// Packets per rx/tx burst, 1..=512.
    pub burst: u16,
    /// Extra EAL arguments, passed verbatim after the ones fastlag derives.
    pub eal_args: Vec<String>,
    /// EAL `--file-prefix`; `None`: the binary picks a unique one.
    pub file_prefix: Option<String>,
    /// Period of the counter log line in seconds; 0 disables it.
    pub stats_interval_s: u32,
}

impl Dataplane {
    /// Number of poll-mode workers (= RX/TX queues per port).
    pub fn workers(&self) -> usize {
        self.worker_cores.len()
    }
}

/// `[[port]]`: one DPDK ethdev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Unique name (shared namespace with bonds and interfaces).
    pub name: String,
    /// What backs the port.
    pub device: Device,
    /// RX/TX queue pairs for the workers; always equals the number of workers.
    pub queues: u16,
    /// RX descriptors per queue (power of two, 64..=16384).
    pub rx_descriptors: u16,
    /// TX descriptors per queue (power of two, 64..=16384).
    pub tx_descriptors: u16,
    /// MTU in bytes, 68..=9600.
    pub mtu: u16,
    /// Speed override in Mbit/s; `None`: use what the PMD reports (which may be unknown).
    pub speed_mbps: Option<u32>,
    /// Duplex override; `None`: use what the PMD reports (which may be unknown).
    pub duplex: Option<Duplex>,
    /// MAC override; `None`: the device's own MAC.
    pub mac: Option<MacAddr>,
    /// `lacp_port_priority` as written; the effective value is in [`BondMember`].
    pub lacp_port_priority: Option<u16>,
    /// `lacp_port_number` as written; the effective value is in [`BondMember`].
    pub lacp_port_number: Option<u16>,
}

/// `[[bond]]`: a link aggregation group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bond {
    /// Unique name (shared namespace with ports and interfaces).
    pub name: String,
    /// Aggregation mode.
    pub mode: BondMode,
    /// Member ports in configuration order, with their effective LACP port identity.
    pub members: Vec<BondMember>,
    /// Distribution hash (irrelevant for active-backup).
    pub hash: HashPolicy,
    /// Fewest distributing members for the bond to count as up, 1..=members.
    pub min_links: u16,
    /// MAC override; `None`: decided at runtime (first member's MAC).
    pub mac: Option<MacAddr>,
    /// LACP parameters; `Some` exactly when `mode` is [`BondMode::Lacp`].
    pub lacp: Option<Lacp>,
}

impl Bond {
    /// Names of the member ports, in configuration order.
    pub fn member_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.iter().map(|m| m.port.as_str())
    }

    /// Whether `port` is a member of this bond.
    pub fn has_member(&self, port: &str) -> bool {
        self.members.iter().any(|m| m.port == port)
    }
}

/// A bond member with its effective LACP port identity (802.1AX Actor_Port, Actor_Port_Priority).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BondMember {
    /// Name of the member port.
    pub port: String,
    /// Actor port number: `lacp_port_number`, else the 1-based position in `members`;
    /// unique within the bond.
    pub lacp_port_number: u16,
    /// Actor port priority: `lacp_port_priority`, else `[bond.lacp] port_priority` (255).
    pub lacp_port_priority: u16,
}

/// `[bond.lacp]`: 802.3ad parameters, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lacp {
    /// Active or passive LACP.
    pub activity: LacpActivity,
    /// Our Timeout bit: how fast the partner must send to us.
    pub rate: LacpRate,
    /// Actor system priority, 1..=65535.
    pub system_priority: u16,
    /// Actor system id; `None`: decided at runtime (stable, not tied to a member).
    pub system_id: Option<MacAddr>,
    /// Actor admin key, 1..=65535 (default: 1-based index of the bond in the file).
    pub key: u16,
    /// Default actor port priority of members.
    pub port_priority: u16,
    /// Most members distributing at once; further selected ports go STANDBY.
    /// `None`: no limit. When set: `min_links <= max_active <= members`.
    pub max_active: Option<u16>,
    /// Aggregator selection policy.
    pub selection: Selection,
    /// Behaviour without a partner.
    pub fallback: Fallback,
    /// Mux machine variant.
    pub mux: MuxMode,
}

/// `[[interface]]`: an L3 interface on a port or bond (router mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Unique name (shared namespace with ports and bonds).
    pub name: String,
    /// Port or bond the interface sits on (never a bond member); see [`Config::endpoint`].
    pub on: String,
    /// 802.1Q VLAN id, 1..=4094; `None`: untagged.
    pub vlan: Option<u16>,
    /// Host addresses with prefix length; no address appears on two interfaces.
    pub addresses: Vec<IpPrefix>,
    /// MTU override; never above the MTU of what it sits on. `None`: inherit.
    pub mtu: Option<u16>,
    /// Create a kernel TAP exception interface.
    pub tap: bool,
    /// Name of the TAP interface (<= 15 bytes); meaningful when `tap` is true.
    pub tap_name: String,
}

/// `[[route]]`: a static route (router mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination network (host bits zero).
    pub prefix: IpPrefix,
    /// Gateway of the same family, reachable on a configured subnet (a one-hop route).
    pub via: Option<IpAddr>,
    /// Egress interface name (a one-hop route); with `nexthops` empty, at least one of
    /// `via`/`interface` is set.
    pub interface: Option<String>,
    /// `nexthop = [...]`: an ECMP route's hops (2 to 16; `via`/`interface` are then
    /// `None`); empty for a one-hop route.
    pub nexthops: Vec<RouteHop>,
}

/// One next hop of a `[[route]]` ([`Route::hops`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteHop {
    /// Gateway, as [`Route::via`].
    pub via: Option<IpAddr>,
    /// Egress interface name, as [`Route::interface`].
    pub interface: Option<String>,
    /// Share of flows relative to the other hops, 1..=256 (default 1).
    pub weight: u16,
}

impl Route {
    /// Every next hop: `nexthops`, or the one `via`/`interface` gives (weight 1).
    pub fn hops(&self) -> Vec<RouteHop> {
        if self.nexthops.is_empty() {
            vec![RouteHop {
                via: self.via,
                interface: self.interface.clone(),
                weight: 1,
            }]
        } else {
            self.nexthops.clone()
        }
    }
}

/// `[[neighbor]]`: a static neighbour (router mode), like `ip neigh add ... nud permanent`:
/// the MAC of an address on a connected subnet, for next hops no kernel resolves (no TAP)
/// or that must not depend on ARP/ND. Neighbours the kernel learns on the TAPs come on top;
/// a static one wins over a learned one for the same address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbor {
    /// The interface the neighbour is on.
    pub interface: String,
    /// Its address, on one of the interface's subnets.
    pub address: IpAddr,
    /// Its MAC (unicast).
    pub mac: MacAddr,
}

/// `[forward]`: the forwarding mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Forward {
    /// Frames from one endpoint leave unchanged on the other one of its pair.
    Xconnect {
        /// Pairs of port or bond names; no endpoint appears twice.
        pairs: Vec<(String, String)>,
    },
    /// IPv4/IPv6 routing between `interfaces` along `routes`.
    Router,
}

impl Forward {
    /// The mode keyword.
    pub fn mode(&self) -> ForwardMode {
        match self {
            Forward::Xconnect { .. } => ForwardMode::Xconnect,
            Forward::Router => ForwardMode::Router,
        }
    }
}

/// `[management]`: operator access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Management {
    /// Unix socket of the management API (absolute path).
    pub socket: PathBuf,
    /// Metrics endpoint; always a loopback address. `None`: disabled.
    pub metrics: Option<SocketAddr>,
    /// Handoff state file for warm restart and crash recovery (absolute path). `None`:
    /// no handoff (every start is a normal start).
    pub state_file: Option<PathBuf>,
    /// What a planned restart does once the handoff file is written.
    pub restart: RestartMode,
}

/// Default management socket.
pub const DEFAULT_SOCKET: &str = "/run/fastlag/fastlag.sock";

impl Default for Management {
    fn default() -> Self {
        Management {
            socket: PathBuf::from(DEFAULT_SOCKET),
            metrics: None,
            state_file: None,
            restart: RestartMode::Exec,
        }
    }
}

/// What a port-or-bond name refers to (forward pairs, interface `on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// A port.
    Port(&'a Port),
    /// A bond.
    Bond(&'a Bond),
}

impl<'a> Endpoint<'a> {
    /// The port or bond name.
    pub fn name(&self) -> &'a str {
        match self {
            Endpoint::Port(p) => &p.name,
            Endpoint::Bond(b) => &b.name,
        }
    }
}

impl Config {
    /// The port called `name`.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The bond called `name`.
    pub fn bond(&self, name: &str) -> Option<&Bond> {
        self.bonds.iter().find(|b| b.name == name)
    }

    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// Whether `name` is a port or a bond (bond members resolve as ports too).
    pub fn endpoint(&self, name: &str) -> Option<Endpoint<'_>> {
        self.port(name)
            .map(Endpoint::Port)
            .or_else(|| self.bond(name).map(Endpoint::Bond))
    }

    /// The bond that `port` is a member of.
    pub fn bond_of(&self, port: &str) -> Option<&Bond> {
        self.bonds.iter().find(|b| b.has_member(port))
    }

    /// For a port on a ring link end, the port on the other end of the same link, if the file
    /// declares it. `None` for a ring end means the binary's traffic generator owns the other end.
    pub fn ring_peer(&self, port: &Port) -> Option<&Port> {
        let Device::Ring { link, end } = &port.device else {
            return None;
        };
        self.ports.iter().find(
            |p| matches!(&p.device, Device::Ring { link: l, end: e } if l == link && e != end),
        )
    }

    /// Index of the port called `name` in [`Config::ports`].
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// One-screen human summary, as printed by `fastlag check-config`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, out: &mut String) {
        let dp = &self.dataplane;
        let forward = match &self.forward {
            Forward::Xconnect { .. } => "xconnect",
            Forward::Router => "router",
        };
        // Writing into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(
            out,
            "forward: {forward}; {} port(s), {} bond(s), {} interface(s), {} route(s)",
            self.ports.len(),
            self.bonds.len(),
            self.interfaces.len(),
            self.routes.len()
        );
        let cores: Vec<String> = dp.worker_cores.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "dataplane: control core {}, worker cores [{}], hugepages {}, memory {} MiB, mbufs {} (cache {}), burst {}, file prefix {}, stats {}",
            dp.control_core,
            cores.join(", "),
            if dp.hugepages { "on" } else { "off" },
            dp.memory_mb,
            dp.mbufs,
            dp.mbuf_cache,
            dp.burst,
            dp.file_prefix.as_deref().unwrap_or("auto"),
            if dp.stats_interval_s == 0 {
                "off".to_owned()
            } else {
                format!("every {} s", dp.stats_interval_s)
            }
        );
        if !dp.eal_args.is_empty() {
            let _ = writeln!(out, "  extra EAL args: {}", dp.eal_args.join(" "));
        }
        let _ = writeln!(out, "ports:");
        for p in &self.ports {
            let mut role = match self.bond_of(&p.name) {
                Some(b) => format!("in {}", b.name),
                None => "standalone".to_owned(),
            };
            if matches!(p.device, Device::Ring { .. }) {
                match self.ring_peer(p) {
                    Some(peer) => {
                        let _ = write!(role, ", ring peer {}", peer.name);
                    }
                    None => role.push_str(", ring peer: built-in generator"),
                }
            }
            let _ = writeln!(out, "  {:<15} {} ({role})", p.name, p.device);
            let _ = writeln!(
                out,
                "  {:<15} queues {}, rx/tx descriptors {}/{}, mtu {}, speed {}, duplex {}, mac {}",
                "",
                p.queues,
                p.rx_descriptors,
                p.tx_descriptors,
                p.mtu,
                p.speed_mbps.map_or_else(|| "auto".to_owned(), speed_name),
                p.duplex.map_or("auto", Duplex::as_str),
                p.mac.map_or_else(|| "auto".to_owned(), |m| m.to_string()),
            );
        }
        if !self.bonds.is_empty() {
            let _ = writeln!(out, "bonds:");
        }
        for b in &self.bonds {
            let members: Vec<String> = b
                .members
                .iter()
                .map(|m| {
                    if b.mode == BondMode::Lacp {
                        format!(
                            "{} (port {}, prio {})",
                            m.port, m.lacp_port_number, m.lacp_port_priority
                        )
                    } else {
                        m.port.clone()
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "  {:<15} {}; members {}; hash {}, min_links {}, mac {}",
                b.name,
                b.mode,
                members.join(", "),
                b.hash,
                b.min_links,
                b.mac
                    .map_or_else(|| "first member".to_owned(), |m| m.to_string()),
            );
            if let Some(l) = &b.lacp {
                let _ = writeln!(
                    out,
                    "  {:<15} lacp {} rate {}, system {}/{}, key {}, max_active {}, selection {}, fallback {}, mux {}",
                    "",
                    l.activity,
                    l.rate,
                    l.system_priority,
                    l.system_id.map_or_else(|| "auto".to_owned(), |m| m.to_string()),
                    l.key,
                    l.max_active.map_or_else(|| "all".to_owned(), |n| n.to_string()),
                    l.selection,
                    l.fallback,
                    l.mux,
                );
            }
        }
        if !self.interfaces.is_empty() {
            let _ = writeln!(out, "interfaces:");
        }
        for i in &self.interfaces {
            let on = match i.vlan {
                Some(v) => format!("{} vlan {v}", i.on),
                None => i.on.clone(),
            };
            let addrs: Vec<String> = i.addresses.iter().map(IpPrefix::to_string).collect();
            let _ = writeln!(
                out,
                "  {:<15} on {on}; addresses {}; mtu {}; tap {}",
                i.name,
                if addrs.is_empty() {
                    "none".to_owned()
                } else {
                    addrs.join(", ")
                },
                i.mtu
                    .map_or_else(|| "inherited".to_owned(), |m| m.to_string()),
                if i.tap { i.tap_name.as_str() } else { "off" },
            );
        }
        if !self.routes.is_empty() {
            let _ = writeln!(out, "routes:");
        }
        for r in &self.routes {
            let mut line = format!("  {}", r.prefix);
            let ecmp = !r.nexthops.is_empty();
            for h in r.hops() {
                if ecmp {
                    line.push_str(" nexthop");
                }
                if let Some(via) = h.via {
                    let _ = write!(line, " via {via}");
                }
                if let Some(dev) = &h.interface {
                    let _ = write!(line, " dev {dev}");
                }
                if ecmp {
                    let _ = write!(line, " weight {}", h.weight);
                }
            }
            let _ = writeln!(out, "{line}");
        }
        if !self.neighbors.is_empty() {
            let _ = writeln!(out, "static neighbours:");
        }
        for n in &self.neighbors {
            let _ = writeln!(out, "  {} lladdr {} dev {}", n.address, n.mac, n.interface);
        }
        if let Forward::Xconnect { pairs } = &self.forward {
            let pairs: Vec<String> = pairs.iter().map(|(a, b)| format!("{a} <-> {b}")).collect();
            let _ = writeln!(out, "xconnect: {}", pairs.join(", "));
        }
        let _ = writeln!(
            out,
            "management: socket {}, metrics {}",
            self.management.socket.display(),
            self.management
                .metrics
                .map_or_else(|| "off".to_owned(), |m| m.to_string())
        );
        if let Some(f) = &self.management.state_file {
            let _ = writeln!(
                out,
                "restart: state file {}, planned restart {}",
                f.display(),
                self.management.restart
            );
        }
    }
}
