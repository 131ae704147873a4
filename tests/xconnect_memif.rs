//! The real binary forwards 1,000,000 frames of mixed sizes between two memif ports driven
//! by this test process (a second DPDK process): every frame arrives byte-identical and in
//! order, fastlag's port counters match, and after SIGTERM every mbuf is back in its pool
//! and the process exits 0.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dataplane::gen::{self, GenConfig, GenCounters, Sizes, Stream};
use testkit::memif::{memif_spec, MemifPeer};
use testkit::*;

const FRAMES: u64 = 1_000_000;

#[test]
fn xconnect_forwards_a_million_mixed_frames_byte_identical() {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let scratch = Scratch::new("xconnect");
    let socks = [scratch.file("m0.sock"), scratch.file("m1.sock")];
    let cfg = format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false

[[port]]
name = "p0"
device = "{d0}"

[[port]]
name = "p1"
device = "{d1}"

[forward]
mode = "xconnect"
pairs = [["p0", "p1"]]
"#,
        c = cpus[0],
        w = cpus[1],
        d0 = memif_spec(0, "server", &socks[0]),
        d1 = memif_spec(1, "server", &socks[1]),
    );
    let mut fl = Fastlag::start(&scratch, &cfg);
    fl.wait_for(&socks, Duration::from_secs(20));
    let mut peer = MemifPeer::connect(&socks, cpus[0]);

    let gcfg = GenConfig {
        streams: vec![Stream { from: 0, to: 1 }],
        count: Some(FRAMES),
        // Far below every ring on the path (1024): the run is lossless by construction, so
        // any missing frame is a forwarding bug.
        window: Some(256),
        sizes: Sizes::Mixed,
        verify_payload: true,
        burst: 32,
        drain_timeout: Duration::from_secs(5),
    };
    let counters = GenCounters::new(1);
    let report = gen::run(
        &gcfg,
        &mut peer.ports,
        &peer.pool,
        &counters,
        &AtomicBool::new(false),
    );
    let s = &report.streams[0];
    println!(
        "sent {} received {} in {:?} ({:.2} Mpps)",
        s.sent,
        s.received,
        report.elapsed,
        s.received as f64 / report.elapsed.as_secs_f64() / 1e6
    );
    assert_eq!(s.sent, FRAMES);
    assert_eq!(s.received, FRAMES, "frames lost or corrupted: {s:?}");
    assert_eq!(s.gaps, 0, "frames reordered or lost");
    assert_eq!(s.corrupt, 0, "frames not byte-identical");
    assert_eq!(report.foreign, 0, "frames on the wrong port");

    // Stop fastlag first (its ports see the clients go away), then our ports.
    let (ok, rep, log) = fl.stop();
    assert!(ok, "fastlag did not exit 0:\n{log}");
    peer.close();

    let pool = &rep["pool"];
    assert_eq!(
        pool["available"], pool["size"],
        "fastlag's pool after SIGTERM: {pool}\n{log}"
    );
    assert!(log.contains("every mbuf is back in the pool"), "{log}");
    let (p0, p1) = (report_port(&rep, "p0"), report_port(&rep, "p1"));
    assert_eq!(p0["workers"]["rx"], FRAMES, "{p0}");
    assert_eq!(p1["workers"]["tx"], FRAMES, "{p1}");
    assert_eq!(p0["pmd"]["rx_packets"], FRAMES, "{p0}");
    assert_eq!(p1["pmd"]["tx_packets"], FRAMES, "{p1}");
    assert_eq!(p0["workers"]["drop_tx_full"], 0);
    assert_eq!(p1["workers"]["drop_tx_full"], 0);
    // Bytes agree between the PMD's view of both sides.
    assert_eq!(p0["pmd"]["rx_bytes"], p1["pmd"]["tx_bytes"]);
}
