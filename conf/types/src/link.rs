//! Link state: speed and duplex.

use std::fmt;

/// Link speed, as a PMD reports it. Virtual devices often do not know theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Speed {
    /// Not reported (DPDK's `RTE_ETH_SPEED_NUM_UNKNOWN` or `NONE`: virtual devices, some
    /// PMDs).
    #[default]
    Unknown,
    /// Megabits per second. `Mbps(0)` means the same as [`Speed::Unknown`] (drivers use 0 for
    /// "no idea"); [`Speed::from_mbps`] never makes it.
    Mbps(u32),
}

impl Speed {
    /// `Mbps(mbps)`, or `Unknown` for 0.
    pub const fn from_mbps(mbps: u32) -> Speed {
        match mbps {
            0 => Speed::Unknown,
            m => Speed::Mbps(m),
        }
    }

    /// The speed in Mb/s when known and non-zero.
    pub const fn mbps(self) -> Option<u32> {
        match self {
            Speed::Unknown | Speed::Mbps(0) => None,
            Speed::Mbps(m) => Some(m),
        }
    }

    /// Whether the speed is known (and non-zero).
    pub const fn is_known(self) -> bool {
        self.mbps().is_some()
    }
}

/// `10 Gb/s` for whole gigabits, else `2500 Mb/s`; `unknown` when not known.
impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mbps() {
            None => f.write_str("unknown"),
            Some(m) if m % 1000 == 0 => write!(f, "{} Gb/s", m / 1000),
            Some(m) => write!(f, "{m} Mb/s"),
        }
    }
}

/// Link duplex, as a PMD reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Duplex {
    /// Full duplex.
    Full,
    /// Half duplex.
    Half,
    /// Not reported. DPDK has a single duplex bit, which means nothing while the speed is
    /// unknown.
    #[default]
    Unknown,
}

impl Duplex {
    /// `full`, `half` or `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Duplex::Full => "full",
            Duplex::Half => "half",
            Duplex::Unknown => "unknown",
        }
    }
}

/// As [`Duplex::as_str`].
impl fmt::Display for Duplex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_zero_is_unknown() {
        assert_eq!(Speed::default(), Speed::Unknown);
        assert_eq!(Speed::from_mbps(0), Speed::Unknown);
        assert_eq!(Speed::from_mbps(10_000), Speed::Mbps(10_000));
        assert_eq!(Speed::Mbps(0).mbps(), None);
        assert_eq!(Speed::Unknown.mbps(), None);
        assert_eq!(Speed::Mbps(2_500).mbps(), Some(2_500));
        assert!(Speed::Mbps(10).is_known());
        assert!(!Speed::Mbps(0).is_known() && !Speed::Unknown.is_known());
    }

    #[test]
    fn speed_displays_in_the_largest_whole_unit() {
        assert_eq!(Speed::Mbps(100_000).to_string(), "100 Gb/s");
        assert_eq!(Speed::Mbps(1_000).to_string(), "1 Gb/s");
        assert_eq!(Speed::Mbps(2_500).to_string(), "2500 Mb/s");
        assert_eq!(Speed::Mbps(100).to_string(), "100 Mb/s");
        assert_eq!(Speed::Unknown.to_string(), "unknown");
        assert_eq!(Speed::Mbps(0).to_string(), "unknown");
    }

    #[test]
    fn duplex_names() {
        assert_eq!(Duplex::default(), Duplex::Unknown);
        let names: Vec<String> = [Duplex::Full, Duplex::Half, Duplex::Unknown]
            .iter()
            .map(Duplex::to_string)
            .collect();
        assert_eq!(names, ["full", "half", "unknown"]);
        assert_eq!(Duplex::Half.as_str(), "half");
    }
}
