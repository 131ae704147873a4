//! A deterministic simulator: several engines joined by virtual links.
//!
//! Modelled on quinn-proto's test `Pair`: virtual time jumps to the next thing that happens (a
//! frame arriving, an engine timer, a scheduled fault), nothing sleeps, and a seeded PRNG
//! (SplitMix64, written here: no `rand`) decides losses and duplicates, so every run with the
//! same seed is identical. Links have latency, loss, duplication, one-way failure and flaps;
//! nodes can be paused (a frozen control plane) or restarted (a fresh engine with the same
//! configuration, as after a crash). Drives are bounded: too many steps without time advancing
//! is reported as [`SimError::Livelock`].

use core::time::Duration;
use std::collections::BTreeMap;

use crate::config::{BondConfig, LinkStatus, PortConfig};
use crate::engine::{BondId, Engine, EngineError, PortId};
use crate::info::{Event, TxKind};
use crate::time::Instant;
use crate::wire::{parse_frame, Frame, LacpduRepr, MacAddr, MarkerRepr, SlowPdu};

/// SplitMix64: a tiny, good-enough, deterministic PRNG for fault injection.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// True with probability `ppm` parts per million.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(1_000_000) < u64::from(ppm)
    }
}

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

/// Direction on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the link's `a` end to its `b` end.
    AToB,
    /// From `b` to `a`.
    BToA,
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

/// Scheduled faults and repairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Bring a link up (both ends see carrier).
    LinkUp(LinkId),
    /// Take a link down.
    LinkDown(LinkId),
    /// Fail (`ok` false) or repair one direction of a link; carrier stays up (one-way fibre).
    OneWay {
        /// Link.
        link: LinkId,
        /// Direction.
        dir: Direction,
        /// Whether frames pass.
        ok: bool,
    },
    /// Set the loss rate of a link.
    Loss(LinkId, u32),
    /// Set the duplication rate of a link.
    Duplicate(LinkId, u32),
    /// Restart a node: a fresh engine with the same configuration.
    Restart(NodeId),
    /// Pause (freeze) or resume a node.
    Pause(NodeId, bool),
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

    /// Applies a fault or repair now.
    pub fn act(&mut self, action: Action) {
        self.apply(action);
        self.flush();
    }

    /// Schedules a fault or repair.
    pub fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.schedule.insert((at, self.seq), action);
    }

    fn link_status(&mut self, link: LinkId) {
        let now = self.now;
        let l = &self.links[link.0];
        let status = if l.up {
            l.params.status
        } else {
            LinkStatus::down()
        };
        for ep in [l.a, l.b] {
            let _ = self.nodes[ep.node.0]
                .engine
                .handle_link(ep.port, status, now);
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::LinkUp(l) => {
                self.links[l.0].up = true;
                self.link_status(l);
            }
            Action::LinkDown(l) => {
                self.links[l.0].up = false;
                self.link_status(l);
            }
            Action::OneWay { link, dir, ok } => match dir {
                Direction::AToB => self.links[link.0].a_to_b = ok,
                Direction::BToA => self.links[link.0].b_to_a = ok,
            },
            Action::Loss(l, ppm) => self.links[l.0].params.loss_ppm = ppm,
            Action::Duplicate(l, ppm) => self.links[l.0].params.duplicate_ppm = ppm,
            Action::Restart(node) => self.restart(node),
            Action::Pause(node, p) => self.nodes[node.0].paused = p,
        }
    }

    /// Sets what both ends of a link report while it is up (speed, duplex) and applies it.
    pub fn set_link_status(&mut self, link: LinkId, status: LinkStatus) {
        self.links[link.0].params.status = status;
        self.link_status(link);
        self.flush();
    }

    fn restart(&mut self, node: NodeId) {
        let now = self.now;
        let n = &mut self.nodes[node.0];
        let mut engine = Engine::new();
        for cfg in &n.bonds {
            engine
                .add_bond(cfg.clone())
                .expect("same configuration as before");
        }
        for (bond, cfg) in &n.ports {
            engine
                .add_port(*bond, cfg.clone(), now)
                .expect("same configuration as before");
        }
        n.engine = engine;
        let ups: Vec<(PortId, LinkStatus)> = self
            .links
            .iter()
            .filter(|l| l.up)
            .flat_map(|l| {
                [l.a, l.b]
                    .into_iter()
                    .filter(|ep| ep.node == node)
                    .map(|ep| (ep.port, l.params.status))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (port, status) in ups {
            let _ = self.nodes[node.0].engine.handle_link(port, status, now);
        }
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

    /// Connects two bonds (already created) with `n` new members each, numbered from
    /// `first_port_number`, one link per member pair.
    #[allow(clippy::too_many_arguments)]
    pub fn add_bond_pair(
        &mut self,
        a: NodeId,
        a_bond: BondId,
        b: NodeId,
        b_bond: BondId,
        n: usize,
        first_port_number: u16,
        params: LinkParams,
    ) -> Result<BondPair, SimError> {
        let mut pair = BondPair {
            a,
            b,
            a_bond,
            b_bond,
            a_ports: Vec::new(),
            b_ports: Vec::new(),
            links: Vec::new(),
        };
        for i in 0..n {
            let number = first_port_number + i as u16;
            let pa = self.add_port(
                a,
                a_bond,
                PortConfig::new(
                    format!("n{}p{number}", a.0),
                    port_mac(a.0 as u8, number),
                    number,
                ),
            )?;
            let pb = self.add_port(
                b,
                b_bond,
                PortConfig::new(
                    format!("n{}p{number}", b.0),
                    port_mac(b.0 as u8, number),
                    number,
                ),
            )?;
            let l = self.connect(
                Endpoint { node: a, port: pa },
                Endpoint { node: b, port: pb },
                params,
            );
            pair.a_ports.push(pa);
            pair.b_ports.push(pb);
            pair.links.push(l);
        }
        Ok(pair)
    }

    /// Two nodes, one bond each, `n` links between them: the usual conformance setup.
    pub fn pair(
        seed: u64,
        n: usize,
        cfg_a: BondConfig,
        cfg_b: BondConfig,
        params: LinkParams,
    ) -> Result<(Sim, BondPair), SimError> {
        let mut sim = Sim::new(seed);
        let a = sim.add_node();
        let b = sim.add_node();
        let ab = sim.add_bond(a, cfg_a)?;
        let bb = sim.add_bond(b, cfg_b)?;
        let pair = sim.add_bond_pair(a, ab, b, bb, n, 1, params)?;
        Ok((sim, pair))
    }
}

/// `bonds` bonds of `ports_per_bond` members on each of two nodes, bond `i` of A joined member
/// by member to bond `i` of B (one System ID per node, keys 1..=bonds, port numbers unique per
/// node). The scale setup of the benchmark.
pub fn many_pairs(
    seed: u64,
    bonds: usize,
    ports_per_bond: usize,
    params: LinkParams,
) -> Result<(Sim, Vec<BondPair>), SimError> {
    let mut sim = Sim::new(seed);
    let a = sim.add_node();
    let b = sim.add_node();
    let mut pairs = Vec::with_capacity(bonds);
    for i in 0..bonds {
        let key = (i + 1) as u16;
        let ab = sim.add_bond(a, BondConfig::new(format!("a{i}"), system_mac(0, 1), key))?;
        let bb = sim.add_bond(b, BondConfig::new(format!("b{i}"), system_mac(1, 1), key))?;
        let first = (i * ports_per_bond + 1) as u16;
        pairs.push(sim.add_bond_pair(a, ab, b, bb, ports_per_bond, first, params)?);
    }
    Ok((sim, pairs))
}

/// Two bonds joined member by member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondPair {
    /// Node of side A.
    pub a: NodeId,
    /// Node of side B.
    pub b: NodeId,
    /// Bond on A.
    pub a_bond: BondId,
    /// Bond on B.
    pub b_bond: BondId,
    /// Members on A.
    pub a_ports: Vec<PortId>,
    /// Members on B (same order: `a_ports[i]` is linked to `b_ports[i]`).
    pub b_ports: Vec<PortId>,
    /// The links.
    pub links: Vec<LinkId>,
}

impl BondPair {
    /// Both sides distribute on every member.
    pub fn all_distributing(&self, sim: &Sim) -> bool {
        let da = sim
            .engine(self.a)
            .distribution(self.a_bond)
            .map(|d| d.len())
            .unwrap_or(0);
        let db = sim
            .engine(self.b)
            .distribution(self.b_bond)
            .map(|d| d.len())
            .unwrap_or(0);
        da == self.a_ports.len() && db == self.b_ports.len()
    }

    /// Both sides distribute on member `i`.
    pub fn distributing(&self, sim: &Sim, i: usize) -> bool {
        sim.engine(self.a).is_distributing(self.a_ports[i])
            && sim.engine(self.b).is_distributing(self.b_ports[i])
    }
}

/// A locally administered MAC for member `number` of node `node`.
pub fn port_mac(node: u8, number: u16) -> MacAddr {
    let n = number.to_be_bytes();
    MacAddr([0x02, 0x00, node, 0x01, n[0], n[1]])
}

/// A locally administered System ID MAC for node `node`, bond `bond`.
pub fn system_mac(node: u8, bond: u16) -> MacAddr {
    let n = bond.to_be_bytes();
    MacAddr([0x02, 0x5a, node, 0x00, n[0], n[1]])
}
