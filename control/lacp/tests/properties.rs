//! Property tests: the safety invariant under random fault schedules (warm restarts and
//! crashes of A with saved state among them, at random instants), convergence once faults
//! stop, and the wire parser (the fuzz target's body) over arbitrary and mutated bytes.

mod common;

use common::*;
use core::time::Duration;
use lacp::sim::{port_mac, Action, Direction, LinkParams, Sim};
use lacp::wire::{fuzz_parse, Frame, LacpduRepr, MacAddr, ParticipantInfo, PortState};
use lacp::*;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Sim(u8, usize, u32),
    RateA(bool),
    DrainA(usize, bool),
    PriorityB(usize, u16),
    /// A warm restart of A (planned or a crash) with a gap of this many ms.
    WarmRestartA(u64, bool),
}

fn fault() -> impl Strategy<Value = (u64, Fault)> {
    let f = prop_oneof![
        6 => (0u8..10, 0usize..4, 0u32..600_000).prop_map(|(k, l, x)| Fault::Sim(k, l, x)),
        1 => any::<bool>().prop_map(Fault::RateA),
        1 => (0usize..4, any::<bool>()).prop_map(|(p, d)| Fault::DrainA(p, d)),
        1 => (0usize..4, 1u16..1000).prop_map(|(p, v)| Fault::PriorityB(p, v)),
        2 => (0u64..4_000, any::<bool>()).prop_map(|(g, planned)| Fault::WarmRestartA(g, planned)),
    ];
    (0u64..40_000, f)
}

#[derive(Clone, Debug)]
struct Scenario {
    seed: u64,
    ports: usize,
    latency_us: u64,
    mux_a: bool,
    mux_b: bool,
    passive_b: bool,
    policy: u8,
    slow_b: bool,
    faults: Vec<(u64, Fault)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        1usize..=4,
        50u64..5_000,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        any::<bool>(),
        proptest::collection::vec(fault(), 0..16),
    )
        .prop_map(
            |(seed, ports, latency_us, mux_a, mux_b, passive_b, policy, slow_b, faults)| Scenario {
                seed,
                ports,
                latency_us,
                mux_a,
                mux_b,
                passive_b,
                policy,
                slow_b,
                faults,
            },
        )
}

fn build(s: &Scenario) -> (Sim, lacp::sim::BondPair) {
    let mut a = cfg(0, 10);
    a.mux = if s.mux_a {
        MuxControl::Independent
    } else {
        MuxControl::Coupled
    };
    a.selection = [
        SelectionPolicy::Stable,
        SelectionPolicy::Count,
        SelectionPolicy::Bandwidth,
    ][s.policy as usize];
    let mut b = cfg(1, 20);
    b.mux = if s.mux_b {
        MuxControl::Independent
    } else {
        MuxControl::Coupled
    };
    if s.passive_b {
        b.activity = Activity::Passive;
    }
    if s.slow_b {
        b.rate = Rate::Slow;
    }
    let params = LinkParams {
        latency: Duration::from_micros(s.latency_us),
        ..LinkParams::default()
    };
    let (mut sim, p) = Sim::pair(s.seed, s.ports, a, b, params).expect("pair");
    sim.set_check_invariants(true);
    sim.set_recording(false, false);
    (sim, p)
}

fn apply(sim: &mut Sim, p: &lacp::sim::BondPair, f: Fault) {
    let n = p.links.len();
    match f {
        Fault::Sim(kind, l, x) => {
            let link = p.links[l % n];
            let action = match kind {
                0 => Action::LinkDown(link),
                1 => Action::LinkUp(link),
                2 => Action::OneWay {
                    link,
                    dir: Direction::AToB,
                    ok: x % 2 == 0,
                },
                3 => Action::OneWay {
                    link,
                    dir: Direction::BToA,
                    ok: x % 2 == 0,
                },
                4 => Action::Loss(link, x),
                5 => Action::Duplicate(link, x),
                6 => Action::Restart(if x % 2 == 0 { p.a } else { p.b }),
                7 => Action::Pause(p.b, x % 2 == 0),
                8 => Action::Pause(p.a, x % 3 == 0),
                _ => Action::LinkDown(link),
            };
            sim.act(action);
        }
        Fault::RateA(fast) => {
            let r = if fast { Rate::Fast } else { Rate::Slow };
            sim.with_engine(p.a, |e, now| e.set_rate(p.a_bond, r, now))
                .unwrap();
        }
        Fault::DrainA(i, d) => {
            let port = p.a_ports[i % n];
            sim.with_engine(p.a, |e, now| e.set_drain(port, d, now))
                .unwrap();
        }
        Fault::PriorityB(i, v) => {
            let port = p.b_ports[i % n];
            sim.with_engine(p.b, |e, now| e.set_port_priority(port, v, now))
                .unwrap();
        }
        Fault::WarmRestartA(gap_ms, planned) => {
            // Stop now (a random instant of the schedule), start after the gap but before
            // the faults end (41 s), so the convergence check sees a running node.
            sim.act(Action::WarmStop { node: p.a, planned });
            let start =
                (sim.now() + Duration::from_millis(gap_ms)).min(Instant::from_millis(40_900));
            sim.schedule(start, Action::WarmStart(p.a));
        }
    }
}

fn restore(sim: &mut Sim, p: &lacp::sim::BondPair) {
    for &l in &p.links {
        sim.act(Action::LinkUp(l));
        sim.act(Action::OneWay {
            link: l,
            dir: Direction::AToB,
            ok: true,
        });
        sim.act(Action::OneWay {
            link: l,
            dir: Direction::BToA,
            ok: true,
        });
        sim.act(Action::Loss(l, 0));
        sim.act(Action::Duplicate(l, 0));
    }
    sim.act(Action::Pause(p.a, false));
    sim.act(Action::Pause(p.b, false));
    for &port in &p.a_ports {
        sim.with_engine(p.a, |e, now| e.set_drain(port, false, now))
            .unwrap();
    }
    sim.with_engine(p.a, |e, now| e.set_rate(p.a_bond, Rate::Fast, now))
        .unwrap();
}

/// After the last fault, everything converges within this bound (worst case: stale partner
/// information must expire first (3 s short timeout + 3 s to default is not needed since
/// PDUs resume at once; a slow partner may need to hear our fast request), then one
/// aggregate wait, plus the transmit limit).
const CONVERGENCE_BOUND: Duration = Duration::from_secs(8);

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn safety_under_faults_and_convergence_after(s in scenario()) {
        let (mut sim, p) = build(&s);
        let mut faults = s.faults.clone();
        faults.sort_by_key(|f| f.0);
        for (t, f) in faults {
            // Every step checks: nothing distributes without a current, matched, in-sync,
            // collecting partner; one aggregator per bond; min_links; no settle overrun.
            sim.run_until(Instant::from_millis(t)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            apply(&mut sim, &p, f);
        }
        sim.run_until(Instant::from_secs(41)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        restore(&mut sim, &p);
        let t0 = sim.now();
        let r = sim.run_until_cond(t0 + CONVERGENCE_BOUND, |x| p.all_distributing(x));
        prop_assert!(r.is_ok(), "no convergence within {:?}: {:?}\n{}", CONVERGENCE_BOUND, r, dump(&sim, &p));
        // And it stays converged.
        sim.run_for(Duration::from_secs(30)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(p.all_distributing(&sim), "{}", dump(&sim, &p));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// P13: the fuzz target's body over arbitrary bytes: no panic, re-emit round-trips.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzz_parse(&data);
    }

    /// Arbitrary bytes behind a valid Slow Protocols header reach the PDU parsers.
    #[test]
    fn arbitrary_slow_payloads_never_panic(sub in 0u8..12, ver in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut f = vec![0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, 0x02, 0, 0, 0, 0, 1, 0x88, 0x09, sub, ver];
        f.extend_from_slice(&data);
        fuzz_parse(&f);
    }
}

fn participant() -> impl Strategy<Value = ParticipantInfo> {
    (
        any::<u16>(),
        any::<[u8; 6]>(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(|(sp, sys, key, pp, port, st)| ParticipantInfo {
            system_priority: sp,
            system: MacAddr(sys),
            key,
            port_priority: pp,
            port,
            state: PortState::from_bits(st),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn lacpdu_repr_round_trips(a in participant(), b in participant(), d in any::<u16>()) {
        let repr = LacpduRepr { version: 1, actor: a, partner: b, collector_max_delay: d };
        let f = Frame::lacpdu(port_mac(0, 1), &repr);
        prop_assert_eq!(f.len(), 124);
        let back = lacp::wire::parse_frame(&f).unwrap();
        prop_assert_eq!(back.pdu, lacp::wire::SlowPdu::Lacpdu(repr));
    }

    /// Mutated valid LACPDUs fed to a converged engine: no panic, malformed ones counted as
    /// illegal, invariants hold.
    #[test]
    fn mutated_frames_into_a_live_engine(flips in proptest::collection::vec((14usize..124, any::<u8>()), 1..6), a in participant()) {
        let (mut sim, p) = Sim::pair(1, 1, cfg(0, 10), cfg(1, 20), LinkParams::default()).unwrap();
        sim.set_recording(false, false);
        sim.run_until(Instant::from_secs(3)).unwrap();
        let repr = LacpduRepr { version: 1, actor: a, partner: ParticipantInfo::default(), collector_max_delay: 0 };
        let mut f = Frame::lacpdu(port_mac(1, 1), &repr).to_vec();
        for (i, v) in flips { f[i] = v; }
        let before = sim.engine(p.a).counters(p.a_ports[0]).unwrap();
        let kind = sim.inject(p.a, p.a_ports[0], &f).unwrap();
        let after = sim.engine(p.a).counters(p.a_ports[0]).unwrap();
        if kind == RxKind::Illegal {
            prop_assert_eq!(after.illegal_rx, before.illegal_rx + 1);
            prop_assert_eq!(after.lacpdus_rx, before.lacpdus_rx);
        }
        sim.engine(p.a).check_invariants().map_err(TestCaseError::fail)?;
        sim.run_for(Duration::from_secs(5)).unwrap();
        sim.engine(p.a).check_invariants().map_err(TestCaseError::fail)?;
    }
}
