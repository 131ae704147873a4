//! `fastlag-bond-peer`: DPDK's own bonding PMD (`net_bonding`, mode 4 = IEEE 802.3ad/LACP)
//! run as an independent LACP partner in a second process.
//!
//! This is a **test and benchmark peer, not part of the product**. fastlag implements
//! 802.1AX itself; integration tests and benchmarks need a second implementation that was
//! written by somebody else to interoperate with. DPDK's bonding PMD is one (Open vSwitch is
//! the other, see tests/ovs_interop.rs). This binary owns the bond's member devices (vhost-user
//! servers, memif ports, ...), builds `net_bonding0,mode=4,slave=...` (`member=` from DPDK 23.11) over them, polls the
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

mod peer;
use peer::{write_json, Peer};

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

    /// EAL --file-prefix (default: fastlag-bond-peer-PID).
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
    let member = dpdk::bond::member_devarg();
    for m in &args.members {
        bond.push_str(&format!(",{member}={}", vdev_name(m)));
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
    // EAL's runtime directory for our prefix: not left behind when empty.
    eal.remove_runtime_dir();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{flow_frame, ipv4_checksum, is_flow_frame, state_names};

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
