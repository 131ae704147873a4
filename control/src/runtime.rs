//! Builds the running dataplane from a validated configuration: EAL, the packet pool,
//! ports (PCI, vdev, in-process ring links), pinned workers; and takes it down in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use conf::BondMode;
use conf::{Config, Device, Forward, RingEnd};
use dataplane::bond::ETH_P_SLOW;
use dataplane::bond::{shared_down, HashPolicy};
use dataplane::counters::{PortCounts, WorkerCounters, WorkerCounts};
use dataplane::worker::{self, BondPlan, Egress, PortPlan, WorkerError, WorkerQueues, WorkerSpec};
use dpdk::{
    self, DpdkError, Eal, Link, MacAddr, Mempool, Port, PortId, PortSetup, PortStats, RxQueue,
    Started, TxQueue,
};
use dpdk::{device_limits, Consumer, FlowRule, Producer};

use crate::control_loop::{kernel_iface_of, Bond, ControlLoop, Member, SharedStatus, Status};
use crate::eal_args::{control_queue, rx_queues_needed};
use crate::router::{self, Iface, RouterControl, TapService};
use dataplane::router::{DropReason, ExceptionClass, ExceptionPolicer, IfaceId};
use dataplane::router_worker::{IfaceCounters, IfaceDevice, RouterPlan};
use serde::Serialize;

/// Why the dataplane could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A configured core is not available to this process.
    #[error("{what} {core} is not available to this process (allowed CPUs: {allowed}); change {key} in the config")]
    Core {
        /// "control core" / "worker core".
        what: &'static str,
        /// The CPU id.
        core: u32,
        /// CPUs the process may use.
        allowed: String,
        /// Config key to change.
        key: &'static str,
    },
    /// A DPDK operation failed.
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    /// A port-level failure with context.
    #[error("port {port}: {source}")]
    Port {
        /// Port name.
        port: String,
        /// Cause.
        source: DpdkError,
    },
    /// Something configured that this build cannot do yet.
    #[error("{0}")]
    Unsupported(String),
    /// A worker failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// Spawning a thread failed.
    #[error("spawning a thread failed: {0}")]
    Spawn(#[from] std::io::Error),
}

/// A started port.
struct RunPort {
    name: String,
    device: String,
    port: Port<Started>,
    /// rte_flow rule steering slow-protocol frames to the control thread's queue.
    flow: Option<FlowRule>,
}

/// The far end of an in-process link that no configured port claims. `fastlag demo` drives
/// these with its traffic generator; under `run` nothing reads them.
pub struct SpareEnd {
    /// Link name from the config.
    pub link: String,
    /// The near end's port name.
    pub peer: String,
    /// Receive queue 0.
    pub rx: RxQueue,
    /// Transmit queue 0.
    pub tx: TxQueue,
    /// Its MAC address.
    pub mac: MacAddr,
}

/// The running dataplane.
pub struct Runtime {
    /// Set by signal handlers (or a caller) to ask for shutdown; the runtime itself stops
    /// the control thread and the workers in order.
    stop: Arc<AtomicBool>,
    control_stop: Arc<AtomicBool>,
    worker_stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Result<WorkerQueues, WorkerError>>>,
    control: Option<JoinHandle<(Vec<RxQueue>, Vec<TxQueue>)>>,
    counters: Vec<Arc<WorkerCounters>>,
    ports: Vec<RunPort>,
    spare_ports: Vec<Port<Started>>,
    spare_ends: Vec<SpareEnd>,
    pool: Arc<Mempool>,
    tsc_hz: u64,
    status: SharedStatus,
    /// Management API handoff (socket, counters) to the control thread.
    mgmt: Arc<crate::mgmt::Hub>,
    /// Router mode: per worker, per interface counters.
    iface_counters: Vec<Arc<[IfaceCounters]>>,
    /// Router mode: interface names.
    iface_names: Vec<String>,
    /// The config file (for reload).
    config_path: Option<std::path::PathBuf>,
    /// Reload requests to the control thread.
    reload_tx: Option<std::sync::mpsc::Sender<crate::reload::ReloadRequest>>,
    // Dropped last: rte_eal_cleanup.
    eal: Option<Eal>,
}

/// Counters of one port: the PMD's and the workers' summed.
#[derive(Debug, Clone, Serialize)]
pub struct PortSnapshot {
    /// Port name.
    pub name: String,
    /// DPDK device.
    pub device: String,
    /// Link state as text.
    pub link: String,
    /// PMD counters.
    pub pmd: PortStats,
    /// Worker counters summed over workers.
    pub workers: PortCounts,
}

/// Counters of one worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerSnapshot {
    /// Worker number.
    pub index: usize,
    /// Loop iterations.
    pub loops: u64,
    /// Polls that returned packets.
    pub busy_polls: u64,
    /// Polls that returned nothing.
    pub idle_polls: u64,
    /// TSC cycles in busy polls.
    pub busy_cycles: u64,
    /// Packets received.
    pub rx: u64,
    /// Packets transmitted.
    pub tx: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Busy cycles per transmitted packet.
    pub cycles_per_packet: Option<f64>,
}

impl WorkerSnapshot {
    fn new(index: usize, c: &WorkerCounts) -> Self {
        let t = c.total();
        WorkerSnapshot {
            index,
            loops: c.loops,
            busy_polls: c.busy_polls,
            idle_polls: c.idle_polls,
            busy_cycles: c.busy_cycles,
            rx: t.rx,
            tx: t.tx,
            drops: t.drops(),
            cycles_per_packet: c.cycles_per_packet(),
        }
    }
}

/// Router counters of one interface, summed over workers.
#[derive(Debug, Clone, Serialize)]
pub struct IfaceSnapshot {
    /// Interface name.
    pub name: String,
    /// Frames received on it.
    pub rx: u64,
    /// Frames routed out of it.
    pub forwarded: u64,
    /// Frames handed to the kernel, by exception class.
    pub exceptions: std::collections::BTreeMap<&'static str, u64>,
    /// Exception frames the policer dropped, by class.
    pub policed: std::collections::BTreeMap<&'static str, u64>,
    /// Exception frames dropped for a full ring (or no TAP).
    pub exception_ring_full: u64,
    /// Dropped frames, by reason.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    /// Frames that could not leave (no headroom for a VLAN tag, egress bond down).
    pub egress_failed: u64,
}

/// Everything countable, at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Per port.
    pub ports: Vec<PortSnapshot>,
    /// Router mode: per interface.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<IfaceSnapshot>,
    /// Per worker.
    pub workers: Vec<WorkerSnapshot>,
    /// TSC frequency, for converting cycles.
    pub tsc_hz: u64,
}

/// The packet pool after shutdown.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    /// Pool name.
    pub name: String,
    /// Mbufs it was created with.
    pub size: u32,
    /// Mbufs back in it.
    pub available: u32,
}

/// Final state after an orderly stop.
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownReport {
    /// Counters at stop.
    pub stats: Snapshot,
    /// The pool, with every mbuf returned when `available == size`.
    pub pool: PoolReport,
    /// Problems met while stopping (empty when clean).
    pub errors: Vec<String>,
}

impl ShutdownReport {
    /// True when nothing failed and every mbuf came back.
    pub fn clean(&self) -> bool {
        self.errors.is_empty() && self.pool.available == self.pool.size
    }
}

fn describe_cpus(ids: &[usize]) -> String {
    ids.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Bytes of buffer each mbuf needs for the largest configured MTU (Ethernet header, two
/// VLAN tags, FCS room) plus DPDK's headroom; never below DPDK's default.
fn data_room(cfg: &Config) -> u16 {
    let max_mtu = cfg.ports.iter().map(|p| p.mtu as u32).max().unwrap_or(1500);
    let need = max_mtu + 14 + 8 + 4 + dpdk::PKTMBUF_HEADROOM;
    need.max(dpdk::DEFAULT_BUF_SIZE) as u16
}

impl Runtime {
    /// Starts everything `cfg` describes. `log` sets DPDK's log level.
    pub fn start(cfg: &Config, log: tracing::Level) -> Result<Runtime, RuntimeError> {
        Self::start_with_file(cfg, None, log)
    }

    /// As [`Runtime::start`], with the file `cfg` was read from: [`Runtime::reload`]
    /// re-reads it.
    pub fn start_with_file(
        cfg: &Config,
        path: Option<&std::path::Path>,
        log: tracing::Level,
    ) -> Result<Runtime, RuntimeError> {
        // Read the CPUs we may use before EAL narrows this thread to the control core.
        let allowed: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let dp = &cfg.dataplane;
        let check = |core: u32, what, key| {
            if allowed.contains(&(core as usize)) {
                Ok(())
            } else {
                Err(RuntimeError::Core {
                    what,
                    core,
                    allowed: describe_cpus(&allowed),
                    key,
                })
            }
        };
        check(dp.control_core, "control core", "dataplane.control_core")?;
        for &c in &dp.worker_cores {
            check(c, "worker core", "dataplane.worker_cores")?;
        }
        let xconnect = match &cfg.forward {
            Forward::Xconnect { pairs } => pairs.clone(),
            Forward::Router => Vec::new(),
        };

        let args = crate::eal_args::eal_args(cfg, std::process::id(), log);
        tracing::debug!(?args, "EAL arguments");
        let eal = Eal::init(&args)?;
        let tsc_hz = eal.tsc_hz();
        let pool = Arc::new(Mempool::new(
            &eal,
            "fl_pkt",
            dp.mbufs,
            dp.mbuf_cache,
            data_room(cfg),
        )?);
        tracing::info!(
            pool = pool.name(),
            mbufs = dp.mbufs,
            cache = dp.mbuf_cache,
            "packet pool created"
        );

        let workers = dp.worker_cores.len() as u16;
        let mut rt = Runtime {
            stop: Arc::new(AtomicBool::new(false)),
            control_stop: Arc::new(AtomicBool::new(false)),
            worker_stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
            control: None,
            counters: Vec::new(),
            ports: Vec::new(),
            spare_ports: Vec::new(),
            spare_ends: Vec::new(),
            pool,
            tsc_hz,
            status: Arc::new(arc_swap::ArcSwap::from_pointee(Status::default())),
            mgmt: Arc::default(),
            iface_counters: Vec::new(),
            iface_names: Vec::new(),
            config_path: path.map(|p| p.to_path_buf()),
            reload_tx: None,
            eal: None,
        };
        // From here on, an error path still shuts down what was started.
        match rt.build(cfg, &eal, workers, &xconnect) {
            Ok(()) => {
                rt.eal = Some(eal);
                Ok(rt)
            }
            Err(e) => {
                rt.eal = Some(eal);
                let _ = rt.shutdown(Vec::new());
                Err(e)
            }
        }
    }

    fn build(
        &mut self,
        cfg: &Config,
        eal: &Eal,
        workers: u16,
        xconnect: &[(String, String)],
    ) -> Result<(), RuntimeError> {
        let nports = cfg.ports.len();
        // (bond index, is 802.3ad) of every member port.
        let member_of: Vec<Option<(usize, bool)>> = cfg
            .ports
            .iter()
            .map(|p| {
                cfg.bonds
                    .iter()
                    .position(|b| b.has_member(&p.name))
                    .map(|b| (b, cfg.bonds[b].mode == BondMode::Lacp))
            })
            .collect();

        // In-process links: create both ends of every link named in the config, with one
        // queue pair per worker plus one for the control thread.
        let mut ring_ids: Vec<(String, RingEnd, PortId)> = Vec::new();
        let mut links: Vec<String> = Vec::new();
        for p in &cfg.ports {
            if let Device::Ring { link, .. } = &p.device {
                if !links.contains(link) {
                    links.push(link.clone());
                }
            }
        }
        for link in &links {
            let (a, b) = dpdk::ring_link(
                eal,
                &format!("ring_{link}_a"),
                &format!("ring_{link}_b"),
                workers,
                1,
                1024,
            )?;
            ring_ids.push((link.clone(), RingEnd::A, a));
            ring_ids.push((link.clone(), RingEnd::B, b));
        }

        let mut rx_by_port: Vec<Vec<RxQueue>> = Vec::new();
        let mut tx_by_port: Vec<Vec<TxQueue>> = Vec::new();
        let mut control_tx: Vec<Option<TxQueue>> = Vec::new();
        let mut control_rx: Vec<Option<RxQueue>> = Vec::new();
        let mut steered: Vec<bool> = Vec::new();
        let mut macs: Vec<MacAddr> = Vec::new();
        for (pi, p) in cfg.ports.iter().enumerate() {
            let ctx = |source| RuntimeError::Port {
                port: p.name.clone(),
                source,
            };
            let (id, device) = match &p.device {
                Device::Pci(addr) => {
                    let name = addr.to_string();
                    (dpdk::port_by_name(eal, &name).map_err(ctx)?, name)
                }
                Device::Vdev { name, spec } => {
                    (dpdk::port_by_name(eal, name).map_err(ctx)?, spec.clone())
                }
                Device::Ring { link, end } => {
                    let at = ring_ids
                        .iter()
                        .position(|(l, e, _)| l == link && e == end)
                        .expect("config validation: one port per ring end");
                    (ring_ids.remove(at).2, format!("ring:{link}:{end}"))
                }
            };
            let lacp_member = matches!(member_of[pi], Some((_, true)));
            let has_control_queue = control_queue(cfg, p);
            let setup = PortSetup {
                rx_queues: rx_queues_needed(cfg, p),
                // One more TX queue for the control thread (LACPDUs, kernel frames).
                tx_queues: workers + has_control_queue as u16,
                rx_descriptors: p.rx_descriptors,
                tx_descriptors: p.tx_descriptors,
                mtu: Some(p.mtu),
                pool: self.pool.clone(),
            };
            let ((port, mut rx, mut tx), flow) = if lacp_member {
                open_member(eal, id, p, setup).map_err(ctx)?
            } else {
                (open_port(eal, id, p, &setup, false).map_err(ctx)?, None)
            };
            // With a flow rule, queue `workers` receives only slow-protocol frames and
            // belongs to the control thread.
            let slow_rx = if flow.is_some() { rx.pop() } else { None };
            steered.push(flow.is_some());
            control_rx.push(slow_rx);
            let info = port.info();
            let pmd_mac = info.mac().map_err(ctx)?;
            // A kernel interface driven through af_packet/af_xdp stays a kernel netdev: take
            // it away from the kernel's IP stack (in router mode fastlag also uses a MAC of
            // its own there), or the kernel would answer ARP and accept frames to that MAC
            // as well (duplicates).
            let kernel_iface = match &p.device {
                Device::Vdev { spec, .. } => kernel_iface_of(spec),
                _ => None,
            };
            if let Some(iface) = &kernel_iface {
                isolate_kernel_iface(iface);
            }
            let mac = match p.mac {
                Some(m) => MacAddr(m.0),
                // A router interface must not share its MAC with a kernel netdev, or the
                // kernel's stack would take its frames too.
                None if kernel_iface.is_some() && cfg.forward == Forward::Router => {
                    derived_mac(&["port", &p.name, &machine_id()])
                }
                None if pmd_mac != MacAddr([0; 6]) => pmd_mac,
                // Some PMDs (ring) have no address; LACPDUs need a real source.
                None => derived_mac(&["port", &p.name]),
            };
            let link = info.link().map_err(ctx)?;
            tracing::info!(port = %p.name, device = %device, dpdk_port = id.0, %mac, %link, "port started");
            if has_control_queue {
                control_tx.push(tx.pop());
            } else {
                control_tx.push(None);
            }
            macs.push(mac);
            rx_by_port.push(rx);
            tx_by_port.push(tx);
            self.ports.push(RunPort {
                name: p.name.clone(),
                device,
                port,
                flow,
            });
        }

        // Ends of in-process links that no port claims: handed to the demo's generator.
        for (link, end, id) in std::mem::take(&mut ring_ids) {
            let peer_end = if end == RingEnd::A {
                RingEnd::B
            } else {
                RingEnd::A
            };
            let peer = cfg
                .ports
                .iter()
                .find(|p| matches!(&p.device, Device::Ring { link: l, end: e } if *l == link && *e == peer_end))
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let name = format!("ring:{link}:{end}");
            let setup = PortSetup {
                rx_queues: 1,
                tx_queues: 1,
                rx_descriptors: 1024,
                tx_descriptors: 1024,
                mtu: None,
                pool: self.pool.clone(),
            };
            let (port, mut rx, mut tx) = Port::configure(eal, id, &name, &setup)?;
            let port = port.start().map_err(|(_, e)| e)?;
            self.spare_ends.push(SpareEnd {
                link: link.clone(),
                peer,
                rx: rx.pop().expect("one rx queue"),
                tx: tx.pop().expect("one tx queue"),
                mac: derived_mac(&["generator", &link]),
            });
            self.spare_ports.push(port);
        }

        // Forwarding: an xconnect pair joins two endpoints, each a port or a bond.
        let endpoint = |name: &str| -> Egress {
            if let Some(i) = cfg.ports.iter().position(|p| p.name == name) {
                Egress::Port(i)
            } else if let Some(b) = cfg.bonds.iter().position(|b| b.name == name) {
                Egress::Bond(b)
            } else {
                Egress::Drop
            }
        };
        let mut egress = vec![Egress::Drop; nports];
        for (a, b) in xconnect {
            for (from, to) in [(a, b), (b, a)] {
                let to = endpoint(to);
                match endpoint(from) {
                    Egress::Port(i) => egress[i] = to,
                    Egress::Bond(bi) => {
                        for (pi, m) in member_of.iter().enumerate() {
                            if matches!(m, Some((x, _)) if *x == bi) {
                                egress[pi] = to;
                            }
                        }
                    }
                    Egress::Drop => {}
                }
            }
        }
        let tables: Vec<_> = cfg.bonds.iter().map(|_| shared_down(nports)).collect();
        let bond_plans: Vec<BondPlan> = cfg
            .bonds
            .iter()
            .zip(&tables)
            .map(|(b, t)| BondPlan {
                table: t.clone(),
                hash: hash_policy(b.hash),
            })
            .collect();
        let plans: Vec<PortPlan> = (0..nports)
            .map(|i| PortPlan {
                member_of: member_of[i].map(|(b, _)| b),
                divert_slow: matches!(member_of[i], Some((_, true))) && !steered[i],
                egress: egress[i],
            })
            .collect();

        // Control thread -> worker 0, per 802.3ad member: the fallback TX path for LACPDUs.
        let mut control_to_worker: Vec<Option<Consumer>> = (0..nports).map(|_| None).collect();
        let mut via_worker: Vec<Option<Producer>> = (0..nports).map(|_| None).collect();
        // Spare ports (a reload may make them members) get a member's rings from the start.
        let spare: Vec<bool> = cfg
            .ports
            .iter()
            .map(|p| crate::reload::is_spare(cfg, &p.name))
            .collect();
        for (pi, m) in member_of.iter().enumerate() {
            if matches!(m, Some((_, true))) || spare[pi] {
                let (tx, rx) = dpdk::mbuf_ring(eal, 64)?;
                via_worker[pi] = Some(tx);
                control_to_worker[pi] = Some(rx);
            }
        }

        // Slow-protocol rings: one per (worker, 802.3ad member), so the ring names the port.
        let mut producers: Vec<Vec<Option<Producer>>> = (0..workers)
            .map(|_| (0..nports).map(|_| None).collect())
            .collect();
        let mut consumers: Vec<Vec<Consumer>> = (0..nports).map(|_| Vec::new()).collect();
        for (pi, plan) in plans.iter().enumerate() {
            if plan.divert_slow || spare[pi] {
                for w in producers.iter_mut() {
                    let (tx, rx) = dpdk::mbuf_ring(eal, 1024)?;
                    w[pi] = Some(tx);
                    consumers[pi].push(rx);
                }
            }
        }

        // Control plane: the LACP engine with every 802.3ad bond, static bonds by link.
        let mut engine = lacp::Engine::new();
        let mut members = Vec::new();
        let mut bonds = Vec::new();
        let epoch = std::time::Instant::now();
        for (bi, b) in cfg.bonds.iter().enumerate() {
            let lacp_bond = match &b.lacp {
                Some(l) => {
                    let bc = lacp_bond_config(b);
                    let system_mac = bc.system.mac.0;
                    let id = engine
                        .add_bond(bc)
                        .map_err(|e| RuntimeError::Unsupported(format!("bond {}: {e}", b.name)))?;
                    tracing::info!(bond = %b.name, system = %lacp::MacAddr(system_mac), priority = l.system_priority, key = l.key, "LACP bond");
                    Some(id)
                }
                None => None,
            };
            let mut idx = Vec::new();
            for m in &b.members {
                let pi = cfg
                    .ports
                    .iter()
                    .position(|p| p.name == m.port)
                    .expect("validated member");
                let lacp =
                    match lacp_bond {
                        Some(bond_id) => {
                            let mut pc = lacp::PortConfig::new(
                                m.port.clone(),
                                lacp::MacAddr(macs[pi].0),
                                m.lacp_port_number,
                            );
                            pc.port_priority = m.lacp_port_priority;
                            Some(engine.add_port(bond_id, pc, lacp::Instant::ZERO).map_err(
                                |e| {
                                    RuntimeError::Unsupported(format!(
                                        "bond {} member {}: {e}",
                                        b.name, m.port
                                    ))
                                },
                            )?)
                        }
                        None => None,
                    };
                let p = &cfg.ports[pi];
                idx.push(members.len());
                let mut member = Member::new(
                    pi,
                    p.name.clone(),
                    bi,
                    self.ports[pi].port.info(),
                    std::mem::take(&mut consumers[pi]),
                    lacp,
                    p.speed_mbps,
                    p.duplex,
                );
                if let Device::Vdev { spec, .. } = &p.device {
                    member.kernel_iface = kernel_iface_of(spec);
                }
                member.slow_rx = control_rx[pi].take();
                member.via_worker = via_worker[pi].take();
                members.push(member);
            }
            let first = cfg
                .ports
                .iter()
                .position(|p| b.members.first().is_some_and(|m| m.port == p.name));
            let bond_mac = b
                .mac
                .map(|m| MacAddr(m.0))
                .or_else(|| first.map(|i| macs[i]))
                .unwrap_or_default();
            tracing::info!(bond = %b.name, mode = %b.mode.as_str(), mac = %bond_mac, "bond");
            bonds.push(Bond::new(
                b.name.clone(),
                b.mode,
                idx,
                tables[bi].clone(),
                lacp_bond,
                b.min_links,
                bond_mac,
                nports,
            ));
        }
        // Router mode: interfaces, their TAPs, the FIB, and each worker's view of them.
        let mut router_plans: Vec<Option<RouterPlan>> = (0..workers).map(|_| None).collect();
        let mut router_control = None;
        if cfg.forward == Forward::Router {
            let bond_macs: Vec<MacAddr> = bonds.iter().map(|b| b.mac).collect();
            let ifaces = router::interfaces(cfg, &macs, &bond_macs);
            let (control, plans) =
                self.build_router(eal, cfg, ifaces, &member_of, &tables, workers)?;
            router_control = Some(control);
            router_plans = plans.into_iter().map(Some).collect();
        }

        let shared_plans = worker::shared_plans(plans.clone());
        let spares = (0..nports)
            .map(|pi| {
                spare[pi].then(|| crate::reload::SparePort {
                    info: self.ports[pi].port.info(),
                    slow: std::mem::take(&mut consumers[pi]),
                    via_worker: via_worker[pi].take(),
                    slow_rx: None,
                    left_as: None,
                })
            })
            .collect();
        if !bonds.is_empty() || router_control.is_some() {
            let ops = crate::mgmt::Ops::new(
                self.mgmt.clone(),
                epoch,
                bonds.len(),
                members.len(),
                cfg.bonds
                    .iter()
                    .map(|b| b.hash.as_str().to_string())
                    .collect(),
            );
            let (reload_tx, reload_rx) = std::sync::mpsc::channel();
            self.reload_tx = Some(reload_tx);
            let control = ControlLoop {
                engine,
                members,
                bonds,
                router: router_control,
                port_tx: std::mem::take(&mut control_tx),
                pool: self.pool.clone(),
                epoch,
                port_names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
                status: self.status.clone(),
                ops,
                reloader: crate::reload::Reloader {
                    path: self.config_path.clone(),
                    running: cfg.clone(),
                    spares,
                    plans: shared_plans.clone(),
                    requests: Some(reload_rx),
                    macs: macs.clone(),
                    leaving: Vec::new(),
                },
            };
            let core = cfg.dataplane.control_core as usize;
            let stop = self.control_stop.clone();
            self.control = Some(
                std::thread::Builder::new()
                    .name("fl-control".into())
                    .spawn(move || control.run(core, &stop))?,
            );
        }

        // Hand queue i of every port to worker i.
        // Queue q of a port goes to worker q; queues beyond the workers (af_packet opens one
        // socket per queue pair and the kernel spreads frames over all) are shared out.
        let mut per_worker_rx: Vec<Vec<(usize, RxQueue)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut per_worker_tx: Vec<Vec<TxQueue>> = (0..workers).map(|_| Vec::new()).collect();
        for (pi, (rx, tx)) in rx_by_port.into_iter().zip(tx_by_port).enumerate() {
            for (i, q) in rx.into_iter().enumerate() {
                per_worker_rx[i % workers as usize].push((pi, q));
            }
            for (i, q) in tx.into_iter().enumerate() {
                per_worker_tx[i].push(q);
            }
        }
        for (i, ((rx, tx), slow)) in per_worker_rx
            .into_iter()
            .zip(per_worker_tx)
            .zip(producers)
            .enumerate()
        {
            let counters = Arc::new(WorkerCounters::new(nports));
            let spec = WorkerSpec {
                index: i,
                core: cfg.dataplane.worker_cores[i] as usize,
                burst: cfg.dataplane.burst as usize,
                rx,
                tx,
                ports: shared_plans.clone(),
                bonds: bond_plans.clone(),
                slow,
                router: router_plans[i].take(),
                control_tx: if i == 0 {
                    std::mem::take(&mut control_to_worker)
                } else {
                    (0..nports).map(|_| None).collect()
                },
                counters: counters.clone(),
            };
            self.counters.push(counters);
            self.workers
                .push(worker::spawn(spec, self.worker_stop.clone())?);
        }
        Ok(())
    }

    /// Router mode: opens a TAP per interface that has one, builds the FIB from the
    /// config, the exception rings (one per worker and interface) and every worker's plan.
    fn build_router(
        &mut self,
        eal: &Eal,
        cfg: &Config,
        ifaces: Vec<Iface>,
        member_of: &[Option<(usize, bool)>],
        tables: &[dataplane::bond::SharedTable],
        workers: u16,
    ) -> Result<(RouterControl, Vec<RouterPlan>), RuntimeError> {
        let nports = cfg.ports.len();
        let mut builder = router::fib_builder(cfg, &ifaces).map_err(RuntimeError::Unsupported)?;
        let fib = Arc::new(arc_swap::ArcSwap::from_pointee(builder.build()));

        let mut taps = Vec::new();
        for (n, i) in ifaces.iter().enumerate() {
            if i.tap.is_none() {
                continue;
            }
            let name = router::tap_port_name(n);
            let ctx = |source| RuntimeError::Port {
                port: format!("{} (TAP of {})", name, i.name),
                source,
            };
            let id = dpdk::port_by_name(eal, &name).map_err(ctx)?;
            let setup = PortSetup {
                rx_queues: 1,
                tx_queues: 1,
                rx_descriptors: 512,
                tx_descriptors: 512,
                mtu: Some(i.mtu),
                pool: self.pool.clone(),
            };
            let (port, mut rx, mut tx) = Port::configure(eal, id, &name, &setup).map_err(ctx)?;
            // The kernel answers ARP/ND with the TAP's MAC: it must be the interface's.
            if let Err(e) = port.set_mac(i.mac) {
                tracing::warn!(interface = %i.name, "cannot give the TAP the interface MAC {}: {e}", i.mac);
            }
            let port = port.start().map_err(|(_, e)| ctx(e))?;
            taps.push(router::Tap {
                iface: n,
                rx: rx.pop().expect("one rx queue"),
                tx: tx.pop().expect("one tx queue"),
            });
            self.spare_ports.push(port);
        }

        let mut from_workers: Vec<Vec<Consumer>> = ifaces.iter().map(|_| Vec::new()).collect();
        let mut to_control: Vec<Vec<Option<Producer>>> = (0..workers)
            .map(|_| ifaces.iter().map(|_| None).collect())
            .collect();
        for w in to_control.iter_mut() {
            for (n, i) in ifaces.iter().enumerate() {
                if i.tap.is_some() {
                    let (tx, rx) = dpdk::mbuf_ring(eal, 1024)?;
                    w[n] = Some(tx);
                    from_workers[n].push(rx);
                }
            }
        }

        // A port receives for the interfaces on its device: itself, or its bond.
        let device_of = |pi: usize| match member_of[pi] {
            Some((b, _)) => router::Device::Bond(b),
            None => router::Device::Port(pi),
        };
        let ingress: Vec<Vec<(Option<u16>, IfaceId)>> = (0..nports)
            .map(|pi| {
                ifaces
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.device == device_of(pi))
                    .map(|(n, i)| (i.vlan, IfaceId(n as u16)))
                    .collect()
            })
            .collect();
        let egress: Vec<IfaceDevice> = ifaces
            .iter()
            .map(|i| match i.device {
                router::Device::Port(p) => IfaceDevice::Port(p),
                router::Device::Bond(b) => IfaceDevice::Bond(b),
            })
            .collect();
        let mut plans = Vec::new();
        for exceptions in to_control {
            let counters: Arc<[IfaceCounters]> = (0..ifaces.len())
                .map(|_| IfaceCounters::default())
                .collect();
            self.iface_counters.push(counters.clone());
            plans.push(RouterPlan {
                fib: fib.clone(),
                ingress: ingress.clone(),
                egress: egress.clone(),
                exceptions,
                policers: (0..ifaces.len())
                    .map(|_| ExceptionPolicer::with_defaults(self.tsc_hz))
                    .collect(),
                counters,
            });
        }
        self.iface_names = ifaces.iter().map(|i| i.name.clone()).collect();
        let service = TapService {
            taps,
            from_workers,
            egress: ifaces
                .iter()
                .map(|i| router::Egress {
                    device: i.device,
                    vlan: i.vlan,
                })
                .collect(),
            bonds: cfg
                .bonds
                .iter()
                .zip(tables)
                .map(|(b, t)| router::BondEgress {
                    table: t.clone(),
                    hash: hash_policy(b.hash),
                })
                .collect(),
            counters: vec![router::ExceptionCounters::default(); ifaces.len()],
        };
        for i in &ifaces {
            tracing::info!(
                interface = %i.name,
                vlan = ?i.vlan,
                mac = %i.mac,
                tap = ?i.tap,
                addresses = ?i.addresses,
                "L3 interface"
            );
        }
        let ports = self.ports.iter().map(|p| p.port.info()).collect();
        Ok((
            RouterControl::new(ifaces, builder, fib, service, ports),
            plans,
        ))
    }

    /// Asks the control thread to reload the config file (see `crate::reload`); the result
    /// arrives on the returned channel. `None`: nothing to reload (no control thread).
    pub fn reload(
        &self,
    ) -> Option<
        std::sync::mpsc::Receiver<Result<crate::reload::ReloadSummary, crate::reload::ReloadError>>,
    > {
        let tx = self.reload_tx.as_ref()?;
        let (reply, rx) = std::sync::mpsc::channel();
        tx.send(crate::reload::ReloadRequest { reply }).ok()?;
        Some(rx)
    }

    /// The flag that stops the workers (signal handlers set it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Takes the unclaimed ends of in-process links (for a traffic generator). Their
    /// queues must be dropped before [`Runtime::shutdown`].
    pub fn take_spare_ends(&mut self) -> Vec<SpareEnd> {
        std::mem::take(&mut self.spare_ends)
    }

    /// The management API's handoff point: give it the bound socket, feed it counters.
    /// Returns `None` when there is no control thread to serve it (no bond, no router).
    pub fn management(&self) -> Option<&Arc<crate::mgmt::Hub>> {
        self.control.is_some().then_some(&self.mgmt)
    }

    /// The control thread's latest status (bonds, members, LACP state).
    pub fn status(&self) -> Arc<Status> {
        self.status.load_full()
    }

    /// Forces a port's link up or down (where the PMD supports it; used by the demo to
    /// fail an in-process link).
    pub fn set_link(&self, port: &str, up: bool) -> Result<(), RuntimeError> {
        let p = self
            .ports
            .iter()
            .find(|p| p.name == port)
            .ok_or_else(|| RuntimeError::Unsupported(format!("no port {port}")))?;
        p.port
            .info()
            .set_link(up)
            .map_err(|source| RuntimeError::Port {
                port: port.to_string(),
                source,
            })
    }

    /// The packet pool.
    pub fn pool(&self) -> &Arc<Mempool> {
        &self.pool
    }

    /// Reads every counter (safe while workers run).
    pub fn snapshot(&self) -> Snapshot {
        let worker_counts: Vec<WorkerCounts> = self.counters.iter().map(|c| c.snapshot()).collect();
        let ports = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let info = p.port.info();
                let mut w = PortCounts::default();
                for wc in &worker_counts {
                    w += wc.ports[i];
                }
                PortSnapshot {
                    name: p.name.clone(),
                    device: p.device.clone(),
                    link: info
                        .link()
                        .map(|l: Link| l.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                    pmd: info.stats().unwrap_or_default(),
                    workers: w,
                }
            })
            .collect();
        let interfaces =
            self.iface_names
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    let sum = |f: &dyn Fn(&IfaceCounters) -> u64| -> u64 {
                        self.iface_counters.iter().map(|w| f(&w[n])).sum()
                    };
                    let by = |f: &dyn Fn(&IfaceCounters, usize) -> u64,
                          names: &mut dyn Iterator<Item = (usize, &'static str)>| {
                    names
                        .map(|(k, name)| (name, sum(&|c| f(c, k))))
                        .filter(|(_, v)| *v > 0)
                        .collect()
                };
                    IfaceSnapshot {
                        name: name.clone(),
                        rx: sum(&|c| c.rx.get()),
                        forwarded: sum(&|c| c.forwarded.get()),
                        exceptions: by(
                            &|c, k| c.exceptions[k].get(),
                            &mut ExceptionClass::ALL.iter().map(|c| (c.index(), c.as_str())),
                        ),
                        policed: by(
                            &|c, k| c.policed[k].get(),
                            &mut ExceptionClass::ALL.iter().map(|c| (c.index(), c.as_str())),
                        ),
                        exception_ring_full: sum(&|c| c.exception_ring_full.get()),
                        drops: by(
                            &|c, k| c.drops[k].get(),
                            &mut DropReason::ALL.iter().map(|r| (r.index(), r.as_str())),
                        ),
                        egress_failed: sum(&|c| c.egress_failed.get()),
                    }
                })
                .collect();
        Snapshot {
            ports,
            interfaces,
            workers: worker_counts
                .iter()
                .enumerate()
                .map(|(i, c)| WorkerSnapshot::new(i, c))
                .collect(),
            tsc_hz: self.tsc_hz,
        }
    }

    /// Orderly stop: workers drain and exit, ports stop and close, the pool is checked.
    /// `returned` are the queues of spare link ends taken with
    /// [`Runtime::take_spare_ends`]: frames still in flight towards them are freed here.
    pub fn shutdown(mut self, returned: Vec<(RxQueue, TxQueue)>) -> ShutdownReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut errors = Vec::new();
        let mut queues: Vec<WorkerQueues> = Vec::new();
        // The control thread goes first: its members send their final out-of-sync LACPDUs
        // while the workers still carry traffic, so partners move it away at once.
        self.control_stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.control.take() {
            match h.join() {
                Ok(q) => queues.push(q),
                Err(_) => errors.push("control thread panicked".to_string()),
            }
        }
        self.worker_stop.store(true, Ordering::SeqCst);
        for (i, h) in self.workers.drain(..).enumerate() {
            match h.join() {
                Ok(Ok(q)) => queues.push(q),
                Ok(Err(e)) => errors.push(e.to_string()),
                Err(_) => errors.push(format!("worker {i} panicked")),
            }
        }
        let stats = self.snapshot();
        // Workers are gone: nothing forwards any more, so what sits in the far ends of
        // in-process links can be freed for good.
        let mut spare_rx: Vec<RxQueue> = returned.into_iter().map(|(rx, _)| rx).collect();
        spare_rx.extend(self.spare_ends.drain(..).map(|s| s.rx));
        // In-process links hold frames sent after their receiver stopped (final LACPDUs):
        // sweep every queue once more.
        for (rx, _) in queues.iter_mut() {
            spare_rx.append(rx);
        }
        let mut burst = dpdk::Burst::new();
        for rx in spare_rx.iter_mut() {
            while rx.rx_burst(&mut burst, dpdk::MAX_BURST) > 0 {
                burst.clear();
            }
        }
        drop(spare_rx);
        let mut stopped = Vec::new();
        for mut p in self.ports.drain(..) {
            if let Some(f) = p.flow.take() {
                if let Err(e) = f.destroy() {
                    errors.push(format!("port {}: {e}", p.name));
                }
            }
            match p.port.stop() {
                Ok(s) => stopped.push((p.name, s)),
                Err((_, e)) => errors.push(format!("port {}: {e}", p.name)),
            }
        }
        for p in self.spare_ports.drain(..) {
            let name = p.name().to_string();
            match p.stop() {
                Ok(s) => stopped.push((name, s)),
                Err((_, e)) => errors.push(format!("port {name}: {e}")),
            }
        }
        // Workers handed their queues back; release them so the ports can close.
        drop(queues);
        for (name, p) in stopped {
            if let Err((_, e)) = p.close() {
                errors.push(format!("port {name}: {e}"));
            }
        }
        let pool = PoolReport {
            name: self.pool.name().to_string(),
            size: self.pool.size(),
            available: self.pool.available(),
        };
        if pool.available == pool.size {
            tracing::info!(pool = %pool.name, mbufs = pool.size, "every mbuf is back in the pool");
        } else {
            let missing = pool.size - pool.available;
            tracing::error!(pool = %pool.name, missing, "mbufs missing from the pool at shutdown");
            errors.push(format!(
                "{missing} mbufs of pool {} were not returned",
                pool.name
            ));
        }
        ShutdownReport {
            stats,
            pool,
            errors,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // shutdown() drains workers and ports; a Runtime dropped without it (a panic)
        // still stops the threads before EAL goes away.
        self.stop.store(true, Ordering::SeqCst);
        self.control_stop.store(true, Ordering::SeqCst);
        self.worker_stop.store(true, Ordering::SeqCst);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        if let Some(h) = self.control.take() {
            let _ = h.join();
        }
    }
}

/// A started port with its queue handles.
type StartedPort = (Port<Started>, Vec<RxQueue>, Vec<TxQueue>);

fn hash_policy(h: conf::HashPolicy) -> HashPolicy {
    match h {
        conf::HashPolicy::Layer2 => HashPolicy::Layer2,
        conf::HashPolicy::Layer23 => HashPolicy::Layer23,
        conf::HashPolicy::Layer34 => HashPolicy::Layer34,
    }
}

/// Configures and starts a port: MAC override, promiscuous mode (xconnect is a bump in the
/// wire), all-multicast as the fallback for LACP members (they must hear 01:80:c2:00:00:02).
fn open_port(
    eal: &Eal,
    id: PortId,
    p: &conf::Port,
    setup: &PortSetup,
    lacp_member: bool,
) -> Result<StartedPort, DpdkError> {
    let (port, rx, tx) = Port::configure(eal, id, &p.name, setup)?;
    if let Some(mac) = p.mac {
        if let Err(e) = port.set_mac(MacAddr(mac.0)) {
            tracing::warn!(port = %p.name, "the PMD refused MAC {}: {e}; using it for LACP anyway", MacAddr(mac.0));
        }
    }
    if let Err(e) = port.set_promiscuous(true) {
        if lacp_member {
            if let Err(e2) = port.set_allmulticast(true) {
                tracing::warn!(port = %p.name, "the PMD refuses promiscuous ({e}) and all-multicast ({e2}) mode: LACPDUs (01:80:c2:00:00:02) may never arrive");
            }
        } else {
            tracing::warn!(port = %p.name, "the PMD refuses promiscuous mode ({e}); a device that filters by MAC will drop frames for other addresses");
        }
    }
    let port = port.start().map_err(|(_, e)| e)?;
    Ok((port, rx, tx))
}

/// An 802.3ad member: where the PMD can steer EtherType 0x8809 to a queue of its own
/// (rte_flow), that extra RX queue is the control thread's and the workers never see LACP
/// frames; otherwise the workers divert them through rings. Either way the result works;
/// the log says which path each member uses.
fn open_member(
    eal: &Eal,
    id: PortId,
    p: &conf::Port,
    mut setup: PortSetup,
) -> Result<(StartedPort, Option<FlowRule>), DpdkError> {
    // The dedicated queue comes after the ones the workers poll.
    let base = setup.rx_queues;
    let capable = device_limits(id).is_ok_and(|l| l.max_rx_queues > base);
    if capable {
        setup.rx_queues = base + 1;
        let (port, rx, tx) = Port::configure(eal, id, &p.name, &setup)?;
        match port.validate_ethertype_steering(ETH_P_SLOW, base) {
            Ok(()) => {
                drop((rx, tx));
                let (port, rx, tx) = open_port(eal, id, p, &setup, true)?;
                let steer = if base > 1 {
                    port.restrict_rss(base)
                } else {
                    Ok(())
                }
                .and_then(|()| port.steer_ethertype(ETH_P_SLOW, base));
                match steer {
                    Ok(flow) => {
                        tracing::info!(port = %p.name, queue = base, "slow-protocol frames steered to the control thread's queue (rte_flow)");
                        return Ok(((port, rx, tx), Some(flow)));
                    }
                    Err(e) => {
                        tracing::info!(port = %p.name, "rte_flow steering failed ({e}); the workers divert slow-protocol frames");
                        drop((rx, tx));
                        port.stop().map_err(|(_, e)| e)?;
                    }
                }
            }
            Err(e) => {
                tracing::info!(port = %p.name, "the workers divert slow-protocol frames (the PMD cannot steer them: {e})");
                drop((rx, tx, port));
            }
        }
        setup.rx_queues = base;
    } else {
        tracing::info!(port = %p.name, "the workers divert slow-protocol frames (no spare RX queue for a dedicated one)");
    }
    Ok((open_port(eal, id, p, &setup, true)?, None))
}

/// The LACP engine's view of an 802.3ad bond's configuration (also used by reload to see
/// what changed). Call only for bonds with `lacp` set.
pub(crate) fn lacp_bond_config(b: &conf::Bond) -> lacp::BondConfig {
    let l = b
        .lacp
        .clone()
        .unwrap_or_else(|| panic!("bond {} has no LACP settings", b.name));
    let system_mac = l
        .system_id
        .map(|m| m.0)
        .unwrap_or_else(|| derived_mac(&["system", &machine_id(), &b.name]).0);
    let mut bc = lacp::BondConfig::new(b.name.clone(), lacp::MacAddr(system_mac), l.key);
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

/// Keeps the kernel's IP stack off a netdev that fastlag drives through af_packet/af_xdp:
/// no ARP replies, no IPv6, no forwarding of what arrives there. (The PMD keeps it up and
/// promiscuous.) Failures are logged: the data path works without it, with duplicates.
fn isolate_kernel_iface(iface: &str) {
    for (key, value) in [
        (format!("net/ipv4/conf/{iface}/arp_ignore"), "8"),
        (format!("net/ipv4/conf/{iface}/forwarding"), "0"),
        (format!("net/ipv6/conf/{iface}/disable_ipv6"), "1"),
    ] {
        if let Err(e) = std::fs::write(format!("/proc/sys/{key}"), value) {
            tracing::warn!(
                interface = iface,
                "sysctl {key}={value} failed ({e}): the kernel may also answer on it"
            );
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
