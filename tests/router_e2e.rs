//! End to end, router mode (issue 5): a client reaches fastlag over a two-member LACP bond
//! whose other end is Open vSwitch (userspace datapath, its own namespace, bridging the
//! client); one server sits on another fastlag port, a second one on VLAN 100 of the same
//! bond (OVS tags its access port). fastlag runs inside its own namespace with IP
//! forwarding on: its TAPs, and the kernel routes and neighbours it mirrors, live there.
//! The config holds addresses only; everything else comes from the kernel.
//!
//! ```text
//!  ns cli                 ns ovs: OVS br0 (netdev)            ns gw: fastlag, its TAPs     ns srv
//!  eth0 10.10.1.2 ---- vc0 (untagged) --+
//!       2001:db8:1::2                   |                      bond "up" (802.3ad)
//!                                      br0 - bond0 - vb0 ---- m0 -+  wan0 10.10.1.1 untagged
//!  ns vsr                               |  LACP fast - vb1 ---- m1 -+  v100 10.10.3.1 VLAN 100
//!  eth0 10.10.3.2 ---- vs1 (tag 100) ---+
//!       2001:db8:3::2                                          port "lan": rs0 --------- eth0 10.10.2.2
//!                                                                lan0 10.10.2.1           2001:db8:2::2
//!                                                                                         lo 10.77.0.1,
//!  TAPs fl-wan0, fl-v100, fl-lan0: the interfaces'           2001:db8:77::1 (route test)
//!  addresses (10.10.N.1/24, 2001:db8:N::1/64) in the kernel.
//! ```
//!
//! Every test captures on the three TAPs (and, as a positive control, on a member link)
//! from the moment they are up to the end, and ends by checking that no 0x8809 frame
//! reached a TAP while LACP stayed negotiated on both sides.
//!
//! Numbers are printed on lines starting with "MEASURE" (`--no-capture` shows them).
//!
//! veth and af_packet: a veth hands locally sent TCP segments on with the checksum left
//! to "hardware" (and as TSO super-frames); packet sockets (OVS's, fastlag's) forward them
//! like that and the receiving kernel drops them. The hosts therefore turn TX checksum
//! offload (and with it TSO) off on their veth, through the ethtool ioctl (no ethtool
//! binary here). Real NICs hand fastlag complete frames.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Capture, Netns, Ovs, OvsLacp, Veth};
use testkit::*;

// Addresses (all inside namespaces the test creates).
const CLI4: &str = "10.10.1.2";
const CLI6: &str = "2001:db8:1::2";
const WAN4: &str = "10.10.1.1";
const WAN6: &str = "2001:db8:1::1";
const SRV4: &str = "10.10.2.2";
const SRV6: &str = "2001:db8:2::2";
const LAN4: &str = "10.10.2.1";
const LAN6: &str = "2001:db8:2::1";
const VSR4: &str = "10.10.3.2";
const VSR6: &str = "2001:db8:3::2";
const V100_4: &str = "10.10.3.1";
const V100_6: &str = "2001:db8:3::1";
/// Behind the server, reachable only through a route added in the gateway's kernel.
const FAR4: &str = "10.77.0.1";
const FAR4_NET: &str = "10.77.0.0/24";
const FAR6: &str = "2001:db8:77::1";
const FAR6_NET: &str = "2001:db8:77::/64";

/// fastlag's interfaces and their TAPs.
const IFACES: [(&str, &str); 3] = [
    ("wan0", "fl-wan0"),
    ("v100", "fl-v100"),
    ("lan0", "fl-lan0"),
];
/// fastlag's bond members and OVS's interfaces on the same links.
const MEMBERS: [&str; 2] = ["m0", "m1"];
const OVS_MEMBERS: [&str; 2] = ["vb0", "vb1"];
/// The partner state OVS must show for fastlag.
const OVS_SEES_US: &str = "activity timeout aggregation synchronized collecting distributing";

/// TCP transfer with a SHA-256 over the bytes on both ends, and the ethtool ioctl that
/// turns TX checksum offload off.
const HELPER_PY: &str = r#"
import ctypes, fcntl, hashlib, json, random, socket, struct, sys, time

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17


def ethtool(sock, iface, cmd, data=0):
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifr = struct.pack("16sP", iface.encode(), ctypes.addressof(buf)).ljust(40, b"\0")
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifr)
    return struct.unpack("II", buf.raw[:8])[1]


def tx_csum_off(iface):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ethtool(s, iface, ETHTOOL_STXCSUM, 0)
    left = ethtool(s, iface, ETHTOOL_GTXCSUM)
    print(json.dumps({"iface": iface, "tx_csum": left}))
    sys.exit(1 if left else 0)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv(bind, port, timeout):
    l = socket.socket(family(bind), socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((bind, port))
    l.listen(1)
    l.settimeout(timeout)
    print("ready", flush=True)
    c, peer = l.accept()
    c.settimeout(timeout)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    seconds = time.monotonic() - t0
    c.sendall(b"k")
    c.close()
    print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "seconds": seconds,
                      "peer": peer[0]}), flush=True)


def send(dst, port, total, seed, timeout):
    s = socket.create_connection((dst, port), timeout=timeout)
    rnd = random.Random(seed)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    while n < total:
        b = rnd.randbytes(min(1 << 20, total - n))
        s.sendall(b)
        h.update(b)
        n += len(b)
    s.shutdown(socket.SHUT_WR)
    ack = s.recv(1)
    seconds = time.monotonic() - t0
    s.close()
    print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "seconds": seconds,
                      "ack": ack.decode()}), flush=True)


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "tx-csum-off":
        tx_csum_off(a[2])
    elif a[1] == "recv":
        recv(a[2], int(a[3]), float(a[4]))
    else:
        send(a[2], int(a[3]), int(a[4]), int(a[5]), float(a[6]))
"#;

/// Runs `c`; (succeeded, stdout followed by stderr).
fn output(c: &mut Command) -> (bool, String) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

// ---------------------------------------------------------------------------------------
// ping

/// One `ping` run.
struct Ping {
    ok: bool,
    received: u32,
    /// Average round trip (ms) of the replies.
    avg_ms: Option<f64>,
    out: String,
}

/// `ping -n -c <count> -i 0.2 -W <wait> [extra] <dst>` inside `ns`.
fn ping(ns: &Netns, dst: &str, count: u32, extra: &[&str]) -> Ping {
    let family = if dst.contains(':') { "-6" } else { "-4" };
    let count = count.to_string();
    let mut args = vec!["ping", family, "-n", "-c", &count, "-i", "0.2", "-W", "1"];
    args.extend_from_slice(extra);
    args.push(dst);
    let (ok, out) = output(&mut ns.cmd(&args));
    let received = out
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(" packets transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0);
    let avg_ms = out.lines().find_map(|l| {
        let (_, v) = l.split_once("min/avg/max/mdev = ")?;
        v.split('/').nth(1)?.parse().ok()
    });
    Ping {
        ok,
        received,
        avg_ms,
        out,
    }
}

// ---------------------------------------------------------------------------------------
// fastlag in its namespace

/// fastlag running in the gateway namespace, with its files.
struct Gateway {
    proc: ChildGuard,
    log: PathBuf,
    status: PathBuf,
    report: PathBuf,
    started: Instant,
}

impl Gateway {
    fn start(ns: &Netns, scratch: &Scratch, config: &str) -> Gateway {
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
        let bin = env!("CARGO_BIN_EXE_fastlag");
        let (c, s, r) = (
            cfg.display().to_string(),
            status.display().to_string(),
            report.display().to_string(),
        );
        // `ip netns exec` and setpriv exec: the PID is fastlag's, and it dies with the test.
        let cmd =
            ns.cmd_dies_with_parent(&[bin, "run", "--config", &c, "--status", &s, "--report", &r]);
        let started = Instant::now();
        Gateway {
            proc: ChildGuard::spawn("fastlag", cmd, &log),
            log,
            status,
            report,
            started,
        }
    }

    fn status(&self) -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(&self.status).ok()?).ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A router interface's counters in a status snapshot (`interfaces[]`).
fn iface<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["interfaces"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .unwrap_or(&Value::Null)
}

fn forwarded(st: &Value, name: &str) -> u64 {
    iface(st, name)["forwarded"].as_u64().unwrap_or(0)
}

fn exceptions(st: &Value, name: &str, class: &str) -> u64 {
    iface(st, name)["exceptions"][class].as_u64().unwrap_or(0)
}

fn all_exceptions(st: &Value, name: &str) -> u64 {
    iface(st, name)["exceptions"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// The exception path counters of an interface (`router.interfaces[].kernel`).
fn kernel_counter(st: &Value, name: &str, key: &str) -> u64 {
    st["router"]["interfaces"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .and_then(|i| i["kernel"][key].as_u64())
        .unwrap_or(0)
}

/// A port in a status snapshot (`ports[]`).
fn port<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

fn router_u64(st: &Value, key: &str) -> u64 {
    st["router"][key].as_u64().unwrap_or(0)
}

fn bond(st: &Value) -> &Value {
    &st["bonds"][0]
}

fn member<'a>(st: &'a Value, name: &str) -> Option<&'a Value> {
    bond(st)["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

fn distributing(st: &Value, name: &str) -> bool {
    member(st, name).is_some_and(|m| m["distributing"] == true)
        && bond(st)["distributing"]
            .as_array()
            .is_some_and(|d| d.iter().any(|n| n == name))
}

fn lacpdus_rx(st: &Value) -> u64 {
    MEMBERS
        .iter()
        .filter_map(|m| member(st, m)?["lacp"]["lacpdus_rx"].as_u64())
        .sum()
}

fn ovs_converged(l: &OvsLacp) -> bool {
    l.status == "active negotiated"
        && l.members.len() == 2
        && OVS_MEMBERS.iter().all(|n| {
            l.member(n).is_some_and(|m| {
                m.status == "current attached" && m.partner_state.contains(OVS_SEES_US)
            })
        })
}

// ---------------------------------------------------------------------------------------
// The test bed

/// LACP as it stood when both sides had converged.
struct Negotiated {
    table_version: u64,
    lacpdus_rx: u64,
    /// Length of OVS's vswitchd.log then: what it logs afterwards is checked for bond
    /// and LACP changes.
    ovs_log_len: usize,
    at: Instant,
}

/// The whole topology. Fields drop in order: fastlag, captures, OVS, veths, namespaces,
/// scratch directory.
struct Rig {
    gw: Option<Gateway>,
    /// TAP captures (one per interface, in `IFACES` order), then the member control.
    captures: Vec<Capture>,
    ovs: Ovs,
    _veths: Vec<Veth>,
    cli: Netns,
    srv: Netns,
    vsr: Netns,
    _ovs_ns: Netns,
    gw_ns: Netns,
    negotiated: Option<Negotiated>,
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
    /// Builds the topology, starts OVS and fastlag, starts the TAP captures as soon as the
    /// TAPs are up, and waits for LACP to converge on both sides.
    fn up(tag: &str) -> Rig {
        let cpus = cpus();
        assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
        // "ovs-" prefix: a killed test's directory is reaped like the other OVS tests'.
        let scratch = Scratch::new(&format!("ovs-rt{tag}"));
        let script = scratch.file("helper.py");
        std::fs::write(&script, HELPER_PY).unwrap();

        let ovs_ns = Netns::new("ovs");
        let gw_ns = Netns::new("gw");
        let cli = Netns::new("cli");
        let srv = Netns::new("srv");
        let vsr = Netns::new("vsr");
        for h in [&cli, &srv, &vsr] {
            h.enable_ipv6();
            // Hosts only: their addresses are usable at once. (The gateway's TAPs do DAD.)
            h.sysctl(&["net.ipv6.conf.default.accept_dad=0"]);
        }
        // fastlag's ends are created with IPv6 off (fastlag keeps the kernel's IP stack
        // off them anyway).
        let veths = vec![
            Veth::new(Some(&ovs_ns), OVS_MEMBERS[0], Some(&gw_ns), MEMBERS[0]),
            Veth::new(Some(&ovs_ns), OVS_MEMBERS[1], Some(&gw_ns), MEMBERS[1]),
            Veth::new(Some(&cli), "eth0", Some(&ovs_ns), "vc0"),
            Veth::new(Some(&vsr), "eth0", Some(&ovs_ns), "vs1"),
            Veth::new(Some(&srv), "eth0", Some(&gw_ns), "rs0"),
        ];
        // The TAPs fastlag creates get IPv6; the kernel forwards what the fast path punts.
        gw_ns.sysctl(&[
            "net.ipv6.conf.default.disable_ipv6=0",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            // No per-destination rate limit on the gateway's ICMP errors (time exceeded,
            // IPv6 unreachable). IPv4 "net unreachable" for a forwarded packet has another,
            // box-wide limit (net.ipv4.route.error_cost/error_burst: 1/s after a burst of
            // 5) that is not per namespace: the tests do not expect an answer to every
            // unrouted IPv4 probe.
            "net.ipv4.icmp_ratelimit=0",
            "net.ipv6.icmp.ratelimit=0",
        ]);
        for (h, v4, v6, gw4, gw6) in [
            (&cli, CLI4, CLI6, WAN4, WAN6),
            (&srv, SRV4, SRV6, LAN4, LAN6),
            (&vsr, VSR4, VSR6, V100_4, V100_6),
        ] {
            h.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
            h.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
            h.ip(&["route", "add", "default", "via", gw4]);
            h.ip(&["-6", "route", "add", "default", "via", gw6]);
            let (ok, out) = output(&mut h.cmd(&[
                python(),
                &script.display().to_string(),
                "tx-csum-off",
                "eth0",
            ]));
            assert!(ok, "turning TX checksum offload off in {}: {out}", h.name);
        }
        srv.ip(&["addr", "add", &format!("{FAR4}/32"), "dev", "lo"]);
        srv.ip(&["addr", "add", &format!("{FAR6}/128"), "dev", "lo"]);

        let ovs = Ovs::start(&ovs_ns, &scratch.file("ovs"));
        ovs.netdev_bridge("br0");
        ovs.add_bond(
            "br0",
            "bond0",
            &OVS_MEMBERS,
            &[
                "lacp=active",
                "other_config:lacp-time=fast",
                "bond_mode=balance-tcp",
                // OVS moves hash buckets between members every 10 s under load ("shift
                // ... of load"): not an LACP change, but it would mask one in the log check.
                "other_config:bond-rebalance-interval=0",
            ],
        );
        ovs.vsctl(&["add-port", "br0", "vc0"]);
        ovs.vsctl(&["add-port", "br0", "vs1", "tag=100"]);

        let mut rig = Rig {
            gw: None,
            captures: Vec::new(),
            ovs,
            _veths: veths,
            cli,
            srv,
            vsr,
            _ovs_ns: ovs_ns,
            gw_ns,
            negotiated: None,
            script,
            scratch,
        };
        let config = format!(
            r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false

[[port]]
name = "m0"
device = "net_af_packet0,iface=m0"

[[port]]
name = "m1"
device = "net_af_packet1,iface=m1"

[[port]]
name = "lan"
device = "net_af_packet2,iface=rs0"

[[bond]]
name = "up"
members = ["m0", "m1"]
hash = "layer3+4"

[[interface]]
name = "wan0"
on = "up"
addresses = ["{WAN4}/24", "{WAN6}/64"]
tap_name = "fl-wan0"

[[interface]]
name = "v100"
on = "up"
vlan = 100
addresses = ["{V100_4}/24", "{V100_6}/64"]
tap_name = "fl-v100"

[[interface]]
name = "lan0"
on = "lan"
addresses = ["{LAN4}/24", "{LAN6}/64"]
tap_name = "fl-lan0"

[forward]
mode = "router"
"#,
            c = cpus[0],
            w = cpus[1],
        );
        rig.gw = Some(Gateway::start(&rig.gw_ns, &rig.scratch, &config));

        // Captures from the moment fastlag brings the TAPs up (it does so right after
        // "fastlag running"; LACP needs seconds more to aggregate, and LACPDUs keep flowing
        // every second in both directions on both members for the whole test).
        let taps_up = wait_until(Duration::from_secs(30), || {
            !rig.gw_mut().proc.running() || IFACES.iter().all(|(_, t)| rig.gw_ns.link_up(t))
        }) && rig.gw_mut().proc.running();
        ensure!(rig, taps_up, "fastlag's TAPs did not come up within 30 s");
        let taps_ms = rig.gw().started.elapsed().as_millis();
        let dir = rig.scratch.path.clone();
        for (name, tap) in IFACES {
            let c = Capture::start(&rig.gw_ns, tap, &dir, &format!("tap-{name}"), &[]);
            rig.captures.push(c);
        }
        // Positive control: the same capture method sees LACPDUs on a member link.
        let c = Capture::start(
            &rig.gw_ns,
            MEMBERS[0],
            &dir,
            "member-m0",
            &["ether", "proto", "0x8809"],
        );
        rig.captures.push(c);
        let capturing_ms = rig.gw().started.elapsed().as_millis();

        let (fl_ms, ovs_ms) = rig.wait_converged(Duration::from_secs(20));
        println!(
            "MEASURE {tag}: TAPs up {taps_ms} ms after spawning fastlag, 4 captures listening \
             at {capturing_ms} ms; LACP converged (all members distributing): fastlag {} ms, \
             OVS {} ms after spawn",
            fl_ms.map_or("never".into(), |v| v.to_string()),
            ovs_ms.map_or("never".into(), |v| v.to_string()),
        );
        ensure!(
            rig,
            fl_ms.is_some() && ovs_ms.is_some(),
            "LACP did not converge on both sides within 20 s (fastlag {fl_ms:?}, OVS {ovs_ms:?})"
        );
        // OVS enables a member a moment after LACP attaches it.
        let enabled = wait_until(Duration::from_secs(5), || {
            rig.ovs.members_enabled("bond0", &OVS_MEMBERS)
        });
        ensure!(rig, enabled, "OVS's bond did not enable both members");
        let st = rig.status();
        rig.negotiated = Some(Negotiated {
            table_version: bond(&st)["table_version"].as_u64().unwrap_or(0),
            lacpdus_rx: lacpdus_rx(&st),
            ovs_log_len: rig.ovs_log().len(),
            at: Instant::now(),
        });
        rig
    }

    fn gw(&self) -> &Gateway {
        self.gw.as_ref().expect("fastlag started")
    }

    fn gw_mut(&mut self) -> &mut Gateway {
        self.gw.as_mut().expect("fastlag started")
    }

    fn status(&self) -> Value {
        self.gw().status().unwrap_or(Value::Null)
    }

    /// A status snapshot written after this call (the file is rewritten periodically).
    fn fresh_status(&self) -> Value {
        let before = self.status()["uptime_ms"].as_u64().unwrap_or(0);
        let mut st = Value::Null;
        let ok = wait_until(Duration::from_secs(3), || {
            st = self.status();
            st["uptime_ms"].as_u64().unwrap_or(0) > before
        });
        ensure!(self, ok, "fastlag's status file is not refreshed");
        st
    }

    /// Polls the status until `cond` holds; the last snapshot and whether it held.
    fn wait_status(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&Value) -> bool,
    ) -> (Value, bool) {
        let mut st = Value::Null;
        let ok = wait_until(timeout, || {
            st = self.status();
            cond(&st)
        });
        (st, ok)
    }

    fn lacp(&self) -> OvsLacp {
        self.ovs.lacp("bond0").unwrap_or_default()
    }

    fn ovs_log(&self) -> String {
        std::fs::read_to_string(self.ovs.dir.join("vswitchd.log")).unwrap_or_default()
    }

    /// Milliseconds since fastlag was spawned until both members distribute on fastlag's
    /// side and OVS shows both attached with fastlag's full state.
    fn wait_converged(&self, timeout: Duration) -> (Option<u128>, Option<u128>) {
        let t0 = self.gw().started;
        let (mut fl, mut ovs) = (None, None);
        wait_until(timeout, || {
            if fl.is_none() {
                if let Some(st) = self.gw().status() {
                    if MEMBERS.iter().all(|m| distributing(&st, m)) {
                        fl = Some(t0.elapsed().as_millis());
                    }
                }
            }
            if ovs.is_none() && ovs_converged(&self.lacp()) {
                ovs = Some(t0.elapsed().as_millis());
            }
            fl.is_some() && ovs.is_some()
        });
        (fl, ovs)
    }

    /// TAP kernel counters (rx_packets: frames fastlag gave the kernel; tx_packets:
    /// frames the kernel sent) in `IFACES` order.
    fn tap_counters(&self) -> Vec<(u64, u64)> {
        IFACES
            .iter()
            .map(|(_, tap)| {
                let get = |c| {
                    self.gw_ns
                        .try_if_counter(tap, c)
                        .unwrap_or_else(|e| self.fail(&e))
                };
                (get("rx_packets"), get("tx_packets"))
            })
            .collect()
    }

    /// Everything needed to understand a failure.
    fn diag(&self) -> String {
        let mut s = String::new();
        for c in [&["lacp/show", "bond0"][..], &["bond/show", "bond0"]] {
            s += &format!(
                "\n=== ovs-appctl {}\n{}\n",
                c.join(" "),
                self.ovs.try_appctl(c).unwrap_or_else(|e| e)
            );
        }
        s += &self.ovs.logs();
        for args in [
            &["-s", "link", "show"][..],
            &["addr", "show"],
            &["route", "show"],
            &["-6", "route", "show"],
            &["neigh", "show"],
        ] {
            s += &format!(
                "=== ip -n {} {}\n{}\n",
                self.gw_ns.name,
                args.join(" "),
                self.gw_ns.try_ip(args).unwrap_or_else(|e| e)
            );
        }
        for h in [&self.cli, &self.srv, &self.vsr] {
            s += &format!(
                "=== ip -n {} neigh / addr\n{}{}\n",
                h.name,
                h.try_ip(&["neigh", "show"]).unwrap_or_else(|e| e),
                h.try_ip(&["-br", "addr", "show"]).unwrap_or_else(|e| e)
            );
        }
        if let Some(gw) = &self.gw {
            s += &format!(
                "=== fastlag status\n{}\n",
                gw.status()
                    .map(|v| serde_json::to_string_pretty(&v).unwrap())
                    .unwrap_or_else(|| "(none)".into())
            );
            s += &format!("=== fastlag log (last 60 lines)\n{}\n", tail(&gw.log(), 60));
        }
        s
    }

    /// Panics with `msg` and the state of everything.
    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.diag())
    }

    /// Pings until one reply comes back (the gateway's IPv6 addresses are usable once the
    /// kernel's DAD on the TAP is done); milliseconds it took.
    fn wait_reachable(&self, ns: &Netns, dst: &str, timeout: Duration) -> u128 {
        let t0 = Instant::now();
        let ok = wait_until(timeout, || ping(ns, dst, 1, &[]).ok);
        ensure!(
            self,
            ok,
            "{dst} not reachable from {} within {timeout:?}",
            ns.name
        );
        t0.elapsed().as_millis()
    }

    /// `count` pings that must all be answered; the average RTT.
    fn ping_all(&self, ns: &Netns, dst: &str, count: u32) -> f64 {
        let p = ping(ns, dst, count, &[]);
        ensure!(
            self,
            p.ok && p.received == count,
            "ping {dst} from {}: {} of {count} answered\n{}",
            ns.name,
            p.received,
            p.out
        );
        p.avg_ms.unwrap_or(f64::NAN)
    }

    /// A verified TCP transfer of `bytes` from `from` to `to_ns`/`to_ip`; throughput in
    /// Mbit/s.
    fn transfer(&self, from: &Netns, to_ns: &Netns, to_ip: &str, port: u16, bytes: u64) -> f64 {
        let sc = self.script.display().to_string();
        let tag = format!("tcp-{port}");
        let (out, err) = (
            self.scratch.file(&format!("{tag}.recv.out")),
            self.scratch.file(&format!("{tag}.recv.err")),
        );
        let port_s = port.to_string();
        let mut rx = spawn_logged(
            "tcp receiver",
            to_ns.cmd_dies_with_parent(&[python(), &sc, "recv", to_ip, &port_s, "30"]),
            &out,
            &err,
        );
        let ready = wait_until(Duration::from_secs(10), || {
            !rx.running() || std::fs::read_to_string(&out).is_ok_and(|t| t.contains("ready"))
        }) && rx.running();
        ensure!(
            self,
            ready,
            "TCP receiver did not start: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        // No `timeout`: the sender's socket times out by itself, and setpriv stops it
        // if the test process dies.
        let (ok, sent) = output(&mut from.cmd_dies_with_parent(&[
            python(),
            &sc,
            "send",
            to_ip,
            &port_s,
            &bytes.to_string(),
            &port_s,
            "30",
        ]));
        let exited = rx.wait_timeout(Duration::from_secs(10));
        let got = std::fs::read_to_string(&out).unwrap_or_default();
        ensure!(
            self,
            ok && exited.is_some_and(|s| s.success()),
            "TCP transfer to {to_ip} failed: sender {ok} {sent}\nreceiver: {got}{}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        let parse = |t: &str| -> Value {
            t.lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .unwrap_or(Value::Null)
        };
        let (s, r) = (parse(&sent), parse(&got));
        ensure!(
            self,
            s["bytes"] == bytes
                && r["bytes"] == bytes
                && s["sha256"].is_string()
                && s["sha256"] == r["sha256"],
            "TCP transfer to {to_ip}: data differs\nsender: {s}\nreceiver: {r}"
        );
        let secs = s["seconds"].as_f64().unwrap_or(f64::NAN);
        let mbps = bytes as f64 * 8.0 / secs / 1e6;
        println!(
            "MEASURE tcp {} -> {to_ip}: {bytes} bytes in {secs:.2} s = {mbps:.0} Mbit/s, \
             sha256 {} on both ends",
            from.name,
            s["sha256"].as_str().unwrap_or("").get(..16).unwrap_or("")
        );
        mbps
    }

    /// The end of every test: LACP is still negotiated (no table change since it
    /// converged, LACPDUs kept arriving, OVS attached with fastlag's full state); the
    /// captures hold no 0x8809 frame on any TAP while the member control holds some;
    /// fastlag stops cleanly.
    fn finish(mut self) {
        let st = self.fresh_status();
        let neg = self.negotiated.as_ref().expect("converged");
        let secs = neg.at.elapsed().as_secs_f64();
        let table_now = bond(&st)["table_version"].as_u64().unwrap_or(0);
        let pdus = lacpdus_rx(&st).saturating_sub(neg.lacpdus_rx);
        let lacp = self.lacp();
        ensure!(
            self,
            MEMBERS.iter().all(|m| distributing(&st, m)) && ovs_converged(&lacp),
            "LACP is no longer negotiated at the end of the test:\n{}",
            lacp.text
        );
        ensure!(
            self,
            table_now == neg.table_version,
            "fastlag's bond table changed during the test (version {} -> {table_now}): \
             LACP did not stay up",
            neg.table_version
        );
        // What the kernel sends through a TAP is never lost on the way out: the TAP of an
        // interface on the bond has no carrier until the bond distributes, so the kernel
        // holds back (and redoes IPv6 DAD/MLD) instead of sending into a bond that is down.
        for i in st["router"]["interfaces"].as_array().into_iter().flatten() {
            let dropped = i["kernel"]["from_kernel_dropped"].as_u64().unwrap_or(0);
            ensure!(
                self,
                dropped == 0,
                "{} frames from the kernel were dropped on interface {}",
                dropped,
                i["name"]
            );
        }
        // OVS logged no member or LACP change since (it logs "member vb0: disabled",
        // "link state down", "active member is now ..." and LACP status changes).
        let ovs_log = self.ovs_log();
        let changes: Vec<&str> = ovs_log
            .get(neg.ovs_log_len..)
            .unwrap_or("")
            .lines()
            .filter(|l| l.contains("|bond|") || l.contains("|lacp|"))
            .collect();
        ensure!(
            self,
            changes.is_empty(),
            "OVS logged bond/LACP changes after convergence:\n{}",
            changes.join("\n")
        );
        // Fast rate: one LACPDU per second per member from OVS.
        ensure!(
            self,
            pdus as f64 >= secs.floor(),
            "only {pdus} LACPDUs received in {secs:.1} s"
        );
        let mut caps: Vec<Capture> = std::mem::take(&mut self.captures);
        let mut summary = Vec::new();
        for (n, c) in caps.iter_mut().enumerate() {
            let got = c.stop();
            let slow = got
                .frames
                .iter()
                .filter(|f| net::is_slow_protocols(f))
                .count();
            let short = got.frames.iter().filter(|f| f.len() < 14).count();
            summary.push(format!(
                "{}: {} frames, {slow} of them 0x8809, {:?} dropped by the kernel",
                c.iface,
                got.frames.len(),
                got.dropped_by_kernel
            ));
            ensure!(
                self,
                got.dropped_by_kernel == Some(0) && short == 0,
                "capture on {} incomplete ({short} short frames):\n{}",
                c.iface,
                got.log
            );
            if n < IFACES.len() {
                ensure!(
                    self,
                    slow == 0,
                    "{slow} Slow Protocols (0x8809) frames reached the TAP {}",
                    c.iface
                );
            } else {
                ensure!(
                    self,
                    slow > 0,
                    "the control capture on member m0 saw no LACPDU: the capture method \
                     does not show them"
                );
            }
        }
        println!(
            "MEASURE captures over {secs:.1} s of negotiated LACP ({pdus} LACPDUs received by \
             fastlag, bond table version unchanged at {}): {}",
            neg.table_version,
            summary.join("; ")
        );
        let gw = self.gw.as_mut().expect("fastlag started");
        gw.proc.signal("TERM");
        let exit = gw.proc.wait_timeout(Duration::from_secs(20));
        ensure!(
            self,
            exit.is_some_and(|s| s.success()),
            "fastlag did not stop cleanly: {exit:?}"
        );
        let rep: Value = std::fs::read_to_string(&self.gw().report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        ensure!(self, !rep.is_null(), "no report after SIGTERM");
    }
}

// ---------------------------------------------------------------------------------------
// Tests

/// With addresses only in the config: the gateway answers ping (kernel, through the TAP),
/// client and both servers reach each other over IPv4 and IPv6 (the untagged interface on
/// the bond, a plain port, VLAN 100 on the same bond), ARP and ND are resolved by the
/// kernel through the TAPs and mirrored, and TTL/hop limit 1 gets the gateway's time
/// exceeded.
#[test]
fn router_reachability_arp_nd_ttl() {
    let rig = Rig::up("reach");
    let started = rig.gw().started;

    // The gateway's own addresses: answered by the kernel behind the TAP.
    let gw4_first = rig.wait_reachable(&rig.cli, WAN4, Duration::from_secs(10));
    let gw6_first = rig.wait_reachable(&rig.cli, WAN6, Duration::from_secs(10));
    let gw6_since_spawn = started.elapsed().as_millis();
    let gw4 = rig.ping_all(&rig.cli, WAN4, 5);
    let gw6 = rig.ping_all(&rig.cli, WAN6, 5);
    println!(
        "MEASURE gateway ping: {WAN4} first reply after {gw4_first} ms of trying (ARP \
         through the TAP), avg RTT {gw4:.3} ms; {WAN6} first reply after {gw6_first} ms \
         ({gw6_since_spawn} ms after spawning fastlag), avg RTT {gw6:.3} ms"
    );
    let st = rig.fresh_status();
    ensure!(
        rig,
        exceptions(&st, "wan0", "local_icmp") >= 10,
        "pings to the gateway were not handed to the kernel as local ICMP: {}",
        iface(&st, "wan0")
    );

    // Through the gateway, every host to every host, both families.
    let mut rtts = Vec::new();
    for (from, to, addrs) in [
        (&rig.cli, "srv", [SRV4, SRV6]),
        (&rig.cli, "vsr", [VSR4, VSR6]),
        (&rig.srv, "vsr", [VSR4, VSR6]),
        (&rig.vsr, "cli", [CLI4, CLI6]),
    ] {
        for a in addrs {
            let avg = rig.ping_all(from, a, 5);
            rtts.push(format!("{} -> {to} {a}: {avg:.3} ms", from.name));
        }
    }
    println!(
        "MEASURE routed ping avg RTT (5 each, first includes resolution): {}",
        rtts.join("; ")
    );

    // ARP and ND went to the kernel through the TAPs, and the kernel's neighbours are
    // mirrored into the FIB.
    let st = rig.fresh_status();
    for (name, _) in IFACES {
        let (arp, nd) = (exceptions(&st, name, "arp"), exceptions(&st, name, "nd"));
        ensure!(
            rig,
            arp > 0 && nd > 0 && forwarded(&st, name) > 0,
            "interface {name}: arp {arp}, nd {nd}, forwarded {} (expected all > 0)",
            forwarded(&st, name)
        );
        ensure!(
            rig,
            kernel_counter(&st, name, "to_kernel") > 0
                && kernel_counter(&st, name, "from_kernel") > 0,
            "interface {name}: the exception path was not used both ways: {}",
            st["router"]
        );
    }
    ensure!(
        rig,
        router_u64(&st, "kernel_neighbors") >= 6,
        "expected the kernel's 6 neighbours (3 hosts x 2 families) mirrored: {}",
        st["router"]
    );
    let bond_mac = bond(&st)["mac"].as_str().unwrap_or("").to_lowercase();
    let neigh = rig.gw_ns.ip(&["neigh", "show"]);
    for (h, tap, addrs) in [
        (&rig.cli, "fl-wan0", [CLI4, CLI6]),
        (&rig.srv, "fl-lan0", [SRV4, SRV6]),
        (&rig.vsr, "fl-v100", [VSR4, VSR6]),
    ] {
        let mac = h.if_mac("eth0");
        for a in addrs {
            ensure!(
                rig,
                neigh
                    .lines()
                    .any(|l| l.starts_with(&format!("{a} dev {tap} lladdr {mac}"))),
                "the gateway's kernel has no neighbour {a} lladdr {mac} on {tap}:\n{neigh}"
            );
        }
    }
    // The kernel answered with the interface's MAC: the TAP carries the bond's MAC.
    let tap_mac = rig.gw_ns.if_mac("fl-wan0");
    let cli_neigh = rig.cli.ip(&["neigh", "show", WAN4]);
    ensure!(
        rig,
        tap_mac == bond_mac && cli_neigh.contains(&format!("lladdr {bond_mac}")),
        "fl-wan0 has MAC {tap_mac}, the bond {bond_mac}; the client resolved the gateway \
         as: {cli_neigh}"
    );
    println!(
        "MEASURE arp/nd: exceptions arp/nd wan0 {}/{}, v100 {}/{}, lan0 {}/{}; kernel \
         neighbours mirrored {}, kernel routes mirrored {}, FIB version {}",
        exceptions(&st, "wan0", "arp"),
        exceptions(&st, "wan0", "nd"),
        exceptions(&st, "v100", "arp"),
        exceptions(&st, "v100", "nd"),
        exceptions(&st, "lan0", "arp"),
        exceptions(&st, "lan0", "nd"),
        router_u64(&st, "kernel_neighbors"),
        router_u64(&st, "kernel_routes"),
        router_u64(&st, "fib_version")
    );

    // TTL / hop limit 1: the gateway's kernel answers time exceeded, from the address of
    // the interface the probe came in on.
    let ttl_before =
        exceptions(&st, "wan0", "ttl_exceeded") + exceptions(&st, "lan0", "ttl_exceeded");
    for (from, dst, expect) in [
        (
            &rig.cli,
            SRV4,
            format!("From {WAN4} icmp_seq=1 Time to live exceeded"),
        ),
        (
            &rig.cli,
            SRV6,
            format!("From {WAN6} icmp_seq=1 Time exceeded: Hop limit"),
        ),
        (
            &rig.cli,
            VSR4,
            format!("From {WAN4} icmp_seq=1 Time to live exceeded"),
        ),
        (
            &rig.srv,
            CLI4,
            format!("From {LAN4} icmp_seq=1 Time to live exceeded"),
        ),
        (
            &rig.srv,
            CLI6,
            format!("From {LAN6} icmp_seq=1 Time exceeded: Hop limit"),
        ),
    ] {
        let p = ping(from, dst, 1, &["-t", "1"]);
        ensure!(
            rig,
            !p.ok && p.received == 0 && p.out.contains(&expect),
            "ping -t 1 {dst} from {}: expected \"{expect}\":\n{}",
            from.name,
            p.out
        );
    }
    let st = rig.fresh_status();
    let ttl_after =
        exceptions(&st, "wan0", "ttl_exceeded") + exceptions(&st, "lan0", "ttl_exceeded");
    ensure!(
        rig,
        ttl_after >= ttl_before + 5,
        "TTL-1 probes not counted as ttl_exceeded exceptions ({ttl_before} -> {ttl_after})"
    );
    println!("MEASURE ttl 1: 5 probes (v4/v6, bond/VLAN/port), 5 time exceeded from the ingress interface's address");
    rig.finish();
}

/// Verified TCP transfers (IPv4 to the server on the plain port, IPv6 to the same
/// server, IPv4 to the server on VLAN 100 of the bond) take the fast path: the TAPs'
/// kernel counters grow by less than 1% of the packets forwarded.
#[test]
fn router_tcp_transfer_takes_fast_path() {
    let rig = Rig::up("tcp");
    rig.wait_reachable(&rig.cli, WAN6, Duration::from_secs(10));
    // Resolve every neighbour first: only the transfer is measured.
    for (from, dst) in [(&rig.cli, SRV4), (&rig.cli, SRV6), (&rig.cli, VSR4)] {
        rig.ping_all(from, dst, 2);
    }
    let st0 = rig.fresh_status();
    let taps0 = rig.tap_counters();
    let srv_rx0 = rig.srv.try_if_counter("eth0", "rx_packets").unwrap();
    let vsr_rx0 = rig.vsr.try_if_counter("eth0", "rx_packets").unwrap();
    let t0 = Instant::now();

    const MIB: u64 = 1 << 20;
    let v4 = rig.transfer(&rig.cli, &rig.srv, SRV4, 5001, 128 * MIB);
    let v6 = rig.transfer(&rig.cli, &rig.srv, SRV6, 5002, 64 * MIB);
    let vlan = rig.transfer(&rig.cli, &rig.vsr, VSR4, 5003, 64 * MIB);
    let secs = t0.elapsed().as_secs_f64();

    let st1 = rig.fresh_status();
    let taps1 = rig.tap_counters();
    let srv_rx = rig.srv.try_if_counter("eth0", "rx_packets").unwrap() - srv_rx0;
    let vsr_rx = rig.vsr.try_if_counter("eth0", "rx_packets").unwrap() - vsr_rx0;
    let d = |f: &dyn Fn(&Value) -> u64| f(&st1).saturating_sub(f(&st0));
    let fwd: Vec<u64> = IFACES
        .iter()
        .map(|(n, _)| d(&|s| forwarded(s, n)))
        .collect();
    let fwd_total: u64 = fwd.iter().sum();
    let exc: Vec<u64> = IFACES
        .iter()
        .map(|(n, _)| d(&|s| all_exceptions(s, n)))
        .collect();
    let tap: Vec<(u64, u64)> = taps0
        .iter()
        .zip(&taps1)
        .map(|(a, b)| (b.0 - a.0, b.1 - a.1))
        .collect();
    let tap_total: u64 = tap.iter().map(|(r, t)| r + t).sum();
    let payload_segments = (256 * MIB) / 1448;
    // Where packets went besides: fastlag's own view of the exception path and of its
    // transmit queues (OVS's userspace datapath drops some under this load: it has no
    // counter for it, TCP retransmits).
    let exception_path: Vec<String> = IFACES
        .iter()
        .map(|(n, _)| {
            format!(
                "{n} to/from kernel {}/{}",
                d(&|s| kernel_counter(s, n, "to_kernel")),
                d(&|s| kernel_counter(s, n, "from_kernel"))
            )
        })
        .collect();
    let ports: Vec<String> = ["m0", "m1", "lan"]
        .iter()
        .map(|p| {
            let w = |s: &Value, k: &str| port(s, p)["workers"][k].as_u64().unwrap_or(0);
            format!(
                "{p} tx {} drop_tx_full {}",
                d(&|s| w(s, "tx")),
                d(&|s| w(s, "drop_tx_full"))
            )
        })
        .collect();
    let failed: u64 = IFACES
        .iter()
        .map(|(n, _)| d(&|s| iface(s, n)["egress_failed"].as_u64().unwrap_or(0)))
        .sum();
    println!(
        "MEASURE tcp (fastlag side): {}; {}; egress_failed {failed}; drops by reason at the \
         end: wan0 {}, v100 {}, lan0 {}",
        exception_path.join(", "),
        ports.join(", "),
        iface(&st1, "wan0")["drops"],
        iface(&st1, "v100")["drops"],
        iface(&st1, "lan0")["drops"],
    );
    println!(
        "MEASURE tcp: v4 {v4:.0} Mbit/s, v6 {v6:.0} Mbit/s, v4 over VLAN 100 {vlan:.0} \
         Mbit/s; 256 MiB in {secs:.1} s. Fast path forwarded {fwd_total} packets (wan0 {}, \
         v100 {}, lan0 {}); server eth0 received {srv_rx}, VLAN server {vsr_rx}. TAPs' \
         kernel counters grew rx/tx wan0 {}/{}, v100 {}/{}, lan0 {}/{} = {tap_total} \
         packets ({:.4}% of forwarded); exceptions in the window wan0 {}, v100 {}, lan0 {}",
        fwd[0],
        fwd[1],
        fwd[2],
        tap[0].0,
        tap[0].1,
        tap[1].0,
        tap[1].1,
        tap[2].0,
        tap[2].1,
        tap_total as f64 * 100.0 / fwd_total.max(1) as f64,
        exc[0],
        exc[1],
        exc[2],
    );
    // The data went through the fast path: at least one forwarded packet per payload
    // segment toward the servers, and the servers received about what fastlag forwarded.
    ensure!(
        rig,
        fwd[1] + fwd[2] >= payload_segments,
        "the fast path forwarded only {} packets toward the servers for {payload_segments} \
         payload segments",
        fwd[1] + fwd[2]
    );
    ensure!(
        rig,
        srv_rx + vsr_rx <= (fwd[1] + fwd[2]) + tap_total + 100,
        "the servers received {} packets, more than the fast path ({}) and the kernel \
         ({tap_total}) sent them",
        srv_rx + vsr_rx,
        fwd[1] + fwd[2]
    );
    ensure!(
        rig,
        tap_total * 100 < fwd_total,
        "the TAPs' kernel counters grew by {tap_total} packets during transfers of \
         {fwd_total} forwarded packets (>= 1%): traffic went through the kernel"
    );
    rig.finish();
}

/// Which family a route cycle exercises.
struct RouteCase {
    net: &'static str,
    via: &'static str,
    target: &'static str,
    family: &'static str,
    unreachable: &'static str,
}

/// A route added in the gateway's kernel on the TAP side is used by the fast path within
/// a second; removed, the fast path stops using it (the packets go to the kernel, which
/// has no route either and answers unreachable). IPv4 and IPv6.
#[test]
fn router_kernel_route_is_mirrored() {
    let rig = Rig::up("route");
    rig.wait_reachable(&rig.cli, WAN6, Duration::from_secs(10));
    for dst in [SRV4, SRV6] {
        rig.ping_all(&rig.cli, dst, 2);
    }
    for case in [
        RouteCase {
            net: FAR4_NET,
            via: SRV4,
            target: FAR4,
            family: "-4",
            unreachable: "Destination Net Unreachable",
        },
        RouteCase {
            net: FAR6_NET,
            via: SRV6,
            target: FAR6,
            family: "-6",
            unreachable: "Destination unreachable: No route",
        },
    ] {
        route_cycle(&rig, &case);
    }
    rig.finish();
}

fn route_cycle(rig: &Rig, c: &RouteCase) {
    let gw_addr = if c.family == "-6" { WAN6 } else { WAN4 };
    // Before: no route anywhere; the kernel answers unreachable.
    let p = ping(&rig.cli, c.target, 2, &[]);
    ensure!(
        rig,
        !p.ok && p.out.contains(&format!("From {gw_addr}")) && p.out.contains(c.unreachable),
        "{} reachable before the route exists:\n{}",
        c.target,
        p.out
    );

    // A steady probe stream: 50 pings a second.
    let (out, err) = (
        rig.scratch.file(&format!("ping{}.out", c.family)),
        rig.scratch.file(&format!("ping{}.err", c.family)),
    );
    let mut bg = spawn_logged(
        "ping",
        rig.cli
            .cmd_dies_with_parent(&["ping", c.family, "-n", "-i", "0.02", c.target]),
        &out,
        &err,
    );
    let st = rig.fresh_status();
    let no_route0 = exceptions(&st, "wan0", "no_route");
    let (_, flowing) = rig.wait_status(Duration::from_secs(3), |s| {
        exceptions(s, "wan0", "no_route") >= no_route0 + 5
    });
    ensure!(
        rig,
        flowing,
        "the probes do not reach fastlag as no_route exceptions"
    );

    let base = rig.fresh_status();
    let (fwd0, routes0, fib0) = (
        forwarded(&base, "lan0"),
        router_u64(&base, "kernel_routes"),
        router_u64(&base, "fib_version"),
    );
    let t0 = Instant::now();
    rig.gw_ns
        .ip(&[c.family, "route", "add", c.net, "via", c.via]);
    let (mut mirrored_ms, mut fast_ms) = (None, None);
    wait_until(Duration::from_secs(3), || {
        let s = rig.status();
        if mirrored_ms.is_none() && router_u64(&s, "kernel_routes") > routes0 {
            mirrored_ms = Some(t0.elapsed().as_millis());
        }
        if fast_ms.is_none() && forwarded(&s, "lan0") >= fwd0 + 3 {
            fast_ms = Some(t0.elapsed().as_millis());
        }
        mirrored_ms.is_some() && fast_ms.is_some()
    });
    ensure!(
        rig,
        fast_ms.is_some_and(|ms| ms <= 1000),
        "route {} added in the kernel: status shows it mirrored after {mirrored_ms:?} ms, \
         fast path forwarding to {} after {fast_ms:?} ms (limit 1000 ms; FIB version was \
         {fib0})",
        c.net,
        c.target
    );
    // In use: over half a second every probe is forwarded, none goes to the kernel.
    let s1 = rig.fresh_status();
    let (_, in_use) = rig.wait_status(Duration::from_secs(2), |s| {
        forwarded(s, "lan0") >= forwarded(&s1, "lan0") + 20
    });
    let s2 = rig.fresh_status();
    let (fwd_window, no_route_window) = (
        forwarded(&s2, "lan0") - forwarded(&s1, "lan0"),
        exceptions(&s2, "wan0", "no_route") - exceptions(&s1, "wan0", "no_route"),
    );
    ensure!(
        rig,
        in_use && no_route_window == 0,
        "with the route, the fast path forwarded {fwd_window} probes while {no_route_window} \
         went to the kernel as no_route"
    );

    // Removed: the fast path stops forwarding it, the probes go to the kernel again.
    let del = rig.fresh_status();
    let (fwd_del, no_route_del) = (
        forwarded(&del, "lan0"),
        exceptions(&del, "wan0", "no_route"),
    );
    let t1 = Instant::now();
    rig.gw_ns.ip(&[c.family, "route", "del", c.net]);
    let (mut unmirrored_ms, mut punted_ms) = (None, None);
    wait_until(Duration::from_secs(3), || {
        let s = rig.status();
        if unmirrored_ms.is_none() && router_u64(&s, "kernel_routes") == routes0 {
            unmirrored_ms = Some(t1.elapsed().as_millis());
        }
        if punted_ms.is_none() && exceptions(&s, "wan0", "no_route") >= no_route_del + 3 {
            punted_ms = Some(t1.elapsed().as_millis());
        }
        unmirrored_ms.is_some() && punted_ms.is_some()
    });
    ensure!(
        rig,
        unmirrored_ms.is_some() && punted_ms.is_some_and(|ms| ms <= 1000),
        "route {} removed: status shows it gone after {unmirrored_ms:?} ms, probes back to \
         the kernel after {punted_ms:?} ms (limit 1000 ms)",
        c.net
    );
    let s3 = rig.fresh_status();
    let (_, punting) = rig.wait_status(Duration::from_secs(2), |s| {
        exceptions(s, "wan0", "no_route") >= exceptions(&s3, "wan0", "no_route") + 20
    });
    let s4 = rig.fresh_status();
    let fwd_after = forwarded(&s4, "lan0") - forwarded(&s3, "lan0");
    ensure!(
        rig,
        punting && fwd_after == 0,
        "after removing the route the fast path still forwarded {fwd_after} probes to {}",
        c.target
    );
    let fwd_leftover = forwarded(&s3, "lan0") - fwd_del;

    bg.signal("INT");
    bg.wait_timeout(Duration::from_secs(5));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let replies = text.lines().filter(|l| l.contains(" bytes from ")).count();
    let unreach = text.lines().filter(|l| l.contains(c.unreachable)).count();
    // The kernel's view: no route any more (its unreachable answers are rate limited,
    // see Rig::up).
    let p = ping(&rig.cli, c.target, 2, &[]);
    let kernel = rig.gw_ns.try_ip(&[c.family, "route", "get", c.target]);
    ensure!(
        rig,
        !p.ok && p.received == 0 && kernel.is_err(),
        "{} still reachable after the route was removed:\n{}\nip route get: {kernel:?}",
        c.target,
        p.out
    );
    println!(
        "MEASURE kernel route {} via {}: added -> mirrored in status {} ms, fast path \
         forwarding {} ms; in use: {fwd_window} probes forwarded, 0 to the kernel; removed \
         -> gone from status {} ms, probes back to the kernel {} ms ({fwd_leftover} \
         forwarded in between), then 0 forwarded; background ping: {replies} replies, \
         {unreach} unreachable (status refresh ~100 ms, 10 ms polling)",
        c.net,
        c.via,
        mirrored_ms.map_or("?".into(), |v| v.to_string()),
        fast_ms.map_or("?".into(), |v| v.to_string()),
        unmirrored_ms.map_or("?".into(), |v| v.to_string()),
        punted_ms.map_or("?".into(), |v| v.to_string()),
    );
}
