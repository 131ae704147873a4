//! `fastlag ctl`: the management API's client. Sends one typed request over the Unix
//! socket (docs/management.md, `api::Request`) and prints the answer as tables for people
//! (`api::render`), or as the server's JSON with `--json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use api::client::Client;
use api::{render, Request};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;

/// `fastlag ctl` arguments.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// Management socket (default: management.socket of --config, else
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
    /// Planned restart without LACP renegotiation: the running fastlag writes its LACP
    /// state to management.state_file, sends no out-of-sync LACPDUs, and execs itself
    /// (or exits with status 75 for the service manager); the new process takes the state
    /// over (docs/restart.md).
    Restart {
        /// Wait until the new process answers on the socket (at most 60 s).
        #[arg(long)]
        wait: bool,
    },
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
        /// Drain even the bond's last distributing member (stops all traffic on the bond).
        #[arg(long)]
        force: bool,
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

fn socket_path(a: &CtlArgs) -> Result<PathBuf, AnyError> {
    if let Some(s) = &a.socket {
        return Ok(s.clone());
    }
    if let Some(c) = &a.config {
        let cfg =
            conf::load_with(c, &control::limits()).map_err(|e| format!("{}:\n{e}", c.display()))?;
        return Ok(cfg.management.socket);
    }
    Ok(PathBuf::from(conf::DEFAULT_SOCKET))
}

/// Sends `req`; prints the server's JSON (`--json`) or `human` of the typed answer.
fn show<T: DeserializeOwned>(
    c: &mut Client,
    json: bool,
    req: &Request,
    human: impl Fn(&T) -> String,
) -> Result<(), AnyError> {
    if json {
        let v = c.call_json(req)?;
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let v: T = c.call(req)?;
        out!("{}", human(&v));
    }
    Ok(())
}

/// After `ctl restart`: waits until a process that started after `asked` answers a ping on
/// `path`; returns the time since `asked`.
fn wait_restarted(
    path: &std::path::Path,
    asked: std::time::Instant,
    timeout: Duration,
) -> Option<Duration> {
    while asked.elapsed() < timeout {
        if let Ok(mut c) = Client::connect(path) {
            if let Ok(p) = c.call::<api::Pong>(&Request::Ping {}) {
                if u128::from(p.uptime_ms) < asked.elapsed().as_millis() {
                    return Some(asked.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Runs `fastlag ctl`.
pub(crate) fn run(a: CtlArgs) -> Result<ExitCode, AnyError> {
    let path = socket_path(&a)?;
    let mut c = Client::connect(&path)?;
    let json = a.json;
    match a.command {
        CtlCommand::Ping => show(&mut c, json, &Request::Ping {}, render::pong)?,
        CtlCommand::Show(Show::Bonds) => show(&mut c, json, &Request::Bonds {}, |v: &Vec<_>| {
            render::bonds(v)
        })?,
        CtlCommand::Show(Show::Bond { name }) => {
            show(&mut c, json, &Request::Bond { name }, render::bond)?
        }
        CtlCommand::Show(Show::Lacp { name, detail }) => {
            show(&mut c, json, &Request::Lacp { bond: name }, |v: &Vec<_>| {
                render::lacp(v, detail)
            })?
        }
        CtlCommand::Show(Show::Ports) => show(&mut c, json, &Request::Ports {}, |v: &Vec<_>| {
            render::ports(v)
        })?,
        CtlCommand::Show(Show::Stats) => show(&mut c, json, &Request::Stats {}, render::stats)?,
        CtlCommand::Show(Show::Interfaces) => {
            show(&mut c, json, &Request::Interfaces {}, |v: &Vec<_>| {
                render::interfaces(v)
            })?
        }
        CtlCommand::Show(Show::Routes) => show(&mut c, json, &Request::Routes {}, render::routes)?,
        CtlCommand::Show(Show::Events { name, follow }) => {
            let mut since: u64 = 0;
            loop {
                let req = Request::Events {
                    bond: name.clone(),
                    since_ns: Some(since),
                };
                let events: Vec<api::EventView> = c.call(&req)?;
                for e in &events {
                    if json {
                        outln!("{}", serde_json::to_string(e)?);
                    } else {
                        outln!("{}", render::event(e));
                    }
                    if let Ok(t) = e.at_ns.parse::<u64>() {
                        since = since.max(t);
                    }
                }
                // A reader that went away (`| head`) ends the follow.
                if !follow || crate::output::stdout_closed() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        CtlCommand::Why { bond } => show(&mut c, json, &Request::Why { bond }, render::why)?,
        CtlCommand::Capture { bond, slow, write } => {
            if !slow {
                return Err("only slow-protocol frames are kept: add --slow".into());
            }
            let v: api::CaptureView = c.call(&Request::Capture { bond: bond.clone() })?;
            let (bytes, rx, tx) = render::pcap(&v)?;
            std::fs::write(&write, bytes)
                .map_err(|e| format!("writing {}: {e}", write.display()))?;
            let n = rx + tx;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"file": write.display().to_string(), "frames": n, "rx": rx, "tx": tx})
                );
            } else {
                outln!(
                    "{}: {n} frames of bond {bond} ({rx} received, {tx} sent, oldest first)",
                    write.display()
                );
            }
        }
        CtlCommand::Member(MemberCmd::Drain {
            bond,
            member,
            force,
        }) => show(
            &mut c,
            json,
            &Request::Drain {
                bond,
                member,
                force,
            },
            render::drain,
        )?,
        CtlCommand::Member(MemberCmd::Undrain { bond, member }) => show(
            &mut c,
            json,
            &Request::Undrain { bond, member },
            render::drain,
        )?,
        CtlCommand::Reload => show(&mut c, json, &Request::Reload {}, render::reload)?,
        CtlCommand::Restart { wait } => {
            let asked = std::time::Instant::now();
            let v: api::RestartView = c.call(&Request::Restart {})?;
            drop(c);
            if json && !wait {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if !json {
                print!("{}", render::restart(&v));
            }
            if wait {
                let up = wait_restarted(&path, asked, Duration::from_secs(60))
                    .ok_or("no new fastlag answered on the socket within 60 s")?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"restart": v, "answered_after_ms": up.as_millis() as u64})
                    );
                } else {
                    println!(
                        "restart: the new process answers on {} ({} ms after the request)",
                        path.display(),
                        up.as_millis()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
