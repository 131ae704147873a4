//! fastlag: a userspace DPDK gateway fast path with native IEEE 802.1AX link aggregation.

#![forbid(unsafe_code)]

mod ctl;
mod demo;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use control::{control_loop, metrics, mgmt, report, runtime};

/// Userspace DPDK gateway fast path with native IEEE 802.1AX (802.3ad) link aggregation.
#[derive(Debug, Parser)]
#[command(name = "fastlag", version, about, long_about = None)]
struct Cli {
    /// Log verbosity (RUST_LOG, when set, overrides it).
    #[arg(long, value_enum, default_value_t = LogLevel::Info, global = true)]
    log_level: LogLevel,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn level(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the fast path described by a config file until SIGINT or SIGTERM.
    Run {
        /// Configuration file (TOML); see conf/*.toml for commented examples.
        #[arg(long, short)]
        config: PathBuf,
        /// On exit, write the final counters and the packet pool check as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// While running, keep the bonds' state (members, LACP, reasons) and the port and
        /// worker counters in this JSON file, rewritten atomically every 100 ms.
        #[arg(long)]
        status: Option<PathBuf>,
    },
    /// Validate a config file: print a summary and exit 0, or the errors and exit 1.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Ask a running fastlag (over its management socket): show bonds, LACP, why a member
    /// is not distributing, counters, events; capture LACPDUs; drain members.
    Ctl(ctl::CtlArgs),
    /// Run the built-in demonstration on virtual devices (no NIC needed): two 802.3ad bonds
    /// negotiate over in-process links, carry generated traffic, lose a link and get it
    /// back, with a live view and a summary (about 30 s).
    Demo {
        /// Seconds of traffic in each phase (before, during and after the link failure).
        #[arg(long, default_value_t = 4)]
        phase_seconds: u64,
        /// Use this config instead of the embedded default (its unclaimed ring link ends
        /// get the generator).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn init_logging(level: LogLevel) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{}", level.level()).to_lowercase())
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level);
    let result = match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Run {
            config,
            report,
            status,
        } => run(
            &config,
            report.as_deref(),
            status.as_deref(),
            cli.log_level.level(),
        ),
        Command::Ctl(args) => ctl::run(args),
        Command::Demo {
            phase_seconds,
            config,
        } => demo::run(
            config.as_deref(),
            Duration::from_secs(phase_seconds),
            cli.log_level.level(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fastlag: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

fn check_config(file: &Path) -> Result<ExitCode, AnyError> {
    match conf::load(file) {
        Ok(cfg) => {
            println!("{}: OK", file.display());
            print!("{}", cfg.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprint!("{e}");
            if !e.to_string().ends_with('\n') {
                eprintln!();
            }
            let n = e.diagnostics.len();
            eprintln!(
                "{}: {n} error{}",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The `--status` file: the control thread's bond view plus live port and worker counters.
#[derive(serde::Serialize)]
struct StatusFile<'a> {
    /// The snapshot's number (the metrics endpoint serves it as fastlag_status_sequence).
    sequence: u64,
    #[serde(flatten)]
    control: &'a control_loop::Status,
    ports: Vec<runtime::PortSnapshot>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<runtime::IfaceSnapshot>,
    workers: Vec<runtime::WorkerSnapshot>,
}

fn write_status(scrape: &metrics::Scrape, path: &Path) {
    let tmp = path.with_extension("tmp");
    let snap = &scrape.counters;
    let file = StatusFile {
        sequence: scrape.sequence,
        control: &scrape.control,
        ports: snap.ports.clone(),
        interfaces: snap.interfaces.clone(),
        workers: snap.workers.clone(),
    };
    let ok = serde_json::to_vec_pretty(&file)
        .ok()
        .and_then(|json| std::fs::write(&tmp, json).ok())
        .and_then(|()| std::fs::rename(&tmp, path).ok());
    if ok.is_none() {
        tracing::warn!(path = %path.display(), "could not write the status file");
    }
}

fn run(
    file: &Path,
    report: Option<&Path>,
    status: Option<&Path>,
    log: tracing::Level,
) -> Result<ExitCode, AnyError> {
    let cfg = conf::load(file).map_err(|e| format!("invalid configuration:\n{e}"))?;
    // Bound before anything starts: a socket in use is reported at once.
    let server = match mgmt::Server::bind(&cfg.management.socket) {
        Ok(s) => Some(s),
        // The default path may not be writable (not root): run without the API, say so.
        Err(e @ mgmt::BindError::Io { .. })
            if cfg.management.socket == Path::new(conf::DEFAULT_SOCKET) =>
        {
            tracing::warn!("{e}; running without the management API (set [management] socket to a writable path)");
            None
        }
        Err(e) => return Err(e.into()),
    };
    // Bound before DPDK starts: a taken port is an error at once.
    let metrics = match cfg.management.metrics {
        Some(addr) => Some(
            metrics::Server::start(addr)
                .map_err(|e| format!("management.metrics: cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let rt = runtime::Runtime::start_with_file(&cfg, Some(file), log)?;
    // The control thread serves the socket; without one (no bond, no router) the main
    // thread answers the few questions that apply (ping, counters).
    let (hub, mut local_server) = match (rt.management().cloned(), server) {
        (Some(h), Some(server)) => {
            h.serve(server);
            (Some(h), None)
        }
        (None, Some(server)) => {
            tracing::info!(path = %server.path().display(), "management socket ready (fastlag ctl; no bond and no router: counters only)");
            (Some(Default::default()), Some(server))
        }
        (h, None) => (h, None),
    };
    let stop = rt.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let hup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    let mut sequence = 0u64;
    tracing::info!(
        workers = cfg.dataplane.worker_cores.len(),
        ports = cfg.ports.len(),
        "fastlag running; SIGINT or SIGTERM stops it, SIGHUP reloads the configuration"
    );
    let interval = Duration::from_secs(cfg.dataplane.stats_interval_s as u64);
    let mut next_stats = Instant::now() + interval;
    let mut last = rt.snapshot();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(h) = &hub {
            h.publish(rt.snapshot());
            if let Some(s) = local_server.as_mut() {
                s.serve_without_control(h);
            }
        }
        if hup.swap(false, Ordering::Relaxed) {
            tracing::info!(file = %file.display(), "SIGHUP: reloading the configuration");
            // The control thread applies it and logs the outcome.
            match rt.reload() {
                Some(reply) => {
                    let _ = reply.recv_timeout(Duration::from_secs(10));
                }
                None => {
                    tracing::warn!("nothing to reload: no bond and no router in this configuration")
                }
            }
        }
        if status.is_some() || metrics.is_some() {
            sequence += 1;
            let scrape = metrics::Scrape {
                sequence,
                control: rt.status(),
                counters: rt.snapshot(),
            };
            if let Some(path) = status {
                write_status(&scrape, path);
            }
            if let Some(m) = &metrics {
                m.publish(std::sync::Arc::new(scrape));
            }
        }
        if !interval.is_zero() && Instant::now() >= next_stats {
            let now = rt.snapshot();
            report::log_rates(&last, &now, interval);
            last = now;
            next_stats += interval;
        }
    }
    tracing::info!("stopping");
    let fin = rt.shutdown(Vec::new());
    report::log_final(&fin);
    if let Some(path) = report {
        std::fs::write(path, serde_json::to_string_pretty(&fin)?)
            .map_err(|e| format!("writing report {}: {e}", path.display()))?;
    }
    if fin.clean() {
        Ok(ExitCode::SUCCESS)
    } else {
        for e in &fin.errors {
            tracing::error!("{e}");
        }
        Ok(ExitCode::FAILURE)
    }
}
