//! Warm restart and crash recovery (engine/restore.rs) in the simulator: node A stops with its
//! state saved, stays silent for a gap, and starts again as a fresh engine offered that
//! state. Node B is the partner that must not notice, or, when something changed during the
//! gap, A must fall back to a normal start. Every step checks the safety invariants.

mod common;

use common::*;
use core::time::Duration;
use lacp::sim::{Action, BondPair, Sim};
use lacp::*;

fn restore_events(sim: &Sim, node: lacp::sim::NodeId) -> Vec<(PortId, RestoreOutcome)> {
    sim.events()
        .iter()
        .filter(|e| e.node == node)
        .filter_map(|e| match e.event {
            Event::Restore { port, outcome } => Some((port, outcome)),
            _ => None,
        })
        .collect()
}

/// B never saw anything: no member left its distribution set, none expired or defaulted.
fn partner_noticed_nothing(sim: &Sim, p: &BondPair, since: Instant) -> Result<(), String> {
    for &port in &p.b_ports {
        if let Some(at) = distributing_event(sim, p.b, port, false, since) {
            return Err(format!("B's {port} stopped distributing at {at}"));
        }
        let i = info(sim, p.b, port);
        for to in ["EXPIRED", "DEFAULTED", "PORT_DISABLED"] {
            if let Some(at) = rx_transition(&i, to, since) {
                return Err(format!("B's {port} entered {to} at {at}"));
            }
        }
        if i.mux_state != MuxState::CollectingDistributing {
            return Err(format!("B's {port} is in {}", i.mux_state));
        }
    }
    Ok(())
}

/// A pair of fast, active bonds with `n` members, converged and settled for a while.
fn converged(n: usize) -> (Sim, BondPair) {
    let (mut sim, p) = pair(n, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 5 * SEC);
    sim.run_for(5 * SEC).unwrap();
    (sim, p)
}

fn warm_restart(sim: &mut Sim, p: &BondPair, planned: bool, gap: Duration) -> Instant {
    sim.act(Action::WarmStop { node: p.a, planned });
    sim.run_for(gap).unwrap();
    let t = sim.now();
    sim.act(Action::WarmStart(p.a));
    t
}

fn restored_and_confirmed(sim: &Sim, p: &BondPair) -> Result<(), String> {
    let ev = restore_events(sim, p.a);
    for &port in &p.a_ports {
        for want in [RestoreOutcome::Restored, RestoreOutcome::Confirmed] {
            if !ev.contains(&(port, want)) {
                return Err(format!("{port}: no {want:?} in {ev:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn planned_restart_keeps_the_partner_in_sync() {
    let (mut sim, p) = converged(3);
    let t0 = sim.now();
    let start = warm_restart(&mut sim, &p, true, 800 * MS);
    // A distributes again at once: no Aggregate_Wait_Time, no renegotiation.
    for &port in &p.a_ports {
        assert!(
            sim.engine(p.a).is_distributing(port),
            "A's {port} not distributing right after the restart\n{}",
            dump(&sim, &p)
        );
    }
    // Its first LACPDU leaves at the restart instant, in sync.
    for &port in &p.a_ports {
        let first = sim
            .lacpdus_from(p.a, port)
            .into_iter()
            .find(|(at, _)| *at >= start)
            .expect("a LACPDU after the restart");
        assert_eq!(first.0, start, "first LACPDU of {port} not sent at once");
        assert!(first.1.actor.state.synchronization() && first.1.actor.state.distributing());
    }
    sim.run_for(10 * SEC).unwrap();
    restored_and_confirmed(&sim, &p).unwrap();
    partner_noticed_nothing(&sim, &p, t0).unwrap_or_else(|e| panic!("{e}\n{}", dump(&sim, &p)));
    assert!(p.all_distributing(&sim));
    // And normal 802.1AX from there: a later partner change is handled as usual.
    for &port in &p.a_ports {
        assert_eq!(info(&sim, p.a, port).rx_state, RxState::Current);
    }
}

#[test]
fn crash_within_the_short_timeout_is_recovered() {
    let (mut sim, p) = converged(2);
    let t0 = sim.now();
    // A crash: no last LACPDU; the state is the one last saved, up to 0.9 s old already.
    warm_restart(&mut sim, &p, false, 1500 * MS);
    sim.run_for(10 * SEC).unwrap();
    restored_and_confirmed(&sim, &p).unwrap();
    partner_noticed_nothing(&sim, &p, t0).unwrap_or_else(|e| panic!("{e}\n{}", dump(&sim, &p)));
}

#[test]
fn expired_state_falls_back_to_a_normal_start() {
    let (mut sim, p) = converged(2);
    // Longer than B's short timeout: B expires A during the gap.
    let start = warm_restart(&mut sim, &p, true, 3500 * MS);
    let ev = restore_events(&sim, p.a);
    for &port in &p.a_ports {
        assert!(
            ev.iter().any(|(x, o)| *x == port
                && matches!(o, RestoreOutcome::Refused(RestoreRefusal::Expired { .. }))),
            "{port}: {ev:?}"
        );
        assert!(!sim.engine(p.a).is_distributing(port));
    }
    // A normal start: the aggregate wait, then both sides distribute.
    let at = converge(&mut sim, &p, 8 * SEC);
    assert!(
        at >= start + 2 * SEC,
        "converged at {at}, before the aggregate wait"
    );
}

#[test]
fn partner_change_during_the_gap_is_detected_at_the_first_lacpdu() {
    let (mut sim, p) = converged(2);
    sim.act(Action::WarmStop {
        node: p.a,
        planned: true,
    });
    sim.run_for(300 * MS).unwrap();
    // B becomes another system while A is away.
    let other = SystemId {
        priority: 100,
        mac: lacp::sim::system_mac(9, 9),
    };
    sim.with_engine(p.b, |e, now| e.set_system(p.b_bond, other, now))
        .unwrap();
    sim.run_for(300 * MS).unwrap();
    sim.act(Action::WarmStart(p.a));
    sim.run_for(100 * MS).unwrap();
    let ev = restore_events(&sim, p.a);
    for &port in &p.a_ports {
        assert!(
            ev.contains(&(port, RestoreOutcome::Restored)),
            "{port}: {ev:?}"
        );
        assert!(
            ev.contains(&(
                port,
                RestoreOutcome::Refused(RestoreRefusal::PartnerChanged)
            )),
            "{port}: {ev:?}"
        );
        // The new partner is recorded; A reselects as after BEGIN.
        assert_eq!(info(&sim, p.a, port).partner.system, other.mac);
    }
    converge(&mut sim, &p, 8 * SEC);
}

#[test]
fn partner_restart_during_the_gap_is_detected() {
    let (mut sim, p) = converged(2);
    sim.act(Action::WarmStop {
        node: p.a,
        planned: true,
    });
    sim.run_for(300 * MS).unwrap();
    // B restarts cold: it no longer knows A.
    sim.act(Action::Restart(p.b));
    sim.run_for(300 * MS).unwrap();
    sim.act(Action::WarmStart(p.a));
    sim.run_for(100 * MS).unwrap();
    let ev = restore_events(&sim, p.a);
    for &port in &p.a_ports {
        assert!(
            ev.contains(&(
                port,
                RestoreOutcome::Refused(RestoreRefusal::PartnerOutOfSync)
            )),
            "{port}: {ev:?}"
        );
    }
    converge(&mut sim, &p, 8 * SEC);
}

#[test]
fn link_down_during_the_gap() {
    let (mut sim, p) = converged(2);
    sim.act(Action::WarmStop {
        node: p.a,
        planned: true,
    });
    // Link 0 flaps during the gap (B sees it and resets that member); link 1 goes down and
    // is still down when A starts.
    sim.run_for(200 * MS).unwrap();
    sim.act(Action::LinkDown(p.links[0]));
    sim.act(Action::LinkDown(p.links[1]));
    sim.run_for(200 * MS).unwrap();
    sim.act(Action::LinkUp(p.links[0]));
    sim.run_for(200 * MS).unwrap();
    sim.act(Action::WarmStart(p.a));
    sim.run_for(100 * MS).unwrap();
    let ev = restore_events(&sim, p.a);
    let (m0, m1) = (p.a_ports[0], p.a_ports[1]);
    assert!(
        ev.contains(&(
            m0,
            RestoreOutcome::Refused(RestoreRefusal::PartnerOutOfSync)
        )),
        "{ev:?}"
    );
    assert!(
        ev.contains(&(m1, RestoreOutcome::Refused(RestoreRefusal::LinkDown))),
        "{ev:?}"
    );
    sim.act(Action::LinkUp(p.links[1]));
    converge(&mut sim, &p, 8 * SEC);
}

#[test]
fn one_member_restored_the_other_normal() {
    // Member 1 was drained (STANDBY, not in sync) when saved: it starts normally and joins
    // the restored member's aggregator after the aggregate wait.
    let (mut sim, p) = converged(2);
    let m1 = p.a_ports[1];
    sim.with_engine(p.a, |e, now| e.set_drain(m1, true, now))
        .unwrap();
    sim.run_for(2 * SEC).unwrap();
    let start = warm_restart(&mut sim, &p, true, 500 * MS);
    let ev = restore_events(&sim, p.a);
    assert!(
        ev.contains(&(p.a_ports[0], RestoreOutcome::Restored)),
        "{ev:?}"
    );
    assert!(
        ev.contains(&(m1, RestoreOutcome::Refused(RestoreRefusal::NotInSync))),
        "{ev:?}"
    );
    assert!(sim.engine(p.a).is_distributing(p.a_ports[0]));
    let at = converge(&mut sim, &p, 8 * SEC);
    assert!(
        at >= start + 2 * SEC,
        "m1 joined at {at} without the aggregate wait"
    );
}

#[test]
fn link_never_up_and_refusals_by_api() {
    let (mut sim, p) = converged(1);
    let port = p.a_ports[0];
    let now = sim.now();
    let saved = sim.engine(p.a).saved_port(port, now).unwrap();
    assert!(saved.in_sync(), "{saved:?}");
    // A running member refuses an offer.
    let r = sim.with_engine(p.a, |e, now| e.offer_restore(port, saved, now).unwrap());
    assert_eq!(r, Err(RestoreRefusal::AlreadyRunning));
    // A fresh engine whose member's link is never reported: the offer expires.
    let mut e = Engine::new();
    let b = e.add_bond(cfg(0, 10)).unwrap();
    let cfgp = PortConfig::new("n0p1", lacp::sim::port_mac(0, 1), 1);
    let port = e.add_port(b, cfgp, Instant::ZERO).unwrap();
    assert_eq!(e.offer_restore(port, saved, Instant::ZERO).unwrap(), Ok(()));
    assert_eq!(e.restores_pending(), 1);
    let t = e.poll_timeout().expect("the offer's deadline");
    assert!(t <= Instant::ZERO + 3 * SEC, "{t}");
    e.handle_timeout(t);
    assert_eq!(e.restores_pending(), 0);
    let evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    assert!(
        evs.contains(&Event::Restore {
            port,
            outcome: RestoreOutcome::Refused(RestoreRefusal::LinkNeverUp)
        }),
        "{evs:?}"
    );
    // Another actor (another key): refused when the link comes up.
    let mut e = Engine::new();
    let b = e.add_bond(cfg(0, 11)).unwrap();
    let port = e
        .add_port(
            b,
            PortConfig::new("n0p1", lacp::sim::port_mac(0, 1), 1),
            Instant::ZERO,
        )
        .unwrap();
    assert_eq!(e.offer_restore(port, saved, Instant::ZERO).unwrap(), Ok(()));
    e.handle_link(port, LinkStatus::up_full(10_000), Instant::ZERO)
        .unwrap();
    let evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    assert!(
        evs.contains(&Event::Restore {
            port,
            outcome: RestoreOutcome::Refused(RestoreRefusal::ActorChanged)
        }),
        "{evs:?}"
    );
    assert!(!e.is_distributing(port));
    // Too old: refused at once.
    let mut e = Engine::new();
    let b = e.add_bond(cfg(0, 10)).unwrap();
    let port = e
        .add_port(
            b,
            PortConfig::new("n0p1", lacp::sim::port_mac(0, 1), 1),
            Instant::ZERO,
        )
        .unwrap();
    let r = e
        .offer_restore(port, saved.aged(3 * SEC), Instant::ZERO)
        .unwrap();
    assert!(matches!(r, Err(RestoreRefusal::Expired { .. })), "{r:?}");
}

#[test]
fn config_digest_follows_the_configuration() {
    let digest = |key: u16, number: u16| {
        let mut e = Engine::new();
        let b = e.add_bond(cfg(0, key)).unwrap();
        e.add_port(
            b,
            PortConfig::new("m0", lacp::sim::port_mac(0, 1), number),
            Instant::ZERO,
        )
        .unwrap();
        e.config_digest(b).unwrap()
    };
    assert_eq!(digest(10, 1), digest(10, 1));
    assert_ne!(digest(10, 1), digest(11, 1));
    assert_ne!(digest(10, 1), digest(10, 2));
}
