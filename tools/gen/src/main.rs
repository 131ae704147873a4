//! `fastlag-gen`: a traffic generator and sink for benchmarks (issue 7), on the dataplane
//! crate's safe DPDK layer.
//!
//! Each port is a DPDK device (a memif client, af_packet on a veth, a NIC). Every sending
//! direction carries `--flows` UDP flows (IPv4 or IPv6; UDP ports vary per flow, so bond
//! hashes on layer 3+4 spread them), 64-byte (or any fixed size) or IMIX frames, built from
//! prebuilt templates: per frame only the stamp (flow id, per-flow sequence number, TSC) and
//! the UDP checksum are written. The sink counts per-flow loss and reordering and records
//! latency (sender TSC to receive TSC) in an HDR histogram. ARP requests and IPv6 neighbour
//! solicitations for a port's own addresses are answered, so a router can resolve it.
//!
//! One thread (the EAL main lcore, pinned with `--cpu`) sends and receives on every port,
//! like testpmd's flowgen on one core. Open loop at full speed, or `--rate` frames/s.
//! At the end it prints one JSON object (and writes it to `--json`).
//!
//! ```text
//! fastlag-gen --cpu 0 --port 'net_memif0,role=client,id=0,socket=/tmp/x/m0.sock,socket-abstract=no' \
//!     --port 'net_memif1,role=client,id=0,socket=/tmp/x/m1.sock,socket-abstract=no' \
//!     --flows 1024 --size 64 --seconds 5
//! ```

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use dpdk::{Burst, Eal, MacAddr, Mempool, Port, PortSetup, RxQueue, Started, TxQueue, MAX_BURST};
use loadgen::{Answer, Family, FlowDef, Responder, Sink, SizeMix, Templates, ANSWER_MAX, FCS};
use serde_json::{json, Value};

mod lanes;
use lanes::Gen;

type AnyError = Box<dyn std::error::Error>;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "fastlag-gen",
    about = "UDP traffic generator and sink with per-flow sequence numbers, loss, reordering and latency"
)]
struct Args {
    /// A port as a DPDK device spec (vdev with its devargs, or a PCI address); repeat, in
    /// order. Example: 'net_memif0,role=client,id=0,socket=/tmp/x/m0.sock,socket-abstract=no'.
    #[arg(long = "port", required = true, value_name = "DEVICE")]
    ports: Vec<String>,

    /// Source MAC per port, in port order (default: the device's MAC).
    #[arg(long = "mac", value_name = "MAC")]
    macs: Vec<String>,

    /// Destination MAC of frames sent from each port, in port order: the next hop (the
    /// router's port). Default: the MAC of the port the flows go to.
    #[arg(long = "dst-mac", value_name = "MAC")]
    dst_macs: Vec<String>,

    /// IPv4 address per port, in port order (default 10.N.0.2 for port N-1). Flows to a port
    /// are addressed to it; ARP requests for it are answered.
    #[arg(long = "ip4", value_name = "ADDR")]
    ip4: Vec<Ipv4Addr>,

    /// IPv6 address per port (default 2001:db8:N::2); neighbour solicitations are answered.
    #[arg(long = "ip6", value_name = "ADDR")]
    ip6: Vec<Ipv6Addr>,

    /// An extra DPDK vdev that is not a port itself, created before the ports (e.g. the
    /// members of a `net_bonding` port); repeat as needed.
    #[arg(long = "vdev", value_name = "VDEV")]
    vdevs: Vec<String>,

    /// Sending directions as FROM>TO port indexes, comma-separated. Default: 0>1,1>0 with
    /// two ports, 0>0 with one, a ring otherwise.
    #[arg(long)]
    pairs: Option<String>,

    /// IP version of the flows.
    #[arg(long, value_enum, default_value_t = Ip::V4)]
    family: Ip,

    /// Frame size in bytes with FCS (64 = 60 bytes in the buffer; IPv6 frames are at least
    /// 82 to hold the stamp). Ignored with --imix.
    #[arg(long, default_value_t = 64)]
    size: usize,

    /// IMIX: 64, 594 and 1518 bytes in the ratio 7:4:1.
    #[arg(long)]
    imix: bool,

    /// Flows per direction (UDP source/destination ports vary).
    #[arg(long, default_value_t = 1024)]
    flows: usize,

    /// Frames per second over all directions; 0 sends as fast as the queues take them.
    #[arg(long, default_value_t = 0)]
    rate: u64,

    /// Measurement window in seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,

    /// Warm-up in seconds, counted from the first frame that came back (a router must
    /// resolve the generator first, a bond must aggregate).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,

    /// Give up when no frame came back this many seconds after the start.
    #[arg(long, default_value_t = 30.0)]
    ready_timeout: f64,

    /// Send exactly this many frames in total, then stop (the window ends then too).
    #[arg(long)]
    count: Option<u64>,

    /// After sending stops, keep receiving this long for frames in flight.
    #[arg(long, default_value_t = 300)]
    drain_ms: u64,

    /// Frames per burst.
    #[arg(long, default_value_t = 32)]
    burst: usize,

    /// Receive queues per port (all polled). A memif client may have at most as many as
    /// the server has TX queues (fastlag: workers + 1, whose last one carries the control
    /// thread's frames such as ARP requests).
    #[arg(long, default_value_t = 1)]
    rxq: u16,

    /// Transmit queues per port; flow f leaves on queue f % txq (memif: the server's RX
    /// queue of the same index, i.e. fastlag worker f % txq).
    #[arg(long, default_value_t = 1)]
    txq: u16,

    /// CPU to run on (the EAL main lcore).
    #[arg(long)]
    cpu: Option<usize>,

    /// Memory for DPDK in MB (4 KB pages: no hugepages are needed).
    #[arg(long, default_value_t = 512)]
    memory_mb: u32,

    /// Mbufs in the pool.
    #[arg(long, default_value_t = 16383)]
    mbufs: u32,

    /// Print received Mpps every second on stderr.
    #[arg(long)]
    progress: bool,

    /// Also write the JSON summary here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// After a successful run, stop polling, write the summary (--json, atomically) and keep the
    /// ports open until SIGINT/SIGTERM. For memif links to a forwarder that keeps polling:
    /// DPDK 22.11's memif PMD unmaps the shared rings from its interrupt thread when one
    /// side disconnects, while the other side's poller may be inside rx_burst on them. Stop
    /// the forwarder first, then this.
    #[arg(long)]
    hold: bool,

    /// Extra EAL arguments (after --).
    #[arg(last = true)]
    eal: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Ip {
    V4,
    V6,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = run(&args);
    // EAL's runtime directory for our prefix: empty (--no-shconf); not left behind.
    let _ = std::fs::remove_dir(
        dpdk::runtime_base().join(format!("fastlag-gen-{}", std::process::id())),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fastlag-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_mac(s: &str) -> Result<[u8; 6], AnyError> {
    let bad = || format!("{s:?} is not a MAC address (write 02:00:00:00:00:02)");
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad().into());
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

fn parse_pairs(s: Option<&str>, ports: usize) -> Result<Vec<(usize, usize)>, AnyError> {
    let Some(s) = s else {
        return Ok(match ports {
            1 => vec![(0, 0)],
            2 => vec![(0, 1), (1, 0)],
            n => (0..n).map(|i| (i, (i + 1) % n)).collect(),
        });
    };
    s.split(',')
        .map(|p| {
            let (a, b) = p
                .split_once('>')
                .ok_or_else(|| format!("--pairs: {p:?} is not FROM>TO (e.g. 0>1)"))?;
            let a: usize = a
                .trim()
                .parse()
                .map_err(|_| format!("--pairs: bad port {a:?}"))?;
            let b: usize = b
                .trim()
                .parse()
                .map_err(|_| format!("--pairs: bad port {b:?}"))?;
            if a >= ports || b >= ports {
                return Err(format!("--pairs: {p:?} names a port beyond the {ports} given").into());
            }
            Ok((a, b))
        })
        .collect()
}

fn eal_args(args: &Args) -> Vec<String> {
    let mut v = vec![
        "--no-huge".to_string(),
        "--no-shconf".to_string(),
        "-m".to_string(),
        args.memory_mb.to_string(),
        "--no-telemetry".to_string(),
        "--log-level=warning".to_string(),
        format!("--file-prefix=fastlag-gen-{}", std::process::id()),
    ];
    if args.ports.iter().all(|p| p.starts_with("net_")) {
        v.push("--no-pci".to_string());
    }
    match args.cpu {
        Some(c) => v.push(format!("--lcores=0@{c}")),
        None => v.push("--lcores=0".to_string()),
    }
    v.push("--main-lcore=0".to_string());
    for d in &args.vdevs {
        v.push(format!("--vdev={d}"));
    }
    for p in &args.ports {
        if p.starts_with("net_") {
            v.push(format!("--vdev={p}"));
        } else {
            v.push(format!("--allow={p}"));
        }
    }
    v.extend(args.eal.iter().cloned());
    v
}

fn device_name(spec: &str) -> &str {
    spec.split(',').next().unwrap_or_default().trim()
}

/// One sending lane: a TX queue and the flows that leave on it.
struct Lane {
    port: usize,
    tx: usize,
    flows: Vec<u16>,
    cursor: usize,
}

/// Counters of the whole run.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    tx_packets: u64,
    tx_bytes: u64,
    tx_full: u64,
    foreign: u64,
    arp_replies: u64,
    nd_replies: u64,
}

fn run(args: &Args) -> Result<(), AnyError> {
    if args.flows == 0 || args.burst == 0 || args.burst > MAX_BURST {
        return Err(format!("--flows must be >= 1 and --burst 1..={MAX_BURST}").into());
    }
    if args.rxq == 0 || args.txq == 0 {
        return Err("--rxq and --txq must be at least 1".into());
    }
    if args.seconds.is_nan() || args.seconds <= 0.0 || args.warmup.is_nan() || args.warmup < 0.0 {
        return Err("--seconds must be > 0 and --warmup >= 0".into());
    }
    let n = args.ports.len();
    for (what, len) in [
        ("--mac", args.macs.len()),
        ("--dst-mac", args.dst_macs.len()),
        ("--ip4", args.ip4.len()),
        ("--ip6", args.ip6.len()),
    ] {
        if len != 0 && len != n {
            return Err(format!(
                "{what} given {len} times for {n} ports: give it once per port, in port order"
            )
            .into());
        }
    }
    let pairs = parse_pairs(args.pairs.as_deref(), n)?;
    if pairs.len() * args.flows > u16::MAX as usize + 1 {
        return Err(format!(
            "{} directions x {} flows: at most 65536 flows in all",
            pairs.len(),
            args.flows
        )
        .into());
    }
    let macs: Vec<Option<[u8; 6]>> = (0..n)
        .map(|i| args.macs.get(i).map(|m| parse_mac(m)).transpose())
        .collect::<Result<_, _>>()?;
    let dst_macs: Vec<Option<[u8; 6]>> = (0..n)
        .map(|i| args.dst_macs.get(i).map(|m| parse_mac(m)).transpose())
        .collect::<Result<_, _>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let eal = Eal::init(&eal_args(args))?;
    let pool = Arc::new(Mempool::new(
        eal,
        "fastlag_gen",
        args.mbufs,
        256,
        dpdk::DEFAULT_BUF_SIZE as u16,
    )?);
    let mut started: Vec<Port<Started>> = Vec::new();
    let mut rxs: Vec<(usize, RxQueue)> = Vec::new();
    let mut txs: Vec<Vec<TxQueue>> = Vec::new();
    let result = (|| -> Result<Value, AnyError> {
        let mut port_macs = Vec::new();
        for (i, spec) in args.ports.iter().enumerate() {
            let name = device_name(spec);
            let id = dpdk::port_by_name(eal, name)?;
            let setup = PortSetup {
                rx_queues: args.rxq,
                tx_queues: args.txq,
                rx_descriptors: 1024,
                tx_descriptors: 1024,
                mtu: None,
                pool: pool.clone(),
            };
            let (port, rx, tx) = Port::configure(eal, id, name, &setup)?;
            if let Err(e) = port.set_promiscuous(true) {
                tracing::debug!("port {name}: no promiscuous mode: {e}");
            }
            let port = port.start().map_err(|(_, e)| e)?;
            let mac = match macs[i] {
                Some(m) => m,
                None => port.info().mac()?.0,
            };
            port_macs.push(mac);
            started.push(port);
            rxs.extend(rx.into_iter().map(|q| (i, q)));
            txs.push(tx);
        }
        let ip4 = |i: usize| {
            args.ip4
                .get(i)
                .copied()
                .unwrap_or(Ipv4Addr::new(10, i as u8 + 1, 0, 2))
        };
        let ip6 = |i: usize| {
            args.ip6.get(i).copied().unwrap_or(Ipv6Addr::new(
                0x2001,
                0xdb8,
                i as u16 + 1,
                0,
                0,
                0,
                0,
                2,
            ))
        };
        let mut flows = Vec::new();
        let mut lanes: Vec<Lane> = Vec::new();
        for &(from, to) in &pairs {
            let first = flows.len();
            for k in 0..args.flows {
                let (src, dst) = match args.family {
                    Ip::V4 => (IpAddr::V4(ip4(from)), IpAddr::V4(ip4(to))),
                    Ip::V6 => (IpAddr::V6(ip6(from)), IpAddr::V6(ip6(to))),
                };
                flows.push(FlowDef {
                    dst_mac: dst_macs[from].unwrap_or(port_macs[to]),
                    src_mac: port_macs[from],
                    src,
                    dst,
                    sport: 1024 + (k % 16384) as u16,
                    dport: 5001 + (k / 16384) as u16,
                });
            }
            for q in 0..args.txq as usize {
                let fl: Vec<u16> = (first..flows.len())
                    .filter(|f| (f - first) % args.txq as usize == q)
                    .map(|f| f as u16)
                    .collect();
                if !fl.is_empty() {
                    lanes.push(Lane {
                        port: from,
                        tx: q,
                        flows: fl,
                        cursor: 0,
                    });
                }
            }
        }
        let mix = if args.imix {
            SizeMix::Imix
        } else {
            SizeMix::Fixed(args.size)
        };
        let templates = Templates::new(&flows, mix)?;
        let responders: Vec<Responder> = (0..n)
            .map(|i| Responder {
                mac: port_macs[i],
                ipv4: Some(ip4(i)),
                ipv6: Some(ip6(i)),
            })
            .collect();
        let family = match args.family {
            Ip::V4 => Family::V4,
            Ip::V6 => Family::V6,
        };
        let mut g = Gen {
            args,
            tsc_hz: eal.tsc_hz(),
            templates,
            mix,
            seq: vec![0; flows.len()],
            sink: Sink::new(flows.len(), eal.tsc_hz()),
            responders,
            totals: Totals::default(),
            size_n: 0,
        };
        let out = g.run(&pool, &mut lanes, &mut txs, &mut rxs, &stop)?;
        let mut out = out;
        out["config"] = json!({
            "ports": args.ports,
            "macs": port_macs.iter().map(|m| MacAddr(*m).to_string()).collect::<Vec<_>>(),
            "pairs": pairs.iter().map(|(a, b)| format!("{a}>{b}")).collect::<Vec<_>>(),
            "family": format!("{family:?}").to_lowercase(),
            "frame_lengths_with_fcs": mix.lengths(family).iter().map(|l| l + FCS).collect::<Vec<_>>(),
            "imix": args.imix,
            "flows": flows.len(),
            "rate": args.rate,
            "burst": args.burst,
            "rxq": args.rxq,
            "txq": args.txq,
        });
        Ok(out)
    })();
    let mut written = false;
    // A failed run does not hold: its caller learns at once.
    if let (true, Ok(out)) = (args.hold, &result) {
        if let Some(p) = &args.json {
            write_atomically(p, &(serde_json::to_string_pretty(out)? + "\n"))?;
            written = true;
        }
        tracing::info!("run done; polling stopped, the ports stay open until SIGTERM");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    drop(rxs);
    drop(txs);
    for p in started {
        match p.stop() {
            Ok(p) => {
                if let Err((_, e)) = p.close() {
                    tracing::warn!("{e}");
                }
            }
            Err((_, e)) => tracing::warn!("{e}"),
        }
    }
    drop(pool);
    let out = result?;
    let text = serde_json::to_string_pretty(&out)?;
    println!("{text}");
    if let (Some(p), false) = (&args.json, written) {
        write_atomically(p, &(text + "\n"))?;
    }
    Ok(())
}

/// Writes `text` to a temporary file next to `path`, then renames it: a reader polling for
/// `path` never sees half of it.
fn write_atomically(path: &Path, text: &str) -> Result<(), AnyError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))?;
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_default_and_parse() {
        assert_eq!(parse_pairs(None, 2).unwrap(), vec![(0, 1), (1, 0)]);
        assert_eq!(parse_pairs(None, 1).unwrap(), vec![(0, 0)]);
        assert_eq!(parse_pairs(Some("0>1"), 2).unwrap(), vec![(0, 1)]);
        assert!(parse_pairs(Some("0>2"), 2).is_err());
        assert!(parse_pairs(Some("0-1"), 2).is_err());
    }

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
        assert!(parse_mac("02:00:00").is_err());
    }
}
