//! `fastlag run`'s main thread: binds the management socket and the metrics endpoint
//! before DPDK starts (a taken path or port is an error at once), starts the runtime,
//! then every 50 ms hands the control thread fresh counters, writes the `--status` file and
//! the metrics snapshot, applies SIGHUP reloads and logs rates; SIGINT/SIGTERM stop it in
//! order; `fastlag ctl restart` or SIGUSR2 stop it for a planned restart (docs/restart.md).
//! Under a service manager it tells it READY, STATUS, RELOADING (an exec restart) and
//! STOPPING ([`notify`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mgmt::{self, Standalone};
use crate::notify::{self, Heartbeat};
use crate::plan::{Host, Plan};
use crate::runtime::{Runtime, RuntimeError};
use crate::status::Scrape;
use crate::{metrics, report};

/// How `fastlag run` was asked to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// The configuration file (reloaded on SIGHUP).
    pub config: &'a Path,
    /// Where to write the final counters and the pool check at exit.
    pub report: Option<&'a Path>,
    /// Where to keep the status file while running.
    pub status: Option<&'a Path>,
    /// fastlag's log level (DPDK's follows it).
    pub log: tracing::Level,
}

/// An error that ends `fastlag run` before or while it starts.
pub type Error = Box<dyn std::error::Error>;

/// How `fastlag run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SIGINT/SIGTERM; `clean`: every mbuf back, no error.
    Stopped {
        /// Stopped cleanly.
        clean: bool,
    },
    /// Planned restart: the handoff state file is written and everything of this process
    /// is released; the caller execs the new binary or exits (status 75).
    Restart {
        /// `[management] restart`.
        mode: conf::RestartMode,
        /// The CPUs the process could use when it started (before EAL pinned the main
        /// thread): what the new binary must start with.
        cpus: Vec<usize>,
    },
}

/// Exit status of `fastlag run` in `restart = "exit"` mode (EX_TEMPFAIL): the service
/// manager starts it again.
pub const RESTART_EXIT_CODE: u8 = 75;

/// Runs until SIGINT or SIGTERM (or a planned restart).
pub fn run(opts: RunOptions<'_>) -> Result<Outcome, Error> {
    let file = opts.config;
    // Before EAL narrows the main thread to one core: the set a new binary gets back.
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    // First: a SIGINT/SIGTERM from here on, start-up included, is a clean stop (start-up
    // stops between steps and undoes what it started).
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    // A planned restart asked for during start-up (its default action would kill the
    // process) is carried out once running.
    let usr2 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, usr2.clone())?;
    let cfg = conf::load_with(file, &crate::limits())
        .map_err(|e| format!("invalid configuration:\n{e}"))?;
    // Under a service manager (NOTIFY_SOCKET): readiness, status, watchdog (see notify).
    notify::init();
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
            metrics::Server::start(addr, server.as_ref().map(mgmt::Server::stats))
                .map_err(|e| format!("management.metrics: cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let plan = Plan::new(&cfg, &Host::current(opts.log));
    let rt = match Runtime::start_plan_until(plan, Some(file), stop.clone()) {
        Ok(rt) => rt,
        Err(RuntimeError::Interrupted) => {
            tracing::info!("stop requested during start-up: stopped before forwarding began");
            return Ok(Outcome::Stopped { clean: true });
        }
        Err(e) => return Err(e.into()),
    };
    // The control thread serves the socket; without one (no bond, no router) the main
    // thread answers the few questions that apply (ping, counters).
    let (hub, mut local_server) = match (rt.management().cloned(), server) {
        (Some(h), Some(server)) => {
            h.serve(server);
            (Some(h), None)
        }
        (None, Some(server)) => {
            tracing::info!(path = %server.path().display(), "management socket ready (fastlag ctl; no bond and no router: counters only)");
            (Some(Arc::default()), Some(server))
        }
        (h, None) => (h, None),
    };
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    let mut restart = false;
    let mut sequence = 0u64;
    tracing::info!(
        workers = cfg.dataplane.worker_cores.len(),
        ports = cfg.ports.len(),
        "fastlag running; SIGINT or SIGTERM stops it, SIGHUP reloads the configuration, SIGUSR2 restarts it"
    );
    // Without a control thread this loop is the one whose progress the service manager's
    // watchdog stands for; with one, the control thread notifies (see notify::Heartbeat).
    let mut heartbeat = rt.management().is_none().then(Heartbeat::new);
    let interval = Duration::from_secs(cfg.dataplane.stats_interval_s as u64);
    let mut next_stats = Instant::now() + interval;
    let mut last = rt.snapshot();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(hb) = heartbeat.as_mut() {
            hb.state(|| notify::status_line(&rt.status(), cfg.ports.len()));
            hb.beat();
        }
        if let Some(h) = &hub {
            h.publish(rt.snapshot());
            if let Some(s) = local_server.as_mut() {
                s.serve(&mut Standalone(h));
            }
        }
        if usr2.swap(false, Ordering::Relaxed) {
            if cfg.management.state_file.is_some() {
                // The new process reads the file anew: one that does not validate would not
                // start.
                match conf::load_with(file, &crate::limits()) {
                    Ok(_) => {
                        tracing::info!(mode = %cfg.management.restart, "SIGUSR2: planned restart");
                        restart = true;
                    }
                    Err(e) => {
                        tracing::warn!(file = %file.display(), "SIGUSR2: planned restart refused, the configuration file does not validate (the new process would not start):\n{e}")
                    }
                }
            } else {
                tracing::warn!("SIGUSR2: a planned restart needs [management] state_file in the configuration; ignored");
            }
        }
        if restart || rt.restart_requested() {
            restart = true;
            break;
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
        if opts.status.is_some() || metrics.is_some() {
            sequence += 1;
            let scrape = Scrape {
                sequence,
                control: rt.status(),
                counters: rt.snapshot(),
            };
            if let Some(path) = opts.status {
                write_status(&scrape, path);
            }
            if let Some(m) = &metrics {
                m.publish(Arc::new(scrape));
            }
        }
        if !interval.is_zero() && Instant::now() >= next_stats {
            let now = rt.snapshot();
            report::log_rates(&last, &now, interval);
            last = now;
            next_stats += interval;
        }
    }
    let fin = if restart {
        if cfg.management.restart == conf::RestartMode::Exec {
            // The same PID comes back and says READY=1: to the service manager a reload.
            notify::restarting();
        } else {
            notify::stopping();
        }
        tracing::info!("stopping for a planned restart: no out-of-sync LACPDUs");
        rt.shutdown_for_restart()
    } else {
        notify::stopping();
        tracing::info!("stopping");
        rt.shutdown(Vec::new())
    };
    report::log_final(&fin);
    if let Some(path) = opts.report {
        std::fs::write(path, serde_json::to_string_pretty(&fin)?)
            .map_err(|e| format!("writing report {}: {e}", path.display()))?;
    }
    if !fin.clean() {
        for e in &fin.errors {
            tracing::error!("{e}");
        }
    }
    if restart {
        // The socket of a counters-only process (the control thread's went with it).
        drop(local_server);
        drop(metrics);
        return Ok(Outcome::Restart {
            mode: cfg.management.restart,
            cpus,
        });
    }
    Ok(Outcome::Stopped { clean: fin.clean() })
}

/// Writes the `--status` file atomically (a temporary file, then rename).
fn write_status(scrape: &Scrape, path: &Path) {
    let tmp = path.with_extension("tmp");
    let ok = serde_json::to_vec_pretty(&scrape.status_file())
        .ok()
        .and_then(|json| std::fs::write(&tmp, json).ok())
        .and_then(|()| std::fs::rename(&tmp, path).ok());
    if ok.is_none() {
        tracing::warn!(path = %path.display(), "could not write the status file");
    }
}
