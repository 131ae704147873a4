//! Every shipped configuration `conf/*.toml` loads, and says what it claims to.

use std::fs;
use std::path::{Path, PathBuf};

use conf::{BondMode, Device, Endpoint, Forward};

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("crate dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> conf::Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    conf::load(&path).unwrap_or_else(|e| panic!("{name} must load:\n{e}"))
}

#[test]
fn every_shipped_config_loads() {
    let files = shipped();
    assert!(
        files.len() >= 5,
        "expected the shipped configs, found {files:?}"
    );
    for file in files {
        match conf::load(&file) {
            Ok(config) => assert!(!config.summary().is_empty()),
            Err(e) => panic!("{} must load:\n{e}", file.display()),
        }
    }
}

#[test]
fn default_is_two_bonds_back_to_back_on_rings_without_hugepages() {
    let config = load("default.toml");
    assert_eq!(config, conf::default_config().expect("embedded default"));
    assert!(!config.dataplane.hugepages);
    assert_eq!(config.dataplane.control_core, 0);
    assert_eq!(config.dataplane.worker_cores, vec![1]);
    // Two 802.3ad bonds whose members are the two ends of the same links.
    assert_eq!(config.bonds.len(), 2);
    for b in &config.bonds {
        assert_eq!(b.mode, conf::BondMode::Lacp);
        assert_eq!(b.members.len(), 2);
    }
    let a0 = config.port("a0").unwrap();
    assert_eq!(config.ring_peer(a0).map(|p| p.name.as_str()), Some("b0"));
    // Traffic ports whose far ends belong to the built-in generator.
    for name in ["in", "out"] {
        let p = config.port(name).unwrap();
        assert!(matches!(
            p.device,
            Device::Ring {
                end: conf::RingEnd::A,
                ..
            }
        ));
        assert!(config.ring_peer(p).is_none());
    }
    assert_eq!(
        config.forward,
        Forward::Xconnect {
            pairs: vec![
                ("in".into(), "bondA".into()),
                ("bondB".into(), "out".into())
            ]
        }
    );
    assert!(config.summary().contains("built-in generator"));
}

#[test]
fn memif_example_uses_memif_servers_without_hugepages() {
    let config = load("xconnect-memif.toml");
    assert!(!config.dataplane.hugepages);
    for port in &config.ports {
        match &port.device {
            Device::Vdev { name, spec } => {
                assert!(name.starts_with("net_memif"));
                assert!(spec.contains("role=server"));
                assert!(spec.contains("socket=/tmp/fastlag/"));
            }
            other => panic!("expected a memif vdev, got {other}"),
        }
    }
}

#[test]
fn pci_example_is_production_style() {
    let config = load("xconnect-pci.toml");
    assert!(config.dataplane.hugepages);
    assert_eq!(config.dataplane.workers(), 2);
    assert_eq!(config.ports.len(), 2);
    assert!(config
        .ports
        .iter()
        .all(|p| matches!(p.device, Device::Pci(_)) && p.queues == 2));
}

#[test]
fn lacp_example_shows_every_knob() {
    let config = load("bond-lacp.toml");
    assert!(config.bonds.iter().all(|b| b.mode == BondMode::Lacp));
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("bond-lacp.toml"))
        .expect("readable");
    for knob in [
        "activity",
        "rate",
        "system_priority",
        "system_id",
        "key",
        "port_priority",
        "max_active",
        "selection",
        "fallback",
        "mux",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{knob} = "))),
            "bond-lacp.toml must show {knob}"
        );
    }
    let bond1 = config.bond("bond1").expect("bond1");
    assert_eq!(bond1.lacp.as_ref().map(|l| l.key), Some(2));
    assert!(matches!(config.endpoint("bond0"), Some(Endpoint::Bond(_))));
}

#[test]
fn router_example_has_vlans_addresses_and_routes() {
    let config = load("router.toml");
    assert_eq!(config.forward, Forward::Router);
    assert!(config.interfaces.iter().any(|i| i.vlan.is_some()));
    assert!(config
        .interfaces
        .iter()
        .flat_map(|i| &i.addresses)
        .any(|a| a.is_ipv4()));
    assert!(config
        .interfaces
        .iter()
        .flat_map(|i| &i.addresses)
        .any(|a| !a.is_ipv4()));
    assert!(!config.routes.is_empty());
    assert!(config.management.metrics.is_some());
}

#[test]
fn configs_serialize_for_the_management_api() {
    for file in shipped() {
        let config = conf::load(&file).expect("loads");
        let text = toml::to_string(&config)
            .unwrap_or_else(|e| panic!("{} must serialize: {e}", file.display()));
        assert!(text.contains("[dataplane]"), "{text}");
        assert!(text.contains("mode = "), "{text}");
    }
}
