//! The Prometheus endpoint: parsed by the reference Python parser
//! (`prometheus_client.parser`), and every counter equal to the `--status` snapshot with
//! the same sequence number; malformed and wrong requests are answered and do not stop it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::*;

/// Two 802.3ad bonds back to back over in-process links (they negotiate with each other).
fn config(metrics: SocketAddr) -> String {
    let cpus = cpus();
    assert!(cpus.len() >= 2, "needs 2 CPUs, has {cpus:?}");
    format!(
        r#"
[dataplane]
control_core = {c}
worker_cores = [{w}]
hugepages = false
memory_mb = 256

[[port]]
name = "a0"
device = "ring:m0:a"

[[port]]
name = "a1"
device = "ring:m1:a"

[[port]]
name = "b0"
device = "ring:m0:b"

[[port]]
name = "b1"
device = "ring:m1:b"

[[port]]
name = "in"
device = "ring:g0:a"

[[port]]
name = "out"
device = "ring:g1:a"

[[bond]]
name = "bondA"
members = ["a0", "a1"]

[[bond]]
name = "bondB"
members = ["b0", "b1"]

[forward]
mode = "xconnect"
pairs = [["in", "bondA"], ["bondB", "out"]]

[management]
metrics = "{metrics}"
"#,
        c = cpus[0],
        w = cpus[1],
    )
}

/// A loopback port nobody listens on right now.
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Sends `request` as is; returns (status code, headers, body).
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

fn get_metrics(addr: SocketAddr) -> String {
    let (code, head, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(code, 200, "{head}\n{body}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

/// The reference parser's view: family name -> (type, samples as (name, labels, value)).
type Families = BTreeMap<String, (String, Vec<(String, BTreeMap<String, String>, f64)>)>;

const PARSE_PY: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = [fam.type, [[s.name, s.labels, s.value] for s in fam.samples]]
print(json.dumps(out))
"#;

fn parse(text: &str) -> Families {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs python3-prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client's parser rejected the exposition:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, f)| {
            let samples = f[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect();
                    (
                        s[0].as_str().unwrap().to_string(),
                        labels,
                        s[2].as_f64().unwrap(),
                    )
                })
                .collect();
            (k.clone(), (f[0].as_str().unwrap().to_string(), samples))
        })
        .collect()
}

/// The value of sample `name` with exactly these labels.
fn sample(f: &Families, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    f.values()
        .flat_map(|(_, s)| s.iter())
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
}

fn u(v: &Value) -> f64 {
    v.as_u64().unwrap_or_else(|| panic!("not a counter: {v}")) as f64
}

#[test]
fn metrics_parse_and_match_the_status_snapshot() {
    let scratch = Scratch::new("metrics");
    let addr = free_port();
    let mut fl = Fastlag::start(&scratch, &config(addr));
    let status_path = fl.status.clone();
    fl.wait_for(&[status_path], Duration::from_secs(30));
    let converged = wait_until(Duration::from_secs(10), || {
        fl.status().is_some_and(|s| {
            s["bonds"].as_array().is_some_and(|b| {
                b.iter()
                    .all(|b| b["distributing"].as_array().map(Vec::len) == Some(2))
            })
        })
    });
    assert!(converged, "bonds did not converge:\n{}", fl.log());

    // The status file and the endpoint are rewritten from the same snapshot every 50 ms:
    // find a scrape and a status file with the same sequence number, then compare exactly.
    let mut matched = None;
    for _ in 0..200 {
        let Some(st) = fl.status() else { continue };
        let fams = parse(&get_metrics(addr));
        let seq = sample(&fams, "fastlag_status_sequence", &[]);
        if seq == Some(u(&st["sequence"])) {
            matched = Some((st, fams));
            break;
        }
    }
    let (st, f) = matched.expect("no scrape with the status file's sequence number in 200 tries");

    // Types and naming: counters end in _total, every family has a fastlag_ prefix.
    for (name, (kind, samples)) in &f {
        assert!(name.starts_with("fastlag_"), "{name}");
        if kind == "counter" {
            assert!(
                samples.iter().all(|(n, _, _)| n.ends_with("_total")),
                "{name}"
            );
        }
    }
    let mut compared = 0;
    let mut eq = |name: &str, labels: &[(&str, &str)], want: f64| {
        let got = sample(&f, name, labels);
        assert_eq!(got, Some(want), "{name}{labels:?}");
        compared += 1;
    };
    for p in st["ports"].as_array().unwrap() {
        let port = p["name"].as_str().unwrap();
        let l = [("port", port)];
        for (m, k) in [
            ("rx_packets", "rx_packets"),
            ("tx_packets", "tx_packets"),
            ("rx_bytes", "rx_bytes"),
            ("tx_bytes", "tx_bytes"),
            ("rx_errors", "rx_errors"),
            ("tx_errors", "tx_errors"),
            ("rx_missed", "rx_missed"),
        ] {
            eq(&format!("fastlag_port_{m}_total"), &l, u(&p["pmd"][k]));
        }
        eq(
            "fastlag_port_worker_rx_packets_total",
            &l,
            u(&p["workers"]["rx"]),
        );
        eq(
            "fastlag_port_worker_tx_packets_total",
            &l,
            u(&p["workers"]["tx"]),
        );
        eq(
            "fastlag_port_drops_total",
            &[("port", port), ("reason", "not_collecting")],
            u(&p["workers"]["drop_not_collecting"]),
        );
    }
    for b in st["bonds"].as_array().unwrap() {
        let bond = b["name"].as_str().unwrap();
        let bl = [("bond", bond), ("mode", "802.3ad")];
        eq("fastlag_bond_up", &bl, 1.0);
        eq(
            "fastlag_bond_distributing_members",
            &bl,
            b["distributing"].as_array().unwrap().len() as f64,
        );
        eq("fastlag_bond_table_version", &bl, u(&b["table_version"]));
        for m in b["members"].as_array().unwrap() {
            let member = m["name"].as_str().unwrap();
            let ml = [("bond", bond), ("member", member)];
            let lacp = &m["lacp"];
            eq("fastlag_lacp_lacpdus_rx_total", &ml, u(&lacp["lacpdus_rx"]));
            eq("fastlag_lacp_lacpdus_tx_total", &ml, u(&lacp["lacpdus_tx"]));
            eq(
                "fastlag_lacp_illegal_rx_total",
                &ml,
                u(&lacp["mib"]["illegal_rx"]),
            );
            eq("fastlag_member_distributing", &ml, 1.0);
            eq(
                "fastlag_member_selected",
                &ml,
                (lacp["selected"] == "selected") as u8 as f64,
            );
            assert_eq!(lacp["selected"], "selected", "{member}");
            for (bit, name) in [(0, "activity"), (3, "synchronization"), (5, "distributing")] {
                let l = [("bond", bond), ("member", member), ("bit", name)];
                let want = ((lacp["partner_state"].as_u64().unwrap() >> bit) & 1) as f64;
                eq("fastlag_lacp_partner_state", &l, want);
                let want = ((lacp["actor_state"].as_u64().unwrap() >> bit) & 1) as f64;
                eq("fastlag_lacp_actor_state", &l, want);
            }
            assert!(u(&lacp["lacpdus_rx"]) > 0.0, "{member} received no LACPDU");
        }
    }
    for w in st["workers"].as_array().unwrap() {
        let idx = w["index"].to_string();
        let l = [("worker", idx.as_str())];
        eq("fastlag_worker_rx_packets_total", &l, u(&w["rx"]));
        eq("fastlag_worker_tx_packets_total", &l, u(&w["tx"]));
        eq("fastlag_worker_busy_cycles_total", &l, u(&w["busy_cycles"]));
        eq("fastlag_worker_loops_total", &l, u(&w["loops"]));
    }
    println!(
        "MEASURE metrics: {compared} samples equal to the status snapshot {}",
        st["sequence"]
    );

    // Wrong requests get answers and the endpoint keeps serving.
    assert_eq!(http(addr, b"GET /other HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(http(addr, b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(http(addr, b"\x00\xff garbage\r\n\r\n").0, 400);
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(http(addr, &big).0, 431);
    // A client that connects and says nothing is dropped after the timeout; meanwhile
    // nothing else breaks.
    let idle = TcpStream::connect(addr).unwrap();
    drop(idle);
    assert!(get_metrics(addr).contains("fastlag_port_rx_packets_total"));

    let (ok, _, log) = fl.stop();
    assert!(ok, "fastlag did not exit cleanly:\n{log}");
}

#[test]
fn metrics_port_in_use_is_an_error_before_dpdk_starts() {
    let scratch = Scratch::new("metrics-busy");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = scratch.file("fastlag.toml");
    std::fs::write(&cfg, config(addr)).unwrap();
    let out = fastlag()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("management.metrics: cannot listen on {addr}")),
        "{err}"
    );
    assert!(!err.contains("EAL"), "DPDK started anyway:\n{err}");
}

/// Abuse from local clients for 30 s (the issue's acceptance): 15 management clients pipeline `capture`
/// requests and never read their answers (reconnecting when closed) while 10 metrics
/// clients send their request a byte at a time. fastlag's memory stays bounded, its
/// LACPDUs keep their period, and a scrape is still answered promptly.
#[test]
fn management_and_metrics_hold_under_local_abuse() {
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let scratch = Scratch::new("abuse");
    let addr = free_port();
    let sock = scratch.file("ctl.sock");
    let cfg = config(addr).replace(
        "[management]\n",
        &format!("[management]\nsocket = \"{}\"\n", sock.display()),
    );
    let mut fl = Fastlag::start(&scratch, &cfg);
    let status_path = fl.status.clone();
    fl.wait_for(&[status_path, sock.clone()], Duration::from_secs(30));
    let converged = wait_until(Duration::from_secs(10), || {
        fl.status().is_some_and(|s| {
            s["bonds"].as_array().is_some_and(|b| {
                b.iter()
                    .all(|b| b["distributing"].as_array().map(Vec::len) == Some(2))
            })
        })
    });
    assert!(converged, "bonds did not converge:\n{}", fl.log());
    let pid = fl.child.pid();
    let rss0 = testkit::rss_bytes(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..15 {
        let (stop, sock) = (stop.clone(), sock.clone());
        threads.push(std::thread::spawn(move || {
            let req = b"{\"cmd\":\"capture\",\"bond\":\"bondA\"}\n".repeat(32);
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut c) = UnixStream::connect(&sock) else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(true).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match c.write(&req) {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break, // closed by fastlag: come back
                    }
                }
            }
        }));
    }
    for _ in 0..10 {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut c) = TcpStream::connect(addr) else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                for b in b"GET /metrics HTTP/1.1\r\n".iter().cycle() {
                    if stop.load(Ordering::Relaxed) || c.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }));
    }
    let t0 = Instant::now();
    let (mut rss_max, mut scrape_max, mut scrapes) = (rss0, Duration::ZERO, 0);
    let mut slow_scrapes = 0;
    while t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let body = get_metrics(addr);
        scrape_max = scrape_max.max(t.elapsed());
        slow_scrapes += usize::from(t.elapsed() >= Duration::from_millis(100));
        scrapes += 1;
        assert!(body.contains("fastlag_mgmt_requests_total"));
        rss_max = rss_max.max(testkit::rss_bytes(pid));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let metrics = get_metrics(addr);
    let sample = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let st = fl.status().expect("status");
    let gaps: Vec<f64> = st["bonds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["members"].as_array().unwrap().clone())
        .map(|m| m["lacp"]["tx_gaps"]["max_ms"].as_f64().unwrap())
        .collect();
    let grown = rss_max.saturating_sub(rss0);
    println!(
        "MEASURE abuse: 30 s of 15 non-reading management clients and 10 slow metrics clients: \
         RSS {} -> max {} MiB (+{:.1} MiB); {scrapes} scrapes, {slow_scrapes} of them 100 ms or \
         more, slowest {scrape_max:?}; LACPDU \
         intervals max {gaps:?} ms; management: {} requests, {} clients closed for not reading, \
         held max {} KiB; metrics: {} timed out, {} refused",
        rss0 >> 20,
        rss_max >> 20,
        grown as f64 / 1048576.0,
        sample("fastlag_mgmt_requests_total"),
        sample("fastlag_mgmt_closed_not_reading_total"),
        sample("fastlag_mgmt_held_bytes_max") >> 10,
        sample("fastlag_metrics_http_timeouts_total"),
        sample("fastlag_metrics_http_rejected_total"),
    );
    assert!(grown < 16 << 20, "RSS grew by {grown} bytes");
    // Under 100 ms (the target); a shared 2-core CI machine may deschedule the test for
    // one sample now and then, so 1 in 20 may be slower, none beyond a second.
    assert!(
        slow_scrapes * 20 <= scrapes && scrape_max < Duration::from_secs(1),
        "{slow_scrapes} of {scrapes} scrapes took 100 ms or more, slowest {scrape_max:?}"
    );
    assert!(
        gaps.iter().all(|&g| g < 950.0),
        "LACPDU intervals {gaps:?} ms"
    );
    assert!(sample("fastlag_mgmt_closed_not_reading_total") > 0);
    assert!(sample("fastlag_metrics_http_timeouts_total") > 0);
    let (ok, _, log) = fl.stop();
    assert!(ok, "fastlag did not exit cleanly:\n{log}");
}
