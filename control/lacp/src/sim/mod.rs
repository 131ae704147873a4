//! A deterministic simulator: several engines joined by virtual links.
//!
//! Modelled on quinn-proto's test `Pair`: virtual time jumps to the next thing that happens (a
//! frame arriving, an engine timer, a scheduled fault), nothing sleeps, and a seeded PRNG
//! (SplitMix64, written here: no `rand`) decides losses and duplicates, so every run with the
//! same seed is identical. Links have latency, loss, duplication, one-way failure and flaps;
//! nodes can be paused (a frozen control plane) or restarted (a fresh engine with the same
//! configuration, as after a crash), or restarted warm (state saved, a gap, a fresh engine
//! given the saved state: [`Action::WarmStop`], [`Action::WarmStart`]). Drives are bounded: too many steps without time advancing
//! is reported as [`SimError::Livelock`].
//!
//! This file holds the [`Sim`] and its drive loop; `faults.rs` the PRNG and the scheduled
//! faults ([`Action`]), `pair.rs` the usual topologies ([`Sim::pair`], [`many_pairs`]) and
//! the address helpers.

use core::time::Duration;
use std::collections::BTreeMap;

use crate::config::{BondConfig, LinkStatus, PortConfig};
use crate::engine::{BondId, Engine, EngineError, PortId};
use crate::info::{Event, TxKind};
use crate::time::Instant;
use crate::wire::{parse_frame, Frame, LacpduRepr, MarkerRepr, SlowPdu};

mod faults;
mod pair;

pub use faults::{Action, Direction, Rng};
pub use pair::{many_pairs, port_mac, system_mac, BondPair};

/// A simulated system (one engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// A virtual link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub usize);

/// One end of a link: a member port of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// The node.
    pub node: NodeId,
    /// The member port.
    pub port: PortId,
}

/// Properties of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// One-way latency.
    pub latency: Duration,
    /// Frames lost, parts per million.
    pub loss_ppm: u32,
    /// Frames duplicated, parts per million.
    pub duplicate_ppm: u32,
    /// What both ends report while the link is up.
    pub status: LinkStatus,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            latency: Duration::from_micros(100),
            loss_ppm: 0,
            duplicate_ppm: 0,
            status: LinkStatus::up_full(10_000),
        }
    }
}

struct Link {
    a: Endpoint,
    b: Endpoint,
    params: LinkParams,
    up: bool,
    a_to_b: bool,
    b_to_a: bool,
}

struct Node {
    engine: Engine,
    bonds: Vec<BondConfig>,
    ports: Vec<(BondId, PortConfig)>,
    paused: bool,
    /// Saved by [`Action::WarmStop`]: when, and each member's state.
    saved: Option<(Instant, Vec<(PortId, crate::engine::SavedPort)>)>,
}

/// A frame an engine transmitted (recorded when recording is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRecord {
    /// When.
    pub at: Instant,
    /// Sender.
    pub node: NodeId,
    /// Member port.
    pub port: PortId,
    /// Kind.
    pub kind: TxKind,
    /// The LACPDU, when it is one.
    pub lacpdu: Option<LacpduRepr>,
    /// The marker PDU, when it is one.
    pub marker: Option<MarkerRepr>,
}

/// An event an engine emitted (recorded when recording is on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// When.
    pub at: Instant,
    /// Which node.
    pub node: NodeId,
    /// The event.
    pub event: Event,
}

/// Why a drive stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Too many steps without time advancing.
    #[error("livelock at {at}: {steps} steps without time advancing")]
    Livelock {
        /// When.
        at: Instant,
        /// Steps taken at that instant.
        steps: u32,
    },
    /// A safety invariant failed.
    #[error("invariant violated at {at} on node {node}: {what}")]
    Invariant {
        /// When.
        at: Instant,
        /// Node index.
        node: usize,
        /// Description.
        what: String,
    },
    /// A condition was not met in time.
    #[error("condition not met by {deadline}")]
    Timeout {
        /// The deadline.
        deadline: Instant,
    },
    /// An engine call was refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The simulator.
pub struct Sim {
    now: Instant,
    nodes: Vec<Node>,
    links: Vec<Link>,
    by_endpoint: BTreeMap<Endpoint, LinkId>,
    in_flight: BTreeMap<(Instant, u64), (Endpoint, Frame)>,
    schedule: BTreeMap<(Instant, u64), Action>,
    seq: u64,
    rng: Rng,
    record_tx: bool,
    record_events: bool,
    check_invariants: bool,
    tx_log: Vec<TxRecord>,
    event_log: Vec<EventRecord>,
    same_instant_steps: u32,
    /// Steps at one instant before [`SimError::Livelock`].
    pub livelock_limit: u32,
    /// Steps taken.
    pub steps: u64,
    /// Frames handed to links.
    pub frames_sent: u64,
    /// Frames delivered to engines.
    pub frames_delivered: u64,
}

impl Sim {
    /// An empty simulation at time zero, recording transmissions and events.
    pub fn new(seed: u64) -> Sim {
        Sim {
            now: Instant::ZERO,
            nodes: Vec::new(),
            links: Vec::new(),
            by_endpoint: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            schedule: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            record_tx: true,
            record_events: true,
            check_invariants: false,
            tx_log: Vec::new(),
            event_log: Vec::new(),
            same_instant_steps: 0,
            livelock_limit: 10_000,
            steps: 0,
            frames_sent: 0,
            frames_delivered: 0,
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Turns recording of transmissions and events on or off (off for benchmarks).
    pub fn set_recording(&mut self, tx: bool, events: bool) {
        self.record_tx = tx;
        self.record_events = events;
    }

    /// Checks every engine's safety invariants after every step.
    pub fn set_check_invariants(&mut self, on: bool) {
        self.check_invariants = on;
    }

    /// Adds a node with an empty engine.
    pub fn add_node(&mut self) -> NodeId {
        self.nodes.push(Node {
            engine: Engine::new(),
            bonds: Vec::new(),
            ports: Vec::new(),
            paused: false,
            saved: None,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// Adds a bond to a node.
    pub fn add_bond(&mut self, node: NodeId, cfg: BondConfig) -> Result<BondId, SimError> {
        let n = &mut self.nodes[node.0];
        let id = n.engine.add_bond(cfg.clone())?;
        n.bonds.push(cfg);
        Ok(id)
    }

    /// Adds a member to a bond of a node (link down until connected).
    pub fn add_port(
        &mut self,
        node: NodeId,
        bond: BondId,
        cfg: PortConfig,
    ) -> Result<PortId, SimError> {
        let now = self.now;
        let n = &mut self.nodes[node.0];
        let id = n.engine.add_port(bond, cfg.clone(), now)?;
        n.ports.push((bond, cfg));
        self.flush();
        Ok(id)
    }

    /// Joins two member ports with a link and brings it up.
    pub fn connect(&mut self, a: Endpoint, b: Endpoint, params: LinkParams) -> LinkId {
        let id = LinkId(self.links.len());
        self.links.push(Link {
            a,
            b,
            params,
            up: false,
            a_to_b: true,
            b_to_a: true,
        });
        self.by_endpoint.insert(a, id);
        self.by_endpoint.insert(b, id);
        self.apply(Action::LinkUp(id));
        self.flush();
        id
    }

    /// The engine of a node.
    pub fn engine(&self, node: NodeId) -> &Engine {
        &self.nodes[node.0].engine
    }

    /// Runs `f` on a node's engine at the current time, then collects what it sends.
    pub fn with_engine<R>(&mut self, node: NodeId, f: impl FnOnce(&mut Engine, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[node.0].engine, now);
        self.flush();
        r
    }

    /// Delivers raw bytes to a member now (a scripted partner).
    pub fn inject(
        &mut self,
        node: NodeId,
        port: PortId,
        bytes: &[u8],
    ) -> Result<crate::engine::RxKind, SimError> {
        let now = self.now;
        let r = self.nodes[node.0].engine.handle_frame(port, bytes, now)?;
        self.flush();
        Ok(r)
    }

    fn flush(&mut self) {
        let now = self.now;
        for ni in 0..self.nodes.len() {
            if self.nodes[ni].paused {
                continue;
            }
            while let Some(t) = self.nodes[ni].engine.poll_transmit(now) {
                self.route(NodeId(ni), t.port, t.kind, t.frame);
            }
            while let Some(e) = self.nodes[ni].engine.poll_event() {
                if self.record_events {
                    self.event_log.push(EventRecord {
                        at: now,
                        node: NodeId(ni),
                        event: e,
                    });
                }
            }
        }
    }

    fn route(&mut self, node: NodeId, port: PortId, kind: TxKind, frame: Frame) {
        if self.record_tx {
            let (lacpdu, marker) = match parse_frame(&frame).map(|f| f.pdu) {
                Ok(SlowPdu::Lacpdu(l)) => (Some(l), None),
                Ok(SlowPdu::Marker(m)) => (None, Some(m)),
                _ => (None, None),
            };
            self.tx_log.push(TxRecord {
                at: self.now,
                node,
                port,
                kind,
                lacpdu,
                marker,
            });
        }
        let from = Endpoint { node, port };
        let Some(&lid) = self.by_endpoint.get(&from) else {
            return;
        };
        let l = &self.links[lid.0];
        let (to, ok) = if l.a == from {
            (l.b, l.a_to_b)
        } else {
            (l.a, l.b_to_a)
        };
        if !l.up || !ok {
            return;
        }
        let (latency, loss, dup) = (l.params.latency, l.params.loss_ppm, l.params.duplicate_ppm);
        self.frames_sent += 1;
        if self.rng.chance_ppm(loss) {
            return;
        }
        let copies = if self.rng.chance_ppm(dup) { 2 } else { 1 };
        for _ in 0..copies {
            self.seq += 1;
            self.in_flight
                .insert((self.now + latency, self.seq), (to, frame));
        }
    }

    /// The next instant something happens.
    pub fn next_time(&self) -> Option<Instant> {
        let mut t = self.in_flight.keys().next().map(|k| k.0);
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        take(self.schedule.keys().next().map(|k| k.0));
        for n in &self.nodes {
            if !n.paused {
                take(n.engine.poll_timeout());
            }
        }
        t
    }

    /// Advances to the next instant something happens and processes it. Returns false when
    /// nothing is left to do.
    pub fn step(&mut self) -> Result<bool, SimError> {
        let Some(t) = self.next_time() else {
            return Ok(false);
        };
        let t = t.max(self.now);
        if t == self.now {
            self.same_instant_steps += 1;
            if self.same_instant_steps > self.livelock_limit {
                return Err(SimError::Livelock {
                    at: t,
                    steps: self.same_instant_steps,
                });
            }
        } else {
            self.same_instant_steps = 0;
        }
        self.now = t;
        self.steps += 1;
        while let Some((&(at, seq), _)) = self.schedule.iter().next() {
            if at > t {
                break;
            }
            let action = self.schedule.remove(&(at, seq)).expect("present");
            self.apply(action);
        }
        while let Some((&(at, seq), _)) = self.in_flight.iter().next() {
            if at > t {
                break;
            }
            let (to, frame) = self.in_flight.remove(&(at, seq)).expect("present");
            let up = self
                .by_endpoint
                .get(&to)
                .is_some_and(|l| self.links[l.0].up);
            let node = &mut self.nodes[to.node.0];
            if up && !node.paused {
                self.frames_delivered += 1;
                let _ = node.engine.handle_frame(to.port, &frame, t);
            }
        }
        for n in &mut self.nodes {
            if !n.paused {
                n.engine.handle_timeout(t);
            }
        }
        self.flush();
        if self.check_invariants {
            for (i, n) in self.nodes.iter().enumerate() {
                n.engine
                    .check_invariants()
                    .map_err(|what| SimError::Invariant {
                        at: t,
                        node: i,
                        what,
                    })?;
                if n.engine.stats().settle_overruns > 0 {
                    return Err(SimError::Invariant {
                        at: t,
                        node: i,
                        what: "settle loop did not converge".into(),
                    });
                }
            }
        }
        Ok(true)
    }

    /// Runs until virtual time `t` (processing everything due at or before it).
    pub fn run_until(&mut self, t: Instant) -> Result<(), SimError> {
        while self.next_time().is_some_and(|n| n <= t) {
            self.step()?;
        }
        if t > self.now {
            self.now = t;
            self.same_instant_steps = 0;
        }
        Ok(())
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        let t = self.now + d;
        self.run_until(t)
    }

    /// Runs until `cond` holds (checked now and after every step), or fails at `deadline`.
    /// Returns the instant the condition first held.
    pub fn run_until_cond(
        &mut self,
        deadline: Instant,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Result<Instant, SimError> {
        loop {
            if cond(self) {
                return Ok(self.now);
            }
            match self.next_time() {
                Some(n) if n <= deadline => {
                    self.step()?;
                }
                _ => {
                    self.run_until(deadline)?;
                    return if cond(self) {
                        Ok(self.now)
                    } else {
                        Err(SimError::Timeout { deadline })
                    };
                }
            }
        }
    }

    /// Recorded transmissions.
    pub fn tx_log(&self) -> &[TxRecord] {
        &self.tx_log
    }

    /// Recorded events.
    pub fn events(&self) -> &[EventRecord] {
        &self.event_log
    }

    /// Forgets recorded transmissions and events.
    pub fn clear_logs(&mut self) {
        self.tx_log.clear();
        self.event_log.clear();
    }

    /// The LACPDUs a member sent, with their times.
    pub fn lacpdus_from(&self, node: NodeId, port: PortId) -> Vec<(Instant, LacpduRepr)> {
        self.tx_log
            .iter()
            .filter(|r| r.node == node && r.port == port)
            .filter_map(|r| r.lacpdu.map(|l| (r.at, l)))
            .collect()
    }
}
