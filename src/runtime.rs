//! Builds the running dataplane from a validated configuration: EAL, the packet pool,
//! ports (PCI, vdev, in-process ring links), pinned workers; and takes it down in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use conf::{Config, Device, Forward, RingEnd};
use dataplane::counters::{PortCounts, WorkerCounters, WorkerCounts};
use dataplane::dpdk::{
    self, DpdkError, Eal, Link, MacAddr, Mempool, Port, PortId, PortSetup, PortStats,
    RxQueue, Started, TxQueue,
};
use dataplane::worker::{self, Forwarding, WorkerError, WorkerSpec};
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
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Result<(Vec<RxQueue>, Vec<TxQueue>), WorkerError>>>,
    counters: Vec<Arc<WorkerCounters>>,
    ports: Vec<RunPort>,
    spare_ports: Vec<Port<Started>>,
    spare_ends: Vec<SpareEnd>,
    pool: Arc<Mempool>,
    tsc_hz: u64,
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
    pub pmd: PmdStats,
    /// Worker counters summed over workers.
    pub workers: WorkerPortStats,
}

/// PMD counters (serializable mirror of [`PortStats`]).
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct PmdStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// RX drops for lack of descriptors.
    pub rx_missed: u64,
    /// RX errors.
    pub rx_errors: u64,
    /// TX errors.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

impl From<PortStats> for PmdStats {
    fn from(s: PortStats) -> Self {
        PmdStats {
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            rx_missed: s.rx_missed,
            rx_errors: s.rx_errors,
            tx_errors: s.tx_errors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

/// Worker-side counters of a port.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct WorkerPortStats {
    /// Received by workers.
    pub rx: u64,
    /// Transmitted by workers.
    pub tx: u64,
    /// Dropped: TX queue full.
    pub drop_tx_full: u64,
    /// Dropped: nowhere to send.
    pub drop_no_egress: u64,
}

impl From<PortCounts> for WorkerPortStats {
    fn from(c: PortCounts) -> Self {
        WorkerPortStats {
            rx: c.rx,
            tx: c.tx,
            drop_tx_full: c.drop_tx_full,
            drop_no_egress: c.drop_no_egress,
        }
    }
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

/// Everything countable, at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Per port.
    pub ports: Vec<PortSnapshot>,
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
    ids.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
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
            Forward::Router => {
                return Err(RuntimeError::Unsupported(
                    "forward.mode = \"router\" is not available in this build yet; use \"xconnect\"".into(),
                ))
            }
        };
        for (a, b) in &xconnect {
            for e in [a, b] {
                if cfg.bond(e).is_some() {
                    return Err(RuntimeError::Unsupported(format!(
                        "forward.pairs uses bond {e:?}, but bonds are not available in this build yet; pair ports"
                    )));
                }
            }
        }

        let args = crate::eal_args::eal_args(cfg, std::process::id(), log);
        tracing::debug!(?args, "EAL arguments");
        let eal = Eal::init(&args)?;
        let tsc_hz = eal.tsc_hz();
        let pool = Arc::new(Mempool::new(&eal, "fl_pkt", dp.mbufs, dp.mbuf_cache, data_room(cfg))?);
        tracing::info!(pool = pool.name(), mbufs = dp.mbufs, cache = dp.mbuf_cache, "packet pool created");

        let workers = dp.worker_cores.len() as u16;
        let mut rt = Runtime {
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
            counters: Vec::new(),
            ports: Vec::new(),
            spare_ports: Vec::new(),
            spare_ends: Vec::new(),
            pool,
            tsc_hz,
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
        // In-process links: create both ends of every link named in the config.
        // (link, end, port id) of every in-process link end; claimed ends are removed.
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
                1024,
            )?;
            ring_ids.push((link.clone(), RingEnd::A, a));
            ring_ids.push((link.clone(), RingEnd::B, b));
        }

        let mut rx_by_port: Vec<Vec<RxQueue>> = Vec::new();
        let mut tx_by_port: Vec<Vec<TxQueue>> = Vec::new();
        for p in &cfg.ports {
            let (id, device) = match &p.device {
                Device::Pci(addr) => {
                    let name = addr.to_string();
                    (dpdk::port_by_name(eal, &name).map_err(|source| RuntimeError::Port {
                        port: p.name.clone(),
                        source,
                    })?, name)
                }
                Device::Vdev { name, spec } => (
                    dpdk::port_by_name(eal, name).map_err(|source| RuntimeError::Port {
                        port: p.name.clone(),
                        source,
                    })?,
                    spec.clone(),
                ),
                Device::Ring { link, end } => {
                    let at = ring_ids
                        .iter()
                        .position(|(l, e, _)| l == link && e == end)
                        .expect("config validation: one port per ring end");
                    (ring_ids.remove(at).2, format!("ring:{link}:{end}"))
                }
            };
            let setup = PortSetup {
                rx_queues: workers,
                tx_queues: workers,
                rx_descriptors: p.rx_descriptors,
                tx_descriptors: p.tx_descriptors,
                mtu: Some(p.mtu),
                pool: self.pool.clone(),
            };
            let ctx = |source| RuntimeError::Port {
                port: p.name.clone(),
                source,
            };
            let (port, rx, tx) = Port::configure(eal, id, &p.name, &setup).map_err(ctx)?;
            if let Some(mac) = p.mac {
                port.set_mac(MacAddr(mac.0)).map_err(ctx)?;
            }
            let port = port.start().map_err(|(_, e)| ctx(e))?;
            let info = port.info();
            let mac = info.mac().map_err(ctx)?;
            let link = info.link().map_err(ctx)?;
            tracing::info!(port = %p.name, device = %device, dpdk_port = id.0, %mac, %link, "port started");
            rx_by_port.push(rx);
            tx_by_port.push(tx);
            self.ports.push(RunPort {
                name: p.name.clone(),
                device,
                port,
            });
        }

        // Ends of in-process links that no port claims: handed to the demo's generator.
        for (link, end, id) in std::mem::take(&mut ring_ids) {
            let peer_end = if end == RingEnd::A { RingEnd::B } else { RingEnd::A };
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
            let mac = port.info().mac()?;
            self.spare_ends.push(SpareEnd {
                link,
                peer,
                rx: rx.pop().expect("one rx queue"),
                tx: tx.pop().expect("one tx queue"),
                mac,
            });
            self.spare_ports.push(port);
        }

        let index_of = |name: &str| cfg.ports.iter().position(|p| p.name == name);
        let mut egress = vec![None; cfg.ports.len()];
        for (a, b) in xconnect {
            let (ia, ib) = (index_of(a).expect("validated"), index_of(b).expect("validated"));
            egress[ia] = Some(ib);
            egress[ib] = Some(ia);
        }

        // Hand queue i of every port to worker i.
        let mut per_worker_rx: Vec<Vec<RxQueue>> = (0..workers).map(|_| Vec::new()).collect();
        let mut per_worker_tx: Vec<Vec<TxQueue>> = (0..workers).map(|_| Vec::new()).collect();
        for (rx, tx) in rx_by_port.into_iter().zip(tx_by_port) {
            for (i, q) in rx.into_iter().enumerate() {
                per_worker_rx[i].push(q);
            }
            for (i, q) in tx.into_iter().enumerate() {
                per_worker_tx[i].push(q);
            }
        }
        for (i, (rx, tx)) in per_worker_rx.into_iter().zip(per_worker_tx).enumerate() {
            let counters = Arc::new(WorkerCounters::new(cfg.ports.len()));
            let spec = WorkerSpec {
                index: i,
                core: cfg.dataplane.worker_cores[i] as usize,
                burst: cfg.dataplane.burst as usize,
                rx,
                tx,
                forwarding: Forwarding::Xconnect {
                    egress: egress.clone(),
                },
                counters: counters.clone(),
            };
            self.counters.push(counters);
            self.workers.push(worker::spawn(spec, self.stop.clone())?);
        }
        Ok(())
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
                    link: info.link().map(|l: Link| l.to_string()).unwrap_or_else(|e| e.to_string()),
                    pmd: info.stats().map(PmdStats::from).unwrap_or_default(),
                    workers: w.into(),
                }
            })
            .collect();
        Snapshot {
            ports,
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
        let mut queues = Vec::new();
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
        let mut burst = dataplane::dpdk::Burst::new();
        for rx in spare_rx.iter_mut() {
            while rx.rx_burst(&mut burst, dataplane::dpdk::MAX_BURST) > 0 {
                burst.clear();
            }
        }
        drop(spare_rx);
        let mut stopped = Vec::new();
        for p in self.ports.drain(..) {
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
            errors.push(format!("{missing} mbufs of pool {} were not returned", pool.name));
        }
        ShutdownReport { stats, pool, errors }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // shutdown() drains workers and ports; a Runtime dropped without it (a panic)
        // still stops the threads before EAL goes away.
        self.stop.store(true, Ordering::SeqCst);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}
