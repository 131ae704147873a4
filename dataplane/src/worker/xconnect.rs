//! A received burst on the xconnect path: ingress on a bond member (slow-protocol frames
//! to the control thread, the rest only while the member collects), then out of the port
//! or bond the pair names (through the bond distributor). In router mode the burst goes
//! to [`super::router`] after the same ingress step.

use dpdk::Burst;

use crate::bond::{
    hash_for, is_slow_protocol, rss_usable, BondTable, HashPolicy, Policy, L2, L23, L34,
};
use crate::counters::PortCounters;

use super::{tx, Egress, Worker, WorkerSpec};

impl Worker {
    /// Handles one received burst from port `p` (in `self.burst`).
    #[inline]
    pub(super) fn forward(&mut self, spec: &mut WorkerSpec, p: usize) {
        let c = &*spec.counters;
        let plan = self.plans.load()[p];
        // Ingress on a bond member: slow-protocol frames to the control thread, the rest
        // only while the member is collecting.
        // A collecting member's burst bound for a bond that spreads over several members
        // (the common case of a bond pair) is filtered inside the distributor's loop, which
        // reads each frame's header once.
        let mut fused = false;
        let keep = match plan.member_of {
            Some(b) => {
                let collects = self.tables[b].load().collects(p);
                fused = collects
                    && spec.router.is_none()
                    && matches!(plan.egress,
                        Egress::Bond(e) if self.tables[e].load().distributing.len() > 1);
                if fused {
                    false
                } else {
                    match self.ingress(&mut spec.slow[p], plan.divert_slow, collects, &c.ports[p]) {
                        None => return,
                        Some(keep) => keep,
                    }
                }
            }
            None => false,
        };
        let frames = if keep {
            &mut self.keep
        } else {
            &mut self.burst
        };

        if let (Some(router), Some(fib)) = (spec.router.as_mut(), self.fib.as_mut()) {
            router.route_burst(
                p,
                frames,
                &mut self.stage,
                &spec.bonds,
                &mut self.tables,
                fib.load(),
                dpdk::rdtsc(),
            );
            for (e, stage) in self.stage.iter_mut().enumerate() {
                if !stage.is_empty() {
                    tx::send(&mut spec.tx[e], stage, &c.ports[e]);
                }
            }
            return;
        }
        match plan.egress {
            Egress::Port(e) => tx::send(&mut spec.tx[e], frames, &c.ports[e]),
            Egress::Bond(b) => {
                let table = self.tables[b].load();
                match table.distributing.len() {
                    0 => {
                        c.ports[p].drop_bond_down.add(frames.len() as u64);
                        frames.clear();
                    }
                    // One member carries everything: no hash to compute.
                    1 => {
                        let e = table.distributing[0] as usize;
                        tx::send(&mut spec.tx[e], frames, &c.ports[e]);
                    }
                    _ => {
                        let policy = spec.bonds[b].hash;
                        let rss = plan.rss_l4 && rss_usable(policy, true);
                        let mut d = Distributor {
                            stage: &mut self.stage,
                            table,
                            rss,
                            slow: (fused && plan.divert_slow)
                                .then_some((&mut spec.slow[p], &c.ports[p])),
                        };
                        match policy {
                            HashPolicy::Layer2 => d.run::<L2>(frames),
                            HashPolicy::Layer23 => d.run::<L23>(frames),
                            HashPolicy::Layer34 => d.run::<L34>(frames),
                        }
                        for &member in table.distributing.iter() {
                            let e = member as usize;
                            if !self.stage[e].is_empty() {
                                tx::send(&mut spec.tx[e], &mut self.stage[e], &c.ports[e]);
                            }
                        }
                    }
                }
            }
            Egress::Drop => {
                c.ports[p].drop_no_egress.add(frames.len() as u64);
                frames.clear();
            }
        }
    }

    /// Ingress filter of a bond member's burst. `None`: nothing is left to forward.
    /// `Some(false)`: `self.burst` goes on as it is (the usual case, no copy); `Some(true)`:
    /// the survivors are in `self.keep`.
    #[inline(always)]
    fn ingress(
        &mut self,
        slow_ring: &mut Option<dpdk::Producer>,
        divert_slow: bool,
        collects: bool,
        pc: &PortCounters,
    ) -> Option<bool> {
        let has_slow = divert_slow
            && self
                .burst
                .as_slice()
                .iter()
                .any(|m| is_slow_protocol(m.data()));
        if !has_slow {
            if collects {
                return Some(false);
            }
            pc.drop_not_collecting.add(self.burst.len() as u64);
            self.burst.clear();
            return None;
        }
        let (mut not_collecting, mut slow, mut slow_full) = (0u64, 0u64, 0u64);
        for m in self.burst.drain() {
            if is_slow_protocol(m.data()) {
                match slow_ring.as_mut().map(|r| r.push(m)) {
                    Some(Ok(())) => slow += 1,
                    _ => slow_full += 1,
                }
            } else if collects {
                // Cannot fail: keep is as large as burst and was empty.
                let _ = self.keep.push(m);
            } else {
                not_collecting += 1;
            }
        }
        if not_collecting > 0 {
            pc.drop_not_collecting.add(not_collecting);
        }
        if slow > 0 {
            pc.slow_to_control.add(slow);
        }
        if slow_full > 0 {
            pc.drop_slow_ring_full.add(slow_full);
        }
        (!self.keep.is_empty()).then_some(true)
    }
}

/// The bond distributor: each frame into the stage of the member its flow hash picks (the
/// NIC's RSS hash where `rss` says it stands for the policy's).
struct Distributor<'a> {
    /// Per egress port.
    stage: &'a mut [Burst],
    /// At least two members distribute.
    table: &'a BondTable,
    /// Use the RSS hash the PMD wrote.
    rss: bool,
    /// Frames come straight from a bond member: slow-protocol frames go to this ring
    /// (counted on this port) instead.
    slow: Option<(&'a mut Option<dpdk::Producer>, &'a PortCounters)>,
}

/// Frames per distributor pass: members are chosen for this many, then moved.
const CHUNK: usize = 64;

impl Distributor<'_> {
    /// Two passes per chunk: first every frame's member (independent work the CPU
    /// overlaps), then the moves into the stages. In one pass each frame's stage address
    /// would wait on its hash and on the stores of the frames before it.
    /// Two passes: first every frame's member (independent work the CPU overlaps), then
    /// the moves into the stages. Fused, each frame's stage address would wait on its hash
    /// and the stores of the frames before it.
    #[inline(always)]
    fn run<P: Policy>(&mut self, frames: &mut Burst) {
        const SLOW: u16 = u16::MAX;
        let divert = self.slow.is_some();
        let mut to = [0u16; CHUNK];
        let mut frames = frames.drain();
        while !frames.remaining().is_empty() {
            let chunk = frames.remaining();
            let n = chunk.len().min(CHUNK);
            for (t, m) in to.iter_mut().zip(&chunk[..n]) {
                let d = m.data();
                *t = if divert && is_slow_protocol(d) {
                    SLOW
                } else {
                    let h = match if self.rss { m.rss_hash() } else { None } {
                        Some(h) => h,
                        None => hash_for::<P>(d),
                    };
                    self.table.slot(h)
                };
            }
            for (&t, m) in to[..n].iter().zip(frames.by_ref()) {
                if t == SLOW {
                    self.divert(m);
                } else {
                    // Cannot fail: a stage is as large as the burst it comes from.
                    let _ = self.stage[t as usize].push(m);
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn divert(&mut self, m: dpdk::Mbuf) {
        if let Some((ring, pc)) = self.slow.as_mut() {
            match ring.as_mut().map(|r| r.push(m)) {
                Some(Ok(())) => pc.slow_to_control.add(1),
                _ => pc.drop_slow_ring_full.add(1),
            }
        }
    }
}
