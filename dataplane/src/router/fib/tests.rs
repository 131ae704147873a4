//! Unit tests of [`super`].

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn iface(n: u8, vlan: Option<u16>) -> Interface {
    Interface {
        mac: MacAddr([2, 0, 0, 0, 0, n]),
        vlan,
        mtu: 1500,
    }
}

fn nmac(n: u8) -> MacAddr {
    MacAddr([0x0a, 0, 0, 0, 0, n])
}

#[test]
fn routes_lists_connected_static_and_kernel_with_the_winner() {
    let mut b = FibBuilder::new();
    let a = b.add_interface(iface(1, None)).unwrap();
    let c = b.add_interface(iface(2, None)).unwrap();
    b.add_interface_address(a, ip("10.0.0.1"), 24).unwrap();
    let via = |iface, gw: &str| NextHop {
        iface,
        gateway: Some(ip(gw)),
    };
    b.add_route(ip("0.0.0.0"), 0, via(a, "10.0.0.254"), Origin::Kernel)
        .unwrap();
    b.add_route(ip("0.0.0.0"), 0, via(c, "10.9.0.1"), Origin::Static)
        .unwrap();
    b.add_route(ip("2001:db8:1::"), 48, via(c, "fe80::1"), Origin::Kernel)
        .unwrap();
    let r = b.routes();
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(
        (r[0].prefix, r[0].len, r[0].origin, r[0].active),
        (ip("10.0.0.1"), 24, None, true)
    );
    let default: Vec<_> = r.iter().filter(|x| x.len == 0).collect();
    assert_eq!(default.len(), 2);
    let kernel = default
        .iter()
        .find(|x| x.origin == Some(Origin::Kernel))
        .unwrap();
    let stat = default
        .iter()
        .find(|x| x.origin == Some(Origin::Static))
        .unwrap();
    assert!(
        stat.active && !kernel.active,
        "a static route wins: {default:?}"
    );
    assert_eq!(stat.next_hop, via(c, "10.9.0.1"));
    let v6 = r.iter().find(|x| x.prefix == ip("2001:db8:1::")).unwrap();
    assert!(v6.active && v6.len == 48 && v6.next_hop.gateway == Some(ip("fe80::1")));
    // The listing agrees with lookups.
    let fib = b.build();
    assert!(matches!(
        fib.lookup_v4("192.0.2.1".parse().unwrap()),
        Lookup::Forward { iface, .. } if iface == c
    ));
}

#[test]
fn connected_local_and_gateway_routes() {
    let mut b = FibBuilder::new();
    let a = b.add_interface(iface(1, None)).unwrap();
    let c = b.add_interface(iface(2, Some(100))).unwrap();
    b.add_interface_address(a, ip("10.0.0.1"), 24).unwrap();
    b.add_interface_address(c, ip("10.1.0.1"), 16).unwrap();
    b.add_interface_address(a, ip("2001:db8::1"), 64).unwrap();
    b.add_route(
        ip("0.0.0.0"),
        0,
        NextHop {
            iface: c,
            gateway: Some(ip("10.1.0.254")),
        },
        Origin::Static,
    )
    .unwrap();
    b.add_neighbor(a, ip("10.0.0.7"), nmac(7)).unwrap();
    let f = b.build();
    assert_eq!(f.version(), 1);
    let v4 = |s: &str| f.lookup_v4(s.parse().unwrap());
    assert_eq!(v4("10.0.0.1"), Lookup::Local);
    assert_eq!(v4("10.0.0.255"), Lookup::Local, "subnet broadcast");
    assert_eq!(v4("10.1.255.255"), Lookup::Local);
    assert_eq!(
        v4("10.0.0.7"),
        Lookup::Forward {
            iface: a,
            next_hop: "10.0.0.7".parse().unwrap(),
            mac: Some(nmac(7))
        }
    );
    assert_eq!(
        v4("10.0.0.8"),
        Lookup::Forward {
            iface: a,
            next_hop: "10.0.0.8".parse().unwrap(),
            mac: None
        },
        "unresolved neighbor"
    );
    assert_eq!(
        v4("8.8.8.8"),
        Lookup::Forward {
            iface: c,
            next_hop: "10.1.0.254".parse().unwrap(),
            mac: None
        }
    );
    assert_eq!(f.lookup_v6("2001:db8::1".parse().unwrap()), Lookup::Local);
    assert_eq!(f.lookup_v6("2001:db9::1".parse().unwrap()), Lookup::NoRoute);

    // A neighbor change re-resolves gateways and keeps the LPM tables.
    b.add_neighbor(c, ip("10.1.0.254"), nmac(254)).unwrap();
    let g = b.build();
    assert!(g.shares_lpm_with(&f));
    assert_eq!(
        g.lookup_v4("8.8.8.8".parse().unwrap()),
        Lookup::Forward {
            iface: c,
            next_hop: "10.1.0.254".parse().unwrap(),
            mac: Some(nmac(254))
        }
    );
    assert_eq!(
        g.neighbor_v4(c, "10.1.0.254".parse().unwrap()),
        Some(nmac(254))
    );
    assert_eq!(g.neighbor_v4(a, "10.1.0.254".parse().unwrap()), None);

    // A route change recompiles.
    b.remove_route(ip("0.0.0.0"), 0, Origin::Static).unwrap();
    let h = b.build();
    assert!(!h.shares_lpm_with(&g));
    assert_eq!(h.lookup_v4("8.8.8.8".parse().unwrap()), Lookup::NoRoute);
    assert!(b.remove_interface_address(a, ip("10.0.0.1")));
    assert_eq!(
        b.build().lookup_v4("10.0.0.1".parse().unwrap()),
        Lookup::NoRoute
    );
}

#[test]
fn precedence_local_connected_static_kernel() {
    let mut b = FibBuilder::new();
    let a = b.add_interface(iface(1, None)).unwrap();
    let c = b.add_interface(iface(2, None)).unwrap();
    let via = |i, g: &str| NextHop {
        iface: i,
        gateway: Some(ip(g)),
    };
    b.add_route(ip("10.9.0.0"), 16, via(a, "10.0.0.2"), Origin::Kernel)
        .unwrap();
    b.add_route(ip("10.9.0.0"), 16, via(c, "10.2.0.2"), Origin::Static)
        .unwrap();
    let fwd_iface = |f: &Fib, s: &str| match f.lookup_v4(s.parse().unwrap()) {
        Lookup::Forward { iface, .. } => Some(iface),
        _ => None,
    };
    assert_eq!(fwd_iface(&b.build(), "10.9.1.1"), Some(c), "static wins");
    b.remove_route(ip("10.9.0.0"), 16, Origin::Static);
    assert_eq!(fwd_iface(&b.build(), "10.9.1.1"), Some(a));
    b.clear_routes(Origin::Kernel);
    assert_eq!(b.route_count(), (0, 0));
    assert_eq!(fwd_iface(&b.build(), "10.9.1.1"), None);

    // A route for our own subnet or address does not hide them.
    b.add_interface_address(a, ip("10.0.0.1"), 24).unwrap();
    b.add_route(ip("10.0.0.0"), 24, via(c, "10.2.0.2"), Origin::Static)
        .unwrap();
    b.add_route(ip("10.0.0.1"), 32, via(c, "10.2.0.2"), Origin::Static)
        .unwrap();
    b.add_local(ip("192.0.2.1"), a).unwrap();
    let f = b.build();
    assert_eq!(fwd_iface(&f, "10.0.0.9"), Some(a));
    assert_eq!(f.lookup_v4("10.0.0.1".parse().unwrap()), Lookup::Local);
    assert_eq!(f.lookup_v4("192.0.2.1".parse().unwrap()), Lookup::Local);
    assert!(b.remove_local(ip("192.0.2.1")));
    assert_eq!(
        b.build().lookup_v4("192.0.2.1".parse().unwrap()),
        Lookup::NoRoute
    );
}

#[test]
fn refusals() {
    let mut b = FibBuilder::new();
    let a = b.add_interface(iface(1, None)).unwrap();
    let direct = NextHop {
        iface: a,
        gateway: None,
    };
    assert_eq!(
        b.add_route(ip("10.0.0.1"), 24, direct, Origin::Static),
        Err(FibError::Prefix(LpmError::HostBits))
    );
    assert!(matches!(
        b.add_route(ip("10.0.0.0"), 33, direct, Origin::Static),
        Err(FibError::Prefix(LpmError::PrefixLength { .. }))
    ));
    assert_eq!(
        b.add_route(
            ip("10.0.0.0"),
            8,
            NextHop {
                iface: a,
                gateway: Some(ip("2001:db8::1"))
            },
            Origin::Static
        ),
        Err(FibError::GatewayFamily)
    );
    assert_eq!(
        b.add_route(
            ip("10.0.0.0"),
            8,
            NextHop {
                iface: IfaceId(5),
                gateway: None
            },
            Origin::Static
        ),
        Err(FibError::UnknownInterface(IfaceId(5)))
    );
    assert_eq!(
        b.add_neighbor(IfaceId(1), ip("10.0.0.1"), nmac(1)),
        Err(FibError::UnknownInterface(IfaceId(1)))
    );
    assert!(b.add_interface_address(a, ip("10.0.0.1"), 33).is_err());
    assert_eq!(
        b.add_route(ip("10.0.0.0"), 8, direct, Origin::Static),
        Ok(None)
    );
    assert_eq!(
        b.add_route(ip("10.0.0.0"), 8, direct, Origin::Static),
        Ok(Some(direct))
    );
    assert_eq!(
        b.remove_route(ip("10.1.2.3"), 8, Origin::Static),
        Some(direct)
    );
}

#[test]
fn neighbors_per_interface_and_clearing() {
    let mut b = FibBuilder::new();
    let a = b.add_interface(iface(1, None)).unwrap();
    let c = b.add_interface(iface(2, None)).unwrap();
    let ll = ip("fe80::1");
    b.add_neighbor(a, ll, nmac(1)).unwrap();
    b.add_neighbor(c, ll, nmac(2)).unwrap();
    let f = b.build();
    assert_eq!(f.neighbor_v6(a, "fe80::1".parse().unwrap()), Some(nmac(1)));
    assert_eq!(f.neighbor_v6(c, "fe80::1".parse().unwrap()), Some(nmac(2)));
    b.clear_neighbors(Some(a));
    let f = b.build();
    assert_eq!(f.neighbor_v6(a, "fe80::1".parse().unwrap()), None);
    assert_eq!(f.neighbor_v6(c, "fe80::1".parse().unwrap()), Some(nmac(2)));
    assert!(b.remove_neighbor(c, ll));
    assert!(!b.remove_neighbor(c, ll));
    b.add_neighbor(a, ip("10.0.0.1"), nmac(3)).unwrap();
    b.clear_neighbors(None);
    assert_eq!(b.build().neighbor_v4(a, "10.0.0.1".parse().unwrap()), None);
}

#[test]
fn neighbour_changes_reach_the_resolved_next_hops() {
    // The fast path reads resolved next hops (gateways, and hosts of small connected
    // subnets from their dense tables) that each build recomputes: a neighbour added,
    // changed or removed shows in the next snapshot, and the old snapshot keeps its own.
    let mut b = FibBuilder::new();
    let a = b.add_interface(iface(1, None)).unwrap();
    let c = b.add_interface(iface(2, None)).unwrap();
    b.add_interface_address(a, ip("10.0.0.1"), 24).unwrap(); // dense host table
    b.add_interface_address(c, ip("10.1.0.1"), 16).unwrap(); // too big: neighbour probe
    b.add_interface_address(a, ip("2001:db8::1"), 64).unwrap();
    b.add_route(
        ip("198.18.0.0"),
        15,
        NextHop {
            iface: c,
            gateway: Some(ip("10.1.0.254")),
        },
        Origin::Static,
    )
    .unwrap();
    let v4 = |f: &Fib, s: &str| f.adjacency_v4(s.parse::<Ipv4Addr>().unwrap().into(), || 0);
    let v6 = |f: &Fib, s: &str| f.adjacency_v6(s.parse::<Ipv6Addr>().unwrap().into(), || 0);
    let f0 = b.build();
    for d in ["10.0.0.7", "10.1.2.3", "198.18.0.1"] {
        assert_eq!(v4(&f0, d), None, "{d}: nobody resolved yet");
    }
    b.add_neighbor(a, ip("10.0.0.7"), nmac(7)).unwrap();
    b.add_neighbor(c, ip("10.1.2.3"), nmac(3)).unwrap();
    b.add_neighbor(c, ip("10.1.0.254"), nmac(254)).unwrap();
    b.add_neighbor(a, ip("2001:db8::7"), nmac(8)).unwrap();
    let f1 = b.build();
    assert!(
        f1.shares_lpm_with(&f0),
        "neighbours do not recompile the LPM"
    );
    assert_eq!(v4(&f1, "10.0.0.7"), Some((a, nmac(7))));
    assert_eq!(
        v4(&f1, "10.0.0.8"),
        None,
        "unresolved host of a dense subnet"
    );
    assert_eq!(v4(&f1, "10.1.2.3"), Some((c, nmac(3))));
    assert_eq!(v4(&f1, "198.18.0.1"), Some((c, nmac(254))), "gateway");
    assert_eq!(v4(&f1, "10.0.0.1"), None, "local");
    assert_eq!(v4(&f1, "10.0.0.255"), None, "subnet broadcast");
    assert_eq!(v4(&f1, "192.0.2.1"), None, "no route");
    assert_eq!(v6(&f1, "2001:db8::7"), Some((a, nmac(8))));
    assert_eq!(v6(&f0, "2001:db8::7"), None);
    // Changed MACs, one removal.
    b.add_neighbor(a, ip("10.0.0.7"), nmac(17)).unwrap();
    b.add_neighbor(c, ip("10.1.0.254"), nmac(25)).unwrap();
    assert!(b.remove_neighbor(c, ip("10.1.2.3")));
    let f2 = b.build();
    assert_eq!(v4(&f2, "10.0.0.7"), Some((a, nmac(17))));
    assert_eq!(v4(&f2, "198.18.0.1"), Some((c, nmac(25))));
    assert_eq!(v4(&f2, "10.1.2.3"), None);
    // The previous snapshot (a worker may still hold it) is unchanged.
    assert_eq!(v4(&f1, "10.0.0.7"), Some((a, nmac(7))));
    // A neighbour on another interface is not this subnet's.
    b.clear_neighbors(None);
    b.add_neighbor(c, ip("10.0.0.7"), nmac(9)).unwrap();
    assert_eq!(v4(&b.build(), "10.0.0.7"), None);
    // The full lookup agrees with the fast path's answer.
    b.add_neighbor(a, ip("10.0.0.9"), nmac(19)).unwrap();
    let f3 = b.build();
    assert_eq!(
        f3.lookup_v4("10.0.0.9".parse().unwrap()),
        Lookup::Forward {
            iface: a,
            next_hop: "10.0.0.9".parse().unwrap(),
            mac: Some(nmac(19))
        }
    );
    assert_eq!(v4(&f3, "10.0.0.9"), Some((a, nmac(19))));
}
