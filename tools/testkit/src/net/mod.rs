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

mod capture;
mod ovs;
mod tc;

pub use capture::{ethertype, is_slow_protocols, read_pcap, Capture, Captured};
pub use ovs::{ovs_rig_config, Lan, Ovs, OvsLacp, OvsMember, UDPFLOW_PY};
pub use tc::TcEgressDrop;

use crate::{wait_until, ChildGuard};

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

/// One veth per member link: root-side end `ours[i]` (fastlag's port), `theirs[i]` in
/// `peer`.
pub fn member_links(peer: &Netns, ours: &[String], theirs: &[&str]) -> Vec<Veth> {
    ours.iter()
        .zip(theirs)
        .map(|(o, t)| Veth::new(None, o, Some(peer), t))
        .collect()
}

/// Time since `t0` in whole milliseconds.
pub fn ms_since(t0: Instant) -> u128 {
    t0.elapsed().as_millis()
}
