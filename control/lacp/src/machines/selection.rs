//! Selection Logic (802.1AX-2014 clause 6.4.14), restricted to what a bond needs: every member
//! selects the aggregator of its LAG ID, and exactly one aggregator per bond is *active* (the one
//! the dataplane sends on). Members of other aggregators are STANDBY with a reason.
//!
//! Active aggregator, best first (documented in docs/lacp-engine.md):
//! 1. has an LACP partner (a defaulted aggregator only wins when fallback is on);
//! 2. aggregatable before individual;
//! 3. "followed": the partner system has priority over ours and already reports sync on one of
//!    the aggregator's links. The higher-priority system decides (as 6.7.1 lets it decide which
//!    links are active), so two fastlag systems never lock on different aggregators;
//! 4. policy metric: `count` (usable members, then bandwidth), `bandwidth` (summed known speed,
//!    then count), `stable` (count then bandwidth for a fresh choice only);
//! 5. tie-break: lowest (port priority, port number) of the controlling system (ours when our
//!    System ID is lower, else the partner's), then partner System ID, then aggregator id.
//!
//! Stickiness: `stable` keeps the current active aggregator unless a candidate is better on
//! 1-3; `count`/`bandwidth` keep it unless a candidate is better on 1-4. Only an aggregator
//! with a member attached is kept so: until then every round chooses by the rule, so the
//! first partner heard does not win by arriving first.

use core::cmp::{Ordering, Reverse};

use super::{Ctx, Port};
use crate::config::{Fallback, SelectionPolicy, SystemId};
use crate::engine::PortId;
use crate::info::{AggregatorId, IndividualCause, KeySide, MuxState, Reason, RxState, Selected};

/// The LAG ID of a link (802.1AX-2014 clause 6.3.6). Individual links carry their port numbers,
/// which makes their LAG ID unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LagId {
    pub(crate) actor: SystemId,
    pub(crate) actor_key: u16,
    pub(crate) partner: SystemId,
    pub(crate) partner_key: u16,
    pub(crate) individual: Option<(u16, u16)>,
}

pub(crate) struct Aggregator {
    pub(crate) id: AggregatorId,
    pub(crate) lag: LagId,
    /// Port indices, in joining order.
    pub(crate) members: Vec<usize>,
}

/// The selection state of one bond.
#[derive(Default)]
pub(crate) struct SelState {
    /// Port indices of the members, ascending.
    pub(crate) ports: Vec<usize>,
    pub(crate) aggs: Vec<Aggregator>,
    pub(crate) active: Option<AggregatorId>,
}

pub(crate) fn lag_id(p: &Port, ctx: &Ctx<'_>) -> LagId {
    let b = ctx.bond;
    let individual = !p.aggregatable() || !p.partner.state.aggregation();
    LagId {
        actor: b.system,
        actor_key: p.oper_key(b),
        partner: p.partner.system_id(),
        partner_key: p.partner.key,
        individual: individual.then_some((p.cfg.port_number, p.partner.port)),
    }
}

/// May take part in selection at all: carrier, no loopback, and a partner that spoke LACP
/// (CURRENT, or EXPIRED with recorded information); DEFAULTED only when fallback is on.
pub(crate) fn eligible(p: &Port, ctx: &Ctx<'_>) -> bool {
    p.link.up
        && p.lacp_enabled
        && !p.loopback
        && match p.rx {
            RxState::Current => true,
            RxState::Expired => p.partner_from_pdu,
            RxState::Defaulted => ctx.bond.fallback == Fallback::Individual,
            _ => false,
        }
}

fn pending_detach(p: &Port) -> bool {
    p.selected == Selected::Unselected && p.mux != MuxState::Detached
}

struct Stats {
    idx: usize,
    lacp: bool,
    aggregatable: bool,
    followed: bool,
    count: u64,
    bandwidth: u64,
    tiebreak: (u16, u16),
    partner: SystemId,
    id: AggregatorId,
    /// Usable members in the controlling system's order.
    cands: Vec<usize>,
}

/// Order of links for max_active and tie-breaks: the system with the lower System ID decides,
/// with its own port priorities and numbers (802.1AX-2014 clause 6.7.1), so both ends agree.
fn link_order(p: &Port, ours_controls: bool) -> (u16, u16) {
    if ours_controls {
        (p.cfg.port_priority, p.cfg.port_number)
    } else {
        (p.partner.port_priority, p.partner.port)
    }
}

fn primary(s: &Stats) -> (bool, bool, bool) {
    (s.lacp, s.aggregatable, s.followed)
}

fn metric(s: &Stats, policy: SelectionPolicy) -> (u64, u64) {
    match policy {
        SelectionPolicy::Stable | SelectionPolicy::Count => (s.count, s.bandwidth),
        SelectionPolicy::Bandwidth => (s.bandwidth, s.count),
    }
}

fn full_cmp(a: &Stats, b: &Stats, policy: SelectionPolicy) -> Ordering {
    primary(a)
        .cmp(&primary(b))
        .then(metric(a, policy).cmp(&metric(b, policy)))
        .then(Reverse(a.tiebreak).cmp(&Reverse(b.tiebreak)))
        .then(Reverse(a.partner).cmp(&Reverse(b.partner)))
        .then(Reverse(a.id).cmp(&Reverse(b.id)))
}

fn new_agg_id(sel: &SelState, preferred: u16) -> AggregatorId {
    let used = |id: u16| sel.aggs.iter().any(|a| a.id.0 == id);
    if !used(preferred) {
        return AggregatorId(preferred);
    }
    (1..=u16::MAX)
        .find(|&i| !used(i))
        .map(AggregatorId)
        .unwrap_or(AggregatorId(preferred))
}

fn port(ports: &mut [Option<Port>], pi: usize) -> &mut Port {
    ports[pi].as_mut().expect("bond member exists")
}

fn relative_reason(
    this: &Aggregator,
    active: &Aggregator,
    active_port: Option<PortId>,
    p: &Port,
) -> Reason {
    let lacp_this = p.partner_from_pdu;
    if !lacp_this {
        if let Some(active_port) = active_port {
            return Reason::FallbackStandby { active_port };
        }
    }
    if this.lag.individual.is_some() {
        let cause = if !p.aggregatable() {
            IndividualCause::HalfDuplex
        } else if !p.partner_from_pdu {
            IndividualCause::PartnerDefaulted
        } else {
            IndividualCause::PartnerIndividual
        };
        return Reason::Individual { cause };
    }
    if this.lag.partner != active.lag.partner {
        return Reason::OtherPartnerSystem {
            aggregator_partner: active.lag.partner,
            port_partner: this.lag.partner,
        };
    }
    if this.lag.partner_key != active.lag.partner_key {
        return Reason::KeyMismatch {
            side: KeySide::Partner,
            aggregator_key: active.lag.partner_key,
            port_key: this.lag.partner_key,
        };
    }
    if this.lag.actor_key != active.lag.actor_key {
        return Reason::KeyMismatch {
            side: KeySide::Actor,
            aggregator_key: active.lag.actor_key,
            port_key: this.lag.actor_key,
        };
    }
    Reason::NotActiveAggregator { active: active.id }
}

/// One round of selection for a bond. Returns true when anything changed.
pub(crate) fn select(sel: &mut SelState, ports: &mut [Option<Port>], ctx: &mut Ctx<'_>) -> bool {
    let b = ctx.bond;
    let mut changed = false;

    // Phase 1: membership. A member whose LAG ID changed, or which may no longer take part,
    // goes UNSELECTED; once its Mux is DETACHED it leaves the aggregator and may select the
    // aggregator of its new LAG ID.
    for i in 0..sel.ports.len() {
        let pi = sel.ports[i];
        let elig = eligible(port(ports, pi), ctx);
        let lag = lag_id(port(ports, pi), ctx);
        if let Some(aid) = port(ports, pi).aggregator {
            let same = sel
                .aggs
                .iter()
                .find(|a| a.id == aid)
                .is_some_and(|a| a.lag == lag);
            let p = port(ports, pi);
            if !elig || !same {
                changed |= p.set_selected(Selected::Unselected, ctx);
                if p.mux == MuxState::Detached {
                    if let Some(a) = sel.aggs.iter_mut().find(|a| a.id == aid) {
                        a.members.retain(|&m| m != pi);
                    }
                    p.aggregator = None;
                    p.fallback = false;
                    changed = true;
                }
            }
        }
        let p = port(ports, pi);
        if p.aggregator.is_none() && elig && p.mux == MuxState::Detached {
            let id = match sel.aggs.iter_mut().find(|a| a.lag == lag) {
                Some(a) => {
                    a.members.push(pi);
                    a.id
                }
                None => {
                    let id = new_agg_id(sel, p.cfg.port_number);
                    sel.aggs.push(Aggregator {
                        id,
                        lag,
                        members: vec![pi],
                    });
                    id
                }
            };
            port(ports, pi).aggregator = Some(id);
            changed = true;
        }
    }
    sel.aggs.retain(|a| !a.members.is_empty());

    // Phase 2: the active aggregator.
    let our = b.system;
    let limit = b
        .max_active
        .filter(|&m| m > 0)
        .map_or(usize::MAX, usize::from);
    let mut stats: Vec<Stats> = Vec::with_capacity(sel.aggs.len());
    for (idx, a) in sel.aggs.iter().enumerate() {
        let lacp = a
            .members
            .iter()
            .any(|&m| ports[m].as_ref().is_some_and(|p| p.partner_from_pdu));
        let ours_controls = !lacp || our < a.lag.partner;
        let mut cands: Vec<usize> = a
            .members
            .iter()
            .copied()
            .filter(|&m| {
                let p = ports[m].as_ref().expect("member");
                eligible(p, ctx) && !pending_detach(p) && !p.drained
            })
            .collect();
        cands.sort_by_key(|&m| {
            let p = ports[m].as_ref().expect("member");
            (link_order(p, ours_controls), p.cfg.port_number)
        });
        if cands.is_empty() {
            continue;
        }
        let counted = cands.len().min(limit);
        let bandwidth = cands[..counted]
            .iter()
            .map(|&m| {
                u64::from(
                    ports[m]
                        .as_ref()
                        .expect("member")
                        .link
                        .speed
                        .mbps()
                        .unwrap_or(0),
                )
            })
            .sum();
        let followed = lacp
            && a.lag.partner < our
            && cands.iter().any(|&m| {
                let p = ports[m].as_ref().expect("member");
                p.partner_from_pdu && p.partner.state.synchronization()
            });
        let first = ports[cands[0]].as_ref().expect("member");
        stats.push(Stats {
            idx,
            lacp,
            aggregatable: a.lag.individual.is_none(),
            followed,
            count: counted as u64,
            bandwidth,
            tiebreak: link_order(first, ours_controls),
            partner: a.lag.partner,
            id: a.id,
            cands,
        });
    }
    let best = stats.iter().max_by(|x, y| full_cmp(x, y, b.selection));
    // Stickiness protects traffic, so it holds only for an aggregator that carries some:
    // one with a member attached. Before that (all members still in their aggregate wait)
    // the choice is made by the rule above, not by which partner was heard first.
    let current = sel
        .active
        .and_then(|id| stats.iter().find(|s| s.id == id))
        .filter(|s| {
            sel.aggs[s.idx].members.iter().any(|&m| {
                let p = ports[m].as_ref().expect("member");
                !matches!(p.mux, MuxState::Detached | MuxState::Waiting)
            })
        });
    let chosen = match (best, current) {
        (None, _) => None,
        (Some(best), None) => Some(best),
        (Some(best), Some(cur)) => {
            let keep = match b.selection {
                SelectionPolicy::Stable => primary(cur) >= primary(best),
                _ => {
                    (primary(cur), metric(cur, b.selection))
                        >= (primary(best), metric(best, b.selection))
                }
            };
            Some(if keep { cur } else { best })
        }
    };
    let chosen_id = chosen.map(|s| s.id);
    if chosen_id != sel.active {
        sel.active = chosen_id;
        changed = true;
    }

    // Phase 3: Selected / Standby and the reason for each member of an aggregator.
    let min_links = usize::from(b.min_links.max(1));
    let active_stats = chosen;
    let fallback_port = active_stats
        .filter(|s| !s.lacp)
        .map(|s| ports[s.cands[0]].as_ref().expect("member").id);
    let mut assign: Vec<(usize, Selected, Option<Reason>, bool)> = Vec::new();
    for (idx, a) in sel.aggs.iter().enumerate() {
        let st = stats.iter().find(|s| s.idx == idx);
        let is_active = Some(a.id) == chosen_id;
        for &m in &a.members {
            let p = ports[m].as_ref().expect("member");
            if pending_detach(p) || !eligible(p, ctx) {
                continue;
            }
            if p.drained {
                assign.push((m, Selected::Standby, Some(Reason::Drained), false));
                continue;
            }
            if is_active {
                let st = st.expect("active aggregator has stats");
                let pos = st.cands.iter().position(|&c| c == m).unwrap_or(usize::MAX);
                let chosen_n = st.cands.len().min(limit);
                if chosen_n < min_links {
                    assign.push((
                        m,
                        Selected::Standby,
                        Some(Reason::BelowMinLinks {
                            available: chosen_n as u16,
                            min_links: b.min_links,
                        }),
                        false,
                    ));
                } else if pos < chosen_n {
                    assign.push((m, Selected::Selected, None, !st.lacp));
                } else {
                    assign.push((
                        m,
                        Selected::Standby,
                        Some(Reason::Standby {
                            max_active: b.max_active.unwrap_or(0),
                        }),
                        false,
                    ));
                }
            } else {
                let reason = match active_stats {
                    Some(act) => relative_reason(a, &sel.aggs[act.idx], fallback_port, p),
                    None => Reason::Settling,
                };
                assign.push((m, Selected::Standby, Some(reason), false));
            }
        }
    }
    for (m, s, reason, fb) in assign {
        let p = port(ports, m);
        changed |= p.set_selected(s, ctx);
        if p.fallback != fb {
            p.fallback = fb;
            changed = true;
        }
        p.exclusion = reason;
    }
    // Members outside any aggregator carry no selection reason.
    for &pi in &sel.ports {
        let p = port(ports, pi);
        if p.aggregator.is_none() {
            p.exclusion = None;
            p.fallback = false;
        } else if pending_detach(p) {
            p.exclusion = Some(Reason::Reselecting);
        }
    }
    changed
}

/// Ready for an aggregator (802.1AX-2014 clause 6.4.8): every SELECTED member waiting to attach
/// to it has Ready_N. (STANDBY members are not waiting to attach and do not hold others back.)
pub(crate) fn ready(sel: &SelState, ports: &[Option<Port>], agg: AggregatorId) -> bool {
    sel.aggs.iter().find(|a| a.id == agg).is_some_and(|a| {
        a.members.iter().all(|&m| {
            let p = ports[m].as_ref().expect("member");
            !(p.selected == Selected::Selected && p.mux == MuxState::Waiting) || p.ready_n
        })
    })
}
