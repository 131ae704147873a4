//! `fastlag run` start-up under adverse conditions: memory it cannot get is refused at once
//! with the key to change (EAL alone maps and faults for tens of seconds, then fails naming
//! nothing), and SIGTERM at any instant of start-up is a clean stop (exit 0, nothing left
//! behind) rather than death by signal.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use testkit::{ChildGuard, Scratch};

fn config(scratch: &Scratch, memory_mb: u64) -> String {
    let cpus = testkit::cpus();
    let worker = cpus.get(1).copied().unwrap_or(cpus[0]);
    format!(
        "[dataplane]\ncontrol_core = {}\nworker_cores = [{worker}]\nhugepages = false\nmemory_mb = {memory_mb}\n\n\
         [[port]]\nname = \"p0\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"p1\"\ndevice = \"ring:l0:b\"\n\n\
         [forward]\nmode = \"xconnect\"\npairs = [[\"p0\", \"p1\"]]\n\n\
         [management]\nsocket = \"{}\"\n",
        cpus[0],
        scratch.file("ctl.sock").display()
    )
}

fn spawn(scratch: &Scratch, memory_mb: u64) -> ChildGuard {
    let cfg = scratch.file("fastlag.toml");
    std::fs::write(&cfg, config(scratch, memory_mb)).unwrap();
    let mut cmd = testkit::fastlag();
    cmd.args(["run", "--config"]).arg(&cfg);
    ChildGuard::spawn("fastlag", cmd, &scratch.file("fastlag.log"))
}

fn mem_available_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// Whether `pid` has a handler for SIGTERM installed (SigCgt bit 15).
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 14) != 0)
}

#[test]
fn memory_it_cannot_get_is_refused_at_once_naming_the_key() {
    let scratch = Scratch::new("startup-mem");
    let want = mem_available_mib() + 8192;
    let start = Instant::now();
    let mut fl = spawn(&scratch, want);
    let pid = fl.pid();
    let status = fl
        .wait_timeout(Duration::from_secs(10))
        .expect("fastlag must stop by itself when the memory is not there");
    let log = std::fs::read_to_string(scratch.file("fastlag.log")).unwrap();
    assert!(!status.success(), "exit status {status:?}:\n{log}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        log.contains(&format!("dataplane.memory_mb = {want} MiB")) && log.contains("MemAvailable"),
        "the error must name the key and what the machine has:\n{log}"
    );
    let own = format!("/var/run/dpdk/fastlag-{pid}");
    assert!(!Path::new(&own).exists(), "left {own}");
}

#[test]
fn sigterm_at_any_instant_of_start_up_is_a_clean_stop() {
    // Start-up (EAL with 512 MiB, the pool, two ports, a worker) takes ~0.3 s here; these
    // delays land before EAL, inside it, between the later steps and just after.
    let mut interrupted = 0;
    for delay_ms in [0u64, 60, 120, 180, 240, 300, 450] {
        let scratch = Scratch::new(&format!("startup-term-{delay_ms}"));
        let mut fl = spawn(&scratch, 512);
        let pid = fl.pid();
        assert!(
            testkit::wait_until(Duration::from_secs(5), || catches_sigterm(pid)),
            "fastlag never installed its SIGTERM handler"
        );
        std::thread::sleep(Duration::from_millis(delay_ms));
        fl.signal("TERM");
        let status = fl
            .wait_timeout(Duration::from_secs(15))
            .expect("fastlag must stop after SIGTERM");
        let log = std::fs::read_to_string(scratch.file("fastlag.log")).unwrap();
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "SIGTERM {delay_ms} ms into start-up:\n{log}"
        );
        if log.contains("stop requested during start-up") {
            interrupted += 1;
        } else {
            assert!(log.contains("stopping"), "{log}");
        }
        let own = format!("/var/run/dpdk/fastlag-{pid}");
        assert!(!Path::new(&own).exists(), "left {own}:\n{log}");
        assert!(
            !scratch.file("ctl.sock").exists(),
            "left its management socket"
        );
    }
    assert!(interrupted >= 1, "no SIGTERM landed inside start-up");
}
