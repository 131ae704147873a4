//! Interop and behaviour against Open vSwitch as an independent LACP peer: real processes,
//! real kernels in between. OVS (userspace datapath) runs in its own network namespace and
//! bonds vb0/vb1; fastlag bonds the other ends of those veth pairs with af_packet.
//!
//! ```text
//!  ns src            root ns (fastlag)                 ns ovs (OVS br0)             ns dst
//!  eth0 10.77.0.1 -- fl<pid>s0 [in] =xconnect= bond0 [m0] fl<pid>m0 -- vb0 \
//!                                                    [m1] fl<pid>m1 -- vb1 -bond0- br0 - vd0 -- eth0 10.77.0.2
//! ```
//!
//! The numbers the tests measure (convergence time, loss windows) are printed on lines
//! starting with "MEASURE"; run with `--no-capture` (nextest) to see them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Lan, Netns, Ovs, OvsLacp, TcEgressDrop, Veth, UDPFLOW_PY};
use testkit::*;

/// Both members of the bond, fastlag's port names and OVS's interfaces on the same links.
const MEMBERS: [&str; 2] = ["m0", "m1"];
const OVS_MEMBERS: [&str; 2] = ["vb0", "vb1"];
/// What OVS must show as the partner state (fastlag: active, fast, aggregating, in sync,
/// collecting and distributing).
const OVS_SEES_US: &str = "activity timeout aggregation synchronized collecting distributing";

const SRC_IP: &str = "10.77.0.1";
const DST_IP: &str = "10.77.0.2";
/// UDP ports: forward stream to DST_IP:FWD_PORT, reverse stream to SRC_IP:REV_PORT; the
/// flows are told apart by their source ports, FLOW_BASE + flow.
const FWD_PORT: u16 = 5000;
const REV_PORT: u16 = 5001;
const FLOW_BASE: u16 = 40000;
const FLOWS: u16 = 64;

// ---------------------------------------------------------------------------------------
// fastlag

/// The fastlag process with its status, report and log files.
struct Fastlag {
    proc: ChildGuard,
    log: PathBuf,
    status: PathBuf,
    report: PathBuf,
    /// When the process was spawned.
    started: Instant,
}

impl Fastlag {
    fn start(scratch: &Scratch, config: &str) -> Fastlag {
        let cfg = scratch.file("fastlag.toml");
        std::fs::write(&cfg, config).unwrap();
        let check = fastlag().arg("check-config").arg(&cfg).output().unwrap();
        assert!(
            check.status.success(),
            "the test's config does not pass check-config:\n{config}\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let (log, status, report) = (
            scratch.file("fastlag.log"),
            scratch.file("status.json"),
            scratch.file("report.json"),
        );
        // setpriv: killed with the test process, even when the harness SIGKILLs that.
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
        let proc = ChildGuard::spawn("fastlag", cmd, &log);
        Fastlag {
            proc,
            log,
            status,
            report,
            started,
        }
    }

    fn status(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.status).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The log so far, without the terminal colour codes tracing writes even to a file.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A member in a status snapshot.
fn member<'a>(st: &'a Value, name: &str) -> Option<&'a Value> {
    st["bonds"][0]["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

fn distributing(st: &Value, name: &str) -> bool {
    member(st, name).is_some_and(|m| m["distributing"] == true)
        && st["bonds"][0]["distributing"]
            .as_array()
            .is_some_and(|d| d.iter().any(|n| n == name))
}

fn reason(st: &Value, name: &str) -> String {
    member(st, name)
        .and_then(|m| m["reason"].as_str())
        .unwrap_or("")
        .to_string()
}

fn lacp_u64(st: &Value, name: &str, key: &str) -> u64 {
    member(st, name)
        .and_then(|m| m["lacp"][key].as_u64())
        .unwrap_or(0)
}

fn report_port<'a>(rep: &'a Value, name: &str) -> &'a Value {
    rep["stats"]["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no port {name} in the report:\n{rep:#}"))
}

fn ovs_converged(l: &OvsLacp) -> bool {
    l.members.len() == 2
        && OVS_MEMBERS.iter().all(|n| {
            l.member(n).is_some_and(|m| {
                m.status == "current attached" && m.partner_state.contains(OVS_SEES_US)
            })
        })
}

// ---------------------------------------------------------------------------------------
// The test bed

/// OVS in its namespace bonding vb0/vb1, fastlag bonding the other ends. Fields drop in
/// order: fastlag, OVS, end hosts, member links, OVS's namespace, scratch directory.
struct Rig {
    fl: Option<Fastlag>,
    ovs: Ovs,
    lan: Option<Lan>,
    _links: Vec<Veth>,
    peer: Netns,
    /// Root-side ends of the member links (fastlag's m0, m1).
    fl_if: [String; 2],
    script: PathBuf,
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
    /// The peer side: namespace, veths, OVS with `bond0` over vb0/vb1 configured with
    /// `bond_opts`; with `lan`, also the end-host namespaces. fastlag is not started.
    fn new(tag: &str, bond_opts: &[&str], lan: bool) -> Rig {
        let scratch = Scratch::new(&format!("ovs-{tag}"));
        let peer = Netns::new("ovs");
        let fl_if = [net::ifname("m0"), net::ifname("m1")];
        let links = net::member_links(&peer, &fl_if, &OVS_MEMBERS);
        let ovs = Ovs::start(&peer, &scratch.file("ovs"));
        ovs.netdev_bridge("br0");
        ovs.add_bond("br0", "bond0", &OVS_MEMBERS, bond_opts);
        // End hosts (traffic tests only).
        let lan = lan.then(|| Lan::new("", &peer, &ovs, "br0", SRC_IP, DST_IP));
        let script = scratch.file("udpflow.py");
        std::fs::write(&script, UDPFLOW_PY).unwrap();
        Rig {
            fl: None,
            ovs,
            lan,
            _links: links,
            peer,
            fl_if,
            script,
            scratch,
        }
    }

    fn start_fastlag(&mut self) {
        let cfg = net::ovs_rig_config(&self.fl_if, self.lan.as_ref());
        let fl = Fastlag::start(&self.scratch, &cfg);
        self.fl = Some(fl);
    }

    fn fl(&self) -> &Fastlag {
        self.fl.as_ref().expect("fastlag started")
    }

    fn status(&self) -> Value {
        self.fl().status().unwrap_or(Value::Null)
    }

    fn lacp(&self) -> OvsLacp {
        self.ovs.lacp("bond0").unwrap_or_default()
    }

    fn lan(&self) -> &Lan {
        self.lan.as_ref().expect("a rig with end hosts")
    }

    /// Everything needed to understand a failure.
    fn diag(&self) -> String {
        let mut s = String::new();
        // The OVS side first: while fastlag still runs.
        for c in [
            &["lacp/show", "bond0"][..],
            &["bond/show", "bond0"],
            &["lacp/show-stats", "bond0"],
        ] {
            s += &format!(
                "\n=== ovs-appctl {}\n{}\n",
                c.join(" "),
                self.ovs.try_appctl(c).unwrap_or_else(|e| e)
            );
        }
        s += &self.ovs.logs();
        s += "=== link counters (kernel): frames OVS sent towards fastlag / frames at fastlag's end\n";
        for (ours, theirs) in self.fl_if.iter().zip(OVS_MEMBERS) {
            let theirs_tx = self.peer.try_if_counter(theirs, "tx_packets");
            let ours_rx = net::try_if_counter(ours, "rx_packets");
            s += &format!("{theirs} tx {theirs_tx:?} -> {ours} rx {ours_rx:?}\n");
        }
        if let Some(fl) = &self.fl {
            s += &format!(
                "=== fastlag status\n{}\n",
                fl.status()
                    .map(|v| serde_json::to_string_pretty(&v).unwrap())
                    .unwrap_or_else(|| "(none)".into())
            );
            // Where its threads are (a process stuck before its first log line).
            let tasks = fl
                .proc
                .try_pid()
                .and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok());
            if let Some(tasks) = tasks {
                s += "=== fastlag threads: name state wchan\n";
                for t in tasks.flatten() {
                    let read = |f: &str| {
                        std::fs::read_to_string(t.path().join(f))
                            .unwrap_or_default()
                            .trim()
                            .to_string()
                    };
                    let state = read("stat")
                        .rsplit_once(") ")
                        .map(|(_, r)| r.chars().take(1).collect::<String>())
                        .unwrap_or_default();
                    s += &format!("{} {state} {}\n", read("comm"), read("wchan"));
                }
            }
            // Stop it for its final counters (the report is written on exit).
            if let (false, Some(pid)) = (fl.report.exists(), fl.proc.try_pid()) {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
                wait_until(Duration::from_secs(10), || fl.report.exists());
            }
            let rep: Value = std::fs::read_to_string(&fl.report)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            s += "=== fastlag report (after SIGTERM): per port pmd / workers\n";
            for p in rep["stats"]["ports"].as_array().into_iter().flatten() {
                s += &format!("{}: pmd {} workers {}\n", p["name"], p["pmd"], p["workers"]);
            }
            s += &format!("errors: {}\n", rep["errors"]);
            s += &format!("=== fastlag log (last 80 lines)\n{}\n", tail(&fl.log(), 80));
        }
        s
    }

    /// Panics with `msg` and everything needed to understand it (this stops fastlag).
    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.diag())
    }

    /// Waits for fastlag's "fastlag running" line (EAL up, ports started, threads
    /// spawned): the start of the LACP clock. EAL start-up takes about 0.2 s here but
    /// depends on the machine's load, so it is measured, not part of the 5 s.
    fn wait_running(&self) -> Instant {
        let fl = self.fl();
        let up = wait_until(Duration::from_secs(30), || {
            fl.log().contains("fastlag running")
        });
        ensure!(self, up, "fastlag did not start within 30 s");
        Instant::now()
    }

    /// Polls both views until both members aggregate on both sides; milliseconds since
    /// `t0` to (fastlag status: both distributing, OVS: both current attached with the
    /// full partner state).
    fn wait_converged(&self, t0: Instant, timeout: Duration) -> (Option<u128>, Option<u128>) {
        let (mut fl_ms, mut ovs_ms) = (None, None);
        wait_until(timeout.saturating_sub(t0.elapsed()), || {
            if fl_ms.is_none() {
                if let Some(st) = self.fl().status() {
                    if MEMBERS.iter().all(|m| distributing(&st, m)) {
                        fl_ms = Some(net::ms_since(t0));
                    }
                }
            }
            if ovs_ms.is_none() && ovs_converged(&self.lacp()) {
                ovs_ms = Some(net::ms_since(t0));
            }
            fl_ms.is_some() && ovs_ms.is_some()
        });
        (fl_ms, ovs_ms)
    }

    /// Starts fastlag and asserts both sides aggregate both members within `within` of
    /// fastlag being up.
    fn converge(&mut self, name: &str, within: Duration) {
        self.start_fastlag();
        let t0 = self.wait_running();
        let startup = (t0 - self.fl().started).as_millis();
        let (fl_ms, ovs_ms) = self.wait_converged(t0, within);
        println!(
            "MEASURE {name}: fastlag up (\"fastlag running\") {startup} ms after spawn; from \
             then to all members distributing: fastlag status {} ms, OVS lacp/show current \
             attached with the full partner state {} ms (status file refresh <= 100 ms, poll \
             10 ms; 802.1AX aggregate wait is 2 s)",
            fl_ms.map_or("never".into(), |v| v.to_string()),
            ovs_ms.map_or("never".into(), |v| v.to_string()),
        );
        ensure!(
            self,
            fl_ms.is_some() && ovs_ms.is_some(),
            "{name}: not aggregated on both sides within {within:?} of fastlag start \
             (fastlag: {fl_ms:?} ms, OVS: {ovs_ms:?} ms)"
        );
        // OVS's bond enables a member a moment after LACP attaches it; traffic OVS hashes
        // before that lands on the member enabled first, and stays there (no rebalancing
        // in the traffic tests). So its buckets are reset once both are up (Ovs::rehash).
        let enabled = wait_until(Duration::from_secs(3), || {
            self.ovs.members_enabled("bond0", &OVS_MEMBERS)
        });
        ensure!(self, enabled, "OVS's bond did not enable both members");
        self.ovs.rehash("bond0");
    }

    /// Both ends agree on who is on the other end of each link.
    fn check_identities(&self) {
        let st = self.status();
        let l = self.lacp();
        let ovs_system = format!("{},{}", l.sys_priority, l.sys_id.to_lowercase());
        let mut our_systems = BTreeSet::new();
        for (ours, theirs) in MEMBERS.iter().zip(OVS_MEMBERS) {
            let m = member(&st, ours)
                .map(|m| &m["lacp"])
                .unwrap_or(&Value::Null);
            let o = l.member(theirs).cloned().unwrap_or_default();
            ensure!(
                self,
                m["partner_system"].as_str().map(str::to_lowercase) == Some(ovs_system.clone()),
                "{ours}: partner system {} but OVS is {ovs_system}",
                m["partner_system"]
            );
            ensure!(
                self,
                m["partner_key"] == l.key && m["partner_port"] == o.port_id,
                "{ours}: partner key/port {}/{} but OVS's {theirs} has key {} port {}",
                m["partner_key"],
                m["partner_port"],
                l.key,
                o.port_id
            );
            ensure!(
                self,
                m["actor_key"] == o.partner_key && m["actor_port"] == o.partner_port_id,
                "OVS's {theirs} sees key {} port {}, but {ours} is key {} port {}",
                o.partner_key,
                o.partner_port_id,
                m["actor_key"],
                m["actor_port"]
            );
            ensure!(
                self,
                o.partner_sys_id != "00:00:00:00:00:00",
                "OVS's {theirs} has no partner system"
            );
            our_systems.insert(o.partner_sys_id.clone());
        }
        ensure!(
            self,
            our_systems.len() == 1,
            "OVS sees different systems on the two links: {our_systems:?}"
        );
    }

    /// OVS counted no malformed LACPDU from us.
    fn check_no_bad_pdus(&self) {
        let stats = self.ovs.appctl(&["lacp/show-stats", "bond0"]);
        let bad: Vec<&str> = stats
            .lines()
            .filter(|l| l.trim().starts_with("RX Bad PDUs:"))
            .collect();
        ensure!(
            self,
            bad.len() == 2 && bad.iter().all(|l| l.trim() == "RX Bad PDUs: 0"),
            "OVS counted bad LACPDUs from fastlag:\n{stats}"
        );
    }

    /// LACPDUs fastlag sends on each member during `window`.
    fn lacpdus_sent_during(&self, window: Duration) -> [u64; 2] {
        let before = self.status();
        // An observation window: the quantity is a rate, there is nothing to poll for.
        std::thread::sleep(window);
        let after = self.status();
        [0, 1].map(|i| {
            lacp_u64(&after, MEMBERS[i], "lacpdus_tx").saturating_sub(lacp_u64(
                &before,
                MEMBERS[i],
                "lacpdus_tx",
            ))
        })
    }

    /// SIGTERM; waits for exit; returns the exit status, the report and the log.
    fn stop_fastlag(&mut self) -> (ExitStatus, Value) {
        let fl = self.fl.as_mut().expect("fastlag started");
        if fl.proc.running() {
            fl.proc.signal("TERM");
        }
        let Some(status) = fl.proc.wait_timeout(Duration::from_secs(20)) else {
            self.fail("fastlag did not exit within 20 s of SIGTERM");
        };
        let rep = std::fs::read_to_string(&self.fl().report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        (status, rep)
    }

    // --- traffic ----------------------------------------------------------------------

    fn receiver(&self, dir: Dir) -> Receiver {
        let lan = self.lan();
        let (ns, ip, port) = match dir {
            Dir::Fwd => (&lan.dst, DST_IP, FWD_PORT),
            Dir::Rev => (&lan.src, SRC_IP, REV_PORT),
        };
        let out = self.scratch.file(&format!("recv-{dir:?}.txt"));
        let cmd = ns.cmd_dies_with_parent(&[
            python(),
            &self.script.display().to_string(),
            "recv",
            ip,
            &port.to_string(),
            &out.display().to_string(),
        ]);
        let log = self.scratch.file(&format!("recv-{dir:?}.log"));
        let mut proc = ChildGuard::spawn("udp receiver", cmd, &log);
        let ready = PathBuf::from(format!("{}.ready", out.display()));
        ensure!(
            self,
            wait_until(Duration::from_secs(10), || ready.exists()
                || !proc.running())
                && ready.exists(),
            "UDP receiver did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Receiver { _proc: proc, out }
    }

    fn sender(&self, dir: Dir, run: u32, rate: u32, seconds: f64) -> Sender {
        let lan = self.lan();
        let (ns, from, to, port) = match dir {
            Dir::Fwd => (&lan.src, SRC_IP, DST_IP, FWD_PORT),
            Dir::Rev => (&lan.dst, DST_IP, SRC_IP, REV_PORT),
        };
        let cmd = ns.cmd_dies_with_parent(&[
            python(),
            &self.script.display().to_string(),
            "send",
            from,
            to,
            &port.to_string(),
            &FLOW_BASE.to_string(),
            &FLOWS.to_string(),
            &rate.to_string(),
            &seconds.to_string(),
            &run.to_string(),
        ]);
        let out = self.scratch.file(&format!("send-{dir:?}-{run}.json"));
        let err = self.scratch.file(&format!("send-{dir:?}-{run}.log"));
        let proc = spawn_logged("udp sender", cmd, &out, &err);
        Sender {
            proc,
            out,
            err,
            run,
            seconds,
        }
    }

    /// Waits for a sender to finish and for its datagrams to reach the receiver's file.
    fn finish(&self, s: Sender, r: &Receiver) -> Run {
        let Sender {
            mut proc,
            out,
            err,
            run,
            seconds,
        } = s;
        let st = proc.wait_timeout(Duration::from_secs_f64(seconds + 10.0));
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let v: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
        ensure!(
            self,
            st.is_some_and(|s| s.success()) && v["sent"].is_array(),
            "UDP sender run {run} failed ({st:?}): {text}{}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        // A datagram the sender's own kernel refused is not a loss on the path.
        ensure!(
            self,
            v["errors"] == 0,
            "UDP sender run {run}: {} datagrams refused by the sending socket (not sent)",
            v["errors"]
        );
        let sent: Vec<u32> = v["sent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as u32)
            .collect();
        let total: usize = sent.iter().map(|&n| n as usize).sum();
        // Datagrams still in flight or in the receiver's buffer: wait until all are in
        // or the count stops growing.
        let mut last = (0, Instant::now());
        wait_until(Duration::from_secs(3), || {
            let n = r.records(run).len();
            if n != last.0 {
                last = (n, Instant::now());
            }
            n >= total || last.1.elapsed() > Duration::from_millis(500)
        });
        Run {
            sent,
            recs: r.records(run),
        }
    }

    /// Which flows cross which member, seen on OVS's side of each link while `run` goes
    /// (1.5 s at 2000 datagrams/s per direction); also checks that nothing was lost: both
    /// members are up, a steady state.
    fn placement(&self, flows: &[(Dir, &Receiver)], run: u32) -> Placement {
        let mut caps = Vec::new();
        for dev in OVS_MEMBERS {
            let out = self.scratch.file(&format!("cap-{dev}-{run}.txt"));
            let err = self.scratch.file(&format!("cap-{dev}-{run}.log"));
            let cmd = self
                .peer
                .cmd_dies_with_parent(&["tcpdump", "-i", dev, "-nn", "-l", "-q", "-p", "udp"]);
            let proc = spawn_logged("tcpdump", cmd, &out, &err);
            caps.push((proc, out, err));
        }
        for (_, _, err) in &caps {
            ensure!(
                self,
                wait_until(Duration::from_secs(10), || std::fs::read_to_string(err)
                    .is_ok_and(|t| t.contains("listening on"))),
                "tcpdump did not start: {}",
                std::fs::read_to_string(err).unwrap_or_default()
            );
        }
        let senders: Vec<Sender> = flows
            .iter()
            .map(|&(d, _)| self.sender(d, run, 2000, 1.5))
            .collect();
        let runs: Vec<Run> = senders
            .into_iter()
            .zip(flows)
            .map(|(s, (_, r))| self.finish(s, r))
            .collect();
        for ((d, _), r) in flows.iter().zip(&runs) {
            let lost = r.lost(&(0..FLOWS).collect());
            ensure!(
                self,
                lost == 0,
                "{d:?} traffic lost {lost} of {} datagrams with both members up ({}): {}",
                r.sent_total(),
                match d {
                    Dir::Fwd => "src -> fastlag in -> bond -> OVS -> dst",
                    Dir::Rev => "dst -> OVS -> bond -> fastlag members -> in -> src",
                },
                r.loss_summary()
            );
        }
        let mut p = Placement::default();
        for (i, (proc, out, _)) in caps.into_iter().enumerate() {
            drop(proc); // SIGTERM: tcpdump flushes and exits
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            for line in text.lines() {
                // "12:00:00.000000 IP 10.77.0.1.40012 > 10.77.0.2.5000: UDP, length 64"
                let t: Vec<&str> = line.split_whitespace().collect();
                if t.len() < 5 || t[1] != "IP" {
                    continue;
                }
                let Some((ip, port)) = t[2].rsplit_once('.') else {
                    continue;
                };
                let Ok(port) = port.parse::<u16>() else {
                    continue;
                };
                if !(FLOW_BASE..FLOW_BASE + FLOWS).contains(&port) {
                    continue;
                }
                let flow = port - FLOW_BASE;
                match ip {
                    SRC_IP => p.fwd[i].insert(flow),
                    DST_IP => p.rev[i].insert(flow),
                    _ => false,
                };
            }
        }
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// src -> fastlag -> bond -> OVS -> dst: fastlag's hash picks the member.
    Fwd,
    /// dst -> OVS -> bond -> fastlag -> src: OVS's hash picks the member.
    Rev,
}

struct Receiver {
    _proc: ChildGuard,
    out: PathBuf,
}

/// One received datagram.
#[derive(Debug, Clone, Copy)]
struct Rec {
    flow: u16,
    seq: u32,
    /// Send time (s, CLOCK_MONOTONIC).
    ts: f64,
}

impl Receiver {
    fn records(&self, run: u32) -> Vec<Rec> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() == 5 && f[0].parse::<u32>().ok()? == run).then_some(())?;
                Some(Rec {
                    flow: f[1].parse().ok()?,
                    seq: f[2].parse().ok()?,
                    ts: f[3].parse().ok()?,
                })
            })
            .collect()
    }
}

struct Sender {
    proc: ChildGuard,
    out: PathBuf,
    err: PathBuf,
    run: u32,
    seconds: f64,
}

/// Flows (0..FLOWS) seen on OVS's vb0 and vb1, per direction.
#[derive(Debug, Default)]
struct Placement {
    fwd: [BTreeSet<u16>; 2],
    rev: [BTreeSet<u16>; 2],
}

/// What one sender sent and its receiver got.
struct Run {
    sent: Vec<u32>,
    recs: Vec<Rec>,
}

impl Run {
    fn sent_total(&self) -> u64 {
        self.sent.iter().map(|&n| n as u64).sum()
    }

    /// Distinct datagrams received per flow, in sequence order with their send times.
    fn by_flow(&self) -> BTreeMap<u16, Vec<(u32, f64)>> {
        let mut m: BTreeMap<u16, BTreeMap<u32, f64>> = BTreeMap::new();
        for r in &self.recs {
            m.entry(r.flow).or_default().insert(r.seq, r.ts);
        }
        m.into_iter()
            .map(|(f, s)| (f, s.into_iter().collect()))
            .collect()
    }

    /// Per flow with losses: how many, and which sequence numbers (first, last).
    fn loss_summary(&self) -> String {
        let by = self.by_flow();
        let mut lines = Vec::new();
        for f in 0..FLOWS {
            let sent = self.sent[f as usize];
            let got: BTreeSet<u32> = by
                .get(&f)
                .map(|v| v.iter().map(|&(s, _)| s).collect())
                .unwrap_or_default();
            let missing: Vec<u32> = (0..sent).filter(|s| !got.contains(s)).collect();
            if let (Some(a), Some(b)) = (missing.first(), missing.last()) {
                lines.push(format!(
                    "flow {f} (UDP source port {}): {} of {sent} lost, seq {a}..={b}",
                    FLOW_BASE + f,
                    missing.len()
                ));
            }
        }
        let n = lines.len();
        lines.truncate(16);
        format!("{n} flows with losses\n{}", lines.join("\n"))
    }

    fn lost(&self, flows: &BTreeSet<u16>) -> u64 {
        let by = self.by_flow();
        flows
            .iter()
            .map(|f| {
                let got = by.get(f).map_or(0, |v| v.len() as u64);
                (self.sent[*f as usize] as u64).saturating_sub(got)
            })
            .sum()
    }

    /// Longest run of consecutive lost datagrams in any of `flows`, as the time between
    /// the send times of the datagrams delivered on either side of it (ms). Without loss,
    /// this is the flow's own spacing.
    fn longest_flow_gap_ms(&self, flows: &BTreeSet<u16>) -> f64 {
        let by = self.by_flow();
        flows
            .iter()
            .filter_map(|f| by.get(f))
            .flat_map(|v| v.windows(2).map(|w| (w[1].1 - w[0].1) * 1000.0))
            .fold(0.0, f64::max)
    }

    /// Longest time during which nothing sent on any of `flows` was delivered, measured on
    /// the send times of the datagrams delivered before and after (ms). The datagrams of
    /// all these flows interleave, so the resolution is the aggregate spacing (about a
    /// millisecond), not one flow's.
    fn blackout_ms(&self, flows: &BTreeSet<u16>) -> f64 {
        let mut ts: Vec<f64> = self
            .recs
            .iter()
            .filter(|r| flows.contains(&r.flow))
            .map(|r| r.ts)
            .collect();
        ts.sort_by(f64::total_cmp);
        ts.windows(2)
            .map(|w| (w[1] - w[0]) * 1000.0)
            .fold(0.0, f64::max)
    }

    /// Flows whose last datagrams were not delivered (traffic did not continue).
    fn flows_cut_off(&self, tail: u32) -> Vec<u16> {
        let by = self.by_flow();
        (0..FLOWS)
            .filter(|f| {
                let sent = self.sent[*f as usize];
                by.get(f)
                    .and_then(|v| v.last())
                    .is_none_or(|&(seq, _)| seq + tail < sent)
            })
            .collect()
    }
}

/// fastlag's share of frames sent on its member links (root-side veth counters).
fn tx_counters(rig: &Rig) -> [u64; 2] {
    [0, 1].map(|i| net::if_counter(&rig.fl_if[i], "tx_packets"))
}

/// The checks every convergence test shares, after converging.
fn converged_checks(rig: &Rig) {
    rig.check_identities();
    rig.check_no_bad_pdus();
    let st = rig.status();
    for m in MEMBERS {
        ensure!(
            rig,
            reason(&st, m).is_empty(),
            "{m} distributes but has a reason: {}",
            reason(&st, m)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Tests

/// OVS active with fast timeout, balance-tcp: both ends aggregate both links within 5 s,
/// agree on each other's identity, and we send about one LACPDU per second (the partner
/// asks for the short timeout). On SIGTERM, fastlag's final out-of-sync LACPDU makes OVS
/// drop the links at once instead of waiting for its 3 s timeout.
#[test]
fn ovs_active_fast() {
    let mut rig = Rig::new(
        "act",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
        ],
        false,
    );
    rig.converge("ovs_active_fast", Duration::from_secs(5));
    converged_checks(&rig);
    let l = rig.lacp();
    ensure!(
        rig,
        l.status == "active negotiated",
        "OVS bond status {:?}",
        l.status
    );
    let st = rig.status();
    for m in MEMBERS {
        let p = member(&st, m).unwrap()["lacp"]["partner_state_names"]
            .as_str()
            .unwrap_or("")
            .to_string();
        ensure!(
            rig,
            p.contains("activity") && p.contains("timeout") && p.contains("synchronization"),
            "{m}: partner state {p:?}: OVS is active, fast and in sync"
        );
    }

    // The partner asked for the short timeout: periodic LACPDUs at about 1 s.
    let sent = rig.lacpdus_sent_during(Duration::from_secs(3));
    println!("MEASURE ovs_active_fast: LACPDUs sent per member in 3 s: {sent:?}");
    ensure!(
        rig,
        sent.iter().all(|n| (2..=5).contains(n)),
        "expected 2..=5 LACPDUs per member in 3 s (fast periodic), sent {sent:?}"
    );

    // Graceful stop: OVS must see synchronization cleared while the links are still
    // "current" (a final LACPDU), not "expired" after its timeout.
    let fl = rig.fl.as_ref().unwrap();
    fl.proc.signal("TERM");
    let t = Instant::now();
    let out_of_sync = |l: &OvsLacp| {
        OVS_MEMBERS.iter().all(|n| {
            l.member(n).is_some_and(|m| {
                m.status.starts_with("current") && !m.partner_state.contains("synchronized")
            })
        })
    };
    let mut seen = None;
    wait_until(Duration::from_secs(5), || {
        let l = rig.lacp();
        if out_of_sync(&l) {
            seen = Some(l);
        }
        seen.is_some()
    });
    let ms = net::ms_since(t);
    println!("MEASURE ovs_active_fast: SIGTERM to OVS seeing both links out of sync: {ms} ms");
    // OVS's own timeout here is 3 s (fast): the members must leave well before it, while
    // OVS still calls them "current" (its timeout would mark them "expired" first).
    ensure!(
        rig,
        seen.is_some() && ms < 1000,
        "OVS did not see fastlag's final out-of-sync LACPDU on both links within 1 s of \
         SIGTERM ({ms} ms; OVS's own timeout is 3 s)"
    );
    let (status, rep) = rig.stop_fastlag();
    ensure!(
        rig,
        rig.fl()
            .log()
            .contains("sent final out-of-sync LACPDUs members=2"),
        "fastlag did not log its final LACPDUs on both members"
    );
    ensure!(
        rig,
        status.success() && rep["pool"]["available"] == rep["pool"]["size"],
        "fastlag exit {status:?}, pool {}",
        rep["pool"]
    );
}

/// OVS passive: it only answers; fastlag is active, so both aggregate within 5 s.
#[test]
fn ovs_passive() {
    let mut rig = Rig::new(
        "pas",
        &[
            "lacp=passive",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
        ],
        false,
    );
    rig.converge("ovs_passive", Duration::from_secs(5));
    converged_checks(&rig);
    let l = rig.lacp();
    ensure!(
        rig,
        l.status == "passive negotiated",
        "OVS bond status {:?}",
        l.status
    );
    let st = rig.status();
    for m in MEMBERS {
        let p = member(&st, m).unwrap()["lacp"]["partner_state_names"]
            .as_str()
            .unwrap_or("")
            .to_string();
        ensure!(
            rig,
            !p.contains("activity") && p.contains("synchronization"),
            "{m}: partner state {p:?}: OVS is passive and in sync"
        );
    }
}

/// OVS with the long timeout: it asks us for slow LACPDUs. Both still aggregate within
/// 5 s (state changes are sent at once), and then we send no periodic LACPDU for 3 s.
#[test]
fn ovs_slow() {
    let mut rig = Rig::new(
        "slow",
        &[
            "lacp=active",
            "other_config:lacp-time=slow",
            "bond_mode=balance-tcp",
        ],
        false,
    );
    rig.converge("ovs_slow", Duration::from_secs(5));
    converged_checks(&rig);
    let st = rig.status();
    for m in MEMBERS {
        let p = member(&st, m).unwrap()["lacp"]["partner_state_names"]
            .as_str()
            .unwrap_or("")
            .to_string();
        ensure!(
            rig,
            p.contains("activity") && !p.contains("timeout"),
            "{m}: partner state {p:?}: OVS is active with the long timeout"
        );
    }
    // Let the exchange that attached the links settle, then look at the periodic rate.
    let settled = wait_until(Duration::from_secs(3), || {
        rig.lacpdus_sent_during(Duration::from_millis(1200)) == [0, 0]
    });
    let sent = rig.lacpdus_sent_during(Duration::from_secs(3));
    println!("MEASURE ovs_slow: LACPDUs sent per member in 3 s after settling: {sent:?}");
    ensure!(
        rig,
        settled && sent == [0, 0],
        "with a slow partner (30 s periodic) fastlag should not send LACPDUs every second; \
         sent {sent:?} in 3 s"
    );
    // And the links stay up: OVS must still see us as current.
    ensure!(
        rig,
        ovs_converged(&rig.lacp()),
        "OVS stopped aggregating with a slow-periodic fastlag"
    );
}

/// The partner changes its LACP rate on a converged bond, fast -> slow and back: neither
/// change costs a member. fastlag's last fast LACPDU armed OVS's receive timer with the
/// short timeout; when OVS starts asking for slow LACPDUs, fastlag keeps the fast period
/// for one short timeout (802.1AX's partner keeps its current_while until a PDU re-arms it),
/// then goes slow. For 20 s after each change: both members distribute on fastlag's side
/// throughout (status polled every 50 ms), both stay "current attached" on OVS's, and OVS
/// counts no new "Link Expired" or "Link Defaulted".
#[test]
fn partner_rate_change_is_hitless() {
    let mut rig = Rig::new(
        "rate",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
        ],
        false,
    );
    rig.converge("partner_rate_change_is_hitless", Duration::from_secs(5));
    converged_checks(&rig);
    for (to, timeout_bit) in [("slow", false), ("fast", true)] {
        let before = ovs_expired_defaulted(&rig);
        rig.ovs.vsctl(&[
            "set",
            "port",
            "bond0",
            &format!("other_config:lacp-time={to}"),
        ]);
        let t0 = Instant::now();
        let (mut fl_out, mut ovs_out) = (None::<(u128, String)>, None::<(u128, String)>);
        let mut polls = 0u32;
        while t0.elapsed() < Duration::from_secs(20) {
            let st = rig.status();
            if fl_out.is_none() {
                if let Some(m) = MEMBERS.iter().find(|m| !distributing(&st, m)) {
                    fl_out = Some((net::ms_since(t0), format!("{m}: {}", reason(&st, m))));
                }
            }
            let l = rig.lacp();
            if ovs_out.is_none() && !ovs_converged(&l) {
                ovs_out = Some((net::ms_since(t0), format!("{l:?}")));
            }
            polls += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        let after = ovs_expired_defaulted(&rig);
        // fastlag heard the new rate: the partner's timeout bit follows OVS's setting.
        let st = rig.status();
        let heard = MEMBERS.iter().all(|m| {
            let p = member(&st, m).unwrap()["lacp"]["partner_state_names"]
                .as_str()
                .unwrap_or("")
                .to_string();
            p.contains("timeout") == timeout_bit
        });
        println!(
            "MEASURE partner_rate_change_is_hitless: OVS -> {to}: {polls} polls over 20 s, \
             fastlag member out {fl_out:?}, OVS member not current attached {ovs_out:?}, \
             OVS (expired, defaulted) {before:?} -> {after:?}"
        );
        ensure!(
            rig,
            heard,
            "fastlag does not show OVS's new rate ({to}) in the partner state"
        );
        ensure!(
            rig,
            fl_out.is_none(),
            "OVS -> {to}: a member left distribution on fastlag's side: {fl_out:?}"
        );
        ensure!(
            rig,
            ovs_out.is_none(),
            "OVS -> {to}: OVS stopped aggregating a member: {ovs_out:?}"
        );
        ensure!(
            rig,
            after == before,
            "OVS -> {to}: OVS counted link expiries/defaults (expired, defaulted) \
             {before:?} -> {after:?}"
        );
    }
    // After the slow spell and back to fast: the periodic rate is fast again.
    let sent = rig.lacpdus_sent_during(Duration::from_secs(3));
    ensure!(
        rig,
        sent.iter().all(|n| (2..=5).contains(n)),
        "back on fast: expected 2..=5 LACPDUs per member in 3 s, sent {sent:?}"
    );
}

/// Drops Slow Protocols frames leaving a root-namespace interface (fastlag's end of a
/// member link; its af_packet port must not bypass the qdisc layer): redirected into an
/// ifb device that goes nowhere, as `TcEgressDrop` does in a namespace (this kernel has no
/// gact "drop" action). Removed on drop.
struct RootSlowDrop {
    dev: String,
    sink: String,
}

impl RootSlowDrop {
    fn new(dev: &str) -> RootSlowDrop {
        let sink = format!("sk{dev}");
        net::run(Command::new("ip").args(["link", "add", &sink, "type", "ifb"]));
        let g = RootSlowDrop {
            dev: dev.to_string(),
            sink,
        };
        net::run(Command::new("tc").args(["qdisc", "add", "dev", dev, "clsact"]));
        net::run(Command::new("tc").args([
            "filter", "add", "dev", dev, "egress", "protocol", "0x8809", "u32", "match", "u32",
            "0", "0", "action", "mirred", "egress", "redirect", "dev", &g.sink,
        ]));
        g
    }
}

impl Drop for RootSlowDrop {
    fn drop(&mut self) {
        for args in [
            &["tc", "qdisc", "del", "dev", &self.dev, "clsact"][..],
            &["ip", "link", "del", &self.sink],
        ] {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Open vSwitch with `lacp-fallback-ab=true` that never hears our LACPDUs (dropped on
/// their way out): it defaults us, falls back to active-backup on one member and keeps
/// sending LACPDUs that say so (Defaulted) every 30 s. fastlag with
/// `fallback = "individual"` must not treat those LACPDUs as a partner (they ended its
/// fallback before), and must follow the link OVS sends on: traffic passes both ways.
/// Before, fastlag sent on m0 while OVS used vb1 and most datagrams were lost each way.
#[test]
fn fallback_follows_ovs_active_backup_fallback() {
    let mut rig = Rig::new(
        "fab",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=active-backup",
            "other_config:lacp-fallback-ab=true",
        ],
        true,
    );
    let _drops: Vec<RootSlowDrop> = rig.fl_if.iter().map(|i| RootSlowDrop::new(i)).collect();
    let mut cfg = net::ovs_rig_config(&rig.fl_if, rig.lan.as_ref());
    for i in &rig.fl_if {
        cfg = cfg.replace(
            &format!("iface={i}\""),
            &format!("iface={i},qdisc_bypass=0\""),
        );
    }
    cfg = cfg.replace(
        "hash = \"layer3+4\"\n",
        "hash = \"layer3+4\"\n\n[bond.lacp]\nfallback = \"individual\"\n",
    );
    rig.fl = Some(Fastlag::start(&rig.scratch, &cfg));
    rig.wait_running();
    // fastlag falls back to one member (the partner's LACPDUs say it does not hear us).
    let one = wait_until(Duration::from_secs(15), || {
        let st = rig.status();
        MEMBERS.iter().filter(|m| distributing(&st, m)).count() == 1
    });
    ensure!(
        rig,
        one,
        "fastlag did not fall back to one distributing member"
    );
    let ovs_defaulted = wait_until(Duration::from_secs(10), || {
        let l = rig.lacp();
        OVS_MEMBERS.iter().all(|n| {
            l.member(n)
                .is_some_and(|m| m.status.starts_with("defaulted"))
        })
    });
    ensure!(
        rig,
        ovs_defaulted,
        "OVS did not default us (it hears our LACPDUs?)"
    );
    // OVS's active-backup member: the other link than the one fastlag fell back to, so
    // fastlag has to follow it (the partner decides; both picking "the first" proves
    // nothing).
    let st = rig.status();
    let first = if distributing(&st, "m0") { 0 } else { 1 };
    let theirs_want = OVS_MEMBERS[1 - first];
    rig.ovs
        .appctl(&["bond/set-active-member", "bond0", theirs_want]);

    let fwd_rx = rig.receiver(Dir::Fwd);
    let rev_rx = rig.receiver(Dir::Rev);
    // Warm-up: OVS's data shows fastlag the link it uses.
    let (f, r) = (
        rig.sender(Dir::Fwd, 1, 500, 4.0),
        rig.sender(Dir::Rev, 1, 500, 4.0),
    );
    rig.finish(f, &fwd_rx);
    rig.finish(r, &rev_rx);
    let st0 = rig.status();
    // Measured: 5 s both ways.
    let (f, r) = (
        rig.sender(Dir::Fwd, 2, 1000, 5.0),
        rig.sender(Dir::Rev, 2, 1000, 5.0),
    );
    let fwd = rig.finish(f, &fwd_rx);
    let rev = rig.finish(r, &rev_rx);
    let st = rig.status();
    let all: BTreeSet<u16> = (0..FLOWS).collect();
    let (lf, lr) = (fwd.lost(&all), rev.lost(&all));
    let ours: Vec<&str> = MEMBERS
        .iter()
        .copied()
        .filter(|m| distributing(&st, m))
        .collect();
    let bond = rig.ovs.appctl(&["bond/show", "bond0"]);
    let theirs: Vec<&str> = bond
        .lines()
        .filter(|l| l.contains("active member") || l.contains("active slave"))
        .collect();
    println!(
        "MEASURE fallback_follows_ovs_active_backup_fallback: fastlag distributes on {ours:?} \
         (fell back to {} first, before the measured run {:?}), OVS {theirs:?}; lost fwd {lf} \
         of {}, rev {lr} of {}",
        MEMBERS[first],
        MEMBERS
            .iter()
            .copied()
            .filter(|m| distributing(&st0, m))
            .collect::<Vec<_>>(),
        fwd.sent_total(),
        rev.sent_total()
    );
    ensure!(
        rig,
        ours == [MEMBERS[1 - first]],
        "fastlag distributes on {ours:?}; OVS was made to use {theirs_want}"
    );
    let budget = |sent: u64| sent / 100;
    ensure!(
        rig,
        lf <= budget(fwd.sent_total()) && lr <= budget(rev.sent_total()),
        "fallback does not carry traffic both ways: lost fwd {lf} of {}, rev {lr} of {} \
         (bound 1%)\n{}\n{}\n{bond}",
        fwd.sent_total(),
        rev.sent_total(),
        fwd.loss_summary(),
        rev.loss_summary()
    );
    // The standby member names the one that carries the traffic.
    let other = MEMBERS.iter().find(|m| !ours.contains(m)).unwrap();
    let why = reason(&st, other);
    ensure!(
        rig,
        why.contains(&format!("member {} carries", ours[0])),
        "{other}'s reason: {why}"
    );
}

/// End to end through fastlag and OVS: ping; 64 UDP flows spread over both members by the
/// layer3+4 hash (each flow on exactly one member); a member link failing under load
/// loses traffic only briefly and only on the flows that were on it; the member rejoins
/// when the link comes back and carries traffic again.
#[test]
fn traffic_spreads_over_members_and_fails_over() {
    let mut rig = Rig::new(
        "trf",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
            "other_config:bond-rebalance-interval=0",
        ],
        true,
    );
    rig.converge("traffic", Duration::from_secs(5));
    let src = &rig.lan().src;

    // 1. ping through fastlag's xconnect, the bond and OVS, and back.
    let ping_ok = wait_until(Duration::from_secs(5), || {
        net::try_run(&mut src.cmd(&["ping", "-c", "1", "-W", "1", DST_IP])).is_ok()
    });
    ensure!(
        rig,
        ping_ok,
        "no ping reply from {DST_IP} through fastlag and OVS"
    );
    // -w: wait for every reply up to a deadline (with -W alone, ping gives up on the last
    // replies after twice the largest RTT seen).
    let ping = net::try_run(&mut src.cmd(&["ping", "-c", "10", "-i", "0.05", "-w", "5", DST_IP]))
        .unwrap_or_else(|e| e);
    ensure!(
        rig,
        ping.contains(" 0% packet loss"),
        "ping lost replies:\n{ping}"
    );

    // 2. Spread: both directions, 64 flows; who carries what.
    let fwd_rx = rig.receiver(Dir::Fwd);
    let rev_rx = rig.receiver(Dir::Rev);
    let before = tx_counters(&rig);
    let p = rig.placement(&[(Dir::Fwd, &fwd_rx), (Dir::Rev, &rev_rx)], 1);
    let after = tx_counters(&rig);
    let tx = [after[0] - before[0], after[1] - before[1]];
    let share = |n: u64| n as f64 / (tx[0] + tx[1]).max(1) as f64;
    println!(
        "MEASURE traffic: frames fastlag sent per member over 64 flows: m0 {} ({:.0}%), m1 {} \
         ({:.0}%); flows per member: m0 {} m1 {} (fwd), OVS's hash: vb0 {} vb1 {} (rev)",
        tx[0],
        share(tx[0]) * 100.0,
        tx[1],
        share(tx[1]) * 100.0,
        p.fwd[0].len(),
        p.fwd[1].len(),
        p.rev[0].len(),
        p.rev[1].len()
    );
    ensure!(
        rig,
        share(tx[0]) >= 0.2 && share(tx[1]) >= 0.2,
        "layer3+4 over 64 flows should give each member >= 20%: m0 {} m1 {}",
        tx[0],
        tx[1]
    );
    let all: BTreeSet<u16> = (0..FLOWS).collect();
    ensure!(
        rig,
        p.fwd[0].is_disjoint(&p.fwd[1])
            && p.fwd[0].union(&p.fwd[1]).copied().collect::<BTreeSet<_>>() == all,
        "each flow must leave on exactly one member: {p:?}"
    );
    let on_m1 = p.fwd[1].clone();
    let on_m0 = p.fwd[0].clone();

    // 3. Link failure under load: vb1 down in OVS's namespace (carrier of fl..m1 drops).
    let run = 2;
    let fwd = rig.sender(Dir::Fwd, run, 3000, 5.0);
    let rev = rig.sender(Dir::Rev, run, 3000, 5.0);
    ensure!(
        rig,
        wait_until(Duration::from_secs(5), || fwd_rx.records(run).len() > 3000),
        "traffic of run {run} did not arrive"
    );
    rig.peer.ip(&["link", "set", "vb1", "down"]);
    let t_down = Instant::now();
    let mut out_ms = None;
    wait_until(Duration::from_secs(3), || {
        let st = rig.status();
        if !distributing(&st, "m1") && distributing(&st, "m0") {
            out_ms = Some(net::ms_since(t_down));
        }
        out_ms.is_some()
    });
    let fwd_run = rig.finish(fwd, &fwd_rx);
    let rev_run = rig.finish(rev, &rev_rx);
    let st = rig.status();
    ensure!(
        rig,
        out_ms.is_some() && reason(&st, "m1").contains("link down"),
        "m1 did not leave distribution with reason 'link down' after vb1 went down \
         (reason {:?})",
        reason(&st, "m1")
    );
    let log = rig.fl().log();
    ensure!(
        rig,
        log.lines()
            .any(|l| l.contains("member link down") && l.contains("member=m1")),
        "no 'member link down ... member=m1' in the log"
    );
    let spacing = 1000.0 * FLOWS as f64 / 3000.0;
    let (gap_m1, gap_m0) = (
        fwd_run.longest_flow_gap_ms(&on_m1),
        fwd_run.longest_flow_gap_ms(&on_m0),
    );
    let blackout = fwd_run.blackout_ms(&on_m1);
    let rev_blackout = rev_run.blackout_ms(&p.rev[1]);
    println!(
        "MEASURE traffic: link down (vb1 down in OVS's namespace): m1 out of fastlag's table \
         after {} ms (status view); forward loss window on the {} flows of m1: {blackout:.1} ms \
         blackout (aggregate, ~{:.1} ms resolution), longest per-flow gap {gap_m1:.1} ms \
         (flow spacing {spacing:.1} ms), {} datagrams lost; flows on m0: longest gap \
         {gap_m0:.1} ms, {} lost; reverse (OVS's hash, {} flows on vb1): blackout \
         {rev_blackout:.1} ms, {} lost of {}",
        out_ms.unwrap_or(0),
        on_m1.len(),
        1000.0 / (3000.0 * on_m1.len() as f64 / FLOWS as f64),
        fwd_run.lost(&on_m1),
        fwd_run.lost(&on_m0),
        p.rev[1].len(),
        rev_run.lost(&all),
        rev_run.sent_total(),
    );
    let cut = fwd_run.flows_cut_off(3);
    ensure!(
        rig,
        cut.is_empty(),
        "traffic did not continue on the remaining member for flows {cut:?}"
    );
    ensure!(
        rig,
        blackout < 1000.0 && gap_m1 < 1000.0,
        "loss window on link down too long: blackout {blackout:.1} ms, per-flow gap \
         {gap_m1:.1} ms"
    );
    ensure!(
        rig,
        fwd_run.lost(&on_m0) == 0,
        "flows on the surviving member lost {} datagrams",
        fwd_run.lost(&on_m0)
    );
    let cut = rev_run.flows_cut_off(3);
    ensure!(
        rig,
        cut.is_empty() && rev_blackout < 1000.0,
        "reverse traffic: blackout {rev_blackout:.1} ms, flows cut off {cut:?}"
    );

    // 4. vb1 back up: it rejoins on both sides.
    rig.peer.ip(&["link", "set", "vb1", "up"]);
    let t_up = Instant::now();
    let (mut fl_ms, mut ovs_ms) = (None, None);
    wait_until(Duration::from_secs(10), || {
        if fl_ms.is_none() && distributing(&rig.status(), "m1") {
            fl_ms = Some(net::ms_since(t_up));
        }
        if ovs_ms.is_none() && ovs_converged(&rig.lacp()) {
            ovs_ms = Some(net::ms_since(t_up));
        }
        fl_ms.is_some() && ovs_ms.is_some()
    });
    println!(
        "MEASURE traffic: link up to m1 distributing again: fastlag {fl_ms:?} ms, OVS {ovs_ms:?} ms"
    );
    ensure!(
        rig,
        fl_ms.is_some() && ovs_ms.is_some(),
        "m1/vb1 did not rejoin within 10 s of the link coming back"
    );
    // OVS forwards what arrives on vb1 once its bond enabled it, a moment after LACP
    // attached it (lacp/show says "attached" first).
    ensure!(
        rig,
        wait_until(Duration::from_secs(3), || rig
            .ovs
            .members_enabled("bond0", &OVS_MEMBERS)),
        "OVS did not enable vb1 again"
    );

    // 5. And carries its share again, without loss.
    let before = tx_counters(&rig);
    let s = rig.sender(Dir::Fwd, 3, 3000, 2.0);
    let run3 = rig.finish(s, &fwd_rx);
    let after = tx_counters(&rig);
    let tx3 = [after[0] - before[0], after[1] - before[1]];
    println!(
        "MEASURE traffic: after rejoin: m0 {} m1 {} frames, {} of {} datagrams lost",
        tx3[0],
        tx3[1],
        run3.lost(&all),
        run3.sent_total()
    );
    ensure!(
        rig,
        tx3[1] as f64 >= 0.2 * (tx3[0] + tx3[1]) as f64,
        "m1 does not carry its share after rejoining: {tx3:?}"
    );
    ensure!(
        rig,
        run3.lost(&all) == 0,
        "{} datagrams lost after the member rejoined",
        run3.lost(&all)
    );

    // 6. fastlag's own counters agree.
    drop(fwd_rx);
    drop(rev_rx);
    let (status, rep) = rig.stop_fastlag();
    let (m0, m1, inp) = (
        report_port(&rep, "m0"),
        report_port(&rep, "m1"),
        report_port(&rep, "in"),
    );
    println!(
        "MEASURE traffic: report: in rx {} tx {}; m0 tx {} rx {}; m1 tx {} rx {}; workers: m0 {} \
         m1 {} in {}",
        inp["pmd"]["rx_packets"],
        inp["pmd"]["tx_packets"],
        m0["pmd"]["tx_packets"],
        m0["pmd"]["rx_packets"],
        m1["pmd"]["tx_packets"],
        m1["pmd"]["rx_packets"],
        m0["workers"],
        m1["workers"],
        inp["workers"]
    );
    ensure!(
        rig,
        status.success(),
        "fastlag exit status {status:?}; report errors {}",
        rep["errors"]
    );
    // Bump in the wire: every frame the workers took from "in" left through a member,
    // and both members carried a share of it by fastlag's own count.
    let w = |p: &Value, k: &str| p["workers"][k].as_u64().unwrap_or(0);
    let drops = drops_of(inp);
    let (t0, t1) = (w(m0, "tx"), w(m1, "tx"));
    ensure!(
        rig,
        w(inp, "rx") == t0 + t1 && drops == 0,
        "report: \"in\" received {} frames, the members sent {t0} + {t1}, drops on \"in\" {drops}",
        w(inp, "rx")
    );
    ensure!(
        rig,
        t0 as f64 >= 0.1 * (t0 + t1) as f64 && t1 as f64 >= 0.1 * (t0 + t1) as f64,
        "report: member shares over the whole test m0 {t0} m1 {t1}"
    );
    // And the way back: every frame the members received either left through "in", went
    // to the control thread (LACPDUs) or was dropped for a counted reason (a member that
    // is not collecting discards data: OVS enables a member on our sync bit, before we
    // collect).
    let handled = |p: &Value| w(p, "slow_to_control") + drops_of(p);
    let lacpdus = tx_pdus_from_ovs(&rig);
    ensure!(
        rig,
        w(inp, "tx") + handled(m0) + handled(m1) == w(m0, "rx") + w(m1, "rx") && w(inp, "tx") > 0,
        "report: members received {} + {} frames; \"in\" sent {}, to the control thread {} + \
         {}, dropped {} + {} (LACPDUs OVS counts as sent: {lacpdus})",
        w(m0, "rx"),
        w(m1, "rx"),
        w(inp, "tx"),
        w(m0, "slow_to_control"),
        w(m1, "slow_to_control"),
        drops_of(m0),
        drops_of(m1),
    );
}

/// Sum of a report port's worker `drop_*` counters.
fn drops_of(port: &Value) -> u64 {
    port["workers"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.starts_with("drop_"))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// LACPDUs OVS sent on both members (`lacp/show-stats`).
fn tx_pdus_from_ovs(rig: &Rig) -> u64 {
    rig.ovs
        .try_appctl(&["lacp/show-stats", "bond0"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("TX PDUs:"))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// Polls until m1 leaves fastlag's distribution and until OVS stops using vb1
/// (may_enable false); milliseconds since `t0` for each, m0 distributing all along.
struct Departure {
    left_ms: Option<u128>,
    status_at_leave: Value,
    ovs_off_ms: Option<u128>,
    m0_stayed: bool,
}

fn watch_m1_leave(rig: &Rig, t0: Instant, timeout: Duration) -> Departure {
    let mut d = Departure {
        left_ms: None,
        status_at_leave: Value::Null,
        ovs_off_ms: None,
        m0_stayed: true,
    };
    wait_until(timeout, || {
        let st = rig.status();
        d.m0_stayed &= distributing(&st, "m0");
        if d.left_ms.is_none() && !distributing(&st, "m1") {
            d.left_ms = Some(net::ms_since(t0));
            d.status_at_leave = st;
        }
        if d.ovs_off_ms.is_none() && rig.lacp().member("vb1").is_some_and(|m| !m.may_enable) {
            d.ovs_off_ms = Some(net::ms_since(t0));
        }
        d.left_ms.is_some() && d.ovs_off_ms.is_some()
    });
    d
}

/// OVS's LACPDUs towards us on vb1 are dropped (tc, egress of vb1); data keeps flowing
/// both ways. fastlag's fast timeout expires the partner on m1 within 3 s of its last
/// LACPDU (asserted < 4.5 s after the drop starts): m1 leaves distribution with "partner
/// silent" in its status reason and in the log; m0 keeps distributing throughout.
///
/// Traffic on the link is measured meanwhile. Our flows on m1 move to m0 at once. Frames
/// OVS keeps sending on vb1 are discarded (m1 no longer collects) until OVS stops using
/// the link: fastlag keeps advertising Synchronization while EXPIRED (802.1AX Mux
/// ATTACHED) and clears it only at DEFAULTED, another 3 s later, and OVS only looks at
/// that bit. Asserted: bounded by both timeouts (< 7.5 s). When the partner is heard
/// again, m1 rejoins.
#[test]
fn silent_partner_times_out_with_reason() {
    let mut rig = Rig::new(
        "sil",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
            "other_config:bond-rebalance-interval=0",
        ],
        true,
    );
    rig.converge("silent_partner", Duration::from_secs(5));
    let fwd_rx = rig.receiver(Dir::Fwd);
    let rev_rx = rig.receiver(Dir::Rev);
    let p = rig.placement(&[(Dir::Fwd, &fwd_rx), (Dir::Rev, &rev_rx)], 1);
    let all: BTreeSet<u16> = (0..FLOWS).collect();

    let run = 2;
    let fwd = rig.sender(Dir::Fwd, run, 2000, 10.0);
    let rev = rig.sender(Dir::Rev, run, 2000, 10.0);
    ensure!(
        rig,
        wait_until(Duration::from_secs(5), || fwd_rx.records(run).len() > 1000),
        "traffic of run {run} did not arrive"
    );
    let rx_before = lacp_u64(&rig.status(), "m1", "lacpdus_rx");
    let silence = TcEgressDrop::new(&rig.peer, "vb1", "0x8809");
    let t_drop = Instant::now();
    let d = watch_m1_leave(&rig, t_drop, Duration::from_secs(8));
    let fwd_run = rig.finish(fwd, &fwd_rx);
    let rev_run = rig.finish(rev, &rev_rx);
    let Some(ms) = d.left_ms else {
        rig.fail("m1 still distributing 8 s after its partner went silent");
    };
    let why = reason(&d.status_at_leave, "m1");
    println!(
        "MEASURE silent_partner: LACPDUs dropped on vb1 -> m1 out of fastlag's distribution \
         after {ms} ms (status view; fast timeout: 3 s after the last LACPDU received), \
         reason {why:?}; OVS stopped using vb1 after {:?} ms; tc dropped {} frames",
        d.ovs_off_ms,
        silence.dropped()
    );
    ensure!(
        rig,
        ms < 4500,
        "m1 left distribution {ms} ms after the partner went silent (fast timeout: 3 s)"
    );
    ensure!(
        rig,
        why.contains("partner silent"),
        "m1's reason does not say the partner went silent: {why:?}"
    );
    ensure!(rig, d.m0_stayed, "m0 stopped distributing meanwhile");
    let log_ok = wait_until(Duration::from_secs(2), || {
        rig.fl().log().lines().any(|l| {
            l.contains("member stopped distributing")
                && l.contains("member=m1")
                && l.contains("partner silent")
        })
    });
    ensure!(
        rig,
        log_ok,
        "no 'member stopped distributing ... member=m1 reason=partner silent...' in the log"
    );
    // The reason in the status file and in the log: wall-clock times or ages, never the
    // engine's clock.
    let shown = format!("{}\n{}", rig.status(), rig.fl().log());
    let instants = engine_instants(&shown);
    ensure!(
        rig,
        instants.is_empty(),
        "engine-relative instants in the status file or log: {instants:?}"
    );
    let rx_after = lacp_u64(&rig.status(), "m1", "lacpdus_rx");
    ensure!(
        rig,
        rx_after <= rx_before + 1,
        "the tc filter did not silence OVS: m1 received {} LACPDUs meanwhile",
        rx_after - rx_before
    );
    let (fb, rb) = (
        fwd_run.blackout_ms(&p.fwd[1]),
        rev_run.blackout_ms(&p.rev[1]),
    );
    println!(
        "MEASURE silent_partner: loss on LACP timeout with data still flowing both ways: \
         forward (our hash, m1's {} flows) blackout {fb:.1} ms, {} of {} lost; reverse (OVS's \
         hash, vb1's {} flows) blackout {rb:.1} ms, {} of {} lost",
        p.fwd[1].len(),
        fwd_run.lost(&all),
        fwd_run.sent_total(),
        p.rev[1].len(),
        rev_run.lost(&all),
        rev_run.sent_total()
    );
    let (cf, cr) = (fwd_run.flows_cut_off(3), rev_run.flows_cut_off(3));
    ensure!(
        rig,
        cf.is_empty() && cr.is_empty(),
        "traffic did not continue: forward flows {cf:?}, reverse flows {cr:?} cut off"
    );
    ensure!(
        rig,
        fb < 1000.0,
        "our flows on m1 lost {fb:.1} ms when m1 timed out (they should move at once)"
    );
    ensure!(
        rig,
        d.ovs_off_ms.is_some_and(|ms| ms < 7500) && rb < 7500.0,
        "OVS kept sending onto the expired link: it stopped after {:?} ms, reverse blackout \
         {rb:.1} ms (bound: 3 s timeout + 3 s expired + margin)",
        d.ovs_off_ms
    );
    ensure!(
        rig,
        rev_run.lost(&p.rev[0]) == 0 && fwd_run.lost(&p.fwd[0]) == 0,
        "flows on the healthy link lost datagrams: forward {} reverse {}",
        fwd_run.lost(&p.fwd[0]),
        rev_run.lost(&p.rev[0])
    );

    // Partner heard again: m1 rejoins.
    drop(silence);
    let t = Instant::now();
    let back = wait_until(Duration::from_secs(10), || {
        distributing(&rig.status(), "m1") && ovs_converged(&rig.lacp())
    });
    println!(
        "MEASURE silent_partner: LACPDUs pass again -> m1 distributing after {} ms",
        net::ms_since(t)
    );
    ensure!(
        rig,
        back,
        "m1 did not rejoin once the partner was heard again"
    );
}

/// A link that fails in one direction only (OVS's transmit on vb1 dead, carrier up): no
/// carrier event, only LACP can notice. fastlag expires the partner (< 4.5 s), our flows
/// leave m1 at once. Frames OVS hashes onto vb1 are lost until OVS stops using the link,
/// which it does when we clear Synchronization (at DEFAULTED, 3 s after EXPIRED): the
/// loss window is bounded by both timeouts (asserted < 7.5 s) and never open-ended.
#[test]
fn one_way_link_failure_bounded_by_lacp_timeout() {
    let mut rig = Rig::new(
        "oneway",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
            "other_config:bond-rebalance-interval=0",
        ],
        true,
    );
    rig.converge("one_way", Duration::from_secs(5));
    let rev_rx = rig.receiver(Dir::Rev);
    let p = rig.placement(&[(Dir::Rev, &rev_rx)], 1);
    ensure!(
        rig,
        !p.rev[1].is_empty() && !p.rev[0].is_empty(),
        "OVS's hash put no flow on one member: {p:?}"
    );
    let run = 2;
    let rev = rig.sender(Dir::Rev, run, 2000, 10.0);
    ensure!(
        rig,
        wait_until(Duration::from_secs(5), || rev_rx.records(run).len() > 1000),
        "traffic of run {run} did not arrive"
    );
    let silence = TcEgressDrop::new(&rig.peer, "vb1", "all");
    let t_drop = Instant::now();
    let d = watch_m1_leave(&rig, t_drop, Duration::from_secs(8));
    let rev_run = rig.finish(rev, &rev_rx);
    let blackout = rev_run.blackout_ms(&p.rev[1]);
    println!(
        "MEASURE one_way: OVS->us dead on vb1 (carrier up): m1 out of fastlag's distribution \
         after {:?} ms, OVS stopped using vb1 after {:?} ms; loss window for the {} flows OVS \
         hashed onto vb1: {blackout:.1} ms blackout, {} of {} datagrams lost; other flows \
         lost {}",
        d.left_ms,
        d.ovs_off_ms,
        p.rev[1].len(),
        rev_run.lost(&p.rev[1]),
        rev_run.sent_total(),
        rev_run.lost(&p.rev[0]),
    );
    ensure!(
        rig,
        d.left_ms.is_some_and(|ms| ms < 4500),
        "m1 did not leave within 4.5 s of its partner going silent ({:?} ms)",
        d.left_ms
    );
    ensure!(
        rig,
        reason(&d.status_at_leave, "m1").contains("partner silent"),
        "m1's reason: {:?}",
        reason(&d.status_at_leave, "m1")
    );
    ensure!(rig, d.m0_stayed, "m0 stopped distributing meanwhile");
    let cut = rev_run.flows_cut_off(3);
    ensure!(
        rig,
        cut.is_empty(),
        "OVS did not move flows {cut:?} off the silent link"
    );
    ensure!(
        rig,
        d.ovs_off_ms.is_some_and(|ms| ms < 7500) && blackout < 7500.0,
        "loss window {blackout:.1} ms (OVS stopped using vb1 after {:?} ms): longer than the \
         fast timeout and the expired period allow",
        d.ovs_off_ms
    );
    ensure!(
        rig,
        rev_run.lost(&p.rev[0]) == 0,
        "flows on the healthy link lost {} datagrams",
        rev_run.lost(&p.rev[0])
    );
    drop(silence);
}

/// fastlag's LACPDUs as tshark decodes them, captured on OVS's end of m0 from fastlag's
/// start until three more LACPDUs after it aggregates: at least two from m0's MAC, 124-byte
/// frames, Actor/Partner/Collector information present and equal to what fastlag and OVS
/// report, nothing malformed, no expert warnings or errors on any LACPDU of the capture
/// (OVS's included).
#[test]
fn lacpdus_decode_cleanly_in_tshark() {
    let mut rig = Rig::new(
        "tsh",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
        ],
        false,
    );
    let pcap = rig.scratch.file("lacp.pcap");
    let cap_log = rig.scratch.file("tshark.log");
    let dev = rig.fl_if[0].clone();
    // On OVS's end of m0's link: the af_packet PMD sends with PACKET_QDISC_BYPASS (DPDK's
    // default), which skips the kernel's packet taps, so a capture on fl..m0 sees only
    // what arrives there.
    let mut cap = spawn_logged(
        "tshark",
        rig.peer.cmd_dies_with_parent(&[
            "tshark",
            "-i",
            OVS_MEMBERS[0],
            "-f",
            "ether proto 0x8809",
            // A backstop only: the test stops it.
            "-a",
            "duration:60",
            "-w",
            &pcap.display().to_string(),
        ]),
        &rig.scratch.file("tshark.out"),
        &cap_log,
    );
    let listening = wait_until(Duration::from_secs(15), || {
        std::fs::read_to_string(&cap_log).is_ok_and(|t| t.contains("Capturing on"))
    });
    ensure!(
        rig,
        listening,
        "tshark did not start: {}",
        std::fs::read_to_string(&cap_log).unwrap_or_default()
    );
    rig.converge("tshark", Duration::from_secs(5));
    // Aggregated, then at least three more LACPDUs on m0 (about 3 s at the fast rate).
    let sent = || lacp_u64(&rig.status(), "m0", "lacpdus_tx");
    let at_convergence = sent();
    ensure!(
        rig,
        wait_until(Duration::from_secs(10), || sent() >= at_convergence + 3),
        "fastlag sent {} LACPDUs on m0 in the 10 s after aggregating",
        sent() - at_convergence
    );
    // SIGINT: tshark stops its capture and closes the file.
    cap.signal("INT");
    let finished = cap.wait_timeout(Duration::from_secs(15));
    ensure!(rig, finished.is_some(), "tshark did not stop on SIGINT");
    drop(cap);
    let path = pcap.display().to_string();
    let verbose = net::sh(&["tshark", "-r", &path, "-V", "-Y", "lacp"]);
    let our_mac = net::if_mac(&dev);
    let fields = net::sh(&[
        "tshark",
        "-r",
        &path,
        "-Y",
        "lacp",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "eth.src",
        "-e",
        "eth.dst",
        "-e",
        "lacp.actor.sysid",
        "-e",
        "lacp.actor.key",
        "-e",
        "lacp.actor.port",
        "-e",
        "lacp.actor.state",
        "-e",
        "lacp.partner.sysid",
        "-e",
        "lacp.partner.key",
        "-e",
        "lacp.partner.port",
        "-e",
        "lacp.collector.max_delay",
        "-e",
        "frame.len",
    ]);
    let ours: Vec<Vec<&str>> = fields
        .lines()
        .map(|l| l.split('|').collect::<Vec<_>>())
        .filter(|f| f.len() == 11 && f[0].eq_ignore_ascii_case(&our_mac))
        .collect();
    let excerpt = tail(&verbose, 120);
    ensure!(
        rig,
        ours.len() >= 2,
        "expected >= 2 LACPDUs from fastlag's m0 ({our_mac}) in the capture, got {}:\n{fields}",
        ours.len()
    );
    ensure!(
        rig,
        verbose.contains("Link Aggregation Control Protocol")
            && verbose.contains("Actor Information")
            && verbose.contains("Partner Information")
            && verbose.contains("Collector Information"),
        "tshark did not decode the LACPDU TLVs:\n{excerpt}"
    );
    for bad in ["Malformed", "Expert Info (Warning", "Expert Info (Error"] {
        ensure!(
            rig,
            !verbose.contains(bad),
            "tshark reports {bad:?} on a LACPDU:\n{excerpt}"
        );
    }
    // Field by field, against what fastlag and OVS say about themselves.
    let st = rig.status();
    let m0 = &member(&st, "m0").unwrap()["lacp"];
    let l = rig.lacp();
    let last = ours.last().unwrap();
    let num = |s: &str| {
        s.strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).unwrap_or(u64::MAX))
            .unwrap_or_else(|| s.parse().unwrap_or(u64::MAX))
    };
    ensure!(
        rig,
        last[1] == "01:80:c2:00:00:02",
        "LACPDU destination {} (want 01:80:c2:00:00:02)",
        last[1]
    );
    ensure!(
        rig,
        Some(num(last[3])) == m0["actor_key"].as_u64()
            && Some(num(last[4])) == m0["actor_port"].as_u64(),
        "actor key/port on the wire {}/{} but status says {}/{}",
        last[3],
        last[4],
        m0["actor_key"],
        m0["actor_port"]
    );
    ensure!(
        rig,
        Some(num(last[5])) == m0["actor_state"].as_u64(),
        "actor state on the wire {} but status says {}",
        last[5],
        m0["actor_state"]
    );
    let vb0 = l.member("vb0").cloned().unwrap_or_default();
    ensure!(
        rig,
        last[6].eq_ignore_ascii_case(&l.sys_id)
            && num(last[7]) == l.key as u64
            && num(last[8]) == vb0.port_id as u64,
        "partner on the wire {}/{}/{} but OVS is {}/{}/{}",
        last[6],
        last[7],
        last[8],
        l.sys_id,
        l.key,
        vb0.port_id
    );
    ensure!(
        rig,
        last[2].eq_ignore_ascii_case(&vb0.partner_sys_id),
        "actor system on the wire {} but OVS sees {}",
        last[2],
        vb0.partner_sys_id
    );
    ensure!(
        rig,
        ours.iter().all(|f| f[10] == "124"),
        "LACPDU frames must be 124 bytes without FCS (110 after the Ethernet header): {:?}",
        ours.iter().map(|f| f[10]).collect::<Vec<_>>()
    );
    println!(
        "MEASURE tshark: {} LACPDUs from fastlag m0 captured, 124-byte frames, last actor state {}",
        ours.len(),
        last[5]
    );
}

/// Slow-protocol frames written straight onto OVS's end of m0's link (a packet socket in
/// OVS's namespace), seeded and repeatable.
const SLOWFLOOD_PY: &str = r#"
import random, socket, struct, sys, time

iface, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = random.Random(8809)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
head = bytes.fromhex("0180c2000002") + bytes.fromhex("02000000aa01") + b"\x88\x09"

def info(t, sysmac, key, port, state):
    return struct.pack("!BBH6sHHHB3x", t, 20, 0x8000, sysmac, key, 0x80, port, state)

def lacpdu(sysmac, key, port, state):
    body = (bytes([1, 1]) + info(1, sysmac, key, port, state)
            + info(2, bytes(6), 0, 0, 0) + struct.pack("!BBH12x", 3, 16, 0)
            + bytes(52))
    return head + body

good = lacpdu(bytes.fromhex("02000000aa01"), 77, 1, 0x3d)
def malformed():
    k = rng.randrange(8)
    if k == 0:   # truncated LACPDU
        return good[:14 + rng.randrange(2, 109)]
    if k == 1:   # Actor TLV of the wrong length
        b = bytearray(good); b[17] = rng.choice([0, 1, 19, 21, 255]); return bytes(b)
    if k == 2:   # wrong TLV types
        b = bytearray(good); b[16] = rng.randrange(4, 256); b[36] = 0; return bytes(b)
    if k == 3:   # unknown and illegal subtypes
        return head + bytes([rng.choice([0, 11, 99, 255]), 1]) + rng.randbytes(rng.randrange(0, 120))
    if k == 4:   # Marker PDU with a bad TLV
        return head + bytes([2, 1, rng.randrange(3, 256), rng.randrange(256)]) + rng.randbytes(40)
    if k == 5:   # version 0, garbage after
        return head + bytes([1, 0]) + rng.randbytes(rng.randrange(0, 200))
    if k == 6:   # only the EtherType
        return head
    return head + rng.randbytes(rng.randrange(1, 1400))   # anything

sent = 0
end = time.monotonic() + seconds
if mode == "malformed":
    frames = [malformed() for _ in range(4096)]
else:        # a valid LACPDU of another system, as fast as the socket takes it
    frames = [good]
while time.monotonic() < end:
    for f in frames:
        try:
            s.send(f)
            sent += 1
        except OSError:
            pass
print(sent, flush=True)
"#;

/// OVS's `Link Expired` and `Link Defaulted` counts, summed over both members.
fn ovs_expired_defaulted(rig: &Rig) -> (u64, u64) {
    let stats = rig.ovs.appctl(&["lacp/show-stats", "bond0"]);
    let sum = |key: &str| -> u64 {
        stats
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .sum()
    };
    (sum("Link Expired:"), sum("Link Defaulted:"))
}

/// Abuse of the slow-protocol path on a live bond, against Open vSwitch:
/// 1. 8 s of malformed and unknown Slow Protocols frames on m0 (truncated, bad TLVs,
///    wrong subtypes and versions, random bodies), as fast as a packet socket sends them:
///    fastlag counts them (illegal/unknown), no member of either side leaves, both keep the
///    1 s LACPDU cadence, OVS sees no expiry, fastlag's RSS stays flat.
/// 2. 4 s of valid LACPDUs of a foreign system flooding m0: m0 may follow its new partner
///    (that is what the frames say), but m1 distributes throughout and OVS's vb1 stays
///    current; after the flood m0 comes back to OVS within seconds.
#[test]
fn slow_protocol_abuse_on_a_live_bond() {
    let mut rig = Rig::new(
        "abu",
        &[
            "lacp=active",
            "other_config:lacp-time=fast",
            "bond_mode=balance-tcp",
        ],
        false,
    );
    rig.converge("slow_protocol_abuse", Duration::from_secs(5));
    let script = rig.scratch.file("slowflood.py");
    std::fs::write(&script, SLOWFLOOD_PY).unwrap();
    let pid = rig.fl().proc.pid();
    let flood = |mode: &str, seconds: f64| {
        let mut c = rig.peer.cmd(&[
            python(),
            &script.display().to_string(),
            OVS_MEMBERS[0],
            mode,
            &seconds.to_string(),
        ]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("flood script")
    };

    // --- 1: malformed ----------------------------------------------------------------
    let before = rig.status();
    let (exp0, def0) = ovs_expired_defaulted(&rig);
    let rss0 = rss_bytes(pid) / 1024;
    let t0 = Instant::now();
    let child = flood("malformed", 8.0);
    let mut left = Vec::new();
    let mut ovs_left = Vec::new();
    let mut peak_rss = rss0;
    while t0.elapsed() < Duration::from_secs(9) {
        let st = rig.status();
        for m in MEMBERS {
            if !distributing(&st, m) && !left.contains(&m) {
                left.push(m);
            }
        }
        let l = rig.lacp();
        for n in OVS_MEMBERS {
            if l.member(n).is_none_or(|m| m.status != "current attached") && !ovs_left.contains(&n)
            {
                ovs_left.push(n);
            }
        }
        peak_rss = peak_rss.max(rss_bytes(pid) / 1024);
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let sent: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let after = rig.status();
    let mib = |st: &Value, k: &str| {
        member(st, "m0")
            .and_then(|m| m["lacp"]["mib"][k].as_u64())
            .unwrap_or(0)
    };
    let counted = |k| mib(&after, k) - mib(&before, k);
    let (illegal, unknown) = (counted("illegal_rx"), counted("unknown_rx"));
    let tx = [0, 1].map(|i| {
        lacp_u64(&after, MEMBERS[i], "lacpdus_tx") - lacp_u64(&before, MEMBERS[i], "lacpdus_tx")
    });
    let (exp1, def1) = ovs_expired_defaulted(&rig);
    let elapsed = t0.elapsed().as_secs_f64();
    println!(
        "MEASURE slow_protocol_abuse malformed: sent {sent} frames in 8 s ({:.0}/s); fastlag counted illegal {illegal}, unknown {unknown}; LACPDUs sent per member in {elapsed:.1} s: {tx:?}; RSS {rss0} -> peak {peak_rss} KiB",
        sent as f64 / 8.0
    );
    ensure!(
        rig,
        sent > 10_000,
        "the flood sent only {sent} frames: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        rig,
        left.is_empty(),
        "members left fastlag's distribution under malformed frames: {left:?}"
    );
    ensure!(
        rig,
        ovs_left.is_empty(),
        "OVS members stopped being current attached: {ovs_left:?}"
    );
    ensure!(
        rig,
        (exp1, def1) == (exp0, def0),
        "OVS counted expiries/defaults: {exp0}/{def0} -> {exp1}/{def1}"
    );
    // What reaches the engine is counted (the af_packet ring and the control queue may
    // drop some of a flood; at least a tenth arrives here even on a loaded machine).
    ensure!(
        rig,
        illegal + unknown >= sent / 10 && lacp_u64(&after, "m0", "lacpdus_rx") > lacp_u64(&before, "m0", "lacpdus_rx"),
        "malformed frames not counted (illegal {illegal}, unknown {unknown} of {sent}) or OVS's LACPDUs no longer received"
    );
    ensure!(
        rig,
        tx.iter()
            .all(|&n| n + 1 >= elapsed as u64 && n <= elapsed as u64 + 3),
        "LACPDU cadence broken during the flood: {tx:?} in {elapsed:.1} s"
    );
    ensure!(
        rig,
        peak_rss <= rss0 + 16 * 1024,
        "RSS grew from {rss0} to {peak_rss} KiB"
    );

    // --- 2: valid LACPDUs of another system --------------------------------------------
    let t1 = Instant::now();
    let child = flood("foreign", 4.0);
    let mut m1_stayed = true;
    let mut vb1_stayed = true;
    while t1.elapsed() < Duration::from_secs(5) {
        m1_stayed &= distributing(&rig.status(), "m1");
        vb1_stayed &= rig
            .lacp()
            .member("vb1")
            .is_some_and(|m| m.status == "current attached");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let sent: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let t2 = Instant::now();
    let back = wait_until(Duration::from_secs(10), || {
        distributing(&rig.status(), "m0") && ovs_converged(&rig.lacp())
    });
    println!(
        "MEASURE slow_protocol_abuse foreign: {sent} LACPDUs of another system in 4 s on m0; m1 distributing throughout: {m1_stayed}; m0 back with OVS {} ms after the flood",
        net::ms_since(t2)
    );
    ensure!(
        rig,
        m1_stayed && vb1_stayed,
        "m1/vb1 left while m0 was flooded (m1 {m1_stayed}, vb1 {vb1_stayed})"
    );
    ensure!(
        rig,
        back,
        "m0 did not return to OVS within 10 s of the flood's end"
    );
    let (status, rep) = rig.stop_fastlag();
    ensure!(
        rig,
        status.success() && rep["pool"]["available"] == rep["pool"]["size"],
        "fastlag exit {status:?}, pool {}",
        rep["pool"]
    );
}

/// Two bonds of one Open vSwitch (bond0 over vb0/vb1 on br0, bond1 over vb2/vb3 on br1: two
/// bridges, so two partner System IDs),
/// all four links to one fastlag bond (m0..m3) whose system priority is better (1), so
/// fastlag's port order decides (802.1AX 6.7.1, docs/lacp-engine.md). bond1's links come up
/// first and its LACPDUs are heard first; bond0's 300 ms later, inside the aggregate wait.
/// The active aggregator is the rule's (both have 2 members: the lowest port, m0, on
/// bond0's side), not the first heard: m0/m1 distribute, m2/m3 stay out, and OVS enables
/// bond0's members and not bond1's. Before, the first partner heard kept the bond.
#[test]
fn two_partner_bonds_the_rule_chooses_not_arrival() {
    let scratch = Scratch::new("ovs-two");
    let peer = Netns::new("ovstwo");
    let ours: Vec<String> = (0..4).map(|i| net::ifname(&format!("m{i}"))).collect();
    let theirs = ["vb0", "vb1", "vb2", "vb3"];
    let _links = net::member_links(&peer, &ours, &theirs);
    let ovs = Ovs::start(&peer, &scratch.file("ovs"));
    let opts = [
        "lacp=active",
        "other_config:lacp-time=fast",
        "bond_mode=balance-tcp",
    ];
    ovs.netdev_bridge("br0");
    ovs.netdev_bridge("br1");
    ovs.add_bond("br0", "bond0", &theirs[..2], &opts);
    ovs.add_bond("br1", "bond1", &theirs[2..], &opts);
    // bond0's links wait.
    for v in &theirs[..2] {
        peer.ip(&["link", "set", v, "down"]);
    }
    let cpus = cpus();
    let mut cfg = format!(
        "[dataplane]\ncontrol_core = {}\nworker_cores = [{}]\nhugepages = false\nmemory_mb = 256\n",
        cpus[0], cpus[1]
    );
    for (i, o) in ours.iter().enumerate() {
        cfg += &format!("\n[[port]]\nname = \"m{i}\"\ndevice = \"net_af_packet{i},iface={o}\"\n");
    }
    cfg += r#"
[[port]]
name = "in"
device = "ring:g0:a"

[[bond]]
name = "bond0"
members = ["m0", "m1", "m2", "m3"]
hash = "layer3+4"

[bond.lacp]
system_priority = 1

[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]
"#;
    let fl = Fastlag::start(&scratch, &cfg);
    let diag = |msg: &str| -> String {
        format!(
            "{msg}\n=== bond0\n{}\n=== bond1\n{}\n=== fastlag status\n{}\n=== log\n{}",
            ovs.try_appctl(&["lacp/show", "bond0"])
                .unwrap_or_else(|e| e),
            ovs.try_appctl(&["lacp/show", "bond1"])
                .unwrap_or_else(|e| e),
            fl.status().map(|v| v.to_string()).unwrap_or_default(),
            tail(&fl.log(), 40)
        )
    };
    // bond1 heard first (on m2/m3), then bond0's links come up.
    let heard = wait_until(Duration::from_secs(30), || {
        fl.status()
            .is_some_and(|st| lacp_u64(&st, "m2", "lacpdus_rx") > 0)
    });
    assert!(heard, "{}", diag("bond1's LACPDUs never reached m2"));
    std::thread::sleep(Duration::from_millis(300));
    for v in &theirs[..2] {
        peer.ip(&["link", "set", v, "up"]);
    }
    let t0 = Instant::now();
    let want = |st: &Value| {
        distributing(st, "m0")
            && distributing(st, "m1")
            && !distributing(st, "m2")
            && !distributing(st, "m3")
    };
    let converged = wait_until(Duration::from_secs(15), || {
        fl.status().is_some_and(|st| want(&st)) && ovs.members_enabled("bond0", &theirs[..2])
    });
    assert!(
        converged,
        "{}",
        diag("not m0/m1 (the rule's aggregator, bond0) distributing")
    );
    println!(
        "MEASURE two_partner_bonds_the_rule_chooses_not_arrival: bond0 (heard 300 ms after \
         bond1) aggregated on m0/m1 {} ms after its links came up",
        t0.elapsed().as_millis()
    );
    // And it stays so; bond1's members are kept out with a reason.
    std::thread::sleep(Duration::from_secs(3));
    let st = fl.status().unwrap_or(Value::Null);
    assert!(want(&st), "{}", diag("the choice did not hold"));
    let r = reason(&st, "m2");
    // Two bridges: two partner System IDs (one bridge would differ only in the key).
    assert!(
        r.contains("another partner system") || r.contains("key mismatch"),
        "m2's reason: {r}\n{}",
        diag("")
    );
    let enabled_b1 =
        ovs.members_enabled("bond1", &theirs[2..3]) || ovs.members_enabled("bond1", &theirs[3..]);
    assert!(!enabled_b1, "{}", diag("OVS enabled bond1 members"));
}
