//! The Linux kernel's bonding driver as an LACP peer: a Debian kernel booted under QEMU
//! (TCG: `/dev/kvm` hangs in early boot on the CI machines) from a busybox initramfs that
//! this module builds from installed packages (`linux-image-amd64`, `busybox-static`,
//! `kmod` for `modinfo`), never from committed binaries.
//!
//! The guest's virtio-net NICs sit on host taps (`fl<pid>vt<i>`) that fastlag uses as
//! `net_af_packet` members. The test drives the guest through its second serial port, a
//! unix socket on the host: one shell command per line, answered by its output and a
//! marker with its exit status. QEMU's QMP socket takes a link down or up (the guest loses
//! carrier; [`LinuxBondVm::cable`] drops the host tap's carrier too, like a pulled cable).
//! The kernel console (first serial port) goes to a file for failure messages.
//!
//! Dropping a [`LinuxBondVm`] kills QEMU by PID and deletes its taps, also while a test
//! panics; QEMU runs under `setpriv --pdeathsig KILL`, and taps that a killed test process
//! left behind are removed by the next VM's start ([`reap_stale_taps`]).
//!
//! The initramfs is cached under `target/linux-vm/`, keyed by kernel version and by what
//! goes into it, and written by rename so that parallel tests never read half a file;
//! a new build for a kernel removes the older ones for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::net::{self, cmd, dies_with_parent, sh, try_run};
use crate::{wait_until, ChildGuard, Scratch};

/// Modules the guest needs; their dependencies are added in load order from
/// `modinfo -F depends`.
const GUEST_MODULES: [&str; 3] = ["virtio_pci", "virtio_net", "bonding"];

/// The guest's PID 1: mounts, modules, IPv6 off (no router solicitations or MLD reports on
/// the test links), then a command loop on the second serial port. `@MODULES@` is replaced
/// by the insmod lines.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
@MODULES@
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
ip link set lo up
stty -F /dev/ttyS1 raw -echo
while read -r seq line; do eval "$line"; echo "@@DONE $seq $?@@"; done < /dev/ttyS1 > /dev/ttyS1 2>&1
poweroff -f
"#;

/// How to start the VM.
#[derive(Clone, Debug)]
pub struct VmOpts {
    /// Number of virtio-net NICs (eth0..), one host tap each.
    pub nics: usize,
    /// Give the NICs `speed=10000,duplex=full`. Without them virtio-net reports unknown
    /// speed and duplex, and Linux 6.1's 802.3ad keeps such a slave down and never sends.
    pub speed_duplex: bool,
    /// Guest memory.
    pub mem_mb: u32,
    /// Boot deadline.
    pub boot_timeout: Duration,
}

impl Default for VmOpts {
    fn default() -> VmOpts {
        VmOpts {
            nics: 2,
            speed_duplex: true,
            mem_mb: 256,
            boot_timeout: Duration::from_secs(90),
        }
    }
}

/// A host tap (persistent, created with `ip tuntap`), deleted on drop.
pub struct Tap {
    /// Interface name.
    pub name: String,
}

impl Tap {
    /// Creates `name`, IPv6 off, up (no carrier until QEMU opens it).
    pub fn new(name: &str) -> Tap {
        let _ = try_run(&mut cmd(&["ip", "link", "del", name]));
        sh(&["ip", "tuntap", "add", "dev", name, "mode", "tap"]);
        let t = Tap {
            name: name.to_string(),
        };
        sh(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{name}.disable_ipv6=1"),
        ]);
        sh(&["ip", "link", "set", name, "up"]);
        t
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = try_run(&mut cmd(&["ip", "link", "del", &self.name]));
    }
}

/// Deletes taps `fl<pid>vt<n>` whose test process no longer runs (killed before its
/// guards ran).
pub fn reap_stale_taps() {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("fl") else {
            continue;
        };
        let Some((pid, n)) = rest.split_once("vt") else {
            continue;
        };
        let (Ok(pid), true) = (
            pid.parse::<u32>(),
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        ) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing tap {name} left by test process {pid}");
            let _ = try_run(&mut cmd(&["ip", "link", "del", &name]));
        }
    }
}

/// The kernel to boot: `FASTLAG_VM_KERNEL` (a version under /lib/modules), else the
/// newest version with both `/boot/vmlinuz-<ver>` and a bonding module.
pub fn guest_kernel() -> Result<String, String> {
    if let Ok(v) = std::env::var("FASTLAG_VM_KERNEL") {
        return Ok(v);
    }
    let mut found: Vec<String> = std::fs::read_dir("/lib/modules")
        .map_err(|e| format!("/lib/modules: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|v| {
            Path::new(&format!("/boot/vmlinuz-{v}")).exists()
                && try_run(&mut cmd(&["modinfo", "-k", v, "-n", "bonding"])).is_ok()
        })
        .collect();
    found.sort_by_key(|v| version_key(v));
    found.pop().ok_or_else(|| {
        "no kernel with `/boot/vmlinuz-<ver>` and a bonding module: install linux-image-amd64 \
         (scripts/setup.sh does)"
            .to_string()
    })
}

fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The modules in load order (dependencies first) with their files.
fn module_order(kver: &str) -> Result<Vec<(String, PathBuf)>, String> {
    fn visit(
        kver: &str,
        name: &str,
        seen: &mut Vec<String>,
        out: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), String> {
        let name = name.replace('-', "_");
        if seen.contains(&name) {
            return Ok(());
        }
        seen.push(name.clone());
        let file = try_run(&mut cmd(&["modinfo", "-k", kver, "-n", &name]))?
            .trim()
            .to_string();
        if !file.starts_with('/') {
            return Ok(()); // built into the kernel
        }
        let deps = try_run(&mut cmd(&["modinfo", "-k", kver, "-F", "depends", &name]))?;
        for d in deps.trim().split(',').filter(|d| !d.is_empty()) {
            visit(kver, d, seen, out)?;
        }
        out.push((name, PathBuf::from(file)));
        Ok(())
    }
    let (mut seen, mut out) = (Vec::new(), Vec::new());
    for m in GUEST_MODULES {
        visit(kver, m, &mut seen, &mut out)?;
    }
    Ok(out)
}

/// A module file's contents, decompressed (.ko.xz, .ko.zst, .ko.gz) so that busybox
/// insmod needs no decompressor.
fn module_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let p = path.display().to_string();
    let tool = if p.ends_with(".xz") {
        Some("xz")
    } else if p.ends_with(".zst") {
        Some("zstd")
    } else if p.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).map_err(|e| format!("{p}: {e}")),
        Some(t) => {
            let out = Command::new(t)
                .args(["-dc", &p])
                .output()
                .map_err(|e| format!("{t} -dc {p}: {e}"))?;
            if out.status.success() {
                Ok(out.stdout)
            } else {
                Err(format!(
                    "{t} -dc {p}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        }
    }
}

/// A cpio archive in the "newc" format the kernel unpacks as its initramfs.
#[derive(Default)]
struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, (0, 0), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.buf
    }
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in *p {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The cache directory: `target/linux-vm` (tests run from `target/<profile>/deps`), or
/// the system temporary directory when that cannot be found.
fn cache_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.parent()?.join("linux-vm")))
        .filter(|d| d.parent().is_some_and(|t| t.join("CACHEDIR.TAG").exists()))
        .unwrap_or_else(|| std::env::temp_dir().join("fastlag-linux-vm"))
}

/// Builds (or finds in the cache) the initramfs for kernel `kver`: busybox, the modules
/// in dependency order, /init. Returns its path.
pub fn initramfs(kver: &str) -> Result<PathBuf, String> {
    let busybox_path = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no busybox: install busybox-static (scripts/setup.sh does)")?;
    let busybox = std::fs::read(busybox_path).map_err(|e| format!("{busybox_path}: {e}"))?;
    let modules = module_order(kver)?;
    let mut mods = Vec::new();
    for (name, path) in &modules {
        mods.push((name.clone(), module_bytes(path)?));
    }
    let insmod: String = mods
        .iter()
        .map(|(n, _)| {
            // bonding: no bond0 of its own; the test creates it through sysfs.
            let args = if n == "bonding" { " max_bonds=0" } else { "" };
            format!("insmod /lib/modules/{n}.ko{args} || echo \"insmod {n} failed\"\n")
        })
        .collect();
    let init = INIT.replace("@MODULES@\n", &insmod);
    let mut parts: Vec<&[u8]> = vec![kver.as_bytes(), init.as_bytes(), &busybox];
    parts.extend(mods.iter().map(|(_, b)| b.as_slice()));
    let key = fnv1a(&parts);
    let dir = cache_dir();
    let path = dir.join(format!("initramfs-{kver}-{key:016x}.cpio"));
    if path.exists() {
        return Ok(path);
    }
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "lib", "lib/modules"] {
        c.dir(d);
    }
    c.entry("dev/console", 0o020600, (5, 1), &[]);
    c.file("bin/busybox", 0o755, &busybox);
    for (n, b) in &mods {
        c.file(&format!("lib/modules/{n}.ko"), 0o644, b);
    }
    c.file("init", 0o755, init.as_bytes());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".initramfs-{}.tmp", std::process::id()));
    std::fs::write(&tmp, c.finish()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Older builds for this kernel (another init, busybox or module version) go.
    let prefix = format!("initramfs-{kver}-");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && e.path() != path {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(path)
}

/// How a Linux bond is configured (sysfs attribute values).
#[derive(Clone, Debug)]
pub struct BondConfig {
    /// `lacp_rate`: "fast" or "slow".
    pub lacp_rate: &'static str,
    /// `lacp_active`: "on" or "off" (passive).
    pub lacp_active: &'static str,
    /// `xmit_hash_policy`.
    pub xmit_hash_policy: &'static str,
    /// `miimon` (ms).
    pub miimon: u32,
    /// Addresses (with prefix) on the bond.
    pub addresses: Vec<String>,
}

impl Default for BondConfig {
    fn default() -> BondConfig {
        BondConfig {
            lacp_rate: "fast",
            lacp_active: "on",
            xmit_hash_policy: "layer3+4",
            miimon: 100,
            addresses: Vec::new(),
        }
    }
}

/// A running guest. Fields drop in order: the console connection, QEMU, the taps, the
/// scratch directory.
pub struct LinuxBondVm {
    ctl: BufReader<UnixStream>,
    qemu: ChildGuard,
    /// Host taps, one per guest NIC (`eth<i>` on tap i).
    pub taps: Vec<Tap>,
    dir: Scratch,
    qmp: PathBuf,
    seq: u64,
    /// The booted kernel's version.
    pub kernel: String,
    /// Guest NIC MACs (`eth<i>`).
    pub macs: Vec<String>,
    /// Time from spawning QEMU to the first answered command.
    pub boot: Duration,
}

impl LinuxBondVm {
    /// Builds the initramfs if needed, creates the taps and boots the guest; returns once
    /// it answers commands.
    pub fn start(opts: &VmOpts) -> LinuxBondVm {
        reap_stale_taps();
        let kernel = guest_kernel().unwrap_or_else(|e| panic!("{e}"));
        let initrd = initramfs(&kernel).unwrap_or_else(|e| panic!("initramfs: {e}"));
        let dir = Scratch::new("vm");
        let taps: Vec<Tap> = (0..opts.nics)
            .map(|i| Tap::new(&net::ifname(&format!("vt{i}"))))
            .collect();
        let pid = std::process::id();
        let macs: Vec<String> = (0..opts.nics)
            .map(|i| {
                format!(
                    "52:54:{:02x}:{:02x}:{:02x}:{:02x}",
                    (pid >> 16) & 0xff,
                    (pid >> 8) & 0xff,
                    pid & 0xff,
                    i + 1
                )
            })
            .collect();
        let (console, sock, qmp) = (
            dir.file("console.log"),
            dir.file("ctl.sock"),
            dir.file("qmp.sock"),
        );
        let vmlinuz = format!("/boot/vmlinuz-{kernel}");
        let mem = opts.mem_mb.to_string();
        let initrd_s = initrd.display().to_string();
        let mut args: Vec<String> = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            &mem,
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            &vmlinuz,
            "-initrd",
            &initrd_s,
            "-append",
            "console=ttyS0 panic=-1 quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("-serial".into());
        args.push(format!("file:{}", console.display()));
        args.push("-chardev".into());
        args.push(format!(
            "socket,id=ctl,path={},server=on,wait=off",
            sock.display()
        ));
        args.push("-serial".into());
        args.push("chardev:ctl".into());
        args.push("-qmp".into());
        args.push(format!("unix:{},server=on,wait=off", qmp.display()));
        for (i, t) in taps.iter().enumerate() {
            args.push("-netdev".into());
            args.push(format!(
                "tap,id=n{i},ifname={},script=no,downscript=no",
                t.name
            ));
            args.push("-device".into());
            args.push(format!(
                "virtio-net-pci,netdev=n{i},mac={}{},romfile=",
                macs[i],
                if opts.speed_duplex {
                    ",speed=10000,duplex=full"
                } else {
                    ""
                }
            ));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let t0 = Instant::now();
        let mut qemu = ChildGuard::spawn("qemu", dies_with_parent(&argv), &dir.file("qemu.log"));
        let up = wait_until(Duration::from_secs(20), || sock.exists() || !qemu.running());
        if !up || !qemu.running() {
            panic!(
                "QEMU did not start: {}\n{argv:?}",
                std::fs::read_to_string(dir.file("qemu.log")).unwrap_or_default()
            );
        }
        let stream = UnixStream::connect(&sock).expect("connect to the guest's serial port");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut vm = LinuxBondVm {
            ctl: BufReader::new(stream),
            qemu,
            taps,
            dir,
            qmp,
            seq: 0,
            kernel,
            macs,
            boot: Duration::ZERO,
        };
        // Until the command loop runs, lines go nowhere: ask again until one is answered.
        let deadline = t0 + opts.boot_timeout;
        let mut acc = String::new();
        loop {
            vm.seq += 1;
            let seq = vm.seq;
            let _ = vm
                .ctl
                .get_mut()
                .write_all(format!("{seq} true\n").as_bytes());
            let until = Instant::now() + Duration::from_millis(500);
            let mut done = false;
            while Instant::now() < until {
                vm.read_some(&mut acc);
                if acc.contains(&format!("@@DONE {seq} 0@@")) {
                    done = true;
                    break;
                }
            }
            if done {
                break;
            }
            if Instant::now() > deadline || !vm.qemu.running() {
                panic!(
                    "the guest did not answer on its serial port within {:?}\n{}",
                    opts.boot_timeout,
                    vm.diag()
                );
            }
        }
        vm.boot = t0.elapsed();
        // Later answers to the earlier tries are skipped by seq.
        vm
    }

    fn read_some(&mut self, acc: &mut String) {
        let mut b = [0u8; 4096];
        match self.ctl.read(&mut b) {
            Ok(0) => std::thread::sleep(Duration::from_millis(20)),
            Ok(n) => acc.push_str(&String::from_utf8_lossy(&b[..n])),
            Err(_) => {}
        }
    }

    /// Runs one shell command line in the guest; (exit status, output with stderr).
    pub fn sh(&mut self, line: &str) -> (i32, String) {
        self.sh_timeout(line, Duration::from_secs(30))
    }

    /// Like [`LinuxBondVm::sh`] with a deadline; panics when it passes.
    pub fn sh_timeout(&mut self, line: &str, timeout: Duration) -> (i32, String) {
        assert!(!line.contains('\n'), "one line at a time: {line:?}");
        self.seq += 1;
        let seq = self.seq;
        self.ctl
            .get_mut()
            .write_all(format!("{seq} {line}\n").as_bytes())
            .expect("write to the guest's serial port");
        let deadline = Instant::now() + timeout;
        let mut acc = String::new();
        let marker = format!("@@DONE {seq} ");
        loop {
            if let Some(at) = acc.find(&marker) {
                let rest = &acc[at + marker.len()..];
                if let Some(end) = rest.find("@@") {
                    let rc: i32 = rest[..end].trim().parse().unwrap_or(-1);
                    // Output: after the previous marker (earlier answers to boot probes).
                    let before = &acc[..at];
                    let start = before.rfind("@@\n").map_or(0, |i| i + 3);
                    let out = before[start..].to_string();
                    return (rc, out);
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "guest command {line:?} not answered within {timeout:?} (got {acc:?})\n{}",
                    self.diag()
                );
            }
            self.read_some(&mut acc);
        }
    }

    /// Runs a command that must succeed; its output.
    pub fn run(&mut self, line: &str) -> String {
        let (rc, out) = self.sh(line);
        if rc != 0 {
            panic!(
                "guest command {line:?} failed ({rc}):\n{out}\n{}",
                self.diag()
            );
        }
        out
    }

    /// Creates `bond0` (802.3ad) over all NICs via sysfs, with `addresses`, and brings it
    /// up. The mode and rate are set before the slaves are added.
    pub fn create_bond(&mut self, cfg: &BondConfig) {
        let b = "/sys/class/net/bond0/bonding";
        self.run("echo +bond0 > /sys/class/net/bonding_masters");
        self.run(&format!("echo 802.3ad > {b}/mode"));
        self.run(&format!("echo {} > {b}/lacp_rate", cfg.lacp_rate));
        self.run(&format!("echo {} > {b}/lacp_active", cfg.lacp_active));
        self.run(&format!(
            "echo {} > {b}/xmit_hash_policy",
            cfg.xmit_hash_policy
        ));
        self.run(&format!("echo {} > {b}/miimon", cfg.miimon));
        for i in 0..self.macs.len() {
            self.run(&format!("ip link set eth{i} down"));
            self.run(&format!("echo +eth{i} > {b}/slaves"));
        }
        for a in &cfg.addresses {
            self.run(&format!("ip addr add {a} dev bond0"));
        }
        self.run("ip link set bond0 up");
    }

    /// Removes `bond0` (its slaves are released).
    pub fn delete_bond(&mut self) {
        self.run("ip link set bond0 down");
        self.run("echo -bond0 > /sys/class/net/bonding_masters");
    }

    /// `/proc/net/bonding/<bond>`, parsed.
    pub fn bonding(&mut self, bond: &str) -> LinuxBond {
        let text = self.run(&format!("cat /proc/net/bonding/{bond}"));
        LinuxBond::parse(&text)
    }

    /// A guest interface counter (`/sys/class/net/<dev>/statistics/<counter>`).
    pub fn if_counter(&mut self, dev: &str, counter: &str) -> u64 {
        let out = self.run(&format!("cat /sys/class/net/{dev}/statistics/{counter}"));
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{dev} {counter}: {out:?}: {e}"))
    }

    /// One QMP command (a fresh connection each time: greeting, capabilities, command).
    pub fn qmp(&self, command: &serde_json::Value) -> Result<serde_json::Value, String> {
        let s = UnixStream::connect(&self.qmp).map_err(|e| format!("QMP: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line)
            .map_err(|e| format!("QMP greeting: {e}"))?;
        let mut call = |v: &serde_json::Value| -> Result<serde_json::Value, String> {
            w.write_all(format!("{v}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).map_err(|e| format!("QMP: {e}"))?;
                if l.is_empty() {
                    return Err("QMP closed".into());
                }
                let v: serde_json::Value =
                    serde_json::from_str(&l).map_err(|e| format!("QMP {l:?}: {e}"))?;
                if v.get("event").is_some() {
                    continue;
                }
                if let Some(e) = v.get("error") {
                    return Err(format!("QMP error: {e}"));
                }
                return Ok(v["return"].clone());
            }
        };
        call(&serde_json::json!({"execute": "qmp_capabilities"}))?;
        call(command)
    }

    /// The guest NIC `eth<i>` loses or regains its link (QEMU `set_link`): the guest sees
    /// carrier change and QEMU passes no frame either way while down. The host tap keeps
    /// its carrier.
    pub fn set_link(&self, i: usize, up: bool) {
        self.qmp(&serde_json::json!({
            "execute": "set_link",
            "arguments": {"name": format!("n{i}"), "up": up}
        }))
        .unwrap_or_else(|e| panic!("set_link n{i} {up}: {e}"));
    }

    /// A pulled (or replugged) cable on link `i`: the guest NIC's link (QMP) and the host
    /// tap's carrier together, so both ends see it at once.
    pub fn cable(&self, i: usize, up: bool) {
        let tap = &self.taps[i].name;
        if up {
            self.set_link(i, true);
            sh(&["ip", "link", "set", tap, "carrier", "on"]);
        } else {
            sh(&["ip", "link", "set", tap, "carrier", "off"]);
            self.set_link(i, false);
        }
    }

    /// The kernel log (`dmesg`).
    pub fn dmesg(&mut self) -> String {
        self.run("dmesg")
    }

    /// The guest's kernel console and QEMU's own messages so far (for failure messages).
    pub fn diag(&self) -> String {
        format!(
            "=== guest console (last 40 lines)\n{}\n=== qemu\n{}",
            crate::tail(
                &std::fs::read_to_string(self.dir.file("console.log")).unwrap_or_default(),
                40
            ),
            std::fs::read_to_string(self.dir.file("qemu.log")).unwrap_or_default()
        )
    }

    /// QEMU's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.qemu.try_pid()
    }
}

/// One slave's section of `/proc/net/bonding/<bond>` (802.3ad).
#[derive(Clone, Debug, Default)]
pub struct LinuxSlave {
    /// Interface name.
    pub name: String,
    /// "up" or "down".
    pub mii_status: String,
    /// "10000 Mbps", "Unknown".
    pub speed: String,
    /// "full", "Unknown".
    pub duplex: String,
    /// Aggregator this slave is in.
    pub aggregator_id: Option<u32>,
    /// "none", "monitoring", "churned".
    pub actor_churn_state: String,
    /// "none", "monitoring", "churned".
    pub partner_churn_state: String,
    /// Times the actor churn machine entered "churned".
    pub actor_churned_count: u32,
    /// Times the partner churn machine entered "churned".
    pub partner_churned_count: u32,
    /// Our side (Linux's actor).
    pub actor: LinuxLacpPdu,
    /// What Linux holds as the partner (fastlag).
    pub partner: LinuxLacpPdu,
}

/// The "details actor/partner lacp pdu" block of a slave.
#[derive(Clone, Debug, Default)]
pub struct LinuxLacpPdu {
    /// System priority.
    pub system_priority: u16,
    /// System MAC, lower case.
    pub system_mac: String,
    /// Key ("port key" or "oper key").
    pub key: u16,
    /// Port priority.
    pub port_priority: u16,
    /// Port number.
    pub port: u16,
    /// State bits (802.1AX order, LSB Activity).
    pub state: u8,
}

/// `/proc/net/bonding/<bond>` of an 802.3ad bond.
#[derive(Clone, Debug, Default)]
pub struct LinuxBond {
    /// "on" or "off" (`LACP active`).
    pub lacp_active: String,
    /// "fast" or "slow".
    pub lacp_rate: String,
    /// System MAC address of the bond (lower case).
    pub system_mac: String,
    /// Active aggregator: id.
    pub active_aggregator: Option<u32>,
    /// Active aggregator: number of ports.
    pub active_ports: u32,
    /// Active aggregator: partner MAC (lower case).
    pub active_partner_mac: String,
    /// Active aggregator: partner key.
    pub active_partner_key: u16,
    /// Slaves in order.
    pub slaves: Vec<LinuxSlave>,
    /// The text as read.
    pub text: String,
}

impl LinuxBond {
    /// Parses the text.
    pub fn parse(text: &str) -> LinuxBond {
        let mut b = LinuxBond {
            text: text.to_string(),
            ..Default::default()
        };
        #[derive(PartialEq)]
        enum Sec {
            Top,
            ActiveAgg,
            Slave,
            Actor,
            Partner,
        }
        let mut sec = Sec::Top;
        for raw in text.lines() {
            let line = raw.trim();
            if line == "Active Aggregator Info:" {
                sec = Sec::ActiveAgg;
                continue;
            }
            if line == "details actor lacp pdu:" {
                sec = Sec::Actor;
                continue;
            }
            if line == "details partner lacp pdu:" {
                sec = Sec::Partner;
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k == "Slave Interface" {
                b.slaves.push(LinuxSlave {
                    name: v.to_string(),
                    ..Default::default()
                });
                sec = Sec::Slave;
                continue;
            }
            let num = |v: &str| v.parse::<u32>().ok();
            match sec {
                Sec::Top => match k {
                    "LACP active" => b.lacp_active = v.to_string(),
                    "LACP rate" => b.lacp_rate = v.to_string(),
                    "System MAC address" => b.system_mac = v.to_lowercase(),
                    _ => {}
                },
                Sec::ActiveAgg => match k {
                    "Aggregator ID" => b.active_aggregator = num(v),
                    "Number of ports" => b.active_ports = num(v).unwrap_or(0),
                    "Partner Key" => b.active_partner_key = num(v).unwrap_or(0) as u16,
                    "Partner Mac Address" => b.active_partner_mac = v.to_lowercase(),
                    _ => {}
                },
                Sec::Slave => {
                    let s = b.slaves.last_mut().expect("in a slave section");
                    match k {
                        "MII Status" => s.mii_status = v.to_string(),
                        "Speed" => s.speed = v.to_string(),
                        "Duplex" => s.duplex = v.to_string(),
                        "Aggregator ID" => s.aggregator_id = num(v),
                        "Actor Churn State" => s.actor_churn_state = v.to_string(),
                        "Partner Churn State" => s.partner_churn_state = v.to_string(),
                        "Actor Churned Count" => s.actor_churned_count = num(v).unwrap_or(0),
                        "Partner Churned Count" => s.partner_churned_count = num(v).unwrap_or(0),
                        _ => {}
                    }
                }
                Sec::Actor | Sec::Partner => {
                    let Some(s) = b.slaves.last_mut() else {
                        continue;
                    };
                    let p = if sec == Sec::Actor {
                        &mut s.actor
                    } else {
                        &mut s.partner
                    };
                    let n = num(v).unwrap_or(0);
                    match k {
                        "system priority" => p.system_priority = n as u16,
                        "system mac address" => p.system_mac = v.to_lowercase(),
                        "port key" | "oper key" => p.key = n as u16,
                        "port priority" => p.port_priority = n as u16,
                        "port number" => p.port = n as u16,
                        "port state" => p.state = n as u8,
                        _ => {}
                    }
                }
            }
        }
        b
    }

    /// A slave by name.
    pub fn slave(&self, name: &str) -> Option<&LinuxSlave> {
        self.slaves.iter().find(|s| s.name == name)
    }

    /// Slaves in the active aggregator with the partner in sync, collecting and
    /// distributing (state bits 3..5) and the actor the same: aggregating on both ends.
    pub fn aggregated(&self) -> Vec<&str> {
        let full = 0x08 | 0x10 | 0x20;
        self.slaves
            .iter()
            .filter(|s| {
                s.mii_status == "up"
                    && s.aggregator_id.is_some()
                    && s.aggregator_id == self.active_aggregator
                    && s.actor.state & full == full
                    && s.partner.state & full == full
            })
            .map(|s| s.name.as_str())
            .collect()
    }
}
