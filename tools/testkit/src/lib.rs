//! Test rigs for fastlag's integration tests: scratch directories and child processes that
//! are cleaned up even when a test fails (Drop runs during unwinding), network namespaces,
//! veth pairs, Open vSwitch, captures ([`net`]), memif links to a generator ([`memif`]) and
//! the Linux bonding driver as a peer in a QEMU guest ([`vm`]).

#![forbid(unsafe_code)]

pub mod memif;
pub mod net;
pub mod rings;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory removed on drop.
pub struct Scratch {
    /// The directory.
    pub path: PathBuf,
}

impl Scratch {
    /// A fresh directory for this test process, named after `tag`.
    pub fn new(tag: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("fastlag-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    /// A path inside it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A binary of the workspace (`fastlag`, `fastlag-gen`, `fastlag-bond-peer`), from the
/// target directory the running test was built into: tests are in `target/<profile>/deps/`,
/// binaries in `target/<profile>/`. Binaries of other packages than the test's are not built
/// by `cargo test`: `scripts/test.sh` builds them first (`cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins{}` first (scripts/test.sh does)",
        path.display(),
        if dir.ends_with("release") {
            " --release"
        } else {
            ""
        }
    );
    path
}

/// The fastlag binary under test.
pub fn fastlag() -> Command {
    Command::new(bin("fastlag"))
}

/// A child process stopped by PID when dropped (SIGTERM, then SIGKILL after 5 s).
pub struct ChildGuard {
    /// The process, until it has been waited for.
    pub child: Option<Child>,
    /// For messages.
    pub name: String,
}

impl ChildGuard {
    /// Starts `cmd` with stdin and stdout closed and stderr into `stderr_to`.
    pub fn spawn(name: &str, mut cmd: Command, stderr_to: &Path) -> ChildGuard {
        let log = std::fs::File::create(stderr_to).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        ChildGuard {
            child: Some(child),
            name: name.to_string(),
        }
    }

    /// The PID (panics once the child has been waited for).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The PID while the child has not been waited for (after that the number may belong
    /// to another process).
    pub fn try_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends signal `sig` (a name such as "TERM") to the child, by PID.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -{sig} {}", self.pid());
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits up to `timeout` for exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// VmRSS of `pid` in bytes (0 once it is gone).
pub fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPUs this process may run on.
pub fn cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// A running `fastlag run` with its config, log, `--status` and `--report` files in a
/// scratch directory; stopped by PID when dropped.
pub struct Fastlag {
    /// The process.
    pub child: ChildGuard,
    /// Its stderr (the log).
    pub log: PathBuf,
    /// Its `--status` file.
    pub status: PathBuf,
    /// Its `--report` file.
    pub report: PathBuf,
}

impl Fastlag {
    /// Writes `config` into `scratch` and starts fastlag on it.
    pub fn start(scratch: &Scratch, config: &str) -> Fastlag {
        let cfg = scratch.file("fastlag.toml");
        std::fs::write(&cfg, config).expect("write config");
        let (log, status, report) = (
            scratch.file("fastlag.log"),
            scratch.file("status.json"),
            scratch.file("report.json"),
        );
        let mut cmd = fastlag();
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--status")
            .arg(&status)
            .arg("--report")
            .arg(&report);
        Fastlag {
            child: ChildGuard::spawn("fastlag", cmd, &log),
            log,
            status,
            report,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The latest status, once written.
    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(&self.status).ok()?).ok()
    }

    /// A member's entry in the status.
    pub fn member(&self, bond: &str, member: &str) -> Option<serde_json::Value> {
        let s = self.status()?;
        let b = s["bonds"]
            .as_array()?
            .iter()
            .find(|b| b["name"] == bond)?
            .clone();
        b["members"]
            .as_array()?
            .iter()
            .find(|m| m["name"] == member)
            .cloned()
    }

    /// Waits for `paths` to exist while fastlag runs; panics with the log otherwise.
    pub fn wait_for(&mut self, paths: &[PathBuf], timeout: Duration) {
        let ok = wait_until(timeout, || {
            !self.child.running() || paths.iter().all(|p| p.exists())
        }) && self.child.running();
        assert!(ok, "fastlag did not create {paths:?}:\n{}", self.log());
    }

    /// SIGTERM, wait for exit; returns (exited 0, report, log).
    pub fn stop(mut self) -> (bool, serde_json::Value, String) {
        self.child.signal("TERM");
        let status = self
            .child
            .wait_timeout(Duration::from_secs(20))
            .expect("fastlag exits after SIGTERM");
        let log = self.log();
        let report = std::fs::read_to_string(&self.report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        (status.success(), report, log)
    }
}

/// A port's entry in a `--report`.
pub fn report_port<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["stats"]["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no port {name} in report {report}"))
}

/// Two 802.3ad bonds of one fastlag (bondA: a0, a1; bondB: b0, b1) over in-process ring
/// links, so they negotiate with each other, cross-connected, with the management socket
/// at `sock`; control thread and worker on the first two CPUs. `[management]` is the last
/// section: a caller may append keys of its own.
pub fn two_ring_bonds_config(sock: &Path) -> String {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "a0"
device = "ring:m0:a"
[[port]]
name = "a1"
device = "ring:m1:a"
[[port]]
name = "b0"
device = "ring:m0:b"
[[port]]
name = "b1"
device = "ring:m1:b"

[[bond]]
name = "bondA"
members = ["a0", "a1"]
[[bond]]
name = "bondB"
members = ["b0", "b1"]

[forward]
mode = "xconnect"
pairs = [["bondA", "bondB"]]

[management]
socket = "{s}"
"#,
        c = cpus[0],
        w = cpus[1],
        s = sock.display()
    )
}

/// The last `n` lines of `text` (for failure messages).
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The system python3 (tests run it for small traffic scripts).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Spawns `cmd` with stdout and stderr to files, stopped by PID on drop.
pub fn spawn_logged(name: &str, mut cmd: Command, stdout: &Path, stderr: &Path) -> ChildGuard {
    let out = std::fs::File::create(stdout).expect("stdout file");
    let err = std::fs::File::create(stderr).expect("stderr file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    ChildGuard {
        child: Some(child),
        name: name.to_string(),
    }
}

/// Places in `text` that show an engine-relative instant to a person: "since" or "at"
/// followed by a bare number of seconds or a `Duration`'s debug form ("since 0.000385s",
/// "at 5.642774s"), or an `Instant`'s debug form. Every instant shown to a person must be a
/// wall-clock time or an age ("3.2 s ago (at 12:00:01.250)"); durations ("for 3.2 s",
/// "500ms") are not instants and are not reported. Each hit is returned with its context.
pub fn engine_instants(text: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for line in text.lines() {
        if line.contains("Instant {") || line.contains("tv_nsec") {
            hits.push(line.trim().to_string());
            continue;
        }
        for word in ["since ", "at "] {
            let mut from = 0;
            while let Some(i) = line[from..].find(word) {
                let start = from + i;
                from = start + word.len();
                // A whole word: "at" in "heartbeat " is not.
                if line[..start]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric())
                {
                    continue;
                }
                let rest = &line[from..];
                let num: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
                    continue;
                }
                let after = &rest[num.len()..];
                // A number glued to a unit, or "N s" / "N seconds" with no "ago" after it:
                // either way an offset on some clock, given where a time belongs.
                let glued = ["s", "ms", "µs", "us", "ns"].iter().any(|u| {
                    after.starts_with(u)
                        && !after[u.len()..].starts_with(|c: char| c.is_alphanumeric())
                });
                let spaced = (after.starts_with(" s") || after.starts_with(" seconds"))
                    && !after.contains("ago");
                if glued || spaced {
                    let end = (from + num.len() + 12).min(line.len());
                    let end = (end..=line.len())
                        .find(|&e| line.is_char_boundary(e))
                        .unwrap_or(line.len());
                    hits.push(line[start..end].to_string());
                }
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::engine_instants;

    #[test]
    fn engine_instants_are_found_and_times_and_ages_are_not() {
        for bad in [
            "LACP not heard from the partner since 0.000385s",
            "partner silent: last LACPDU at 5.642774s",
            "last one at 12 s",
            "at Instant { tv_sec: 5, tv_nsec: 1 }",
        ] {
            assert_eq!(engine_instants(bad).len(), 1, "{bad}");
        }
        for good in [
            "no LACPDU from partner for 3.2 s (short timeout 3 s), last one at 12:00:01.250 (3.2 s ago)",
            "link went down at 2026-12-08T00:12:01.250Z (1.0 s ago)",
            "still collecting (at least 500ms)",
            "heartbeat 3s",
            "since the link came up 4.0 s ago (at 00:12:01)",
        ] {
            assert!(engine_instants(good).is_empty(), "{good}: {:?}", engine_instants(good));
        }
    }
}
