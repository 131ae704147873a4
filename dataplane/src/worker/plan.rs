//! What a worker knows about ports and bonds: per port, its bond and where its ingress
//! goes; per bond, the published member table and the hash. The control thread replaces
//! either while workers run (arc-swap), and a worker sees the change at its next burst
//! (each worker checks through an `arc_swap::Cache`: a plain pointer load per burst).

use std::sync::Arc;

use crate::bond::{HashPolicy, SharedTable};

/// Where frames received on a port (or on the bond it belongs to) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Out of this port index, unchanged.
    Port(usize),
    /// Out of this bond index, through its distributor.
    Bond(usize),
    /// Nowhere: dropped and counted as "no egress".
    Drop,
}

/// How a worker treats one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPlan {
    /// The bond this port is a member of.
    pub member_of: Option<usize>,
    /// Slow-protocol frames from this port go to the control thread (an 802.3ad member
    /// whose NIC does not steer them to a queue of their own).
    pub divert_slow: bool,
    /// Where its ingress goes.
    pub egress: Egress,
    /// Its PMD writes a symmetric RSS hash over addresses and TCP/UDP ports into every
    /// mbuf: a layer3+4 bond distributor uses that instead of hashing in software.
    pub rss_l4: bool,
}

/// Every port's plan, shared by all workers and replaceable while they run (a hitless
/// reload turns a spare port into a bond member). Workers read it through an
/// `arc_swap::Cache`: one plain load per burst sees a new plan at once, with no locked
/// instruction when nothing changed.
pub type SharedPlans = Arc<arc_swap::ArcSwap<Vec<PortPlan>>>;

/// Plans for workers to share.
pub fn shared_plans(plans: Vec<PortPlan>) -> SharedPlans {
    Arc::new(arc_swap::ArcSwap::from_pointee(plans))
}

/// A bond as the workers see it.
#[derive(Debug, Clone)]
pub struct BondPlan {
    /// Published member table.
    pub table: SharedTable,
    /// Distribution hash.
    pub hash: HashPolicy,
}
