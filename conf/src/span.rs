//! Where every key and value of a TOML document is, by key path.
//!
//! serde forgets positions once a value is deserialized, but operators need the line of the
//! offending value for semantic errors too ("unknown port" is found long after parsing). So the
//! document is parsed once into toml's spanned tree, this index records the byte span of every
//! key and value under a key path (`bond[0].members[1]`), and the tree is then handed to serde.
//! Semantic validation names a key path; the index turns it into a line and column.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One key or array element of the document.
#[derive(Debug)]
struct Entry {
    path: String,
    /// Span of the key (absent for array elements).
    key: Option<Range<usize>>,
    /// Span of the value; for a table declared by a header this is the header (`[bond.lacp]`).
    value: Range<usize>,
    depth: usize,
    /// A table declared by a `[header]` or `[[header]]` line.
    header: bool,
    /// What kind of TOML value it is, in words ("a table", "an integer", ...).
    kind: &'static str,
}

/// Byte spans of every key path in one document, plus line/column conversion.
#[derive(Debug)]
pub(crate) struct SpanIndex<'a> {
    text: &'a str,
    entries: Vec<Entry>,
    by_path: HashMap<String, usize>,
    /// Byte offset of the first character of each line.
    line_starts: Vec<usize>,
}

impl<'a> SpanIndex<'a> {
    /// An index with positions only (no keys), for documents that did not parse.
    pub(crate) fn empty(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        SpanIndex {
            text,
            entries: Vec::new(),
            by_path: HashMap::new(),
            line_starts,
        }
    }

    /// Index every key and value of `root`.
    pub(crate) fn new(text: &'a str, root: &Spanned<DeTable<'_>>) -> Self {
        let mut index = Self::empty(text);
        index.walk_table(root.get_ref(), "", 0);
        index
    }

    fn walk_table(&mut self, table: &DeTable<'_>, prefix: &str, depth: usize) {
        for (key, value) in table.iter() {
            let path = join_key(prefix, key.get_ref());
            self.walk_value(path, Some(key.span()), value, depth);
        }
    }

    fn walk_value(
        &mut self,
        path: String,
        key: Option<Range<usize>>,
        value: &Spanned<DeValue<'_>>,
        depth: usize,
    ) {
        let header = matches!(value.get_ref(), DeValue::Table(_))
            && self.text.as_bytes().get(value.span().start) == Some(&b'[');
        self.by_path.insert(path.clone(), self.entries.len());
        self.entries.push(Entry {
            path: path.clone(),
            key,
            value: value.span(),
            depth,
            header,
            kind: kind(value.get_ref()),
        });
        match value.get_ref() {
            DeValue::Table(table) => self.walk_table(table, &path, depth + 1),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk_value(format!("{path}[{i}]"), None, item, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// The kind of value at `path` ("a table", "an array", ...), if present.
    pub(crate) fn kind(&self, path: &str) -> Option<&'static str> {
        self.by_path
            .get(path)
            .and_then(|&i| self.entries.get(i))
            .map(|e| e.kind)
    }

    /// Key paths present, in document order of indexing.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.path.as_str())
    }

    /// Whether the document contains `path`.
    pub(crate) fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// 1-based line and column of the value at `path`, or of its nearest present ancestor (a
    /// missing key is reported at the table that should contain it), or 1:1.
    pub(crate) fn locate(&self, path: &str) -> (usize, usize) {
        let mut current = path;
        loop {
            if let Some(&i) = self.by_path.get(current) {
                if let Some(entry) = self.entries.get(i) {
                    return self.position(entry.value.start);
                }
            }
            match parent(current) {
                Some(p) => current = p,
                None => return (1, 1),
            }
        }
    }

    /// 1-based line and column of the key at `path` (its value for array elements).
    pub(crate) fn locate_key(&self, path: &str) -> (usize, usize) {
        match self.by_path.get(path).and_then(|&i| self.entries.get(i)) {
            // For `[bond.lacp]` the whole header line is the key.
            Some(Entry {
                key: Some(k),
                header: false,
                ..
            }) => self.position(k.start),
            _ => self.locate(path),
        }
    }

    /// Line of the value at `path` (for "first defined at line N" hints).
    pub(crate) fn line(&self, path: &str) -> usize {
        self.locate(path).0
    }

    /// The key path a byte span belongs to: the deepest value or key with exactly this span,
    /// else the smallest value that contains it.
    pub(crate) fn path_at(&self, span: &Range<usize>) -> Option<&str> {
        let exact_value = self
            .entries
            .iter()
            .filter(|e| e.value == *span)
            .max_by_key(|e| e.depth);
        if let Some(e) = exact_value {
            return Some(&e.path);
        }
        let exact_key = self.entries.iter().find(|e| e.key.as_ref() == Some(span));
        if let Some(e) = exact_key {
            return Some(&e.path);
        }
        self.entries
            .iter()
            .filter(|e| e.value.start <= span.start && span.end <= e.value.end)
            .min_by_key(|e| (e.value.end - e.value.start, usize::MAX - e.depth))
            .map(|e| e.path.as_str())
    }

    /// The date-time written at exactly `span`, if the value there is one.
    pub(crate) fn datetime_at(&self, span: &Range<usize>) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.kind == DATETIME && e.value == *span)
            .and_then(|e| self.text.get(e.value.clone()))
    }

    /// The whole dotted key `path` is the start of: `dataplane.x` of `dataplane.x.y = 1`
    /// is `dataplane.x.y` (a table made by a dotted key with one key under it, down to the
    /// value). Other paths are returned as they are.
    pub(crate) fn dotted_key(&self, path: &str) -> String {
        let mut current = path.to_owned();
        loop {
            let Some(entry) = self
                .by_path
                .get(&current)
                .and_then(|&i| self.entries.get(i))
            else {
                return current;
            };
            // A table made by a dotted key has the key's span as its value span.
            if entry.header || entry.key.as_ref() != Some(&entry.value) {
                return current;
            }
            let prefix = format!("{current}.");
            let mut children = self
                .entries
                .iter()
                .filter(|e| e.depth == entry.depth + 1 && e.path.starts_with(&prefix));
            match (children.next(), children.next()) {
                (Some(only), None) => current = only.path.clone(),
                _ => return current,
            }
        }
    }

    /// The key path of the last entry that starts on `line` (best effort, for syntax errors).
    pub(crate) fn path_on_line(&self, line: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| self.position(e.key.as_ref().unwrap_or(&e.value).start).0 == line)
            .max_by_key(|e| e.depth)
            .map(|e| e.path.as_str())
    }

    /// The table whose `[header]` is the last one before `offset` (best effort, for syntax
    /// errors, where the document is only partially known).
    pub(crate) fn table_before(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.header && e.value.start <= offset)
            .max_by_key(|e| (e.value.start, e.depth))
            .map(|e| e.path.as_str())
    }

    /// The text of 1-based `line`, without the line break.
    pub(crate) fn line_text(&self, line: usize) -> &str {
        let start = line
            .checked_sub(1)
            .and_then(|i| self.line_starts.get(i))
            .copied()
            .unwrap_or(self.text.len());
        let rest = self.text.get(start..).unwrap_or_default();
        rest.split('\n')
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r')
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line_index + 1, column + 1)
    }
}

const DATETIME: &str = "a date-time";

/// A TOML value's type, in words.
fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => DATETIME,
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `prefix.key`, quoting keys that are not bare TOML keys.
pub(crate) fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

/// `bond[0].lacp` -> `bond[0]` -> `bond` -> None.
fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# c\n[dataplane]\nburst = 32\n\n[[bond]]\nname = \"b\"\nmembers = [\"p0\", \"p1\"]\n[bond.lacp]\nkey = 1\n";

    fn index(text: &str) -> SpanIndex<'_> {
        let root = DeTable::parse(text).expect("test document parses");
        SpanIndex::new(text, &root)
    }

    #[test]
    fn locates_values_by_path() {
        let idx = index(DOC);
        assert_eq!(idx.locate("dataplane.burst"), (3, 9));
        assert_eq!(idx.locate_key("dataplane.burst"), (3, 1));
        assert_eq!(idx.locate("bond[0].members[1]"), (7, 18));
        assert_eq!(idx.locate("bond[0].lacp"), (8, 1));
        assert_eq!(idx.locate("bond[0].lacp.key"), (9, 7));
    }

    #[test]
    fn missing_paths_fall_back_to_the_enclosing_table() {
        let idx = index(DOC);
        assert_eq!(idx.locate("bond[0].lacp.system_id"), (8, 1));
        assert_eq!(idx.locate("bond[0].hash"), (5, 1));
        assert_eq!(idx.locate("forward.mode"), (1, 1));
    }

    #[test]
    fn finds_the_path_of_a_span() {
        let idx = index(DOC);
        let start = DOC.find("\"p1\"").expect("fixture has p1");
        assert_eq!(idx.path_at(&(start..start + 4)), Some("bond[0].members[1]"));
        let header = DOC.find("[[bond]]").expect("fixture has header");
        assert_eq!(idx.path_at(&(header..header + 8)), Some("bond[0]"));
        let key = DOC.find("burst").expect("fixture has burst");
        assert_eq!(idx.path_at(&(key..key + 5)), Some("dataplane.burst"));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "name = \"é\" # x\nmtu = 1\n";
        let idx = index(text);
        assert_eq!(idx.locate("mtu"), (2, 7));
        assert_eq!(idx.position(text.find('#').expect("has #")), (1, 12));
    }

    #[test]
    fn odd_keys_are_quoted_in_paths() {
        assert_eq!(join_key("a", "b.c"), "a.\"b.c\"");
        assert_eq!(join_key("", "x_y-z"), "x_y-z");
    }

    #[test]
    fn finds_the_table_before_an_offset() {
        let idx = index(DOC);
        let key = DOC.find("key = 1").expect("fixture has key");
        assert_eq!(idx.table_before(key), Some("bond[0].lacp"));
        let burst = DOC.find("burst").expect("fixture has burst");
        assert_eq!(idx.table_before(burst), Some("dataplane"));
        assert_eq!(idx.table_before(0), None);
        assert_eq!(idx.line_text(3), "burst = 32");
        assert_eq!(idx.line_text(99), "");
    }

    #[test]
    fn dotted_keys_are_followed_to_the_value() {
        let text =
            "[dataplane]\nx.y.z = 1\nw.a = 1\nw.b = 2\nwhen = 1979-05-27T07:32:00Z\n[t.u]\nv = 1\n";
        let idx = index(text);
        assert_eq!(idx.dotted_key("dataplane.x"), "dataplane.x.y.z");
        assert_eq!(idx.dotted_key("dataplane.w"), "dataplane.w");
        assert_eq!(idx.dotted_key("dataplane"), "dataplane");
        // A header makes the same implicit tables: `[t.u]`.
        assert_eq!(idx.dotted_key("t"), "t.u");
        let at = text.find("1979").expect("has a date");
        assert_eq!(
            idx.datetime_at(&(at..at + 20)),
            Some("1979-05-27T07:32:00Z")
        );
        assert_eq!(idx.datetime_at(&(0..1)), None);
    }

    #[test]
    fn positions_past_the_end_do_not_panic() {
        let idx = SpanIndex::empty("ab\ncd");
        assert_eq!(idx.position(100), (2, 3));
        assert_eq!(idx.position(0), (1, 1));
    }
}
