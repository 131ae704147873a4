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
//!
//! This file holds the [`Engine`] and its inputs and outputs (`handle_*`, `poll_*`); the
//! rest is in `admin.rs` (adding and removing bonds and members, the `set_*` calls),
//! `settle.rs` (the settle loop, publishing, the deadline index), `introspect.rs` (counters,
//! [`Engine::port_info`], [`Engine::bond_info`], reasons) and `invariants.rs`. The machines
//! themselves are in `machines/`, one file per clause of 802.1AX-2014 clause 6.4.

use core::fmt;
use std::collections::{BTreeSet, VecDeque};

use crate::config::{BondConfig, ConfigError, Duplex, LinkStatus};
use crate::info::{AggregatorId, Cause, Event, Side, Transmit, TxKind};
use crate::machines::selection::SelState;
use crate::machines::{Ctx, PduOutcome, Port, Timer};
use crate::time::Instant;
use crate::wire::{
    parse_frame, Frame, LacpduRepr, MarkerRepr, SlowPdu, WireError, NEAREST_CUSTOMER_BRIDGE,
    NEAREST_NON_TPMR_BRIDGE, SLOW_PROTOCOLS_MULTICAST,
};

mod admin;
mod introspect;
mod invariants;
mod restore;
mod settle;

pub use restore::{RestoreOutcome, RestoreRefusal, SavedPort, RESTORE_MARGIN};

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

/// One bond: its configuration, the Selection Logic's state, and what was last published.
struct Bond {
    id: BondId,
    cfg: BondConfig,
    sel: SelState,
    published: Vec<PortId>,
    published_active: Option<AggregatorId>,
    min_links_met: bool,
}

/// The last LACPDU of a removed member, held until the transmit limit lets it go.
struct FinalFrame {
    release: Instant,
    port: PortId,
    frame: Frame,
}

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
    restore: restore::Restores,
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

/// When timers of several members of one bond fire at one instant, the bond settles once, and
/// the history records the most telling of their causes.
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
        self.restore_link_report(pi, status.up);
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
        if status.up {
            self.restore_link_up(pi, now);
        }
        self.settle(bi, now, cause);
        Ok(())
    }

    /// Whether the partner's data frames (not Slow Protocols) arrive on a member: the
    /// caller reports it from the port's receive counters, about once a second. Only the
    /// silent-partner fallback uses it: the fallback member follows the link the partner
    /// sends on (a partner in active-backup fallback, such as Open vSwitch's
    /// `lacp-fallback-ab`, accepts frames only on the link it uses).
    pub fn handle_partner_data(
        &mut self,
        port: PortId,
        seen: bool,
        now: Instant,
    ) -> Result<(), EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_mut().expect("port");
        if p.partner_data == seen {
            return Ok(());
        }
        p.partner_data = seen;
        let bi = p.bond;
        self.settle(bi, now, Cause::PartnerData);
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
        self.restore_check_pdu(pi, pdu, now);
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
        self.restore_timeout(now);
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
        let t = match (t, self.restore_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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
            } else if out.is_none() && p.ntt && p.tx_allowed() && !p.deferral_counted {
                p.counters.tx_deferred += 1;
                p.deferral_counted = true;
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
}
