//! The control thread: pinned to the control core, it owns one extra TX queue on every
//! 802.3ad member (LACPDUs and marker responses never wait for data traffic or a worker),
//! receives slow-protocol frames from the workers' rings, polls member links every 10 ms,
//! drives the LACP engine on a monotonic clock and publishes each bond's member table to
//! the workers. Static bond modes (active-backup, balance-xor) are decided here from link
//! state alone. It also serves the management socket (`views.rs` answers it), applies
//! reloads ([`reload`]) and drains ([`drain`]), and runs the router's exception path.

pub mod capture;
pub mod drain;
mod handoff;
mod member;
pub mod reload;
mod status;
mod views;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conf::BondMode;
use dataplane::bond::BondTable;
use dpdk::{Burst, Mempool, TxQueue};
use lacp::info::{Event, TxKind};
use lacp::RestoreOutcome;
use lacp::{Engine, Instant};
use types::{Duplex, Speed};

use crate::mgmt::{Hub, Server};
use crate::notify::Heartbeat;
use crate::router::RouterControl;
use crate::status::SharedStatus;
use capture::CaptureRing;
use drain::{Drain, Step};

pub use handoff::RestartFlags;
pub(crate) use member::kernel_carrier;
pub use member::{Bond, BondParts, Member, MemberParts};
pub use reload::{ReloadError, ReloadRequest, Reloader, SparePort};

/// How often [`crate::status::Status`] is refreshed.
pub const STATUS_EVERY: Duration = Duration::from_millis(100);

/// How often member links are read.
pub const LINK_POLL: Duration = Duration::from_millis(10);
/// How often the partner-data input of the engine is sampled per member.
const PARTNER_DATA_EVERY: Duration = Duration::from_millis(900);
/// Longest sleep between iterations while frames pass through the control thread (slow
/// protocols, the exception path): bounds their latency in a conversation.
const MAX_SLEEP: Duration = Duration::from_millis(1);
/// Longest sleep once nothing has passed for a while: the sleep doubles from
/// [`MAX_SLEEP`] with every idle iteration up to this, so an idle control thread wakes
/// about 100 times a second (not 1000) and leaves a shared CPU alone. The first frame
/// after a quiet spell waits at most this long; the next ones at most [`MAX_SLEEP`].
const IDLE_SLEEP: Duration = LINK_POLL;

/// Admin events kept for `show events`.
const ADMIN_EVENTS: usize = 256;

/// An operator's action on a member, or what became of its saved state at a restart, for
/// `show events`.
struct AdminEvent {
    at: Instant,
    member: usize,
    /// "Admin" or "Restore".
    machine: &'static str,
    text: String,
}

/// Everything the control thread is made of; the runtime fills it.
pub struct ControlParts {
    /// DPDK's EAL (the control thread registers with it).
    pub eal: &'static dpdk::Eal,
    /// The LACP engine, with every 802.3ad bond and member added.
    pub engine: Engine,
    /// Bond members.
    pub members: Vec<Member>,
    /// Bonds.
    pub bonds: Vec<Bond>,
    /// Router mode: exception path and FIB upkeep.
    pub router: Option<RouterControl>,
    /// The control thread's own TX queue on each port (by port index) that has one.
    pub port_tx: Vec<Option<TxQueue>>,
    /// Pool for LACPDUs and marker responses.
    pub pool: Arc<Mempool>,
    /// Monotonic origin of engine time.
    pub epoch: std::time::Instant,
    /// Port names by runtime index (for logs).
    pub port_names: Vec<String>,
    /// Where [`crate::status::Status`] is published.
    pub status: SharedStatus,
    /// The management socket and the main thread's counters.
    pub hub: Arc<Hub>,
    /// Hitless reload state.
    pub reloader: Reloader,
    /// `[management] state_file`: the handoff state file for warm restart.
    pub state_file: Option<std::path::PathBuf>,
    /// Restart requests and the planned-restart stop.
    pub restart: Arc<RestartFlags>,
}

/// Everything the control thread owns.
pub struct ControlLoop {
    eal: &'static dpdk::Eal,
    engine: Engine,
    members: Vec<Member>,
    bonds: Vec<Bond>,
    router: Option<RouterControl>,
    port_tx: Vec<Option<TxQueue>>,
    pool: Arc<Mempool>,
    epoch: std::time::Instant,
    /// Unix time (ns) of engine time zero: every instant shown to people is wall-clock.
    wall0_ns: u128,
    port_names: Vec<String>,
    status: SharedStatus,
    hub: Arc<Hub>,
    server: Option<Server>,
    /// Per bond.
    capture: Vec<CaptureRing>,
    /// Per member.
    drains: Vec<Drain>,
    admin: VecDeque<AdminEvent>,
    reloader: Reloader,
    /// The service manager's readiness, status line and watchdog (see [`crate::notify`]).
    heartbeat: Heartbeat,
    state_file: Option<std::path::PathBuf>,
    /// Keeps the handoff state file current (crash recovery).
    handoff: Option<handoff::HandoffWriter>,
    restart: Arc<RestartFlags>,
}

fn unix_ns_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl ControlLoop {
    /// The control thread's state; [`ControlLoop::run`] runs it.
    pub fn new(p: ControlParts) -> ControlLoop {
        let wall0_ns = unix_ns_now().saturating_sub(p.epoch.elapsed().as_nanos());
        ControlLoop {
            capture: (0..p.bonds.len()).map(|_| CaptureRing::new()).collect(),
            drains: vec![Drain::Off; p.members.len()],
            admin: VecDeque::new(),
            eal: p.eal,
            engine: p.engine,
            members: p.members,
            bonds: p.bonds,
            router: p.router,
            port_tx: p.port_tx,
            pool: p.pool,
            epoch: p.epoch,
            wall0_ns,
            port_names: p.port_names,
            status: p.status,
            hub: p.hub,
            server: None,
            reloader: p.reloader,
            heartbeat: Heartbeat::new(),
            state_file: p.state_file,
            handoff: None,
            restart: p.restart,
        }
    }

    /// Engine time now.
    fn now(&self) -> Instant {
        Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    /// Unix time (ns) of an engine instant.
    fn unix_ns(&self, t: Instant) -> u128 {
        crate::status::unix_ns(self.wall0_ns, t)
    }

    /// An engine instant as people read it (RFC 3339).
    fn wall(&self, t: Instant) -> String {
        api::rfc3339(self.unix_ns(t))
    }

    fn admin_event(&mut self, at: Instant, member: usize, text: String) {
        self.push_event(at, member, "Admin", text);
    }

    /// What became of a member's saved state (warm restart), for `show events`.
    fn restore_event(&mut self, at: Instant, member: usize, text: String) {
        self.push_event(at, member, "Restore", text);
    }

    fn push_event(&mut self, at: Instant, member: usize, machine: &'static str, text: String) {
        if self.admin.len() >= ADMIN_EVENTS {
            self.admin.pop_front();
        }
        self.admin.push_back(AdminEvent {
            at,
            member,
            machine,
            text,
        });
    }

    /// Runs on the calling thread until `stop` is set; then every 802.3ad member sends a
    /// final out-of-sync LACPDU so the partner moves traffic away at once (or, for a
    /// planned restart, a last in-sync one, and the handoff state file is written). Returns
    /// the queues it owned (so the ports can be closed).
    pub fn run(mut self, core: usize, stop: &AtomicBool) -> (Vec<dpdk::RxQueue>, Vec<TxQueue>) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            tracing::warn!(
                cpu = core,
                "control thread could not pin itself to its core"
            );
        }
        if let Err(e) = dpdk::register_thread(self.eal) {
            tracing::warn!("control thread: {e}; LACPDU buffers come without a per-core cache");
        }
        // Warm restart: saved state is offered before the first link report.
        if let Some(path) = self.state_file.clone() {
            self.restore_on_start(&path);
            match handoff::HandoffWriter::start(path.clone()) {
                Ok(w) => self.handoff = Some(w),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "handoff state file writer not started: {e}")
                }
            }
        }
        let mut burst = Burst::new();
        if let Some(r) = self.router.as_mut() {
            r.start();
        }
        let mut next_link = std::time::Instant::now();
        let mut next_status = std::time::Instant::now();
        let mut cap = MAX_SLEEP;
        while !stop.load(Ordering::Relaxed) {
            let wall = std::time::Instant::now();
            if wall >= next_link {
                self.heartbeat.stall_hook(stop);
                self.poll_links();
                self.follow_partner_data();
                next_link = wall + LINK_POLL;
            }
            if wall >= next_status {
                self.publish_status();
                let ports = self.port_names.len();
                let status = self.status.load();
                self.heartbeat
                    .state(|| crate::notify::status_line(&status, ports));
                self.keep_handoff();
                next_status = wall + STATUS_EVERY;
            }
            let mut moved = self.receive(&mut burst);
            if let Some(r) = self.router.as_mut() {
                moved += r.poll(&mut self.port_tx, &mut burst);
            }
            let now = self.now();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
            self.transmit(now);
            self.events(now);
            self.advance_drains();
            self.serve_management();
            self.publish();
            self.poll_reload();
            // The watchdog stands for this loop's progress: pinged from here only.
            self.heartbeat.beat();
            // Sleep until the next deadline, at most `cap` (slow frames wait in rings).
            cap = if moved > 0 {
                MAX_SLEEP
            } else {
                (cap * 2).min(IDLE_SLEEP)
            };
            let mut sleep = cap.min(next_link.saturating_duration_since(std::time::Instant::now()));
            if let Some(t) = self.engine.poll_timeout() {
                sleep = sleep.min(t.saturating_duration_since(self.now()));
            }
            if !sleep.is_zero() {
                std::thread::sleep(sleep);
            }
        }
        if self.restart.planned.load(Ordering::SeqCst) {
            self.handoff_for_restart();
        } else {
            self.leave();
            self.forget_handoff();
        }
        dpdk::unregister_thread();
        let mut rx: Vec<dpdk::RxQueue> = self.reloader.take_queues();
        rx.extend(self.members.into_iter().filter_map(|m| m.slow_rx));
        (rx, self.port_tx.into_iter().flatten().collect())
    }

    /// Takes the socket once the main thread hands it over, and answers what is there
    /// (never blocks).
    fn serve_management(&mut self) {
        if let Some(s) = self.hub.take_server() {
            tracing::info!(path = %s.path().display(), "management socket ready (fastlag ctl)");
            self.server = Some(s);
        }
        let Some(mut server) = self.server.take() else {
            return;
        };
        server.serve(self);
        self.server = Some(server);
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
                link.up &= member::kernel_carrier(iface);
            }
            let status = m.link_status(&link);
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
                && (status.speed == Speed::Unknown || status.duplex == Duplex::Unknown)
            {
                m.warned_unknown = true;
                tracing::warn!(
                    bond = %self.bonds[bond].name,
                    member = %m.name,
                    speed = if status.speed == Speed::Unknown { "unknown" } else { "known" },
                    duplex = if status.duplex == Duplex::Unknown { "unknown" } else { "known" },
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

    /// Active-backup and balance-xor: the members that distribute, from link state.
    fn static_tables(&mut self, b: usize) {
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

    /// Hands the slow-protocol frames the members received to the engine; returns how many.
    fn receive(&mut self, burst: &mut Burst) -> usize {
        let now = self.now();
        let mut n = 0;
        for (mi, m) in self.members.iter_mut().enumerate() {
            let Some(p) = m.lacp else { continue };
            let capture = &mut self.capture[m.bond];
            if let Some(q) = m.slow_rx.as_mut() {
                while q.rx_burst(burst, 32) > 0 {
                    n += burst.len();
                    for f in burst.as_slice() {
                        if dataplane::bond::is_slow_protocol(f.data()) {
                            capture.record(now, mi, false, f.data());
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
                    n += burst.len();
                    for f in burst.as_slice() {
                        capture.record(now, mi, false, f.data());
                        if let Err(e) = self.engine.handle_frame(p, f.data(), now) {
                            tracing::debug!(member = %m.name, "slow frame not handled: {e}");
                        }
                    }
                    burst.clear();
                }
            }
        }
        n
    }

    /// Sends what the engine has due; returns how many final LACPDUs (of members leaving)
    /// went out.
    fn transmit(&mut self, now: Instant) -> usize {
        let mut finals = 0;
        while let Some(t) = self.engine.poll_transmit(now) {
            let Some(mi) = self.members.iter().position(|m| m.lacp == Some(t.port)) else {
                // A member a reload removed: its final LACPDU, deferred by the rate limit.
                if self.send_final(&t) {
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
            let sent = m.send_slow(&mut self.port_tx[m.port], mb);
            if sent {
                self.capture[m.bond].record(now, mi, true, bytes);
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

    fn member_of_lacp(&self, port: lacp::PortId) -> Option<&Member> {
        self.members.iter().find(|m| m.lacp == Some(port))
    }

    fn events(&mut self, now: Instant) {
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                // Warm restart: what became of a member's saved state.
                Event::Restore { port, outcome } => {
                    let Some(mi) = self.members.iter().position(|m| m.lacp == Some(port)) else {
                        continue;
                    };
                    let (bond, member) = (
                        self.bonds[self.members[mi].bond].name.clone(),
                        self.members[mi].name.clone(),
                    );
                    let text = match outcome {
                        RestoreOutcome::Restored => {
                            tracing::info!(bond = %bond, member = %member, "LACP state restored: in sync and collecting/distributing without renegotiation; LACPDU sent now");
                            "restored: in sync from the saved state".to_string()
                        }
                        RestoreOutcome::Confirmed => {
                            tracing::info!(bond = %bond, member = %member, "LACP state restore confirmed by the partner's first LACPDU");
                            "confirmed by the partner's first LACPDU".to_string()
                        }
                        RestoreOutcome::Refused(r) => {
                            tracing::warn!(bond = %bond, member = %member, reason = %r, "LACP state restore refused; normal start for this member");
                            format!("refused: {r}")
                        }
                    };
                    self.restore_event(now, mi, text);
                }
                Event::Collecting { port, enabled } => {
                    if let Some(mi) = self.members.iter().position(|m| m.lacp == Some(port)) {
                        let m = &self.members[mi];
                        let b = &mut self.bonds[m.bond];
                        b.collecting[m.port] = enabled;
                        b.dirty = true;
                        tracing::info!(bond = %b.name, member = %m.name, "collecting {}", if enabled { "on" } else { "off" });
                    }
                }
                Event::Distributing { port, enabled } => {
                    if let Some(m) = self.member_of_lacp(port) {
                        let b = &self.bonds[m.bond];
                        if enabled {
                            tracing::info!(bond = %b.name, member = %m.name, "member distributing");
                        } else {
                            // Rendered now, so an age is right; the wall time stays right.
                            let why = self
                                .engine
                                .port_info(port, now)
                                .ok()
                                .and_then(|i| {
                                    crate::status::member_reason(
                                        &i,
                                        Some(now),
                                        self.wall0_ns,
                                        &self.engine,
                                    )
                                })
                                .unwrap_or_else(|| "removed".into());
                            tracing::info!(bond = %b.name, member = %m.name, reason = %why, "member stopped distributing");
                        }
                    }
                }
                Event::Distribution { bond, members } => {
                    if let Some(bi) = self.bonds.iter().position(|b| b.lacp == Some(bond)) {
                        let ports: Vec<usize> = members
                            .iter()
                            .filter_map(|p| self.member_of_lacp(*p).map(|m| m.port))
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
                    if let Some(m) = self.member_of_lacp(port) {
                        if detected {
                            tracing::warn!(member = %m.name, side = ?side, "LACP churn: synchronization has not settled for the churn detection time");
                        } else {
                            tracing::info!(member = %m.name, side = ?side, "LACP churn cleared");
                        }
                    }
                }
                Event::Loopback { port, detected } => {
                    if let Some(m) = self.member_of_lacp(port) {
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

    /// Data frames the workers received on member `m` (slow-protocol frames excluded), from
    /// the main thread's latest counter snapshot.
    fn data_rx(&self, m: usize) -> Option<u64> {
        let c = self.hub.counters()?;
        let p = c
            .now
            .ports
            .iter()
            .find(|p| p.name == self.members[m].name)?;
        Some(p.workers.rx.saturating_sub(p.workers.slow_to_control))
    }

    /// Tells the engine, about once a second per 802.3ad member, whether the partner's data
    /// frames arrive on it (any data frame the workers received since the last sample):
    /// a silent-partner fallback follows the link the partner sends on. Samples come from
    /// the main thread's counter snapshots; a snapshot is used once.
    fn follow_partner_data(&mut self) {
        let Some(c) = self.hub.counters() else {
            return;
        };
        let now = self.now();
        for m in 0..self.members.len() {
            let Some(port) = self.members[m].lacp else {
                continue;
            };
            let Some(rx) = self.data_rx(m) else {
                continue;
            };
            match self.members[m].data_sample {
                Some((at, _)) if c.at <= at || c.at - at < PARTNER_DATA_EVERY => {}
                Some((_, before)) => {
                    let _ = self.engine.handle_partner_data(port, rx > before, now);
                    self.members[m].data_sample = Some((c.at, rx));
                }
                None => self.members[m].data_sample = Some((c.at, rx)),
            }
        }
    }

    /// Moves every drain along with time (see [`drain`]).
    fn advance_drains(&mut self) {
        if self.drains.iter().all(|d| *d == Drain::Off) {
            return;
        }
        let now = self.now();
        for m in 0..self.drains.len() {
            if self.drains[m] == Drain::Off {
                continue;
            }
            let rx = self.data_rx(m);
            let collecting = self.members[m]
                .lacp
                .is_some_and(|p| self.engine.is_collecting(p));
            let Some(step) = self.drains[m].advance(now, rx, collecting) else {
                continue;
            };
            let b = self.members[m].bond;
            let (bond, member) = (&self.bonds[b].name, &self.members[m].name);
            match step {
                Step::AdvertiseOutOfSync => {
                    if let Some(p) = self.members[m].lacp {
                        if let Err(e) = self.engine.set_drain(p, true, now) {
                            tracing::warn!(member = %member, "drain refused by the LACP engine: {e}");
                        }
                    }
                    tracing::info!(bond = %bond, member = %member, "drain: advertising out of sync; still collecting until the partner has stopped sending on it (at least {:?})", drain::DRAIN_COLLECT_HOLD);
                    self.admin_event(now, m, "drained: advertised out of sync".into());
                }
                Step::CollectingOff { quiet, after } => {
                    if quiet {
                        tracing::info!(bond = %bond, member = %member, ?after, "drain: the partner stopped sending on the member; it is out (not collecting) until undrain");
                    } else {
                        tracing::warn!(bond = %bond, member = %member, "drain: the partner still sends on the member {:?} after it was advertised out of sync; collecting stops now (its frames are dropped)", drain::DRAIN_COLLECT_MAX);
                    }
                    self.admin_event(now, m, "drained: collecting off".into());
                }
                Step::Rejoined { lacp_collecting } => {
                    tracing::info!(bond = %bond, member = %member, lacp_collecting, "undrain: rejoin complete");
                }
            }
            self.bonds[b].mark_dirty();
        }
    }

    /// Publishes the member table of every bond that changed, with the management
    /// overlay: drained members carry no egress; members being drained or undrained keep
    /// collecting (see [`drain`]).
    fn publish(&mut self) {
        let now = self.now();
        for b in &mut self.bonds {
            if !b.dirty {
                continue;
            }
            b.dirty = false;
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
                .filter(|&p| member_of(p).is_none_or(|m| !self.drains[m].egress_blocked(now)))
                .collect();
            let mut collecting = b.collecting.clone();
            for &m in &b.members {
                if self.drains[m].collect_forced() {
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
