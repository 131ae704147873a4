//! Arbitrary frames into a live engine (one bond, two members, link up): no panic, and the
//! safety invariants hold after every frame and timer run.
#![no_main]

use lacp::sim::{port_mac, system_mac};
use lacp::{BondConfig, Engine, Instant, LinkStatus, PortConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut e = Engine::new();
    let b = e
        .add_bond(BondConfig::new("fuzz", system_mac(0, 1), 10))
        .expect("bond");
    let ports: Vec<_> = (1..=2u16)
        .map(|n| {
            let p = e
                .add_port(
                    b,
                    PortConfig::new(format!("p{n}"), port_mac(0, n), n),
                    Instant::ZERO,
                )
                .expect("port");
            e.handle_link(p, LinkStatus::up_full(10_000), Instant::ZERO)
                .expect("link");
            p
        })
        .collect();
    let mut now = Instant::ZERO;
    // Input: [port selector, time step (10 ms units), frame length, frame bytes...]*
    let mut rest = data;
    while rest.len() >= 3 {
        let port = ports[usize::from(rest[0]) % ports.len()];
        now += core::time::Duration::from_millis(10 * u64::from(rest[1]));
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let _ = e.handle_frame(port, &rest[3..3 + len], now);
        e.handle_timeout(now);
        while e.poll_transmit(now).is_some() {}
        while e.poll_event().is_some() {}
        e.check_invariants().expect("invariants");
        rest = &rest[3 + len..];
    }
});
