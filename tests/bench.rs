//! `fastlag bench`: each kind of scenario runs on the real runtime and reports a sane
//! measurement (frames circulate, the pool comes back whole), so the closed-loop benchmark
//! (`benches/loop.sh`) keeps working. Numbers are not judged here (benchmarks do that).

use serde_json::Value;

fn bench(scenario: &str) -> Value {
    let dir = testkit::Scratch::new(&format!("bench-{scenario}"));
    let json = dir.file("out.json");
    let cpus = testkit::cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let out = testkit::fastlag()
        .args(["--log-level", "warn", "bench", "-s", scenario])
        .args(["--seconds", "0.5", "--warmup", "0.2"])
        .args(["--control-core", &cpus[0].to_string()])
        .args(["--worker-core", &cpus[1].to_string()])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run fastlag bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fastlag bench {scenario} failed:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["clean"], true, "every mbuf back: {v}");
    assert!(v["packets"].as_u64().unwrap() > 100_000, "{v}");
    assert!(v["busy_cycles_per_packet"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["drops"], 0, "{v}\n{stderr}");
    v
}

#[test]
fn xconnect_loop_circulates_the_injected_frames() {
    let v = bench("xconnect");
    assert_eq!(v["frames"], 512);
    // Injected on both ends of the link: both directions loop.
    assert_eq!(v["ports_sending"], serde_json::json!(["a", "b"]));
}

#[test]
fn bond_loop_distributes_over_both_members_once_lacp_converged() {
    let v = bench("bond-l34");
    assert!(v["converged_s"].as_f64().is_some(), "{v}");
    // Both bonds spread their half of the frames over both members.
    assert_eq!(
        v["ports_sending"],
        serde_json::json!(["a0", "a1", "b0", "b1"]),
        "{v}"
    );
}

#[test]
fn router_routes_a_pcap_replay_through_a_static_neighbour() {
    // Every frame is routed (none to the kernel, none dropped): the route's gateway is a
    // [[neighbor]] of the config, with no kernel behind the interface.
    let v = bench("router-v4");
    assert_eq!(v["ports_sending"], serde_json::json!(["out"]), "{v}");
}
