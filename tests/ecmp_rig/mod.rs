//! The ECMP test bed of router_ecmp.rs and frr_ecmp.rs: fastlag in a namespace with a
//! client on port "lan" and two upstream namespaces on ports "u1" and "u2", UDP flows from
//! the client to an address both upstreams own, and per flow the upstream it reached.
//!
//! ```text
//!  ns cli                ns gw: fastlag, its TAPs                 ns up1 / ns up2
//!  eth0 10.40.0.2 ---- port "lan" l0: lan0 10.40.0.1   port "u1" u1: wan1 10.41.0.1 ---- eth0 10.41.0.2
//!       2001:db8:40::2                                port "u2" u2: wan2 10.42.0.1 ---- eth0 10.42.0.2
//!                                                                   lo 10.99.0.1, 2001:db8:99::1 (both)
//! ```
//!
//! veth and af_packet: a veth leaves a locally sent packet's UDP checksum to "hardware", the
//! packet socket forwards it so and the receiving kernel drops it: the hosts turn TX checksum
//! offload off on their veth (as in router_e2e.rs). Real NICs hand fastlag complete frames.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use testkit::net::{Netns, Veth};
use testkit::*;

pub(crate) const CLI4: &str = "10.40.0.2";
pub(crate) const CLI6: &str = "2001:db8:40::2";
pub(crate) const FAR4: &str = "10.99.0.1";
pub(crate) const FAR6: &str = "2001:db8:99::1";
pub(crate) const PORT: u16 = 5300;

/// UDP receiver (both families; prints what it got when interrupted) and the sender of
/// numbered packets from one source port per flow.
const HELPER_PY: &str = r#"
import ctypes, fcntl, json, signal, socket, struct, sys, time

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
    sys.exit(1 if ethtool(s, iface, ETHTOOL_GTXCSUM) else 0)

def recv(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind(("::", port))
    rows = []
    def done(*_):
        print(json.dumps(rows), flush=True)
        sys.exit(0)
    signal.signal(signal.SIGINT, done)
    print("ready", file=sys.stderr, flush=True)
    while True:
        d, a = s.recvfrom(2048)
        rows.append([a[0].removeprefix("::ffff:"), a[1], int.from_bytes(d[:4], "big"), time.time(),
                     int.from_bytes(d[4:8], "big")])

def send(dst, port, base, flows, rounds, gap, tag):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    n = 0
    for r in range(rounds):
        for f in range(flows):
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", base + f))
            s.sendto(r.to_bytes(4, "big") + tag.to_bytes(4, "big") + bytes(56), (dst, port))
            s.close()
            n += 1
            if n % 10 == 0:
                time.sleep(0.001)
        time.sleep(gap)
    print(json.dumps({"sent": n}), flush=True)

if __name__ == "__main__":
    a = sys.argv
    if a[1] == "tx-csum-off":
        tx_csum_off(a[2])
    elif a[1] == "recv":
        recv(int(a[2]))
    else:
        send(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]), float(a[7]), int(a[8]))
"#;

pub(crate) fn output(c: &mut Command) -> (bool, String) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// One packet as a receiver saw it: (source address, source port, round, arrival time).
pub(crate) type Row = (String, u16, u32, f64);

pub(crate) struct Receiver {
    pub(crate) proc: ChildGuard,
    pub(crate) out: PathBuf,
}

/// Fields drop in order: fastlag first, then links and namespaces, the scratch dir last.
pub(crate) struct Rig {
    pub(crate) gw: Option<ChildGuard>,
    pub(crate) _veths: Vec<Veth>,
    pub(crate) cli: Netns,
    pub(crate) ups: [Netns; 2],
    pub(crate) gw_ns: Netns,
    pub(crate) log: PathBuf,
    pub(crate) status: PathBuf,
    pub(crate) sock: PathBuf,
    pub(crate) script: PathBuf,
    pub(crate) scratch: Scratch,
}

impl Rig {
    pub(crate) fn up(tag: &str, back_routes: bool) -> Rig {
        let cpus = cpus();
        assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
        let scratch = Scratch::new(&format!("ecmp{tag}"));
        let script = scratch.file("helper.py");
        std::fs::write(&script, HELPER_PY).unwrap();
        let gw_ns = Netns::new("ecgw");
        let cli = Netns::new("eccli");
        let ups = [Netns::new("ecupa"), Netns::new("ecupb")];
        for h in [&cli, &ups[0], &ups[1]] {
            h.enable_ipv6();
            h.sysctl(&["net.ipv6.conf.default.accept_dad=0"]);
        }
        let veths = vec![
            Veth::new(Some(&cli), "eth0", Some(&gw_ns), "l0"),
            Veth::new(Some(&ups[0]), "eth0", Some(&gw_ns), "u1"),
            Veth::new(Some(&ups[1]), "eth0", Some(&gw_ns), "u2"),
        ];
        gw_ns.sysctl(&[
            "net.ipv6.conf.default.disable_ipv6=0",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        for h in [&cli, &ups[0], &ups[1]] {
            let (ok, out) = output(&mut h.cmd(&[
                python(),
                &script.display().to_string(),
                "tx-csum-off",
                "eth0",
            ]));
            assert!(ok, "turning TX checksum offload off in {}: {out}", h.name);
        }
        cli.ip(&["addr", "add", &format!("{CLI4}/24"), "dev", "eth0"]);
        cli.ip(&["addr", "add", &format!("{CLI6}/64"), "dev", "eth0", "nodad"]);
        cli.ip(&["route", "add", "default", "via", "10.40.0.1"]);
        cli.ip(&["-6", "route", "add", "default", "via", "2001:db8:40::1"]);
        for (i, h) in ups.iter().enumerate() {
            let n = 41 + i;
            h.ip(&["addr", "add", &format!("10.{n}.0.2/24"), "dev", "eth0"]);
            h.ip(&[
                "addr",
                "add",
                &format!("2001:db8:{n}::2/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            if back_routes {
                h.ip(&["route", "add", "default", "via", &format!("10.{n}.0.1")]);
                h.ip(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("2001:db8:{n}::1"),
                ]);
            }
            h.ip(&["addr", "add", &format!("{FAR4}/32"), "dev", "lo"]);
            h.ip(&["addr", "add", &format!("{FAR6}/128"), "dev", "lo"]);
        }
        let sock = scratch.file("ctl.sock");
        let config = format!(
            r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false

[[port]]
name = "lan"
device = "net_af_packet0,iface=l0"

[[port]]
name = "u1"
device = "net_af_packet1,iface=u1"

[[port]]
name = "u2"
device = "net_af_packet2,iface=u2"

[[interface]]
name = "lan0"
on = "lan"
addresses = ["10.40.0.1/24", "2001:db8:40::1/64"]
tap_name = "fl-lan0"

[[interface]]
name = "wan1"
on = "u1"
addresses = ["10.41.0.1/24", "2001:db8:41::1/64"]
tap_name = "fl-wan1"

[[interface]]
name = "wan2"
on = "u2"
addresses = ["10.42.0.1/24", "2001:db8:42::1/64"]
tap_name = "fl-wan2"

[forward]
mode = "router"

[management]
socket = "{s}"
"#,
            c = cpus[0],
            w = cpus[1],
            s = sock.display(),
        );
        let cfg = scratch.file("fastlag.toml");
        std::fs::write(&cfg, &config).unwrap();
        let (log, status) = (scratch.file("fastlag.log"), scratch.file("status.json"));
        let bin = env!("CARGO_BIN_EXE_fastlag");
        let (c, s) = (cfg.display().to_string(), status.display().to_string());
        let cmd = gw_ns.cmd_dies_with_parent(&[bin, "run", "--config", &c, "--status", &s]);
        let gw = ChildGuard::spawn("fastlag", cmd, &log);
        let mut rig = Rig {
            gw: Some(gw),
            _veths: veths,
            cli,
            ups,
            gw_ns,
            log,
            status,
            sock,
            script,
            scratch,
        };
        let taps = ["fl-lan0", "fl-wan1", "fl-wan2"];
        let up = wait_until(Duration::from_secs(30), || {
            !rig.gw.as_mut().unwrap().running()
                || (taps.iter().all(|t| rig.gw_ns.link_up(t)) && rig.sock.exists())
        });
        if !up || !rig.gw.as_mut().unwrap().running() {
            rig.fail("fastlag's TAPs or its management socket did not come up within 30 s");
        }
        rig
    }

    pub(crate) fn fail(&self, msg: &str) -> ! {
        panic!(
            "{msg}\n--- fastlag log (tail):\n{}",
            tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 60)
        );
    }

    pub(crate) fn status(&self) -> Value {
        std::fs::read_to_string(&self.status)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    pub(crate) fn forwarded(&self, iface: &str) -> u64 {
        self.status()["interfaces"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == iface))
            .and_then(|i| i["forwarded"].as_u64())
            .unwrap_or(0)
    }

    pub(crate) fn ctl_json(&self, args: &[&str]) -> Value {
        let out = fastlag()
            .arg("ctl")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .arg("--json")
            .output()
            .expect("run fastlag ctl");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            self.fail(&format!(
                "ctl {args:?}: {e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        })
    }

    /// The FIB's entries for `prefix` (one per hop): (interface, gateway, weight, state).
    pub(crate) fn hops(&self, prefix: &str) -> Vec<(String, String, u64, String)> {
        let v = self.ctl_json(&["show", "routes"]);
        v["routes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["prefix"] == prefix && r["origin"] == "kernel")
                    .map(|r| {
                        (
                            r["interface"].as_str().unwrap_or("").to_string(),
                            r["gateway"].as_str().unwrap_or("").to_string(),
                            r["weight"].as_u64().unwrap_or(0),
                            r["state"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn receivers(&self, phase: &str) -> Vec<Receiver> {
        self.ups
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let out = self.scratch.file(&format!("{phase}-up{i}.json"));
                let err = self.scratch.file(&format!("{phase}-up{i}.err"));
                let port = PORT.to_string();
                let cmd = ns.cmd_dies_with_parent(&[
                    python(),
                    &self.script.display().to_string(),
                    "recv",
                    &port,
                ]);
                let proc = spawn_logged("recv", cmd, &out, &err);
                let ready = wait_until(Duration::from_secs(5), || {
                    std::fs::read_to_string(&err).is_ok_and(|t| t.contains("ready"))
                });
                assert!(ready, "receiver in {} did not start", ns.name);
                Receiver { proc, out }
            })
            .collect()
    }

    /// Sends `rounds` packets on each of `flows` flows (source ports `base..`) to `dst`.
    /// Each packet carries `tag` (the phase), so packets of an earlier phase that the kernel
    /// held back are told apart.
    pub(crate) fn send(
        &self,
        dst: &str,
        base: u16,
        flows: u16,
        rounds: u32,
        gap: f64,
        tag: u32,
    ) -> Command {
        self.cli.cmd_dies_with_parent(&[
            python(),
            &self.script.display().to_string(),
            "send",
            dst,
            &PORT.to_string(),
            &base.to_string(),
            &flows.to_string(),
            &rounds.to_string(),
            &gap.to_string(),
            &tag.to_string(),
        ])
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut gw) = self.gw.take() {
            gw.signal("TERM");
            gw.wait_timeout(Duration::from_secs(10));
        }
    }
}

/// Stops the receivers; per upstream, what it got of phase `tag`.
pub(crate) fn collect(rx: Vec<Receiver>, tag: u32) -> Vec<Vec<Row>> {
    rx.into_iter()
        .map(|mut r| {
            std::thread::sleep(Duration::from_millis(300));
            r.proc.signal("INT");
            r.proc.wait_timeout(Duration::from_secs(5));
            let text = std::fs::read_to_string(&r.out).unwrap_or_default();
            let rows: Vec<(String, u16, u32, f64, u32)> =
                serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
            rows.into_iter()
                .filter(|r| r.4 == tag)
                .map(|(a, p, r, t, _)| (a, p, r, t))
                .collect()
        })
        .collect()
}

/// Per flow (source port) of `src`: the upstreams that saw it, and whether each saw its
/// rounds in order without duplicates.
pub(crate) fn flows_of(
    got: &[Vec<Row>],
    src: &str,
) -> BTreeMap<u16, (BTreeSet<usize>, bool, usize)> {
    // Per flow: upstreams, in order, packets, last round per upstream.
    type Seen = (BTreeSet<usize>, bool, usize, [Option<u32>; 2]);
    let mut m: BTreeMap<u16, Seen> = BTreeMap::new();
    for (up, rows) in got.iter().enumerate() {
        for (a, port, round, _) in rows {
            if a != src {
                continue;
            }
            let e = m
                .entry(*port)
                .or_insert((BTreeSet::new(), true, 0, [None; 2]));
            e.0.insert(up);
            e.2 += 1;
            if e.3[up].is_some_and(|last| *round <= last) {
                e.1 = false;
            }
            e.3[up] = Some(*round);
        }
    }
    m.into_iter()
        .map(|(p, (ups, ordered, n, _))| (p, (ups, ordered, n)))
        .collect()
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sends `flows` flows of `rounds` packets to `dst`; per flow, the one upstream it reached
/// (asserting one hop per flow, order kept, nothing lost).
pub(crate) fn spread(
    tag: u32,
    rig: &Rig,
    phase: &str,
    dst: &str,
    src: &str,
    flows: u16,
    rounds: u32,
) -> BTreeMap<u16, usize> {
    let rx = rig.receivers(phase);
    let (ok, out) = output(&mut rig.send(dst, 20000, flows, rounds, 0.02, tag));
    assert!(ok, "sender: {out}");
    let got = collect(rx, tag);
    let per_flow = flows_of(&got, src);
    let total: usize = per_flow.values().map(|v| v.2).sum();
    let sent = flows as usize * rounds as usize;
    // af_packet on a shared 2-CPU machine drops on input now and then (what matters here:
    // every flow arrives, on one hop, in order).
    if total * 100 < sent * 80 || per_flow.len() != flows as usize {
        rig.fail(&format!(
            "{phase}: {total} of {sent} packets arrived, {} of {flows} flows (rows per \
             upstream: {:?}, first: {:?}); sender: {out}; status interfaces: {}",
            per_flow.len(),
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            got.iter().map(|g| g.first().cloned()).collect::<Vec<_>>(),
            rig.status()["interfaces"]
        ));
    }
    println!("MEASURE ecmp {phase}: {total} of {sent} packets arrived");
    let mut map = BTreeMap::new();
    for (port, (ups, ordered, _)) in &per_flow {
        if ups.len() != 1 || !ordered {
            let seen: Vec<(usize, u32, f64)> = got
                .iter()
                .enumerate()
                .flat_map(|(u, rows)| {
                    rows.iter()
                        .filter(|r| r.0 == src && r.1 == *port)
                        .map(move |r| (u, r.2, r.3))
                })
                .collect();
            rig.fail(&format!(
                "{phase}: flow from port {port} reached upstreams {ups:?}, in order: \
                 {ordered}: (upstream, round, time) {seen:?}"
            ));
        }
        map.insert(*port, *ups.iter().next().unwrap());
    }
    map
}

pub(crate) fn share(map: &BTreeMap<u16, usize>, up: usize) -> f64 {
    map.values().filter(|&&u| u == up).count() as f64 / map.len() as f64
}
