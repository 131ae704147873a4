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

/// `fastlag <args>` with stdout and stderr in files; stopped after `secs` (a hang fails).
fn bounded(
    scratch: &testkit::Scratch,
    args: &[&std::ffi::OsStr],
    secs: u64,
) -> (i32, String, String) {
    let (out, err) = (scratch.file("stdout"), scratch.file("stderr"));
    let mut cmd = testkit::fastlag();
    cmd.args(args);
    let mut child = testkit::spawn_logged("fastlag", cmd, &out, &err);
    let status = child
        .wait_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|| panic!("fastlag {args:?} did not finish within {secs} s"));
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}

fn check(scratch: &testkit::Scratch, file: &Path) -> (i32, String, String) {
    bounded(scratch, &["check-config".as_ref(), file.as_os_str()], 10)
}

#[test]
fn fifos_devices_and_huge_files_are_refused_at_once() {
    let scratch = testkit::Scratch::new("cc-files");
    let fifo = scratch.file("fifo.toml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = scratch.file("big.toml");
    std::fs::write(&big, "# padding\n".repeat(200_000)).unwrap();
    for (file, want) in [
        (fifo.as_path(), "not a regular file (a FIFO (named pipe))"),
        (
            Path::new("/dev/zero"),
            "not a regular file (a character device)",
        ),
        (scratch.path.as_path(), "not a regular file (a directory)"),
        (
            big.as_path(),
            "the file is 2000000 bytes, more than a configuration file may be",
        ),
    ] {
        let (code, _, stderr) = check(&scratch, file);
        assert_eq!(code, 1, "{}: {stderr}", file.display());
        assert!(stderr.contains(want), "{}: {stderr}", file.display());
    }
}

/// Ring ports p0/p1 cross-connected, with `dataplane` lines added.
fn xconnect(dataplane: &str, ports: &str) -> String {
    let cpus = testkit::cpus();
    format!(
        "[dataplane]\ncontrol_core = {}\nworker_cores = [{}]\nhugepages = false\n{dataplane}\n\
         [[port]]\nname = \"p0\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"p1\"\ndevice = \"ring:l0:b\"\n{ports}\n\
         [forward]\nmode = \"xconnect\"\npairs = [[\"p0\", \"p1\"]]\n",
        cpus[0],
        cpus.get(1).copied().unwrap_or(cpus[0]),
    )
}

#[test]
fn ports_beyond_this_dpdk_are_refused() {
    let scratch = testkit::Scratch::new("cc-ports");
    let ports: String = (0..10_001)
        .map(|i| format!("\n[[port]]\nname = \"n{i}\"\ndevice = \"net_null{i}\"\nrx_descriptors = 64\ntx_descriptors = 64\n"))
        .collect();
    let file = scratch.file("ports.toml");
    std::fs::write(&file, xconnect("mbufs = 4294967295", &ports)).unwrap();
    let start = std::time::Instant::now();
    let (code, _, stderr) = check(&scratch, &file);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("this configuration needs 10003 DPDK ports")
            && stderr.contains("RTE_MAX_ETHPORTS = 32")
            && stderr.contains("port[32].device"),
        "{stderr}"
    );
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
}

/// `fastlag run` refuses what check-config refuses, with the same diagnostic, before DPDK.
#[test]
fn run_refuses_what_check_config_refuses() {
    let scratch = testkit::Scratch::new("cc-run");
    for (name, dataplane, want) in [
        (
            "memory",
            "memory_mb = 64\nmbufs = 16383",
            "memory_mb = 64 is too small",
        ),
        (
            "prefix",
            &format!("file_prefix = \"{}\"", "a".repeat(300)),
            "file_prefix is 300 bytes long",
        ),
        (
            "max-memory",
            "memory_mb = 1048576",
            "RTE_MAX_MEM_MB = 524288",
        ),
    ] {
        let file = scratch.file(&format!("{name}.toml"));
        std::fs::write(&file, xconnect(dataplane, "")).unwrap();
        let (code, _, stderr) = check(&scratch, &file);
        assert_eq!(code, 1, "{name}: {stderr}");
        let diag = stderr
            .lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("{name}: check-config: {stderr}"))
            .to_owned();
        let (code, _, stderr) = bounded(
            &scratch,
            &["run".as_ref(), "--config".as_ref(), file.as_os_str()],
            10,
        );
        assert_ne!(code, 0, "{name}: {stderr}");
        assert!(
            stderr.contains(&diag),
            "{name}: run must say {diag:?}:\n{stderr}"
        );
        assert!(
            !stderr.contains("EAL:"),
            "{name}: refused before EAL:\n{stderr}"
        );
    }
}

/// A kernel interface removed on drop.
struct Iface(String);

impl Drop for Iface {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

#[test]
fn host_dependent_checks_are_warnings_here_and_errors_at_run() {
    let scratch = testkit::Scratch::new("cc-host");
    // A TAP name that an existing interface has.
    let name = format!("flcc{}", std::process::id() % 100_000);
    let made = std::process::Command::new("ip")
        .args(["tuntap", "add", "dev", &name, "mode", "tap"])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("SKIP: cannot create a TAP interface (not root?)");
        return;
    }
    let _iface = Iface(name.clone());
    let cpus = testkit::cpus();
    let text = format!(
        "[dataplane]\ncontrol_core = {}\nworker_cores = [{}]\nhugepages = false\n\n\
         [[port]]\nname = \"p0\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"p1\"\ndevice = \"ring:l1:a\"\n\n\
         [[interface]]\nname = \"wan0\"\non = \"p0\"\naddresses = [\"192.0.2.1/24\"]\ntap_name = \"{name}\"\n\n\
         [forward]\nmode = \"router\"\n\n[management]\nsocket = \"{}\"\n",
        cpus[0],
        cpus.get(1).copied().unwrap_or(cpus[0]),
        scratch.file("ctl.sock").display()
    );
    let file = scratch.file("router.toml");
    std::fs::write(&file, &text).unwrap();
    let (code, stdout, stderr) = check(&scratch, &file);
    assert_eq!(
        code, 0,
        "host-dependent problems are not errors of the file: {stderr}"
    );
    assert!(stdout.contains("1 warning(s) on this host"), "{stdout}");
    let want = format!("interface[0].tap_name: a kernel interface named \"{name}\" already exists");
    assert!(
        stderr.contains("warning: on this host") && stderr.contains(&want),
        "{stderr}"
    );
    let start = std::time::Instant::now();
    let (code, _, stderr) = bounded(
        &scratch,
        &["run".as_ref(), "--config".as_ref(), file.as_os_str()],
        10,
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains(&want), "{stderr}");
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    // A CPU that this process may not use: a warning here, refused by run.
    let file = scratch.file("cpu.toml");
    std::fs::write(
        &file,
        text.replace(
            &format!("tap_name = \"{name}\""),
            "tap_name = \"fl-cc-free\"",
        )
        .replace(
            &format!(
                "worker_cores = [{}]",
                cpus.get(1).copied().unwrap_or(cpus[0])
            ),
            "worker_cores = [1023]",
        ),
    )
    .unwrap();
    let (code, _, stderr) = check(&scratch, &file);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("worker core 1023 is not available"),
        "{stderr}"
    );
}

#[test]
fn errors_never_print_raw_control_characters() {
    // A socket path given on the command line, and a config file name, with an ANSI escape.
    let out = testkit::fastlag()
        .args(["ctl", "--socket", "/nonexistent/a\u{1b}[31mb", "ping"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("a\\u{1b}[31mb"), "{stderr}");
    let scratch = testkit::Scratch::new("cc-ctrl");
    let file = scratch.file("x\u{1b}[2Jy.toml");
    std::fs::write(&file, "[dataplane\n").unwrap();
    let (code, _, stderr) = check(&scratch, &file);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "{stderr:?}"
    );
    assert!(stderr.contains("x\\u{1b}[2Jy.toml"), "{stderr}");
}
