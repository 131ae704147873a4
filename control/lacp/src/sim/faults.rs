//! Fault injection: the seeded PRNG that decides losses and duplicates, and the faults and
//! repairs a test applies now ([`Sim::act`]) or schedules ([`Sim::schedule`]).

use crate::config::LinkStatus;
use crate::engine::{Engine, PortId};
use crate::time::Instant;

use super::{LinkId, NodeId, Sim};

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

/// Direction on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the link's `a` end to its `b` end.
    AToB,
    /// From `b` to `a`.
    BToA,
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
    /// Stop a node for a warm restart: save every member's state and freeze the node (no
    /// final LACPDU). `planned`: as `fastlag ctl restart`, every member first sends a LACPDU
    /// (so the partner's timer restarts); otherwise as a crash, the state is the last one
    /// saved and nothing more leaves.
    WarmStop {
        /// The node.
        node: NodeId,
        /// Planned restart (a last LACPDU first) or crash.
        planned: bool,
    },
    /// Start a node stopped by [`Action::WarmStop`]: a fresh engine with the same
    /// configuration, offered the saved state (aged by the gap), then the links as they are
    /// now (down ones reported down).
    WarmStart(NodeId),
}

impl Sim {
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

    pub(super) fn apply(&mut self, action: Action) {
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
            Action::WarmStop { node, planned } => self.warm_stop(node, planned),
            Action::WarmStart(node) => self.warm_start(node),
        }
    }

    /// Sets what both ends of a link report while it is up (speed, duplex) and applies it.
    pub fn set_link_status(&mut self, link: LinkId, status: LinkStatus) {
        self.links[link.0].params.status = status;
        self.link_status(link);
        self.flush();
    }

    fn warm_stop(&mut self, node: NodeId, planned: bool) {
        let now = self.now;
        if planned && !self.nodes[node.0].paused {
            self.nodes[node.0].engine.refresh_partners(now);
            self.flush();
        }
        let n = &mut self.nodes[node.0];
        let saved = (0..n.ports.len())
            .filter_map(|i| {
                let port = PortId(i as u32);
                n.engine.saved_port(port, now).ok().map(|s| (port, s))
            })
            .collect();
        n.saved = Some((now, saved));
        n.paused = true;
    }

    fn warm_start(&mut self, node: NodeId) {
        let now = self.now;
        let saved = self.nodes[node.0].saved.take();
        self.fresh_engine(node);
        if let Some((at, ports)) = saved {
            let gap = now.saturating_duration_since(at);
            for (port, s) in ports {
                let _ = self.nodes[node.0]
                    .engine
                    .offer_restore(port, s.aged(gap), now);
            }
        }
        self.nodes[node.0].paused = false;
        let all: Vec<(PortId, LinkStatus)> = self
            .links
            .iter()
            .flat_map(|l| {
                let status = if l.up {
                    l.params.status
                } else {
                    LinkStatus::down()
                };
                [l.a, l.b]
                    .into_iter()
                    .filter(|ep| ep.node == node)
                    .map(|ep| (ep.port, status))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (port, status) in all {
            let _ = self.nodes[node.0].engine.handle_link(port, status, now);
        }
    }

    fn fresh_engine(&mut self, node: NodeId) {
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
    }

    fn restart(&mut self, node: NodeId) {
        let now = self.now;
        self.fresh_engine(node);
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
}
