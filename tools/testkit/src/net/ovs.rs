//! Open vSwitch as an independent LACP peer (userspace datapath, private run directory),
//! fastlag's side of the OVS rigs, and end hosts behind both.

use super::*;

/// Numbered UDP datagrams from many source ports at a steady rate (`send SRC DST PORT BASE
/// FLOWS RATE SECONDS RUN`), and a receiver that records every datagram with its send and
/// receive times (`recv BIND PORT OUT`: lines `run flow seq send_ts recv_ts` in OUT, and
/// OUT.ready once listening; CLOCK_MONOTONIC on both ends, they run on the same host).
pub const UDPFLOW_PY: &str = r#"
import json, signal, socket, struct, sys, time

HDR = struct.Struct("!IHId")  # run, flow, seq, send time


def send(src, dst, port, base, flows, rate, seconds, run):
    socks = []
    for i in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # SO_NO_CHECK: no UDP checksum. A veth hands locally sent datagrams on with the
        # checksum left to "hardware"; the packet sockets of OVS and fastlag forward them
        # as they are, and the receiver would drop them all as corrupt.
        s.setsockopt(socket.SOL_SOCKET, 11, 1)
        s.bind((src, base + i))
        socks.append(s)
    pad = bytes(46)
    seqs = [0] * flows
    errors = 0
    total = int(rate * seconds)
    start = time.monotonic()
    for n in range(total):
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        f = n % flows
        try:
            socks[f].sendto(HDR.pack(run, f, seqs[f], time.monotonic()) + pad, (dst, port))
        except OSError:
            errors += 1
        seqs[f] += 1
    print(json.dumps({"run": run, "sent": seqs, "errors": errors,
                      "seconds": time.monotonic() - start}), flush=True)


def recv(bind, port, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((bind, port))
    s.settimeout(0.05)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "w") as f:
        open(out + ".ready", "w").close()
        last = time.monotonic()
        while not stop:
            try:
                data, _ = s.recvfrom(2048)
            except (socket.timeout, InterruptedError):
                data = None
            now = time.monotonic()
            if data is not None and len(data) >= HDR.size:
                run, flow, seq, ts = HDR.unpack_from(data)
                f.write("%d %d %d %.6f %.6f\n" % (run, flow, seq, ts, now))
            if now - last >= 0.05:
                f.flush()
                last = now


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "send":
        send(a[2], a[3], int(a[4]), int(a[5]), int(a[6]), float(a[7]), float(a[8]), int(a[9]))
    else:
        recv(a[2], int(a[3]), a[4])
"#;

/// fastlag's side of the OVS rigs: `bond0` (802.3ad, layer3+4) over af_packet ports on
/// `fl_if` (m0, m1), cross-connected with port "in": af_packet on the LAN's `in_if`, or a
/// ring when there are no end hosts. Control thread and worker on the first two CPUs.
pub fn ovs_rig_config(fl_if: &[String; 2], lan: Option<&Lan>) -> String {
    let cpus = crate::cpus();
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
