//! Counters written by one thread and read by any: workers count per burst with plain
//! relaxed load+store (no locked instructions), readers take snapshots while they run.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this (single writer), which is why a
    /// relaxed load and store suffice and no read-modify-write instruction is needed.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Current value (from any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one worker counted for one port.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Packets received from this port.
    pub rx: Counter,
    /// Packets transmitted on this port.
    pub tx: Counter,
    /// Packets dropped because this port's TX queue was full.
    pub drop_tx_full: Counter,
    /// Packets received on this port that had nowhere to go.
    pub drop_no_egress: Counter,
    /// Packets received on a bond member that is not collecting (802.1AX: frames are
    /// accepted only on collecting members).
    pub drop_not_collecting: Counter,
    /// Packets that should have left through a bond with no distributing member, counted
    /// on the ingress port.
    pub drop_bond_down: Counter,
    /// Slow-protocol frames (LACP, Marker) handed to the control thread.
    pub slow_to_control: Counter,
    /// Slow-protocol frames dropped because the ring to the control thread was full.
    pub drop_slow_ring_full: Counter,
}

/// Snapshot of [`PortCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounts {
    /// Packets received.
    pub rx: u64,
    /// Packets transmitted.
    pub tx: u64,
    /// Drops: TX queue full.
    pub drop_tx_full: u64,
    /// Drops: no egress for the ingress port.
    pub drop_no_egress: u64,
    /// Drops: member not collecting.
    pub drop_not_collecting: u64,
    /// Drops: egress bond has no distributing member.
    pub drop_bond_down: u64,
    /// Slow-protocol frames passed to the control thread.
    pub slow_to_control: u64,
    /// Drops: ring to the control thread full.
    pub drop_slow_ring_full: u64,
}

impl PortCounters {
    /// Reads the counters.
    pub fn snapshot(&self) -> PortCounts {
        PortCounts {
            rx: self.rx.get(),
            tx: self.tx.get(),
            drop_tx_full: self.drop_tx_full.get(),
            drop_no_egress: self.drop_no_egress.get(),
            drop_not_collecting: self.drop_not_collecting.get(),
            drop_bond_down: self.drop_bond_down.get(),
            slow_to_control: self.slow_to_control.get(),
            drop_slow_ring_full: self.drop_slow_ring_full.get(),
        }
    }
}

impl std::ops::AddAssign for PortCounts {
    fn add_assign(&mut self, o: PortCounts) {
        self.rx += o.rx;
        self.tx += o.tx;
        self.drop_tx_full += o.drop_tx_full;
        self.drop_no_egress += o.drop_no_egress;
        self.drop_not_collecting += o.drop_not_collecting;
        self.drop_bond_down += o.drop_bond_down;
        self.slow_to_control += o.slow_to_control;
        self.drop_slow_ring_full += o.drop_slow_ring_full;
    }
}

impl PortCounts {
    /// All drops.
    pub fn drops(&self) -> u64 {
        self.drop_tx_full
            + self.drop_no_egress
            + self.drop_not_collecting
            + self.drop_bond_down
            + self.drop_slow_ring_full
    }
}

/// Counters of one worker, cache-line aligned so workers never share a line.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Loop iterations.
    pub loops: Counter,
    /// RX polls that returned packets.
    pub busy_polls: Counter,
    /// RX polls that returned nothing.
    pub idle_polls: Counter,
    /// TSC cycles spent in polls that returned packets, from the RX call to the end of
    /// transmit (the figure testpmd reports with --record-core-cycles).
    pub busy_cycles: Counter,
    /// Per port, indexed like the runtime's port list.
    pub ports: Box<[PortCounters]>,
}

impl WorkerCounters {
    /// Counters for a worker serving `ports` ports.
    pub fn new(ports: usize) -> WorkerCounters {
        WorkerCounters {
            loops: Counter::default(),
            busy_polls: Counter::default(),
            idle_polls: Counter::default(),
            busy_cycles: Counter::default(),
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
        }
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> WorkerCounts {
        let ports: Vec<PortCounts> = self.ports.iter().map(PortCounters::snapshot).collect();
        WorkerCounts {
            loops: self.loops.get(),
            busy_polls: self.busy_polls.get(),
            idle_polls: self.idle_polls.get(),
            busy_cycles: self.busy_cycles.get(),
            ports,
        }
    }
}

/// Snapshot of [`WorkerCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Loop iterations.
    pub loops: u64,
    /// RX polls that returned packets.
    pub busy_polls: u64,
    /// RX polls that returned nothing.
    pub idle_polls: u64,
    /// Cycles in busy polls.
    pub busy_cycles: u64,
    /// Per port.
    pub ports: Vec<PortCounts>,
}

impl WorkerCounts {
    /// Sum over ports.
    pub fn total(&self) -> PortCounts {
        let mut t = PortCounts::default();
        for p in &self.ports {
            t += *p;
        }
        t
    }

    /// Busy cycles per forwarded packet (None before the first packet).
    pub fn cycles_per_packet(&self) -> Option<f64> {
        let tx = self.total().tx;
        (tx > 0).then(|| self.busy_cycles as f64 / tx as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_ports() {
        let w = WorkerCounters::new(2);
        w.ports[0].rx.add(5);
        w.ports[1].rx.add(7);
        w.ports[1].tx.add(4);
        w.ports[0].drop_tx_full.add(1);
        w.busy_cycles.add(400);
        let s = w.snapshot();
        assert_eq!(s.total().rx, 12);
        assert_eq!(s.total().drops(), 1);
        assert_eq!(s.cycles_per_packet(), Some(100.0));
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }
}
