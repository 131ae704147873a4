//! `ctl why BOND`: for every member that is not distributing, the reason in plain words,
//! with the evidence.

use serde::{Deserialize, Serialize};

/// A bond's members and why each one does (not) distribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhyBond {
    /// Bond name.
    pub bond: String,
    /// Bond mode.
    pub mode: String,
    /// Per member, in config order.
    pub members: Vec<WhyMember>,
}

/// One member's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhyMember {
    /// Member name.
    pub member: String,
    /// Carries egress.
    pub distributing: bool,
    /// The reason's class (stable identifier, e.g. `silent_partner`).
    pub class: Option<String>,
    /// One sentence.
    pub reason: Option<String>,
    /// Facts behind it, one per line.
    pub evidence: Vec<String>,
}
