//! Hitless reload (SIGHUP, later `fastlag ctl reload`): re-read the config file given to
//! `run`, validate it completely, compare it with the running one key by key, and apply
//! what can change while traffic flows — bond members, LACP parameters, min_links, static
//! routes — without touching members or flows that did not change. Anything else (ports,
//! cores, memory, the forwarding mode, ...) needs a restart: the reload is refused, naming
//! every such key, and nothing changes. A config that does not validate changes nothing
//! either.
//!
//! A port can join a bond by reload only if it was set up for it at start: in xconnect
//! mode, every `[[port]]` that is neither a bond member nor an endpoint of a pair is a
//! *spare*. It gets what a member needs from the start (a control-thread TX queue for
//! LACPDUs, one slow-protocol ring per worker, a ring to worker 0), and the workers'
//! per-port plans are published through arc-swap, so turning a spare into a member is a
//! new plan for that one port and a new member in the LACP engine.

use std::path::PathBuf;
use std::sync::mpsc;

use conf::{BondMode, Config, Forward};
use dataplane::worker::{Egress, PortPlan, SharedPlans};
use dpdk::{self, Consumer, MacAddr, PortInfo, Producer, RxQueue};
use serde::Serialize;
use serde_json::Value;

use crate::control_loop::{ControlLoop, Member};

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadSummary {
    /// One line per change applied, in the order applied (empty: the file matches what runs).
    pub changes: Vec<String>,
}

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
    /// The configuration now applied.
    pub running: Config,
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

/// Whether port `name` is a spare: xconnect mode, not a bond member, not an endpoint of a
/// pair. Spares are set up at start so that a reload can make them bond members.
pub fn is_spare(cfg: &Config, name: &str) -> bool {
    match &cfg.forward {
        Forward::Xconnect { pairs } => {
            cfg.bond_of(name).is_none() && !pairs.iter().any(|(a, b)| a == name || b == name)
        }
        Forward::Router => false,
    }
}

/// One change the reload applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Members leave first (a port may move between bonds).
    RemoveMember {
        /// Bond index.
        bond: usize,
        /// Port name.
        port: String,
    },
    /// New LACP parameters (and min_links) of a bond.
    BondParams {
        /// Bond index.
        bond: usize,
    },
    /// A member's port priority.
    MemberPriority {
        /// Bond index.
        bond: usize,
        /// Port name.
        port: String,
        /// New priority.
        priority: u16,
    },
    /// A port joins a bond.
    AddMember {
        /// Bond index.
        bond: usize,
        /// Port name.
        port: String,
    },
    /// The static routes are replaced.
    Routes,
}

/// How config file keys are spelled (the model's field names are plural).
fn file_key(field: &str) -> &str {
    match field {
        "ports" => "port",
        "bonds" => "bond",
        "interfaces" => "interface",
        "routes" => "route",
        other => other,
    }
}

/// Every key path whose value differs between `a` and `b` (leaves, or arrays of different
/// length), spelled as in the file: `port[2].device`, `dataplane.worker_cores`.
fn differing(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    file_key(k).to_string()
                } else {
                    format!("{path}.{k}")
                };
                differing(
                    &sub,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        // Tables ([[port]], [[bond]]) by index; lists of values as one key.
        (Value::Array(x), Value::Array(y))
            if x.len() == y.len() && x.iter().chain(y).all(Value::is_object) =>
        {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differing(&format!("{path}[{i}]"), u, v, out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// Compares the running configuration with a new, validated one: the actions that apply
/// the difference without a restart, or every key that needs one (with why).
pub fn plan(old: &Config, new: &Config) -> Result<Vec<Action>, Vec<String>> {
    let mut restart = Vec::new();
    let names = |v: &mut dyn Iterator<Item = &String>| v.cloned().collect::<Vec<_>>();
    let (old_ports, new_ports) = (
        names(&mut old.ports.iter().map(|p| &p.name)),
        names(&mut new.ports.iter().map(|p| &p.name)),
    );
    if old_ports != new_ports {
        restart.push(format!(
            "port: the ports are {new_ports:?}, running {old_ports:?}: ports are created when DPDK starts; adding, removing or reordering them needs a restart"
        ));
    }
    let (old_bonds, new_bonds) = (
        names(&mut old.bonds.iter().map(|b| &b.name)),
        names(&mut new.bonds.iter().map(|b| &b.name)),
    );
    if old_bonds != new_bonds {
        restart.push(format!(
            "bond: the bonds are {new_bonds:?}, running {old_bonds:?}: adding, removing or reordering bonds needs a restart (members and LACP settings of existing bonds reload)"
        ));
    }
    if !restart.is_empty() {
        return Err(restart);
    }

    // Everything but what reloads, compared key by key.
    let strip = |c: &Config| {
        let mut c = c.clone();
        for p in &mut c.ports {
            // Effective values are compared in the bond's members.
            p.lacp_port_priority = None;
            p.lacp_port_number = None;
        }
        for b in &mut c.bonds {
            b.members.clear();
            b.min_links = 0;
            if let Some(l) = b.lacp.as_mut() {
                l.activity = conf::LacpActivity::Active;
                l.rate = conf::LacpRate::Fast;
                l.system_priority = 0;
                l.system_id = None;
                l.key = 0;
                l.port_priority = 0;
                l.max_active = None;
                l.selection = conf::Selection::Stable;
                l.fallback = conf::Fallback::None;
            }
        }
        c.routes.clear();
        serde_json::to_value(&c).unwrap_or(Value::Null)
    };
    let mut keys = Vec::new();
    differing("", &strip(old), &strip(new), &mut keys);
    restart.extend(keys.into_iter().map(|k| format!("{k}: needs a restart")));

    let mut actions = Vec::new();
    let mut adds = Vec::new();
    for (bi, (ob, nb)) in old.bonds.iter().zip(&new.bonds).enumerate() {
        let key = format!("bond[{bi}]");
        let old_m: Vec<&str> = ob.member_names().collect();
        let new_m: Vec<&str> = nb.member_names().collect();
        if old_m != new_m && old.forward == Forward::Router {
            restart.push(format!(
                "{key}.members: changing members in router mode needs a restart (the interfaces' ingress is set up at start)"
            ));
            continue;
        }
        if ob.mac.is_none() && nb.mac.is_none() && old_m.first() != new_m.first() {
            restart.push(format!(
                "{key}.members[0]: the bond's MAC is its first member's; a different first member needs a restart (or set {key}.mac)"
            ));
            continue;
        }
        for m in &ob.members {
            match nb.members.iter().find(|n| n.port == m.port) {
                None => actions.push(Action::RemoveMember {
                    bond: bi,
                    port: m.port.clone(),
                }),
                // A new port number is a new LACP port: it leaves and joins again.
                Some(n) if n.lacp_port_number != m.lacp_port_number => {
                    actions.push(Action::RemoveMember {
                        bond: bi,
                        port: m.port.clone(),
                    });
                    adds.push(Action::AddMember {
                        bond: bi,
                        port: m.port.clone(),
                    });
                }
                Some(n) if n.lacp_port_priority != m.lacp_port_priority => {
                    adds.push(Action::MemberPriority {
                        bond: bi,
                        port: m.port.clone(),
                        priority: n.lacp_port_priority,
                    })
                }
                Some(_) => {}
            }
        }
        for (mi, n) in nb.members.iter().enumerate() {
            if ob.has_member(&n.port) {
                continue;
            }
            // The port must have been set up as a possible member at start.
            if !is_spare(old, &n.port) {
                restart.push(format!(
                    "{key}.members[{mi}]: port {:?} was not a spare port at start (it was a bond member or an endpoint of a pair); making it a member needs a restart",
                    n.port
                ));
                continue;
            }
            adds.push(Action::AddMember {
                bond: bi,
                port: n.port.clone(),
            });
        }
        if ob.lacp != nb.lacp || ob.min_links != nb.min_links {
            actions.push(Action::BondParams { bond: bi });
        }
    }
    actions.extend(adds);
    if old.routes != new.routes {
        actions.push(Action::Routes);
    }
    if restart.is_empty() {
        Ok(actions)
    } else {
        Err(restart)
    }
}

/// Sends the final LACPDU of a member a reload removed, on the control thread's queue of
/// its port (or through worker 0 where that queue does not reach the peer). False when no
/// such former member exists or the frame could not leave.
pub(crate) fn send_final(cl: &mut ControlLoop, t: &lacp::info::Transmit) -> bool {
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

impl ControlLoop {
    /// Serves reload requests from other threads (checked every iteration, never blocks);
    /// ends the grace period of members a reload removed; discards what the workers still
    /// divert from spare ports.
    pub(crate) fn poll_reload(&mut self) {
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
        let result = conf::load(&path)
            .map_err(ReloadError::Invalid)
            .and_then(|new| self.apply_config(new));
        match &result {
            Ok(s) if s.changes.is_empty() => {
                tracing::info!(file = %path.display(), "reload: configuration unchanged")
            }
            Ok(s) => {
                tracing::info!(file = %path.display(), changes = s.changes.len(), "reload applied: {}", s.changes.join("; "))
            }
            Err(e) => tracing::error!(file = %path.display(), "reload refused: {e}"),
        }
        result
    }

    /// Applies a validated configuration (see [`plan`]).
    pub fn apply_config(&mut self, new: Config) -> Result<ReloadSummary, ReloadError> {
        let actions = plan(&self.reloader.running, &new).map_err(ReloadError::NeedsRestart)?;
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

    fn apply(&mut self, a: &Action, new: &Config) -> Result<String, String> {
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
                let n = r.replace_static_routes(new)?;
                Ok(format!("static routes replaced ({n} routes)"))
            }
        }
    }

    fn apply_bond_params(
        &mut self,
        b: usize,
        new: &Config,
        now: lacp::time::Instant,
    ) -> Result<String, String> {
        let nb = &new.bonds[b];
        let old = &self.reloader.running.bonds[b];
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
        let oc = crate::runtime::lacp_bond_config(old);
        let nc = crate::runtime::lacp_bond_config(nb);
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
        new: &Config,
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
        let bm = nb
            .members
            .iter()
            .find(|m| m.port == port)
            .ok_or_else(|| format!("{port} not in bond {}", nb.name))?;
        let lacp = match self.bonds[b].lacp {
            Some(id) => {
                let mut pc = lacp::PortConfig::new(
                    port.to_string(),
                    lacp::MacAddr(self.reloader.macs[pi].0),
                    bm.lacp_port_number,
                );
                pc.port_priority = bm.lacp_port_priority;
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
        let mut m = Member::new(
            pi,
            port.to_string(),
            b,
            spare.info,
            spare.slow,
            lacp,
            pc.speed_mbps,
            pc.duplex,
        );
        m.via_worker = spare.via_worker;
        m.slow_rx = spare.slow_rx;
        if let conf::Device::Vdev { spec, .. } = &pc.device {
            m.kernel_iface = crate::control_loop::kernel_iface_of(spec);
        }
        // Back within the grace period of an earlier removal: that ends here.
        self.reloader.leaving.retain(|&(p, _, _)| p != pi);
        let mi = self.members.len();
        self.members.push(m);
        self.ops.member_added();
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
        self.ops.member_removed(mi);
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[dataplane]
control_core = 0
worker_cores = [1]
hugepages = false

[[port]]
name = "m0"
device = "ring:l0:a"

[[port]]
name = "m1"
device = "ring:l1:a"

[[port]]
name = "m2"
device = "ring:l2:a"

[[port]]
name = "in"
device = "ring:g0:a"

[[bond]]
name = "bond0"
members = ["m0", "m1"]

[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]
"#;

    fn cfg(text: &str) -> Config {
        conf::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn unchanged_config_plans_nothing() {
        assert_eq!(plan(&cfg(BASE), &cfg(BASE)), Ok(vec![]));
    }

    #[test]
    fn spare_ports_are_neither_members_nor_endpoints() {
        let c = cfg(BASE);
        assert!(is_spare(&c, "m2"));
        assert!(!is_spare(&c, "m0"));
        assert!(!is_spare(&c, "in"));
    }

    #[test]
    fn adding_a_spare_port_is_hitless() {
        let new = BASE.replace(r#"["m0", "m1"]"#, r#"["m0", "m1", "m2"]"#);
        assert_eq!(
            plan(&cfg(BASE), &cfg(&new)),
            Ok(vec![Action::AddMember {
                bond: 0,
                port: "m2".into()
            }])
        );
        // And back.
        assert_eq!(
            plan(&cfg(&new), &cfg(BASE)),
            Ok(vec![Action::RemoveMember {
                bond: 0,
                port: "m2".into()
            }])
        );
    }

    #[test]
    fn lacp_parameters_are_hitless() {
        let new = BASE.replace(
            "[forward]",
            "[bond.lacp]\nrate = \"slow\"\nactivity = \"passive\"\nsystem_priority = 100\n\n[forward]",
        );
        assert_eq!(
            plan(&cfg(BASE), &cfg(&new)),
            Ok(vec![Action::BondParams { bond: 0 }])
        );
    }

    #[test]
    fn port_priority_change_reaches_every_member() {
        let new = BASE.replace("[forward]", "[bond.lacp]\nport_priority = 7\n\n[forward]");
        let a = plan(&cfg(BASE), &cfg(&new)).unwrap();
        assert!(a.contains(&Action::MemberPriority {
            bond: 0,
            port: "m0".into(),
            priority: 7
        }));
        assert!(a.contains(&Action::MemberPriority {
            bond: 0,
            port: "m1".into(),
            priority: 7
        }));
    }

    #[test]
    fn restart_keys_are_named() {
        let new = BASE
            .replace("worker_cores = [1]", "worker_cores = [2]")
            .replace("device = \"ring:l2:a\"", "device = \"ring:l3:a\"");
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert!(
            e.iter().any(|k| k.starts_with("dataplane.worker_cores:")),
            "{e:?}"
        );
        assert!(e.iter().any(|k| k.starts_with("port[2].device")), "{e:?}");
        let new = BASE.replace(
            "[forward]",
            "[bond.lacp]\nmux = \"independent\"\n\n[forward]",
        );
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert_eq!(e, vec!["bond[0].lacp.mux: needs a restart".to_string()]);
        let new = BASE.replace(
            "[[bond]]\nname = \"bond0\"",
            "[[bond]]\nname = \"bond0\"\nhash = \"layer2\"",
        );
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert_eq!(e, vec!["bond[0].hash: needs a restart".to_string()]);
    }

    #[test]
    fn endpoint_cannot_become_member_and_first_member_is_fixed() {
        let new = BASE.replace(r#"["m0", "m1"]"#, r#"["m2", "m1"]"#);
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert!(e[0].starts_with("bond[0].members[0]"), "{e:?}");
        let new = BASE.replace(r#"["m0", "m1"]"#, r#"["m1", "m0"]"#);
        assert!(plan(&cfg(BASE), &cfg(&new)).is_err());
    }

    #[test]
    fn member_changes_in_router_mode_need_restart_routes_do_not() {
        let router = r#"
[dataplane]
control_core = 0
worker_cores = [1]
hugepages = false

[[port]]
name = "m0"
device = "ring:l0:a"

[[port]]
name = "m1"
device = "ring:l1:a"

[[port]]
name = "lan"
device = "ring:l2:a"

[[bond]]
name = "up"
members = ["m0"]

[[interface]]
name = "wan0"
on = "up"
addresses = ["10.0.1.1/24"]

[[interface]]
name = "lan0"
on = "lan"
addresses = ["10.0.2.1/24"]

[forward]
mode = "router"
"#;
        let c = cfg(router);
        assert!(!is_spare(&c, "m1"), "no spare ports in router mode");
        let more = router.replace(r#"members = ["m0"]"#, r#"members = ["m0", "m1"]"#);
        let e = plan(&c, &cfg(&more)).unwrap_err();
        assert!(
            e[0].starts_with("bond[0].members: changing members in router mode"),
            "{e:?}"
        );
        let route = format!("{router}\n[[route]]\nprefix = \"10.9.0.0/16\"\nvia = \"10.0.2.2\"\n");
        assert_eq!(plan(&c, &cfg(&route)), Ok(vec![Action::Routes]));
        let iface = router.replace("10.0.2.1/24", "10.0.3.1/24");
        let e = plan(&c, &cfg(&iface)).unwrap_err();
        assert_eq!(
            e,
            vec!["interface[1].addresses: needs a restart".to_string()]
        );
    }

    #[test]
    fn ports_list_change_needs_restart() {
        let new = BASE.replace(
            "[[bond]]",
            "[[port]]\nname = \"m3\"\ndevice = \"ring:l3:a\"\n\n[[bond]]",
        );
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert!(e[0].starts_with("port: "), "{e:?}");
    }
}
