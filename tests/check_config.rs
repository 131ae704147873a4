//! `fastlag check-config`: every shipped config passes with a summary; every broken config
//! in conf/tests/broken fails with the file, line number, key path and the expected words.

use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_configs_pass() {
    let shipped = files("conf");
    assert!(
        shipped.len() >= 5,
        "expected the shipped example configs, found {shipped:?}"
    );
    for f in shipped {
        let out = testkit::fastlag()
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} should pass:\n{}{}",
            f.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("OK"), "{stdout}");
        assert!(
            stdout.lines().count() < 60,
            "summary should fit one screen:\n{stdout}"
        );
    }
}

fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(&format!("# {key}:"))
                .map(|v| v.trim().to_string())
        })
}

#[test]
fn broken_configs_fail_with_line_and_key_path() {
    let broken = files("conf/tests/broken");
    assert!(
        broken.len() >= 13,
        "expected broken fixtures, found {}",
        broken.len()
    );
    for f in broken {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = header(&text, "expect").expect("fixture has # expect:");
        let line = header(&text, "line").expect("fixture has # line:");
        let key = header(&text, "key").expect("fixture has # key:");
        let out = testkit::fastlag()
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} should fail", f.display());
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", f.display());
        let diag = stderr
            .lines()
            .find(|l| l.contains(&expect))
            .unwrap_or_else(|| panic!("{}: no line contains {expect:?}:\n{stderr}", f.display()));
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            diag.contains(&name) && diag.contains(&format!(":{line}:")),
            "{}: expected file name and line {line} in {diag:?}",
            f.display()
        );
        if !key.is_empty() {
            assert!(
                diag.contains(&key),
                "{}: expected key path {key} in {diag:?}",
                f.display()
            );
        }
    }
}

#[test]
fn missing_file_is_reported() {
    let out = testkit::fastlag()
        .args(["check-config", "/nonexistent/fastlag.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fastlag.toml"));
}

#[test]
fn version_and_help() {
    let out = testkit::fastlag().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fastlag "));
    let out = testkit::fastlag().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check-config", "demo", "--log-level"] {
        assert!(help.contains(cmd), "help lacks {cmd}:\n{help}");
    }
}

/// Runs fastlag with stdout a pipe whose reader has already gone (`... | head -1` once
/// head has exited): every write gets EPIPE.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    testkit::fastlag()
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let ok = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/default.toml");
    let ok = ok.to_str().unwrap();
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/tests/broken/unknown-key.toml");
    for (args, code) in [
        (vec!["check-config", ok], 0),
        (vec!["check-config", broken.to_str().unwrap()], 1),
        (vec!["bench", "--list"], 0),
        (vec!["--version"], 0),
        (vec!["--help"], 0),
        (vec!["ctl", "--help"], 0),
    ] {
        let out = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?} must end quietly: {stderr}"
        );
    }
}

#[test]
fn output_lost_to_a_full_disk_is_an_error() {
    let ok = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/default.toml");
    let out = testkit::fastlag()
        .arg("check-config")
        .arg(&ok)
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
