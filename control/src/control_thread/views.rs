//! The control thread answers management requests ([`Handler`]): each verb's typed view,
//! built from what the control thread owns (the LACP engine, the bonds' tables, drains,
//! captures, the router) and the main thread's latest counters.

use api::{
    ActiveAggregator, BondMember, BondView, CaptureView, CapturedFrame, DrainView, EventView,
    InterfaceView, LacpBond, LacpMember, LacpTimers, Reply, Request, RoutesView, WhyBond,
    WhyMember,
};
use lacp::info::{BondInfo, PortInfo};
use lacp::Instant;

use super::capture::hex;
use super::ControlLoop;
use crate::mgmt::{self, Handler};
use crate::status::{self as st};

type Result<T> = std::result::Result<T, String>;

impl Handler for ControlLoop {
    fn handle(&mut self, req: Request) -> Result<Reply> {
        match req {
            Request::Ping {} => Ok(Reply::Pong(api::Pong {
                uptime_ms: self.epoch.elapsed().as_millis() as u64,
            })),
            Request::Bonds {} => Ok(Reply::Bonds(
                (0..self.bonds.len()).map(|b| self.bond_view(b)).collect(),
            )),
            Request::Bond { name } => {
                let b = self.find_bond(&name)?;
                Ok(Reply::Bond(Box::new(self.bond_view(b))))
            }
            Request::Lacp { bond } => {
                let bonds = match bond {
                    Some(n) => vec![self.find_bond(&n)?],
                    None => (0..self.bonds.len()).collect(),
                };
                Ok(Reply::Lacp(
                    bonds
                        .into_iter()
                        .filter(|&b| self.bonds[b].lacp.is_some())
                        .map(|b| self.lacp_view(b))
                        .collect(),
                ))
            }
            Request::Why { bond } => Ok(Reply::Why(self.why_view(self.find_bond(&bond)?))),
            Request::Ports {} => Ok(Reply::Ports(self.ports_view())),
            Request::Stats {} => mgmt::stats(&self.hub).map(|s| Reply::Stats(Box::new(s))),
            Request::Interfaces {} => self.interfaces_view().map(Reply::Interfaces),
            Request::Routes {} => self.routes_view().map(Reply::Routes),
            Request::Events { bond, since_ns } => {
                let b = match bond {
                    Some(n) => Some(self.find_bond(&n)?),
                    None => None,
                };
                Ok(Reply::Events(
                    self.events_view(b, u128::from(since_ns.unwrap_or(0))),
                ))
            }
            Request::Capture { bond } => {
                Ok(Reply::Capture(self.capture_view(self.find_bond(&bond)?)))
            }
            Request::Drain {
                bond,
                member,
                force,
            } => self.drain(&bond, &member, Some(force)).map(Reply::Drain),
            Request::Undrain { bond, member } => self.drain(&bond, &member, None).map(Reply::Drain),
            // Validated whole before anything changes; a refusal changes nothing.
            Request::Reload {} => self.reload().map(Reply::Reload).map_err(|e| e.to_string()),
            Request::Restart {} => self.request_restart().map(Reply::Restart),
        }
    }
}

impl ControlLoop {
    /// `ctl restart`: the main thread carries it out (stops the threads, writes the handoff
    /// state file through this thread, then execs or exits).
    fn request_restart(&mut self) -> Result<api::RestartView> {
        let m = &self.reloader.running.config.management;
        let Some(path) = &m.state_file else {
            return Err("a planned restart needs [management] state_file in the configuration (where the LACP state is handed to the next process)".into());
        };
        // The new process reads the file anew: one that does not validate would not start.
        if let Some(file) = &self.reloader.path {
            if let Err(e) = conf::load_with(file, &crate::limits()) {
                tracing::warn!(file = %file.display(), "planned restart refused: the configuration file does not validate");
                return Err(format!("restart refused, nothing changed: {} does not validate (the new process would not start):\n{e}", file.display()));
            }
        }
        let view = api::RestartView {
            state_file: path.display().to_string(),
            mode: m.restart.as_str().to_string(),
            uptime_ms: self.epoch.elapsed().as_millis() as u64,
        };
        tracing::info!(mode = %view.mode, "planned restart requested over the management socket");
        self.restart
            .requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(view)
    }

    fn find_bond(&self, name: &str) -> Result<usize> {
        self.bonds
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.bonds.iter().map(|b| b.name.as_str()).collect();
                format!("no bond {name:?}; bonds: {}", names.join(", "))
            })
    }

    fn find_member(&self, bond: usize, name: &str) -> Result<usize> {
        let b = &self.bonds[bond];
        b.members
            .iter()
            .copied()
            .find(|&m| self.members[m].name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = b
                    .members
                    .iter()
                    .map(|&m| self.members[m].name.as_str())
                    .collect();
                format!(
                    "bond {} has no member {name:?}; members: {}",
                    b.name,
                    names.join(", ")
                )
            })
    }

    fn bond_info(&self, b: usize) -> Option<BondInfo> {
        self.bonds[b]
            .lacp
            .and_then(|id| self.engine.bond_info(id).ok())
    }

    fn port_info(&self, m: usize) -> Option<PortInfo> {
        let t = self.now();
        self.members[m]
            .lacp
            .and_then(|p| self.engine.port_info(p, t).ok())
    }

    fn bond_view(&self, b: usize) -> BondView {
        let bond = &self.bonds[b];
        let table = bond.table.load();
        let info = self.bond_info(b);
        let counters = self.hub.counters();
        let t = self.now();
        let members = bond
            .members
            .iter()
            .map(|&m| {
                let mem = &self.members[m];
                let link = mem.last_link.unwrap_or_default();
                let pi = self.port_info(m);
                let rate = counters.as_ref().and_then(|c| {
                    c.now
                        .ports
                        .iter()
                        .position(|p| p.name == mem.name)
                        .and_then(|i| c.rates.get(i))
                });
                let drained = self.drains[m].egress_blocked(t);
                let reason = if drained {
                    Some("drained by the operator".to_string())
                } else {
                    pi.as_ref()
                        .and_then(|i| st::member_reason(i, Some(t), self.wall0_ns, &self.engine))
                };
                BondMember {
                    name: mem.name.clone(),
                    link_up: link.up,
                    speed_mbps: link.speed.mbps(),
                    duplex: st::duplex(link.duplex).to_string(),
                    collecting: table.collects(mem.port),
                    distributing: table.distributing.contains(&(mem.port as u16)),
                    selected: pi.as_ref().map(|i| i.selected.name().to_string()),
                    aggregator: pi
                        .as_ref()
                        .and_then(|i| i.aggregator)
                        .map(|a| a.to_string()),
                    drained,
                    partner_individual: pi.as_ref().is_some_and(st::partner_individual),
                    reason,
                    rx_pps: rate.map(|r| r[0]),
                    tx_pps: rate.map(|r| r[1]),
                    rx_bps: rate.map(|r| r[2]),
                    tx_bps: rate.map(|r| r[3]),
                    last_rx: pi.as_ref().and_then(|i| i.last_rx).map(|x| self.wall(x)),
                    last_rx_age_s: pi
                        .as_ref()
                        .and_then(|i| i.last_rx)
                        .map(|x| t.saturating_duration_since(x).as_secs_f64()),
                }
            })
            .collect();
        let active = info.as_ref().and_then(|i| {
            i.aggregators
                .iter()
                .find(|a| a.active)
                .map(|a| ActiveAggregator {
                    id: a.id.to_string(),
                    actor_key: a.actor_key,
                    partner_system: a.partner_system.to_string(),
                    partner_key: a.partner_key,
                    individual: a.individual,
                    members: a
                        .members
                        .iter()
                        .filter_map(|p| self.member_of_lacp(*p).map(|m| m.name.clone()))
                        .collect(),
                })
        });
        let lower = |s: String| s.to_lowercase();
        BondView {
            name: bond.name.clone(),
            mode: bond.mode.as_str().to_string(),
            mac: bond.mac.to_string(),
            hash: Some(bond.hash.clone()),
            system: info.as_ref().map(|i| i.system.to_string()),
            admin_key: info.as_ref().map(|i| i.admin_key),
            activity: info.as_ref().map(|i| lower(format!("{:?}", i.activity))),
            rate: info.as_ref().map(|i| lower(format!("{:?}", i.rate))),
            selection: info.as_ref().map(|i| lower(format!("{:?}", i.selection))),
            max_active: info.as_ref().and_then(|i| i.max_active),
            fallback_active: info.as_ref().map(|i| i.fallback_active),
            min_links: bond.min_links,
            min_links_met: info.as_ref().map_or(
                table.distributing.len() as u16 >= bond.min_links.max(1),
                |i| i.min_links_met,
            ),
            active_aggregator: active,
            distributing: table
                .distributing
                .iter()
                .map(|&p| self.port_names[p as usize].clone())
                .collect(),
            table_version: table.version,
            members,
        }
    }

    fn lacp_view(&self, b: usize) -> LacpBond {
        let bond = &self.bonds[b];
        let info = self.bond_info(b);
        let t = self.now();
        let age = |x: Option<Instant>| x.map(|x| t.saturating_duration_since(x).as_secs_f64());
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let members = bond
            .members
            .iter()
            .filter_map(|&m| self.port_info(m).map(|i| (m, i)))
            .map(|(m, i)| LacpMember {
                name: self.members[m].name.clone(),
                mac: i.mac.to_string(),
                link_up: i.link.up,
                speed_mbps: i.link.speed.mbps(),
                duplex: st::duplex(i.link.duplex).to_string(),
                speed_or_duplex_unknown_seen: i.unknown_link.speed || i.unknown_link.duplex,
                actor: st::participant(&i.actor),
                partner: st::participant(&i.partner),
                partner_from_lacpdu: i.partner_from_lacpdu,
                matched: i.matched,
                rx_state: i.rx_state.name().to_string(),
                periodic_state: i.periodic_state.name().to_string(),
                mux_state: i.mux_state.name().to_string(),
                actor_churn: i.actor_churn.name().to_string(),
                partner_churn: i.partner_churn.name().to_string(),
                selected: i.selected.name().to_string(),
                aggregator: i.aggregator.map(|a| a.to_string()),
                ntt: i.ntt,
                timers_ms: LacpTimers {
                    current_while: ms(i.timers.current_while),
                    periodic: ms(i.timers.periodic),
                    wait_while: ms(i.timers.wait_while),
                    actor_churn: ms(i.timers.actor_churn),
                    partner_churn: ms(i.timers.partner_churn),
                },
                collecting: i.collecting,
                distributing: i.distributing,
                fallback: i.fallback,
                drained: i.drained || self.drains[m].egress_blocked(t),
                loopback: i.loopback,
                reason: st::member_reason(&i, Some(t), self.wall0_ns, &self.engine),
                counters: st::lacp_counters(&i.counters),
                last_rx: i.last_rx.map(|x| self.wall(x)),
                last_rx_age_s: age(i.last_rx),
                last_tx: i.last_tx.map(|x| self.wall(x)),
                last_tx_age_s: age(i.last_tx),
                lacpdu_departures: self.members[m].tx_gaps.gaps(),
                slow_tx_failed: self.members[m].tx_dropped,
            })
            .collect();
        let lower = |s: String| s.to_lowercase();
        LacpBond {
            bond: bond.name.clone(),
            system: info.as_ref().map(|i| i.system.to_string()),
            system_priority: info.as_ref().map(|i| i.system.priority),
            system_mac: info.as_ref().map(|i| i.system.mac.to_string()),
            admin_key: info.as_ref().map(|i| i.admin_key),
            activity: info.as_ref().map(|i| lower(format!("{:?}", i.activity))),
            rate: info.as_ref().map(|i| lower(format!("{:?}", i.rate))),
            active_aggregator: info
                .as_ref()
                .and_then(|i| i.active_aggregator)
                .map(|a| a.to_string()),
            min_links: info.as_ref().map(|i| i.min_links),
            min_links_met: info.as_ref().map(|i| i.min_links_met),
            members,
        }
    }

    /// A silent partner, told apart by what the link still carries (the port's receive
    /// rate over the last second, from the main thread's counters): nothing at all (the
    /// partner's port is down or disabled on its side), or data without LACPDUs (a static
    /// LAG, or LACP off on that port).
    fn silent_detail(
        &self,
        member: &str,
        summary: String,
        mut evidence: Vec<String>,
    ) -> (String, Vec<String>) {
        let Some(c) = self.hub.counters() else {
            return (summary, evidence);
        };
        let Some((p, r)) = c
            .now
            .ports
            .iter()
            .zip(&c.rates)
            .find(|(p, _)| p.name == member)
        else {
            return (summary, evidence);
        };
        let (pps, total) = (r[0], p.pmd.rx_packets);
        evidence.push(format!(
            "frames received on this link: {pps:.0}/s over the last second, {total} since start"
        ));
        let detail = if pps < 0.5 {
            "nothing at all arrives on this link (no frame in the last second): the partner's port may be down or disabled on its side, or its LACPDUs are filtered (a Linux bonding partner keeps a slave down when its driver reports no speed/duplex: check `ethtool` and the bonding log there)"
        } else {
            "data arrives but no LACPDU: the partner may aggregate this link statically or run LACP off on it"
        };
        (format!("{summary}; {detail}"), evidence)
    }

    fn why_view(&self, b: usize) -> WhyBond {
        let bond = &self.bonds[b];
        let t = self.now();
        let table = bond.table.load();
        let info = self.bond_info(b);
        let wall = |x: Instant| self.wall(x);
        let mut out = Vec::new();
        for &m in &bond.members {
            let mem = &self.members[m];
            let distributing = table.distributing.contains(&(mem.port as u16));
            let (class, summary, evidence) = match (&info, self.port_info(m)) {
                (Some(bi), Some(pi)) => {
                    if self.drains[m].egress_blocked(t) && pi.reason.is_none() {
                        (
                            Some("drain"),
                            Some(
                                "drained by the operator: leaving (egress moved to the other members)"
                                    .to_string(),
                            ),
                            vec![],
                        )
                    } else {
                        match lacp::why::explain(&pi, bi, t, &wall) {
                            Some(w) if w.class == lacp::why::Class::SilentPartner => {
                                let (summary, evidence) =
                                    self.silent_detail(&mem.name, w.summary, w.evidence);
                                (Some(w.class.name()), Some(summary), evidence)
                            }
                            Some(w) => (Some(w.class.name()), Some(w.summary), w.evidence),
                            None => (None, None, vec![]),
                        }
                    }
                }
                _ => {
                    // Static modes decide from link state alone.
                    let up = mem.last_link.is_some_and(|l| l.up);
                    if distributing {
                        (None, None, vec![])
                    } else if !up {
                        (
                            Some("link_down"),
                            Some("link down: no carrier on this member".to_string()),
                            vec![],
                        )
                    } else if table.distributing.is_empty() {
                        (
                            Some("below_min_links"),
                            Some(format!(
                                "bond below min_links: fewer than {} members up",
                                bond.min_links.max(1)
                            )),
                            vec![],
                        )
                    } else {
                        (
                            Some("standby"),
                            Some(format!(
                                "standby: {} carries the traffic ({})",
                                table
                                    .distributing
                                    .first()
                                    .map(|&p| self.port_names[p as usize].as_str())
                                    .unwrap_or("another member"),
                                bond.mode.as_str()
                            )),
                            vec![],
                        )
                    }
                }
            };
            out.push(WhyMember {
                member: mem.name.clone(),
                distributing,
                class: class.map(str::to_string),
                reason: summary,
                evidence,
            });
        }
        WhyBond {
            bond: bond.name.clone(),
            mode: bond.mode.as_str().to_string(),
            members: out,
        }
    }

    fn ports_view(&self) -> Vec<api::PortView> {
        let Some(c) = self.hub.counters() else {
            return Vec::new();
        };
        mgmt::ports_view(&c, &|name| {
            self.members
                .iter()
                .find(|m| m.name == name)
                .map(|m| self.bonds[m.bond].name.clone())
        })
    }

    fn interfaces_view(&self) -> Result<Vec<InterfaceView>> {
        let r = self.router.as_ref().ok_or(
            "no interfaces: fastlag runs in xconnect mode (interfaces exist in router mode)",
        )?;
        let st = r.status();
        let counters = self.hub.counters();
        Ok(st
            .interfaces
            .into_iter()
            .map(|i| {
                let c = counters
                    .as_ref()
                    .and_then(|c| c.now.interfaces.iter().find(|x| x.name == i.name))
                    .cloned();
                InterfaceView {
                    name: i.name,
                    tap: i.tap,
                    kernel: i.kernel,
                    counters: c,
                }
            })
            .collect())
    }

    fn routes_view(&self) -> Result<RoutesView> {
        let r = self
            .router
            .as_ref()
            .ok_or("no routes: fastlag runs in xconnect mode (routes exist in router mode)")?;
        let st = r.status();
        Ok(RoutesView {
            fib_version: st.fib_version,
            routes_v4: st.routes_v4,
            routes_v6: st.routes_v6,
            kernel_routes: st.kernel_routes,
            kernel_neighbors: st.kernel_neighbors,
            routes: r.routes(),
        })
    }

    fn events_view(&self, bond: Option<usize>, since_ns: u128) -> Vec<EventView> {
        let t = self.now();
        let mut ev: Vec<(u128, EventView)> = Vec::new();
        let view = |at: u128, mi: usize, machine: String, from: &str, to: &str, cause: String| {
            let m = &self.members[mi];
            EventView {
                at_ns: at.to_string(),
                at: api::rfc3339(at),
                bond: self.bonds[m.bond].name.clone(),
                member: m.name.clone(),
                machine,
                from: from.to_string(),
                to: to.to_string(),
                cause,
            }
        };
        for (mi, m) in self.members.iter().enumerate() {
            if bond.is_some_and(|b| b != m.bond) {
                continue;
            }
            let Some(p) = m.lacp else { continue };
            let Ok(info) = self.engine.port_info(p, t) else {
                continue;
            };
            for tr in &info.history {
                let at = self.unix_ns(tr.at);
                if at <= since_ns {
                    continue;
                }
                let machine = format!("{:?}", tr.machine);
                let cause = format!("{:?}", tr.cause);
                ev.push((at, view(at, mi, machine, tr.from, tr.to, cause)));
            }
            for a in self.admin.iter().filter(|a| a.member == mi) {
                let at = self.unix_ns(a.at);
                if at <= since_ns {
                    continue;
                }
                let admin = view(at, mi, a.machine.into(), "", &a.text, a.machine.into());
                ev.push((at, admin));
            }
        }
        ev.sort_by_key(|(at, _)| *at);
        ev.into_iter().map(|(_, v)| v).collect()
    }

    fn capture_view(&self, b: usize) -> CaptureView {
        let ring = &self.capture[b];
        let frames: Vec<CapturedFrame> = ring
            .frames()
            .map(|s| CapturedFrame {
                at_ns: (self.wall0_ns + s.at_ns as u128).to_string(),
                member: self.members.get(s.member as usize).map(|m| m.name.clone()),
                direction: if s.tx { "tx" } else { "rx" }.to_string(),
                orig_len: s.orig_len,
                hex: hex(&s.bytes[..s.len as usize]),
            })
            .collect();
        CaptureView {
            bond: self.bonds[b].name.clone(),
            recorded_total: ring.total,
            kept: frames.len(),
            frames,
        }
    }

    /// Drains (`Some(force)`) or undrains (`None`) a member.
    fn drain(&mut self, bond: &str, member: &str, force: Option<bool>) -> Result<DrainView> {
        let on = force.is_some();
        let b = self.find_bond(bond)?;
        let m = self.find_member(b, member)?;
        let Some(port) = self.members[m].lacp else {
            return Err(format!(
                "bond {bond} is {}: drain needs an 802.3ad bond (it works by advertising the member out of sync)",
                self.bonds[b].mode.as_str()
            ));
        };
        if force == Some(false) {
            // Draining the only member that carries traffic blackholes the bond: say so,
            // and do it only when asked to twice.
            let table = self.bonds[b].table.load();
            let me = self.members[m].port as u16;
            if table.distributing == [me] {
                return Err(format!(
                    "refused: {member} is the last distributing member of {bond}; draining it stops all traffic on the bond (no other member distributes). Undrain or bring up another member first, or repeat with --force"
                ));
            }
        }
        let t = self.now();
        let r = self.drains[m]
            .request(on, t)
            .map_err(|e| format!("{member} of {bond} is {e}"))?;
        if let Some(drained) = r.engine_drain {
            self.engine
                .set_drain(port, drained, t)
                .map_err(|e| e.to_string())?;
        }
        if r.changed {
            self.bonds[b].mark_dirty();
            match r.state {
                "draining" => tracing::info!(bond, member, "drain: member out of our distribution table; advertising it out of sync in {:?}", super::drain::DRAIN_EGRESS_SETTLE),
                "undrained" => tracing::info!(bond, member, "undrain: drain cancelled before LACP was told"),
                _ => tracing::info!(bond, member, "undrain: member collecting; LACP rejoins it to the aggregate"),
            }
        }
        if let Some(text) = r.admin {
            self.admin_event(t, m, text.to_string());
        }
        Ok(DrainView {
            bond: bond.to_string(),
            member: member.to_string(),
            state: r.state.to_string(),
            note: r.note.map(str::to_string),
        })
    }
}
