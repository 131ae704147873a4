//! Value types of the configuration: addresses, devices and keyword enums.
//!
//! Each type parses from the string an operator writes (`FromStr`), prints back in canonical
//! form (`Display`) and (de)serializes through that string, so the same spelling works in the
//! TOML file, in logs and in the management API.

mod device;
mod ip;
mod keywords;
mod mac;

pub use device::{Device, PciAddr};
pub use ip::IpPrefix;
pub(crate) use ip::{family, IpAddrText, SocketAddrText};
pub(crate) use keywords::{parse_speed, speed_name, Speed};
pub use keywords::{
    BondMode, Duplex, Fallback, ForwardMode, HashPolicy, LacpActivity, LacpRate, MuxMode, RingEnd,
    Selection,
};
pub use mac::MacAddr;

/// A value did not parse; the message says what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

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
