//! Warm restart and crash recovery against Open vSwitch (docs/restart.md), on the rig of
//! tests/ovs_interop.rs (testkit::net: OVS in its namespace bonding vb0/vb1 with the fast
//! timeout, fastlag bonding the other ends with af_packet, end hosts behind both):
//!
//! * `ctl restart` under traffic: OVS's `lacp/show-stats` counts no new "Link Expired" or
//!   "Link Defaulted", both its members stay "current attached" throughout, the new process
//!   logs each member restored; the gap in forwarded datagrams is measured.
//! * The same after `kill -9` and an immediate restart (the crash-recovery file).
//! * A corrupted handoff file: refused with the reason in the log and in `ctl show events`,
//!   a normal start.
//!
//! The numbers are printed on lines starting with "MEASURE" (`--no-capture` shows them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Lan, Netns, Ovs, OvsLacp, Veth, UDPFLOW_PY};
use testkit::*;

const MEMBERS: [&str; 2] = ["m0", "m1"];
const OVS_MEMBERS: [&str; 2] = ["vb0", "vb1"];
/// OVS's view of our state bits once aggregated.
const OVS_SEES_US: &str = "activity timeout aggregation synchronized collecting distributing";
const SRC_IP: &str = "10.77.0.1";
const DST_IP: &str = "10.77.0.2";
const FWD_PORT: u16 = 5000;
const REV_PORT: u16 = 5001;
const FLOW_BASE: u16 = 40000;
const FLOWS: u16 = 16;
/// Datagrams per second per direction.
const RATE: u32 = 1000;

/// OVS, end hosts, fastlag with a management socket and a handoff state file in the
/// scratch directory. Fields drop in order: fastlag first.
struct Rig {
    fl: Option<Fastlag>,
    ovs: Ovs,
    lan: Lan,
    _links: Vec<Veth>,
    _peer: Netns,
    fl_if: [String; 2],
    sock: PathBuf,
    state: PathBuf,
    script: PathBuf,
    scratch: Scratch,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let scratch = Scratch::new(&format!("restart-{tag}"));
        let peer = Netns::new("rst");
        let fl_if = [net::ifname("m0"), net::ifname("m1")];
        let links = net::member_links(&peer, &fl_if, &OVS_MEMBERS);
        let ovs = Ovs::start(&peer, &scratch.file("ovs"));
        ovs.netdev_bridge("br0");
        ovs.add_bond(
            "br0",
            "bond0",
            &OVS_MEMBERS,
            &[
                "lacp=active",
                "other_config:lacp-time=fast",
                "bond_mode=balance-tcp",
                "other_config:bond-rebalance-interval=0",
            ],
        );
        let lan = Lan::new("r", &peer, &ovs, "br0", SRC_IP, DST_IP);
        let script = scratch.file("udpflow.py");
        std::fs::write(&script, UDPFLOW_PY).unwrap();
        Rig {
            fl: None,
            ovs,
            lan,
            _links: links,
            _peer: peer,
            fl_if,
            sock: scratch.file("fl.sock"),
            state: scratch.file("handoff"),
            script,
            scratch,
        }
    }

    /// The OVS rig's config with our management section; `bond_lacp`: a `[bond.lacp]`
    /// table's lines for bond0.
    fn config(&self, bond_lacp: &str) -> String {
        let base = net::ovs_rig_config(&self.fl_if, Some(&self.lan));
        let base = if bond_lacp.is_empty() {
            base
        } else {
            base.replacen(
                "hash = \"layer3+4\"\n",
                &format!("hash = \"layer3+4\"\n\n[bond.lacp]\n{bond_lacp}\n"),
                1,
            )
        };
        format!(
            "{base}\n[management]\nsocket = \"{}\"\nstate_file = \"{}\"\nrestart = \"exec\"\n",
            self.sock.display(),
            self.state.display()
        )
    }

    fn start(&mut self) {
        self.start_with("");
    }

    fn start_with(&mut self, bond_lacp: &str) {
        let cfg = self.config(bond_lacp);
        self.fl = Some(Fastlag::start(&self.scratch, &cfg));
    }

    /// `kill -9`, waiting for the process to be gone.
    fn kill_9(&mut self) {
        let died = {
            let fl = self.fl.as_mut().expect("fastlag started");
            fl.child.signal("KILL");
            fl.child.wait_timeout(Duration::from_secs(5)).is_some()
        };
        if !died {
            self.fail("fastlag did not die of SIGKILL");
        }
        // Its last status file says "distributing": only the next process's counts.
        let _ = std::fs::remove_file(&self.fl().status);
    }

    fn fl(&self) -> &Fastlag {
        self.fl.as_ref().expect("fastlag started")
    }

    fn lacp(&self) -> OvsLacp {
        self.ovs.lacp("bond0").unwrap_or_default()
    }

    fn ovs_current(&self) -> bool {
        let l = self.lacp();
        OVS_MEMBERS.iter().all(|n| {
            l.member(n).is_some_and(|m| {
                m.status == "current attached" && m.partner_state.contains(OVS_SEES_US)
            })
        })
    }

    fn fl_distributing(&self) -> bool {
        MEMBERS.iter().all(|m| {
            self.fl()
                .member("bond0", m)
                .is_some_and(|v| v["distributing"] == true)
        })
    }

    /// OVS's "Link Expired" and "Link Defaulted" counters, summed over its members.
    fn expired_defaulted(&self) -> (u64, u64) {
        let stats = self.ovs.appctl(&["lacp/show-stats", "bond0"]);
        let sum = |key: &str| -> u64 {
            stats
                .lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .sum()
        };
        (sum("Link Expired:"), sum("Link Defaulted:"))
    }

    fn diag(&self) -> String {
        let mut s = String::new();
        for c in [&["lacp/show", "bond0"][..], &["lacp/show-stats", "bond0"]] {
            s += &format!(
                "\n=== ovs-appctl {}\n{}\n",
                c.join(" "),
                self.ovs.try_appctl(c).unwrap_or_else(|e| e)
            );
        }
        s += &self.ovs.logs();
        if let Some(fl) = &self.fl {
            s += &format!("=== fastlag log (last 80 lines)\n{}\n", tail(&fl.log(), 80));
        }
        s
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.diag())
    }

    /// Both sides aggregate both members, OVS hashes over both; the handoff file exists.
    fn converge(&mut self) {
        let ok = wait_until(Duration::from_secs(20), || {
            self.fl_distributing() && self.ovs_current()
        });
        if !ok {
            self.fail("not aggregated on both sides within 20 s");
        }
        if !wait_until(Duration::from_secs(3), || {
            self.ovs.members_enabled("bond0", &OVS_MEMBERS)
        }) {
            self.fail("OVS's bond did not enable both members");
        }
        self.ovs.rehash("bond0");
        if !wait_until(Duration::from_secs(3), || self.state.exists()) {
            self.fail("no handoff state file while running");
        }
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        fastlag()
            .arg("ctl")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("fastlag ctl")
    }

    fn receiver(&self, ns: &Netns, ip: &str, port: u16, name: &str) -> (ChildGuard, PathBuf) {
        let out = self.scratch.file(&format!("recv-{name}.txt"));
        let cmd = ns.cmd_dies_with_parent(&[
            python(),
            &self.script.display().to_string(),
            "recv",
            ip,
            &port.to_string(),
            &out.display().to_string(),
        ]);
        let proc = ChildGuard::spawn(
            "udp receiver",
            cmd,
            &self.scratch.file(&format!("recv-{name}.log")),
        );
        let ready = PathBuf::from(format!("{}.ready", out.display()));
        if !wait_until(Duration::from_secs(10), || ready.exists()) {
            self.fail("UDP receiver did not start");
        }
        (proc, out)
    }

    fn sender(
        &self,
        ns: &Netns,
        from: &str,
        to: &str,
        port: u16,
        secs: f64,
        name: &str,
    ) -> ChildGuard {
        let cmd = ns.cmd_dies_with_parent(&[
            python(),
            &self.script.display().to_string(),
            "send",
            from,
            to,
            &port.to_string(),
            &FLOW_BASE.to_string(),
            &FLOWS.to_string(),
            &RATE.to_string(),
            &secs.to_string(),
            "1",
        ]);
        spawn_logged(
            "udp sender",
            cmd,
            &self.scratch.file(&format!("send-{name}.json")),
            &self.scratch.file(&format!("send-{name}.log")),
        )
    }

    /// Traffic both ways for `secs` while `during` runs (started 1.5 s in); OVS's LACP
    /// view is sampled throughout. Returns, per direction, (sent, received, longest gap in
    /// the send times of delivered datagrams, ms), and the samples where an OVS member was
    /// not current attached.
    fn under_traffic(
        &mut self,
        secs: f64,
        during: impl FnOnce(&mut Rig),
    ) -> (Vec<Flow>, Vec<String>) {
        let (fr, fwd_out) = self.receiver(&self.lan.dst, DST_IP, FWD_PORT, "fwd");
        let (rr, rev_out) = self.receiver(&self.lan.src, SRC_IP, REV_PORT, "rev");
        let mut fs = self.sender(&self.lan.src, SRC_IP, DST_IP, FWD_PORT, secs, "fwd");
        let mut rs = self.sender(&self.lan.dst, DST_IP, SRC_IP, REV_PORT, secs, "rev");
        let t0 = Instant::now();
        let mut bad = Vec::new();
        let sample = |rig: &Rig, bad: &mut Vec<String>| {
            let l = rig.lacp();
            for n in OVS_MEMBERS {
                let st = l.member(n).map(|m| m.status.clone()).unwrap_or_default();
                if st != "current attached" {
                    bad.push(format!("{:?}: {n} {st:?}", t0.elapsed()));
                }
            }
        };
        while t0.elapsed() < Duration::from_millis(1500) {
            sample(self, &mut bad);
            std::thread::sleep(Duration::from_millis(20));
        }
        during(self);
        while t0.elapsed() < Duration::from_secs_f64(secs) {
            sample(self, &mut bad);
            std::thread::sleep(Duration::from_millis(20));
        }
        for s in [&mut fs, &mut rs] {
            if s.wait_timeout(Duration::from_secs(10)).is_none() {
                self.fail("UDP sender did not finish");
            }
        }
        // Datagrams still in flight.
        std::thread::sleep(Duration::from_millis(500));
        drop((fr, rr));
        let flows = [("fwd", fwd_out), ("rev", rev_out)]
            .into_iter()
            .map(|(name, out)| {
                let sent: Value = serde_json::from_str(
                    std::fs::read_to_string(self.scratch.file(&format!("send-{name}.json")))
                        .unwrap_or_default()
                        .trim(),
                )
                .unwrap_or(Value::Null);
                Flow::read(name, &sent, &out)
            })
            .collect();
        (flows, bad)
    }
}

/// One direction's datagrams.
#[derive(Debug)]
struct Flow {
    name: &'static str,
    sent: u64,
    received: u64,
    /// Longest time between the send times of consecutive delivered datagrams (ms).
    gap_ms: f64,
}

impl Flow {
    fn read(name: &'static str, sent: &Value, out: &PathBuf) -> Flow {
        let sent_total: u64 = sent["sent"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        let text = std::fs::read_to_string(out).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        let mut ts: Vec<f64> = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() != 5 {
                continue;
            }
            if seen.insert((f[1].to_string(), f[2].to_string())) {
                if let Ok(t) = f[3].parse::<f64>() {
                    ts.push(t);
                }
            }
        }
        ts.sort_by(f64::total_cmp);
        let gap_ms = ts
            .windows(2)
            .map(|w| (w[1] - w[0]) * 1000.0)
            .fold(0.0, f64::max);
        Flow {
            name,
            sent: sent_total,
            received: seen.len() as u64,
            gap_ms,
        }
    }
}

/// The checks both restart tests share, once the new process runs.
fn check_restart(
    rig: &Rig,
    what: &str,
    before: (u64, u64),
    flows: &[Flow],
    bad: &[String],
    max_gap_ms: f64,
) {
    let after = rig.expired_defaulted();
    for f in flows {
        println!(
            "MEASURE {what}: {} {} of {} datagrams delivered ({} lost), longest gap in \
             forwarded datagrams {:.0} ms ({RATE}/s)",
            f.name,
            f.received,
            f.sent,
            f.sent.saturating_sub(f.received),
            f.gap_ms
        );
    }
    if after != before {
        rig.fail(&format!(
            "{what}: OVS counted Link Expired/Defaulted {before:?} before, {after:?} after"
        ));
    }
    if !bad.is_empty() {
        rig.fail(&format!(
            "{what}: OVS members not current attached at some point: {bad:?}"
        ));
    }
    let log = rig.fl().log();
    for l in log
        .lines()
        .filter(|l| l.contains("handoff") || l.contains("restore") || l.contains("planned restart"))
    {
        println!("LOG {what}: {l}");
    }
    for m in MEMBERS {
        let restored = log
            .lines()
            .any(|l| l.contains("LACP state restored") && l.contains(&format!("member={m}")));
        if !restored {
            rig.fail(&format!("{what}: the new process did not log {m} restored"));
        }
    }
    if log.contains("LACP state restore refused") {
        rig.fail(&format!("{what}: a restore was refused"));
    }
    for f in flows {
        if f.sent == 0 || f.received == 0 {
            rig.fail(&format!("{what}: no traffic {}: {f:?}", f.name));
        }
        if f.gap_ms > max_gap_ms {
            rig.fail(&format!(
                "{what}: {} forwarding gap {:.0} ms, over {max_gap_ms} ms",
                f.name, f.gap_ms
            ));
        }
    }
    // `ctl show events` shows each member's outcome.
    let ev = rig.ctl(&["show", "events", "--json"]);
    let text = String::from_utf8_lossy(&ev.stdout);
    for m in MEMBERS {
        let shown = text.lines().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|e| {
                e["machine"] == "Restore"
                    && e["member"] == m
                    && e["to"].as_str().is_some_and(|t| t.starts_with("restored"))
            })
        });
        if !shown {
            rig.fail(&format!(
                "{what}: `ctl show events` shows no Restore event for {m}:\n{text}"
            ));
        }
    }
}

/// `ctl restart --wait` under traffic: the process writes the handoff file, sends no
/// out-of-sync LACPDU, execs itself; the new one restores both members. OVS notices
/// nothing. The first start, from a corrupted handoff file, refuses it with the reason and
/// starts normally.
#[test]
fn ovs_ctl_restart_under_traffic_keeps_the_lag_in_sync() {
    let mut rig = Rig::new("ctl");
    std::fs::write(
        &rig.state,
        "fastlag-handoff 1 0000000000000000\n{\"not\": \"it\"}\n",
    )
    .unwrap();
    rig.start();
    rig.converge();
    let log = rig.fl().log();
    if !log.contains("handoff state file") || !log.contains("corrupted: checksum mismatch") {
        rig.fail("the corrupted handoff file was not refused with its reason in the log");
    }
    let ev = String::from_utf8_lossy(&rig.ctl(&["show", "events", "--json"]).stdout).to_string();
    if !ev.contains("\"machine\":\"Restore\"") || !ev.contains("corrupted") {
        rig.fail(&format!("`ctl show events` shows no refusal:\n{ev}"));
    }
    let before = rig.expired_defaulted();
    let pid = rig.fl().child.pid();
    let mut answered = String::new();
    let (flows, bad) = rig.under_traffic(6.0, |rig| {
        let out = rig.ctl(&["--json", "restart", "--wait"]);
        answered = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            rig.fail(&format!(
                "ctl restart failed: {answered}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // The old process is gone (the new one answered): its last status file must not count.
        let _ = std::fs::remove_file(&rig.fl().status);
        if !wait_until(Duration::from_secs(10), || rig.fl_distributing()) {
            rig.fail("the new process does not distribute on both members");
        }
    });
    let v: Value = serde_json::from_str(answered.trim()).unwrap_or(Value::Null);
    println!(
        "MEASURE ctl restart: the new process answered on the socket {} ms after the request",
        v["answered_after_ms"]
    );
    let log = rig.fl().log();
    if rig.fl().child.pid() != pid || log.matches("fastlag running").count() != 2 {
        rig.fail("not one process exec'd once");
    }
    if log.contains("sent final out-of-sync LACPDUs") {
        rig.fail("the planned restart sent out-of-sync LACPDUs");
    }
    check_restart(&rig, "ctl restart", before, &flows, &bad, 2000.0);
}

/// `kill -9` and an immediate restart: the file the control thread kept current lets the
/// new process restore both members; OVS notices nothing. Then `kill -9` with m1's link
/// down until after the start: m1 is refused (link down) and rejoins normally, m0 is
/// restored. Then `kill -9` and a start with another bond configuration: the file is
/// refused for the bond (config digest), a normal start. A normal stop (SIGTERM) removes
/// the file.
#[test]
fn ovs_kill_9_and_immediate_restart_keep_the_lag_in_sync() {
    let mut rig = Rig::new("kill");
    rig.start();
    rig.converge();
    let before = rig.expired_defaulted();
    let (flows, bad) = rig.under_traffic(6.0, |rig| {
        rig.kill_9();
        let t = Instant::now();
        rig.start();
        if !wait_until(Duration::from_secs(10), || rig.fl_distributing()) {
            rig.fail("the new process does not distribute on both members");
        }
        println!(
            "MEASURE kill -9: the new process distributes on both members {} ms after its spawn",
            t.elapsed().as_millis()
        );
    });
    check_restart(&rig, "kill -9", before, &flows, &bad, 2500.0);

    // A member whose link went down during the gap: refused for it (normal start once the
    // link is back), the other restored.
    rig.kill_9();
    net::set_link(None, &rig.fl_if[1], false).unwrap();
    rig.start();
    let log_has = |rig: &Rig, what: &str, m: &str| {
        rig.fl()
            .log()
            .lines()
            .any(|l| l.contains(what) && l.contains(&format!("member={m}")))
    };
    let seen = wait_until(Duration::from_secs(10), || {
        log_has(&rig, "LACP state restored", "m0")
            && log_has(&rig, "LACP state restore refused", "m1")
    });
    if !seen || !rig.fl().log().contains("the link was down") {
        rig.fail("m0 not restored, or m1 (link down) not refused with the reason");
    }
    net::set_link(None, &rig.fl_if[1], true).unwrap();
    if !wait_until(Duration::from_secs(15), || {
        rig.fl_distributing() && rig.ovs_current()
    }) {
        rig.fail("m1 did not rejoin normally after its link came back");
    }

    // Another configuration of the bond: refused, normal start.
    rig.kill_9();
    rig.start_with("system_priority = 100");
    let refused = wait_until(Duration::from_secs(10), || {
        rig.fl()
            .log()
            .contains("handoff state refused for this bond: its configuration differs")
    });
    if !refused {
        rig.fail("a handoff file from another configuration was not refused");
    }
    if !wait_until(Duration::from_secs(15), || {
        rig.fl_distributing() && rig.ovs_current()
    }) {
        rig.fail("no normal start after the refused handoff file");
    }
    if rig.fl().log().contains("LACP state restored") {
        rig.fail("state restored from another configuration's handoff file");
    }
    // A normal stop tells the partner we leave: the state must not be used again.
    let (_, _, log) = rig.fl.take().expect("fastlag").stop();
    if rig.state.exists() || !log.contains("handoff state file removed (normal stop)") {
        rig.fail(&format!(
            "the handoff file was not removed at a normal stop:\n{}",
            tail(&log, 20)
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Two bonds of one process negotiating over in-process ring links (no peer needed): a
// restart restarts both ends at once.

fn ring_config(scratch: &Scratch) -> String {
    format!(
        "{}state_file = \"{}\"\nrestart = \"exit\"\n",
        two_ring_bonds_config(&scratch.file("fl.sock")),
        scratch.file("run/handoff").display()
    )
}

const RING_MEMBERS: [(&str, &str); 4] = [
    ("bondA", "a0"),
    ("bondA", "a1"),
    ("bondB", "b0"),
    ("bondB", "b1"),
];

fn all_distributing(fl: &Fastlag) -> bool {
    RING_MEMBERS
        .iter()
        .all(|(b, m)| fl.member(b, m).is_some_and(|v| v["distributing"] == true))
}

/// SIGUSR2 with `restart = "exit"`: exit status 75, the handoff file written (mode 0600, in a
/// directory fastlag created) with every member in sync and no out-of-sync LACPDU sent; the
/// next process restores all four members and the other side of each link confirms. After `kill -9` and a wait longer
/// than the partners' 3 s timeout, the file is refused as stale with the reason logged, and
/// the start is a normal one.
#[test]
fn sigusr2_exit_mode_restores_and_a_stale_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("restart-ring");
    let state = scratch.file("run/handoff");
    let cfg = ring_config(&scratch);
    let mut fl = Fastlag::start(&scratch, &cfg);
    assert!(
        wait_until(Duration::from_secs(20), || all_distributing(&fl)),
        "not distributing:\n{}",
        fl.log()
    );
    assert!(wait_until(Duration::from_secs(3), || state.exists()));
    fl.child.signal("USR2");
    let st = fl
        .child
        .wait_timeout(Duration::from_secs(20))
        .expect("fastlag exits after SIGUSR2");
    let log = fl.log();
    assert_eq!(st.code(), Some(75), "exit status {st:?}:\n{log}");
    assert!(
        log.contains("SIGUSR2: planned restart")
            && log.contains("planned restart: handoff state written")
            && log.contains("members=4 in_sync=4"),
        "{log}"
    );
    assert!(!log.contains("sent final out-of-sync LACPDUs"), "{log}");
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "handoff file mode {mode:o}");

    // The service manager's start.
    let _ = std::fs::remove_file(&fl.status);
    let mut fl = Fastlag::start(&scratch, &cfg);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = fl.log();
            RING_MEMBERS.iter().all(|(_, m)| {
                log.lines().any(|l| {
                    l.contains("LACP state restore confirmed") && l.contains(&format!("member={m}"))
                })
            })
        }),
        "not every member restored and confirmed:\n{}",
        fl.log()
    );
    assert!(wait_until(Duration::from_secs(5), || all_distributing(&fl)));
    assert!(!fl.log().contains("restore refused"), "{}", fl.log());

    // Crash, then a start after the partners' timeout.
    fl.child.signal("KILL");
    fl.child
        .wait_timeout(Duration::from_secs(5))
        .expect("killed");
    assert!(state.exists());
    std::thread::sleep(Duration::from_millis(3200));
    let _ = std::fs::remove_file(&fl.status);
    let fl = Fastlag::start(&scratch, &cfg);
    assert!(
        wait_until(Duration::from_secs(15), || all_distributing(&fl)),
        "no normal start:\n{}",
        fl.log()
    );
    let log = fl.log();
    assert!(
        log.contains("handoff state file") && log.contains(": stale: written"),
        "the stale file was not refused with its reason:\n{log}"
    );
    assert!(!log.contains("LACP state restored"), "{log}");
    let (ok, _, _) = fl.stop();
    assert!(ok);
}

/// Under a service manager (`NOTIFY_SOCKET`, as the shipped unit's Type=notify), a planned
/// restart in exec mode is a reload to it: RELOADING=1, then READY=1 from the same PID once
/// the new process runs; no STOPPING=1. All four members are restored. Before that, a
/// restart while the config file does not validate is refused (naming the key) and nothing
/// changes.
#[test]
fn exec_restart_under_a_service_manager_is_a_reload() {
    use std::os::unix::net::UnixDatagram;
    use std::sync::{Arc, Mutex};
    let scratch = Scratch::new("restart-notify");
    let notify = scratch.file("notify.sock");
    let listener = UnixDatagram::bind(&notify).expect("bind the notify socket");
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let got = got.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = listener.recv(&mut b) {
                got.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&b[..n]).into_owned());
            }
        });
    }
    let count = |what: &str| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| m.lines().any(|l| l == what))
            .count()
    };
    let cfg_text = ring_config(&scratch).replace("restart = \"exit\"", "restart = \"exec\"");
    let cfg = scratch.file("fastlag.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let log = scratch.file("fastlag.log");
    let mut cmd = fastlag();
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify);
    let mut proc = ChildGuard::spawn("fastlag", cmd, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || count("READY=1") == 1),
        "no READY=1:\n{}",
        read_log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            read_log().matches("member distributing").count() == 4
        }),
        "not every member distributing:\n{}",
        read_log()
    );
    assert!(wait_until(Duration::from_secs(3), || scratch
        .file("run/handoff")
        .exists()));
    let pid = proc.pid();
    let ctl = |args: &[&str]| {
        fastlag()
            .arg("ctl")
            .arg("--socket")
            .arg(scratch.file("fl.sock"))
            .args(args)
            .output()
            .unwrap()
    };
    // A config file the new process could not start from: refused, nothing changes.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good.replace("memory_mb = 256", "memory_mb = \"lots\""),
    )
    .unwrap();
    let refused = ctl(&["restart"]);
    let msg = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(
        !refused.status.success() && msg.contains("does not validate") && msg.contains("memory_mb"),
        "a restart with a broken config file must be refused naming the key: {msg}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        proc.running() && count("RELOADING=1") == 0,
        "{}",
        read_log()
    );
    std::fs::write(&cfg, good).unwrap();
    let out = ctl(&["restart", "--wait"]);
    assert!(
        out.status.success(),
        "ctl restart: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(10), || count("READY=1") == 2),
        "no second READY=1 after the exec: {:?}\n{}",
        got.lock().unwrap(),
        read_log()
    );
    let msgs = got.lock().unwrap().clone();
    let reloading = msgs
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"));
    let second_ready = msgs.iter().rposition(|m| m.lines().any(|l| l == "READY=1"));
    assert!(
        reloading.is_some() && reloading < second_ready,
        "want RELOADING=1 before the second READY=1: {msgs:?}"
    );
    assert_eq!(count("STOPPING=1"), 0, "{msgs:?}");
    assert!(proc.running() && proc.pid() == pid);
    assert!(
        wait_until(Duration::from_secs(10), || {
            read_log().matches("LACP state restore confirmed").count() == 4
        }),
        "not every member restored and confirmed:\n{}",
        read_log()
    );
    proc.signal("TERM");
    assert!(proc
        .wait_timeout(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    assert_eq!(count("STOPPING=1"), 1);
}
