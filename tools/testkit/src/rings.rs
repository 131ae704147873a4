//! In-process ring links for tests that drive a worker directly: both ends configured and
//! started with one queue pair each, and the EAL arguments such a test starts with.

use std::sync::Arc;

use dpdk::{Eal, Mempool, Port, PortSetup, RxQueue, TxQueue};

/// One end's queues.
pub type Queues = (RxQueue, TxQueue);

/// EAL arguments for a test process without hugepages, PCI, shared config or telemetry:
/// `memory_mb` of memory, file prefix `fl-{tag}-{pid}`, the main lcore on `cpu`.
pub fn eal_args(tag: &str, memory_mb: u32, cpu: usize) -> Vec<String> {
    vec![
        "--no-huge".to_string(),
        "-m".into(),
        memory_mb.to_string(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "--no-telemetry".into(),
        "--log-level=4".into(),
        format!("--file-prefix=fl-{tag}-{}", std::process::id()),
        format!("--lcores=0@{cpu}"),
    ]
}

/// One RX and one TX queue of 1024 descriptors from `pool`, default MTU.
pub fn one_queue(pool: &Arc<Mempool>) -> PortSetup {
    PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_descriptors: 1024,
        tx_descriptors: 1024,
        mtu: None,
        pool: pool.clone(),
    }
}

/// A ring link named `name`: (the test's end `{name}_t`, the worker's end `{name}_w`),
/// each started with one RX and one TX queue of 1024 descriptors from `pool`. The started
/// ports go into `ports` (close them after the queues are dropped).
pub fn link(
    eal: &Eal,
    pool: &Arc<Mempool>,
    name: &str,
    ports: &mut Vec<Port<dpdk::Started>>,
) -> (Queues, Queues) {
    let (t, w) = dpdk::ring_link(eal, &format!("{name}_t"), &format!("{name}_w"), 1, 0, 1024)
        .expect("ring link");
    let mut open = |id, n: String| {
        let (p, mut rx, mut tx) =
            Port::configure(eal, id, &n, &one_queue(pool)).expect("configure");
        ports.push(p.start().map_err(|(_, e)| e).expect("start"));
        (rx.remove(0), tx.remove(0))
    };
    (open(t, format!("{name}_t")), open(w, format!("{name}_w")))
}
