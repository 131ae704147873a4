//! The Debian package (scripts/package.sh): it builds from the tested binary, `dpkg -i`
//! installs it on this machine, the installed fastlag runs and validates the conffile it
//! ships, `systemd-analyze verify` accepts the unit, `man -l` renders every man page, the
//! bash completion loads in bash; then `dpkg -P` removes it again (also on failure), so
//! the machine is left as found.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::{bin, Scratch};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "fastlag"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Purges the package when dropped.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "fastlag"]).output();
    }
}

#[test]
fn package_installs_runs_verifies_renders_completes_and_purges() {
    assert!(
        !installed(),
        "a fastlag package is already installed on this machine; this test installs and \
         purges its own and will not touch another (dpkg -P fastlag first)"
    );
    let scratch = Scratch::new("package");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(Command::new(repo.join("scripts/package.sh"))
        .arg("--binary")
        .arg(bin("fastlag"))
        .arg("--out")
        .arg(&scratch.path));
    let deb = PathBuf::from(
        text(&out)
            .lines()
            .last()
            .expect("package.sh prints the .deb")
            .trim(),
    );
    assert!(deb.exists(), "{} missing", deb.display());

    // Metadata: the DPDK runtime libraries of this release, the conffiles.
    let control = text(&run(Command::new("dpkg-deb").args(["-f"]).arg(&deb)));
    let depends = control
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{control}"));
    for lib in [
        "librte-eal",
        "librte-ethdev",
        "librte-mempool-ring",
        "libc6",
    ] {
        assert!(depends.contains(lib), "Depends lacks {lib}: {depends}");
    }
    let info = text(&run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles")));
    assert!(
        info.lines().any(|l| l == "/etc/fastlag/fastlag.toml"),
        "conffiles: {info}"
    );

    let _guard = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(installed());

    // The installed binary runs and accepts the configuration it ships.
    let version = text(&run(Command::new("/usr/bin/fastlag").arg("--version")));
    assert!(version.contains("DPDK running with"), "{version}");
    run(Command::new("/usr/bin/fastlag").args(["check-config", "/etc/fastlag/fastlag.toml"]));

    // The unit, as systemd reads it (ExecStart binaries and man: references must exist).
    let unit = "/usr/lib/systemd/system/fastlag.service";
    let verify = run(Command::new("systemd-analyze").args(["verify", unit]));
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        !complaints.contains("fastlag.service"),
        "systemd-analyze verify complains about the unit:\n{complaints}"
    );

    // Every man page renders, without warnings from groff.
    let mut pages: Vec<PathBuf> = ["/usr/share/man/man5", "/usr/share/man/man8"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("fastlag"))
        })
        .collect();
    pages.sort();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "fastlag.8.gz",
        "fastlag-ctl.8.gz",
        "fastlag-run.8.gz",
        "fastlag.toml.5.gz",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not installed: {names:?}"
        );
    }
    for p in &pages {
        let out = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(p)
            .env("MANWIDTH", "80"));
        let page = text(&out);
        assert!(
            page.contains("NAME") && page.len() > 200,
            "{}:\n{page}",
            p.display()
        );
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.trim().is_empty(), "{}: {warnings}", p.display());
    }
    let toml5 = text(&run(
        Command::new("man").args(["-l", "/usr/share/man/man5/fastlag.toml.5.gz"])
    ));
    assert!(
        toml5.contains("[bond.lacp]") && toml5.contains("RELOAD"),
        "{toml5}"
    );

    // The bash completion loads and completes fastlag's commands.
    let bash = text(&run(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/fastlag && complete -p fastlag && \
         COMP_WORDS=(fastlag ct); COMP_CWORD=1; _fastlag fastlag ct fastlag; echo \"${COMPREPLY[@]}\"",
    ])));
    assert!(bash.contains("-F _fastlag fastlag"), "{bash}");
    assert!(
        bash.lines()
            .last()
            .is_some_and(|l| l.split(' ').any(|w| w == "ctl")),
        "{bash}"
    );
    for f in [
        "/usr/share/zsh/vendor-completions/_fastlag",
        "/usr/share/fish/vendor_completions.d/fastlag.fish",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }

    // Purged: nothing of it is left (conffiles included).
    run(Command::new("dpkg").args(["-P", "fastlag"]));
    assert!(!installed());
    for gone in [
        "/usr/bin/fastlag",
        unit,
        "/etc/fastlag/fastlag.toml",
        "/etc/default/fastlag",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after dpkg -P");
    }
}
