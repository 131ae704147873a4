//! Router mode wiring: L3 interfaces on ports, bonds and VLANs, their kernel TAP exception
//! interfaces, and the control thread's side of the exception path (frames from the workers
//! to the kernel, frames the kernel sends out through the interfaces).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dataplane::router::{Fib, FibBuilder, IfaceId, Interface, NextHop, Origin};
use netlink::{Applied, Kernel, KernelEvent, KernelTables, RouteTarget, Tap as KernelTap};

use conf::Config;
use dataplane::bond::{flow_hash, HashPolicy, SharedTable};
use dataplane::router::set_vlan;
use dpdk::{Burst, Consumer, MacAddr, PortInfo, RxQueue, TxQueue};
use serde::Serialize;

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

/// The DPDK device name of interface `i`'s TAP port.
pub fn tap_port_name(i: usize) -> String {
    format!("net_tap{i}")
}

/// The EAL `--vdev` argument that creates interface `i`'s TAP.
pub fn tap_vdev(i: usize, tap_name: &str) -> String {
    format!("{},iface={tap_name}", tap_port_name(i))
}

/// Counters of one interface's exception path.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ExceptionCounters {
    /// Frames handed to the kernel (TAP).
    pub to_kernel: u64,
    /// Frames the kernel sent out through the interface.
    pub from_kernel: u64,
    /// Frames the TAP did not take (full).
    pub to_kernel_dropped: u64,
    /// Frames from the kernel that could not be sent (queue full, no headroom).
    pub from_kernel_dropped: u64,
    /// Frames from the kernel discarded because the interface could not send (bond not
    /// distributing): only around start-up and outages, while the TAP's carrier follows.
    pub from_kernel_link_down: u64,
}

/// A TAP as the control thread drives it.
pub struct Tap {
    /// Interface index.
    pub iface: usize,
    /// Frames the kernel sends.
    pub rx: RxQueue,
    /// Frames for the kernel.
    pub tx: TxQueue,
}

/// How the control thread reaches an interface's egress.
pub struct Egress {
    /// The device.
    pub device: Device,
    /// VLAN to tag with.
    pub vlan: Option<u16>,
}

/// A bond's table and hash, for picking the member a kernel frame leaves on.
pub struct BondEgress {
    /// Published table.
    pub table: SharedTable,
    /// Hash policy.
    pub hash: HashPolicy,
}

/// The control thread's half of the exception path.
pub struct TapService {
    /// TAPs.
    pub taps: Vec<Tap>,
    /// Per interface: one ring per worker with frames for the kernel.
    pub from_workers: Vec<Vec<Consumer>>,
    /// Per interface.
    pub egress: Vec<Egress>,
    /// Per bond.
    pub bonds: Vec<BondEgress>,
    /// Per interface.
    pub counters: Vec<ExceptionCounters>,
}

impl TapService {
    /// Moves frames both ways; `port_tx` are the control thread's TX queues by port.
    pub fn service(&mut self, port_tx: &mut [Option<TxQueue>], burst: &mut Burst) {
        // Workers -> kernel. The TAP is the L3 interface itself: untagged.
        for tap in &mut self.taps {
            let c = &mut self.counters[tap.iface];
            for ring in &mut self.from_workers[tap.iface] {
                while ring.pop_into(burst, 32) > 0 {
                    let mut out = Burst::new();
                    for mut m in burst.drain() {
                        if set_vlan(&mut m, None) {
                            let _ = out.push(m);
                        } else {
                            c.to_kernel_dropped += 1;
                        }
                    }
                    let n = out.len();
                    let sent = tap.tx.tx_burst(&mut out);
                    c.to_kernel += sent as u64;
                    c.to_kernel_dropped += (n - sent) as u64;
                }
            }
        }
        // Kernel -> wire: what the kernel sends on a TAP leaves through its interface.
        for tap in &mut self.taps {
            let egress = &self.egress[tap.iface];
            let c = &mut self.counters[tap.iface];
            while tap.rx.rx_burst(burst, 32) > 0 {
                for mut m in burst.drain() {
                    if !set_vlan(&mut m, egress.vlan) {
                        c.from_kernel_dropped += 1;
                        continue;
                    }
                    let port = match egress.device {
                        Device::Port(p) => Some(p),
                        Device::Bond(b) => {
                            let bond = &self.bonds[b];
                            bond.table
                                .load()
                                .pick(flow_hash(m.data(), bond.hash))
                                .map(|p| p as usize)
                        }
                    };
                    let Some(port) = port else {
                        c.from_kernel_link_down += 1;
                        continue;
                    };
                    let Some(tx) = port_tx.get_mut(port).and_then(|q| q.as_mut()) else {
                        c.from_kernel_dropped += 1;
                        continue;
                    };
                    let mut out = Burst::new();
                    let _ = out.push(m);
                    if tx.tx_burst(&mut out) == 1 {
                        c.from_kernel += 1;
                    } else {
                        c.from_kernel_dropped += 1;
                    }
                }
            }
        }
    }
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
    Ok(b)
}

/// `cfg`'s static routes with their egress interface resolved.
fn static_routes(cfg: &Config, ifaces: &[Iface]) -> Result<Vec<(conf::IpPrefix, NextHop)>, String> {
    cfg.routes
        .iter()
        .map(|r| {
            let iface = match &r.interface {
                Some(name) => ifaces.iter().position(|i| &i.name == name),
                // Validation guarantees the gateway is on a configured subnet.
                None => r.via.and_then(|gw| {
                    ifaces.iter().position(|i| {
                        i.addresses
                            .iter()
                            .any(|&(a, len)| conf::IpPrefix { addr: a, len }.contains(&gw))
                    })
                }),
            }
            .ok_or_else(|| format!("route {}: no interface reaches it", r.prefix))?;
            Ok((
                r.prefix,
                NextHop {
                    iface: IfaceId(iface as u16),
                    gateway: r.via,
                },
            ))
        })
        .collect()
}

/// Adds `cfg`'s static routes to `b`.
fn add_static_routes(b: &mut FibBuilder, cfg: &Config, ifaces: &[Iface]) -> Result<(), String> {
    for (prefix, hop) in static_routes(cfg, ifaces)? {
        b.add_route(prefix.addr, prefix.len, hop, Origin::Static)
            .map_err(|e| format!("route {prefix}: {e}"))?;
    }
    Ok(())
}

/// How often kernel changes are folded into a new FIB at most.
const REBUILD_EVERY: Duration = Duration::from_millis(50);

/// The router's part of the control thread: the exception path and the FIB, with the
/// kernel's routes and neighbors on the TAP side mirrored in.
pub struct RouterControl {
    /// Interfaces.
    pub ifaces: Vec<Iface>,
    /// The FIB's source of truth.
    pub builder: FibBuilder,
    /// Where workers read the FIB.
    pub fib: Arc<ArcSwap<Fib>>,
    /// Exception path.
    pub taps: TapService,
    kernel: Option<Kernel>,
    tables: KernelTables,
    kernel_taps: Vec<KernelTap>,
    events: Vec<KernelEvent>,
    dirty_since: Option<std::time::Instant>,
    kernel_routes: usize,
    kernel_neighbors: usize,
    /// Reads the links of ports that interfaces sit on.
    ports: Vec<PortInfo>,
    /// Per interface with a TAP: (kernel ifindex, carrier we last set).
    carriers: Vec<(usize, u32, Option<bool>)>,
    next_carrier_check: std::time::Instant,
}

/// The router in [`crate::control_loop::Status`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouterStatus {
    /// FIB snapshot version.
    pub fib_version: u64,
    /// IPv4 and IPv6 routes in the FIB (static, connected and mirrored).
    pub routes_v4: usize,
    /// See `routes_v4`.
    pub routes_v6: usize,
    /// Routes mirrored from the kernel.
    pub kernel_routes: usize,
    /// Neighbors mirrored from the kernel.
    pub kernel_neighbors: usize,
    /// Per interface.
    pub interfaces: Vec<IfaceStatus>,
}

/// One interface in [`RouterStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct IfaceStatus {
    /// Name.
    pub name: String,
    /// Kernel TAP.
    pub tap: Option<String>,
    /// Exception path counters (control thread side).
    pub kernel: ExceptionCounters,
}

impl RouterControl {
    /// The router's control state; call [`RouterControl::start`] on the control thread.
    pub fn new(
        ifaces: Vec<Iface>,
        builder: FibBuilder,
        fib: Arc<ArcSwap<Fib>>,
        taps: TapService,
        ports: Vec<PortInfo>,
    ) -> Self {
        RouterControl {
            ifaces,
            builder,
            fib,
            taps,
            kernel: None,
            tables: KernelTables::default(),
            kernel_taps: Vec::new(),
            events: Vec::new(),
            dirty_since: None,
            kernel_routes: 0,
            kernel_neighbors: 0,
            ports,
            carriers: Vec::new(),
            next_carrier_check: std::time::Instant::now(),
        }
    }

    /// Whether interface `n` can send now: its port's link is up, or its bond has a
    /// distributing member.
    fn can_send(&self, n: usize) -> bool {
        match self.ifaces[n].device {
            Device::Port(p) => self.ports[p].link().map(|l| l.up).unwrap_or(false),
            Device::Bond(b) => !self.taps.bonds[b].table.load().distributing.is_empty(),
        }
    }

    /// A TAP has carrier only while its interface can send, so the kernel holds back (and
    /// redoes IPv6 DAD, MLD and router solicitation when the interface comes up) instead of
    /// sending into a bond that is not distributing yet.
    fn update_carriers(&mut self) {
        for i in 0..self.carriers.len() {
            let (n, ifindex, last) = self.carriers[i];
            let want = self.can_send(n);
            let Some(k) = self.kernel.as_mut() else {
                return;
            };
            if last == Some(want) {
                continue;
            }
            match k.set_carrier(ifindex, want) {
                Ok(()) => {
                    tracing::info!(interface = %self.ifaces[n].name, carrier = want, "TAP carrier follows the interface");
                    self.carriers[i].2 = Some(want);
                }
                Err(e) => {
                    tracing::warn!(interface = %self.ifaces[n].name, "setting the TAP carrier failed: {e}");
                    // Do not retry every iteration.
                    self.carriers[i].2 = Some(want);
                }
            }
        }
    }

    /// Configures the kernel side of every TAP (up, MTU, addresses, no RA, no redirects)
    /// and takes the kernel's routes and neighbors on them.
    pub fn start(&mut self) {
        let mut k = match Kernel::open() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(
                    "cannot open rtnetlink ({e}): TAP addresses and kernel routes are not managed"
                );
                return;
            }
        };
        for (n, i) in self.ifaces.iter().enumerate() {
            let Some(tap) = &i.tap else { continue };
            let ifindex = match k.ifindex(tap) {
                Ok(Some(x)) => x,
                other => {
                    tracing::error!(interface = %i.name, tap = %tap, "TAP not found in the kernel: {other:?}");
                    continue;
                }
            };
            // Carrier first: a TAP coming up on an interface that cannot send yet must not
            // start DAD/MLD into the void.
            let carrier = self.can_send(n);
            let carrier_set = k.set_carrier(ifindex, carrier).is_ok();
            write_sysctl(&format!("net/ipv6/conf/{tap}/accept_ra"), "0");
            write_sysctl(&format!("net/ipv4/conf/{tap}/send_redirects"), "0");
            if let Err(e) = k.set_link(ifindex, true, Some(i.mtu as u32)) {
                tracing::error!(interface = %i.name, tap = %tap, "bringing the TAP up failed: {e}");
            }
            for &(addr, len) in &i.addresses {
                if let Err(e) = k.add_address(ifindex, addr, len) {
                    tracing::error!(interface = %i.name, tap = %tap, %addr, "adding the address to the TAP failed: {e}");
                }
            }
            tracing::info!(interface = %i.name, tap = %tap, ifindex, "TAP configured");
            self.carriers
                .push((n, ifindex, carrier_set.then_some(carrier)));
            self.kernel_taps.push(KernelTap {
                ifindex,
                iface: n as u16,
            });
        }
        for (key, what) in [
            ("net/ipv4/ip_forward", "IPv4"),
            ("net/ipv6/conf/all/forwarding", "IPv6"),
        ] {
            if read_sysctl(key).as_deref() != Some("1") {
                tracing::warn!("{what} forwarding is off in this namespace ({key}): packets the fast path hands to the kernel for an unresolved neighbor are dropped there instead of being resolved and sent back");
            }
        }
        self.kernel = Some(k);
        self.resync();
    }

    fn resync(&mut self) {
        let Some(k) = self.kernel.as_mut() else {
            return;
        };
        // Events that arrived before the dump are covered by it.
        self.events.clear();
        let _ = k.poll_events(&mut self.events);
        self.events.clear();
        match (k.routes(), k.neighbors()) {
            (Ok(r), Ok(n)) => self.tables.reset(r, n),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("dumping kernel routes/neighbors failed: {e}")
            }
        }
        self.dirty_since.get_or_insert_with(std::time::Instant::now);
    }

    /// One control-loop iteration: exception path both ways, kernel events, and a FIB
    /// rebuild when changes have waited long enough.
    pub fn poll(&mut self, port_tx: &mut [Option<TxQueue>], burst: &mut Burst) {
        self.taps.service(port_tx, burst);
        if std::time::Instant::now() >= self.next_carrier_check {
            self.next_carrier_check = std::time::Instant::now() + Duration::from_millis(10);
            self.update_carriers();
        }
        if let Some(k) = self.kernel.as_mut() {
            self.events.clear();
            if let Err(e) = k.poll_events(&mut self.events) {
                tracing::warn!("reading kernel events failed: {e}");
            }
            let mut resync = false;
            for ev in &self.events {
                match self.tables.apply(ev) {
                    Applied::Unchanged => {}
                    Applied::Changed => {
                        self.dirty_since.get_or_insert_with(std::time::Instant::now);
                    }
                    Applied::Resync => {
                        resync = true;
                        break;
                    }
                }
            }
            if resync {
                self.resync();
            }
        }
        if self
            .dirty_since
            .is_some_and(|t| t.elapsed() >= REBUILD_EVERY)
        {
            self.dirty_since = None;
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let m = self.tables.mirror(&self.kernel_taps);
        self.builder.clear_routes(Origin::Kernel);
        self.builder.clear_neighbors(None);
        let mut routes = 0;
        for r in &m.routes {
            // Blackhole and punt entries need route kinds the FIB does not have yet: they
            // are left to the kernel (a punted prefix then follows the FIB's own answer).
            if let RouteTarget::Forward { iface, gateway } = r.target {
                let hop = NextHop {
                    iface: IfaceId(iface),
                    gateway,
                };
                match self
                    .builder
                    .add_route(r.dst, r.prefix_len, hop, Origin::Kernel)
                {
                    Ok(_) => routes += 1,
                    Err(e) => {
                        tracing::debug!("kernel route {}/{} not mirrored: {e}", r.dst, r.prefix_len)
                    }
                }
            }
        }
        for n in &m.neighbors {
            let _ = self
                .builder
                .add_neighbor(IfaceId(n.iface), n.ip, MacAddr(n.mac));
        }
        self.kernel_routes = routes;
        self.kernel_neighbors = m.neighbors.len();
        let fib = self.builder.build();
        tracing::debug!(
            version = fib.version(),
            routes,
            neighbors = m.neighbors.len(),
            "FIB published"
        );
        self.fib.store(Arc::new(fib));
    }

    /// The FIB's routes for `fastlag ctl show routes`: connected, static and mirrored from
    /// the kernel, with the egress interface by name.
    pub fn routes(&self) -> Vec<serde_json::Value> {
        self.builder
            .routes()
            .into_iter()
            .map(|r| {
                let iface = self
                    .ifaces
                    .get(r.next_hop.iface.0 as usize)
                    .map(|i| i.name.clone());
                serde_json::json!({
                    "prefix": format!("{}/{}", r.prefix, r.len),
                    "origin": match r.origin {
                        None => "connected",
                        Some(Origin::Static) => "static",
                        Some(Origin::Kernel) => "kernel",
                    },
                    "interface": iface,
                    "gateway": r.next_hop.gateway.map(|g| g.to_string()),
                    "active": r.active,
                })
            })
            .collect()
    }

    /// Replaces the static routes with `cfg`'s (hitless reload) and publishes the FIB;
    /// connected, local and kernel-mirrored entries stay. On error nothing changes.
    pub fn replace_static_routes(&mut self, cfg: &Config) -> Result<usize, String> {
        // Resolved before anything changes; what is left (prefix lengths) was validated.
        static_routes(cfg, &self.ifaces)?;
        self.builder.clear_routes(Origin::Static);
        add_static_routes(&mut self.builder, cfg, &self.ifaces)?;
        let fib = self.builder.build();
        tracing::info!(
            version = fib.version(),
            routes = cfg.routes.len(),
            "FIB published with the reloaded static routes"
        );
        self.fib.store(Arc::new(fib));
        Ok(cfg.routes.len())
    }

    /// For the status snapshot.
    pub fn status(&self) -> RouterStatus {
        let (v4, v6) = self.builder.route_count();
        RouterStatus {
            fib_version: self.fib.load().version(),
            routes_v4: v4,
            routes_v6: v6,
            kernel_routes: self.kernel_routes,
            kernel_neighbors: self.kernel_neighbors,
            interfaces: self
                .ifaces
                .iter()
                .enumerate()
                .map(|(n, i)| IfaceStatus {
                    name: i.name.clone(),
                    tap: i.tap.clone(),
                    kernel: self.taps.counters[n],
                })
                .collect(),
        }
    }
}

fn read_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn write_sysctl(key: &str, value: &str) {
    if let Err(e) = std::fs::write(format!("/proc/sys/{key}"), value) {
        tracing::debug!("sysctl {key}={value}: {e}");
    }
}
