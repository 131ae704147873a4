//! What fastlag shows of itself, as pure data: the control thread's [`Status`], counter
//! [`Snapshot`]s, the `--report` written at stop. The types are the management API's
//! ([`api`]), so the socket, the `--status` file and the metrics endpoint agree; this module
//! adds the conversions from the engine's and the dataplane's own counters.

use std::sync::Arc;

use serde::Serialize;

pub use api::status::StatusFile;
pub use api::{
    BondStatus, IfaceSnapshot, IfaceStatus, MemberLacp, MemberStatus, Mib, PmdStats, PortSnapshot,
    RouterStatus, Snapshot, Status, WorkerPortCounts, WorkerSnapshot,
};

/// Where the control thread publishes [`Status`].
pub type SharedStatus = Arc<arc_swap::ArcSwap<Status>>;

/// Everything one status file (and one scrape) shows, taken at one moment.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Increases with every snapshot; the status file carries it as `sequence`.
    pub sequence: u64,
    /// The control thread's view.
    pub control: Arc<Status>,
    /// Port, interface and worker counters.
    pub counters: Snapshot,
}

impl Scrape {
    /// The `--status` file's contents.
    pub fn status_file(&self) -> StatusFile {
        StatusFile {
            sequence: self.sequence,
            control: (*self.control).clone(),
            ports: self.counters.ports.clone(),
            interfaces: self.counters.interfaces.clone(),
            workers: self.counters.workers.clone(),
            tsc_hz: self.counters.tsc_hz,
        }
    }
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

/// Final state after an orderly stop (the `--report` file).
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

/// A port's PMD counters as shown.
pub fn pmd_stats(s: dpdk::PortStats) -> PmdStats {
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

/// A port's worker counters as shown.
pub fn worker_port_counts(c: dataplane::counters::PortCounts) -> WorkerPortCounts {
    WorkerPortCounts {
        rx: c.rx,
        tx: c.tx,
        drop_tx_full: c.drop_tx_full,
        drop_no_egress: c.drop_no_egress,
        drop_not_collecting: c.drop_not_collecting,
        drop_bond_down: c.drop_bond_down,
        slow_to_control: c.slow_to_control,
        drop_slow_ring_full: c.drop_slow_ring_full,
    }
}

/// One worker's counters as shown.
pub fn worker_snapshot(index: usize, c: &dataplane::counters::WorkerCounts) -> WorkerSnapshot {
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

/// A member's 802.3ad MIB counters as the status file shows them.
pub fn mib(c: &lacp::info::PortCounters) -> Mib {
    Mib {
        lacpdus_rx: c.lacpdus_rx,
        lacpdus_tx: c.lacpdus_tx,
        marker_pdus_rx: c.marker_pdus_rx,
        marker_response_pdus_rx: c.marker_response_pdus_rx,
        marker_response_pdus_tx: c.marker_response_pdus_tx,
        unknown_rx: c.unknown_rx,
        illegal_rx: c.illegal_rx,
        actor_churn_count: c.actor_churn_count,
        partner_churn_count: c.partner_churn_count,
        actor_sync_transitions: c.actor_sync_transitions,
        partner_sync_transitions: c.partner_sync_transitions,
    }
}

/// Every counter of a member as `show lacp` shows them.
pub fn lacp_counters(c: &lacp::info::PortCounters) -> api::LacpCounters {
    api::LacpCounters {
        actor_churn_count: c.actor_churn_count,
        actor_sync_transitions: c.actor_sync_transitions,
        foreign_dst_rx: c.foreign_dst_rx,
        illegal_rx: c.illegal_rx,
        lacpdus_rx: c.lacpdus_rx,
        lacpdus_tx: c.lacpdus_tx,
        loopback_rx: c.loopback_rx,
        marker_pdus_rx: c.marker_pdus_rx,
        marker_pdus_tx: c.marker_pdus_tx,
        marker_rate_limited: c.marker_rate_limited,
        marker_response_pdus_rx: c.marker_response_pdus_rx,
        marker_response_pdus_tx: c.marker_response_pdus_tx,
        partner_churn_count: c.partner_churn_count,
        partner_sync_transitions: c.partner_sync_transitions,
        rx_while_link_down: c.rx_while_link_down,
        tx_deferred: c.tx_deferred,
        unknown_rx: c.unknown_rx,
        vlan_tagged_rx: c.vlan_tagged_rx,
    }
}

/// One side of the protocol as shown.
pub fn participant(p: &lacp::ParticipantInfo) -> api::Participant {
    api::Participant {
        system_priority: p.system_priority,
        system: p.system.to_string(),
        key: p.key,
        port_priority: p.port_priority,
        port: p.port,
        state: p.state.bits(),
        state_names: p.state.names().map(str::to_string).collect(),
    }
}

/// Unix time (ns) of an engine instant; `wall0_ns` is the Unix time of engine time zero.
pub fn unix_ns(wall0_ns: u128, t: lacp::Instant) -> u128 {
    wall0_ns + u128::from(t.as_nanos())
}

/// A member's reason as people read it: each instant as a wall-clock time (RFC 3339) and,
/// with `now` (text rendered when it is asked for), as an age too. Text that is kept and
/// read later (the status file) passes `now = None`, since an age there would freeze. The
/// engine's clock itself is never shown: it is neither a time of day nor an age.
pub fn member_reason(
    info: &lacp::PortInfo,
    now: Option<lacp::Instant>,
    wall0_ns: u128,
    engine: &lacp::Engine,
) -> Option<String> {
    lacp::why::reason_text(info, now, &|t| api::rfc3339(unix_ns(wall0_ns, t)), &|p| {
        engine.port_name(p).map(str::to_owned)
    })
}

/// Whether the partner says, in the LACPDUs it sends on this member, that it will not
/// aggregate the link (Aggregation = 0, Individual). Defaults are not its word.
pub fn partner_individual(info: &lacp::info::PortInfo) -> bool {
    info.partner_from_lacpdu && !info.partner.state.aggregation()
}

/// "full", "half" or "unknown".
pub fn duplex(d: types::Duplex) -> &'static str {
    d.as_str()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lacp::sim::{port_mac, system_mac, Action, Direction, LinkParams, Sim};
    use lacp::{BondConfig, Engine, Instant, LinkStatus, PortConfig, Reason};

    use super::*;

    /// Unix time of engine time zero in these tests: 2026-11-26T08:00:00.000Z.
    const WALL0: u128 = 1_795_680_000_000_000_000;

    fn wall(t: Instant) -> String {
        api::rfc3339(unix_ns(WALL0, t))
    }

    /// Runs an engine's timers up to `until`, discarding what it sends.
    fn run_to(e: &mut Engine, until: Instant) {
        while let Some(t) = e.poll_timeout().filter(|&t| t <= until) {
            e.handle_timeout(t);
            while e.poll_transmit(t).is_some() {}
        }
        e.handle_timeout(until);
        while e.poll_transmit(until).is_some() {}
    }

    #[test]
    fn never_heard_reason_shows_when_the_link_came_up_not_the_engine_clock() {
        // The report: "LACP not heard from the partner since 0.000385s", the engine instant
        // of link up, frozen, while `ctl why` said "29.1 s ago".
        let mut e = Engine::new();
        let b = e
            .add_bond(BondConfig::new("bond0", system_mac(0, 1), 10))
            .unwrap();
        let p = e
            .add_port(b, PortConfig::new("m0", port_mac(0, 1), 1), Instant::ZERO)
            .unwrap();
        let up = Instant::from_nanos(385_000);
        e.handle_link(p, LinkStatus::up_full(10_000), up).unwrap();
        let now = up + Duration::from_millis(29_100);
        run_to(&mut e, now);
        let info = e.port_info(p, now).unwrap();
        assert_eq!(info.reason, Some(Reason::LacpNotHeard { since: up }));

        let shown = member_reason(&info, Some(now), WALL0, &e).unwrap();
        assert!(shown.contains("LACP not heard from the partner"), "{shown}");
        assert!(shown.contains("29.1 s ago"), "{shown}");
        assert!(shown.contains(&wall(up)), "{shown}");
        assert!(!shown.contains("0.000385s"), "{shown}");
        // Asked again later: the age moved on with the clock.
        let later = member_reason(&info, Some(now + Duration::from_secs(60)), WALL0, &e).unwrap();
        assert!(later.contains("89.1 s ago"), "{later}");

        let stored = member_reason(&info, None, WALL0, &e).unwrap();
        assert!(stored.contains(&format!("at {}", wall(up))), "{stored}");
        assert!(
            !stored.contains("ago") && !stored.contains("0.000385s"),
            "{stored}"
        );
    }

    /// A partner whose LACPDUs say Aggregation = 0 (here: a half-duplex link makes both
    /// ends Individual) is marked; one that aggregates, or whose information is only
    /// defaults, is not.
    #[test]
    fn an_individual_partner_is_told_by_its_lacpdus() {
        let link = LinkParams {
            latency: Duration::from_millis(1),
            ..LinkParams::default()
        };
        let a = BondConfig::new("bond-a", system_mac(0, 1), 10);
        let b = BondConfig::new("bond-b", system_mac(1, 1), 20);
        let (mut sim, pair) = Sim::pair(3, 2, a, b, link).unwrap();
        let port = pair.a_ports[0];
        let info = sim.engine(pair.a).port_info(port, sim.now()).unwrap();
        assert!(
            !partner_individual(&info),
            "defaults are not the partner's word"
        );
        sim.run_until_cond(Instant::from_secs(10), |s| pair.all_distributing(s))
            .unwrap();
        let info = sim.engine(pair.a).port_info(port, sim.now()).unwrap();
        assert!(!partner_individual(&info));
        sim.set_link_status(
            pair.links[0],
            LinkStatus {
                up: true,
                speed: types::Speed::Mbps(1000),
                duplex: types::Duplex::Half,
            },
        );
        sim.run_for(Duration::from_secs(5)).unwrap();
        let info = sim.engine(pair.a).port_info(port, sim.now()).unwrap();
        assert!(info.partner_from_lacpdu);
        assert!(partner_individual(&info), "{:?}", info.partner);
        let other = sim
            .engine(pair.a)
            .port_info(pair.a_ports[1], sim.now())
            .unwrap();
        assert!(!partner_individual(&other));
    }

    #[test]
    fn silent_partner_reason_shows_the_last_lacpdu_as_wall_time_and_age() {
        // The report: "partner silent: last LACPDU at 5.642774s".
        let link = LinkParams {
            latency: Duration::from_millis(1),
            ..LinkParams::default()
        };
        let a = BondConfig::new("bond-a", system_mac(0, 1), 10);
        let b = BondConfig::new("bond-b", system_mac(1, 1), 20);
        let (mut sim, pair) = Sim::pair(7, 1, a, b, link).unwrap();
        sim.run_until_cond(Instant::from_secs(10), |s| pair.all_distributing(s))
            .unwrap();
        sim.run_for(Duration::from_millis(3_640)).unwrap();
        sim.act(Action::OneWay {
            link: pair.links[0],
            dir: Direction::BToA,
            ok: false,
        });
        sim.run_for(Duration::from_millis(3_200)).unwrap();
        let port = pair.a_ports[0];
        let info = sim.engine(pair.a).port_info(port, sim.now()).unwrap();
        let Some(Reason::PartnerExpired { last_rx, .. }) = info.reason else {
            panic!("{:?}", info.reason);
        };
        let raw = last_rx.to_string();

        let now = sim.now() + Duration::from_secs(10);
        let shown = member_reason(&info, Some(now), WALL0, sim.engine(pair.a)).unwrap();
        let age = format!("{:.1} s ago", (now - last_rx).as_secs_f64());
        assert!(shown.starts_with("partner silent: last LACPDU"), "{shown}");
        assert!(shown.contains(&age), "{age} not in {shown}");
        assert!(shown.contains(&wall(last_rx)), "{shown}");
        assert!(!shown.contains(&raw), "raw engine instant {raw} in {shown}");

        let stored = member_reason(&info, None, WALL0, sim.engine(pair.a)).unwrap();
        assert!(
            stored.contains(&format!("at {}", wall(last_rx))),
            "{stored}"
        );
        assert!(
            !stored.contains("ago") && !stored.contains(&raw),
            "{stored}"
        );
    }
}
