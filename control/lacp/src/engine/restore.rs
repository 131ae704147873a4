//! Restart without renegotiation: a member's LACP state saved by one engine
//! ([`Engine::saved_port`]) and offered to a fresh engine ([`Engine::offer_restore`]) with the
//! same configuration, so that a planned restart or a crash of the control plane does not make
//! the partner tear the aggregation down.
//!
//! The partner notices nothing as long as our next LACPDU reaches it before its
//! current_while for us expires: its own timeout (short 3 s, long 90 s) counted from our last
//! LACPDU. So a saved member is restorable when, at the moment its link first comes up in the
//! new engine,
//!
//! * it was in sync when saved: Receive CURRENT, matched, partner in sync, SELECTED, and the
//!   Mux collecting (COLLECTING, DISTRIBUTING or COLLECTING_DISTRIBUTING);
//! * our last LACPDU is younger than the partner's timeout (less [`RESTORE_MARGIN`]), and the
//!   partner's last LACPDU is younger than our own timeout (else CURRENT would have expired);
//! * the link did not go down meanwhile: the first link report the new engine gets is up;
//! * what we would send as the actor is what the partner recorded (system, key, port, port
//!   priority, Aggregation bit);
//! * the Selection Logic, run with the restored partner information, selects it.
//!
//! Then the member enters CURRENT with the saved partner information and the Mux goes from
//! DETACHED straight to ATTACHED (Aggregate_Wait_Time is for links joining an aggregation,
//! and the partner has this one aggregated already); the settle that follows takes it on to
//! collecting and distributing as in any other case, and a LACPDU leaves at once (NTT).
//! Anything else is refused, and the member starts as after BEGIN.
//!
//! The first LACPDU the restored member receives is the check: the partner must be the saved
//! one (same identity, as update_Selected compares it), its view of us must match
//! (choose_matched) and it must say it is in sync. If not, the member is reset to BEGIN before
//! the LACPDU is processed (a normal start from there), so the engine's safety invariant (no
//! distribution on a member whose partner is not current, matched, in sync and collecting)
//! holds from that LACPDU on, exactly as it does for a member that was never restored.
//!
//! Every outcome is reported as an [`Event::Restore`].

use core::time::Duration;
use std::collections::BTreeMap;

use crate::config::{BondConfig, Rate};
use crate::info::{AggregatorId, Cause, Event, MuxState, RxState, Selected};
use crate::machines::selection;
use crate::machines::{Ctx, Timer};
use crate::time::Instant;
use crate::wire::{LacpduRepr, ParticipantInfo, PortState};

use super::{Engine, EngineError, PortId};

/// Subtracted from the partner's timeout when deciding whether saved state is still valid:
/// our first LACPDU must also cross the wire and be processed before the partner's
/// current_while for us runs out.
pub const RESTORE_MARGIN: Duration = Duration::from_millis(250);

/// A member's LACP state as saved for a restart (what [`Engine::saved_port`] returns and
/// [`Engine::offer_restore`] takes). Times are ages relative to the instant the value refers
/// to, so that a value can cross from one engine (one clock) to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedPort {
    /// Port number of the member (the file's key for it).
    pub port_number: u16,
    /// Our actor information as we send it.
    pub actor: ParticipantInfo,
    /// Partner_Oper values as recorded.
    pub partner: ParticipantInfo,
    /// Receive machine state.
    pub rx: RxState,
    /// Mux machine state.
    pub mux: MuxState,
    /// Selected.
    pub selected: Selected,
    /// Matched (the partner's view of us was right).
    pub matched: bool,
    /// The aggregator the member was attached to.
    pub aggregator: Option<AggregatorId>,
    /// Time since our last LACPDU on this member (None: never sent one).
    pub since_tx: Option<Duration>,
    /// Time since the partner's last LACPDU (None: never received one).
    pub since_rx: Option<Duration>,
}

impl SavedPort {
    /// The same state, `d` later (the ages grow).
    pub fn aged(mut self, d: Duration) -> SavedPort {
        self.since_tx = self.since_tx.map(|t| t.saturating_add(d));
        self.since_rx = self.since_rx.map(|t| t.saturating_add(d));
        self
    }

    /// The member was collecting with an in-sync, matched, current partner when saved.
    pub fn in_sync(&self) -> bool {
        self.rx == RxState::Current
            && self.matched
            && self.partner.state.synchronization()
            && self.selected == Selected::Selected
            && matches!(
                self.mux,
                MuxState::Collecting | MuxState::Distributing | MuxState::CollectingDistributing
            )
    }

    /// The partner's timeout: how long after our last LACPDU it expires us (its own Timeout
    /// bit: short 3 s, long 90 s).
    pub fn partner_timeout(&self, b: &BondConfig) -> Duration {
        if self.partner.state.short_timeout() {
            b.timers.short_timeout
        } else {
            b.timers.long_timeout
        }
    }
}

/// Why saved state was not used for a member (it then starts as after BEGIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RestoreRefusal {
    /// The member was not collecting in sync with its partner when the state was saved.
    #[error("the member was not in sync with its partner when the state was saved")]
    NotInSync,
    /// Our last LACPDU is older than the partner's timeout (less the margin): the partner
    /// has expired us, or is about to.
    #[error(
        "state expired: our last LACPDU was {age:?} ago, the partner's timeout is {timeout:?}"
    )]
    Expired {
        /// Age of our last LACPDU.
        age: Duration,
        /// The partner's timeout.
        timeout: Duration,
    },
    /// The partner's last LACPDU is older than our own timeout: CURRENT would have expired.
    #[error(
        "state expired: the partner's last LACPDU was {age:?} ago, our timeout is {timeout:?}"
    )]
    PartnerSilent {
        /// Age of the partner's last LACPDU.
        age: Duration,
        /// Our timeout.
        timeout: Duration,
    },
    /// The link was down when this engine first looked at it (or went down before the state
    /// was applied): the partner has seen the link go and reset its side.
    #[error("the link was down (the partner has seen it go down)")]
    LinkDown,
    /// The link did not come up while the state was valid.
    #[error("the link did not come up before the saved state expired")]
    LinkNeverUp,
    /// The member already runs (its link was reported before the offer).
    #[error("the member was already running when the state was offered")]
    AlreadyRunning,
    /// What we would send as the actor differs from what the partner recorded.
    #[error("our actor information changed (system, key, port, priority or aggregation)")]
    ActorChanged,
    /// The Selection Logic did not select the member with the restored information.
    #[error("the selection logic did not select the member")]
    NotSelected,
    /// The first LACPDU came from another partner (system, key, port, priority or
    /// aggregation differ from the saved ones).
    #[error("the partner changed: its first LACPDU differs from the saved partner information")]
    PartnerChanged,
    /// The first LACPDU's view of us does not match, or the partner says it is not in sync.
    #[error("the partner is no longer in sync with us (its first LACPDU)")]
    PartnerOutOfSync,
}

/// What became of a member's saved state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestoreOutcome {
    /// Applied when the link came up: the member is in sync, a LACPDU leaves now.
    Restored,
    /// The first LACPDU from the partner agrees with the saved state.
    Confirmed,
    /// Not used (or undone at the first LACPDU); the member starts as after BEGIN.
    Refused(RestoreRefusal),
}

/// An offer waiting for the member's first link report.
#[derive(Clone, Copy, Debug)]
struct Pending {
    saved: SavedPort,
    /// Our last LACPDU must reach the partner before this.
    valid_until: Instant,
    /// When CURRENT would have expired had we kept running.
    current_until: Instant,
}

/// The engine's restore bookkeeping (by port index).
#[derive(Debug, Default)]
pub(super) struct Restores {
    pending: BTreeMap<usize, Pending>,
    /// Restored, waiting for the partner's first LACPDU.
    unconfirmed: BTreeMap<usize, SavedPort>,
}

/// Same identity as update_Selected compares it (802.1AX-2014 6.4.9).
fn same_identity(a: &ParticipantInfo, b: &ParticipantInfo) -> bool {
    a.port == b.port
        && a.port_priority == b.port_priority
        && a.system == b.system
        && a.system_priority == b.system_priority
        && a.key == b.key
        && a.state.aggregation() == b.state.aggregation()
}

/// FNV-1a, 64 bits: a stable digest (not a security measure).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Fnv {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }
    fn u64(&mut self, v: u64) -> &mut Fnv {
        self.bytes(&v.to_le_bytes())
    }
}

impl Engine {
    /// The member's state now, as saved for a restart.
    pub fn saved_port(&self, port: PortId, now: Instant) -> Result<SavedPort, EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_ref().expect("port");
        let b = &self.bonds[p.bond].as_ref().expect("bond").cfg;
        Ok(SavedPort {
            port_number: p.cfg.port_number,
            actor: p.actor_info(b),
            partner: p.partner,
            rx: p.rx,
            mux: p.mux,
            selected: p.selected,
            matched: p.matched,
            aggregator: p.aggregator,
            since_tx: p.last_tx.map(|t| now.saturating_duration_since(t)),
            since_rx: p.last_rx.map(|t| now.saturating_duration_since(t)),
        })
    }

    /// A digest of what the saved state of a bond depends on: System ID, keys, activity,
    /// rate, mux control, key policy, timers, and each member's name, MAC, port number,
    /// priority and key. Saved state is only offered to a bond with the same digest.
    pub fn config_digest(&self, bond: super::BondId) -> Result<u64, EngineError> {
        let bi = self.bond_index(bond)?;
        let b = self.bonds[bi].as_ref().expect("bond");
        let c = &b.cfg;
        let mut h = Fnv::new();
        h.bytes(c.name.as_bytes())
            .u64(u64::from(c.system.priority))
            .bytes(&c.system.mac.0)
            .u64(u64::from(c.admin_key))
            .bytes(format!("{:?}", c.activity).as_bytes())
            .bytes(format!("{:?}", c.rate).as_bytes())
            .bytes(format!("{:?}", c.mux).as_bytes())
            .bytes(format!("{:?}", c.key_policy).as_bytes());
        let t = &c.timers;
        for d in [t.short_timeout, t.long_timeout, t.fast_periodic] {
            h.u64(d.as_nanos() as u64);
        }
        for &pi in &b.sel.ports {
            if let Some(p) = self.ports[pi].as_ref() {
                h.bytes(p.cfg.name.as_bytes())
                    .bytes(&p.cfg.mac.0)
                    .u64(u64::from(p.cfg.port_number))
                    .u64(u64::from(p.cfg.port_priority))
                    .u64(p.cfg.key.map_or(1 << 32, u64::from));
            }
        }
        Ok(h.0)
    }

    /// Before a planned restart: every member that may send owes the partner a LACPDU now
    /// (the last word before the gap restarts the partner's timer at its full length). Send
    /// them with [`Engine::poll_transmit`], then save.
    pub fn refresh_partners(&mut self, now: Instant) {
        for pi in 0..self.ports.len() {
            if let Some(p) = self.ports[pi].as_mut() {
                if p.tx_allowed() {
                    p.ntt = true;
                }
            }
            self.reindex(pi, now);
        }
    }

    /// Offers saved state to a member of a fresh engine whose link has not been reported yet.
    /// It is applied when the member's first link report says up (see the module
    /// documentation for the rules); the outcome is reported as an [`Event::Restore`]. A
    /// refusal known now is also returned (and reported).
    pub fn offer_restore(
        &mut self,
        port: PortId,
        saved: SavedPort,
        now: Instant,
    ) -> Result<Result<(), RestoreRefusal>, EngineError> {
        let pi = self.port_index(port)?;
        let p = self.ports[pi].as_ref().expect("port");
        let b = &self.bonds[p.bond].as_ref().expect("bond").cfg;
        let check = || -> Result<Pending, RestoreRefusal> {
            if p.link.up || p.rx != RxState::PortDisabled || p.last_rx.is_some() {
                return Err(RestoreRefusal::AlreadyRunning);
            }
            if !saved.in_sync() {
                return Err(RestoreRefusal::NotInSync);
            }
            let timeout = saved.partner_timeout(b);
            let usable = timeout.saturating_sub(RESTORE_MARGIN);
            let age = saved.since_tx.unwrap_or(Duration::MAX);
            if age >= usable {
                return Err(RestoreRefusal::Expired { age, timeout });
            }
            let ours = if b.rate == Rate::Fast {
                b.timers.short_timeout
            } else {
                b.timers.long_timeout
            };
            let rx_age = saved.since_rx.unwrap_or(Duration::MAX);
            if rx_age >= ours {
                return Err(RestoreRefusal::PartnerSilent {
                    age: rx_age,
                    timeout: ours,
                });
            }
            Ok(Pending {
                saved,
                valid_until: now + (usable - age),
                current_until: now + (ours - rx_age),
            })
        };
        match check() {
            Ok(pending) => {
                self.restore.unconfirmed.remove(&pi);
                self.restore.pending.insert(pi, pending);
                Ok(Ok(()))
            }
            Err(r) => {
                self.restore.pending.remove(&pi);
                self.refuse(pi, r);
                Ok(Err(r))
            }
        }
    }

    /// Offers still waiting for a link.
    pub fn restores_pending(&self) -> usize {
        self.restore.pending.len()
    }

    fn refuse(&mut self, pi: usize, r: RestoreRefusal) {
        if let Some(p) = self.ports[pi].as_ref() {
            self.events.push_back(Event::Restore {
                port: p.id,
                outcome: RestoreOutcome::Refused(r),
            });
        }
    }

    // ----- hooks (called from engine/mod.rs and admin.rs) ------------------------------------

    /// handle_link, before anything else: a pending offer dies with a down report.
    pub(super) fn restore_link_report(&mut self, pi: usize, up: bool) {
        if !up && self.restore.pending.remove(&pi).is_some() {
            self.refuse(pi, RestoreRefusal::LinkDown);
        }
    }

    /// handle_link, once the new link status is recorded and before the bond settles: a
    /// pending offer is applied when the link came up.
    pub(super) fn restore_link_up(&mut self, pi: usize, now: Instant) {
        let Some(pending) = self.restore.pending.remove(&pi) else {
            return;
        };
        let r = if now >= pending.valid_until {
            Err(RestoreRefusal::LinkNeverUp)
        } else {
            self.apply_restore(pi, &pending, now)
        };
        match r {
            Ok(()) => {
                self.restore.unconfirmed.insert(pi, pending.saved);
                let port = self.ports[pi].as_ref().expect("port").id;
                self.events.push_back(Event::Restore {
                    port,
                    outcome: RestoreOutcome::Restored,
                });
            }
            Err(e) => self.refuse(pi, e),
        }
    }

    fn apply_restore(
        &mut self,
        pi: usize,
        pending: &Pending,
        now: Instant,
    ) -> Result<(), RestoreRefusal> {
        let Engine {
            bonds,
            ports,
            events,
            ..
        } = self;
        let p = ports[pi].as_mut().expect("port");
        let bond = bonds[p.bond].as_mut().expect("bond");
        let mut ctx = Ctx {
            now,
            cause: Cause::Restored,
            bond: &bond.cfg,
            events,
        };
        p.refresh_admin_bits(&bond.cfg);
        if !same_identity(&p.actor_info(&bond.cfg), &pending.saved.actor) {
            return Err(RestoreRefusal::ActorChanged);
        }
        // Receive: CURRENT with the saved partner information, as if its last LACPDU had
        // just been recorded (recordPDU), and current_while where it would have been.
        let saved = pending.saved;
        p.partner = saved.partner;
        p.partner_from_pdu = true;
        p.matched = true;
        p.actor_state
            .remove(PortState::DEFAULTED | PortState::EXPIRED);
        p.timers[Timer::CurrentWhile as usize] = Some(pending.current_until);
        p.enter_rx(RxState::Current, &mut ctx);
        // Selection as the standard runs it, with the restored information.
        selection::select(&mut bond.sel, ports, &mut ctx);
        let p = ports[pi].as_mut().expect("port");
        if p.selected != Selected::Selected || p.aggregator.is_none() || p.mux != MuxState::Detached
        {
            // Not selected: it keeps the partner information and goes on as any member that
            // has just heard its partner (WAITING, Aggregate_Wait_Time).
            return Err(RestoreRefusal::NotSelected);
        }
        // Mux: DETACHED -> ATTACHED (in sync, NTT); the settle takes it on to collecting and
        // distributing, from the partner's restored Synchronization and Collecting bits.
        p.ready_n = true;
        p.enter_mux(MuxState::Attached, &mut ctx);
        Ok(())
    }

    /// handle_pdu, before the Receive machine sees the LACPDU: the first LACPDU of a restored
    /// member confirms the restore, or resets the member to BEGIN (a normal start) first.
    pub(super) fn restore_check_pdu(&mut self, pi: usize, pdu: &LacpduRepr, now: Instant) {
        let Some(p) = self.ports[pi].as_ref() else {
            return;
        };
        if !p.link.up
            || pdu.actor.system == self.bonds[p.bond].as_ref().expect("bond").cfg.system.mac
        {
            return;
        }
        let Some(saved) = self.restore.unconfirmed.remove(&pi) else {
            return;
        };
        let b = &self.bonds[p.bond].as_ref().expect("bond").cfg;
        let actor = p.actor_info(b);
        let view = &pdu.partner;
        let matched = (view.port == actor.port
            && view.port_priority == actor.port_priority
            && view.system == actor.system
            && view.system_priority == actor.system_priority
            && view.key == actor.key
            && view.state.aggregation() == actor.state.aggregation())
            || !pdu.actor.state.aggregation();
        let verdict = if !same_identity(&pdu.actor, &saved.partner) {
            Err(RestoreRefusal::PartnerChanged)
        } else if !matched || !pdu.actor.state.synchronization() {
            Err(RestoreRefusal::PartnerOutOfSync)
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => self.events.push_back(Event::Restore {
                port: p.id,
                outcome: RestoreOutcome::Confirmed,
            }),
            Err(r) => {
                let bi = p.bond;
                {
                    let Engine {
                        bonds,
                        ports,
                        events,
                        ..
                    } = self;
                    let p = ports[pi].as_mut().expect("port");
                    let cfg = &bonds[bi].as_ref().expect("bond").cfg;
                    let mut ctx = Ctx {
                        now,
                        cause: Cause::Restored,
                        bond: cfg,
                        events,
                    };
                    p.begin(&mut ctx);
                }
                self.refuse(pi, r);
                self.settle(bi, now, Cause::Restored);
            }
        }
    }

    /// handle_timeout: offers whose link never came up while they were valid.
    pub(super) fn restore_timeout(&mut self, now: Instant) {
        let expired: Vec<usize> = self
            .restore
            .pending
            .iter()
            .filter(|(_, p)| p.valid_until <= now)
            .map(|(&pi, _)| pi)
            .collect();
        for pi in expired {
            self.restore.pending.remove(&pi);
            self.refuse(pi, RestoreRefusal::LinkNeverUp);
        }
    }

    /// poll_timeout: the earliest instant an offer expires.
    pub(super) fn restore_deadline(&self) -> Option<Instant> {
        self.restore.pending.values().map(|p| p.valid_until).min()
    }

    /// remove_port: forget the member.
    pub(super) fn restore_forget(&mut self, pi: usize) {
        self.restore.pending.remove(&pi);
        self.restore.unconfirmed.remove(&pi);
    }
}
