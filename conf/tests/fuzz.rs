//! `parse` must never panic, whatever it is fed, and every diagnostic must point inside the
//! document. Inputs: arbitrary strings, TOML-looking noise, and the shipped configurations
//! with random edits (lines dropped, duplicated or swapped, values replaced, text cut).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conf::{Device, IpPrefix, MacAddr, PciAddr};
use proptest::prelude::*;

const SHIPPED: &[&str] = &[
    include_str!("../default.toml"),
    include_str!("../xconnect-memif.toml"),
    include_str!("../xconnect-pci.toml"),
    include_str!("../bond-lacp.toml"),
    include_str!("../router.toml"),
];

/// Lines that are valid somewhere in the schema, to splice in at random places.
const LINES: &[&str] = &[
    "[dataplane]",
    "[[port]]",
    "[[bond]]",
    "[bond.lacp]",
    "[[interface]]",
    "[[route]]",
    "[forward]",
    "[management]",
    "name = \"p0\"",
    "name = \"bond0\"",
    "device = \"ring:l0:b\"",
    "device = \"0000:03:00.0\"",
    "members = [\"p0\", \"p1\", \"a0\"]",
    "mode = \"router\"",
    "mode = \"active-backup\"",
    "pairs = [[\"p0\", \"p1\"], [\"bond0\"]]",
    "worker_cores = [0, 0, 1023, 1024]",
    "control_core = -1",
    "mbufs = 0",
    "queues = 7",
    "vlan = 4095",
    "on = \"bond0\"",
    "addresses = [\"10.0.0.0/8\", \"::/0\"]",
    "prefix = \"10.0.0.1/8\"",
    "via = \"fe80::1\"",
    "interface = \"wan\"",
    "key = 0",
    "max_active = 99999999999999999999",
    "lacp = { rate = \"slow\" }",
    "mtu = 9600.5",
    "tap_name = \"\"",
    "metrics = \"[::1]:0\"",
    "x.y.z = 1",
    "\"quoted.key\" = 1",
    "a = [",
    "]",
    "= 1",
];

fn tomlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("[[".to_owned()),
            Just("]]".to_owned()),
            Just(" = ".to_owned()),
            Just("\n".to_owned()),
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("#".to_owned()),
            Just(",".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just(".".to_owned()),
            "[a-z_]{1,12}",
            "-?[0-9]{1,25}",
            any::<String>(),
            proptest::sample::select(LINES).prop_map(str::to_owned),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Insert(usize, &'static str),
    ReplaceValue(usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        (any::<usize>(), proptest::sample::select(LINES)).prop_map(|(a, l)| Edit::Insert(a, l)),
        (
            any::<usize>(),
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                "\"[ -~]{0,20}\"",
                Just("true".to_owned()),
                Just("[]".to_owned()),
                Just("{}".to_owned()),
                Just("1979-05-27T07:32:00Z".to_owned()),
                Just("\"p0\"".to_owned()),
                Just("\"ring:l0:a\"".to_owned()),
            ]
        )
            .prop_map(|(a, v)| Edit::ReplaceValue(a, v)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for e in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match e {
            Edit::Drop(i) => {
                lines.remove(i % n);
            }
            Edit::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::Swap(a, b) => lines.swap(a % n, b % n),
            Edit::Insert(i, l) => lines.insert(i % (n + 1), (*l).to_owned()),
            Edit::ReplaceValue(i, v) => {
                let line = &mut lines[i % n];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {v}");
                }
            }
            Edit::Truncate(i) => {
                let mut joined = lines.join("\n");
                let mut cut = i % (joined.len() + 1);
                while !joined.is_char_boundary(cut) {
                    cut -= 1;
                }
                joined.truncate(cut);
                lines = joined.lines().map(str::to_owned).collect();
            }
        }
    }
    lines.join("\n")
}

/// No panic; on error every diagnostic names the origin and a position inside the text.
fn check(text: &str) {
    match conf::parse(text, "fuzz.toml") {
        Ok(config) => {
            let _ = config.summary();
        }
        Err(err) => {
            assert!(!err.diagnostics.is_empty());
            let lines = text.split('\n').count();
            for d in &err.diagnostics {
                assert_eq!(d.file, "fuzz.toml");
                assert!(
                    d.line >= 1 && d.line <= lines,
                    "{d} (document has {lines} lines)"
                );
                assert!(d.column >= 1, "{d}");
                assert!(!d.message.is_empty());
                assert!(
                    !d.to_string().contains('\n'),
                    "one line per diagnostic: {d:?}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn toml_like_noise_never_panics(text in tomlish()) {
        check(&text);
    }

    #[test]
    fn edited_shipped_configs_never_panic(
        which in 0..SHIPPED.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        check(&apply(SHIPPED[which], &edits));
    }

    #[test]
    fn value_parsers_never_panic(text in any::<String>()) {
        let _ = text.parse::<MacAddr>();
        let _ = text.parse::<PciAddr>();
        let _ = text.parse::<IpPrefix>();
        let _ = text.parse::<Device>();
        let _ = text.parse::<Device>().map(|d| d.to_string());
    }

    #[test]
    fn mac_round_trips(octets in any::<[u8; 6]>()) {
        let mac = MacAddr(octets);
        prop_assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
    }

    #[test]
    fn pci_round_trips(domain in 0u32..=0xffff, bus: u8, device in 0u8..32, function in 0u8..8) {
        let addr = PciAddr { domain, bus, device, function };
        prop_assert_eq!(addr.to_string().parse::<PciAddr>(), Ok(addr));
        let dev = Device::Pci(addr);
        prop_assert_eq!(dev.to_string().parse::<Device>(), Ok(dev));
    }

    #[test]
    fn prefixes_round_trip_and_networks_contain_their_hosts(
        v4: u32, v6: u128, len4 in 0u8..=32, len6 in 0u8..=128,
    ) {
        for (addr, len) in [
            (IpAddr::V4(Ipv4Addr::from(v4)), len4),
            (IpAddr::V6(Ipv6Addr::from(v6)), len6),
        ] {
            let p = IpPrefix::new(addr, len).expect("length in range");
            prop_assert_eq!(p.to_string().parse::<IpPrefix>(), Ok(p));
            let net = p.network();
            prop_assert!(net.is_network());
            prop_assert!(net.contains(&addr));
            prop_assert_eq!(p.is_network(), net == p);
        }
    }
}

#[test]
fn pathological_inputs_do_not_panic() {
    let deep = "a = ".to_owned() + &"[".repeat(2000) + &"]".repeat(2000);
    for text in [
        "",
        "\u{feff}",
        "\r\n\r\n",
        "[dataplane]\r\ncontrol_core = 0\r\nworker_cores = [1]\r\n",
        "[[port]]\n[[port]]\n[[port]]\n",
        "port = []\nbond = []\n",
        "port = [1, 2]\n",
        "dataplane = 5\n",
        "[forward]\npairs = [[[]]]\n",
        "[dataplane]\nworker_cores = [9223372036854775807, -9223372036854775808]\n",
        &deep,
    ] {
        check(text);
    }
}
