//! Interoperability with DPDK's own bonding PMD (`net_bonding`, mode 4) as an independent
//! IEEE 802.1AX partner in a second process (`fastlag-bond-peer`, see its module docs).
//!
//! - Over vhost-user links, where fastlag's members are `net_virtio_user` ports whose PMD
//!   reports speed and duplex as unknown: the seed bug (docs/lacp-engine.md; a bond that never
//!   aggregates, silently, because speed/duplex were unknown) must not happen. Both
//!   members aggregate, fastlag says once per member that the speed is unknown, LACPDUs
//!   keep flowing in both directions, and flows hashed by the DPDK bond arrive on both
//!   fastlag members, every frame accounted for.
//! - Over memif (known speed), as a second interop path.
//!
//! The peer's member index i and fastlag's member `m<i>` share link i.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::*;

/// Aggregation must complete within this long after both ends run (measured: ~3 s, of
/// which 2 s are the aggregate wait timer of 802.1AX).
const AGGREGATE_WITHIN: Duration = Duration::from_secs(10);
/// Flow frames the peer sends once its bond distributes.
const FLOW_FRAMES: u64 = 6000;
const FLOWS: u32 = 64;
const MEMBERS: [&str; 2] = ["m0", "m1"];

const STATE_SYNC: u64 = 1 << 3;
const STATE_COLLECTING: u64 = 1 << 4;
const STATE_DISTRIBUTING: u64 = 1 << 5;
const IN_SERVICE: u64 = STATE_SYNC | STATE_COLLECTING | STATE_DISTRIBUTING;

fn bond_peer() -> Command {
    Command::new(testkit::bin("fastlag-bond-peer"))
}

/// A JSON file written atomically by another process, if it exists yet.
fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// fastlag's status of member `name` of its only bond.
fn fl_member<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["bonds"][0]["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .unwrap_or(&Value::Null)
}

/// fastlag: both members distributing, the partner in sync, collecting and distributing.
fn fastlag_aggregated(st: &Value) -> bool {
    let table = &st["bonds"][0]["distributing"];
    table.as_array().is_some_and(|t| t.len() == MEMBERS.len())
        && MEMBERS.iter().all(|m| {
            let m = fl_member(st, m);
            m["distributing"] == true
                && m["collecting"] == true
                && m["lacp"]["partner_state"]
                    .as_u64()
                    .is_some_and(|s| s & IN_SERVICE == IN_SERVICE)
        })
}

/// The DPDK bond: every member with actor and partner DISTRIBUTING (and in sync).
fn peer_aggregated(st: &Value) -> bool {
    st["members"].as_array().is_some_and(|ms| {
        ms.len() == MEMBERS.len()
            && ms.iter().all(|m| {
                let l = &m["lacp"];
                l["selected"] == "SELECTED"
                    && l["actor"]["sync"] == true
                    && l["actor"]["distributing"] == true
                    && l["partner"]["sync"] == true
                    && l["partner"]["collecting"] == true
                    && l["partner"]["distributing"] == true
            })
    })
}

fn mac_of(system: &Value) -> String {
    // fastlag writes "priority,mac".
    system
        .as_str()
        .and_then(|s| s.split(',').nth(1))
        .unwrap_or_default()
        .to_string()
}

fn port_report<'a>(rep: &'a Value, name: &str) -> &'a Value {
    rep["stats"]["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no port {name} in the report: {rep}"))
}

fn fastlag_config(cpus: &[usize], member_devices: [String; 2]) -> String {
    format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "m0"
device = "{d0}"

[[port]]
name = "m1"
device = "{d1}"

[[port]]
name = "g0"
device = "ring:g0:a"

[[bond]]
name = "bond0"
members = ["m0", "m1"]
hash = "layer3+4"

[forward]
mode = "xconnect"
pairs = [["bond0", "g0"]]
"#,
        c = cpus[0],
        w = cpus[1],
        d0 = member_devices[0],
        d1 = member_devices[1],
    )
}

/// Everything one scenario runs; fields drop in reverse order (processes before the
/// scratch directory).
struct Run {
    scratch: Scratch,
    fastlag: Option<ChildGuard>,
    peer: Option<ChildGuard>,
}

impl Run {
    fn fl_status(&self) -> Value {
        read_json(&self.scratch.file("fastlag.json")).unwrap_or(Value::Null)
    }
    fn peer_status(&self) -> Value {
        read_json(&self.scratch.file("peer.json")).unwrap_or(Value::Null)
    }
    fn fl_log(&self) -> String {
        std::fs::read_to_string(self.scratch.file("fastlag.log")).unwrap_or_default()
    }
    fn peer_log(&self) -> String {
        std::fs::read_to_string(self.scratch.file("peer.log")).unwrap_or_default()
    }
    fn logs(&self) -> String {
        format!(
            "--- fastlag status\n{}\n--- peer status\n{}\n--- fastlag log\n{}\n--- peer log\n{}",
            self.fl_status(),
            self.peer_status(),
            self.fl_log(),
            self.peer_log()
        )
    }

    fn start_fastlag(&mut self, cfg: &str) {
        let path = self.scratch.file("fastlag.toml");
        std::fs::write(&path, cfg).unwrap();
        let mut cmd = fastlag();
        cmd.arg("run")
            .arg("--config")
            .arg(&path)
            .arg("--status")
            .arg(self.scratch.file("fastlag.json"))
            .arg("--report")
            .arg(self.scratch.file("report.json"));
        self.fastlag = Some(ChildGuard::spawn(
            "fastlag",
            cmd,
            &self.scratch.file("fastlag.log"),
        ));
    }

    fn start_peer(&mut self, tag: &str, members: &[String], extra: &[&str]) {
        let mut cmd = bond_peer();
        for m in members {
            cmd.arg("--member").arg(m);
        }
        cmd.args(["--xmit-policy", "l34"])
            .arg(format!(
                "--file-prefix=fl-bondpeer-{tag}-{}",
                std::process::id()
            ))
            .arg("--status")
            .arg(self.scratch.file("peer.json"))
            .args(["--send-flows", &FLOWS.to_string()])
            .args(["--rate", "4000"])
            .args(["--count", &FLOW_FRAMES.to_string()])
            // A bound in case this test process dies without dropping its guards.
            .args(["--seconds", "120"])
            .args(extra);
        self.peer = Some(ChildGuard::spawn(
            "fastlag-bond-peer",
            cmd,
            &self.scratch.file("peer.log"),
        ));
    }

    fn running(&mut self) -> bool {
        self.fastlag.as_mut().is_none_or(|c| c.running())
            && self.peer.as_mut().is_none_or(|c| c.running())
    }

    /// Waits until both sides aggregated; returns how long it took.
    fn wait_aggregated(&mut self, since: Instant) -> Duration {
        let mut done = false;
        wait_until(AGGREGATE_WITHIN + Duration::from_secs(10), || {
            done = fastlag_aggregated(&self.fl_status()) && peer_aggregated(&self.peer_status());
            done || !self.running()
        });
        let took = since.elapsed();
        assert!(done, "no aggregation after {took:?}\n{}", self.logs());
        assert!(
            took <= AGGREGATE_WITHIN,
            "aggregation took {took:?} (bound {AGGREGATE_WITHIN:?})\n{}",
            self.logs()
        );
        took
    }

    /// Both views of every link agree: fastlag's partner is the DPDK bond's actor and the
    /// other way round.
    fn check_views_agree(&self) -> String {
        let fl = self.fl_status();
        let peer = self.peer_status();
        let bond_mac = peer["bond"]["mac"].as_str().unwrap().to_string();
        let member_macs: Vec<String> = peer["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mac"].as_str().unwrap().to_string())
            .collect();
        let mut system = String::new();
        for (i, name) in MEMBERS.iter().enumerate() {
            let f = &fl_member(&fl, name)["lacp"];
            let p = &peer["members"][i]["lacp"];
            // DPDK advertises its aggregator member's MAC as system id; that is the bond's
            // MAC when the aggregator is the primary (first) member.
            let advertised = p["actor"]["system"].as_str().unwrap();
            assert_eq!(
                mac_of(&f["partner_system"]),
                advertised,
                "{name}: fastlag's partner system vs. the DPDK bond's system id\n{}",
                self.logs()
            );
            assert!(
                member_macs.iter().any(|m| m == advertised),
                "{advertised} is not a member MAC of the DPDK bond {member_macs:?}"
            );
            system = advertised.to_string();
            assert_eq!(f["partner_key"], p["actor"]["key"], "{name}: key");
            assert_eq!(f["partner_port"], p["actor"]["port"], "{name}: port");
            assert_eq!(p["partner"]["key"], f["actor_key"], "{name}: our key");
            assert_eq!(p["partner"]["port"], f["actor_port"], "{name}: our port");
            assert_eq!(
                p["partner"]["state"], f["actor_state"],
                "{name}: the DPDK bond's record of our state"
            );
            assert_eq!(
                f["partner_state"], p["actor"]["state"],
                "{name}: our record of the DPDK bond's state"
            );
        }
        // Both links lead to one partner system, seen from both sides.
        let p0 = &peer["members"][0]["lacp"]["partner"]["system_mac"];
        assert_eq!(p0, &peer["members"][1]["lacp"]["partner"]["system_mac"]);
        assert_eq!(
            mac_of(&fl_member(&fl, "m0")["lacp"]["partner_system"]),
            mac_of(&fl_member(&fl, "m1")["lacp"]["partner_system"])
        );
        println!(
            "DPDK bond {bond_mac}: system id {system} ({})",
            if system == bond_mac {
                "= the bond's MAC"
            } else {
                "a member's MAC, not the bond's"
            }
        );
        system
    }

    /// Waits for the peer to have sent all flow frames.
    fn wait_flows_sent(&mut self) {
        let ok = wait_until(Duration::from_secs(20), || {
            self.peer_status()["traffic"]["done"] == true || !self.running()
        });
        assert!(
            ok && self.peer_status()["traffic"]["done"] == true,
            "the peer did not send {FLOW_FRAMES} flow frames\n{}",
            self.logs()
        );
    }

    /// Stops both sides without either polling a link the other one is tearing down
    /// (DPDK 22.11's memif PMD unmaps the rings from its interrupt thread while the
    /// poller may be inside `rx_burst`, see fastlag-bond-peer's SIGUSR1): the peer stops
    /// polling first (its frames land in rings fastlag still polls), fastlag drains them
    /// and stops, then the peer closes its ports. Returns (the peer's final status,
    /// fastlag's report, fastlag's log).
    fn stop(&mut self) -> (Value, Value, String) {
        let mut peer = self.peer.take().expect("peer running");
        peer.signal("USR1");
        let quiet = wait_until(Duration::from_secs(10), || {
            self.peer_status()["polling"] == false
        });
        assert!(quiet, "the peer did not stop polling\n{}", self.logs());
        std::thread::sleep(Duration::from_millis(300));
        let mut fl = self.fastlag.take().expect("fastlag running");
        fl.signal("TERM");
        let st = fl
            .wait_timeout(Duration::from_secs(20))
            .expect("fastlag exits after SIGTERM");
        assert!(st.success(), "fastlag exit status {st:?}\n{}", self.logs());
        peer.signal("TERM");
        let st = peer
            .wait_timeout(Duration::from_secs(20))
            .expect("the peer exits after SIGTERM");
        assert!(st.success(), "peer exit status {st:?}\n{}", self.logs());
        let peer_final = self.peer_status();
        assert_eq!(peer_final["running"], false, "{peer_final}");
        assert_eq!(
            peer_final["pool"]["leaked"], 0,
            "the peer leaked mbufs: {peer_final}"
        );
        let rep = read_json(&self.scratch.file("report.json")).expect("fastlag's report");
        assert_eq!(
            rep["pool"]["available"], rep["pool"]["size"],
            "fastlag's pool after SIGTERM: {}",
            rep["pool"]
        );
        (peer_final, rep, self.fl_log())
    }
}

/// Flow frames hashed by the DPDK bond arrive on both fastlag members. Returns the data
/// frames per member. `exact`: the link keeps frames in flight when the peer leaves
/// (vhost-user: the rings are fastlag's memory), so every frame the peer's members sent
/// must show up.
fn check_traffic(peer_final: &Value, rep: &Value, exact: bool) -> [u64; 2] {
    let t = &peer_final["traffic"];
    let sent = t["sent"].as_u64().unwrap();
    let fillers = t["kicks_sent"].as_u64().unwrap();
    assert_eq!(sent, FLOW_FRAMES, "{t}");
    let mut data = [0u64; 2];
    for (i, name) in MEMBERS.iter().enumerate() {
        let p = port_report(rep, name);
        let rx = p["workers"]["rx"].as_u64().unwrap();
        let slow = p["workers"]["slow_to_control"].as_u64().unwrap();
        data[i] = rx - slow;
        assert_eq!(p["workers"]["drop_not_collecting"], 0, "{name}: {p}");
        if exact {
            let peer_tx = peer_final["members"][i]["stats"]["tx_packets"]
                .as_u64()
                .unwrap();
            assert_eq!(
                rx, peer_tx,
                "{name}: frames received by fastlag vs. sent by the DPDK bond's member {i}"
            );
        }
    }
    let total: u64 = data.iter().sum();
    if exact {
        assert_eq!(
            total,
            sent + fillers,
            "data frames {data:?}, peer traffic {t}"
        );
    } else {
        // Frames in flight when the link goes down may be lost; flow frames were all sent
        // long before.
        assert!(
            (sent..=sent + fillers).contains(&total),
            "data frames {data:?}, peer traffic {t}"
        );
    }
    for (i, d) in data.iter().enumerate() {
        assert!(
            *d * 4 >= sent,
            "member m{i} got {d} of {sent} frames of {FLOWS} flows: the DPDK bond's l34 hash \
             should spread them over both links ({data:?})"
        );
    }
    data
}

fn report_split(peer_final: &Value, data: [u64; 2]) {
    println!(
        "data frames from the DPDK bond: m0 {} / m1 {} ({FLOW_FRAMES} frames of {FLOWS} \
         flows, plus {} fillers that flush its LACPDUs while idle; they are not IP, so DPDK's \
         l34 hash sends them all over its first distributing member)",
        data[0], data[1], peer_final["traffic"]["kicks_sent"]
    );
}

#[test]
fn dpdk_bonding_pmd_aggregates_with_fastlag_over_unknown_speed_links() {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let mut run = Run {
        scratch: Scratch::new("bondpeer-vhost"),
        fastlag: None,
        peer: None,
    };
    let sock = |i: usize| run.scratch.file(&format!("vh{i}.sock"));
    let (s0, s1) = (sock(0), sock(1));

    // The DPDK bond owns the vhost-user servers, so it starts first.
    let members: Vec<String> = [&s0, &s1]
        .iter()
        .enumerate()
        .map(|(i, s)| format!("net_vhost{i},iface={},queues=2", s.display()))
        .collect();
    run.start_peer("vhost", &members, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || !run.running()
            || (s0.exists() && s1.exists()))
            && run.running(),
        "the peer did not create its vhost-user sockets\n{}",
        run.logs()
    );

    // fastlag's members are virtio-user clients: their PMD reports no speed or duplex.
    let cfg = fastlag_config(
        &cpus,
        [
            format!("net_virtio_user0,path={}", s0.display()),
            format!("net_virtio_user1,path={}", s1.display()),
        ],
    );
    let t0 = Instant::now();
    run.start_fastlag(&cfg);
    let took = run.wait_aggregated(t0);
    println!("aggregated with DPDK's bonding PMD over vhost-user (speed unknown) in {took:?}");

    let fl = run.fl_status();
    for name in MEMBERS {
        let m = fl_member(&fl, name);
        assert_eq!(m["link_up"], true, "{m}");
        assert_eq!(
            m["speed_mbps"],
            Value::Null,
            "{name}: speed must read unknown: {m}"
        );
        assert_eq!(m["duplex"], "unknown", "{name}: {m}");
        assert_eq!(m["reason"], Value::Null, "{name}: {m}");
    }
    run.check_views_agree();

    // LACPDUs keep flowing in both directions. fastlag asks for the short timeout, so the
    // DPDK bond sends every second; DPDK never asks for it, so fastlag sends every ~30 s
    // (802.1AX slow periodic time) and its counter moves only that often.
    let counts = |st: &Value, key: &str| -> Vec<u64> {
        MEMBERS
            .iter()
            .map(|m| fl_member(st, m)["lacp"][key].as_u64().unwrap_or(0))
            .collect()
    };
    let (rx0, tx0) = (counts(&fl, "lacpdus_rx"), counts(&fl, "lacpdus_tx"));
    let t1 = Instant::now();
    let mut rx_flowing = None;
    let tx_flowing = wait_until(Duration::from_secs(40), || {
        let st = run.fl_status();
        let (rx, tx) = (counts(&st, "lacpdus_rx"), counts(&st, "lacpdus_tx"));
        if rx_flowing.is_none() && rx.iter().zip(&rx0).all(|(a, b)| *a >= b + 2) {
            rx_flowing = Some(t1.elapsed());
        }
        (rx_flowing.is_some() && tx.iter().zip(&tx0).all(|(a, b)| a > b)) || !run.running()
    });
    assert!(
        rx_flowing.is_some() && tx_flowing && run.running(),
        "LACPDUs stopped: rx {rx0:?} -> {:?}, tx {tx0:?} -> {:?}\n{}",
        counts(&run.fl_status(), "lacpdus_rx"),
        counts(&run.fl_status(), "lacpdus_tx"),
        run.logs()
    );
    println!(
        "LACPDUs: fastlag received 2 more within {:?}, sent its next periodic one after {:?}",
        rx_flowing.unwrap(),
        t1.elapsed()
    );
    // Still aggregated on both sides, nothing expired or defaulted.
    let (fl, peer) = (run.fl_status(), run.peer_status());
    assert!(
        fastlag_aggregated(&fl) && peer_aggregated(&peer),
        "{}",
        run.logs()
    );

    run.wait_flows_sent();
    let (peer_final, rep, log) = run.stop();
    let data = check_traffic(&peer_final, &rep, true);
    report_split(&peer_final, data);

    // The seed bug's lesson: unknown speed/duplex is said once per member, never silently
    // acted on.
    for name in MEMBERS {
        let lines = log
            .lines()
            .filter(|l| {
                l.contains("the PMD does not report link speed/duplex")
                    && l.contains(&format!("member={name}"))
            })
            .count();
        assert_eq!(
            lines, 1,
            "unknown-speed warnings for {name} (expected exactly one):\n{log}"
        );
    }
}

fn aggregate_over_memif(peer_rx_queues: &str) -> String {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    let mut run = Run {
        scratch: Scratch::new("bondpeer-memif"),
        fastlag: None,
        peer: None,
    };
    let sock = |i: usize| run.scratch.file(&format!("m{i}.sock"));
    let (s0, s1) = (sock(0), sock(1));

    // fastlag is the memif server: it starts first.
    let cfg = fastlag_config(
        &cpus,
        [
            format!(
                "net_memif0,role=server,id=0,socket={},socket-abstract=no",
                s0.display()
            ),
            format!(
                "net_memif1,role=server,id=0,socket={},socket-abstract=no",
                s1.display()
            ),
        ],
    );
    run.start_fastlag(&cfg);
    assert!(
        wait_until(Duration::from_secs(20), || !run.running()
            || (s0.exists() && s1.exists()))
            && run.running(),
        "fastlag did not create its memif sockets\n{}",
        run.logs()
    );
    let members: Vec<String> = [&s0, &s1]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "net_memif{i},role=client,id=0,socket={},socket-abstract=no",
                s.display()
            )
        })
        .collect();
    // A memif client may not have more TX rings than the server has RX queues (fastlag:
    // one per worker); the peer transmits on queue 0 only anyway.
    let t0 = Instant::now();
    run.start_peer(
        "memif",
        &members,
        &["--rx-queues", peer_rx_queues, "--tx-queues", "1"],
    );
    let took = run.wait_aggregated(t0);
    println!("aggregated with DPDK's bonding PMD over memif in {took:?}");

    let fl = run.fl_status();
    for name in MEMBERS {
        let m = fl_member(&fl, name);
        assert_eq!(m["duplex"], "full", "{name}: memif reports its speed: {m}");
        assert!(m["speed_mbps"].as_u64().is_some(), "{m}");
    }
    run.check_views_agree();
    // DPDK derives its key from the speed; memif says 100 Gb/s, which DPDK maps to 0xFFFF.
    let peer = run.peer_status();
    println!(
        "DPDK bond actor keys: {} {}",
        peer["members"][0]["lacp"]["actor"]["key"], peer["members"][1]["lacp"]["actor"]["key"]
    );

    run.wait_flows_sent();
    let (peer_final, rep, log) = run.stop();
    let data = check_traffic(&peer_final, &rep, false);
    report_split(&peer_final, data);
    assert!(
        !log.contains("the PMD does not report link speed/duplex"),
        "memif reports its speed:\n{log}"
    );
    log
}

#[test]
fn dpdk_bonding_pmd_aggregates_with_fastlag_over_memif() {
    let log = aggregate_over_memif("2");
    assert!(
        !log.contains("LACPDUs now leave through worker 0"),
        "a peer reading queue 1 gets LACPDUs from the control queue:\n{log}"
    );
}

/// A peer with a single memif queue never sees fastlag's control TX queue (there is no
/// ring behind it): fastlag notices the failed transmits and sends its LACPDUs through
/// worker 0's queue instead, and the bond still aggregates.
#[test]
fn single_queue_memif_peer_gets_lacpdus_through_the_worker_queue() {
    let log = aggregate_over_memif("1");
    assert!(
        log.contains("LACPDUs now leave through worker 0"),
        "expected the fallback to be logged:\n{log}"
    );
}
