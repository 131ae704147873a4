//! Every file in `tests/broken/` is an invalid configuration with a header that says which
//! diagnostic it must produce:
//!
//! ```text
//! # expect: <substring of the diagnostic line>
//! # line: <line the diagnostic must point at>
//! # key: <key path the diagnostic must name>
//! ```
//!
//! The binary's `check-config` integration test reads the same headers.

use std::fs;
use std::path::{Path, PathBuf};

struct Expectation {
    expect: String,
    line: usize,
    key: String,
}

fn header(text: &str, file: &Path) -> Expectation {
    let value = |prefix: &str, index: usize| -> String {
        let line = text
            .lines()
            .nth(index)
            .unwrap_or_else(|| panic!("{}: header line {} missing", file.display(), index + 1));
        line.strip_prefix(prefix)
            .unwrap_or_else(|| {
                panic!(
                    "{}: line {} must start with {prefix:?}",
                    file.display(),
                    index + 1
                )
            })
            .trim()
            .to_owned()
    };
    Expectation {
        expect: value("# expect:", 0),
        line: value("# line:", 1)
            .parse()
            .unwrap_or_else(|_| panic!("{}: `# line:` is not a number", file.display())),
        key: value("# key:", 2),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/broken exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_broken_config_fails_where_its_header_says() {
    let files = fixtures();
    assert!(files.len() >= 13, "expected the broken-config fixtures");
    let mut failures = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable fixture");
        let want = header(&text, file);
        let err = match conf::load(file) {
            Ok(_) => {
                failures.push(format!("{}: loaded without error", file.display()));
                continue;
            }
            Err(err) => err,
        };
        let origin = file.display().to_string();
        let hit = err.diagnostics.iter().find(|d| {
            d.line == want.line && d.key_path == want.key && d.to_string().contains(&want.expect)
        });
        match hit {
            None => failures.push(format!(
                "{}: no diagnostic at line {} for {} containing {:?}; got:\n{err}",
                file.display(),
                want.line,
                want.key,
                want.expect
            )),
            Some(d) => {
                // What check-config prints must carry the position and the key path.
                let shown = err.to_string();
                assert!(
                    shown.contains(&format!("{origin}:{}:", want.line)),
                    "{shown}"
                );
                assert!(shown.contains(&format!(" {}: ", want.key)), "{shown}");
                assert_eq!(d.file, origin);
                assert!(d.column >= 1);
                // Fixtures hold one mistake each, so nothing else may be reported.
                if err.diagnostics.len() != 1 {
                    failures.push(format!(
                        "{}: expected exactly one diagnostic, got:\n{err}",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_required_error_classes_have_fixtures() {
    let names: Vec<String> = fixtures()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for required in [
        "unknown-key",
        "wrong-type",
        "unknown-member",
        "duplicate-port-name",
        "overlapping-cores",
        "bad-mac",
        "bad-pci",
        "bad-prefix",
        "member-in-two-bonds",
        "queue-count",
        "missing-forward",
        "unknown-forward-endpoint",
        "bad-ring-end",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing fixture {required}.toml"
        );
    }
}
