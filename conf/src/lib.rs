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
mod limits;
mod model;
mod raw;
mod span;
mod validate;
mod values;

use std::path::Path;

use serde::Deserialize as _;
use toml::de::DeTable;

pub use error::{printable, ConfigError, Diagnostic};
pub use limits::{
    data_room, ethdev_ports, lcores, memory_estimate, Limits, MemoryEstimate, MAX_FILE_PREFIX,
};
pub use model::{
    Bond, BondMember, Config, Dataplane, Endpoint, Forward, Interface, Lacp, Management, Neighbor,
    Port, Route, RouteHop, DEFAULT_SOCKET,
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
    load_with(path, &Limits::default())
}

/// As [`load`], checking against `limits` (what the DPDK fastlag runs with allows).
///
/// # Errors
///
/// As for [`load`].
pub fn load_with(path: &Path, limits: &Limits) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match read_bounded(path) {
        Ok(text) => parse_with(&text, &origin, limits),
        Err(message) => Err(ConfigError::single(Diagnostic {
            file: origin,
            line: 0,
            column: 0,
            key_path: String::new(),
            message,
        })),
    }
}

/// The largest configuration file read; real ones are a few KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a configuration file: a regular file of at most [`MAX_FILE_BYTES`], checked
/// before it is opened for reading (a FIFO would block forever, `/dev/zero` would be read
/// until memory runs out) and again on the opened file, and read with that bound.
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let cannot = |e: std::io::Error| format!("cannot read the configuration file: {e}");
    let check = |meta: &std::fs::Metadata| -> Result<(), String> {
        if !meta.is_file() {
            return Err(format!(
                "not a regular file ({}); give the path of a TOML configuration file",
                file_kind(meta)
            ));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(too_big(meta.len()));
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(cannot)?)?;
    // O_NONBLOCK: should the path become a FIFO between the check and the open, opening
    // it does not wait for a writer (the check on the opened file then refuses it).
    const O_NONBLOCK: i32 = 0o4000; // Linux (x86, Arm)
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    check(&file.metadata().map_err(cannot)?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read the configuration file: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_big(len: u64) -> String {
    format!("the file is {len} bytes, more than a configuration file may be ({MAX_FILE_BYTES} bytes, 1 MiB); is this the right file?")
}

/// What a non-regular file is, in words.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// Parses and validates configuration `text`; `origin` is the file name used in diagnostics.
///
/// # Errors
///
/// A [`ConfigError`] as for [`load`], except that nothing is read from disk.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_with(text, origin, &Limits::default())
}

/// As [`parse`], checking against `limits`.
///
/// # Errors
///
/// As for [`parse`].
pub fn parse_with(text: &str, origin: &str, limits: &Limits) -> Result<Config, ConfigError> {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(err) => return Err(syntax_error(text, origin, &err)),
    };
    let index = SpanIndex::new(text, &root);
    if let Some(err) = section_kind_error(&index, origin) {
        return Err(err);
    }
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(root))
        .map_err(|err| shape_error(&index, origin, &err))?;
    validate::validate(raw, origin, &index, limits)
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
                // A dotted key names one table per segment: `dataplane.burst`.
                Some(key) => key.split('.').fold(table.to_owned(), |path, part| {
                    span::join_key(&path, part.trim())
                }),
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

/// A section that must be one table written as something else: serde would read an array
/// as the struct's fields in order (`[[dataplane]]` reported as "dataplane[0]: expected
/// an integer 0..=1023").
fn section_kind_error(index: &SpanIndex<'_>, origin: &str) -> Option<ConfigError> {
    let lacp = index
        .paths()
        .find(|p| p.starts_with("bond[") && p.ends_with("].lacp") && p.matches('.').count() == 1);
    let sections = ["dataplane", "forward", "management"];
    let path = sections
        .into_iter()
        .chain(lacp)
        .find(|p| index.kind(p).is_some_and(|k| k != "a table"))?;
    let kind = index.kind(path).unwrap_or_default();
    let header = if path.starts_with("bond[") {
        "[bond.lacp]".to_owned()
    } else {
        format!("[{path}]")
    };
    let (line, column) = index.locate_key(path);
    Some(ConfigError::single(Diagnostic {
        file: origin.to_owned(),
        line,
        column,
        key_path: path.to_owned(),
        message: format!(
            "invalid type: {kind}, expected a table: write its header once, with single brackets, like {header}"
        ),
    }))
}

/// serde's "expected struct RawDataplane" in the file's words.
fn struct_words(message: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("RawConfig", "a table of sections"),
        ("RawDataplane", "a table, like [dataplane]"),
        ("RawPort", "a table, like [[port]]"),
        ("RawBond", "a table, like [[bond]]"),
        ("RawLacp", "a table, like [bond.lacp]"),
        ("RawInterface", "a table, like [[interface]]"),
        ("RawRoute", "a table, like [[route]]"),
        (
            "RawRouteHop",
            "a table, like { via = \"192.0.2.1\", weight = 2 }",
        ),
        ("RawNeighbor", "a table, like [[neighbor]]"),
        ("RawForward", "a table, like [forward]"),
        ("RawManagement", "a table, like [management]"),
    ];
    let Some((before, rest)) = message.split_once("expected struct ") else {
        return message.to_owned();
    };
    let name: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    match NAMES.iter().find(|(n, _)| *n == name) {
        // "with N elements" (a struct read from an array) is serde's, not the file's.
        Some((_, words)) => format!("{before}expected {words}"),
        None => message.to_owned(),
    }
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
        .map(|path| index.dotted_key(path))
        .unwrap_or_default();
    let mut message = struct_words(&one_line(err.message()));
    // serde's names for TOML's types: a date-time is a "map" to serde, a table too.
    if let Some(rest) = message.strip_prefix("invalid type: map,") {
        let what = match span.as_ref().and_then(|span| index.datetime_at(span)) {
            Some(text) => format!("a date-time ({text})"),
            None => "a table".to_owned(),
        };
        message = format!("invalid type: {what},{rest}");
    } else if let Some(rest) = message.strip_prefix("invalid type: sequence,") {
        message = format!("invalid type: an array,{rest}");
    }
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

/// The bare key assigned on a line (`  burst = 32` -> `burst`, `dataplane.burst = 1` ->
/// `dataplane.burst`), if it is a simple assignment.
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
    fn syntax_errors_on_dotted_keys_name_each_segment() {
        let text = "dataplane.control_core = 0\ndataplane.burst = 1\ndataplane.burst = 2\n";
        let err = parse(text, "t.toml").expect_err("duplicate key");
        assert_eq!(err.diagnostics[0].key_path, "dataplane.burst", "{err}");
        assert_eq!(err.diagnostics[0].line, 3, "{err}");
        let text = "[dataplane]\nburst = 1\nburst.x = 2\n";
        let err = parse(text, "t.toml").expect_err("extends an integer");
        assert_eq!(err.diagnostics[0].key_path, "dataplane.burst.x", "{err}");
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
