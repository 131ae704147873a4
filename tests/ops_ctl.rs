//! The management socket and `fastlag ctl`, against a running fastlag: the socket's
//! robustness (mode, stale files, malformed, oversized and slow requests), and against Open
//! vSwitch as the LACP peer: `ctl show lacp --json` agrees with `ovs-appctl lacp/show`,
//! `ctl capture` decodes in tshark, `ctl why` names real failures, and `ctl member drain`
//! moves traffic off a member without losing a frame.
//!
//! ```text
//!  ns src            root ns (fastlag)                 ns ovs (OVS br0)             ns dst
//!  eth0 10.78.0.1 -- fl<pid>s0 [in] =xconnect= bond0 [m0] fl<pid>m0 -- vb0 \
//!                                                    [m1] fl<pid>m1 -- vb1 -bond0- br0 - vd0 -- eth0 10.78.0.2
//! ```
//! Numbers measured are printed on lines starting with "MEASURE".

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Lan, Netns, Ovs, TcEgressDrop, Veth};
use testkit::*;

const OVS_MEMBERS: [&str; 2] = ["vb0", "vb1"];
const MEMBERS: [&str; 2] = ["m0", "m1"];
const SRC_IP: &str = "10.78.0.1";
const DST_IP: &str = "10.78.0.2";

// ---------------------------------------------------------------------------------------
// fastlag and ctl

/// `fastlag run` killed with the test process (setpriv), stopped by PID on drop.
struct Daemon {
    proc: ChildGuard,
    log: PathBuf,
    sock: PathBuf,
}

impl Daemon {
    fn start(scratch: &Scratch, config: &str, sock: &Path) -> Daemon {
        let cfg = scratch.file("fastlag.toml");
        std::fs::write(&cfg, config).unwrap();
        let log = scratch.file("fastlag.log");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL"])
            .arg(fastlag().get_program())
            .arg("run")
            .arg("--config")
            .arg(&cfg);
        let d = Daemon {
            proc: ChildGuard::spawn("fastlag", cmd, &log),
            log,
            sock: sock.to_path_buf(),
        };
        let ready = wait_until(Duration::from_secs(30), || {
            d.log().contains("management socket ready")
        });
        assert!(ready, "no management socket within 30 s:\n{}", d.log());
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

    /// `ctl ... --json`, parsed; panics with the output on failure.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ctl(&a);
        assert!(
            out.status.success(),
            "fastlag ctl {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ctl {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `ctl ...` human output; panics on failure.
    fn text(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "fastlag ctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One raw request line (or any bytes) over a fresh connection; the first answer line.
fn raw(sock: &Path, bytes: &[u8]) -> Value {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    read_line(&mut s)
}

fn read_line(s: &mut UnixStream) -> Value {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    while !buf.contains(&b'\n') {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
    let line = buf.split(|&c| c == b'\n').next().unwrap_or(&[]);
    serde_json::from_slice(line).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {:?}",
            String::from_utf8_lossy(line)
        )
    })
}

fn member<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name || m["member"] == name))
        .unwrap_or_else(|| panic!("no member {name} in {v:#}"))
}

// ---------------------------------------------------------------------------------------
// The socket itself (in-process ring links, no peer needed)

fn lacpdus_tx(d: &Daemon) -> u64 {
    d.json(&["show", "lacp", "bondA"])[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["counters"]["lacpdus_tx"].as_u64().unwrap())
        .sum()
}

/// Socket created 0600 and owned by us over a stale file; malformed, oversized, non-UTF-8,
/// unknown and slow requests get errors and log lines while LACP keeps running; a second
/// daemon on the same socket is refused before it starts; the file goes on exit.
#[test]
fn management_socket_refuses_bad_requests_and_keeps_serving() {
    let scratch = Scratch::new("ops-sock");
    let sock = scratch.file("ctl.sock");
    // A stale socket file: bound, then its listener gone.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let d = Daemon::start(&scratch, &two_ring_bonds_config(&sock), &sock);
    assert!(d.log().contains("replaced a stale management socket"));
    let md = std::fs::metadata(&sock).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600, "socket mode");
    assert_eq!(md.uid(), unsafe_free_uid(), "socket owner");

    let converged = wait_until(Duration::from_secs(15), || {
        d.json(&["show", "bonds"]).as_array().is_some_and(|b| {
            b.iter()
                .all(|b| b["distributing"].as_array().unwrap().len() == 2)
        })
    });
    assert!(converged, "bonds did not converge:\n{}", tail(&d.log(), 30));

    let gaps = |d: &Daemon| -> Vec<f64> {
        d.json(&["show", "lacp", "bondA"])[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["lacpdu_departures"]["max_ms"].as_f64().unwrap())
            .collect()
    };
    let err = |v: &Value| -> String {
        assert_eq!(v["ok"], false, "expected an error, got {v}");
        v["error"].as_str().unwrap().to_string()
    };
    let e = err(&raw(&sock, b"{\"cmd\": nope}\n"));
    assert!(e.contains("malformed request"), "{e}");
    let e = err(&raw(&sock, b"{\"cmd\":\"frobnicate\"}\n"));
    assert!(e.contains("unknown variant `frobnicate`"), "{e}");
    let e = err(&raw(&sock, b"{\"cmd\":\"bonds\",\"extra\":1}\n"));
    assert!(e.contains("unknown field `extra`"), "{e}");
    let e = err(&raw(&sock, b"\xff\xfe\x00\n"));
    assert!(e.contains("not UTF-8"), "{e}");
    let e = err(&raw(&sock, b"[1,2,3]\n"));
    assert!(e.contains("malformed request"), "{e}");
    let e = err(&raw(&sock, b"{\"cmd\":\"why\",\"bond\":\"nope\"}\n"));
    assert!(e.contains("no bond \"nope\"; bonds: bondA, bondB"), "{e}");

    // Oversized: 70 KiB without a newline.
    let mut big = b"{\"cmd\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70 * 1024));
    let e = err(&raw(&sock, &big));
    assert!(e.contains("larger than 65536 bytes"), "{e}");

    // Slow: half a request, then nothing. While it waits, LACP runs and others are served.
    let tx0 = lacpdus_tx(&d);
    let mut slow = UnixStream::connect(&sock).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"{\"cmd\":\"bo").unwrap();
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    while t0.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        let v = raw(&sock, b"{\"cmd\":\"ping\"}\n");
        worst = worst.max(t.elapsed());
        assert_eq!(v["ok"], true, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let e = err(&read_line(&mut slow));
    let waited = t0.elapsed();
    assert!(e.contains("not complete within 2 s"), "{e}");
    assert!(
        waited < Duration::from_secs(4),
        "slow request cut after {waited:?}"
    );
    let tx1 = lacpdus_tx(&d);
    println!(
        "MEASURE management: slowest ping while a slow client held a connection: {:.1} ms; \
         slow client cut after {} ms; LACPDUs sent meanwhile: {}",
        worst.as_secs_f64() * 1e3,
        waited.as_millis(),
        tx1 - tx0
    );
    assert!(tx1 >= tx0 + 2, "LACP stalled: {tx0} -> {tx1} LACPDUs");

    let gaps_before = gaps(&d);
    // Busy clients do not delay LACP: 2 s of back-to-back `lacp` requests (the largest
    // view) on two connections; the LACPDU departure intervals stay at the 900 ms period.
    let t0 = Instant::now();
    let hammer: Vec<_> = (0..2)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut n = 0u64;
                while t0.elapsed() < Duration::from_secs(2) {
                    s.write_all(b"{\"cmd\":\"lacp\"}\n").unwrap();
                    let v = read_line(&mut s);
                    assert_eq!(v["ok"], true);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let served: u64 = hammer.into_iter().map(|h| h.join().unwrap()).sum();
    let gaps_after = gaps(&d);
    println!(
        "MEASURE management: {served} `show lacp` requests answered in 2 s ({:.0}/s) by the \
         control thread; longest LACPDU departure interval before {gaps_before:?} and after {gaps_after:?} ms \
         (period 900 ms)",
        served as f64 / 2.0
    );
    assert!(served > 100, "only {served} requests answered in 2 s");
    // The longest interval so far may come from start-up; it must not grow past the
    // period while the requests are served.
    assert!(
        gaps_after
            .iter()
            .zip(&gaps_before)
            .all(|(&a, &b)| a <= b.max(1000.0)),
        "LACPDU departures delayed while serving requests: longest intervals {gaps_before:?} \
         -> {gaps_after:?} ms"
    );

    // Many idle connections: the ones over the limit are told so; service continues.
    let idle: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut refused = 0;
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 256];
        if let Ok(n) = s.read(&mut b) {
            if n > 0 && String::from_utf8_lossy(&b[..n]).contains("too many") {
                refused += 1;
            }
        }
    }
    assert!(
        refused >= 4,
        "{refused} connections refused over the limit of 16"
    );

    // Several requests on one connection, answered in order.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"{\"cmd\":\"ping\"}\n{\"cmd\":\"reload\"}\n")
        .unwrap();
    assert_eq!(read_line(&mut s)["ok"], true);

    // reload of the unchanged file: accepted, and says nothing changed.
    let out = d.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "ctl reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));

    // Drain works on in-process links too: the why class and the partner's view follow;
    // `show events --follow` prints the drain as it happens.
    let follow_out = scratch.file("follow.txt");
    let mut follow = Command::new(fastlag().get_program())
        .args([
            "ctl",
            "--socket",
            sock.to_str().unwrap(),
            "show",
            "events",
            "bondA",
            "--follow",
        ])
        .stdout(std::fs::File::create(&follow_out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let history = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&follow_out).is_ok_and(|t| t.contains("COLLECTING_DISTRIBUTING"))
    });
    d.text(&["member", "drain", "bondA", "a1"]);
    let drained = wait_until(Duration::from_secs(5), || {
        let w = d.json(&["why", "bondA"]);
        member(&w, "a1")["class"] == "drain"
            && d.json(&["show", "lacp", "bondB"])[0]["members"][1]["partner"]["state"]
                .as_u64()
                .is_some_and(|s| s & 0x08 == 0)
    });
    assert!(drained, "{}", d.text(&["why", "bondA"]));
    let followed = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&follow_out).is_ok_and(|t| {
            t.contains("bondA a1: drain requested: egress moved off")
                && t.contains("bondA a1: Selection SELECTED -> STANDBY (Admin)")
        })
    });
    let _ = follow.kill(); // by PID: the child we spawned
    let _ = follow.wait();
    assert!(
        history && followed,
        "show events --follow did not print the drain:\n{}",
        std::fs::read_to_string(&follow_out).unwrap_or_default()
    );
    let why = d.text(&["why", "bondA"]);
    assert!(
        why.contains("a1: NOT distributing [drain]: drained by the operator"),
        "{why}"
    );
    assert!(d.text(&["why", "bondB"]).contains("b1: NOT distributing"));
    d.text(&["member", "undrain", "bondA", "a1"]);
    let back = wait_until(Duration::from_secs(10), || {
        d.json(&["show", "bond", "bondA"])["distributing"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    assert!(back, "{}", d.text(&["why", "bondA"]));
    let ev = d.text(&["show", "events", "bondA"]);
    assert!(
        ev.contains("drain requested") && ev.contains("undrained: rejoining"),
        "{ev}"
    );

    // The log names what was refused.
    let log = d.log();
    for line in [
        "management: malformed request",
        "management: request is not UTF-8",
        "management: request larger than 65536 bytes",
        "management: request not complete within",
        "management: too many connections",
    ] {
        assert!(
            log.contains(line),
            "no {line:?} in the log:\n{}",
            tail(&log, 40)
        );
    }

    // A second daemon on the same socket is refused at once (before EAL starts).
    let second = fastlag()
        .arg("run")
        .arg("--config")
        .arg(scratch.file("fastlag.toml"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(
        msg.contains("another process (a running fastlag?) is serving it"),
        "{msg}"
    );
    assert!(d.json(&["ping"])["uptime_ms"].is_u64());

    let Daemon { mut proc, .. } = d;
    proc.signal("TERM");
    assert!(proc
        .wait_timeout(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    assert!(!sock.exists(), "socket file left behind");
}

/// Our uid, from a file we just created (no libc in the tests).
fn unsafe_free_uid() -> u32 {
    let p = std::env::temp_dir().join(format!("fastlag-uid-{}", std::process::id()));
    std::fs::write(&p, b"").unwrap();
    let uid = std::fs::metadata(&p).unwrap().uid();
    let _ = std::fs::remove_file(&p);
    uid
}

// ---------------------------------------------------------------------------------------
// Against Open vSwitch

/// OVS bonding vb0/vb1 in its namespace, fastlag bonding the other ends. Drop order:
/// fastlag, OVS, end hosts, links, OVS's namespace, scratch.
struct Rig {
    fl: Option<Daemon>,
    ovs: Ovs,
    lan: Option<Lan>,
    _links: Vec<Veth>,
    peer: Netns,
    fl_if: [String; 2],
    scratch: Scratch,
}

impl Rig {
    fn new(tag: &str, lan: bool) -> Rig {
        let scratch = Scratch::new(&format!("ops-{tag}"));
        let peer = Netns::new("opsovs");
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
        let lan = lan.then(|| Lan::new("ops", &peer, &ovs, "br0", SRC_IP, DST_IP));
        Rig {
            fl: None,
            ovs,
            lan,
            _links: links,
            peer,
            fl_if,
            scratch,
        }
    }

    fn start(&mut self) {
        let sock = self.scratch.file("ctl.sock");
        let cfg = format!(
            "{}\n[management]\nsocket = \"{}\"\n",
            net::ovs_rig_config(&self.fl_if, self.lan.as_ref()),
            sock.display()
        );
        self.fl = Some(Daemon::start(&self.scratch, &cfg, &sock));
    }

    fn fl(&self) -> &Daemon {
        self.fl.as_ref().expect("fastlag started")
    }

    fn ovs_lacp(&self) -> OvsView {
        OvsView::parse(
            &self
                .ovs
                .try_appctl(&["lacp/show", "bond0"])
                .unwrap_or_default(),
        )
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
            for c in [&["show", "lacp", "--detail"][..], &["why", "bond0"]] {
                let out = fl.ctl(c);
                s += &format!(
                    "=== fastlag ctl {}\n{}{}\n",
                    c.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            s += &format!("=== fastlag log (last 60 lines)\n{}\n", tail(&fl.log(), 60));
        }
        s
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.diag())
    }

    /// Both sides aggregate both members, and OVS's bond has enabled both.
    fn converge(&mut self) {
        self.start();
        let t0 = Instant::now();
        let ok = wait_until(Duration::from_secs(20), || {
            let b = self.fl().json(&["show", "bond", "bond0"]);
            b["distributing"].as_array().is_some_and(|a| a.len() == 2)
                && self
                    .ovs_lacp()
                    .members
                    .values()
                    .filter(|m| m.converged())
                    .count()
                    == 2
                && self.ovs.members_enabled("bond0", &OVS_MEMBERS)
        });
        if !ok {
            self.fail("not aggregated on both sides within 20 s");
        }
        println!(
            "MEASURE ops: converged {} ms after the socket came up",
            t0.elapsed().as_millis()
        );
        // OVS's hash buckets, assigned afresh now that both members are enabled.
        self.ovs.rehash("bond0");
    }
}

/// One member of `ovs-appctl lacp/show`, every "key: value" line of its block.
#[derive(Debug, Default)]
struct OvsMemberView {
    status: String,
    fields: BTreeMap<String, String>,
}

impl OvsMemberView {
    fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
    fn num(&self, k: &str) -> u64 {
        self.get(k).parse().unwrap_or(u64::MAX)
    }
    fn converged(&self) -> bool {
        self.status == "current attached"
            && self
                .get("partner state")
                .contains("synchronized collecting distributing")
    }
}

/// `ovs-appctl lacp/show bond0` parsed here, independently of the other interop tests.
#[derive(Debug, Default)]
struct OvsView {
    members: BTreeMap<String, OvsMemberView>,
    text: String,
}

impl OvsView {
    fn parse(text: &str) -> OvsView {
        let mut v = OvsView {
            text: text.to_string(),
            ..Default::default()
        };
        let mut cur: Option<String> = None;
        for line in text.lines() {
            let l = line.trim();
            if let Some(rest) = l
                .strip_prefix("member: ")
                .or_else(|| l.strip_prefix("slave: "))
            {
                let (name, status) = rest.split_once(':').unwrap_or((rest, ""));
                v.members.insert(
                    name.trim().to_string(),
                    OvsMemberView {
                        status: status.trim().to_string(),
                        ..Default::default()
                    },
                );
                cur = Some(name.trim().to_string());
                continue;
            }
            if let (Some(c), Some((k, val))) = (&cur, l.split_once(':')) {
                if let Some(m) = v.members.get_mut(c) {
                    m.fields
                        .insert(k.trim().to_string(), val.trim().to_string());
                }
            }
        }
        v
    }
}

/// OVS's state names as bits (OVS prints them LSB first).
fn ovs_state_bits(names: &str) -> u64 {
    names
        .split_whitespace()
        .map(|n| match n {
            "activity" => 0x01,
            "timeout" => 0x02,
            "aggregation" => 0x04,
            "synchronized" => 0x08,
            "collecting" => 0x10,
            "distributing" => 0x20,
            "defaulted" => 0x40,
            "expired" => 0x80,
            other => panic!("unknown OVS state name {other:?}"),
        })
        .sum()
}

/// Field-by-field differences between `ctl show lacp --json` and `ovs-appctl lacp/show`
/// (empty when they agree), on both the partner side (OVS as actor) and OVS's view of us.
fn lacp_differences(ours: &Value, ovs: &OvsView) -> Vec<String> {
    let mut d = Vec::new();
    for (m, o) in MEMBERS.iter().zip(OVS_MEMBERS) {
        let mine = member(&ours[0], m);
        let Some(theirs) = ovs.members.get(o) else {
            d.push(format!("OVS shows no member {o}"));
            continue;
        };
        let (p, a) = (&mine["partner"], &mine["actor"]);
        let checks: [(&str, Value, Value); 12] = [
            (
                "partner system",
                p["system"].clone(),
                Value::from(theirs.get("actor sys_id").to_lowercase()),
            ),
            (
                "partner system priority",
                p["system_priority"].clone(),
                Value::from(theirs.num("actor sys_priority")),
            ),
            (
                "partner key",
                p["key"].clone(),
                Value::from(theirs.num("actor key")),
            ),
            (
                "partner port",
                p["port"].clone(),
                Value::from(theirs.num("actor port_id")),
            ),
            (
                "partner port priority",
                p["port_priority"].clone(),
                Value::from(theirs.num("actor port_priority")),
            ),
            (
                "partner state",
                p["state"].clone(),
                Value::from(ovs_state_bits(theirs.get("actor state"))),
            ),
            (
                "actor system (OVS's partner)",
                a["system"].clone(),
                Value::from(theirs.get("partner sys_id").to_lowercase()),
            ),
            (
                "actor system priority",
                a["system_priority"].clone(),
                Value::from(theirs.num("partner sys_priority")),
            ),
            (
                "actor key",
                a["key"].clone(),
                Value::from(theirs.num("partner key")),
            ),
            (
                "actor port",
                a["port"].clone(),
                Value::from(theirs.num("partner port_id")),
            ),
            (
                "actor port priority",
                a["port_priority"].clone(),
                Value::from(theirs.num("partner port_priority")),
            ),
            (
                "actor state",
                a["state"].clone(),
                Value::from(ovs_state_bits(theirs.get("partner state"))),
            ),
        ];
        for (what, ctl, appctl) in checks {
            if ctl != appctl {
                d.push(format!("{m}/{o} {what}: ctl {ctl} vs ovs-appctl {appctl}"));
            }
        }
        // Same port on the OVS side in its own header.
        if theirs.num("port_id") != theirs.num("actor port_id") {
            d.push(format!(
                "{o}: OVS port_id {} vs actor port_id {}",
                theirs.get("port_id"),
                theirs.get("actor port_id")
            ));
        }
    }
    d
}

/// `ctl show lacp --json` agrees field by field with `ovs-appctl lacp/show` (system id,
/// priority, key, port number and priority, every state bit, both directions), and
/// `ctl capture` writes a pcap that tshark decodes as LACPDUs without a warning.
#[test]
fn ovs_lacp_show_agrees_with_ctl_and_capture_decodes() {
    let mut rig = Rig::new("lacp", false);
    rig.converge();
    let fl = rig.fl();
    // The two views are read one after the other; in steady state they agree at once,
    // a transmit crossing the reads is retried.
    let mut diffs = Vec::new();
    for _ in 0..5 {
        let ours = fl.json(&["show", "lacp", "bond0"]);
        let theirs = rig.ovs_lacp();
        diffs = lacp_differences(&ours, &theirs);
        if diffs.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !diffs.is_empty() {
        rig.fail(&format!(
            "ctl and ovs-appctl disagree:\n{}",
            diffs.join("\n")
        ));
    }
    // The human view shows the same tuple side by side.
    let text = fl.text(&["show", "lacp", "bond0", "--detail"]);
    let ovs = rig.ovs_lacp();
    let sys = ovs.members["vb0"].get("actor sys_id").to_lowercase();
    if !(text.contains(&sys) && text.contains("actor (us)") && text.contains("802.3ad counters:")) {
        rig.fail(&format!(
            "show lacp --detail lacks the partner system {sys}:\n{text}"
        ));
    }
    let why = fl.text(&["why", "bond0"]);
    if !why.contains("2 of 2 members distributing") {
        rig.fail(&format!("why on a healthy bond: {why}"));
    }

    // Capture: both directions, decoded by tshark.
    std::thread::sleep(Duration::from_secs(2));
    let pcap = rig.scratch.file("lacp.pcap");
    let cap = fl.json(&["capture", "bond0", "--slow", "-w", pcap.to_str().unwrap()]);
    let (n, rx, tx) = (
        cap["frames"].as_u64().unwrap(),
        cap["rx"].as_u64().unwrap(),
        cap["tx"].as_u64().unwrap(),
    );
    if rx < 4 || tx < 4 {
        rig.fail(&format!(
            "capture: {rx} received and {tx} sent LACPDUs, expected both ways"
        ));
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .arg("-V")
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    // tshark's note about running as root is not about the file.
    let se: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("Running as user") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let decoded = so.matches("Link Aggregation Control Protocol").count() as u64;
    let bad = [
        "Malformed",
        "Expert Info (Warn",
        "Expert Info (Error",
        "[Warning",
        "Unknown",
    ]
    .iter()
    .find(|w| so.contains(*w));
    println!("MEASURE capture: {n} frames ({rx} rx, {tx} tx), tshark decoded {decoded} LACPDUs");
    if !out.status.success() || !se.trim().is_empty() || bad.is_some() || decoded != n {
        rig.fail(&format!(
            "tshark: status {}, {decoded} LACPDUs decoded of {n}, warning {bad:?}, stderr {se}\n{}",
            out.status,
            tail(&so, 60)
        ));
    }
    // Our system id appears as actor in the frames we sent, OVS's in those we received.
    let ours = fl.json(&["show", "lacp", "bond0"])[0]["system_mac"]
        .as_str()
        .unwrap()
        .to_string();
    let actors = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-e", "lacp.actor.sysid"])
        .output()
        .unwrap();
    let actors = String::from_utf8_lossy(&actors.stdout);
    let from_us = actors.lines().filter(|l| l.trim() == ours).count() as u64;
    let from_ovs = actors.lines().filter(|l| l.trim() == sys).count() as u64;
    if from_us != tx || from_ovs != rx {
        rig.fail(&format!(
            "actor system ids in the pcap: {from_us} ours ({ours}), {from_ovs} OVS's ({sys}); \
             ctl said {tx} sent, {rx} received"
        ));
    }
}

/// What `ctl` shows a person about the bond (text and JSON), scanned for engine-relative
/// instants: every instant shown must be a wall-clock time or an age (issue 14, item 2).
fn assert_no_engine_instants(rig: &Rig, when: &str) {
    let mut seen = String::new();
    for c in [
        &["show", "bond", "bond0"][..],
        &["show", "bonds"],
        &["show", "lacp"],
        &["show", "lacp", "--detail"],
        &["why", "bond0"],
        &["show", "events", "bond0"],
    ] {
        for json in [false, true] {
            let mut a = c.to_vec();
            if json {
                a.push("--json");
            }
            let out = rig.fl().ctl(&a);
            let text = String::from_utf8_lossy(&out.stdout);
            for hit in engine_instants(&text) {
                seen += &format!("ctl {}: {hit}\n", a.join(" "));
            }
        }
    }
    for hit in engine_instants(&rig.fl().log()) {
        seen += &format!("log: {hit}\n");
    }
    if !seen.is_empty() {
        rig.fail(&format!("{when}: engine-relative instants shown:\n{seen}"));
    }
}

/// `ctl why` on real failures against OVS: a link taken down on the OVS side (link_down),
/// OVS's LACPDUs dropped on one link (silent_partner, with the age and the short timeout),
/// a drained member (drain); each in words, and back to distributing afterwards.
#[test]
fn ovs_why_names_link_down_silent_partner_and_drain() {
    let mut rig = Rig::new("why", false);
    rig.converge();
    let why_of =
        |rig: &Rig, m: &str| -> Value { member(&rig.fl().json(&["why", "bond0"]), m).clone() };
    let wait_class = |rig: &Rig, m: &str, class: &str, within: Duration| -> Value {
        let mut last = Value::Null;
        let ok = wait_until(within, || {
            last = why_of(rig, m);
            last["class"] == class
        });
        if !ok {
            rig.fail(&format!("{m}: expected why class {class}, got {last}"));
        }
        last
    };
    let wait_both = |rig: &Rig| {
        let ok = wait_until(Duration::from_secs(15), || {
            rig.fl().json(&["show", "bond", "bond0"])["distributing"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        });
        if !ok {
            rig.fail("both members did not come back");
        }
    };

    // Link down: OVS's end of m1's link goes down, our carrier with it.
    net::set_link(Some(&rig.peer.name), "vb1", false).unwrap();
    let w = wait_class(&rig, "m1", "link_down", Duration::from_secs(5));
    let text = rig.fl().text(&["why", "bond0"]);
    if !text.contains("m1: NOT distributing [link_down]: link down") {
        rig.fail(&format!("why text: {text}"));
    }
    println!("MEASURE why link_down: {}", w["reason"]);
    assert_no_engine_instants(&rig, "link down");
    net::set_link(Some(&rig.peer.name), "vb1", true).unwrap();
    wait_both(&rig);

    // Silent partner: OVS's LACPDUs on vb0 never leave.
    let silence = TcEgressDrop::new(&rig.peer, "vb0", "0x8809");
    let w = wait_class(&rig, "m0", "silent_partner", Duration::from_secs(6));
    let r = w["reason"].as_str().unwrap_or("");
    if !(r.contains("no LACPDU from partner for")
        && r.contains("short timeout")
        && r.contains("last one at"))
    {
        rig.fail(&format!("silent partner reason: {r}"));
    }
    // No data flows in this test either: told apart from a static LAG's data-only link.
    if !r.contains("nothing at all arrives on this link") {
        rig.fail(&format!("silent partner reason: {r}\n{w}"));
    }
    println!("MEASURE why silent_partner: {r}");
    assert_no_engine_instants(&rig, "silent partner");
    drop(silence);
    wait_both(&rig);

    // Drain.
    rig.fl().text(&["member", "drain", "bond0", "m1"]);
    wait_class(&rig, "m1", "drain", Duration::from_secs(3));
    // First "leaving" (egress off), then advertised out of sync.
    let mut w = Value::Null;
    let out_of_sync = wait_until(Duration::from_secs(3), || {
        w = why_of(&rig, "m1");
        w["evidence"]
            .to_string()
            .contains("synchronization cleared")
    });
    if !out_of_sync {
        rig.fail(&format!("drained m1 not advertised out of sync: {w}"));
    }
    println!("MEASURE why drain: {} / {}", w["reason"], w["evidence"]);
    assert_no_engine_instants(&rig, "drain");
    rig.fl().text(&["member", "undrain", "bond0", "m1"]);
    wait_both(&rig);
    let ev = rig.fl().text(&["show", "events", "bond0"]);
    for needle in [
        "LinkDown",
        "CurrentWhileExpired",
        "drain requested",
        "undrained: rejoining",
    ] {
        if !ev.contains(needle) {
            rig.fail(&format!("show events lacks {needle}:\n{ev}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Drain with traffic

/// Numbered UDP datagrams over many source ports at a steady rate; a receiver that keeps
/// the count of distinct datagrams in a file.
const UDP_PY: &str = r#"
import json, signal, socket, struct, sys, time
HDR = struct.Struct("!HI")
def send(src, dst, port, flows, rate, seconds, out):
    socks = []
    for i in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK: veth leaves checksums to "hardware"
        s.bind((src, 41000 + i))
        socks.append(s)
    seqs = [0] * flows
    errors = 0
    start = time.monotonic()
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
    with open(out, "w") as fh:
        json.dump({"sent": sum(seqs), "errors": errors}, fh)
def recv(bind, port, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((bind, port))
    s.settimeout(0.05)
    seen = set()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    last = 0
    open(out + ".ready", "w").close()
    while not stop:
        try:
            data, _ = s.recvfrom(2048)
            if len(data) >= HDR.size:
                seen.add(HDR.unpack_from(data))
        except (socket.timeout, InterruptedError):
            pass
        now = time.monotonic()
        if now - last > 0.05:
            with open(out + ".tmp", "w") as fh:
                fh.write(str(len(seen)))
            import os
            os.replace(out + ".tmp", out)
            last = now
if __name__ == "__main__":
    a = sys.argv
    if a[1] == "send":
        send(a[2], a[3], int(a[4]), int(a[5]), float(a[6]), float(a[7]), a[8])
    else:
        recv(a[2], int(a[3]), a[4])
"#;

fn veth_counters(rig: &Rig) -> [[u64; 2]; 2] {
    [0, 1].map(|i| {
        [
            net::if_counter(&rig.fl_if[i], "tx_packets"),
            net::if_counter(&rig.fl_if[i], "rx_packets"),
        ]
    })
}

fn delta(a: [[u64; 2]; 2], b: [[u64; 2]; 2]) -> [[u64; 2]; 2] {
    [0, 1].map(|i| [b[i][0] - a[i][0], b[i][1] - a[i][1]])
}

/// With UDP flowing both ways through OVS and the bond, `member drain m1` moves every flow
/// (ours and OVS's) to m0 without losing a datagram, m1 stays out (only LACPDUs on it)
/// until `undrain`, after which our flows use both members again, still without loss.
#[test]
fn ovs_drain_moves_traffic_without_loss_and_undrain_brings_it_back() {
    let mut rig = Rig::new("drain", true);
    rig.converge();
    let script = rig.scratch.file("udp.py");
    std::fs::write(&script, UDP_PY).unwrap();
    let py = "/usr/bin/python3";
    let lan = rig.lan.as_ref().unwrap();
    let mut guards = Vec::new();
    let mut outs = Vec::new();
    for (name, ns, ip, port) in [
        ("fwd", &lan.dst, DST_IP, "5000"),
        ("rev", &lan.src, SRC_IP, "5001"),
    ] {
        let out = rig.scratch.file(&format!("recv-{name}.txt"));
        let c = ns.cmd_dies_with_parent(&[
            py,
            script.to_str().unwrap(),
            "recv",
            ip,
            port,
            out.to_str().unwrap(),
        ]);
        guards.push(ChildGuard::spawn(
            "udp receiver",
            c,
            &rig.scratch.file(&format!("recv-{name}.log")),
        ));
        let ready = PathBuf::from(format!("{}.ready", out.display()));
        if !wait_until(Duration::from_secs(10), || ready.exists()) {
            rig.fail("UDP receiver did not start");
        }
        outs.push(out);
    }
    let (rate, secs) = (2000.0, 9.0);
    let mut senders = Vec::new();
    for (name, ns, from, to, port) in [
        ("fwd", &lan.src, SRC_IP, DST_IP, "5000"),
        ("rev", &lan.dst, DST_IP, SRC_IP, "5001"),
    ] {
        let out = rig.scratch.file(&format!("send-{name}.json"));
        let c = ns.cmd_dies_with_parent(&[
            py,
            script.to_str().unwrap(),
            "send",
            from,
            to,
            port,
            "64",
            &rate.to_string(),
            &secs.to_string(),
            out.to_str().unwrap(),
        ]);
        senders.push((
            ChildGuard::spawn(
                "udp sender",
                c,
                &rig.scratch.file(&format!("send-{name}.log")),
            ),
            out,
        ));
    }
    let t0 = Instant::now();
    let fl = rig.fl();
    let at = |s: f64| {
        let due = t0 + Duration::from_secs_f64(s);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    };
    // Both members carry traffic before the drain.
    at(1.0);
    let c0 = veth_counters(&rig);
    at(2.0);
    let c1 = veth_counters(&rig);
    let before = delta(c0, c1);
    let drain = fl.text(&["member", "drain", "bond0", "m1"]);
    if !drain.contains("draining") {
        rig.fail(&format!("drain answer: {drain}"));
    }
    // Settled: 20 ms to advertise, OVS reacts, we hold collecting 1 s.
    at(3.5);
    let c2 = veth_counters(&rig);
    at(5.5);
    let c3 = veth_counters(&rig);
    let drained = delta(c2, c3);
    let ovs = rig.ovs_lacp();
    let bond_show = rig
        .ovs
        .try_appctl(&["bond/show", "bond0"])
        .unwrap_or_default();
    let lacp = fl.json(&["show", "lacp", "bond0"]);
    let why = fl.json(&["why", "bond0"]);
    // m0 now carries the bond alone: draining it too would blackhole the bond. Refused,
    // with the reason, and nothing changes (the traffic check below covers that).
    let last = fl.ctl(&["member", "drain", "bond0", "m0"]);
    let refusal = String::from_utf8_lossy(&last.stderr).into_owned();
    if last.status.success() || !refusal.contains("last distributing member of bond0") {
        rig.fail(&format!(
            "draining the last distributing member was not refused: {refusal}{}",
            String::from_utf8_lossy(&last.stdout)
        ));
    }
    if !refusal.contains("--force") {
        rig.fail(&format!("the refusal does not name --force: {refusal}"));
    }
    fl.text(&["member", "undrain", "bond0", "m1"]);
    // Rejoined: back in sync, our egress returns after the partner acted on it.
    at(7.0);
    let c4 = veth_counters(&rig);
    at(8.5);
    let c5 = veth_counters(&rig);
    let after = delta(c4, c5);

    let mut sent = Vec::new();
    for (mut g, out) in senders {
        if g.wait_timeout(Duration::from_secs(20))
            .is_none_or(|s| !s.success())
        {
            rig.fail("UDP sender failed");
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        if v["errors"] != 0 {
            rig.fail(&format!("sender socket refused datagrams: {v}"));
        }
        sent.push(v["sent"].as_u64().unwrap());
    }
    let mut got = [0u64; 2];
    for (i, out) in outs.iter().enumerate() {
        let mut last = (0, Instant::now());
        wait_until(Duration::from_secs(5), || {
            let n = std::fs::read_to_string(out)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            if n != last.0 {
                last = (n, Instant::now());
            }
            got[i] = n;
            n >= sent[i] || last.1.elapsed() > Duration::from_millis(700)
        });
    }
    let stats = fl.json(&["show", "stats"]);
    let m1_not_collecting = stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "m1")
        .map(|p| p["workers"]["drop_not_collecting"].as_u64().unwrap())
        .unwrap();
    println!(
        "MEASURE drain: frames per member link [tx from us, rx to us] over 1 s before the drain \
         m0 {:?} m1 {:?}; over 2 s drained m0 {:?} m1 {:?}; over 1.5 s after undrain m0 {:?} m1 {:?}; \
         forward {}/{} and reverse {}/{} datagrams delivered; m1 ingress dropped as not \
         collecting: {m1_not_collecting}",
        before[0], before[1], drained[0], drained[1], after[0], after[1], got[0], sent[0], got[1], sent[1]
    );
    let ctx = format!(
        "OVS lacp/show while drained:\n{}\nOVS bond/show while drained:\n{bond_show}\nctl show lacp \
         while drained: {lacp}\nctl why while drained: {why}",
        ovs.text
    );
    // Before: traffic on both links in both directions (64 flows, layer3+4 on both ends).
    if before.iter().any(|m| m[0] < 100 || m[1] < 100) {
        rig.fail(&format!(
            "before the drain both links should carry traffic both ways: {before:?}"
        ));
    }
    // Drained: m1 carries only LACPDUs (fast: about one per second each way).
    if drained[1][0] > 6 || drained[1][1] > 6 {
        rig.fail(&format!(
            "m1 still carries traffic while drained: {:?}\n{ctx}",
            drained[1]
        ));
    }
    if member(&lacp[0], "m1")["actor"]["state"].as_u64().unwrap() & 0x08 != 0 {
        rig.fail(&format!(
            "drained m1 still advertises synchronization\n{ctx}"
        ));
    }
    if ovs.members["vb1"]
        .get("partner state")
        .contains("synchronized")
    {
        rig.fail(&format!("OVS still sees m1 in sync\n{ctx}"));
    }
    if member(&why, "m1")["class"] != "drain" {
        rig.fail(&format!("why does not say drain\n{ctx}"));
    }
    // After undrain: our hash spreads over both members again.
    if after[0][0] < 100 || after[1][0] < 100 {
        rig.fail(&format!(
            "after undrain our egress should use both members: {after:?}"
        ));
    }
    if got[0] != sent[0] || got[1] != sent[1] {
        rig.fail(&format!(
            "datagrams lost: forward {} of {}, reverse {} of {} delivered\n{ctx}\nctl show stats \
             (where they went):\n{}\nOVS's side of the member links (tx/rx/drops): {:?}",
            got[0],
            sent[0],
            got[1],
            sent[1],
            fl.text(&["show", "stats"]),
            OVS_MEMBERS
                .iter()
                .map(|d| ["tx_packets", "rx_packets", "rx_dropped", "tx_dropped"]
                    .map(|c| rig.peer.try_if_counter(d, c).unwrap_or(0)))
                .collect::<Vec<_>>()
        ));
    }
    let log = fl.log();
    let Some(quiet) = log
        .lines()
        .find(|l| l.contains("drain: the partner stopped sending on the member"))
    else {
        rig.fail("no log line saying the partner stopped sending on m1");
    };
    println!("MEASURE drain: {quiet}");
    if m1_not_collecting != 0 {
        rig.fail(&format!(
            "{m1_not_collecting} frames dropped on m1 as not collecting"
        ));
    }
    drop(guards);
}

// ---------------------------------------------------------------------------------------
// Router mode: interfaces and routes

/// Router mode in a namespace of its own: `ctl show routes` lists the connected prefixes,
/// the static route from the config and a route the kernel got on a TAP (mirrored), with
/// the static one winning over a kernel route for the same prefix; `ctl show interfaces`
/// lists the interfaces with their TAPs.
#[test]
fn router_show_routes_and_interfaces() {
    let scratch = Scratch::new("ops-rt");
    let ns = Netns::new("opsrt");
    let sock = scratch.file("ctl.sock");
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let cfg = format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "p0"
device = "ring:l0:a"
[[port]]
name = "p1"
device = "ring:l1:a"

[[interface]]
name = "wan"
on = "p0"
addresses = ["192.0.2.1/24"]
tap_name = "flo-wan"
[[interface]]
name = "lan"
on = "p1"
addresses = ["198.51.100.1/24", "2001:db8:5::1/64"]
tap_name = "flo-lan"

[[route]]
prefix = "203.0.113.0/24"
via = "192.0.2.254"

[forward]
mode = "router"

[management]
socket = "{s}"
"#,
        c = cpus[0],
        w = cpus[1],
        s = sock.display()
    );
    let cfg_path = scratch.file("fastlag.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let log = scratch.file("fastlag.log");
    let cmd = ns.cmd_dies_with_parent(&[
        fastlag().get_program().to_str().unwrap(),
        "run",
        "--config",
        cfg_path.to_str().unwrap(),
    ]);
    let _fl = ChildGuard::spawn("fastlag", cmd, &log);
    let d = Daemon {
        proc: ChildGuard {
            child: None,
            name: "fastlag (held above)".into(),
        },
        log: log.clone(),
        sock: sock.clone(),
    };
    let up = wait_until(Duration::from_secs(30), || {
        d.log().contains("management socket ready") && ns.link_up("flo-wan")
    });
    assert!(up, "router did not come up:\n{}", d.log());
    // A route the kernel has on a TAP (as a routing daemon would install it); the same
    // prefix as the static route too, which must keep winning.
    ns.ip(&[
        "route",
        "add",
        "192.0.2.128/25",
        "via",
        "192.0.2.2",
        "dev",
        "flo-wan",
    ]);
    ns.ip(&[
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "198.51.100.7",
        "dev",
        "flo-lan",
    ]);
    let mut v = Value::Null;
    let route = |v: &Value, prefix: &str, origin: &str| -> Option<Value> {
        v["routes"]
            .as_array()?
            .iter()
            .find(|r| r["prefix"] == prefix && r["origin"] == origin)
            .cloned()
    };
    let mirrored = wait_until(Duration::from_secs(5), || {
        v = d.json(&["show", "routes"]);
        route(&v, "192.0.2.128/25", "kernel").is_some()
            && route(&v, "203.0.113.0/24", "kernel").is_some()
    });
    assert!(
        mirrored,
        "kernel routes not mirrored: {v:#}\n{}",
        tail(&d.log(), 30)
    );
    let k = route(&v, "192.0.2.128/25", "kernel").unwrap();
    assert_eq!(k["interface"], "wan");
    assert_eq!(k["gateway"], "192.0.2.2");
    assert_eq!(k["active"], true);
    let s = route(&v, "203.0.113.0/24", "static").expect("static route");
    assert_eq!(
        (s["gateway"].as_str(), s["active"].as_bool()),
        (Some("192.0.2.254"), Some(true))
    );
    let k2 = route(&v, "203.0.113.0/24", "kernel").unwrap();
    assert_eq!(k2["active"], false, "the static route wins: {v:#}");
    for (p, i) in [
        ("192.0.2.1/24", "wan"),
        ("198.51.100.1/24", "lan"),
        ("2001:db8:5::1/64", "lan"),
    ] {
        let c = route(&v, p, "connected").unwrap_or_else(|| panic!("no connected {p}: {v:#}"));
        assert_eq!(c["interface"], i);
    }
    let text = d.text(&["show", "routes"]);
    assert!(
        text.contains("203.0.113.0/24") && text.contains("kernel"),
        "{text}"
    );
    let ifs = d.json(&["show", "interfaces"]);
    let names: Vec<(&str, &str)> = ifs
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["tap"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(names, [("wan", "flo-wan"), ("lan", "flo-lan")]);
    assert!(d.text(&["show", "interfaces"]).contains("flo-lan"));
    // xconnect-only answers (bonds: none) still work.
    assert_eq!(d.json(&["show", "bonds"]), Value::Array(vec![]));
}

/// Without a bond or a router there is no control thread: the main thread answers ping,
/// show bonds (none), show ports and show stats, and says why anything else does not apply.
#[test]
fn xconnect_only_serves_counters_from_the_main_thread() {
    let scratch = Scratch::new("ops-xc");
    let sock = scratch.file("ctl.sock");
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let cfg = format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "x0"
device = "ring:xa:a"
[[port]]
name = "x1"
device = "ring:xb:a"

[forward]
mode = "xconnect"
pairs = [["x0", "x1"]]

[management]
socket = "{s}"
"#,
        c = cpus[0],
        w = cpus[1],
        s = sock.display()
    );
    let d = Daemon::start(&scratch, &cfg, &sock);
    assert!(d.json(&["ping"]).is_object());
    assert_eq!(d.json(&["show", "bonds"]), Value::Array(vec![]));
    let ok = wait_until(Duration::from_secs(5), || {
        d.json(&["show", "ports"])
            .as_array()
            .is_some_and(|p| p.len() == 2 && p[0]["name"] == "x0")
    });
    assert!(ok, "{}", d.text(&["show", "ports"]));
    assert!(d.json(&["show", "stats"])["workers"].is_array());
    let out = d.ctl(&["why", "bond0"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no bond and no router"), "{e}");
    let Daemon { mut proc, .. } = d;
    proc.signal("TERM");
    assert!(proc
        .wait_timeout(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    assert!(!sock.exists(), "socket file left behind");
}

/// Static bond modes have no LACP: `why` reasons from link state and the mode (the
/// active-backup spare is standby), `show lacp` has nothing to show, and drain says it
/// needs 802.3ad.
#[test]
fn static_bond_why_and_drain_refusal() {
    let scratch = Scratch::new("ops-ab");
    let sock = scratch.file("ctl.sock");
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let cfg = format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "s0"
device = "ring:sa:a"
[[port]]
name = "s1"
device = "ring:sb:a"
[[port]]
name = "up"
device = "ring:sc:a"

[[bond]]
name = "ab"
mode = "active-backup"
members = ["s0", "s1"]

[forward]
mode = "xconnect"
pairs = [["up", "ab"]]

[management]
socket = "{s}"
"#,
        c = cpus[0],
        w = cpus[1],
        s = sock.display()
    );
    let d = Daemon::start(&scratch, &cfg, &sock);
    let mut w = Value::Null;
    let ok = wait_until(Duration::from_secs(5), || {
        w = d.json(&["why", "ab"]);
        member(&w, "s0")["distributing"] == true && member(&w, "s1")["class"] == "standby"
    });
    assert!(ok, "{w:#}");
    assert_eq!(
        member(&w, "s1")["reason"],
        "standby: s0 carries the traffic (active-backup)"
    );
    assert_eq!(d.json(&["show", "lacp"]), Value::Array(vec![]));
    let b = d.json(&["show", "bond", "ab"]);
    assert_eq!(b["mode"], "active-backup");
    assert!(b["system"].is_null());
    let out = d.ctl(&["member", "drain", "ab", "s1"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("drain needs an 802.3ad bond"), "{e}");
    let out = d.ctl(&["member", "drain", "ab", "s9"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("bond ab has no member \"s9\"; members: s0, s1"),
        "{e}"
    );
}
