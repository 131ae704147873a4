//! The Actor_State / Partner_State octet (802.1AX-2014 clause 6.4.2.3, items m and u).

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

/// The eight state bits of an LACPDU actor or partner TLV, least significant bit first:
/// LACP_Activity, LACP_Timeout, Aggregation, Synchronization, Collecting, Distributing,
/// Defaulted, Expired.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortState(u8);

impl PortState {
    /// The bits' names, LSB first (as `ovs-appctl lacp/show` and the metrics label them).
    pub const BIT_NAMES: [&'static str; 8] = [
        "activity",
        "timeout",
        "aggregation",
        "synchronization",
        "collecting",
        "distributing",
        "defaulted",
        "expired",
    ];

    /// LACP_Activity: 1 = Active LACP, 0 = Passive LACP.
    pub const ACTIVITY: PortState = PortState(1 << 0);
    /// LACP_Timeout: 1 = Short Timeout (the sender wants fast periodic PDUs), 0 = Long.
    pub const TIMEOUT: PortState = PortState(1 << 1);
    /// Aggregation: 1 = Aggregatable, 0 = Individual.
    pub const AGGREGATION: PortState = PortState(1 << 2);
    /// Synchronization: the port is attached to the right aggregator (IN_SYNC).
    pub const SYNCHRONIZATION: PortState = PortState(1 << 3);
    /// Collecting: collection of incoming frames is enabled.
    pub const COLLECTING: PortState = PortState(1 << 4);
    /// Distributing: distribution of outgoing frames is enabled.
    pub const DISTRIBUTING: PortState = PortState(1 << 5);
    /// Defaulted: the sender uses administrative defaults for its partner.
    pub const DEFAULTED: PortState = PortState(1 << 6);
    /// Expired: the sender's Receive machine is in the EXPIRED state.
    pub const EXPIRED: PortState = PortState(1 << 7);

    /// No bit set.
    pub const fn empty() -> PortState {
        PortState(0)
    }

    /// The state with exactly these bits.
    pub const fn from_bits(bits: u8) -> PortState {
        PortState(bits)
    }

    /// The raw octet.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: PortState) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    pub fn insert(&mut self, other: PortState) {
        self.0 |= other.0;
    }

    /// Clears the bits of `other`.
    pub fn remove(&mut self, other: PortState) {
        self.0 &= !other.0;
    }

    /// Sets or clears the bits of `other`.
    pub fn set(&mut self, other: PortState, value: bool) {
        if value {
            self.insert(other)
        } else {
            self.remove(other)
        }
    }

    /// A copy with the bits of `other` set or cleared.
    pub const fn with(self, other: PortState, value: bool) -> PortState {
        if value {
            PortState(self.0 | other.0)
        } else {
            PortState(self.0 & !other.0)
        }
    }

    /// LACP_Activity is Active.
    pub const fn activity(self) -> bool {
        self.contains(Self::ACTIVITY)
    }
    /// LACP_Timeout is Short.
    pub const fn short_timeout(self) -> bool {
        self.contains(Self::TIMEOUT)
    }
    /// Aggregation (aggregatable).
    pub const fn aggregation(self) -> bool {
        self.contains(Self::AGGREGATION)
    }
    /// Synchronization (in sync).
    pub const fn synchronization(self) -> bool {
        self.contains(Self::SYNCHRONIZATION)
    }
    /// Collecting.
    pub const fn collecting(self) -> bool {
        self.contains(Self::COLLECTING)
    }
    /// Distributing.
    pub const fn distributing(self) -> bool {
        self.contains(Self::DISTRIBUTING)
    }
    /// Defaulted.
    pub const fn defaulted(self) -> bool {
        self.contains(Self::DEFAULTED)
    }
    /// Expired.
    pub const fn expired(self) -> bool {
        self.contains(Self::EXPIRED)
    }

    /// Names of the bits that are set, LSB first (as `ovs-appctl lacp/show` lists them).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        (0..8)
            .filter(move |i| self.0 & (1 << i) != 0)
            .map(|i| Self::BIT_NAMES[i])
    }
}

impl BitOr for PortState {
    type Output = PortState;
    fn bitor(self, rhs: PortState) -> PortState {
        PortState(self.0 | rhs.0)
    }
}

impl BitOrAssign for PortState {
    fn bitor_assign(&mut self, rhs: PortState) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for n in self.names() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(n)?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortState({:#04x}: {})", self.0, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions_lsb_first() {
        assert_eq!(PortState::ACTIVITY.bits(), 0x01);
        assert_eq!(PortState::TIMEOUT.bits(), 0x02);
        assert_eq!(PortState::AGGREGATION.bits(), 0x04);
        assert_eq!(PortState::SYNCHRONIZATION.bits(), 0x08);
        assert_eq!(PortState::COLLECTING.bits(), 0x10);
        assert_eq!(PortState::DISTRIBUTING.bits(), 0x20);
        assert_eq!(PortState::DEFAULTED.bits(), 0x40);
        assert_eq!(PortState::EXPIRED.bits(), 0x80);
    }

    #[test]
    fn display_and_ops() {
        let mut s = PortState::ACTIVITY | PortState::TIMEOUT | PortState::AGGREGATION;
        assert_eq!(s.to_string(), "activity timeout aggregation");
        s.set(PortState::TIMEOUT, false);
        assert!(!s.short_timeout());
        assert!(s.contains(PortState::ACTIVITY | PortState::AGGREGATION));
        assert_eq!(PortState::empty().to_string(), "none");
        assert_eq!(PortState::from_bits(0x3d).bits(), 0x3d);
        assert_eq!(
            format!("{:?}", PortState::from_bits(0x3f)),
            "PortState(0x3f: activity timeout aggregation synchronization collecting distributing)"
        );
    }
}
