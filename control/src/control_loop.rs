//! The control thread: pinned to the control core, it owns one extra TX queue on every
//! 802.3ad member (LACPDUs and marker responses never wait for data traffic or a worker),
//! receives slow-protocol frames from the workers' rings, polls member links every 10 ms,
//! drives the LACP engine on a monotonic clock and publishes each bond's member table to
//! the workers. Static bond modes (active-backup, balance-xor) are decided here from link
//! state alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conf::BondMode;
use dataplane::bond::{BondTable, SharedTable};
use dpdk::{self, Burst, Consumer, Duplex, Link, Mempool, PortInfo, Speed, TxQueue};
use lacp::config::{Duplex as LDuplex, LinkStatus, Speed as LSpeed};
use lacp::info::{Event, TxKind};
use lacp::time::Instant;
use lacp::{BondId, Engine, PortId as LacpPort};
use serde::Serialize;

/// What the control thread knows, refreshed every [`STATUS_EVERY`]: read by the demo's
/// live view and written to `--status FILE` for scripts and tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Milliseconds since the control thread started.
    pub uptime_ms: u64,
    /// Per bond.
    pub bonds: Vec<BondStatus>,
    /// Router mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<crate::router::RouterStatus>,
}

/// One bond in [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct BondStatus {
    /// Name.
    pub name: String,
    /// "802.3ad", "active-backup" or "balance-xor".
    pub mode: String,
    /// Members carrying egress now, in table order.
    pub distributing: Vec<String>,
    /// Version of the table the workers use.
    pub table_version: u64,
    /// The bond's MAC address (configured, else its first member's).
    pub mac: String,
    /// LACP system id ("priority,mac") of an 802.3ad bond.
    pub system: Option<String>,
    /// Fewest distributing members for the bond to be up.
    pub min_links: u16,
    /// Per member.
    pub members: Vec<MemberStatus>,
}

/// One member in [`BondStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// Port name.
    pub name: String,
    /// Carrier.
    pub link_up: bool,
    /// Speed in Mb/s, when known.
    pub speed_mbps: Option<u32>,
    /// "full", "half" or "unknown".
    pub duplex: &'static str,
    /// Ingress accepted.
    pub collecting: bool,
    /// In the distribution table.
    pub distributing: bool,
    /// Why not distributing (802.3ad members), in plain words.
    pub reason: Option<String>,
    /// LACP details (802.3ad members).
    pub lacp: Option<MemberLacp>,
}

/// LACP view of a member.
#[derive(Debug, Clone, Serialize)]
pub struct MemberLacp {
    /// Actor state bits.
    pub actor_state: u8,
    /// Actor state decoded.
    pub actor_state_names: String,
    /// Partner state bits.
    pub partner_state: u8,
    /// Partner state decoded.
    pub partner_state_names: String,
    /// Partner system priority and MAC.
    pub partner_system: String,
    /// Partner key.
    pub partner_key: u16,
    /// Partner port number.
    pub partner_port: u16,
    /// Actor key and port number.
    pub actor_key: u16,
    /// Actor port number.
    pub actor_port: u16,
    /// Receive machine state.
    pub rx_state: String,
    /// Mux machine state.
    pub mux_state: String,
    /// LACPDUs received.
    pub lacpdus_rx: u64,
    /// LACPDUs sent.
    pub lacpdus_tx: u64,
    /// Intervals between our LACPDU departures on this member.
    pub tx_gaps: TxGaps,
    /// 802.3ad MIB counters.
    pub mib: crate::metrics::Mib,
    /// Selection (802.1AX Selected): "selected", "unselected" or "standby".
    pub selected: String,
}

/// Intervals between a member's LACPDU departures: the partner expires us if a gap
/// reaches its timeout, so the largest gap is what an operator watches (under load too).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TxGaps {
    /// LACPDUs sent.
    pub count: u64,
    /// Shortest interval between two LACPDUs, ms.
    pub min_ms: f64,
    /// Longest interval, ms.
    pub max_ms: f64,
    /// Mean interval, ms.
    pub mean_ms: f64,
    #[serde(skip)]
    last: Option<std::time::Instant>,
    #[serde(skip)]
    sum_ms: f64,
}

impl TxGaps {
    fn sent(&mut self, at: std::time::Instant) {
        if let Some(prev) = self.last {
            let gap = at.duration_since(prev).as_secs_f64() * 1e3;
            let n = self.count as f64; // intervals so far = count - 1
            self.min_ms = if self.count == 1 {
                gap
            } else {
                self.min_ms.min(gap)
            };
            self.max_ms = self.max_ms.max(gap);
            self.sum_ms += gap;
            self.mean_ms = self.sum_ms / n;
        }
        self.last = Some(at);
        self.count += 1;
    }
}

/// Where the control thread publishes [`Status`].
pub type SharedStatus = Arc<arc_swap::ArcSwap<Status>>;

/// How often [`Status`] is refreshed.
pub const STATUS_EVERY: Duration = Duration::from_millis(100);

/// How often member links are read.
pub const LINK_POLL: Duration = Duration::from_millis(10);
/// Longest sleep between iterations (bounds the latency of slow-protocol frames).
const MAX_SLEEP: Duration = Duration::from_millis(1);

/// A bond member as the control thread sees it.
pub struct Member {
    /// Runtime port index.
    pub port: usize,
    /// Port name.
    pub name: String,
    /// Index into [`ControlLoop::bonds`].
    pub bond: usize,
    /// Reads link state.
    pub info: PortInfo,
    /// Rings from the workers carrying this member's slow-protocol frames.
    pub slow: Vec<Consumer>,
    /// Ring to worker 0, for LACPDUs when the control TX queue does not reach the peer.
    pub via_worker: Option<dpdk::Producer>,
    /// LACPDUs go through worker 0 (the peer does not read our control queue).
    pub use_worker: bool,
    /// Consecutive failed transmits on the control queue.
    tx_failures: u32,
    /// The member's own slow-protocol RX queue, when rte_flow steers them there.
    pub slow_rx: Option<dpdk::RxQueue>,
    /// Frames other than slow protocols found on that queue (dropped).
    pub slow_rx_other: u64,
    /// Its LACP engine port (802.3ad members).
    pub lacp: Option<LacpPort>,
    /// Configured speed override (Mb/s).
    pub speed_override: Option<u32>,
    /// Configured duplex override.
    pub duplex_override: Option<conf::Duplex>,
    /// Kernel interface under the PMD (af_packet, af_xdp), whose carrier the PMD does
    /// not report: read from sysfs and combined with the PMD's view.
    pub kernel_iface: Option<String>,
    pub(crate) last_link: Option<LinkStatus>,
    warned_unknown: bool,
    pub(crate) tx_dropped: u64,
    pub(crate) tx_gaps: TxGaps,
}

impl Member {
    /// A member; `tx`/`lacp` are set for 802.3ad bonds.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        port: usize,
        name: String,
        bond: usize,
        info: PortInfo,
        slow: Vec<Consumer>,
        lacp: Option<LacpPort>,
        speed_override: Option<u32>,
        duplex_override: Option<conf::Duplex>,
    ) -> Member {
        Member {
            port,
            name,
            bond,
            info,
            slow,
            lacp,
            speed_override,
            duplex_override,
            kernel_iface: None,
            via_worker: None,
            use_worker: false,
            tx_failures: 0,
            slow_rx: None,
            slow_rx_other: 0,
            last_link: None,
            warned_unknown: false,
            tx_dropped: 0,
            tx_gaps: TxGaps::default(),
        }
    }
}

/// A bond as the control thread sees it.
pub struct Bond {
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: BondMode,
    /// Indices into [`ControlLoop::members`], in config order.
    pub members: Vec<usize>,
    /// The table workers read.
    pub table: SharedTable,
    /// The engine's bond (802.3ad).
    pub lacp: Option<BondId>,
    /// Nothing distributes below this many usable members (static modes; the engine
    /// enforces it for 802.3ad).
    pub min_links: u16,
    /// The bond's MAC address.
    pub mac: dpdk::MacAddr,
    pub(crate) distributing: Vec<usize>,
    pub(crate) collecting: Vec<bool>,
    version: u64,
    pub(crate) dirty: bool,
}

impl Bond {
    /// A bond whose table starts down.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        mode: BondMode,
        members: Vec<usize>,
        table: SharedTable,
        lacp: Option<BondId>,
        min_links: u16,
        mac: dpdk::MacAddr,
        nports: usize,
    ) -> Bond {
        Bond {
            name,
            mode,
            members,
            table,
            lacp,
            min_links,
            mac,
            distributing: Vec::new(),
            collecting: vec![false; nports],
            version: 0,
            dirty: true,
        }
    }

    /// Asks for the table to be published again (its management overlay changed).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

/// Everything the control thread owns.
pub struct ControlLoop {
    /// The LACP engine.
    pub engine: Engine,
    /// Bond members.
    pub members: Vec<Member>,
    /// Bonds.
    pub bonds: Vec<Bond>,
    /// Router mode: exception path and FIB maintenance.
    pub router: Option<crate::router::RouterControl>,
    /// The control thread's own TX queue on each port (by port index) that has one.
    pub port_tx: Vec<Option<TxQueue>>,
    /// Pool for LACPDUs and marker responses.
    pub pool: Arc<Mempool>,
    /// Monotonic origin of engine time.
    pub epoch: std::time::Instant,
    /// Runtime port names by index (for logs).
    pub port_names: Vec<String>,
    /// Published status.
    pub status: SharedStatus,
    /// Management API: socket, capture rings, drains.
    pub ops: crate::mgmt::Ops,
    /// Hitless reload: the running config, spare ports, the workers' port plans.
    pub reloader: crate::reload::Reloader,
}

fn link_status(l: &Link, m: &Member) -> LinkStatus {
    let speed = match (m.speed_override, l.speed) {
        (Some(s), _) => LSpeed::Known(s),
        (None, Speed::Mbps(s)) => LSpeed::Known(s),
        (None, Speed::Unknown) => LSpeed::Unknown,
    };
    let duplex = match (m.duplex_override, l.duplex) {
        (Some(conf::Duplex::Full), _) => LDuplex::Full,
        (Some(conf::Duplex::Half), _) => LDuplex::Half,
        (None, Duplex::Full) => LDuplex::Full,
        (None, Duplex::Half) => LDuplex::Half,
        (None, Duplex::Unknown) => LDuplex::Unknown,
    };
    LinkStatus {
        up: l.up,
        speed,
        duplex,
    }
}

/// Consecutive failed transmits on the control thread's queue before its frames go through
/// worker 0 instead.
const TX_FAILURES_BEFORE_FALLBACK: u32 = 2;

/// Sends one slow-protocol frame for member `m`: on the control thread's own TX queue, or
/// through worker 0 once that queue has proven not to reach the peer (virtual links that
/// keep queue indexes, e.g. a memif peer with a single queue, have no ring behind it).
fn send_slow(m: &mut Member, port_tx: &mut Option<TxQueue>, mb: dpdk::Mbuf) -> bool {
    let mut mb = Some(mb);
    if !m.use_worker {
        if let Some(tx) = port_tx.as_mut() {
            let mut out = Burst::new();
            let _ = out.push(mb.take().expect("set above"));
            // The queue is only ever this thread's: a full one means the PMD is stuck or
            // has no ring behind it; retry briefly.
            for _ in 0..3 {
                if tx.tx_burst(&mut out) == 1 {
                    m.tx_failures = 0;
                    return true;
                }
            }
            mb = out.pop();
            m.tx_failures += 1;
            if m.tx_failures < TX_FAILURES_BEFORE_FALLBACK || m.via_worker.is_none() {
                return false;
            }
            m.use_worker = true;
            tracing::warn!(
                member = %m.name,
                "the peer does not receive on the control thread's TX queue (a virtual link that keeps \
                 queue indexes and a peer with fewer queues); LACPDUs now leave through worker 0's queue"
            );
        }
    }
    match (m.via_worker.as_mut(), mb) {
        (Some(ring), Some(f)) => ring.push(f).is_ok(),
        _ => false,
    }
}

/// Carrier of a kernel network interface (false when it is gone or unreadable).
fn kernel_carrier(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/carrier"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// The kernel interface a vdev spec sits on, for PMDs that do not report its carrier.
pub fn kernel_iface_of(spec: &str) -> Option<String> {
    let mut parts = spec.split(',');
    let name = parts.next()?;
    if !(name.starts_with("net_af_packet") || name.starts_with("net_af_xdp")) {
        return None;
    }
    parts.find_map(|kv| kv.strip_prefix("iface=").map(str::to_string))
}

impl ControlLoop {
    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    /// Runs on the calling thread until `stop` is set; then every 802.3ad member sends a
    /// final out-of-sync LACPDU so the partner moves traffic away at once. Returns the
    /// queues it owned (so the ports can be closed).
    pub fn run(mut self, core: usize, stop: &AtomicBool) -> (Vec<dpdk::RxQueue>, Vec<TxQueue>) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            tracing::warn!(
                cpu = core,
                "control thread could not pin itself to its core"
            );
        }
        if let Err(e) = dpdk::register_thread() {
            tracing::warn!("control thread: {e}; LACPDU buffers come without a per-core cache");
        }
        let mut burst = Burst::new();
        if let Some(r) = self.router.as_mut() {
            r.start();
        }
        let mut next_link = std::time::Instant::now();
        let mut next_status = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let wall = std::time::Instant::now();
            if wall >= next_link {
                self.poll_links();
                next_link = wall + LINK_POLL;
            }
            if wall >= next_status {
                self.publish_status();
                next_status = wall + STATUS_EVERY;
            }
            self.receive(&mut burst);
            if let Some(r) = self.router.as_mut() {
                r.poll(&mut self.port_tx, &mut burst);
            }
            let now = self.now();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
            self.transmit(now);
            self.events(now);
            crate::mgmt::poll(&mut self);
            self.publish();
            self.poll_reload();
            // Sleep until the next deadline, at most MAX_SLEEP (slow frames wait in rings).
            let mut sleep =
                MAX_SLEEP.min(next_link.saturating_duration_since(std::time::Instant::now()));
            if let Some(t) = self.engine.poll_timeout() {
                sleep = sleep.min(t.saturating_duration_since(self.now()));
            }
            if !sleep.is_zero() {
                std::thread::sleep(sleep);
            }
        }
        self.leave();
        dpdk::unregister_thread();
        let mut rx: Vec<dpdk::RxQueue> = self.reloader.take_queues();
        rx.extend(self.members.into_iter().filter_map(|m| m.slow_rx));
        (rx, self.port_tx.into_iter().flatten().collect())
    }

    /// Graceful stop: remove every member from the engine (which queues a final LACPDU
    /// with synchronization, collecting and distributing cleared) and send those.
    fn leave(&mut self) {
        let now = self.now();
        let mut due = 0;
        for m in &self.members {
            if let Some(p) = m.lacp {
                if self.engine.remove_port(p, now).is_ok() {
                    due += 1;
                }
            }
        }
        let mut sent = self.transmit(now);
        // A member that has just used up its 3 LACPDUs per second gets its final one when
        // the limit allows (at most one fast_periodic later): wait for it, bounded.
        let give_up = std::time::Instant::now() + Duration::from_millis(1500);
        while let Some(t) = self.engine.poll_timeout() {
            let wait = t.saturating_duration_since(self.now());
            if std::time::Instant::now() + wait > give_up {
                break;
            }
            std::thread::sleep(wait);
            sent += self.transmit(self.now());
        }
        if due > 0 {
            tracing::info!(members = sent, "sent final out-of-sync LACPDUs");
            if sent < due {
                tracing::warn!(members = due - sent, "could not send every final LACPDU");
            }
        }
    }

    fn poll_links(&mut self) {
        let now = self.now();
        for i in 0..self.members.len() {
            let m = &self.members[i];
            let mut link = match m.info.link() {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(member = %m.name, "reading link state failed: {e}");
                    continue;
                }
            };
            if let Some(iface) = &m.kernel_iface {
                link.up &= kernel_carrier(iface);
            }
            let status = link_status(&link, m);
            if m.last_link == Some(status) {
                continue;
            }
            let bond = m.bond;
            let m = &mut self.members[i];
            let was_up = m.last_link.map(|l| l.up);
            m.last_link = Some(status);
            if was_up != Some(status.up) {
                tracing::info!(bond = %self.bonds[bond].name, member = %m.name, link = %link, "member link {}", if status.up { "up" } else { "down" });
            }
            if status.up
                && !m.warned_unknown
                && (status.speed == LSpeed::Unknown || status.duplex == LDuplex::Unknown)
            {
                m.warned_unknown = true;
                tracing::warn!(
                    bond = %self.bonds[bond].name,
                    member = %m.name,
                    speed = if status.speed == LSpeed::Unknown { "unknown" } else { "known" },
                    duplex = if status.duplex == LDuplex::Unknown { "unknown" } else { "known" },
                    "the PMD does not report link speed/duplex; LACP keeps running with the key from the config \
                     (set speed/duplex on the port to override)"
                );
            }
            if let Some(p) = m.lacp {
                if let Err(e) = self.engine.handle_link(p, status, now) {
                    tracing::warn!(member = %m.name, "LACP engine refused link state: {e}");
                }
            } else {
                self.bonds[bond].dirty = true;
            }
        }
        // Static modes decide from link state alone.
        for b in 0..self.bonds.len() {
            if self.bonds[b].lacp.is_none() && self.bonds[b].dirty {
                self.static_tables(b);
            }
        }
    }

    pub(crate) fn static_tables(&mut self, b: usize) {
        let bond = &self.bonds[b];
        let up: Vec<usize> = bond
            .members
            .iter()
            .filter(|&&m| self.members[m].last_link.is_some_and(|l| l.up))
            .map(|&m| self.members[m].port)
            .collect();
        let chosen: Vec<usize> = match bond.mode {
            BondMode::ActiveBackup => {
                // Keep the current active member while it is up; otherwise the first up
                // member in config order.
                match bond.distributing.first() {
                    Some(cur) if up.contains(cur) => vec![*cur],
                    _ => up.first().copied().into_iter().collect(),
                }
            }
            _ => up,
        };
        let chosen = if (chosen.len() as u16) < bond.min_links.max(1) {
            Vec::new()
        } else {
            chosen
        };
        let bond = &mut self.bonds[b];
        for c in bond.collecting.iter_mut() {
            *c = false;
        }
        for &p in &chosen {
            bond.collecting[p] = true;
        }
        bond.distributing = chosen;
        bond.dirty = true;
    }

    fn receive(&mut self, burst: &mut Burst) {
        let now = self.now();
        for (mi, m) in self.members.iter_mut().enumerate() {
            let Some(p) = m.lacp else { continue };
            if let Some(q) = m.slow_rx.as_mut() {
                while q.rx_burst(burst, 32) > 0 {
                    for f in burst.as_slice() {
                        if dataplane::bond::is_slow_protocol(f.data()) {
                            self.ops.capture(m.bond, mi, false, f.data(), now);
                            if let Err(e) = self.engine.handle_frame(p, f.data(), now) {
                                tracing::debug!(member = %m.name, "slow frame not handled: {e}");
                            }
                        } else {
                            // Only before the RSS table was narrowed; counted, dropped.
                            m.slow_rx_other += 1;
                        }
                    }
                    burst.clear();
                }
            }
            for ring in &mut m.slow {
                while ring.pop_into(burst, 64) > 0 {
                    for f in burst.as_slice() {
                        self.ops.capture(m.bond, mi, false, f.data(), now);
                        if let Err(e) = self.engine.handle_frame(p, f.data(), now) {
                            tracing::debug!(member = %m.name, "slow frame not handled: {e}");
                        }
                    }
                    burst.clear();
                }
            }
        }
    }

    /// Sends what the engine has due; returns how many final LACPDUs (of members leaving)
    /// went out.
    pub(crate) fn transmit(&mut self, now: Instant) -> usize {
        let mut finals = 0;
        while let Some(t) = self.engine.poll_transmit(now) {
            let Some(mi) = self.members.iter().position(|m| m.lacp == Some(t.port)) else {
                // A member a reload removed: its final LACPDU, deferred by the rate limit.
                if crate::reload::send_final(self, &t) {
                    finals += 1;
                }
                continue;
            };
            let m = &mut self.members[mi];
            let Some(mut mb) = self.pool.alloc() else {
                m.tx_dropped += 1;
                tracing::warn!(member = %m.name, "no mbuf for a slow-protocol frame");
                continue;
            };
            let bytes = t.frame.as_bytes();
            match mb.append(bytes.len() as u16) {
                Some(d) => d.copy_from_slice(bytes),
                None => continue,
            }
            let sent = send_slow(m, &mut self.port_tx[m.port], mb);
            if sent {
                self.ops.capture(m.bond, mi, true, bytes, now);
                if t.kind == TxKind::Lacpdu {
                    m.tx_gaps.sent(std::time::Instant::now());
                }
                if t.kind == TxKind::FinalLacpdu {
                    finals += 1;
                }
            } else {
                m.tx_dropped += 1;
                if m.tx_dropped.is_power_of_two() {
                    tracing::warn!(member = %m.name, kind = ?t.kind, dropped = m.tx_dropped, "could not transmit a slow-protocol frame");
                }
            }
        }
        finals
    }

    fn events(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                Event::Collecting { port, enabled } => {
                    if let Some(m) = self.members.iter().find(|m| m.lacp == Some(port)) {
                        let b = &mut self.bonds[m.bond];
                        b.collecting[m.port] = enabled;
                        b.dirty = true;
                        tracing::info!(bond = %b.name, member = %m.name, "collecting {}", if enabled { "on" } else { "off" });
                    }
                }
                Event::Distributing { port, enabled } => {
                    if let Some(m) = self.members.iter().find(|m| m.lacp == Some(port)) {
                        let b = &self.bonds[m.bond];
                        if enabled {
                            tracing::info!(bond = %b.name, member = %m.name, "member distributing");
                        } else {
                            let why = self
                                .engine
                                .reason(port, now)
                                .ok()
                                .flatten()
                                .map(|r| r.to_string())
                                .unwrap_or_else(|| "removed".into());
                            tracing::info!(bond = %b.name, member = %m.name, reason = %why, "member stopped distributing");
                        }
                    }
                }
                Event::Distribution { bond, members } => {
                    if let Some(bi) = self.bonds.iter().position(|b| b.lacp == Some(bond)) {
                        let ports: Vec<usize> = members
                            .iter()
                            .filter_map(|p| {
                                self.members
                                    .iter()
                                    .find(|m| m.lacp == Some(*p))
                                    .map(|m| m.port)
                            })
                            .collect();
                        let b = &mut self.bonds[bi];
                        b.distributing = ports;
                        b.dirty = true;
                    }
                }
                Event::ActiveAggregator { bond, aggregator } => {
                    if let Some(b) = self.bonds.iter().find(|b| b.lacp == Some(bond)) {
                        match aggregator {
                            Some(a) => {
                                tracing::info!(bond = %b.name, aggregator = %a, "active aggregator selected")
                            }
                            None => tracing::info!(bond = %b.name, "no active aggregator"),
                        }
                    }
                }
                Event::Churn {
                    port,
                    side,
                    detected,
                } => {
                    if let Some(m) = self.members.iter().find(|m| m.lacp == Some(port)) {
                        if detected {
                            tracing::warn!(member = %m.name, side = ?side, "LACP churn: synchronization has not settled for the churn detection time");
                        } else {
                            tracing::info!(member = %m.name, side = ?side, "LACP churn cleared");
                        }
                    }
                }
                Event::Loopback { port, detected } => {
                    if let Some(m) = self.members.iter().find(|m| m.lacp == Some(port)) {
                        if detected {
                            tracing::warn!(member = %m.name, "loopback: LACPDUs from our own system arrive on this member; it is kept out");
                        } else {
                            tracing::info!(member = %m.name, "loopback cleared");
                        }
                    }
                }
                // Warned about from the link poll, for every bond mode.
                Event::LinkAttributesUnknown { .. } => {}
            }
        }
    }

    fn publish_status(&self) {
        let now = self.now();
        let bonds = self
            .bonds
            .iter()
            .map(|b| {
                let table = b.table.load();
                let members = b
                    .members
                    .iter()
                    .map(|&mi| {
                        let m = &self.members[mi];
                        let link = m.last_link.unwrap_or(LinkStatus::down());
                        let info = m.lacp.and_then(|p| self.engine.port_info(p, now).ok());
                        MemberStatus {
                            name: m.name.clone(),
                            link_up: link.up,
                            speed_mbps: link.speed.mbps(),
                            duplex: match link.duplex {
                                LDuplex::Full => "full",
                                LDuplex::Half => "half",
                                LDuplex::Unknown => "unknown",
                            },
                            collecting: table.collects(m.port),
                            distributing: table.distributing.contains(&(m.port as u16)),
                            reason: info
                                .as_ref()
                                .and_then(|i| i.reason.as_ref())
                                .map(|r| r.to_string()),
                            lacp: info.map(|i| MemberLacp {
                                actor_state: i.actor.state.bits(),
                                actor_state_names: i.actor.state.to_string(),
                                partner_state: i.partner.state.bits(),
                                partner_state_names: i.partner.state.to_string(),
                                partner_system: format!(
                                    "{},{}",
                                    i.partner.system_priority, i.partner.system
                                ),
                                partner_key: i.partner.key,
                                partner_port: i.partner.port,
                                actor_key: i.actor.key,
                                actor_port: i.actor.port,
                                rx_state: format!("{:?}", i.rx_state),
                                mux_state: format!("{:?}", i.mux_state),
                                lacpdus_rx: i.counters.lacpdus_rx,
                                lacpdus_tx: i.counters.lacpdus_tx,
                                tx_gaps: m.tx_gaps,
                                mib: (&i.counters).into(),
                                selected: format!("{:?}", i.selected).to_lowercase(),
                            }),
                        }
                    })
                    .collect();
                BondStatus {
                    name: b.name.clone(),
                    mode: b.mode.as_str().to_string(),
                    distributing: table
                        .distributing
                        .iter()
                        .map(|&p| self.port_names[p as usize].clone())
                        .collect(),
                    table_version: table.version,
                    mac: b.mac.to_string(),
                    system: b
                        .lacp
                        .and_then(|id| self.engine.bond_info(id).ok())
                        .map(|i| i.system.to_string()),
                    min_links: b.min_links,
                    members,
                }
            })
            .collect();
        self.status.store(Arc::new(Status {
            uptime_ms: self.epoch.elapsed().as_millis() as u64,
            bonds,
            router: self.router.as_ref().map(|r| r.status()),
        }));
    }

    pub(crate) fn publish(&mut self) {
        for b in &mut self.bonds {
            if !b.dirty {
                continue;
            }
            b.dirty = false;
            // Management overlay: drained members carry no egress; members being drained
            // or undrained keep collecting (see mgmt.rs).
            let member_of = |p: usize| {
                b.members
                    .iter()
                    .copied()
                    .find(|&m| self.members[m].port == p)
            };
            let distributing: Vec<usize> = b
                .distributing
                .iter()
                .copied()
                .filter(|&p| member_of(p).is_none_or(|m| !self.ops.egress_blocked(m)))
                .collect();
            let mut collecting = b.collecting.clone();
            for &m in &b.members {
                if self.ops.collect_forced(m) {
                    collecting[self.members[m].port] = true;
                }
            }
            let current = b.table.load();
            if current
                .distributing
                .iter()
                .map(|&p| p as usize)
                .eq(distributing.iter().copied())
                && current.collecting == collecting
            {
                continue;
            }
            b.version += 1;
            let dist: Vec<u16> = distributing.iter().map(|&p| p as u16).collect();
            let names: Vec<&str> = distributing
                .iter()
                .map(|&p| self.port_names[p].as_str())
                .collect();
            tracing::info!(bond = %b.name, version = b.version, distributing = ?names, "bond table published");
            b.table
                .store(Arc::new(BondTable::new(dist, collecting, b.version)));
        }
    }
}
