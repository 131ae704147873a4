//! `fastlag ctl`: the management API's client. Sends one JSON request per line over the
//! Unix socket (docs/management.md) and prints the answer as tables for people, or as the
//! server's JSON with `--json`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `fastlag ctl` arguments.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// Management socket (default: [management] socket of --config, else
    /// /run/fastlag/fastlag.sock).
    #[arg(long, short)]
    socket: Option<PathBuf>,
    /// Read the socket path from this config file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Show state and counters.
    #[command(subcommand)]
    Show(Show),
    /// For every member of a bond that is not distributing: the reason in plain words, with
    /// the evidence.
    Why {
        /// Bond name.
        bond: String,
    },
    /// Write the bond's recent LACPDU and marker frames (both directions) as a pcap file.
    Capture {
        /// Bond name.
        bond: String,
        /// Slow-protocol frames (LACPDUs, marker PDUs); the only kind kept for now.
        #[arg(long)]
        slow: bool,
        /// Output file (libpcap format, Ethernet).
        #[arg(short = 'w', long = "write")]
        write: PathBuf,
    },
    /// Drain or undrain a bond member.
    #[command(subcommand)]
    Member(MemberCmd),
    /// Re-read the configuration and apply what can change without a restart.
    Reload,
    /// Check that fastlag answers.
    Ping,
}

#[derive(Debug, Subcommand)]
enum Show {
    /// All bonds: mode, LACP system, active aggregator, partner, members.
    Bonds,
    /// One bond in detail, with per-member state and rates.
    Bond {
        /// Bond name.
        name: String,
    },
    /// LACP per member: actor and partner side by side, machine states, timers, counters.
    Lacp {
        /// Only this bond.
        name: Option<String>,
        /// Every counter, timer and churn state.
        #[arg(long)]
        detail: bool,
    },
    /// Ports with counters and rates.
    Ports,
    /// Counters: ports, workers (and interfaces in router mode).
    Stats,
    /// Router interfaces and their counters.
    Interfaces,
    /// FIB routes (connected, static, mirrored from the kernel).
    Routes,
    /// LACP state transitions with their causes, and drain events.
    Events {
        /// Only this bond.
        name: Option<String>,
        /// Keep printing new events until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MemberCmd {
    /// Advertise the member out of sync so the partner moves traffic away, then keep it out.
    Drain {
        /// Bond name.
        bond: String,
        /// Member (port) name.
        member: String,
    },
    /// Bring a drained member back into the aggregate.
    Undrain {
        /// Bond name.
        bond: String,
        /// Member (port) name.
        member: String,
    },
}

type AnyError = Box<dyn std::error::Error>;

/// A connection to the management socket.
pub(crate) struct Client {
    reader: BufReader<UnixStream>,
    path: PathBuf,
}

impl Client {
    /// Connects.
    pub(crate) fn connect(path: &Path) -> Result<Client, String> {
        let s = UnixStream::connect(path).map_err(|e| {
            format!(
                "cannot connect to the management socket {}: {e} (is fastlag running? is [management] socket set elsewhere? use --socket)",
                path.display()
            )
        })?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        Ok(Client {
            reader: BufReader::new(s),
            path: path.to_path_buf(),
        })
    }

    /// Sends a request, returns `result` or the server's error.
    pub(crate) fn call(&mut self, req: &Value) -> Result<Value, String> {
        let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut resp = String::new();
        self.reader
            .read_line(&mut resp)
            .map_err(|e| format!("{}: no answer: {e}", self.path.display()))?;
        if resp.is_empty() {
            return Err(format!("{}: connection closed", self.path.display()));
        }
        let v: Value = serde_json::from_str(&resp).map_err(|e| format!("bad answer: {e}"))?;
        if v["ok"] == true {
            Ok(v["result"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("unknown error").to_string())
        }
    }
}

fn socket_path(a: &CtlArgs) -> Result<PathBuf, AnyError> {
    if let Some(s) = &a.socket {
        return Ok(s.clone());
    }
    if let Some(c) = &a.config {
        let cfg = conf::load(c).map_err(|e| format!("{}:\n{e}", c.display()))?;
        return Ok(cfg.management.socket);
    }
    Ok(PathBuf::from(conf::DEFAULT_SOCKET))
}

/// Runs `fastlag ctl`.
pub(crate) fn run(a: CtlArgs) -> Result<ExitCode, AnyError> {
    let path = socket_path(&a)?;
    let mut c = Client::connect(&path)?;
    let json = a.json;
    let out = |v: &Value, human: &dyn Fn(&Value) -> String| {
        if json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            print!("{}", human(v));
        }
    };
    match a.command {
        CtlCommand::Ping => out(&c.call(&json!({"cmd": "ping"}))?, &|v| {
            format!(
                "fastlag up {:.1} s\n",
                v["uptime_ms"].as_f64().unwrap_or(0.0) / 1e3
            )
        }),
        CtlCommand::Show(Show::Bonds) => out(&c.call(&json!({"cmd": "bonds"}))?, &render_bonds),
        CtlCommand::Show(Show::Bond { name }) => out(
            &c.call(&json!({"cmd": "bond", "name": name}))?,
            &render_bond,
        ),
        CtlCommand::Show(Show::Lacp { name, detail }) => {
            out(&c.call(&json!({"cmd": "lacp", "bond": name}))?, &|v| {
                render_lacp(v, detail)
            })
        }
        CtlCommand::Show(Show::Ports) => out(&c.call(&json!({"cmd": "ports"}))?, &render_ports),
        CtlCommand::Show(Show::Stats) => out(&c.call(&json!({"cmd": "stats"}))?, &render_stats),
        CtlCommand::Show(Show::Interfaces) => {
            out(&c.call(&json!({"cmd": "interfaces"}))?, &render_interfaces)
        }
        CtlCommand::Show(Show::Routes) => out(&c.call(&json!({"cmd": "routes"}))?, &render_routes),
        CtlCommand::Show(Show::Events { name, follow }) => {
            let mut since: u64 = 0;
            loop {
                let v = c.call(&json!({"cmd": "events", "bond": name, "since_ns": since}))?;
                for e in v.as_array().into_iter().flatten() {
                    if json {
                        println!("{e}");
                    } else {
                        println!("{}", render_event(e));
                    }
                    if let Some(t) = e["at_ns"].as_str().and_then(|t| t.parse().ok()) {
                        since = since.max(t);
                    }
                }
                if !follow {
                    break;
                }
                std::io::stdout().flush()?;
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        CtlCommand::Why { bond } => {
            let v = c.call(&json!({"cmd": "why", "bond": bond}))?;
            out(&v, &render_why);
        }
        CtlCommand::Capture { bond, slow, write } => {
            if !slow {
                return Err("only slow-protocol frames are kept: add --slow".into());
            }
            let v = c.call(&json!({"cmd": "capture", "bond": bond}))?;
            let (n, rx, tx) = write_pcap(&v, &write)?;
            if json {
                println!(
                    "{}",
                    json!({"file": write.display().to_string(), "frames": n, "rx": rx, "tx": tx})
                );
            } else {
                println!(
                    "{}: {n} frames of bond {bond} ({rx} received, {tx} sent, oldest first)",
                    write.display()
                );
            }
        }
        CtlCommand::Member(MemberCmd::Drain { bond, member }) => out(
            &c.call(&json!({"cmd": "drain", "bond": bond, "member": member}))?,
            &|v| {
                format!(
                    "{} of {}: {}\n",
                    v["member"].as_str().unwrap_or(""),
                    v["bond"].as_str().unwrap_or(""),
                    v["state"].as_str().unwrap_or("")
                )
            },
        ),
        CtlCommand::Member(MemberCmd::Undrain { bond, member }) => out(
            &c.call(&json!({"cmd": "undrain", "bond": bond, "member": member}))?,
            &|v| {
                format!(
                    "{} of {}: {}\n",
                    v["member"].as_str().unwrap_or(""),
                    v["bond"].as_str().unwrap_or(""),
                    v["state"].as_str().unwrap_or("")
                )
            },
        ),
        CtlCommand::Reload => out(&c.call(&json!({"cmd": "reload"}))?, &reload_text),
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// Rendering

/// A plain text table: columns padded to their widest cell.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            rows: vec![head.iter().map(|s| s.to_string()).collect()],
        }
    }
    fn row(&mut self, r: Vec<String>) {
        self.rows.push(r);
    }
    fn render(&self, indent: &str) -> String {
        let n = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let w: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        for r in &self.rows {
            let mut line = indent.to_string();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<width$}  ", width = w[i]));
                }
            }
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }
}

fn t(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

fn rate(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(x) if x >= 1e6 => format!("{:.2}M", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1}k", x / 1e3),
        Some(x) => format!("{x:.0}"),
    }
}

fn hex16(v: &Value) -> String {
    v.as_u64().map_or("-".into(), |k| format!("{k:#06x}"))
}

fn render_bonds(v: &Value) -> String {
    let mut tb = Table::new(&[
        "BOND",
        "MODE",
        "HASH",
        "SYSTEM",
        "AGGREGATOR",
        "PARTNER",
        "MIN_LINKS",
        "DISTRIBUTING",
    ]);
    for b in v.as_array().into_iter().flatten() {
        let agg = &b["active_aggregator"];
        let members = b["members"].as_array().map_or(0, Vec::len);
        tb.row(vec![
            t(&b["name"]),
            t(&b["mode"]),
            t(&b["hash"]),
            t(&b["system"]),
            t(&agg["id"]),
            if agg.is_null() {
                "-".into()
            } else {
                format!(
                    "{} key {}",
                    t(&agg["partner_system"]),
                    hex16(&agg["partner_key"])
                )
            },
            format!(
                "{} ({})",
                t(&b["min_links"]),
                if b["min_links_met"] == true {
                    "met"
                } else {
                    "NOT met"
                }
            ),
            format!(
                "{}/{} {}",
                b["distributing"].as_array().map_or(0, Vec::len),
                members,
                b["distributing"]
                    .as_array()
                    .map(|a| a.iter().map(t).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            ),
        ]);
    }
    tb.render("")
}

fn render_bond(b: &Value) -> String {
    let mut s = format!(
        "bond {}: {} mode, hash {}, mac {}\n",
        t(&b["name"]),
        t(&b["mode"]),
        t(&b["hash"]),
        t(&b["mac"])
    );
    if !b["system"].is_null() {
        s += &format!(
            "  LACP: system {}, admin key {}, {} {}, selection {}, max_active {}\n",
            t(&b["system"]),
            hex16(&b["admin_key"]),
            t(&b["activity"]),
            t(&b["rate"]),
            t(&b["selection"]),
            t(&b["max_active"])
        );
        let a = &b["active_aggregator"];
        if a.is_null() {
            s += "  active aggregator: none\n";
        } else {
            s += &format!(
                "  active aggregator: {} (our key {}, partner {} key {}{})\n",
                t(&a["id"]),
                hex16(&a["actor_key"]),
                t(&a["partner_system"]),
                hex16(&a["partner_key"]),
                if a["individual"] == true {
                    ", individual"
                } else {
                    ""
                }
            );
        }
    }
    s += &format!(
        "  min_links {}: {}; distributing: {}\n",
        t(&b["min_links"]),
        if b["min_links_met"] == true {
            "met"
        } else {
            "NOT met"
        },
        b["distributing"]
            .as_array()
            .map(|a| a.iter().map(t).collect::<Vec<_>>().join(", "))
            .filter(|x| !x.is_empty())
            .unwrap_or_else(|| "none".into())
    );
    let mut tb = Table::new(&[
        "MEMBER", "LINK", "SPEED", "DUPLEX", "SELECTED", "COLL", "DIST", "RX pps", "TX pps",
        "RX bit/s", "TX bit/s", "REASON",
    ]);
    for m in b["members"].as_array().into_iter().flatten() {
        tb.row(vec![
            t(&m["name"]),
            if m["link_up"] == true { "up" } else { "down" }.into(),
            m["speed_mbps"]
                .as_u64()
                .map_or("unknown".into(), |x| format!("{x}M")),
            t(&m["duplex"]),
            t(&m["selected"]),
            t(&m["collecting"]),
            t(&m["distributing"]),
            rate(&m["rx_pps"]),
            rate(&m["tx_pps"]),
            rate(&m["rx_bps"]),
            rate(&m["tx_bps"]),
            m["reason"].as_str().unwrap_or("").to_string(),
        ]);
    }
    s + &tb.render("  ")
}

fn names(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(t).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into())
}

fn render_lacp(v: &Value, detail: bool) -> String {
    let mut s = String::new();
    for b in v.as_array().into_iter().flatten() {
        s +=
            &format!(
            "bond {}: system {}, admin key {}, {} {}, active aggregator {}, min_links {} ({})\n",
            t(&b["bond"]),
            t(&b["system"]),
            hex16(&b["admin_key"]),
            t(&b["activity"]),
            t(&b["rate"]),
            t(&b["active_aggregator"]),
            t(&b["min_links"]),
            if b["min_links_met"] == true { "met" } else { "NOT met" }
        );
        for m in b["members"].as_array().into_iter().flatten() {
            let (a, p) = (&m["actor"], &m["partner"]);
            s += &format!(
                "\n  member {} ({}): link {}, {}, {}{}\n",
                t(&m["name"]),
                t(&m["mac"]),
                if m["link_up"] == true { "up" } else { "down" },
                t(&m["selected"]),
                if m["distributing"] == true {
                    "distributing".to_string()
                } else {
                    format!("not distributing: {}", t(&m["reason"]))
                },
                if m["drained"] == true {
                    " [drained]"
                } else {
                    ""
                }
            );
            let mut tb = Table::new(&["", "actor (us)", "partner"]);
            let row = |f: &dyn Fn(&Value) -> String, name: &str| vec![name.to_string(), f(a), f(p)];
            tb.row(row(
                &|x| format!("{},{}", t(&x["system_priority"]), t(&x["system"])),
                "system",
            ));
            tb.row(row(&|x| hex16(&x["key"]), "key"));
            tb.row(row(
                &|x| format!("{}/{}", t(&x["port_priority"]), t(&x["port"])),
                "port priority/number",
            ));
            tb.row(row(
                &|x| {
                    format!(
                        "{:#04x} {}",
                        x["state"].as_u64().unwrap_or(0),
                        names(&x["state_names"])
                    )
                },
                "state",
            ));
            s += &tb.render("    ");
            s += &format!(
                "    partner info from {}, matched {}; receive {}, mux {}, periodic {}, aggregator {}\n",
                if m["partner_from_lacpdu"] == true { "LACPDUs" } else { "defaults" },
                t(&m["matched"]),
                t(&m["rx_state"]),
                t(&m["mux_state"]),
                t(&m["periodic_state"]),
                t(&m["aggregator"])
            );
            let c = &m["counters"];
            s += &format!(
                "    LACPDUs rx {} tx {}; last rx {} ({} s ago), last tx {} ({} s ago)\n",
                t(&c["lacpdus_rx"]),
                t(&c["lacpdus_tx"]),
                t(&m["last_rx"]),
                m["last_rx_age_s"]
                    .as_f64()
                    .map_or("-".into(), |x| format!("{x:.1}")),
                t(&m["last_tx"]),
                m["last_tx_age_s"]
                    .as_f64()
                    .map_or("-".into(), |x| format!("{x:.1}")),
            );
            if detail {
                let tm = &m["timers_ms"];
                let ms = |x: &Value| x.as_f64().map_or("-".into(), |v| format!("{v:.0} ms"));
                s += &format!(
                    "    timers: current_while {}, periodic {}, wait_while {}, actor_churn {}, partner_churn {}\n",
                    ms(&tm["current_while"]),
                    ms(&tm["periodic"]),
                    ms(&tm["wait_while"]),
                    ms(&tm["actor_churn"]),
                    ms(&tm["partner_churn"])
                );
                s += &format!(
                    "    churn: actor {} partner {}; ntt {}, fallback {}, loopback {}\n",
                    t(&m["actor_churn"]),
                    t(&m["partner_churn"]),
                    t(&m["ntt"]),
                    t(&m["fallback"]),
                    t(&m["loopback"])
                );
                let g = &m["lacpdu_departures"];
                s += &format!(
                    "    LACPDU departures: {} sent, interval min {} / mean {} / max {} ms; slow frames not sent: {}\n",
                    t(&g["count"]),
                    g["min_ms"].as_f64().map_or("-".into(), |x| format!("{x:.1}")),
                    g["mean_ms"].as_f64().map_or("-".into(), |x| format!("{x:.1}")),
                    g["max_ms"].as_f64().map_or("-".into(), |x| format!("{x:.1}")),
                    t(&m["slow_tx_failed"])
                );
                s += "    802.3ad counters:";
                if let Some(o) = c.as_object() {
                    for (k, v) in o {
                        s += &format!(" {k}={v}");
                    }
                }
                s += "\n";
            }
        }
        s += "\n";
    }
    s
}

fn render_why(v: &Value) -> String {
    let members = v["members"].as_array().cloned().unwrap_or_default();
    let down: Vec<&Value> = members
        .iter()
        .filter(|m| m["distributing"] != true)
        .collect();
    let mut s = format!(
        "bond {} ({}): {} of {} members distributing\n",
        t(&v["bond"]),
        t(&v["mode"]),
        members.len() - down.len(),
        members.len()
    );
    for m in &members {
        if m["distributing"] == true {
            s += &format!("  {}: distributing\n", t(&m["member"]));
            continue;
        }
        s += &format!(
            "  {}: NOT distributing [{}]: {}\n",
            t(&m["member"]),
            t(&m["class"]),
            t(&m["reason"])
        );
        for e in m["evidence"].as_array().into_iter().flatten() {
            s += &format!("      - {}\n", t(e));
        }
    }
    s
}

fn render_ports(v: &Value) -> String {
    let mut tb = Table::new(&[
        "PORT",
        "BOND",
        "LINK",
        "RX pps",
        "TX pps",
        "RX bit/s",
        "TX bit/s",
        "RX pkts",
        "TX pkts",
        "RX missed",
        "DROPS",
        "DEVICE",
    ]);
    for p in v.as_array().into_iter().flatten() {
        tb.row(vec![
            t(&p["name"]),
            t(&p["bond"]),
            t(&p["link"]),
            rate(&p["rx_pps"]),
            rate(&p["tx_pps"]),
            rate(&p["rx_bps"]),
            rate(&p["tx_bps"]),
            t(&p["rx_packets"]),
            t(&p["tx_packets"]),
            t(&p["rx_missed"]),
            t(&p["drops"]),
            t(&p["device"]),
        ]);
    }
    tb.render("")
}

fn render_stats(v: &Value) -> String {
    let mut tb = Table::new(&[
        "PORT",
        "PMD rx",
        "PMD tx",
        "rx missed",
        "rx errors",
        "tx errors",
        "workers rx",
        "workers tx",
        "not collecting",
        "bond down",
        "tx full",
        "slow to control",
    ]);
    for p in v["ports"].as_array().into_iter().flatten() {
        let (d, w) = (&p["pmd"], &p["workers"]);
        tb.row(vec![
            t(&p["name"]),
            t(&d["rx_packets"]),
            t(&d["tx_packets"]),
            t(&d["rx_missed"]),
            t(&d["rx_errors"]),
            t(&d["tx_errors"]),
            t(&w["rx"]),
            t(&w["tx"]),
            t(&w["drop_not_collecting"]),
            t(&w["drop_bond_down"]),
            t(&w["drop_tx_full"]),
            t(&w["slow_to_control"]),
        ]);
    }
    let mut s = tb.render("");
    let mut wt = Table::new(&[
        "WORKER",
        "loops",
        "busy polls",
        "idle polls",
        "rx",
        "tx",
        "drops",
        "cycles/pkt",
    ]);
    for w in v["workers"].as_array().into_iter().flatten() {
        wt.row(vec![
            t(&w["index"]),
            t(&w["loops"]),
            t(&w["busy_polls"]),
            t(&w["idle_polls"]),
            t(&w["rx"]),
            t(&w["tx"]),
            t(&w["drops"]),
            w["cycles_per_packet"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.0}")),
        ]);
    }
    s += "\n";
    s += &wt.render("");
    if let Some(ifs) = v["interfaces"].as_array() {
        s += "\n";
        s += &render_iface_rows(ifs.iter().map(|i| (i, i)));
    }
    s
}

fn render_iface_rows<'a>(it: impl Iterator<Item = (&'a Value, &'a Value)>) -> String {
    let mut tb = Table::new(&[
        "INTERFACE",
        "TAP",
        "rx",
        "forwarded",
        "to kernel",
        "policed",
        "ring full",
        "drops",
        "egress failed",
    ]);
    let sum = |v: &Value| -> u64 {
        v.as_object()
            .map(|o| o.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    for (i, c) in it {
        tb.row(vec![
            t(&i["name"]),
            t(&i["tap"]),
            t(&c["rx"]),
            t(&c["forwarded"]),
            sum(&c["exceptions"]).to_string(),
            sum(&c["policed"]).to_string(),
            t(&c["exception_ring_full"]),
            sum(&c["drops"]).to_string(),
            t(&c["egress_failed"]),
        ]);
    }
    tb.render("")
}

fn render_interfaces(v: &Value) -> String {
    let rows: Vec<(&Value, &Value)> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (i, &i["counters"]))
        .collect();
    render_iface_rows(rows.into_iter())
}

fn render_routes(v: &Value) -> String {
    let mut s = format!(
        "FIB version {}: {} IPv4 and {} IPv6 prefixes routed, {} routes and {} neighbors mirrored from the kernel\n",
        t(&v["fib_version"]),
        t(&v["routes_v4"]),
        t(&v["routes_v6"]),
        t(&v["kernel_routes"]),
        t(&v["kernel_neighbors"])
    );
    let mut tb = Table::new(&["PREFIX", "ORIGIN", "INTERFACE", "GATEWAY", "ACTIVE"]);
    for r in v["routes"].as_array().into_iter().flatten() {
        tb.row(vec![
            t(&r["prefix"]),
            t(&r["origin"]),
            t(&r["interface"]),
            r["gateway"].as_str().unwrap_or("direct").to_string(),
            t(&r["active"]),
        ]);
    }
    s += &tb.render("");
    s
}

fn render_event(e: &Value) -> String {
    if e["machine"] == "Admin" {
        return format!(
            "{} {} {}: {}",
            t(&e["at"]),
            t(&e["bond"]),
            t(&e["member"]),
            t(&e["to"])
        );
    }
    format!(
        "{} {} {}: {} {} -> {} ({})",
        t(&e["at"]),
        t(&e["bond"]),
        t(&e["member"]),
        t(&e["machine"]),
        t(&e["from"]),
        t(&e["to"]),
        t(&e["cause"])
    )
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes the capture as libpcap (microsecond timestamps, LINKTYPE_ETHERNET). Returns
/// (frames, received, sent).
fn write_pcap(v: &Value, path: &Path) -> Result<(usize, usize, usize), AnyError> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    let (mut n, mut rx, mut tx) = (0, 0, 0);
    for f in v["frames"].as_array().into_iter().flatten() {
        let bytes = f["hex"]
            .as_str()
            .and_then(unhex)
            .ok_or("capture: bad frame bytes from the server")?;
        let at: u128 = f["at_ns"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or("capture: bad timestamp from the server")?;
        let orig = f["orig_len"].as_u64().unwrap_or(bytes.len() as u64) as u32;
        out.extend_from_slice(&((at / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((at / 1000 % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&orig.max(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
        n += 1;
        if f["direction"] == "tx" {
            tx += 1;
        } else {
            rx += 1;
        }
    }
    std::fs::write(path, out).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((n, rx, tx))
}

/// `ctl reload`: the changes applied, one per line.
fn reload_text(v: &Value) -> String {
    let changes: Vec<&str> = v["changes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if changes.is_empty() {
        return "reload: the configuration file matches what runs; nothing changed\n".to_owned();
    }
    let mut s = format!("reload applied ({} change(s)):\n", changes.len());
    for c in changes {
        s.push_str("  - ");
        s.push_str(c);
        s.push('\n');
    }
    s
}
