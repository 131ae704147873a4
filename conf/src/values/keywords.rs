//! Keyword enums (`mode = "802.3ad"`, `hash = "layer2+3"`, ...) and link speed keywords.

use super::{keyword_enum, quoted_list, Expected, InvalidValue};

keyword_enum! {
    /// How a bond spreads traffic over its members.
    pub enum BondMode {
        /// IEEE 802.1AX (802.3ad) dynamic link aggregation with LACP.
        Lacp => "802.3ad",
        /// One member carries traffic; the others take over on link failure.
        ActiveBackup => "active-backup",
        /// Static aggregation: members chosen by hash, no negotiation.
        BalanceXor => "balance-xor",
    }
}

keyword_enum! {
    /// LACP_Activity (802.1AX 6.4.2.3): whether we send LACPDUs unprompted.
    pub enum LacpActivity {
        /// Send LACPDUs periodically.
        Active => "active",
        /// Send only after hearing an active partner.
        Passive => "passive",
    }
}

keyword_enum! {
    /// Our LACP_Timeout bit: how fast the partner must send LACPDUs to us.
    pub enum LacpRate {
        /// Short timeout: partner sends every 1 s, expires after 3 s.
        Fast => "fast",
        /// Long timeout: partner sends every 30 s, expires after 90 s.
        Slow => "slow",
    }
}

keyword_enum! {
    /// How the aggregator to distribute on is chosen among candidate partner groups.
    pub enum Selection {
        /// Keep the current aggregator while it has at least min_links ports.
        Stable => "stable",
        /// Prefer the group with the most total bandwidth.
        Bandwidth => "bandwidth",
        /// Prefer the group with the most ports.
        Count => "count",
    }
}

keyword_enum! {
    /// What a member does when no LACP partner answers.
    pub enum Fallback {
        /// Stay out of the aggregate until a partner is heard.
        None => "none",
        /// Forward as an individual link (one member) without a partner.
        Individual => "individual",
    }
}

keyword_enum! {
    /// Mux machine variant (802.1AX 6.4.15).
    pub enum MuxMode {
        /// Collecting and distributing are enabled together.
        Coupled => "coupled",
        /// Collecting is enabled before distributing.
        Independent => "independent",
    }
}

keyword_enum! {
    /// Link duplex override.
    ///
    /// A setting, so it has no "unknown": leaving the key out means "what the PMD reports".
    /// The link state itself is [`types::Duplex`], which this converts into.
    pub enum Duplex {
        /// Full duplex (required for LACP aggregation).
        Full => "full",
        /// Half duplex.
        Half => "half",
    }
}

impl From<Duplex> for types::Duplex {
    fn from(duplex: Duplex) -> Self {
        match duplex {
            Duplex::Full => types::Duplex::Full,
            Duplex::Half => types::Duplex::Half,
        }
    }
}

keyword_enum! {
    /// What the dataplane does with received frames.
    pub enum ForwardMode {
        /// Frames from one endpoint leave unchanged on the paired endpoint.
        Xconnect => "xconnect",
        /// IPv4/IPv6 routing between interfaces.
        Router => "router",
    }
}

keyword_enum! {
    /// What a planned restart (`fastlag ctl restart`, SIGUSR2) does once the handoff file is
    /// written.
    pub enum RestartMode {
        /// Replace the process with the binary at the same path (same arguments, same PID).
        Exec => "exec",
        /// Exit with status 75 for the service manager to start the new binary.
        Exit => "exit",
    }
}

keyword_enum! {
    /// Which end of an in-process ring link a port is.
    pub enum RingEnd {
        /// The `a` end.
        A => "a",
        /// The `b` end.
        B => "b",
    }
}

/// Link speed keywords and their value in Mbit/s.
pub(crate) const SPEEDS: &[(&str, u32)] = &[
    ("10M", 10),
    ("100M", 100),
    ("1G", 1_000),
    ("2.5G", 2_500),
    ("5G", 5_000),
    ("10G", 10_000),
    ("25G", 25_000),
    ("40G", 40_000),
    ("50G", 50_000),
    ("100G", 100_000),
    ("200G", 200_000),
    ("400G", 400_000),
];

/// Parses a speed keyword (`"10G"`) into Mbit/s.
pub(crate) fn parse_speed(text: &str) -> Result<u32, InvalidValue> {
    SPEEDS
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, mbps)| mbps)
        .ok_or_else(|| {
            let names: Vec<&str> = SPEEDS.iter().map(|(n, _)| *n).collect();
            InvalidValue(format!(
                "{text:?} is not a speed; use one of {}",
                quoted_list(&names)
            ))
        })
}

/// Formats Mbit/s as the speed keyword when there is one (`10000` -> `10G`).
pub(crate) fn speed_name(mbps: u32) -> String {
    SPEEDS
        .iter()
        .find(|&&(_, m)| m == mbps)
        .map_or_else(|| format!("{mbps}M"), |(n, _)| (*n).to_owned())
}

/// Marker for speed strings in type errors.
pub(crate) struct SpeedText;

impl Expected for SpeedText {
    fn expected() -> String {
        "a speed: one of \"10M\", \"100M\", \"1G\", \"2.5G\", \"5G\", \"10G\", \"25G\", \"40G\", \"50G\", \"100G\", \"200G\", \"400G\"".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_parse_and_explain() {
        assert_eq!("802.3ad".parse::<BondMode>(), Ok(BondMode::Lacp));
        assert_eq!(BondMode::ActiveBackup.to_string(), "active-backup");
        let err = "lacp".parse::<BondMode>().expect_err("not a mode").0;
        assert!(err.contains("\"802.3ad\", \"active-backup\", \"balance-xor\""));
        assert_eq!(Duplex::expected(), "one of \"full\", \"half\"");
    }

    #[test]
    fn speeds_map_to_mbps() {
        assert_eq!(parse_speed("2.5G"), Ok(2_500));
        assert_eq!(parse_speed("400G"), Ok(400_000));
        assert!(parse_speed("10g").is_err());
        assert_eq!(speed_name(25_000), "25G");
        assert_eq!(speed_name(7), "7M");
    }

    #[test]
    fn duplex_override_converts_to_the_link_duplex() {
        assert_eq!(types::Duplex::from(Duplex::Full), types::Duplex::Full);
        assert_eq!(types::Duplex::from(Duplex::Half), types::Duplex::Half);
    }
}
