//! Human-readable counters: periodic rate lines and the final summary.

use std::time::Duration;

use crate::status::{ShutdownReport, Snapshot};

fn mpps(delta: u64, dt: Duration) -> f64 {
    delta as f64 / dt.as_secs_f64().max(1e-9) / 1e6
}

/// Logs per-port rates between two snapshots.
pub fn log_rates(before: &Snapshot, now: &Snapshot, dt: Duration) {
    for (a, b) in before.ports.iter().zip(&now.ports) {
        tracing::info!(
            port = %b.name,
            rx_mpps = format!("{:.3}", mpps(b.workers.rx - a.workers.rx, dt)),
            tx_mpps = format!("{:.3}", mpps(b.workers.tx - a.workers.tx, dt)),
            drops = b.workers.drops() - a.workers.drops(),
            rx_missed = b.pmd.rx_missed - a.pmd.rx_missed,
            "rates"
        );
    }
}

/// Logs the counters at stop, one line per port and per worker.
pub fn log_final(r: &ShutdownReport) {
    for p in &r.stats.ports {
        tracing::info!(
            port = %p.name,
            rx = p.workers.rx,
            tx = p.workers.tx,
            drop_tx_full = p.workers.drop_tx_full,
            drop_no_egress = p.workers.drop_no_egress,
            drop_not_collecting = p.workers.drop_not_collecting,
            drop_bond_down = p.workers.drop_bond_down,
            slow_to_control = p.workers.slow_to_control,
            drop_slow_ring_full = p.workers.drop_slow_ring_full,
            pmd_rx = p.pmd.rx_packets,
            pmd_tx = p.pmd.tx_packets,
            pmd_rx_missed = p.pmd.rx_missed,
            "final port counters"
        );
    }
    for w in &r.stats.workers {
        tracing::info!(
            worker = w.index,
            rx = w.rx,
            tx = w.tx,
            drops = w.drops,
            busy_polls = w.busy_polls,
            idle_polls = w.idle_polls,
            cycles_per_packet = w
                .cycles_per_packet
                .map(|c| format!("{c:.1}"))
                .unwrap_or_default(),
            "final worker counters"
        );
    }
    tracing::info!(
        pool = %r.pool.name,
        available = r.pool.available,
        size = r.pool.size,
        "packet pool at exit"
    );
}
