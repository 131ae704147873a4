//! End to end with a real routing daemon (issue 17): FRR (zebra + bgpd, Debian's `frr`)
//! in fastlag's namespace peers over the TAPs with FRR in two upstream router namespaces
//! (the ecmp_rig test bed, without static routes in the upstreams). Both upstreams announce
//! 10.99.0.0/24; the gateway's bgpd takes both paths (multipath), zebra installs them in
//! the kernel (as nexthop objects: routes with RTA_NH_ID, expanded in compat mode) and
//! fastlag mirrors them into its FIB. The gateway announces its connected prefixes back, so
//! the upstreams reach the client through the fast path too.
//!
//! Run twice: with the kernel's default `net.ipv4.nexthop_compat_mode=1`, and with 0 in
//! fastlag's namespace, where the routes carry their nexthop group's id alone and fastlag
//! resolves it through the nexthop objects (`RTM_NEWNEXTHOP`) it follows.
//!
//! Checked and measured: FRR's install -> fastlag's FIB, the spread of 1000 flows (each on
//! one hop, in order), one upstream's announcement withdrawn (its hop leaves the FIB) and
//! made again (back), one upstream's link down (its flows move at once), every session down
//! (the route leaves the FIB). Numbers are printed on lines starting with "MEASURE".
//!
//! Not checked: the link coming back. The kernel flushes a nexthop whose device loses
//! carrier from its groups; FRR 8.4's zebra re-creates the nexthop but leaves the group
//! without it (its RIB shows both hops, the kernel one), so the kernel, and fastlag which
//! mirrors it, keep one hop until the route changes again.
//!
//! FRR runs as user frr: its scratch directory (configs, sockets, pid files) is chowned to
//! it; the daemons run in the foreground, each killed with the test.

mod ecmp_rig;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ecmp_rig::*;
use testkit::net::Netns;
use testkit::*;

const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";

/// One FRR instance (zebra + bgpd) in a namespace, its files in `dir`.
struct Frr {
    daemons: Vec<ChildGuard>,
    dir: PathBuf,
    ns: String,
}

impl Frr {
    fn start(ns: &Netns, dir: &Path, bgpd_conf: &str) -> Frr {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("zebra.conf"), "hostname zebra\n").unwrap();
        std::fs::write(dir.join("bgpd.conf"), bgpd_conf).unwrap();
        let d = dir.display().to_string();
        let (ok, out) = output(std::process::Command::new("chown").args(["-R", "frr:frr", &d]));
        assert!(ok, "chown {d}: {out}");
        let zserv = format!("{d}/zserv.api");
        let mut daemons = Vec::new();
        // zebra first: bgpd talks to it through its zserv socket.
        let daemon = |name: &str, binary: &str| {
            let cmd = ns.cmd_dies_with_parent(&[
                binary,
                "-f",
                &format!("{d}/{name}.conf"),
                "-i",
                &format!("{d}/{name}.pid"),
                "-z",
                &zserv,
                "--vty_socket",
                &d,
                "-u",
                "frr",
                "-g",
                "frr",
                "-P",
                "0",
                "--log",
                "stdout",
            ]);
            ChildGuard::spawn(name, cmd, &dir.join(format!("{name}.log")))
        };
        daemons.push(daemon("zebra", ZEBRA));
        let up = wait_until(Duration::from_secs(10), || Path::new(&zserv).exists());
        assert!(
            up,
            "zebra in {} did not open {zserv}:\n{}",
            ns.name,
            std::fs::read_to_string(dir.join("zebra.log")).unwrap_or_default()
        );
        daemons.push(daemon("bgpd", BGPD));
        Frr {
            daemons,
            dir: dir.to_path_buf(),
            ns: ns.name.clone(),
        }
    }

    /// `vtysh -c ...` against this instance.
    fn vtysh(&self, cmds: &[&str]) -> (bool, String) {
        let d = self.dir.display().to_string();
        let mut args = vec!["ip", "netns", "exec", &self.ns, "vtysh", "--vty_socket", &d];
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        output(std::process::Command::new(args[0]).args(&args[1..]))
    }

    fn logs(&self) -> String {
        ["zebra.log", "bgpd.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {} {f}:\n{}",
                    self.ns,
                    tail(
                        &std::fs::read_to_string(self.dir.join(f)).unwrap_or_default(),
                        25
                    )
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for d in self.daemons.iter().rev() {
            d.signal("TERM");
        }
        for d in &mut self.daemons {
            d.wait_timeout(Duration::from_secs(5));
        }
    }
}

fn gw_bgpd() -> String {
    "hostname gw
router bgp 65000
 bgp router-id 10.40.0.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp bestpath as-path multipath-relax
 timers bgp 1 3
 neighbor 10.41.0.2 remote-as 65001
 neighbor 10.41.0.2 timers connect 1
 neighbor 10.41.0.2 advertisement-interval 0
 neighbor 10.42.0.2 remote-as 65002
 neighbor 10.42.0.2 timers connect 1
 neighbor 10.42.0.2 advertisement-interval 0
 address-family ipv4 unicast
  redistribute connected
  maximum-paths 16
 exit-address-family
"
    .to_string()
}

fn up_bgpd(n: usize) -> String {
    format!(
        "hostname up{n}
router bgp 6500{n}
 bgp router-id 10.4{n}.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 1 3
 neighbor 10.4{n}.0.1 remote-as 65000
 neighbor 10.4{n}.0.1 timers connect 1
 neighbor 10.4{n}.0.1 advertisement-interval 0
 address-family ipv4 unicast
  network 10.99.0.0/24
 exit-address-family
"
    )
}

/// The words after each `word` in `text`.
fn after<'a>(text: &'a str, word: &str) -> Vec<&'a str> {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == word)
        .map(|w| w[1])
        .collect()
}

/// The kernel's route for 10.99.0.0/24 in the gateway: its next hops' gateways. Without
/// compat mode the route shows its nexthop id alone: the gateways come from the nexthop
/// (`ip nexthop show id N`: `via A dev D`, or a group `group M1/M2,W2`).
fn kernel_hops(rig: &Rig) -> Vec<String> {
    let show = |args: &[&str]| rig.gw_ns.try_ip(args).unwrap_or_default();
    let text = show(&["route", "show", "10.99.0.0/24"]);
    let mut hops: Vec<String> = after(&text, "via").iter().map(|s| s.to_string()).collect();
    if hops.is_empty() {
        for id in after(&text, "nhid") {
            let nh = show(&["nexthop", "show", "id", id]);
            let members: Vec<&str> = after(&nh, "group")
                .iter()
                .flat_map(|g| g.split('/'))
                .map(|m| m.split(',').next().unwrap_or(m))
                .collect();
            if members.is_empty() {
                hops.extend(after(&nh, "via").iter().map(|s| s.to_string()));
            }
            for m in members {
                let nh = show(&["nexthop", "show", "id", m]);
                hops.extend(after(&nh, "via").iter().map(|s| s.to_string()));
            }
        }
    }
    hops
}

fn fib_gateways(rig: &Rig) -> Vec<String> {
    rig.hops("10.99.0.0/24").into_iter().map(|h| h.1).collect()
}

#[test]
fn frr_bgp_ecmp_drives_the_fast_path() {
    frr_ecmp(true);
}

/// The same with `net.ipv4.nexthop_compat_mode=0` in fastlag's namespace: the kernel's
/// routes name their nexthop group only.
#[test]
fn frr_bgp_ecmp_without_nexthop_compat_mode() {
    frr_ecmp(false);
}

fn frr_ecmp(compat_mode: bool) {
    assert!(
        Path::new(ZEBRA).exists() && Path::new(BGPD).exists(),
        "FRR is not installed (Debian package frr; scripts/setup.sh installs it)"
    );
    let rig = Rig::up(if compat_mode { "frr" } else { "frr-nc" }, false);
    // Before FRR installs anything (fastlag's own dump at start has no such routes).
    let compat = format!("net.ipv4.nexthop_compat_mode={}", u8::from(compat_mode));
    rig.gw_ns.sysctl(&[compat.as_str()]);
    // The daemons drop to user frr: it must reach its directory inside the scratch dir.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rig.scratch.path, std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let frr_dir = rig.scratch.file("frr");
    let gw = Frr::start(&rig.gw_ns, &frr_dir.join("gw"), &gw_bgpd());
    let ups: Vec<Frr> = rig
        .ups
        .iter()
        .enumerate()
        .map(|(i, ns)| Frr::start(ns, &frr_dir.join(format!("up{}", i + 1)), &up_bgpd(i + 1)))
        .collect();
    let fail = |msg: &str| -> ! {
        let mut logs = gw.logs();
        for u in &ups {
            logs.push('\n');
            logs.push_str(&u.logs());
        }
        rig.fail(&format!("{msg}\n{logs}"))
    };

    // Sessions up, both paths installed by zebra, mirrored by fastlag.
    let t0 = Instant::now();
    let (mut kernel_at, mut fib_at) = (None, None);
    let both = wait_until(Duration::from_secs(60), || {
        if kernel_at.is_none() && kernel_hops(&rig).len() == 2 {
            kernel_at = Some(Instant::now());
        }
        if fib_at.is_none() && fib_gateways(&rig).len() == 2 {
            fib_at = Some(Instant::now());
        }
        kernel_at.is_some() && fib_at.is_some()
    });
    if !both {
        fail(&format!(
            "10.99.0.0/24 not learned from both upstreams: kernel {:?}, FIB {:?}\n{}",
            kernel_hops(&rig),
            fib_gateways(&rig),
            gw.vtysh(&["show bgp summary", "show ip route"]).1
        ));
    }
    let (kernel_at, fib_at) = (kernel_at.unwrap(), fib_at.unwrap());
    let install_ms = fib_at.saturating_duration_since(kernel_at).as_millis();
    if install_ms > 1000 {
        fail(&format!(
            "fastlag's FIB had both hops {install_ms} ms after the kernel"
        ));
    }
    let route = rig.gw_ns.ip(&["route", "show", "10.99.0.0/24"]);
    let nhid = route.contains("nhid");
    if !compat_mode && (!nhid || route.contains("via")) {
        fail(&format!(
            "compat mode 0: the route should name its nexthop alone: {route}"
        ));
    }

    // The reverse direction: the upstreams learned the gateway's connected prefix and reach
    // the client through the fast path.
    for (i, u) in ups.iter().enumerate() {
        let learned = wait_until(Duration::from_secs(20), || {
            rig.ups[i]
                .try_ip(&["route", "show", "10.40.0.0/24"])
                .is_ok_and(|r| r.contains("10.4"))
        });
        if !learned {
            fail(&format!(
                "up{} did not learn 10.40.0.0/24:\n{}",
                i + 1,
                u.vtysh(&["show ip bgp"]).1
            ));
        }
        let (ok, out) =
            output(&mut rig.ups[i].cmd(&["ping", "-c", "3", "-i", "0.2", "-W", "1", CLI4]));
        if !ok {
            fail(&format!(
                "up{} cannot reach the client over BGP's route: {out}",
                i + 1
            ));
        }
    }
    // Neighbours resolved (the pings above), so the spread's first packets take the fast path.
    std::thread::sleep(Duration::from_millis(300));

    let before = spread(1, &rig, "frr-spread", FAR4, CLI4, 1000, 3);
    let a = share(&before, 0);
    if !(0.40..=0.60).contains(&a) {
        fail(&format!("1000 flows: {a:.3} on up1"));
    }

    // up1 withdraws its announcement: its hop leaves the FIB.
    let t1 = Instant::now();
    let (ok, out) = ups[0].vtysh(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        "no network 10.99.0.0/24",
    ]);
    assert!(ok, "vtysh: {out}");
    let one = wait_until(Duration::from_secs(10), || {
        fib_gateways(&rig) == vec!["10.42.0.2".to_string()]
    });
    if !one {
        fail(&format!(
            "after up1's withdrawal: FIB {:?}",
            fib_gateways(&rig)
        ));
    }
    let withdraw_ms = t1.elapsed().as_millis();

    // And announces it again: both hops are back.
    let t3 = Instant::now();
    let (ok, out) = ups[0].vtysh(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        "network 10.99.0.0/24",
    ]);
    assert!(ok, "vtysh: {out}");
    let two = wait_until(Duration::from_secs(10), || fib_gateways(&rig).len() == 2);
    if !two {
        fail(&format!(
            "after up1's new announcement: FIB {:?}",
            fib_gateways(&rig)
        ));
    }
    let reannounce_ms = t3.elapsed().as_millis();
    std::thread::sleep(Duration::from_millis(300));

    // up1's link goes down: its flows move at once (fastlag's liveness), before BGP notices.
    let rx = rig.receivers("frr-failover");
    let mut sender = spawn_logged(
        "send",
        rig.send(FAR4, 20000, 200, 200, 0.01, 3),
        &rig.scratch.file("frr-failover-send.out"),
        &rig.scratch.file("frr-failover-send.err"),
    );
    std::thread::sleep(Duration::from_millis(1000));
    let down_at = now();
    rig.ups[0].ip(&["link", "set", "eth0", "down"]);
    let t_down = Instant::now();
    let mut withdrawn_ms = None;
    wait_until(Duration::from_secs(10), || {
        let gone = fib_gateways(&rig) == vec!["10.42.0.2".to_string()];
        if gone {
            withdrawn_ms = Some(t_down.elapsed().as_millis());
        }
        gone
    });
    sender.wait_timeout(Duration::from_secs(30));
    let got = collect(rx, 3);
    let mut moved_ms: Vec<f64> = Vec::new();
    for (port, up) in before.iter().filter(|(p, _)| **p < 20200) {
        let first_on_2 = got[1]
            .iter()
            .find(|r| r.0 == CLI4 && r.1 == *port)
            .map(|r| r.3);
        match (up, first_on_2) {
            (0, Some(t)) => moved_ms.push((t - down_at) * 1000.0),
            (0, None) => fail(&format!(
                "flow {port} never reached up2 after up1 went down"
            )),
            _ => {}
        }
    }
    let failover = moved_ms.iter().cloned().fold(0.0f64, f64::max);
    if failover > 1000.0 {
        fail(&format!("up1's flows took {failover:.0} ms to move to up2"));
    }
    // Every session down: the route leaves the fast path.
    let t2 = Instant::now();
    let (ok, out) = gw.vtysh(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor 10.41.0.2 shutdown",
        "neighbor 10.42.0.2 shutdown",
    ]);
    assert!(ok, "vtysh: {out}");
    let gone = wait_until(Duration::from_secs(10), || fib_gateways(&rig).is_empty());
    if !gone {
        fail(&format!(
            "sessions down: FIB still {:?}",
            fib_gateways(&rig)
        ));
    }
    let gone_ms = t2.elapsed().as_millis();
    let kernel_left = kernel_hops(&rig);
    assert!(
        kernel_left.is_empty(),
        "the kernel still has {kernel_left:?}"
    );

    println!(
        "MEASURE frr (nexthop_compat_mode={}): sessions up and 10.99.0.0/24 with both hops in \
         the kernel {} ms after FRR started ({}), in fastlag's FIB {install_ms} ms after the \
         kernel (polling both, a few ms resolution); 1000 flows: {:.1}% on up1, {:.1}% on up2, each on one hop, in \
         order; up1's link down: its {} flows on up2 within {failover:.0} ms, the hop left \
         the FIB after {} ms; up1's withdrawal -> FIB has one hop {} ms, its new announcement \
         -> two hops {} ms; sessions shut -> route gone from the FIB {} ms",
        u8::from(compat_mode),
        kernel_at.duration_since(t0).as_millis(),
        if nhid {
            "nexthop objects"
        } else {
            "plain routes"
        },
        a * 100.0,
        (1.0 - a) * 100.0,
        moved_ms.len(),
        withdrawn_ms.map_or("?".into(), |v| v.to_string()),
        withdraw_ms,
        reannounce_ms,
        gone_ms,
    );
}
