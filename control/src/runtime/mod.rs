//! Applies a [`Plan`] to the machine in named steps — EAL, the packet pool, in-process
//! links, ports, spare link ends, rings, the LACP engine with its members, the router, the
//! control thread, pinned workers — and takes it all down in order.

mod memory;
mod ports;
mod router;
mod wiring;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use dataplane::counters::{PortCounts, WorkerCounters, WorkerCounts};
use dataplane::router::{DropReason, ExceptionClass};
use dataplane::worker::router::IfaceCounters;
use dataplane::worker::{WorkerError, WorkerQueues};
use dpdk::{DpdkError, Eal, FlowRule, Link, MacAddr, Mempool, Port, RxQueue, Started, TxQueue};

use crate::control_thread::{ReloadError, ReloadRequest, RestartFlags};
use crate::mgmt::Hub;
use crate::plan::{Host, Plan};
use crate::status::{
    self as st, IfaceSnapshot, PoolReport, PortSnapshot, SharedStatus, ShutdownReport, Snapshot,
    Status,
};

/// Why the dataplane could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A configured core is not available to this process.
    #[error("{what} {core} is not available to this process (allowed CPUs: {allowed}); change {key} in the config")]
    Core {
        /// "control core" / "worker core".
        what: &'static str,
        /// The CPU id.
        core: usize,
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
    /// `dataplane.memory_mb` is more than this machine can give now.
    #[error("dataplane.memory_mb = {requested} MiB is more than this machine can give: {available} MiB ({from}); {hint}")]
    Memory {
        /// MiB asked for.
        requested: u32,
        /// MiB there are.
        available: u64,
        /// Where `available` was read.
        from: String,
        /// What to change.
        hint: &'static str,
    },
    /// The packet pool could not be created (check-config's memory estimate was passed, so
    /// the PMDs or EAL took more than it counts).
    #[error("creating the packet pool of {mbufs} mbufs in dataplane.memory_mb = {memory_mb} MiB failed: {source}; raise dataplane.memory_mb or lower dataplane.mbufs")]
    Pool {
        /// Mbufs asked for.
        mbufs: u32,
        /// EAL's memory.
        memory_mb: u32,
        /// Cause.
        source: DpdkError,
    },
    /// A TAP fastlag would create has the name of an existing kernel interface.
    #[error("{key}: a kernel interface named {name:?} already exists in this network namespace; the TAP of interface {interface} needs a name of its own: set tap_name to an unused name (at most 15 bytes)")]
    TapName {
        /// The TAP's name.
        name: String,
        /// The `[[interface]]` it belongs to.
        interface: String,
        /// Config key to change.
        key: String,
    },
    /// The stop flag was set (SIGTERM, SIGINT) while starting: what had started is stopped
    /// again and nothing forwards.
    #[error("stop requested during start-up")]
    Interrupted,
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
    mgmt: Arc<Hub>,
    /// Router mode: per worker, per interface counters.
    iface_counters: Vec<Arc<[IfaceCounters]>>,
    /// Router mode: interface names.
    iface_names: Vec<String>,
    /// Router mode: the FIB the workers use (it names the ECMP hops the workers count).
    router_fib: Option<Arc<arc_swap::ArcSwap<dataplane::router::Fib>>>,
    /// The config file (for reload).
    config_path: Option<std::path::PathBuf>,
    /// Reload requests to the control thread.
    reload_tx: Option<std::sync::mpsc::Sender<ReloadRequest>>,
    /// Benchmarks: (port index, injector) to inject frames into a link.
    injectors: Vec<(usize, Injector)>,
    /// DPDK's EAL (process-static).
    eal: &'static Eal,
    /// Planned restart: asked for (`ctl restart`), under way.
    restart: Arc<RestartFlags>,
}

/// A benchmark's way into an in-process link ([`Plan::for_bench`]).
enum Injector {
    /// A TX queue of the port's own.
    Queue(TxQueue),
    /// A ring to worker 0, which sends what it finds there on its own TX queue of the
    /// port (as it sends LACPDUs the control thread hands it).
    Worker(dpdk::Producer),
}

fn describe_cpus(ids: &[usize]) -> String {
    ids.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Step: the plan's cores must be ones this process may use. Read before EAL narrows this
/// thread to the control core.
fn check_cores(plan: &Plan) -> Result<(), RuntimeError> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let check = |core: usize, what, key| {
        if allowed.contains(&core) {
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
    check(plan.control_core, "control core", "dataplane.control_core")?;
    for &c in &plan.worker_cores {
        check(c, "worker core", "dataplane.worker_cores")?;
    }
    Ok(())
}

/// Step: TAPs must not take the name of an interface the kernel already has (the TAP PMD
/// would attach to it or fail deep in EAL's device probe).
fn check_tap_names(plan: &Plan) -> Vec<RuntimeError> {
    if !plan.router {
        return Vec::new();
    }
    // /proc/self/net/dev lists the interfaces of this process's network namespace.
    let existing: Vec<String> = std::fs::read_to_string("/proc/self/net/dev")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect();
    plan.config
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| i.tap && existing.contains(&i.tap_name))
        .map(|(n, i)| RuntimeError::TapName {
            name: i.tap_name.clone(),
            interface: i.name.clone(),
            key: format!("interface[{n}].tap_name"),
        })
        .collect()
}

/// The checks that depend on the machine and the moment, not on the file: the configured
/// CPUs are ones this process may use, the memory is there (free hugepages, or
/// MemAvailable within the cgroup limit), the TAP names are free. `fastlag run` refuses to
/// start on the first problem; `fastlag check-config` reports them as notes about the host
/// it runs on (the file may be meant for another).
pub fn host_checks(plan: &Plan) -> Vec<RuntimeError> {
    let mut problems = Vec::new();
    problems.extend(check_cores(plan).err());
    problems.extend(
        memory::check(
            plan.config.dataplane.memory_mb,
            plan.config.dataplane.hugepages,
        )
        .err(),
    );
    problems.extend(check_tap_names(plan));
    problems
}

impl Runtime {
    /// Plans `cfg` for this machine and starts it. `log` sets DPDK's log level.
    pub fn start(cfg: &conf::Config, log: tracing::Level) -> Result<Runtime, RuntimeError> {
        Self::start_with_file(cfg, None, log)
    }

    /// As [`Runtime::start`], with the file `cfg` was read from: [`Runtime::reload`]
    /// re-reads it.
    pub fn start_with_file(
        cfg: &conf::Config,
        path: Option<&std::path::Path>,
        log: tracing::Level,
    ) -> Result<Runtime, RuntimeError> {
        Self::start_plan(Plan::new(cfg, &Host::current(log)), path)
    }

    /// Applies `plan`; `path` is the config file to reload from.
    pub fn start_plan(plan: Plan, path: Option<&std::path::Path>) -> Result<Runtime, RuntimeError> {
        Self::start_plan_until(plan, path, Arc::new(AtomicBool::new(false)))
    }

    /// As [`Runtime::start_plan`], with the stop flag the caller's signal handlers already
    /// set: once it is set, start-up stops between steps, undoes what it started and
    /// returns [`RuntimeError::Interrupted`]; afterwards it is [`Runtime::stop_flag`].
    pub fn start_plan_until(
        plan: Plan,
        path: Option<&std::path::Path>,
        stop: Arc<AtomicBool>,
    ) -> Result<Runtime, RuntimeError> {
        if let Some(problem) = host_checks(&plan).into_iter().next() {
            return Err(problem);
        }
        if stop.load(Ordering::SeqCst) {
            return Err(RuntimeError::Interrupted);
        }
        tracing::debug!(args = ?plan.eal_args, "EAL arguments");
        if let Some((built, running)) = dpdk::version_mismatch() {
            tracing::warn!(
                built,
                running = %running,
                "fastlag was built against another DPDK release than the one loaded"
            );
        }
        // Runtime directories of fastlag processes that are gone (default prefixes
        // `fastlag-<pid>`): EAL leaves one per run; keep the directory from filling up.
        let stale = dpdk::remove_stale_runtime_dirs(&dpdk::runtime_base(), "fastlag");
        if stale > 0 {
            tracing::info!(
                removed = stale,
                dir = %dpdk::runtime_base().display(),
                "removed empty DPDK runtime directories of fastlag processes that are gone"
            );
        }
        let eal = Eal::init(&plan.eal_args)?;
        let tsc_hz = eal.tsc_hz();
        let pool = Arc::new(
            Mempool::new(eal, "fl_pkt", plan.mbufs, plan.mbuf_cache, plan.data_room).map_err(
                |source| RuntimeError::Pool {
                    mbufs: plan.mbufs,
                    memory_mb: plan.config.dataplane.memory_mb,
                    source,
                },
            )?,
        );
        tracing::info!(
            pool = pool.name(),
            mbufs = plan.mbufs,
            cache = plan.mbuf_cache,
            "packet pool created"
        );
        let mut rt = Runtime {
            stop,
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
            router_fib: None,
            config_path: path.map(|p| p.to_path_buf()),
            reload_tx: None,
            injectors: Vec::new(),
            eal,
            restart: Arc::default(),
        };
        // From here on, an error path still shuts down what was started.
        match rt.build(plan, eal) {
            Ok(()) => Ok(rt),
            Err(e) => {
                let _ = rt.shutdown(Vec::new());
                Err(e)
            }
        }
    }

    /// The steps after EAL and the pool.
    fn build(&mut self, plan: Plan, eal: &'static Eal) -> Result<(), RuntimeError> {
        self.not_stopped()?;
        let mut ring_ends = self.create_links(eal, &plan)?;
        let opened = self.open_ports(eal, &plan, &mut ring_ends)?;
        self.not_stopped()?;
        self.open_spare_ends(eal, &plan, ring_ends)?;
        let wiring = self.wire(eal, &plan, opened)?;
        self.not_stopped()?;
        self.start_threads(plan, wiring)
    }

    /// Between start-up steps: a stop asked for by now ends start-up.
    fn not_stopped(&self) -> Result<(), RuntimeError> {
        if self.stop.load(Ordering::SeqCst) {
            Err(RuntimeError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Asks the control thread to reload the config file; the result arrives on the
    /// returned channel. `None`: nothing to reload (no control thread).
    pub fn reload(
        &self,
    ) -> Option<std::sync::mpsc::Receiver<Result<api::ReloadSummary, ReloadError>>> {
        let tx = self.reload_tx.as_ref()?;
        let (reply, rx) = std::sync::mpsc::channel();
        tx.send(ReloadRequest { reply }).ok()?;
        Some(rx)
    }

    /// Whether `fastlag ctl restart` asked for a planned restart.
    pub fn restart_requested(&self) -> bool {
        self.restart.requested.load(Ordering::SeqCst)
    }

    /// Planned restart: as [`Runtime::shutdown`], but the control thread sends no final
    /// out-of-sync LACPDUs: every member sends a last in-sync LACPDU and the handoff state
    /// file (`[management] state_file`) is written, for the next process to take over
    /// without the partners noticing.
    pub fn shutdown_for_restart(self) -> ShutdownReport {
        self.restart.planned.store(true, Ordering::SeqCst);
        self.shutdown(Vec::new())
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
    pub fn management(&self) -> Option<&Arc<Hub>> {
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

    /// Benchmarks ([`Plan::for_bench`]): sends copies of `frames` (`count` in all, taking
    /// them in turn) from port `port`'s injector into its link, where the peer end
    /// receives them like any frame. Returns how many the link (or worker 0, for an end
    /// that injects through it) took.
    pub fn inject(
        &mut self,
        port: &str,
        frames: &[Vec<u8>],
        count: usize,
    ) -> Result<usize, RuntimeError> {
        let pi = self
            .ports
            .iter()
            .position(|p| p.name == port)
            .ok_or_else(|| RuntimeError::Unsupported(format!("no port {port}")))?;
        let (_, injector) = self
            .injectors
            .iter_mut()
            .find(|(i, _)| *i == pi)
            .ok_or_else(|| {
                RuntimeError::Unsupported(format!(
                    "port {port} has no injector (benchmark plans give one to ring link ends)"
                ))
            })?;
        if frames.is_empty() {
            return Ok(0);
        }
        let copy = |pool: &Mempool, f: &[u8]| {
            let mut m = pool.alloc()?;
            m.append(f.len() as u16)?.copy_from_slice(f);
            Some(m)
        };
        let mut sent = 0;
        match injector {
            Injector::Queue(q) => {
                let mut burst = dpdk::Burst::new();
                while sent < count {
                    while burst.room() > 0 && sent + burst.len() < count {
                        let f = &frames[(sent + burst.len()) % frames.len()];
                        let Some(m) = copy(&self.pool, f) else {
                            break;
                        };
                        let _ = burst.push(m);
                    }
                    if burst.is_empty() {
                        break;
                    }
                    sent += q.tx_burst(&mut burst);
                    if !burst.is_empty() {
                        // The link is full: what did not fit goes back to the pool.
                        burst.clear();
                        break;
                    }
                }
            }
            Injector::Worker(ring) => {
                // Worker 0 takes up to 32 frames per port every 64 loops: a full ring
                // empties within microseconds while it runs.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while sent < count {
                    let Some(m) = copy(&self.pool, &frames[sent % frames.len()]) else {
                        break;
                    };
                    match ring.push(m) {
                        Ok(()) => sent += 1,
                        Err(m) => {
                            drop(m);
                            if std::time::Instant::now() > deadline {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_micros(50));
                        }
                    }
                }
            }
        }
        Ok(sent)
    }

    /// DPDK's EAL (for threads a caller adds, such as the demo's generator).
    pub fn eal(&self) -> &'static Eal {
        self.eal
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
                    pmd: st::pmd_stats(info.stats().unwrap_or_default()),
                    workers: st::worker_port_counts(w),
                }
            })
            .collect();
        Snapshot {
            ports,
            interfaces: self.interface_snapshots(),
            workers: worker_counts
                .iter()
                .enumerate()
                .map(|(i, c)| st::worker_snapshot(i, c))
                .collect(),
            tsc_hz: self.tsc_hz,
        }
    }

    /// Router mode: every interface's counters, summed over workers.
    fn interface_snapshots(&self) -> Vec<IfaceSnapshot> {
        let fib = self.router_fib.as_ref().map(|f| f.load_full());
        self.iface_names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let sum = |f: &dyn Fn(&IfaceCounters) -> u64| -> u64 {
                    self.iface_counters.iter().map(|w| f(&w[n])).sum()
                };
                let by =
                    |f: &dyn Fn(&IfaceCounters, usize) -> u64,
                     names: &mut dyn Iterator<Item = (usize, &'static str)>| {
                        names
                            .map(|(k, name)| (name.to_string(), sum(&|c| f(c, k))))
                            .filter(|(_, v)| *v > 0)
                            .collect()
                    };
                let classes = || ExceptionClass::ALL.iter().map(|c| (c.index(), c.as_str()));
                IfaceSnapshot {
                    name: name.clone(),
                    rx: sum(&|c| c.rx.get()),
                    forwarded: sum(&|c| c.forwarded.get()),
                    exceptions: by(&|c, k| c.exceptions[k].get(), &mut classes()),
                    policed: by(&|c, k| c.policed[k].get(), &mut classes()),
                    exception_ring_full: sum(&|c| c.exception_ring_full.get()),
                    drops: by(
                        &|c, k| c.drops[k].get(),
                        &mut DropReason::ALL.iter().map(|r| (r.index(), r.as_str())),
                    ),
                    egress_failed: sum(&|c| c.egress_failed.get()),
                    next_hops: fib
                        .as_ref()
                        .map(|f| {
                            f.ecmp_gateways(dataplane::router::IfaceId(n as u16))
                                .iter()
                                .enumerate()
                                .filter(|(_, gws)| !gws.is_empty())
                                .map(|(k, gws)| {
                                    let names: Vec<String> =
                                        gws.iter().map(|g| g.to_string()).collect();
                                    (names.join(","), sum(&|c| c.ecmp[k].get()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
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
            // Bounded: some PMDs never run dry (net_null, net_pcap with infinite_rx).
            for _ in 0..1024 {
                if rx.rx_burst(&mut burst, dpdk::MAX_BURST) == 0 {
                    break;
                }
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
        self.injectors.clear();
        for (name, p) in stopped {
            if let Err((_, e)) = p.close() {
                errors.push(format!("port {name}: {e}"));
            }
        }
        // Ours, now that nothing of EAL is in use any more; left if EAL put files in it.
        self.eal.remove_runtime_dir();
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
