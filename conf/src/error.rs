//! Configuration errors, addressed like compiler diagnostics.

use std::borrow::Cow;
use std::fmt;

/// `text` with control characters escaped (`\u{1b}`, `\0`, `\n`), so that a name or
/// value taken from a configuration file cannot move the cursor, recolour or hide text on
/// the operator's terminal when it is printed. Text without control characters is
/// returned as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One problem in a configuration file, with where it is and what to change.
///
/// Displays as `file:line:column: key.path: message`, for example
/// `conf/bad.toml:14:12: bond[0].members[1]: unknown port "p9"; known ports: p0, p1, p2`,
/// with control characters escaped ([`printable`]): one diagnostic is one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// The file name as given to [`crate::load`] or the `origin` given to [`crate::parse`].
    pub file: String,
    /// 1-based line of the offending key or value; 0 when there is no position (unreadable file).
    pub line: usize,
    /// 1-based column, in characters; 0 when there is no position.
    pub column: usize,
    /// Key path of the offending item, like `dataplane.burst` or `bond[0].members[1]`; empty
    /// when the document could not be parsed far enough to know it.
    pub key_path: String,
    /// What is wrong and what to change.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", printable(&self.file))?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.key_path.is_empty() {
            write!(f, " {}:", printable(&self.key_path))?;
        }
        write!(f, " {}", printable(&self.message))
    }
}

/// A configuration that cannot be used: every problem found, in file order.
///
/// Syntax and type errors stop parsing, so they come alone; semantic errors (ranges, unknown
/// references, conflicts) are all reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, sorted by line and column. Never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// An error with a single diagnostic.
    pub fn single(diagnostic: Diagnostic) -> Self {
        ConfigError {
            diagnostics: vec![diagnostic],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            d.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(line: usize, key_path: &str) -> Diagnostic {
        Diagnostic {
            file: "conf/bad.toml".into(),
            line,
            column: 9,
            key_path: key_path.into(),
            message: "problem".into(),
        }
    }

    #[test]
    fn displays_like_a_compiler() {
        assert_eq!(
            diag(7, "dataplane.burst").to_string(),
            "conf/bad.toml:7:9: dataplane.burst: problem"
        );
        assert_eq!(diag(7, "").to_string(), "conf/bad.toml:7:9: problem");
        let mut unreadable = diag(0, "");
        unreadable.column = 0;
        assert_eq!(unreadable.to_string(), "conf/bad.toml: problem");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut d = diag(3, "port[0].name");
        d.message = "known ports: p\u{1b}[31mX, q\0, r\nline".into();
        d.file = "a\u{7}.toml".into();
        let shown = d.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            shown,
            "a\\u{7}.toml:3:9: port[0].name: known ports: p\\u{1b}[31mX, q\\0, r\\nline"
        );
        assert!(matches!(printable("plain é"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_per_diagnostic() {
        let err = ConfigError {
            diagnostics: vec![diag(1, "a"), diag(2, "b")],
        };
        assert_eq!(
            err.to_string(),
            "conf/bad.toml:1:9: a: problem\nconf/bad.toml:2:9: b: problem"
        );
    }
}
