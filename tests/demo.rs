//! `fastlag demo` (the README's first command) runs to completion on the embedded default:
//! both bonds converge, traffic crosses both members, the failed link leaves and rejoins,
//! every frame that arrived is intact and every mbuf returns to the pool.

use std::time::{Duration, Instant};

#[test]
fn demo_converges_fails_over_and_recovers() {
    let start = Instant::now();
    // A runtime directory that a fastlag which is gone left behind (pid above pid_max):
    // removed when fastlag starts; its own is removed when it exits.
    let stale = std::path::Path::new("/var/run/dpdk/fastlag-4194309");
    let _ = std::fs::create_dir_all(stale);
    let child = testkit::fastlag()
        .args(["--log-level", "warn", "demo", "--phase-seconds", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run fastlag demo");
    let pid = child.id();
    let out = child.wait_with_output().expect("fastlag demo");
    let own = format!("/var/run/dpdk/fastlag-{pid}");
    assert!(!stale.exists(), "a stale runtime directory was left");
    assert!(
        !std::path::Path::new(&own).exists(),
        "fastlag left its runtime directory {own}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the demo must stay under a minute"
    );
    for expect in [
        "all members distributing after",
        "m1 left both bonds",
        "m1 distributing again after",
        "reordered / corrupt",
        "result               OK",
    ] {
        assert!(stdout.contains(expect), "missing {expect:?} in:\n{stdout}");
    }
    // Convergence within aggregate wait (2 s) plus a margin.
    let line = stdout
        .lines()
        .find(|l| l.contains("all members distributing after"))
        .unwrap();
    let secs: f64 = line
        .split_whitespace()
        .rev()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs < 4.0, "{line}");
    // Corrupt frames would be a forwarding bug.
    let line = stdout
        .lines()
        .find(|l| l.contains("reordered / corrupt"))
        .unwrap();
    assert!(line.contains("/ 0"), "{line}");
}
