//! `netlink`: rtnetlink configuration of the TAPs' kernel side and the route/neighbor
//! mirror.
//!
//! The tests that touch the kernel run only inside a network namespace they create: the test
//! re-executes its own binary under `ip netns exec` (the `FASTLAG_IN_NETNS` variable marks the
//! inner run), and a guard deletes the namespace even when the test fails. They need root and
//! iproute2; without root they print SKIP and pass. Interfaces are veth pairs (with carrier,
//! like a TAP held by the PMD) and a tuntap device.

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netlink::{
    mirror, nh_flags, protocol, Applied, Kernel, KernelEvent, KernelLink, KernelNeighbor,
    KernelNexthop, KernelRoute, KernelTables, MirroredHop, MirroredNeighbor, MirroredRoute,
    NeighState, NextHop, NexthopKind, NexthopMember, RouteKind, RouteTarget, Tap, RT_TABLE_MAIN,
};

const INNER: &str = "FASTLAG_IN_NETNS";
const OUTER_NS: &str = "FASTLAG_OUTER_NETNS";

// ---------------------------------------------------------------------------------------------
// Namespace harness
// ---------------------------------------------------------------------------------------------

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn netns_id() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Deletes the namespace when dropped, panicking or not.
struct NetnsGuard(String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `body` inside a fresh network namespace: in the outer run, creates the namespace and
/// re-executes this test binary there for `test` alone; in the inner run, calls `body`.
fn in_netns(test: &str, body: fn()) {
    if std::env::var_os(INNER).is_some() {
        assert_ne!(
            std::env::var(OUTER_NS).unwrap_or_default(),
            netns_id(),
            "inner run must be in its own network namespace"
        );
        body();
        return;
    }
    if !is_root() {
        println!("SKIP {test}: network namespaces need root");
        return;
    }
    static N: AtomicU32 = AtomicU32::new(0);
    let ns = format!(
        "flk-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let st = Command::new("ip").args(["netns", "add", &ns]).status();
    assert!(st.is_ok_and(|s| s.success()), "ip netns add {ns}");
    let _guard = NetnsGuard(ns.clone());
    let exe = std::env::current_exe().expect("test binary path");
    let t0 = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, &ns)
        .env(OUTER_NS, netns_id())
        .output()
        .expect("run the test inside the namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "--- {test} in netns {ns} ({:?}) ---\n{stdout}{stderr}",
        t0.elapsed()
    );
    assert!(out.status.success(), "inner run of {test} failed");
    assert!(
        stdout.contains("1 passed"),
        "inner run of {test} ran no test"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers (inner run)
// ---------------------------------------------------------------------------------------------

/// Runs `ip ARGS`, panicking with its stderr on failure; returns stdout.
fn ip(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip -batch -` with `commands` on its standard input.
fn ip_batch(commands: &str) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run ip -batch");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(commands.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "ip -batch failed");
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A veth pair `v0`/`v1` (both up, so with carrier) plus `v2`/`v3`; returns (v0, v1) indexes.
fn veths(k: &mut Kernel) -> (u32, u32) {
    ip("link add v0 type veth peer name v1");
    ip("link add v2 type veth peer name v3");
    let v0 = k.ifindex("v0").unwrap().unwrap();
    let v1 = k.ifindex("v1").unwrap().unwrap();
    for name in ["v0", "v1", "v2", "v3"] {
        let i = k.ifindex(name).unwrap().unwrap();
        k.set_link(i, true, Some(1500)).unwrap();
    }
    k.add_address(v0, addr("10.2.0.1"), 24).unwrap();
    k.add_address(v0, addr("2001:db8:2::1"), 64).unwrap();
    k.add_address(v1, addr("10.9.0.1"), 24).unwrap();
    // Carrier arrives through the kernel's linkwatch, possibly a little later: wait for it so
    // that its events are not mistaken for the test's.
    let t0 = Instant::now();
    while !["v0", "v1", "v2", "v3"]
        .iter()
        .all(|n| k.link_by_name(n).unwrap().unwrap().running)
    {
        assert!(t0.elapsed() < Duration::from_secs(2), "veth carrier");
        std::thread::sleep(Duration::from_millis(1));
    }
    (v0, v1)
}

/// Events seen so far, and how far [`wait_for`] has looked.
#[derive(Default)]
struct Seen {
    events: Vec<KernelEvent>,
    next: usize,
}

/// Polls events (every 1 ms, up to 1 s) until one after the last match matches; returns it
/// and the time it took.
fn wait_for(
    k: &mut Kernel,
    seen: &mut Seen,
    what: &str,
    pred: impl Fn(&KernelEvent) -> bool,
) -> (KernelEvent, Duration) {
    let t0 = Instant::now();
    loop {
        k.poll_events(&mut seen.events).unwrap();
        if let Some(i) = seen.events[seen.next..].iter().position(&pred) {
            seen.next += i + 1;
            return (seen.events[seen.next - 1].clone(), t0.elapsed());
        }
        seen.next = seen.events.len();
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "no {what} event within 1 s; saw {:#?}",
            seen.events
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn drain(k: &mut Kernel) -> Vec<KernelEvent> {
    let mut v = Vec::new();
    while k.poll_events(&mut v).unwrap() {}
    v
}

fn is_route(e: &KernelEvent, added: bool, dst: &str, plen: u8) -> Option<KernelRoute> {
    let r = match (e, added) {
        (KernelEvent::RouteAdded { route, .. }, true) => route,
        (KernelEvent::RouteRemoved(route), false) => route,
        _ => return None,
    };
    (r.dst == addr(dst) && r.prefix_len == plen).then(|| r.clone())
}

const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC3: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];
const MAC9: [u8; 6] = [0x02, 0, 0, 0, 0, 0x09];

// ---------------------------------------------------------------------------------------------
// Tests in a namespace
// ---------------------------------------------------------------------------------------------

#[test]
fn link_and_addresses() {
    in_netns("link_and_addresses", || {
        let mut k = Kernel::open().unwrap();
        ip("link add v0 type veth peer name v1");
        ip("tuntap add dev t0 mode tap");
        let v0 = k.ifindex("v0").unwrap().expect("v0 exists");
        let t0 = k.ifindex("t0").unwrap().expect("t0 exists");
        assert_eq!(k.ifindex("nope0").unwrap(), None);
        assert!(k.ifindex("a-name-longer-than-15").is_err());

        k.set_link(v0, true, Some(1400)).unwrap();
        let l = k.link_by_name("v0").unwrap().unwrap();
        assert!(l.up && l.mtu == Some(1400), "{l:?}");
        let shown = ip("-o link show dev v0");
        assert!(
            shown.contains("mtu 1400") && shown.contains(",UP"),
            "{shown}"
        );

        // A TAP nobody holds: up, no carrier.
        k.set_link(t0, true, Some(9000)).unwrap();
        let l = k.link_by_name("t0").unwrap().unwrap();
        assert!(l.up && !l.lower_up && l.mtu == Some(9000), "{l:?}");
        // Beyond the TAP's maximum MTU: the kernel's extended-ack text comes with the errno.
        let err = k.set_link(t0, true, Some(100_000)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().to_lowercase().contains("mtu"), "{err}");
        println!("set_link error: {err}");

        for _ in 0..2 {
            // idempotent
            k.add_address(v0, addr("10.2.0.1"), 24).unwrap();
            k.add_address(v0, addr("2001:db8:2::1"), 64).unwrap();
        }
        let v4 = ip("-o -4 addr show dev v0");
        assert!(v4.contains("inet 10.2.0.1/24 brd 10.2.0.255"), "{v4}");
        // IFA_F_NODAD: usable at once, never tentative (the peer v1 is down: no carrier, and
        // DAD would leave it tentative for as long).
        let v6 = ip("-o -6 addr show dev v0");
        let line = v6
            .lines()
            .find(|l| l.contains("2001:db8:2::1/64"))
            .expect(&v6);
        assert!(!line.contains("tentative"), "{line}");
        assert!(line.contains("nodad"), "{line}");
        let json = ip("-j addr show dev v0");
        assert!(
            json.contains(r#""local":"2001:db8:2::1","prefixlen":64"#),
            "{json}"
        );

        assert!(k.add_address(v0, addr("10.2.0.1"), 33).is_err());
        assert!(k.add_address(999_999, addr("10.2.0.1"), 24).is_err());

        for _ in 0..2 {
            k.remove_address(v0, addr("10.2.0.1"), 24).unwrap();
            k.remove_address(v0, addr("2001:db8:2::1"), 64).unwrap();
        }
        let all = ip("-o addr show dev v0");
        assert!(
            !all.contains("10.2.0.1") && !all.contains("2001:db8:2::1"),
            "{all}"
        );

        k.set_link(v0, false, None).unwrap();
        let l = k.link_by_name("v0").unwrap().unwrap();
        assert!(!l.up && l.mtu == Some(1400), "{l:?}");
        assert!(k.links().unwrap().iter().any(|l| l.name == "t0"));
    });
}

#[test]
fn route_events_within_a_second() {
    in_netns("route_events_within_a_second", || {
        let mut k = Kernel::open().unwrap();
        let (v0, _) = veths(&mut k);
        drain(&mut k);
        let mut seen = Seen::default();

        // IPv4 through a gateway.
        ip("route add 10.3.0.0/24 via 10.2.0.2 dev v0");
        let (e, t_add4) = wait_for(&mut k, &mut seen, "RouteAdded 10.3/24", |e| {
            is_route(e, true, "10.3.0.0", 24).is_some()
        });
        let r = is_route(&e, true, "10.3.0.0", 24).unwrap();
        assert_eq!(r.gateway(), Some(addr("10.2.0.2")));
        assert_eq!(r.oif(), Some(v0));
        assert_eq!(
            (r.kind, r.table, r.protocol),
            (RouteKind::Unicast, RT_TABLE_MAIN, protocol::BOOT)
        );
        assert!(
            k.routes().unwrap().contains(&r),
            "dump has what the event said"
        );

        ip("route replace 10.3.0.0/24 via 10.2.0.3 dev v0");
        let (e, _) = wait_for(&mut k, &mut seen, "replace", |e| {
            is_route(e, true, "10.3.0.0", 24).is_some_and(|r| r.gateway() == Some(addr("10.2.0.3")))
        });
        assert!(
            matches!(e, KernelEvent::RouteAdded { replace: true, .. }),
            "{e:?}"
        );

        ip("route del 10.3.0.0/24");
        let (_, t_del4) = wait_for(&mut k, &mut seen, "RouteRemoved 10.3/24", |e| {
            is_route(e, false, "10.3.0.0", 24).is_some()
        });
        assert!(!k
            .routes()
            .unwrap()
            .iter()
            .any(|r| r.dst == addr("10.3.0.0")));

        // IPv6 through a link-local gateway.
        ip("-6 route add 2001:db8:3::/64 via fe80::2 dev v0");
        let (e, t_add6) = wait_for(&mut k, &mut seen, "RouteAdded 2001:db8:3::/64", |e| {
            is_route(e, true, "2001:db8:3::", 64).is_some()
        });
        let r = is_route(&e, true, "2001:db8:3::", 64).unwrap();
        assert_eq!((r.gateway(), r.oif()), (Some(addr("fe80::2")), Some(v0)));
        let dumped = k.routes().unwrap();
        assert!(dumped
            .iter()
            .any(|d| d.dst == r.dst && d.gateway() == r.gateway()));
        ip("-6 route add default via fe80::1 dev v0 metric 100");
        let (e, _) = wait_for(&mut k, &mut seen, "IPv6 default", |e| {
            is_route(e, true, "::", 0).is_some()
        });
        let r = is_route(&e, true, "::", 0).unwrap();
        assert_eq!(
            (r.priority, r.gateway()),
            (Some(100), Some(addr("fe80::1")))
        );

        ip("-6 route del 2001:db8:3::/64 via fe80::2 dev v0");
        let (_, t_del6) = wait_for(&mut k, &mut seen, "RouteRemoved 2001:db8:3::/64", |e| {
            is_route(e, false, "2001:db8:3::", 64).is_some()
        });

        // Other tables are not followed.
        ip("route add 10.44.0.0/24 via 10.2.0.2 dev v0 table 100");
        ip("route add 10.45.0.0/24 via 10.2.0.2 dev v0");
        wait_for(&mut k, &mut seen, "10.45/24", |e| {
            is_route(e, true, "10.45.0.0", 24).is_some()
        });
        assert!(!seen
            .events
            .iter()
            .any(|e| is_route(e, true, "10.44.0.0", 24).is_some()));
        assert!(!k
            .routes()
            .unwrap()
            .iter()
            .any(|r| r.dst == addr("10.44.0.0")));

        println!(
            "event latency after `ip` returned: v4 add {t_add4:?} del {t_del4:?}, v6 add {t_add6:?} del {t_del6:?}"
        );
    });
}

#[test]
fn neighbors_static_and_events() {
    in_netns("neighbors_static_and_events", || {
        let mut k = Kernel::open().unwrap();
        let (v0, _) = veths(&mut k);
        drain(&mut k);
        let mut seen = Seen::default();

        ip("neigh add 10.2.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent");
        ip("-6 neigh add fe80::2 lladdr 02:00:00:00:00:03 dev v0 nud permanent");
        ip("neigh add 10.2.0.5 lladdr 02:00:00:00:00:09 dev v0 nud stale");
        let (e, t) = wait_for(
            &mut k,
            &mut seen,
            "NeighborChanged 10.2.0.2",
            |e| matches!(e, KernelEvent::NeighborChanged(n) if n.ip == addr("10.2.0.2")),
        );
        let KernelEvent::NeighborChanged(n) = e else {
            unreachable!()
        };
        assert_eq!((n.ifindex, n.mac), (v0, Some(MAC2)));
        assert_eq!(n.state.0, NeighState::PERMANENT);
        wait_for(
            &mut k,
            &mut seen,
            "NeighborChanged fe80::2",
            |e| matches!(e, KernelEvent::NeighborChanged(n) if n.ip == addr("fe80::2") && n.mac == Some(MAC3)),
        );

        let dump = k.neighbors().unwrap();
        let find = |ip: &str| dump.iter().find(|n| n.ip == addr(ip)).cloned();
        assert_eq!(find("10.2.0.2").unwrap().mac, Some(MAC2));
        assert_eq!(find("fe80::2").unwrap().mac, Some(MAC3));
        let stale = find("10.2.0.5").unwrap();
        assert!(stale.state.is_usable() && stale.state.0 == NeighState::STALE);

        ip("neigh del 10.2.0.2 dev v0");
        wait_for(
            &mut k,
            &mut seen,
            "NeighborRemoved 10.2.0.2",
            |e| matches!(e, KernelEvent::NeighborRemoved(n) if n.ip == addr("10.2.0.2")),
        );
        assert!(!k
            .neighbors()
            .unwrap()
            .iter()
            .any(|n| n.ip == addr("10.2.0.2")));
        println!("neighbor event latency after `ip` returned: {t:?}");
    });
}

#[test]
fn mirror_follows_kernel_through_events() {
    in_netns("mirror_follows_kernel_through_events", || {
        let mut k = Kernel::open().unwrap();
        let (v0, v1) = veths(&mut k);
        let taps = [Tap {
            ifindex: v0,
            iface: 7,
        }];
        // Start from a dump, then follow events only.
        drain(&mut k);
        let mut tables = KernelTables::new();
        tables.reset(k.routes().unwrap(), k.neighbors().unwrap());

        for cmd in [
            "route add 10.3.0.0/24 via 10.2.0.2 dev v0",
            "route add 10.8.0.0/16 via 10.9.0.2 dev v1",
            "route add blackhole 10.66.0.0/16",
            "route add unreachable 10.67.0.0/16",
            "route add 10.4.0.0/24 nexthop via 10.9.0.2 dev v1 nexthop via 10.2.0.2 dev v0",
            "route add 10.5.0.0/24 via inet6 fe80::2 dev v0",
            "route add 10.6.0.0/24 via 10.9.0.2 dev v1 metric 100",
            "route add 10.6.0.0/24 via 10.2.0.2 dev v0 metric 50",
            "-6 route add 2001:db8:3::/64 via fe80::2 dev v0",
            // FRR's way: nexthop objects (seen expanded, nexthop_compat_mode=1).
            "nexthop add id 1 via 10.2.0.2 dev v0",
            "nexthop add id 2 via 10.9.0.2 dev v1",
            "nexthop add id 3 group 2/1",
            "route add 10.7.0.0/24 nhid 1",
            "route add 10.10.0.0/24 nhid 3",
            "neigh add 10.2.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent",
            "-6 neigh add fe80::2 lladdr 02:00:00:00:00:03 dev v0 nud permanent",
            "neigh add 10.9.0.2 lladdr 02:00:00:00:00:09 dev v1 nud permanent",
        ] {
            ip(cmd);
        }
        let t0 = Instant::now();
        let want_routes = 10; // the non-connected ones above
        let mut events = Vec::new();
        let mut resyncs = 0;
        loop {
            events.clear();
            k.poll_events(&mut events).unwrap();
            for e in &events {
                if tables.apply(e) == Applied::Resync {
                    println!("resync after {e:?}");
                    let by_route = matches!(
                        e,
                        KernelEvent::RouteAdded { .. } | KernelEvent::RouteRemoved(_)
                    );
                    resyncs += usize::from(by_route);
                    tables.reset(k.routes().unwrap(), k.neighbors().unwrap());
                }
            }
            let m = tables.mirror(&taps);
            let ours = m.routes.iter().filter(|r| !is_connected(r)).count();
            if ours >= want_routes && m.neighbors.len() >= 2 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "mirror incomplete: {m:#?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(resyncs, 0, "route adds alone need no resync");

        let from_events = tables.mirror(&taps);
        let from_dump = mirror(&k.routes().unwrap(), &k.neighbors().unwrap(), &taps);
        assert_eq!(from_events, from_dump, "events and a fresh dump agree");

        let m = from_dump;
        let target = |dst: &str, plen: u8| {
            m.routes
                .iter()
                .find(|r| r.dst == addr(dst) && r.prefix_len == plen)
                .map(|r| r.target.clone())
        };
        let fwd = |gw: Option<&str>| {
            Some(RouteTarget::Forward {
                iface: 7,
                gateway: gw.map(addr),
            })
        };
        assert_eq!(target("10.3.0.0", 24), fwd(Some("10.2.0.2")));
        assert_eq!(
            target("10.8.0.0", 16),
            Some(RouteTarget::Punt),
            "not via a TAP"
        );
        assert_eq!(target("10.66.0.0", 16), Some(RouteTarget::Drop));
        assert_eq!(target("10.67.0.0", 16), Some(RouteTarget::Punt));
        assert_eq!(
            target("10.4.0.0", 24),
            fwd(Some("10.2.0.2")),
            "ECMP with one hop on a TAP: that hop"
        );
        assert_eq!(
            target("10.5.0.0", 24),
            fwd(Some("fe80::2")),
            "IPv4 via IPv6 link-local"
        );
        assert_eq!(
            target("10.6.0.0", 24),
            fwd(Some("10.2.0.2")),
            "lowest metric"
        );
        assert_eq!(target("2001:db8:3::", 64), fwd(Some("fe80::2")));
        assert_eq!(
            target("10.7.0.0", 24),
            fwd(Some("10.2.0.2")),
            "nexthop object"
        );
        assert_eq!(
            target("10.10.0.0", 24),
            fwd(Some("10.2.0.2")),
            "nexthop group"
        );
        let nh = k
            .routes()
            .unwrap()
            .into_iter()
            .find(|r| r.dst == addr("10.10.0.0"))
            .unwrap();
        assert_eq!((nh.nexthop_id, nh.nexthops.len()), (Some(3), 2), "{nh:?}");
        assert_eq!(
            target("10.2.0.0", 24),
            fwd(None),
            "the TAP's connected subnet"
        );
        assert_eq!(target("2001:db8:2::", 64), fwd(None));
        assert_eq!(target("10.9.0.0", 24), Some(RouteTarget::Punt));
        assert_eq!(
            target("fe80::", 64),
            None,
            "link-local destinations are not routed"
        );
        assert!(!m
            .routes
            .iter()
            .any(|r| matches!(r.dst, IpAddr::V6(a) if a.is_multicast())));
        assert_eq!(
            m.neighbors,
            vec![
                MirroredNeighbor {
                    iface: 7,
                    ip: addr("10.2.0.2"),
                    mac: MAC2
                },
                MirroredNeighbor {
                    iface: 7,
                    ip: addr("fe80::2"),
                    mac: MAC3
                },
            ],
            "only the TAP's neighbors"
        );

        // Removals flow through events too.
        ip("route del 10.3.0.0/24");
        ip("neigh del 10.2.0.2 dev v0");
        let t0 = Instant::now();
        loop {
            events.clear();
            k.poll_events(&mut events).unwrap();
            for e in &events {
                assert_ne!(tables.apply(e), Applied::Resync, "{e:?}");
            }
            let m = tables.mirror(&taps);
            let gone = !m.routes.iter().any(|r| r.dst == addr("10.3.0.0"))
                && !m.neighbors.iter().any(|n| n.ip == addr("10.2.0.2"));
            if gone {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "removal not seen: {m:#?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = v1;
    });
}

fn is_connected(r: &MirroredRoute) -> bool {
    matches!(r.target, RouteTarget::Forward { gateway: None, .. })
        || [addr("10.9.0.0"), addr("fe80::")].contains(&r.dst)
}

#[test]
fn link_down_and_address_removal_ask_for_resync() {
    in_netns("link_down_and_address_removal_ask_for_resync", || {
        let mut k = Kernel::open().unwrap();
        let (v0, _) = veths(&mut k);
        let taps = [Tap {
            ifindex: v0,
            iface: 1,
        }];
        ip("route add 10.3.0.0/24 via 10.2.0.2 dev v0");
        drain(&mut k);
        let mut tables = KernelTables::new();
        tables.reset(k.routes().unwrap(), k.neighbors().unwrap());
        assert!(tables
            .mirror(&taps)
            .routes
            .iter()
            .any(|r| r.dst == addr("10.3.0.0")));
        for e in drain(&mut k) {
            tables.apply(&e);
        }

        // Admin down: IPv4 flushes the route, possibly without a word.
        k.set_link(v0, false, None).unwrap();
        let mut seen = Seen::default();
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "LinkChanged down",
            |e| matches!(e, KernelEvent::LinkChanged(l) if l.ifindex == v0 && !l.up),
        );
        assert_eq!(tables.apply(&e), Applied::Resync);
        tables.reset(k.routes().unwrap(), k.neighbors().unwrap());
        assert!(!tables
            .mirror(&taps)
            .routes
            .iter()
            .any(|r| r.dst == addr("10.3.0.0")));
        // A second "down" message for the same link does not ask again.
        assert_eq!(tables.apply(&e), Applied::Unchanged);

        // Back up with its address: the connected route returns, through events.
        k.set_link(v0, true, None).unwrap();
        k.add_address(v0, addr("10.2.0.1"), 24).unwrap();
        wait_for(&mut k, &mut seen, "connected route", |e| {
            is_route(e, true, "10.2.0.0", 24).is_some()
        });
        for e in &seen.events {
            tables.apply(e);
        }
        assert!(tables.routes().any(|r| r.dst == addr("10.2.0.0")));
        k.remove_address(v0, addr("10.2.0.1"), 24).unwrap();
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "AddressRemoved",
            |e| matches!(e, KernelEvent::AddressRemoved(a) if a.addr == addr("10.2.0.1")),
        );
        assert_eq!(tables.apply(&e), Applied::Resync);
        tables.reset(k.routes().unwrap(), k.neighbors().unwrap());

        // A link no route uses may come and go without a resync.
        ip("link add v9 type veth peer name v8");
        let v9 = k.ifindex("v9").unwrap().unwrap();
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "v9 LinkChanged",
            |e| matches!(e, KernelEvent::LinkChanged(l) if l.ifindex == v9),
        );
        assert_eq!(tables.apply(&e), Applied::Unchanged);
        ip("link del v9");
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "v9 LinkRemoved",
            |e| matches!(e, KernelEvent::LinkRemoved(l) if l.ifindex == v9),
        );
        assert_eq!(tables.apply(&e), Applied::Unchanged);

        // v0 still has its IPv6 subnet route: deleting it asks for a resync.
        ip("link del v0");
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "LinkRemoved",
            |e| matches!(e, KernelEvent::LinkRemoved(l) if l.ifindex == v0),
        );
        assert_eq!(tables.apply(&e), Applied::Resync);
    });
}

#[test]
fn overrun_is_reported_and_a_dump_recovers() {
    in_netns("overrun_is_reported_and_a_dump_recovers", || {
        let mut k = Kernel::open().unwrap();
        let (v0, _) = veths(&mut k);
        drain(&mut k);
        k.set_event_buffer(4096).unwrap();
        let n = 3000;
        let batch: String = (0..n)
            .map(|i| {
                format!(
                    "route add 10.100.{}.{}/32 via 10.2.0.2 dev v0\n",
                    i / 256,
                    i % 256
                )
            })
            .collect();
        let t0 = Instant::now();
        ip_batch(&batch);
        let t_batch = t0.elapsed();

        let events = drain(&mut k);
        assert!(
            events.contains(&KernelEvent::Overrun),
            "{} events, no overrun",
            events.len()
        );
        let t0 = Instant::now();
        let routes = k.routes().unwrap();
        let t_dump = t0.elapsed();
        let ours: Vec<_> = routes
            .iter()
            .filter(|r| matches!(r.dst, IpAddr::V4(a) if a.octets()[..2] == [10, 100]))
            .collect();
        assert_eq!(ours.len(), n);
        assert!(ours.iter().all(|r| r.oif() == Some(v0)));
        let t0 = Instant::now();
        let m = mirror(
            &routes,
            &[],
            &[Tap {
                ifindex: v0,
                iface: 3,
            }],
        );
        let t_mirror = t0.elapsed();
        assert!(m.routes.len() > n);
        // The socket works on after the overrun.
        ip("route add 10.101.0.0/24 via 10.2.0.2 dev v0");
        let mut seen = Seen::default();
        wait_for(&mut k, &mut seen, "after overrun", |e| {
            is_route(e, true, "10.101.0.0", 24).is_some()
        });
        println!(
            "{n} routes: ip -batch {t_batch:?}, {} events before overrun, dump {t_dump:?}, mirror {t_mirror:?}",
            events.len()
        );
    });
}

#[test]
fn poll_events_never_blocks_and_honours_its_budget() {
    in_netns("poll_events_never_blocks_and_honours_its_budget", || {
        // A fresh namespace with nothing in it is quiet: no interface, no asynchronous events.
        let mut k = Kernel::open().unwrap();
        let mut out = Vec::new();
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(!k.poll_events(&mut out).unwrap());
        }
        let per_call = t0.elapsed() / 1000;
        assert!(out.is_empty(), "{out:?}");
        assert!(
            per_call < Duration::from_millis(1),
            "{per_call:?} per empty poll"
        );

        k.set_event_budget(1);
        ip("route add blackhole 10.3.0.0/24");
        ip("route add blackhole 10.4.0.0/24");
        assert!(
            k.poll_events(&mut out).unwrap(),
            "budget reached: more pending"
        );
        assert_eq!(out.len(), 1);
        assert!(is_route(&out[0], true, "10.3.0.0", 24).is_some(), "{out:?}");
        assert!(k.poll_events(&mut out).unwrap());
        assert!(!k.poll_events(&mut out).unwrap());
        assert!(is_route(&out[1], true, "10.4.0.0", 24).is_some(), "{out:?}");
        assert_eq!(out.len(), 2);
        println!("empty poll_events: {per_call:?} per call");
    });
}

#[test]
fn tables_converge_on_multipath_and_append() {
    in_netns("tables_converge_on_multipath_and_append", || {
        let mut k = Kernel::open().unwrap();
        let (v0, v1) = veths(&mut k);
        k.add_address(v1, addr("2001:db8:9::1"), 64).unwrap();
        let taps = two_taps(v0, v1);
        drain(&mut k);
        let mut tables = KernelTables::new();
        tables.reset(k.routes().unwrap(), k.neighbors().unwrap());
        let mut resyncs = 0;
        for cmd in [
            "-6 route add 2001:db8:4::/64 via fe80::2 dev v0",
            "-6 route append 2001:db8:4::/64 via fe80::3 dev v1",
            "-6 route add 2001:db8:5::/64 dev v0",
            "-6 route append 2001:db8:5::/64 dev v1",
            "-6 route del 2001:db8:4::/64 via fe80::2 dev v0",
            "-6 route del 2001:db8:5::/64 dev v0",
            "-6 route replace 2001:db8:4::/64 nexthop via fe80::7 dev v1 nexthop via fe80::8 dev v0",
            "route add 10.4.0.0/24 via 10.2.0.2 dev v0",
            "route append 10.4.0.0/24 via 10.9.0.2 dev v1",
            "route prepend 10.4.0.0/24 via 10.2.0.3 dev v0",
            "route del 10.4.0.0/24 via 10.2.0.3 dev v0",
            "route add 10.5.0.0/24 nexthop via 10.2.0.2 dev v0 nexthop via 10.9.0.2 dev v1",
            "route del 10.5.0.0/24",
            "-6 route flush 2001:db8:4::/64",
        ] {
            ip(cmd);
            let t0 = Instant::now();
            loop {
                let mut events = Vec::new();
                k.poll_events(&mut events).unwrap();
                for e in &events {
                    if tables.apply(e) == Applied::Resync {
                        resyncs += 1;
                        tables.reset(k.routes().unwrap(), k.neighbors().unwrap());
                    }
                }
                let dump = k.routes().unwrap();
                let want = mirror(&dump, &[], &taps);
                let have = tables.mirror(&taps);
                if have.routes == want.routes && tables.routes().count() == dump.len() {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(1),
                    "after `ip {cmd}`: tables {have:#?} dump {want:#?}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        println!("converged through 14 changes with {resyncs} resyncs");
    });
}

/// Tables from fresh dumps, nexthop objects first.
/// fastlag's TAPs on the two veths of [`veths`]: v0 as interface 1, v1 as interface 2.
fn two_taps(v0: u32, v1: u32) -> [Tap; 2] {
    [
        Tap {
            ifindex: v0,
            iface: 1,
        },
        Tap {
            ifindex: v1,
            iface: 2,
        },
    ]
}

fn dumped(k: &mut Kernel) -> KernelTables {
    let mut t = KernelTables::new();
    t.reset_nexthops(k.nexthops().unwrap());
    t.reset(k.routes().unwrap(), k.neighbors().unwrap());
    t
}

/// Runs `cmds`, then applies the events that follow (a resync fails the test) until the
/// tables' mirror has `want` (a prefix and its target, `None`: not mirrored) and agrees with a
/// fresh dump, routes included (the kernel deletes some silently). At least one event must
/// have said `Changed` (the router rebuilds on that alone).
fn follow(
    k: &mut Kernel,
    tables: &mut KernelTables,
    taps: &[Tap],
    cmds: &[&str],
    want: &[(&str, u8, Option<RouteTarget>)],
) {
    for cmd in cmds {
        ip(cmd);
    }
    let t0 = Instant::now();
    let mut changed = false;
    loop {
        let mut events = Vec::new();
        k.poll_events(&mut events).unwrap();
        for e in &events {
            match tables.apply(e) {
                Applied::Resync => panic!("after {cmds:?}: resync asked on {e:?}"),
                Applied::Changed => changed = true,
                Applied::Unchanged => {}
            }
        }
        let have = tables.mirror(taps);
        let target = |dst: &str, plen: u8| {
            have.routes
                .iter()
                .find(|r| r.dst == addr(dst) && r.prefix_len == plen)
                .map(|r| r.target.clone())
        };
        let fresh = dumped(k);
        let done = changed
            && want.iter().all(|(dst, plen, t)| target(dst, *plen) == *t)
            && have == fresh.mirror(taps)
            && tables.routes().count() == fresh.routes().count();
        if done {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "after {cmds:?} (changed: {changed}): tables {:#?} {:#?} dump {:#?} {:#?}",
            tables.nexthops().collect::<Vec<_>>(),
            have.routes,
            fresh.nexthops().collect::<Vec<_>>(),
            fresh.mirror(taps).routes,
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn nexthop_objects_without_compat_mode() {
    in_netns("nexthop_objects_without_compat_mode", || {
        // Routes carry RTA_NH_ID alone: only the nexthop objects say where they go.
        std::fs::write("/proc/sys/net/ipv4/nexthop_compat_mode", "0").unwrap();
        ip("link set lo up"); // blackhole nexthops use it
        let mut k = Kernel::open().unwrap();
        let (v0, v1) = veths(&mut k);
        k.add_address(v1, addr("2001:db8:9::1"), 64).unwrap();
        let taps = two_taps(v0, v1);
        drain(&mut k);
        let mut tables = dumped(&mut k);
        let hop = |iface, gw: &str, weight| MirroredHop {
            iface,
            gateway: Some(addr(gw)),
            weight,
        };
        let fwd = |iface, gw: &str| {
            Some(RouteTarget::Forward {
                iface,
                gateway: Some(addr(gw)),
            })
        };
        let multi = |hops: Vec<MirroredHop>| Some(RouteTarget::Multipath(hops));

        follow(
            &mut k,
            &mut tables,
            &taps,
            &[
                "nexthop add id 1 via 10.2.0.2 dev v0",
                "nexthop add id 2 via 10.9.0.2 dev v1",
                "nexthop add id 3 via 10.2.0.3 dev v0",
                "nexthop add id 10 group 1,3/2",
                "route add 198.51.100.0/24 nhid 10",
                "route add 198.51.101.0/24 nhid 1",
                "nexthop add id 4 blackhole",
                "route add 198.51.102.0/24 nhid 4",
                "nexthop add id 6 via fe80::2 dev v0",
                "nexthop add id 7 via 2001:db8:9::2 dev v1",
                "nexthop add id 16 group 6,2/7",
                "-6 route add 2001:db8:100::/64 nhid 16",
                "route add 198.51.103.0/24 nhid 6",
            ],
            &[
                (
                    "198.51.100.0",
                    24,
                    multi(vec![hop(1, "10.2.0.2", 3), hop(2, "10.9.0.2", 1)]),
                ),
                ("198.51.101.0", 24, fwd(1, "10.2.0.2")),
                ("198.51.102.0", 24, Some(RouteTarget::Drop)),
                (
                    "2001:db8:100::",
                    64,
                    multi(vec![hop(1, "fe80::2", 2), hop(2, "2001:db8:9::2", 1)]),
                ),
                ("198.51.103.0", 24, fwd(1, "fe80::2")),
            ],
        );
        // Without compat mode the route has no hops of its own: the plain mirror of the
        // dump cannot place it, the tables can.
        let routes = k.routes().unwrap();
        let r = routes
            .iter()
            .find(|r| r.dst == addr("198.51.100.0"))
            .unwrap();
        assert_eq!((r.nexthop_id, r.nexthops.len()), (Some(10), 0), "{r:?}");
        assert!(!mirror(&routes, &[], &taps)
            .routes
            .iter()
            .any(|r| r.dst == addr("198.51.100.0")));

        // Changes of the nexthops move their routes, through events alone.
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["nexthop replace id 1 via 10.2.0.9 dev v0"],
            &[
                (
                    "198.51.100.0",
                    24,
                    multi(vec![hop(1, "10.2.0.9", 3), hop(2, "10.9.0.2", 1)]),
                ),
                ("198.51.101.0", 24, fwd(1, "10.2.0.9")),
            ],
        );
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["nexthop del id 2"],
            &[("198.51.100.0", 24, fwd(1, "10.2.0.9"))],
        );
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["nexthop replace id 10 group 1,2/3,5"],
            &[(
                "198.51.100.0",
                24,
                multi(vec![hop(1, "10.2.0.9", 2), hop(1, "10.2.0.3", 5)]),
            )],
        );
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["route replace 198.51.101.0/24 nhid 3"],
            &[("198.51.101.0", 24, fwd(1, "10.2.0.3"))],
        );
        // Deleting a nexthop deletes its routes (IPv4's without a route event), and shrinks
        // its groups.
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["nexthop del id 4"],
            &[("198.51.102.0", 24, None)],
        );
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["nexthop del id 6"],
            &[
                ("2001:db8:100::", 64, fwd(2, "2001:db8:9::2")),
                ("198.51.103.0", 24, None),
            ],
        );
        follow(
            &mut k,
            &mut tables,
            &taps,
            &["nexthop del id 10"],
            &[
                ("198.51.100.0", 24, None),
                ("198.51.101.0", 24, fwd(1, "10.2.0.3")),
            ],
        );
        let nh: Vec<u32> = tables.nexthops().map(|n| n.id).collect();
        assert_eq!(nh, vec![1, 3, 7, 16]);

        // A link going down flushes its nexthops (and their routes) without a word: a route
        // using one through a group asks for a resync, and the dump shows what is left. (v1's
        // peer v0 loses carrier with it, which flushes v0's nexthops as well.)
        drain(&mut k);
        let mut seen = Seen::default();
        k.set_link(v1, false, None).unwrap();
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "v1 down",
            |e| matches!(e, KernelEvent::LinkChanged(l) if l.ifindex == v1 && !l.up),
        );
        assert_eq!(tables.apply(&e), Applied::Resync);
        // v0's carrier goes through the kernel's linkwatch, a little later: dump after it.
        let (e, _) = wait_for(
            &mut k,
            &mut seen,
            "v0 carrier loss",
            |e| matches!(e, KernelEvent::LinkChanged(l) if l.ifindex == v0 && !l.lower_up),
        );
        assert_eq!(
            tables.apply(&e),
            Applied::Resync,
            "v0 first seen without carrier"
        );
        tables = dumped(&mut k);
        assert_eq!(tables.nexthops().count(), 0, "all flushed, silently");
        let m = tables.mirror(&taps);
        assert!(!m
            .routes
            .iter()
            .any(|r| r.dst == addr("2001:db8:100::") || r.dst == addr("198.51.101.0")));
    });
}

// ---------------------------------------------------------------------------------------------
// Pure tests (no kernel)
// ---------------------------------------------------------------------------------------------

fn hop(gw: Option<&str>, oif: u32, flags: u8) -> NextHop {
    NextHop {
        gateway: gw.map(addr),
        oif: Some(oif),
        weight: 1,
        flags,
    }
}

fn route(dst: &str, plen: u8, kind: RouteKind, hops: Vec<NextHop>) -> KernelRoute {
    KernelRoute {
        dst: addr(dst),
        prefix_len: plen,
        src_prefix_len: 0,
        tos: 0,
        table: RT_TABLE_MAIN,
        kind,
        protocol: protocol::BIRD,
        scope: 0,
        flags: 0,
        priority: None,
        prefsrc: None,
        nexthop_id: None,
        nexthops: hops,
    }
}

fn neigh(ifindex: u32, ip: &str, mac: Option<[u8; 6]>, state: u16) -> KernelNeighbor {
    KernelNeighbor {
        ifindex,
        ip: addr(ip),
        mac,
        state: NeighState(state),
        flags: 0,
    }
}

const TAPS: [Tap; 2] = [
    Tap {
        ifindex: 10,
        iface: 1,
    },
    Tap {
        ifindex: 11,
        iface: 2,
    },
];

#[test]
fn mirror_selects_hops_and_filters() {
    use RouteKind::*;
    let u = |dst, plen, hops| route(dst, plen, Unicast, hops);
    let mut metric_hi = u("10.6.0.0", 24, vec![hop(Some("10.2.0.2"), 10, 0)]);
    metric_hi.priority = Some(200);
    let mut metric_lo = u("10.6.0.0", 24, vec![hop(Some("10.2.0.3"), 11, 0)]);
    metric_lo.priority = Some(20);
    let mut tos = u("10.7.0.0", 24, vec![hop(None, 10, 0)]);
    tos.tos = 0x10;
    let mut from = u("2001:db8:7::", 64, vec![hop(None, 10, 0)]);
    from.src_prefix_len = 48;
    let routes = vec![
        // ECMP: dead hop skipped, hop without carrier passed over for one with carrier.
        u(
            "10.1.0.0",
            16,
            vec![
                hop(Some("10.2.0.9"), 10, nh_flags::DEAD),
                hop(Some("10.2.0.8"), 10, nh_flags::LINKDOWN),
                hop(Some("10.9.0.2"), 99, 0),
                hop(Some("10.3.0.2"), 11, 0),
            ],
        ),
        u(
            "10.2.0.0",
            16,
            vec![hop(Some("10.2.0.9"), 10, nh_flags::DEAD)],
        ), // all dead
        u(
            "10.3.0.0",
            16,
            vec![hop(Some("10.2.0.8"), 10, nh_flags::LINKDOWN)],
        ), // linkdown only
        metric_hi,
        metric_lo,
        tos,
        from,
        u("0.0.0.0", 0, vec![hop(Some("192.0.2.1"), 99, 0)]), // default off the TAPs
        u("fe80::", 64, vec![hop(None, 10, 0)]),
        u("ff00::", 8, vec![hop(None, 10, 0)]),
        route("10.2.0.1", 32, Local, vec![hop(None, 10, 0)]),
        route("10.66.0.0", 16, Blackhole, vec![]),
        route("10.67.0.0", 16, Prohibit, vec![]),
        route("224.0.0.0", 4, Multicast, vec![hop(None, 10, 0)]),
        u("2001:db8::", 32, vec![]), // nexthop object without compat mode: no hops
        u("2001:db8:5::", 48, vec![hop(Some("fe80::1"), 11, 0)]),
        // ECMP over two TAPs, with weights; the dead and off-TAP hops left out.
        u(
            "10.11.0.0",
            16,
            vec![
                NextHop {
                    weight: 3,
                    ..hop(Some("10.2.0.2"), 10, 0)
                },
                hop(Some("10.2.0.9"), 10, nh_flags::DEAD),
                hop(Some("10.9.0.2"), 99, 0),
                hop(Some("10.3.0.2"), 11, 0),
            ],
        ),
        // Over both, one without carrier: the one with carrier only.
        u(
            "10.12.0.0",
            16,
            vec![
                hop(Some("10.2.0.2"), 10, nh_flags::LINKDOWN),
                hop(Some("10.3.0.2"), 11, 0),
            ],
        ),
        // More than 16 hops: the first 16.
        u(
            "10.13.0.0",
            16,
            (1..=20)
                .map(|n| hop(Some(&format!("10.2.1.{n}")), 10, 0))
                .collect(),
        ),
    ];
    let m = mirror(&routes, &[], &TAPS);
    let got: Vec<(String, RouteTarget)> = m
        .routes
        .iter()
        .map(|r| (format!("{}/{}", r.dst, r.prefix_len), r.target.clone()))
        .collect();
    let f = |iface, gw: &str| RouteTarget::Forward {
        iface,
        gateway: Some(addr(gw)),
    };
    assert_eq!(
        got,
        vec![
            ("0.0.0.0/0".into(), RouteTarget::Punt),
            ("10.1.0.0/16".into(), f(2, "10.3.0.2")),
            ("10.3.0.0/16".into(), f(1, "10.2.0.8")),
            ("10.6.0.0/24".into(), f(2, "10.2.0.3")),
            (
                "10.11.0.0/16".into(),
                RouteTarget::Multipath(vec![
                    MirroredHop {
                        iface: 1,
                        gateway: Some(addr("10.2.0.2")),
                        weight: 3,
                    },
                    MirroredHop {
                        iface: 2,
                        gateway: Some(addr("10.3.0.2")),
                        weight: 1,
                    },
                ])
            ),
            ("10.12.0.0/16".into(), f(2, "10.3.0.2")),
            (
                "10.13.0.0/16".into(),
                RouteTarget::Multipath(
                    (1..=16)
                        .map(|n| MirroredHop {
                            iface: 1,
                            gateway: Some(addr(&format!("10.2.1.{n}"))),
                            weight: 1,
                        })
                        .collect()
                )
            ),
            ("10.66.0.0/16".into(), RouteTarget::Drop),
            ("10.67.0.0/16".into(), RouteTarget::Punt),
            ("2001:db8:5::/48".into(), f(2, "fe80::1")),
        ]
    );
}

#[test]
fn mirror_keeps_usable_neighbors_on_taps() {
    let s = |x| x;
    let neighbors = vec![
        neigh(10, "10.2.0.2", Some(MAC2), s(NeighState::REACHABLE)),
        neigh(10, "10.2.0.3", Some(MAC3), s(NeighState::STALE)),
        neigh(10, "10.2.0.4", Some(MAC9), s(NeighState::DELAY)),
        neigh(11, "10.3.0.5", Some(MAC9), s(NeighState::PROBE)),
        neigh(11, "fe80::5", Some(MAC9), s(NeighState::PERMANENT)),
        neigh(11, "10.3.0.6", Some(MAC9), s(NeighState::NOARP)),
        neigh(10, "10.2.0.7", Some(MAC9), s(NeighState::FAILED)),
        neigh(10, "10.2.0.8", None, s(NeighState::INCOMPLETE)),
        neigh(10, "10.2.0.9", None, s(NeighState::REACHABLE)),
        neigh(10, "10.2.0.10", Some([0; 6]), s(NeighState::STALE)),
        neigh(
            10,
            "ff02::1",
            Some([0x33, 0x33, 0, 0, 0, 1]),
            s(NeighState::NOARP),
        ),
        neigh(99, "10.9.0.2", Some(MAC2), s(NeighState::REACHABLE)), // not a TAP
    ];
    let m = mirror(&[], &neighbors, &TAPS);
    let got: Vec<(u16, IpAddr)> = m.neighbors.iter().map(|n| (n.iface, n.ip)).collect();
    assert_eq!(
        got,
        vec![
            (1, addr("10.2.0.2")),
            (1, addr("10.2.0.3")),
            (1, addr("10.2.0.4")),
            (2, addr("10.3.0.5")),
            (2, addr("10.3.0.6")),
            (2, addr("fe80::5")),
        ]
    );
}

#[test]
fn tables_apply_events_and_ask_for_resync_when_unsure() {
    let mut t = KernelTables::new();
    let a = route(
        "10.3.0.0",
        24,
        RouteKind::Unicast,
        vec![hop(Some("10.2.0.2"), 10, 0)],
    );
    let b = route(
        "10.3.0.0",
        24,
        RouteKind::Unicast,
        vec![hop(Some("10.2.0.3"), 10, 0)],
    );
    let add = |r: &KernelRoute, replace| KernelEvent::RouteAdded {
        route: r.clone(),
        replace,
    };
    assert_eq!(t.apply(&add(&a, false)), Applied::Changed);
    assert_eq!(t.apply(&add(&a, false)), Applied::Unchanged, "duplicate");
    let mut a_linkdown = a.clone();
    a_linkdown.nexthops[0].flags = nh_flags::LINKDOWN;
    assert_eq!(
        t.apply(&add(&a_linkdown, false)),
        Applied::Changed,
        "same route, new flags"
    );
    assert_eq!(t.apply(&add(&b, true)), Applied::Changed, "replace");
    assert_eq!(t.routes().collect::<Vec<_>>(), vec![&b]);
    assert_eq!(
        t.apply(&add(&a, false)),
        Applied::Resync,
        "append: second route, same key"
    );
    assert_eq!(
        t.apply(&KernelEvent::RouteRemoved(a.clone())),
        Applied::Resync,
        "unknown hop"
    );
    assert_eq!(
        t.apply(&KernelEvent::RouteRemoved(b.clone())),
        Applied::Changed
    );
    assert_eq!(t.routes().count(), 0);
    assert_eq!(
        t.apply(&KernelEvent::RouteRemoved(b.clone())),
        Applied::Unchanged
    );

    // Two routes of one key from a dump (IPv4 append): either may go.
    t.reset(vec![a.clone(), b.clone()], vec![]);
    assert_eq!(
        t.apply(&KernelEvent::RouteRemoved(b.clone())),
        Applied::Changed
    );
    assert_eq!(t.routes().collect::<Vec<_>>(), vec![&a]);
    t.reset(vec![a.clone(), b.clone()], vec![]);
    assert_eq!(
        t.apply(&KernelEvent::RouteRemoved(a.clone())),
        Applied::Changed
    );
    assert_eq!(t.routes().collect::<Vec<_>>(), vec![&b]);

    // Neighbor state churn that keeps the MAC usable is no change for the fast path.
    let n = |state, mac| neigh(10, "10.2.0.2", mac, state);
    let ch = |x: KernelNeighbor| KernelEvent::NeighborChanged(x);
    assert_eq!(
        t.apply(&ch(n(NeighState::INCOMPLETE, None))),
        Applied::Unchanged
    );
    assert_eq!(
        t.apply(&ch(n(NeighState::REACHABLE, Some(MAC2)))),
        Applied::Changed
    );
    assert_eq!(
        t.apply(&ch(n(NeighState::STALE, Some(MAC2)))),
        Applied::Unchanged
    );
    assert_eq!(
        t.apply(&ch(n(NeighState::REACHABLE, Some(MAC3)))),
        Applied::Changed
    );
    assert_eq!(
        t.apply(&ch(n(NeighState::FAILED, Some(MAC3)))),
        Applied::Changed
    );
    assert_eq!(
        t.apply(&KernelEvent::NeighborRemoved(n(NeighState::FAILED, None))),
        Applied::Unchanged
    );
    assert_eq!(t.apply(&KernelEvent::Overrun), Applied::Resync);
    assert_eq!(t.neighbors().count(), 0);

    // IPv6: one prefix on two links side by side; a second gateway route merges (dump).
    let c1 = route(
        "2001:db8:9::",
        64,
        RouteKind::Unicast,
        vec![hop(None, 10, 0)],
    );
    let c2 = route(
        "2001:db8:9::",
        64,
        RouteKind::Unicast,
        vec![hop(None, 11, 0)],
    );
    let g1 = route(
        "2001:db8:8::",
        64,
        RouteKind::Unicast,
        vec![hop(Some("fe80::1"), 10, 0)],
    );
    let g2 = route(
        "2001:db8:8::",
        64,
        RouteKind::Unicast,
        vec![hop(Some("fe80::2"), 11, 0)],
    );
    assert_eq!(t.apply(&add(&c1, false)), Applied::Changed);
    assert_eq!(t.apply(&add(&c2, false)), Applied::Changed);
    assert_eq!(t.routes().count(), 3);
    assert_eq!(t.apply(&add(&g1, false)), Applied::Changed);
    assert_eq!(t.apply(&add(&g2, false)), Applied::Resync);

    // Link news matters only for links that routes use.
    let link = |ifindex, up, lower_up| {
        KernelEvent::LinkChanged(KernelLink {
            ifindex,
            name: String::new(),
            up,
            running: up && lower_up,
            lower_up,
            mtu: None,
            mac: None,
        })
    };
    assert_eq!(
        t.apply(&link(55, false, false)),
        Applied::Unchanged,
        "unused link"
    );
    assert_eq!(t.apply(&link(11, true, true)), Applied::Unchanged, "up");
    assert_eq!(
        t.apply(&link(11, true, false)),
        Applied::Resync,
        "carrier lost"
    );
    assert_eq!(
        t.apply(&link(11, true, false)),
        Applied::Unchanged,
        "no news"
    );
    assert_eq!(
        t.apply(&link(11, false, false)),
        Applied::Resync,
        "admin down"
    );
}

fn nexthop(id: u32, kind: NexthopKind) -> KernelNexthop {
    KernelNexthop {
        id,
        protocol: protocol::ZEBRA,
        flags: 0,
        fdb: false,
        kind,
    }
}

fn nh_hop(id: u32, gw: &str, oif: u32) -> KernelNexthop {
    nexthop(
        id,
        NexthopKind::Hop {
            gateway: Some(addr(gw)),
            oif: Some(oif),
        },
    )
}

fn nh_group(id: u32, members: &[(u32, u32)]) -> KernelNexthop {
    nexthop(
        id,
        NexthopKind::Group {
            members: members
                .iter()
                .map(|&(id, weight)| NexthopMember { id, weight })
                .collect(),
            resilient: false,
        },
    )
}

#[test]
fn tables_resolve_routes_through_nexthop_objects() {
    let mut t = KernelTables::new();
    let via_nh = |dst, id| KernelRoute {
        nexthop_id: Some(id),
        ..route(dst, 24, RouteKind::Unicast, vec![])
    };
    let target = |t: &KernelTables, dst: &str| {
        t.mirror(&TAPS)
            .routes
            .iter()
            .find(|r| r.dst == addr(dst))
            .map(|r| r.target.clone())
    };
    let set = |n: KernelNexthop| KernelEvent::NexthopChanged(n);
    let del = |id| KernelEvent::NexthopRemoved(nexthop(id, NexthopKind::Blackhole));
    let add = |r: &KernelRoute| KernelEvent::RouteAdded {
        route: r.clone(),
        replace: false,
    };

    // A route whose nexthop is not known is left out until it comes.
    let r = via_nh("10.3.0.0", 1);
    assert_eq!(t.apply(&add(&r)), Applied::Changed);
    assert_eq!(target(&t, "10.3.0.0"), None);
    assert_eq!(
        t.apply(&set(nh_hop(1, "10.2.0.2", 10))),
        Applied::Changed,
        "a used nexthop arrives"
    );
    assert_eq!(
        target(&t, "10.3.0.0"),
        Some(RouteTarget::Forward {
            iface: 1,
            gateway: Some(addr("10.2.0.2"))
        })
    );
    assert_eq!(
        t.apply(&set(nh_hop(1, "10.2.0.2", 10))),
        Applied::Unchanged,
        "the same again"
    );
    assert_eq!(
        t.apply(&set(nh_hop(2, "10.2.0.3", 11))),
        Applied::Unchanged,
        "unused"
    );

    // Groups: weights; above 256 (16-bit kernel weights) scaled to the FIB's range.
    let g = via_nh("10.4.0.0", 10);
    t.apply(&add(&g));
    assert_eq!(
        t.apply(&set(nh_group(10, &[(1, 1000), (2, 250)]))),
        Applied::Changed
    );
    let hops = |v: &[(u16, &str, u16)]| {
        Some(RouteTarget::Multipath(
            v.iter()
                .map(|&(iface, gw, weight)| MirroredHop {
                    iface,
                    gateway: Some(addr(gw)),
                    weight,
                })
                .collect(),
        ))
    };
    assert_eq!(
        target(&t, "10.4.0.0"),
        hops(&[(1, "10.2.0.2", 256), (2, "10.2.0.3", 64)])
    );
    assert_eq!(
        t.apply(&set(nh_hop(2, "10.2.0.4", 11))),
        Applied::Changed,
        "a member of a used group"
    );
    assert_eq!(
        target(&t, "10.4.0.0"),
        hops(&[(1, "10.2.0.2", 256), (2, "10.2.0.4", 64)])
    );
    // A link that a used nexthop sends out of: its nexthops are flushed silently.
    let link_down = |ifindex| {
        KernelEvent::LinkChanged(KernelLink {
            ifindex,
            name: String::new(),
            up: false,
            running: false,
            lower_up: false,
            mtu: None,
            mac: None,
        })
    };
    assert_eq!(t.apply(&link_down(11)), Applied::Resync, "via the group");
    assert_eq!(t.apply(&link_down(12)), Applied::Unchanged);

    // The route's own hops (compat mode) win over the object's.
    let mut compat = via_nh("10.5.0.0", 2);
    compat.nexthops = vec![hop(Some("10.2.0.9"), 10, 0)];
    t.apply(&add(&compat));
    assert_eq!(
        target(&t, "10.5.0.0"),
        Some(RouteTarget::Forward {
            iface: 1,
            gateway: Some(addr("10.2.0.9"))
        })
    );

    // Removing a member shrinks the group; removing the last deletes the group and its routes.
    assert_eq!(t.apply(&del(2)), Applied::Changed);
    assert_eq!(
        target(&t, "10.4.0.0"),
        Some(RouteTarget::Forward {
            iface: 1,
            gateway: Some(addr("10.2.0.2"))
        })
    );
    assert_eq!(target(&t, "10.5.0.0"), None, "its route went with it");
    assert_eq!(t.apply(&del(1)), Applied::Changed);
    assert_eq!(
        t.routes().count(),
        0,
        "10.3 via 1, 10.4 via the emptied group 10"
    );
    assert_eq!(t.nexthops().count(), 0);
    assert_eq!(t.apply(&del(1)), Applied::Unchanged, "unknown");

    // Blackhole nexthops make blackhole routes, also from compat mode's `dev lo` hop; FDB
    // nexthops are not for routes.
    t.reset_nexthops(vec![
        nexthop(4, NexthopKind::Blackhole),
        KernelNexthop {
            fdb: true,
            ..nh_hop(5, "10.2.0.5", 10)
        },
    ]);
    let mut bh = via_nh("10.6.0.0", 4);
    bh.nexthops = vec![hop(None, 1, 0)];
    t.reset(vec![bh, via_nh("10.7.0.0", 5)], vec![]);
    assert_eq!(target(&t, "10.6.0.0"), Some(RouteTarget::Drop));
    assert_eq!(target(&t, "10.7.0.0"), None);
}
