//! The router path of a worker: per frame, the ingress interface from (device, VLAN), the
//! routing decision on the worker's cached FIB snapshot, then forward (staged per
//! egress port, through the bond distributor for interfaces on bonds), hand to the kernel
//! (policed, per interface ring to the control thread) or drop, all counted per interface.

use std::sync::Arc;

use arc_swap::cache::Cache;
use arc_swap::ArcSwap;

use super::BondPlan;
use crate::bond::{hash_for, BondTable, HashPolicy, SharedTable, L2, L23, L34};
use crate::counters::Counter;
use crate::router::forward::fast;
use crate::router::{
    route_segment, set_vlan, vlan_of, DropReason, ExceptionClass, ExceptionPolicer, Fib, IfaceId,
    Verdict, COUNTED_HOPS,
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
    /// Frames routed out of this interface to each counted ECMP next hop (index: the
    /// FIB's [`Fib::ecmp_counter`]; the gateways are [`Fib::ecmp_gateways`]).
    pub ecmp: [Counter; COUNTED_HOPS],
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

const VLAN_BE: [u8; 2] = types::ethertype::VLAN.to_be_bytes();

/// How many frames ahead the classify stage prefetches headers.
const PREFETCH_AHEAD: usize = 3;

/// Frames per router pass: classified and looked up together, then rewritten and sent.
const CHUNK: usize = 64;

/// Frames counted on one interface in a row, added to its counter once.
struct Run {
    iface: usize,
    n: u64,
}

impl Run {
    const NONE: Run = Run {
        iface: usize::MAX,
        n: 0,
    };

    /// Counts one frame on `iface` into `counter(iface)`, flushing the previous run.
    #[inline(always)]
    fn count(
        &mut self,
        iface: usize,
        counters: &[IfaceCounters],
        counter: fn(&IfaceCounters) -> &Counter,
    ) {
        if iface != self.iface {
            self.flush(counters, counter);
            self.iface = iface;
        }
        self.n += 1;
    }

    #[inline(always)]
    fn flush(&mut self, counters: &[IfaceCounters], counter: fn(&IfaceCounters) -> &Counter) {
        if self.n > 0 {
            counter(&counters[self.iface]).add(self.n);
            self.n = 0;
        }
    }
}

impl RouterPlan {
    /// Routes the frames of `frames`, received on port `p`, on `fib`; forwarded frames go
    /// into `stage[egress port]`, which the caller transmits. `tables`: the worker's
    /// cached bond tables.
    ///
    /// In chunks of [`CHUNK`] frames and two passes, as DPDK's l3fwd does: first every
    /// frame's ingress interface, checks and route lookup ([`fast::classify`]; no writes,
    /// so the lookups of a chunk overlap), then the rewrite and staging. A frame the fast
    /// path declines takes [`route_segment`], which decides every case.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn route_burst(
        &mut self,
        p: usize,
        frames: &mut Burst,
        stage: &mut [Burst],
        bonds: &[BondPlan],
        tables: &mut [Cache<SharedTable, Arc<BondTable>>],
        fib: &Fib,
        now: u64,
    ) {
        let (mut rx, mut fwd) = (Run::NONE, Run::NONE);
        let mut ingress = [None::<IfaceId>; CHUNK];
        let mut shapes = [fast::SLOW; CHUNK];
        let mut hops = [fast::Hop {
            iface: IfaceId(0),
            mac: dpdk::MacAddr([0; 6]),
        }; CHUNK];
        // The interface of untagged frames on this port, looked up once per burst.
        let untagged = self.ingress[p]
            .iter()
            .find(|(v, _)| v.is_none())
            .map(|&(_, i)| i);
        let mut frames = frames.drain();
        while !frames.remaining().is_empty() {
            let chunk = frames.remaining();
            let n = chunk.len().min(CHUNK);
            for (i, m) in chunk[..n].iter().enumerate() {
                // On a NIC the headers arrive by DMA, at best in the last-level cache: ask
                // for a frame a few places ahead while this one is parsed (l3fwd does so).
                if let Some(ahead) = chunk.get(i + PREFETCH_AHEAD) {
                    ahead.prefetch();
                }
                let d = m.data();
                let iface = match d.get(12..14) {
                    Some(et) if et != VLAN_BE => untagged,
                    _ => self.ingress_of(p, d),
                };
                ingress[i] = iface;
                (shapes[i], hops[i]) = match iface.and_then(|i| fib.interface(i)) {
                    Some(iif) => fast::classify(fib, iif, d, m.len(), m.ip_checksum()),
                    None => (fast::SLOW, hops[i]),
                };
            }
            for (i, mut m) in frames.by_ref().take(n).enumerate() {
                let Some(iface) = ingress[i] else {
                    self.unknown_interface(p);
                    continue;
                };
                rx.count(iface.0 as usize, &self.counters, |c| &c.rx);
                let (shape, hop) = (shapes[i], hops[i]);
                if shape != fast::SLOW {
                    if let Some(oif) = fast::rewrite(fib, shape, hop, m.data_mut()) {
                        // An untagged frame out of an untagged interface needs no tag work.
                        let vlan = (fast::tagged(shape) || oif.vlan.is_some()).then_some(oif.vlan);
                        let out = hop.iface.0 as usize;
                        if let Some(e) = self.egress_port(&mut m, out, vlan, bonds, tables) {
                            fwd.count(out, &self.counters, |c| &c.forwarded);
                            if let Some(k) = fib.ecmp_counter(hop.iface, hop.mac) {
                                self.counters[out].ecmp[k].add(1);
                            }
                            // Cannot overflow: a stage holds a whole burst.
                            let _ = stage[e].push(m);
                        }
                        continue;
                    }
                }
                self.full_path(m, iface, fib, stage, bonds, tables, now, &mut fwd);
            }
        }
        rx.flush(&self.counters, |c| &c.rx);
        fwd.flush(&self.counters, |c| &c.forwarded);
    }

    /// The interface a frame received on port `p` belongs to (by its VLAN).
    #[inline(always)]
    fn ingress_of(&self, p: usize, frame: &[u8]) -> Option<IfaceId> {
        let vlan = vlan_of(frame);
        self.ingress[p]
            .iter()
            .find(|(v, _)| *v == vlan)
            .map(|&(_, i)| i)
    }

    /// No interface on this VLAN: counted on the device's first interface if it has one
    /// (the frame belongs to nobody).
    #[cold]
    fn unknown_interface(&self, p: usize) {
        if let Some(&(_, i)) = self.ingress[p].first() {
            self.counters[i.0 as usize].drops[DropReason::UnknownInterface.index()].add(1);
        }
    }

    /// Tags a routed frame for interface `out` (`vlan`: the tag it must carry; `None`:
    /// the frame is known to be right as it is) and picks its egress port (a bond's
    /// member by flow hash). `None`: the frame was counted as failed and freed.
    #[inline(always)]
    fn egress_port(
        &self,
        m: &mut dpdk::Mbuf,
        out: usize,
        vlan: Option<Option<u16>>,
        bonds: &[BondPlan],
        tables: &mut [Cache<SharedTable, Arc<BondTable>>],
    ) -> Option<usize> {
        let oc = &self.counters[out];
        // A bond's member is chosen on the frame as routed but before its tag changes:
        // the egress VLAN is the same for every frame of the interface, so it adds nothing
        // to the spread, and an untagged frame takes the hash's shortest path. One
        // distributing member needs no hash.
        let port = match self.egress[out] {
            IfaceDevice::Port(e) => Some(e),
            IfaceDevice::Bond(b) => {
                let table = tables[b].load();
                match table.distributing.len() {
                    0 => None,
                    1 => Some(table.distributing[0] as usize),
                    // flow_hash, inlined: one frame at a time, a call would cost as much
                    // as the hash of an untagged frame.
                    _ => Some(table.slot(match bonds[b].hash {
                        HashPolicy::Layer2 => hash_for::<L2>(m.data()),
                        HashPolicy::Layer23 => hash_for::<L23>(m.data()),
                        HashPolicy::Layer34 => hash_for::<L34>(m.data()),
                    }) as usize),
                }
            }
        };
        if port.is_none() || vlan.is_some_and(|v| !set_vlan(m, v)) {
            oc.egress_failed.add(1);
            return None;
        }
        port
    }

    /// A frame the fast path declined: [`route_segment`] decides, then forward, hand to
    /// the kernel (policed) or drop, counted.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn full_path(
        &mut self,
        mut m: dpdk::Mbuf,
        iface: IfaceId,
        fib: &Fib,
        stage: &mut [Burst],
        bonds: &[BondPlan],
        tables: &mut [Cache<SharedTable, Arc<BondTable>>],
        now: u64,
        fwd: &mut Run,
    ) {
        let ic = &self.counters[iface.0 as usize];
        let pkt_len = m.len();
        let csum = m.ip_checksum();
        match route_segment(fib, iface, m.data_mut(), pkt_len, csum) {
            Verdict::Forward {
                iface: out,
                dst_mac,
                vlan,
            } => {
                let hop = fib.ecmp_counter(out, dst_mac);
                let out = out.0 as usize;
                if let Some(e) = self.egress_port(&mut m, out, Some(vlan), bonds, tables) {
                    fwd.count(out, &self.counters, |c| &c.forwarded);
                    if let Some(k) = hop {
                        self.counters[out].ecmp[k].add(1);
                    }
                    let _ = stage[e].push(m);
                }
            }
            Verdict::Exception(class) => {
                let i = iface.0 as usize;
                if !self.policers[i].allow(class, now) {
                    ic.policed[class.index()].add(1);
                    return;
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
