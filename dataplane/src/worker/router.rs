//! The router path of a worker: per frame, the ingress interface from (device, VLAN), the
//! routing decision on the FIB snapshot loaded once per burst, then forward (staged per
//! egress port, through the bond distributor for interfaces on bonds), hand to the kernel
//! (policed, per interface ring to the control thread) or drop, all counted per interface.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::BondPlan;
use crate::bond::flow_hash;
use crate::counters::Counter;
use crate::router::{
    route_segment, set_vlan, vlan_of, DropReason, ExceptionClass, ExceptionPolicer, Fib, IfaceId,
    Verdict,
};
use dpdk::{Burst, Producer};

/// Where an interface's frames leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceDevice {
    /// A port (runtime port index).
    Port(usize),
    /// A bond (bond index).
    Bond(usize),
}

/// Counters of one interface as one worker sees it (single writer).
#[derive(Debug, Default)]
pub struct IfaceCounters {
    /// Frames received on the interface.
    pub rx: Counter,
    /// Frames routed out of this interface.
    pub forwarded: Counter,
    /// Frames handed to the kernel, per exception class.
    pub exceptions: [Counter; ExceptionClass::COUNT],
    /// Exception frames dropped by the policer, per class.
    pub policed: [Counter; ExceptionClass::COUNT],
    /// Exception frames dropped because the ring to the control thread was full (or the
    /// interface has no TAP).
    pub exception_ring_full: Counter,
    /// Frames dropped, per reason.
    pub drops: [Counter; DropReason::COUNT],
    /// Frames that could not be re-tagged (no headroom) or whose egress bond was down.
    pub egress_failed: Counter,
}

/// The router as one worker sees it.
#[derive(Debug)]
pub struct RouterPlan {
    /// The FIB the control thread publishes.
    pub fib: Arc<ArcSwap<Fib>>,
    /// Per port: (VLAN, interface) pairs of the device it belongs to (the port itself or
    /// its bond).
    pub ingress: Vec<Vec<(Option<u16>, IfaceId)>>,
    /// Per interface: where it sends.
    pub egress: Vec<IfaceDevice>,
    /// Per interface: this worker's ring to the control thread (the TAP); `None` without
    /// a TAP.
    pub exceptions: Vec<Option<Producer>>,
    /// Per interface.
    pub policers: Vec<ExceptionPolicer>,
    /// Per interface, shared with readers.
    pub counters: Arc<[IfaceCounters]>,
}

/// Most bonds whose tables one burst caches.
const MAX_BONDS: usize = 16;

impl RouterPlan {
    /// Routes the frames of `frames`, received on port `p`; forwarded frames go into
    /// `stage[egress port]`, which the caller transmits.
    #[inline]
    pub(crate) fn route_burst(
        &mut self,
        p: usize,
        frames: &mut Burst,
        stage: &mut [Burst],
        bonds: &[BondPlan],
        now: u64,
    ) {
        let fib = self.fib.load();
        let mut tables: [Option<_>; MAX_BONDS] = std::array::from_fn(|_| None);
        for mut m in frames.drain() {
            let vlan = vlan_of(m.data());
            let Some(&(_, iface)) = self.ingress[p].iter().find(|(v, _)| *v == vlan) else {
                // No interface on this VLAN: counted on the device's first interface if it
                // has one (the frame belongs to nobody).
                if let Some(&(_, i)) = self.ingress[p].first() {
                    self.counters[i.0 as usize].drops[DropReason::UnknownInterface.index()].add(1);
                }
                continue;
            };
            let ic = &self.counters[iface.0 as usize];
            ic.rx.add(1);
            let pkt_len = m.len();
            match route_segment(&fib, iface, m.data_mut(), pkt_len) {
                Verdict::Forward {
                    iface: out, vlan, ..
                } => {
                    let oc = &self.counters[out.0 as usize];
                    if !set_vlan(&mut m, vlan) {
                        oc.egress_failed.add(1);
                        continue;
                    }
                    let port = match self.egress[out.0 as usize] {
                        IfaceDevice::Port(e) => Some(e),
                        IfaceDevice::Bond(b) if b < MAX_BONDS => {
                            let t = tables[b].get_or_insert_with(|| bonds[b].table.load());
                            t.pick(flow_hash(m.data(), bonds[b].hash)).map(usize::from)
                        }
                        IfaceDevice::Bond(b) => bonds[b]
                            .table
                            .load()
                            .pick(flow_hash(m.data(), bonds[b].hash))
                            .map(usize::from),
                    };
                    match port {
                        Some(e) => {
                            oc.forwarded.add(1);
                            // Cannot overflow: a stage holds a whole burst.
                            let _ = stage[e].push(m);
                        }
                        None => oc.egress_failed.add(1),
                    }
                }
                Verdict::Exception(class) => {
                    let i = iface.0 as usize;
                    if !self.policers[i].allow(class, now) {
                        ic.policed[class.index()].add(1);
                        continue;
                    }
                    match self.exceptions[i].as_mut().map(|r| r.push(m)) {
                        Some(Ok(())) => ic.exceptions[class.index()].add(1),
                        _ => ic.exception_ring_full.add(1),
                    }
                }
                // Slow frames of 802.3ad members were taken before routing; these came in on
                // a port that is not one.
                Verdict::Slow => ic.drops[DropReason::TaggedSlow.index()].add(1),
                Verdict::Drop(r) => ic.drops[r.index()].add(1),
            }
        }
    }
}
