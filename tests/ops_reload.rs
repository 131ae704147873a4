//! Hitless reload (SIGHUP) against Open vSwitch as the LACP peer, with traffic flowing:
//! a third member joins a 2-member bond without a single lost datagram; LACP parameters
//! change without touching the distribution table; a broken config and a change that
//! needs a restart are refused, naming file:line and the key, and change nothing; the
//! member leaves again with a final out-of-sync LACPDU, again without loss.
//!
//! ```text
//!  ns src            root ns (fastlag)                   ns ovs (OVS br0)            ns dst
//!  eth0 10.78.0.1 -- fl<pid>s0 [in] =xconnect= bond0 [m0] -- vb0 \
//!                                                     [m1] -- vb1 -bond0- br0 - vd0 -- eth0 10.78.0.2
//!                                          (spare)    [m2] -- vb2 /
//! ```
//!
//! Numbers are printed on lines starting with "MEASURE" (nextest `--no-capture`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Lan, Netns, Ovs, OvsLacp, Veth};
use testkit::*;

const OVS_MEMBERS: [&str; 3] = ["vb0", "vb1", "vb2"];
const SRC_IP: &str = "10.78.0.1";
const DST_IP: &str = "10.78.0.2";
const FWD_PORT: u16 = 5000;
const REV_PORT: u16 = 5001;
const FLOWS: u16 = 48;
/// Datagrams per second per direction.
const RATE: u32 = 500;
/// af_packet ring size (frames per queue) on fastlag's ports: about 4 s of this test's
/// traffic, so that a host that deschedules fastlag's worker for a second (other
/// busy-polling processes on a 2-CPU machine) delays frames instead of dropping them in the
/// kernel. Frames fastlag itself drops (a member not collecting, a bond table without
/// members) are lost whatever the ring size.
const FRAMECNT: u32 = 2048;

/// Numbered UDP datagrams over many source ports; a receiver that counts distinct
/// (flow, sequence) pairs and writes them per flow when stopped (SIGTERM).
const TRAFFIC_PY: &str = r#"
import json, signal, socket, struct, sys, time
HDR = struct.Struct("!HI")

def send(src, dst, port, flows, rate, seconds):
    socks = []
    for i in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK: veth leaves checksums undone
        s.bind((src, 41000 + i))
        socks.append(s)
    seqs = [0] * flows
    errors = 0
    start = time.monotonic()
    start_wall = time.time()
    for n in range(int(rate * seconds)):
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        f = n % flows
        try:
            socks[f].sendto(HDR.pack(f, seqs[f]) + bytes(40), (dst, port))
        except OSError:
            errors += 1
        seqs[f] += 1
    print(json.dumps({"sent": seqs, "errors": errors, "start_unix": start_wall}), flush=True)

def recv(bind, port, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((bind, port))
    s.settimeout(0.05)
    got = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    open(out + ".ready", "w").close()
    while not stop:
        try:
            data, _ = s.recvfrom(2048)
        except (socket.timeout, InterruptedError):
            continue
        if len(data) >= HDR.size:
            f, seq = HDR.unpack_from(data)
            got.setdefault(f, set()).add(seq)
    with open(out + ".tmp", "w") as fh:
        json.dump({str(f): sorted(v) for f, v in got.items()}, fh)
    import os
    os.rename(out + ".tmp", out)

if sys.argv[1] == "send":
    a = sys.argv
    send(a[2], a[3], int(a[4]), int(a[5]), float(a[6]), float(a[7]))
else:
    recv(sys.argv[2], int(sys.argv[3]), sys.argv[4])
"#;

/// Fields drop in order: fastlag, OVS, links, namespaces, scratch.
struct Rig {
    fl: Option<Fastlag>,
    ovs: Ovs,
    _veths: Vec<Veth>,
    lan: Lan,
    _peer: Netns,
    fl_if: Vec<String>,
    script: PathBuf,
    scratch: Scratch,
}

#[derive(Clone, Copy, Debug)]
enum Dir {
    Fwd,
    Rev,
}

struct Traffic {
    senders: Vec<(Dir, ChildGuard, PathBuf)>,
    receivers: Vec<(Dir, ChildGuard, PathBuf)>,
}

/// Lost datagrams per direction, with the flows that lost any.
#[derive(Debug, Default)]
struct Loss {
    sent: u64,
    lost: u64,
    flows: Vec<(u16, u64)>,
    /// When the missing datagrams were sent (s after the sender started, from their
    /// sequence numbers): first and last.
    window_s: Option<(f64, f64)>,
    /// The sender's start, UTC seconds since midnight.
    start_of_day_s: f64,
}

impl Rig {
    fn new() -> Rig {
        let scratch = Scratch::new("reload");
        let peer = Netns::new("ovs");
        let fl_if: Vec<String> = ["m0", "m1", "m2"].iter().map(|m| net::ifname(m)).collect();
        let veths = net::member_links(&peer, &fl_if, &OVS_MEMBERS);
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
            ],
        );
        let lan = Lan::new("", &peer, &ovs, "br0", SRC_IP, DST_IP);
        let script = scratch.file("traffic.py");
        std::fs::write(&script, TRAFFIC_PY).unwrap();
        Rig {
            fl: None,
            ovs,
            _veths: veths,
            lan,
            _peer: peer,
            fl_if,
            script,
            scratch,
        }
    }

    /// The config: bond0 over `members`, `lacp` lines under [bond.lacp], `dataplane`
    /// lines added to [dataplane].
    fn config(&self, members: &[&str], lacp: &str, dataplane: &str) -> String {
        let cpus = cpus();
        assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
        let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
        format!(
            r#"[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256
{dataplane}

[[port]]
name = "m0"
device = "net_af_packet0,iface={i0},framecnt={fc}"

[[port]]
name = "m1"
device = "net_af_packet1,iface={i1},framecnt={fc}"

[[port]]
name = "m2"
device = "net_af_packet2,iface={i2},framecnt={fc}"

[[port]]
name = "in"
device = "net_af_packet3,iface={inp},framecnt={fc}"

[[bond]]
name = "bond0"
members = [{m}]
hash = "layer3+4"

[bond.lacp]
{lacp}

[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]

[management]
socket = "{sock}"
"#,
            sock = self.scratch.file("ctl.sock").display(),
            c = cpus[0],
            w = cpus[1],
            i0 = self.fl_if[0],
            i1 = self.fl_if[1],
            i2 = self.fl_if[2],
            inp = self.lan.in_if,
            fc = FRAMECNT,
            m = members.join(", "),
        )
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

    fn diag(&self) -> String {
        let mut s = String::new();
        for c in [&["lacp/show", "bond0"][..], &["bond/show", "bond0"]] {
            s += &format!(
                "\n=== ovs-appctl {}\n{}\n",
                c.join(" "),
                self.ovs.try_appctl(c).unwrap_or_else(|e| e)
            );
        }
        if let Some(fl) = &self.fl {
            s += &format!(
                "=== fastlag status\n{}\n=== fastlag log (last 60 lines)\n{}\n",
                serde_json::to_string_pretty(&self.status()).unwrap_or_default(),
                tail(&fl.log(), 60)
            );
        }
        s
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.diag())
    }

    /// Writes `config` where fastlag reads it and sends SIGHUP; waits for the control
    /// thread's answer in the log (the n-th "reload" outcome line) and returns it.
    fn reload(&self, config: &str) -> String {
        let fl = self.fl();
        let before = reload_lines(&fl.log()).len();
        std::fs::write(self.scratch.file("fastlag.toml"), config).unwrap();
        fl.child.signal("HUP");
        let mut line = None;
        wait_until(Duration::from_secs(10), || {
            line = reload_lines(&fl.log()).get(before).cloned();
            line.is_some()
        });
        line.unwrap_or_else(|| self.fail("no reload outcome logged within 10 s of SIGHUP"))
    }

    /// Writes `config` and runs `fastlag ctl reload`; returns (success, stdout + stderr).
    fn ctl_reload(&self, config: &str) -> (bool, String) {
        std::fs::write(self.scratch.file("fastlag.toml"), config).unwrap();
        let out = fastlag()
            .args(["ctl", "--socket"])
            .arg(self.scratch.file("ctl.sock"))
            .arg("reload")
            .output()
            .expect("run fastlag ctl reload");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn distributing(&self, st: &Value, m: &str) -> bool {
        st["bonds"][0]["members"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == m))
            .is_some_and(|x| x["distributing"] == true)
    }

    fn traffic(&self, tag: &str, seconds: f64) -> Traffic {
        let py = "/usr/bin/python3";
        let script = self.script.display().to_string();
        let mut receivers = Vec::new();
        for (dir, ns, ip, port) in [
            (Dir::Fwd, &self.lan.dst, DST_IP, FWD_PORT),
            (Dir::Rev, &self.lan.src, SRC_IP, REV_PORT),
        ] {
            let out = self.scratch.file(&format!("recv-{tag}-{dir:?}.json"));
            let cmd = ns.cmd_dies_with_parent(&[
                py,
                &script,
                "recv",
                ip,
                &port.to_string(),
                &out.display().to_string(),
            ]);
            let log = self.scratch.file(&format!("recv-{tag}-{dir:?}.log"));
            let g = ChildGuard::spawn("udp receiver", cmd, &log);
            let ready = PathBuf::from(format!("{}.ready", out.display()));
            if !wait_until(Duration::from_secs(10), || ready.exists()) {
                self.fail(&format!(
                    "receiver did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            receivers.push((dir, g, out));
        }
        let mut senders = Vec::new();
        for (dir, ns, from, to, port) in [
            (Dir::Fwd, &self.lan.src, SRC_IP, DST_IP, FWD_PORT),
            (Dir::Rev, &self.lan.dst, DST_IP, SRC_IP, REV_PORT),
        ] {
            let out = self.scratch.file(&format!("send-{tag}-{dir:?}.json"));
            let mut cmd = ns.cmd_dies_with_parent(&[
                py,
                &script,
                "send",
                from,
                to,
                &port.to_string(),
                &FLOWS.to_string(),
                &RATE.to_string(),
                &seconds.to_string(),
            ]);
            cmd.stdout(std::fs::File::create(&out).unwrap());
            let child = cmd
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("sender");
            senders.push((
                dir,
                ChildGuard {
                    child: Some(child),
                    name: "udp sender".into(),
                },
                out,
            ));
        }
        Traffic { senders, receivers }
    }

    /// Waits for the senders, lets the last datagrams arrive, stops the receivers and
    /// counts what was lost per direction.
    fn finish(&self, t: Traffic) -> BTreeMap<String, Loss> {
        let mut sent: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut starts: BTreeMap<String, f64> = BTreeMap::new();
        for (dir, mut g, out) in t.senders {
            if g.wait_timeout(Duration::from_secs(60)).is_none() {
                self.fail("sender did not finish");
            }
            let v: Value =
                serde_json::from_str(std::fs::read_to_string(&out).unwrap_or_default().trim())
                    .unwrap_or(Value::Null);
            if v["errors"] != 0 {
                self.fail(&format!("sender {dir:?}: {v}"));
            }
            starts.insert(
                format!("{dir:?}"),
                v["start_unix"].as_f64().unwrap_or(0.0) % 86_400.0,
            );
            sent.insert(
                format!("{dir:?}"),
                v["sent"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_u64().unwrap())
                    .collect(),
            );
        }
        // In flight: a few ms; the receivers count what arrived.
        std::thread::sleep(Duration::from_millis(500));
        let mut losses = BTreeMap::new();
        for (dir, g, out) in t.receivers {
            drop(g); // SIGTERM: the receiver writes its file
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let got: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let s = &sent[&format!("{dir:?}")];
            let mut loss = Loss {
                start_of_day_s: starts[&format!("{dir:?}")],
                ..Loss::default()
            };
            for (f, &n) in s.iter().enumerate() {
                let have: std::collections::BTreeSet<u64> = got[f.to_string()]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(Value::as_u64)
                            .filter(|&x| x < n)
                            .collect()
                    })
                    .unwrap_or_default();
                loss.sent += n;
                if (have.len() as u64) < n {
                    loss.lost += n - have.len() as u64;
                    loss.flows.push((f as u16, n - have.len() as u64));
                    // Datagram k of flow f left at (k * FLOWS + f) / RATE.
                    let at = |k: u64| (k * FLOWS as u64 + f as u64) as f64 / RATE as f64;
                    for k in (0..n).filter(|k| !have.contains(k)) {
                        let w = loss.window_s.get_or_insert((at(k), at(k)));
                        w.0 = w.0.min(at(k));
                        w.1 = w.1.max(at(k));
                    }
                }
            }
            losses.insert(format!("{dir:?}"), loss);
        }
        losses
    }
}

/// The control thread's reload outcome lines, in order.
fn reload_lines(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(l) = lines.next() {
        if l.contains("reload applied") || l.contains("configuration unchanged") {
            out.push(l.to_string());
        } else if l.contains("reload refused") {
            // The refusal continues on the following lines (one per key or diagnostic).
            let mut text = l.to_string();
            while let Some(n) = lines.peek() {
                if n.starts_with("20") && n.contains("  ") {
                    break;
                }
                text.push('\n');
                text.push_str(n);
                lines.next();
            }
            out.push(text);
        }
    }
    out
}

fn table_version(st: &Value) -> u64 {
    st["bonds"][0]["table_version"].as_u64().unwrap_or(0)
}

fn lacpdus_tx(st: &Value, m: &str) -> u64 {
    st["bonds"][0]["members"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == m))
        .and_then(|x| x["lacp"]["lacpdus_tx"].as_u64())
        .unwrap_or(0)
}

fn port_worker_tx(st: &Value, p: &str) -> u64 {
    port_worker(st, p, "tx")
}

/// A worker counter of port `p` in a status.
fn port_worker(st: &Value, p: &str, counter: &str) -> u64 {
    st["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == p))
        .and_then(|x| x["workers"][counter].as_u64())
        .unwrap_or(0)
}

#[test]
fn reload_adds_third_member_without_loss_and_refuses_bad_configs() {
    let mut rig = Rig::new();
    let two = rig.config(&["m0", "m1"], "", "");
    rig.fl = Some(Fastlag::start(&rig.scratch, &two));
    let t0 = Instant::now();
    let converged = wait_until(Duration::from_secs(30), || {
        let st = rig.status();
        rig.distributing(&st, "m0") && rig.distributing(&st, "m1") && {
            let l = rig.lacp();
            ["vb0", "vb1"].iter().all(|n| {
                l.member(n)
                    .is_some_and(|m| m.status == "current attached" && m.may_enable)
            })
        }
    });
    if !converged {
        rig.fail("m0/m1 did not aggregate with OVS");
    }
    println!(
        "MEASURE reload: m0+m1 aggregated {} ms after spawn",
        net::ms_since(t0)
    );
    let st = rig.status();
    if st["bonds"][0]["members"].as_array().map(Vec::len) != Some(2) {
        rig.fail("bond0 should have 2 members before the reload");
    }
    // OVS's third member has no partner yet.
    if rig
        .lacp()
        .member("vb2")
        .is_some_and(|m| m.status.contains("current"))
    {
        rig.fail("vb2 has a partner before m2 joined");
    }
    // OVS enables a member a moment after LACP attaches it.
    let enabled = wait_until(Duration::from_secs(3), || {
        rig.ovs.members_enabled("bond0", &["vb0", "vb1"])
    });
    if !enabled {
        rig.fail("OVS did not enable vb0 and vb1");
    }

    // 1. Add m2 while traffic flows both ways.
    let before = rig.status();
    let m2_tx_before = port_worker_tx(&before, "m2");
    let traffic = rig.traffic("add", 8.0);
    std::thread::sleep(Duration::from_millis(2000));
    let three = rig.config(&["m0", "m1", "m2"], "", "");
    let t_reload = Instant::now();
    let outcome = rig.reload(&three);
    if !outcome.contains("reload applied") || !outcome.contains("member m2 added") {
        rig.fail(&format!("reload adding m2: {outcome}"));
    }
    let mut first_two_left = Vec::new();
    let mut m2_ms = None;
    wait_until(Duration::from_secs(8), || {
        let st = rig.status();
        for m in ["m0", "m1"] {
            if !rig.distributing(&st, m) {
                first_two_left.push(format!("{m} at {} ms", net::ms_since(t_reload)));
            }
        }
        if m2_ms.is_none() && rig.distributing(&st, "m2") {
            m2_ms = Some(net::ms_since(t_reload));
        }
        m2_ms.is_some()
    });
    let Some(m2_ms) = m2_ms else {
        rig.fail("m2 did not start distributing within 8 s of the reload");
    };
    println!(
        "MEASURE reload: m2 distributing {m2_ms} ms after SIGHUP (802.1AX aggregate wait 2 s)"
    );
    let losses = rig.finish(traffic);
    println!(
        "MEASURE reload: adding m2 under traffic ({RATE}/s each way, {FLOWS} flows): {losses:?}"
    );
    if !first_two_left.is_empty() {
        rig.fail(&format!(
            "m0/m1 stopped distributing during the reload: {first_two_left:?}"
        ));
    }
    // The one loss OVS may cause: it advertises Collecting on vb2 as soon as it attached
    // it, before it has our Synchronization, and enables vb2 only when our in-sync LACPDU
    // arrives; fastlag starts distributing on m2 when that LACPDU leaves. A datagram hashed
    // to m2 in that instant can be dropped by OVS. Tolerated only when fastlag forwarded
    // every datagram it received and the loss sits at the join (fastlag's log time).
    let after = rig.status();
    let delta = |p: &str, k: &str| port_worker(&after, p, k) - port_worker(&before, p, k);
    let members_tx: u64 = ["m0", "m1", "m2"].iter().map(|m| delta(m, "tx")).sum();
    let join = log_time_of_day(&rig.fl().log(), "member distributing bond=bond0 member=m2");
    for (dir, l) in &losses {
        let at_join = match (dir.as_str(), l.window_s, join) {
            ("Fwd", Some((first, last)), Some(j)) if l.lost <= 3 && l.sent > 0 => {
                let j = seconds_between(l.start_of_day_s, j);
                // Every datagram reached fastlag and everything it received left (ARP
                // may add a frame or two).
                let forwarded = delta("in", "rx") >= l.sent && members_tx == delta("in", "rx");
                // Scheduled send times: a sender running late sends after them, never before.
                (forwarded && first >= j - 0.5 && last <= j + 0.25).then_some(j)
            }
            _ => None,
        };
        if let Some(j) = at_join {
            println!(
                "MEASURE reload: {dir}: {} of {} datagrams lost in OVS as m2 joined (sent at \
                 {:?} s, m2 distributing at {j:.3} s after the sender started; fastlag \
                 forwarded all {})",
                l.lost, l.sent, l.window_s, l.sent
            );
            continue;
        }
        if l.sent == 0 || l.lost != 0 {
            let st = rig.status();
            let ports: Vec<String> = st["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}: pmd {} workers {}", p["name"], p["pmd"], p["workers"]))
                .collect();
            // Where: frames that never reached fastlag's "in" port were dropped by the
            // kernel's packet ring in front of it (the worker or the sender was starved of
            // CPU, e.g. by other busy-polling processes on this 2-CPU machine).
            let in_rx = st["ports"]
                .as_array()
                .and_then(|a| a.iter().find(|p| p["name"] == "in"))
                .and_then(|p| p["pmd"]["rx_packets"].as_u64())
                .unwrap_or(0);
            let before_fastlag = if dir == "Fwd" {
                format!("; fastlag's in port received {in_rx} of {} sent", l.sent)
            } else {
                String::new()
            };
            rig.fail(&format!(
                "{dir}: {} of {} datagrams lost while m2 joined (sent {:?} s after the \
                 sender started; SIGHUP at 2 s, m2 distributing at {:.1} s{before_fastlag}): \
                 {:?}\n{}",
                l.lost,
                l.sent,
                l.window_s,
                2.0 + m2_ms as f64 / 1e3,
                l.flows,
                ports.join("\n")
            ));
        }
    }
    let st = rig.status();
    let l = rig.lacp();
    let ovs_m2 = l.member("vb2").cloned().unwrap_or_default();
    if !(ovs_m2.status == "current attached" && ovs_m2.partner_state.contains("distributing")) {
        rig.fail(&format!("OVS does not see m2 aggregated: {ovs_m2:?}"));
    }
    let m2_tx = port_worker_tx(&st, "m2") - m2_tx_before;
    println!("MEASURE reload: frames the workers sent on m2 after it joined: {m2_tx}");
    if m2_tx == 0 {
        rig.fail("no traffic left through m2 after it joined");
    }

    // 2. A broken config: refused with file:line:key, nothing changes.
    let version = table_version(&st);
    let broken = three.replace("hash = \"layer3+4\"", "hash = \"layer3+4\"\nmin_links = 9");
    let outcome = rig.reload(&broken);
    let cfg_path = rig.scratch.file("fastlag.toml").display().to_string();
    if !(outcome.contains("reload refused")
        && outcome.contains(&format!("{cfg_path}:"))
        && outcome.contains("bond[0].min_links"))
    {
        rig.fail(&format!("broken config: {outcome}"));
    }
    // 3. A change that needs a restart, asked through `fastlag ctl reload`: refused (the
    // command fails), naming the key.
    let restart = rig.config(&["m0", "m1", "m2"], "", "burst = 64");
    let (ok, outcome) = rig.ctl_reload(&restart);
    if ok || !outcome.contains("dataplane.burst: needs a restart") {
        rig.fail(&format!(
            "restart-only change by ctl reload (success {ok}): {outcome}"
        ));
    }
    let before = rig.status();
    std::thread::sleep(Duration::from_millis(2500));
    let after = rig.status();
    for m in ["m0", "m1", "m2"] {
        if !rig.distributing(&after, m) || lacpdus_tx(&after, m) <= lacpdus_tx(&before, m) {
            rig.fail(&format!("{m} changed after refused reloads"));
        }
    }
    if table_version(&after) != version {
        rig.fail("the bond table changed after refused reloads");
    }

    // 4. LACP parameters: passive, slow. OVS sees the new bits; the table does not move.
    let traffic = rig.traffic("lacp", 3.0);
    std::thread::sleep(Duration::from_millis(500));
    let params = rig.config(
        &["m0", "m1", "m2"],
        "activity = \"passive\"\nrate = \"slow\"",
        "",
    );
    let (ok, outcome) = rig.ctl_reload(&params);
    if !ok || !outcome.contains("rate slow") || !outcome.contains("activity passive") {
        rig.fail(&format!(
            "LACP parameters by ctl reload (success {ok}): {outcome}"
        ));
    }
    let seen = wait_until(Duration::from_secs(3), || {
        let l = rig.lacp();
        OVS_MEMBERS.iter().all(|n| {
            l.member(n).is_some_and(|m| {
                let bits: Vec<&str> = m.partner_state.split_whitespace().collect();
                !bits.contains(&"activity")
                    && !bits.contains(&"timeout")
                    && bits.contains(&"distributing")
            })
        })
    });
    if !seen {
        rig.fail("OVS does not see passive/slow on every member");
    }
    let losses = rig.finish(traffic);
    println!("MEASURE reload: LACP passive+slow under traffic: {losses:?}");
    for (dir, l) in &losses {
        if l.lost != 0 {
            rig.fail(&format!(
                "{dir}: {} datagrams lost during the LACP parameter reload",
                l.lost
            ));
        }
    }
    if table_version(&rig.status()) != version {
        rig.fail("the bond table changed on a LACP parameter reload");
    }

    // 5. m2 leaves: its final LACPDU takes it out of OVS's aggregate at once.
    let traffic = rig.traffic("remove", 3.0);
    std::thread::sleep(Duration::from_millis(1000));
    let outcome = rig.reload(&two);
    if !outcome.contains("member m2 removed") {
        rig.fail(&format!("removing m2: {outcome}"));
    }
    let t = Instant::now();
    let left = wait_until(Duration::from_secs(2), || {
        rig.lacp().member("vb2").is_some_and(|m| {
            m.status.starts_with("current") && !m.partner_state.contains("synchronized")
        })
    });
    println!(
        "MEASURE reload: OVS saw m2 out of sync {} ms after the reload",
        net::ms_since(t)
    );
    if !left {
        rig.fail("OVS did not see m2 leave (final out-of-sync LACPDU)");
    }
    let losses = rig.finish(traffic);
    println!("MEASURE reload: removing m2 under traffic: {losses:?}");
    for (dir, l) in &losses {
        if l.lost != 0 {
            rig.fail(&format!(
                "{dir}: {} datagrams lost while m2 left: {:?}",
                l.lost, l.flows
            ));
        }
    }
    let settled = wait_until(Duration::from_secs(1), || {
        let st = rig.status();
        rig.distributing(&st, "m0")
            && rig.distributing(&st, "m1")
            && st["bonds"][0]["members"].as_array().map(Vec::len) == Some(2)
    });
    if !settled {
        rig.fail("after removing m2, bond0 should be m0+m1 distributing");
    }

    let (ok, report, log) = rig.fl.take().unwrap().stop();
    assert!(
        ok && report["pool"]["available"] == report["pool"]["size"],
        "fastlag exit after reloads: pool {}\n{}",
        report["pool"],
        tail(&log, 40)
    );
}

// ---------------------------------------------------------------------------------------
// Router mode: static routes by reload.

/// `ping -c count` inside `ns`: replies received.
fn ping(ns: &Netns, dst: &str, count: u32) -> u32 {
    let out = ns
        .cmd(&[
            "ping",
            "-4",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            dst,
        ])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(" packets transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

fn iface_u64(st: &Value, name: &str, key: &str) -> u64 {
    st["interfaces"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .and_then(|i| i[key].as_u64())
        .unwrap_or(0)
}

/// Fetches a metrics URL and prints every sample as {"name{label=value,...}": value},
/// parsed by prometheus_client's reference parser.
const SCRAPE_PY: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
out = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        out["%s{%s}" % (s.name, labels) if labels else s.name] = s.value
print(json.dumps(out))
"#;

/// ```text
///  ns cli                  ns gw (fastlag, its TAPs)           ns srv
///  eth0 10.79.1.2 ---- c0 [port cli] cli0 10.79.1.1
///                          [port srv] srv0 10.79.2.1 s0 ---- eth0 10.79.2.2, lo 10.79.77.1
/// ```
/// 10.79.77.0/24 is reachable only through a static route via 10.79.2.2 that a reload adds
/// and removes; the gateway's kernel has no such route, so only the fast path can deliver.
#[test]
fn reload_adds_and_removes_static_routes() {
    let scratch = Scratch::new("reload-rt");
    let gw = Netns::new("gw");
    let cli = Netns::new("cli");
    let srv = Netns::new("srv");
    let _veths = [
        Veth::new(Some(&cli), "eth0", Some(&gw), "c0"),
        Veth::new(Some(&srv), "eth0", Some(&gw), "s0"),
    ];
    gw.sysctl(&["net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0"]);
    cli.ip(&["addr", "add", "10.79.1.2/24", "dev", "eth0"]);
    cli.ip(&["route", "add", "default", "via", "10.79.1.1"]);
    srv.ip(&["addr", "add", "10.79.2.2/24", "dev", "eth0"]);
    srv.ip(&["addr", "add", "10.79.77.1/32", "dev", "lo"]);
    srv.ip(&["route", "add", "default", "via", "10.79.2.1"]);
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let config = |routes: &str| {
        format!(
            r#"[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "cli"
device = "net_af_packet0,iface=c0"

[[port]]
name = "srv"
device = "net_af_packet1,iface=s0"

[[interface]]
name = "cli0"
on = "cli"
addresses = ["10.79.1.1/24"]
tap_name = "fl-cli0"

[[interface]]
name = "srv0"
on = "srv"
addresses = ["10.79.2.1/24"]
tap_name = "fl-srv0"

[forward]
mode = "router"

[management]
metrics = "127.0.0.1:9473"
{routes}
"#,
            c = cpus[0],
            w = cpus[1],
        )
    };
    let route = "\n[[route]]\nprefix = \"10.79.77.0/24\"\nvia = \"10.79.2.2\"\n";
    let cfg = scratch.file("fastlag.toml");
    std::fs::write(&cfg, config("")).unwrap();
    let (log, status) = (scratch.file("fastlag.log"), scratch.file("status.json"));
    let bin = env!("CARGO_BIN_EXE_fastlag");
    let cmd = gw.cmd_dies_with_parent(&[
        bin,
        "run",
        "--config",
        &cfg.display().to_string(),
        "--status",
        &status.display().to_string(),
    ]);
    let mut fl = ChildGuard::spawn("fastlag", cmd, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let st = || -> Value {
        std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    };
    let fail = |msg: &str| -> ! { panic!("{msg}\n{}", tail(&read_log(), 60)) };
    if !wait_until(Duration::from_secs(30), || {
        read_log().contains("fastlag running")
    }) {
        fail("fastlag did not start");
    }
    // The next hop's MAC comes from the kernel (ARP on the TAP), mirrored into the FIB.
    if !wait_until(Duration::from_secs(15), || ping(&cli, "10.79.2.2", 1) == 1) {
        fail("the server is not reachable through fastlag");
    }
    if ping(&cli, "10.79.77.1", 3) != 0 {
        fail("10.79.77.1 answered before any route to it exists");
    }
    let routes_before = st()["router"]["routes_v4"].as_u64().unwrap_or(0);

    let reload = |text: &str| -> String {
        let before = reload_lines(&read_log()).len();
        std::fs::write(&cfg, text).unwrap();
        fl.signal("HUP");
        let mut line = None;
        wait_until(Duration::from_secs(10), || {
            line = reload_lines(&read_log()).get(before).cloned();
            line.is_some()
        });
        line.unwrap_or_else(|| fail("no reload outcome logged"))
    };
    let out = reload(&config(route));
    if !out.contains("static routes replaced (1 routes)") {
        fail(&format!("adding the route: {out}"));
    }
    let fwd_before = iface_u64(&st(), "srv0", "forwarded");
    let got = ping(&cli, "10.79.77.1", 5);
    // The status file trails the counters by up to 100 ms.
    let mut after = st();
    wait_until(Duration::from_secs(1), || {
        after = st();
        iface_u64(&after, "srv0", "forwarded") - fwd_before >= got as u64
    });
    let fwd = iface_u64(&after, "srv0", "forwarded") - fwd_before;
    println!("MEASURE reload routes: 5 pings over the reloaded route: {got} replies, srv0 forwarded {fwd}");
    if got < 4 || fwd < got as u64 {
        fail(&format!(
            "the reloaded route is not used by the fast path: {got}/5 replies, {fwd} forwarded on srv0"
        ));
    }
    if after["router"]["routes_v4"].as_u64().unwrap_or(0) != routes_before + 1 {
        fail(&format!(
            "FIB routes {} -> {}",
            routes_before, after["router"]["routes_v4"]
        ));
    }
    // The metrics endpoint (on the gateway namespace's loopback) in router mode, through
    // the reference parser: interface counters and the FIB as the status file has them.
    let scrape = gw
        .cmd(&[
            "/usr/bin/python3",
            "-c",
            SCRAPE_PY,
            "http://127.0.0.1:9473/metrics",
        ])
        .output()
        .expect("python3");
    if !scrape.status.success() {
        fail(&format!(
            "scraping/parsing the metrics failed: {}",
            String::from_utf8_lossy(&scrape.stderr)
        ));
    }
    let m: Value = serde_json::from_slice(&scrape.stdout).unwrap_or(Value::Null);
    let fwd_metric = m["fastlag_interface_forwarded_packets_total{interface=srv0}"]
        .as_f64()
        .unwrap_or(-1.0);
    let routes_metric = m["fastlag_fib_routes{family=ipv4}"]
        .as_f64()
        .unwrap_or(-1.0);
    println!("MEASURE reload routes: metrics srv0 forwarded {fwd_metric}, FIB IPv4 routes {routes_metric}");
    if fwd_metric < (fwd + fwd_before) as f64 || routes_metric != (routes_before + 1) as f64 {
        fail(&format!(
            "metrics disagree with the status: srv0 forwarded {fwd_metric} (status >= {}), \
             IPv4 routes {routes_metric} (status {})",
            fwd + fwd_before,
            routes_before + 1
        ));
    }
    let out = reload(&config(""));
    if !out.contains("static routes replaced (0 routes)") {
        fail(&format!("removing the route: {out}"));
    }
    if ping(&cli, "10.79.77.1", 3) != 0 {
        fail("10.79.77.1 still answers after its route was removed");
    }
    // The rest of the FIB is untouched: the connected server still answers.
    if ping(&cli, "10.79.2.2", 3) < 2 {
        fail("the connected route broke with the static route reload");
    }
    fl.signal("TERM");
    assert!(
        fl.wait_timeout(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "fastlag did not exit cleanly:\n{}",
        tail(&read_log(), 40)
    );
}

/// UTC seconds since midnight of the first fastlag log line containing `needle` (tracing's
/// "2026-11-26T11:14:39.136370Z" prefix).
fn log_time_of_day(log: &str, needle: &str) -> Option<f64> {
    let line = log.lines().find(|l| l.contains(needle))?;
    let t = line.get(11..26)?; // "11:14:39.136370"
    let mut it = t.split(':');
    let h: f64 = it.next()?.parse().ok()?;
    let m: f64 = it.next()?.parse().ok()?;
    let s: f64 = it.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// `to - from` for two times of day, across midnight.
fn seconds_between(from: f64, to: f64) -> f64 {
    let d = (to - from).rem_euclid(86_400.0);
    if d > 43_200.0 {
        d - 86_400.0
    } else {
        d
    }
}
