#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! fastlag configuration: the TOML schema of the whole product, loading and validation.
//!
//! The file is checked completely before DPDK starts: first its shape (known keys only, right
//! TOML types), then its meaning (ranges, references between sections, conflicts). Every
//! problem is a [`Diagnostic`] naming the file, line, column and key path, and saying what to
//! change:
//!
//! ```text
//! conf/bad.toml:7:9: dataplane.burst: invalid type: string "32", expected an integer 1..=512
//! conf/bad.toml:14:12: bond[0].members[1]: unknown port "p9"; known ports: p0, p1, p2
//! ```
//!
//! Syntax and type errors stop at the first one; semantic errors are all reported.
//!
//! ```
//! let config = conf::parse(conf::DEFAULT_TOML, "default.toml").expect("shipped default is valid");
//! assert_eq!(config.bonds.len(), 2);
//! assert!(matches!(config.endpoint("bondA"), Some(conf::Endpoint::Bond(_))));
//! assert!(matches!(config.endpoint("in"), Some(conf::Endpoint::Port(_))));
//! ```

mod error;
mod model;
mod raw;
mod span;
mod validate;
mod values;

use std::path::Path;

use serde::Deserialize as _;
use toml::de::DeTable;

pub use error::{ConfigError, Diagnostic};
pub use model::{
    Bond, BondMember, Config, Dataplane, Endpoint, Forward, Interface, Lacp, Management, Neighbor,
    Port, Route, DEFAULT_SOCKET,
};
pub use values::{
    BondMode, Device, Duplex, Fallback, ForwardMode, HashPolicy, InvalidValue, IpPrefix,
    LacpActivity, LacpRate, MacAddr, MuxMode, PciAddr, RestartMode, RingEnd, Selection,
};

use raw::RawConfig;
use span::SpanIndex;

/// The configuration the binary runs when given none (`conf/default.toml`): two 802.3ad
/// bonds back to back over in-process ring links, cross-connected to two more ring links
/// whose other ends belong to the built-in traffic generator.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

/// Reads, parses and validates the configuration file at `path`.
///
/// Diagnostics name the file as `path` is displayed.
///
/// # Errors
///
/// A [`ConfigError`] when the file cannot be read (one diagnostic without position), is not
/// TOML or does not fit the schema (the first such problem), or breaks semantic rules (all of
/// them).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(err) => Err(ConfigError::single(Diagnostic {
            file: origin,
            line: 0,
            column: 0,
            key_path: String::new(),
            message: format!("cannot read the configuration file: {err}"),
        })),
    }
}

/// Parses and validates configuration `text`; `origin` is the file name used in diagnostics.
///
/// # Errors
///
/// A [`ConfigError`] as for [`load`], except that nothing is read from disk.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(err) => return Err(syntax_error(text, origin, &err)),
    };
    let index = SpanIndex::new(text, &root);
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(root))
        .map_err(|err| shape_error(&index, origin, &err))?;
    validate::validate(raw, origin, &index)
}

/// The embedded default configuration ([`DEFAULT_TOML`]), validated.
///
/// # Errors
///
/// Never in a released build (a test loads it); returned rather than panicking.
pub fn default_config() -> Result<Config, ConfigError> {
    parse(DEFAULT_TOML, "<built-in default.toml>")
}

/// A TOML syntax error (the document is not TOML).
fn syntax_error(text: &str, origin: &str, err: &toml::de::Error) -> ConfigError {
    // Recover what parses so the message can still name the key on the offending line.
    let (partial, _) = DeTable::parse_recoverable(text);
    let index = SpanIndex::new(text, &partial);
    let offset = err.span().map_or(0, |span| span.start);
    let (line, column) = index.position(offset);
    let key_path = match index.path_on_line(line) {
        Some(path) => path.to_owned(),
        None => {
            // The offending key did not survive recovery (e.g. a duplicate key): take the key
            // written on that line, inside the table whose header comes before it.
            let table = index.table_before(offset).unwrap_or_default();
            match key_on_line(index.line_text(line)) {
                Some(key) => span::join_key(table, key),
                None => table.to_owned(),
            }
        }
    };
    ConfigError::single(Diagnostic {
        file: origin.to_owned(),
        line,
        column,
        key_path,
        message: format!(
            "TOML syntax error: {}",
            syntax_hint(&one_line(err.message()))
        ),
    })
}

/// A TOML document whose keys or value types do not fit the schema.
fn shape_error(index: &SpanIndex<'_>, origin: &str, err: &toml::de::Error) -> ConfigError {
    let span = err.span();
    let (line, column) = span
        .as_ref()
        .map_or((1, 1), |span| index.position(span.start));
    let key_path = span
        .as_ref()
        .and_then(|span| index.path_at(span))
        .unwrap_or_default()
        .to_owned();
    let mut message = one_line(err.message());
    if let Some(hint) = unknown_field_hint(&message) {
        message.push_str(&hint);
    }
    ConfigError::single(Diagnostic {
        file: origin.to_owned(),
        line,
        column,
        key_path,
        message,
    })
}

/// toml's terse parser messages, with what to do about the common ones.
fn syntax_hint(message: &str) -> String {
    match message {
        "duplicate key" => {
            "duplicate key: this key (or table) is already defined earlier; keep one definition"
                .to_owned()
        }
        _ => message.to_owned(),
    }
}

/// The bare key assigned on a line (`  burst = 32` -> `burst`), if it is a simple assignment.
fn key_on_line(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    bare.then_some(key)
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// For serde's "unknown field `bursts`, expected one of `burst`, ..." suggest the closest key.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, candidates) = rest.split_once('`')?;
    let best = candidates
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|c| (edit_distance(field, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3))
        .min_by_key(|&(d, _)| d)?;
    Some(format!("; did you mean `{}`?", best.1))
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            let insert = cur[j] + 1;
            let delete = prev[j + 1] + 1;
            cur.push(substitute.min(insert).min(delete));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys() {
        let msg = "unknown field `bursts`, expected one of `control_core`, `burst`, `mbufs`";
        assert_eq!(
            unknown_field_hint(msg).as_deref(),
            Some("; did you mean `burst`?")
        );
        let far = "unknown field `zzzzzz`, expected one of `burst`, `mbufs`";
        assert_eq!(unknown_field_hint(far), None);
        assert_eq!(unknown_field_hint("invalid type"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("burst", "burst"), 0);
        assert_eq!(edit_distance("bursts", "burst"), 1);
        assert_eq!(edit_distance("mbuf_cahce", "mbuf_cache"), 2);
    }

    #[test]
    fn unreadable_file_is_a_diagnostic_without_position() {
        let err = load(Path::new("/nonexistent/fastlag.toml")).expect_err("missing file");
        assert_eq!(err.diagnostics.len(), 1);
        let d = &err.diagnostics[0];
        assert_eq!((d.line, d.column), (0, 0));
        assert!(err
            .to_string()
            .starts_with("/nonexistent/fastlag.toml: cannot read"));
    }

    #[test]
    fn embedded_default_is_valid() {
        let config = default_config().expect("default.toml is valid");
        assert_eq!(config.dataplane.worker_cores, vec![1]);
        assert!(!config.dataplane.hugepages);
    }
}
