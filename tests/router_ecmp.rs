//! End to end, ECMP in router mode (issue 17): a kernel multipath route on the TAP side
//! (`ip route add PREFIX nexthop via A nexthop via B`) is mirrored with both hops, the fast
//! path spreads flows over both upstreams by flow hash (each flow on one hop, in order), and
//! when one upstream's link goes down its flows move to the other and come back after.
//! The test bed is in ecmp_rig (shared with frr_ecmp.rs); the gateway's kernel gets
//! 10.99.0.0/24 and 2001:db8:99::/64 `nexthop via up1 nexthop via up2`.
//!
//! Numbers are printed on lines starting with "MEASURE".

mod ecmp_rig;

use std::time::{Duration, Instant};

use ecmp_rig::*;
use testkit::*;

#[test]
fn kernel_multipath_route_spreads_flows_and_fails_over() {
    let rig = Rig::up("mp", true);
    // Neighbours first (the gateway's kernel resolves them through the TAPs), so the
    // first packets of the test do not wait in the kernel.
    for (i, ns) in rig.ups.iter().enumerate() {
        let n = 41 + i;
        let (ok, out) =
            output(
                &mut rig
                    .gw_ns
                    .cmd(&["ping", "-c", "2", "-W", "1", &format!("10.{n}.0.2")]),
            );
        assert!(ok, "gateway -> up{i}: {out}");
        let (ok, out) = output(&mut rig.gw_ns.cmd(&[
            "ping",
            "-6",
            "-c",
            "2",
            "-W",
            "1",
            &format!("2001:db8:{n}::2"),
        ]));
        assert!(ok, "gateway -> up{i} (IPv6): {out}");
        let _ = ns;
    }
    let t0 = Instant::now();
    rig.gw_ns.ip(&[
        "route",
        "add",
        "10.99.0.0/24",
        "nexthop",
        "via",
        "10.41.0.2",
        "dev",
        "fl-wan1",
        "nexthop",
        "via",
        "10.42.0.2",
        "dev",
        "fl-wan2",
    ]);
    rig.gw_ns.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:99::/64",
        "nexthop",
        "via",
        "2001:db8:41::2",
        "dev",
        "fl-wan1",
        "nexthop",
        "via",
        "2001:db8:42::2",
        "dev",
        "fl-wan2",
    ]);
    let mut mirrored_ms = None;
    let both = wait_until(Duration::from_secs(3), || {
        let ok = rig.hops("10.99.0.0/24").len() == 2 && rig.hops("2001:db8:99::/64").len() == 2;
        if ok {
            mirrored_ms = Some(t0.elapsed().as_millis());
        }
        ok
    });
    if !both {
        rig.fail(&format!(
            "the multipath routes are not in the FIB with both hops: {:?} / {:?}",
            rig.hops("10.99.0.0/24"),
            rig.hops("2001:db8:99::/64")
        ));
    }
    let hops = rig.hops("10.99.0.0/24");
    assert_eq!(
        hops,
        vec![
            ("wan1".into(), "10.41.0.2".into(), 1, "up".into()),
            ("wan2".into(), "10.42.0.2".into(), 1, "up".into()),
        ]
    );

    // 1000 flows, 5 packets each: one upstream per flow, in order, spread over both.
    let (fwd1, fwd2) = (rig.forwarded("wan1"), rig.forwarded("wan2"));
    let before = spread(1, &rig, "spread4", FAR4, CLI4, 1000, 5);
    let a = share(&before, 0);
    if !(0.40..=0.60).contains(&a) {
        rig.fail(&format!("1000 flows: {a:.3} on up1 (expected 0.4..0.6)"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (d1, d2) = (rig.forwarded("wan1") - fwd1, rig.forwarded("wan2") - fwd2);
    assert!(
        d1 >= 5 * (a * 1000.0) as u64 * 99 / 100
            && d2 >= 5 * ((1.0 - a) * 1000.0) as u64 * 99 / 100,
        "the fast path forwarded {d1} on wan1 and {d2} on wan2"
    );
    // Counted per next hop, too (IPv4 and IPv6 gateway of one router: one MAC, one count).
    let st = rig.status();
    let hop_count = |iface: &str| -> u64 {
        st["interfaces"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == iface))
            .and_then(|i| i["next_hops"].as_object())
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.starts_with("10.4"))
                    .filter_map(|(_, v)| v.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    let (h1, h2) = (hop_count("wan1"), hop_count("wan2"));
    assert!(
        h1 >= d1 && h2 >= d2,
        "next-hop counters {h1} / {h2} below the frames forwarded {d1} / {d2}: {}",
        st["interfaces"]
    );
    let before6 = spread(2, &rig, "spread6", FAR6, CLI6, 500, 3);
    let a6 = share(&before6, 0);
    if !(0.38..=0.62).contains(&a6) {
        rig.fail(&format!("500 IPv6 flows: {a6:.3} on up1"));
    }
    println!(
        "MEASURE ecmp kernel multipath: mirrored with both hops {} ms after `ip route add`; \
         1000 IPv4 flows: {:.1}% on up1, {:.1}% on up2; 500 IPv6 flows: {:.1}% on up1; \
         every flow on one hop, in order",
        mirrored_ms.unwrap_or(0),
        a * 100.0,
        (1.0 - a) * 100.0,
        a6 * 100.0
    );

    // up1's link goes down under traffic: its flows move to up2, the others stay.
    let rx = rig.receivers("failover");
    let mut sender = spawn_logged(
        "send",
        rig.send(FAR4, 20000, 200, 300, 0.01, 3),
        &rig.scratch.file("failover-send.out"),
        &rig.scratch.file("failover-send.err"),
    );
    std::thread::sleep(Duration::from_millis(1000));
    let down_at = now();
    rig.ups[0].ip(&["link", "set", "eth0", "down"]);
    let mut skipped_ms = None;
    let t1 = Instant::now();
    wait_until(Duration::from_secs(3), || {
        let h = rig.hops("10.99.0.0/24");
        let ok = h.iter().any(|h| h.0 == "wan1" && h.3 == "skipped") || h.len() == 1;
        if ok {
            skipped_ms = Some(t1.elapsed().as_millis());
        }
        ok
    });
    sender.wait_timeout(Duration::from_secs(30));
    let got = collect(rx, 3);
    // The flows that were on up1: when each first reached up2.
    let mut moved_ms: Vec<f64> = Vec::new();
    for (port, up) in before.iter().filter(|(p, _)| **p < 20200) {
        let first_on_2 = got[1]
            .iter()
            .find(|r| r.0 == CLI4 && r.1 == *port)
            .map(|r| r.3);
        match (up, first_on_2) {
            (0, Some(t)) => moved_ms.push((t - down_at) * 1000.0),
            (0, None) => rig.fail(&format!(
                "flow {port} never reached up2 after up1 went down (FIB: {:?} after \
                 {skipped_ms:?} ms; packets per upstream {:?}; status: {})",
                rig.hops("10.99.0.0/24"),
                got.iter().map(Vec::len).collect::<Vec<_>>(),
                rig.status()["interfaces"]
            )),
            (1, _) if got[0].iter().any(|r| r.0 == CLI4 && r.1 == *port) => {
                rig.fail(&format!("flow {port} of up2 went to up1"))
            }
            _ => {}
        }
    }
    let last_on_1 = got[0]
        .iter()
        .filter(|r| r.0 == CLI4)
        .map(|r| r.3)
        .fold(0.0f64, f64::max);
    let failover = moved_ms.iter().cloned().fold(0.0f64, f64::max);
    let blackout = (failover - (last_on_1 - down_at) * 1000.0).max(0.0);
    if failover > 1000.0 {
        rig.fail(&format!("up1's flows took {failover:.0} ms to move to up2"));
    }
    println!(
        "MEASURE ecmp failover (up1 link down under 200 flows at 100 rounds/s): FIB shows the \
         hop skipped/removed after {} ms (ctl polling); up1's {} flows all on up2 {failover:.0} \
         ms after the link went down (last packet on up1 {:.0} ms after; gap {blackout:.0} ms); \
         up2's flows stayed",
        skipped_ms.map_or("?".into(), |v| v.to_string()),
        moved_ms.len(),
        (last_on_1 - down_at) * 1000.0,
    );

    // Back up: the flows return to where they were.
    rig.ups[0].ip(&["link", "set", "eth0", "up"]);
    let back = wait_until(Duration::from_secs(10), || {
        let h = rig.hops("10.99.0.0/24");
        h.len() == 2 && h.iter().all(|h| h.3 == "up")
    });
    if !back {
        rig.fail(&format!("up1 back: {:?}", rig.hops("10.99.0.0/24")));
    }
    // The kernel dropped up1's neighbour entry with the link: resolve it again and wait for
    // the mirror to have it, so no flow's first packets wait in the kernel (and arrive
    // after the next ones, which the fast path forwards).
    let _ = output(&mut rig.gw_ns.cmd(&["ping", "-c", "1", "-W", "1", "10.41.0.2"]));
    let resolved = wait_until(Duration::from_secs(3), || {
        rig.gw_ns
            .ip(&["neigh", "show", "10.41.0.2", "dev", "fl-wan1"])
            .contains("REACHABLE")
    });
    if !resolved {
        rig.fail("up1's neighbour is not resolved again after its link came back");
    }
    // Mirrored within a rebuild (50 ms).
    std::thread::sleep(Duration::from_millis(300));
    let again = spread(4, &rig, "again", FAR4, CLI4, 1000, 3);
    if again != before {
        let moved = again
            .iter()
            .filter(|(p, u)| before.get(p) != Some(u))
            .count();
        rig.fail(&format!(
            "after up1 came back {moved} of 1000 flows are on another hop than before"
        ));
    }
}
