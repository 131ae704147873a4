//! The real binary forwards 1,000,000 frames of mixed sizes between two memif ports driven
//! by this test process (a second DPDK process): every frame arrives byte-identical and in
//! order, fastlag's port counters match, and after SIGTERM every mbuf is back in its pool
//! and the process exits 0.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dataplane::dpdk::{self, Eal, Mempool, Port, PortSetup};
use dataplane::gen::{self, GenConfig, GenCounters, GenPort, Sizes, Stream};

const FRAMES: u64 = 1_000_000;

#[test]
fn xconnect_forwards_a_million_mixed_frames_byte_identical() {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let scratch = Scratch::new("xconnect");
    let sock = |i| scratch.file(&format!("m{i}.sock"));
    let cfg = format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "p0"
device = "net_memif0,role=server,id=0,socket={s0},socket-abstract=no"

[[port]]
name = "p1"
device = "net_memif1,role=server,id=0,socket={s1},socket-abstract=no"

[forward]
mode = "xconnect"
pairs = [["p0", "p1"]]
"#,
        c = cpus[0],
        w = cpus[1],
        s0 = sock(0).display(),
        s1 = sock(1).display()
    );
    let cfg_path = scratch.file("fastlag.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let report_path = scratch.file("report.json");
    let log = scratch.file("fastlag.log");

    let mut cmd = fastlag();
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .arg("--report")
        .arg(&report_path);
    let mut fl = ChildGuard::spawn("fastlag", cmd, &log);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || !fl.running()
            || (sock(0).exists() && sock(1).exists()))
            && fl.running(),
        "fastlag did not create its memif sockets:\n{}",
        log_text()
    );

    // This process is the traffic generator: memif clients on both sockets.
    let prefix = format!("--file-prefix=fl-gen-{}", std::process::id());
    let lcores = format!("--lcores=0@{}", cpus[0]);
    let v0 = format!(
        "--vdev=net_memif0,role=client,id=0,socket={},socket-abstract=no",
        sock(0).display()
    );
    let v1 = format!(
        "--vdev=net_memif1,role=client,id=0,socket={},socket-abstract=no",
        sock(1).display()
    );
    let eal = Eal::init(&[
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=5",
        &prefix,
        &lcores,
        &v0,
        &v1,
    ])
    .expect("EAL init in the test process");
    let pool = Arc::new(Mempool::new(&eal, "gen_pool", 8191, 256, 2176).unwrap());
    let mut ports = Vec::new();
    let mut started = Vec::new();
    for (i, name) in ["net_memif0", "net_memif1"].iter().enumerate() {
        let id = dpdk::port_by_name(&eal, name).unwrap();
        let setup = PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: None,
            pool: pool.clone(),
        };
        let (p, mut rx, mut tx) = Port::configure(&eal, id, name, &setup).unwrap();
        let p = p.start().map_err(|(_, e)| e).unwrap();
        ports.push(GenPort {
            name: format!("gen{i}"),
            rx: rx.pop().unwrap(),
            tx: tx.pop().unwrap(),
            mac: [0x02, 0, 0, 0, 0, i as u8 + 1],
        });
        started.push(p);
    }
    assert!(
        wait_until(Duration::from_secs(20), || started.iter().all(|p| p
            .info()
            .link()
            .map(|l| l.up)
            .unwrap_or(false))),
        "memif links did not come up:\n{}",
        log_text()
    );

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
    let report = gen::run(&gcfg, &mut ports, &pool, &counters, &AtomicBool::new(false));
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
    fl.signal("TERM");
    let status = fl
        .wait_timeout(Duration::from_secs(20))
        .expect("fastlag exits after SIGTERM");
    let text = log_text();
    assert!(status.success(), "fastlag exit status {status:?}:\n{text}");
    drop(ports);
    for p in started {
        p.stop()
            .map_err(|(_, e)| e)
            .unwrap()
            .close()
            .map_err(|(_, e)| e)
            .unwrap();
    }
    assert_eq!(pool.available(), pool.size(), "generator pool leaked");

    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let pool = &rep["pool"];
    assert_eq!(
        pool["available"], pool["size"],
        "fastlag's pool after SIGTERM: {pool}\n{text}"
    );
    assert!(text.contains("every mbuf is back in the pool"), "{text}");
    let port = |name: &str| {
        rep["stats"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    let (p0, p1) = (port("p0"), port("p1"));
    assert_eq!(p0["workers"]["rx"], FRAMES, "{p0}");
    assert_eq!(p1["workers"]["tx"], FRAMES, "{p1}");
    assert_eq!(p0["pmd"]["rx_packets"], FRAMES, "{p0}");
    assert_eq!(p1["pmd"]["tx_packets"], FRAMES, "{p1}");
    assert_eq!(p0["workers"]["drop_tx_full"], 0);
    assert_eq!(p1["workers"]["drop_tx_full"], 0);
    // Bytes agree between the PMD's view of both sides.
    assert_eq!(p0["pmd"]["rx_bytes"], p1["pmd"]["tx_bytes"]);
}
