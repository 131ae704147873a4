//! What the control thread publishes reaches a running worker at once, and the bond
//! distributor's paths do what they claim, on the real worker loop over in-process ring
//! links (issue 11):
//!
//! - a new bond table (members added and removed) applies to every frame sent after the
//!   store returns: workers read tables through an `arc_swap::Cache`, which checks the
//!   shared pointer on every burst;
//! - a changed port plan (a plain port becoming a bond member) applies the same way;
//! - a burst from a collecting member bound for a distributing bond (the fused path) sends
//!   slow-protocol frames to the control thread's ring and spreads the rest;
//! - a new FIB snapshot (a neighbour's MAC changed, then removed) applies to every frame
//!   routed after the store: the fast path's resolved next hops come from the snapshot;
//! - a port whose PMD delivers an RSS hash (`RTE_MBUF_F_RX_RSS_HASH`, set here on the mbuf
//!   as a NIC would: net_ring hands the sender's mbuf over unchanged) is distributed on
//!   that hash, and a port without it on the software hash.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dataplane::bond::{BondTable, HashPolicy};
use dataplane::counters::WorkerCounters;
use dataplane::router::fib::{FibBuilder, Interface};
use dataplane::router::{ExceptionPolicer, IfaceId};
use dataplane::worker::router::{IfaceCounters, IfaceDevice, RouterPlan};
use dataplane::worker::{self, BondPlan, Egress, PortPlan, WorkerSpec};
use dpdk::{self, Burst, Consumer, Eal, MacAddr, Mempool, RxQueue, TxQueue};
use loadgen::{FlowDef, SizeMix, Templates};

fn flows(n: u16) -> Vec<FlowDef> {
    (0..n)
        .map(|k| FlowDef {
            dst_mac: [2, 0, 0, 0, 0, 0x20],
            src_mac: [2, 0, 0, 0, 0, 0x10],
            src: "10.1.0.2".parse::<IpAddr>().unwrap(),
            dst: "10.2.0.2".parse::<IpAddr>().unwrap(),
            sport: 1024 + k,
            dport: 5001,
        })
        .collect()
}

/// The test's side of the worker's five ports.
struct Harness {
    pool: Arc<Mempool>,
    ends: Vec<(RxQueue, TxQueue)>,
    templates: Templates,
    slow: Consumer,
}

impl Harness {
    /// Sends `n` frames on port `p` (flow `flow(i)` for the i-th; `rss(i)`: an RSS hash
    /// to record on it; `slow(i)`: make it a Slow Protocols frame).
    fn send(
        &mut self,
        p: usize,
        n: usize,
        flow: impl Fn(usize) -> usize,
        rss: impl Fn(usize) -> Option<u32>,
        slow: impl Fn(usize) -> bool,
    ) {
        let mut out = Burst::new();
        let mut i = 0;
        while i < n {
            let k = (n - i).min(32);
            assert!(self.pool.alloc_into(&mut out, k), "pool exhausted");
            for m in out.as_mut_slice() {
                let f = flow(i);
                let len = self.templates.len(f, 0);
                let buf = m.append(len as u16).expect("room for a frame");
                self.templates.write(f, 0, buf, i as u32, 0);
                if slow(i) {
                    buf[12..14].copy_from_slice(&0x8809u16.to_be_bytes());
                }
                if let Some(h) = rss(i) {
                    m.set_rss_hash(h);
                }
                i += 1;
            }
            while !out.is_empty() {
                self.ends[p].1.tx_burst(&mut out);
            }
        }
    }

    /// Frames that came out of each port until `want` in all (or 10 s), then 20 ms more
    /// for stragglers.
    fn collect(&mut self, want: usize) -> Vec<usize> {
        let mut got = vec![0; self.ends.len()];
        let mut inb = Burst::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut settle: Option<Instant> = None;
        loop {
            for (p, (rx, _)) in self.ends.iter_mut().enumerate() {
                got[p] += rx.rx_burst(&mut inb, 64);
                inb.clear();
            }
            let now = Instant::now();
            if settle.is_none() && got.iter().sum::<usize>() >= want {
                settle = Some(now + Duration::from_millis(20));
            }
            if settle.is_some_and(|t| now >= t) || now >= deadline {
                return got;
            }
        }
    }

    fn slow_frames(&mut self) -> usize {
        let mut b = Burst::new();
        let mut n = 0;
        loop {
            let got = self.slow.pop_into(&mut b, 64);
            b.clear();
            if got == 0 {
                return n;
            }
            n += got;
        }
    }
}

fn table(distributing: Vec<u16>, version: u64) -> Arc<BondTable> {
    // Every port collects: ingress on any member is accepted.
    Arc::new(BondTable::new(distributing, vec![true; 5], version))
}

#[test]
fn published_tables_and_plans_reach_the_worker_and_distribution_paths_hold() {
    let cpus = testkit::cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let eal = Eal::init(&testkit::rings::eal_args("wtables", 256, cpus[0])).expect("EAL");
    let pool = Arc::new(
        Mempool::new(eal, "wtables", 8191, 256, dpdk::DEFAULT_BUF_SIZE as u16).expect("pool"),
    );
    let mut ports = Vec::new();
    let (mut ends, mut rx, mut tx) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        let (t, w) = testkit::rings::link(eal, &pool, &format!("wt{i}"), &mut ports);
        ends.push(t);
        rx.push((i, w.0));
        tx.push(w.1);
    }
    // Port 0: plain, into bond 0 (ports 1 and 2). Ports 1 and 2: members of bond 0, into
    // bond 1 (ports 3 and 4), slow frames to the control ring; port 1's PMD "delivers" an
    // RSS hash. Ports 3 and 4: members of bond 1, ingress dropped.
    let plan = |member_of, divert_slow, egress, rss_l4| PortPlan {
        member_of,
        divert_slow,
        egress,
        rss_l4,
    };
    let plans = worker::shared_plans(vec![
        plan(None, false, Egress::Bond(0), false),
        plan(Some(0), true, Egress::Bond(1), true),
        plan(Some(0), true, Egress::Bond(1), false),
        plan(Some(1), true, Egress::Drop, false),
        plan(Some(1), true, Egress::Drop, false),
    ]);
    let bond0 = Arc::new(ArcSwap::new(table(vec![1], 1)));
    let bond1 = Arc::new(ArcSwap::new(table(vec![3, 4], 1)));
    let (slow_tx, slow_rx) = dpdk::mbuf_ring(eal, 1024).expect("slow ring");
    let counters = Arc::new(WorkerCounters::new(5));
    let spec = WorkerSpec {
        eal,
        index: 0,
        core: cpus[1],
        burst: 32,
        rx,
        tx,
        ports: plans.clone(),
        bonds: vec![
            BondPlan {
                table: bond0.clone(),
                hash: HashPolicy::Layer34,
            },
            BondPlan {
                table: bond1.clone(),
                hash: HashPolicy::Layer34,
            },
        ],
        slow: vec![None, Some(slow_tx), None, None, None],
        control_tx: vec![None, None, None, None, None],
        router: None,
        counters: counters.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let h = {
        let stop = stop.clone();
        std::thread::spawn(move || worker::run(spec, &stop))
    };
    let mut t = Harness {
        pool: pool.clone(),
        ends,
        templates: Templates::new(&flows(256), SizeMix::Fixed(64)).expect("templates"),
        slow: slow_rx,
    };
    let any = |i: usize| i % 256;
    let none = |_: usize| None;
    let no = |_: usize| false;

    // 1. Table changes: one member, then two, then the other one alone. Every frame sent
    //    after a store follows the new table.
    t.send(0, 1000, any, none, no);
    assert_eq!(t.collect(1000), [0, 1000, 0, 0, 0], "bond 0 = [1]");
    bond0.store(table(vec![1, 2], 2));
    t.send(0, 1000, any, none, no);
    let got = t.collect(1000);
    assert_eq!(got[1] + got[2], 1000, "bond 0 = [1, 2]: {got:?}");
    assert!(
        got[1] > 300 && got[2] > 300,
        "256 flows spread over both members: {got:?}"
    );
    bond0.store(table(vec![2], 3));
    t.send(0, 1000, any, none, no);
    assert_eq!(t.collect(1000), [0, 0, 1000, 0, 0], "bond 0 = [2]");
    bond0.store(table(Vec::new(), 4));
    t.send(0, 100, any, none, no);
    assert!(testkit::wait_until(Duration::from_secs(5), || {
        counters.ports[0].drop_bond_down.get() == 100
    }));
    assert_eq!(t.collect(0), [0; 5], "bond 0 down");

    // 2. The fused path (member 2 into bond 1): slow frames to the ring, the rest spread.
    t.send(2, 1000, any, none, |i| i % 10 == 0);
    let got = t.collect(900);
    assert_eq!(t.slow_frames(), 0, "port 2 has no slow ring here");
    assert_eq!(got[3] + got[4], 900, "data frames out of bond 1: {got:?}");
    assert!(got[3] > 250 && got[4] > 250, "spread: {got:?}");
    assert_eq!(counters.ports[2].drop_slow_ring_full.get(), 100);
    t.send(1, 1000, any, none, |i| i % 10 == 0);
    let got = t.collect(900);
    assert_eq!(got[3] + got[4], 900, "data frames out of bond 1: {got:?}");
    assert_eq!(t.slow_frames(), 100, "slow frames reach the control ring");
    assert_eq!(counters.ports[1].slow_to_control.get(), 100);

    // 3. RSS: one flow whose frames carry hashes 0..1000. On port 1 (RSS) they follow
    //    the hash's slot; on port 2 (no RSS) the one flow takes one member.
    let table1 = bond1.load_full();
    let want3 = (0..1000u32).filter(|&h| table1.slot(h) == 3).count();
    let one = |_: usize| 7;
    let hash = |i: usize| Some(i as u32);
    t.send(1, 1000, one, hash, no);
    let got = t.collect(1000);
    assert_eq!((got[3], got[4]), (want3, 1000 - want3), "RSS hash used");
    t.send(2, 1000, one, hash, no);
    let got = t.collect(1000);
    assert!(
        (got[3], got[4]) == (1000, 0) || (got[3], got[4]) == (0, 1000),
        "software hash: one flow, one member: {got:?}"
    );

    // 4. A plan change: port 0 becomes a member of bond 1 (into bond 0 = [2] again).
    bond0.store(table(vec![2], 5));
    t.send(0, 100, any, none, no);
    assert_eq!(t.collect(100), [0, 0, 100, 0, 0]);
    let mut p = (**plans.load()).clone();
    p[0] = plan(Some(1), true, Egress::Drop, false);
    plans.store(Arc::new(p));
    let dropped = counters.ports[0].drop_no_egress.get();
    t.send(0, 100, any, none, no);
    assert!(testkit::wait_until(Duration::from_secs(5), || {
        counters.ports[0].drop_no_egress.get() == dropped + 100
    }));
    assert_eq!(t.collect(0), [0; 5], "port 0's ingress is now dropped");

    stop.store(true, Ordering::SeqCst);
    drop(h.join().expect("worker thread").expect("worker ran"));
    drop(t);

    // 5. The router: frames from port 0 to a host on port 1's connected subnet and to a
    //    network behind a gateway there. The neighbours' MACs change, then one goes.
    let (mut ends, mut rx, mut tx) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..2 {
        let (t, w) = testkit::rings::link(eal, &pool, &format!("wr{i}"), &mut ports);
        ends.push(t);
        rx.push((i, w.0));
        tx.push(w.1);
    }
    let (rm0, rm1) = (MacAddr([2, 0, 0, 0, 1, 1]), MacAddr([2, 0, 0, 0, 1, 2]));
    let host = "10.2.0.2".parse::<IpAddr>().unwrap();
    let gw = "10.2.0.254".parse::<IpAddr>().unwrap();
    let mut b = FibBuilder::new();
    let i0 = b
        .add_interface(Interface {
            mac: rm0,
            vlan: None,
            mtu: 1500,
        })
        .unwrap();
    let i1 = b
        .add_interface(Interface {
            mac: rm1,
            vlan: None,
            mtu: 1500,
        })
        .unwrap();
    b.add_interface_address(i0, "10.1.0.1".parse().unwrap(), 24)
        .unwrap();
    b.add_interface_address(i1, "10.2.0.1".parse().unwrap(), 24)
        .unwrap();
    b.add_route(
        "198.18.0.0".parse().unwrap(),
        15,
        dataplane::router::NextHop {
            iface: i1,
            gateway: Some(gw),
        },
        dataplane::router::Origin::Static,
    )
    .unwrap();
    let (m1, m2) = (MacAddr([2, 0, 0, 0, 2, 1]), MacAddr([2, 0, 0, 0, 2, 2]));
    b.add_neighbor(i1, host, m1).unwrap();
    b.add_neighbor(i1, gw, m1).unwrap();
    let fib = Arc::new(ArcSwap::from_pointee(b.build()));
    let hz = eal.tsc_hz();
    let ic: Arc<[IfaceCounters]> = (0..2).map(|_| IfaceCounters::default()).collect();
    let plain = plan(None, false, Egress::Drop, false);
    let spec = WorkerSpec {
        eal,
        index: 0,
        core: cpus[1],
        burst: 32,
        rx,
        tx,
        ports: worker::shared_plans(vec![plain, plain]),
        bonds: Vec::new(),
        slow: vec![None, None],
        control_tx: vec![None, None],
        router: Some(RouterPlan {
            fib: fib.clone(),
            ingress: vec![vec![(None, IfaceId(0))], vec![(None, IfaceId(1))]],
            egress: vec![IfaceDevice::Port(0), IfaceDevice::Port(1)],
            exceptions: vec![None, None],
            policers: vec![
                ExceptionPolicer::with_defaults(hz),
                ExceptionPolicer::with_defaults(hz),
            ],
            counters: ic.clone(),
        }),
        counters: Arc::new(WorkerCounters::new(2)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let h = {
        let stop = stop.clone();
        std::thread::spawn(move || worker::run(spec, &stop))
    };
    let to = |dst: &str| FlowDef {
        dst_mac: rm0.0,
        src_mac: [2, 0, 0, 0, 0, 9],
        src: "10.1.0.2".parse().unwrap(),
        dst: dst.parse().unwrap(),
        sport: 1000,
        dport: 2000,
    };
    let send_and_see = |ends: &mut Vec<(RxQueue, TxQueue)>| -> Vec<[u8; 6]> {
        let tpl = Templates::new(&[to("10.2.0.2"), to("198.18.0.9")], SizeMix::Fixed(64))
            .expect("templates");
        let mut out = Burst::new();
        assert!(pool.alloc_into(&mut out, 20));
        for (i, m) in out.as_mut_slice().iter_mut().enumerate() {
            let f = i % 2;
            let buf = m.append(tpl.len(f, 0) as u16).expect("room");
            tpl.write(f, 0, buf, i as u32, 0);
        }
        while !out.is_empty() {
            ends[0].1.tx_burst(&mut out);
        }
        let mut got = Vec::new();
        let mut inb = Burst::new();
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            ends[1].0.rx_burst(&mut inb, 64);
            for m in inb.as_slice() {
                got.push(m.data()[0..6].try_into().unwrap());
            }
            inb.clear();
        }
        got
    };
    assert_eq!(
        send_and_see(&mut ends),
        vec![m1.0; 20],
        "both to the first MAC"
    );
    b.add_neighbor(i1, host, m2).unwrap();
    b.add_neighbor(i1, gw, m2).unwrap();
    fib.store(Arc::new(b.build()));
    assert_eq!(
        send_and_see(&mut ends),
        vec![m2.0; 20],
        "the new MAC at once"
    );
    assert!(b.remove_neighbor(i1, host));
    fib.store(Arc::new(b.build()));
    // Unresolved: for the kernel (the TAP ring; there is none here, so counted full, or
    // policed).
    let unresolved = dataplane::router::ExceptionClass::Unresolved.index();
    let kernel = || ic[0].exception_ring_full.get() + ic[0].policed[unresolved].get();
    let before = kernel();
    assert_eq!(
        send_and_see(&mut ends),
        vec![m2.0; 10],
        "the host's frames no longer leave, the gateway's do"
    );
    assert_eq!(
        kernel() - before,
        10,
        "the host's frames went the kernel's way"
    );
    stop.store(true, Ordering::SeqCst);
    drop(h.join().expect("worker thread").expect("worker ran"));
    drop(ends);
    drop(ports);
}
