//! Helpers shared by the simulation tests.
#![allow(dead_code)]

use core::time::Duration;

use lacp::sim::{system_mac, BondPair, LinkParams, NodeId, Sim, SimError};
use lacp::*;

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SEC: Duration = Duration::from_secs(1);

/// A bond config for node `node` with admin key `key`.
pub(crate) fn cfg(node: u8, key: u16) -> BondConfig {
    BondConfig::new(format!("bond-n{node}"), system_mac(node, 1), key)
}

/// Links with 1 ms one-way latency (RTT 2 ms).
pub(crate) fn link() -> LinkParams {
    LinkParams {
        latency: MS,
        ..LinkParams::default()
    }
}

pub(crate) fn pair(n: usize, a: BondConfig, b: BondConfig) -> (Sim, BondPair) {
    let (mut sim, p) = Sim::pair(7, n, a, b, link()).expect("pair");
    sim.set_check_invariants(true);
    (sim, p)
}

pub(crate) fn info(sim: &Sim, node: NodeId, port: PortId) -> PortInfo {
    sim.engine(node).port_info(port, sim.now()).expect("port")
}

pub(crate) fn reason(sim: &Sim, node: NodeId, port: PortId) -> Option<Reason> {
    sim.engine(node).reason(port, sim.now()).expect("port")
}

/// Converges a pair and returns the instant.
pub(crate) fn converge(sim: &mut Sim, p: &BondPair, within: Duration) -> Instant {
    let deadline = sim.now() + within;
    sim.run_until_cond(deadline, |s| p.all_distributing(s))
        .unwrap_or_else(|e| panic!("no convergence: {e}\n{}", dump(sim, p)))
}

/// Steps the simulation until `until`, calling `check` after every step.
pub(crate) fn run_checking(
    sim: &mut Sim,
    until: Instant,
    mut check: impl FnMut(&Sim),
) -> Result<(), SimError> {
    check(sim);
    while sim.next_time().is_some_and(|t| t <= until) {
        sim.step()?;
        check(sim);
    }
    sim.run_until(until)
}

/// First instant (from the event log) at which `port` of `node` got `Distributing{enabled}`.
pub(crate) fn distributing_event(
    sim: &Sim,
    node: NodeId,
    port: PortId,
    enabled: bool,
    after: Instant,
) -> Option<Instant> {
    sim.events()
        .iter()
        .find(|e| {
            e.node == node && e.at >= after && e.event == Event::Distributing { port, enabled }
        })
        .map(|e| e.at)
}

/// When the Receive machine of a member entered `to` (after `after`).
pub(crate) fn rx_transition(info: &PortInfo, to: &str, after: Instant) -> Option<Instant> {
    info.history
        .iter()
        .find(|t| t.machine == Machine::Receive && t.to == to && t.at >= after)
        .map(|t| t.at)
}

pub(crate) fn dump(sim: &Sim, p: &BondPair) -> String {
    let mut s = String::new();
    for (node, ports) in [(p.a, &p.a_ports), (p.b, &p.b_ports)] {
        for &port in ports {
            let i = info(sim, node, port);
            s += &format!(
                "{node:?} {port}: rx {} mux {} sel {} agg {:?} actor [{}] partner [{}] reason {:?}\n",
                i.rx_state,
                i.mux_state,
                i.selected,
                i.aggregator,
                i.actor.state,
                i.partner.state,
                i.reason.map(|r| r.to_string())
            );
        }
    }
    s
}
