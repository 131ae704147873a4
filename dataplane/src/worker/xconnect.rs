//! A received burst on the xconnect path: ingress on a bond member (slow-protocol frames
//! to the control thread, the rest only while the member collects), then out of the port
//! or bond the pair names (through the bond distributor). In router mode the burst goes
//! to [`super::router`] after the same ingress step.

use dpdk::Burst;

use crate::bond::{
    hash_for, hash_untagged, is_slow_protocol, rss_usable, BondTable, HashPolicy, Policy, L2, L23,
    L34,
};
use crate::counters::PortCounters;

use super::{tx, Egress, PortPlan, Worker, WorkerSpec};

impl Worker {
    /// Handles one received burst from port `p` (in `self.burst`).
    #[inline(always)]
    pub(super) fn forward(&mut self, spec: &mut WorkerSpec, p: usize) {
        let plan = self.plans.load()[p];
        // A plain port cross-connected to a plain port (no bond either side of the
        // ingress, no router): straight out, inside the poll loop.
        if let (None, Egress::Port(e), None) = (plan.member_of, plan.egress, &spec.router) {
            tx::send(&mut spec.tx[e], &mut self.burst, &spec.counters.ports[e]);
            return;
        }
        self.forward_plan(spec, p, plan);
    }

    /// [`Worker::forward`] for every other plan: bond ingress and egress, the router.
    #[inline(never)]
    fn forward_plan(&mut self, spec: &mut WorkerSpec, p: usize, plan: PortPlan) {
        let c = &*spec.counters;
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
                            picks: &mut self.picks,
                            rest: &mut self.rest,
                            table,
                            rss,
                            slow: (fused && plan.divert_slow)
                                .then_some((&mut spec.slow[p], &c.ports[p])),
                        };
                        let dropped = match policy {
                            HashPolicy::Layer2 => d.run::<L2>(frames),
                            HashPolicy::Layer23 => d.run::<L23>(frames),
                            HashPolicy::Layer34 => d.run::<L34>(frames),
                        };
                        if dropped > 0 {
                            c.ports[p].drop_no_egress.add(dropped);
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
    /// Per frame of the burst: its stage (or [`SLOW`]).
    picks: &'a mut [u16],
    /// Frames that go to no stage (Slow Protocols frames to divert); empty between bursts.
    rest: &'a mut Burst,
    /// At least two members distribute.
    table: &'a BondTable,
    /// Use the RSS hash the PMD wrote.
    rss: bool,
    /// Frames come straight from a bond member: slow-protocol frames go to this ring
    /// (counted on this port) instead.
    slow: Option<(&'a mut Option<dpdk::Producer>, &'a PortCounters)>,
}

/// How many frames ahead the distributor's first pass prefetches headers (as the router's
/// classify stage and l3fwd do). Measured on the closed-loop bond-l34 row, where 512
/// circulating frames live in L2: 24.5 busy cycles/packet without, 21.1 at 2-3 ahead,
/// 23.4 at 4, 25.5 at 6 (prefetching the mbuf's own line as well cost more than it saved).
const PREFETCH_AHEAD: usize = 3;

/// The pick of a frame that goes to the control thread, not to a stage.
const SLOW: u16 = u16::MAX;

impl Distributor<'_> {
    /// Two passes: first every frame's member (independent work the CPU overlaps), then
    /// the moves into the stages. Fused, each frame's stage address would wait on its hash
    /// and the stores of the frames before it. Returns how many frames were dropped
    /// (none unless a stage had no room, which a worker's emptied stages always have).
    #[inline(always)]
    fn run<P: Policy>(&mut self, frames: &mut Burst) -> u64 {
        if self.rss {
            self.pick::<P, true>(frames);
        } else {
            self.pick::<P, false>(frames);
        }
        let mut dropped = frames.scatter(self.picks, self.stage, self.rest) as u64;
        if !self.rest.is_empty() {
            dropped += self.divert();
        }
        dropped
    }

    /// The first pass: `picks[i]` for every frame `i`.
    #[inline(always)]
    fn pick<P: Policy, const RSS: bool>(&mut self, frames: &Burst) {
        let divert = self.slow.is_some();
        let table = self.table;
        let all = frames.as_slice();
        for (i, (t, m)) in self.picks.iter_mut().zip(all).enumerate() {
            if let Some(ahead) = all.get(i + PREFETCH_AHEAD) {
                ahead.prefetch();
            }
            let d = m.data();
            *t = if RSS {
                // A NIC may hash any frame: Slow Protocols frames are looked for first.
                if divert && is_slow_protocol(d) {
                    SLOW
                } else {
                    table.slot(m.rss_hash().unwrap_or_else(|| hash_for::<P>(d)))
                }
            } else {
                // The fixed-offset hash takes every IP frame and no Slow Protocols one,
                // so only the frames it leaves are looked at again.
                match hash_untagged::<P>(d) {
                    Some(h) => table.slot(h),
                    None if divert && is_slow_protocol(d) => SLOW,
                    None => table.slot(hash_for::<P>(d)),
                }
            };
        }
    }

    /// Slow Protocols frames from `rest` to the control thread. Returns how many frames
    /// were dropped for no ring (none: only frames picked [`SLOW`] are in `rest`, and
    /// only where there is a ring to take them).
    #[cold]
    #[inline(never)]
    fn divert(&mut self) -> u64 {
        let Some((ring, pc)) = self.slow.as_mut() else {
            let n = self.rest.len() as u64;
            self.rest.clear();
            return n;
        };
        let (mut slow, mut full) = (0, 0);
        for m in self.rest.drain() {
            match ring.as_mut().map(|r| r.push(m)) {
                Some(Ok(())) => slow += 1,
                _ => full += 1,
            }
        }
        pc.slow_to_control.add(slow);
        if full > 0 {
            pc.drop_slow_ring_full.add(full);
        }
        0
    }
}
