//! Per-flow order through a 2-member 802.3ad bond (issue 7): fastlag runs two LACP bonds
//! against each other over in-process links (its own engine on both ends, as the demo
//! does) and cross-connects a memif port to each; `fastlag-gen` (a second DPDK process)
//! sends 1,000 UDP flows each way (64-byte frames, open loop, as fast as the path takes
//! them) and checks every flow's sequence numbers at the sink.
//!
//! ```text
//!  fastlag-gen p0 ==memif== p0 -> bondA [a0, a1] ==ring links== [b0, b1] bondB -> p1 ==memif== p1 fastlag-gen
//! ```
//!
//! Asserts: at least 10,000,000 frames received over 2,000 flows, none of them out of order
//! (a flow stays on one member), traffic on both members of both bonds, and a clean
//! shutdown. Loss (the open-loop generator outruns the path at times) is reported, not
//! asserted: a lost frame shows up as a gap, never as reordering.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::memif::memif_spec;
use testkit::*;

const FLOWS_PER_DIRECTION: u64 = 1000;
const SEND: u64 = 11_000_000;
const MUST_RECEIVE: u64 = 10_000_000;

fn all_distributing(fl: &Fastlag) -> bool {
    fl.status().is_some_and(|s| {
        let ms: Vec<&Value> = s["bonds"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|b| b["members"].as_array().into_iter().flatten())
            .collect();
        ms.len() == 4 && ms.iter().all(|m| m["distributing"] == true)
    })
}

fn port_tx(status: &Value, name: &str) -> u64 {
    status["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .and_then(|p| p["pmd"]["tx_packets"].as_u64())
        .unwrap_or_else(|| panic!("no port {name} in status {status}"))
}

#[test]
fn flows_stay_in_order_through_a_two_member_bond() {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let scratch = Scratch::new("bond-order");
    let socks = [scratch.file("p0.sock"), scratch.file("p1.sock")];
    let cfg = format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
stats_interval_s = 0

[[port]]
name = "a0"
device = "ring:l0:a"

[[port]]
name = "a1"
device = "ring:l1:a"

[[port]]
name = "b0"
device = "ring:l0:b"

[[port]]
name = "b1"
device = "ring:l1:b"

[[port]]
name = "p0"
device = "{d0}"

[[port]]
name = "p1"
device = "{d1}"

[[bond]]
name = "bondA"
members = ["a0", "a1"]
hash = "layer3+4"

[[bond]]
name = "bondB"
members = ["b0", "b1"]
hash = "layer3+4"

[forward]
mode = "xconnect"
pairs = [["p0", "bondA"], ["bondB", "p1"]]
"#,
        c = cpus[0],
        w = cpus[1],
        d0 = memif_spec(0, "server", &socks[0]),
        d1 = memif_spec(1, "server", &socks[1]),
    );
    let mut fl = Fastlag::start(&scratch, &cfg);
    fl.wait_for(&socks, Duration::from_secs(20));
    // Every member distributing before the first frame: no flow moves between members
    // during the run, so any reordering would be fastlag's.
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || all_distributing(&fl)),
        "bonds did not converge:\n{}",
        fl.log()
    );
    let converged = t.elapsed();
    let before = fl.status().expect("status");

    let out = scratch.file("gen.json");
    let mut gen = Command::new(testkit::bin("fastlag-gen"));
    gen.arg("--cpu")
        .arg(cpus[0].to_string())
        .args(["--flows", &FLOWS_PER_DIRECTION.to_string()])
        .args(["--count", &SEND.to_string()])
        .args(["--seconds", "120", "--warmup", "0", "--drain-ms", "500"])
        .args(["--size", "64", "--rxq", "1", "--txq", "1"])
        .arg("--port")
        .arg(memif_spec(0, "client", &socks[0]))
        .arg("--port")
        .arg(memif_spec(1, "client", &socks[1]))
        .arg("--json")
        .arg(&out)
        // The generator keeps its ports open (not polled) until fastlag stopped: see
        // fastlag-gen --hold.
        .arg("--hold");
    let started = Instant::now();
    let mut g = ChildGuard::spawn("fastlag-gen", gen, &scratch.file("gen.log"));
    let gen_log = || std::fs::read_to_string(scratch.file("gen.log")).unwrap_or_default();
    let finished = wait_until(Duration::from_secs(150), || out.exists() || !g.running());
    let took = started.elapsed();
    assert!(
        finished && out.exists(),
        "fastlag-gen did not finish:\n{}\n{}",
        gen_log(),
        fl.log()
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("gen json"))
        .expect("gen json parses");
    let after = fl.status().expect("status");
    let (clean, _report, log) = fl.stop();
    g.signal("TERM");
    let st = g
        .wait_timeout(Duration::from_secs(30))
        .expect("fastlag-gen exits after SIGTERM");
    assert!(st.success(), "fastlag-gen failed:\n{}", gen_log());

    let t = &r["total"];
    let n = |v: &Value| {
        v.as_u64()
            .unwrap_or_else(|| panic!("not a number: {v} in {r}"))
    };
    let (sent, received) = (n(&t["sent"]), n(&t["received"]));
    println!(
        "MEASURE bond order: bonds converged in {:.2} s; {} frames sent, {} received in {:.1} s \
         ({:.2} Mpps at the sink), lost {} ({:.3}%), reordered {} (+{} in warm-up), {} flows \
         received, {} with loss; latency p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        converged.as_secs_f64(),
        sent,
        received,
        took.as_secs_f64(),
        r["rx"]["mpps"],
        n(&t["lost"]),
        t["loss_pct"],
        t["reordered"],
        t["reordered_in_warmup"],
        t["flows_received"],
        t["flows_with_loss"],
        r["latency_ns"]["p50"],
        r["latency_ns"]["p99"],
        r["latency_ns"]["p99_9"],
        r["latency_ns"]["max"],
    );
    for m in ["a0", "a1", "b0", "b1"] {
        let d = port_tx(&after, m) - port_tx(&before, m);
        println!("MEASURE bond order: member {m} sent {d} frames");
        assert!(
            d > 1000,
            "member {m} carried no traffic ({d} frames): flows did not spread"
        );
    }
    assert_eq!(sent, SEND, "the generator sends exactly --count frames");
    assert!(
        received >= MUST_RECEIVE,
        "only {received} of {sent} frames came back (at least {MUST_RECEIVE} needed)"
    );
    assert_eq!(n(&t["flows_received"]), 2 * FLOWS_PER_DIRECTION, "{r}");
    assert_eq!(n(&t["unknown_flow"]), 0, "{r}");
    assert_eq!(
        n(&t["reordered"]) + n(&t["reordered_in_warmup"]),
        0,
        "frames arrived out of order within their flow: {t}"
    );
    assert_eq!(n(&t["flows_reordered"]), 0, "{t}");
    assert!(clean, "fastlag did not shut down cleanly:\n{log}");
}
