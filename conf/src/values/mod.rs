//! Value types of the configuration: addresses, devices and keyword enums.
//!
//! Each type parses from the string an operator writes (`FromStr`), prints back in canonical
//! form (`Display`) and (de)serializes through that string, so the same spelling works in the
//! TOML file, in logs and in the management API.
//!
//! [`MacAddr`], [`HashPolicy`] and [`InvalidValue`] are the workspace-wide definitions from
//! the `types` crate, re-exported; what this module adds to them is what the configuration
//! file says it expects ([`Expected`]).

mod device;
mod ip;
mod keywords;

pub use device::{Device, PciAddr};
pub use ip::IpPrefix;
pub(crate) use ip::{family, IpAddrText, SocketAddrText};
pub(crate) use keywords::{parse_speed, speed_name, SpeedText};
pub use keywords::{
    BondMode, Duplex, Fallback, ForwardMode, LacpActivity, LacpRate, MuxMode, RestartMode, RingEnd,
    Selection,
};
pub use types::{HashPolicy, InvalidValue, MacAddr};

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! serde_via_string {
    ($ty:ty) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_string;

/// What a string value is, for "expected ..." in messages.
pub(crate) trait Expected {
    /// Noun phrase, e.g. `a MAC address like "02:00:00:00:00:01"`.
    fn expected() -> String;
}

/// Defines an enum of TOML keywords with `FromStr`, `Display`, `as_str` and serde.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every accepted spelling, in documentation order.
            pub const KEYWORDS: &'static [&'static str] = &[$($text),+];

            /// The keyword as written in the configuration file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::values::InvalidValue;

            fn from_str(s: &str) -> Result<Self, $crate::values::InvalidValue> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::values::InvalidValue(format!(
                        "{s:?} is not valid here; use one of {}",
                        $crate::values::quoted_list(Self::KEYWORDS)
                    ))),
                }
            }
        }

        impl $crate::values::Expected for $name {
            fn expected() -> String {
                format!("one of {}", $crate::values::quoted_list(Self::KEYWORDS))
            }
        }

        $crate::values::serde_via_string!($name);
    };
}
pub(crate) use keyword_enum;

/// `"a", "b", "c"`.
pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Expected for MacAddr {
    fn expected() -> String {
        "a MAC address string like \"02:00:00:00:00:01\"".to_owned()
    }
}

impl Expected for HashPolicy {
    fn expected() -> String {
        format!("one of {}", quoted_list(HashPolicy::KEYWORDS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_types_say_what_they_expect() {
        assert_eq!(
            HashPolicy::expected(),
            "one of \"layer2\", \"layer2+3\", \"layer3+4\""
        );
        assert_eq!(
            MacAddr::expected(),
            "a MAC address string like \"02:00:00:00:00:01\""
        );
    }

    #[test]
    fn shared_types_serialize_as_strings() {
        let mac: MacAddr = "02:00:00:00:0A:ff".parse().expect("valid mac");
        let value = toml::Value::try_from(mac).expect("serializes");
        assert_eq!(value, toml::Value::String("02:00:00:00:0a:ff".to_owned()));
        assert_eq!(value.try_into::<MacAddr>(), Ok(mac));
        for hash in HashPolicy::ALL {
            let value = toml::Value::try_from(hash).expect("serializes");
            assert_eq!(value, toml::Value::String(hash.as_str().to_owned()));
            assert_eq!(value.try_into::<HashPolicy>(), Ok(hash));
        }
    }
}
