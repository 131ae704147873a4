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
    match run(&args) {
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

struct Gen<'a> {
    args: &'a Args,
    tsc_hz: u64,
    templates: Templates,
    mix: SizeMix,
    seq: Vec<u32>,
    sink: Sink,
    responders: Vec<Responder>,
    totals: Totals,
    /// Frames sent so far over all lanes (picks the IMIX size class).
    size_n: u64,
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
    Warmup,
    Window,
    Drain,
}

impl Gen<'_> {
    /// Sends one burst on `lane`: at most `budget` frames.
    #[inline]
    fn send(
        &mut self,
        pool: &Mempool,
        lane: &mut Lane,
        tx: &mut TxQueue,
        out: &mut Burst,
        budget: usize,
        now: u64,
    ) -> usize {
        if !pool.alloc_into(out, budget) {
            return 0;
        }
        let nf = lane.flows.len();
        let mut lens = [0u16; MAX_BURST];
        let mut at = lane.cursor;
        for (k, m) in out.as_mut_slice().iter_mut().enumerate() {
            let flow = lane.flows[at] as usize;
            at += 1;
            if at == nf {
                at = 0;
            }
            let class = self.mix.class(self.size_n + k as u64);
            let len = self.templates.len(flow, class);
            lens[k] = len as u16;
            let Some(buf) = m.append(len as u16) else {
                continue;
            };
            let seq = self.seq[flow];
            self.templates.write(flow, class, buf, seq, now);
            self.seq[flow] = seq.wrapping_add(1);
        }
        let n = out.len();
        let bytes: u64 = lens[..n].iter().map(|&l| l as u64).sum();
        let sent = tx.tx_burst(out);
        let mut unsent_bytes = 0;
        if sent < n {
            // Unsent frames are freed and their sequence numbers taken back, so a full queue
            // does not read as loss at the sink. They are each flow's latest frames (a bond
            // reorders what it could not send, but keeps each member's, and so each flow's,
            // order), so the stamps say which flows get a number back.
            for m in out.as_slice() {
                if let Some(s) = loadgen::parse_stamp(m.data()) {
                    let f = s.flow as usize;
                    self.seq[f] = self.seq[f].wrapping_sub(1);
                }
                unsent_bytes += m.len() as u64;
            }
            out.clear();
            self.totals.tx_full += 1;
        }
        lane.cursor = at;
        self.size_n += n as u64;
        self.totals.tx_packets += sent as u64;
        self.totals.tx_bytes += bytes - unsent_bytes;
        sent
    }

    /// Polls one RX queue; answers ARP/ND on `txs[port][0]`.
    #[inline]
    fn receive(
        &mut self,
        pool: &Mempool,
        port: usize,
        rx: &mut RxQueue,
        txs: &mut [Vec<TxQueue>],
        inb: &mut Burst,
        now: u64,
    ) -> usize {
        let got = rx.rx_burst(inb, self.args.burst);
        if got == 0 {
            return 0;
        }
        for m in inb.as_slice() {
            if let Some(s) = loadgen::parse_stamp(m.data()) {
                self.sink.record(s, m.len(), now);
                continue;
            }
            let mut reply = [0u8; ANSWER_MAX];
            match self.responders[port].answer(m.data(), &mut reply) {
                Some(a) => {
                    let len = match a {
                        Answer::Arp(l) => {
                            self.totals.arp_replies += 1;
                            l
                        }
                        Answer::Nd(l) => {
                            self.totals.nd_replies += 1;
                            l
                        }
                    };
                    if let Some(mut r) = pool.alloc() {
                        if let Some(b) = r.append(len as u16) {
                            b.copy_from_slice(&reply[..len]);
                            let mut one = Burst::new();
                            let _ = one.push(r);
                            txs[port][0].tx_burst(&mut one);
                        }
                    }
                }
                None => self.totals.foreign += 1,
            }
        }
        inb.clear();
        got
    }

    fn run(
        &mut self,
        pool: &Mempool,
        lanes: &mut [Lane],
        txs: &mut [Vec<TxQueue>],
        rxs: &mut [(usize, RxQueue)],
        stop: &AtomicBool,
    ) -> Result<Value, AnyError> {
        let hz = self.tsc_hz as f64;
        let secs = |c: u64| c as f64 / hz;
        let to_tsc = |s: f64| (s * hz) as u64;
        let burst = self.args.burst;
        let mut out = Burst::new();
        let mut inb = Burst::new();
        let start = dpdk::rdtsc();
        let mut phase = Phase::Warmup;
        let mut window_start = (start, Totals::default(), 0u64, 0u64);
        let mut window_end = window_start;
        // Set when the first frame comes back: the warm-up runs from then on.
        let mut phase_end = u64::MAX;
        let ready_deadline = start + to_tsc(self.args.ready_timeout);
        let mut next_tick = start + self.tsc_hz;
        let mut last_tick = (start, 0u64);
        let mut per_second = Vec::new();
        let mut stopped = false;
        let mut loops = 0u64;
        // Reordering while a bond converges (flows move between members) is counted apart.
        let mut reordered_before = 0;
        let mut missing_before = 0;
        loop {
            let now = dpdk::rdtsc();
            if stop.load(Ordering::Relaxed) && !stopped {
                stopped = true;
                if phase != Phase::Drain {
                    phase_end = now;
                }
            }
            if phase == Phase::Warmup && phase_end == u64::MAX && self.sink.rx_packets > 0 {
                phase_end = now + to_tsc(self.args.warmup);
            }
            if phase == Phase::Warmup
                && self.sink.rx_packets == 0
                && !stopped
                && now >= ready_deadline
            {
                phase_end = now;
            }
            if now >= phase_end {
                match phase {
                    Phase::Warmup => {
                        if self.sink.rx_packets == 0 && !stopped {
                            return Err(format!(
                                "no frame came back within {} s ({} sent, {} ARP and {} ND requests answered, {} foreign frames received)",
                                self.args.ready_timeout, self.totals.tx_packets, self.totals.arp_replies, self.totals.nd_replies, self.totals.foreign
                            )
                            .into());
                        } else {
                            phase = Phase::Window;
                            self.sink.latency.reset();
                            self.sink.record_latency = true;
                            reordered_before = self.sink.reordered();
                            missing_before = self.sink.missing();
                            window_start =
                                (now, self.totals, self.sink.rx_packets, self.sink.rx_bytes);
                            phase_end = if stopped {
                                now
                            } else {
                                now + to_tsc(self.args.seconds)
                            };
                            last_tick = (now, self.sink.rx_packets);
                            next_tick = now + self.tsc_hz;
                            // Harnesses take the forwarder's counters at these two lines.
                            eprintln!("fastlag-gen: window start");
                        }
                    }
                    Phase::Window => {
                        phase = Phase::Drain;
                        eprintln!("fastlag-gen: window end");
                        window_end = (now, self.totals, self.sink.rx_packets, self.sink.rx_bytes);
                        phase_end = now + to_tsc(self.args.drain_ms as f64 / 1000.0);
                    }
                    Phase::Drain => break,
                }
            }
            if phase != Phase::Drain {
                // Frames all lanes together may still send now (None: no limit).
                let mut allowed: Option<u64> = None;
                if self.args.rate > 0 {
                    let due = ((now - start) as f64 / hz * self.args.rate as f64) as u64;
                    allowed = Some(due.saturating_sub(self.totals.tx_packets));
                }
                if let Some(c) = self.args.count {
                    let left = c.saturating_sub(self.totals.tx_packets);
                    allowed = Some(allowed.map_or(left, |a| a.min(left)));
                    if left == 0 && phase == Phase::Window {
                        phase_end = now;
                    }
                }
                // A limited allowance goes to the lanes in turn, starting with a different
                // one every loop, so no lane is favoured.
                let nl = lanes.len();
                let first = (loops % nl as u64) as usize;
                loops += 1;
                for i in 0..nl {
                    let n = allowed.map_or(burst as u64, |a| a.min(burst as u64));
                    if n == 0 {
                        break;
                    }
                    let lane = &mut lanes[(first + i) % nl];
                    let tx = &mut txs[lane.port][lane.tx];
                    let sent = self.send(pool, lane, tx, &mut out, n as usize, now);
                    if let Some(a) = allowed.as_mut() {
                        *a -= sent as u64;
                    }
                }
            }
            for (p, rx) in rxs.iter_mut() {
                self.receive(pool, *p, rx, txs, &mut inb, now);
            }
            if phase == Phase::Window && now >= next_tick {
                let dt = secs(now - last_tick.0);
                let mpps = (self.sink.rx_packets - last_tick.1) as f64 / dt / 1e6;
                per_second.push((mpps * 1000.0).round() / 1000.0);
                if self.args.progress {
                    eprintln!("fastlag-gen: rx {mpps:.3} Mpps");
                }
                last_tick = (now, self.sink.rx_packets);
                next_tick += self.tsc_hz;
            }
        }
        if window_end.0 == start {
            window_end = (
                dpdk::rdtsc(),
                self.totals,
                self.sink.rx_packets,
                self.sink.rx_bytes,
            );
        }
        let dur = secs(window_end.0 - window_start.0).max(1e-9);
        let (t0, t1) = (window_start.1, window_end.1);
        let rate = |pk: u64, by: u64| {
            json!({
                "packets": pk,
                "bytes": by,
                "mpps": round3(pk as f64 / dur / 1e6),
                "gbps": round3((by + pk * FCS as u64) as f64 * 8.0 / dur / 1e9),
            })
        };
        let sent = self.totals.tx_packets;
        let received = self.sink.rx_packets;
        let lost = sent.saturating_sub(received);
        let h = &self.sink.latency;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        let flows_with_loss = self
            .sink
            .flows
            .iter()
            .zip(&self.seq)
            .filter(|(f, &s)| f.received < s as u64)
            .count();
        // Gaps in the flows' sequence numbers opened during the window and the drain, over
        // the frames sent in the window: loss in steady state (frames lost while a bond
        // converged or a router resolved its next hop are not in it).
        let window_sent = t1.tx_packets - t0.tx_packets;
        let window_missing = self.sink.missing().saturating_sub(missing_before);
        let window_loss_pct = if window_sent > 0 {
            round3(window_missing as f64 * 100.0 / window_sent as f64)
        } else {
            0.0
        };
        Ok(json!({
            "window_s": round3(dur),
            "tx": rate(t1.tx_packets - t0.tx_packets, t1.tx_bytes - t0.tx_bytes),
            "rx": rate(window_end.2 - window_start.2, window_end.3 - window_start.3),
            "rx_mpps_per_second": per_second,
            "window_loss_pct": window_loss_pct,
            "total": {
                "sent": sent,
                "received": received,
                "lost": lost,
                "loss_pct": if sent > 0 { round3(lost as f64 * 100.0 / sent as f64) } else { 0.0 },
                "reordered": self.sink.reordered() - reordered_before,
                "reordered_in_warmup": reordered_before,
                "flows_reordered": self.sink.flows_reordered(),
                "flows_with_loss": flows_with_loss,
                "flows_received": self.sink.flows.iter().filter(|f| f.received > 0).count(),
                "unknown_flow": self.sink.unknown_flow,
                "foreign": self.totals.foreign,
                "tx_full": self.totals.tx_full,
                "arp_replies": self.totals.arp_replies,
                "nd_replies": self.totals.nd_replies,
            },
            "latency_ns": {
                "samples": h.len(),
                "min": if h.is_empty() { 0 } else { h.min() },
                "p50": q(0.5),
                "p99": q(0.99),
                "p99_9": q(0.999),
                "max": if h.is_empty() { 0 } else { h.max() },
                "mean": round3(if h.is_empty() { 0.0 } else { h.mean() }),
            },
            "tsc_hz": self.tsc_hz,
        }))
    }
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
