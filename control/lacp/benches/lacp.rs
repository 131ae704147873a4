//! LACP engine benchmarks (criterion): LACPDU parse/emit, and the engine's cost per member port
//! per simulated second at the fast rate with 2,000 ports (500 two-member bonds on each of two
//! engines, back to back in the deterministic simulator; simulator overhead included, so this
//! is an upper bound). Also prints the simulated time to converge for 2/4/8-member bonds.
//!
//! Run: `cargo bench --bench lacp` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, Instant as WallInstant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lacp::sim::{many_pairs, port_mac, system_mac, LinkParams, Sim};
use lacp::wire::{parse_frame, Frame, LacpduRepr, MacAddr, ParticipantInfo, PortState};
use lacp::{BondConfig, Instant};

fn sample_lacpdu() -> LacpduRepr {
    let info = |sys: u8, port: u16| ParticipantInfo {
        system_priority: 65535,
        system: MacAddr([0x02, 0, 0, 0, 0, sys]),
        key: 10,
        port_priority: 255,
        port,
        state: PortState::from_bits(0x3f),
    };
    LacpduRepr {
        version: 1,
        actor: info(1, 1),
        partner: info(2, 7),
        collector_max_delay: 0,
    }
}

fn wire(c: &mut Criterion) {
    let repr = sample_lacpdu();
    let frame = Frame::lacpdu(port_mac(0, 1), &repr);
    c.bench_function("lacpdu_parse_frame", |b| {
        b.iter(|| parse_frame(black_box(frame.as_bytes())))
    });
    c.bench_function("lacpdu_emit_frame", |b| {
        b.iter(|| Frame::lacpdu(black_box(port_mac(0, 1)), black_box(&repr)))
    });
}

const BONDS: usize = 500;
const PER_BOND: usize = 2;
const PORTS: u64 = (2 * BONDS * PER_BOND) as u64; // both engines
const SIM_SECS: u64 = 10;

fn converged_scale_sim() -> Sim {
    let (mut sim, pairs) = many_pairs(1, BONDS, PER_BOND, LinkParams::default()).expect("setup");
    sim.set_recording(false, false);
    sim.run_until(Instant::from_secs(5)).expect("drive");
    assert!(
        pairs.iter().all(|p| p.all_distributing(&sim)),
        "all bonds converged"
    );
    sim
}

fn engine(c: &mut Criterion) {
    let mut sim = converged_scale_sim();
    let mut g = c.benchmark_group("engine_fast_rate");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    // One element = one member port for one simulated second.
    g.throughput(Throughput::Elements(PORTS * SIM_SECS));
    g.bench_function("2000_ports_x_10_sim_seconds", |b| {
        b.iter_custom(|iters| {
            let start = WallInstant::now();
            for _ in 0..iters {
                sim.run_for(Duration::from_secs(SIM_SECS)).expect("drive");
            }
            start.elapsed()
        })
    });
    g.finish();

    // A plain number for the closing note, outside criterion's statistics.
    let mut sim = converged_scale_sim();
    let secs = 60;
    let start = WallInstant::now();
    sim.run_for(Duration::from_secs(secs)).expect("drive");
    let wall = start.elapsed();
    let per = wall.as_nanos() as f64 / (PORTS * secs) as f64;
    println!(
        "engine cost at fast rate: {PORTS} ports x {secs} simulated s in {wall:?} = {per:.0} ns per port per second ({:.5} % of one core per port), {} frames",
        per / 1e7,
        sim.frames_delivered
    );
}

fn convergence(c: &mut Criterion) {
    let _ = c;
    for n in [2usize, 4, 8] {
        let params = LinkParams {
            latency: Duration::from_millis(1),
            ..LinkParams::default()
        };
        let (mut sim, p) = Sim::pair(
            1,
            n,
            BondConfig::new("a", system_mac(0, 1), 10),
            BondConfig::new("b", system_mac(1, 1), 20),
            params,
        )
        .expect("pair");
        let t = sim
            .run_until_cond(Instant::from_secs(30), |s| p.all_distributing(s))
            .expect("converges");
        println!("simulated time to converge, {n}-member bond (1 ms one-way latency): {t}");
    }
}

criterion_group!(benches, convergence, wire, engine);
criterion_main!(benches);
