//! Bonds and members as the control thread sees them, and how a member's slow-protocol
//! frames leave.

use dataplane::bond::SharedTable;
use dpdk::{Burst, Consumer, Link, Mbuf, PortInfo, Producer, RxQueue, TxQueue};
use lacp::config::LinkStatus;
use lacp::{BondId, PortId as LacpPort};
use types::{Duplex, Speed};

/// A bond member.
pub struct Member {
    /// Runtime port index.
    pub(crate) port: usize,
    /// Port name.
    pub(crate) name: String,
    /// Index into the control thread's bonds.
    pub(crate) bond: usize,
    /// Reads link state.
    pub(crate) info: PortInfo,
    /// Rings from the workers carrying this member's slow-protocol frames.
    pub(crate) slow: Vec<Consumer>,
    /// Ring to worker 0, for LACPDUs when the control TX queue does not reach the peer.
    pub(crate) via_worker: Option<Producer>,
    /// LACPDUs go through worker 0 (the peer does not read our control queue).
    use_worker: bool,
    /// Consecutive failed transmits on the control queue.
    tx_failures: u32,
    /// The member's own slow-protocol RX queue, when rte_flow steers them there.
    pub(crate) slow_rx: Option<RxQueue>,
    /// Frames other than slow protocols found on that queue (dropped).
    pub(crate) slow_rx_other: u64,
    /// Its LACP engine port (802.3ad members).
    pub(crate) lacp: Option<LacpPort>,
    /// Configured speed override (Mb/s).
    speed_override: Option<u32>,
    /// Configured duplex override.
    duplex_override: Option<conf::Duplex>,
    /// Kernel interface under the PMD (af_packet, af_xdp), whose carrier the PMD does
    /// not report: read from sysfs and combined with the PMD's view.
    pub(crate) kernel_iface: Option<String>,
    pub(crate) last_link: Option<LinkStatus>,
    pub(crate) warned_unknown: bool,
    pub(crate) tx_dropped: u64,
    pub(crate) tx_gaps: TxGapMeter,
    /// The last data-frame count sampled for the engine's partner-data input, and when
    /// (see `ControlLoop::follow_partner_data`).
    pub(crate) data_sample: Option<(std::time::Instant, u64)>,
}

/// What a member is made of; the runtime (at start) and reload (for a spare port) fill it.
pub struct MemberParts {
    /// Runtime port index.
    pub port: usize,
    /// Port name.
    pub name: String,
    /// Bond index.
    pub bond: usize,
    /// Reads link state.
    pub info: PortInfo,
    /// Slow-protocol rings from the workers.
    pub slow: Vec<Consumer>,
    /// Its LACP engine port (802.3ad members).
    pub lacp: Option<LacpPort>,
    /// Configured speed (Mb/s), overriding the PMD's.
    pub speed_override: Option<u32>,
    /// Configured duplex, overriding the PMD's.
    pub duplex_override: Option<conf::Duplex>,
    /// Kernel interface under the PMD.
    pub kernel_iface: Option<String>,
    /// Its steered slow-protocol RX queue.
    pub slow_rx: Option<RxQueue>,
    /// Ring to worker 0.
    pub via_worker: Option<Producer>,
}

impl Member {
    /// A member, link state not read yet.
    pub fn new(p: MemberParts) -> Member {
        Member {
            port: p.port,
            name: p.name,
            bond: p.bond,
            info: p.info,
            slow: p.slow,
            via_worker: p.via_worker,
            use_worker: false,
            tx_failures: 0,
            slow_rx: p.slow_rx,
            slow_rx_other: 0,
            lacp: p.lacp,
            speed_override: p.speed_override,
            duplex_override: p.duplex_override,
            kernel_iface: p.kernel_iface,
            last_link: None,
            warned_unknown: false,
            tx_dropped: 0,
            tx_gaps: TxGapMeter::default(),
            data_sample: None,
        }
    }

    /// The link as the LACP engine sees it: the PMD's speed and duplex unless configured.
    pub(crate) fn link_status(&self, l: &Link) -> LinkStatus {
        LinkStatus {
            up: l.up,
            speed: self.speed_override.map_or(l.speed, Speed::Mbps),
            duplex: self.duplex_override.map_or(l.duplex, Duplex::from),
        }
    }

    /// Sends one slow-protocol frame: on the control thread's own TX queue of the port, or
    /// through worker 0 once that queue has proven not to reach the peer (virtual links that
    /// keep queue indexes, e.g. a memif peer with a single queue, have no ring behind it).
    pub(crate) fn send_slow(&mut self, port_tx: &mut Option<TxQueue>, mb: Mbuf) -> bool {
        let mut mb = Some(mb);
        if !self.use_worker {
            if let Some(tx) = port_tx.as_mut() {
                let mut out = Burst::new();
                let _ = out.push(mb.take().expect("set above"));
                // The queue is only ever this thread's: a full one means the PMD is stuck or
                // has no ring behind it; retry briefly.
                for _ in 0..3 {
                    if tx.tx_burst(&mut out) == 1 {
                        self.tx_failures = 0;
                        return true;
                    }
                }
                mb = out.pop();
                self.tx_failures += 1;
                if self.tx_failures < TX_FAILURES_BEFORE_FALLBACK || self.via_worker.is_none() {
                    return false;
                }
                self.use_worker = true;
                tracing::warn!(
                    member = %self.name,
                    "the peer does not receive on the control thread's TX queue (a virtual link that keeps \
                     queue indexes and a peer with fewer queues); LACPDUs now leave through worker 0's queue"
                );
            }
        }
        match (self.via_worker.as_mut(), mb) {
            (Some(ring), Some(f)) => ring.push(f).is_ok(),
            _ => false,
        }
    }
}

/// Consecutive failed transmits on the control thread's queue before its frames go through
/// worker 0 instead.
const TX_FAILURES_BEFORE_FALLBACK: u32 = 2;

/// Carrier of a kernel network interface (false when it is gone or unreadable).
pub(crate) fn kernel_carrier(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/carrier"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// A bond.
pub struct Bond {
    /// Name.
    pub(crate) name: String,
    /// Mode.
    pub(crate) mode: conf::BondMode,
    /// Distribution hash, as the config spells it (for display).
    pub(crate) hash: String,
    /// Indices into the control thread's members, in config order.
    pub(crate) members: Vec<usize>,
    /// The table workers read.
    pub(crate) table: SharedTable,
    /// The engine's bond (802.3ad).
    pub(crate) lacp: Option<BondId>,
    /// Nothing distributes below this many usable members (static modes; the engine
    /// enforces it for 802.3ad).
    pub(crate) min_links: u16,
    /// The bond's MAC address.
    pub(crate) mac: dpdk::MacAddr,
    pub(crate) distributing: Vec<usize>,
    pub(crate) collecting: Vec<bool>,
    pub(crate) version: u64,
    pub(crate) dirty: bool,
}

/// What a bond is made of.
pub struct BondParts {
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: conf::BondMode,
    /// Hash policy name.
    pub hash: String,
    /// Member indices.
    pub members: Vec<usize>,
    /// The workers' table.
    pub table: SharedTable,
    /// The engine's bond (802.3ad).
    pub lacp: Option<BondId>,
    /// min_links.
    pub min_links: u16,
    /// The bond's MAC.
    pub mac: dpdk::MacAddr,
    /// Ports in the runtime (the collecting table's size).
    pub nports: usize,
}

impl Bond {
    /// A bond whose table starts down.
    pub fn new(p: BondParts) -> Bond {
        Bond {
            name: p.name,
            mode: p.mode,
            hash: p.hash,
            members: p.members,
            table: p.table,
            lacp: p.lacp,
            min_links: p.min_links,
            mac: p.mac,
            distributing: Vec::new(),
            collecting: vec![false; p.nports],
            version: 0,
            dirty: true,
        }
    }

    /// The bond's MAC address.
    pub fn mac(&self) -> dpdk::MacAddr {
        self.mac
    }

    /// Asks for the table to be published again (its management overlay changed).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

/// Measures the intervals between a member's LACPDU departures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TxGapMeter {
    gaps: api::TxGaps,
    last: Option<std::time::Instant>,
    sum_ms: f64,
}

impl TxGapMeter {
    pub(crate) fn sent(&mut self, at: std::time::Instant) {
        let g = &mut self.gaps;
        if let Some(prev) = self.last {
            let gap = at.duration_since(prev).as_secs_f64() * 1e3;
            let n = g.count as f64; // intervals so far = count - 1
            g.min_ms = if g.count == 1 { gap } else { g.min_ms.min(gap) };
            g.max_ms = g.max_ms.max(gap);
            self.sum_ms += gap;
            g.mean_ms = self.sum_ms / n;
        }
        self.last = Some(at);
        g.count += 1;
    }

    pub(crate) fn gaps(&self) -> api::TxGaps {
        self.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn gaps_count_min_mean_max() {
        let mut m = TxGapMeter::default();
        let t0 = Instant::now();
        for ms in [0, 1000, 1900, 3000] {
            m.sent(t0 + Duration::from_millis(ms));
        }
        let g = m.gaps();
        assert_eq!(g.count, 4);
        assert!((g.min_ms - 900.0).abs() < 1e-6);
        assert!((g.max_ms - 1100.0).abs() < 1e-6);
        assert!((g.mean_ms - 1000.0).abs() < 1e-6);
    }
}
