//! `fastlag run` under a service manager: the test plays systemd's side of the notify
//! protocol (a datagram socket named in NOTIFY_SOCKET, a path or an abstract name) and
//! checks READY=1 once the bonds run and `ctl` answers, STATUS= following the bonds'
//! state, WATCHDOG=1 at half of WATCHDOG_USEC from the control thread, RELOADING=1 with
//! MONOTONIC_USEC= then READY=1 around `ctl reload` and SIGHUP, no WATCHDOG=1 while the
//! control thread is stalled (the test-only hook), and STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{cpus, fastlag, two_ring_bonds_config, wait_until, ChildGuard, Scratch};

/// WATCHDOG_USEC the test gives: fastlag must ping every 200 ms.
const WATCHDOG_USEC: u64 = 400_000;

/// What arrived on the notify socket, with when.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(Instant, String)>>>);

impl Received {
    /// Reads `sock` on a thread until the test ends.
    fn listen(sock: UnixDatagram) -> Received {
        let r = Received::default();
        let out = r.0.clone();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                if let Ok(n) = sock.recv(&mut buf) {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    out.lock().unwrap().push((Instant::now(), msg));
                }
                // Ends with the test process (the socket's Arc count is the thread's own).
                if Arc::strong_count(&out) == 1 {
                    return;
                }
            }
        });
        r
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.0.lock().unwrap().clone()
    }

    /// Messages with a line `line`, received after `since`.
    fn with(&self, line: &str, since: Instant) -> Vec<(Instant, String)> {
        self.all()
            .into_iter()
            .filter(|(t, m)| *t >= since && m.lines().any(|l| l == line))
            .collect()
    }

    /// Times of WATCHDOG=1 in [from, to).
    fn watchdogs(&self, from: Instant, to: Instant) -> Vec<Instant> {
        self.with("WATCHDOG=1", from)
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| *t < to)
            .collect()
    }

    /// Every STATUS= value, in order.
    fn statuses(&self) -> Vec<String> {
        self.all()
            .iter()
            .flat_map(|(_, m)| m.lines().map(str::to_string).collect::<Vec<_>>())
            .filter_map(|l| l.strip_prefix("STATUS=").map(str::to_string))
            .collect()
    }

    fn dump(&self, t0: Instant) -> String {
        self.all()
            .iter()
            .map(|(t, m)| {
                format!(
                    "{:>8.3} s  {}",
                    (*t - t0).as_secs_f64(),
                    m.replace('\n', " | ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Daemon {
    proc: ChildGuard,
    log: std::path::PathBuf,
    sock: std::path::PathBuf,
}

impl Daemon {
    /// `fastlag run` with NOTIFY_SOCKET=`notify` (killed with the test process).
    fn start(scratch: &Scratch, config: &str, notify: &str, stall: &Path) -> Daemon {
        let sock = scratch.file("ctl.sock");
        let cfg = scratch.file("fastlag.toml");
        std::fs::write(&cfg, config).unwrap();
        let log = scratch.file("fastlag.log");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL"])
            .arg(fastlag().get_program())
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .env("NOTIFY_SOCKET", notify)
            .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string())
            .env("FASTLAG_TEST_STALL_CONTROL", stall);
        Daemon {
            proc: ChildGuard::spawn("fastlag", cmd, &log),
            log,
            sock,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        fastlag()
            .arg("ctl")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("run fastlag ctl")
    }
}

/// The longest gap between consecutive instants.
fn max_gap(ts: &[Instant]) -> Duration {
    ts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

#[test]
fn notify_ready_status_watchdog_reload_stall_and_stop() {
    let scratch = Scratch::new("notify");
    let notify_path = scratch.file("notify.sock");
    let listener = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    let rx = Received::listen(listener);
    let stall = scratch.file("stall");
    let t0 = Instant::now();
    let cfg = two_ring_bonds_config(&scratch.file("ctl.sock"));
    let mut d = Daemon::start(&scratch, &cfg, notify_path.to_str().unwrap(), &stall);
    let fail = |what: &str, d: &Daemon| -> ! {
        panic!(
            "{what}\n--- notifications:\n{}\n--- log:\n{}",
            rx.dump(t0),
            d.log()
        )
    };

    // READY=1, once; by then the management socket answers.
    if !wait_until(Duration::from_secs(30), || {
        !rx.with("READY=1", t0).is_empty()
    }) {
        fail("no READY=1 within 30 s", &d);
    }
    let ping = d.ctl(&["ping"]);
    if !ping.status.success() {
        fail("READY=1 came before `ctl ping` answers", &d);
    }
    let ready = rx.with("READY=1", t0);
    if ready.len() != 1 || !ready[0].1.contains("STATUS=2 bonds, ") {
        fail("READY=1 once, with a STATUS= line", &d);
    }

    // STATUS= follows the bonds: they negotiate, every member ends up distributing.
    if !wait_until(Duration::from_secs(30), || {
        rx.statuses()
            .iter()
            .any(|s| s == "2 bonds, 4/4 members distributing")
    }) {
        fail("STATUS= never said 2 bonds, 4/4 members distributing", &d);
    }
    let statuses = rx.statuses();
    if statuses.windows(2).any(|w| w[0] == w[1]) {
        fail("STATUS= repeated an unchanged line", &d);
    }

    // WATCHDOG=1 every WATCHDOG_USEC / 2 (200 ms): 2 s gives ~10, no gap reaches the
    // limit (WATCHDOG_USEC) after which systemd would kill the service.
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let w = rx.watchdogs(from, Instant::now());
    let gap = max_gap(&w);
    if !(7..=12).contains(&w.len()) || gap >= Duration::from_micros(WATCHDOG_USEC) {
        fail(
            &format!(
                "WATCHDOG=1: {} in 2 s, longest gap {gap:?} (want ~10, gap < 400 ms)",
                w.len()
            ),
            &d,
        );
    }

    // `ctl reload`: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, taken during the
    // reload), then READY=1.
    for how in ["ctl reload", "SIGHUP"] {
        let since = Instant::now();
        let mono_before = dpdk::monotonic_usec();
        if how == "SIGHUP" {
            d.proc.signal("HUP");
        } else {
            let out = d.ctl(&["reload"]);
            if !out.status.success() {
                fail(
                    &format!(
                        "ctl reload failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                    &d,
                );
            }
        }
        if !wait_until(Duration::from_secs(10), || {
            !rx.with("READY=1", since).is_empty()
        }) {
            fail(&format!("{how}: no READY=1 after the reload"), &d);
        }
        let mono_after = dpdk::monotonic_usec();
        let reloading = rx.with("RELOADING=1", since);
        let again = rx.with("READY=1", since);
        if reloading.len() != 1 || reloading[0].0 > again[0].0 {
            fail(&format!("{how}: want one RELOADING=1 before READY=1"), &d);
        }
        let mono: u64 = reloading[0]
            .1
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(&format!("{how}: RELOADING=1 without MONOTONIC_USEC="), &d));
        if !(mono_before..=mono_after).contains(&mono) {
            fail(
                &format!("{how}: MONOTONIC_USEC={mono} not in [{mono_before}, {mono_after}]"),
                &d,
            );
        }
    }

    // The control thread stalls (test hook): WATCHDOG=1 stops while fastlag lives on.
    std::fs::write(&stall, b"").unwrap();
    if !wait_until(Duration::from_secs(5), || {
        d.log().contains("control thread stalled")
    }) {
        fail("the stall hook did not stall the control thread", &d);
    }
    // A ping sent just before the stall may be recorded a little later by the listener.
    let stalled = Instant::now() + Duration::from_millis(100);
    std::thread::sleep(Duration::from_millis(1600));
    let during = rx.watchdogs(stalled, Instant::now());
    if !during.is_empty() || !d.proc.running() {
        fail(
            &format!(
                "{} WATCHDOG=1 while the control thread was stalled (want none, process alive)",
                during.len()
            ),
            &d,
        );
    }
    // ... and comes back when it resumes.
    std::fs::remove_file(&stall).unwrap();
    let resumed = Instant::now();
    if !wait_until(Duration::from_secs(3), || {
        rx.watchdogs(resumed, Instant::now()).len() >= 3
    }) {
        fail("WATCHDOG=1 did not resume with the control thread", &d);
    }

    // SIGTERM: STOPPING=1, then a clean exit.
    let since = Instant::now();
    d.proc.signal("TERM");
    let Some(status) = d.proc.wait_timeout(Duration::from_secs(20)) else {
        fail("no exit within 20 s of SIGTERM", &d)
    };
    if !status.success() {
        fail(&format!("exit status {status:?}"), &d);
    }
    if rx.with("STOPPING=1", since).len() != 1 {
        fail("want one STOPPING=1", &d);
    }
}

/// Two plain ports cross-connected: no bond, no router, so no control thread; the main
/// thread's loop notifies.
fn xconnect_config(sock: &Path) -> String {
    let cpus = cpus();
    let worker = cpus.get(1).copied().unwrap_or(cpus[0]);
    format!(
        "[dataplane]\ncontrol_core = {}\nworker_cores = [{worker}]\nhugepages = false\nmemory_mb = 256\n\n\
         [[port]]\nname = \"p0\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"p1\"\ndevice = \"ring:l0:b\"\n\n\
         [forward]\nmode = \"xconnect\"\npairs = [[\"p0\", \"p1\"]]\n\n\
         [management]\nsocket = \"{}\"\n",
        cpus[0],
        sock.display()
    )
}

/// An abstract socket name (`@...`) works as well; without a control thread (plain
/// xconnect) the main thread sends READY, STATUS, WATCHDOG and STOPPING.
#[test]
fn notify_to_an_abstract_socket_without_a_control_thread() {
    use std::os::linux::net::SocketAddrExt;
    let scratch = Scratch::new("notify-abstract");
    let name = format!("fastlag-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
    let rx = Received::listen(listener);
    let t0 = Instant::now();
    let cfg = xconnect_config(&scratch.file("ctl.sock"));
    let mut d = Daemon::start(&scratch, &cfg, &format!("@{name}"), &scratch.file("stall"));
    assert!(
        wait_until(Duration::from_secs(30), || !rx
            .with("READY=1", t0)
            .is_empty()),
        "no READY=1 on @{name}:\n{}\n{}",
        rx.dump(t0),
        d.log()
    );
    assert!(
        d.log().contains("service manager notification on"),
        "{}",
        d.log()
    );
    let ready = rx.with("READY=1", t0);
    assert!(
        ready[0]
            .1
            .contains("STATUS=forwarding on 2 ports (no bond, no router)"),
        "{}",
        rx.dump(t0)
    );
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let w = rx.watchdogs(from, Instant::now());
    assert!(
        (3..=6).contains(&w.len()),
        "{} WATCHDOG=1 in 1 s from the main thread (want ~5):\n{}",
        w.len(),
        rx.dump(t0)
    );
    let since = Instant::now();
    d.proc.signal("TERM");
    let status = d.proc.wait_timeout(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}:\n{}",
        d.log()
    );
    assert_eq!(rx.with("STOPPING=1", since).len(), 1, "{}", rx.dump(t0));
}
