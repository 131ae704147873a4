//! A received burst on the xconnect path: ingress on a bond member (slow-protocol frames
//! to the control thread, the rest only while the member collects), then out of the port
//! or bond the pair names (through the bond distributor). In router mode the burst goes
//! to [`super::router`] after the same ingress step.

use crate::bond::{flow_hash, is_slow_protocol};

use super::{tx, Egress, Worker, WorkerSpec};

impl Worker {
    /// Handles one received burst from port `p` (in `self.burst`).
    #[inline]
    pub(super) fn forward(&mut self, spec: &mut WorkerSpec, p: usize) {
        let c = &*spec.counters;
        let plan = spec.ports.load()[p];
        // Ingress on a bond member: slow-protocol frames to the control thread, the rest
        // only while the member is collecting.
        let frames = if let Some(b) = plan.member_of {
            let table = spec.bonds[b].table.load();
            let collects = table.collects(p);
            let (mut not_collecting, mut slow, mut slow_full) = (0u64, 0u64, 0u64);
            for m in self.burst.drain() {
                if plan.divert_slow && is_slow_protocol(m.data()) {
                    match spec.slow[p].as_mut().map(|r| r.push(m)) {
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
                c.ports[p].drop_not_collecting.add(not_collecting);
            }
            if slow > 0 {
                c.ports[p].slow_to_control.add(slow);
            }
            if slow_full > 0 {
                c.ports[p].drop_slow_ring_full.add(slow_full);
            }
            if self.keep.is_empty() {
                return;
            }
            &mut self.keep
        } else {
            &mut self.burst
        };

        if let Some(router) = spec.router.as_mut() {
            router.route_burst(p, frames, &mut self.stage, &spec.bonds, dpdk::rdtsc());
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
                let bond = &spec.bonds[b];
                let table = bond.table.load();
                if table.distributing.is_empty() {
                    c.ports[p].drop_bond_down.add(frames.len() as u64);
                    frames.clear();
                    return;
                }
                for m in frames.drain() {
                    // pick() is Some whenever distributing is non-empty.
                    if let Some(member) = table.pick(flow_hash(m.data(), bond.hash)) {
                        let _ = self.stage[member as usize].push(m);
                    }
                }
                for &member in table.distributing.iter() {
                    let e = member as usize;
                    if !self.stage[e].is_empty() {
                        tx::send(&mut spec.tx[e], &mut self.stage[e], &c.ports[e]);
                    }
                }
            }
            Egress::Drop => {
                c.ports[p].drop_no_egress.add(frames.len() as u64);
                frames.clear();
            }
        }
    }
}
