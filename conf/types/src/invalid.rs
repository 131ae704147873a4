//! The error of every `FromStr` in this crate.

use std::fmt;

/// A value did not parse; the message says what was expected instead.
///
/// The message is written for an operator: it quotes the input and says what to write, e.g.
/// `"02-00-00-00-00-01" is not a MAC address; write six two-digit hex octets separated by
/// colons, like "02:00:00:00:00:01"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue(pub String);

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidValue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_the_message_only() {
        let e = InvalidValue("\"x\" is not valid here".to_owned());
        assert_eq!(e.to_string(), "\"x\" is not valid here");
        let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
        assert_eq!(boxed.to_string(), e.0);
    }
}
