//! One test (at least) per validation rule: each builds a configuration that breaks exactly
//! that rule and checks the diagnostic's key path, message and line. A line ending in `#!`
//! marks where the diagnostic must point.

use conf::{
    BondMode, Config, Device, Diagnostic, Duplex, Fallback, Forward, HashPolicy, LacpActivity,
    LacpRate, MuxMode, Selection,
};

const DP: &str = "[dataplane]\ncontrol_core = 0\nworker_cores = [1]\nhugepages = false\n";
const PORTS: &str =
    "\n[[port]]\nname = \"p0\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"p1\"\ndevice = \"ring:l1:a\"\n";
const XC: &str = "\n[forward]\nmode = \"xconnect\"\npairs = [[\"p0\", \"p1\"]]\n";
const ROUTER: &str = "\n[forward]\nmode = \"router\"\n";

fn port(name: &str, device: &str, extra: &str) -> String {
    format!("\n[[port]]\nname = \"{name}\"\ndevice = \"{device}\"\n{extra}")
}

/// A valid document: dataplane (plus `dp`), ports p0/p1, `body`, xconnect p0<->p1.
fn xc(dp: &str, body: &str) -> String {
    format!("{DP}{dp}\n{PORTS}{body}{XC}")
}

/// Ports p0..p3 on rings, `body`, then `forward`.
fn four(body: &str, forward: &str) -> String {
    let mut text = DP.to_owned();
    for i in 0..4 {
        text.push_str(&port(&format!("p{i}"), &format!("ring:l{i}:a"), ""));
    }
    text.push_str(body);
    text.push_str(forward);
    text
}

/// Router mode: p0/p1, `body` (interfaces, routes), `[forward] mode = "router"`.
fn router(body: &str) -> String {
    format!("{DP}{PORTS}{body}{ROUTER}")
}

#[track_caller]
fn ok(text: &str) -> Config {
    conf::parse(text, "t.toml").unwrap_or_else(|e| panic!("must be valid:\n{e}\n---\n{text}"))
}

#[track_caller]
fn errors(text: &str) -> Vec<Diagnostic> {
    match conf::parse(text, "t.toml") {
        Ok(_) => panic!("must be rejected:\n{text}"),
        Err(e) => e.diagnostics,
    }
}

/// Asserts a diagnostic at `key_path` whose message contains `needle`, on the `#!` line if any.
#[track_caller]
fn err(text: &str, key_path: &str, needle: &str) -> Diagnostic {
    let all = errors(text);
    let marker = text.lines().position(|l| l.contains("#!")).map(|i| i + 1);
    let listing = all
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let found = all
        .iter()
        .find(|d| d.key_path == key_path && d.message.contains(needle))
        .unwrap_or_else(|| {
            panic!("no diagnostic at {key_path} containing {needle:?}; got:\n{listing}")
        })
        .clone();
    if let Some(line) = marker {
        assert_eq!(found.line, line, "wrong line for {found}\n---\n{text}");
    }
    found
}

// ------------------------------------------------------------------ shape and reporting

#[test]
fn valid_minimal_config_gets_all_defaults() {
    let c = ok(&xc("", ""));
    let dp = &c.dataplane;
    assert_eq!(
        (dp.memory_mb, dp.mbufs, dp.mbuf_cache, dp.burst),
        (256, 16383, 256, 32)
    );
    assert_eq!(dp.file_prefix, None);
    assert_eq!(dp.stats_interval_s, 0);
    assert!(dp.eal_args.is_empty());
    let p = c.port("p0").expect("p0");
    assert_eq!(
        (p.queues, p.rx_descriptors, p.tx_descriptors, p.mtu),
        (1, 1024, 1024, 1500)
    );
    assert_eq!((p.speed_mbps, p.duplex, p.mac), (None, None, None));
    assert_eq!(
        c.management.socket.to_str(),
        Some("/run/fastlag/fastlag.sock")
    );
    assert_eq!(c.management.metrics, None);
}

#[test]
fn hugepages_default_to_on() {
    let text = "[dataplane]\ncontrol_core = 0\nworker_cores = [1]\n".to_owned() + PORTS + XC;
    assert!(ok(&text).dataplane.hugepages);
}

#[test]
fn type_errors_name_the_expected_range() {
    let d = err(&xc("burst = \"32\" #!", ""), "dataplane.burst", "");
    assert_eq!(
        d.to_string(),
        "t.toml:5:9: dataplane.burst: invalid type: string \"32\", expected an integer 1..=512"
    );
}

#[test]
fn unknown_keys_are_rejected_with_a_suggestion() {
    let d = err(
        &xc("bursts = 32 #!", ""),
        "dataplane.bursts",
        "unknown field `bursts`",
    );
    assert!(d.message.contains("did you mean `burst`?"), "{d}");
    assert_eq!(d.column, 1);
    err("unknown = 1 #!\n", "unknown", "unknown field `unknown`");
    err(
        &xc("", &port("p2", "ring:l2:a", "speeed = \"1G\" #!\n")),
        "port[2].speeed",
        "did you mean `speed`?",
    );
}

#[test]
fn single_bracket_array_tables_get_a_hint() {
    let text = format!("{DP}\n[port] #!\nname = \"p0\"\ndevice = \"ring:l0:a\"\n");
    err(&text, "port", "double brackets, like [[port]]");
}

#[test]
fn syntax_errors_point_at_the_line() {
    let d = err(
        &xc("file_prefix = \"x #!", ""),
        "dataplane.file_prefix",
        "TOML syntax error",
    );
    assert!(d.column > 1);
    err(
        &xc("burst = 1\nburst = 2 #!", ""),
        "dataplane.burst",
        "duplicate key",
    );
}

#[test]
fn all_semantic_errors_are_reported_in_file_order() {
    let text = xc(
        "burst = 0\nmemory_mb = 0",
        &port("p2", "ring:l0:c", "mtu = 10\n"),
    );
    let all = errors(&text);
    let paths: Vec<&str> = all.iter().map(|d| d.key_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "dataplane.burst",
            "dataplane.memory_mb",
            "port[2].device",
            "port[2].mtu"
        ]
    );
    assert!(all.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn display_has_file_line_column_and_key() {
    let e = conf::parse(&xc("burst = 0", ""), "conf/x.toml").expect_err("invalid");
    assert_eq!(
        e.to_string(),
        "conf/x.toml:5:9: dataplane.burst: 0 is out of range; expected an integer 1..=512"
    );
}

#[test]
fn empty_document_lists_every_missing_section() {
    let all = errors("");
    let paths: Vec<&str> = all.iter().map(|d| d.key_path.as_str()).collect();
    assert_eq!(paths, ["dataplane", "forward", "port"]);
    assert!(all.iter().all(|d| (d.line, d.column) == (1, 1)));
}

// ------------------------------------------------------------------ [dataplane]

#[test]
fn dataplane_section_is_required() {
    let text = format!("{PORTS}{XC}");
    err(&text, "dataplane", "missing required section [dataplane]");
}

#[test]
fn control_core_is_required() {
    let text = format!("[dataplane] #!\nworker_cores = [1]\n{PORTS}{XC}");
    err(
        &text,
        "dataplane.control_core",
        "missing required key `control_core`",
    );
}

#[test]
fn worker_cores_are_required_and_not_empty() {
    let text = format!("[dataplane] #!\ncontrol_core = 0\n{PORTS}{XC}");
    err(
        &text,
        "dataplane.worker_cores",
        "missing required key `worker_cores`",
    );
    let text = format!("[dataplane]\ncontrol_core = 0\nworker_cores = [] #!\n{PORTS}{XC}");
    err(&text, "dataplane.worker_cores", "worker_cores is empty");
}

#[test]
fn worker_cores_are_distinct() {
    let text = format!("[dataplane]\ncontrol_core = 0\nworker_cores = [1, 2, 1] #!\n{PORTS}{XC}");
    err(
        &text,
        "dataplane.worker_cores[2]",
        "CPU 1 is listed twice (also worker_cores[0])",
    );
}

#[test]
fn control_core_is_not_a_worker() {
    let text = format!("[dataplane]\ncontrol_core = 3\nworker_cores = [1, 3] #!\n{PORTS}{XC}");
    err(
        &text,
        "dataplane.worker_cores[1]",
        "CPU 3 is also dataplane.control_core",
    );
}

#[test]
fn core_ids_are_range_checked() {
    let text = format!("[dataplane]\ncontrol_core = 5000 #!\nworker_cores = [1]\n{PORTS}{XC}");
    err(
        &text,
        "dataplane.control_core",
        "expected an integer 0..=1023",
    );
    let text = format!("[dataplane]\ncontrol_core = 0\nworker_cores = [-1] #!\n{PORTS}{XC}");
    err(&text, "dataplane.worker_cores[0]", "-1 is out of range");
}

#[test]
fn scalar_dataplane_ranges() {
    err(
        &xc("memory_mb = 0 #!", ""),
        "dataplane.memory_mb",
        "expected an integer 1..=1048576",
    );
    err(
        &xc("burst = 513 #!", ""),
        "dataplane.burst",
        "expected an integer 1..=512",
    );
    err(
        &xc("mbuf_cache = 513 #!", ""),
        "dataplane.mbuf_cache",
        "expected an integer 0..=512",
    );
    err(
        &xc("stats_interval_s = -5 #!", ""),
        "dataplane.stats_interval_s",
        "0..=86400",
    );
    err(&xc("mbufs = 0 #!", ""), "dataplane.mbufs", "out of range");
    let c = ok(&xc(
        // 16383 mbufs need about 66 MiB (each takes a 4 KiB page): 64 fails in DPDK.
        "burst = 512\nstats_interval_s = 10\nmemory_mb = 96",
        "",
    ));
    assert_eq!((c.dataplane.burst, c.dataplane.stats_interval_s), (512, 10));
}

#[test]
fn mbuf_cache_is_at_most_mbufs_over_one_and_a_half() {
    let d = err(
        &xc("mbufs = 600\nmbuf_cache = 512 #!", ""),
        "dataplane.mbuf_cache",
        "too large for mbufs = 600",
    );
    assert!(d.message.contains("400"), "{d}");
}

#[test]
fn mbufs_cover_rings_bursts_and_headroom() {
    // 2 ports x 1 queue x 2048 + 1 x 32 x 2 x 2 + 1024 = 5248.
    let d = err(
        &xc("mbufs = 5247 #!\nmbuf_cache = 0", ""),
        "dataplane.mbufs",
        "at least 5248 are needed",
    );
    assert!(d.message.contains("set mbufs = 5248 or more"), "{d}");
    ok(&xc("mbufs = 5248\nmbuf_cache = 0", ""));
    // Queues follow the workers: 2 x 2 x (4096 + 4096) + 2 x 64 x 2 x 2 + 1024 = 34304.
    let text = format!(
        "[dataplane]\ncontrol_core = 0\nworker_cores = [1, 2]\nburst = 64\n{}{}{XC}",
        port(
            "p0",
            "ring:l0:a",
            "rx_descriptors = 4096\ntx_descriptors = 4096\n"
        ),
        port(
            "p1",
            "ring:l1:a",
            "rx_descriptors = 4096\ntx_descriptors = 4096\n"
        ),
    );
    err(&text, "dataplane.mbufs", "at least 34304 are needed");
}

#[test]
fn eal_args_we_set_ourselves_are_rejected() {
    for (arg, instead) in [
        ("-l", "dataplane.control_core and dataplane.worker_cores"),
        ("-l1-3", "dataplane.worker_cores"),
        ("--lcores", "dataplane.worker_cores"),
        ("--lcores=1@2", "dataplane.worker_cores"),
        ("-c", "dataplane.worker_cores"),
        ("--main-lcore", "dataplane.control_core"),
        ("--master-lcore=0", "dataplane.control_core"),
        ("--file-prefix", "dataplane.file_prefix"),
        ("--file-prefix=x", "dataplane.file_prefix"),
        ("--vdev", "device = \"net_"),
        ("--vdev=net_tap0", "device = \"net_"),
        ("-a", "PCI address"),
        ("-a0000:03:00.0", "PCI address"),
        ("--allow", "PCI address"),
        ("--no-huge", "dataplane.hugepages = false"),
        ("-m", "dataplane.memory_mb"),
        ("-m512", "dataplane.memory_mb"),
        ("--socket-mem=512", "dataplane.memory_mb"),
    ] {
        let text = xc(&format!("eal_args = [\"--log-level=8\", \"{arg}\"] #!"), "");
        err(&text, "dataplane.eal_args[1]", instead);
    }
    let c = ok(&xc(
        "eal_args = [\"--log-level=8\", \"--in-memory\", \"--iova-mode=va\", \"-d\", \"/usr/lib/dpdk\", \"--lcores-x\"]",
        "",
    ));
    assert_eq!(c.dataplane.eal_args.len(), 6);
}

#[test]
fn file_prefix_characters() {
    err(
        &xc("file_prefix = \"a/b\" #!", ""),
        "dataplane.file_prefix",
        "not a valid file prefix",
    );
    err(
        &xc("file_prefix = \"\" #!", ""),
        "dataplane.file_prefix",
        "not a valid file prefix",
    );
    let c = ok(&xc("file_prefix = \"fl_A-1\"", ""));
    assert_eq!(c.dataplane.file_prefix.as_deref(), Some("fl_A-1"));
}

// ------------------------------------------------------------------ [[port]]

#[test]
fn at_least_one_port() {
    let text = format!("{DP}{XC}");
    err(&text, "port", "no [[port]] is defined");
}

#[test]
fn port_name_is_required_and_well_formed() {
    let text = xc("", "\n[[port]] #!\ndevice = \"ring:l2:a\"\n");
    err(&text, "port[2].name", "missing required key `name`");
    for bad in ["2p", "", "p 0", "p/0", "abcdefghijklmnop", "é"] {
        let text = xc(
            "",
            &format!("\n[[port]]\nname = {bad:?} #!\ndevice = \"ring:l2:a\"\n"),
        );
        err(&text, "port[2].name", "is not a valid port name");
    }
    ok(&xc("", &port("A.b_c-d12345678", "ring:l2:a", "")));
}

#[test]
fn port_device_is_required_and_parsed() {
    let text = xc("", "\n[[port]] #!\nname = \"p2\"\n");
    err(&text, "port[2].device", "missing required key `device`");
    let text = xc(
        "",
        &port("p2", "eth0", "").replace("\"eth0\"", "\"eth0\" #!"),
    );
    err(&text, "port[2].device", "is not a device");
}

#[test]
fn device_kinds_are_modelled() {
    let text = xc(
        "",
        &(port("p2", "03:00.1", "") + &port("p3", "net_af_packet0,iface=veth0", "")),
    );
    let c = ok(&text);
    let p2 = c.port("p2").expect("p2");
    assert_eq!(p2.device.to_string(), "0000:03:00.1");
    match &c.port("p3").expect("p3").device {
        Device::Vdev { spec, name } => {
            assert_eq!(name, "net_af_packet0");
            assert_eq!(spec, "net_af_packet0,iface=veth0");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_ports_cannot_share_a_device() {
    let text = xc(
        "",
        &(port("p2", "0000:03:00.0", "")
            + &port("p3", "03:00.0", "").replace("\"03:00.0\"", "\"03:00.0\" #!")),
    );
    err(
        &text,
        "port[3].device",
        "device 0000:03:00.0 is already used by port p2",
    );
    let text = xc(
        "",
        &(port("p2", "net_tap0", "")
            + &port("p3", "net_tap0,iface=x", "").replace("x\"", "x\" #!")),
    );
    err(
        &text,
        "port[3].device",
        "vdev name \"net_tap0\" is already used by port p2",
    );
}

#[test]
fn ring_links_have_at_most_one_end_of_each_kind() {
    let text = xc(
        "",
        &port("p2", "ring:l0:a", "").replace("l0:a\"", "l0:a\" #!"),
    );
    let d = err(
        &text,
        "port[2].device",
        "ring link \"l0\" already has its A end on port p0",
    );
    assert!(d.message.contains("ring:l0:b"), "{d}");
    // One a and one b on the same link are joined back to back.
    let c = ok(&xc("", &port("p2", "ring:l0:b", "")));
    let p0 = c.port("p0").expect("p0");
    assert_eq!(c.ring_peer(p0).map(|p| p.name.as_str()), Some("p2"));
    // A link with a single end is completed by the generator.
    assert_eq!(c.ring_peer(c.port("p1").expect("p1")), None);
}

#[test]
fn ring_end_must_be_a_or_b() {
    let text = xc("", &port("p2", "ring:l2:c", "").replace("c\"", "c\" #!"));
    err(&text, "port[2].device", "the end must be \"a\" or \"b\"");
}

#[test]
fn queues_equal_the_number_of_workers() {
    let text = xc("", &port("p2", "ring:l2:a", "queues = 2 #!\n"));
    err(
        &text,
        "port[2].queues",
        "queues = 2 does not match the 1 worker(s)",
    );
    let text = format!(
        "[dataplane]\ncontrol_core = 0\nworker_cores = [1, 2, 3]\n{}{}{XC}",
        port("p0", "ring:l0:a", "queues = 3\n"),
        port("p1", "ring:l1:a", "")
    );
    let c = ok(&text);
    assert!(c.ports.iter().all(|p| p.queues == 3));
}

#[test]
fn descriptors_are_powers_of_two_in_range() {
    let text = xc("", &port("p2", "ring:l2:a", "tx_descriptors = 1000 #!\n"));
    err(
        &text,
        "port[2].tx_descriptors",
        "not a power of two; use 512 or 1024",
    );
    let text = xc("", &port("p2", "ring:l2:a", "rx_descriptors = 32 #!\n"));
    err(
        &text,
        "port[2].rx_descriptors",
        "expected an integer 64..=16384",
    );
    let text = xc("", &port("p2", "ring:l2:a", "rx_descriptors = 32768 #!\n"));
    err(&text, "port[2].rx_descriptors", "out of range");
    // 65535 mbufs take 256 MiB in 4 KiB pages: more than the default memory_mb.
    let c = ok(&xc(
        "mbufs = 65535\nmemory_mb = 320",
        &port(
            "p2",
            "ring:l2:a",
            "rx_descriptors = 64\ntx_descriptors = 16384\n",
        ),
    ));
    let p2 = c.port("p2").expect("p2");
    assert_eq!((p2.rx_descriptors, p2.tx_descriptors), (64, 16384));
}

#[test]
fn mtu_range() {
    err(
        &xc("", &port("p2", "ring:l2:a", "mtu = 67 #!\n")),
        "port[2].mtu",
        "68..=9600",
    );
    err(
        &xc("", &port("p2", "ring:l2:a", "mtu = 9601 #!\n")),
        "port[2].mtu",
        "68..=9600",
    );
    ok(&xc("", &port("p2", "ring:l2:a", "mtu = 9600\n")));
}

#[test]
fn speed_and_duplex_overrides() {
    let c = ok(&xc(
        "",
        &port("p2", "ring:l2:a", "speed = \"2.5G\"\nduplex = \"half\"\n"),
    ));
    let p2 = c.port("p2").expect("p2");
    assert_eq!((p2.speed_mbps, p2.duplex), (Some(2500), Some(Duplex::Half)));
    for (speed, mbps) in [("10M", 10), ("100G", 100_000), ("400G", 400_000)] {
        let c = ok(&xc(
            "",
            &port("p2", "ring:l2:a", &format!("speed = \"{speed}\"\n")),
        ));
        assert_eq!(c.port("p2").and_then(|p| p.speed_mbps), Some(mbps));
    }
    err(
        &xc("", &port("p2", "ring:l2:a", "speed = \"10Gbps\" #!\n")),
        "port[2].speed",
        "is not a speed; use one of \"10M\"",
    );
    err(
        &xc("", &port("p2", "ring:l2:a", "speed = 10000 #!\n")),
        "port[2].speed",
        "expected a speed",
    );
    err(
        &xc("", &port("p2", "ring:l2:a", "duplex = \"auto\" #!\n")),
        "port[2].duplex",
        "use one of \"full\", \"half\"",
    );
}

#[test]
fn port_mac_is_unicast_and_not_zero() {
    err(
        &xc(
            "",
            &port("p2", "ring:l2:a", "mac = \"00:00:00:00:00:00\" #!\n"),
        ),
        "port[2].mac",
        "all zeros",
    );
    err(
        &xc(
            "",
            &port("p2", "ring:l2:a", "mac = \"03:00:00:00:00:01\" #!\n"),
        ),
        "port[2].mac",
        "multicast",
    );
    err(
        &xc(
            "",
            &port("p2", "ring:l2:a", "mac = \"02:00:00:00:01\" #!\n"),
        ),
        "port[2].mac",
        "is not a MAC address",
    );
    let c = ok(&xc(
        "",
        &port("p2", "ring:l2:a", "mac = \"02:AA:00:00:00:01\"\n"),
    ));
    assert_eq!(
        c.port("p2")
            .and_then(|p| p.mac)
            .map(|m| m.to_string())
            .as_deref(),
        Some("02:aa:00:00:00:01")
    );
}

#[test]
fn port_macs_are_unique() {
    let text = xc(
        "",
        &(port("p2", "ring:l2:a", "mac = \"02:00:00:00:00:01\"\n")
            + &port("p3", "ring:l3:a", "mac = \"02:00:00:00:00:01\" #!\n")),
    );
    err(&text, "port[3].mac", "is also configured on port p2");
}

#[test]
fn lacp_port_keys_only_on_lacp_members() {
    let text = xc("", &port("p2", "ring:l2:a", "lacp_port_priority = 1 #!\n"));
    let d = err(
        &text,
        "port[2].lacp_port_priority",
        "only to members of an 802.3ad bond",
    );
    assert_eq!(d.column, 1);
    let text = four(
        "\n[[bond]]\nname = \"b0\"\nmode = \"balance-xor\"\nmembers = [\"p0\", \"p1\"]\n",
        "\n[forward]\nmode = \"xconnect\"\npairs = [[\"b0\", \"p2\"]]\n",
    )
    .replace(
        "name = \"p1\"\ndevice = \"ring:l1:a\"\n",
        "name = \"p1\"\ndevice = \"ring:l1:a\"\nlacp_port_number = 4 #!\n",
    );
    err(
        &text,
        "port[1].lacp_port_number",
        "only to members of an 802.3ad bond",
    );
    let text = xc("", &port("p2", "ring:l2:a", "lacp_port_number = 0 #!\n"));
    err(
        &text,
        "port[2].lacp_port_number",
        "expected an integer 1..=65535",
    );
}

// ------------------------------------------------------------------ [[bond]]

const PAIR_B0_P2: &str = "\n[forward]\nmode = \"xconnect\"\npairs = [[\"bond0\", \"p2\"]]\n";

fn bond(body: &str) -> String {
    four(&format!("\n[[bond]]\nname = \"bond0\"\n{body}"), PAIR_B0_P2)
}

#[test]
fn bond_defaults_are_802_3ad_with_lacp_defaults() {
    let c = ok(&bond("members = [\"p0\", \"p1\"]\n"));
    let b = c.bond("bond0").expect("bond0");
    assert_eq!(b.mode, BondMode::Lacp);
    assert_eq!(b.hash, HashPolicy::Layer23);
    assert_eq!(b.min_links, 1);
    assert_eq!(b.mac, None);
    let l = b.lacp.as_ref().expect("lacp defaults");
    assert_eq!((l.activity, l.rate), (LacpActivity::Active, LacpRate::Fast));
    assert_eq!(
        (l.system_priority, l.system_id, l.key, l.port_priority),
        (65535, None, 1, 255)
    );
    assert_eq!(l.max_active, None);
    assert_eq!(
        (l.selection, l.fallback, l.mux),
        (Selection::Stable, Fallback::None, MuxMode::Coupled)
    );
    let numbers: Vec<(&str, u16, u16)> = b
        .members
        .iter()
        .map(|m| (m.port.as_str(), m.lacp_port_number, m.lacp_port_priority))
        .collect();
    assert_eq!(numbers, [("p0", 1, 255), ("p1", 2, 255)]);
    assert_eq!(c.bond_of("p1").map(|b| b.name.as_str()), Some("bond0"));
    assert!(matches!(c.endpoint("bond0"), Some(conf::Endpoint::Bond(_))));
    assert!(matches!(c.endpoint("p2"), Some(conf::Endpoint::Port(_))));
    assert!(c.endpoint("nope").is_none());
}

#[test]
fn every_lacp_knob_is_read() {
    let c = ok(&bond(
        "members = [\"p0\", \"p1\"]\nmin_links = 2\nmac = \"02:00:00:00:01:00\"\nhash = \"layer3+4\"\n[bond.lacp]\nactivity = \"passive\"\nrate = \"slow\"\nsystem_priority = 1\nsystem_id = \"02:00:00:00:02:00\"\nkey = 77\nport_priority = 7\nmax_active = 2\nselection = \"bandwidth\"\nfallback = \"individual\"\nmux = \"independent\"\n",
    ));
    let b = c.bond("bond0").expect("bond0");
    assert_eq!((b.hash, b.min_links), (HashPolicy::Layer34, 2));
    assert_eq!(
        b.mac.map(|m| m.to_string()).as_deref(),
        Some("02:00:00:00:01:00")
    );
    let l = b.lacp.as_ref().expect("lacp");
    assert_eq!(
        (l.activity, l.rate),
        (LacpActivity::Passive, LacpRate::Slow)
    );
    assert_eq!(
        (l.system_priority, l.key, l.port_priority, l.max_active),
        (1, 77, 7, Some(2))
    );
    assert_eq!(
        l.system_id.map(|m| m.to_string()).as_deref(),
        Some("02:00:00:00:02:00")
    );
    assert_eq!(
        (l.selection, l.fallback, l.mux),
        (
            Selection::Bandwidth,
            Fallback::Individual,
            MuxMode::Independent
        )
    );
    assert!(b.members.iter().all(|m| m.lacp_port_priority == 7));
    let c = ok(&bond(
        "members = [\"p0\"]\n[bond.lacp]\nselection = \"count\"\n",
    ));
    assert_eq!(
        c.bonds[0].lacp.as_ref().map(|l| l.selection),
        Some(Selection::Count)
    );
}

#[test]
fn lacp_keywords_and_ranges_are_checked() {
    for (line, path, needle) in [
        (
            "activity = \"on\"",
            "activity",
            "use one of \"active\", \"passive\"",
        ),
        ("rate = \"medium\"", "rate", "use one of \"fast\", \"slow\""),
        (
            "selection = \"best\"",
            "selection",
            "\"stable\", \"bandwidth\", \"count\"",
        ),
        ("fallback = \"yes\"", "fallback", "\"none\", \"individual\""),
        ("mux = \"x\"", "mux", "\"coupled\", \"independent\""),
        ("system_priority = 0", "system_priority", "1..=65535"),
        ("key = 0", "key", "1..=65535"),
        ("key = 65536", "key", "1..=65535"),
        ("port_priority = 65536", "port_priority", "0..=65535"),
        (
            "system_id = \"01:80:c2:00:00:02\"",
            "system_id",
            "multicast",
        ),
        (
            "system_id = \"00:00:00:00:00:00\"",
            "system_id",
            "all zeros",
        ),
    ] {
        let text = bond(&format!(
            "members = [\"p0\", \"p1\"]\n[bond.lacp]\n{line} #!\n"
        ));
        err(&text, &format!("bond[0].lacp.{path}"), needle);
    }
}

#[test]
fn bond_mode_keywords() {
    let c = ok(&bond(
        "mode = \"balance-xor\"\nmembers = [\"p0\"]\nhash = \"layer2\"\n",
    ));
    assert_eq!(c.bonds[0].mode, BondMode::BalanceXor);
    assert_eq!(c.bonds[0].hash, HashPolicy::Layer2);
    assert!(c.bonds[0].lacp.is_none());
    let c = ok(&bond("mode = \"active-backup\"\nmembers = [\"p0\"]\n"));
    assert_eq!(c.bonds[0].mode, BondMode::ActiveBackup);
    err(
        &bond("mode = \"4\" #!\nmembers = [\"p0\"]\n"),
        "bond[0].mode",
        "use one of \"802.3ad\"",
    );
    err(
        &bond("members = [\"p0\"]\nhash = \"l2\" #!\n"),
        "bond[0].hash",
        "\"layer2\", \"layer2+3\", \"layer3+4\"",
    );
}

#[test]
fn bond_members_are_required_and_not_empty() {
    err(
        &four("\n[[bond]] #!\nname = \"bond0\"\n", PAIR_B0_P2),
        "bond[0].members",
        "missing required key `members`",
    );
    err(
        &bond("members = [] #!\n"),
        "bond[0].members",
        "members is empty",
    );
}

#[test]
fn bond_members_must_be_known_ports() {
    let d = err(
        &bond("members = [\"p0\", \"p9\"] #!\n"),
        "bond[0].members[1]",
        "unknown port \"p9\"; known ports: p0, p1, p2, p3",
    );
    assert_eq!(d.column, 18);
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\"]\n\n[[bond]]\nname = \"bond1\"\nmembers = [\"bond0\"] #!\n",
        PAIR_B0_P2,
    );
    err(
        &text,
        "bond[1].members[0]",
        "\"bond0\" is a bond; bonds cannot be members of bonds",
    );
}

#[test]
fn bond_member_listed_twice() {
    err(
        &bond("members = [\"p0\", \"p0\"] #!\n"),
        "bond[0].members[1]",
        "listed twice in this bond",
    );
}

#[test]
fn port_in_two_bonds() {
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\n\n[[bond]]\nname = \"bond1\"\nmembers = [\"p2\", \"p1\"] #!\n",
        "\n[forward]\nmode = \"xconnect\"\npairs = [[\"bond0\", \"bond1\"]]\n",
    );
    err(
        &text,
        "bond[1].members[1]",
        "port p1 is already a member of bond bond0 (line 24)",
    );
}

#[test]
fn hash_is_rejected_for_active_backup() {
    err(
        &bond("mode = \"active-backup\"\nmembers = [\"p0\"]\nhash = \"layer2\" #!\n"),
        "bond[0].hash",
        "no effect with mode = \"active-backup\"",
    );
}

#[test]
fn min_links_within_members() {
    err(
        &bond("members = [\"p0\", \"p1\"]\nmin_links = 3 #!\n"),
        "bond[0].min_links",
        "use 1..=2",
    );
    err(
        &bond("members = [\"p0\", \"p1\"]\nmin_links = 0 #!\n"),
        "bond[0].min_links",
        "expected an integer 1..=65535",
    );
    ok(&bond("members = [\"p0\", \"p1\"]\nmin_links = 2\n"));
}

#[test]
fn max_active_between_min_links_and_members() {
    let text = bond("members = [\"p0\", \"p1\"]\nmin_links = 2\n[bond.lacp]\nmax_active = 1 #!\n");
    err(
        &text,
        "bond[0].lacp.max_active",
        "between min_links (2) and the number of members (2)",
    );
    let text = bond("members = [\"p0\", \"p1\"]\n[bond.lacp]\nmax_active = 3 #!\n");
    err(
        &text,
        "bond[0].lacp.max_active",
        "between min_links (1) and the number of members (2)",
    );
    ok(&bond(
        "members = [\"p0\", \"p1\"]\n[bond.lacp]\nmax_active = 1\n",
    ));
}

#[test]
fn lacp_table_only_for_802_3ad() {
    for mode in ["active-backup", "balance-xor"] {
        let text = bond(&format!(
            "mode = \"{mode}\"\nmembers = [\"p0\"]\n[bond.lacp] #!\nrate = \"slow\"\n"
        ));
        let d = err(
            &text,
            "bond[0].lacp",
            &format!("but this bond's mode is \"{mode}\""),
        );
        assert_eq!(d.column, 1);
    }
    let text = bond("mode = \"balance-xor\"\nmembers = [\"p0\"]\nlacp = { rate = \"slow\" } #!\n");
    err(&text, "bond[0].lacp", "remove the [bond.lacp] table");
}

#[test]
fn lacp_port_numbers_default_to_position_and_are_unique() {
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\n",
        PAIR_B0_P2,
    )
    .replace(
        "name = \"p1\"\ndevice = \"ring:l1:a\"\n",
        "name = \"p1\"\ndevice = \"ring:l1:a\"\nlacp_port_number = 1 #!\n",
    );
    err(
        &text,
        "port[1].lacp_port_number",
        "LACP port number 1 is used by both p0 and p1",
    );
    // A default that collides with an explicit number is reported at the member entry.
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"] #!\n",
        PAIR_B0_P2,
    )
    .replace(
        "name = \"p0\"\ndevice = \"ring:l0:a\"\n",
        "name = \"p0\"\ndevice = \"ring:l0:a\"\nlacp_port_number = 2\n",
    );
    err(
        &text,
        "bond[0].members[1]",
        "set lacp_port_number on one of the ports",
    );
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\n",
        PAIR_B0_P2,
    )
    .replace(
        "name = \"p0\"\ndevice = \"ring:l0:a\"\n",
        "name = \"p0\"\ndevice = \"ring:l0:a\"\nlacp_port_number = 9\nlacp_port_priority = 3\n",
    );
    let c = ok(&text);
    let m = &c.bonds[0].members;
    assert_eq!((m[0].lacp_port_number, m[0].lacp_port_priority), (9, 3));
    assert_eq!((m[1].lacp_port_number, m[1].lacp_port_priority), (2, 255));
}

#[test]
fn bond_members_share_one_mtu() {
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"] #!\n",
        PAIR_B0_P2,
    )
    .replace(
        "name = \"p1\"\ndevice = \"ring:l1:a\"\n",
        "name = \"p1\"\ndevice = \"ring:l1:a\"\nmtu = 9000\n",
    );
    err(
        &text,
        "bond[0].members[1]",
        "member p1 has mtu 9000 but p0 has mtu 1500",
    );
}

#[test]
fn lacp_keys_are_unique_per_system_id() {
    let two = |lacp0: &str, lacp1: &str| {
        four(
            &format!("\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\n{lacp0}\n[[bond]]\nname = \"bond1\"\nmembers = [\"p2\", \"p3\"]\n{lacp1}"),
            "\n[forward]\nmode = \"xconnect\"\npairs = [[\"bond0\", \"bond1\"]]\n",
        )
    };
    let text = two("", "[bond.lacp]\nkey = 1 #!\n");
    err(
        &text,
        "bond[1].lacp.key",
        "LACP key 1 is also used by bond bond0",
    );
    // A default key colliding is reported at the bond's name.
    let text = two("[bond.lacp]\nkey = 2\n", "").replace("name = \"bond1\"", "name = \"bond1\" #!");
    err(&text, "bond[1].name", "set lacp.key explicitly");
    // Different system ids make the same key fine.
    ok(&two(
        "[bond.lacp]\nsystem_id = \"02:00:00:00:00:0a\"\nkey = 5\n",
        "[bond.lacp]\nsystem_id = \"02:00:00:00:00:0b\"\nkey = 5\n",
    ));
    let c = ok(&two("", ""));
    let keys: Vec<u16> = c
        .bonds
        .iter()
        .filter_map(|b| b.lacp.as_ref())
        .map(|l| l.key)
        .collect();
    assert_eq!(keys, [1, 2]);
}

#[test]
fn bond_mac_may_reuse_its_members_but_not_others() {
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\nmac = \"02:00:00:00:00:09\" #!\n",
        PAIR_B0_P2,
    )
    .replace("name = \"p2\"\ndevice = \"ring:l2:a\"\n", "name = \"p2\"\ndevice = \"ring:l2:a\"\nmac = \"02:00:00:00:00:09\"\n");
    err(&text, "bond[0].mac", "also configured on port p2");
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\nmac = \"02:00:00:00:00:09\"\n",
        PAIR_B0_P2,
    )
    .replace(
        "name = \"p0\"\ndevice = \"ring:l0:a\"\n",
        "name = \"p0\"\ndevice = \"ring:l0:a\"\nmac = \"02:00:00:00:00:09\"\n",
    );
    ok(&text);
    err(
        &bond("members = [\"p0\"]\nmac = \"ff:ff:ff:ff:ff:ff\" #!\n"),
        "bond[0].mac",
        "multicast",
    );
}

// ------------------------------------------------------------------ names

#[test]
fn names_share_one_namespace() {
    let text = four(
        "\n[[bond]]\nname = \"p3\" #!\nmembers = [\"p0\", \"p1\"]\n",
        "\n[forward]\nmode = \"xconnect\"\npairs = [[\"p2\", \"p3\"]]\n",
    );
    err(
        &text,
        "bond[0].name",
        "name \"p3\" is already used by a port",
    );
    let text = router("\n[[interface]]\nname = \"p1\" #!\non = \"p0\"\n");
    err(&text, "interface[0].name", "already used by a port");
    let text = four(
        "\n[[bond]]\nname = \"b\"\nmembers = [\"p0\"]\n\n[[bond]]\nname = \"b\" #!\nmembers = [\"p1\"]\n",
        "\n[forward]\nmode = \"xconnect\"\npairs = [[\"b\", \"p2\"]]\n",
    );
    err(
        &text,
        "bond[1].name",
        "duplicate bond name \"b\": already used by bond[0]",
    );
}

#[test]
fn duplicate_port_names_point_at_the_later_one() {
    let text = xc(
        "",
        &port("p0", "ring:l2:a", "").replace("name = \"p0\"", "name = \"p0\" #!"),
    );
    err(
        &text,
        "port[2].name",
        "duplicate port name \"p0\": already used by port[0] (line 8)",
    );
}

// ------------------------------------------------------------------ [[interface]]

const WAN: &str = "\n[[interface]]\nname = \"wan0\"\non = \"p0\"\naddresses = [\"192.0.2.1/24\"]\n";

#[test]
fn interface_defaults() {
    let c = ok(&router(WAN));
    let i = c.interface("wan0").expect("wan0");
    assert_eq!(
        (i.on.as_str(), i.vlan, i.mtu, i.tap),
        ("p0", None, None, true)
    );
    assert_eq!(i.tap_name, "fl-wan0");
    assert_eq!(i.addresses[0].to_string(), "192.0.2.1/24");
}

#[test]
fn interface_on_is_required_and_known() {
    err(
        &router("\n[[interface]] #!\nname = \"wan0\"\n"),
        "interface[0].on",
        "missing required key `on`",
    );
    err(
        &router("\n[[interface]]\nname = \"wan0\"\non = \"p7\" #!\n"),
        "interface[0].on",
        "unknown port or bond \"p7\"; known ports: p0, p1; no bond is defined",
    );
}

#[test]
fn interface_not_on_a_bond_member() {
    let text = router("\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\"]\n\n[[interface]]\nname = \"wan0\"\non = \"p0\" #!\n");
    err(&text, "interface[0].on", "use on = \"bond0\"");
    let c = ok(&router("\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\"]\n\n[[interface]]\nname = \"wan0\"\non = \"bond0\"\n"));
    assert!(matches!(
        c.endpoint(&c.interfaces[0].on),
        Some(conf::Endpoint::Bond(_))
    ));
}

#[test]
fn vlan_range_and_uniqueness() {
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\nvlan = 0 #!\n"),
        "interface[0].vlan",
        "1..=4094",
    );
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\nvlan = 4095 #!\n"),
        "interface[0].vlan",
        "1..=4094",
    );
    let text = router("\n[[interface]]\nname = \"a\"\non = \"p0\"\nvlan = 7\n\n[[interface]]\nname = \"b\"\non = \"p0\"\nvlan = 7 #!\n");
    err(&text, "interface[1].vlan", "already sits on p0 vlan 7");
    let text = router("\n[[interface]]\nname = \"a\"\non = \"p0\"\n\n[[interface]]\nname = \"b\"\non = \"p0\" #!\n");
    err(&text, "interface[1].on", "p0 (untagged)");
    let c = ok(&router("\n[[interface]]\nname = \"a\"\non = \"p0\"\n\n[[interface]]\nname = \"b\"\non = \"p0\"\nvlan = 4094\n"));
    assert_eq!(c.interfaces[1].vlan, Some(4094));
}

#[test]
fn interface_addresses_are_host_addresses() {
    for (addr, needle) in [
        ("192.0.2.1", "has no prefix length"),
        ("192.0.2.1/33", "too long for IPv4"),
        ("2001:db8::1/129", "too long for IPv6"),
        ("192.0.2.0/24", "network address of its subnet"),
        ("192.0.2.255/24", "broadcast address of its subnet"),
        ("224.0.0.1/4", "not a usable host address"),
        ("127.0.0.1/8", "not a usable host address"),
        ("::/0", "not a usable host address"),
        ("ff02::1/64", "not a usable host address"),
        ("300.0.0.1/24", "is not an IPv4 or IPv6 address"),
    ] {
        let text = router(&format!(
            "\n[[interface]]\nname = \"a\"\non = \"p0\"\naddresses = [\"{addr}\"] #!\n"
        ));
        err(&text, "interface[0].addresses[0]", needle);
    }
    let c = ok(&router("\n[[interface]]\nname = \"a\"\non = \"p0\"\naddresses = [\"192.0.2.0/31\", \"192.0.2.9/32\", \"fe80::1/64\", \"2001:db8::/64\"]\n"));
    assert_eq!(c.interfaces[0].addresses.len(), 4);
}

#[test]
fn an_address_is_configured_once() {
    let text = router(&format!("{WAN}\n[[interface]]\nname = \"lan0\"\non = \"p1\"\naddresses = [\"10.0.0.1/8\", \"192.0.2.1/25\"] #!\n"));
    err(
        &text,
        "interface[1].addresses[1]",
        "192.0.2.1 is already assigned to interface wan0",
    );
}

#[test]
fn interface_mtu_fits_what_it_sits_on() {
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\nmtu = 1501 #!\n"),
        "interface[0].mtu",
        "larger than the mtu 1500 of p0",
    );
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\nmtu = 10 #!\n"),
        "interface[0].mtu",
        "68..=9600",
    );
    let text = router("\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\"]\n\n[[interface]]\nname = \"a\"\non = \"bond0\"\nmtu = 9000 #!\n");
    err(&text, "interface[0].mtu", "of bond0");
    ok(&router(
        "\n[[interface]]\nname = \"a\"\non = \"p0\"\nmtu = 1400\n",
    ));
}

#[test]
fn tap_names() {
    let c = ok(&router(
        "\n[[interface]]\nname = \"abcdefghijklmno\"\non = \"p0\"\n",
    ));
    assert_eq!(c.interfaces[0].tap_name, "fl-abcdefghijkl");
    assert_eq!(c.interfaces[0].tap_name.len(), 15);
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\ntap_name = \"abcdefghijklmnop\" #!\n"),
        "interface[0].tap_name",
        "not a valid kernel interface name",
    );
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\ntap_name = \"a/b\" #!\n"),
        "interface[0].tap_name",
        "not a valid kernel interface name",
    );
    err(
        &router("\n[[interface]]\nname = \"a\"\non = \"p0\"\ntap = false\ntap_name = \"x\" #!\n"),
        "interface[0].tap_name",
        "no effect with tap = false",
    );
    let text = router("\n[[interface]]\nname = \"abcdefghijklmn1\"\non = \"p0\"\n\n[[interface]]\nname = \"abcdefghijklmn2\" #!\non = \"p1\"\n");
    err(
        &text,
        "interface[1].name",
        "TAP name \"fl-abcdefghijkl\" is also used",
    );
    let c = ok(&router(
        "\n[[interface]]\nname = \"a\"\non = \"p0\"\ntap = false\n",
    ));
    assert!(!c.interfaces[0].tap);
}

// ------------------------------------------------------------------ [[route]]

#[test]
fn route_prefix_is_required_and_a_network() {
    err(
        &router(&format!("{WAN}\n[[route]] #!\ninterface = \"wan0\"\n")),
        "route[0].prefix",
        "missing required key `prefix`",
    );
    let d = err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"10.1.2.3/16\" #!\ninterface = \"wan0\"\n"
        )),
        "route[0].prefix",
        "has host bits set",
    );
    assert!(d.message.contains("did you mean \"10.1.0.0/16\"?"), "{d}");
    let d = err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"2001:db8::1/32\" #!\ninterface = \"wan0\"\n"
        )),
        "route[0].prefix",
        "has host bits set",
    );
    assert!(d.message.contains("\"2001:db8::/32\""), "{d}");
}

#[test]
fn one_route_per_prefix() {
    let text = router(&format!("{WAN}\n[[route]]\nprefix = \"10.0.0.0/8\"\ninterface = \"wan0\"\n\n[[route]]\nprefix = \"10.0.0.0/8\" #!\nvia = \"192.0.2.2\"\n"));
    err(&text, "route[1].prefix", "duplicate route for 10.0.0.0/8");
}

#[test]
fn route_needs_via_or_interface() {
    let text = router(&format!("{WAN}\n[[route]] #!\nprefix = \"10.0.0.0/8\"\n"));
    err(&text, "route[0]", "needs `via` (a gateway), `interface`");
    let c = ok(&router(&format!(
        "{WAN}\n[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.0.2.9\"\n"
    )));
    assert_eq!(
        c.routes[0].via.map(|v| v.to_string()).as_deref(),
        Some("192.0.2.9")
    );
    assert_eq!(c.routes[0].interface, None);
}

const LAN: &str =
    "\n[[interface]]\nname = \"lan0\"\non = \"p1\"\naddresses = [\"198.51.100.1/24\"]\n";

#[test]
fn ecmp_route_with_nexthops_and_weights() {
    let c = ok(&router(&format!(
        "{WAN}{LAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\nnexthop = [\n  {{ via = \"192.0.2.9\" }},\n  {{ via = \"198.51.100.9\", interface = \"lan0\", weight = 3 }},\n]\n"
    )));
    let r = &c.routes[0];
    assert_eq!((r.via, r.interface.as_deref()), (None, None));
    let hops: Vec<(String, Option<String>, u16)> = r
        .hops()
        .iter()
        .map(|h| (h.via.unwrap().to_string(), h.interface.clone(), h.weight))
        .collect();
    assert_eq!(
        hops,
        vec![
            ("192.0.2.9".to_string(), None, 1),
            ("198.51.100.9".to_string(), Some("lan0".to_string()), 3)
        ]
    );
    assert!(
        c.summary().contains(
            "0.0.0.0/0 nexthop via 192.0.2.9 weight 1 nexthop via 198.51.100.9 dev lan0 weight 3"
        ),
        "{}",
        c.summary()
    );
    // A one-hop route's hops(): its via, weight 1.
    let c = ok(&router(&format!(
        "{WAN}\n[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.0.2.9\"\n"
    )));
    assert_eq!(c.routes[0].hops().len(), 1);
    assert_eq!(c.routes[0].hops()[0].weight, 1);
    // The same, as [[route.nexthop]] tables.
    ok(&router(&format!(
        "{WAN}{LAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\n[[route.nexthop]]\nvia = \"192.0.2.9\"\n[[route.nexthop]]\nvia = \"198.51.100.9\"\n"
    )));
}

#[test]
fn ecmp_route_errors() {
    let route = |hops: &str| {
        router(&format!(
            "{WAN}{LAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\n{hops}"
        ))
    };
    err(
        &route("via = \"192.0.2.9\" #!\nnexthop = [{ via = \"192.0.2.8\" }, { via = \"192.0.2.7\" }]\n"),
        "route[0].via",
        "either with `via`/`interface` or as `nexthop = [...]`, not both",
    );
    err(
        &route("nexthop = [{ via = \"192.0.2.8\" }] #!\n"),
        "route[0].nexthop",
        "1 next hops; an ECMP route has 2 to 16",
    );
    let many: Vec<String> = (10..27)
        .map(|n| format!("{{ via = \"192.0.2.{n}\" }}"))
        .collect();
    err(
        &route(&format!("nexthop = [{}] #!\n", many.join(", "))),
        "route[0].nexthop",
        "17 next hops",
    );
    err(
        &route("nexthop = [\n{ via = \"192.0.2.8\" },\n{ via = \"198.51.100.300\" }, #!\n]\n"),
        "route[0].nexthop[1].via",
        "is not an IP address",
    );
    err(
        &route("nexthop = [\n{ via = \"192.0.2.8\" },\n{ via = \"10.9.9.9\" }, #!\n]\n"),
        "route[0].nexthop[1].via",
        "not on any interface's subnet",
    );
    err(
        &route(
            "nexthop = [\n{ via = \"192.0.2.8\" },\n{ via = \"192.0.2.7\", weight = 0 }, #!\n]\n",
        ),
        "route[0].nexthop[1].weight",
        "1..=256",
    );
    err(
        &route("nexthop = [\n{ via = \"192.0.2.8\" },\n{ interface = \"wan9\" }, #!\n]\n"),
        "route[0].nexthop[1].interface",
        "unknown interface \"wan9\"",
    );
    err(
        &route("nexthop = [\n{ via = \"192.0.2.8\" },\n{ weight = 2 }, #!\n]\n"),
        "route[0].nexthop[1]",
        "needs `via` (a gateway), `interface`",
    );
    err(
        &route("nexthop = [\n{ via = \"192.0.2.8\" },\n{ via = \"192.0.2.8\" }, #!\n]\n"),
        "route[0].nexthop[1]",
        "the same next hop twice (also at line",
    );
    err(
        &route(
            "nexthop = [\n{ via = \"192.0.2.8\" },\n{ via = \"192.0.2.7\", metric = 2 }, #!\n]\n",
        ),
        "route[0].nexthop[1].metric",
        "unknown field `metric`, expected one of `via`, `interface`, `weight`",
    );
}

#[test]
fn gateway_family_and_syntax() {
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"::/0\"\nvia = \"192.0.2.9\" #!\n"
        )),
        "route[0].via",
        "gateway 192.0.2.9 is IPv4 but prefix ::/0 is IPv6",
    );
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.9/24\" #!\n"
        )),
        "route[0].via",
        "without a prefix length",
    );
}

#[test]
fn route_interface_must_be_an_interface() {
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\ninterface = \"wan9\" #!\n"
        )),
        "route[0].interface",
        "unknown interface \"wan9\"; known interfaces: wan0",
    );
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\ninterface = \"p1\" #!\n"
        )),
        "route[0].interface",
        "is a port or bond",
    );
}

#[test]
fn gateway_is_on_a_connected_subnet() {
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.51.100.1\" #!\n"
        )),
        "route[0].via",
        "not on any interface's subnet",
    );
    let text = router(&format!("{WAN}\n[[interface]]\nname = \"lan0\"\non = \"p1\"\naddresses = [\"10.0.0.1/8\"]\n\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.0.0.2\" #!\ninterface = \"wan0\"\n"));
    err(&text, "route[0].via", "not on any subnet of interface wan0");
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.1\" #!\n"
        )),
        "route[0].via",
        "this router's own address on interface wan0",
    );
    err(
        &router(&format!(
            "{WAN}\n[[route]]\nprefix = \"::/0\"\nvia = \"fe80::1\" #!\n"
        )),
        "route[0].via",
        "link-local gateway fe80::1 is ambiguous",
    );
    ok(&router(&format!(
        "{WAN}\n[[route]]\nprefix = \"::/0\"\nvia = \"fe80::1\"\ninterface = \"wan0\"\n"
    )));
}

// ------------------------------------------------------------------ [forward]

#[test]
fn forward_section_and_mode_are_required() {
    let text = format!("{DP}{PORTS}");
    let d = err(&text, "forward", "missing required section [forward]");
    assert_eq!((d.line, d.column), (1, 1));
    err(
        &format!("{DP}{PORTS}\n[forward] #!\npairs = [[\"p0\", \"p1\"]]\n"),
        "forward.mode",
        "missing required key `mode`",
    );
    err(
        &format!("{DP}{PORTS}\n[forward]\nmode = \"bridge\" #!\n"),
        "forward.mode",
        "use one of \"xconnect\", \"router\"",
    );
}

#[test]
fn xconnect_needs_pairs() {
    err(
        &format!("{DP}{PORTS}\n[forward] #!\nmode = \"xconnect\"\n"),
        "forward.pairs",
        "needs `pairs`",
    );
    err(
        &format!("{DP}{PORTS}\n[forward]\nmode = \"xconnect\"\npairs = [] #!\n"),
        "forward.pairs",
        "pairs is empty",
    );
}

#[test]
fn pairs_have_two_distinct_known_endpoints() {
    let fwd = |pairs: &str| {
        format!(
            "{DP}{PORTS}{}\n[forward]\nmode = \"xconnect\"\npairs = {pairs} #!\n",
            port("p2", "ring:l2:a", "")
        )
    };
    err(
        &fwd("[[\"p0\"]]"),
        "forward.pairs[0]",
        "exactly two endpoints",
    );
    err(
        &fwd("[[\"p0\", \"p1\", \"p2\"]]"),
        "forward.pairs[0]",
        "but this one has 3",
    );
    err(
        &fwd("[[\"p0\", \"p0\"]]"),
        "forward.pairs[0][1]",
        "paired with itself",
    );
    err(
        &fwd("[[\"p0\", \"p5\"]]"),
        "forward.pairs[0][1]",
        "unknown port or bond \"p5\"; known ports: p0, p1, p2",
    );
    err(
        &fwd("[[\"p0\", \"p1\"], [\"p2\", \"p1\"]]"),
        "forward.pairs[1][1]",
        "p1 is already in forward.pairs[0][1]",
    );
    err(
        &fwd("[[\"p0\", 1]]"),
        "forward.pairs[0][1]",
        "expected a string",
    );
}

#[test]
fn pairs_use_bonds_not_their_members() {
    let text = four(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p0\", \"p1\"]\n",
        "\n[forward]\nmode = \"xconnect\"\npairs = [[\"p1\", \"p2\"]] #!\n",
    );
    err(
        &text,
        "forward.pairs[0][0]",
        "port p1 is a member of bond bond0",
    );
    let c = ok(&bond("members = [\"p0\", \"p1\"]\n"));
    assert_eq!(
        c.forward,
        Forward::Xconnect {
            pairs: vec![("bond0".into(), "p2".into())]
        }
    );
}

#[test]
fn router_only_sections_are_rejected_in_xconnect_mode() {
    let text = xc("", "\n[[interface]] #!\nname = \"wan0\"\non = \"p0\"\n");
    err(
        &text,
        "interface[0]",
        "[[interface]] is used only with forward.mode = \"router\"",
    );
    let text = xc(
        "",
        "\n[[route]] #!\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.1\"\n",
    );
    let all = errors(&text);
    assert_eq!(
        all.len(),
        1,
        "only the section error, not its contents: {all:?}"
    );
    err(
        &text,
        "route[0]",
        "[[route]] is used only with forward.mode = \"router\"",
    );
}

#[test]
fn router_mode_rules() {
    let text = format!("{DP}{PORTS}\n[forward]\nmode = \"router\" #!\n");
    err(&text, "forward.mode", "needs at least one [[interface]]");
    let text =
        format!("{DP}{PORTS}{WAN}\n[forward]\nmode = \"router\"\npairs = [[\"p0\", \"p1\"]] #!\n");
    err(
        &text,
        "forward.pairs",
        "pairs is used only with mode = \"xconnect\"",
    );
    assert_eq!(ok(&router(WAN)).forward, Forward::Router);
}

// ------------------------------------------------------------------ [management]

#[test]
fn management_socket_is_an_absolute_short_path() {
    let m = |body: &str| xc("", &format!("\n[management]\n{body} #!\n"));
    err(
        &m("socket = \"fastlag.sock\""),
        "management.socket",
        "not an absolute path",
    );
    let long = format!("socket = \"/{}\"", "x".repeat(120));
    err(&m(&long), "management.socket", "at most 107");
    let c = ok(&xc("", "\n[management]\nsocket = \"/tmp/f.sock\"\n"));
    assert_eq!(c.management.socket.to_str(), Some("/tmp/f.sock"));
}

#[test]
fn state_file_and_restart_mode() {
    let m = |body: &str| xc("", &format!("\n[management]\n{body} #!\n"));
    err(
        &m("state_file = \"handoff\""),
        "management.state_file",
        "not an absolute path",
    );
    err(
        &m("state_file = \"/run/fastlag/\""),
        "management.state_file",
        "names a directory",
    );
    err(
        &m("restart = \"reboot\""),
        "management.restart",
        "\"exec\", \"exit\"",
    );
    let c = ok(&xc("", ""));
    assert_eq!(c.management.state_file, None);
    assert_eq!(c.management.restart, conf::RestartMode::Exec);
    let c = ok(&xc(
        "",
        "\n[management]\nstate_file = \"/run/fastlag/handoff\"\nrestart = \"exit\"\n",
    ));
    assert_eq!(
        c.management.state_file.as_deref().and_then(|p| p.to_str()),
        Some("/run/fastlag/handoff")
    );
    assert_eq!(c.management.restart, conf::RestartMode::Exit);
}

#[test]
fn metrics_listen_on_loopback_only() {
    let m = |addr: &str| xc("", &format!("\n[management]\nmetrics = \"{addr}\" #!\n"));
    err(
        &m("0.0.0.0:9477"),
        "management.metrics",
        "not a loopback address",
    );
    err(
        &m("192.0.2.1:9477"),
        "management.metrics",
        "not a loopback address",
    );
    err(
        &m("localhost:9477"),
        "management.metrics",
        "names such as localhost are not resolved",
    );
    err(
        &m("127.0.0.1"),
        "management.metrics",
        "is not an address:port",
    );
    err(&m("127.0.0.1:0"), "management.metrics", "port 0");
    for good in ["127.0.0.1:9477", "127.1.2.3:80", "[::1]:9477"] {
        let c = ok(&xc("", &format!("\n[management]\nmetrics = \"{good}\"\n")));
        assert_eq!(
            c.management.metrics.map(|a| a.to_string()).as_deref(),
            Some(good)
        );
    }
}

#[test]
fn unknown_management_keys_are_rejected() {
    err(
        &xc("", "\n[management]\nsockt = \"/x\" #!\n"),
        "management.sockt",
        "did you mean `socket`?",
    );
}

// ------------------------------------------------------------------ summary

#[test]
fn summary_mentions_every_object() {
    let text = router(&format!(
        "\n[[bond]]\nname = \"bond0\"\nmembers = [\"p1\"]\n{WAN}\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.254\"\n"
    ));
    let s = ok(&text).summary();
    for needle in [
        "router",
        "p0",
        "p1",
        "bond0",
        "802.3ad",
        "wan0",
        "192.0.2.1/24",
        "0.0.0.0/0 via 192.0.2.254",
        "/run/fastlag/fastlag.sock",
    ] {
        assert!(s.contains(needle), "summary lacks {needle}:\n{s}");
    }
    assert!(s.lines().count() < 40, "one screen:\n{s}");
}

#[test]
fn static_neighbours() {
    let c = ok(&router(&format!(
        "{WAN}\n[[neighbor]]\ninterface = \"wan0\"\naddress = \"192.0.2.9\"\nmac = \"02:00:00:00:00:09\"\n"
    )));
    assert_eq!(c.neighbors.len(), 1);
    assert_eq!(c.neighbors[0].address.to_string(), "192.0.2.9");
    assert_eq!(c.neighbors[0].mac.to_string(), "02:00:00:00:00:09");
    assert!(c
        .summary()
        .contains("192.0.2.9 lladdr 02:00:00:00:00:09 dev wan0"));

    let n = |body: &str| router(&format!("{WAN}\n[[neighbor]]\n{body}"));
    err(
        &n("interface = \"wan0\"\naddress = \"10.9.9.9\" #!\nmac = \"02:00:00:00:00:09\"\n"),
        "neighbor[0].address",
        "is not on a subnet of interface wan0",
    );
    err(
        &n("interface = \"lan9\" #!\naddress = \"192.0.2.9\"\nmac = \"02:00:00:00:00:09\"\n"),
        "neighbor[0].interface",
        "unknown interface \"lan9\"",
    );
    err(
        &n("interface = \"wan0\"\naddress = \"192.0.2.9\"\nmac = \"01:00:5e:00:00:01\" #!\n"),
        "neighbor[0].mac",
        "multicast",
    );
    err(
        &n("interface = \"wan0\"\nmac = \"02:00:00:00:00:09\"\n"),
        "neighbor[0]",
        "missing required key `address`",
    );
    let own = WAN
        .lines()
        .find_map(|l| l.strip_prefix("addresses = [\""))
        .and_then(|l| l.split('/').next())
        .expect("WAN has an address");
    err(
        &n(&format!(
            "interface = \"wan0\"\naddress = \"{own}\" #!\nmac = \"02:00:00:00:00:09\"\n"
        )),
        "neighbor[0].address",
        "this router's own address",
    );
    let twice = router(&format!(
        "{WAN}\n[[neighbor]]\ninterface = \"wan0\"\naddress = \"192.0.2.9\"\nmac = \"02:00:00:00:00:09\"\n\n[[neighbor]]\ninterface = \"wan0\"\naddress = \"192.0.2.9\" #!\nmac = \"02:00:00:00:00:0a\"\n"
    ));
    err(
        &twice,
        "neighbor[1].address",
        "duplicate neighbour 192.0.2.9",
    );
    let text = xc(
        "",
        "\n[[neighbor]] #!\ninterface = \"p0\"\naddress = \"192.0.2.1\"\nmac = \"02:00:00:00:00:01\"\n",
    );
    err(
        &text,
        "neighbor[0]",
        "[[neighbor]] is used only with forward.mode = \"router\"",
    );
}

#[test]
fn control_characters_in_names_are_never_printed_raw() {
    // An ANSI escape and a NUL in port names, then a reference to a port that is not there:
    // the "known ports" list quotes the names from the file.
    let text = format!(
        "{DP}{}{}\n[forward]\nmode = \"xconnect\"\npairs = [[\"p0\", \"p1\"]]\n",
        port("p\\u001b[31mX", "ring:l0:a", ""),
        port("q\\u0000", "ring:l0:b", "")
    );
    let all = errors(&text);
    assert!(all.len() >= 3, "{all:?}");
    for d in &all {
        let shown = d.to_string();
        assert!(
            !shown.chars().any(char::is_control) && !d.message.chars().any(char::is_control),
            "raw control character in {shown:?}"
        );
    }
    let unknown = err(&text, "forward.pairs[0][0]", "unknown port or bond \"p0\"");
    assert!(
        unknown.message.contains("known ports: p\\u{1b}[31mX, q\\0"),
        "{}",
        unknown.message
    );
}

#[test]
fn limits_come_from_the_dpdk_build() {
    // A DPDK built with fewer ports, lcores and a smaller mempool cache.
    let small = conf::Limits {
        max_ethports: 2,
        max_lcores: 2,
        mempool_cache_max: 128,
        ..conf::Limits::default()
    };
    let text = xc("mbuf_cache = 256", &port("p2", "ring:l2:a", ""));
    let e = conf::parse_with(&text, "t.toml", &small).expect_err("over the small limits");
    let shown = e.to_string();
    assert!(shown.contains("RTE_MAX_ETHPORTS = 2"), "{shown}");
    assert!(shown.contains("port[1].device"), "{shown}");
    assert!(shown.contains("RTE_MAX_LCORE = 2"), "{shown}");
    assert!(
        shown.contains("RTE_MEMPOOL_CACHE_MAX_SIZE = 128"),
        "{shown}"
    );
    // The stock limits accept the same file.
    ok(&text);
    let est = conf::memory_estimate(&ok(&text), &conf::Limits::default());
    assert!(est.total_mib <= 256, "{est:?}");
}

#[test]
fn the_memory_estimate_follows_how_dpdk_lays_out_the_pool() {
    let limits = conf::Limits::default();
    // Measured with DPDK 22.11 --no-huge (one worker, one ring link): 8191 mbufs without
    // cache run in 33 MiB, not 32; with a cache in 34, not 33; 16383 with a cache in 66;
    // 8120 in 33, while in 32 the pool is created, then DPDK panics ("Cannot allocate
    // ethdev shared data").
    for (dp, fits, not) in [
        ("mbufs = 8191\nmbuf_cache = 0", 33, 32),
        ("mbufs = 8120\nmbuf_cache = 0", 33, 32),
        ("mbufs = 8191\nmbuf_cache = 256", 34, 33),
        ("mbufs = 16383\nmbuf_cache = 256", 66, 65),
    ] {
        let text = format!(
            "{DP}{dp}\nmemory_mb = 1024\n\n[[port]]\nname = \"p0\"\ndevice = \"ring:l0:a\"\n\n[[port]]\nname = \"p1\"\ndevice = \"ring:l0:b\"\n{XC}"
        );
        let est = conf::memory_estimate(&ok(&text), &limits);
        assert!(
            est.total_mib <= fits && est.total_mib > not,
            "{dp}: estimate {est:?}, DPDK needed more than {not} MiB and ran in {fits}"
        );
    }
    // Jumbo frames: a 9,754-byte data room takes three 4 KiB pages per mbuf.
    let jumbo = xc("mbufs = 8191\nmemory_mb = 512", "").replace(
        "device = \"ring:l0:a\"",
        "device = \"ring:l0:a\"\nmtu = 9600",
    );
    let est = conf::memory_estimate(&ok(&jumbo), &limits);
    assert_eq!(est.pool_bytes, 8191 * 3 * 4096, "{est:?}");
}

#[test]
fn dotted_keys_and_dates_are_reported_where_written() {
    let text = xc("x.y.z = 1 #!", "");
    let d = errors(&text).remove(0);
    assert_eq!(d.key_path, "dataplane.x.y.z");
    assert!(d.message.contains("unknown field `x`"), "{d}");
    let text = xc("[dataplane.w.v]\na = 1", "").replace("[dataplane.w.v]", "#!\n[dataplane.w.v]");
    let all = errors(&text);
    assert_eq!(all[0].key_path, "dataplane.w.v", "{all:?}");
    let text = xc("burst = 07:32:00 #!", "");
    let d = err(
        &text,
        "dataplane.burst",
        "invalid type: a date-time (07:32:00)",
    );
    assert!(d.message.contains("expected an integer 1..=512"), "{d}");
    let text = xc("burst = { a = 1 } #!", "");
    err(
        &text,
        "dataplane.burst",
        "invalid type: a table, expected an integer",
    );
}

#[test]
fn sections_of_the_wrong_type_are_named_in_the_files_words() {
    let body = format!("{PORTS}{XC}");
    let text = format!("dataplane = [1] #!\n{body}");
    let d = err(
        &text,
        "dataplane",
        "invalid type: an array, expected a table",
    );
    assert!(!d.message.contains("Raw"), "{d}");
    let text = format!("{DP}{body}\n[[bond]]\nname = \"b\"\nmembers = [\"p0\"]\nlacp = 3 #!\n");
    let d = err(
        &text,
        "bond[0].lacp",
        "invalid type: an integer, expected a table",
    );
    assert!(d.message.contains("[bond.lacp]"), "{d}");
    let text = format!("port = [1] #!\n{DP}{XC}");
    let d = errors(&text).remove(0);
    assert!(!d.message.contains("Raw"), "{d}");
    assert!(d.message.contains("expected a table, like [[port]]"), "{d}");
}
