//! fastlag: a userspace DPDK gateway fast path with native IEEE 802.1AX link aggregation.

#![forbid(unsafe_code)]

#[macro_use]
mod output;
mod ctl;
mod demo;
mod generate;

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
    /// Run the fast path described by a config file until SIGINT or SIGTERM (SIGHUP
    /// reloads it; SIGUSR2 or `fastlag ctl restart` restarts it without LACP renegotiation
    /// when management.state_file is set; docs/restart.md).
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
    /// Measure fastlag's own per-packet cost in a closed loop on one pinned worker (no
    /// generator in the measured path): one scenario per run; `benches/loop.py` runs them
    /// all next to testpmd and DPDK's l3fwd.
    Bench(BenchArgs),
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
    /// Write man pages or shell completions (for packaging; scripts/package.sh).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: generate::Generate,
    },
}

/// `fastlag bench` arguments.
#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// The scenario to run (see --list).
    #[arg(long, short, required_unless_present = "list")]
    scenario: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Print the scenario's configuration and exit.
    #[arg(long)]
    print_config: bool,
    /// Write the scenario's frames as a pcap file and exit (the harness feeds DPDK's
    /// l3fwd with the same file).
    #[arg(long, value_name = "FILE")]
    write_pcap: Option<PathBuf>,
    /// Frames circulating in a loop scenario.
    #[arg(long, default_value_t = 512)]
    frames: usize,
    /// Distinct flows (frames differ in MAC, addresses, ports).
    #[arg(long, default_value_t = 1024)]
    flows: usize,
    /// Seconds of traffic before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Measure until the worker has sent this many packets instead (for callgrind).
    #[arg(long)]
    packets: Option<u64>,
    /// Seconds the bonds may take to distribute.
    #[arg(long, default_value_t = 15.0)]
    converge: f64,
    /// The control thread's CPU.
    #[arg(long, default_value_t = 0)]
    control_core: usize,
    /// The worker's CPU.
    #[arg(long, default_value_t = 1)]
    worker_core: usize,
    /// Also write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn bench(a: BenchArgs, log: tracing::Level) -> Result<ExitCode, AnyError> {
    use control::bench;
    if a.list {
        for s in bench::scenarios() {
            outln!("{:<22} {} (reference: {})", s.name, s.what, s.reference);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let s = bench::find(a.scenario.as_deref().unwrap_or_default())?;
    let dir = std::env::temp_dir().join(format!("fastlag-bench-{}", std::process::id()));
    let cores = bench::Cores {
        control: a.control_core,
        worker: a.worker_core,
    };
    if let Some(path) = &a.write_pcap {
        bench::write_pcap(path, &bench::scenario_frames(&s, a.flows))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.print_config {
        out!(
            "{}",
            bench::config_text(&s, &cores, &dir.join(format!("{}.pcap", s.name)))
        );
        return Ok(ExitCode::SUCCESS);
    }
    let secs = |x: f64| Duration::from_secs_f64(x.max(0.0));
    let result = bench::run(
        &s,
        &bench::Options {
            cores,
            frames: a.frames,
            flows: a.flows,
            warmup: secs(a.warmup),
            seconds: secs(a.seconds),
            packets: a.packets,
            converge: secs(a.converge),
            dir: dir.clone(),
            log,
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    let r = result?;
    outln!(
        "{:<22} {:>8.2} Mpps  {:>7.1} busy cycles/packet  busy {:>5.1}%  sending: {}  drops {}{}",
        r.scenario,
        r.mpps,
        r.busy_cycles_per_packet,
        r.busy_share * 100.0,
        r.ports_sending.join(","),
        r.drops,
        if r.clean { "" } else { "  (NOT CLEAN)" }
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(if r.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

/// What `fastlag --version` prints: fastlag's version, the DPDK it was built against and
/// the DPDK it runs with (they differ after a DPDK upgrade without a rebuild).
fn long_version() -> String {
    let built = dpdk::build_version();
    let running = dpdk::runtime_version();
    let note = if running == built {
        ""
    } else {
        " (differs from the build: rebuild against the installed DPDK)"
    };
    format!(
        "{}\nDPDK built against: {built}\nDPDK running with:  {running}{note}",
        env!("CARGO_PKG_VERSION")
    )
}

fn main() -> ExitCode {
    let version: &'static str = Box::leak(long_version().into_boxed_str());
    let matches = <Cli as clap::CommandFactory>::command()
        .version(version)
        .get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
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
        Command::Bench(args) => bench(args, cli.log_level.level()),
        Command::Demo {
            phase_seconds,
            config,
        } => demo::run(
            config.as_deref(),
            Duration::from_secs(phase_seconds),
            cli.log_level.level(),
        ),
        Command::Generate { what } => generate::run(what, <Cli as clap::CommandFactory>::command()),
    };
    match result {
        // Output lost to a write error (not a closed pipe, which ends quietly).
        Ok(_) if output::stdout_failed() => ExitCode::FAILURE,
        Ok(code) => code,
        Err(e) => {
            // Names and paths from the command line or a server: no raw control characters.
            errln!("fastlag: error: {}", printable_lines(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

/// `text` line by line with control characters escaped ([`conf::printable`]), the line
/// breaks kept.
fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(|l| conf::printable(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_config(file: &Path) -> Result<ExitCode, AnyError> {
    // The file's name as given, control characters escaped like in the diagnostics.
    let name = file.display().to_string();
    let name = conf::printable(&name);
    match conf::load_with(file, &control::limits()) {
        Ok(cfg) => {
            outln!("{name}: OK");
            out!("{}", printable_lines(&cfg.summary()));
            let est = conf::memory_estimate(&cfg, &control::limits());
            outln!(
                "memory: about {} MiB of memory_mb = {} needed (packet pool, rings, caches, ports, EAL)",
                est.total_mib,
                cfg.dataplane.memory_mb
            );
            host_notes(&cfg);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            errln!("{e}");
            let n = e.diagnostics.len();
            errln!("{name}: {n} error{}", if n == 1 { "" } else { "s" });
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The checks `fastlag run` makes against its host (CPUs, memory, TAP names), made here
/// against this host: warnings, not errors, since the file may be meant for another.
fn host_notes(cfg: &conf::Config) {
    use control::plan::{Host, Plan};
    let plan = Plan::new(cfg, &Host::current(tracing::Level::INFO));
    let problems = control::runtime::host_checks(&plan);
    let what = "host-dependent checks (CPUs allowed, memory available, TAP names free; `fastlag run` makes them again on its host)";
    if problems.is_empty() {
        outln!("{what}: OK on this host");
    } else {
        outln!(
            "{what}: {} warning(s) on this host (see stderr)",
            problems.len()
        );
        for p in &problems {
            errln!(
                "fastlag: warning: on this host: {}",
                conf::printable(&p.to_string())
            );
        }
    }
}

fn run(
    file: &Path,
    report: Option<&Path>,
    status: Option<&Path>,
    log: tracing::Level,
) -> Result<ExitCode, AnyError> {
    use control::daemon::{Outcome, RESTART_EXIT_CODE};
    let outcome = control::daemon::run(control::daemon::RunOptions {
        config: file,
        report,
        status,
        log,
    })?;
    match outcome {
        Outcome::Stopped { clean: true } => Ok(ExitCode::SUCCESS),
        Outcome::Stopped { clean: false } => Ok(ExitCode::FAILURE),
        Outcome::Restart {
            mode: conf::RestartMode::Exit,
            ..
        } => {
            tracing::info!(
                status = RESTART_EXIT_CODE,
                "planned restart: exiting for the service manager to start fastlag again"
            );
            Ok(ExitCode::from(RESTART_EXIT_CODE))
        }
        Outcome::Restart {
            mode: conf::RestartMode::Exec,
            cpus,
        } => {
            let e = exec_self(&cpus);
            tracing::error!("planned restart: exec failed ({e}); exiting with status {RESTART_EXIT_CODE} for a service manager");
            Ok(ExitCode::from(RESTART_EXIT_CODE))
        }
    }
}

/// Replaces this process with the binary at this one's path (a package upgrade put the new
/// one there; /proc/self/exe itself would still be the old, deleted file), same arguments,
/// with the CPUs the process started with and no descriptor but stdin, stdout and stderr.
/// Returns only on failure.
fn exec_self(cpus: &[usize]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => {
            let s = p.to_string_lossy();
            PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s).to_string())
        }
        Err(e) => return e,
    };
    // EAL pinned the main thread to one core; exec hands that on to the new EAL, which
    // would find its worker cores "not available".
    if let Err(e) = dpdk::process::set_thread_affinity(cpus) {
        tracing::warn!("could not restore the CPU affinity before exec: {e}");
    }
    if let Err(e) = dpdk::process::close_on_exec_from_3() {
        tracing::warn!("could not mark descriptors close-on-exec: {e}");
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    tracing::info!(binary = %exe.display(), "planned restart: exec");
    std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .exec()
}
