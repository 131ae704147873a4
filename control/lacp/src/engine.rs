//! The engine: bonds, members, and the sans-IO interface the control thread drives.
//!
//! ```text
//! loop {
//!     for each received slow-protocols frame: engine.handle_frame(port, bytes, now)
//!     for each link change:                   engine.handle_link(port, status, now)
//!     engine.handle_timeout(now)
//!     while let Some(t) = engine.poll_transmit(now) { send t.frame on t.port }
//!     while let Some(e) = engine.poll_event()       { apply e (collecting, distribution table) }
//!     wait until engine.poll_timeout() or the next input
//! }
//! ```
//!
//! Inside, every input updates the affected member's machines and then *settles* its bond: the
//! Receive, Periodic, Selection, Mux and Churn machines run until none takes a transition
//! (802.1AX machines are specified as running continuously; settling is the discrete
//! equivalent). Deadlines are kept in an ordered index, so the cost of `handle_timeout` and
//! `poll_timeout` does not grow with the number of members.

use core::fmt;
use core::time::Duration;
use std::collections::{BTreeSet, VecDeque};

use crate::config::{
    Activity, BondConfig, ConfigError, Duplex, Fallback, LinkStatus, PortConfig, Rate,
    SelectionPolicy, SystemId,
};
use crate::info::{
    AggregatorId, AggregatorInfo, BondInfo, Cause, Event, MuxState, PortCounters, PortInfo, Reason,
    RxState, Selected, Side, TimerInfo, Transmit, TxKind,
};
use crate::machines::selection::{self, SelState};
use crate::machines::{Ctx, PduOutcome, Port, Timer};
use crate::time::Instant;
use crate::wire::{
    parse_frame, Frame, LacpduRepr, MarkerRepr, PortState, SlowPdu, WireError,
    NEAREST_CUSTOMER_BRIDGE, NEAREST_NON_TPMR_BRIDGE, SLOW_PROTOCOLS_MULTICAST,
};

/// Identifier of a bond within an engine (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BondId(pub u32);

/// Identifier of a member port within an engine (never reused, even after removal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u32);

impl fmt::Display for BondId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bond#{}", self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port#{}", self.0)
    }
}

/// How [`Engine::handle_frame`] classified a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxKind {
    /// A valid LACPDU (processed).
    Lacpdu,
    /// A Marker Information PDU (answered unless rate-limited).
    MarkerInformation,
    /// A Marker Response PDU (counted; we never send requests).
    MarkerResponse,
    /// Counted as unknown_rx: another slow protocol, a VLAN-tagged frame, an unknown marker TLV.
    Unknown,
    /// Counted as illegal_rx: malformed PDU or illegal subtype. No state changed.
    Illegal,
    /// Ignored: destination is neither a Slow Protocols group address nor the member's MAC.
    Ignored,
}

/// A refused engine call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No such bond (never created, or removed).
    #[error("unknown bond {0}")]
    UnknownBond(BondId),
    /// No such port (never created, or removed).
    #[error("unknown port {0}")]
    UnknownPort(PortId),
    /// The configuration is refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Engine-wide counters (for tests and health checks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bond settles run.
    pub settles: u64,
    /// Settles that hit the iteration bound (a machine oscillating: a bug; tests require 0).
    pub settle_overruns: u64,
}

struct Bond {
    id: BondId,
    cfg: BondConfig,
    sel: SelState,
    published: Vec<PortId>,
    published_active: Option<AggregatorId>,
    min_links_met: bool,
}

struct FinalFrame {
    release: Instant,
    port: PortId,
    frame: Frame,
}

const SETTLE_LIMIT: u32 = 64;

/// The LACP engine: any number of bonds and members, driven from outside.
#[derive(Default)]
pub struct Engine {
    bonds: Vec<Option<Bond>>,
    ports: Vec<Option<Port>>,
    deadlines: BTreeSet<(Instant, usize)>,
    tx_queue: BTreeSet<usize>,
    tx_cursor: usize,
    finals: VecDeque<FinalFrame>,
    events: VecDeque<Event>,
    stats: EngineStats,
    scratch: Vec<usize>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("bonds", &self.bonds.iter().flatten().count())
            .field("ports", &self.ports.iter().flatten().count())
            .field("pending_events", &self.events.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn cause_rank(c: Cause) -> u8 {
    match c {
        Cause::CurrentWhileExpired => 4,
        Cause::LoopbackCleared => 3,
        Cause::WaitWhileExpired => 2,
        _ => 1,
    }
}

impl Engine {
    /// An engine with no bond.
    pub fn new() -> Engine {
        Engine::default()
    }

    // ----- configuration ---------------------------------------------------------------------

    fn bond_index(&self, bond: BondId) -> Result<usize, EngineError> {
        let i = bond.0 as usize;
        match self.bonds.get(i) {
            Some(Some(_)) => Ok(i),
            _ => Err(EngineError::UnknownBond(bond)),
        }
    }

    fn port_index(&self, port: PortId) -> Result<usize, EngineError> {
        let i = port.0 as usize;
        match self.ports.get(i) {
            Some(Some(_)) => Ok(i),
            _ => Err(EngineError::UnknownPort(port)),
        }
    }

    fn check_system_key(
        &self,
        skip: Option<usize>,
        name: &str,
        system: SystemId,
        key: u16,
    ) -> Result<(), ConfigError> {
        for (i, b) in self.bonds.iter().enumerate() {
            let Some(b) = b else { continue };
            if Some(i) != skip && b.cfg.system == system && b.cfg.admin_key == key {
                return Err(ConfigError::DuplicateSystemKey {
                    name: name.to_string(),
                    system,
                    key,
                    other: b.cfg.name.clone(),
                });
            }
        }
        Ok(())
    }

    fn check_port_number(
        &self,
        skip_port: Option<usize>,
        system: SystemId,
        cfg: &PortConfig,
    ) -> Result<(), ConfigError> {
        if cfg.port_number == 0 {
            return Err(ConfigError::PortNumberZero {
                name: cfg.name.clone(),
            });
        }
        for (i, p) in self.ports.iter().enumerate() {
            let Some(p) = p else { continue };
            if Some(i) == skip_port || p.cfg.port_number != cfg.port_number {
                continue;
            }
            if self.bonds[p.bond]
                .as_ref()
                .is_some_and(|b| b.cfg.system == system)
            {
                return Err(ConfigError::DuplicatePortNumber {
                    name: cfg.name.clone(),
                    number: cfg.port_number,
                    other: p.cfg.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Adds a bond. Refused when the configuration is invalid or another bond has the same
    /// System ID and admin key (the partner would see one LAG).
    pub fn add_bond(&mut self, cfg: BondConfig) -> Result<BondId, EngineError> {
        cfg.validate()?;
        self.check_system_key(None, &cfg.name, cfg.system, cfg.admin_key)?;
        let id = BondId(self.bonds.len() as u32);
        self.bonds.push(Some(Bond {
            id,
            cfg,
            sel: SelState::default(),
            published: Vec::new(),
            published_active: None,
            min_links_met: false,
        }));
        Ok(id)
    }

    /// Removes a bond and all its members (each sends its final LACPDU).
    pub fn remove_bond(&mut self, bond: BondId, now: Instant) -> Result<(), EngineError> {
        let bi = self.bond_index(bond)?;
        let members: Vec<usize> = self.bonds[bi]
            .as_ref()
            .map(|b| b.sel.ports.clone())
            .unwrap_or_default();
        for pi in members {
            self.remove_port(PortId(pi as u32), now)?;
        }
        self.bonds[bi] = None;
        Ok(())
    }

    /// Adds a member to a bond. The link starts down: report it with [`Engine::handle_link`].
    pub fn add_port(
        &mut self,
        bond: BondId,
        cfg: PortConfig,
        now: Instant,
    ) -> Result<PortId, EngineError> {
        let bi = self.bond_index(bond)?;
        let (system, history_len) = {
            let b = self.bonds[bi].as_ref().expect("bond");
            (b.cfg.system, b.cfg.history_len)
        };
        self.check_port_number(None, system, &cfg)?;
        let pi = self.ports.len();
        let id = PortId(pi as u32);
        let mut port = Port::new(id, bi, cfg, history_len, now);
        {
            let b = self.bonds[bi].as_mut().expect("bond");
            let mut ctx = Ctx {
                now,
                cause: Cause::Begin,
                bond: &b.cfg,
                events: &mut self.events,
            };
            port.begin(&mut ctx);
            b.sel.ports.push(pi);
        }
        self.ports.push(Some(port));
        self.settle(bi, now, Cause::Begin);
        Ok(id)
    }

    /// Removes a member. If it was sending LACPDUs, a final LACPDU with Synchronization,
    /// Collecting, Distributing and Aggregation cleared is queued so the partner stops using the
    /// link at once (as Linux `bond_3ad_unbind_slave`); [`Engine::poll_transmit`] returns it
    /// (within the 3-per-second limit, so at most one `fast_periodic` later) even though the
    /// port id is no longer valid for anything else.
    pub fn remove_port(&mut self, port: PortId, now: Instant) -> Result<(), EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].take().expect("port");
        let bi = p.bond;
        if let Some(d) = p.indexed_deadline {
            self.deadlines.remove(&(d, pi));
        }
        self.tx_queue.remove(&pi);
        if let Some(b) = self.bonds[bi].as_mut() {
            if p.tx_allowed() {
                let mut repr = p.lacpdu(&b.cfg);
                repr.actor.state.remove(
                    PortState::SYNCHRONIZATION
                        | PortState::COLLECTING
                        | PortState::DISTRIBUTING
                        | PortState::AGGREGATION,
                );
                let release = p.tx_release(&b.cfg).filter(|r| *r > now).unwrap_or(now);
                self.finals.push_back(FinalFrame {
                    release,
                    port,
                    frame: Frame::lacpdu(p.cfg.mac, &repr),
                });
            }
            b.sel.ports.retain(|&x| x != pi);
            for a in &mut b.sel.aggs {
                a.members.retain(|&x| x != pi);
            }
            b.sel.aggs.retain(|a| !a.members.is_empty());
        }
        if p.published_collecting {
            self.events.push_back(Event::Collecting {
                port,
                enabled: false,
            });
        }
        if p.published_distributing {
            self.events.push_back(Event::Distributing {
                port,
                enabled: false,
            });
        }
        self.settle(bi, now, Cause::Admin);
        Ok(())
    }

    // ----- inputs ----------------------------------------------------------------------------

    /// Link state of a member: carrier, speed, duplex (each of the last two may be unknown).
    /// Unknown never stops LACP; half duplex makes the link Individual but LACP keeps running.
    pub fn handle_link(
        &mut self,
        port: PortId,
        status: LinkStatus,
        now: Instant,
    ) -> Result<(), EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_mut().expect("port");
        let b = &self.bonds[p.bond].as_ref().expect("bond").cfg;
        let old = p.link;
        if old == status {
            return Ok(());
        }
        let old_key = p.oper_key(b);
        p.link = status;
        if status.up {
            let speed = status.speed.mbps().is_none();
            let duplex = status.duplex == Duplex::Unknown;
            if speed || duplex {
                let first = p.unknown_link.first_seen.is_none();
                p.unknown_link.speed |= speed;
                p.unknown_link.duplex |= duplex;
                if first {
                    p.unknown_link.first_seen = Some(now);
                    self.events.push_back(Event::LinkAttributesUnknown {
                        port,
                        speed,
                        duplex,
                    });
                }
            }
        }
        if p.oper_key(b) != old_key {
            p.ntt = true;
        }
        let cause = match (old.up, status.up) {
            (false, true) => {
                p.link_up_since = now;
                Cause::LinkUp
            }
            (true, false) => Cause::LinkDown,
            _ => Cause::LinkChanged,
        };
        let bi = p.bond;
        self.settle(bi, now, cause);
        Ok(())
    }

    /// A whole received Ethernet frame (no FCS) from a member.
    ///
    /// Accepted destinations: the Slow Protocols group address 01-80-C2-00-00-02, the two other
    /// group addresses 802.1AX-2014 allows for LACPDUs (01-80-C2-00-00-00 and -03), and the
    /// member's own MAC. VLAN-tagged frames are counted (unknown_rx, vlan_tagged_rx) and ignored.
    /// Malformed frames are counted as illegal and change nothing.
    pub fn handle_frame(
        &mut self,
        port: PortId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<RxKind, EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_mut().expect("port");
        let frame = match parse_frame(bytes) {
            Ok(f) => f,
            Err(e) => {
                if e.is_illegal() {
                    p.counters.illegal_rx += 1;
                    return Ok(RxKind::Illegal);
                }
                p.counters.unknown_rx += 1;
                if let WireError::VlanTagged(_) = e {
                    p.counters.vlan_tagged_rx += 1;
                }
                return Ok(RxKind::Unknown);
            }
        };
        let dst = frame.header.dst;
        if dst != SLOW_PROTOCOLS_MULTICAST
            && dst != NEAREST_CUSTOMER_BRIDGE
            && dst != NEAREST_NON_TPMR_BRIDGE
            && dst != p.cfg.mac
        {
            p.counters.foreign_dst_rx += 1;
            return Ok(RxKind::Ignored);
        }
        match frame.pdu {
            SlowPdu::Lacpdu(repr) => {
                self.handle_pdu(port, &repr, now)?;
                Ok(RxKind::Lacpdu)
            }
            SlowPdu::Marker(m) => {
                self.handle_marker(port, &m, now)?;
                Ok(match m.kind {
                    crate::wire::MarkerKind::Information => RxKind::MarkerInformation,
                    crate::wire::MarkerKind::Response => RxKind::MarkerResponse,
                })
            }
            SlowPdu::Other { .. } => {
                p.counters.unknown_rx += 1;
                Ok(RxKind::Unknown)
            }
        }
    }

    /// A parsed LACPDU received on a member (the Receive machine's PDU input).
    pub fn handle_pdu(
        &mut self,
        port: PortId,
        pdu: &LacpduRepr,
        now: Instant,
    ) -> Result<(), EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_mut().expect("port");
        let bi = p.bond;
        let b = self.bonds[bi].as_ref().expect("bond");
        let mut ctx = Ctx {
            now,
            cause: Cause::PduReceived,
            bond: &b.cfg,
            events: &mut self.events,
        };
        let settle = match p.rx_pdu(pdu, &mut ctx) {
            PduOutcome::Ignored => false,
            PduOutcome::Loopback { new } => new,
            PduOutcome::Accepted { relevant } => relevant,
        };
        if settle {
            self.settle(bi, now, Cause::PduReceived);
        } else {
            self.reindex(pi, now);
        }
        Ok(())
    }

    /// A parsed Marker PDU received on a member: information PDUs are answered with a response
    /// carrying the same requester fields (802.1AX-2014 clause 6.5.4.2), at most
    /// `timers.marker_limit` per second.
    pub fn handle_marker(
        &mut self,
        port: PortId,
        marker: &MarkerRepr,
        now: Instant,
    ) -> Result<(), EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_mut().expect("port");
        let b = &self.bonds[p.bond].as_ref().expect("bond").cfg;
        p.marker_rx(marker, now, b);
        self.reindex(pi, now);
        Ok(())
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = core::mem::take(&mut self.scratch);
        due.clear();
        while let Some(&(t, pi)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.ports[pi].as_mut() {
                p.indexed_deadline = None;
                due.push(pi);
            }
        }
        let mut dirty: Vec<(usize, Cause)> = Vec::new();
        for &pi in &due {
            let Some(p) = self.ports[pi].as_mut() else {
                continue;
            };
            let bi = p.bond;
            let Some(b) = self.bonds[bi].as_ref() else {
                continue;
            };
            let fired = |t: Timer| p.timer(t).is_some_and(|x| x <= now);
            let (cw, lb, ww, ac, pc, pe) = (
                fired(Timer::CurrentWhile),
                fired(Timer::Loopback),
                fired(Timer::WaitWhile),
                fired(Timer::ActorChurn),
                fired(Timer::PartnerChurn),
                fired(Timer::Periodic),
            );
            let mut mark = None;
            let mut ctx = Ctx {
                now,
                cause: Cause::CurrentWhileExpired,
                bond: &b.cfg,
                events: &mut self.events,
            };
            if cw {
                p.current_while_expired(&mut ctx);
                mark = Some(Cause::CurrentWhileExpired);
            }
            if lb {
                ctx.cause = Cause::LoopbackCleared;
                p.clear_loopback(&mut ctx);
                mark = mark.or(Some(Cause::LoopbackCleared));
            }
            if ww {
                p.wait_while_expired();
                mark = mark.or(Some(Cause::WaitWhileExpired));
            }
            ctx.cause = Cause::ChurnTimerExpired;
            if ac {
                p.churn_expired(Side::Actor, &mut ctx);
            }
            if pc {
                p.churn_expired(Side::Partner, &mut ctx);
            }
            if pe {
                ctx.cause = Cause::PeriodicTimerExpired;
                p.periodic_expired(&mut ctx);
            }
            match mark {
                Some(c) => match dirty.iter_mut().find(|(x, _)| *x == bi) {
                    Some(e) => {
                        if cause_rank(c) > cause_rank(e.1) {
                            e.1 = c
                        }
                    }
                    None => dirty.push((bi, c)),
                },
                None => self.reindex(pi, now),
            }
        }
        self.scratch = due;
        for (bi, cause) in dirty {
            self.settle(bi, now, cause);
        }
        // Ports whose only due item was a deferred transmission are re-indexed lazily: their
        // entry was popped above and `reindex` re-adds it only if still needed.
    }

    /// The next instant at which [`Engine::handle_timeout`] has work (or a deferred frame can
    /// be sent), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.deadlines.first().map(|&(t, _)| t);
        let f = self.finals.iter().map(|f| f.release).min();
        match (t, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next frame to send, if any is due at `now`. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(i) = self.finals.iter().position(|f| f.release <= now) {
            let f = self.finals.remove(i).expect("index");
            return Some(Transmit {
                port: f.port,
                kind: TxKind::FinalLacpdu,
                frame: f.frame,
            });
        }
        let n = self.tx_queue.len();
        let mut cursor = self.tx_cursor;
        for _ in 0..n {
            let next = self
                .tx_queue
                .range(cursor..)
                .next()
                .or_else(|| self.tx_queue.iter().next())
                .copied();
            let Some(pi) = next else { break };
            cursor = pi + 1;
            let Some(p) = self.ports[pi].as_mut() else {
                self.tx_queue.remove(&pi);
                continue;
            };
            let b = &self.bonds[p.bond].as_ref().expect("bond").cfg;
            let mut out = None;
            if !p.link.up {
                p.marker_queue.clear();
            } else if let Some(m) = p.marker_queue.pop_front() {
                p.counters.marker_response_pdus_tx += 1;
                out = Some(Transmit {
                    port: p.id,
                    kind: TxKind::MarkerResponse,
                    frame: Frame::marker(p.cfg.mac, &m),
                });
            }
            if out.is_none() && p.lacpdu_ready(now, b) {
                let repr = p.lacpdu(b);
                p.record_tx(now);
                out = Some(Transmit {
                    port: p.id,
                    kind: TxKind::Lacpdu,
                    frame: Frame::lacpdu(p.cfg.mac, &repr),
                });
            } else if out.is_none() && p.ntt && p.tx_allowed() {
                p.counters.tx_deferred += 1;
            }
            self.reindex(pi, now);
            if out.is_some() {
                self.tx_cursor = cursor;
                return out;
            }
        }
        self.tx_cursor = cursor;
        None
    }

    /// The next event, if any. Call until it returns `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- runtime administration ------------------------------------------------------------

    fn admin_bond(
        &mut self,
        bond: BondId,
        now: Instant,
        ntt: bool,
        f: impl FnOnce(&mut BondConfig),
    ) -> Result<(), EngineError> {
        let bi = self.bond_index(bond)?;
        let b = self.bonds[bi].as_mut().expect("bond");
        f(&mut b.cfg);
        if ntt {
            for &pi in &b.sel.ports {
                if let Some(p) = self.ports[pi].as_mut() {
                    p.ntt = true;
                }
            }
        }
        self.settle(bi, now, Cause::Admin);
        Ok(())
    }

    fn admin_port(
        &mut self,
        port: PortId,
        now: Instant,
        f: impl FnOnce(&mut Port),
    ) -> Result<(), EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_mut().expect("port");
        f(p);
        let bi = p.bond;
        self.settle(bi, now, Cause::Admin);
        Ok(())
    }

    /// Changes our Timeout bit (how fast the partner must send to us); LACPDUs go out at once.
    pub fn set_rate(&mut self, bond: BondId, rate: Rate, now: Instant) -> Result<(), EngineError> {
        let bi = self.bond_index(bond)?;
        let b = self.bonds[bi].as_mut().expect("bond");
        if b.cfg.rate != rate {
            b.cfg.rate = rate;
            for &pi in &b.sel.ports {
                if let Some(p) = self.ports[pi].as_mut() {
                    p.refresh_admin_bits(&b.cfg);
                    p.rearm_current_while(now, &b.cfg);
                }
            }
        }
        self.admin_bond(bond, now, true, |_| {})
    }

    /// Changes active/passive.
    pub fn set_activity(
        &mut self,
        bond: BondId,
        activity: Activity,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_bond(bond, now, true, |c| c.activity = activity)
    }

    /// Changes the System ID (every member reselects; LACPDUs go out at once).
    pub fn set_system(
        &mut self,
        bond: BondId,
        system: SystemId,
        now: Instant,
    ) -> Result<(), EngineError> {
        let bi = self.bond_index(bond)?;
        let (name, key) = {
            let b = self.bonds[bi].as_ref().expect("bond");
            (b.cfg.name.clone(), b.cfg.admin_key)
        };
        if system.mac.is_multicast() {
            return Err(ConfigError::GroupSystemMac {
                name,
                mac: system.mac,
            }
            .into());
        }
        self.check_system_key(Some(bi), &name, system, key)?;
        self.admin_bond(bond, now, true, |c| c.system = system)
    }

    /// Changes the bond's admin key (members without their own key reselect).
    pub fn set_bond_key(
        &mut self,
        bond: BondId,
        key: u16,
        now: Instant,
    ) -> Result<(), EngineError> {
        let bi = self.bond_index(bond)?;
        let (name, system) = {
            let b = self.bonds[bi].as_ref().expect("bond");
            (b.cfg.name.clone(), b.cfg.system)
        };
        self.check_system_key(Some(bi), &name, system, key)?;
        self.admin_bond(bond, now, true, |c| c.admin_key = key)
    }

    /// Sets or clears a member's own admin key.
    pub fn set_port_key(
        &mut self,
        port: PortId,
        key: Option<u16>,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_port(port, now, |p| {
            p.cfg.key = key;
            p.ntt = true;
        })
    }

    /// Changes a member's port priority.
    pub fn set_port_priority(
        &mut self,
        port: PortId,
        priority: u16,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_port(port, now, |p| {
            if p.cfg.port_priority != priority {
                p.cfg.port_priority = priority;
                p.ntt = true;
            }
        })
    }

    /// Drains a member (STANDBY: out of sync, the partner stops using it at once) or undrains it.
    pub fn set_drain(
        &mut self,
        port: PortId,
        drained: bool,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_port(port, now, |p| p.drained = drained)
    }

    /// Changes min_links.
    pub fn set_min_links(
        &mut self,
        bond: BondId,
        min_links: u16,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_bond(bond, now, false, |c| c.min_links = min_links)
    }

    /// Changes max_active (None: no limit).
    pub fn set_max_active(
        &mut self,
        bond: BondId,
        max_active: Option<u16>,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_bond(bond, now, false, |c| c.max_active = max_active)
    }

    /// Changes the active aggregator policy.
    pub fn set_selection_policy(
        &mut self,
        bond: BondId,
        policy: SelectionPolicy,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_bond(bond, now, false, |c| c.selection = policy)
    }

    /// Changes the silent-partner fallback.
    pub fn set_fallback(
        &mut self,
        bond: BondId,
        fallback: Fallback,
        now: Instant,
    ) -> Result<(), EngineError> {
        self.admin_bond(bond, now, false, |c| c.fallback = fallback)
    }

    // ----- the settle loop -------------------------------------------------------------------

    fn settle(&mut self, bi: usize, now: Instant, cause: Cause) {
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

    fn reindex(&mut self, pi: usize, now: Instant) {
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

    // ----- introspection ---------------------------------------------------------------------

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

    /// Checks the safety invariants on every member (used by the simulator's property tests):
    /// a member in a distribution set has a current partner that is matched, in sync and
    /// collecting (or is the fallback member), and all distributing members of a bond share
    /// one aggregator. Returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        for b in self.bonds.iter().flatten() {
            let mut agg = None;
            for id in &b.published {
                let p = self.ports[id.0 as usize]
                    .as_ref()
                    .ok_or_else(|| format!("{}: removed {id} still distributing", b.cfg.name))?;
                if !p.link.up {
                    return Err(format!("{}: {id} distributing with link down", b.cfg.name));
                }
                let healthy = p.rx == RxState::Current
                    && p.matched
                    && p.partner.state.synchronization()
                    && p.partner.state.collecting();
                if !p.fallback && !healthy {
                    return Err(format!(
                        "{}: {id} distributing with rx {} matched {} partner {}",
                        b.cfg.name, p.rx, p.matched, p.partner.state
                    ));
                }
                if p.selected != Selected::Selected {
                    return Err(format!(
                        "{}: {id} distributing while {}",
                        b.cfg.name, p.selected
                    ));
                }
                match agg {
                    None => agg = Some(p.aggregator),
                    Some(a) if a != p.aggregator => {
                        return Err(format!("{}: distributing over two aggregators", b.cfg.name));
                    }
                    _ => {}
                }
            }
            if !b.published.is_empty() && b.published.len() < usize::from(b.cfg.min_links) {
                return Err(format!("{}: distributing below min_links", b.cfg.name));
            }
        }
        Ok(())
    }
}
