//! Prometheus metrics: text exposition format 0.0.4 over a minimal HTTP/1.x server on the
//! loopback address from `[management] metrics`.
//!
//! The numbers come from the same snapshot as the `--status` file (and `fastlag ctl show
//! stats`): the main thread takes the control thread's [`Status`] and the port/worker
//! counters every 50 ms, writes the status file and publishes the same [`Scrape`] here
//! (arc-swap). The server runs on a thread of its own that only reads that published
//! snapshot: a slow or malicious client can delay other scrapes (each connection has
//! 2 s timeouts and an 8 KiB request limit) but never the control thread's LACP timers or
//! a worker. Serving from the control thread's loop would put HTTP parsing and socket
//! writes next to LACPDU deadlines for no gain; the snapshot is the same either way.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::control_loop::Status;
use crate::runtime::Snapshot;

/// 802.3ad MIB counters of a member (dot3adAggPortStats / Debug), as in the status file.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Mib {
    /// LACPDUs received.
    pub lacpdus_rx: u64,
    /// LACPDUs sent.
    pub lacpdus_tx: u64,
    /// Marker PDUs received.
    pub marker_pdus_rx: u64,
    /// Marker responses received.
    pub marker_response_pdus_rx: u64,
    /// Marker responses sent.
    pub marker_response_pdus_tx: u64,
    /// Slow-protocol frames of an unknown subtype.
    pub unknown_rx: u64,
    /// Malformed PDUs.
    pub illegal_rx: u64,
    /// Entries into actor churn.
    pub actor_churn_count: u64,
    /// Entries into partner churn.
    pub partner_churn_count: u64,
    /// Changes of our Synchronization bit.
    pub actor_sync_transitions: u64,
    /// Changes of the partner's Synchronization bit.
    pub partner_sync_transitions: u64,
}

impl From<&lacp::info::PortCounters> for Mib {
    fn from(c: &lacp::info::PortCounters) -> Mib {
        Mib {
            lacpdus_rx: c.lacpdus_rx,
            lacpdus_tx: c.lacpdus_tx,
            marker_pdus_rx: c.marker_pdus_rx,
            marker_response_pdus_rx: c.marker_response_pdus_rx,
            marker_response_pdus_tx: c.marker_response_pdus_tx,
            unknown_rx: c.unknown_rx,
            illegal_rx: c.illegal_rx,
            actor_churn_count: c.actor_churn_count,
            partner_churn_count: c.partner_churn_count,
            actor_sync_transitions: c.actor_sync_transitions,
            partner_sync_transitions: c.partner_sync_transitions,
        }
    }
}

/// Everything one status file (and one scrape) shows, taken at one moment.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Increases with every snapshot; the status file carries it as `sequence`.
    pub sequence: u64,
    /// The control thread's view.
    pub control: Arc<Status>,
    /// Port, interface and worker counters.
    pub counters: Snapshot,
}

/// Where the main thread publishes [`Scrape`]s for the server.
pub type SharedScrape = Arc<ArcSwapOption<Scrape>>;

/// The metrics server thread.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// What it serves.
    pub scrape: SharedScrape,
}

/// Longest request head accepted.
const MAX_REQUEST: usize = 8192;
/// Per-connection read and write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl Server {
    /// Listens on `addr` (a loopback address, checked by the config) and serves from a
    /// thread of its own until dropped.
    pub fn start(addr: SocketAddr) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let scrape: SharedScrape = Arc::new(ArcSwapOption::empty());
        let (s, sc) = (stop.clone(), scrape.clone());
        let thread = std::thread::Builder::new()
            .name("fl-metrics".into())
            .spawn(move || serve(listener, &s, &sc))?;
        tracing::info!(%addr, "Prometheus metrics on http://{addr}/metrics");
        Ok(Server {
            stop,
            thread: Some(thread),
            scrape,
        })
    }

    /// Publishes the latest snapshot.
    pub fn publish(&self, s: Arc<Scrape>) {
        self.scrape.store(Some(s));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, stop: &AtomicBool, scrape: &SharedScrape) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, peer)) => {
                if let Err(e) = handle(conn, scrape) {
                    tracing::debug!(%peer, "metrics connection: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The response to a request head (everything up to the blank line).
pub fn respond(head: &[u8], scrape: Option<&Scrape>) -> (u16, &'static str, String) {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (400, "Bad Request", "malformed request line\n".into());
    };
    if !version.starts_with("HTTP/1.") {
        return (400, "Bad Request", "HTTP/1.0 or HTTP/1.1 only\n".into());
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return (404, "Not Found", "only /metrics is served here\n".into());
    }
    if method != "GET" && method != "HEAD" {
        return (405, "Method Not Allowed", "use GET\n".into());
    }
    match scrape {
        Some(s) => (200, "OK", render(s)),
        None => (503, "Service Unavailable", "starting\n".into()),
    }
}

fn handle(mut conn: TcpStream, scrape: &SharedScrape) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(i);
        }
        if buf.len() > MAX_REQUEST {
            break None;
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let snapshot = scrape.load_full();
    let (code, reason, body) = match head_end {
        Some(i) => respond(&buf[..i], snapshot.as_deref()),
        None => (
            431,
            "Request Header Fields Too Large",
            "request too large\n".into(),
        ),
    };
    let head_only = buf.starts_with(b"HEAD ") && code == 200;
    let content_type = if code == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    conn.write_all(out.as_bytes())?;
    conn.flush()?;
    // Closing with unread input would reset the connection and could discard the
    // response at the client: say we are done, then read (bounded) what it still sends.
    conn.shutdown(std::net::Shutdown::Write)?;
    conn.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut left: usize = 256 * 1024;
    while left > 0 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

/// Label values escaped as the exposition format requires.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Builds the exposition text: one HELP/TYPE block per metric family.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", esc(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family whose samples come from `rows`.
    fn each<T>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        rows: &[T],
        labels: impl Fn(&T) -> Vec<(&'static str, String)>,
        value: impl Fn(&T) -> Option<f64>,
    ) {
        let samples: Vec<(Vec<(&'static str, String)>, f64)> = rows
            .iter()
            .filter_map(|r| value(r).map(|v| (labels(r), v)))
            .collect();
        if samples.is_empty() {
            return;
        }
        self.family(name, kind, help);
        for (l, v) in samples {
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.sample(name, &l, num(v));
        }
    }
}

/// Integers print without a fraction (exact comparison with the status file).
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

const STATE_BITS: [&str; 8] = [
    "activity",
    "timeout",
    "aggregation",
    "synchronization",
    "collecting",
    "distributing",
    "defaulted",
    "expired",
];

/// A counter family: name suffix, help, and how to read it.
type Field<T> = (&'static str, &'static str, fn(&T) -> u64);

/// The exposition text for one snapshot.
pub fn render(s: &Scrape) -> String {
    let mut o = Out {
        text: String::with_capacity(16 * 1024),
    };
    let st = &s.control;
    let c = &s.counters;
    o.family(
        "fastlag_status_sequence",
        "gauge",
        "Sequence number of the snapshot served (the status file's \"sequence\").",
    );
    o.sample("fastlag_status_sequence", &[], s.sequence);
    o.family(
        "fastlag_uptime_seconds",
        "gauge",
        "Seconds since the control thread started.",
    );
    o.sample(
        "fastlag_uptime_seconds",
        &[],
        num(st.uptime_ms as f64 / 1e3),
    );

    // Ports: the PMD's counters, then what the workers counted.
    let port = |p: &crate::runtime::PortSnapshot| vec![("port", p.name.clone())];
    type P = crate::runtime::PortSnapshot;
    let pmd: [Field<P>; 8] = [
        ("rx_packets", "Packets received (PMD).", |p| {
            p.pmd.rx_packets
        }),
        ("tx_packets", "Packets sent (PMD).", |p| p.pmd.tx_packets),
        ("rx_bytes", "Bytes received (PMD).", |p| p.pmd.rx_bytes),
        ("tx_bytes", "Bytes sent (PMD).", |p| p.pmd.tx_bytes),
        ("rx_errors", "Erroneous packets received (PMD).", |p| {
            p.pmd.rx_errors
        }),
        ("tx_errors", "Failed transmissions (PMD).", |p| {
            p.pmd.tx_errors
        }),
        (
            "rx_missed",
            "Packets dropped for lack of an RX descriptor (PMD).",
            |p| p.pmd.rx_missed,
        ),
        ("rx_nombuf", "RX mbuf allocation failures (PMD).", |p| {
            p.pmd.rx_nombuf
        }),
    ];
    for (name, help, f) in pmd {
        o.each(
            &format!("fastlag_port_{name}_total"),
            "counter",
            help,
            &c.ports,
            port,
            |p| Some(f(p) as f64),
        );
    }
    o.each(
        "fastlag_port_worker_rx_packets_total",
        "counter",
        "Packets the workers received on the port.",
        &c.ports,
        port,
        |p| Some(p.workers.rx as f64),
    );
    o.each(
        "fastlag_port_worker_tx_packets_total",
        "counter",
        "Packets the workers sent on the port.",
        &c.ports,
        port,
        |p| Some(p.workers.tx as f64),
    );
    o.each(
        "fastlag_port_slow_to_control_total",
        "counter",
        "Slow-protocol frames the workers passed to the control thread.",
        &c.ports,
        port,
        |p| Some(p.workers.slow_to_control as f64),
    );
    let drops: Vec<(&P, &str, u64)> = c
        .ports
        .iter()
        .flat_map(|p| {
            let w = &p.workers;
            [
                (p, "tx_queue_full", w.drop_tx_full),
                (p, "no_egress", w.drop_no_egress),
                (p, "not_collecting", w.drop_not_collecting),
                (p, "bond_down", w.drop_bond_down),
                (p, "slow_ring_full", w.drop_slow_ring_full),
            ]
        })
        .collect();
    o.each(
        "fastlag_port_drops_total",
        "counter",
        "Frames the workers dropped, by reason.",
        &drops,
        |(p, r, _)| vec![("port", p.name.clone()), ("reason", r.to_string())],
        |(_, _, v)| Some(*v as f64),
    );

    // Bonds.
    type B = crate::control_loop::BondStatus;
    let bond = |b: &B| vec![("bond", b.name.clone()), ("mode", b.mode.clone())];
    o.each(
        "fastlag_bond_up",
        "gauge",
        "1 when the bond has a distributing member.",
        &st.bonds,
        bond,
        |b| Some(!b.distributing.is_empty() as u8 as f64),
    );
    o.each(
        "fastlag_bond_members",
        "gauge",
        "Configured members.",
        &st.bonds,
        bond,
        |b| Some(b.members.len() as f64),
    );
    o.each(
        "fastlag_bond_distributing_members",
        "gauge",
        "Members in the distribution table.",
        &st.bonds,
        bond,
        |b| Some(b.distributing.len() as f64),
    );
    o.each(
        "fastlag_bond_min_links",
        "gauge",
        "Fewest distributing members for the bond to be up.",
        &st.bonds,
        bond,
        |b| Some(b.min_links as f64),
    );
    o.each(
        "fastlag_bond_min_links_met",
        "gauge",
        "1 when at least min_links members distribute.",
        &st.bonds,
        bond,
        |b| Some((b.distributing.len() >= b.min_links.max(1) as usize) as u8 as f64),
    );
    o.each(
        "fastlag_bond_table_version",
        "gauge",
        "Version of the member table the workers use.",
        &st.bonds,
        bond,
        |b| Some(b.table_version as f64),
    );

    // Members.
    type M<'a> = (&'a B, &'a crate::control_loop::MemberStatus);
    let members: Vec<M> = st
        .bonds
        .iter()
        .flat_map(|b| b.members.iter().map(move |m| (b, m)))
        .collect();
    let mem = |(b, m): &M| vec![("bond", b.name.clone()), ("member", m.name.clone())];
    o.each(
        "fastlag_member_link_up",
        "gauge",
        "1 when the member's link is up.",
        &members,
        mem,
        |(_, m)| Some(m.link_up as u8 as f64),
    );
    o.each(
        "fastlag_member_speed_bits_per_second",
        "gauge",
        "Link speed, where known.",
        &members,
        mem,
        |(_, m)| m.speed_mbps.map(|s| s as f64 * 1e6),
    );
    o.each(
        "fastlag_member_collecting",
        "gauge",
        "1 when ingress on the member is accepted.",
        &members,
        mem,
        |(_, m)| Some(m.collecting as u8 as f64),
    );
    o.each(
        "fastlag_member_distributing",
        "gauge",
        "1 when the member carries egress.",
        &members,
        mem,
        |(_, m)| Some(m.distributing as u8 as f64),
    );
    o.each("fastlag_member_selected", "gauge", "1 when LACP selected the member (802.1AX SELECTED); static members: 1 when its link is up.", &members, mem, |(_, m)| Some(match &m.lacp {
        Some(l) => (l.selected == "selected") as u8 as f64,
        None => m.link_up as u8 as f64,
    }));
    o.each(
        "fastlag_member_standby",
        "gauge",
        "1 when LACP holds the member in STANDBY (max_active).",
        &members,
        mem,
        |(_, m)| {
            m.lacp
                .as_ref()
                .map(|l| (l.selected == "standby") as u8 as f64)
        },
    );
    let lacp: Vec<(
        &B,
        &crate::control_loop::MemberStatus,
        &crate::control_loop::MemberLacp,
    )> = members
        .iter()
        .filter_map(|(b, m)| m.lacp.as_ref().map(|l| (*b, *m, l)))
        .collect();
    for (side, help) in [
        ("actor", "Our LACP state bits, one series per bit."),
        (
            "partner",
            "The partner's LACP state bits, one series per bit.",
        ),
    ] {
        let bits: Vec<(&B, &crate::control_loop::MemberStatus, usize, u8)> = lacp
            .iter()
            .flat_map(|(b, m, l)| {
                let v = if side == "actor" {
                    l.actor_state
                } else {
                    l.partner_state
                };
                (0..8).map(move |i| (*b, *m, i, (v >> i) & 1))
            })
            .collect();
        o.each(
            &format!("fastlag_lacp_{side}_state"),
            "gauge",
            help,
            &bits,
            |(b, m, i, _)| {
                vec![
                    ("bond", b.name.clone()),
                    ("member", m.name.clone()),
                    ("bit", STATE_BITS[*i].to_string()),
                ]
            },
            |(_, _, _, v)| Some(*v as f64),
        );
    }
    type L<'a> = (
        &'a B,
        &'a crate::control_loop::MemberStatus,
        &'a crate::control_loop::MemberLacp,
    );
    let lab = |(b, m, _): &L| vec![("bond", b.name.clone()), ("member", m.name.clone())];
    let mib: [Field<Mib>; 11] = [
        (
            "lacpdus_rx",
            "Valid LACPDUs received (dot3adAggPortStatsLACPDUsRx).",
            |c| c.lacpdus_rx,
        ),
        (
            "lacpdus_tx",
            "LACPDUs sent (dot3adAggPortStatsLACPDUsTx).",
            |c| c.lacpdus_tx,
        ),
        ("marker_pdus_rx", "Marker PDUs received.", |c| {
            c.marker_pdus_rx
        }),
        (
            "marker_response_pdus_rx",
            "Marker response PDUs received.",
            |c| c.marker_response_pdus_rx,
        ),
        (
            "marker_response_pdus_tx",
            "Marker response PDUs sent.",
            |c| c.marker_response_pdus_tx,
        ),
        (
            "unknown_rx",
            "Slow-protocol frames of an unknown subtype.",
            |c| c.unknown_rx,
        ),
        ("illegal_rx", "Malformed slow-protocol PDUs.", |c| {
            c.illegal_rx
        }),
        ("actor_churn", "Entries into actor churn.", |c| {
            c.actor_churn_count
        }),
        ("partner_churn", "Entries into partner churn.", |c| {
            c.partner_churn_count
        }),
        (
            "actor_sync_transitions",
            "Changes of our Synchronization bit.",
            |c| c.actor_sync_transitions,
        ),
        (
            "partner_sync_transitions",
            "Changes of the partner's Synchronization bit.",
            |c| c.partner_sync_transitions,
        ),
    ];
    for (name, help, f) in mib {
        o.each(
            &format!("fastlag_lacp_{name}_total"),
            "counter",
            help,
            &lacp,
            lab,
            |(_, _, l)| Some(f(&l.mib) as f64),
        );
    }
    o.each(
        "fastlag_lacp_tx_interval_max_seconds",
        "gauge",
        "Longest interval between two of our LACPDUs on the member.",
        &lacp,
        lab,
        |(_, _, l)| (l.tx_gaps.count > 1).then_some(l.tx_gaps.max_ms / 1e3),
    );

    // Workers.
    type W = crate::runtime::WorkerSnapshot;
    let wl = |w: &W| vec![("worker", w.index.to_string())];
    o.each(
        "fastlag_worker_loops_total",
        "counter",
        "Worker loop iterations.",
        &c.workers,
        wl,
        |w| Some(w.loops as f64),
    );
    o.each(
        "fastlag_worker_busy_polls_total",
        "counter",
        "RX polls that returned packets.",
        &c.workers,
        wl,
        |w| Some(w.busy_polls as f64),
    );
    o.each(
        "fastlag_worker_idle_polls_total",
        "counter",
        "RX polls that returned nothing.",
        &c.workers,
        wl,
        |w| Some(w.idle_polls as f64),
    );
    o.each(
        "fastlag_worker_busy_cycles_total",
        "counter",
        "TSC cycles spent in polls that returned packets.",
        &c.workers,
        wl,
        |w| Some(w.busy_cycles as f64),
    );
    let tsc = c.tsc_hz.max(1) as f64;
    o.each(
        "fastlag_worker_busy_seconds_total",
        "counter",
        "Time spent in polls that returned packets; its rate is the worker's utilisation (0..1).",
        &c.workers,
        wl,
        |w| Some(w.busy_cycles as f64 / tsc),
    );
    o.each(
        "fastlag_worker_rx_packets_total",
        "counter",
        "Packets the worker received.",
        &c.workers,
        wl,
        |w| Some(w.rx as f64),
    );
    o.each(
        "fastlag_worker_tx_packets_total",
        "counter",
        "Packets the worker sent.",
        &c.workers,
        wl,
        |w| Some(w.tx as f64),
    );
    o.each(
        "fastlag_worker_drops_total",
        "counter",
        "Packets the worker dropped.",
        &c.workers,
        wl,
        |w| Some(w.drops as f64),
    );
    o.family(
        "fastlag_tsc_hertz",
        "gauge",
        "TSC frequency (cycles per second).",
    );
    o.sample("fastlag_tsc_hertz", &[], c.tsc_hz);

    // Router interfaces (worker side), and the exception path's control side.
    type I = crate::runtime::IfaceSnapshot;
    let il = |i: &I| vec![("interface", i.name.clone())];
    o.each(
        "fastlag_interface_rx_packets_total",
        "counter",
        "Frames received on the L3 interface.",
        &c.interfaces,
        il,
        |i| Some(i.rx as f64),
    );
    o.each(
        "fastlag_interface_forwarded_packets_total",
        "counter",
        "Frames routed out of the interface.",
        &c.interfaces,
        il,
        |i| Some(i.forwarded as f64),
    );
    o.each(
        "fastlag_interface_exception_ring_full_total",
        "counter",
        "Exception frames dropped for a full ring.",
        &c.interfaces,
        il,
        |i| Some(i.exception_ring_full as f64),
    );
    o.each(
        "fastlag_interface_egress_failed_total",
        "counter",
        "Frames that could not leave (no headroom, egress bond down).",
        &c.interfaces,
        il,
        |i| Some(i.egress_failed as f64),
    );
    for (name, help, pick) in [
        (
            "exceptions",
            "Frames handed to the kernel (TAP), by exception class.",
            0,
        ),
        (
            "policed",
            "Exception frames the policer dropped, by class.",
            1,
        ),
        ("drops", "Frames dropped, by reason.", 2),
    ] {
        let label = if pick == 2 { "reason" } else { "class" };
        let rows: Vec<(&I, &str, u64)> = c
            .interfaces
            .iter()
            .flat_map(|i| {
                let m = match pick {
                    0 => &i.exceptions,
                    1 => &i.policed,
                    _ => &i.drops,
                };
                m.iter().map(move |(k, v)| (i, *k, *v))
            })
            .collect();
        o.each(
            &format!("fastlag_interface_{name}_total"),
            "counter",
            help,
            &rows,
            |(i, k, _)| vec![("interface", i.name.clone()), (label, k.to_string())],
            |(_, _, v)| Some(*v as f64),
        );
    }
    if let Some(r) = &st.router {
        type K = crate::router::IfaceStatus;
        let kl = |i: &K| vec![("interface", i.name.clone())];
        o.each(
            "fastlag_interface_tap_to_kernel_total",
            "counter",
            "Frames written to the interface's TAP.",
            &r.interfaces,
            kl,
            |i| Some(i.kernel.to_kernel as f64),
        );
        o.each(
            "fastlag_interface_tap_from_kernel_total",
            "counter",
            "Frames the kernel sent out through the interface.",
            &r.interfaces,
            kl,
            |i| Some(i.kernel.from_kernel as f64),
        );
        o.each(
            "fastlag_interface_tap_to_kernel_dropped_total",
            "counter",
            "Frames the TAP did not take.",
            &r.interfaces,
            kl,
            |i| Some(i.kernel.to_kernel_dropped as f64),
        );
        o.each(
            "fastlag_interface_tap_from_kernel_dropped_total",
            "counter",
            "Frames from the kernel that could not be sent.",
            &r.interfaces,
            kl,
            |i| Some((i.kernel.from_kernel_dropped + i.kernel.from_kernel_link_down) as f64),
        );
        o.family(
            "fastlag_fib_routes",
            "gauge",
            "Routes in the FIB, by family.",
        );
        o.sample("fastlag_fib_routes", &[("family", "ipv4")], r.routes_v4);
        o.sample("fastlag_fib_routes", &[("family", "ipv6")], r.routes_v6);
        o.family(
            "fastlag_fib_version",
            "gauge",
            "Version of the FIB the workers use.",
        );
        o.sample("fastlag_fib_version", &[], r.fib_version);
    }
    o.text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_by_method_and_path() {
        assert_eq!(respond(b"GET /metrics HTTP/1.1\r\nHost: x", None).0, 503);
        assert_eq!(respond(b"GET /other HTTP/1.1", None).0, 404);
        assert_eq!(respond(b"POST /metrics HTTP/1.1", None).0, 405);
        assert_eq!(respond(b"GET /metrics", None).0, 400);
        assert_eq!(respond(b"\xff\xfe garbage", None).0, 400);
        assert_eq!(respond(b"GET /metrics SPDY/3", None).0, 400);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn integers_print_exactly() {
        assert_eq!(num(12345678901234.0), "12345678901234");
        assert_eq!(num(0.5), "0.5");
    }
}
