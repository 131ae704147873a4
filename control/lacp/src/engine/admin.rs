//! Configuration and runtime administration: adding and removing bonds and members, and the
//! `set_*` calls that change an administrative value while LACP runs (key, priority, System ID,
//! activity, rate, drain, min_links, max_active, selection policy, fallback). Every change
//! settles the bond at once; a change the partner must hear about sets NTT on the members.

use crate::config::{
    Activity, BondConfig, ConfigError, Fallback, PortConfig, Rate, SelectionPolicy, SystemId,
};
use crate::info::{Cause, Event};
use crate::machines::selection::SelState;
use crate::machines::{Ctx, Port};
use crate::time::Instant;
use crate::wire::{Frame, PortState};

use super::{Bond, BondId, Engine, EngineError, FinalFrame, PortId};

impl Engine {
    // ----- configuration ---------------------------------------------------------------------

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
        self.restore_forget(pi);
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
}
