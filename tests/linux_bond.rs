//! Interop against the Linux kernel's bonding driver (802.3ad) as the LACP peer: a Debian
//! kernel in a QEMU guest (TCG), its virtio-net NICs on host taps that fastlag bonds with
//! af_packet (the rig: `testkit::vm`). Each case asserts both sides' views: fastlag's
//! `ctl show lacp`, `ctl why` and status file against the guest's /proc/net/bonding/bond0.
//!
//! ```text
//!  ns src              root ns (fastlag)                          QEMU guest (Linux 6.1)
//!  eth0 10.79.0.1 -- fl<pid>s0 [in] =xconnect= bond0 [m0] fl<pid>vt0 ~~ eth0 \
//!                                                    [m1] fl<pid>vt1 ~~ eth1 - bond0 10.79.0.2-17
//! ```
//!
//! Four guests boot per run (one per test; TCG, about 5 s each here), the cases that can
//! share a guest are sequenced in it. The numbers measured (convergence, failover, rejoin,
//! SIGTERM) are printed on lines starting with "MEASURE" (`--no-capture` shows them);
//! docs/lacp-engine.md lists them next to the Open vSwitch ones.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Netns, Veth};
use testkit::vm::{BondConfig, LinuxBond, LinuxBondVm, VmOpts};
use testkit::*;

const MEMBERS: [&str; 2] = ["m0", "m1"];
const SLAVES: [&str; 2] = ["eth0", "eth1"];
const SRC_IP: &str = "10.79.0.1";
/// Addresses on the guest's bond0: 10.79.0.2 ..= 10.79.0.(1 + GUEST_ADDRS). Pings to all
/// of them are 16 flows for both ends' layer3+4 hashes.
const GUEST_ADDRS: u8 = 16;

/// 802.1AX state bits.
const ACTIVITY: u8 = 0x01;
const TIMEOUT: u8 = 0x02;
const SYNC: u8 = 0x08;
const COLLECTING: u8 = 0x10;
const DISTRIBUTING: u8 = 0x20;

fn guest_ip(i: u8) -> String {
    format!("10.79.0.{}", 2 + i)
}

/// `fastlag run` killed with the test process (setpriv), stopped by PID on drop.
struct Daemon {
    proc: ChildGuard,
    log: PathBuf,
    status: PathBuf,
    sock: PathBuf,
    started: Instant,
}

impl Daemon {
    fn start(scratch: &Scratch, config: &str, sock: PathBuf) -> Daemon {
        let cfg = scratch.file("fastlag.toml");
        std::fs::write(&cfg, config).unwrap();
        let (log, status, report) = (
            scratch.file("fastlag.log"),
            scratch.file("status.json"),
            scratch.file("report.json"),
        );
        for f in [&log, &status, &report] {
            let _ = std::fs::remove_file(f);
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL"])
            .arg(fastlag().get_program())
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--status")
            .arg(&status)
            .arg("--report")
            .arg(&report);
        let started = Instant::now();
        Daemon {
            proc: ChildGuard::spawn("fastlag", cmd, &log),
            log,
            status,
            sock,
            started,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status(&self) -> Value {
        std::fs::read_to_string(&self.status)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        fastlag()
            .arg("ctl")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("run fastlag ctl")
    }

    /// `ctl ... --json`; Null when it fails (the failure message shows the log).
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ctl(&a);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn text(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn st_member<'a>(st: &'a Value, name: &str) -> Option<&'a Value> {
    st["bonds"][0]["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

fn distributing(st: &Value, name: &str) -> bool {
    st_member(st, name).is_some_and(|m| m["distributing"] == true)
}

fn lacp_u64(st: &Value, name: &str, key: &str) -> u64 {
    st_member(st, name)
        .and_then(|m| m["lacp"][key].as_u64())
        .unwrap_or(0)
}

/// A member of `ctl show lacp bond0 --json`.
fn lacp_member(show: &Value, name: &str) -> Value {
    show[0]["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A member of `ctl why bond0 --json`.
fn why_member(why: &Value, name: &str) -> Value {
    why["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["member"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The guest, fastlag and the sending host. Fields drop in order: fastlag (before QEMU,
/// so its final LACPDUs can leave), the guest and its taps, the sender's link and
/// namespace, the scratch directory.
struct Rig {
    fl: Option<Daemon>,
    vm: LinuxBondVm,
    _in_link: Veth,
    src: Netns,
    in_if: String,
    /// `[management] state_file` (warm restart), when set.
    state_file: Option<PathBuf>,
    scratch: Scratch,
}

macro_rules! ensure {
    ($rig:expr, $cond:expr, $($fmt:tt)+) => {
        let ok: bool = $cond;
        if !ok {
            $rig.fail(&format!($($fmt)+));
        }
    };
}

impl Rig {
    fn new(tag: &str, opts: &VmOpts) -> Rig {
        let scratch = Scratch::new(&format!("linux-{tag}"));
        let src = Netns::new("lxsrc");
        let in_if = net::ifname("s0");
        let in_link = Veth::new(None, &in_if, Some(&src), "eth0");
        src.ip(&["addr", "add", &format!("{SRC_IP}/24"), "dev", "eth0"]);
        let vm = LinuxBondVm::start(opts);
        println!(
            "MEASURE {tag}: guest (Linux {}) answering on its serial port {} ms after QEMU \
             was spawned (TCG)",
            vm.kernel,
            vm.boot.as_millis()
        );
        // The guest's bond takes the first slave's MAC; the sender needs no ARP for it.
        for i in 0..GUEST_ADDRS {
            src.ip(&[
                "neigh",
                "replace",
                &guest_ip(i),
                "lladdr",
                &vm.macs[0],
                "dev",
                "eth0",
                "nud",
                "permanent",
            ]);
        }
        Rig {
            fl: None,
            vm,
            _in_link: in_link,
            src,
            in_if,
            state_file: None,
            scratch,
        }
    }

    fn config(&self, activity: &str, rate: &str) -> String {
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
name = "m0"
device = "net_af_packet0,iface={t0}"

[[port]]
name = "m1"
device = "net_af_packet1,iface={t1}"

[[port]]
name = "in"
device = "net_af_packet2,iface={i}"

[[bond]]
name = "bond0"
members = ["m0", "m1"]
hash = "layer3+4"

[bond.lacp]
activity = "{activity}"
rate = "{rate}"

[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]

[management]
socket = "{s}"
{f}"#,
            c = cpus[0],
            w = cpus[1],
            t0 = self.vm.taps[0].name,
            t1 = self.vm.taps[1].name,
            i = self.in_if,
            s = self.scratch.file("ctl.sock").display(),
            f = self
                .state_file
                .as_ref()
                .map(|p| format!("state_file = \"{}\"\n", p.display()))
                .unwrap_or_default(),
        )
    }

    /// Starts fastlag; returns when it logged "fastlag running" (the start of its LACP
    /// clock), and that instant.
    fn start_fastlag(&mut self, activity: &str, rate: &str) -> Instant {
        let cfg = self.config(activity, rate);
        let check_file = self.scratch.file("check.toml");
        std::fs::write(&check_file, &cfg).unwrap();
        let check = fastlag()
            .arg("check-config")
            .arg(&check_file)
            .output()
            .unwrap();
        ensure!(
            self,
            check.status.success(),
            "the test's config does not pass check-config:\n{cfg}\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        self.fl = Some(Daemon::start(
            &self.scratch,
            &cfg,
            self.scratch.file("ctl.sock"),
        ));
        let up = wait_until(Duration::from_secs(30), || {
            let l = self.fl().log();
            l.contains("fastlag running") && l.contains("management socket ready")
        });
        ensure!(self, up, "fastlag did not start within 30 s");
        Instant::now()
    }

    fn fl(&self) -> &Daemon {
        self.fl.as_ref().expect("fastlag started")
    }

    fn stop_fastlag(&mut self) {
        if let Some(mut fl) = self.fl.take() {
            if fl.proc.running() {
                fl.proc.signal("TERM");
            }
            let gone = fl.proc.wait_timeout(Duration::from_secs(20));
            if gone.is_none() {
                self.fl = Some(fl);
                self.fail("fastlag did not exit within 20 s of SIGTERM");
            }
        }
    }

    fn diag(&mut self) -> String {
        let mut s = String::new();
        let (rc, text) = self
            .vm
            .sh("cat /proc/net/bonding/bond0; dmesg | tail -n 30");
        s += &format!("=== guest: /proc/net/bonding/bond0, dmesg (rc {rc})\n{text}\n");
        s += &self.vm.diag();
        if let Some(fl) = &self.fl {
            s += &format!("\n=== fastlag why\n{}", fl.text(&["why", "bond0"]));
            s += &format!(
                "=== fastlag show lacp\n{}",
                fl.text(&["show", "lacp", "bond0"])
            );
            s += &format!("=== fastlag log (last 60 lines)\n{}\n", tail(&fl.log(), 60));
        }
        s
    }

    fn fail(&mut self, msg: &str) -> ! {
        let d = self.diag();
        panic!("{msg}\n{d}")
    }

    fn linux(&mut self) -> LinuxBond {
        self.vm.bonding("bond0")
    }

    /// Polls both views until both members aggregate on both sides; ms since `t0` for
    /// (fastlag: both distributing in its status, Linux: both slaves in the active
    /// aggregator with actor and partner in sync, collecting, distributing).
    fn wait_converged(&mut self, t0: Instant, timeout: Duration) -> (Option<u128>, Option<u128>) {
        let (mut fl_ms, mut lx_ms) = (None, None);
        let deadline = t0 + timeout;
        while Instant::now() < deadline && (fl_ms.is_none() || lx_ms.is_none()) {
            if fl_ms.is_none() {
                let st = self.fl().status();
                if MEMBERS.iter().all(|m| distributing(&st, m)) {
                    fl_ms = Some(net::ms_since(t0));
                }
            }
            if lx_ms.is_none() && self.linux().aggregated().len() == 2 {
                lx_ms = Some(net::ms_since(t0));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (fl_ms, lx_ms)
    }

    /// Starts fastlag and asserts that both ends aggregate both links within `within`.
    fn converge(&mut self, name: &str, activity: &str, rate: &str, within: Duration) {
        let t0 = self.start_fastlag(activity, rate);
        let startup = (t0 - self.fl().started).as_millis();
        let (fl_ms, lx_ms) = self.wait_converged(t0, within);
        println!(
            "MEASURE {name}: fastlag up (\"fastlag running\") {startup} ms after spawn; from \
             then to all members distributing: fastlag status {} ms, Linux /proc/net/bonding \
             (both slaves in the active aggregator, in sync, collecting, distributing) {} ms \
             (guest polled over its serial console, ~20-80 ms per read under TCG)",
            fl_ms.map_or("never".into(), |v| v.to_string()),
            lx_ms.map_or("never".into(), |v| v.to_string()),
        );
        ensure!(
            self,
            fl_ms.is_some() && lx_ms.is_some(),
            "{name}: not aggregated on both sides within {within:?} of fastlag start \
             (fastlag {fl_ms:?} ms, Linux {lx_ms:?} ms)"
        );
    }

    /// Both sides' views of each other agree, member by member: fastlag's partner is the
    /// guest's actor and the guest's partner is fastlag's actor (system, key, port, state
    /// bits), both sides put both links into one aggregator, and nobody is churned.
    /// `ctl why` has no reason for either member.
    fn check_views(&mut self) {
        // Let the state bits of the last exchange reach both sides' views.
        let show = self.fl().json(&["show", "lacp", "bond0"]);
        let why = self.fl().json(&["why", "bond0"]);
        let lx = self.linux();
        ensure!(
            self,
            lx.active_ports == 2,
            "Linux's active aggregator has {} ports",
            lx.active_ports
        );
        let mut fl_systems = Vec::new();
        for (m, eth) in MEMBERS.iter().zip(SLAVES) {
            let f = lacp_member(&show, m);
            let s = lx.slave(eth).cloned().unwrap_or_default();
            let (fa, fp) = (&f["actor"], &f["partner"]);
            // fastlag's partner = Linux's actor.
            ensure!(
                self,
                fp["system"].as_str().map(str::to_lowercase) == Some(s.actor.system_mac.clone())
                    && fp["system_priority"] == s.actor.system_priority
                    && fp["key"] == s.actor.key
                    && fp["port"] == s.actor.port
                    && fp["port_priority"] == s.actor.port_priority,
                "{m}: fastlag's partner {fp} but Linux's {eth} actor is {:?}",
                s.actor
            );
            ensure!(
                self,
                fp["state"] == s.actor.state,
                "{m}: fastlag holds partner state {} but Linux's {eth} actor state is {}",
                fp["state"],
                s.actor.state
            );
            // Linux's partner = fastlag's actor.
            ensure!(
                self,
                fa["system"].as_str().map(str::to_lowercase) == Some(s.partner.system_mac.clone())
                    && fa["system_priority"] == s.partner.system_priority
                    && fa["key"] == s.partner.key
                    && fa["port"] == s.partner.port
                    && fa["port_priority"] == s.partner.port_priority,
                "Linux's {eth} holds partner {:?} but fastlag's {m} actor is {fa}",
                s.partner
            );
            ensure!(
                self,
                fa["state"] == s.partner.state,
                "Linux's {eth} holds partner state {} but fastlag's {m} actor state is {}",
                s.partner.state,
                fa["state"]
            );
            // Linux's churn machines stay "monitoring" until their 60 s churn detection
            // timer decides; "churned" or a churned count is the failure.
            ensure!(
                self,
                s.actor_churn_state != "churned"
                    && s.partner_churn_state != "churned"
                    && s.actor_churned_count == 0
                    && s.partner_churned_count == 0,
                "Linux {eth}: churn actor {:?} partner {:?}, churned counts {} {}",
                s.actor_churn_state,
                s.partner_churn_state,
                s.actor_churned_count,
                s.partner_churned_count
            );
            ensure!(
                self,
                f["actor_churn"] == "NO_CHURN" && f["partner_churn"] == "NO_CHURN",
                "{m}: fastlag churn actor {} partner {}",
                f["actor_churn"],
                f["partner_churn"]
            );
            let w = why_member(&why, m);
            ensure!(
                self,
                w["distributing"] == true && w["class"].is_null(),
                "{m}: ctl why {w}"
            );
            ensure!(
                self,
                s.aggregator_id == lx.active_aggregator,
                "Linux {eth} in aggregator {:?}, active {:?}",
                s.aggregator_id,
                lx.active_aggregator
            );
            fl_systems.push(fa["system"].clone());
        }
        ensure!(
            self,
            lx.active_partner_mac == fl_systems[0].as_str().unwrap_or("").to_lowercase(),
            "Linux's active aggregator partner {} but fastlag's system is {}",
            lx.active_partner_mac,
            fl_systems[0]
        );
        ensure!(
            self,
            fl_systems[0] == fl_systems[1],
            "fastlag shows two actor systems {fl_systems:?}"
        );
    }

    /// LACPDUs fastlag sends on each member during `window`.
    fn lacpdus_sent_during(&self, window: Duration) -> [u64; 2] {
        let before = self.fl().status();
        // An observation window: the quantity is a rate, there is nothing to poll for.
        std::thread::sleep(window);
        let after = self.fl().status();
        [0, 1].map(|i| {
            lacp_u64(&after, MEMBERS[i], "lacpdus_tx").saturating_sub(lacp_u64(
                &before,
                MEMBERS[i],
                "lacpdus_tx",
            ))
        })
    }

    /// Starts `count` pings every `interval_s` to every guest address from the sender.
    fn start_pings(&self, count: u32, interval_s: &str) -> Vec<(String, std::process::Child)> {
        (0..GUEST_ADDRS)
            .map(|i| {
                let ip = guest_ip(i);
                let c = self
                    .src
                    .cmd(&[
                        "ping",
                        "-q",
                        "-c",
                        &count.to_string(),
                        "-i",
                        interval_s,
                        "-w",
                        "15",
                        &ip,
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("ping");
                (ip, c)
            })
            .collect()
    }

    /// Waits for pings from [`Rig::start_pings`]: (address, requests sent, replies).
    fn finish_pings(procs: Vec<(String, std::process::Child)>) -> Vec<(String, u64, u64)> {
        procs
            .into_iter()
            .map(|(ip, c)| {
                let out = c.wait_with_output().map(|o| o.stdout).unwrap_or_default();
                let text = String::from_utf8_lossy(&out).into_owned();
                // "5 packets transmitted, 5 received, 0% packet loss, time 803ms"
                let line = text
                    .lines()
                    .find(|l| l.contains("transmitted"))
                    .unwrap_or("");
                let n = |word: &str| -> u64 {
                    line.split(',')
                        .find(|f| f.contains(word))
                        .and_then(|f| f.split_whitespace().next())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                let (sent, got) = (n("transmitted"), n("received"));
                (ip, sent, got)
            })
            .collect()
    }

    /// Pings every guest address from the sender (`count` each, concurrently); the
    /// addresses that lost replies.
    fn ping_all(&self, count: u32) -> Vec<String> {
        Rig::finish_pings(self.start_pings(count, "0.2"))
            .into_iter()
            .filter(|(_, sent, got)| *sent == 0 || sent != got)
            .map(|(ip, _, _)| ip)
            .collect()
    }

    /// Frame counters on both ends of both links: (fastlag sent = host tap tx, guest
    /// received = eth rx, guest sent = eth tx, fastlag got = host tap rx) per link.
    fn link_counters(&mut self) -> [[u64; 4]; 2] {
        [0, 1].map(|i| {
            let tap = self.vm.taps[i].name.clone();
            [
                net::if_counter(&tap, "tx_packets"),
                self.vm.if_counter(SLAVES[i], "rx_packets"),
                self.vm.if_counter(SLAVES[i], "tx_packets"),
                net::if_counter(&tap, "rx_packets"),
            ]
        })
    }
}

/// The guest's bond0 with `rate` and `active`. Its hash is layer2+3: the traffic is pings,
/// and Linux's layer3+4 hashes ICMP on the echo identifier, which each ping process picks
/// (one run put 81 of 83 replies on one slave); layer2+3 spreads the 16 source addresses
/// the same way every run.
fn bond(rate: &'static str, active: &'static str) -> BondConfig {
    BondConfig {
        lacp_rate: rate,
        lacp_active: active,
        xmit_hash_policy: "layer2+3",
        addresses: (0..GUEST_ADDRS)
            .map(|i| format!("{}/24", guest_ip(i)))
            .collect(),
        ..Default::default()
    }
}

fn state_of(v: &Value) -> u8 {
    v["state"].as_u64().unwrap_or(0) as u8
}

// ---------------------------------------------------------------------------------------
// Tests

/// Linux active with lacp_rate=fast, fastlag active/fast: both ends aggregate both links
/// within 5 s of fastlag start and agree on each other (show lacp / why against
/// /proc/net/bonding); we send about one LACPDU per second. Pings to 16 guest addresses
/// cross both members in both directions, counted on both ends of each link. A pulled
/// cable on link 1 takes it out on both sides and traffic goes on over link 0; plugged
/// back, it rejoins on both sides. On SIGTERM, the guest sees our final out-of-sync
/// LACPDU at once (its own timeout would be 3 s).
#[test]
fn linux_active_fast_traffic_failover_and_sigterm() {
    let mut rig = Rig::new("fast", &VmOpts::default());
    rig.vm.create_bond(&bond("fast", "on"));
    rig.converge(
        "linux_active_fast",
        "active",
        "fast",
        Duration::from_secs(5),
    );
    rig.check_views();
    let lx = rig.linux();
    ensure!(
        rig,
        lx.lacp_active == "on" && lx.lacp_rate == "fast",
        "Linux: LACP active {:?} rate {:?}",
        lx.lacp_active,
        lx.lacp_rate
    );
    let show = rig.fl().json(&["show", "lacp", "bond0"]);
    for (m, eth) in MEMBERS.iter().zip(SLAVES) {
        let p = state_of(&lacp_member(&show, m)["partner"]);
        let full = ACTIVITY | TIMEOUT | SYNC | COLLECTING | DISTRIBUTING;
        ensure!(
            rig,
            p & full == full,
            "{m}: partner state {p:#04x}: Linux is active, fast, in sync, collecting, \
             distributing"
        );
        let s = lx.slave(eth).unwrap().partner.state;
        ensure!(
            rig,
            s & full == full,
            "Linux {eth} sees our state {s:#04x}: we are active, fast, in sync, collecting, \
             distributing"
        );
    }
    let sent = rig.lacpdus_sent_during(Duration::from_secs(3));
    println!("MEASURE linux_active_fast: LACPDUs sent per member in 3 s: {sent:?}");
    ensure!(
        rig,
        sent.iter().all(|n| (2..=5).contains(n)),
        "expected 2..=5 LACPDUs per member in 3 s (fast periodic), sent {sent:?}"
    );

    // Traffic through the bond over both members, counted on both ends of each link.
    let before = rig.link_counters();
    let lost = rig.ping_all(5);
    let after = rig.link_counters();
    let d: Vec<[u64; 4]> = (0..2)
        .map(|i| [0, 1, 2, 3].map(|k| after[i][k] - before[i][k]))
        .collect();
    println!(
        "MEASURE linux_traffic: 16 addresses x 5 pings: frames fastlag sent (tap tx) / guest \
         received (eth rx) / guest sent (eth tx) / fastlag got (tap rx): link 0 {:?}, link 1 \
         {:?}",
        d[0], d[1]
    );
    ensure!(
        rig,
        lost.is_empty(),
        "pings through fastlag and the Linux bond lost replies from {lost:?}"
    );
    // 80 requests and 80 replies (plus a few LACPDUs each way).
    let (to_guest, from_guest) = (d[0][0] + d[1][0], d[0][2] + d[1][2]);
    for (i, l) in d.iter().enumerate() {
        ensure!(
            rig,
            l[0] >= to_guest / 10 && l[2] >= from_guest / 10,
            "link {i} carries too little: fastlag sent {} of {to_guest}, Linux sent {} of \
             {from_guest}",
            l[0],
            l[2]
        );
        // What one end sent, the other received (the counters are read at slightly
        // different times: one LACPDU of slack each way).
        ensure!(
            rig,
            l[0].abs_diff(l[1]) <= 2 && l[2].abs_diff(l[3]) <= 2,
            "link {i}: sent and received counts differ: {l:?}"
        );
    }
    ensure!(
        rig,
        to_guest >= 80 && from_guest >= 80,
        "fewer frames than pings: to the guest {to_guest}, from it {from_guest}"
    );

    // A pulled cable on link 1 (the guest NIC loses its link, the host tap its carrier),
    // under pings every 10 ms to each of the 16 addresses: what a flow loses, times the
    // interval, is its loss window (request and reply each on its own end's hash).
    let pings = rig.start_pings(300, "0.01");
    std::thread::sleep(Duration::from_millis(800));
    rig.vm.cable(1, false);
    let t_down = Instant::now();
    let (mut fl_ms, mut lx_ms, mut m0_stayed) = (None, None, true);
    while t_down.elapsed() < Duration::from_secs(5) && (fl_ms.is_none() || lx_ms.is_none()) {
        let st = rig.fl().status();
        m0_stayed &= distributing(&st, "m0");
        if fl_ms.is_none() && !distributing(&st, "m1") {
            fl_ms = Some(net::ms_since(t_down));
        }
        if lx_ms.is_none() {
            let lx = rig.linux();
            if lx.aggregated() == ["eth0"] && lx.active_ports == 1 {
                lx_ms = Some(net::ms_since(t_down));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "MEASURE linux_failover: cable pulled on link 1: fastlag m1 out of distribution after \
         {fl_ms:?} ms (status), Linux eth1 out of the aggregator after {lx_ms:?} ms \
         (/proc/net/bonding, miimon 100 ms)"
    );
    ensure!(
        rig,
        fl_ms.is_some() && lx_ms.is_some() && m0_stayed,
        "link 1 did not leave on both sides within 5 s (fastlag {fl_ms:?}, Linux {lx_ms:?}), \
         or m0 stopped distributing ({m0_stayed})"
    );
    let w = why_member(&rig.fl().json(&["why", "bond0"]), "m1");
    ensure!(rig, w["class"] == "link_down", "m1 why: {w}");
    let lx = rig.linux();
    let e1 = lx.slave("eth1").cloned().unwrap_or_default();
    ensure!(
        rig,
        e1.mii_status == "down",
        "Linux eth1 MII status {:?}",
        e1.mii_status
    );
    let pinged = Rig::finish_pings(pings);
    let window_ms = |(_, sent, got): &(String, u64, u64)| sent.saturating_sub(*got) * 10;
    let windows: Vec<u64> = pinged.iter().map(window_ms).collect();
    let hit = windows.iter().filter(|&&w| w > 0).count();
    println!(
        "MEASURE linux_failover: pings every 10 ms to 16 addresses across the cable pull: \
         {hit} flows lost replies, longest loss window {} ms (lost x 10 ms), per flow {windows:?}",
        windows.iter().max().unwrap_or(&0)
    );
    ensure!(
        rig,
        pinged.iter().all(|p| p.1 >= 250) && windows.iter().all(|&w| w < 1000),
        "loss window on a pulled cable too long or pings not sent: {pinged:?}"
    );
    let lost = rig.ping_all(3);
    ensure!(
        rig,
        lost.is_empty(),
        "with link 1 down, pings over link 0 lost replies from {lost:?}"
    );

    // Plugged back: rejoins on both sides.
    rig.vm.cable(1, true);
    let t_up = Instant::now();
    let (fl_ms, lx_ms) = rig.wait_converged(t_up, Duration::from_secs(10));
    println!(
        "MEASURE linux_rejoin: cable back on link 1 to both members aggregated again: fastlag \
         {fl_ms:?} ms, Linux {lx_ms:?} ms"
    );
    ensure!(
        rig,
        fl_ms.is_some() && lx_ms.is_some(),
        "link 1 did not rejoin on both sides within 10 s (fastlag {fl_ms:?}, Linux {lx_ms:?})"
    );
    // Both ends carry traffic on link 1 again: rounds of one ping per address until
    // each end sent at least 5 frames on it during a round.
    let mut carried = None;
    let mut last = ([0u64; 2], Vec::new());
    while t_up.elapsed() < Duration::from_secs(15) && carried.is_none() {
        let before = rig.link_counters();
        let lost = rig.ping_all(1);
        let after = rig.link_counters();
        let d = [after[1][0] - before[1][0], after[1][2] - before[1][2]];
        if d[0] >= 5 && d[1] >= 5 && lost.is_empty() {
            carried = Some(net::ms_since(t_up));
        }
        last = (d, lost);
    }
    println!(
        "MEASURE linux_rejoin: cable back on link 1 to traffic on it from both ends (rounds of \
         16 pings): {carried:?} ms"
    );
    ensure!(
        rig,
        carried.is_some(),
        "after the rejoin, link 1 carries {} frames to the guest and {} from it in a round of \
         pings; lost {:?}",
        last.0[0],
        last.0[1],
        last.1
    );
    rig.check_views();

    // SIGTERM: the guest must see our partner state out of sync on both links well
    // before its 3 s timeout.
    rig.fl().proc.signal("TERM");
    let t = Instant::now();
    let mut seen = None;
    while t.elapsed() < Duration::from_secs(5) && seen.is_none() {
        let lx = rig.linux();
        if lx.slaves.len() == 2 && lx.slaves.iter().all(|s| s.partner.state & SYNC == 0) {
            seen = Some((net::ms_since(t), lx));
        }
    }
    let ms = seen.as_ref().map(|s| s.0);
    println!(
        "MEASURE linux_sigterm: SIGTERM to the guest seeing our partner state out of sync on \
         both links: {ms:?} ms (Linux's own timeout: 3 s)"
    );
    ensure!(
        rig,
        ms.is_some_and(|ms| ms < 1500),
        "the guest did not see fastlag's final out-of-sync LACPDU within 1.5 s of SIGTERM \
         ({ms:?} ms)"
    );
    let lx = seen.unwrap().1;
    ensure!(
        rig,
        lx.aggregated().is_empty(),
        "the guest still aggregates {:?} after our final LACPDUs",
        lx.aggregated()
    );
    rig.stop_fastlag();
}

/// One guest, three pairings in turn: Linux active with lacp_rate=slow (fastlag sends no
/// periodic LACPDU for 3 s once settled), Linux passive (lacp_active=0) with fastlag
/// active (aggregates), and both passive (nothing aggregates; `why` says so on the
/// partner's own evidence when its LACPDU arrived).
#[test]
fn linux_slow_passive_and_both_passive() {
    let mut rig = Rig::new("pas", &VmOpts::default());

    // 1. Linux active, slow.
    rig.vm.create_bond(&bond("slow", "on"));
    rig.converge("linux_slow", "active", "fast", Duration::from_secs(5));
    rig.check_views();
    let lx = rig.linux();
    ensure!(rig, lx.lacp_rate == "slow", "Linux rate {:?}", lx.lacp_rate);
    let show = rig.fl().json(&["show", "lacp", "bond0"]);
    for (m, eth) in MEMBERS.iter().zip(SLAVES) {
        let p = state_of(&lacp_member(&show, m)["partner"]);
        ensure!(
            rig,
            p & ACTIVITY != 0 && p & TIMEOUT == 0,
            "{m}: partner state {p:#04x}: Linux is active with the long timeout"
        );
        let s = lx.slave(eth).unwrap().partner.state;
        ensure!(
            rig,
            s & TIMEOUT != 0,
            "Linux {eth} sees our state {s:#04x}: we ask for the short timeout"
        );
    }
    let settled = wait_until(Duration::from_secs(4), || {
        rig.lacpdus_sent_during(Duration::from_millis(1200)) == [0, 0]
    });
    let sent = rig.lacpdus_sent_during(Duration::from_secs(3));
    println!("MEASURE linux_slow: LACPDUs sent per member in 3 s after settling: {sent:?}");
    ensure!(
        rig,
        settled && sent == [0, 0],
        "with a slow Linux partner fastlag should not send every second; sent {sent:?} in 3 s"
    );
    ensure!(
        rig,
        rig.linux().aggregated().len() == 2,
        "Linux stopped aggregating with a slow-periodic fastlag"
    );
    rig.stop_fastlag();
    rig.vm.delete_bond();

    // 2. Linux passive, fastlag active.
    rig.vm.create_bond(&bond("fast", "off"));
    rig.converge("linux_passive", "active", "fast", Duration::from_secs(5));
    rig.check_views();
    let lx = rig.linux();
    ensure!(
        rig,
        lx.lacp_active == "off",
        "Linux LACP active {:?}",
        lx.lacp_active
    );
    let show = rig.fl().json(&["show", "lacp", "bond0"]);
    for (m, eth) in MEMBERS.iter().zip(SLAVES) {
        let p = state_of(&lacp_member(&show, m)["partner"]);
        ensure!(
            rig,
            p & ACTIVITY == 0 && p & SYNC != 0,
            "{m}: partner state {p:#04x}: Linux is passive and in sync"
        );
        let s = lx.slave(eth).unwrap().partner.state;
        ensure!(
            rig,
            s & ACTIVITY != 0,
            "Linux {eth} sees our state {s:#04x}: we are active"
        );
    }
    rig.stop_fastlag();
    rig.vm.delete_bond();

    // 3. Both passive. fastlag first, so that it hears what the guest's bond sends when
    // its slaves are added.
    let t0 = rig.start_fastlag("passive", "fast");
    rig.vm.create_bond(&bond("fast", "off"));
    // Nothing to poll for: the claim is that nothing happens. 5 s: aggregate wait (2 s)
    // and a short timeout (3 s) past anything either side sent at start.
    std::thread::sleep(Duration::from_secs(5));
    let st = rig.fl().status();
    let lx = rig.linux();
    let why = rig.fl().json(&["why", "bond0"]);
    let show = rig.fl().json(&["show", "lacp", "bond0"]);
    println!(
        "MEASURE linux_both_passive: {} ms after fastlag start: fastlag LACPDUs rx {:?} tx \
         {:?}; why m0: {}",
        net::ms_since(t0),
        MEMBERS.map(|m| lacp_u64(&st, m, "lacpdus_rx")),
        MEMBERS.map(|m| lacp_u64(&st, m, "lacpdus_tx")),
        why_member(&why, "m0")
    );
    for (m, eth) in MEMBERS.iter().zip(SLAVES) {
        ensure!(
            rig,
            !distributing(&st, m),
            "{m} distributes with both ends passive"
        );
        let w = why_member(&why, m);
        let heard = lacp_u64(&st, m, "lacpdus_rx") > 0;
        let reason = w["reason"].as_str().unwrap_or("").to_string();
        // With the guest's LACPDU (Activity = 0) in hand, both passive is a fact; without
        // one, it is a silent partner and we are passive.
        if heard {
            let p = state_of(&lacp_member(&show, m)["partner"]);
            ensure!(
                rig,
                p & ACTIVITY == 0
                    && w["class"] == "passive_passive"
                    && reason.contains("both ends passive"),
                "{m}: heard the passive guest (partner state {p:#04x}), why says {w}"
            );
        } else {
            ensure!(
                rig,
                w["class"] == "silent_partner" && reason.contains("we are passive"),
                "{m}: heard nothing from the passive guest, why says {w}"
            );
        }
        let s = lx.slave(eth).cloned().unwrap_or_default();
        ensure!(
            rig,
            s.partner.state & SYNC == 0 && s.actor.state & DISTRIBUTING == 0,
            "Linux {eth} aggregates with both ends passive: actor {:#04x} partner {:#04x}",
            s.actor.state,
            s.partner.state
        );
    }
    ensure!(
        rig,
        lx.aggregated().is_empty(),
        "Linux aggregates {:?} with both ends passive",
        lx.aggregated()
    );
    rig.stop_fastlag();
}

/// The seed's case: virtio-net without speed=/duplex= reports unknown speed and duplex,
/// and Linux 6.1's 802.3ad keeps such slaves down ("failed to get link speed/duplex") and
/// never sends, not even data. fastlag keeps sending its LACPDUs (the guest's NICs count
/// them arriving), and `why` says that nothing at all arrives and what to check on a Linux
/// partner.
#[test]
fn linux_without_speed_duplex_never_sends() {
    let opts = VmOpts {
        speed_duplex: false,
        ..Default::default()
    };
    let mut rig = Rig::new("seed", &opts);
    rig.vm.create_bond(&bond("fast", "on"));
    let t0 = rig.start_fastlag("active", "fast");
    let guest_rx0 = [0, 1].map(|i| rig.vm.if_counter(SLAVES[i], "rx_packets"));
    let guest_tx0 = [0, 1].map(|i| rig.vm.if_counter(SLAVES[i], "tx_packets"));
    // The claim is that the guest stays silent: observe for 4 s (past the 2 s aggregate
    // wait and our first periodic LACPDUs).
    std::thread::sleep(Duration::from_secs(4));
    let guest_rx = [0, 1].map(|i| rig.vm.if_counter(SLAVES[i], "rx_packets") - guest_rx0[i]);
    let guest_tx = [0, 1].map(|i| rig.vm.if_counter(SLAVES[i], "tx_packets") - guest_tx0[i]);
    let tap_rx = [0, 1].map(|i| net::if_counter(&rig.vm.taps[i].name, "rx_packets"));
    let st = rig.fl().status();
    let lx = rig.linux();
    let dmesg = rig.vm.dmesg();
    let why = rig.fl().json(&["why", "bond0"]);
    println!(
        "MEASURE linux_seed: {} ms after fastlag start: guest NICs received {guest_rx:?} \
         and sent {guest_tx:?} frames in 4 s; host taps received {tap_rx:?} since creation; \
         fastlag LACPDUs tx {:?} rx {:?}; why m0: {}",
        net::ms_since(t0),
        MEMBERS.map(|m| lacp_u64(&st, m, "lacpdus_tx")),
        MEMBERS.map(|m| lacp_u64(&st, m, "lacpdus_rx")),
        why_member(&why, "m0")["reason"]
    );
    ensure!(
        rig,
        dmesg.contains("failed to get link speed/duplex"),
        "the guest's bonding driver did not log \"failed to get link speed/duplex\""
    );
    for (i, (m, eth)) in MEMBERS.iter().zip(SLAVES).enumerate() {
        let s = lx.slave(eth).cloned().unwrap_or_default();
        ensure!(
            rig,
            s.speed == "Unknown" && s.duplex == "Unknown",
            "Linux {eth}: speed {:?} duplex {:?}",
            s.speed,
            s.duplex
        );
        ensure!(
            rig,
            guest_tx[i] == 0 && tap_rx[i] == 0,
            "Linux sent on {eth}: {} frames in 4 s, {} seen by the tap",
            guest_tx[i],
            tap_rx[i]
        );
        ensure!(
            rig,
            lacp_u64(&st, m, "lacpdus_tx") >= 1 && guest_rx[i] >= 1,
            "{m}: fastlag sent {} LACPDUs, the guest's {eth} received {} frames",
            lacp_u64(&st, m, "lacpdus_tx"),
            guest_rx[i]
        );
        ensure!(
            rig,
            lacp_u64(&st, m, "lacpdus_rx") == 0 && !distributing(&st, m),
            "{m}: {} LACPDUs received, distributing {}",
            lacp_u64(&st, m, "lacpdus_rx"),
            distributing(&st, m)
        );
        let w = why_member(&why, m);
        let r = w["reason"].as_str().unwrap_or("");
        ensure!(
            rig,
            w["class"] == "silent_partner"
                && r.contains("nothing at all arrives on this link")
                && r.contains("speed/duplex")
                && r.contains("ethtool"),
            "{m}: why {w}"
        );
    }
    rig.stop_fastlag();
}

/// Warm restart against the Linux bonding driver (docs/restart.md): `ctl restart --wait`,
/// then `kill -9` and an immediate start. Throughout each (the guest's /proc/net/bonding
/// read over and over), both slaves stay in the same active aggregator with fastlag in
/// sync, collecting and distributing, and no churn counter moves; the new process logs both
/// members restored.
#[test]
fn linux_warm_restart_keeps_the_aggregator_without_churn() {
    let mut rig = Rig::new("restart", &VmOpts::default());
    rig.vm.create_bond(&bond("fast", "on"));
    rig.state_file = Some(rig.scratch.file("handoff"));
    rig.converge("linux_restart", "active", "fast", Duration::from_secs(5));
    rig.check_views();
    let before = rig.linux();
    let agg = before.active_aggregator;
    let churned = |b: &LinuxBond| -> Vec<(u32, u32)> {
        b.slaves
            .iter()
            .map(|s| (s.actor_churned_count, s.partner_churned_count))
            .collect()
    };
    let churn0 = churned(&before);
    ensure!(rig, agg.is_some(), "no active aggregator in the guest");
    let state = rig.state_file.clone().unwrap();
    ensure!(
        rig,
        wait_until(Duration::from_secs(3), || state.exists()),
        "no handoff file"
    );
    // Samples the guest's view until `done` holds (and 1 s more); every sample must show
    // the same aggregator with both slaves in sync both ways and no churn. Returns when
    // `done` first held.
    let watch = |rig: &mut Rig, what: &str, done: &mut dyn FnMut(&mut Rig) -> bool| -> Duration {
        let t0 = Instant::now();
        let mut until: Option<Instant> = None;
        let mut samples = 0;
        let mut took = Duration::ZERO;
        while until.is_none_or(|u| Instant::now() < u) {
            if t0.elapsed() > Duration::from_secs(30) {
                rig.fail(&format!(
                    "{what}: the new process did not take over within 30 s"
                ));
            }
            let lx = rig.linux();
            samples += 1;
            ensure!(
                rig,
                lx.active_aggregator == agg && lx.aggregated().len() == 2,
                "{what}: the guest's aggregator changed or lost a slave {:?} after the \
                 restart began:\n{}",
                t0.elapsed(),
                lx.text
            );
            ensure!(
                rig,
                churned(&lx) == churn0,
                "{what}: churn counters moved: {churn0:?} -> {:?}",
                churned(&lx)
            );
            if until.is_none() && done(rig) {
                until = Some(Instant::now() + Duration::from_secs(1));
                took = t0.elapsed();
            }
        }
        println!(
            "MEASURE {what}: Linux kept aggregator {agg:?} with both slaves in sync through \
             the restart ({samples} reads of /proc/net/bonding over {} ms)",
            t0.elapsed().as_millis()
        );
        took
    };
    let restored = |log: &str| {
        MEMBERS.iter().all(|m| {
            log.lines()
                .any(|l| l.contains("LACP state restored") && l.contains(&format!("member={m}")))
        })
    };

    // Planned restart.
    let mut ctl = fastlag()
        .arg("ctl")
        .arg("--socket")
        .arg(rig.scratch.file("ctl.sock"))
        .args(["restart", "--wait"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let took = watch(&mut rig, "linux ctl restart", &mut |rig: &mut Rig| {
        matches!(ctl.try_wait(), Ok(Some(_))) && restored(&rig.fl().log())
    });
    println!(
        "MEASURE linux ctl restart: from the request to both members restored and `ctl \
         restart --wait` returned: {} ms (guest reads in between)",
        took.as_millis()
    );
    ensure!(
        rig,
        !rig.fl().log().contains("restore refused"),
        "a member was refused"
    );

    // Crash and an immediate start.
    {
        let fl = rig.fl.as_mut().unwrap();
        fl.proc.signal("KILL");
        fl.proc.wait_timeout(Duration::from_secs(5));
    }
    let cfg = rig.config("active", "fast");
    rig.fl = Some(Daemon::start(
        &rig.scratch,
        &cfg,
        rig.scratch.file("ctl.sock"),
    ));
    let took = watch(&mut rig, "linux kill -9", &mut |rig: &mut Rig| {
        restored(&rig.fl().log())
    });
    println!(
        "MEASURE linux kill -9: from the new spawn to both members restored: {} ms",
        took.as_millis()
    );
    ensure!(
        rig,
        !rig.fl().log().contains("restore refused"),
        "a member was refused"
    );
    rig.check_views();
    rig.stop_fastlag();
}
