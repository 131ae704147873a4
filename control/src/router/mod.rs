//! Router mode's control side: L3 interfaces on ports, bonds and VLANs ([`fib`]), their
//! kernel TAP exception interfaces ([`taps`]), and the FIB kept up to date with the
//! kernel's routes and neighbours on the TAP side (mirrored over rtnetlink), so a routing
//! daemon (BIRD, FRR) or `ip route` there drives the fast path.

pub mod fib;
pub mod taps;

use std::sync::Arc;
use std::time::Duration;

use api::{IfaceStatus, RouteView, RouterStatus};
use arc_swap::ArcSwap;
use conf::Config;
use dataplane::router::{Fib, FibBuilder, IfaceId, NextHop, Origin};
use dpdk::{Burst, MacAddr, PortInfo, TxQueue};
use netlink::{Applied, Kernel, KernelEvent, KernelTables, RouteTarget, Tap as KernelTap};

pub use fib::{fib_builder, interfaces, Device, Iface};
pub use taps::{BondEgress, Egress, Tap, TapService};

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
    /// Reads the links of ports that interfaces sit on, with the kernel interface under
    /// an af_packet/af_xdp PMD (whose carrier the PMD does not report).
    ports: Vec<(PortInfo, Option<String>)>,
    /// Per interface with a TAP: (kernel ifindex, carrier we last set).
    carriers: Vec<(usize, u32, Option<bool>)>,
    next_carrier_check: std::time::Instant,
    /// `[[neighbor]]`s of the config: added after the kernel's, so they win.
    static_neighbors: Vec<(IfaceId, std::net::IpAddr, MacAddr)>,
}

impl RouterControl {
    /// The router's control state; call [`RouterControl::start`] on the control thread.
    pub fn new(
        cfg: &Config,
        ifaces: Vec<Iface>,
        builder: FibBuilder,
        fib: Arc<ArcSwap<Fib>>,
        taps: TapService,
        ports: Vec<(PortInfo, Option<String>)>,
    ) -> Self {
        let static_neighbors = fib::static_neighbors(cfg, &ifaces);
        RouterControl {
            static_neighbors,
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
            Device::Port(p) => {
                let (info, kernel_iface) = &self.ports[p];
                info.link().map(|l| l.up).unwrap_or(false)
                    && kernel_iface
                        .as_deref()
                        .is_none_or(crate::control_thread::kernel_carrier)
            }
            Device::Bond(b) => !self.taps.bonds[b].table.load().distributing.is_empty(),
        }
    }

    /// Tells the FIB which interfaces can send, and publishes it at once when that changed:
    /// ECMP routes skip the hops of an interface that cannot (port link down, bond with no
    /// member distributing) without waiting for the kernel or a routing daemon.
    fn update_liveness(&mut self) {
        let mut changed = false;
        for n in 0..self.ifaces.len() {
            let up = self.can_send(n);
            if self
                .builder
                .set_interface_up(IfaceId(n as u16), up)
                .unwrap_or(false)
            {
                tracing::info!(interface = %self.ifaces[n].name, up, "interface liveness changed: ECMP routes {} its next hops", if up { "use" } else { "skip" });
                changed = true;
            }
        }
        if changed {
            let fib = self.builder.build();
            tracing::debug!(
                version = fib.version(),
                "FIB published with the new interface liveness"
            );
            self.fib.store(Arc::new(fib));
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
        // Nexthop objects first: routes refer to them.
        match (k.nexthops(), k.routes(), k.neighbors()) {
            (Ok(nh), Ok(r), Ok(n)) => {
                self.tables.reset_nexthops(nh);
                self.tables.reset(r, n);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::warn!("dumping kernel nexthops/routes/neighbors failed: {e}")
            }
        }
        self.dirty_since.get_or_insert_with(std::time::Instant::now);
    }

    /// One control-loop iteration: exception path both ways, kernel events, and a FIB
    /// rebuild when changes have waited long enough. Returns how many frames passed
    /// the exception path.
    pub fn poll(&mut self, port_tx: &mut [Option<TxQueue>], burst: &mut Burst) -> usize {
        let moved = self.taps.service(port_tx, burst);
        if std::time::Instant::now() >= self.next_carrier_check {
            self.next_carrier_check = std::time::Instant::now() + Duration::from_millis(10);
            self.update_liveness();
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
        moved
    }

    fn rebuild(&mut self) {
        let m = self.tables.mirror(&self.kernel_taps);
        self.builder.clear_routes(Origin::Kernel);
        self.builder.clear_neighbors(None);
        let mut routes = 0;
        for r in &m.routes {
            // Blackhole and punt entries need route kinds the FIB does not have yet: they
            // are left to the kernel (a punted prefix then follows the FIB's own answer).
            let hops: Vec<(NextHop, u16)> = match &r.target {
                &RouteTarget::Forward { iface, gateway } => vec![(
                    NextHop {
                        iface: IfaceId(iface),
                        gateway,
                    },
                    1,
                )],
                RouteTarget::Multipath(hops) => hops
                    .iter()
                    .map(|h| {
                        (
                            NextHop {
                                iface: IfaceId(h.iface),
                                gateway: h.gateway,
                            },
                            h.weight,
                        )
                    })
                    .collect(),
                RouteTarget::Drop | RouteTarget::Punt => Vec::new(),
            };
            if !hops.is_empty() {
                match self
                    .builder
                    .add_multipath_route(r.dst, r.prefix_len, &hops, Origin::Kernel)
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
        for &(iface, ip, mac) in &self.static_neighbors {
            let _ = self.builder.add_neighbor(iface, ip, mac);
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
    /// the kernel, with the egress interface by name; an ECMP route gives one entry per
    /// next hop, with its weight and state.
    pub fn routes(&self) -> Vec<RouteView> {
        let mut out = Vec::new();
        for r in self.builder.routes() {
            let any_up = r.hops.iter().any(|h| h.up);
            for h in &r.hops {
                out.push(RouteView {
                    prefix: format!("{}/{}", r.prefix, r.len),
                    origin: match r.origin {
                        None => "connected",
                        Some(Origin::Static) => "static",
                        Some(Origin::Kernel) => "kernel",
                    }
                    .to_string(),
                    interface: self
                        .ifaces
                        .get(h.next_hop.iface.0 as usize)
                        .map(|i| i.name.clone()),
                    gateway: h.next_hop.gateway.map(|g| g.to_string()),
                    active: r.active,
                    weight: h.weight,
                    state: match (h.up, any_up) {
                        (true, _) => "up",
                        (false, true) => "skipped",
                        (false, false) => "down",
                    }
                    .to_string(),
                });
            }
        }
        out
    }

    /// Replaces the static routes with `cfg`'s (hitless reload) and publishes the FIB;
    /// connected, local and kernel-mirrored entries stay. On error nothing changes.
    pub fn replace_static_routes(&mut self, cfg: &Config) -> Result<usize, String> {
        // Resolved before anything changes; what is left (prefix lengths) was validated.
        fib::static_routes(cfg, &self.ifaces)?;
        self.builder.clear_routes(Origin::Static);
        fib::add_static_routes(&mut self.builder, cfg, &self.ifaces)?;
        let fib = self.builder.build();
        tracing::info!(
            version = fib.version(),
            routes = cfg.routes.len(),
            "FIB published with the reloaded static routes"
        );
        self.fib.store(Arc::new(fib));
        Ok(cfg.routes.len())
    }

    /// Replaces the static neighbours with `cfg`'s (hitless reload) and publishes the FIB;
    /// the kernel's stay (a static entry removed gives way to the kernel's, if it has one).
    pub fn replace_static_neighbors(&mut self, cfg: &Config) -> usize {
        for &(iface, ip, _) in &self.static_neighbors {
            self.builder.remove_neighbor(iface, ip);
        }
        self.static_neighbors = fib::static_neighbors(cfg, &self.ifaces);
        // The kernel's view comes back with the next rebuild; the static ones go in now.
        for &(iface, ip, mac) in &self.static_neighbors {
            let _ = self.builder.add_neighbor(iface, ip, mac);
        }
        self.dirty_since.get_or_insert_with(std::time::Instant::now);
        let fib = self.builder.build();
        tracing::info!(
            version = fib.version(),
            neighbors = self.static_neighbors.len(),
            "FIB published with the reloaded static neighbours"
        );
        self.fib.store(Arc::new(fib));
        self.static_neighbors.len()
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
