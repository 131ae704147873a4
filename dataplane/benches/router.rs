//! Router benchmarks (criterion): LPM lookup cost for 1k and 100k routes, fastlag's tables
//! (`router::lpm::Trie`, several stride choices) against DPDK's rte_lpm / rte_lpm6 on the
//! same route sets and addresses; then `route_frame` per packet.
//!
//! Address sets per route set:
//! - `hot`: 64 routed addresses, looked up over and over (everything in cache);
//! - `routed`: 1M addresses, each inside a randomly chosen route (traffic spread over the
//!   whole table: the cache-miss case);
//! - `random`: 1M uniformly random addresses (IPv4: all of 0/0; IPv6: inside 2000::/3).
//!
//! Each iteration looks up a whole address set; divide the time by its size for
//! ns/lookup (criterion's "thrpt" in Kelem/s or Melem/s is the same number inverted).
//! EAL runs with --no-huge: DPDK's tables are in 4 KB pages like fastlag's heap tables.
//!
//! Run: `cargo bench --bench router` (add `-- --quick` for a short run, or a filter such
//! as `-- lpm4_100k`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use dataplane::router::lpm::{Rules, Trie};
use dataplane::router::{
    ipv4_checksum, route_frame, FibBuilder, Interface, NextHop, Origin, Verdict,
};
use dpdk::{Eal, MacAddr, RteLpm, RteLpm6, LPM_LOOKUP_SUCCESS};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Prefix lengths shaped like a BGP table: IPv4 mostly /24 and /16-/23, a few longer.
fn len4(r: &mut Rng) -> u8 {
    match r.below(100) {
        0..=54 => 24,
        55..=79 => 20 + r.below(4) as u8,
        80..=94 => 8 + r.below(12) as u8,
        _ => 25 + r.below(8) as u8,
    }
}

/// IPv6: mostly /48 and /32-/47, some /64 and longer.
fn len6(r: &mut Rng) -> u8 {
    match r.below(100) {
        0..=49 => 48,
        50..=79 => 32 + r.below(16) as u8,
        80..=89 => 16 + r.below(16) as u8,
        90..=97 => 49 + r.below(16) as u8,
        _ => 65 + r.below(64) as u8,
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - len))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len))
    }
}

/// `n` prefixes including a default route (gateways have one, and it makes every entry of
/// a direct-indexed first level real memory rather than untouched zero pages).
fn routes4(n: usize, seed: u64) -> Rules<u32> {
    let mut r = Rng(seed);
    let mut rules = Rules::new();
    rules.insert(0, 0, 0).unwrap();
    while rules.len() < n {
        let len = len4(&mut r);
        // Public-ish space: 1.0.0.0 - 223.255.255.255.
        let a = (1 + r.below(223) as u32) << 24 | (r.next() as u32 & 0x00ff_ffff);
        let _ = rules.insert(mask4(a, len), len, r.below(256) as u32);
    }
    rules
}

fn routes6(n: usize, seed: u64) -> Rules<u128> {
    let mut r = Rng(seed);
    let mut rules = Rules::new();
    rules.insert(0, 0, 0).unwrap();
    while rules.len() < n {
        let len = len6(&mut r);
        // 2000::/3 with a bias towards a few /12 registries, like real allocations.
        let a = ((0x2000 | (r.below(8) as u128) << 9) << 112)
            | ((r.next() as u128) << 64 | r.next() as u128) >> 7;
        let _ = rules.insert(mask6(a, len), len, r.below(256) as u32);
    }
    rules
}

/// An address inside a random one of the rules.
fn routed<K: Copy>(rules: &[(K, u8)], r: &mut Rng, inside: impl Fn(K, u8, &mut Rng) -> K) -> K {
    let (a, l) = rules[r.below(rules.len() as u64) as usize];
    inside(a, l, r)
}

struct Sets<K> {
    hot: Vec<K>,
    routed: Vec<K>,
    random: Vec<K>,
}

const BIG: usize = 1 << 20;

fn sets4(rules: &Rules<u32>, seed: u64) -> Sets<u32> {
    let mut r = Rng(seed);
    let list: Vec<(u32, u8)> = rules.iter().map(|(a, l, _)| (a, l)).collect();
    let inside = |a: u32, l: u8, r: &mut Rng| a | (r.next() as u32 & !mask4(u32::MAX, l));
    let hot: Vec<u32> = (0..64).map(|_| routed(&list, &mut r, inside)).collect();
    Sets {
        hot: hot.iter().cycle().take(4096).copied().collect(),
        routed: (0..BIG).map(|_| routed(&list, &mut r, inside)).collect(),
        random: (0..BIG).map(|_| r.next() as u32).collect(),
    }
}

fn sets6(rules: &Rules<u128>, seed: u64) -> Sets<u128> {
    let mut r = Rng(seed);
    let list: Vec<(u128, u8)> = rules.iter().map(|(a, l, _)| (a, l)).collect();
    let inside = |a: u128, l: u8, r: &mut Rng| {
        a | (((r.next() as u128) << 64 | r.next() as u128) & !mask6(u128::MAX, l))
    };
    let hot: Vec<u128> = (0..64).map(|_| routed(&list, &mut r, inside)).collect();
    Sets {
        hot: hot.iter().cycle().take(4096).copied().collect(),
        routed: (0..BIG).map(|_| routed(&list, &mut r, inside)).collect(),
        random: (0..BIG)
            .map(|_| (0x2000u128 << 112) | ((r.next() as u128) << 64 | r.next() as u128) >> 3)
            .collect(),
    }
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn lpm4(c: &mut Criterion, eal: &Eal, n: usize) {
    let rules = routes4(n, 4 + n as u64);
    let sets = sets4(&rules, 40 + n as u64);
    let (d24, t24): (Trie<u32, 24, 8>, _) = timed(|| rules.compile());
    let (d16, t16): (Trie<u32, 16, 8>, _) = timed(|| rules.compile());
    let tbl8s = rules
        .iter()
        .filter(|r| r.1 > 24)
        .map(|r| r.0 >> 8)
        .collect::<std::collections::HashSet<_>>()
        .len() as u32;
    let (dpdk, tdpdk) = timed(|| {
        let mut l = RteLpm::new(eal, n as u32 + 16, tbl8s + 16).expect("rte_lpm_create");
        for (a, len, nh) in rules.iter() {
            if len == 0 {
                // rte_lpm takes depths 1..=32: a default route is two /1s.
                l.add(0, 1, nh).expect("rte_lpm_add");
                l.add(1 << 31, 1, nh).expect("rte_lpm_add");
            } else {
                l.add(a, len, nh).expect("rte_lpm_add");
            }
        }
        l
    });
    eprintln!(
        "lpm4 {n} routes: DIR-24-8 {:.1} MiB built in {t24:.1?}; DIR-16-8-8 {:.2} MiB in {t16:.1?}; \
         rte_lpm {:.1} MiB ({tbl8s} tbl8 groups) in {tdpdk:.1?}",
        mib(d24.memory_bytes()),
        mib(d16.memory_bytes()),
        mib((1 << 24) * 4 + tbl8s as usize * 1024),
    );
    // Same answers everywhere (the linear-scan reference on a few).
    for (i, &a) in sets
        .routed
        .iter()
        .take(20_000)
        .chain(sets.random.iter().take(20_000))
        .enumerate()
    {
        let want = d24.lookup(a);
        if i % 40 == 0 {
            assert_eq!(rules.lookup_slow(a), want);
        }
        assert_eq!(d16.lookup(a), want);
        assert_eq!(dpdk.lookup(a), want, "rte_lpm {a:#x}");
    }
    let mut out = vec![0u32; BIG];
    let mut g = c.benchmark_group(format!("lpm4_{}k", n / 1000));
    for (name, set) in [
        ("hot", &sets.hot),
        ("routed", &sets.routed),
        ("random", &sets.random),
    ] {
        g.throughput(Throughput::Elements(set.len() as u64));
        g.bench_with_input(BenchmarkId::new("dir24_8", name), set, |b, s| {
            b.iter(|| {
                s.iter()
                    .map(|&a| d24.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        g.bench_with_input(BenchmarkId::new("dir16_8_8", name), set, |b, s| {
            b.iter(|| {
                s.iter()
                    .map(|&a| d16.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        g.bench_with_input(BenchmarkId::new("rte_lpm", name), set, |b, s| {
            b.iter(|| {
                s.iter()
                    .map(|&a| dpdk.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        g.bench_with_input(BenchmarkId::new("rte_lpm_bulk", name), set, |b, s| {
            b.iter(|| {
                // In bursts of 32, as a worker would.
                for (a, o) in s.chunks(32).zip(out.chunks_mut(32)) {
                    dpdk.lookup_bulk(a, o);
                }
                out[..s.len()]
                    .iter()
                    .map(|&o| {
                        if o & LPM_LOOKUP_SUCCESS != 0 {
                            o & 0xff_ffff
                        } else {
                            0
                        }
                    })
                    .fold(0u32, u32::wrapping_add)
            })
        });
    }
    g.finish();
}

fn lpm6(c: &mut Criterion, eal: &Eal, n: usize) {
    let rules = routes6(n, 6 + n as u64);
    let sets = sets6(&rules, 60 + n as u64);
    let (t16, b16): (Trie<u128, 16, 8>, _) = timed(|| rules.compile());
    let (t24, b24): (Trie<u128, 24, 8>, _) = timed(|| rules.compile());
    let (t4, b4): (Trie<u128, 16, 4>, _) = timed(|| rules.compile());
    // rte_lpm6 has the 24-8-8... layout: it needs as many groups as Trie<u128, 24, 8> has
    // chunks.
    let tbl8s = t24.chunk_count() as u32 + 64;
    let (dpdk, tdpdk) = timed(|| {
        let mut l = RteLpm6::new(eal, n as u32 + 16, tbl8s).expect("rte_lpm6_create");
        for (a, len, nh) in rules.iter() {
            if len == 0 {
                // Depths 1..=128 only, as for rte_lpm.
                l.add([0; 16], 1, nh).expect("rte_lpm6_add");
                l.add((1u128 << 127).to_be_bytes(), 1, nh)
                    .expect("rte_lpm6_add");
            } else {
                l.add(a.to_be_bytes(), len, nh).expect("rte_lpm6_add");
            }
        }
        l
    });
    eprintln!(
        "lpm6 {n} routes: 16-8.. {:.1} MiB in {b16:.1?}; 24-8.. {:.1} MiB in {b24:.1?}; \
         16-4.. {:.1} MiB in {b4:.1?}; rte_lpm6 >= {:.1} MiB ({tbl8s} groups) in {tdpdk:.1?}",
        mib(t16.memory_bytes()),
        mib(t24.memory_bytes()),
        mib(t4.memory_bytes()),
        mib((1 << 24) * 4 + tbl8s as usize * 1024),
    );
    for (i, &a) in sets
        .routed
        .iter()
        .take(20_000)
        .chain(sets.random.iter().take(20_000))
        .enumerate()
    {
        let want = t16.lookup(a);
        if i % 40 == 0 {
            assert_eq!(rules.lookup_slow(a), want);
        }
        assert_eq!(t24.lookup(a), want);
        assert_eq!(t4.lookup(a), want);
        assert_eq!(dpdk.lookup(&a.to_be_bytes()), want, "rte_lpm6 {a:#x}");
    }
    let mut g = c.benchmark_group(format!("lpm6_{}k", n / 1000));
    for (name, set) in [
        ("hot", &sets.hot),
        ("routed", &sets.routed),
        ("random", &sets.random),
    ] {
        let mut bytes: Vec<[u8; 16]> = set.iter().map(|a| a.to_be_bytes()).collect();
        let mut out = vec![0i32; set.len()];
        g.throughput(Throughput::Elements(set.len() as u64));
        g.bench_with_input(BenchmarkId::new("trie16_8", name), set, |b, s| {
            b.iter(|| {
                s.iter()
                    .map(|&a| t16.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        g.bench_with_input(BenchmarkId::new("trie24_8", name), set, |b, s| {
            b.iter(|| {
                s.iter()
                    .map(|&a| t24.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        g.bench_with_input(BenchmarkId::new("trie16_4", name), set, |b, s| {
            b.iter(|| {
                s.iter()
                    .map(|&a| t4.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        // rte_lpm6 takes addresses as bytes: give it bytes, as a packet would.
        g.bench_function(BenchmarkId::new("rte_lpm6", name), |b| {
            b.iter(|| {
                bytes
                    .iter()
                    .map(|a| dpdk.lookup(a).unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            })
        });
        g.bench_function(BenchmarkId::new("rte_lpm6_bulk", name), |b| {
            b.iter(|| {
                for (a, o) in bytes.chunks_mut(32).zip(out.chunks_mut(32)) {
                    dpdk.lookup_bulk(a, o);
                }
                out.iter()
                    .map(|&o| o.max(0) as u32)
                    .fold(0u32, u32::wrapping_add)
            })
        });
    }
    g.finish();
}

/// `route_frame` on 64-byte UDP frames to destinations spread over `n` routes (all next
/// hops resolved), IPv4 then IPv6. Frames are routed in place again and again: every
/// gateway's MAC is the ingress interface's own (so a rewritten frame is still "for us"),
/// frames start with TTL 255 and get their TTL and checksum restored only when it runs
/// out, so the time is `route_frame` alone (restoring header bytes right before routing
/// would add store-forwarding stalls a NIC's DMA does not cause).
fn per_packet(c: &mut Criterion, n: usize) {
    let in_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let mut b = FibBuilder::new();
    let a = b
        .add_interface(Interface {
            mac: in_mac,
            vlan: None,
            mtu: 1500,
        })
        .unwrap();
    let o = b
        .add_interface(Interface {
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            vlan: Some(10),
            mtu: 1500,
        })
        .unwrap();
    b.add_interface_address(a, "10.0.0.1".parse().unwrap(), 24)
        .unwrap();
    b.add_interface_address(o, "100.64.0.1".parse().unwrap(), 16)
        .unwrap();
    b.add_interface_address(a, "fd00::1".parse().unwrap(), 64)
        .unwrap();
    b.add_interface_address(o, "fd00:1::1".parse().unwrap(), 64)
        .unwrap();
    // 254 gateways on the egress side, all resolved (to our own MAC, see above).
    for g in 1..=254u32 {
        b.add_neighbor(o, IpAddr::V4(Ipv4Addr::from(0x6440_0100 + g)), in_mac)
            .unwrap();
        b.add_neighbor(
            o,
            IpAddr::V6(Ipv6Addr::from((0xfd00_0001u128 << 96) | g as u128)),
            in_mac,
        )
        .unwrap();
    }
    let r4 = routes4(n, 4 + n as u64);
    let r6 = routes6(n, 6 + n as u64);
    for (p, len, nh) in r4.iter() {
        let gw = IpAddr::V4(Ipv4Addr::from(0x6440_0100 + 1 + nh % 254));
        b.add_route(
            IpAddr::V4(p.into()),
            len,
            NextHop {
                iface: o,
                gateway: Some(gw),
            },
            Origin::Kernel,
        )
        .unwrap();
    }
    for (p, len, nh) in r6.iter() {
        let gw = IpAddr::V6(Ipv6Addr::from(
            (0xfd00_0001u128 << 96) | (1 + nh % 254) as u128,
        ));
        b.add_route(
            IpAddr::V6(p.into()),
            len,
            NextHop {
                iface: o,
                gateway: Some(gw),
            },
            Origin::Kernel,
        )
        .unwrap();
    }
    let (fib, t) = timed(|| b.build());
    eprintln!(
        "fib with {n}+{n} routes built in {t:.1?}, {:.1} MiB",
        mib(fib.memory_bytes())
    );
    b.add_neighbor(
        a,
        "10.0.0.9".parse().unwrap(),
        MacAddr([0x0a, 0, 0, 0, 0, 9]),
    )
    .unwrap();
    let (_, t) = timed(|| b.build());
    eprintln!("fib rebuild after a neighbor change: {t:.1?}");

    let s4 = sets4(&r4, 7);
    let s6 = sets6(&r6, 8);
    let mut g = c.benchmark_group(format!("route_frame_{}k", n / 1000));
    // `l1`: 64 frames routed over and over (instruction cost: everything in L1); `hot`:
    // 4096 frames (256 KB, to as many destinations); `spread`: 256k frames (16 MB) to as
    // many destinations, so tables and frames miss the caches.
    for (label, count) in [("l1", 64usize), ("hot", 4096), ("spread", 1 << 18)] {
        g.throughput(Throughput::Elements(count as u64));
        // Frames to routed destinations that forward (random ones that hit 127/8, our own
        // subnets or unresolved neighbors are skipped).
        let mut v4: Vec<[u8; 64]> = s4
            .routed
            .iter()
            .map(|&dst| {
                let mut f = [0u8; 64];
                f[0..6].copy_from_slice(&in_mac.0);
                f[6..12].copy_from_slice(&[0x0a, 0, 0, 0, 0, 9]);
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14..34].copy_from_slice(&[
                    0x45, 0, 0, 46, 0, 0, 0x40, 0, 255, 17, 0, 0, 10, 0, 0, 9, 0, 0, 0, 0,
                ]);
                f[30..34].copy_from_slice(&dst.to_be_bytes());
                let c = ipv4_checksum(&f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
                f
            })
            .filter(|f| {
                matches!(
                    route_frame(&fib, a, &mut f.clone()),
                    Verdict::Forward { .. }
                )
            })
            .take(count)
            .collect();
        assert_eq!(v4.len(), count);
        let fixups: Vec<[u8; 2]> = v4.iter().map(|f| [f[24], f[25]]).collect();
        g.bench_function(BenchmarkId::new("ipv4", label), |bch| {
            bch.iter(|| {
                let mut fwd = 0u32;
                for (f, c) in v4.iter_mut().zip(&fixups) {
                    if f[22] <= 2 {
                        f[22] = 255;
                        f[24..26].copy_from_slice(c);
                    }
                    fwd += matches!(route_frame(&fib, a, f), Verdict::Forward { .. }) as u32;
                }
                assert_eq!(fwd as usize, count);
                fwd
            })
        });
        drop(v4);

        let mut v6: Vec<[u8; 78]> = s6
            .routed
            .iter()
            .map(|&dst| {
                let mut f = [0u8; 78];
                f[0..6].copy_from_slice(&in_mac.0);
                f[6..12].copy_from_slice(&[0x0a, 0, 0, 0, 0, 9]);
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
                f[14..22].copy_from_slice(&[0x60, 0, 0, 0, 0, 24, 17, 255]);
                f[22..38].copy_from_slice(&((0xfd00u128 << 112) | 9).to_be_bytes());
                f[38..54].copy_from_slice(&dst.to_be_bytes());
                f
            })
            .filter(|f| {
                matches!(
                    route_frame(&fib, a, &mut f.clone()),
                    Verdict::Forward { .. }
                )
            })
            .take(count)
            .collect();
        assert_eq!(v6.len(), count);
        g.bench_function(BenchmarkId::new("ipv6", label), |bch| {
            bch.iter(|| {
                let mut fwd = 0u32;
                for f in v6.iter_mut() {
                    if f[21] <= 2 {
                        f[21] = 255;
                    }
                    fwd += matches!(route_frame(&fib, a, f), Verdict::Forward { .. }) as u32;
                }
                assert_eq!(fwd as usize, count);
                fwd
            })
        });
    }
    g.finish();
}

fn main() {
    let prefix = format!("--file-prefix=fl-bench-router-{}", std::process::id());
    let eal = Eal::init(&[
        "--no-huge",
        "-m",
        "2048",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=*:warning",
        prefix.as_str(),
    ])
    .expect("EAL init");
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for n in [1_000, 100_000] {
        lpm4(&mut c, eal, n);
        lpm6(&mut c, eal, n);
        per_packet(&mut c, n);
    }
    c.final_summary();
}
