//! DPDK EAL arguments and per-port queue counts from the configuration.

use conf::{Config, Device};

use super::{is_spare, tap_vdev};

/// How chatty DPDK's own logging is, from the operator's `--log-level`.
pub fn dpdk_log_level(level: tracing::Level) -> u8 {
    // DPDK levels: 4 error, 5 warning, 6 notice, 7 info, 8 debug. DPDK's INFO level is
    // dozens of start-up lines, so fastlag's info maps to DPDK's notice.
    match level {
        tracing::Level::ERROR => 4,
        tracing::Level::WARN => 5,
        tracing::Level::INFO => 6,
        tracing::Level::DEBUG => 7,
        tracing::Level::TRACE => 8,
    }
}

/// The EAL arguments for `cfg`. `pid` makes the default file prefix unique, so several
/// fastlag (and other DPDK) processes can run on one machine.
pub fn eal_args(cfg: &Config, pid: u32, log: tracing::Level) -> Vec<String> {
    let dp = &cfg.dataplane;
    let mut args = Vec::new();
    // EAL's main thread is fastlag's main thread: keep it on the control core. Workers are
    // our own threads, pinned explicitly and registered with rte_thread_register.
    args.push(format!("--lcores=0@{}", dp.control_core));
    args.push("--main-lcore=0".to_string());
    let prefix = dp
        .file_prefix
        .clone()
        .unwrap_or_else(|| format!("fastlag-{pid}"));
    args.push(format!("--file-prefix={prefix}"));
    if dp.hugepages {
        // In-memory: no hugepage files or runtime config left behind after exit.
        args.push("--in-memory".to_string());
    } else {
        args.push("--no-huge".to_string());
        args.push("--no-shconf".to_string());
    }
    args.push("-m".to_string());
    args.push(dp.memory_mb.to_string());
    args.push("--no-telemetry".to_string());
    args.push(format!("--log-level={}", dpdk_log_level(log)));
    let mut any_pci = false;
    for p in &cfg.ports {
        match &p.device {
            Device::Pci(addr) => {
                any_pci = true;
                args.push(format!("--allow={addr}"));
            }
            Device::Vdev { spec, .. } => {
                args.push(format!("--vdev={}", with_queue_args(cfg, p, spec)))
            }
            Device::Ring { .. } => {}
        }
    }
    if !any_pci {
        args.push("--no-pci".to_string());
    }
    if cfg.forward == conf::Forward::Router {
        for (i, iface) in cfg.interfaces.iter().enumerate() {
            if iface.tap {
                args.push(format!("--vdev={}", tap_vdev(i, &iface.tap_name)));
            }
        }
    }
    args.extend(dp.eal_args.iter().cloned());
    args
}

/// Queue pairs a port needs: one per worker, plus the control thread's TX queue on
/// 802.3ad members.
pub fn queues_needed(cfg: &Config, port: &conf::Port) -> u16 {
    cfg.dataplane.worker_cores.len() as u16 + control_queue(cfg, port) as u16
}

/// Whether the control thread has a TX queue of its own on `port`: on 802.3ad members
/// (LACPDUs) and, in router mode, on every port (what the kernel sends through the TAPs);
/// also on spare ports, which a reload may make 802.3ad members.
pub fn control_queue(cfg: &Config, port: &conf::Port) -> bool {
    (cfg.forward == conf::Forward::Router && carries_a_tap(cfg, port))
        || is_spare(cfg, &port.name)
        || cfg
            .bond_of(&port.name)
            .is_some_and(|b| b.mode == conf::BondMode::Lacp)
}

/// Router mode: whether an interface with a kernel TAP sits on `port` or on its bond (what
/// the kernel sends there leaves through the control thread's queue).
fn carries_a_tap(cfg: &Config, port: &conf::Port) -> bool {
    let bond = cfg.bond_of(&port.name).map(|b| b.name.as_str());
    cfg.interfaces
        .iter()
        .any(|i| i.tap && (i.on == port.name || Some(i.on.as_str()) == bond))
}

/// RX queues to configure on a port: one per worker, except on PMDs whose queue count is
/// fixed at creation and couples RX with TX (af_packet's `qpairs`: one socket per pair,
/// and the kernel spreads received frames over every socket), where every queue must be
/// configured and polled.
pub fn rx_queues_needed(cfg: &Config, port: &conf::Port) -> u16 {
    let workers = cfg.dataplane.worker_cores.len() as u16;
    match &port.device {
        Device::Vdev { spec, name } if name.starts_with("net_af_packet") => {
            let spec = with_queue_args(cfg, port, spec);
            let qpairs = spec
                .split(',')
                .skip(1)
                .find_map(|kv| kv.strip_prefix("qpairs=")?.parse::<u16>().ok())
                .unwrap_or(1);
            qpairs.max(workers)
        }
        _ => workers,
    }
}

/// Some PMDs fix their queue count at creation from a device argument (af_packet's
/// `qpairs`, virtio-user's `queues`). Unless the operator set it, ask for what the port
/// needs, so a bond member gets its control queue without extra configuration.
fn with_queue_args(cfg: &Config, port: &conf::Port, spec: &str) -> String {
    let need = queues_needed(cfg, port);
    let has = |key: &str| {
        spec.split(',')
            .skip(1)
            .any(|kv| kv.starts_with(&format!("{key}=")))
    };
    let name = spec.split(',').next().unwrap_or_default();
    let key = if name.starts_with("net_af_packet") {
        "qpairs"
    } else if name.starts_with("net_virtio_user") {
        "queues"
    } else {
        return spec.to_string();
    };
    if need > 1 && !has(key) {
        format!("{spec},{key}={need}")
    } else {
        spec.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[dataplane]
control_core = 0
worker_cores = [1]
hugepages = false
[[port]]
name = "p0"
device = "net_memif0,role=server,socket=/tmp/x.sock"
[[port]]
name = "p1"
device = "ring:l1:a"
[forward]
mode = "xconnect"
pairs = [["p0", "p1"]]
"#;

    #[test]
    fn no_huge_virtual_devices() {
        let cfg = conf::parse(BASE, "t.toml").unwrap();
        let a = eal_args(&cfg, 42, tracing::Level::INFO);
        assert!(a.contains(&"--no-huge".to_string()));
        assert!(a.contains(&"--no-shconf".to_string()));
        assert!(a.contains(&"--no-pci".to_string()));
        assert!(a.contains(&"--file-prefix=fastlag-42".to_string()));
        assert!(a.contains(&"--vdev=net_memif0,role=server,socket=/tmp/x.sock".to_string()));
        assert!(a.contains(&"--lcores=0@0".to_string()));
        assert!(
            !a.iter().any(|x| x.contains("ring")),
            "ring links are made in-process"
        );
    }

    #[test]
    fn queue_device_arguments_for_bond_members() {
        let text = r#"
[dataplane]
control_core = 0
worker_cores = [1]
[[port]]
name = "m0"
device = "net_af_packet0,iface=veth0"
[[port]]
name = "m1"
device = "net_virtio_user0,path=/tmp/vh.sock"
[[port]]
name = "m2"
device = "net_af_packet2,iface=veth2,qpairs=4"
[[port]]
name = "p"
device = "net_af_packet1,iface=veth1"
[[bond]]
name = "b"
members = ["m0", "m1", "m2"]
[forward]
mode = "xconnect"
pairs = [["p", "b"]]
"#;
        let cfg = conf::parse(text, "t.toml").unwrap();
        let a = eal_args(&cfg, 1, tracing::Level::INFO);
        assert!(
            a.contains(&"--vdev=net_af_packet0,iface=veth0,qpairs=2".to_string()),
            "{a:?}"
        );
        assert!(a.contains(&"--vdev=net_virtio_user0,path=/tmp/vh.sock,queues=2".to_string()));
        assert!(
            a.contains(&"--vdev=net_af_packet2,iface=veth2,qpairs=4".to_string()),
            "operator's value kept"
        );
        assert!(
            a.contains(&"--vdev=net_af_packet1,iface=veth1".to_string()),
            "one worker, no bond: 1 queue"
        );
    }

    #[test]
    fn hugepages_and_pci() {
        let text = BASE
            .replace(
                "hugepages = false",
                "hugepages = true\nfile_prefix = \"gw\"",
            )
            .replace("net_memif0,role=server,socket=/tmp/x.sock", "0000:03:00.1");
        let cfg = conf::parse(&text, "t.toml").unwrap();
        let a = eal_args(&cfg, 42, tracing::Level::WARN);
        assert!(a.contains(&"--in-memory".to_string()));
        assert!(!a.contains(&"--no-huge".to_string()));
        assert!(!a.contains(&"--no-pci".to_string()));
        assert!(a.contains(&"--allow=0000:03:00.1".to_string()));
        assert!(a.contains(&"--file-prefix=gw".to_string()));
        assert!(a.contains(&"--log-level=5".to_string()));
    }
}
