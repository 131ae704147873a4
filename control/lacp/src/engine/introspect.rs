//! Introspection: counters, membership, the published distribution set, and the views of a
//! member ([`PortInfo`]) and a bond ([`BondInfo`]), with the typed [`Reason`] a member is not
//! distributing. Nothing here changes state.

use core::time::Duration;

use crate::config::{Activity, Rate};
use crate::info::{
    AggregatorInfo, BondInfo, MuxState, PortCounters, PortInfo, Reason, RxState, Selected,
    TimerInfo,
};
use crate::machines::Timer;
use crate::time::Instant;

use super::{BondId, Engine, EngineError, EngineStats, PortId};

impl Engine {
    /// Engine-wide counters.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// All bonds.
    pub fn bonds(&self) -> Vec<BondId> {
        self.bonds.iter().flatten().map(|b| b.id).collect()
    }

    /// Members of a bond, in the order they were added.
    pub fn ports(&self, bond: BondId) -> Result<Vec<PortId>, EngineError> {
        let bi = self.bond_index(bond)?;
        Ok(self.bonds[bi]
            .as_ref()
            .expect("bond")
            .sel
            .ports
            .iter()
            .map(|&pi| PortId(pi as u32))
            .collect())
    }

    /// The bond of a member.
    pub fn bond_of(&self, port: PortId) -> Result<BondId, EngineError> {
        let pi = self.port_index(port)?;
        Ok(BondId(self.ports[pi].as_ref().expect("port").bond as u32))
    }

    /// The bond's published distribution set (ordered by port number).
    pub fn distribution(&self, bond: BondId) -> Result<&[PortId], EngineError> {
        let bi = self.bond_index(bond)?;
        Ok(&self.bonds[bi].as_ref().expect("bond").published)
    }

    /// Whether a member is in its bond's distribution set.
    pub fn is_distributing(&self, port: PortId) -> bool {
        self.port_index(port)
            .ok()
            .and_then(|pi| self.ports[pi].as_ref())
            .is_some_and(|p| p.published_distributing)
    }

    /// Whether a member is collecting.
    pub fn is_collecting(&self, port: PortId) -> bool {
        self.port_index(port)
            .ok()
            .and_then(|pi| self.ports[pi].as_ref())
            .is_some_and(|p| p.published_collecting)
    }

    /// A member's counters.
    pub fn counters(&self, port: PortId) -> Result<PortCounters, EngineError> {
        let pi = self.port_index(port)?;
        Ok(self.ports[pi].as_ref().expect("port").counters)
    }

    /// Why a member is not distributing (None when it is).
    pub fn reason(&self, port: PortId, now: Instant) -> Result<Option<Reason>, EngineError> {
        let pi = self.port_index(port)?;
        Ok(self.reason_of(pi, now))
    }

    /// The first thing, in the order a member gets to distributing, that keeps it out.
    fn reason_of(&self, pi: usize, now: Instant) -> Option<Reason> {
        let p = self.ports[pi].as_ref()?;
        let bond = self.bonds[p.bond].as_ref()?;
        let b = &bond.cfg;
        if p.published_distributing {
            return None;
        }
        if !p.link.up {
            return Some(Reason::LinkDown);
        }
        if p.loopback {
            return Some(Reason::Loopback);
        }
        let heard_since_up = p.last_rx.is_some_and(|t| t >= p.link_up_since);
        // In a fallback, the member carrying the traffic is what a standby member's reason
        // names first, whether or not the partner still sends LACPDUs saying it defaulted us.
        if let Some(r @ Reason::FallbackStandby { .. }) = &p.exclusion {
            return Some(r.clone());
        }
        match p.rx {
            RxState::Defaulted | RxState::Expired if !p.partner_from_pdu && !p.fallback => {
                if let Some(r @ Reason::FallbackStandby { .. }) = &p.exclusion {
                    return Some(r.clone());
                }
                if b.activity == Activity::Passive {
                    return Some(Reason::PassivePassive);
                }
                if !heard_since_up {
                    return Some(Reason::LacpNotHeard {
                        since: p.link_up_since,
                    });
                }
                return Some(Reason::Defaulted { last_rx: p.last_rx });
            }
            RxState::Expired if p.partner_from_pdu => {
                let timeout = if b.rate == Rate::Fast {
                    b.timers.short_timeout
                } else {
                    b.timers.long_timeout
                };
                return Some(Reason::PartnerExpired {
                    last_rx: p.last_rx.unwrap_or(p.link_up_since),
                    timeout,
                });
            }
            RxState::Current | RxState::Defaulted | RxState::Expired => {}
            _ => return Some(Reason::Settling),
        }
        // We are passive and the partner's LACPDU said it is too: neither end sends
        // periodically, so whatever else is missing (a partner that never heard us, as a
        // passive Linux bond shows after its one LACPDU at enslave time) follows from that.
        if b.activity == Activity::Passive && p.partner_from_pdu && !p.partner.state.activity() {
            return Some(Reason::PassivePassive);
        }
        if let Some(r) = &p.exclusion {
            return Some(r.clone());
        }
        if p.selected == Selected::Unselected {
            return Some(Reason::Reselecting);
        }
        match p.mux {
            MuxState::Detached => return Some(Reason::Reselecting),
            MuxState::Waiting => {
                let remaining = p
                    .timer(Timer::WaitWhile)
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
                return Some(Reason::AggregateWait { remaining });
            }
            _ => {}
        }
        if !p.fallback {
            if !p.matched {
                return Some(Reason::NotMatched {
                    partner_view: p.last_lacpdu.map(|l| l.partner).unwrap_or_default(),
                });
            }
            if !p.partner.state.synchronization() {
                return Some(Reason::PartnerNotInSync);
            }
            if p.partner.state.expired() {
                return Some(Reason::PartnerNotHearingUs);
            }
            if !p.partner.state.collecting() {
                return Some(Reason::PartnerNotCollecting);
            }
        }
        if p.may_distribute() && !bond.min_links_met {
            let available = bond
                .sel
                .ports
                .iter()
                .filter_map(|&x| self.ports[x].as_ref())
                .filter(|q| q.aggregator == bond.sel.active && q.may_distribute())
                .count();
            return Some(Reason::BelowMinLinks {
                available: available as u16,
                min_links: b.min_links,
            });
        }
        Some(Reason::Settling)
    }

    /// A member's name (as configured), for text that names other members.
    pub fn port_name(&self, port: PortId) -> Option<&str> {
        let pi = self.port_index(port).ok()?;
        self.ports[pi].as_ref().map(|p| p.cfg.name.as_str())
    }

    /// Everything about a member. Timer values are remaining times relative to `now`.
    pub fn port_info(&self, port: PortId, now: Instant) -> Result<PortInfo, EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_ref().expect("port");
        let bond = self.bonds[p.bond].as_ref().expect("bond");
        let rem = |t: Timer| p.timer(t).map(|x| x.saturating_duration_since(now));
        Ok(PortInfo {
            id: p.id,
            bond: bond.id,
            name: p.cfg.name.clone(),
            mac: p.cfg.mac,
            link: p.link,
            unknown_link: p.unknown_link,
            actor: p.actor_info(&bond.cfg),
            partner: p.partner,
            partner_from_lacpdu: p.partner_from_pdu,
            matched: p.matched,
            rx_state: p.rx,
            periodic_state: p.ptx,
            mux_state: p.mux,
            actor_churn: p.actor_churn,
            partner_churn: p.partner_churn,
            selected: p.selected,
            aggregator: p.aggregator,
            ntt: p.ntt,
            timers: TimerInfo {
                current_while: rem(Timer::CurrentWhile),
                periodic: rem(Timer::Periodic),
                wait_while: rem(Timer::WaitWhile),
                actor_churn: rem(Timer::ActorChurn),
                partner_churn: rem(Timer::PartnerChurn),
            },
            collecting: p.published_collecting,
            distributing: p.published_distributing,
            fallback: p.fallback,
            drained: p.drained,
            loopback: p.loopback,
            reason: self.reason_of(pi, now),
            counters: p.counters,
            last_rx: p.last_rx,
            last_tx: p.last_tx,
            last_lacpdu: p.last_lacpdu,
            history: p.history.iter().copied().collect(),
        })
    }

    /// Everything about a bond.
    pub fn bond_info(&self, bond: BondId) -> Result<BondInfo, EngineError> {
        let bi = self.bond_index(bond)?;
        let b = self.bonds[bi].as_ref().expect("bond");
        let aggregators = b
            .sel
            .aggs
            .iter()
            .map(|a| AggregatorInfo {
                id: a.id,
                actor_key: a.lag.actor_key,
                partner_system: a.lag.partner,
                partner_key: a.lag.partner_key,
                individual: a.lag.individual.is_some(),
                members: a.members.iter().map(|&m| PortId(m as u32)).collect(),
                active: Some(a.id) == b.sel.active,
            })
            .collect();
        let fallback_active = b
            .sel
            .ports
            .iter()
            .filter_map(|&pi| self.ports[pi].as_ref())
            .any(|p| p.fallback);
        Ok(BondInfo {
            id: b.id,
            name: b.cfg.name.clone(),
            system: b.cfg.system,
            admin_key: b.cfg.admin_key,
            activity: b.cfg.activity,
            rate: b.cfg.rate,
            selection: b.cfg.selection,
            min_links: b.cfg.min_links,
            max_active: b.cfg.max_active,
            fallback: b.cfg.fallback,
            fallback_active,
            mux: b.cfg.mux,
            active_aggregator: b.sel.active,
            aggregators,
            ports: b.sel.ports.iter().map(|&pi| PortId(pi as u32)).collect(),
            distribution: b.published.clone(),
            min_links_met: b.min_links_met,
        })
    }
}
