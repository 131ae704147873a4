//! The management API's server side: the socket transport ([`server`]), the [`Handler`]
//! that answers typed [`api::Request`]s (the control thread is one; [`Standalone`] answers
//! when there is no control thread), and the [`Hub`] through which the main thread hands
//! the socket and fresh counters to whoever serves.

pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as WallInstant};

use api::{PortView, Reply, Request, Stats};
use arc_swap::ArcSwapOption;

pub use server::{BindError, Server};

use crate::status::Snapshot;

/// Answers management requests.
pub trait Handler {
    /// The result of `req`, or why there is none (for people).
    fn handle(&mut self, req: Request) -> Result<Reply, String>;
}

/// What the main thread hands the control thread for the API: the listening socket and
/// fresh counter snapshots.
pub struct Hub {
    pending: AtomicBool,
    server: Mutex<Option<Server>>,
    snapshot: ArcSwapOption<Rated>,
    started: WallInstant,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            pending: AtomicBool::new(false),
            server: Mutex::new(None),
            snapshot: ArcSwapOption::empty(),
            started: WallInstant::now(),
        }
    }
}

/// A counter snapshot with per-port rates over the last second or so.
pub struct Rated {
    /// The counters.
    pub now: Snapshot,
    /// Per port (same order as `now.ports`): rx pps, tx pps, rx bit/s, tx bit/s.
    pub rates: Vec<[f64; 4]>,
    /// When `now` was taken.
    pub at: WallInstant,
    /// Start of the current rate window.
    base: (Snapshot, WallInstant),
}

impl Hub {
    /// Hands the control thread a bound socket.
    pub fn serve(&self, server: Server) {
        *self.server.lock().expect("hub lock") = Some(server);
        self.pending.store(true, Ordering::Release);
    }

    /// The socket handed over with [`Hub::serve`], once.
    pub fn take_server(&self) -> Option<Server> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        // Only ever contended with `serve`, once.
        self.server.lock().ok()?.take()
    }

    /// Publishes fresh counters (the main thread calls this every few tens of ms). Rates
    /// are computed over windows of at least a second and kept between windows.
    pub fn publish(&self, snap: Snapshot) {
        let at = WallInstant::now();
        let old = self.snapshot.load_full();
        let (rates, base) = match old.as_ref() {
            None => (vec![[0.0; 4]; snap.ports.len()], (snap.clone(), at)),
            Some(o) if at.duration_since(o.base.1) >= Duration::from_secs(1) => {
                let (p, t) = &o.base;
                let dt = at.duration_since(*t).as_secs_f64();
                let rates = snap
                    .ports
                    .iter()
                    .map(|c| {
                        let Some(o) = p.ports.iter().find(|o| o.name == c.name) else {
                            return [0.0; 4];
                        };
                        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                        [
                            d(c.pmd.rx_packets, o.pmd.rx_packets),
                            d(c.pmd.tx_packets, o.pmd.tx_packets),
                            8.0 * d(c.pmd.rx_bytes, o.pmd.rx_bytes),
                            8.0 * d(c.pmd.tx_bytes, o.pmd.tx_bytes),
                        ]
                    })
                    .collect();
                (rates, (snap.clone(), at))
            }
            Some(o) => (o.rates.clone(), o.base.clone()),
        };
        self.snapshot.store(Some(Arc::new(Rated {
            now: snap,
            rates,
            at,
            base,
        })));
    }

    /// The latest counters with their rates.
    pub fn counters(&self) -> Option<Arc<Rated>> {
        self.snapshot.load_full()
    }
}

/// `show ports` from a counter snapshot; `bond_of` names the bond a port is a member of.
pub fn ports_view(c: &Rated, bond_of: &dyn Fn(&str) -> Option<String>) -> Vec<PortView> {
    c.now
        .ports
        .iter()
        .zip(&c.rates)
        .map(|(p, r)| PortView {
            name: p.name.clone(),
            device: p.device.clone(),
            link: p.link.clone(),
            bond: bond_of(&p.name),
            rx_packets: p.pmd.rx_packets,
            tx_packets: p.pmd.tx_packets,
            rx_bytes: p.pmd.rx_bytes,
            tx_bytes: p.pmd.tx_bytes,
            rx_missed: p.pmd.rx_missed,
            rx_errors: p.pmd.rx_errors,
            tx_errors: p.pmd.tx_errors,
            rx_pps: r[0],
            tx_pps: r[1],
            rx_bps: r[2],
            tx_bps: r[3],
            drops: p.workers.drops(),
            workers: p.workers,
        })
        .collect()
}

/// `show stats` from the hub's latest counters.
pub fn stats(hub: &Hub) -> Result<Stats, String> {
    let c = hub
        .counters()
        .ok_or("no counters yet; try again in a moment")?;
    Ok(Stats {
        snapshot: c.now.clone(),
        age_ms: Some(c.at.elapsed().as_secs_f64() * 1e3),
    })
}

/// Answers from the main thread when there is no control thread (no bond, no router):
/// liveness and counters only.
pub struct Standalone<'a>(pub &'a Hub);

impl Handler for Standalone<'_> {
    fn handle(&mut self, req: Request) -> Result<Reply, String> {
        let hub = self.0;
        match req {
            Request::Ping {} => Ok(Reply::Pong(api::Pong {
                uptime_ms: hub.started.elapsed().as_millis() as u64,
            })),
            Request::Bonds {} => Ok(Reply::Bonds(Vec::new())),
            Request::Stats {} => stats(hub).map(|s| Reply::Stats(Box::new(s))),
            Request::Ports {} => Ok(Reply::Ports(
                hub.counters()
                    .map_or_else(Vec::new, |c| ports_view(&c, &|_| None)),
            )),
            other => Err(format!(
                "{other:?}: this fastlag has no bond and no router (xconnect between ports); only ping, show bonds and show stats apply"
            )),
        }
    }
}
