//! B14, the seed-bug matrix: every combination of speed (known, 0, unknown) x duplex (full,
//! half, unknown) x key policy. LACP keeps sending in every combination; a member kept out of
//! the aggregate always says why; unknown is reported once.

mod common;

use common::*;
use lacp::sim::{LinkParams, Sim};
use lacp::*;

#[test]
fn b14_unknown_speed_duplex_matrix_never_stops_lacp() {
    let speeds = [Speed::Mbps(10_000), Speed::Mbps(0), Speed::Unknown];
    let duplexes = [Duplex::Full, Duplex::Half, Duplex::Unknown];
    let policies = [KeyPolicy::Admin, KeyPolicy::AdminWithSpeedClass];
    let mut combos = 0;
    for speed in speeds {
        for duplex in duplexes {
            for policy in policies {
                combos += 1;
                let status = LinkStatus {
                    up: true,
                    speed,
                    duplex,
                };
                let params = LinkParams { status, ..link() };
                let mut a = cfg(0, 10);
                a.key_policy = policy;
                let mut b = cfg(1, 20);
                b.key_policy = policy;
                let (mut sim, p) = Sim::pair(1, 2, a, b, params).unwrap();
                sim.set_check_invariants(true);
                sim.run_until(Instant::from_secs(20)).unwrap();
                let what = format!("{speed:?} {duplex:?} {policy:?}");
                for (node, ports) in [(p.a, &p.a_ports), (p.b, &p.b_ports)] {
                    for &port in ports {
                        let i = info(&sim, node, port);
                        assert!(
                            i.counters.lacpdus_tx >= 20,
                            "{what}: LACP kept sending ({})",
                            i.counters.lacpdus_tx
                        );
                        assert!(i.counters.lacpdus_rx >= 20, "{what}");
                        assert_eq!(i.periodic_state, PeriodicState::FastPeriodic, "{what}");
                        assert_eq!(
                            i.distributing,
                            i.reason.is_none(),
                            "{what}: any exclusion has a reason"
                        );
                        let unknown_speed = speed.mbps().is_none();
                        let unknown_duplex = duplex == Duplex::Unknown;
                        assert_eq!(i.unknown_link.speed, unknown_speed, "{what}");
                        assert_eq!(i.unknown_link.duplex, unknown_duplex, "{what}");
                        assert_eq!(
                            i.unknown_link.first_seen.is_some(),
                            unknown_speed || unknown_duplex
                        );
                        assert_eq!(
                            i.actor.state.aggregation(),
                            duplex != Duplex::Half,
                            "{what}"
                        );
                    }
                    let reported = sim
                        .events()
                        .iter()
                        .filter(|e| {
                            e.node == node && matches!(e.event, Event::LinkAttributesUnknown { .. })
                        })
                        .count();
                    let expect = if speed.mbps().is_none() || duplex == Duplex::Unknown {
                        ports.len()
                    } else {
                        0
                    };
                    assert_eq!(reported, expect, "{what}: reported once per member");
                }
                let da = sim.engine(p.a).distribution(p.a_bond).unwrap().len();
                let db = sim.engine(p.b).distribution(p.b_bond).unwrap().len();
                if duplex == Duplex::Half {
                    assert_eq!(
                        (da, db),
                        (1, 1),
                        "{what}: half duplex links are individual, one used"
                    );
                    for &port in &p.a_ports {
                        let r = reason(&sim, p.a, port);
                        assert!(
                            r.is_none()
                                || r == Some(Reason::Individual {
                                    cause: IndividualCause::HalfDuplex
                                }),
                            "{what}: {r:?}"
                        );
                    }
                } else {
                    assert_eq!(
                        (da, db),
                        (2, 2),
                        "{what}: unknown is never a reason to stay out"
                    );
                }
            }
        }
    }
    assert_eq!(combos, 18);
}

#[test]
fn unknown_speed_in_bandwidth_policy_counts_zero_but_still_aggregates() {
    let mut a = cfg(0, 10);
    a.selection = SelectionPolicy::Bandwidth;
    let params = LinkParams {
        status: LinkStatus::up_unknown(),
        ..link()
    };
    let (mut sim, p) = Sim::pair(2, 3, a, cfg(1, 20), params).unwrap();
    sim.set_check_invariants(true);
    sim.run_until(Instant::from_secs(10)).unwrap();
    assert!(p.all_distributing(&sim));
}

#[test]
fn link_flap_with_unknown_attributes_recovers() {
    let params = LinkParams {
        status: LinkStatus::up_unknown(),
        ..link()
    };
    let (mut sim, p) = Sim::pair(3, 2, cfg(0, 10), cfg(1, 20), params).unwrap();
    sim.set_check_invariants(true);
    converge(&mut sim, &p, 10 * SEC);
    sim.act(lacp::sim::Action::LinkDown(p.links[0]));
    assert_eq!(reason(&sim, p.a, p.a_ports[0]), Some(Reason::LinkDown));
    sim.act(lacp::sim::Action::LinkUp(p.links[0]));
    converge(&mut sim, &p, 10 * SEC);
    // The fact is reported once per member, not once per link-up.
    let n = sim
        .events()
        .iter()
        .filter(|e| matches!(e.event, Event::LinkAttributesUnknown { .. }))
        .count();
    assert_eq!(n, 4);
}
