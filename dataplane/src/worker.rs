//! Poll-mode workers: one pinned thread per worker core. Worker i owns RX queue i and TX
//! queue i of every port. The loop takes no locks, allocates nothing and makes no
//! syscalls: bursts are preallocated, counters are single-writer atomics, the stop flag is
//! a relaxed load.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::counters::WorkerCounters;
use crate::dpdk::{self, Burst, RxQueue, TxQueue};

/// Where frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarding {
    /// Frames received on port i leave unchanged on port `egress[i]` (None: dropped and
    /// counted as "no egress").
    Xconnect {
        /// Egress port index per ingress port index.
        egress: Vec<Option<usize>>,
    },
}

/// Everything one worker owns.
#[derive(Debug)]
pub struct WorkerSpec {
    /// Worker number (also its queue index on every port).
    pub index: usize,
    /// CPU to pin to.
    pub core: usize,
    /// Packets per RX poll.
    pub burst: usize,
    /// RX queue `index` of each port, in port order.
    pub rx: Vec<RxQueue>,
    /// TX queue `index` of each port, in port order.
    pub tx: Vec<TxQueue>,
    /// Forwarding decision.
    pub forwarding: Forwarding,
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

/// Starts a worker thread. It runs until `stop` is set, then flushes, drains its RX
/// queues, frees every mbuf it holds and returns its queues (so ports can be closed).
pub fn spawn(
    spec: WorkerSpec,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Result<(Vec<RxQueue>, Vec<TxQueue>), WorkerError>>> {
    std::thread::Builder::new()
        .name(format!("fl-worker{}", spec.index))
        .spawn(move || run(spec, &stop))
}

fn run(mut spec: WorkerSpec, stop: &AtomicBool) -> Result<(Vec<RxQueue>, Vec<TxQueue>), WorkerError> {
    // Threads inherit the main lcore's cpuset after EAL init: pin explicitly, then
    // register so DPDK gives us an lcore id (and with it a mempool cache).
    if !core_affinity::set_for_current(core_affinity::CoreId { id: spec.core }) {
        return Err(WorkerError::Pin {
            index: spec.index,
            core: spec.core,
        });
    }
    let lcore = dpdk::register_thread().map_err(|source| WorkerError::Register {
        index: spec.index,
        source,
    })?;
    tracing::info!(
        worker = spec.index,
        cpu = spec.core,
        lcore,
        ports = spec.rx.len(),
        "worker started"
    );

    match &spec.forwarding {
        Forwarding::Xconnect { egress } => {
            let egress = egress.clone();
            xconnect_loop(&mut spec, &egress, stop);
        }
    }

    drain(&mut spec);
    tracing::info!(worker = spec.index, "worker stopped");
    dpdk::unregister_thread();
    Ok((spec.rx, spec.tx))
}

/// How often (in loop iterations) the loop publishes its loop/idle counts.
const PUBLISH_EVERY: u64 = 1024;

fn xconnect_loop(spec: &mut WorkerSpec, egress: &[Option<usize>], stop: &AtomicBool) {
    let mut burst = Burst::new();
    let max = spec.burst;
    let c = &*spec.counters;
    let nports = spec.rx.len();
    let (mut loops, mut idle) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        for p in 0..nports {
            let t0 = dpdk::rdtsc();
            let n = spec.rx[p].rx_burst(&mut burst, max);
            if n == 0 {
                idle += 1;
                continue;
            }
            c.ports[p].rx.add(n as u64);
            match egress[p] {
                Some(e) => {
                    let sent = spec.tx[e].tx_burst(&mut burst);
                    c.ports[e].tx.add(sent as u64);
                    if !burst.is_empty() {
                        c.ports[e].drop_tx_full.add(burst.len() as u64);
                        burst.clear();
                    }
                }
                None => {
                    c.ports[p].drop_no_egress.add(n as u64);
                    burst.clear();
                }
            }
            c.busy_polls.add(1);
            c.busy_cycles.add(dpdk::rdtsc().wrapping_sub(t0));
        }
        loops += 1;
        if loops % PUBLISH_EVERY == 0 {
            c.loops.add(PUBLISH_EVERY);
            c.idle_polls.add(idle);
            idle = 0;
        }
    }
    c.loops.add(loops % PUBLISH_EVERY);
    c.idle_polls.add(idle);
}

/// After stop: receive until every queue is empty and free what arrives, so no mbuf is
/// left inside a queue this worker owns.
fn drain(spec: &mut WorkerSpec) {
    let mut burst = Burst::new();
    for (p, rx) in spec.rx.iter_mut().enumerate() {
        let mut freed = 0;
        // Bounded: a peer that keeps sending cannot keep us here forever.
        for _ in 0..1024 {
            let n = rx.rx_burst(&mut burst, crate::dpdk::MAX_BURST);
            if n == 0 {
                break;
            }
            freed += n;
            burst.clear();
        }
        if freed > 0 {
            tracing::info!(worker = spec.index, port = p, freed, "freed frames that arrived while stopping");
        }
    }
}
