//! From a validated configuration to a [`Plan`]: what the runtime creates and how it wires
//! it (ports and their queues, in-process links, bonds with their LACP settings, the
//! workers' egress, spare ports, EAL arguments). Pure: no DPDK call, no file read, no clock;
//! what depends on the host (machine id, process id) comes in as [`Host`]. A hitless reload
//! is the [`diff`] of the running plan and the plan of the new file.

pub mod diff;
pub mod eal;

use conf::{BondMode, Config, Device, Forward, RingEnd};
use dataplane::worker::Egress;
use dpdk::MacAddr;
use types::HashPolicy;

/// What the plan takes from the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `/etc/machine-id` (or the host name): default LACP system ids and router MACs must
    /// differ between machines.
    pub machine_id: String,
    /// This process: the default EAL file prefix is unique per process.
    pub pid: u32,
    /// fastlag's log level, mapped to DPDK's.
    pub log: tracing::Level,
}

impl Host {
    /// This machine and process.
    pub fn current(log: tracing::Level) -> Host {
        Host {
            machine_id: machine_id(),
            pid: std::process::id(),
            log,
        }
    }
}

/// This machine's identity for default system ids: /etc/machine-id, else the host name.
fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Where a port's frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortDevice {
    /// A PCI device, by its DPDK name (the address).
    Pci(String),
    /// A virtual device created from EAL's `--vdev` argument.
    Vdev {
        /// The DPDK device name.
        name: String,
        /// The whole vdev spec (for messages).
        spec: String,
    },
    /// One end of an in-process ring link.
    Ring {
        /// Link name.
        link: String,
        /// Which end.
        end: RingEnd,
    },
}

impl PortDevice {
    /// How the device reads in logs and counters.
    pub fn describe(&self) -> String {
        match self {
            PortDevice::Pci(name) => name.clone(),
            PortDevice::Vdev { spec, .. } => spec.clone(),
            PortDevice::Ring { link, end } => format!("ring:{link}:{end}"),
        }
    }
}

/// How a port's MAC address is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacChoice {
    /// This one (configured, or derived where the PMD's must not be used).
    Fixed(MacAddr),
    /// The PMD's, or `fallback` when the PMD has none (ring PMDs: LACPDUs need a source).
    Pmd {
        /// Used when the PMD reports 00:00:00:00:00:00.
        fallback: MacAddr,
    },
}

impl MacChoice {
    /// The address, given what the PMD reports.
    pub fn resolve(self, pmd: MacAddr) -> MacAddr {
        match self {
            MacChoice::Fixed(m) => m,
            MacChoice::Pmd { fallback } if pmd == MacAddr([0; 6]) => fallback,
            MacChoice::Pmd { .. } => pmd,
        }
    }
}

/// One configured port.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPort {
    /// Name from the config.
    pub name: String,
    /// The device.
    pub device: PortDevice,
    /// The bond it is a member of (index into [`Plan::bonds`]).
    pub member_of: Option<usize>,
    /// A member of an 802.3ad bond: LACPDUs, and a dedicated slow-protocol queue where the
    /// PMD can steer them.
    pub lacp_member: bool,
    /// A spare port: a reload may make it a bond member, so it gets a member's resources.
    pub spare: bool,
    /// RX queues the workers poll.
    pub rx_queues: u16,
    /// TX queues: one per worker, plus the control thread's when `control_queue`.
    pub tx_queues: u16,
    /// The control thread has a TX queue of its own (LACPDUs, kernel frames).
    pub control_queue: bool,
    /// Descriptors per RX queue.
    pub rx_descriptors: u16,
    /// Descriptors per TX queue.
    pub tx_descriptors: u16,
    /// MTU.
    pub mtu: u16,
    /// Where its ingress goes in xconnect mode.
    pub egress: Egress,
    /// The kernel interface under an af_packet/af_xdp PMD (its carrier is read from sysfs;
    /// the kernel's IP stack is kept off it).
    pub kernel_iface: Option<String>,
    /// Its MAC.
    pub mac: MacChoice,
    /// The MAC the operator configured (set on the device).
    pub configured_mac: Option<MacAddr>,
    /// Configured speed override (Mb/s).
    pub speed_mbps: Option<u32>,
    /// Configured duplex override.
    pub duplex: Option<conf::Duplex>,
    /// Benchmarks: the runtime can inject frames into the link from this end
    /// ([`crate::runtime::Runtime::inject`]; ring link ends only), through a TX queue of
    /// its own ([`PlannedPort::injects_by_queue`]) or through worker 0.
    pub injector: bool,
}

impl PlannedPort {
    /// Benchmarks: whether this end's injector is a TX queue of its own (it has the
    /// control thread's queue) rather than a ring to worker 0.
    pub fn injects_by_queue(&self) -> bool {
        self.injector && self.control_queue
    }
}

/// One configured bond.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBond {
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: BondMode,
    /// Member port indices, in config order.
    pub members: Vec<usize>,
    /// Distribution hash.
    pub hash: HashPolicy,
    /// The LACP engine's configuration of an 802.3ad bond.
    pub lacp: Option<lacp::BondConfig>,
    /// Per member (same order as `members`): LACP port number and priority.
    pub lacp_ports: Vec<(u16, u16)>,
    /// Fewest distributing members.
    pub min_links: u16,
    /// Configured MAC (else its first member's).
    pub mac: Option<MacAddr>,
}

/// The far end of an in-process link that no port claims (the demo's generator drives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpareEndPlan {
    /// Link name.
    pub link: String,
    /// This end.
    pub end: RingEnd,
    /// The port at the other end ("" when none).
    pub peer: String,
    /// Its MAC.
    pub mac: MacAddr,
}

/// Everything the runtime needs to build the dataplane for one configuration.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration planned (reload compares it key by key).
    pub config: Config,
    /// The machine it was planned for.
    pub host: Host,
    /// EAL arguments.
    pub eal_args: Vec<String>,
    /// Worker CPUs; worker i owns queue i of every port.
    pub worker_cores: Vec<usize>,
    /// The control thread's CPU.
    pub control_core: usize,
    /// Packets per RX poll.
    pub burst: usize,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Per-core mbuf cache.
    pub mbuf_cache: u32,
    /// Bytes of buffer per mbuf.
    pub data_room: u16,
    /// In-process links to create (both ends), in config order.
    pub links: Vec<String>,
    /// Per port, in config order (the runtime's port index).
    pub ports: Vec<PlannedPort>,
    /// Ring ends no port claims.
    pub spare_ends: Vec<SpareEndPlan>,
    /// Per bond, in config order.
    pub bonds: Vec<PlannedBond>,
    /// Router mode.
    pub router: bool,
    /// Benchmark mode ([`Plan::for_bench`]).
    pub bench: bool,
}

impl Plan {
    /// Plans `cfg` (validated) on `host`.
    pub fn new(cfg: &Config, host: &Host) -> Plan {
        let dp = &cfg.dataplane;
        let workers = dp.worker_cores.len() as u16;
        let router = cfg.forward == Forward::Router;
        let egress = xconnect_egress(cfg);
        let mut links: Vec<String> = Vec::new();
        for p in &cfg.ports {
            if let Device::Ring { link, .. } = &p.device {
                if !links.contains(link) {
                    links.push(link.clone());
                }
            }
        }
        let ports: Vec<PlannedPort> = cfg
            .ports
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                let bond = cfg.bonds.iter().position(|b| b.has_member(&p.name));
                let lacp_member = bond.is_some_and(|b| cfg.bonds[b].mode == BondMode::Lacp);
                let spare = is_spare(cfg, &p.name);
                let control_queue = eal::control_queue(cfg, p);
                let device = match &p.device {
                    Device::Pci(addr) => PortDevice::Pci(addr.to_string()),
                    Device::Vdev { name, spec } => PortDevice::Vdev {
                        name: name.clone(),
                        spec: spec.clone(),
                    },
                    Device::Ring { link, end } => PortDevice::Ring {
                        link: link.clone(),
                        end: *end,
                    },
                };
                let kernel_iface = match &p.device {
                    Device::Vdev { spec, .. } => kernel_iface_of(spec),
                    _ => None,
                };
                let mac = match p.mac {
                    Some(m) => MacChoice::Fixed(m),
                    // A router interface must not share its MAC with a kernel netdev, or the
                    // kernel's stack would take its frames too.
                    None if kernel_iface.is_some() && router => {
                        MacChoice::Fixed(derived_mac(&["port", &p.name, &host.machine_id]))
                    }
                    None => MacChoice::Pmd {
                        fallback: derived_mac(&["port", &p.name]),
                    },
                };
                PlannedPort {
                    name: p.name.clone(),
                    device,
                    member_of: bond,
                    lacp_member,
                    spare,
                    rx_queues: eal::rx_queues_needed(cfg, p),
                    tx_queues: workers + control_queue as u16,
                    control_queue,
                    rx_descriptors: p.rx_descriptors,
                    tx_descriptors: p.tx_descriptors,
                    mtu: p.mtu,
                    egress: egress[pi],
                    kernel_iface,
                    mac,
                    configured_mac: p.mac,
                    speed_mbps: p.speed_mbps,
                    duplex: p.duplex,
                    injector: false,
                }
            })
            .collect();
        let spare_ends = spare_ends(cfg, &links);
        let bonds = cfg
            .bonds
            .iter()
            .map(|b| PlannedBond {
                name: b.name.clone(),
                mode: b.mode,
                members: b
                    .members
                    .iter()
                    .map(|m| {
                        cfg.ports
                            .iter()
                            .position(|p| p.name == m.port)
                            .expect("config validation: members are ports")
                    })
                    .collect(),
                hash: b.hash,
                lacp: b.lacp.is_some().then(|| lacp_bond_config(b, host)),
                lacp_ports: b
                    .members
                    .iter()
                    .map(|m| (m.lacp_port_number, m.lacp_port_priority))
                    .collect(),
                min_links: b.min_links,
                mac: b.mac,
            })
            .collect();
        Plan {
            config: cfg.clone(),
            host: host.clone(),
            eal_args: eal::eal_args(cfg, host.pid, host.log),
            worker_cores: dp.worker_cores.iter().map(|&c| c as usize).collect(),
            control_core: dp.control_core as usize,
            burst: dp.burst as usize,
            mbufs: dp.mbufs,
            mbuf_cache: dp.mbuf_cache,
            data_room: data_room(cfg),
            links,
            ports,
            spare_ends,
            bonds,
            router,
            bench: false,
        }
    }

    /// The plan for a benchmark: every in-process link end gets an injector, so frames can
    /// be injected into a closed loop while workers run. An end with the control thread's
    /// queue injects through a TX queue of its own (its link's queue-0 ring has several
    /// producers anyway); any other end injects through worker 0, so its ring keeps a
    /// single producer, as on a link without benchmarks.
    pub fn for_bench(mut self) -> Plan {
        self.bench = true;
        for p in &mut self.ports {
            if matches!(p.device, PortDevice::Ring { .. }) {
                p.injector = true;
                if p.injects_by_queue() {
                    p.tx_queues += 1;
                }
            }
        }
        self
    }

    /// TX queues beyond the workers' on the ends of in-process link `link` (the most of
    /// either end): the ring link feeds them into the peer's queue 0, whose ring then has
    /// several producers. 0 keeps every ring of the link single-producer.
    pub fn link_extra_tx(&self, link: &str) -> u16 {
        self.ports
            .iter()
            .filter(|p| matches!(&p.device, PortDevice::Ring { link: l, .. } if l == link))
            .map(|p| p.tx_queues.saturating_sub(self.workers()))
            .max()
            .unwrap_or(0)
    }

    /// Number of workers.
    pub fn workers(&self) -> u16 {
        self.worker_cores.len() as u16
    }

    /// Whether anything needs the control thread (a bond or the router).
    pub fn needs_control_thread(&self) -> bool {
        !self.bonds.is_empty() || self.router
    }

    /// The port called `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }
}

/// Per port: where an xconnect pair sends its ingress (a bond's members all send to the
/// bond's peer).
fn xconnect_egress(cfg: &Config) -> Vec<Egress> {
    let nports = cfg.ports.len();
    let mut egress = vec![Egress::Drop; nports];
    let Forward::Xconnect { pairs } = &cfg.forward else {
        return egress;
    };
    let endpoint = |name: &str| -> Egress {
        if let Some(i) = cfg.ports.iter().position(|p| p.name == name) {
            Egress::Port(i)
        } else if let Some(b) = cfg.bonds.iter().position(|b| b.name == name) {
            Egress::Bond(b)
        } else {
            Egress::Drop
        }
    };
    for (a, b) in pairs {
        for (from, to) in [(a, b), (b, a)] {
            let to = endpoint(to);
            match endpoint(from) {
                Egress::Port(i) => egress[i] = to,
                Egress::Bond(bi) => {
                    for m in &cfg.bonds[bi].members {
                        if let Some(pi) = cfg.ports.iter().position(|p| p.name == m.port) {
                            egress[pi] = to;
                        }
                    }
                }
                Egress::Drop => {}
            }
        }
    }
    egress
}

/// Ends of in-process links that no port claims, in link order (end A before B).
fn spare_ends(cfg: &Config, links: &[String]) -> Vec<SpareEndPlan> {
    let claimed = |link: &str, end: RingEnd| {
        cfg.ports.iter().find(
            |p| matches!(&p.device, Device::Ring { link: l, end: e } if l == link && *e == end),
        )
    };
    let mut out = Vec::new();
    for link in links {
        for end in [RingEnd::A, RingEnd::B] {
            if claimed(link, end).is_some() {
                continue;
            }
            let other = if end == RingEnd::A {
                RingEnd::B
            } else {
                RingEnd::A
            };
            out.push(SpareEndPlan {
                link: link.clone(),
                end,
                peer: claimed(link, other)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                mac: derived_mac(&["generator", link]),
            });
        }
    }
    out
}

/// Bytes of buffer each mbuf needs (conf's rule, which its memory estimate uses too).
fn data_room(cfg: &Config) -> u16 {
    conf::data_room(cfg, &crate::limits())
}

/// Whether port `name` is a spare: xconnect mode, not a bond member, not an endpoint of a
/// pair. Spares are set up at start so that a reload can make them bond members.
pub fn is_spare(cfg: &Config, name: &str) -> bool {
    match &cfg.forward {
        Forward::Xconnect { pairs } => {
            cfg.bond_of(name).is_none() && !pairs.iter().any(|(a, b)| a == name || b == name)
        }
        Forward::Router => false,
    }
}

/// The kernel interface a vdev spec sits on, for PMDs that do not report its carrier.
pub fn kernel_iface_of(spec: &str) -> Option<String> {
    let mut parts = spec.split(',');
    let name = parts.next()?;
    if !(name.starts_with("net_af_packet") || name.starts_with("net_af_xdp")) {
        return None;
    }
    parts.find_map(|kv| kv.strip_prefix("iface=").map(str::to_string))
}

/// The DPDK device name of router interface `i`'s TAP port.
pub fn tap_port_name(i: usize) -> String {
    format!("net_tap{i}")
}

/// The EAL `--vdev` argument that creates interface `i`'s TAP.
pub fn tap_vdev(i: usize, tap_name: &str) -> String {
    format!("{},iface={tap_name}", tap_port_name(i))
}

/// The LACP engine's view of an 802.3ad bond's configuration (also what reload compares).
/// Call only for bonds with `lacp` set.
pub fn lacp_bond_config(b: &conf::Bond, host: &Host) -> lacp::BondConfig {
    let l = b
        .lacp
        .clone()
        .unwrap_or_else(|| panic!("bond {} has no LACP settings", b.name));
    let system_mac = l
        .system_id
        .unwrap_or_else(|| derived_mac(&["system", &host.machine_id, &b.name]));
    let mut bc = lacp::BondConfig::new(b.name.clone(), system_mac, l.key);
    bc.system.priority = l.system_priority;
    bc.activity = match l.activity {
        conf::LacpActivity::Active => lacp::Activity::Active,
        conf::LacpActivity::Passive => lacp::Activity::Passive,
    };
    bc.rate = match l.rate {
        conf::LacpRate::Fast => lacp::Rate::Fast,
        conf::LacpRate::Slow => lacp::Rate::Slow,
    };
    bc.selection = match l.selection {
        conf::Selection::Stable => lacp::SelectionPolicy::Stable,
        conf::Selection::Bandwidth => lacp::SelectionPolicy::Bandwidth,
        conf::Selection::Count => lacp::SelectionPolicy::Count,
    };
    bc.fallback = match l.fallback {
        conf::Fallback::None => lacp::Fallback::None,
        conf::Fallback::Individual => lacp::Fallback::Individual,
    };
    bc.mux = match l.mux {
        conf::MuxMode::Coupled => lacp::MuxControl::Coupled,
        conf::MuxMode::Independent => lacp::MuxControl::Independent,
    };
    bc.min_links = b.min_links;
    bc.max_active = l.max_active;
    bc
}

/// A stable, locally administered unicast MAC derived from `parts` (FNV-1a): used where a
/// PMD has no address of its own, and for default LACP system ids, which must not follow
/// any member's MAC and must differ between machines.
pub fn derived_mac(parts: &[&str]) -> MacAddr {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts
        .iter()
        .flat_map(|p| p.bytes().chain(std::iter::once(0)))
    {
        h ^= p as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    MacAddr([0x02, b[1], b[2], b[3], b[4], b[5]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            machine_id: "m".into(),
            pid: 7,
            log: tracing::Level::INFO,
        }
    }

    const XC: &str = r#"
[dataplane]
control_core = 0
worker_cores = [1]
hugepages = false
[[port]]
name = "m0"
device = "ring:l0:a"
[[port]]
name = "m1"
device = "ring:l1:a"
[[port]]
name = "in"
device = "ring:g0:a"
[[port]]
name = "spare"
device = "ring:l2:a"
[[bond]]
name = "bond0"
members = ["m0", "m1"]
[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]
"#;

    #[test]
    fn xconnect_plan_wires_bond_members_to_the_pair() {
        let cfg = conf::parse(XC, "t.toml").unwrap();
        let p = Plan::new(&cfg, &host());
        assert_eq!(p.links, ["l0", "l1", "g0", "l2"]);
        assert_eq!(p.ports[0].egress, Egress::Port(2));
        assert_eq!(p.ports[1].egress, Egress::Port(2));
        assert_eq!(p.ports[2].egress, Egress::Bond(0));
        assert_eq!(p.ports[3].egress, Egress::Drop);
        assert!(p.ports[0].lacp_member && p.ports[0].control_queue);
        assert_eq!(p.ports[0].tx_queues, 2);
        assert!(!p.ports[2].control_queue);
        assert!(p.ports[3].spare && p.ports[3].control_queue);
        assert_eq!(p.bonds[0].members, [0, 1]);
        assert!(p.bonds[0].lacp.is_some());
        assert_eq!(p.spare_ends.len(), 4, "every link's far end is free");
        assert_eq!(p.spare_ends[2].peer, "in");
        assert!(p.eal_args.contains(&"--file-prefix=fastlag-7".to_string()));
    }

    #[test]
    fn default_system_ids_follow_the_machine_not_the_members() {
        let cfg = conf::parse(XC, "t.toml").unwrap();
        let a = Plan::new(&cfg, &host());
        let other = Host {
            machine_id: "other".into(),
            ..host()
        };
        let b = Plan::new(&cfg, &other);
        let sys = |p: &Plan| p.bonds[0].lacp.as_ref().unwrap().system.mac;
        assert_ne!(sys(&a), sys(&b));
        assert_eq!(sys(&a).0[0] & 0x03, 0x02, "locally administered unicast");
    }

    #[test]
    fn mac_choice_falls_back_only_without_a_pmd_address() {
        let fallback = derived_mac(&["port", "x"]);
        let c = MacChoice::Pmd { fallback };
        assert_eq!(c.resolve(MacAddr([0; 6])), fallback);
        assert_eq!(
            c.resolve(MacAddr([2, 0, 0, 0, 0, 1])),
            MacAddr([2, 0, 0, 0, 0, 1])
        );
    }

    #[test]
    fn kernel_interfaces_of_af_packet_and_af_xdp() {
        assert_eq!(
            kernel_iface_of("net_af_packet0,iface=veth1,qpairs=2").as_deref(),
            Some("veth1")
        );
        assert_eq!(
            kernel_iface_of("net_af_xdp1,iface=eth0").as_deref(),
            Some("eth0")
        );
        assert_eq!(kernel_iface_of("net_memif0,socket=/x"), None);
    }
}
