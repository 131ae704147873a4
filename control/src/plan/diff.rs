//! Hitless reload as a difference of two plans: what can change while traffic flows (bond
//! members, LACP parameters, min_links, static routes) becomes a list of [`Action`]s;
//! anything else (ports, cores, memory, the forwarding mode, ...) needs a restart and is
//! named, key by key, as the config file spells it.
//!
//! A port can join a bond by reload only if it was set up for it at start: in xconnect
//! mode, every `[[port]]` that is neither a bond member nor an endpoint of a pair is a
//! *spare* ([`super::is_spare`]). It gets what a member needs from the start (a
//! control-thread TX queue for LACPDUs, one slow-protocol ring per worker, a ring to worker
//! 0), so turning a spare into a member is a new plan for that one port and a new member in
//! the LACP engine.

use conf::{Config, Forward};
use serde_json::Value;

use super::Plan;

/// One change the reload applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Members leave first (a port may move between bonds).
    RemoveMember {
        /// Bond index.
        bond: usize,
        /// Port name.
        port: String,
    },
    /// New LACP parameters (and min_links) of a bond.
    BondParams {
        /// Bond index.
        bond: usize,
    },
    /// A member's port priority.
    MemberPriority {
        /// Bond index.
        bond: usize,
        /// Port name.
        port: String,
        /// New priority.
        priority: u16,
    },
    /// A port joins a bond.
    AddMember {
        /// Bond index.
        bond: usize,
        /// Port name.
        port: String,
    },
    /// The static routes are replaced.
    Routes,
    /// The static neighbours are replaced.
    Neighbors,
}

/// How config file keys are spelled (the model's field names are plural).
fn file_key(field: &str) -> &str {
    match field {
        "ports" => "port",
        "bonds" => "bond",
        "interfaces" => "interface",
        "routes" => "route",
        other => other,
    }
}

/// Every key path whose value differs between `a` and `b` (leaves, or arrays of different
/// length), spelled as in the file: `port[2].device`, `dataplane.worker_cores`.
fn differing(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    file_key(k).to_string()
                } else {
                    format!("{path}.{k}")
                };
                differing(
                    &sub,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        // Tables ([[port]], [[bond]]) by index; lists of values as one key.
        (Value::Array(x), Value::Array(y))
            if x.len() == y.len() && x.iter().chain(y).all(Value::is_object) =>
        {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differing(&format!("{path}[{i}]"), u, v, out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// Compares the running plan with the plan of a new, validated configuration: the actions
/// that apply the difference without a restart, or every key that needs one (with why).
pub fn diff(old_plan: &Plan, new_plan: &Plan) -> Result<Vec<Action>, Vec<String>> {
    let (old, new) = (&old_plan.config, &new_plan.config);
    let mut restart = Vec::new();
    let names = |v: &mut dyn Iterator<Item = &String>| v.cloned().collect::<Vec<_>>();
    let (old_ports, new_ports) = (
        names(&mut old.ports.iter().map(|p| &p.name)),
        names(&mut new.ports.iter().map(|p| &p.name)),
    );
    if old_ports != new_ports {
        restart.push(format!(
            "port: the ports are {new_ports:?}, running {old_ports:?}: ports are created when DPDK starts; adding, removing or reordering them needs a restart"
        ));
    }
    let (old_bonds, new_bonds) = (
        names(&mut old.bonds.iter().map(|b| &b.name)),
        names(&mut new.bonds.iter().map(|b| &b.name)),
    );
    if old_bonds != new_bonds {
        restart.push(format!(
            "bond: the bonds are {new_bonds:?}, running {old_bonds:?}: adding, removing or reordering bonds needs a restart (members and LACP settings of existing bonds reload)"
        ));
    }
    if !restart.is_empty() {
        return Err(restart);
    }

    // Everything but what reloads, compared key by key.
    let strip = |c: &Config| {
        let mut c = c.clone();
        for p in &mut c.ports {
            // Effective values are compared in the bond's members.
            p.lacp_port_priority = None;
            p.lacp_port_number = None;
        }
        for b in &mut c.bonds {
            b.members.clear();
            b.min_links = 0;
            if let Some(l) = b.lacp.as_mut() {
                l.activity = conf::LacpActivity::Active;
                l.rate = conf::LacpRate::Fast;
                l.system_priority = 0;
                l.system_id = None;
                l.key = 0;
                l.port_priority = 0;
                l.max_active = None;
                l.selection = conf::Selection::Stable;
                l.fallback = conf::Fallback::None;
            }
        }
        c.routes.clear();
        c.neighbors.clear();
        serde_json::to_value(&c).unwrap_or(Value::Null)
    };
    let mut keys = Vec::new();
    differing("", &strip(old), &strip(new), &mut keys);
    restart.extend(keys.into_iter().map(|k| format!("{k}: needs a restart")));

    let mut actions = Vec::new();
    let mut adds = Vec::new();
    for (bi, (ob, nb)) in old.bonds.iter().zip(&new.bonds).enumerate() {
        let key = format!("bond[{bi}]");
        let old_m: Vec<&str> = ob.member_names().collect();
        let new_m: Vec<&str> = nb.member_names().collect();
        if old_m != new_m && old.forward == Forward::Router {
            restart.push(format!(
                "{key}.members: changing members in router mode needs a restart (the interfaces' ingress is set up at start)"
            ));
            continue;
        }
        if ob.mac.is_none() && nb.mac.is_none() && old_m.first() != new_m.first() {
            restart.push(format!(
                "{key}.members[0]: the bond's MAC is its first member's; a different first member needs a restart (or set {key}.mac)"
            ));
            continue;
        }
        for m in &ob.members {
            match nb.members.iter().find(|n| n.port == m.port) {
                None => actions.push(Action::RemoveMember {
                    bond: bi,
                    port: m.port.clone(),
                }),
                // A new port number is a new LACP port: it leaves and joins again.
                Some(n) if n.lacp_port_number != m.lacp_port_number => {
                    actions.push(Action::RemoveMember {
                        bond: bi,
                        port: m.port.clone(),
                    });
                    adds.push(Action::AddMember {
                        bond: bi,
                        port: m.port.clone(),
                    });
                }
                Some(n) if n.lacp_port_priority != m.lacp_port_priority => {
                    adds.push(Action::MemberPriority {
                        bond: bi,
                        port: m.port.clone(),
                        priority: n.lacp_port_priority,
                    })
                }
                Some(_) => {}
            }
        }
        for (mi, n) in nb.members.iter().enumerate() {
            if ob.has_member(&n.port) {
                continue;
            }
            // The port must have been set up as a possible member at start.
            if !old_plan
                .port_index(&n.port)
                .is_some_and(|p| old_plan.ports[p].spare)
            {
                restart.push(format!(
                    "{key}.members[{mi}]: port {:?} was not a spare port at start (it was a bond member or an endpoint of a pair); making it a member needs a restart",
                    n.port
                ));
                continue;
            }
            adds.push(Action::AddMember {
                bond: bi,
                port: n.port.clone(),
            });
        }
        if ob.lacp != nb.lacp || ob.min_links != nb.min_links {
            actions.push(Action::BondParams { bond: bi });
        }
    }
    actions.extend(adds);
    if old.routes != new.routes {
        actions.push(Action::Routes);
    }
    if old.neighbors != new.neighbors {
        actions.push(Action::Neighbors);
    }
    if restart.is_empty() {
        Ok(actions)
    } else {
        Err(restart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{is_spare, Host};

    const BASE: &str = r#"
[dataplane]
control_core = 0
worker_cores = [1]
hugepages = false

[[port]]
name = "m0"
device = "ring:l0:a"

[[port]]
name = "m1"
device = "ring:l1:a"

[[port]]
name = "m2"
device = "ring:l2:a"

[[port]]
name = "in"
device = "ring:g0:a"

[[bond]]
name = "bond0"
members = ["m0", "m1"]

[forward]
mode = "xconnect"
pairs = [["in", "bond0"]]
"#;

    fn cfg(text: &str) -> Config {
        conf::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn plan(old: &Config, new: &Config) -> Result<Vec<Action>, Vec<String>> {
        let host = Host {
            machine_id: "test".into(),
            pid: 1,
            log: tracing::Level::INFO,
        };
        diff(&Plan::new(old, &host), &Plan::new(new, &host))
    }

    #[test]
    fn unchanged_config_plans_nothing() {
        assert_eq!(plan(&cfg(BASE), &cfg(BASE)), Ok(vec![]));
    }

    #[test]
    fn spare_ports_are_neither_members_nor_endpoints() {
        let c = cfg(BASE);
        assert!(is_spare(&c, "m2"));
        assert!(!is_spare(&c, "m0"));
        assert!(!is_spare(&c, "in"));
    }

    #[test]
    fn adding_a_spare_port_is_hitless() {
        let new = BASE.replace(r#"["m0", "m1"]"#, r#"["m0", "m1", "m2"]"#);
        assert_eq!(
            plan(&cfg(BASE), &cfg(&new)),
            Ok(vec![Action::AddMember {
                bond: 0,
                port: "m2".into()
            }])
        );
        // And back.
        assert_eq!(
            plan(&cfg(&new), &cfg(BASE)),
            Ok(vec![Action::RemoveMember {
                bond: 0,
                port: "m2".into()
            }])
        );
    }

    #[test]
    fn lacp_parameters_are_hitless() {
        let new = BASE.replace(
            "[forward]",
            "[bond.lacp]\nrate = \"slow\"\nactivity = \"passive\"\nsystem_priority = 100\n\n[forward]",
        );
        assert_eq!(
            plan(&cfg(BASE), &cfg(&new)),
            Ok(vec![Action::BondParams { bond: 0 }])
        );
    }

    #[test]
    fn port_priority_change_reaches_every_member() {
        let new = BASE.replace("[forward]", "[bond.lacp]\nport_priority = 7\n\n[forward]");
        let a = plan(&cfg(BASE), &cfg(&new)).unwrap();
        assert!(a.contains(&Action::MemberPriority {
            bond: 0,
            port: "m0".into(),
            priority: 7
        }));
        assert!(a.contains(&Action::MemberPriority {
            bond: 0,
            port: "m1".into(),
            priority: 7
        }));
    }

    #[test]
    fn restart_keys_are_named() {
        let new = BASE
            .replace("worker_cores = [1]", "worker_cores = [2]")
            .replace("device = \"ring:l2:a\"", "device = \"ring:l3:a\"");
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert!(
            e.iter().any(|k| k.starts_with("dataplane.worker_cores:")),
            "{e:?}"
        );
        assert!(e.iter().any(|k| k.starts_with("port[2].device")), "{e:?}");
        let new = BASE.replace(
            "[forward]",
            "[bond.lacp]\nmux = \"independent\"\n\n[forward]",
        );
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert_eq!(e, vec!["bond[0].lacp.mux: needs a restart".to_string()]);
        let new = BASE.replace(
            "[[bond]]\nname = \"bond0\"",
            "[[bond]]\nname = \"bond0\"\nhash = \"layer2\"",
        );
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert_eq!(e, vec!["bond[0].hash: needs a restart".to_string()]);
    }

    #[test]
    fn endpoint_cannot_become_member_and_first_member_is_fixed() {
        let new = BASE.replace(r#"["m0", "m1"]"#, r#"["m2", "m1"]"#);
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert!(e[0].starts_with("bond[0].members[0]"), "{e:?}");
        let new = BASE.replace(r#"["m0", "m1"]"#, r#"["m1", "m0"]"#);
        assert!(plan(&cfg(BASE), &cfg(&new)).is_err());
    }

    #[test]
    fn member_changes_in_router_mode_need_restart_routes_do_not() {
        let router = r#"
[dataplane]
control_core = 0
worker_cores = [1]
hugepages = false

[[port]]
name = "m0"
device = "ring:l0:a"

[[port]]
name = "m1"
device = "ring:l1:a"

[[port]]
name = "lan"
device = "ring:l2:a"

[[bond]]
name = "up"
members = ["m0"]

[[interface]]
name = "wan0"
on = "up"
addresses = ["10.0.1.1/24"]

[[interface]]
name = "lan0"
on = "lan"
addresses = ["10.0.2.1/24"]

[forward]
mode = "router"
"#;
        let c = cfg(router);
        assert!(!is_spare(&c, "m1"), "no spare ports in router mode");
        let more = router.replace(r#"members = ["m0"]"#, r#"members = ["m0", "m1"]"#);
        let e = plan(&c, &cfg(&more)).unwrap_err();
        assert!(
            e[0].starts_with("bond[0].members: changing members in router mode"),
            "{e:?}"
        );
        let route = format!("{router}\n[[route]]\nprefix = \"10.9.0.0/16\"\nvia = \"10.0.2.2\"\n");
        assert_eq!(plan(&c, &cfg(&route)), Ok(vec![Action::Routes]));
        // One hop to ECMP, and a weight changed: both hitless.
        let ecmp = format!("{router}\n[[route]]\nprefix = \"10.9.0.0/16\"\nnexthop = [{{ via = \"10.0.2.2\" }}, {{ via = \"10.0.1.2\" }}]\n");
        assert_eq!(plan(&cfg(&route), &cfg(&ecmp)), Ok(vec![Action::Routes]));
        let weighted = ecmp.replace("10.0.1.2\" }", "10.0.1.2\", weight = 3 }");
        assert_ne!(weighted, ecmp);
        assert_eq!(plan(&cfg(&ecmp), &cfg(&weighted)), Ok(vec![Action::Routes]));
        let neigh = format!("{router}\n[[neighbor]]\ninterface = \"lan0\"\naddress = \"10.0.2.2\"\nmac = \"02:00:00:00:00:22\"\n");
        assert_eq!(plan(&c, &cfg(&neigh)), Ok(vec![Action::Neighbors]));
        let other_mac = neigh.replace("02:00:00:00:00:22", "02:00:00:00:00:23");
        assert_eq!(
            plan(&cfg(&neigh), &cfg(&other_mac)),
            Ok(vec![Action::Neighbors])
        );
        let iface = router.replace("10.0.2.1/24", "10.0.3.1/24");
        let e = plan(&c, &cfg(&iface)).unwrap_err();
        assert_eq!(
            e,
            vec!["interface[1].addresses: needs a restart".to_string()]
        );
    }

    #[test]
    fn ports_list_change_needs_restart() {
        let new = BASE.replace(
            "[[bond]]",
            "[[port]]\nname = \"m3\"\ndevice = \"ring:l3:a\"\n\n[[bond]]",
        );
        let e = plan(&cfg(BASE), &cfg(&new)).unwrap_err();
        assert!(e[0].starts_with("port: "), "{e:?}");
    }
}
