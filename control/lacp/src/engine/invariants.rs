//! The safety invariants the simulator checks after every step (`Sim::set_check_invariants`)
//! and the fuzz target after every frame.

use crate::info::{RxState, Selected};

use super::Engine;

impl Engine {
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
