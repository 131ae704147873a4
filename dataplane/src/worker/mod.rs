//! Poll-mode workers: one pinned thread per worker core. Worker i owns RX queue i and TX
//! queue i of every port. The loop takes no locks, allocates nothing and makes no
//! syscalls: bursts are preallocated, counters are single-writer atomics, bond tables are
//! loaded lock-free once per burst, the stop flag is a relaxed load.
//!
//! A received burst goes through `xconnect.rs` (ingress on bond members: slow-protocol
//! frames to the control thread, the rest only while collecting; then out of the paired
//! port or bond) or, in router mode, through [`router`]; `tx.rs` sends and counts.

mod plan;
pub mod router;
mod tx;
mod xconnect;

pub use plan::{shared_plans, BondPlan, Egress, PortPlan, SharedPlans};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;

use crate::bond::{BondTable, SharedTable};
use crate::counters::WorkerCounters;
use crate::router::Fib;
use crate::worker::router::RouterPlan;
use dpdk::{Burst, Consumer, Eal, Producer, RxQueue, TxQueue};

/// Everything one worker owns.
#[derive(Debug)]
pub struct WorkerSpec {
    /// DPDK's EAL (the worker registers its thread with it).
    pub eal: &'static Eal,
    /// Worker number (also its queue index on every port).
    pub index: usize,
    /// CPU to pin to.
    pub core: usize,
    /// Packets per RX poll.
    pub burst: usize,
    /// The RX queues this worker polls, with the port index each belongs to: queue
    /// `index` of every port, plus any extra queue a PMD insists on having (af_packet opens
    /// one socket per queue pair and spreads frames over all of them).
    pub rx: Vec<(usize, RxQueue)>,
    /// TX queue `index` of each port, in port order.
    pub tx: Vec<TxQueue>,
    /// Per port, in port order.
    pub ports: SharedPlans,
    /// Per bond.
    pub bonds: Vec<BondPlan>,
    /// Per port: ring to the control thread for its slow-protocol frames (ports that
    /// divert them); one ring per (worker, port) so the ring tells the port.
    pub slow: Vec<Option<Producer>>,
    /// Per port: frames the control thread could not send on its own TX queue (a virtual
    /// link whose peer does not read that queue), to send on this worker's queue. Only
    /// worker 0 has these.
    pub control_tx: Vec<Option<Consumer>>,
    /// Router mode: routes frames instead of cross-connecting them (`PortPlan::egress`
    /// is then unused).
    pub router: Option<RouterPlan>,
    /// Shared counters, readable while the worker runs.
    pub counters: Arc<WorkerCounters>,
}

/// Why a worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Pinning failed.
    #[error("worker {index}: could not pin to CPU {core}")]
    Pin {
        /// Worker number.
        index: usize,
        /// Requested CPU.
        core: usize,
    },
    /// rte_thread_register failed.
    #[error("worker {index}: {source}")]
    Register {
        /// Worker number.
        index: usize,
        /// DPDK's error.
        source: dpdk::DpdkError,
    },
}

/// What a worker hands back when it stops: its queues, so the ports can be closed.
pub type WorkerQueues = (Vec<RxQueue>, Vec<TxQueue>);

fn into_queues(spec: WorkerSpec) -> WorkerQueues {
    (spec.rx.into_iter().map(|(_, q)| q).collect(), spec.tx)
}

/// Starts a worker thread. It runs until `stop` is set, then drains its RX queues, frees
/// every mbuf it holds and returns its queues.
pub fn spawn(
    spec: WorkerSpec,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Result<WorkerQueues, WorkerError>>> {
    std::thread::Builder::new()
        .name(format!("fl-worker{}", spec.index))
        .spawn(move || run(spec, &stop))
}

/// Runs a worker on the calling thread (what [`spawn`]'s thread does): pins it, registers
/// it with DPDK, polls until `stop` is set. For callers that must be on the worker's thread
/// themselves, such as the test that counts its heap allocations.
pub fn run(mut spec: WorkerSpec, stop: &AtomicBool) -> Result<WorkerQueues, WorkerError> {
    // Threads inherit the main lcore's cpuset after EAL init: pin explicitly, then
    // register so DPDK gives us an lcore id (and with it a mempool cache).
    if !core_affinity::set_for_current(core_affinity::CoreId { id: spec.core }) {
        return Err(WorkerError::Pin {
            index: spec.index,
            core: spec.core,
        });
    }
    let lcore = dpdk::register_thread(spec.eal).map_err(|source| WorkerError::Register {
        index: spec.index,
        source,
    })?;
    tracing::info!(
        worker = spec.index,
        cpu = spec.core,
        lcore,
        queues = spec.rx.len(),
        "worker started"
    );
    let mut w = Worker {
        burst: Burst::new(),
        keep: Burst::new(),
        rest: Burst::new(),
        picks: vec![0; dpdk::MAX_BURST],
        stage: (0..spec.tx.len()).map(|_| Burst::new()).collect(),
        plans: Cache::new(spec.ports.clone()),
        tables: spec
            .bonds
            .iter()
            .map(|b| Cache::new(b.table.clone()))
            .collect(),
        fib: spec.router.as_ref().map(|r| Cache::new(r.fib.clone())),
    };
    w.run(&mut spec, stop);
    drain(&mut spec);
    tracing::info!(worker = spec.index, "worker stopped");
    dpdk::unregister_thread();
    Ok(into_queues(spec))
}

/// The worker's preallocated buffers and its cached views of what the control thread
/// publishes.
struct Worker {
    /// What the RX poll returned.
    burst: Burst,
    /// Frames of `burst` that survive ingress filtering on a bond member.
    keep: Burst,
    /// Frames the bond distributor sends to no stage (Slow Protocols frames it diverts).
    rest: Burst,
    /// Per frame of a burst: the stage the bond distributor picked.
    picks: Vec<u16>,
    /// Per egress port: frames the bond distributor put there this burst.
    stage: Vec<Burst>,
    /// The port plans.
    plans: Cache<SharedPlans, Arc<Vec<PortPlan>>>,
    /// Per bond: its member table.
    tables: Vec<Cache<SharedTable, Arc<BondTable>>>,
    /// The router's FIB, when routing.
    fib: Option<Cache<Arc<ArcSwap<Fib>>, Arc<Fib>>>,
}

/// How often (in loop iterations) worker 0 looks for frames the control thread handed it.
const CONTROL_TX_EVERY: u64 = 64;

/// How often (in loop iterations) the loop publishes its loop/idle counts.
const PUBLISH_EVERY: u64 = 1024;

impl Worker {
    fn run(&mut self, spec: &mut WorkerSpec, stop: &AtomicBool) {
        let counters = spec.counters.clone();
        let c = &*counters;
        let nqueues = spec.rx.len();
        let (mut loops, mut idle) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            for i in 0..nqueues {
                let t0 = dpdk::rdtsc();
                let p = spec.rx[i].0;
                let n = spec.rx[i].1.rx_burst(&mut self.burst, spec.burst);
                if n == 0 {
                    idle += 1;
                    continue;
                }
                c.ports[p].rx.add(n as u64);
                self.forward(spec, p);
                c.busy_polls.add(1);
                c.busy_cycles.add(dpdk::rdtsc().wrapping_sub(t0));
            }
            loops += 1;
            if loops % CONTROL_TX_EVERY == 0 {
                self.control_tx(spec);
            }
            if loops % PUBLISH_EVERY == 0 {
                c.loops.add(PUBLISH_EVERY);
                c.idle_polls.add(idle);
                idle = 0;
            }
        }
        c.loops.add(loops % PUBLISH_EVERY);
        c.idle_polls.add(idle);
    }

    /// Sends what the control thread handed over for ports whose control queue does not
    /// reach the peer. Rare: checked every CONTROL_TX_EVERY loops (microseconds apart).
    fn control_tx(&mut self, spec: &mut WorkerSpec) {
        let c = &*spec.counters;
        for (p, ring) in spec.control_tx.iter_mut().enumerate() {
            let Some(ring) = ring else { continue };
            if ring.pop_into(&mut self.keep, 32) == 0 {
                continue;
            }
            tx::send(&mut spec.tx[p], &mut self.keep, &c.ports[p]);
        }
    }
}

/// After stop: receive until every queue is empty and free what arrives, so no mbuf is
/// left inside a queue this worker owns.
fn drain(spec: &mut WorkerSpec) {
    let mut burst = Burst::new();
    for (p, rx) in spec.rx.iter_mut() {
        let p = *p;
        let mut freed = 0;
        // Bounded: a peer that keeps sending cannot keep us here forever.
        for _ in 0..1024 {
            let n = rx.rx_burst(&mut burst, dpdk::MAX_BURST);
            if n == 0 {
                break;
            }
            freed += n;
            burst.clear();
        }
        if freed > 0 {
            tracing::info!(
                worker = spec.index,
                port = p,
                freed,
                "freed frames that arrived while stopping"
            );
        }
    }
}
