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

/// No statement may contradict the counter printed next to it.
fn assert_consistent(w: &Why, pi: &PortInfo) {
    let all = || std::iter::once(&w.summary).chain(&w.evidence);
    if pi.counters.lacpdus_rx > 0 {
        assert!(
            !all().any(|s| s.contains("ever received") || s.contains("no LACPDU received")),
            "says nothing was received, yet lacpdus_rx = {}: {w:#?}",
            pi.counters.lacpdus_rx
        );
    }
}

fn assert_not_passive_passive(w: &Why) {
    assert!(
        !w.summary.contains("both ends passive")
            && !w.evidence.iter().any(|e| e.contains("both ends passive")),
        "claims both ends passive without evidence: {w:#?}"
    );
}

#[test]
fn passive_passive_from_the_start_is_silence_not_a_verdict_on_the_partner() {
    // Both passive: nothing is ever sent, so nothing tells A what B is.
    let mut a = cfg(0, 10);
    a.activity = Activity::Passive;
    let mut b = cfg(1, 20);
    b.activity = Activity::Passive;
    let (mut sim, p) = pair(1, a, b);
    sim.run_for(60 * SEC).unwrap();
    let w = expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::SilentPartner,
        &[
            "no LACPDU received from the partner and we are passive",
            "LACP starts only if the partner is active",
            "our LACP activity is passive",
            "no LACPDU was ever received on this member",
            "LACPDUs received on this member: 0",
        ],
    );
    assert_not_passive_passive(&w);
}

#[test]
fn passive_member_with_an_active_partner_that_never_speaks() {
    // B is active but its control plane is frozen: A must not tell the operator to make B
    // active (it is), only that nothing came and that A, being passive, waits for it.
    let mut sim = Sim::new(5);
    let a = sim.add_node();
    let b = sim.add_node();
    let mut ac = cfg(0, 10);
    ac.activity = Activity::Passive;
    let ab = sim.add_bond(a, ac).unwrap();
    let bb = sim.add_bond(b, cfg(1, 20)).unwrap();
    let pa = sim
        .add_port(a, ab, PortConfig::new("a1", port_mac(0, 1), 1))
        .unwrap();
    let pb = sim
        .add_port(b, bb, PortConfig::new("b1", port_mac(1, 1), 1))
        .unwrap();
    sim.act(Action::Pause(b, true));
    sim.connect(
        Endpoint { node: a, port: pa },
        Endpoint { node: b, port: pb },
        link(),
    );
    sim.run_for(10 * SEC).unwrap();
    assert_eq!(reason(&sim, a, pa), Some(Reason::PassivePassive));
    let w = expect(
        why(&sim, a, ab, pa),
        Class::SilentPartner,
        &[
            "no LACPDU received from the partner and we are passive",
            "LACP starts only if the partner is active",
            "no LACPDU was ever received on this member",
        ],
    );
    assert_not_passive_passive(&w);
    let pi = info(&sim, a, pa);
    let text = lacp::why::reason_text(&pi, Some(sim.now()), &|t| t.to_string(), &|_| None).unwrap();
    assert!(!text.contains("both ends passive"), "{text}");
    assert!(
        text.contains("LACP starts only if the partner is active"),
        "{text}"
    );
}

#[test]
fn passive_member_whose_active_partner_went_silent_counts_what_it_received() {
    // A (passive) aggregated with B (active); then B's LACPDUs stop reaching A. Once A's
    // partner information is defaulted it has received many LACPDUs: `why` must say so
    // (not "never received" next to "received: N"), and B was active, not passive.
    let mut a = cfg(0, 10);
    a.activity = Activity::Passive;
    let (mut sim, p) = pair(1, a, cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.act(Action::OneWay {
        link: p.links[0],
        dir: Direction::BToA,
        ok: false,
    });
    let cut = sim.now();
    sim.run_for(30 * SEC).unwrap();
    assert_eq!(
        reason(&sim, p.a, p.a_ports[0]),
        Some(Reason::PassivePassive)
    );
    let pi = info(&sim, p.a, p.a_ports[0]);
    assert!(pi.counters.lacpdus_rx > 0);
    let last = pi.last_rx.unwrap();
    assert!(last <= cut);
    let age = format!("{:.1} s ago", (sim.now() - last).as_secs_f64());
    assert_consistent(&why(&sim, p.a, p.a_bond, p.a_ports[0]).unwrap(), &pi);
    let w = expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::SilentPartner,
        &[
            "partner silent: last LACPDU",
            &age,
            "we are passive",
            "last LACPDU received",
            "with Activity = active",
            &format!(
                "LACPDUs received on this member: {}",
                pi.counters.lacpdus_rx
            ),
        ],
    );
    assert_not_passive_passive(&w);
}

#[test]
fn passive_passive_on_the_partners_word() {
    // A active, B passive: they aggregate, B's LACPDUs say Activity = passive. Then A turns
    // passive too: both stop sending. That is both ends passive, with evidence.
    let mut b = cfg(1, 20);
    b.activity = Activity::Passive;
    let (mut sim, p) = pair(1, cfg(0, 10), b);
    converge(&mut sim, &p, 10 * SEC);
    sim.with_engine(p.a, |e, now| {
        e.set_activity(p.a_bond, Activity::Passive, now)
    })
    .unwrap();
    sim.run_for(60 * SEC).unwrap();
    assert_eq!(
        reason(&sim, p.a, p.a_ports[0]),
        Some(Reason::PassivePassive)
    );
    let pi = info(&sim, p.a, p.a_ports[0]);
    let w = expect(
        why(&sim, p.a, p.a_bond, p.a_ports[0]),
        Class::PassivePassive,
        &[
            "both ends passive",
            "said Activity = passive",
            "our LACP activity is passive",
            "with Activity = passive",
        ],
    );
    assert_consistent(&w, &pi);
    let text = lacp::why::reason_text(&pi, Some(sim.now()), &|t| t.to_string(), &|_| None).unwrap();
    assert!(text.contains("both ends passive"), "{text}");
}

#[test]
fn reason_text_shows_instants_as_times_and_ages_never_raw() {
    // The engine clock is neither a time of day nor an age: `reason_text` renders each
    // instant through `at` (the control thread passes wall-clock time) and, when rendered
    // on request, as an age against `now`; stored text gets no age (it would freeze).
    let (mut sim, p) = pair(2, cfg(0, 10), cfg(1, 20));
    converge(&mut sim, &p, 10 * SEC);
    sim.act(Action::OneWay {
        link: p.links[1],
        dir: Direction::BToA,
        ok: false,
    });
    sim.run_for(3200 * MS).unwrap();
    let pi = info(&sim, p.a, p.a_ports[1]);
    let last = pi.last_rx.unwrap();
    assert!(
        matches!(pi.reason, Some(Reason::PartnerExpired { .. })),
        "{:?}",
        pi.reason
    );
    let at = |t: Instant| format!("<wall {}ms>", t.as_nanos() / 1_000_000);
    let raw = last.to_string();
    let later = sim.now() + 20 * SEC;
    let text = lacp::why::reason_text(&pi, Some(later), &at, &|_| None).unwrap();
    let age = format!("{:.1} s ago", (later - last).as_secs_f64());
    assert!(text.contains(&age), "{age} not in {text}");
    assert!(text.contains(&at(last)), "{text}");
    assert!(!text.contains(&raw), "raw engine instant {raw} in {text}");
    let stored = lacp::why::reason_text(&pi, None, &at, &|_| None).unwrap();
    assert!(
        stored.contains(&at(last)) && !stored.contains("ago"),
        "{stored}"
    );
    assert!(!stored.contains(&raw), "{stored}");
    // Display has no clock: no instant at all.
    let plain = pi.reason.as_ref().unwrap().to_string();
    assert!(
        plain.starts_with("partner silent") && !plain.contains(&raw),
        "{plain}"
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

/// A partner whose view of us is its default (system zero: it never heard a LACPDU from
/// us) is reported as not hearing us, not as holding a wrong view.
#[test]
fn a_partner_that_defaulted_us_does_not_hear_us() {
    use lacp::{MacAddr, ParticipantInfo, PortState, Reason};
    let view = |system| ParticipantInfo {
        system_priority: 0,
        system,
        key: 0,
        port_priority: 0,
        port: 0,
        state: PortState::empty(),
    };
    let defaulted = Reason::NotMatched {
        partner_view: view(MacAddr([0; 6])),
    }
    .to_string();
    assert!(
        defaulted.contains("does not hear our LACPDUs"),
        "{defaulted}"
    );
    assert!(!defaulted.contains("wrong"), "{defaulted}");
    let wrong = Reason::NotMatched {
        partner_view: view(MacAddr([2, 0, 0, 0, 0, 9])),
    }
    .to_string();
    assert!(wrong.contains("partner's view of us is wrong"), "{wrong}");
}

#[test]
fn passive_partner_heard_once_while_we_are_passive_is_passive_passive() {
    // A passive Linux bond sends one LACPDU when a slave is added (Activity = passive, its
    // partner still the default, zero) and then nothing, and neither do we: both ends
    // passive on the partner's word, while that LACPDU is still current. Not "the partner
    // does not hear our LACPDUs": we send none.
    let mut sim = Sim::new(5);
    let a = sim.add_node();
    let b = sim.add_node();
    let mut ac = cfg(0, 10);
    ac.activity = Activity::Passive;
    let ab = sim.add_bond(a, ac).unwrap();
    let bb = sim.add_bond(b, cfg(1, 20)).unwrap();
    let pa = sim
        .add_port(a, ab, PortConfig::new("a1", port_mac(0, 1), 1))
        .unwrap();
    let pb = sim
        .add_port(b, bb, PortConfig::new("b1", port_mac(1, 1), 1))
        .unwrap();
    sim.act(Action::Pause(b, true));
    sim.connect(
        Endpoint { node: a, port: pa },
        Endpoint { node: b, port: pb },
        link(),
    );
    sim.run_for(SEC).unwrap();
    let linux_passive = lacp::wire::LacpduRepr {
        version: 1,
        actor: lacp::wire::ParticipantInfo {
            system_priority: 65535,
            system: lacp::sim::system_mac(1, 1),
            key: 15,
            port_priority: 255,
            port: 1,
            state: lacp::wire::PortState::TIMEOUT
                | lacp::wire::PortState::AGGREGATION
                | lacp::wire::PortState::DEFAULTED
                | lacp::wire::PortState::EXPIRED,
        },
        partner: lacp::wire::ParticipantInfo::default(),
        collector_max_delay: 0,
    };
    sim.inject(
        a,
        pa,
        &lacp::wire::Frame::lacpdu(port_mac(1, 1), &linux_passive),
    )
    .unwrap();
    sim.run_for(SEC).unwrap();
    assert_eq!(reason(&sim, a, pa), Some(Reason::PassivePassive));
    let w = expect(
        why(&sim, a, ab, pa),
        Class::PassivePassive,
        &["both ends passive", "said Activity = passive"],
    );
    assert!(!w.summary.contains("does not hear our LACPDUs"), "{w:#?}");
}
