//! Bond distribution hash policies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidValue;

/// Which header fields choose the bond member for a frame (the configuration's `hash`).
///
/// Written as the Linux bonding driver's `xmit_hash_policy` names: `layer2`, `layer2+3`,
/// `layer3+4` (`Display`, `FromStr`, serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashPolicy {
    /// Source and destination MAC (and the VLAN ids).
    Layer2,
    /// MACs plus IPv4/IPv6 source and destination addresses.
    Layer23,
    /// IP addresses plus TCP/UDP/SCTP ports (not for fragments, whose ports are unknown).
    Layer34,
}

impl HashPolicy {
    /// Every policy, in the order of [`HashPolicy::KEYWORDS`].
    pub const ALL: [HashPolicy; 3] = [HashPolicy::Layer2, HashPolicy::Layer23, HashPolicy::Layer34];

    /// Every accepted spelling, in documentation order.
    pub const KEYWORDS: &'static [&'static str] = &["layer2", "layer2+3", "layer3+4"];

    /// The keyword as written in the configuration file.
    pub const fn as_str(self) -> &'static str {
        match self {
            HashPolicy::Layer2 => "layer2",
            HashPolicy::Layer23 => "layer2+3",
            HashPolicy::Layer34 => "layer3+4",
        }
    }
}

impl fmt::Display for HashPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashPolicy {
    type Err = InvalidValue;

    /// One of [`HashPolicy::KEYWORDS`], exactly (case matters).
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        HashPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let keywords: Vec<String> = HashPolicy::KEYWORDS
                    .iter()
                    .map(|k| format!("{k:?}"))
                    .collect();
                InvalidValue(format!(
                    "{s:?} is not valid here; use one of {}",
                    keywords.join(", ")
                ))
            })
    }
}

/// As the keyword string.
impl Serialize for HashPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From the keyword string, as `FromStr` parses it.
impl<'de> Deserialize<'de> for HashPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip() {
        for (policy, keyword) in HashPolicy::ALL.into_iter().zip(HashPolicy::KEYWORDS) {
            assert_eq!(policy.as_str(), *keyword);
            assert_eq!(policy.to_string(), *keyword);
            assert_eq!(keyword.parse::<HashPolicy>(), Ok(policy));
        }
        assert_eq!("layer2+3".parse(), Ok(HashPolicy::Layer23));
    }

    #[test]
    fn unknown_keywords_list_the_valid_ones() {
        for bad in ["", "Layer2", "layer23", "layer3+4 ", "l2"] {
            assert!(bad.parse::<HashPolicy>().is_err(), "{bad:?} must not parse");
        }
        assert_eq!(
            "l2".parse::<HashPolicy>(),
            Err(InvalidValue(
                "\"l2\" is not valid here; use one of \"layer2\", \"layer2+3\", \"layer3+4\""
                    .to_owned()
            ))
        );
    }

    #[test]
    fn deserializes_from_the_keyword() {
        use serde::de::value::{Error, StrDeserializer};
        for policy in HashPolicy::ALL {
            let de = StrDeserializer::<Error>::new(policy.as_str());
            assert_eq!(HashPolicy::deserialize(de), Ok(policy));
        }
        let err = HashPolicy::deserialize(StrDeserializer::<Error>::new("layer4"))
            .expect_err("not a policy");
        assert!(err.to_string().contains("use one of"), "{err}");
    }
}
