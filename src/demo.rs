//! `fastlag demo`: the README's main job, on the embedded default configuration. Two
//! fastlag 802.3ad bonds run LACP against each other over in-process links (no NIC, no
//! other software); a generator sends numbered frames through both bonds; one link fails
//! and recovers; a live view shows every member's LACP state and the traffic; a summary
//! checks that every frame that arrived was intact and that the pool got every mbuf back.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conf::Forward;
use dataplane::gen::{self, GenConfig, GenCounters, GenPort, Sizes, Stream};

use crate::AnyError;
use control::runtime::Runtime;
use control::status::Status;

/// Flows per direction: each is one stream of numbered frames with its own addresses.
const FLOWS: usize = 16;

fn all_distributing(s: &Status) -> bool {
    !s.bonds.is_empty()
        && s.bonds
            .iter()
            .all(|b| b.members.iter().all(|m| m.distributing))
}

fn member_line(s: &Status) -> String {
    s.bonds
        .iter()
        .map(|b| {
            let ms: Vec<String> = b
                .members
                .iter()
                .map(|m| {
                    let state = if !m.link_up {
                        "DOWN"
                    } else if m.distributing {
                        "DIST"
                    } else if m.collecting {
                        "COLL"
                    } else {
                        "wait"
                    };
                    format!("{} {:<4}", m.name, state)
                })
                .collect();
            format!("{}: {}", b.name, ms.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

struct Live<'a> {
    rt: &'a Runtime,
    counters: &'a GenCounters,
    start: Instant,
    last_t: Instant,
    last_recv: u64,
}

impl Live<'_> {
    fn received(&self) -> u64 {
        self.counters
            .streams
            .iter()
            .map(|c| c.received.load(Ordering::Relaxed))
            .sum()
    }

    /// Prints one line: time, member states, receive rate.
    fn line(&mut self, note: &str) {
        let recv = self.received();
        let dt = self.last_t.elapsed().as_secs_f64().max(1e-3);
        let mpps = (recv - self.last_recv) as f64 / dt / 1e6;
        self.last_t = Instant::now();
        self.last_recv = recv;
        outln!(
            "{:>5.1}s  {}  {:>7.3} Mpps  {}",
            self.start.elapsed().as_secs_f64(),
            member_line(&self.rt.status()),
            mpps,
            note
        );
    }

    /// Prints a line per second for `d`, or until `until` holds (checked every 50 ms).
    fn run(
        &mut self,
        d: Duration,
        stop: &AtomicBool,
        until: impl Fn(&Status) -> bool,
    ) -> Option<Duration> {
        let t0 = Instant::now();
        let mut next = Instant::now() + Duration::from_secs(1);
        while t0.elapsed() < d && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if until(&self.rt.status()) {
                let took = t0.elapsed();
                self.line("");
                return Some(took);
            }
            if Instant::now() >= next {
                next += Duration::from_secs(1);
                self.line("");
            }
        }
        None
    }
}

pub(crate) fn run(
    config: Option<&Path>,
    phase: Duration,
    log: tracing::Level,
) -> Result<ExitCode, AnyError> {
    let cfg = match config {
        Some(p) => conf::load_with(p, &control::limits())
            .map_err(|e| format!("invalid configuration:\n{e}"))?,
        None => conf::default_config()
            .map_err(|e| format!("embedded default config is invalid (a bug):\n{e}"))?,
    };
    let mut rt = Runtime::start(&cfg, log)?;
    let stop = rt.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }

    // The generator drives each unclaimed link end; streams go from the far end of one
    // side of an xconnect pair chain to the far end of the other, in both directions.
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
    let ends = match &cfg.forward {
        Forward::Xconnect { .. } if ports.len() == 2 => Some((0, 1)),
        _ => None,
    };
    let Some((ga, gb)) = ends else {
        let returned = ports.into_iter().map(|p| (p.rx, p.tx)).collect();
        rt.shutdown(returned);
        return Err(
            "the demo needs exactly two in-process link ends left for its generator \
                    (see conf/default.toml)"
                .into(),
        );
    };
    let mut streams = Vec::new();
    for _ in 0..FLOWS {
        streams.push(Stream { from: ga, to: gb });
        streams.push(Stream { from: gb, to: ga });
    }
    let gen_cfg = GenConfig {
        streams: streams.clone(),
        count: None,
        // Below the rings' size: nothing is lost to full queues, so a lost frame means a
        // link or bond lost it.
        window: Some(24),
        sizes: Sizes::Fixed(64 - 4),
        verify_payload: true,
        burst: 32,
        drain_timeout: Duration::from_millis(500),
    };
    let counters = GenCounters::new(streams.len());
    let gen_stop = Arc::new(AtomicBool::new(false));
    let pool = rt.pool().clone();

    outln!("fastlag demo: two 802.3ad bonds back to back over in-process links (no NIC needed)");
    outln!("  generator -> in -> bondA = {{m0, m1}} = bondB -> out -> generator, and back; {FLOWS} flows each way");
    outln!("  states: DIST distributing, COLL collecting only, wait negotiating, DOWN link down");
    outln!();
    let start = Instant::now();
    let mut live = Live {
        rt: &rt,
        counters: &counters,
        start,
        last_t: start,
        last_recv: 0,
    };

    // 1. LACP converges before any traffic.
    outln!("[1] LACP negotiation");
    let converge = live.run(Duration::from_secs(15), &stop, all_distributing);
    match converge {
        Some(t) => outln!(
            "      all members distributing after {:.2} s",
            t.as_secs_f64()
        ),
        None => outln!("      bonds did not converge within 15 s"),
    }

    let gen_thread = {
        let (counters, gen_stop) = (counters.clone(), gen_stop.clone());
        let core = cfg.dataplane.control_core as usize;
        let eal = rt.eal();
        std::thread::Builder::new()
            .name("fl-demo-gen".into())
            .spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                let _ = dpdk::register_thread(eal);
                let report = gen::run(&gen_cfg, &mut ports, &pool, &counters, &gen_stop);
                dpdk::unregister_thread();
                (report, ports)
            })?
    };

    // 2. Traffic over both members.
    outln!("[2] traffic through both bonds");
    live.run(phase, &stop, |_| false);
    let before_fail = rt.snapshot();

    // 3. Link m1 fails (both ends see carrier loss).
    outln!("[3] link m1 fails");
    let fail_at = Instant::now();
    let mut failed_ok = true;
    for p in ["a1", "b1"] {
        if let Err(e) = rt.set_link(p, false) {
            outln!("      cannot fail {p}: {e}");
            failed_ok = false;
        }
    }
    let out = |s: &Status| {
        s.bonds.iter().all(|b| {
            b.members
                .iter()
                .filter(|m| m.name.ends_with('1'))
                .all(|m| !m.distributing)
        })
    };
    if let Some(t) = live.run(Duration::from_secs(5), &stop, out) {
        outln!(
            "      m1 left both bonds {:.0} ms after the failure",
            t.as_secs_f64() * 1e3
        );
    }
    let failover = fail_at.elapsed();
    live.run(phase.saturating_sub(failover), &stop, |_| false);

    // 4. The link comes back and rejoins.
    outln!("[4] link m1 recovers");
    for p in ["a1", "b1"] {
        let _ = rt.set_link(p, true);
    }
    let rejoin = live.run(Duration::from_secs(15), &stop, all_distributing);
    if let Some(t) = rejoin {
        outln!(
            "      m1 distributing again after {:.2} s (aggregate wait 2 s)",
            t.as_secs_f64()
        );
    }
    live.run(phase, &stop, |_| false);

    gen_stop.store(true, Ordering::SeqCst);
    let (report, ports) = gen_thread.join().map_err(|_| "generator thread panicked")?;
    let status = rt.status();
    let fin = rt.shutdown(ports.into_iter().map(|p| (p.rx, p.tx)).collect());
    control::report::log_final(&fin);

    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let received = report.received();
    let sent = report.sent();
    let corrupt: u64 = report.streams.iter().map(|s| s.corrupt).sum();
    let reordered: u64 = report.streams.iter().map(|s| s.gaps).sum();
    let per_member = |name: &str| {
        fin.stats
            .ports
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.workers.tx)
            .unwrap_or(0)
    };
    let before = |name: &str| {
        before_fail
            .ports
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.workers.tx)
            .unwrap_or(0)
    };
    outln!();
    outln!("summary");
    match converge {
        Some(t) => outln!(
            "  LACP converged        {:.2} s after start",
            t.as_secs_f64()
        ),
        None => outln!("  LACP converged        no"),
    }
    outln!(
        "  frames               {sent} sent, {received} received intact ({:.3} Mpps), {} in flight or lost",
        received as f64 / secs / 1e6,
        sent.saturating_sub(received)
    );
    outln!(
        "  per member (bondA)   a0 {} frames, a1 {} frames (before the failure: a0 {}, a1 {})",
        per_member("a0"),
        per_member("a1"),
        before("a0"),
        before("a1")
    );
    outln!("  reordered / corrupt  {reordered} / {corrupt}");
    match rejoin {
        Some(t) => outln!(
            "  m1 rejoined          {:.2} s after recovery",
            t.as_secs_f64()
        ),
        None => outln!("  m1 rejoined          no"),
    }
    outln!(
        "  LACP at the end      {}",
        status
            .bonds
            .iter()
            .flat_map(|b| b.members.iter())
            .filter_map(|m| m.lacp.as_ref().map(|l| format!(
                "{}: {} rx / {} tx LACPDUs",
                m.name, l.lacpdus_rx, l.lacpdus_tx
            )))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let gaps: Vec<String> = status
        .bonds
        .iter()
        .flat_map(|b| b.members.iter())
        .filter_map(|m| {
            m.lacp.as_ref().filter(|l| l.tx_gaps.count > 2).map(|l| {
                format!(
                    "{} {:.1}/{:.1}/{:.1}",
                    m.name, l.tx_gaps.min_ms, l.tx_gaps.mean_ms, l.tx_gaps.max_ms
                )
            })
        })
        .collect();
    outln!(
        "  LACPDU intervals     min/mean/max ms under load: {}",
        gaps.join(", ")
    );
    outln!(
        "  packet pool          {}/{} mbufs back{}",
        fin.pool.available,
        fin.pool.size,
        if fin.clean() { "" } else { " - NOT CLEAN" }
    );
    let ok = failed_ok
        && fin.clean()
        && converge.is_some()
        && rejoin.is_some()
        && received > 0
        && corrupt == 0
        && before("a0") > 0
        && before("a1") > 0;
    outln!(
        "  result               {}",
        if ok { "OK" } else { "FAILED" }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
