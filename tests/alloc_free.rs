//! The worker loop allocates nothing per packet (issue 7): a counting global allocator
//! counts heap allocations made on threads that flag themselves; the worker thread flags
//! itself before it starts. After a warm-up the count must not move while the worker
//! forwards more than a million frames, on each of its paths:
//!
//! - xconnect from a plain port into a 2-member bond (distributor, flow hash, per-member
//!   staging) and from the members back into the same bond (collecting check and
//!   slow-protocol check fused into the distributor; one member's frames carry an RSS
//!   hash, as from a NIC, and are distributed on it);
//! - router: IPv4 and IPv6 UDP frames routed between two interfaces (FIB snapshot load,
//!   LPM, neighbour lookup, MAC rewrite, TTL and checksum update).
//!
//! Frames come from this test's main thread (fastlag-gen's templates) over in-process
//! ring links; its own allocations are not counted.
//!
//! As a positive control the count must have grown while the worker started (it builds its
//! staging bursts then): the allocator does see the worker thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dataplane::bond::{BondTable, HashPolicy};
use dataplane::counters::WorkerCounters;
use dataplane::router::fib::{FibBuilder, Interface};
use dataplane::router::{ExceptionPolicer, IfaceId};
use dataplane::worker::router::{IfaceCounters, IfaceDevice, RouterPlan};
use dataplane::worker::{self, BondPlan, Egress, PortPlan, WorkerSpec};
use dpdk::{self, Burst, Eal, MacAddr, Mempool, RxQueue, TxQueue};
use loadgen::{FlowDef, SizeMix, Templates};

struct Counting;

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);

fn count() {
    // try_with: the flag may already be gone while a thread exits.
    if TRACKED.try_with(|t| t.get()).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; counting touches only a
// const-initialised thread-local Cell and an atomic, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARMUP: u64 = 100_000;
const MEASURED: u64 = 1_100_000;

fn cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

fn flow(src_mac: [u8; 6], dst_mac: [u8; 6], src: &str, dst: &str, k: u16) -> FlowDef {
    FlowDef {
        dst_mac,
        src_mac,
        src: src.parse::<IpAddr>().unwrap(),
        dst: dst.parse::<IpAddr>().unwrap(),
        sport: 1024 + k,
        dport: 5001,
    }
}

/// One sending port of the generator: its queues and the flows it sends.
struct GenPort {
    rx: RxQueue,
    tx: TxQueue,
    templates: Templates,
    next: usize,
    /// Record an RSS hash on each frame, as a NIC's PMD does.
    rss: bool,
}

/// Runs `spec` on a flagged thread while this thread sends on `gen`; returns (allocations
/// while the worker started, allocations while it forwarded MEASURED frames, frames).
fn exercise(name: &str, spec: WorkerSpec, gen: &mut [GenPort], pool: &Mempool) -> (u64, u64, u64) {
    let counters: Arc<WorkerCounters> = spec.counters.clone();
    let forwarded = || counters.ports.iter().map(|p| p.tx.get()).sum::<u64>();
    let stop = Arc::new(AtomicBool::new(false));
    let before = ALLOCS.load(Ordering::SeqCst);
    let h = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            TRACKED.with(|t| t.set(true));
            let r = worker::run(spec, &stop);
            TRACKED.with(|t| t.set(false));
            r
        })
    };
    let mut out = Burst::new();
    let mut inb = Burst::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut mark: Option<(u64, u64)> = None;
    let mut seq = 0u32;
    let result = loop {
        assert!(
            Instant::now() < deadline,
            "{name}: the worker forwarded only {} frames in 60 s",
            forwarded()
        );
        for g in gen.iter_mut() {
            if pool.alloc_into(&mut out, 32) {
                for m in out.as_mut_slice() {
                    let f = g.next;
                    g.next = (g.next + 1) % g.templates.flows();
                    let len = g.templates.len(f, 0);
                    let buf = m.append(len as u16).expect("room for a frame");
                    g.templates.write(f, 0, buf, seq, 0);
                    if g.rss {
                        m.set_rss_hash(seq.rotate_left(7) ^ f as u32);
                    }
                }
                seq = seq.wrapping_add(1);
                g.tx.tx_burst(&mut out);
                out.clear();
            }
            g.rx.rx_burst(&mut inb, 64);
            inb.clear();
        }
        let fwd = forwarded();
        match mark {
            None if fwd >= WARMUP => mark = Some((ALLOCS.load(Ordering::SeqCst), fwd)),
            Some((a0, f0)) if fwd >= f0 + MEASURED => {
                let a1 = ALLOCS.load(Ordering::SeqCst);
                break (a0 - before, a1 - a0, fwd - f0);
            }
            _ => {}
        }
    };
    stop.store(true, Ordering::SeqCst);
    let queues = h.join().expect("worker thread").expect("worker ran");
    drop(queues);
    result
}

#[test]
fn worker_loop_allocates_nothing_per_packet() {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let eal = Eal::init(&testkit::rings::eal_args("allocfree", 512, cpus[0])).expect("EAL");
    let pool = Arc::new(
        Mempool::new(eal, "allocfree", 8191, 256, dpdk::DEFAULT_BUF_SIZE as u16).expect("pool"),
    );
    let mut ports = Vec::new();
    let hz = eal.tsc_hz();
    let (gm, wm) = ([2, 0, 0, 0, 0, 0x10], [2, 0, 0, 0, 0, 0x20]);

    // ---- xconnect: plain port 0 <-> bond of ports 1 and 2 (layer 3+4) ----
    let (g0, w0) = testkit::rings::link(eal, &pool, "x0", &mut ports);
    let (g1, w1) = testkit::rings::link(eal, &pool, "x1", &mut ports);
    let (g2, w2) = testkit::rings::link(eal, &pool, "x2", &mut ports);
    let table = Arc::new(ArcSwap::from_pointee(BondTable::new(
        vec![1, 2],
        vec![false, true, true],
        1,
    )));
    let member = PortPlan {
        member_of: Some(0),
        divert_slow: true,
        egress: Egress::Bond(0),
        rss_l4: false,
    };
    let spec = WorkerSpec {
        eal,
        index: 0,
        core: cpus[1],
        burst: 32,
        rx: vec![(0, w0.0), (1, w1.0), (2, w2.0)],
        tx: vec![w0.1, w1.1, w2.1],
        ports: worker::shared_plans(vec![
            PortPlan {
                member_of: None,
                divert_slow: false,
                egress: Egress::Bond(0),
                rss_l4: false,
            },
            PortPlan {
                rss_l4: true,
                ..member
            },
            member,
        ]),
        bonds: vec![BondPlan {
            table,
            hash: HashPolicy::Layer34,
        }],
        slow: vec![None, None, None],
        control_tx: vec![None, None, None],
        router: None,
        counters: Arc::new(WorkerCounters::new(3)),
    };
    let to_bond: Vec<FlowDef> = (0..256)
        .map(|k| flow(gm, wm, "10.1.0.2", "10.2.0.2", k))
        .collect();
    let from_member: Vec<FlowDef> = (0..256)
        .map(|k| flow(gm, wm, "10.2.0.2", "10.1.0.2", k))
        .collect();
    let tpl = |f: &[FlowDef]| Templates::new(f, SizeMix::Fixed(64)).expect("templates");
    let mut gen = vec![
        GenPort {
            rx: g0.0,
            tx: g0.1,
            templates: tpl(&to_bond),
            next: 0,
            rss: false,
        },
        GenPort {
            rx: g1.0,
            tx: g1.1,
            templates: tpl(&from_member),
            next: 0,
            rss: true,
        },
        GenPort {
            rx: g2.0,
            tx: g2.1,
            templates: tpl(&from_member),
            next: 0,
            rss: false,
        },
    ];
    let (startup, measured, frames) = exercise("xconnect+bond", spec, &mut gen, &pool);
    println!(
        "MEASURE alloc_free xconnect+bond: {startup} allocations while the worker started, \
         {measured} while it forwarded {frames} frames"
    );
    assert!(
        startup > 0,
        "the counting allocator saw nothing on the worker thread"
    );
    assert!(frames >= 1_000_000);
    assert_eq!(
        measured, 0,
        "the worker allocated {measured} times in {frames} frames"
    );
    drop(gen);

    // ---- router: two interfaces, IPv4 and IPv6 flows both ways ----
    let (g0, w0) = testkit::rings::link(eal, &pool, "r0", &mut ports);
    let (g1, w1) = testkit::rings::link(eal, &pool, "r1", &mut ports);
    let (rm0, rm1) = ([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]);
    let (gm0, gm1) = ([2, 0, 0, 0, 2, 1], [2, 0, 0, 0, 2, 2]);
    let mut b = FibBuilder::new();
    let i0 = b
        .add_interface(Interface {
            mac: MacAddr(rm0),
            vlan: None,
            mtu: 1500,
        })
        .unwrap();
    let i1 = b
        .add_interface(Interface {
            mac: MacAddr(rm1),
            vlan: None,
            mtu: 1500,
        })
        .unwrap();
    for (i, a4, a6) in [
        (i0, "10.1.0.1", "2001:db8:1::1"),
        (i1, "10.2.0.1", "2001:db8:2::1"),
    ] {
        b.add_interface_address(i, a4.parse().unwrap(), 24).unwrap();
        b.add_interface_address(i, a6.parse().unwrap(), 64).unwrap();
    }
    for (i, a4, a6, m) in [
        (i0, "10.1.0.2", "2001:db8:1::2", gm0),
        (i1, "10.2.0.2", "2001:db8:2::2", gm1),
    ] {
        b.add_neighbor(i, a4.parse().unwrap(), MacAddr(m)).unwrap();
        b.add_neighbor(i, a6.parse().unwrap(), MacAddr(m)).unwrap();
    }
    let counters: Arc<[IfaceCounters]> = (0..2).map(|_| IfaceCounters::default()).collect();
    let router = RouterPlan {
        fib: Arc::new(ArcSwap::from_pointee(b.build())),
        ingress: vec![vec![(None, IfaceId(0))], vec![(None, IfaceId(1))]],
        egress: vec![IfaceDevice::Port(0), IfaceDevice::Port(1)],
        exceptions: vec![None, None],
        policers: vec![
            ExceptionPolicer::with_defaults(hz),
            ExceptionPolicer::with_defaults(hz),
        ],
        counters: counters.clone(),
    };
    let plain = PortPlan {
        member_of: None,
        divert_slow: false,
        egress: Egress::Drop,
        rss_l4: false,
    };
    let spec = WorkerSpec {
        eal,
        index: 0,
        core: cpus[1],
        burst: 32,
        rx: vec![(0, w0.0), (1, w1.0)],
        tx: vec![w0.1, w1.1],
        ports: worker::shared_plans(vec![plain, plain]),
        bonds: Vec::new(),
        slow: vec![None, None],
        control_tx: vec![None, None],
        router: Some(router),
        counters: Arc::new(WorkerCounters::new(2)),
    };
    let mixed = |src_mac, dst_mac, s4: &str, d4: &str, s6: &str, d6: &str| -> Vec<FlowDef> {
        (0..256)
            .map(|k| {
                if k % 2 == 0 {
                    flow(src_mac, dst_mac, s4, d4, k)
                } else {
                    flow(src_mac, dst_mac, s6, d6, k)
                }
            })
            .collect()
    };
    // Templates hold one family per flow; the 64-byte size is raised to 78 for IPv6.
    let mut gen = vec![
        GenPort {
            rx: g0.0,
            tx: g0.1,
            templates: tpl(&mixed(
                gm0,
                rm0,
                "10.1.0.2",
                "10.2.0.2",
                "2001:db8:1::2",
                "2001:db8:2::2",
            )),
            next: 0,
            rss: false,
        },
        GenPort {
            rx: g1.0,
            tx: g1.1,
            templates: tpl(&mixed(
                gm1,
                rm1,
                "10.2.0.2",
                "10.1.0.2",
                "2001:db8:2::2",
                "2001:db8:1::2",
            )),
            next: 0,
            rss: false,
        },
    ];
    let (startup, measured, frames) = exercise("router", spec, &mut gen, &pool);
    let routed: u64 = counters.iter().map(|c| c.forwarded.get()).sum();
    println!(
        "MEASURE alloc_free router: {startup} allocations while the worker started, {measured} \
         while it forwarded {frames} frames ({routed} routed in all)"
    );
    assert!(
        startup > 0,
        "the counting allocator saw nothing on the worker thread"
    );
    assert!(frames >= 1_000_000 && routed >= frames);
    assert_eq!(
        measured, 0,
        "the worker allocated {measured} times in {frames} frames"
    );
    drop(gen);
    drop(ports);
    drop(pool);
}
