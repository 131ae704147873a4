//! `fastlag-bond-peer`: DPDK's own bonding PMD (`net_bonding`, mode 4 = IEEE 802.3ad/LACP)
//! run as an independent LACP partner in a second process.
//!
//! This is a **test and benchmark peer, not part of the product**. fastlag implements
//! 802.1AX itself; integration tests and benchmarks need a second implementation that was
//! written by somebody else to interoperate with. DPDK's bonding PMD is one (Open vSwitch is
//! the other, see TESTBED.md). This binary owns the bond's member devices (vhost-user
//! servers, memif ports, ...), builds `net_bonding0,mode=4,slave=...` over them, polls the
//! bond every millisecond and reports the PMD's 802.3ad view of each member.
//!
//! Why a harness and not testpmd: the bonding PMD in mode 4 (without dedicated queues) only
//! receives LACPDUs inside `rx_burst` on the bond and only sends them inside `tx_burst` on
//! the bond, and both must happen at least every 100 ms. testpmd's io mode calls `tx_burst`
//! only after a non-empty receive, so it never sends a LACPDU on an idle link.
//!
//! What it does, every poll (default 1 ms):
//! - `rx_burst` on every bond queue. The bonding PMD polls the same queue index on each
//!   member, and fastlag sends its LACPDUs from an extra TX queue that virtual devices
//!   keeping queue indexes (vhost/virtio-user, memif) deliver to our queue 1, so all
//!   queues are polled. Received frames are counted and freed.
//! - `tx_burst` on bond queue 0 (the queue fastlag's worker polls on the other side):
//!   generated flow frames when `--send-flows` is set, otherwise, every `--kick-ms`, a
//!   zero-length transmit (`TxQueue::flush`), which is where the bonding PMD sends its
//!   queued LACPDUs. (`traffic.kicks` counts them; `kicks_sent` stays 0: no data leaves.)
//! - Every `--status-interval-ms`, the JSON status file is rewritten atomically (write to a
//!   temporary file, then rename).
//!
//! It stops on SIGINT/SIGTERM or after `--seconds`, stops and closes the bond, checks
//! that every mbuf of its pool is back, writes a final status (`"running": false`) and
//! exits 0 (1 when something leaked or failed).
//!
//! SIGUSR1 quiesces it: it stops polling (no more rx/tx on the bond), writes its status
//! once more with `"polling": false` and keeps its ports open until SIGINT/SIGTERM. A test
//! uses this to shut a memif link down safely: DPDK 22.11's memif PMD unmaps the shared
//! rings from its interrupt thread when the other side disconnects, while this side's
//! poller may be inside `rx_burst` on them (it only checks a flag first), which can crash
//! the poller. So one side stops polling, the other side stops its ports, then the first
//! one closes.
//!
//! Example (two vhost-user links; fastlag connects with `net_virtio_user` members):
//! ```text
//! fastlag-bond-peer --member 'net_vhost0,iface=/tmp/x/vh0.sock,queues=2' \
//!     --member 'net_vhost1,iface=/tmp/x/vh1.sock,queues=2' --xmit-policy l34 \
//!     --send-flows 64 --rate 2000 --status /tmp/x/peer.json --seconds 60
//! ```

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use dpdk::{
    Burst, Duplex, Eal, MacAddr, Mempool, Port, PortId, PortSetup, PortStats, RxQueue, Speed,
    TxQueue, MAX_BURST,
};
use serde_json::{json, Value};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "fastlag-bond-peer",
    about = "DPDK's bonding PMD in mode 4 (802.3ad) as an LACP peer for tests and benchmarks"
)]
struct Args {
    /// A member device as a DPDK vdev spec; repeat for each member, in order. Example:
    /// 'net_vhost0,iface=/tmp/x/vh0.sock,queues=2' (vhost-user server) or
    /// 'net_memif0,role=client,id=0,socket=/tmp/x/m0.sock,socket-abstract=no'.
    #[arg(long = "member", required = true, value_name = "VDEV")]
    members: Vec<String>,

    /// Transmit hash policy of the bond (DPDK's xmit_policy devarg).
    #[arg(long, value_enum, default_value_t = XmitPolicy::L34)]
    xmit_policy: XmitPolicy,

    /// Name of the bonding vdev.
    #[arg(long, default_value = "net_bonding0")]
    bond_name: String,

    /// MAC of the bond (DPDK's `mac` devarg). Default: the first member's MAC. Note that
    /// in mode 4 DPDK advertises the MAC of the aggregator member as its LACP system id.
    #[arg(long)]
    bond_mac: Option<String>,

    /// Receive queues of the bond (and so of each member; all are polled). At least 2
    /// when the partner sends LACPDUs from a queue of its own, as fastlag does: virtual
    /// devices that keep queue indexes deliver them to our queue 1.
    #[arg(long, default_value_t = 2)]
    rx_queues: u16,

    /// Transmit queues of the bond. Everything is sent from queue 0 (the partner may poll
    /// only its queue 0); more queues only matter for devices that need symmetric counts.
    /// memif needs at most as many as the server has receive queues (fastlag: workers).
    #[arg(long, default_value_t = 1)]
    tx_queues: u16,

    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    seconds: Option<f64>,

    /// EAL --file-prefix (default: fastlag-bond-peer-<pid>).
    #[arg(long)]
    file_prefix: Option<String>,

    /// EAL --lcores (default: lcore 0 floating over every CPU this process may use, so it
    /// never starves a busy poller pinned next to it).
    #[arg(long)]
    lcores: Option<String>,

    /// EAL memory in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mb: u32,

    /// Use hugepages (--in-memory) instead of --no-huge.
    #[arg(long)]
    hugepages: bool,

    /// DPDK log level (4 error, 5 warning, 6 notice, 7 info, 8 debug).
    #[arg(long, default_value_t = 5)]
    dpdk_log_level: u8,

    /// Extra EAL argument, repeated (e.g. --eal=--log-level=pmd.net.bonding:8).
    #[arg(long = "eal", value_name = "ARG", allow_hyphen_values = true)]
    eal: Vec<String>,

    /// Send IPv4/UDP test frames of this many distinct flows through the bond (0: none).
    /// Flows differ in the UDP source port, and in what else the xmit policy hashes (l23:
    /// source address, l2: source MAC), so the bond spreads them over its distributing
    /// members. (With l34, source address and port must not vary together: DPDK's hash
    /// XORs them and correlated changes cancel out, sending every flow to one member.)
    #[arg(long, default_value_t = 0)]
    send_flows: u32,

    /// Frames per second over all flows (with --send-flows).
    #[arg(long, default_value_t = 1000)]
    rate: u64,

    /// Stop generating once the bond accepted this many flow frames (default: no limit).
    /// Frames refused while no member distributes do not count.
    #[arg(long)]
    count: Option<u64>,

    /// Length of generated frames without FCS (60..=1514).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(60..=1514))]
    frame_len: u16,

    /// Destination MAC of generated frames.
    #[arg(long, default_value = "02:00:00:00:00:02")]
    dst_mac: String,

    /// Status file (JSON), rewritten atomically every --status-interval-ms.
    #[arg(long)]
    status: Option<PathBuf>,

    /// How often the status file is rewritten.
    #[arg(long, default_value_t = 100)]
    status_interval_ms: u64,

    /// Longest time without a transmit call on the bond. LACPDUs queued by the PMD wait
    /// at most this long; without traffic a zero-length transmit runs this often.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=90))]
    kick_ms: u64,

    /// Poll interval in microseconds.
    #[arg(long, default_value_t = 1000)]
    poll_us: u64,
}

/// DPDK's xmit_policy values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum XmitPolicy {
    /// Hash of source and destination MAC.
    L2,
    /// MACs and IP addresses.
    L23,
    /// IP addresses and L4 ports.
    L34,
}

impl XmitPolicy {
    fn devarg(self) -> &'static str {
        match self {
            XmitPolicy::L2 => "l2",
            XmitPolicy::L23 => "l23",
            XmitPolicy::L34 => "l34",
        }
    }
}

/// Marks generated flow frames in the UDP payload.
const FLOW_MAGIC: &[u8; 4] = b"FLBP";
/// Frames read per rx_burst.
const RX_BURST: usize = 64;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

/// One member as configured.
struct Member {
    /// The vdev name (first field of the spec).
    name: String,
    spec: String,
    id: PortId,
}

/// Counters of the harness itself.
#[derive(Debug, Default)]
struct Traffic {
    /// Flow frames accepted by the bond.
    sent: u64,
    /// Flow frames the bond refused (no distributing member, or a full member queue).
    refused: u64,
    /// Filler frames offered to flush LACPDUs.
    kicks: u64,
    /// Filler frames the bond transmitted (it had a distributing member).
    kicks_sent: u64,
    /// Frames received from the bond (LACPDUs are consumed inside the PMD, not counted).
    rx_total: u64,
    /// Received frames that carry this harness' flow marker.
    rx_flow_frames: u64,
    /// Transmit calls on the bond.
    tx_calls: u64,
    /// Polls that started more than 100 ms after the previous one (the PMD's limit).
    late_polls: u64,
    /// Longest gap between polls, microseconds.
    max_poll_gap_us: u64,
}

fn parse_mac(s: &str) -> Result<MacAddr, AnyError> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address (write 02:00:00:00:00:02)").into());
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| format!("{s:?} is not a MAC address (write 02:00:00:00:00:02)"))?;
    }
    Ok(MacAddr(m))
}

/// The vdev name of a spec ("net_vhost0" of "net_vhost0,iface=...").
fn vdev_name(spec: &str) -> &str {
    spec.split(',').next().unwrap_or_default().trim()
}

/// A devarg's value in a vdev spec.
fn devarg<'a>(spec: &'a str, key: &str) -> Option<&'a str> {
    spec.split(',')
        .skip(1)
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Unix sockets this process created as a server (vhost-user without client=1, memif
/// role=server): DPDK 22.11 does not remove them when the process exits without closing
/// the member ports, which the bond owns.
fn server_sockets(members: &[String]) -> Vec<PathBuf> {
    members
        .iter()
        .filter_map(|spec| {
            let name = vdev_name(spec);
            if name.starts_with("net_vhost") && devarg(spec, "client") != Some("1") {
                devarg(spec, "iface").map(PathBuf::from)
            } else if name.starts_with("net_memif") && devarg(spec, "role") == Some("server") {
                devarg(spec, "socket").map(PathBuf::from)
            } else {
                None
            }
        })
        .collect()
}

fn eal_args(args: &Args) -> Vec<String> {
    let mut v = Vec::new();
    if args.hugepages {
        v.push("--in-memory".to_string());
    } else {
        v.push("--no-huge".to_string());
        v.push("--no-shconf".to_string());
    }
    v.push("-m".to_string());
    v.push(args.memory_mb.to_string());
    v.push("--no-pci".to_string());
    v.push("--no-telemetry".to_string());
    v.push(format!("--log-level={}", args.dpdk_log_level));
    let prefix = args
        .file_prefix
        .clone()
        .unwrap_or_else(|| format!("fastlag-bond-peer-{}", std::process::id()));
    v.push(format!("--file-prefix={prefix}"));
    let lcores = args.lcores.clone().unwrap_or_else(|| {
        // Read the CPU set before EAL init (threads spawned later inherit the main lcore's).
        let cpus: Vec<String> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        if cpus.is_empty() {
            "0".to_string()
        } else {
            format!("0@({})", cpus.join(","))
        }
    });
    v.push(format!("--lcores={lcores}"));
    v.push("--main-lcore=0".to_string());
    for m in &args.members {
        v.push(format!("--vdev={m}"));
    }
    // DPDK 22.11 calls the member devarg `slave` (renamed `member` in 23.11).
    let mut bond = format!("{},mode=4", args.bond_name);
    for m in &args.members {
        bond.push_str(&format!(",slave={}", vdev_name(m)));
    }
    bond.push_str(&format!(",xmit_policy={}", args.xmit_policy.devarg()));
    if let Some(mac) = &args.bond_mac {
        bond.push_str(&format!(",mac={mac}"));
    }
    v.push(format!("--vdev={bond}"));
    v.extend(args.eal.iter().cloned());
    v
}

fn run(args: &Args) -> Result<bool, AnyError> {
    if args.send_flows > 0 && args.rate == 0 {
        return Err("--send-flows needs a --rate above 0".into());
    }
    if args.rx_queues == 0 || args.tx_queues == 0 {
        return Err("--rx-queues and --tx-queues must be at least 1".into());
    }
    parse_mac(&args.dst_mac)?;
    if let Some(m) = &args.bond_mac {
        parse_mac(m)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let quiesce = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, quiesce.clone())?;

    let eal_args = eal_args(args);
    tracing::info!(args = ?eal_args, "EAL");
    let eal = Eal::init(&eal_args)?;
    let mut started = false;
    let result = serve(args, eal, &stop, &quiesce, &mut started);
    // Only once the bond started are the server sockets surely ours.
    if started {
        for s in server_sockets(&args.members) {
            let _ = std::fs::remove_file(s);
        }
    }
    result
}

/// Sets the bond up, polls it until stopped, takes it down. `started` becomes true once
/// the bond (and so its members) started.
fn serve(
    args: &Args,
    eal: &Eal,
    stop: &AtomicBool,
    quiesce: &AtomicBool,
    started: &mut bool,
) -> Result<bool, AnyError> {
    let dst_mac = parse_mac(&args.dst_mac)?;
    let pool = Arc::new(Mempool::new(
        eal,
        "bond_peer_pool",
        8191,
        256,
        dpdk::DEFAULT_BUF_SIZE as u16,
    )?);
    let members: Vec<Member> = args
        .members
        .iter()
        .map(|spec| {
            let name = vdev_name(spec).to_string();
            dpdk::port_by_name(eal, &name).map(|id| Member {
                name,
                spec: spec.clone(),
                id,
            })
        })
        .collect::<Result<_, _>>()?;
    let bond_id = dpdk::port_by_name(eal, &args.bond_name)?;
    let setup = PortSetup {
        rx_queues: args.rx_queues,
        tx_queues: args.tx_queues,
        rx_descriptors: 1024,
        tx_descriptors: 1024,
        mtu: None,
        pool: pool.clone(),
    };
    let (port, rx, mut tx) = Port::configure(eal, bond_id, &args.bond_name, &setup)?;
    // Frames are accepted whatever their destination MAC (the bond otherwise drops
    // unicast frames not addressed to it). Not needed for LACP itself.
    if let Err(e) = port.set_promiscuous(true) {
        tracing::warn!("bond refuses promiscuous mode: {e}");
    }
    let port = port.start().map_err(|(_, e)| e)?;
    *started = true;
    let bond_mac = port.info().mac()?;
    tracing::info!(
        bond = %args.bond_name,
        port = bond_id.0,
        mac = %bond_mac,
        members = ?members.iter().map(|m| (&m.name, m.id.0)).collect::<Vec<_>>(),
        xmit_policy = args.xmit_policy.devarg(),
        "bond started (802.3ad); polling every {} us",
        args.poll_us
    );

    // Data leaves from queue 0 only: the partner may poll only its RX
    // queue 0 (fastlag's single worker does).
    let mut tx0 = tx.swap_remove(0);
    drop(tx);
    let mut peer = Peer {
        eal,
        args,
        bond_id,
        bond_mac,
        dst_mac,
        members,
        rx,
        pool: pool.clone(),
        traffic: Traffic::default(),
        start: Instant::now(),
        seq: 0,
        tokens: 0.0,
    };
    peer.poll_loop(&mut tx0, stop, quiesce);
    // The last view, with member counters, before the bond stops its members.
    let mut last = peer.status();
    last["polling"] = json!(false);
    if !stop.load(Ordering::Relaxed) && quiesce.load(Ordering::Relaxed) {
        tracing::info!("SIGUSR1: polling stopped; the ports stay open until SIGTERM");
        if let Some(path) = &args.status {
            write_json(path, &last);
        }
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drop(tx0);
    let Peer { rx, traffic, .. } = peer;
    drop(rx);

    let port = port.stop().map_err(|(_, e)| e)?;
    port.close().map_err(|(_, e)| e)?;
    let (size, available) = (pool.size(), pool.available());
    let leaked = size - available;
    if leaked == 0 {
        tracing::info!(size, "every mbuf is back in the pool");
    } else {
        tracing::error!(size, available, "mbufs leaked");
    }
    tracing::info!(?traffic, "stopped");
    if let Some(path) = &args.status {
        last["running"] = json!(false);
        last["pool"] = json!({ "size": size, "available": available, "leaked": leaked });
        write_json(path, &last);
    }
    Ok(leaked == 0)
}

/// The polling state.
struct Peer<'a> {
    eal: &'a Eal,
    args: &'a Args,
    bond_id: PortId,
    bond_mac: MacAddr,
    dst_mac: MacAddr,
    members: Vec<Member>,
    rx: Vec<RxQueue>,
    pool: Arc<Mempool>,
    traffic: Traffic,
    start: Instant,
    /// Next flow frame's sequence number.
    seq: u64,
    /// Frames allowed to be sent now (token bucket, at most one burst).
    tokens: f64,
}

impl Peer<'_> {
    /// Polls until `stop` or `quiesce` is set (or `--seconds` passed).
    fn poll_loop(&mut self, tx: &mut TxQueue, stop: &AtomicBool, quiesce: &AtomicBool) {
        let poll = Duration::from_micros(self.args.poll_us.max(1));
        let kick = Duration::from_millis(self.args.kick_ms);
        let status_every = Duration::from_millis(self.args.status_interval_ms.max(10));
        let deadline = self
            .args
            .seconds
            .map(|s| self.start + Duration::from_secs_f64(s.max(0.0)));
        let mut inb = Burst::new();
        let mut out = Burst::new();
        let mut last_tx = self.start;
        let mut last_poll = self.start;
        let mut next_status = self.start;
        let mut next_poll = self.start;
        loop {
            let now = Instant::now();
            if stop.load(Ordering::Relaxed)
                || quiesce.load(Ordering::Relaxed)
                || deadline.is_some_and(|d| now >= d)
            {
                break;
            }
            let gap = now.duration_since(last_poll);
            self.traffic.max_poll_gap_us = self.traffic.max_poll_gap_us.max(gap.as_micros() as u64);
            if gap > Duration::from_millis(100) {
                self.traffic.late_polls += 1;
            }
            last_poll = now;

            for q in &mut self.rx {
                loop {
                    let n = q.rx_burst(&mut inb, RX_BURST);
                    self.traffic.rx_total += n as u64;
                    for m in inb.as_slice() {
                        if is_flow_frame(m.data()) {
                            self.traffic.rx_flow_frames += 1;
                        }
                    }
                    inb.clear();
                    if n < RX_BURST {
                        break;
                    }
                }
            }

            let mut called_tx = false;
            let left = self
                .args
                .count
                .map_or(u64::MAX, |c| c.saturating_sub(self.traffic.sent));
            if self.args.send_flows > 0 && left > 0 {
                let dt = gap.as_secs_f64();
                self.tokens = (self.tokens + dt * self.args.rate as f64).min(MAX_BURST as f64);
                let n = (self.tokens.floor() as u64).min(left) as usize;
                if n > 0 && self.pool.alloc_into(&mut out, n) {
                    for m in out.as_mut_slice() {
                        let seq = self.seq;
                        self.seq += 1;
                        let flow = (seq % self.args.send_flows as u64) as u32;
                        let len = self.args.frame_len;
                        let buf = m.append(len).expect("an mbuf holds a 1514-byte frame");
                        flow_frame(
                            buf,
                            flow,
                            seq,
                            self.dst_mac,
                            self.bond_mac,
                            self.args.xmit_policy,
                        );
                    }
                    let sent = tx.tx_burst(&mut out);
                    self.tokens -= n as f64;
                    self.traffic.sent += sent as u64;
                    self.traffic.refused += out.len() as u64;
                    self.traffic.tx_calls += 1;
                    out.clear();
                    called_tx = true;
                }
            }
            if !called_tx && now.duration_since(last_tx) >= kick {
                tx.flush();
                self.traffic.kicks += 1;
                self.traffic.tx_calls += 1;
                called_tx = true;
            }
            if called_tx {
                last_tx = now;
            }

            if now >= next_status {
                if let Some(path) = &self.args.status {
                    write_json(path, &self.status());
                }
                next_status = now + status_every;
            }

            next_poll += poll;
            let now = Instant::now();
            if next_poll > now {
                std::thread::sleep(next_poll - now);
            } else {
                next_poll = now;
            }
        }
    }

    fn status(&self) -> Value {
        let bond_info = dpdk::link(self.eal, self.bond_id).ok();
        let bond_stats = dpdk::stats(self.eal, self.bond_id).ok();
        let members: Vec<Value> = self
            .members
            .iter()
            .map(|m| {
                let link = dpdk::link(self.eal, m.id).ok();
                let mac = dpdk::mac(self.eal, m.id).ok();
                let stats = dpdk::stats(self.eal, m.id).ok();
                let lacp = match dpdk::bond::bond_member_info(self.bond_id, m.id) {
                    Ok(i) => {
                        // DPDK advertises the aggregator member's MAC as actor system id
                        // (bond_member_info does not return the actor system itself).
                        let agg = PortId(i.agg_port_id);
                        let agg_name = self
                            .members
                            .iter()
                            .find(|x| x.id == agg)
                            .map(|x| x.name.clone());
                        let actor_system = dpdk::mac(self.eal, agg).ok().map(|a| a.to_string());
                        json!({
                            "selected": match i.selected {
                                0 => "UNSELECTED",
                                1 => "STANDBY",
                                2 => "SELECTED",
                                _ => "?",
                            },
                            "aggregator": { "port": i.agg_port_id, "name": agg_name },
                            "actor": {
                                "system": actor_system,
                                "key": i.actor_key,
                                "port": i.actor_port_number,
                                "state": i.actor_state,
                                "state_names": state_names(i.actor_state),
                                "sync": i.actor_state & SYNC != 0,
                                "collecting": i.actor_state & COLLECTING != 0,
                                "distributing": i.actor_state & DISTRIBUTING != 0,
                            },
                            "partner": {
                                "system": format!("{},{}", i.partner_system_priority, i.partner_system),
                                "system_priority": i.partner_system_priority,
                                "system_mac": i.partner_system.to_string(),
                                "key": i.partner_key,
                                "port": i.partner_port_number,
                                "state": i.partner_state,
                                "state_names": state_names(i.partner_state),
                                "sync": i.partner_state & SYNC != 0,
                                "collecting": i.partner_state & COLLECTING != 0,
                                "distributing": i.partner_state & DISTRIBUTING != 0,
                            },
                        })
                    }
                    // Not an active member (link down): DPDK has no 802.3ad state for it.
                    Err(e) => json!({ "error": e.to_string() }),
                };
                json!({
                    "name": m.name,
                    "spec": m.spec,
                    "port": m.id.0,
                    "mac": mac.map(|a| a.to_string()),
                    "link": link.map(link_json),
                    "lacp": lacp,
                    "stats": stats.map(stats_json),
                })
            })
            .collect();
        json!({
            "pid": std::process::id(),
            "running": true,
            "polling": true,
            "uptime_ms": self.start.elapsed().as_millis() as u64,
            "bond": {
                "name": self.args.bond_name,
                "port": self.bond_id.0,
                "mac": self.bond_mac.to_string(),
                "xmit_policy": self.args.xmit_policy.devarg(),
                "link": bond_info.map(link_json),
                "stats": bond_stats.map(stats_json),
            },
            "members": members,
            "traffic": traffic_json(&self.traffic, self.args),
            "pool": { "size": self.pool.size(), "available": self.pool.available() },
        })
    }
}

const SYNC: u8 = 1 << 3;
const COLLECTING: u8 = 1 << 4;
const DISTRIBUTING: u8 = 1 << 5;

/// 802.1AX state bits, LSB first, as names.
fn state_names(bits: u8) -> String {
    const NAMES: [&str; 8] = [
        "ACTIVITY",
        "SHORT_TIMEOUT",
        "AGGREGATION",
        "SYNC",
        "COLLECTING",
        "DISTRIBUTING",
        "DEFAULTED",
        "EXPIRED",
    ];
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn link_json(l: dpdk::Link) -> Value {
    json!({
        "up": l.up,
        "speed_mbps": match l.speed { Speed::Mbps(m) => Some(m), Speed::Unknown => None },
        "duplex": match l.duplex { Duplex::Full => "full", Duplex::Half => "half", Duplex::Unknown => "unknown" },
    })
}

fn stats_json(s: PortStats) -> Value {
    json!({
        "rx_packets": s.rx_packets,
        "tx_packets": s.tx_packets,
        "rx_bytes": s.rx_bytes,
        "tx_bytes": s.tx_bytes,
        "rx_missed": s.rx_missed,
        "rx_errors": s.rx_errors,
        "tx_errors": s.tx_errors,
    })
}

fn traffic_json(t: &Traffic, args: &Args) -> Value {
    json!({
        "flows": args.send_flows,
        "rate_pps": if args.send_flows > 0 { args.rate } else { 0 },
        "count": args.count,
        "done": args.send_flows > 0 && args.count.is_some_and(|c| t.sent >= c),
        "frame_len": args.frame_len,
        "sent": t.sent,
        "refused": t.refused,
        "kicks": t.kicks,
        "kicks_sent": t.kicks_sent,
        "tx_calls": t.tx_calls,
        "rx_total": t.rx_total,
        "rx_flow_frames": t.rx_flow_frames,
        "late_polls": t.late_polls,
        "max_poll_gap_us": t.max_poll_gap_us,
    })
}

fn write_json(path: &Path, v: &Value) {
    let tmp = path.with_extension("tmp");
    let ok = serde_json::to_vec_pretty(v)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|()| std::fs::rename(&tmp, path).ok());
    if ok.is_none() {
        tracing::warn!(path = %path.display(), "could not write the status file");
    }
}

/// Writes an IPv4/UDP frame of `buf.len()` bytes for `flow` from 198.18.0.1 (RFC 2544
/// benchmarking range) to 198.19.0.1:9; the payload starts with "FLBP", the flow and the
/// sequence number. The UDP source port is 1024 + flow; for the l23 policy the source
/// address is 198.18.x.y instead, for l2 the source MAC varies with the flow. DPDK's l34
/// hash XORs addresses and ports, so only one of them varies there.
fn flow_frame(buf: &mut [u8], flow: u32, seq: u64, dst: MacAddr, src: MacAddr, policy: XmitPolicy) {
    let len = buf.len();
    buf.fill(0);
    buf[0..6].copy_from_slice(&dst.0);
    let mut smac = src.0;
    if policy == XmitPolicy::L2 {
        // Only MACs are hashed: vary a locally administered source MAC per flow.
        smac = [
            0x02,
            0xfb,
            0,
            (flow >> 16) as u8,
            (flow >> 8) as u8,
            flow as u8,
        ];
    }
    buf[6..12].copy_from_slice(&smac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut buf[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17; // UDP
    let src_ip = match policy {
        XmitPolicy::L34 => [198, 18, 0, 1],
        XmitPolicy::L2 | XmitPolicy::L23 => [198, 18, (flow >> 8) as u8, flow as u8],
    };
    ip[12..16].copy_from_slice(&src_ip);
    ip[16..20].copy_from_slice(&[198, 19, 0, 1]);
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut buf[34..42];
    udp[0..2].copy_from_slice(&(1024u16.wrapping_add(flow as u16)).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    // UDP checksum 0: none (allowed for IPv4).
    let p = &mut buf[42..];
    p[0..4].copy_from_slice(FLOW_MAGIC);
    p[4..8].copy_from_slice(&flow.to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
}

fn is_flow_frame(f: &[u8]) -> bool {
    f.len() >= 46 && f[12..14] == [0x08, 0x00] && f[23] == 17 && &f[42..46] == FLOW_MAGIC
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, c)| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_checksum_of_a_known_header() {
        // RFC 1071 style example header (checksum field zero).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
    }

    #[test]
    fn flow_frames_vary_by_flow_and_are_recognised() {
        let mut a = [0u8; 60];
        let mut b = [0u8; 60];
        let (d, s) = (MacAddr([2, 0, 0, 0, 0, 2]), MacAddr([2, 0, 0, 0, 0, 1]));
        flow_frame(&mut a, 1, 7, d, s, XmitPolicy::L34);
        flow_frame(&mut b, 2, 8, d, s, XmitPolicy::L34);
        assert!(is_flow_frame(&a) && is_flow_frame(&b));
        assert_eq!(a[26..30], b[26..30], "l34: the source address stays");
        assert_ne!(a[34..36], b[34..36], "UDP source port differs");
        flow_frame(&mut b, 2, 8, d, s, XmitPolicy::L23);
        assert_ne!(a[26..30], b[26..30], "l23: the source address differs");
        assert_eq!(
            ipv4_checksum(&a[14..34]),
            u16::from_be_bytes([a[24], a[25]])
        );
        let f = [0u8; 60];
        assert!(!is_flow_frame(&f));
    }

    #[test]
    fn devargs_and_sockets() {
        let m = vec![
            "net_vhost0,iface=/tmp/a.sock,queues=2".to_string(),
            "net_vhost1,iface=/tmp/b.sock,client=1".to_string(),
            "net_memif0,role=server,socket=/tmp/m.sock".to_string(),
            "net_memif1,role=client,socket=/tmp/n.sock".to_string(),
        ];
        assert_eq!(
            server_sockets(&m),
            vec![PathBuf::from("/tmp/a.sock"), PathBuf::from("/tmp/m.sock")]
        );
        assert_eq!(vdev_name(&m[0]), "net_vhost0");
        assert_eq!(devarg(&m[0], "queues"), Some("2"));
    }

    #[test]
    fn state_bits_decode() {
        assert_eq!(
            state_names(0x3d),
            "ACTIVITY,AGGREGATION,SYNC,COLLECTING,DISTRIBUTING"
        );
        assert_eq!(state_names(0), "");
    }
}
