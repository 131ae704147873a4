//! The control thread's [`Status`], published every [`super::STATUS_EVERY`].

use std::sync::Arc;

use lacp::config::LinkStatus;

use super::ControlLoop;
use crate::status::{self as st, BondStatus, MemberLacp, MemberStatus, Status};

impl ControlLoop {
    pub(super) fn publish_status(&self) {
        let now = self.now();
        let bonds = self
            .bonds
            .iter()
            .map(|b| {
                let table = b.table.load();
                let members = b
                    .members
                    .iter()
                    .map(|&mi| {
                        let m = &self.members[mi];
                        let link = m.last_link.unwrap_or(LinkStatus::down());
                        let info = m.lacp.and_then(|p| self.engine.port_info(p, now).ok());
                        MemberStatus {
                            name: m.name.clone(),
                            link_up: link.up,
                            speed_mbps: link.speed.mbps(),
                            duplex: st::duplex(link.duplex).to_string(),
                            collecting: table.collects(m.port),
                            distributing: table.distributing.contains(&(m.port as u16)),
                            // Stored and read later: wall-clock times, no ages.
                            reason: info.as_ref().and_then(|i| {
                                st::member_reason(i, None, self.wall0_ns, &self.engine)
                            }),
                            lacp: info.map(|i| MemberLacp {
                                actor_state: i.actor.state.bits(),
                                actor_state_names: i.actor.state.to_string(),
                                partner_state: i.partner.state.bits(),
                                partner_state_names: i.partner.state.to_string(),
                                partner_system: format!(
                                    "{},{}",
                                    i.partner.system_priority, i.partner.system
                                ),
                                partner_key: i.partner.key,
                                partner_port: i.partner.port,
                                actor_key: i.actor.key,
                                actor_port: i.actor.port,
                                rx_state: format!("{:?}", i.rx_state),
                                mux_state: format!("{:?}", i.mux_state),
                                lacpdus_rx: i.counters.lacpdus_rx,
                                lacpdus_tx: i.counters.lacpdus_tx,
                                tx_gaps: m.tx_gaps.gaps(),
                                mib: st::mib(&i.counters),
                                selected: format!("{:?}", i.selected).to_lowercase(),
                            }),
                        }
                    })
                    .collect();
                BondStatus {
                    name: b.name.clone(),
                    mode: b.mode.as_str().to_string(),
                    distributing: table
                        .distributing
                        .iter()
                        .map(|&p| self.port_names[p as usize].clone())
                        .collect(),
                    table_version: table.version,
                    mac: b.mac.to_string(),
                    system: b
                        .lacp
                        .and_then(|id| self.engine.bond_info(id).ok())
                        .map(|i| i.system.to_string()),
                    min_links: b.min_links,
                    members,
                }
            })
            .collect();
        self.status.store(Arc::new(Status {
            uptime_ms: self.epoch.elapsed().as_millis() as u64,
            bonds,
            router: self.router.as_ref().map(|r| r.status()),
        }));
    }
}
