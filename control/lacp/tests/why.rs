//! `why`: every reason class an operator must be able to read, produced in the simulator and
//! explained by `lacp::why::explain` — the function the management API (`fastlag ctl
//! why`) calls, so the words checked here are the words operators get.

mod common;

use common::*;
use lacp::sim::{port_mac, Action, Direction, Endpoint, NodeId, Sim};
use lacp::why::{explain, Class, Why};
use lacp::*;

fn why(sim: &Sim, node: NodeId, bond: BondId, port: PortId) -> Option<Why> {
    let e = sim.engine(node);
    let pi = e.port_info(port, sim.now()).expect("port");
    let bi = e.bond_info(bond).expect("bond");
    explain(&pi, &bi, sim.now(), &|t| t.to_string())
}

fn expect(w: Option<Why>, class: Class, words: &[&str]) -> Why {
    let w = w.unwrap_or_else(|| panic!("expected {class:?}, the member distributes"));
    assert_eq!(w.class, class, "{w:#?}");
    for s in words {
        assert!(
            w.summary.contains(s) || w.evidence.iter().any(|e| e.contains(s)),
            "{s:?} missing from {w:#?}"
        );
    }
    w
}

#[test]
fn distributing_members_have_no_explanation() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    for &port in &p.a_ports {
        assert_eq!(why(&sim, p.a, p.a_bond, port), None);
    }
}

#[test]
fn silent_partner_names_the_silence_timeout_and_last_pdu() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    // B's LACPDUs stop reaching A on link 1; carrier stays up.
    sim.act(Action::OneWay {
        link: p.links[1],
        dir: Direction::BToA,
        ok: false,
    });
    let cut = sim.now();
    sim.run_for(3200 * MS).unwrap();
    let w = expect(
        why(&sim, p.a, p.a_bond, p.a_ports[1]),
        Class::SilentPartner,
        &["no LACPDU from partner for", "short timeout", "last one at"],
    );
    // The age it reports is the time since the last LACPDU, which came before the cut.
    let last = info(&sim, p.a, p.a_ports[1]).last_rx.unwrap();
    assert!(last <= cut);
    let age = format!("{:.1} s", (sim.now() - last).as_secs_f64());
    assert!(w.summary.contains(&age), "{age} not in {}", w.summary);
    assert!(w.summary.contains(&last.to_string()));
    // Long enough to fall back to defaults: still a silent partner, in other words.
    sim.run_for(30 * SEC).unwrap();
    expect(
        why(&sim, p.a, p.a_bond, p.a_ports[1]),
        Class::SilentPartner,
        &["no LACPDU from partner for"],
    );
}

#[test]
fn partner_that_never_speaks_is_silent() {
    let mut sim = Sim::new(5);
    let a = sim.add_node();
    let b = sim.add_node();
    let ab = sim.add_bond(a, cfg(0, 10)).unwrap();
    let bb = sim.add_bond(b, cfg(1, 20)).unwrap();
    let pa = sim
        .add_port(a, ab, PortConfig::new("a1", port_mac(0, 1), 1))
        .unwrap();
    let pb = sim
        .add_port(b, bb, PortConfig::new("b1", port_mac(1, 1), 1))
        .unwrap();
    // B's control plane is frozen before the link comes up: it never sends.
    sim.act(Action::Pause(b, true));
    sim.connect(
        Endpoint { node: a, port: pa },
        Endpoint { node: b, port: pb },
        link(),
    );
    sim.run_for(10 * SEC).unwrap();
    expect(
        why(&sim, a, ab, pa),
        Class::SilentPartner,
        &["LACPDUs received on this member: 0"],
    );
}

#[test]
fn link_down() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.act(Action::LinkDown(p.links[0]));
    sim.run_for(SEC).unwrap();
    expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::LinkDown,
        &["link down", "link went down at"],
    );
}

#[test]
fn passive_passive() {
    let mut a = cfg(0, 10);
    a.activity = Activity::Passive;
    let mut b = cfg(1, 20);
    b.activity = Activity::Passive;
    let (mut sim, p) = pair(1, a, b);
    sim.run_for(60 * SEC).unwrap();
    expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::PassivePassive,
        &["both ends passive", "our LACP activity is passive"],
    );
}

#[test]
fn key_mismatch_names_both_keys() {
    let mut sim = Sim::new(3);
    let a = sim.add_node();
    let b = sim.add_node();
    let ab = sim.add_bond(a, cfg(0, 0x20)).unwrap();
    let bb = sim.add_bond(b, cfg(1, 0x20)).unwrap();
    let pa: Vec<PortId> = (1..=2)
        .map(|i| {
            sim.add_port(a, ab, PortConfig::new(format!("a{i}"), port_mac(0, i), i))
                .unwrap()
        })
        .collect();
    let pb0 = sim
        .add_port(b, bb, PortConfig::new("b1", port_mac(1, 1), 1))
        .unwrap();
    let mut c = PortConfig::new("b2", port_mac(1, 2), 2);
    c.key = Some(0x10);
    let pb1 = sim.add_port(b, bb, c).unwrap();
    sim.connect(
        Endpoint {
            node: a,
            port: pa[0],
        },
        Endpoint { node: b, port: pb0 },
        link(),
    );
    sim.connect(
        Endpoint {
            node: a,
            port: pa[1],
        },
        Endpoint { node: b, port: pb1 },
        link(),
    );
    sim.run_for(30 * SEC).unwrap();
    expect(
        why(&sim, a, ab, pa[1]),
        Class::KeyMismatch,
        &["partner key 0x0010 differs from active aggregator's 0x0020"],
    );
    expect(
        why(&sim, b, bb, pb1),
        Class::KeyMismatch,
        &["our key 0x0010", "active aggregator's 0x0020"],
    );
}

#[test]
fn below_min_links() {
    let mut a = cfg(0, 10);
    a.min_links = 2;
    let (mut sim, p) = pair(2, a, cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.act(Action::LinkDown(p.links[1]));
    sim.run_for(SEC).unwrap();
    expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::BelowMinLinks,
        &["below min_links: 1 usable member(s), 2 required"],
    );
}

#[test]
fn standby_beyond_max_active() {
    let mut a = cfg(0, 10);
    a.max_active = Some(1);
    a.system.priority = 100;
    let (mut sim, p) = pair(2, a, cfg(1, 20));
    sim.with_engine(p.a, |e, now| e.set_port_priority(p.a_ports[0], 500, now))
        .unwrap();
    sim.run_for(20 * SEC).unwrap();
    expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::Standby,
        &["standby: max_active is 1", "port priority 500"],
    );
    assert_eq!(why(&sim, p.a, p.a_bond, p.a_ports[1]), None);
}

#[test]
fn drain_and_undrain() {
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.with_engine(p.a, |e, now| e.set_drain(p.a_ports[1], true, now))
        .unwrap();
    sim.run_for(SEC).unwrap();
    expect(
        why(&sim, p.a, p.a_bond, p.a_ports[1]),
        Class::Drain,
        &["drained by the operator", "synchronization cleared"],
    );
    // The partner stopped using it too.
    assert!(!sim.engine(p.b).is_distributing(p.b_ports[1]));
    sim.with_engine(p.a, |e, now| e.set_drain(p.a_ports[1], false, now))
        .unwrap();
    converge(&mut sim, &p, 10 * SEC);
    assert_eq!(why(&sim, p.a, p.a_bond, p.a_ports[1]), None);
}
