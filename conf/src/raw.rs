//! The TOML shape of the configuration, as serde sees it.
//!
//! These structs only decide which keys exist (`deny_unknown_fields`) and which TOML type each
//! value has. Everything else (ranges, syntax of addresses, keywords, references between
//! sections, required keys) is checked in `validate`, which reports every problem at once
//! instead of stopping at the first one as serde does. That is why required keys are `Option`,
//! integers are kept as written ([`Int`]) and strings that need parsing are kept as text
//! ([`Text`]); their `expecting` messages still tell the operator what belongs there.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::values::{
    BondMode, Device, Duplex, Expected, Fallback, ForwardMode, HashPolicy, IpAddrText, IpPrefix,
    LacpActivity, LacpRate, MacAddr, MuxMode, RestartMode, Selection, SocketAddrText, SpeedText,
};

/// Upper bound meaning "no upper bound of its own" (checked against other values later).
pub(crate) const UNBOUNDED: i64 = i64::MAX;

/// A TOML integer, kept as written; `MIN..=MAX` is what the key accepts, checked later so
/// that out-of-range values are reported together with other semantic errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int<const MIN: i64, const MAX: i64>(pub(crate) i128);

impl<const MIN: i64, const MAX: i64> Int<MIN, MAX> {
    /// The accepted range in words: `an integer 1..=512` or `an integer >= 1`.
    pub(crate) fn expected() -> String {
        if MAX == UNBOUNDED {
            format!("an integer >= {MIN}")
        } else {
            format!("an integer {MIN}..={MAX}")
        }
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor<const MIN: i64, const MAX: i64>;

        impl<'de, const MIN: i64, const MAX: i64> Visitor<'de> for IntVisitor<MIN, MAX> {
            type Value = Int<MIN, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&Int::<MIN, MAX>::expected())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Int(i128::from(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Int(i128::from(v)))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                Ok(Int(v))
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                Ok(Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
        }

        deserializer.deserialize_any(IntVisitor::<MIN, MAX>)
    }
}

/// A TOML string that is parsed into `T` during validation; `T` only names what is expected.
pub(crate) struct Text<T> {
    pub(crate) text: String,
    marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Text<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text.fmt(f)
    }
}

impl<'de, T: Expected> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<T>(PhantomData<fn() -> T>);

        impl<'de, T: Expected> Visitor<'de> for TextVisitor<T> {
            type Value = Text<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&T::expected())
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text {
                    text: v.to_owned(),
                    marker: PhantomData,
                })
            }
        }

        deserializer.deserialize_str(TextVisitor(PhantomData))
    }
}

/// Collects a TOML array; `TABLES` selects the wording of the type error (`[[port]]` vs `[..]`).
fn deserialize_seq<'de, D, T>(deserializer: D, tables: bool) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct SeqVisitor<T> {
        tables: bool,
        marker: PhantomData<fn() -> T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.tables {
                f.write_str(
                    "an array of tables: write the header with double brackets, like [[port]], once per entry",
                )
            } else {
                f.write_str("an array, like [\"a\", \"b\"]")
            }
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // The hint comes from the document; cap it so a hostile size hint cannot allocate.
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_seq(SeqVisitor {
        tables,
        marker: PhantomData,
    })
}

/// A TOML array of values.
#[derive(Debug)]
pub(crate) struct List<T>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_seq(deserializer, false).map(List)
    }
}

/// A TOML array of tables (`[[port]]`).
#[derive(Debug)]
pub(crate) struct Tables<T>(pub(crate) Vec<T>);

impl<T> Default for Tables<T> {
    fn default() -> Self {
        Tables(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tables<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_seq(deserializer, true).map(Tables)
    }
}

/// CPU ids: DPDK lcore ids are small; this only rejects nonsense.
pub(crate) type Cpu = Int<0, 1023>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) dataplane: Option<RawDataplane>,
    #[serde(default)]
    pub(crate) port: Tables<RawPort>,
    #[serde(default)]
    pub(crate) bond: Tables<RawBond>,
    #[serde(default)]
    pub(crate) interface: Tables<RawInterface>,
    #[serde(default)]
    pub(crate) route: Tables<RawRoute>,
    #[serde(default)]
    pub(crate) neighbor: Tables<RawNeighbor>,
    pub(crate) forward: Option<RawForward>,
    pub(crate) management: Option<RawManagement>,
}

/// `[dataplane]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDataplane {
    pub(crate) control_core: Option<Cpu>,
    pub(crate) worker_cores: Option<List<Cpu>>,
    pub(crate) hugepages: Option<bool>,
    pub(crate) memory_mb: Option<Int<1, 1_048_576>>,
    pub(crate) mbufs: Option<Int<1, 4_294_967_295>>,
    pub(crate) mbuf_cache: Option<Int<0, 512>>,
    pub(crate) burst: Option<Int<1, 512>>,
    pub(crate) eal_args: Option<List<String>>,
    pub(crate) file_prefix: Option<String>,
    pub(crate) stats_interval_s: Option<Int<0, 86_400>>,
}

/// Descriptor ring sizes.
pub(crate) type Descriptors = Int<64, 16_384>;

/// MTU in bytes (L3 payload).
pub(crate) type Mtu = Int<68, 9_600>;

/// `[[port]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub(crate) name: Option<String>,
    pub(crate) device: Option<Text<Device>>,
    pub(crate) queues: Option<Int<1, 1024>>,
    pub(crate) rx_descriptors: Option<Descriptors>,
    pub(crate) tx_descriptors: Option<Descriptors>,
    pub(crate) mtu: Option<Mtu>,
    pub(crate) speed: Option<Text<SpeedText>>,
    pub(crate) duplex: Option<Text<Duplex>>,
    pub(crate) mac: Option<Text<MacAddr>>,
    pub(crate) lacp_port_priority: Option<Int<0, 65_535>>,
    pub(crate) lacp_port_number: Option<Int<1, 65_535>>,
}

/// `[[bond]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBond {
    pub(crate) name: Option<String>,
    pub(crate) mode: Option<Text<BondMode>>,
    pub(crate) members: Option<List<String>>,
    pub(crate) hash: Option<Text<HashPolicy>>,
    pub(crate) min_links: Option<Int<1, 65_535>>,
    pub(crate) mac: Option<Text<MacAddr>>,
    pub(crate) lacp: Option<RawLacp>,
}

/// `[bond.lacp]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLacp {
    pub(crate) activity: Option<Text<LacpActivity>>,
    pub(crate) rate: Option<Text<LacpRate>>,
    pub(crate) system_priority: Option<Int<1, 65_535>>,
    pub(crate) system_id: Option<Text<MacAddr>>,
    pub(crate) key: Option<Int<1, 65_535>>,
    pub(crate) port_priority: Option<Int<0, 65_535>>,
    pub(crate) max_active: Option<Int<1, 65_535>>,
    pub(crate) selection: Option<Text<Selection>>,
    pub(crate) fallback: Option<Text<Fallback>>,
    pub(crate) mux: Option<Text<MuxMode>>,
}

/// `[[interface]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInterface {
    pub(crate) name: Option<String>,
    pub(crate) on: Option<String>,
    pub(crate) vlan: Option<Int<1, 4094>>,
    pub(crate) addresses: Option<List<Text<IpPrefix>>>,
    pub(crate) mtu: Option<Mtu>,
    pub(crate) tap: Option<bool>,
    pub(crate) tap_name: Option<String>,
}

/// `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) prefix: Option<Text<IpPrefix>>,
    pub(crate) via: Option<Text<IpAddrText>>,
    pub(crate) interface: Option<String>,
    pub(crate) nexthop: Option<Tables<RawRouteHop>>,
}

/// One of `[[route]]`'s `nexthop = [...]` (ECMP).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteHop {
    pub(crate) via: Option<Text<IpAddrText>>,
    pub(crate) interface: Option<String>,
    pub(crate) weight: Option<Int<1, 256>>,
}

/// `[[neighbor]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNeighbor {
    pub(crate) interface: Option<String>,
    pub(crate) address: Option<Text<IpAddrText>>,
    pub(crate) mac: Option<Text<MacAddr>>,
}

/// `[forward]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForward {
    pub(crate) mode: Option<Text<ForwardMode>>,
    pub(crate) pairs: Option<List<List<String>>>,
}

/// `[management]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManagement {
    pub(crate) socket: Option<String>,
    pub(crate) metrics: Option<Text<SocketAddrText>>,
    pub(crate) state_file: Option<String>,
    pub(crate) restart: Option<Text<RestartMode>>,
}
