//! The settle loop: after any input the bond's machines run until none takes a transition.
//! 802.1AX-2014 specifies the machines of clause 6.4 as running continuously; settling is the
//! discrete equivalent, in the order Receive and Periodic (per member), Selection (per bond),
//! Mux, then both Churn machines. Then the result is published as events (Collecting,
//! Distributing, the active aggregator, the distribution set) and each member's next deadline
//! is re-indexed.

use crate::info::{AggregatorId, Cause, Event, Side};
use crate::machines::selection;
use crate::machines::Ctx;
use crate::time::Instant;

use super::{Bond, Engine, PortId};

/// Rounds of the settle loop before it gives up and counts an overrun (a machine oscillating
/// is a bug; the tests require `EngineStats::settle_overruns` to stay 0).
const SETTLE_LIMIT: u32 = 64;

impl Engine {
    /// Runs the machines of bond `bi` until none takes a transition, then publishes and
    /// re-indexes its members. `cause` is written to the history of every transition taken.
    pub(super) fn settle(&mut self, bi: usize, now: Instant, cause: Cause) {
        let Engine {
            bonds,
            ports,
            events,
            stats,
            ..
        } = self;
        let Some(bond) = bonds[bi].as_mut() else {
            return;
        };
        let Bond { cfg, sel, .. } = bond;
        let mut ctx = Ctx {
            now,
            cause,
            bond: cfg,
            events,
        };
        stats.settles += 1;
        for &pi in &sel.ports {
            let p = ports[pi].as_mut().expect("member");
            let before = p.actor_state;
            p.refresh_admin_bits(cfg);
            if before != p.actor_state {
                p.ntt = true;
            }
        }
        let mut iterations = 0;
        loop {
            let mut changed = false;
            for &pi in &sel.ports {
                let p = ports[pi].as_mut().expect("member");
                changed |= p.rx_step(&mut ctx);
                changed |= p.ptx_step(&mut ctx);
            }
            changed |= selection::select(sel, ports, &mut ctx);
            let ready: Vec<(AggregatorId, bool)> = sel
                .aggs
                .iter()
                .map(|a| (a.id, selection::ready(sel, ports, a.id)))
                .collect();
            for &pi in &sel.ports {
                let p = ports[pi].as_mut().expect("member");
                let r = p
                    .aggregator
                    .and_then(|a| ready.iter().find(|(id, _)| *id == a))
                    .is_some_and(|(_, r)| *r);
                changed |= p.mux_step(r, &mut ctx);
            }
            for &pi in &sel.ports {
                let p = ports[pi].as_mut().expect("member");
                changed |= p.churn_step(Side::Actor, &mut ctx);
                changed |= p.churn_step(Side::Partner, &mut ctx);
            }
            if !changed {
                break;
            }
            iterations += 1;
            if iterations >= SETTLE_LIMIT {
                stats.settle_overruns += 1;
                break;
            }
        }
        for &pi in &sel.ports {
            let p = ports[pi].as_mut().expect("member");
            if !p.tx_allowed() {
                p.ntt = false;
            }
        }
        self.publish(bi);
        let members = self.bonds[bi]
            .as_ref()
            .map(|b| b.sel.ports.clone())
            .unwrap_or_default();
        for pi in members {
            self.reindex(pi, now);
        }
    }

    /// Turns the machines' state into events: Collecting/Distributing per member, the active
    /// aggregator, and the distribution set (empty below min_links).
    fn publish(&mut self, bi: usize) {
        let Some(bond) = self.bonds[bi].as_mut() else {
            return;
        };
        let active = bond.sel.active;
        let mut members: Vec<(u16, PortId)> = bond
            .sel
            .ports
            .iter()
            .filter_map(|&pi| self.ports[pi].as_ref())
            .filter(|p| p.aggregator.is_some() && p.aggregator == active && p.may_distribute())
            .map(|p| (p.cfg.port_number, p.id))
            .collect();
        members.sort_unstable();
        let met = members.len() >= usize::from(bond.cfg.min_links.max(1));
        let published: Vec<PortId> = if met {
            members.into_iter().map(|(_, id)| id).collect()
        } else {
            Vec::new()
        };
        bond.min_links_met = met;
        for &pi in &bond.sel.ports {
            let Some(p) = self.ports[pi].as_mut() else {
                continue;
            };
            let col = p.collecting();
            if col != p.published_collecting {
                p.published_collecting = col;
                self.events.push_back(Event::Collecting {
                    port: p.id,
                    enabled: col,
                });
            }
            let dist = published.contains(&p.id);
            if dist != p.published_distributing {
                p.published_distributing = dist;
                self.events.push_back(Event::Distributing {
                    port: p.id,
                    enabled: dist,
                });
            }
        }
        if active != bond.published_active {
            bond.published_active = active;
            self.events.push_back(Event::ActiveAggregator {
                bond: bond.id,
                aggregator: active,
            });
        }
        if published != bond.published {
            bond.published = published.clone();
            self.events.push_back(Event::Distribution {
                bond: bond.id,
                members: published,
            });
        }
    }

    /// Puts a member's next deadline into the ordered index and the member into (or out of) the
    /// transmit queue, so that `poll_timeout` and `poll_transmit` need not scan every member.
    pub(super) fn reindex(&mut self, pi: usize, now: Instant) {
        let Some(p) = self.ports[pi].as_mut() else {
            return;
        };
        let Some(b) = self.bonds[p.bond].as_ref() else {
            return;
        };
        let d = p.deadline(now, &b.cfg);
        if d != p.indexed_deadline {
            if let Some(old) = p.indexed_deadline {
                self.deadlines.remove(&(old, pi));
            }
            if let Some(new) = d {
                self.deadlines.insert((new, pi));
            }
            p.indexed_deadline = d;
        }
        let wants = p.wants_tx();
        if wants != p.in_tx_queue {
            if wants {
                self.tx_queue.insert(pi);
            } else {
                self.tx_queue.remove(&pi);
            }
            p.in_tx_queue = wants;
        }
    }
}
