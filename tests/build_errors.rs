//! Building without a usable DPDK fails with one line that names the Debian packages, not
//! pages of bindgen or compiler output. Runs the real build script through cargo, with a
//! pkg-config that finds no DPDK and one that finds a too-old DPDK.

use std::path::Path;
use std::process::Command;

fn build_dpdk_sys(pkg_config: &Path, target: &Path) -> (bool, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", "dpdk-sys"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target)
        .env("PKG_CONFIG", pkg_config)
        .output()
        .expect("run cargo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fake_pkg_config(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn assert_one_line(stderr: &str, must: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("DPDK")).collect();
    assert_eq!(lines.len(), 1, "expected one line about DPDK:\n{stderr}");
    for m in must {
        assert!(lines[0].contains(m), "{m:?} missing from {:?}", lines[0]);
    }
    assert!(
        stderr.lines().count() <= 4,
        "build output should be short:\n{stderr}"
    );
}

#[test]
fn missing_or_old_dpdk_gives_one_actionable_line() {
    let scratch = testkit::Scratch::new("build-errors");
    let target = scratch.file("target");

    let missing = fake_pkg_config(&scratch.path, "pkg-config-missing", "exit 1");
    let (ok, stderr) = build_dpdk_sys(&missing, &target);
    assert!(!ok, "build must fail without DPDK");
    assert_one_line(
        &stderr,
        &["not found", "apt-get install dpdk libdpdk-dev pkg-config"],
    );

    let old = fake_pkg_config(
        &scratch.path,
        "pkg-config-old",
        r#"case "$*" in *--modversion*) echo 21.11.2 ;; *--atleast-version*) exit 1 ;; *) exit 0 ;; esac"#,
    );
    let (ok, stderr) = build_dpdk_sys(&old, &target);
    assert!(!ok, "build must fail with DPDK 21.11");
    assert_one_line(
        &stderr,
        &[
            "21.11.2",
            "too old",
            "22.11, 23.11 and 24.11",
            "libdpdk-dev",
        ],
    );
}

/// `fastlag --version` names the DPDK it was built against (what pkg-config reports on
/// this machine) and the one it loaded (rte_version()): the same here.
#[test]
fn version_names_the_dpdk_built_against_and_running() {
    let pc = Command::new("pkg-config")
        .args(["--modversion", "libdpdk"])
        .output()
        .expect("pkg-config");
    let installed = String::from_utf8_lossy(&pc.stdout).trim().to_string();
    assert!(!installed.is_empty(), "pkg-config found no libdpdk");
    let out = Command::new(testkit::bin("fastlag"))
        .arg("--version")
        .output()
        .expect("run fastlag --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("fastlag {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("DPDK built against: {installed}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("DPDK running with:  {installed}\n")),
        "{text}"
    );
    assert!(!text.contains("differs"), "{text}");
}
