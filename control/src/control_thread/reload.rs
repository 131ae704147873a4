//! Hitless reload (SIGHUP, `fastlag ctl reload`): re-read the config file given to `run`,
//! validate it completely, plan it, and apply the [`diff`](crate::plan::diff) to the
//! running plan while traffic flows — bond members, LACP parameters, min_links, static
//! routes — without touching members or flows that did not change. Anything that needs a
//! restart refuses the reload, naming every such key, and nothing changes; so does a file
//! that does not validate.

use std::path::PathBuf;
use std::sync::mpsc;

use api::ReloadSummary;
use conf::BondMode;
use dataplane::worker::{Egress, PortPlan, SharedPlans};
use dpdk::{Consumer, MacAddr, PortInfo, Producer, RxQueue};

use super::{ControlLoop, Member, MemberParts};
use crate::plan::diff::{diff, Action};
use crate::plan::Plan;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// `run` was started without a config file (the demo).
    #[error("no configuration file to reload")]
    NoFile,
    /// The new file does not validate.
    #[error("the new configuration is invalid; nothing changed:\n{0}")]
    Invalid(conf::ConfigError),
    /// The new file changes keys that only a restart can apply.
    #[error("the new configuration changes keys that need a restart; nothing changed (restart fastlag to apply them, or revert them and reload):\n{}", .0.join("\n"))]
    NeedsRestart(Vec<String>),
    /// Applying failed half way (the LACP engine refused a change it was expected to take).
    #[error("applying the new configuration failed: {0}")]
    Apply(String),
}

/// A reload request from another thread (the main thread on SIGHUP); the result comes back
/// on `reply`.
pub struct ReloadRequest {
    /// Where the result goes.
    pub reply: mpsc::Sender<Result<ReloadSummary, ReloadError>>,
}

/// What a spare port keeps for the day it becomes a bond member.
pub struct SparePort {
    /// Reads its link.
    pub info: PortInfo,
    /// Slow-protocol rings from the workers.
    pub slow: Vec<Consumer>,
    /// Ring to worker 0 (LACPDU fallback path).
    pub via_worker: Option<Producer>,
    /// A steered slow-protocol queue it had as a member (kept until it is one again).
    pub slow_rx: Option<RxQueue>,
    /// The LACP engine port it was until a reload removed it (its final LACPDU may still be
    /// due: the engine defers it while the 3-per-second limit holds).
    pub left_as: Option<lacp::PortId>,
}

/// The control thread's reload state.
pub struct Reloader {
    /// The file `run` was started with.
    pub path: Option<PathBuf>,
    /// The plan now applied.
    pub running: Plan,
    /// Per runtime port index: the spare port's resources while it is not a member.
    pub spares: Vec<Option<SparePort>>,
    /// The workers' per-port plans.
    pub plans: SharedPlans,
    /// Requests from other threads.
    pub requests: Option<mpsc::Receiver<ReloadRequest>>,
    /// Every port's MAC (the source of its LACPDUs), by runtime port index.
    pub macs: Vec<MacAddr>,
    /// Members a reload removed that still collect for [`LEAVE_GRACE`]: (port, bond, until).
    pub leaving: Vec<(usize, usize, std::time::Instant)>,
}

/// How long a member removed by reload keeps accepting ingress after its final LACPDU:
/// the partner moves its traffic away when that LACPDU arrives, frames already on the
/// way still get through.
pub const LEAVE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

impl Reloader {
    /// Queues to hand back at stop (steered slow-protocol queues of former members).
    pub fn take_queues(&mut self) -> Vec<RxQueue> {
        self.spares
            .iter_mut()
            .flatten()
            .filter_map(|s| s.slow_rx.take())
            .collect()
    }
}

/// Sends the final LACPDU of a member a reload removed, on the control thread's queue of
/// its port (or through worker 0 where that queue does not reach the peer). False when no
/// such former member exists or the frame could not leave.
impl ControlLoop {
    pub(super) fn send_final(&mut self, t: &lacp::info::Transmit) -> bool {
        let cl = self;
        let Some(pi) = cl
            .reloader
            .spares
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.left_as == Some(t.port)))
        else {
            return false;
        };
        let Some(mut mb) = cl.pool.alloc() else {
            return false;
        };
        let bytes = t.frame.as_bytes();
        match mb.append(bytes.len() as u16) {
            Some(d) => d.copy_from_slice(bytes),
            None => return false,
        }
        let mut out = dpdk::Burst::new();
        let _ = out.push(mb);
        if let Some(tx) = cl.port_tx.get_mut(pi).and_then(Option::as_mut) {
            if tx.tx_burst(&mut out) == 1 {
                return true;
            }
        }
        match (
            out.pop(),
            cl.reloader.spares[pi]
                .as_mut()
                .and_then(|s| s.via_worker.as_mut()),
        ) {
            (Some(f), Some(ring)) => ring.push(f).is_ok(),
            _ => false,
        }
    }

    /// Serves reload requests from other threads (checked every iteration, never blocks);
    /// ends the grace period of members a reload removed; discards what the workers still
    /// divert from spare ports.
    pub(super) fn poll_reload(&mut self) {
        if !self.reloader.leaving.is_empty() {
            let now = std::time::Instant::now();
            let mut i = 0;
            while i < self.reloader.leaving.len() {
                let (pi, b, until) = self.reloader.leaving[i];
                if until > now {
                    i += 1;
                    continue;
                }
                self.reloader.leaving.swap_remove(i);
                self.bonds[b].collecting[pi] = false;
                self.bonds[b].dirty = true;
                self.set_spare_plan(pi);
            }
        }
        let mut burst = dpdk::Burst::new();
        for s in self.reloader.spares.iter_mut().flatten() {
            for ring in &mut s.slow {
                while ring.pop_into(&mut burst, 64) > 0 {
                    burst.clear();
                }
            }
        }
        let Some(rx) = self.reloader.requests.as_ref() else {
            return;
        };
        let Ok(req) = rx.try_recv() else { return };
        let result = self.reload();
        let _ = req.reply.send(result);
    }

    /// Re-reads the config file, validates it and applies the difference, or changes
    /// nothing and says why. Logs the outcome.
    pub fn reload(&mut self) -> Result<ReloadSummary, ReloadError> {
        let Some(path) = self.reloader.path.clone() else {
            return Err(ReloadError::NoFile);
        };
        // The service manager sees the reload begin and end (READY=1 after either outcome:
        // a refused reload leaves the running configuration as it was).
        crate::notify::reloading();
        let result = conf::load(&path)
            .map_err(ReloadError::Invalid)
            .and_then(|new| self.apply_config(&new));
        match &result {
            Ok(s) if s.changes.is_empty() => {
                tracing::info!(file = %path.display(), "reload: configuration unchanged")
            }
            Ok(s) => {
                tracing::info!(file = %path.display(), changes = s.changes.len(), "reload applied: {}", s.changes.join("; "))
            }
            Err(e) => tracing::error!(file = %path.display(), "reload refused: {e}"),
        }
        self.heartbeat.reloaded();
        result
    }

    /// Applies a validated configuration (see [`diff`]).
    pub fn apply_config(&mut self, new: &conf::Config) -> Result<ReloadSummary, ReloadError> {
        let new = Plan::new(new, &self.reloader.running.host);
        let actions = diff(&self.reloader.running, &new).map_err(ReloadError::NeedsRestart)?;
        let mut summary = ReloadSummary::default();
        for a in actions {
            let line = self.apply(&a, &new).map_err(ReloadError::Apply)?;
            summary.changes.push(line);
        }
        self.reloader.running = new;
        Ok(summary)
    }

    fn member_index(&self, bond: usize, port: &str) -> Option<usize> {
        self.bonds[bond]
            .members
            .iter()
            .copied()
            .find(|&mi| self.members[mi].name == port)
    }

    fn apply(&mut self, a: &Action, new: &Plan) -> Result<String, String> {
        let now = self.now();
        let bond_name = |b: usize| new.bonds[b].name.clone();
        match a {
            Action::RemoveMember { bond, port } => {
                let mi = self
                    .member_index(*bond, port)
                    .ok_or_else(|| format!("{port} is not a member of {}", bond_name(*bond)))?;
                self.remove_member(mi, now)?;
                Ok(format!("bond {}: member {port} removed", bond_name(*bond)))
            }
            Action::AddMember { bond, port } => {
                self.add_member(*bond, port, new, now)?;
                Ok(format!("bond {}: member {port} added", bond_name(*bond)))
            }
            Action::MemberPriority {
                bond,
                port,
                priority,
            } => {
                let mi = self
                    .member_index(*bond, port)
                    .ok_or_else(|| format!("{port} is not a member of {}", bond_name(*bond)))?;
                if let Some(p) = self.members[mi].lacp {
                    self.engine
                        .set_port_priority(p, *priority, now)
                        .map_err(|e| e.to_string())?;
                }
                Ok(format!(
                    "bond {}: member {port} port priority {priority}",
                    bond_name(*bond)
                ))
            }
            Action::BondParams { bond } => self.apply_bond_params(*bond, new, now),
            Action::Routes => {
                let r = self
                    .router
                    .as_mut()
                    .ok_or("static routes outside router mode")?;
                let n = r.replace_static_routes(&new.config)?;
                Ok(format!("static routes replaced ({n} routes)"))
            }
            Action::Neighbors => {
                let r = self
                    .router
                    .as_mut()
                    .ok_or("static neighbours outside router mode")?;
                let n = r.replace_static_neighbors(&new.config);
                Ok(format!("static neighbours replaced ({n} neighbours)"))
            }
        }
    }

    fn apply_bond_params(
        &mut self,
        b: usize,
        new: &Plan,
        now: lacp::time::Instant,
    ) -> Result<String, String> {
        let nb = &new.config.bonds[b];
        let old = &self.reloader.running.config.bonds[b];
        let mut what = Vec::new();
        self.bonds[b].min_links = nb.min_links;
        let Some(id) = self.bonds[b].lacp else {
            if old.min_links != nb.min_links {
                self.static_tables(b);
                what.push(format!("min_links {}", nb.min_links));
            }
            return Ok(format!("bond {}: {}", nb.name, what.join(", ")));
        };
        let (Some(_), Some(nl)) = (&old.lacp, &nb.lacp) else {
            return Err("bond mode changed".into());
        };
        let (Some(oc), Some(nc)) = (
            self.reloader.running.bonds[b].lacp.clone(),
            new.bonds[b].lacp.clone(),
        ) else {
            return Err("bond mode changed".into());
        };
        let e = &mut self.engine;
        let err = |e: lacp::EngineError| e.to_string();
        if oc.rate != nc.rate {
            e.set_rate(id, nc.rate, now).map_err(err)?;
            what.push(format!("rate {:?}", nl.rate).to_lowercase());
        }
        if oc.activity != nc.activity {
            e.set_activity(id, nc.activity, now).map_err(err)?;
            what.push(format!("activity {:?}", nl.activity).to_lowercase());
        }
        if oc.system != nc.system {
            e.set_system(id, nc.system, now).map_err(err)?;
            what.push(format!("system {},{}", nc.system.priority, nc.system.mac));
        }
        if oc.admin_key != nc.admin_key {
            e.set_bond_key(id, nc.admin_key, now).map_err(err)?;
            what.push(format!("key {}", nc.admin_key));
        }
        if oc.min_links != nc.min_links {
            e.set_min_links(id, nc.min_links, now).map_err(err)?;
            what.push(format!("min_links {}", nc.min_links));
        }
        if oc.max_active != nc.max_active {
            e.set_max_active(id, nc.max_active, now).map_err(err)?;
            what.push(format!("max_active {:?}", nc.max_active));
        }
        if oc.selection != nc.selection {
            e.set_selection_policy(id, nc.selection, now).map_err(err)?;
            what.push(format!("selection {:?}", nl.selection).to_lowercase());
        }
        if oc.fallback != nc.fallback {
            e.set_fallback(id, nc.fallback, now).map_err(err)?;
            what.push(format!("fallback {:?}", nl.fallback).to_lowercase());
        }
        if what.is_empty() {
            // port_priority alone: applied per member.
            what.push("default port priority".into());
        }
        Ok(format!("bond {}: {}", nb.name, what.join(", ")))
    }

    /// Turns spare port `port` into a member of bond `b`: LACP engine port, control-loop
    /// member, then the workers' plan for that one port (ingress now belongs to the bond,
    /// dropped until the member collects; its slow frames go to the control thread).
    fn add_member(
        &mut self,
        b: usize,
        port: &str,
        new: &Plan,
        now: lacp::time::Instant,
    ) -> Result<(), String> {
        let pi = self
            .port_names
            .iter()
            .position(|n| n == port)
            .ok_or_else(|| format!("no port {port}"))?;
        let spare = self
            .reloader
            .spares
            .get_mut(pi)
            .and_then(Option::take)
            .ok_or_else(|| format!("port {port} is not a spare port"))?;
        let nb = &new.bonds[b];
        let Some((number, priority)) = nb
            .members
            .iter()
            .position(|&p| p == pi)
            .map(|i| nb.lacp_ports[i])
        else {
            self.reloader.spares[pi] = Some(spare);
            return Err(format!("{port} not in bond {}", nb.name));
        };
        let lacp = match self.bonds[b].lacp {
            Some(id) => {
                let mut pc =
                    lacp::PortConfig::new(port.to_string(), self.reloader.macs[pi], number);
                pc.port_priority = priority;
                match self.engine.add_port(id, pc, now) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.reloader.spares[pi] = Some(spare);
                        return Err(e.to_string());
                    }
                }
            }
            None => None,
        };
        let pc = &new.ports[pi];
        let m = Member::new(MemberParts {
            port: pi,
            name: port.to_string(),
            bond: b,
            info: spare.info,
            slow: spare.slow,
            lacp,
            speed_override: pc.speed_mbps,
            duplex_override: pc.duplex,
            kernel_iface: pc.kernel_iface.clone(),
            slow_rx: spare.slow_rx,
            via_worker: spare.via_worker,
        });
        // Back within the grace period of an earlier removal: that ends here.
        self.reloader.leaving.retain(|&(p, _, _)| p != pi);
        let mi = self.members.len();
        self.members.push(m);
        self.drains.push(super::Drain::Off);
        self.bonds[b].members.push(mi);
        self.bonds[b].collecting[pi] = false;
        self.bonds[b].dirty = true;
        // The workers: this port's ingress now belongs to the bond (same egress as the
        // bond's other members), slow frames to the control thread.
        let plans = self.reloader.plans.load();
        let egress = self.bonds[b]
            .members
            .iter()
            .map(|&i| self.members[i].port)
            .find(|&p| p != pi)
            .map(|p| plans[p].egress)
            .unwrap_or(Egress::Drop);
        let mut next = (**plans).clone();
        next[pi] = PortPlan {
            member_of: Some(b),
            divert_slow: lacp.is_some() && self.members[mi].slow_rx.is_none(),
            egress,
            rss_l4: self.members[mi].info.rss_hash_l4(),
        };
        self.reloader.plans.store(std::sync::Arc::new(next));
        if nb.mode != BondMode::Lacp {
            // Static modes decide from link state: the next link poll picks it up.
            self.bonds[b].dirty = true;
        }
        tracing::info!(bond = %nb.name, member = %port, "member added by reload");
        Ok(())
    }

    /// The workers' plan for a port that is no member: ingress dropped, nothing diverted.
    fn set_spare_plan(&mut self, pi: usize) {
        let plans = self.reloader.plans.load();
        let mut next = (**plans).clone();
        next[pi] = PortPlan {
            member_of: None,
            divert_slow: false,
            egress: Egress::Drop,
            rss_l4: plans[pi].rss_l4,
        };
        self.reloader.plans.store(std::sync::Arc::new(next));
    }

    /// Takes member `mi` out of its bond: the engine sends its final out-of-sync LACPDU,
    /// the bond's table drops it, and the port becomes a spare again (its ingress dropped).
    fn remove_member(&mut self, mi: usize, now: lacp::time::Instant) -> Result<(), String> {
        let b = self.members[mi].bond;
        let pi = self.members[mi].port;
        if let Some(p) = self.members[mi].lacp {
            self.engine.remove_port(p, now).map_err(|e| e.to_string())?;
            // The final LACPDU leaves while the member still exists here.
            self.transmit(now);
        }
        // Egress leaves it at once; ingress is still accepted for LEAVE_GRACE if it was
        // (frames the partner sent before our final LACPDU reached it).
        let grace = {
            let bond = &mut self.bonds[b];
            bond.distributing.retain(|&p| p != pi);
            bond.members.retain(|&i| i != mi);
            bond.dirty = true;
            bond.lacp.is_some() && bond.collecting[pi]
        };
        if grace {
            self.reloader
                .leaving
                .push((pi, b, std::time::Instant::now() + LEAVE_GRACE));
        } else {
            self.bonds[b].collecting[pi] = false;
            self.set_spare_plan(pi);
        }
        let m = self.members.remove(mi);
        if mi < self.drains.len() {
            self.drains.remove(mi);
        }
        for bond in &mut self.bonds {
            for i in bond.members.iter_mut() {
                if *i > mi {
                    *i -= 1;
                }
            }
        }
        if self.bonds[b].lacp.is_none() {
            self.static_tables(b);
        }
        self.publish();
        tracing::info!(bond = %self.bonds[b].name, member = %m.name, "member removed by reload");
        self.reloader.spares[pi] = Some(SparePort {
            info: m.info,
            slow: m.slow,
            via_worker: m.via_worker,
            slow_rx: m.slow_rx,
            left_as: m.lacp,
        });
        Ok(())
    }
}
