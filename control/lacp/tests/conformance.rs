//! Conformance scenarios in simulation: one 802.1AX behaviour per case (numbered B1...,
//! citing the clause), each with explicit timing assertions. Links have 1 ms one-way
//! latency (RTT 2 ms) unless stated. How to add one: CONTRIBUTING.md.

mod common;

use common::*;
use core::time::Duration;
use lacp::sim::{port_mac, system_mac, Action, BondPair, Direction, Endpoint, NodeId, Sim};
use lacp::wire::{Frame, LacpduRepr, MarkerKind, MarkerRepr, ParticipantInfo, PortState};
use lacp::*;

const RTT: Duration = Duration::from_millis(2);
const WAIT: Duration = Duration::from_secs(2);

#[test]
fn b1_active_active_converges_within_aggregate_wait_plus_two_exchanges() {
    for n in [1usize, 2, 4, 8] {
        let (mut sim, p) = pair(n, cfg(0, 10), cfg(1, 20));
        let t0 = sim.now();
        let t = converge(&mut sim, &p, 10 * SEC);
        assert!(
            t - t0 <= WAIT + 2 * RTT,
            "{n} members converged after {:?}",
            t - t0
        );
        assert!(t - t0 >= WAIT, "aggregate wait must be honoured");
        for (&a, &b) in p.a_ports.iter().zip(&p.b_ports) {
            let ia = info(&sim, p.a, a);
            assert_eq!(ia.rx_state, RxState::Current);
            assert_eq!(ia.mux_state, MuxState::CollectingDistributing);
            assert!(ia.actor.state.contains(
                PortState::SYNCHRONIZATION | PortState::COLLECTING | PortState::DISTRIBUTING
            ));
            assert_eq!(ia.partner.port, info(&sim, p.b, b).actor.port);
            assert!(ia.reason.is_none());
        }
        let d = sim.engine(p.a).distribution(p.a_bond).unwrap();
        assert_eq!(d, &p.a_ports[..], "ordered by port number");
    }
}

#[test]
fn b2_active_passive_converges_and_passive_speaks_only_after_hearing() {
    let mut b = cfg(1, 20);
    b.activity = Activity::Passive;
    let (mut sim, p) = pair(2, cfg(0, 10), b);
    let t = converge(&mut sim, &p, 10 * SEC);
    assert!(t <= Instant::ZERO + WAIT + 3 * RTT, "converged at {t}");
    let first_a = sim.tx_log().iter().find(|r| r.node == p.a).unwrap().at;
    let first_b = sim.tx_log().iter().find(|r| r.node == p.b).unwrap().at;
    assert!(
        first_b >= first_a + RTT / 2,
        "passive sent at {first_b} before hearing A ({first_a})"
    );
    // The passive side keeps the periodic going once it heard an active partner.
    sim.run_for(10 * SEC).unwrap();
    assert!(p.all_distributing(&sim));
}

#[test]
fn b2_passive_passive_sends_nothing_ever() {
    let mut a = cfg(0, 10);
    a.activity = Activity::Passive;
    let mut b = cfg(1, 20);
    b.activity = Activity::Passive;
    let (mut sim, p) = pair(2, a, b);
    sim.run_until(Instant::from_secs(600)).unwrap();
    assert!(
        sim.tx_log().is_empty(),
        "{} frames sent",
        sim.tx_log().len()
    );
    for &port in &p.a_ports {
        assert_eq!(reason(&sim, p.a, port), Some(Reason::PassivePassive));
        assert_eq!(info(&sim, p.a, port).counters.lacpdus_tx, 0);
        assert_eq!(
            info(&sim, p.a, port).periodic_state,
            PeriodicState::NoPeriodic
        );
    }
}

#[test]
fn b2_passive_partner_going_silent_expires() {
    let mut b = cfg(1, 20);
    b.activity = Activity::Passive;
    let (mut sim, p) = pair(1, cfg(0, 10), b);
    converge(&mut sim, &p, 10 * SEC);
    sim.act(Action::Pause(p.b, true));
    let t0 = sim.now();
    sim.run_for(10 * SEC).unwrap();
    let i = info(&sim, p.a, p.a_ports[0]);
    assert_eq!(i.rx_state, RxState::Defaulted);
    let expired = rx_transition(&i, "EXPIRED", t0).unwrap();
    assert!(expired - t0 <= 3 * SEC);
}

fn expiry_case(rate: Rate, timeout: Duration) {
    let mut a = cfg(0, 10);
    a.rate = rate;
    let (mut sim, p) = pair(2, a, cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(5 * SEC).unwrap();
    // The partner goes silent towards us on every link.
    for &l in &p.links {
        sim.act(Action::OneWay {
            link: l,
            dir: Direction::BToA,
            ok: true,
        });
        sim.act(Action::OneWay {
            link: l,
            dir: Direction::BToA,
            ok: false,
        });
    }
    let t0 = sim.now();
    let last_rx: Vec<Instant> = p
        .a_ports
        .iter()
        .map(|&x| info(&sim, p.a, x).last_rx.unwrap())
        .collect();
    sim.run_for(timeout + 5 * SEC).unwrap();
    for (i, &port) in p.a_ports.iter().enumerate() {
        let inf = info(&sim, p.a, port);
        let expired = rx_transition(&inf, "EXPIRED", t0).expect("expired");
        let defaulted = rx_transition(&inf, "DEFAULTED", t0).expect("defaulted");
        assert_eq!(
            expired,
            last_rx[i] + timeout,
            "CURRENT -> EXPIRED exactly one timeout after the last LACPDU"
        );
        assert_eq!(
            defaulted,
            expired + 3 * SEC,
            "EXPIRED -> DEFAULTED after a further short timeout"
        );
        let stop = distributing_event(&sim, p.a, port, false, t0).expect("distribution stopped");
        assert_eq!(stop, expired, "distribution stops at EXPIRED");
        // While expired we advertised Expired and told the partner it is out of sync.
        let sent: Vec<_> = sim
            .lacpdus_from(p.a, port)
            .into_iter()
            .filter(|(t, _)| *t >= expired && *t < defaulted)
            .collect();
        assert!(!sent.is_empty());
        for (_, pdu) in sent {
            assert!(pdu.actor.state.expired());
            assert!(!pdu.partner.state.synchronization());
        }
        assert!(
            matches!(inf.reason, Some(Reason::Defaulted { .. })),
            "{:?}",
            inf.reason
        );
        assert!(
            !sim.engine(p.b).is_distributing(p.b_ports[i]),
            "partner stops using the link too"
        );
    }
}

#[test]
fn b4_partner_silent_fast_expires_at_3s_then_defaults() {
    expiry_case(Rate::Fast, 3 * SEC);
}

#[test]
fn b4_partner_silent_slow_expires_at_90s_then_defaults() {
    expiry_case(Rate::Slow, 90 * SEC);
}

#[test]
fn b5_unidirectional_link_stops_distribution_on_that_port() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap();
    // A -> B fails on link 0: B stops hearing A, A still hears B.
    sim.act(Action::OneWay {
        link: p.links[0],
        dir: Direction::AToB,
        ok: false,
    });
    let t0 = sim.now();
    let last = info(&sim, p.b, p.b_ports[0]).last_rx.unwrap();
    let mut both_stopped = None;
    run_checking(&mut sim, t0 + 20 * SEC, |s| {
        assert!(p.distributing(s, 1), "the healthy link keeps distributing");
        if both_stopped.is_none()
            && !s.engine(p.a).is_distributing(p.a_ports[0])
            && !s.engine(p.b).is_distributing(p.b_ports[0])
        {
            both_stopped = Some(s.now());
        }
    })
    .unwrap();
    let b_stop = distributing_event(&sim, p.b, p.b_ports[0], false, t0).unwrap();
    let a_stop = distributing_event(&sim, p.a, p.a_ports[0], false, t0).unwrap();
    assert_eq!(
        b_stop,
        last + 3 * SEC,
        "the side that stopped hearing stops at EXPIRED"
    );
    assert!(
        a_stop <= b_stop + RTT,
        "the other side stops when told (partner not collecting / expired): {a_stop}"
    );
    assert!(both_stopped.unwrap() <= b_stop + RTT);
    let r = reason(&sim, p.a, p.a_ports[0]).unwrap();
    assert!(
        matches!(
            r,
            Reason::PartnerNotHearingUs
                | Reason::PartnerNotCollecting
                | Reason::PartnerNotInSync
                | Reason::NotMatched { .. }
        ),
        "{r}"
    );
}

#[test]
fn b6_key_mismatch_never_distributes_together() {
    let mut sim = Sim::new(3);
    sim.set_check_invariants(true);
    let a = sim.add_node();
    let b = sim.add_node();
    let ab = sim.add_bond(a, cfg(0, 10)).unwrap();
    let bb = sim.add_bond(b, cfg(1, 20)).unwrap();
    let pa0 = sim
        .add_port(a, ab, PortConfig::new("a0", port_mac(0, 1), 1))
        .unwrap();
    let pa1 = sim
        .add_port(a, ab, PortConfig::new("a1", port_mac(0, 2), 2))
        .unwrap();
    let pb0 = sim
        .add_port(b, bb, PortConfig::new("b0", port_mac(1, 1), 1))
        .unwrap();
    let mut c = PortConfig::new("b1", port_mac(1, 2), 2);
    c.key = Some(99);
    let pb1 = sim.add_port(b, bb, c).unwrap();
    sim.connect(
        Endpoint { node: a, port: pa0 },
        Endpoint { node: b, port: pb0 },
        link(),
    );
    sim.connect(
        Endpoint { node: a, port: pa1 },
        Endpoint { node: b, port: pb1 },
        link(),
    );
    run_checking(&mut sim, Instant::from_secs(60), |s| {
        assert!(s.engine(a).distribution(ab).unwrap().len() <= 1);
        assert!(s.engine(b).distribution(bb).unwrap().len() <= 1);
    })
    .unwrap();
    assert_eq!(sim.engine(a).distribution(ab).unwrap(), &[pa0]);
    assert_eq!(sim.engine(b).distribution(bb).unwrap(), &[pb0]);
    assert_eq!(
        reason(&sim, a, pa1),
        Some(Reason::KeyMismatch {
            side: KeySide::Partner,
            aggregator_key: 20,
            port_key: 99
        })
    );
    assert_eq!(
        reason(&sim, b, pb1),
        Some(Reason::KeyMismatch {
            side: KeySide::Actor,
            aggregator_key: 20,
            port_key: 99
        })
    );
    assert_eq!(sim.engine(a).bond_info(ab).unwrap().aggregators.len(), 2);
    assert!(reason(&sim, a, pa1)
        .unwrap()
        .to_string()
        .contains("key mismatch"));
}

#[test]
fn b7_two_partner_systems_never_distribute_together() {
    let mut sim = Sim::new(4);
    sim.set_check_invariants(true);
    let a = sim.add_node();
    let b = sim.add_node();
    let c = sim.add_node();
    let ab = sim.add_bond(a, cfg(0, 10)).unwrap();
    let bb = sim.add_bond(b, cfg(1, 20)).unwrap();
    let cb = sim.add_bond(c, cfg(2, 20)).unwrap();
    let pa0 = sim
        .add_port(a, ab, PortConfig::new("a0", port_mac(0, 1), 1))
        .unwrap();
    let pa1 = sim
        .add_port(a, ab, PortConfig::new("a1", port_mac(0, 2), 2))
        .unwrap();
    let pb = sim
        .add_port(b, bb, PortConfig::new("b0", port_mac(1, 1), 1))
        .unwrap();
    let pc = sim
        .add_port(c, cb, PortConfig::new("c0", port_mac(2, 1), 1))
        .unwrap();
    sim.connect(
        Endpoint { node: a, port: pa0 },
        Endpoint { node: b, port: pb },
        link(),
    );
    sim.connect(
        Endpoint { node: a, port: pa1 },
        Endpoint { node: c, port: pc },
        link(),
    );
    run_checking(&mut sim, Instant::from_secs(60), |s| {
        assert!(
            s.engine(a).distribution(ab).unwrap().len() <= 1,
            "never across two partner systems"
        );
        // The partner we do not use is told we are out of sync, so it does not send to us either.
        let used_b = s.engine(b).is_distributing(pb);
        let used_c = s.engine(c).is_distributing(pc);
        assert!(!(used_b && used_c));
    })
    .unwrap();
    let d = sim.engine(a).distribution(ab).unwrap().to_vec();
    assert_eq!(d.len(), 1);
    let other = if d[0] == pa0 { pa1 } else { pa0 };
    assert!(
        matches!(
            reason(&sim, a, other),
            Some(Reason::OtherPartnerSystem { .. })
        ),
        "{:?}",
        reason(&sim, a, other)
    );
}

#[test]
fn b8_partner_system_flip_on_one_link_does_not_take_down_the_lag() {
    let (mut sim, p) = pair(3, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    // A spurious LACPDU from another system id (MC-LAG peer rebooting) on link 2.
    let spurious = LacpduRepr {
        version: 1,
        actor: ParticipantInfo {
            system_priority: 65535,
            system: system_mac(9, 9),
            key: 20,
            port_priority: 255,
            port: 3,
            state: PortState::ACTIVITY | PortState::TIMEOUT | PortState::AGGREGATION,
        },
        partner: ParticipantInfo::default(),
        collector_max_delay: 0,
    };
    let t0 = sim.now();
    sim.inject(p.a, p.a_ports[2], &Frame::lacpdu(port_mac(9, 3), &spurious))
        .unwrap();
    assert!(!sim.engine(p.a).is_distributing(p.a_ports[2]));
    run_checking(&mut sim, t0 + 10 * SEC, |s| {
        assert!(
            s.engine(p.a).is_distributing(p.a_ports[0])
                && s.engine(p.a).is_distributing(p.a_ports[1])
        );
    })
    .unwrap();
    // The real partner's LACPDUs resume and the link rejoins after one aggregate wait.
    let back = distributing_event(&sim, p.a, p.a_ports[2], true, t0).expect("rejoined");
    assert!(
        back - t0 <= SEC + WAIT + 2 * RTT,
        "rejoined after {:?}",
        back - t0
    );
}

#[test]
fn b9_individual_links_one_used_and_both_ends_agree() {
    let mut params = link();
    params.status.duplex = Duplex::Half;
    let (mut sim, p) = Sim::pair(5, 2, cfg(0, 10), cfg(1, 20), params).unwrap();
    sim.set_check_invariants(true);
    sim.run_until(Instant::from_secs(30)).unwrap();
    let da = sim.engine(p.a).distribution(p.a_bond).unwrap().to_vec();
    let db = sim.engine(p.b).distribution(p.b_bond).unwrap().to_vec();
    assert_eq!(da.len(), 1, "{}", dump(&sim, &p));
    assert_eq!(db.len(), 1);
    let i = p.a_ports.iter().position(|&x| x == da[0]).unwrap();
    assert_eq!(
        db[0], p.b_ports[i],
        "both ends use the same individual link"
    );
    let other = p.a_ports[1 - i];
    assert_eq!(
        reason(&sim, p.a, other),
        Some(Reason::Individual {
            cause: IndividualCause::HalfDuplex
        })
    );
    for &port in &p.a_ports {
        assert!(
            !info(&sim, p.a, port).actor.state.aggregation(),
            "half duplex is Individual"
        );
        assert!(
            info(&sim, p.a, port).counters.lacpdus_tx > 0,
            "but LACP keeps running"
        );
    }
}

#[test]
fn b10_single_member_bond_advertises_aggregation() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(5 * SEC).unwrap();
    let pdus = sim.lacpdus_from(p.a, p.a_ports[0]);
    assert!(pdus.len() > 5);
    assert!(pdus.iter().all(|(_, l)| l.actor.state.aggregation()));
}

#[test]
fn b11_fallback_none_and_individual_with_a_silent_partner() {
    for fallback in [Fallback::None, Fallback::Individual] {
        let mut a = cfg(0, 10);
        a.fallback = fallback;
        let (mut sim, p) = pair(3, a, cfg(1, 20));
        sim.act(Action::Pause(p.b, true));
        sim.run_until(Instant::from_secs(20)).unwrap();
        let d = sim.engine(p.a).distribution(p.a_bond).unwrap().to_vec();
        let bi = sim.engine(p.a).bond_info(p.a_bond).unwrap();
        match fallback {
            Fallback::None => {
                assert!(d.is_empty());
                // B's first LACPDUs were already in flight when it froze: heard once, then silent.
                let r = reason(&sim, p.a, p.a_ports[0]);
                assert!(
                    matches!(
                        r,
                        Some(Reason::LacpNotHeard { .. } | Reason::Defaulted { .. })
                    ),
                    "{r:?}"
                );
            }
            Fallback::Individual => {
                assert_eq!(
                    d,
                    vec![p.a_ports[0]],
                    "exactly one port, the best (lowest number)"
                );
                assert!(bi.fallback_active);
                assert_eq!(
                    reason(&sim, p.a, p.a_ports[1]),
                    Some(Reason::FallbackStandby {
                        active_port: p.a_ports[0]
                    })
                );
                // Text for people names the member that carries the traffic (it said
                // "port port#0", and "partner not running LACP" while LACPDUs still came).
                let e = sim.engine(p.a);
                let pi = e.port_info(p.a_ports[1], sim.now()).unwrap();
                let text = lacp::why::reason_text(&pi, None, &|t| t.to_string(), &|id| {
                    e.port_name(id).map(str::to_owned)
                })
                .unwrap();
                let name = e.port_name(p.a_ports[0]).unwrap();
                assert!(text.contains(&format!("member {name} carries")), "{text}");
                assert!(
                    !text.contains("port#") && !text.contains("not running LACP"),
                    "{text}"
                );
                let t = distributing_event(&sim, p.a, p.a_ports[0], true, Instant::ZERO).unwrap();
                // Last LACPDU heard at 1 ms: EXPIRED 3 s later, DEFAULTED 3 s after that, then the wait.
                assert_eq!(
                    t,
                    Instant::from_millis(1) + 6 * SEC + WAIT,
                    "fallback after defaulted + wait"
                );
            }
        }
        // LACP appears: the bond leaves fallback and aggregates normally.
        sim.act(Action::Pause(p.b, false));
        let t = sim.now();
        let c = converge(&mut sim, &p, 10 * SEC);
        assert!(c - t <= WAIT + SEC + 2 * RTT, "{:?}", c - t);
        assert!(!sim.engine(p.a).bond_info(p.a_bond).unwrap().fallback_active);
    }
}

#[test]
fn b3_partner_switches_fast_slow_fast_mid_stream() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap();
    let (a, pa) = (p.a, p.a_ports[0]);
    // Partner asks for slow: its current_while may still run with the short timeout, so we
    // answer at once and stay fast for one short timeout, then slow with margin (29 s).
    let t1 = sim.now();
    sim.with_engine(p.b, |e, now| e.set_rate(p.b_bond, Rate::Slow, now))
        .unwrap();
    sim.run_for(90 * SEC).unwrap();
    let after: Vec<Instant> = sim
        .lacpdus_from(a, pa)
        .into_iter()
        .map(|(t, _)| t)
        .filter(|&t| t > t1)
        .collect();
    assert!(
        after[0] <= t1 + RTT,
        "fast->slow answers at once: {}",
        after[0]
    );
    let (fast, slow): (Vec<Instant>, Vec<Instant>) = after.iter().partition(|&&t| t < t1 + 3 * SEC);
    assert!((3..=5).contains(&fast.len()), "{fast:?}");
    for w in fast.windows(2) {
        assert!(w[1] - w[0] <= Duration::from_millis(900), "{w:?}");
    }
    assert_eq!(slow[0] - fast[fast.len() - 1], Duration::from_secs(29));
    for w in slow.windows(2) {
        assert_eq!(
            w[1] - w[0],
            Duration::from_secs(29),
            "slow periodic with margin"
        );
    }
    assert!(p.distributing(&sim, 0));
    // Partner asks for fast again: we answer at once, then every 0.9 s.
    let t2 = sim.now();
    sim.with_engine(p.b, |e, now| e.set_rate(p.b_bond, Rate::Fast, now))
        .unwrap();
    sim.run_for(10 * SEC).unwrap();
    let fast: Vec<Instant> = sim
        .lacpdus_from(a, pa)
        .into_iter()
        .map(|(t, _)| t)
        .filter(|&t| t > t2)
        .collect();
    assert!(fast[0] <= t2 + RTT, "slow->fast sends at once: {}", fast[0]);
    for w in fast.windows(2) {
        assert!(
            w[1] - w[0] <= Duration::from_millis(900),
            "gap {:?}",
            w[1] - w[0]
        );
    }
    assert!(p.distributing(&sim, 0));
    // Our own gaps toward a fast partner never come near its 3 s timeout.
    let all = sim.lacpdus_from(a, pa);
    assert!(all
        .windows(2)
        .filter(|w| w[0].0 > t2)
        .all(|w| w[1].0 - w[0].0 < Duration::from_millis(1100)));
}

/// Checks the LACPDUs `from` sent on `port` against a receiver that runs current_while as
/// 802.1AX-2014 6.4.12 does (and Open vSwitch): restarted on each arrival with the receiver's
/// own timeout at that moment (`timeout_at`), never re-armed by its own rate change. Our engine
/// re-arms on its own change, so the simulated receiver cannot show this expiry by itself.
fn assert_strict_receiver_never_expires(
    sim: &Sim,
    from: NodeId,
    port: PortId,
    timeout_at: impl Fn(Instant) -> Duration,
) {
    let arrivals: Vec<Instant> = sim
        .lacpdus_from(from, port)
        .into_iter()
        .map(|(t, _)| t + MS)
        .chain(core::iter::once(sim.now()))
        .collect();
    for w in arrivals.windows(2) {
        let expires = w[0] + timeout_at(w[0]);
        assert!(
            w[1] < expires,
            "an 802.1AX receiver armed at {} expires at {expires}; next LACPDU arrives at {}",
            w[0],
            w[1]
        );
    }
}

/// No member of either side left distributing since `since`.
fn assert_never_stopped(sim: &Sim, p: &BondPair, since: Instant) {
    for (node, ports) in [(p.a, &p.a_ports), (p.b, &p.b_ports)] {
        for &port in ports {
            assert_eq!(distributing_event(sim, node, port, false, since), None);
            assert_eq!(
                rx_transition(&info(sim, node, port), "EXPIRED", since),
                None
            );
        }
    }
}

fn periodic_states(sim: &Sim, node: NodeId, ports: &[PortId]) -> Vec<PeriodicState> {
    ports
        .iter()
        .map(|&port| info(sim, node, port).periodic_state)
        .collect()
}

#[test]
fn b3_partner_fast_to_slow_is_hitless() {
    // OVS `other_config:lacp-time=slow` on a converged fast bond: its current_while still runs
    // with the short timeout our last fast LACPDU armed, so we must send within 3 s of seeing its
    // change instead of going silent for 29 s.
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap();
    let t1 = sim.now();
    sim.with_engine(p.b, |e, now| e.set_rate(p.b_bond, Rate::Slow, now))
        .unwrap();
    let short_until_t1 = |t: Instant| if t < t1 { 3 * SEC } else { 90 * SEC };
    run_checking(&mut sim, t1 + 120 * SEC, |s| {
        assert!(p.all_distributing(s), "at {}\n{}", s.now(), dump(s, &p))
    })
    .unwrap();
    for &pa in &p.a_ports {
        assert_strict_receiver_never_expires(&sim, p.a, pa, short_until_t1);
        // Once the partner has certainly re-armed with its long timeout: slow, with margin.
        let after: Vec<Instant> = sim
            .lacpdus_from(p.a, pa)
            .into_iter()
            .map(|(t, _)| t)
            .filter(|&t| t > t1 + 3 * SEC)
            .collect();
        assert!(after.len() >= 3, "{after:?}");
        for w in after.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_secs(29));
        }
    }
    assert_eq!(
        periodic_states(&sim, p.a, &p.a_ports),
        [PeriodicState::SlowPeriodic; 2]
    );
    // Now our side goes slow too (the mirror case): the partner must keep us current the same
    // way, and both sides end in SLOW_PERIODIC.
    let t2 = sim.now();
    sim.with_engine(p.a, |e, now| e.set_rate(p.a_bond, Rate::Slow, now))
        .unwrap();
    run_checking(&mut sim, t2 + 120 * SEC, |s| {
        assert!(p.all_distributing(s), "at {}\n{}", s.now(), dump(s, &p))
    })
    .unwrap();
    for &pb in &p.b_ports {
        assert_strict_receiver_never_expires(&sim, p.b, pb, |t| {
            if t < t2 {
                3 * SEC
            } else {
                90 * SEC
            }
        });
    }
    assert_never_stopped(&sim, &p, t1);
    assert_eq!(
        periodic_states(&sim, p.a, &p.a_ports),
        [PeriodicState::SlowPeriodic; 2]
    );
    assert_eq!(
        periodic_states(&sim, p.b, &p.b_ports),
        [PeriodicState::SlowPeriodic; 2]
    );
}

#[test]
fn b3_partner_fast_to_slow_survives_a_lost_lacpdu() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap();
    let t1 = sim.now();
    // Our immediate answer to the partner's change (sent 1 ms later) is lost.
    sim.act(Action::OneWay {
        link: p.links[0],
        dir: Direction::AToB,
        ok: false,
    });
    sim.schedule(
        t1 + 100 * MS,
        Action::OneWay {
            link: p.links[0],
            dir: Direction::AToB,
            ok: true,
        },
    );
    sim.with_engine(p.b, |e, now| e.set_rate(p.b_bond, Rate::Slow, now))
        .unwrap();
    run_checking(&mut sim, t1 + 60 * SEC, |s| {
        assert!(p.all_distributing(s), "at {}\n{}", s.now(), dump(s, &p))
    })
    .unwrap();
    // What went into the failed direction never arrived: leave it out of the arrivals.
    let mut arrivals: Vec<Instant> = sim
        .lacpdus_from(p.a, p.a_ports[0])
        .into_iter()
        .map(|(t, _)| t + MS)
        .filter(|&t| t < t1 || t >= t1 + 100 * MS)
        .collect();
    arrivals.push(sim.now());
    for w in arrivals.windows(2) {
        let timeout = if w[0] < t1 { 3 * SEC } else { 90 * SEC };
        assert!(w[1] < w[0] + timeout, "{} then {}", w[0], w[1]);
    }
    let lost: Vec<Instant> = sim
        .lacpdus_from(p.a, p.a_ports[0])
        .into_iter()
        .map(|(t, _)| t)
        .filter(|&t| t >= t1 && t < t1 + 100 * MS)
        .collect();
    assert_eq!(
        lost.len(),
        1,
        "the immediate answer was the one lost: {lost:?}"
    );
    assert_never_stopped(&sim, &p, t1);
    assert_eq!(
        periodic_states(&sim, p.a, &p.a_ports),
        [PeriodicState::SlowPeriodic]
    );
}

#[test]
fn b3_partner_slow_to_fast_is_hitless() {
    let mut b = cfg(1, 20);
    b.rate = Rate::Slow;
    let (mut sim, p) = pair(2, cfg(0, 10), b);
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(60 * SEC).unwrap();
    assert_eq!(
        periodic_states(&sim, p.a, &p.a_ports),
        [PeriodicState::SlowPeriodic; 2]
    );
    let t1 = sim.now();
    sim.with_engine(p.b, |e, now| e.set_rate(p.b_bond, Rate::Fast, now))
        .unwrap();
    run_checking(&mut sim, t1 + 60 * SEC, |s| {
        assert!(p.all_distributing(s), "at {}\n{}", s.now(), dump(s, &p))
    })
    .unwrap();
    for &pa in &p.a_ports {
        assert_strict_receiver_never_expires(&sim, p.a, pa, |t| {
            if t < t1 {
                90 * SEC
            } else {
                3 * SEC
            }
        });
        let after: Vec<Instant> = sim
            .lacpdus_from(p.a, pa)
            .into_iter()
            .map(|(t, _)| t)
            .filter(|&t| t >= t1)
            .collect();
        assert!(
            after[0] <= t1 + RTT,
            "slow->fast answers at once: {}",
            after[0]
        );
        for w in after.windows(2) {
            assert!(w[1] - w[0] <= Duration::from_millis(900), "{w:?}");
        }
    }
    assert_never_stopped(&sim, &p, t1);
    assert_eq!(
        periodic_states(&sim, p.a, &p.a_ports),
        [PeriodicState::FastPeriodic; 2]
    );
}

#[test]
fn b12_churn_detected_after_60s_out_of_sync() {
    let mut b = cfg(1, 20);
    b.max_active = Some(1);
    let (mut sim, p) = pair(2, cfg(0, 10), b);
    sim.run_until(Instant::from_secs(70)).unwrap();
    // B keeps its second link in standby (like a switch's max-bundle): A sees the partner out
    // of sync for good.
    let ia = info(&sim, p.a, p.a_ports[1]);
    assert_eq!(ia.partner_churn, ChurnState::Churn);
    assert_eq!(ia.counters.partner_churn_count, 1);
    assert_eq!(
        ia.reason,
        Some(Reason::PartnerNotInSync),
        "B26 partner-imposed standby"
    );
    let t = sim
        .events()
        .iter()
        .find(|e| {
            e.node == p.a
                && e.event
                    == Event::Churn {
                        port: p.a_ports[1],
                        side: Side::Partner,
                        detected: true,
                    }
        })
        .unwrap()
        .at;
    assert_eq!(
        t,
        Instant::from_secs(60),
        "churn detection time after the link came up"
    );
    let ib = info(&sim, p.b, p.b_ports[1]);
    assert_eq!(
        ib.actor_churn,
        ChurnState::Churn,
        "the standby side churns on its own sync"
    );
    assert_eq!(ib.selected, Selected::Standby);
    assert_eq!(ib.reason, Some(Reason::Standby { max_active: 1 }));
    let i0 = info(&sim, p.a, p.a_ports[0]);
    assert_eq!(
        i0.counters.partner_churn_count + i0.counters.actor_churn_count,
        0
    );
    assert_eq!(i0.partner_churn, ChurnState::NoChurn);
}

#[test]
fn b12_jittered_valid_tx_does_not_churn() {
    let mut params = link();
    params.loss_ppm = 300_000; // 30 % loss: PDUs late but within the timeout mostly
    let (mut sim, p) = Sim::pair(11, 1, cfg(0, 10), cfg(1, 20), params).unwrap();
    sim.run_until(Instant::from_secs(10)).unwrap();
    sim.act(Action::Loss(p.links[0], 0));
    sim.run_until(Instant::from_secs(200)).unwrap();
    let i = info(&sim, p.a, p.a_ports[0]);
    assert_eq!(i.partner_churn, ChurnState::NoChurn);
    assert_eq!(i.actor_churn, ChurnState::NoChurn);
}

#[test]
fn b18_member_removal_sends_final_out_of_sync_pdu() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(5 * SEC).unwrap();
    let t0 = sim.now();
    sim.with_engine(p.a, |e, now| e.remove_port(p.a_ports[0], now))
        .unwrap();
    let fin = sim
        .tx_log()
        .iter()
        .find(|r| r.at >= t0 && r.kind == TxKind::FinalLacpdu)
        .copied()
        .expect("final PDU");
    assert_eq!(fin.port, p.a_ports[0]);
    assert!(fin.at - t0 <= SEC, "within the transmit limit");
    let s = fin.lacpdu.unwrap().actor.state;
    assert!(!s.synchronization() && !s.collecting() && !s.distributing() && !s.aggregation());
    sim.run_for(100 * MS).unwrap();
    let stop = distributing_event(&sim, p.b, p.b_ports[0], false, t0).expect("partner stopped");
    assert!(
        stop <= fin.at + RTT,
        "partner stops at once, not after a timeout: {stop}"
    );
    assert!(sim.engine(p.b).is_distributing(p.b_ports[1]));
    assert_eq!(
        sim.engine(p.a).distribution(p.a_bond).unwrap(),
        &[p.a_ports[1]]
    );
    assert!(sim.engine(p.a).port_info(p.a_ports[0], sim.now()).is_err());
    assert!(sim.events().iter().any(|e| e.at == t0
        && e.event
            == Event::Distribution {
                bond: p.a_bond,
                members: vec![p.a_ports[1]]
            }));
}

#[test]
fn b18_member_added_before_link_up_starts_pdus_at_link_up() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    let a3 = sim
        .add_port(p.a, p.a_bond, PortConfig::new("late-a", port_mac(0, 9), 9))
        .unwrap();
    let b3 = sim
        .add_port(p.b, p.b_bond, PortConfig::new("late-b", port_mac(1, 9), 9))
        .unwrap();
    sim.run_for(5 * SEC).unwrap();
    assert!(
        sim.lacpdus_from(p.a, a3).is_empty(),
        "no PDU while the link is down"
    );
    assert_eq!(reason(&sim, p.a, a3), Some(Reason::LinkDown));
    let t0 = sim.now();
    sim.connect(
        Endpoint {
            node: p.a,
            port: a3,
        },
        Endpoint {
            node: p.b,
            port: b3,
        },
        link(),
    );
    assert_eq!(sim.lacpdus_from(p.a, a3)[0].0, t0, "first PDU at link up");
    let t = sim
        .run_until_cond(t0 + 10 * SEC, |s| {
            s.engine(p.a).is_distributing(a3) && s.engine(p.b).is_distributing(b3)
        })
        .unwrap();
    assert!(t - t0 <= WAIT + 2 * RTT);
}

#[test]
fn p14_tx_limit_under_ntt_storm_and_last_state_goes_out() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(5 * SEC).unwrap();
    let t0 = sim.now();
    let port = p.a_ports[0];
    let mut last_prio = 0;
    for i in 0..200u16 {
        last_prio = 1000 + i;
        sim.with_engine(p.a, |e, now| e.set_port_priority(port, last_prio, now))
            .unwrap();
        sim.run_for(10 * MS).unwrap();
    }
    let storm_end = sim.now();
    sim.run_for(5 * SEC).unwrap();
    let pdus = sim.lacpdus_from(p.a, port);
    for (i, (t, _)) in pdus.iter().enumerate() {
        let in_window = pdus[i..].iter().take_while(|(u, _)| *u < *t + SEC).count();
        assert!(in_window <= 3, "{in_window} LACPDUs within 1 s from {t}");
    }
    let during: Vec<_> = pdus
        .iter()
        .filter(|(t, _)| *t >= t0 && *t < storm_end)
        .collect();
    assert!(
        during.len() <= 7,
        "{} PDUs during a 2 s storm",
        during.len()
    );
    let last_sent = pdus
        .iter()
        .find(|(_, l)| l.actor.port_priority == last_prio)
        .expect("the last state went out");
    assert!(
        last_sent.0 <= storm_end + SEC,
        "coalesced, not dropped: {}",
        last_sent.0
    );
    // Counted per LACPDU that waited (each wait ends with one sent), not per poll.
    let deferred = info(&sim, p.a, port).counters.tx_deferred;
    assert!(
        deferred > 0 && deferred <= during.len() as u64 + 1,
        "tx_deferred {deferred} for {} LACPDUs sent during the storm",
        during.len()
    );
    assert_eq!(
        info(&sim, p.b, p.b_ports[0]).partner.port_priority,
        last_prio,
        "partner has the newest state"
    );
}

#[test]
fn b13_steady_state_exchanges_only_periodic_pdus() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(5 * SEC).unwrap();
    sim.clear_logs();
    let t0 = sim.now();
    sim.run_for(60 * SEC).unwrap();
    for (node, ports) in [(p.a, &p.a_ports), (p.b, &p.b_ports)] {
        for &port in ports {
            let pdus = sim.lacpdus_from(node, port);
            assert!(
                (66..=67).contains(&pdus.len()),
                "{} PDUs in 60 s",
                pdus.len()
            );
            for w in pdus.windows(2) {
                assert_eq!(
                    w[1].0 - w[0].0,
                    Duration::from_millis(900),
                    "only the periodic cadence"
                );
            }
        }
    }
    assert!(sim.events().is_empty(), "no state change in steady state");
    assert!(sim.now() - t0 == 60 * SEC);
}

#[test]
fn p9_marker_request_answered_once_with_same_fields() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.clear_logs();
    let req = MarkerRepr {
        kind: MarkerKind::Information,
        requester_port: 7,
        requester_system: system_mac(9, 1),
        transaction_id: 0xdead_beef,
    };
    let rx = sim
        .inject(p.a, p.a_ports[0], &Frame::marker(port_mac(9, 7), &req))
        .unwrap();
    assert_eq!(rx, RxKind::MarkerInformation);
    sim.run_for(SEC).unwrap();
    let responses: Vec<_> = sim
        .tx_log()
        .iter()
        .filter(|r| r.kind == TxKind::MarkerResponse)
        .copied()
        .collect();
    assert_eq!(responses.len(), 1, "answered once");
    let r = responses[0];
    assert_eq!(r.port, p.a_ports[0], "from the member that received it");
    assert_eq!(r.at, sim.tx_log()[0].at.min(r.at), "at once");
    assert_eq!(
        r.marker.unwrap(),
        req.response(),
        "same requester port, system and transaction id"
    );
    let c = info(&sim, p.a, p.a_ports[0]).counters;
    assert_eq!(
        (
            c.marker_pdus_rx,
            c.marker_response_pdus_tx,
            c.marker_pdus_tx
        ),
        (1, 1, 0)
    );
    // A burst is rate-limited, and counted.
    for i in 0..20 {
        let m = MarkerRepr {
            transaction_id: i,
            ..req
        };
        sim.inject(p.a, p.a_ports[0], &Frame::marker(port_mac(9, 7), &m))
            .unwrap();
    }
    let c = info(&sim, p.a, p.a_ports[0]).counters;
    assert_eq!(c.marker_response_pdus_tx, 6);
    assert_eq!(c.marker_rate_limited, 15);
    assert!(p.all_distributing(&sim), "markers do not disturb LACP");
}

#[test]
fn p11_loopback_detected_between_two_members_and_on_a_reflected_link() {
    let mut sim = Sim::new(9);
    sim.set_check_invariants(true);
    let a = sim.add_node();
    let ab = sim.add_bond(a, cfg(0, 10)).unwrap();
    let p0 = sim
        .add_port(a, ab, PortConfig::new("a0", port_mac(0, 1), 1))
        .unwrap();
    let p1 = sim
        .add_port(a, ab, PortConfig::new("a1", port_mac(0, 2), 2))
        .unwrap();
    let p2 = sim
        .add_port(a, ab, PortConfig::new("a2", port_mac(0, 3), 3))
        .unwrap();
    sim.connect(
        Endpoint { node: a, port: p0 },
        Endpoint { node: a, port: p1 },
        link(),
    );
    sim.connect(
        Endpoint { node: a, port: p2 },
        Endpoint { node: a, port: p2 },
        link(),
    );
    sim.run_until(Instant::from_secs(30)).unwrap();
    assert!(sim.engine(a).distribution(ab).unwrap().is_empty());
    for port in [p0, p1, p2] {
        let i = info(&sim, a, port);
        assert_eq!(i.reason, Some(Reason::Loopback), "{port}");
        assert!(i.loopback);
        assert!(i.counters.loopback_rx > 0);
        assert!(
            i.counters.lacpdus_tx > 0,
            "keeps sending so the loop stays detected"
        );
    }
    assert!(sim.events().iter().any(|e| e.event
        == Event::Loopback {
            port: p2,
            detected: true
        }));
}

#[test]
fn b17_system_id_change_keeps_pdus_flowing_and_reconverges() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap(); // transmit budget of the convergence burst used up
    let t0 = sim.now();
    sim.with_engine(p.a, |e, now| {
        e.set_system(
            p.a_bond,
            SystemId {
                priority: 100,
                mac: system_mac(0, 77),
            },
            now,
        )
    })
    .unwrap();
    let pdus = sim.lacpdus_from(p.a, p.a_ports[0]);
    let first_new = pdus.iter().find(|(t, _)| *t >= t0).unwrap();
    assert_eq!(first_new.0, t0, "NTT on every member at once");
    assert_eq!(first_new.1.actor.system, system_mac(0, 77));
    let t = converge(&mut sim, &p, 10 * SEC);
    assert!(t - t0 <= WAIT + 2 * RTT, "{:?}", t - t0);
}

#[test]
fn b20_carrier_down_pdus_are_ignored() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    let port = p.a_ports[0];
    sim.with_engine(p.a, |e, now| e.handle_link(port, LinkStatus::down(), now))
        .unwrap();
    let before = info(&sim, p.a, port);
    let pdu = before.last_lacpdu.unwrap();
    sim.inject(p.a, port, &Frame::lacpdu(port_mac(1, 1), &pdu))
        .unwrap();
    let after = info(&sim, p.a, port);
    assert_eq!(after.counters.rx_while_link_down, 1);
    assert_eq!(
        (after.rx_state, after.mux_state),
        (before.rx_state, before.mux_state)
    );
    assert_eq!(after.reason, Some(Reason::LinkDown));
}

#[test]
fn b23_independent_control_collects_before_distributing() {
    let mut a = cfg(0, 10);
    a.mux = MuxControl::Independent;
    let mut b = cfg(1, 20);
    b.mux = MuxControl::Independent;
    let (mut sim, p) = pair(2, a, b);
    let t = converge(&mut sim, &p, 10 * SEC);
    assert!(t <= Instant::ZERO + WAIT + 2 * RTT);
    let i = info(&sim, p.a, p.a_ports[0]);
    let pos = |to: &str| {
        i.history
            .iter()
            .position(|h| h.machine == Machine::Mux && h.to == to)
            .unwrap()
    };
    assert!(pos("COLLECTING") < pos("DISTRIBUTING"));
    assert_eq!(i.mux_state, MuxState::Distributing);
    // Independent vs coupled interoperate.
    let mut c = cfg(1, 20);
    c.mux = MuxControl::Coupled;
    let mut a = cfg(0, 10);
    a.mux = MuxControl::Independent;
    let (mut sim, p) = pair(2, a, c);
    converge(&mut sim, &p, 10 * SEC);
}

#[test]
fn b24_min_links_takes_the_aggregate_down() {
    let mut a = cfg(0, 10);
    a.min_links = 3;
    let (mut sim, p) = pair(3, a, cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.act(Action::LinkDown(p.links[2]));
    assert!(
        sim.engine(p.a).distribution(p.a_bond).unwrap().is_empty(),
        "below min_links nothing distributes, at once"
    );
    sim.run_for(SEC).unwrap();
    assert_eq!(
        reason(&sim, p.a, p.a_ports[0]),
        Some(Reason::BelowMinLinks {
            available: 2,
            min_links: 3
        })
    );
    assert!(!sim.engine(p.a).bond_info(p.a_bond).unwrap().min_links_met);
    // The partner is told: it stops using the other links as well.
    assert!(!sim.engine(p.b).is_distributing(p.b_ports[0]));
    let t0 = sim.now();
    sim.act(Action::LinkUp(p.links[2]));
    let t = converge(&mut sim, &p, 10 * SEC);
    assert!(t - t0 <= WAIT + 2 * RTT);
}

#[test]
fn b25_aggregator_id_stable_across_flaps() {
    let (mut sim, p) = pair(3, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    let agg = sim
        .engine(p.a)
        .bond_info(p.a_bond)
        .unwrap()
        .active_aggregator;
    for round in 0..5 {
        let l = p.links[round % 3];
        sim.act(Action::LinkDown(l));
        sim.run_for(500 * MS).unwrap();
        assert_eq!(
            sim.engine(p.a)
                .bond_info(p.a_bond)
                .unwrap()
                .active_aggregator,
            agg
        );
        sim.act(Action::LinkUp(l));
        converge(&mut sim, &p, 10 * SEC);
        assert_eq!(
            sim.engine(p.a)
                .bond_info(p.a_bond)
                .unwrap()
                .active_aggregator,
            agg
        );
    }
}

#[test]
fn max_active_uses_port_priority_and_partner_agrees() {
    let mut a = cfg(0, 10);
    a.max_active = Some(2);
    a.system.priority = 100; // A has the higher priority: its port priorities decide
    let (mut sim, p) = pair(3, a, cfg(1, 20));
    sim.with_engine(p.a, |e, now| e.set_port_priority(p.a_ports[0], 500, now))
        .unwrap();
    sim.run_until(Instant::from_secs(20)).unwrap();
    assert_eq!(
        sim.engine(p.a).distribution(p.a_bond).unwrap(),
        &[p.a_ports[1], p.a_ports[2]]
    );
    assert_eq!(
        sim.engine(p.b).distribution(p.b_bond).unwrap(),
        &[p.b_ports[1], p.b_ports[2]]
    );
    assert_eq!(
        reason(&sim, p.a, p.a_ports[0]),
        Some(Reason::Standby { max_active: 2 })
    );
    assert_eq!(info(&sim, p.a, p.a_ports[0]).selected, Selected::Standby);
    assert!(
        !info(&sim, p.a, p.a_ports[0]).actor.state.synchronization(),
        "STANDBY stays out of sync"
    );
}

#[test]
fn drain_stops_partner_at_once_and_undrain_rejoins() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap();
    let t0 = sim.now();
    sim.with_engine(p.a, |e, now| e.set_drain(p.a_ports[0], true, now))
        .unwrap();
    assert!(
        !sim.engine(p.a).is_distributing(p.a_ports[0]),
        "our egress stops at once"
    );
    sim.run_for(100 * MS).unwrap();
    let stop = distributing_event(&sim, p.b, p.b_ports[0], false, t0).unwrap();
    assert!(stop <= t0 + RTT);
    assert_eq!(reason(&sim, p.a, p.a_ports[0]), Some(Reason::Drained));
    assert!(
        sim.engine(p.a)
            .port_info(p.a_ports[0], sim.now())
            .unwrap()
            .counters
            .lacpdus_tx
            > 0
    );
    let t1 = sim.now();
    sim.with_engine(p.a, |e, now| e.set_drain(p.a_ports[0], false, now))
        .unwrap();
    let t = converge(&mut sim, &p, 10 * SEC);
    assert!(t - t1 <= WAIT + 2 * RTT);
}

#[test]
fn b27_control_plane_restart_resumes_before_partner_timeout() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(SEC).unwrap();
    let t0 = sim.now();
    sim.act(Action::Restart(p.a));
    let t = converge(&mut sim, &p, 10 * SEC);
    assert!(t - t0 <= WAIT + 2 * RTT, "{:?}", t - t0);
    for &port in &p.b_ports {
        let i = info(&sim, p.b, port);
        assert!(
            rx_transition(&i, "EXPIRED", t0).is_none(),
            "the partner never expired us"
        );
    }
}

#[test]
fn b15_speed_change_with_speed_class_keys_reselects() {
    let mut a = cfg(0, 10);
    a.key_policy = KeyPolicy::AdminWithSpeedClass;
    let (mut sim, p) = pair(2, a, cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.set_link_status(p.links[1], LinkStatus::up_full(1_000));
    sim.run_for(10 * SEC).unwrap();
    assert_eq!(sim.engine(p.a).distribution(p.a_bond).unwrap().len(), 1);
    assert!(matches!(
        reason(&sim, p.a, p.a_ports[1]),
        Some(Reason::KeyMismatch {
            side: KeySide::Actor,
            ..
        })
    ));
    // Default policy: speed never changes the key (B16: mixed speeds aggregate, documented).
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.set_link_status(p.links[1], LinkStatus::up_full(1_000));
    sim.run_for(10 * SEC).unwrap();
    assert!(p.all_distributing(&sim));
}

#[test]
fn malformed_and_foreign_frames_change_nothing() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    let port = p.a_ports[0];
    let good = info(&sim, p.a, port).last_lacpdu.unwrap();
    let frame = Frame::lacpdu(port_mac(1, 1), &good);
    let before = info(&sim, p.a, port);
    let mut short = frame.to_vec();
    short.truncate(100);
    let mut bad_len = frame.to_vec();
    bad_len[17] = 19;
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    tagged.extend_from_slice(&frame[12..]);
    let mut unicast_other = frame.to_vec();
    unicast_other[..6].copy_from_slice(&[0x02, 0x99, 0, 0, 0, 1]);
    let mut oam = frame.to_vec();
    oam[14] = 3;
    assert_eq!(sim.inject(p.a, port, &short).unwrap(), RxKind::Illegal);
    assert_eq!(sim.inject(p.a, port, &bad_len).unwrap(), RxKind::Illegal);
    assert_eq!(sim.inject(p.a, port, &tagged).unwrap(), RxKind::Unknown);
    assert_eq!(
        sim.inject(p.a, port, &unicast_other).unwrap(),
        RxKind::Ignored
    );
    assert_eq!(sim.inject(p.a, port, &oam).unwrap(), RxKind::Unknown);
    let after = info(&sim, p.a, port);
    assert_eq!(after.counters.illegal_rx, 2);
    assert_eq!(after.counters.unknown_rx, 2);
    assert_eq!(after.counters.vlan_tagged_rx, 1);
    assert_eq!(after.counters.foreign_dst_rx, 1);
    assert_eq!(after.counters.lacpdus_rx, before.counters.lacpdus_rx);
    assert_eq!(
        (after.rx_state, after.mux_state, after.partner),
        (before.rx_state, before.mux_state, before.partner)
    );
    assert_eq!(after.history, before.history);
    // A LACPDU addressed to the member's own MAC is accepted.
    let mut to_us = frame.to_vec();
    to_us[..6].copy_from_slice(&port_mac(0, 1).0);
    assert_eq!(sim.inject(p.a, port, &to_us).unwrap(), RxKind::Lacpdu);
}

#[test]
fn p12_partner_tlv_echoes_partner_actor_and_defaults_after_silence() {
    let (mut sim, p) = pair(1, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(2 * SEC).unwrap();
    let b_actor = sim.lacpdus_from(p.b, p.b_ports[0]).last().unwrap().1.actor;
    let a_last = sim.lacpdus_from(p.a, p.a_ports[0]).last().unwrap().1;
    let mut expect = b_actor;
    expect.state = b_actor.state; // partner in sync on both sides: identical
    assert_eq!(a_last.partner, expect);
    sim.act(Action::OneWay {
        link: p.links[0],
        dir: Direction::BToA,
        ok: false,
    });
    sim.run_for(10 * SEC).unwrap();
    let a_last = sim.lacpdus_from(p.a, p.a_ports[0]).last().unwrap().1;
    assert!(a_last.actor.state.defaulted());
    assert_eq!(
        a_last.partner.system,
        MacAddr::ZERO,
        "partner admin values after DEFAULTED"
    );
    assert!(!a_last.partner.state.synchronization());
}

#[test]
fn introspection_shows_timers_machines_and_history() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    sim.run_until(Instant::from_millis(500)).unwrap();
    let i = info(&sim, p.a, p.a_ports[0]);
    assert_eq!(i.mux_state, MuxState::Waiting);
    match i.reason {
        Some(Reason::AggregateWait { remaining }) => {
            assert_eq!(remaining, Duration::from_millis(1501))
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(i.timers.wait_while, Some(Duration::from_millis(1501)));
    // Last LACPDU from B arrived at 2 ms (its answer to our first one).
    assert_eq!(i.timers.current_while, Some(Duration::from_millis(2502)));
    assert_eq!(i.timers.periodic, Some(Duration::from_millis(400)));
    assert!(i.timers.actor_churn.is_some());
    assert!(i.history.iter().any(|h| h.machine == Machine::Receive
        && h.to == "CURRENT"
        && h.cause == Cause::PduReceived));
    converge(&mut sim, &p, 10 * SEC);
    let b = sim.engine(p.a).bond_info(p.a_bond).unwrap();
    assert_eq!(b.aggregators.len(), 1);
    assert!(b.aggregators[0].active);
    assert_eq!(b.aggregators[0].partner_key, 20);
    assert_eq!(b.distribution, p.a_ports);
    assert!(b.min_links_met);
}

#[test]
fn b19_bond_removal_tells_the_partner_at_once() {
    let (mut sim, p) = pair(3, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.run_for(3 * SEC).unwrap();
    let t0 = sim.now();
    sim.with_engine(p.a, |e, now| e.remove_bond(p.a_bond, now))
        .unwrap();
    let finals = sim
        .tx_log()
        .iter()
        .filter(|r| r.kind == TxKind::FinalLacpdu)
        .count();
    assert_eq!(finals, 3, "one final LACPDU per member");
    sim.run_for(10 * MS).unwrap();
    assert!(
        sim.engine(p.b).distribution(p.b_bond).unwrap().is_empty(),
        "partner stopped within one latency"
    );
    assert!(distributing_event(&sim, p.b, p.b_ports[0], false, t0).unwrap() <= t0 + RTT);
    assert!(sim.events().iter().any(|e| e.node == p.a
        && e.event
            == Event::Distribution {
                bond: p.a_bond,
                members: vec![]
            }));
}

#[test]
fn engine_can_move_to_the_control_thread() {
    fn is_send<T: Send + Sync>() {}
    is_send::<Engine>();
    is_send::<Event>();
    is_send::<Transmit>();
}

/// Two partner aggregators (two bonds of one partner system, as two OVS bonds on one
/// host), one link to each, the one to a1 heard 300 ms before the one to a0.
/// * We control (lower system id): the active aggregator is chosen by the documented rule
///   (count, then our lowest port priority/number: a0), not by which partner was heard
///   first; a1's aggregator is still in its aggregate wait when a0's appears, so nothing is
///   attached and stickiness does not apply.
/// * The partner controls: fastlag follows the aggregator the partner puts in sync (rule 3),
///   here a1's, whose partner bond finished its own wait first, even though a0's partner port
///   number is lower.
///
/// Either way both ends agree: only the partner bond on the chosen link distributes. And
/// once attached the choice is sticky: the other link flapping moves nothing.
#[test]
fn b7_two_partner_aggregators_chosen_by_rule_not_arrival() {
    // (our node, partner node, winner is a0)
    for (ours, theirs, want_a0) in [(0u8, 1u8, true), (2, 1, false)] {
        let mut sim = Sim::new(5);
        sim.set_check_invariants(true);
        let a = sim.add_node();
        let b = sim.add_node();
        let ab = sim
            .add_bond(a, BondConfig::new("bond-a", system_mac(ours, 1), 10))
            .unwrap();
        let bx = sim
            .add_bond(b, BondConfig::new("bond-x", system_mac(theirs, 1), 20))
            .unwrap();
        let by = sim
            .add_bond(b, BondConfig::new("bond-y", system_mac(theirs, 1), 30))
            .unwrap();
        let pa0 = sim
            .add_port(a, ab, PortConfig::new("a0", port_mac(ours, 1), 1))
            .unwrap();
        let pa1 = sim
            .add_port(a, ab, PortConfig::new("a1", port_mac(ours, 2), 2))
            .unwrap();
        // The partner's port numbers favour x (a0's link) too: only arrival favours y.
        let px = sim
            .add_port(b, bx, PortConfig::new("x0", port_mac(theirs, 1), 3))
            .unwrap();
        let py = sim
            .add_port(b, by, PortConfig::new("y0", port_mac(theirs, 2), 7))
            .unwrap();
        let l_early = sim.connect(
            Endpoint { node: a, port: pa1 },
            Endpoint { node: b, port: py },
            link(),
        );
        let l_late = sim.connect(
            Endpoint { node: a, port: pa0 },
            Endpoint { node: b, port: px },
            link(),
        );
        sim.act(Action::LinkDown(l_late));
        sim.schedule(Instant::from_millis(300), Action::LinkUp(l_late));
        run_checking(&mut sim, Instant::from_secs(20), |s| {
            assert!(s.engine(a).distribution(ab).unwrap().len() <= 1);
        })
        .unwrap();
        let (win, lose) = if want_a0 { (pa0, pa1) } else { (pa1, pa0) };
        let d = sim.engine(a).distribution(ab).unwrap().to_vec();
        assert_eq!(
            d,
            vec![win],
            "ours {ours} theirs {theirs}: winner a{} ({:?})",
            if want_a0 { 0 } else { 1 },
            reason(&sim, a, win)
        );
        assert!(
            matches!(reason(&sim, a, lose), Some(Reason::KeyMismatch { .. })),
            "{:?}",
            reason(&sim, a, lose)
        );
        // The partner agrees: only its bond on the chosen link distributes.
        let (pw, pl) = if want_a0 { (px, py) } else { (py, px) };
        assert!(sim.engine(b).is_distributing(pw));
        assert!(!sim.engine(b).is_distributing(pl));

        // Sticky once attached: the other link flaps; the active aggregator stays.
        assert_eq!(sim.engine(a).bond_info(ab).unwrap().aggregators.len(), 2);
        let other = if want_a0 { l_early } else { l_late };
        let t = sim.now();
        sim.act(Action::LinkDown(other));
        sim.run_for(SEC).unwrap();
        sim.act(Action::LinkUp(other));
        sim.run_until(t + 10 * SEC).unwrap();
        assert_eq!(sim.engine(a).distribution(ab).unwrap().to_vec(), vec![win]);
    }
}
