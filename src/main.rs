//! fastlag: a userspace DPDK gateway fast path with native IEEE 802.1AX link aggregation.

#![forbid(unsafe_code)]

mod ctl;
mod demo;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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

fn run(
    file: &Path,
    report: Option<&Path>,
    status: Option<&Path>,
    log: tracing::Level,
) -> Result<ExitCode, AnyError> {
    let clean = control::daemon::run(control::daemon::RunOptions {
        config: file,
        report,
        status,
        log,
    })?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
