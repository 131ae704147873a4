//! Engine API: refused configurations say what to do, unknown ids are errors (never panics),
//! events and transmits follow the documented contract.

mod common;

use common::*;
use lacp::sim::{port_mac, system_mac};
use lacp::*;

fn engine_with_bond() -> (Engine, BondId) {
    let mut e = Engine::new();
    let b = e.add_bond(cfg(0, 10)).unwrap();
    (e, b)
}

#[test]
fn refused_configurations_explain_themselves() {
    let (mut e, b) = engine_with_bond();
    let err = e
        .add_port(b, PortConfig::new("eth0", port_mac(0, 1), 0), Instant::ZERO)
        .unwrap_err();
    assert!(
        err.to_string().contains("port number 0 is not allowed"),
        "{err}"
    );
    e.add_port(b, PortConfig::new("eth0", port_mac(0, 1), 1), Instant::ZERO)
        .unwrap();
    let err = e
        .add_port(b, PortConfig::new("eth1", port_mac(0, 2), 1), Instant::ZERO)
        .unwrap_err();
    assert!(
        err.to_string().contains("already used by port eth0"),
        "{err}"
    );
    let err = e
        .add_bond(BondConfig::new("bond1", system_mac(0, 1), 10))
        .unwrap_err();
    assert!(err.to_string().contains("change the admin key"), "{err}");
    let mut bad = cfg(5, 1);
    bad.timers.fast_periodic_tx = core::time::Duration::from_secs(3);
    assert!(matches!(
        e.add_bond(bad),
        Err(EngineError::Config(ConfigError::Timers(_)))
    ));
    let mut bad = cfg(5, 1);
    bad.min_links = 3;
    bad.max_active = Some(2);
    assert!(e
        .add_bond(bad)
        .unwrap_err()
        .to_string()
        .contains("nothing would ever distribute"));
    let mut bad = cfg(5, 1);
    bad.system.mac = wire::SLOW_PROTOCOLS_MULTICAST;
    assert!(e.add_bond(bad).is_err());
    // Another bond with another key may reuse the system id; port numbers stay unique per system.
    let b2 = e
        .add_bond(BondConfig::new("bond1", system_mac(0, 1), 11))
        .unwrap();
    assert!(e
        .add_port(
            b2,
            PortConfig::new("eth9", port_mac(0, 9), 1),
            Instant::ZERO
        )
        .is_err());
    assert!(e.set_bond_key(b2, 10, Instant::ZERO).is_err());
}

#[test]
fn unknown_ids_are_errors() {
    let (mut e, b) = engine_with_bond();
    let p = e
        .add_port(b, PortConfig::new("eth0", port_mac(0, 1), 1), Instant::ZERO)
        .unwrap();
    e.remove_port(p, Instant::ZERO).unwrap();
    let now = Instant::ZERO;
    assert_eq!(
        e.handle_link(p, LinkStatus::up_full(1000), now),
        Err(EngineError::UnknownPort(p))
    );
    assert!(e.handle_frame(p, &[0; 124], now).is_err());
    assert!(e.port_info(p, now).is_err());
    assert!(e.reason(p, now).is_err());
    assert!(e.set_drain(p, true, now).is_err());
    assert!(e.remove_port(p, now).is_err());
    assert!(e.bond_info(BondId(9)).is_err());
    assert!(e.set_rate(BondId(9), Rate::Slow, now).is_err());
    assert!(!e.is_distributing(p));
    e.remove_bond(b, now).unwrap();
    assert!(e.bonds().is_empty());
    assert_eq!(e.poll_transmit(now), None, "port was down: no final PDU");
}

#[test]
fn transmit_and_event_contract() {
    let (mut e, b) = engine_with_bond();
    let now = Instant::ZERO;
    let p = e
        .add_port(b, PortConfig::new("eth0", port_mac(0, 1), 1), now)
        .unwrap();
    assert_eq!(e.poll_transmit(now), None, "nothing while the link is down");
    assert_eq!(e.reason(p, now).unwrap(), Some(Reason::LinkDown));
    e.handle_link(p, LinkStatus::up_unknown(), now).unwrap();
    let t = e.poll_transmit(now).expect("first LACPDU at link up");
    assert_eq!(t.port, p);
    assert_eq!(t.kind, TxKind::Lacpdu);
    assert_eq!(t.frame.len(), 124);
    assert_eq!(
        &t.frame[6..12],
        &port_mac(0, 1).0,
        "source is the member's MAC"
    );
    assert_eq!(e.poll_transmit(now), None);
    assert_eq!(
        e.poll_timeout(),
        Some(Instant::from_millis(900)),
        "next periodic"
    );
    let mut evs = Vec::new();
    while let Some(ev) = e.poll_event() {
        evs.push(ev);
    }
    assert_eq!(
        evs,
        vec![Event::LinkAttributesUnknown {
            port: p,
            speed: true,
            duplex: true
        }]
    );
    e.handle_timeout(Instant::from_millis(900));
    assert!(e.poll_transmit(Instant::from_millis(900)).is_some());
    let i = e.port_info(p, Instant::from_millis(900)).unwrap();
    assert_eq!(i.counters.lacpdus_tx, 2);
    assert_eq!(i.reason, Some(Reason::LacpNotHeard { since: now }));
    assert!(i.reason.unwrap().to_string().contains("LACP not heard"));
    // Removal queues the final PDU, returned after the port id is gone.
    e.remove_port(p, Instant::from_secs(1)).unwrap();
    let f = e.poll_transmit(Instant::from_secs(1)).unwrap();
    assert_eq!((f.port, f.kind), (p, TxKind::FinalLacpdu));
}

#[test]
fn handle_timeout_is_idempotent_and_time_can_stand_still() {
    let (mut e, b) = engine_with_bond();
    let p = e
        .add_port(b, PortConfig::new("eth0", port_mac(0, 1), 1), Instant::ZERO)
        .unwrap();
    e.handle_link(p, LinkStatus::up_full(10_000), Instant::ZERO)
        .unwrap();
    for _ in 0..3 {
        e.handle_timeout(Instant::ZERO);
    }
    let _ = e.poll_transmit(Instant::ZERO);
    assert_eq!(e.poll_transmit(Instant::ZERO), None);
    // Time going backwards is tolerated (saturating), nothing panics.
    e.handle_timeout(Instant::from_secs(10));
    e.handle_timeout(Instant::from_secs(5));
    assert_eq!(e.stats().settle_overruns, 0);
}
