//! Per-frame classification costs on the worker's path (criterion), over a burst of 32
//! frames of 1,024 UDP flows (the generator's own frames, `loadgen`):
//! - flow hash (layer2, layer2+3, layer3+4; IPv4 and IPv6) plus the member pick from a
//!   2-member bond table: what the distributor does per frame;
//! - the ingress classifier: the slow-protocol check on bond members and the VLAN lookup
//!   the router does before routing;
//! - the generator's own per-frame work: template write (stamp and checksum) and stamp parse.
//!
//! Run: `cargo bench --bench flow` (add `-- --quick` for a short run). Figures are per burst
//! of 32; divide by 32 for per frame.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::bond::{flow_hash, is_slow_protocol, BondTable, HashPolicy};
use dataplane::router::vlan::vlan_of;
use loadgen::{parse_stamp, FlowDef, SizeMix, Templates};

const BURST: usize = 32;

fn frames(v6: bool) -> (Templates, Vec<Vec<u8>>) {
    let (s, d) = if v6 {
        ("2001:db8:1::2", "2001:db8:2::2")
    } else {
        ("10.1.0.2", "10.2.0.2")
    };
    let flows: Vec<FlowDef> = (0..1024u16)
        .map(|k| FlowDef {
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
            src: s.parse::<IpAddr>().unwrap(),
            dst: d.parse::<IpAddr>().unwrap(),
            sport: 1024 + k,
            dport: 5001,
        })
        .collect();
    let t = Templates::new(&flows, SizeMix::Fixed(64)).unwrap();
    let out = (0..BURST)
        .map(|i| {
            let f = i * 37 % 1024;
            let mut b = vec![0; t.len(f, 0)];
            t.write(f, 0, &mut b, i as u32, 0);
            b
        })
        .collect();
    (t, out)
}

fn hash_and_pick(c: &mut Criterion) {
    let table = BondTable::new(vec![0, 1], vec![true, true], 1);
    let mut g = c.benchmark_group("flow_hash_pick_burst32");
    g.throughput(Throughput::Elements(BURST as u64));
    for (fam, v6) in [("ipv4", false), ("ipv6", true)] {
        let (_, burst) = frames(v6);
        for (name, policy) in [
            ("layer2", HashPolicy::Layer2),
            ("layer2+3", HashPolicy::Layer23),
            ("layer3+4", HashPolicy::Layer34),
        ] {
            g.bench_function(format!("{fam}_{name}"), |b| {
                b.iter(|| {
                    let mut n = 0u32;
                    for f in &burst {
                        n += table.pick(flow_hash(black_box(f), policy)).unwrap_or(0) as u32;
                    }
                    n
                })
            });
        }
    }
    g.finish();
}

fn classify(c: &mut Criterion) {
    let (_, burst) = frames(false);
    let mut g = c.benchmark_group("classify_burst32");
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_function("slow_protocol_check", |b| {
        b.iter(|| {
            burst
                .iter()
                .filter(|f| is_slow_protocol(black_box(f)))
                .count()
        })
    });
    g.bench_function("vlan_of", |b| {
        b.iter(|| burst.iter().filter_map(|f| vlan_of(black_box(f))).count())
    });
    g.finish();
}

fn generator(c: &mut Criterion) {
    let (t, mut burst) = frames(false);
    let mut g = c.benchmark_group("generator_burst32");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut seq = 0u32;
    g.bench_function("template_write_64B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            for (i, f) in burst.iter_mut().enumerate() {
                t.write(i, 0, black_box(f), seq, 12345);
            }
        })
    });
    g.bench_function("stamp_parse", |b| {
        b.iter(|| {
            burst
                .iter()
                .filter_map(|f| parse_stamp(black_box(f)))
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, hash_and_pick, classify, generator);
criterion_main!(benches);
