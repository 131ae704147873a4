//! Network plumbing for interop tests against real software peers: network namespaces,
//! veth pairs, an Open vSwitch instance with a private run directory, and tc rules. Every
//! guard removes what it created on drop, also while a test panics.
//!
//! Names are unique per test process (they carry the PID) and short enough for interface
//! names (15 characters). Daemons and helpers run as direct children under
//! `setpriv --pdeathsig KILL`, so even a test process killed by the harness takes them
//! along; namespaces that such a process leaves behind are removed by the next test that
//! creates one (see [`reap_stale_namespaces`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{wait_until, ChildGuard};

/// Prefix of every namespace these helpers create: `flt<tag><pid>`.
const NS_PREFIX: &str = "flt";

/// A command from a program and its arguments.
pub fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    c
}

/// Runs `c`; stdout on success, stdout and stderr in the error otherwise.
pub fn try_run(c: &mut Command) -> Result<String, String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{c:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{c:?} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `c` and returns its stdout; panics with everything it printed when it fails.
pub fn run(c: &mut Command) -> String {
    try_run(c).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a program with arguments (see [`run`]).
pub fn sh(args: &[&str]) -> String {
    run(&mut cmd(args))
}

/// `args` wrapped so that the program gets SIGKILL when the thread that spawned it goes
/// away (a test process killed by the harness leaves no daemons behind).
pub fn dies_with_parent(args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--pdeathsig", "KILL"]).args(args);
    c
}

/// An interface name unique to this process: `fl<pid><suffix>`, at most 15 characters.
pub fn ifname(suffix: &str) -> String {
    let n = format!("fl{}{suffix}", std::process::id());
    assert!(n.len() <= 15, "interface name {n} is longer than 15");
    n
}

/// Reads a kernel counter of an interface in the current namespace
/// (`/sys/class/net/<iface>/statistics/<counter>`).
pub fn try_if_counter(iface: &str, counter: &str) -> Result<u64, String> {
    let p = format!("/sys/class/net/{iface}/statistics/{counter}");
    std::fs::read_to_string(&p)
        .map_err(|e| format!("{p}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{p}: {e}"))
}

/// Like [`try_if_counter`], panicking when it cannot be read.
pub fn if_counter(iface: &str, counter: &str) -> u64 {
    try_if_counter(iface, counter).unwrap_or_else(|e| panic!("{e}"))
}

/// The MAC address of an interface in the current namespace.
pub fn if_mac(iface: &str) -> String {
    let p = format!("/sys/class/net/{iface}/address");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills processes by PID: SIGTERM, then SIGKILL to those still there after `grace`.
fn kill_pids(pids: &[u32], grace: Duration) {
    if pids.is_empty() {
        return;
    }
    for p in pids {
        let _ = Command::new("kill")
            .args(["-TERM", &p.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    wait_until(grace, || pids.iter().all(|&p| !pid_alive(p)));
    for p in pids.iter().filter(|&&p| pid_alive(p)) {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Processes inside a named namespace.
fn ns_pids(ns: &str) -> Vec<u32> {
    try_run(&mut cmd(&["ip", "netns", "pids", ns]))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn delete_ns(ns: &str) {
    kill_pids(&ns_pids(ns), Duration::from_secs(3));
    if let Err(e) = try_run(&mut cmd(&["ip", "netns", "del", ns])) {
        eprintln!("warning: removing namespace {ns}: {e}");
    }
}

/// Removes namespaces that an earlier test process of this suite created and could not
/// remove (it was killed): `flt<letters><pid>` whose PID no longer runs. Anything still
/// running inside such a namespace was started by that test and is stopped by PID.
/// Deleting the namespace also deletes the veth pairs with an end in it. Also removes
/// the scratch directories such a process left (`fastlag-ovs-<tag>-<pid>`).
pub fn reap_stale_namespaces() {
    let list = try_run(&mut cmd(&["ip", "netns", "list"])).unwrap_or_default();
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let digits = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
        if digits.is_empty() || digits.len() == rest.len() {
            continue;
        }
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) {
            eprintln!("removing namespace {name} left by test process {pid}");
            delete_ns(name);
        }
    }
    // Scratch directories of the OVS tests (`fastlag-ovs-<tag>-<pid>`, see Scratch) that
    // such a process left.
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("fastlag-ovs-") else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid.filter(|&p| p != std::process::id() && !pid_alive(p)) {
            eprintln!("removing {} left by test process {pid}", e.path().display());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A network namespace, deleted on drop (with anything still running in it, and the
/// interfaces in it).
pub struct Netns {
    /// `flt<tag><pid>`.
    pub name: String,
}

impl Netns {
    /// Creates `flt<tag><pid>` with loopback up and IPv6 off (no router solicitations or
    /// MLD reports on the test links).
    pub fn new(tag: &str) -> Netns {
        assert!(tag.chars().all(|c| c.is_ascii_lowercase()), "tag {tag}");
        reap_stale_namespaces();
        let name = format!("{NS_PREFIX}{tag}{}", std::process::id());
        if Path::new("/run/netns").join(&name).exists() {
            delete_ns(&name);
        }
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.run(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        ns
    }

    /// `args` to run inside the namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Like [`Netns::cmd`], and the program is killed when the spawning thread goes away.
    pub fn cmd_dies_with_parent(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.name,
            "setpriv",
            "--pdeathsig",
            "KILL",
        ])
        .args(args);
        c
    }

    /// Runs `args` inside the namespace; stdout, or a panic with the output.
    pub fn run(&self, args: &[&str]) -> String {
        run(&mut self.cmd(args))
    }

    /// `ip -n <ns> args...`; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        run(&mut c)
    }

    /// `ip -n <ns> args...`, failure as an error.
    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        try_run(&mut c)
    }

    /// A kernel counter of an interface in this namespace.
    pub fn try_if_counter(&self, iface: &str, counter: &str) -> Result<u64, String> {
        try_run(&mut self.cmd(&[
            "cat",
            &format!("/sys/class/net/{iface}/statistics/{counter}"),
        ]))?
        .trim()
        .parse()
        .map_err(|e| format!("{iface} {counter}: {e}"))
    }

    /// The MAC address of an interface in this namespace.
    pub fn if_mac(&self, iface: &str) -> String {
        self.run(&["cat", &format!("/sys/class/net/{iface}/address")])
            .trim()
            .to_string()
    }

    /// `sysctl -qw` each `key=value` inside the namespace; panics on failure.
    pub fn sysctl(&self, settings: &[&str]) {
        let mut args = vec!["sysctl", "-qw"];
        args.extend_from_slice(settings);
        self.run(&args);
    }

    /// Turns IPv6 back on ([`Netns::new`] turns it off) for the interfaces that exist and
    /// for those created from now on.
    pub fn enable_ipv6(&self) {
        self.sysctl(&[
            "net.ipv6.conf.all.disable_ipv6=0",
            "net.ipv6.conf.default.disable_ipv6=0",
        ]);
    }

    /// Whether `iface` exists in this namespace and is administratively up.
    pub fn link_up(&self, iface: &str) -> bool {
        self.try_ip(&["-o", "link", "show", "dev", iface])
            .ok()
            .and_then(|l| {
                let flags = l.split_once('<')?.1.split_once('>')?.0.to_string();
                Some(flags.split(',').any(|f| f == "UP"))
            })
            .unwrap_or(false)
    }
}

/// A packet capture (`tcpdump`, immediate mode, packet-buffered) on an interface inside a
/// namespace, into a pcap file. Stopped by PID on drop; [`Capture::stop`] stops it and
/// reads what it wrote.
pub struct Capture {
    /// Interface captured on.
    pub iface: String,
    /// The pcap file.
    pub file: PathBuf,
    /// tcpdump's stderr (start banner, final counts).
    pub log: PathBuf,
    proc: Option<ChildGuard>,
}

/// What a stopped [`Capture`] holds.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Frames (each cut at the snap length).
    pub frames: Vec<Vec<u8>>,
    /// "N packets dropped by kernel" from tcpdump's final counts (None: not printed).
    pub dropped_by_kernel: Option<u64>,
    /// tcpdump's stderr.
    pub log: String,
}

impl Capture {
    /// Starts tcpdump on `iface` in `ns` writing `<dir>/<name>.pcap` (snap length 128),
    /// with an optional BPF `filter`; returns once tcpdump is listening.
    pub fn start(ns: &Netns, iface: &str, dir: &Path, name: &str, filter: &[&str]) -> Capture {
        let file = dir.join(format!("{name}.pcap"));
        let log = dir.join(format!("{name}.tcpdump.log"));
        let f = file.display().to_string();
        let mut args = vec![
            "tcpdump",
            "-Z",
            "root",
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            "128",
            "-i",
            iface,
            "-w",
            &f,
        ];
        args.extend_from_slice(filter);
        let mut proc = ChildGuard::spawn("tcpdump", ns.cmd_dies_with_parent(&args), &log);
        let listening = wait_until(Duration::from_secs(10), || {
            !proc.running()
                || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening on"))
        }) && proc.running();
        assert!(
            listening,
            "tcpdump on {iface} in {} did not start:\n{}",
            ns.name,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Capture {
            iface: iface.to_string(),
            file,
            log,
            proc: Some(proc),
        }
    }

    /// Stops tcpdump (SIGTERM: it writes out what it holds and prints its counts) and
    /// reads the file.
    pub fn stop(&mut self) -> Captured {
        if let Some(mut p) = self.proc.take() {
            if p.running() {
                p.signal("TERM");
            }
            if p.wait_timeout(Duration::from_secs(5)).is_none() {
                eprintln!("tcpdump on {} did not exit on SIGTERM", self.iface);
            }
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let dropped_by_kernel = log.lines().find_map(|l| {
            l.trim()
                .strip_suffix("packets dropped by kernel")
                .or_else(|| l.trim().strip_suffix("packet dropped by kernel"))
                .and_then(|n| n.trim().parse().ok())
        });
        let frames = read_pcap(&self.file).unwrap_or_else(|e| panic!("{e}\n{log}"));
        Captured {
            frames,
            dropped_by_kernel,
            log,
        }
    }
}

/// The frames of a classic pcap file (either byte order, micro- or nanosecond
/// timestamps); a record cut short at the end (a writer that was killed) is ignored.
pub fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 24 {
        return Err(format!(
            "{}: no pcap header ({} bytes)",
            path.display(),
            b.len()
        ));
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => {
            return Err(format!(
                "{}: not a pcap file ({magic:02x?})",
                path.display()
            ))
        }
    };
    let u32_at = |at: usize| {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let linktype = u32_at(20);
    if linktype != 1 {
        return Err(format!(
            "{}: link type {linktype}, not Ethernet",
            path.display()
        ));
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let incl = u32_at(at + 8) as usize;
        let start = at + 16;
        if start + incl > b.len() {
            break;
        }
        frames.push(b[start..start + incl].to_vec());
        at = start + incl;
    }
    Ok(frames)
}

/// The EtherType of an Ethernet frame, looking through one 802.1Q/802.1ad tag; `None`
/// when the frame is too short.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    let outer = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if outer == 0x8100 || outer == 0x88a8 {
        Some(u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]))
    } else {
        Some(outer)
    }
}

/// Whether an Ethernet frame is a Slow Protocols frame (EtherType 0x8809: LACP, marker),
/// tagged or not.
pub fn is_slow_protocols(frame: &[u8]) -> bool {
    let outer = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
    outer == Some(0x8809) || ethertype(frame) == Some(0x8809)
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_ns(&self.name);
    }
}

/// A veth pair; deleting one end deletes both. Dropping it deletes the pair (it is also
/// gone when the namespace of either end is deleted).
pub struct Veth {
    /// Namespace of the first end (None: the test's own namespace).
    pub ns: Option<String>,
    /// First end.
    pub name: String,
    /// Namespace of the peer end.
    pub peer_ns: Option<String>,
    /// Peer end.
    pub peer: String,
}

impl Veth {
    /// Creates `name` (in `ns`, or here) and `peer` (in `peer_ns`, or here), both up, IPv6
    /// off on any end that lives in this namespace.
    pub fn new(ns: Option<&Netns>, name: &str, peer_ns: Option<&Netns>, peer: &str) -> Veth {
        let mut c = Command::new("ip");
        if let Some(ns) = ns {
            c.args(["-n", &ns.name]);
        }
        c.args(["link", "add", name, "type", "veth", "peer", "name", peer]);
        if let Some(p) = peer_ns {
            c.args(["netns", &p.name]);
        }
        run(&mut c);
        let v = Veth {
            ns: ns.map(|n| n.name.clone()),
            name: name.to_string(),
            peer_ns: peer_ns.map(|n| n.name.clone()),
            peer: peer.to_string(),
        };
        for (ns, dev) in [(&v.ns, &v.name), (&v.peer_ns, &v.peer)] {
            if ns.is_none() {
                sh(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
                ]);
            }
            set_link(ns.as_deref(), dev, true).unwrap_or_else(|e| panic!("{e}"));
        }
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Already gone when a namespace holding an end was deleted first.
        let mut c = Command::new("ip");
        if let Some(ns) = &self.ns {
            if !Path::new("/run/netns").join(ns).exists() {
                return;
            }
            c.args(["-n", ns]);
        }
        c.args(["link", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }
}

/// `ip [-n ns] link set dev up|down`.
pub fn set_link(ns: Option<&str>, dev: &str, up: bool) -> Result<String, String> {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    c.args(["link", "set", dev, if up { "up" } else { "down" }]);
    try_run(&mut c)
}

/// Drops frames leaving `dev` (in a namespace) at tc egress, before any packet socket
/// on the far end can see them. This kernel has no gact (`action drop`) and no matchall:
/// a u32 match-all filter under clsact redirects them to an ifb device that stays down,
/// where the kernel discards them. Removed on drop.
pub struct TcEgressDrop {
    ns: String,
    dev: String,
    sink: String,
}

impl TcEgressDrop {
    /// Drops frames of EtherType `protocol` ("0x8809" for Slow Protocols, "all") leaving
    /// `dev`.
    pub fn new(ns: &Netns, dev: &str, protocol: &str) -> TcEgressDrop {
        let sink = format!("sink{dev}");
        ns.ip(&["link", "add", &sink, "type", "ifb"]);
        let g = TcEgressDrop {
            ns: ns.name.clone(),
            dev: dev.to_string(),
            sink,
        };
        ns.run(&["tc", "qdisc", "add", "dev", dev, "clsact"]);
        ns.run(&[
            "tc", "filter", "add", "dev", dev, "egress", "protocol", protocol, "u32", "match",
            "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", &g.sink,
        ]);
        g
    }

    /// Frames the filter took so far ("Sent N bytes M pkt" of its action).
    pub fn dropped(&self) -> u64 {
        let out = try_run(&mut cmd(&[
            "ip", "netns", "exec", &self.ns, "tc", "-s", "filter", "show", "dev", &self.dev,
            "egress",
        ]))
        .unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let l = l.trim();
                let rest = l.strip_prefix("Sent ")?;
                let mut it = rest.split_whitespace();
                let _bytes = it.next()?;
                let _ = it.next()?; // "bytes"
                it.next()?.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for TcEgressDrop {
    fn drop(&mut self) {
        if !Path::new("/run/netns").join(&self.ns).exists() {
            return;
        }
        for args in [
            vec!["tc", "qdisc", "del", "dev", &self.dev, "clsact"],
            vec!["ip", "link", "del", &self.sink],
        ] {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.ns])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
    }
}

/// One veth per member link: root-side end `ours[i]` (fastlag's port), `theirs[i]` in
/// `peer`.
pub fn member_links(peer: &Netns, ours: &[String], theirs: &[&str]) -> Vec<Veth> {
    ours.iter()
        .zip(theirs)
        .map(|(o, t)| Veth::new(None, o, Some(peer), t))
        .collect()
}

/// fastlag's side of the OVS rigs: `bond0` (802.3ad, layer3+4) over af_packet ports on
/// `fl_if` (m0, m1), cross-connected with port "in": af_packet on the LAN's `in_if`, or a
/// ring when there are no end hosts. Control thread and worker on the first two CPUs.
pub fn ovs_rig_config(fl_if: &[String; 2], lan: Option<&Lan>) -> String {
    let cpus = super::cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let in_dev = match lan {
        Some(l) => format!("net_af_packet2,iface={}", l.in_if),
        None => "ring:g0:a".to_string(),
    };
    format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "m0"
device = "net_af_packet0,iface={i0}"

[[port]]
name = "m1"
device = "net_af_packet1,iface={i1}"

[[port]]
name = "in"
device = "{in_dev}"

[[bond]]
name = "bond0"
members = ["m0", "m1"]
hash = "layer3+4"

[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]
"#,
        c = cpus[0],
        w = cpus[1],
        i0 = fl_if[0],
        i1 = fl_if[1],
    )
}

/// End hosts on both sides of a path through fastlag and Open vSwitch: `src` in its own
/// namespace behind a veth whose root-side end (`in_if`) becomes fastlag's port, `dst` on
/// port `vd0` of an OVS bridge. Each has its address (/24) on eth0 and a permanent
/// neighbour entry for the other, so no ARP is in flight while links fail. The veths drop
/// before the namespaces.
pub struct Lan {
    _veths: Vec<Veth>,
    /// The sending host.
    pub src: Netns,
    /// The receiving host (behind OVS).
    pub dst: Netns,
    /// fastlag's end of the sender's link.
    pub in_if: String,
}

impl Lan {
    /// Namespaces `<tag>src` and `<tag>dst`; `vd0` is added to `bridge` of `ovs`, which
    /// runs in `peer`.
    pub fn new(
        tag: &str,
        peer: &Netns,
        ovs: &Ovs,
        bridge: &str,
        src_ip: &str,
        dst_ip: &str,
    ) -> Lan {
        let src = Netns::new(&format!("{tag}src"));
        let dst = Netns::new(&format!("{tag}dst"));
        let in_if = ifname("s0");
        let veths = vec![
            Veth::new(None, &in_if, Some(&src), "eth0"),
            Veth::new(Some(peer), "vd0", Some(&dst), "eth0"),
        ];
        ovs.vsctl(&["add-port", bridge, "vd0"]);
        src.ip(&["addr", "add", &format!("{src_ip}/24"), "dev", "eth0"]);
        dst.ip(&["addr", "add", &format!("{dst_ip}/24"), "dev", "eth0"]);
        let (src_mac, dst_mac) = (src.if_mac("eth0"), dst.if_mac("eth0"));
        for (ns, ip, mac) in [(&src, dst_ip, &dst_mac), (&dst, src_ip, &src_mac)] {
            ns.ip(&[
                "neigh",
                "replace",
                ip,
                "lladdr",
                mac,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ]);
        }
        Lan {
            _veths: veths,
            src,
            dst,
            in_if,
        }
    }
}

/// An Open vSwitch instance (ovsdb-server + ovs-vswitchd, userspace datapath) running in
/// a namespace, with a private database, run directory and logs. Stopped on drop by PID:
/// SIGTERM, SIGKILL after 5 s.
pub struct Ovs {
    /// Private directory: conf.db, sockets, pidfiles, logs.
    pub dir: PathBuf,
    vswitchd: Option<ChildGuard>,
    ovsdb: Option<ChildGuard>,
}

impl Ovs {
    /// Starts both daemons inside `ns` with everything under `dir` (created).
    pub fn start(ns: &Netns, dir: &Path) -> Ovs {
        std::fs::create_dir_all(dir).expect("ovs dir");
        let d = |f: &str| dir.join(f).display().to_string();
        let mut ovs = Ovs {
            dir: dir.to_path_buf(),
            vswitchd: None,
            ovsdb: None,
        };
        run(Command::new("ovsdb-tool").args([
            "create",
            &d("conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]));
        let mut db = ns.cmd_dies_with_parent(&[
            "ovsdb-server",
            &d("conf.db"),
            &format!("--remote=punix:{}", d("db.sock")),
            &format!("--pidfile={}", d("ovsdb.pid")),
            &format!("--log-file={}", d("ovsdb.log")),
            &format!("--unixctl={}", d("ovsdb.ctl")),
            "-vconsole:off",
        ]);
        ovs.env(&mut db);
        ovs.ovsdb = Some(ChildGuard::spawn(
            "ovsdb-server",
            db,
            &dir.join("ovsdb.stderr"),
        ));
        ovs.wait_for("db.sock");
        ovs.vsctl(&["--no-wait", "init"]);
        let mut vs = ns.cmd_dies_with_parent(&[
            "ovs-vswitchd",
            &format!("unix:{}", d("db.sock")),
            &format!("--pidfile={}", d("vswitchd.pid")),
            &format!("--log-file={}", d("vswitchd.log")),
            &format!("--unixctl={}", d("vswitchd.ctl")),
            "-vconsole:off",
        ]);
        ovs.env(&mut vs);
        ovs.vswitchd = Some(ChildGuard::spawn(
            "ovs-vswitchd",
            vs,
            &dir.join("vswitchd.stderr"),
        ));
        ovs.wait_for("vswitchd.ctl");
        ovs
    }

    /// Private locations for everything OVS would put under /var/run/openvswitch (the
    /// bridges' mgmt and snoop sockets among them).
    fn env(&self, c: &mut Command) {
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
    }

    fn wait_for(&mut self, file: &str) {
        let path = self.dir.join(file);
        let ok = wait_until(Duration::from_secs(10), || {
            path.exists()
                || !self.ovsdb.as_mut().is_some_and(|c| c.running())
                || !self.vswitchd.as_mut().is_none_or(|c| c.running())
        });
        assert!(
            ok && path.exists(),
            "Open vSwitch did not create {}:\n{}",
            path.display(),
            self.logs()
        );
    }

    /// Adds bridge `name` on the userspace (netdev) datapath, the one every interop test
    /// uses.
    pub fn netdev_bridge(&self, name: &str) -> String {
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ])
    }

    /// `add-bond <bridge> <bond> <members...> <options...>`.
    pub fn add_bond(&self, bridge: &str, bond: &str, members: &[&str], options: &[&str]) {
        let mut args = vec!["add-bond", bridge, bond];
        args.extend_from_slice(members);
        args.extend_from_slice(options);
        self.vsctl(&args);
    }

    /// `ovs-vsctl` on this instance's database; panics with the logs on failure.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let mut c = Command::new("ovs-vsctl");
        c.arg(format!("--db=unix:{}", self.dir.join("db.sock").display()))
            .arg("--timeout=10")
            .args(args);
        self.env(&mut c);
        try_run(&mut c).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// `ovs-appctl -t <vswitchd.ctl> args...`.
    pub fn try_appctl(&self, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new("ovs-appctl");
        c.arg("-t")
            .arg(self.dir.join("vswitchd.ctl"))
            .arg("--timeout=5")
            .args(args);
        self.env(&mut c);
        try_run(&mut c)
    }

    /// Whether `bond/show <bond>` lists every one of `members` as enabled. OVS enables a
    /// member (and forwards what arrives on it) a moment after LACP attached it.
    pub fn members_enabled(&self, bond: &str, members: &[&str]) -> bool {
        let b = self.try_appctl(&["bond/show", bond]).unwrap_or_default();
        members.iter().all(|m| {
            b.lines()
                .any(|l| l.trim() == format!("member {m}: enabled"))
        })
    }

    /// Makes OVS assign its balance-tcp hash buckets of port `bond` afresh. OVS fills every
    /// bucket at the bond's first output after a reset, picking a random member and the
    /// active one where that pick is not enabled yet; with rebalancing off (the interop
    /// tests keep placement stable) a frame flooded while only one member was enabled pins
    /// every flow on that member for good. A changed hash basis resets the buckets
    /// (`bond_reconfigure`), so the next output spreads them over the members enabled by
    /// then. Call once, with every member enabled.
    pub fn rehash(&self, bond: &str) {
        self.vsctl(&["set", "port", bond, "other_config:bond-hash-basis=1"]);
    }

    /// `ovs-appctl`, panicking on failure.
    pub fn appctl(&self, args: &[&str]) -> String {
        self.try_appctl(args)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// `lacp/show <bond>` parsed; `None` when OVS does not answer.
    pub fn lacp(&self, bond: &str) -> Option<OvsLacp> {
        self.try_appctl(&["lacp/show", bond])
            .ok()
            .map(|t| OvsLacp::parse(&t))
    }

    /// The last lines of both daemons' logs.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for f in [
            "vswitchd.log",
            "vswitchd.stderr",
            "ovsdb.log",
            "ovsdb.stderr",
        ] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            s.push_str(&format!("--- {f} (last {} lines)\n", tail.len()));
            for l in tail {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        // ovs-vswitchd first: it removes its ports while the database is still there.
        drop(self.vswitchd.take());
        drop(self.ovsdb.take());
    }
}

/// One member in `ovs-appctl lacp/show`.
#[derive(Debug, Clone, Default)]
pub struct OvsMember {
    /// Interface name.
    pub name: String,
    /// "current attached", "expired attached", "defaulted detached", ...
    pub status: String,
    /// OVS's port id for the member.
    pub port_id: u16,
    /// may_enable.
    pub may_enable: bool,
    /// Actor state names, space separated.
    pub actor_state: String,
    /// Partner system id (MAC).
    pub partner_sys_id: String,
    /// Partner system priority.
    pub partner_sys_priority: u16,
    /// Partner port id.
    pub partner_port_id: u16,
    /// Partner key.
    pub partner_key: u16,
    /// Partner state names, space separated ("activity timeout aggregation ...").
    pub partner_state: String,
}

/// `ovs-appctl lacp/show <bond>`.
#[derive(Debug, Clone, Default)]
pub struct OvsLacp {
    /// "active negotiated", "passive", ...
    pub status: String,
    /// OVS's system id.
    pub sys_id: String,
    /// OVS's system priority.
    pub sys_priority: u16,
    /// OVS's aggregation key.
    pub key: u16,
    /// Members by name order.
    pub members: Vec<OvsMember>,
    /// The raw text.
    pub text: String,
}

impl OvsLacp {
    /// Parses the text (member lines start "member:" in OVS 3.x and "slave:" before).
    pub fn parse(text: &str) -> OvsLacp {
        let mut l = OvsLacp {
            text: text.to_string(),
            ..Default::default()
        };
        let num = |v: &str| v.trim().parse::<u16>().unwrap_or(0);
        for line in text.lines() {
            let line = line.trim();
            let head = line
                .strip_prefix("member: ")
                .or_else(|| line.strip_prefix("slave: "));
            if let Some(rest) = head {
                let (name, status) = rest.split_once(':').unwrap_or((rest, ""));
                l.members.push(OvsMember {
                    name: name.trim().to_string(),
                    status: status.trim().to_string(),
                    ..Default::default()
                });
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match (l.members.last_mut(), k.trim()) {
                (None, "status") => l.status = v.to_string(),
                (None, "sys_id") => l.sys_id = v.to_string(),
                (None, "sys_priority") => l.sys_priority = num(v),
                (None, "aggregation key") => l.key = num(v),
                (Some(m), "port_id") => m.port_id = num(v),
                (Some(m), "may_enable") => m.may_enable = v == "true",
                (Some(m), "actor state") => m.actor_state = v.to_string(),
                (Some(m), "partner sys_id") => m.partner_sys_id = v.to_string(),
                (Some(m), "partner sys_priority") => m.partner_sys_priority = num(v),
                (Some(m), "partner port_id") => m.partner_port_id = num(v),
                (Some(m), "partner key") => m.partner_key = num(v),
                (Some(m), "partner state") => m.partner_state = v.to_string(),
                _ => {}
            }
        }
        l
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> Option<&OvsMember> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// Time since `t0` in whole milliseconds.
pub fn ms_since(t0: Instant) -> u128 {
    t0.elapsed().as_millis()
}
