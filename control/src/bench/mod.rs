//! `fastlag bench`: fastlag's own per-packet cost, measured in a closed loop on one pinned
//! worker, with no generator in the measured path.
//!
//! Each [`Scenario`] is a configuration the real runtime runs (`Runtime::start_plan` with a
//! [`Plan::for_bench`](crate::plan::Plan::for_bench) plan: the same workers, bond tables,
//! LACP engine and router as `fastlag run`). Frames reach the worker in one of two ways:
//!
//! * **loop**: in-process links wired so that what the worker sends comes back to it
//!   (xconnect `a <-> b` over one link; two bonds joined by two links and cross-connected).
//!   Once the bonds distribute, the runtime injects `frames` template frames at both ends
//!   (half each, so every port receives, as in testpmd's `start tx_first` on two ports):
//!   through a TX queue of the end's own where it has the control thread's queue, else
//!   through worker 0, so the link's rings stay single-producer. They circulate for ever.
//! * **pcap**: `net_pcap` replays a pcap file of template frames for ever (`infinite_rx`)
//!   into the router, which sends them to `net_null` ports: the same feed that DPDK's l3fwd
//!   gets in the benchmark harness (`benches/loop.py`).
//!
//! The worker is never idle, so its busy cycles per packet (TSC cycles in polls that
//! returned packets / packets sent) are its whole cost per packet. One scenario per
//! process (DPDK initialises once per process).

mod frames;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dpdk::MacAddr;
use serde::Serialize;

pub use frames::{udp_frames, write_pcap, FlowSpec};

use crate::plan::{Host, Plan};
use crate::runtime::{Runtime, RuntimeError};
use crate::status::{Snapshot, Status};

/// How frames reach the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Injected into closed loops through these ports' injectors (the frames arrive at
    /// the other end of each link), the frames shared out evenly.
    Loop {
        /// The ports whose injectors send.
        inject: &'static [&'static str],
        /// IPv6 frames.
        v6: bool,
    },
    /// Replayed from a pcap file by `net_pcap` into the router.
    Pcap {
        /// IPv6 frames.
        v6: bool,
    },
}

/// One benchmark scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Name on the command line.
    pub name: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// How frames reach the worker.
    pub feed: Feed,
    /// The reference it is compared with in `benches/loop.py`.
    pub reference: &'static str,
    config: fn(&Cores, &Path) -> String,
}

/// The CPUs a scenario uses.
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    /// The control thread's.
    pub control: usize,
    /// The one worker's.
    pub worker: usize,
}

/// The MAC the router's ingress interface has (the pcap frames are sent to it).
pub const ROUTER_IN_MAC: MacAddr = MacAddr([0x02, 0xfa, 0x57, 0x1a, 0x90, 0x01]);
/// The static neighbour behind the router's egress (its gateway).
pub const NEIGHBOR_MAC: MacAddr = MacAddr([0x02, 0xfa, 0x57, 0x1a, 0x90, 0x02]);

fn dataplane(c: &Cores) -> String {
    format!(
        "[dataplane]\ncontrol_core = {}\nworker_cores = [{}]\nhugepages = false\nmemory_mb = 256\nmbufs = 16383\n",
        c.control, c.worker
    )
}

fn xconnect(c: &Cores, _: &Path) -> String {
    format!(
        "{}\n[[port]]\nname = \"a\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"b\"\ndevice = \"ring:l0:b\"\n\n[forward]\nmode = \"xconnect\"\npairs = [[\"a\", \"b\"]]\n",
        dataplane(c)
    )
}

/// Two bonds of `members` members each, joined member by member by in-process links and
/// cross-connected: what bondB receives leaves through bondA, and comes back to bondB.
fn bonds(c: &Cores, mode: &str, hash: &str, members: usize) -> String {
    let mut s = dataplane(c);
    for side in ["a", "b"] {
        for m in 0..members {
            s += &format!("\n[[port]]\nname = \"{side}{m}\"\ndevice = \"ring:l{m}:{side}\"\n");
        }
    }
    for side in ["A", "B"] {
        let names: Vec<String> = (0..members)
            .map(|m| format!("\"{}{m}\"", side.to_lowercase()))
            .collect();
        s += &format!(
            "\n[[bond]]\nname = \"bond{side}\"\nmode = \"{mode}\"\nmembers = [{}]\n",
            names.join(", ")
        );
        if mode != "active-backup" {
            s += &format!("hash = \"{hash}\"\n");
        }
        if mode == "802.3ad" {
            s += "\n[bond.lacp]\nrate = \"fast\"\n";
        }
    }
    s += "\n[forward]\nmode = \"xconnect\"\npairs = [[\"bondA\", \"bondB\"]]\n";
    s
}

/// The router: `in` replays `pcap`, routes leave through `out` (a `net_null` port, or a
/// VLAN on a balance-xor bond of two) towards a static neighbour.
fn router(c: &Cores, pcap: &Path, on_bond: bool) -> String {
    let mut s = dataplane(c);
    s += &format!(
        "\n[[port]]\nname = \"in\"\ndevice = \"net_pcap0,rx_pcap={},infinite_rx=1\"\nmac = \"{}\"\n",
        pcap.display(),
        ROUTER_IN_MAC
    );
    if on_bond {
        s += "\n[[port]]\nname = \"n0\"\ndevice = \"net_null1,no-rx=1\"\n\n[[port]]\nname = \"n1\"\ndevice = \"net_null2,no-rx=1\"\n";
        s += "\n[[bond]]\nname = \"up\"\nmode = \"balance-xor\"\nmembers = [\"n0\", \"n1\"]\nhash = \"layer3+4\"\n";
    } else {
        s += "\n[[port]]\nname = \"out\"\ndevice = \"net_null1,no-rx=1\"\n";
    }
    s += &format!(
        "\n[[interface]]\nname = \"lan\"\non = \"in\"\naddresses = [\"10.0.0.1/16\", \"2001:db8:1::1/64\"]\ntap = false\n\n[[interface]]\nname = \"wan\"\non = \"{}\"\n{}addresses = [\"192.0.2.1/24\", \"2001:db8:2::1/64\"]\ntap = false\n",
        if on_bond { "up" } else { "out" },
        if on_bond { "vlan = 100\n" } else { "" }
    );
    s += &format!(
        "\n[[route]]\nprefix = \"198.18.0.0/15\"\nvia = \"192.0.2.2\"\n\n[[route]]\nprefix = \"2001:200::/32\"\nvia = \"2001:db8:2::2\"\n\n[[neighbor]]\ninterface = \"wan\"\naddress = \"192.0.2.2\"\nmac = \"{NEIGHBOR_MAC}\"\n\n[[neighbor]]\ninterface = \"wan\"\naddress = \"2001:db8:2::2\"\nmac = \"{NEIGHBOR_MAC}\"\n"
    );
    s += "\n[forward]\nmode = \"router\"\n";
    s
}

/// The router with the IPv4 and IPv6 routes over two next hops (ECMP), each on a
/// `net_null` port of its own: `router` with a second egress interface.
fn router_ecmp(c: &Cores, pcap: &Path) -> String {
    let one = router(c, pcap, false);
    let mut s = one
        .replace(
            "\n[[route]]\nprefix = \"198.18.0.0/15\"\nvia = \"192.0.2.2\"\n",
            "\n[[route]]\nprefix = \"198.18.0.0/15\"\nnexthop = [{ via = \"192.0.2.2\" }, { via = \"192.0.3.2\" }]\n",
        )
        .replace(
            "\n[[route]]\nprefix = \"2001:200::/32\"\nvia = \"2001:db8:2::2\"\n",
            "\n[[route]]\nprefix = \"2001:200::/32\"\nnexthop = [{ via = \"2001:db8:2::2\" }, { via = \"2001:db8:3::2\" }]\n",
        )
        .replace("\n[forward]\nmode = \"router\"\n", "");
    s += &format!(
        "\n[[port]]\nname = \"out2\"\ndevice = \"net_null2,no-rx=1\"\n\n[[interface]]\nname = \"wan2\"\non = \"out2\"\naddresses = [\"192.0.3.1/24\", \"2001:db8:3::1/64\"]\ntap = false\n\n[[neighbor]]\ninterface = \"wan2\"\naddress = \"192.0.3.2\"\nmac = \"{NEIGHBOR_MAC}\"\n\n[[neighbor]]\ninterface = \"wan2\"\naddress = \"2001:db8:3::2\"\nmac = \"{NEIGHBOR_MAC}\"\n\n[forward]\nmode = \"router\"\n"
    );
    s
}

macro_rules! bond_scenario {
    ($name:literal, $what:literal, $mode:literal, $hash:literal, $members:literal, $reference:literal) => {
        Scenario {
            name: $name,
            what: $what,
            feed: Feed::Loop {
                inject: &["a0", "b0"],
                v6: false,
            },
            reference: $reference,
            config: |c, _| bonds(c, $mode, $hash, $members),
        }
    };
}

/// Every scenario, in the order the harness reports them.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "xconnect",
            what: "xconnect a <-> b over one in-process link",
            feed: Feed::Loop {
                inject: &["a", "b"],
                v6: false,
            },
            reference: "testpmd-io",
            config: xconnect,
        },
        bond_scenario!(
            "bond-l34",
            "802.3ad bond, 2 members, layer3+4",
            "802.3ad",
            "layer3+4",
            2,
            "testpmd-bond-l34"
        ),
        bond_scenario!(
            "bond-l23",
            "802.3ad bond, 2 members, layer2+3",
            "802.3ad",
            "layer2+3",
            2,
            "testpmd-bond-l34"
        ),
        bond_scenario!(
            "bond-l2",
            "802.3ad bond, 2 members, layer2",
            "802.3ad",
            "layer2",
            2,
            "testpmd-bond-l34"
        ),
        bond_scenario!(
            "bond-l34-1",
            "802.3ad bond, 1 member, layer3+4",
            "802.3ad",
            "layer3+4",
            1,
            "testpmd-bond-l34"
        ),
        bond_scenario!(
            "active-backup",
            "active-backup bond, 2 members",
            "active-backup",
            "layer3+4",
            2,
            "bond-l34-1"
        ),
        Scenario {
            name: "router-v4",
            what: "IPv4 router, pcap in, route via a static neighbour, net_null out",
            feed: Feed::Pcap { v6: false },
            reference: "l3fwd-lpm-v4",
            config: |c, p| router(c, p, false),
        },
        Scenario {
            name: "router-v6",
            what: "IPv6 router, pcap in, route via a static neighbour, net_null out",
            feed: Feed::Pcap { v6: true },
            reference: "l3fwd-lpm-v6",
            config: |c, p| router(c, p, false),
        },
        Scenario {
            name: "router-v4-bond-vlan",
            what: "IPv4 router out of a VLAN on a balance-xor bond of two net_null ports",
            feed: Feed::Pcap { v6: false },
            reference: "router-v4",
            config: |c, p| router(c, p, true),
        },
        Scenario {
            name: "router-v4-ecmp",
            what: "IPv4 router, the route over two next hops (ECMP, flow hash), net_null out",
            feed: Feed::Pcap { v6: false },
            reference: "router-v4",
            config: router_ecmp,
        },
    ]
}

/// The configuration a scenario runs (the pcap path is used by pcap-fed scenarios).
pub fn config_text(s: &Scenario, cores: &Cores, pcap: &Path) -> String {
    (s.config)(cores, pcap)
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// CPUs.
    pub cores: Cores,
    /// Frames in the loop (loop scenarios).
    pub frames: usize,
    /// Flows (distinct frames).
    pub flows: usize,
    /// Before measuring.
    pub warmup: Duration,
    /// Measuring window.
    pub seconds: Duration,
    /// Stop once the worker has sent this many packets (for instruction counting under
    /// callgrind, where time means little).
    pub packets: Option<u64>,
    /// How long the bonds may take to distribute.
    pub converge: Duration,
    /// Scratch directory (the pcap file).
    pub dir: PathBuf,
    /// fastlag's log level.
    pub log: tracing::Level,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: String,
    /// What it measures.
    pub what: String,
    /// Its reference in the harness.
    pub reference: String,
    /// Frames circulating (loop) or in the pcap file.
    pub frames: usize,
    /// Distinct flows.
    pub flows: usize,
    /// Bytes per frame (without FCS).
    pub frame_len: usize,
    /// Length of the measuring window, s.
    pub seconds: f64,
    /// Packets the worker sent in the window.
    pub packets: u64,
    /// Millions of packets per second.
    pub mpps: f64,
    /// Busy TSC cycles per packet sent.
    pub busy_cycles_per_packet: f64,
    /// Busy cycles / all cycles in the window (1.0: the worker never waited).
    pub busy_share: f64,
    /// TSC cycles per second.
    pub tsc_hz: u64,
    /// Ports (bond members) that sent in the window, by name.
    pub ports_sending: Vec<String>,
    /// Frames the workers dropped in the window (all reasons).
    pub drops: u64,
    /// Bonds all distributing before the frames went in, after this long (s).
    pub converged_s: Option<f64>,
    /// Every mbuf back in the pool at stop, nothing failed.
    pub clean: bool,
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No such scenario.
    #[error("no scenario {0:?}; scenarios: {1}")]
    Unknown(String, String),
    /// The generated configuration does not validate (a bug).
    #[error("scenario configuration is invalid:\n{0}")]
    Config(conf::ConfigError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Writing the pcap file failed.
    #[error("writing {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The bonds did not distribute in time.
    #[error("the bonds did not distribute within {0:?}")]
    NotConverged(Duration),
    /// Nothing circulates after the frames went in.
    #[error("no frame moves once injected: {0}")]
    Empty(String),
    /// Injecting frames failed.
    #[error("the loop took {got} of {want} frames")]
    Prime {
        /// Frames asked for.
        want: usize,
        /// Frames the link took.
        got: usize,
    },
}

/// The scenario called `name`.
pub fn find(name: &str) -> Result<Scenario, BenchError> {
    let all = scenarios();
    all.iter().find(|s| s.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        BenchError::Unknown(name.to_string(), names.join(", "))
    })
}

fn flow_spec(v6: bool, flows: usize) -> FlowSpec {
    FlowSpec {
        v6,
        flows,
        dst_mac: ROUTER_IN_MAC,
        src_mac: MacAddr([0x02, 0xfa, 0x57, 0x1a, 0x10, 0x00]),
        src4: Ipv4Addr::new(10, 0, 1, 1),
        dst4: Ipv4Addr::new(198, 18, 1, 1),
        src6: "2001:db8:1::100".parse::<Ipv6Addr>().expect("literal"),
        dst6: "2001:200:0:1::1".parse::<Ipv6Addr>().expect("literal"),
    }
}

fn sent(s: &Snapshot) -> u64 {
    s.workers.iter().map(|w| w.tx).sum()
}

fn busy(s: &Snapshot) -> u64 {
    s.workers.iter().map(|w| w.busy_cycles).sum()
}

fn drops(s: &Snapshot) -> u64 {
    s.workers.iter().map(|w| w.drops).sum()
}

/// Every bond distributes on as many members as it can: one in active-backup, all others.
fn all_distributing(status: &Status) -> bool {
    status.bonds.iter().all(|b| {
        let want = if b.mode == "active-backup" {
            1
        } else {
            b.members.len()
        };
        // Both ends of every link must also accept what arrives (collecting), or the
        // frames injected next would be dropped and the loop stay empty.
        let collecting = b.members.iter().filter(|m| m.collecting).count();
        want > 0 && b.distributing.len() == want && collecting >= want
    })
}

/// How long bond tables must stay unchanged before frames are injected.
const STABLE: Duration = Duration::from_millis(500);

/// Marks the start of the measuring window for instruction counting: the harness runs
/// callgrind with `--zero-before=*window_start*` (costs so far are dropped).
#[inline(never)]
pub fn window_start() {
    // Opaque to the optimiser (a call without effects would be removed), and different
    // from window_end's body (identical functions would be folded into one address).
    std::hint::black_box(1u8);
}

/// Marks the end of the measuring window: with `--dump-before=*window_end*` callgrind
/// writes what the window cost, before anything stops.
#[inline(never)]
pub fn window_end() {
    std::hint::black_box(2u8);
}

/// The frames scenario `s` feeds (`flows` of them).
pub fn scenario_frames(s: &Scenario, flows: usize) -> Vec<Vec<u8>> {
    let v6 = match s.feed {
        Feed::Loop { v6, .. } | Feed::Pcap { v6 } => v6,
    };
    udp_frames(&flow_spec(v6, flows))
}

/// Runs scenario `s`.
pub fn run(s: &Scenario, o: &Options) -> Result<Outcome, BenchError> {
    let inject = match s.feed {
        Feed::Loop { inject, .. } => Some(inject),
        Feed::Pcap { .. } => None,
    };
    let frames = scenario_frames(s, o.flows);
    let pcap = o.dir.join(format!("{}.pcap", s.name));
    if inject.is_none() {
        std::fs::create_dir_all(&o.dir).map_err(|e| BenchError::Io(o.dir.clone(), e))?;
        write_pcap(&pcap, &frames).map_err(|e| BenchError::Io(pcap.clone(), e))?;
    }
    let text = config_text(s, &o.cores, &pcap);
    let cfg = conf::parse(&text, &format!("<bench {}>", s.name)).map_err(BenchError::Config)?;
    let plan = Plan::new(&cfg, &Host::current(o.log)).for_bench();
    let mut rt = Runtime::start_plan(plan, None)?;
    let t0 = Instant::now();
    let mut converged = None;
    if !cfg.bonds.is_empty() {
        // Converged: every member distributes and collects, and no table changed for
        // STABLE (both ends are LACP engines settling at once: a member can collect for a
        // moment and then renegotiate, and frames injected then would be dropped).
        let mut steady: Option<(Instant, Vec<u64>)> = None;
        while t0.elapsed() < o.converge {
            let status = rt.status();
            let versions: Vec<u64> = status.bonds.iter().map(|b| b.table_version).collect();
            if !all_distributing(&status) {
                steady = None;
            } else if let Some((since, v)) = &steady {
                if *v != versions {
                    steady = Some((Instant::now(), versions));
                } else if since.elapsed() >= STABLE {
                    converged = Some(t0.elapsed().as_secs_f64());
                    break;
                }
            } else {
                steady = Some((Instant::now(), versions));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if converged.is_none() {
            let _ = rt.shutdown(Vec::new());
            return Err(BenchError::NotConverged(o.converge));
        }
    }
    if let Some(ports) = inject {
        let mut got = 0;
        for (i, port) in ports.iter().enumerate() {
            // Port i sends its share, starting at its own place in the templates.
            let share = o.frames / ports.len() + usize::from(i < o.frames % ports.len());
            let start = i * frames.len() / ports.len();
            let turn: Vec<Vec<u8>> = frames[start..]
                .iter()
                .chain(&frames[..start])
                .cloned()
                .collect();
            got += rt.inject(port, &turn, share)?;
        }
        if got < o.frames {
            let _ = rt.shutdown(Vec::new());
            return Err(BenchError::Prime {
                want: o.frames,
                got,
            });
        }
    }
    let primed = rt.snapshot();
    std::thread::sleep(o.warmup.max(Duration::from_millis(100)));
    let (start, a) = (Instant::now(), rt.snapshot());
    if sent(&a) == sent(&primed) {
        // The frames are gone: say where the counters put them.
        let why: Vec<String> = a
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}: rx {} tx {} drops {} (not collecting {}, no egress {}, bond down {}, tx full {})",
                    p.name,
                    p.workers.rx,
                    p.workers.tx,
                    p.workers.drops(),
                    p.workers.drop_not_collecting,
                    p.workers.drop_no_egress,
                    p.workers.drop_bond_down,
                    p.workers.drop_tx_full
                )
            })
            .collect();
        let _ = rt.shutdown(Vec::new());
        return Err(BenchError::Empty(why.join("; ")));
    }
    window_start();
    let b = match o.packets {
        None => {
            std::thread::sleep(o.seconds);
            rt.snapshot()
        }
        Some(n) => loop {
            std::thread::sleep(Duration::from_millis(20));
            let b = rt.snapshot();
            if sent(&b) - sent(&a) >= n || start.elapsed() > Duration::from_secs(600) {
                break b;
            }
        },
    };
    window_end();
    let dt = start.elapsed().as_secs_f64();
    let packets = sent(&b) - sent(&a);
    let cycles = busy(&b) - busy(&a);
    let ports_sending = b
        .ports
        .iter()
        .zip(&a.ports)
        .filter(|(x, y)| x.workers.tx > y.workers.tx)
        .map(|(x, _)| x.name.clone())
        .collect();
    let tsc_hz = b.tsc_hz;
    let report = rt.shutdown(Vec::new());
    Ok(Outcome {
        scenario: s.name.to_string(),
        what: s.what.to_string(),
        reference: s.reference.to_string(),
        frames: if inject.is_some() {
            o.frames
        } else {
            frames.len()
        },
        flows: frames.len(),
        frame_len: frames.first().map_or(0, Vec::len),
        seconds: dt,
        packets,
        mpps: packets as f64 / dt / 1e6,
        busy_cycles_per_packet: if packets > 0 {
            cycles as f64 / packets as f64
        } else {
            0.0
        },
        busy_share: cycles as f64 / (dt * tsc_hz.max(1) as f64),
        tsc_hz,
        ports_sending,
        drops: drops(&b) - drops(&a),
        converged_s: converged,
        clean: report.clean(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_configuration_validates() {
        let cores = Cores {
            control: 0,
            worker: 1,
        };
        for s in scenarios() {
            let text = config_text(&s, &cores, Path::new("/tmp/x.pcap"));
            let cfg =
                conf::parse(&text, s.name).unwrap_or_else(|e| panic!("{}: {e}\n{text}", s.name));
            let plan = Plan::new(
                &cfg,
                &Host {
                    machine_id: "m".into(),
                    pid: 1,
                    log: tracing::Level::INFO,
                },
            )
            .for_bench();
            if let Feed::Loop { inject, .. } = s.feed {
                for port in inject {
                    let p = plan.port_index(port).expect("inject port exists");
                    assert!(plan.ports[p].injector, "{}", s.name);
                }
            }
            assert!(find(s.name).is_ok());
        }
        // The ECMP scenario's routes have both hops.
        let s = find("router-v4-ecmp").unwrap();
        let cfg = conf::parse(&config_text(&s, &cores, Path::new("/tmp/x.pcap")), "ecmp").unwrap();
        assert!(
            cfg.routes.iter().all(|r| r.hops().len() == 2),
            "{:?}",
            cfg.routes
        );
        assert!(matches!(find("nope"), Err(BenchError::Unknown(..))));
    }
}
