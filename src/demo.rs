//! `fastlag demo`: the fast path on its embedded default config (in-process ring links, no
//! NIC), with a traffic generator on the far ends of the links, a live view of rates, and
//! a summary that checks every frame arrived byte-identical.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conf::Forward;
use dataplane::gen::{self, GenConfig, GenCounters, GenPort, Sizes, Stream};

use crate::runtime::Runtime;
use crate::AnyError;

/// The embedded default configuration (also shipped as conf/default.toml).
pub const DEFAULT_CONFIG: &str = include_str!("../conf/default.toml");

pub fn run(
    config: Option<&Path>,
    duration: Duration,
    log: tracing::Level,
) -> Result<ExitCode, AnyError> {
    let cfg = match config {
        Some(p) => conf::load(p).map_err(|e| format!("invalid configuration:\n{e}"))?,
        None => conf::parse(DEFAULT_CONFIG, "<embedded conf/default.toml>")
            .map_err(|e| format!("embedded default config is invalid (a bug):\n{e}"))?,
    };
    let mut rt = Runtime::start(&cfg, log)?;
    let stop = rt.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }

    // The generator drives each unclaimed link end; a stream goes from the far end of one
    // side of an xconnect pair to the far end of the other side, in both directions.
    let spare = rt.take_spare_ends();
    let mut ports: Vec<GenPort> = Vec::new();
    let mut peer_of: Vec<String> = Vec::new();
    for s in spare {
        peer_of.push(s.peer.clone());
        ports.push(GenPort {
            name: format!("ring:{}", s.link),
            rx: s.rx,
            tx: s.tx,
            mac: s.mac.0,
        });
    }
    let mut streams = Vec::new();
    if let Forward::Xconnect { pairs } = &cfg.forward {
        for (a, b) in pairs {
            let ga = peer_of.iter().position(|p| p == a);
            let gb = peer_of.iter().position(|p| p == b);
            if let (Some(ga), Some(gb)) = (ga, gb) {
                streams.push(Stream { from: ga, to: gb });
                streams.push(Stream { from: gb, to: ga });
            }
        }
    }
    if streams.is_empty() {
        let returned = ports.into_iter().map(|p| (p.rx, p.tx)).collect();
        rt.shutdown(returned);
        return Err(
            "the demo needs an xconnect pair of ports on in-process ring links whose far ends \
                    are not configured (see conf/default.toml)"
                .into(),
        );
    }

    let gen_cfg = GenConfig {
        streams: streams.clone(),
        count: None,
        // Below the ring size: lossless, and still enough in flight to keep the worker busy.
        window: Some(512),
        sizes: Sizes::Fixed(64 - 4),
        verify_payload: false,
        burst: 32,
        drain_timeout: Duration::from_millis(500),
    };
    let counters = GenCounters::new(streams.len());
    let gen_stop = Arc::new(AtomicBool::new(false));
    let pool = rt.pool().clone();
    let gen_thread = {
        let (counters, gen_stop) = (counters.clone(), gen_stop.clone());
        let core = cfg.dataplane.control_core as usize;
        std::thread::Builder::new()
            .name("fl-demo-gen".into())
            .spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                let _ = dataplane::dpdk::register_thread();
                let report = gen::run(&gen_cfg, &mut ports, &pool, &counters, &gen_stop);
                dataplane::dpdk::unregister_thread();
                (report, ports)
            })?
    };

    println!(
        "fastlag demo: xconnect over in-process links, {} stream(s) of 64-byte frames, {} s (Ctrl-C stops)",
        streams.len(),
        duration.as_secs()
    );
    println!(
        "{:>5}  {:>12}  {:>12}  {:>10}  {:>8}  {:>10}",
        "time", "sent Mpps", "recv Mpps", "fwd drops", "gaps", "cyc/pkt"
    );
    let start = Instant::now();
    let mut last_t = start;
    let (mut last_sent, mut last_recv) = (0u64, 0u64);
    let mut last_snap = rt.snapshot();
    while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if last_t.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let dt = last_t.elapsed();
        last_t = Instant::now();
        let sent: u64 = counters
            .streams
            .iter()
            .map(|c| c.sent.load(Ordering::Relaxed))
            .sum();
        let recv: u64 = counters
            .streams
            .iter()
            .map(|c| c.received.load(Ordering::Relaxed))
            .sum();
        let gaps: u64 = counters
            .streams
            .iter()
            .map(|c| c.gaps.load(Ordering::Relaxed))
            .sum();
        let snap = rt.snapshot();
        let drops: u64 = snap.workers.iter().map(|w| w.drops).sum();
        let (cyc, pk): (u64, u64) = snap
            .workers
            .iter()
            .zip(&last_snap.workers)
            .fold((0, 0), |acc, (n, o)| {
                (acc.0 + n.busy_cycles - o.busy_cycles, acc.1 + n.tx - o.tx)
            });
        println!(
            "{:>4}s  {:>12.3}  {:>12.3}  {:>10}  {:>8}  {:>10}",
            start.elapsed().as_secs(),
            (sent - last_sent) as f64 / dt.as_secs_f64() / 1e6,
            (recv - last_recv) as f64 / dt.as_secs_f64() / 1e6,
            drops,
            gaps,
            if pk > 0 {
                format!("{:.1}", cyc as f64 / pk as f64)
            } else {
                "-".into()
            }
        );
        last_sent = sent;
        last_recv = recv;
        last_snap = snap;
    }

    gen_stop.store(true, Ordering::SeqCst);
    let (report, ports) = gen_thread.join().map_err(|_| "generator thread panicked")?;
    let fin = rt.shutdown(ports.into_iter().map(|p| (p.rx, p.tx)).collect());
    crate::report::log_final(&fin);

    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let received = report.received();
    let sent = report.sent();
    let cpp: Vec<String> = fin
        .stats
        .workers
        .iter()
        .map(|w| {
            w.cycles_per_packet
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into())
        })
        .collect();
    println!();
    println!("summary");
    println!("  frames sent      {sent}");
    println!(
        "  frames received  {received} ({:.3} Mpps average)",
        received as f64 / secs / 1e6
    );
    println!("  in flight at stop {}", sent.saturating_sub(received));
    println!(
        "  gaps / corrupt   {} / {}",
        report.streams.iter().map(|s| s.gaps).sum::<u64>(),
        report.streams.iter().map(|s| s.corrupt).sum::<u64>()
    );
    println!("  worker busy cycles per packet: {}", cpp.join(", "));
    println!(
        "  packet pool: {}/{} mbufs back{}",
        fin.pool.available,
        fin.pool.size,
        if fin.clean() { "" } else { " — NOT CLEAN" }
    );
    let ok =
        fin.clean() && received > 0 && report.streams.iter().all(|s| s.gaps == 0 && s.corrupt == 0);
    println!("  result: {}", if ok { "OK" } else { "FAILED" });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
