//! Semantic validation: from the TOML shape ([`crate::raw`]) to a [`Config`].
//!
//! Validation never stops at the first problem. Each check records a diagnostic at the key
//! path it is about and substitutes a harmless value so later checks can still run; the
//! configuration is returned only when no diagnostic was recorded. Checks that depend on a
//! value that was itself invalid are skipped rather than reporting consequences.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{ConfigError, Diagnostic};
use crate::model::{
    Bond, BondMember, Config, Dataplane, Forward, Interface, Lacp, Management, Port, Route,
    DEFAULT_SOCKET,
};
use crate::raw::{
    Descriptors, Int, List, RawBond, RawConfig, RawDataplane, RawForward, RawInterface, RawLacp,
    RawManagement, RawPort, RawRoute, Text,
};
use crate::span::SpanIndex;
use crate::types::{
    family, parse_speed, BondMode, Device, Fallback, ForwardMode, HashPolicy, InvalidValue,
    IpPrefix, LacpActivity, LacpRate, MacAddr, MuxMode, RingEnd, Selection,
};

/// Defaults of the schema.
const DEFAULT_MEMORY_MB: u32 = 256;
const DEFAULT_MBUFS: u32 = 16_383;
const DEFAULT_MBUF_CACHE: u32 = 256;
const DEFAULT_BURST: u16 = 32;
const DEFAULT_DESCRIPTORS: u16 = 1024;
const DEFAULT_MTU: u16 = 1500;
const DEFAULT_PORT_PRIORITY: u16 = 255;
const DEFAULT_SYSTEM_PRIORITY: u16 = 65_535;
/// Mbufs kept free beyond the descriptor rings and in-flight bursts.
const MBUF_HEADROOM: u64 = 1024;
/// Linux IFNAMSIZ - 1.
const MAX_IFNAME: usize = 15;
/// `sizeof(sockaddr_un.sun_path) - 1`.
const MAX_SOCKET_PATH: usize = 107;

/// Validates `raw` and builds the configuration, or reports every problem found.
pub(crate) fn validate(
    raw: RawConfig,
    origin: &str,
    index: &SpanIndex<'_>,
) -> Result<Config, ConfigError> {
    let mut v = Validator {
        ctx: Ctx {
            origin,
            index,
            diagnostics: Vec::new(),
        },
        workers: None,
        control_core: None,
    };
    let config = v.run(raw);
    let mut diagnostics = v.ctx.diagnostics;
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        Err(ConfigError { diagnostics })
    }
}

/// Where diagnostics go.
struct Ctx<'a> {
    origin: &'a str,
    index: &'a SpanIndex<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl Ctx<'_> {
    /// Records a problem with the value at `path` (or the table that should contain it).
    fn error(&mut self, path: &str, message: String) {
        let (line, column) = self.index.locate(path);
        self.push(path, line, column, message);
    }

    /// Records a problem with the key at `path` itself (a key that should not be there).
    fn error_at_key(&mut self, path: &str, message: String) {
        let (line, column) = self.index.locate_key(path);
        self.push(path, line, column, message);
    }

    fn push(&mut self, path: &str, line: usize, column: usize, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.origin.to_owned(),
            line,
            column,
            key_path: path.to_owned(),
            message,
        });
    }

    fn line(&self, path: &str) -> usize {
        self.index.line(path)
    }

    fn present(&self, path: &str) -> bool {
        self.index.contains(path)
    }

    /// Range-checks an integer and converts it; `None` (after a diagnostic) when out of range.
    fn int<T: TryFrom<i128>, const MIN: i64, const MAX: i64>(
        &mut self,
        path: &str,
        raw: Int<MIN, MAX>,
    ) -> Option<T> {
        let value = raw.0;
        if value < i128::from(MIN) || value > i128::from(MAX) {
            self.error(
                path,
                format!(
                    "{value} is out of range; expected {}",
                    Int::<MIN, MAX>::expected()
                ),
            );
            return None;
        }
        match T::try_from(value) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(path, format!("{value} is out of range"));
                None
            }
        }
    }

    /// An optional integer with a default.
    fn int_or<T: TryFrom<i128>, const MIN: i64, const MAX: i64>(
        &mut self,
        path: &str,
        raw: Option<Int<MIN, MAX>>,
        default: T,
    ) -> T {
        raw.and_then(|r| self.int(path, r)).unwrap_or(default)
    }

    /// Parses a string value; `None` (after a diagnostic) when it does not parse.
    fn parse_with<T, M>(
        &mut self,
        path: &str,
        raw: &Text<M>,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        match parse(&raw.text) {
            Ok(v) => Some(v),
            Err(InvalidValue(message)) => {
                self.error(path, message);
                None
            }
        }
    }

    /// Parses an optional string value with `FromStr`.
    fn parse_opt<T: FromStr<Err = InvalidValue>, M>(
        &mut self,
        path: &str,
        raw: Option<&Text<M>>,
    ) -> Option<T> {
        raw.and_then(|r| self.parse_with(path, r, str::parse))
    }

    /// A keyword with a default.
    fn keyword<T: FromStr<Err = InvalidValue>>(
        &mut self,
        path: &str,
        raw: Option<Text<T>>,
        default: T,
    ) -> T {
        self.parse_opt(path, raw.as_ref()).unwrap_or(default)
    }
}

/// Whether `name` is a valid port, bond or interface name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= MAX_IFNAME
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `p0, p1, p2` or a note that there are none.
fn known(names: &[&str], what: &str) -> String {
    let mut unique: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        if !name.is_empty() && !unique.contains(name) {
            unique.push(name);
        }
    }
    if unique.is_empty() {
        format!("no {what} is defined")
    } else {
        format!("known {what}s: {}", unique.join(", "))
    }
}

/// Powers of two around `n` for "use 512 or 1024".
fn powers_of_two_around(n: u16) -> String {
    let upper = n.checked_next_power_of_two().unwrap_or(16_384).min(16_384);
    let lower = (upper / 2).max(64);
    if lower == upper || n > upper {
        upper.to_string()
    } else {
        format!("{lower} or {upper}")
    }
}

/// EAL options fastlag derives from the configuration, and the key to use instead.
fn reserved_eal_arg(arg: &str) -> Option<(&'static str, &'static str)> {
    const SHORT: &[(&str, &str)] = &[
        ("-l", "dataplane.control_core and dataplane.worker_cores"),
        ("-c", "dataplane.control_core and dataplane.worker_cores"),
        ("-a", "a [[port]] with device = \"<PCI address>\""),
        ("-w", "a [[port]] with device = \"<PCI address>\""),
        ("-m", "dataplane.memory_mb"),
    ];
    const LONG: &[(&str, &str)] = &[
        (
            "--lcores",
            "dataplane.control_core and dataplane.worker_cores",
        ),
        ("--main-lcore", "dataplane.control_core"),
        ("--master-lcore", "dataplane.control_core"),
        ("--file-prefix", "dataplane.file_prefix"),
        (
            "--vdev",
            "a [[port]] with device = \"net_<driver><id>,...\"",
        ),
        ("--allow", "a [[port]] with device = \"<PCI address>\""),
        (
            "--pci-whitelist",
            "a [[port]] with device = \"<PCI address>\"",
        ),
        ("--no-huge", "dataplane.hugepages = false"),
        (
            "--socket-mem",
            "dataplane.memory_mb (DPDK refuses --socket-mem together with the -m fastlag passes)",
        ),
    ];
    if arg.starts_with("--") {
        LONG.iter()
            .find(|(opt, _)| {
                arg == *opt
                    || arg
                        .strip_prefix(opt)
                        .is_some_and(|rest| rest.starts_with('='))
            })
            .copied()
    } else {
        // Short options may carry their value attached: "-l1-3", "-m512".
        SHORT.iter().find(|(opt, _)| arg.starts_with(opt)).copied()
    }
}

/// A name defined somewhere in the shared namespace.
struct NameDef {
    name: String,
    path: String,
    kind: &'static str,
}

struct Validator<'a> {
    ctx: Ctx<'a>,
    /// Number of workers, when `worker_cores` is valid.
    workers: Option<usize>,
    /// `control_core`, when valid.
    control_core: Option<u32>,
}

impl Validator<'_> {
    fn run(&mut self, raw: RawConfig) -> Config {
        let dataplane = self.dataplane(raw.dataplane);
        let mode = self.forward_mode(raw.forward.as_ref());
        let (mut ports, devices) = self.ports(raw.port.0);
        let bonds = self.bonds(raw.bond.0, &mut ports);
        let (raw_interfaces, raw_routes) = if mode == Some(ForwardMode::Xconnect) {
            // Router-only sections: one clear error each instead of checking their contents.
            self.router_only("interface", !raw.interface.0.is_empty());
            self.router_only("route", !raw.route.0.is_empty());
            (Vec::new(), Vec::new())
        } else {
            (raw.interface.0, raw.route.0)
        };
        self.names(&ports, &bonds, &raw_interfaces);
        self.devices(&ports, &devices);
        self.macs(&ports, &bonds);
        let interfaces = self.interfaces(raw_interfaces, &ports, &bonds);
        let routes = self.routes(raw_routes, &interfaces, &ports, &bonds);
        let forward = self.forward(raw.forward, mode, &ports, &bonds, &interfaces);
        let management = self.management(raw.management);
        if ports.is_empty() {
            self.ctx.error(
                "port",
                "no [[port]] is defined; add at least one [[port]] with a name and a device"
                    .to_owned(),
            );
        }
        self.mbuf_sizing(&dataplane, &ports);
        Config {
            dataplane,
            ports,
            bonds,
            interfaces,
            routes,
            forward,
            management,
        }
    }

    // ---------------------------------------------------------------- [dataplane]

    fn dataplane(&mut self, raw: Option<RawDataplane>) -> Dataplane {
        let mut dp = Dataplane {
            control_core: 0,
            worker_cores: Vec::new(),
            hugepages: true,
            memory_mb: DEFAULT_MEMORY_MB,
            mbufs: DEFAULT_MBUFS,
            mbuf_cache: DEFAULT_MBUF_CACHE,
            burst: DEFAULT_BURST,
            eal_args: Vec::new(),
            file_prefix: None,
            stats_interval_s: 0,
        };
        let Some(raw) = raw else {
            self.ctx.error(
                "dataplane",
                "missing required section [dataplane]; add it with at least `control_core = 0` and `worker_cores = [1]` (CPU ids of the control thread and the workers)".to_owned(),
            );
            return dp;
        };
        let ctx = &mut self.ctx;

        match raw.control_core {
            None => ctx.error(
                "dataplane.control_core",
                "missing required key `control_core`: the CPU id of the control thread, e.g. `control_core = 0`".to_owned(),
            ),
            Some(raw) => {
                self.control_core = ctx.int("dataplane.control_core", raw);
                dp.control_core = self.control_core.unwrap_or(0);
            }
        }

        match raw.worker_cores {
            None => ctx.error(
                "dataplane.worker_cores",
                "missing required key `worker_cores`: CPU ids of the poll-mode workers, e.g. `worker_cores = [1]`".to_owned(),
            ),
            Some(List(cores)) if cores.is_empty() => ctx.error(
                "dataplane.worker_cores",
                "worker_cores is empty; list at least one CPU id for a poll-mode worker, e.g. [1]"
                    .to_owned(),
            ),
            Some(List(cores)) => {
                self.workers = Some(cores.len());
                let mut seen: HashMap<u32, usize> = HashMap::new();
                for (i, raw) in cores.into_iter().enumerate() {
                    let path = format!("dataplane.worker_cores[{i}]");
                    let Some(cpu) = ctx.int::<u32, 0, 1023>(&path, raw) else {
                        continue;
                    };
                    if Some(cpu) == self.control_core {
                        ctx.error(
                            &path,
                            format!("CPU {cpu} is also dataplane.control_core; the control thread needs a CPU of its own: remove {cpu} from worker_cores or change control_core"),
                        );
                    } else if let Some(first) = seen.get(&cpu) {
                        ctx.error(
                            &path,
                            format!("CPU {cpu} is listed twice (also worker_cores[{first}]); each worker needs a CPU of its own"),
                        );
                    } else {
                        seen.insert(cpu, i);
                    }
                    dp.worker_cores.push(cpu);
                }
            }
        }

        dp.hugepages = raw.hugepages.unwrap_or(true);
        dp.memory_mb = ctx.int_or("dataplane.memory_mb", raw.memory_mb, DEFAULT_MEMORY_MB);
        dp.burst = ctx.int_or("dataplane.burst", raw.burst, DEFAULT_BURST);
        dp.stats_interval_s = ctx.int_or("dataplane.stats_interval_s", raw.stats_interval_s, 0);

        let mbufs = raw
            .mbufs
            .and_then(|r| ctx.int::<u32, 1, 4_294_967_295>("dataplane.mbufs", r));
        let cache = raw
            .mbuf_cache
            .and_then(|r| ctx.int::<u32, 0, 512>("dataplane.mbuf_cache", r));
        let mbufs_ok = mbufs.is_some() || raw.mbufs.is_none();
        dp.mbufs = mbufs.unwrap_or(DEFAULT_MBUFS);
        dp.mbuf_cache = cache.unwrap_or(DEFAULT_MBUF_CACHE);
        let cache_ok = cache.is_some() || raw.mbuf_cache.is_none();
        // rte_mempool_create() refuses a cache larger than n / 1.5 (CACHE_FLUSHTHRESH_MULTIPLIER).
        if mbufs_ok && cache_ok && u64::from(dp.mbuf_cache) * 3 > u64::from(dp.mbufs) * 2 {
            let max = u64::from(dp.mbufs) * 2 / 3;
            let need = (u64::from(dp.mbuf_cache) * 3).div_ceil(2);
            ctx.error(
                "dataplane.mbuf_cache",
                format!(
                    "mbuf_cache = {} is too large for mbufs = {}: DPDK requires mbuf_cache <= mbufs / 1.5 = {max}; lower mbuf_cache to {max} or less, or raise mbufs to {need} or more",
                    dp.mbuf_cache, dp.mbufs
                ),
            );
        }

        if let Some(List(args)) = raw.eal_args {
            for (i, arg) in args.iter().enumerate() {
                if let Some((option, instead)) = reserved_eal_arg(arg) {
                    ctx.error(
                        &format!("dataplane.eal_args[{i}]"),
                        format!("{arg:?}: fastlag sets EAL option {option} itself; remove it from eal_args and use {instead} instead"),
                    );
                }
            }
            dp.eal_args = args;
        }

        if let Some(prefix) = raw.file_prefix {
            let ok = !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                ctx.error(
                    "dataplane.file_prefix",
                    format!("{prefix:?} is not a valid file prefix; use one or more of A-Z a-z 0-9 _ - (or remove the key to let fastlag pick a unique one)"),
                );
            }
            dp.file_prefix = Some(prefix);
        }
        dp
    }

    // ---------------------------------------------------------------- [[port]]

    /// Checks a required name; returns it, or an empty string when missing.
    fn name(&mut self, path: &str, raw: Option<String>, kind: &str) -> String {
        let key = format!("{path}.name");
        match raw {
            None => {
                self.ctx.error(
                    &key,
                    format!("missing required key `name`: every {kind} needs a unique name, e.g. `name = \"{}\"`", example_name(kind)),
                );
                String::new()
            }
            Some(name) => {
                if !valid_name(&name) {
                    self.ctx.error(
                        &key,
                        format!("{name:?} is not a valid {kind} name; start with a letter, then up to 14 letters, digits, '_', '.' or '-'"),
                    );
                }
                name
            }
        }
    }

    fn ports(&mut self, raw: Vec<RawPort>) -> (Vec<Port>, Vec<Option<Device>>) {
        let mut ports = Vec::with_capacity(raw.len());
        let mut devices = Vec::with_capacity(raw.len());
        for (i, rp) in raw.into_iter().enumerate() {
            let path = format!("port[{i}]");
            let name = self.name(&path, rp.name, "port");
            let ctx = &mut self.ctx;
            let device = match &rp.device {
                None => {
                    ctx.error(
                        &format!("{path}.device"),
                        "missing required key `device`: a PCI address (\"0000:03:00.0\"), a DPDK vdev spec (\"net_memif0,role=server\") or a ring link end (\"ring:l0:a\")".to_owned(),
                    );
                    None
                }
                Some(text) => ctx.parse_with(&format!("{path}.device"), text, str::parse),
            };

            let workers = self.workers;
            if let Some(q) = rp.queues {
                let qpath = format!("{path}.queues");
                if let (Some(q), Some(w)) = (ctx.int::<usize, 1, 1024>(&qpath, q), workers) {
                    if q != w {
                        ctx.error(
                            &qpath,
                            format!("queues = {q} does not match the {w} worker(s) in dataplane.worker_cores; worker i owns RX/TX queue i of every port, so set queues = {w} or remove the key"),
                        );
                    }
                }
            }
            let queues = u16::try_from(workers.unwrap_or(1)).unwrap_or(u16::MAX);

            let mut descriptors = |key: &str, raw: Option<Descriptors>| {
                let dpath = format!("{path}.{key}");
                let n: u16 = ctx.int_or(&dpath, raw, DEFAULT_DESCRIPTORS);
                if !n.is_power_of_two() {
                    ctx.error(
                        &dpath,
                        format!(
                            "{key} = {n} is not a power of two; use {}",
                            powers_of_two_around(n)
                        ),
                    );
                }
                n
            };
            let rx_descriptors = descriptors("rx_descriptors", rp.rx_descriptors);
            let tx_descriptors = descriptors("tx_descriptors", rp.tx_descriptors);

            let mtu = ctx.int_or(&format!("{path}.mtu"), rp.mtu, DEFAULT_MTU);
            let speed_mbps = rp
                .speed
                .as_ref()
                .and_then(|t| ctx.parse_with(&format!("{path}.speed"), t, parse_speed));
            let duplex = ctx.parse_opt(&format!("{path}.duplex"), rp.duplex.as_ref());
            let mac = self.mac(&format!("{path}.mac"), rp.mac.as_ref(), "port MAC");
            let ctx = &mut self.ctx;
            let lacp_port_priority = rp
                .lacp_port_priority
                .and_then(|r| ctx.int(&format!("{path}.lacp_port_priority"), r));
            let lacp_port_number = rp
                .lacp_port_number
                .and_then(|r| ctx.int(&format!("{path}.lacp_port_number"), r));

            ports.push(Port {
                name,
                device: device.clone().unwrap_or(Device::Vdev {
                    spec: String::new(),
                    name: String::new(),
                }),
                queues,
                rx_descriptors,
                tx_descriptors,
                mtu,
                speed_mbps,
                duplex,
                mac,
                lacp_port_priority,
                lacp_port_number,
            });
            devices.push(device);
        }
        (ports, devices)
    }

    /// Parses a unicast, non-zero MAC.
    fn mac<M>(&mut self, path: &str, raw: Option<&Text<M>>, what: &str) -> Option<MacAddr> {
        let mac: MacAddr = self.ctx.parse_opt(path, raw)?;
        if mac.is_zero() {
            self.ctx.error(
                path,
                format!("{what} {mac} is all zeros; use a unicast address such as a locally administered 02:xx:xx:xx:xx:xx, or remove the key for the default"),
            );
            None
        } else if !mac.is_unicast() {
            self.ctx.error(
                path,
                format!("{what} {mac} is a multicast address (lowest bit of the first octet set); use a unicast address such as 02:{}", &mac.to_string()[3..]),
            );
            None
        } else {
            Some(mac)
        }
    }

    /// Two ports on one device; ring links with two `a` or two `b` ends.
    fn devices(&mut self, ports: &[Port], devices: &[Option<Device>]) {
        let mut first: HashMap<String, usize> = HashMap::new();
        for (i, device) in devices.iter().enumerate() {
            let Some(device) = device else { continue };
            let identity = device.identity();
            if let Some(&j) = first.get(&identity) {
                let owner = ports.get(j).map_or("", |p| p.name.as_str());
                let line = self.ctx.line(&format!("port[{j}].device"));
                let message = match device {
                    Device::Ring { link, end } => {
                        let other = match end {
                            RingEnd::A => RingEnd::B,
                            RingEnd::B => RingEnd::A,
                        };
                        format!("ring link {link:?} already has its {end:?} end on port {owner} (line {line}); a link joins exactly one \"a\" end and one \"b\" end: use \"ring:{link}:{other}\" or another link name")
                    }
                    Device::Pci(addr) => format!("device {addr} is already used by port {owner} (line {line}); each device backs one port only"),
                    Device::Vdev { name, .. } => format!("vdev name {name:?} is already used by port {owner} (line {line}); DPDK vdev names must be unique: change the number, e.g. {}", bump_vdev(name)),
                };
                self.ctx.error(&format!("port[{i}].device"), message);
            } else {
                first.insert(identity, i);
            }
        }
    }

    /// The same configured MAC twice (ports and bonds, except a bond reusing its member's).
    fn macs(&mut self, ports: &[Port], bonds: &[Bond]) {
        let mut owners: HashMap<MacAddr, (String, String)> = HashMap::new();
        for (i, p) in ports.iter().enumerate() {
            if let Some(mac) = p.mac {
                let path = format!("port[{i}].mac");
                if let Some((owner, opath)) = owners.get(&mac) {
                    let line = self.ctx.line(opath);
                    self.ctx.error(
                        &path,
                        format!("MAC {mac} is also configured on {owner} (line {line}); every port needs its own MAC"),
                    );
                } else {
                    owners.insert(mac, (format!("port {}", p.name), path));
                }
            }
        }
        for (i, b) in bonds.iter().enumerate() {
            let Some(mac) = b.mac else { continue };
            let path = format!("bond[{i}].mac");
            let member_mac = b
                .members
                .iter()
                .any(|m| ports.iter().any(|p| p.name == m.port && p.mac == Some(mac)));
            if member_mac {
                continue;
            }
            if let Some((owner, opath)) = owners.get(&mac) {
                let line = self.ctx.line(opath);
                self.ctx.error(
                    &path,
                    format!("MAC {mac} is also configured on {owner} (line {line}); a bond may reuse the MAC of one of its own members only"),
                );
            } else {
                owners.insert(mac, (format!("bond {}", b.name), path));
            }
        }
    }

    // ---------------------------------------------------------------- [[bond]]

    fn bonds(&mut self, raw: Vec<RawBond>, ports: &mut [Port]) -> Vec<Bond> {
        let port_names: Vec<String> = ports
            .iter()
            .filter(|p| !p.name.is_empty())
            .map(|p| p.name.clone())
            .collect();
        let bond_names: Vec<String> = raw.iter().filter_map(|b| b.name.clone()).collect();
        // port name -> (bond index, path of the member entry)
        let mut member_of: HashMap<String, (usize, String)> = HashMap::new();
        let mut bonds = Vec::with_capacity(raw.len());

        for (i, rb) in raw.into_iter().enumerate() {
            let path = format!("bond[{i}]");
            let name = self.name(&path, rb.name, "bond");
            let ctx = &mut self.ctx;
            let mode = ctx.keyword(&format!("{path}.mode"), rb.mode, BondMode::Lacp);

            let mut members = Vec::new();
            let mut member_count = 0usize;
            match rb.members {
                None => ctx.error(
                    &format!("{path}.members"),
                    "missing required key `members`: the ports of this bond, e.g. `members = [\"p0\", \"p1\"]`".to_owned(),
                ),
                Some(List(list)) if list.is_empty() => ctx.error(
                    &format!("{path}.members"),
                    "members is empty; list at least one port, e.g. [\"p0\", \"p1\"]".to_owned(),
                ),
                Some(List(list)) => {
                    member_count = list.len();
                    let mut in_this: HashMap<&str, usize> = HashMap::new();
                    for (j, port) in list.iter().enumerate() {
                        let mpath = format!("{path}.members[{j}]");
                        if !port_names.contains(port) {
                            let message = if bond_names.contains(port) {
                                format!("{port:?} is a bond; bonds cannot be members of bonds, list ports only")
                            } else {
                                let names: Vec<&str> = port_names.iter().map(String::as_str).collect();
                                format!("unknown port {port:?}; {}", known(&names, "port"))
                            };
                            ctx.error(&mpath, message);
                        } else if let Some(first) = in_this.get(port.as_str()) {
                            ctx.error(
                                &mpath,
                                format!("port {port} is listed twice in this bond (also members[{first}]); remove one"),
                            );
                        } else if let Some((other, opath)) = member_of.get(port) {
                            let line = ctx.line(opath);
                            let other = bond_names_at(&bond_names, *other);
                            ctx.error(
                                &mpath,
                                format!("port {port} is already a member of bond {other} (line {line}); a port can belong to one bond only"),
                            );
                        } else {
                            in_this.insert(port, j);
                            member_of.insert(port.clone(), (i, mpath.clone()));
                            members.push(port.clone());
                        }
                    }
                }
            }

            let hash_path = format!("{path}.hash");
            if mode == BondMode::ActiveBackup && rb.hash.is_some() {
                ctx.error(
                    &hash_path,
                    "hash has no effect with mode = \"active-backup\" (one member carries all traffic); remove the key".to_owned(),
                );
            }
            let hash = ctx.keyword(&hash_path, rb.hash, HashPolicy::Layer23);

            let min_path = format!("{path}.min_links");
            let mut min_links: u16 = ctx.int_or(&min_path, rb.min_links, 1);
            if member_count > 0 && usize::from(min_links) > member_count {
                ctx.error(
                    &min_path,
                    format!("min_links = {min_links} but the bond has {member_count} member(s); use 1..={member_count} or add members"),
                );
                min_links = 1;
            }

            let mac = self.mac(&format!("{path}.mac"), rb.mac.as_ref(), "bond MAC");

            let lacp = match (mode, rb.lacp) {
                (BondMode::Lacp, raw) => Some(self.lacp(&path, i, raw, min_links, member_count)),
                (other, Some(_)) => {
                    self.ctx.error_at_key(
                        &format!("{path}.lacp"),
                        format!("[bond.lacp] applies only to mode = \"802.3ad\", but this bond's mode is {:?}; remove the [bond.lacp] table or set mode = \"802.3ad\"", other.as_str()),
                    );
                    None
                }
                (_, None) => None,
            };

            bonds.push(Bond {
                name,
                mode,
                members: members
                    .into_iter()
                    .map(|port| BondMember {
                        port,
                        lacp_port_number: 0,
                        lacp_port_priority: DEFAULT_PORT_PRIORITY,
                    })
                    .collect(),
                hash,
                min_links,
                mac,
                lacp,
            });
        }

        self.resolve_members(&mut bonds, ports);
        self.lacp_keys(&bonds);
        bonds
    }

    fn lacp(
        &mut self,
        path: &str,
        bond_index: usize,
        raw: Option<RawLacp>,
        min_links: u16,
        members: usize,
    ) -> Lacp {
        let default_key = u16::try_from(bond_index + 1).unwrap_or(u16::MAX);
        let Some(raw) = raw else {
            return Lacp {
                activity: LacpActivity::Active,
                rate: LacpRate::Fast,
                system_priority: DEFAULT_SYSTEM_PRIORITY,
                system_id: None,
                key: default_key,
                port_priority: DEFAULT_PORT_PRIORITY,
                max_active: None,
                selection: Selection::Stable,
                fallback: Fallback::None,
                mux: MuxMode::Coupled,
            };
        };
        let p = |key: &str| format!("{path}.lacp.{key}");
        let system_id = self.mac(&p("system_id"), raw.system_id.as_ref(), "LACP system_id");
        let ctx = &mut self.ctx;
        let max_active: Option<u16> = raw.max_active.and_then(|r| ctx.int(&p("max_active"), r));
        if let Some(max) = max_active {
            if max < min_links || (members > 0 && usize::from(max) > members) {
                ctx.error(
                    &p("max_active"),
                    format!("max_active = {max} must be between min_links ({min_links}) and the number of members ({members}); ports selected beyond max_active go STANDBY"),
                );
            }
        }
        Lacp {
            activity: ctx.keyword(&p("activity"), raw.activity, LacpActivity::Active),
            rate: ctx.keyword(&p("rate"), raw.rate, LacpRate::Fast),
            system_priority: ctx.int_or(
                &p("system_priority"),
                raw.system_priority,
                DEFAULT_SYSTEM_PRIORITY,
            ),
            system_id,
            key: ctx.int_or(&p("key"), raw.key, default_key),
            port_priority: ctx.int_or(
                &p("port_priority"),
                raw.port_priority,
                DEFAULT_PORT_PRIORITY,
            ),
            max_active,
            selection: ctx.keyword(&p("selection"), raw.selection, Selection::Stable),
            fallback: ctx.keyword(&p("fallback"), raw.fallback, Fallback::None),
            mux: ctx.keyword(&p("mux"), raw.mux, MuxMode::Coupled),
        }
    }

    /// Effective LACP port numbers and priorities; per-port LACP keys outside 802.3ad bonds;
    /// equal MTUs within a bond.
    fn resolve_members(&mut self, bonds: &mut [Bond], ports: &[Port]) {
        let port_at = |name: &str| ports.iter().position(|p| p.name == name);
        for (i, bond) in bonds.iter_mut().enumerate() {
            let default_priority = bond
                .lacp
                .as_ref()
                .map_or(DEFAULT_PORT_PRIORITY, |l| l.port_priority);
            // port number -> member name
            let mut numbers: HashMap<u16, String> = HashMap::new();
            let mut first_mtu: Option<(&str, u16)> = None;
            for (j, member) in bond.members.iter_mut().enumerate() {
                let Some(k) = port_at(&member.port) else {
                    continue;
                };
                let port = &ports[k];
                let position = u16::try_from(j + 1).unwrap_or(u16::MAX);
                member.lacp_port_number = port.lacp_port_number.unwrap_or(position);
                member.lacp_port_priority = port.lacp_port_priority.unwrap_or(default_priority);
                if bond.lacp.is_some() {
                    if let Some(other) = numbers.get(&member.lacp_port_number) {
                        let (where_, hint) = if port.lacp_port_number.is_some() {
                            (
                                format!("port[{k}].lacp_port_number"),
                                "choose a number not used by another member",
                            )
                        } else {
                            (format!("bond[{i}].members[{j}]"), "port numbers default to the 1-based position in members; set lacp_port_number on one of the ports")
                        };
                        self.ctx.error(
                            &where_,
                            format!("LACP port number {} is used by both {other} and {} in bond {}; {hint}", member.lacp_port_number, member.port, bond.name),
                        );
                    } else {
                        numbers.insert(member.lacp_port_number, member.port.clone());
                    }
                }
                match first_mtu {
                    None => first_mtu = Some((&port.name, port.mtu)),
                    Some((first, mtu)) if mtu != port.mtu => self.ctx.error(
                        &format!("bond[{i}].members[{j}]"),
                        format!("member {} has mtu {} but {first} has mtu {mtu}; all members of a bond need the same mtu (set port[{k}].mtu)", port.name, port.mtu),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (k, port) in ports.iter().enumerate() {
            let in_lacp_bond = bonds
                .iter()
                .any(|b| b.lacp.is_some() && b.has_member(&port.name));
            if in_lacp_bond || port.name.is_empty() {
                continue;
            }
            for (key, set) in [
                ("lacp_port_priority", port.lacp_port_priority.is_some()),
                ("lacp_port_number", port.lacp_port_number.is_some()),
            ] {
                if set {
                    self.ctx.error_at_key(
                        &format!("port[{k}].{key}"),
                        format!("{key} applies only to members of an 802.3ad bond, and port {} is not one; remove the key or add the port to an 802.3ad bond's members", port.name),
                    );
                }
            }
        }
    }

    /// Bonds that share a system id need distinct keys, or partners would aggregate them.
    fn lacp_keys(&mut self, bonds: &[Bond]) {
        // (system id, key) -> bond index
        let mut seen: HashMap<(Option<MacAddr>, u16), usize> = HashMap::new();
        for (i, bond) in bonds.iter().enumerate() {
            let Some(lacp) = &bond.lacp else { continue };
            let slot = (lacp.system_id, lacp.key);
            if let Some(&j) = seen.get(&slot) {
                let other = &bonds[j].name;
                let key_path = format!("bond[{i}].lacp.key");
                let (path, how) = if self.ctx.present(&key_path) {
                    (key_path, "set a different lacp.key")
                } else {
                    (format!("bond[{i}].name"), "the default key is the bond's 1-based position in the file; set lacp.key explicitly")
                };
                let line = self.ctx.line(&format!("bond[{j}]"));
                self.ctx.error(
                    &path,
                    format!("LACP key {} is also used by bond {other} (line {line}) with the same system id; bonds sharing a system id need distinct keys: {how}", lacp.key),
                );
            } else {
                seen.insert(slot, i);
            }
        }
    }

    // ---------------------------------------------------------------- names

    /// Ports, bonds and interfaces share one namespace.
    fn names(&mut self, ports: &[Port], bonds: &[Bond], interfaces: &[RawInterface]) {
        let mut defs: Vec<NameDef> = Vec::new();
        let mut add = |name: &str, path: String, kind| {
            if !name.is_empty() {
                defs.push(NameDef {
                    name: name.to_owned(),
                    path,
                    kind,
                });
            }
        };
        for (i, p) in ports.iter().enumerate() {
            add(&p.name, format!("port[{i}].name"), "port");
        }
        for (i, b) in bonds.iter().enumerate() {
            add(&b.name, format!("bond[{i}].name"), "bond");
        }
        for (i, iface) in interfaces.iter().enumerate() {
            if let Some(name) = &iface.name {
                add(name, format!("interface[{i}].name"), "interface");
            }
        }
        defs.sort_by_key(|d| self.ctx.index.locate(&d.path));
        let mut first: HashMap<&str, &NameDef> = HashMap::new();
        for def in &defs {
            if let Some(prev) = first.get(def.name.as_str()) {
                let line = self.ctx.line(&prev.path);
                let message = if prev.kind == def.kind {
                    format!("duplicate {} name {:?}: already used by {}[{}] (line {line}); rename one of them", def.kind, def.name, prev.kind, index_of(&prev.path))
                } else {
                    format!("name {:?} is already used by a {} (line {line}); ports, bonds and interfaces share one namespace: rename this {}", def.name, prev.kind, def.kind)
                };
                self.ctx.error(&def.path, message);
            } else {
                first.insert(&def.name, def);
            }
        }
    }

    // ---------------------------------------------------------------- [[interface]]

    fn interfaces(
        &mut self,
        raw: Vec<RawInterface>,
        ports: &[Port],
        bonds: &[Bond],
    ) -> Vec<Interface> {
        let mut result = Vec::with_capacity(raw.len());
        // (on, vlan) -> path of the first interface
        let mut attachments: HashMap<(String, Option<u16>), String> = HashMap::new();
        // address -> (interface name, path)
        let mut addresses: HashMap<IpAddr, (String, String)> = HashMap::new();
        let mut tap_names: HashMap<String, String> = HashMap::new();

        for (i, ri) in raw.into_iter().enumerate() {
            let path = format!("interface[{i}]");
            let name = self.name(&path, ri.name, "interface");
            let on_path = format!("{path}.on");
            // MTU of what the interface sits on, when known.
            let mut lower_mtu: Option<u16> = None;
            let on = match ri.on {
                None => {
                    self.ctx.error(
                        &on_path,
                        "missing required key `on`: the port or bond this interface sits on, e.g. `on = \"bond0\"`".to_owned(),
                    );
                    String::new()
                }
                Some(on) => {
                    if let Some(bond) = bonds.iter().find(|b| b.name == on) {
                        lower_mtu = bond
                            .members
                            .iter()
                            .filter_map(|m| ports.iter().find(|p| p.name == m.port))
                            .map(|p| p.mtu)
                            .min();
                    } else if let Some(port) = ports.iter().find(|p| p.name == on) {
                        if let Some(bond) = bonds.iter().find(|b| b.has_member(&on)) {
                            self.ctx.error(
                                &on_path,
                                format!("port {on} is a member of bond {0}; member ports carry no traffic of their own: use on = \"{0}\"", bond.name),
                            );
                        }
                        lower_mtu = Some(port.mtu);
                    } else {
                        self.ctx
                            .error(&on_path, unknown_endpoint(&on, ports, bonds));
                    }
                    on
                }
            };

            let vlan_path = format!("{path}.vlan");
            let vlan: Option<u16> = ri.vlan.and_then(|r| self.ctx.int(&vlan_path, r));
            if !on.is_empty() {
                let slot = (on.clone(), vlan);
                if let Some(first) = attachments.get(&slot) {
                    let line = self.ctx.line(first);
                    let what = match vlan {
                        Some(v) => format!("{on} vlan {v}"),
                        None => format!("{on} (untagged)"),
                    };
                    let at = if ri.vlan.is_some() {
                        &vlan_path
                    } else {
                        &on_path
                    };
                    self.ctx.error(
                        at,
                        format!("another interface already sits on {what} (line {line}); each (on, vlan) pair takes one interface: use a different vlan"),
                    );
                } else {
                    attachments.insert(slot, on_path.clone());
                }
            }

            let mut addrs = Vec::new();
            for (j, text) in ri
                .addresses
                .map(|l| l.0)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let apath = format!("{path}.addresses[{j}]");
                let Some(addr) = self.ctx.parse_with::<IpPrefix, _>(&apath, text, str::parse)
                else {
                    continue;
                };
                if let Some(problem) = host_address_problem(&addr) {
                    self.ctx.error(&apath, problem);
                    continue;
                }
                if let Some((owner, opath)) = addresses.get(&addr.addr) {
                    let line = self.ctx.line(opath);
                    self.ctx.error(
                        &apath,
                        format!("address {} is already assigned to interface {owner} (line {line}); an address may be configured once", addr.addr),
                    );
                    continue;
                }
                addresses.insert(addr.addr, (name.clone(), apath));
                addrs.push(addr);
            }

            let mtu_path = format!("{path}.mtu");
            let mtu: Option<u16> = ri.mtu.and_then(|r| self.ctx.int(&mtu_path, r));
            if let (Some(mtu), Some(lower)) = (mtu, lower_mtu) {
                if mtu > lower {
                    self.ctx.error(
                        &mtu_path,
                        format!("mtu = {mtu} is larger than the mtu {lower} of {on}; lower it or raise the mtu of the port(s) under {on}"),
                    );
                }
            }

            let tap = ri.tap.unwrap_or(true);
            let tap_path = format!("{path}.tap_name");
            let tap_name = match ri.tap_name {
                Some(tap_name) => {
                    if !tap {
                        self.ctx.error_at_key(
                            &tap_path,
                            "tap_name has no effect with tap = false; remove it or set tap = true"
                                .to_owned(),
                        );
                    }
                    let ok = !tap_name.is_empty()
                        && tap_name.len() <= MAX_IFNAME
                        && tap_name != "."
                        && tap_name != ".."
                        && tap_name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                    if !ok {
                        self.ctx.error(
                            &tap_path,
                            format!("{tap_name:?} is not a valid kernel interface name; use 1..=15 of A-Z a-z 0-9 _ . -"),
                        );
                    }
                    tap_name
                }
                None => default_tap_name(&name),
            };
            if tap && !name.is_empty() {
                if let Some(first) = tap_names.get(&tap_name) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &format!("{path}.name"),
                        format!("TAP name {tap_name:?} is also used by the interface at line {line}; set tap_name to a distinct name (at most 15 bytes)"),
                    );
                } else {
                    tap_names.insert(tap_name.clone(), format!("{path}.name"));
                }
            }

            result.push(Interface {
                name,
                on,
                vlan,
                addresses: addrs,
                mtu,
                tap,
                tap_name,
            });
        }
        result
    }

    // ---------------------------------------------------------------- [[route]]

    fn routes(
        &mut self,
        raw: Vec<RawRoute>,
        interfaces: &[Interface],
        ports: &[Port],
        bonds: &[Bond],
    ) -> Vec<Route> {
        let mut result = Vec::with_capacity(raw.len());
        let mut prefixes: HashMap<IpPrefix, String> = HashMap::new();
        for (i, rr) in raw.into_iter().enumerate() {
            let path = format!("route[{i}]");
            let prefix_path = format!("{path}.prefix");
            let prefix: Option<IpPrefix> = match &rr.prefix {
                None => {
                    self.ctx.error(
                        &prefix_path,
                        "missing required key `prefix`: the destination network, e.g. `prefix = \"0.0.0.0/0\"`".to_owned(),
                    );
                    None
                }
                Some(text) => self.ctx.parse_with(&prefix_path, text, str::parse),
            };
            if let Some(p) = prefix {
                if !p.is_network() {
                    let ones = p.len;
                    self.ctx.error(
                        &prefix_path,
                        format!("prefix {p} has host bits set: the bits after the first {ones} must be zero; did you mean \"{}\"?", p.network()),
                    );
                } else if let Some(first) = prefixes.get(&p) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &prefix_path,
                        format!("duplicate route for {p} (also at line {line}); keep one route per prefix"),
                    );
                } else {
                    prefixes.insert(p, prefix_path.clone());
                }
            }

            let via_path = format!("{path}.via");
            let via: Option<IpAddr> = rr.via.as_ref().and_then(|t| {
                self.ctx.parse_with(&via_path, t, |s| {
                    s.parse().map_err(|_| {
                        InvalidValue(format!("{s:?} is not an IP address; write the gateway address without a prefix length, like \"192.0.2.254\" or \"2001:db8::1\""))
                    })
                })
            });

            let iface_path = format!("{path}.interface");
            let interface = match &rr.interface {
                Some(name) if interfaces.iter().any(|x| &x.name == name) => Some(name.clone()),
                Some(name) => {
                    let names: Vec<&str> = interfaces
                        .iter()
                        .filter(|x| !x.name.is_empty())
                        .map(|x| x.name.as_str())
                        .collect();
                    let is_lower = ports.iter().any(|p| &p.name == name)
                        || bonds.iter().any(|b| &b.name == name);
                    let message = if is_lower {
                        format!(
                            "{name:?} is a port or bond; routes leave through an [[interface]]: {}",
                            known(&names, "interface")
                        )
                    } else {
                        format!("unknown interface {name:?}; {}", known(&names, "interface"))
                    };
                    self.ctx.error(&iface_path, message);
                    Some(name.clone())
                }
                None => None,
            };

            if rr.via.is_none() && rr.interface.is_none() {
                self.ctx.error(
                    &path,
                    "a route needs `via` (a gateway), `interface` (a directly connected network), or both".to_owned(),
                );
            }

            if let (Some(p), Some(gw)) = (prefix, via) {
                if p.is_ipv4() != gw.is_ipv4() {
                    self.ctx.error(
                        &via_path,
                        format!("gateway {gw} is {} but prefix {p} is {}; use a gateway of the same family", family(&gw), family(&p.addr)),
                    );
                } else {
                    self.check_gateway(&via_path, gw, interface.as_deref(), interfaces);
                }
            }
            if let Some(p) = prefix {
                result.push(Route {
                    prefix: p,
                    via,
                    interface,
                });
            }
        }
        result
    }

    /// A gateway must be on a connected subnet (of the named interface, if any), not our own.
    fn check_gateway(
        &mut self,
        path: &str,
        gw: IpAddr,
        interface: Option<&str>,
        interfaces: &[Interface],
    ) {
        if let Some(own) = interfaces
            .iter()
            .find(|x| x.addresses.iter().any(|a| a.addr == gw))
        {
            self.ctx.error(
                path,
                format!("gateway {gw} is this router's own address on interface {}; use the neighbor's address", own.name),
            );
            return;
        }
        let link_local = match gw {
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
            IpAddr::V4(_) => false,
        };
        let candidates: Vec<&Interface> = interfaces
            .iter()
            .filter(|x| interface.is_none_or(|name| x.name == name))
            .collect();
        if link_local {
            if interface.is_none() {
                self.ctx.error(
                    path,
                    format!("link-local gateway {gw} is ambiguous without an interface; add `interface = \"...\"` to this route"),
                );
            }
            return;
        }
        if interface.is_some() && candidates.is_empty() {
            return; // unknown interface, reported already
        }
        let reachable = candidates
            .iter()
            .any(|x| x.addresses.iter().any(|a| a.contains(&gw)));
        if !reachable {
            let message = match interface {
                Some(name) => format!("gateway {gw} is not on any subnet of interface {name}; use a neighbor address inside one of its address prefixes, or add an address covering it"),
                None => format!("gateway {gw} is not on any interface's subnet; use a neighbor address inside a configured prefix, or add the interface's address"),
            };
            self.ctx.error(path, message);
        }
    }

    // ---------------------------------------------------------------- [forward]

    /// The forwarding mode, checked first because it decides which sections are allowed.
    fn forward_mode(&mut self, raw: Option<&RawForward>) -> Option<ForwardMode> {
        let Some(raw) = raw else {
            self.ctx.error(
                "forward",
                "missing required section [forward]; add [forward] with mode = \"xconnect\" and pairs = [[\"p0\", \"p1\"]], or with mode = \"router\"".to_owned(),
            );
            return None;
        };
        match &raw.mode {
            None => {
                self.ctx.error(
                    "forward.mode",
                    "missing required key `mode`: \"xconnect\" (pairs of endpoints) or \"router\" (IP routing)".to_owned(),
                );
                None
            }
            Some(text) => self.ctx.parse_with("forward.mode", text, str::parse),
        }
    }

    /// `[[interface]]` / `[[route]]` tables in xconnect mode.
    fn router_only(&mut self, section: &str, present: bool) {
        if present {
            self.ctx.error(
                &format!("{section}[0]"),
                format!("[[{section}]] is used only with forward.mode = \"router\"; remove the [[{section}]] tables or set mode = \"router\""),
            );
        }
    }

    fn forward(
        &mut self,
        raw: Option<RawForward>,
        mode: Option<ForwardMode>,
        ports: &[Port],
        bonds: &[Bond],
        interfaces: &[Interface],
    ) -> Forward {
        let (Some(raw), Some(mode)) = (raw, mode) else {
            return Forward::Router;
        };
        match mode {
            ForwardMode::Router => {
                if raw.pairs.is_some() {
                    self.ctx.error_at_key(
                        "forward.pairs",
                        "pairs is used only with mode = \"xconnect\"; in router mode traffic follows [[route]]s between [[interface]]s: remove pairs".to_owned(),
                    );
                }
                if interfaces.is_empty() {
                    self.ctx.error(
                        "forward.mode",
                        "mode = \"router\" needs at least one [[interface]] to route between; add [[interface]] tables (name, on, addresses) or use mode = \"xconnect\"".to_owned(),
                    );
                }
                Forward::Router
            }
            ForwardMode::Xconnect => Forward::Xconnect {
                pairs: self.pairs(raw.pairs, ports, bonds),
            },
        }
    }

    fn pairs(
        &mut self,
        raw: Option<List<List<String>>>,
        ports: &[Port],
        bonds: &[Bond],
    ) -> Vec<(String, String)> {
        let list = match raw {
            None => {
                self.ctx.error(
                    "forward.pairs",
                    "mode = \"xconnect\" needs `pairs`: which endpoints are joined, e.g. pairs = [[\"p0\", \"p1\"]]".to_owned(),
                );
                return Vec::new();
            }
            Some(List(list)) if list.is_empty() => {
                self.ctx.error(
                    "forward.pairs",
                    "pairs is empty; list at least one pair of ports or bonds, e.g. [[\"p0\", \"p1\"]]".to_owned(),
                );
                return Vec::new();
            }
            Some(List(list)) => list,
        };
        let mut used: HashMap<String, String> = HashMap::new();
        let mut pairs = Vec::new();
        for (i, List(pair)) in list.into_iter().enumerate() {
            let ppath = format!("forward.pairs[{i}]");
            let [a, b] = match <[String; 2]>::try_from(pair) {
                Ok(two) => two,
                Err(other) => {
                    self.ctx.error(
                        &ppath,
                        format!("a pair has exactly two endpoints, like [\"p0\", \"p1\"], but this one has {}", other.len()),
                    );
                    continue;
                }
            };
            if a == b {
                self.ctx.error(
                    &format!("{ppath}[1]"),
                    format!(
                        "{a:?} is paired with itself; a pair joins two different ports or bonds"
                    ),
                );
                continue;
            }
            for (j, endpoint) in [&a, &b].into_iter().enumerate() {
                let epath = format!("{ppath}[{j}]");
                let is_bond = bonds.iter().any(|x| &x.name == endpoint);
                let is_port = ports.iter().any(|x| &x.name == endpoint);
                if !is_bond && !is_port {
                    self.ctx
                        .error(&epath, unknown_endpoint(endpoint, ports, bonds));
                } else if let Some(bond) = bonds.iter().find(|x| x.has_member(endpoint)) {
                    self.ctx.error(
                        &epath,
                        format!("port {endpoint} is a member of bond {0}; member ports carry no traffic of their own: use \"{0}\"", bond.name),
                    );
                } else if let Some(first) = used.get(endpoint) {
                    let line = self.ctx.line(first);
                    self.ctx.error(
                        &epath,
                        format!("{endpoint} is already in {first} (line {line}); each port or bond can be in one pair only"),
                    );
                } else {
                    used.insert(endpoint.clone(), epath);
                }
            }
            pairs.push((a, b));
        }
        pairs
    }

    // ---------------------------------------------------------------- [management]

    fn management(&mut self, raw: Option<RawManagement>) -> Management {
        let mut mgmt = Management::default();
        let Some(raw) = raw else { return mgmt };
        if let Some(socket) = raw.socket {
            let path = "management.socket";
            if !socket.starts_with('/') {
                self.ctx.error(
                    path,
                    format!("socket {socket:?} is not an absolute path; write the full path, e.g. \"{DEFAULT_SOCKET}\""),
                );
            } else if socket.len() > MAX_SOCKET_PATH || socket.contains('\0') {
                self.ctx.error(
                    path,
                    format!("socket path is {} bytes; a Unix socket path has at most {MAX_SOCKET_PATH}: use a shorter path", socket.len()),
                );
            }
            mgmt.socket = PathBuf::from(socket);
        }
        if let Some(text) = &raw.metrics {
            mgmt.metrics = self.ctx.parse_with("management.metrics", text, |s| {
                let addr: SocketAddr = s.parse().map_err(|_| {
                    InvalidValue(format!("{s:?} is not an address:port; write \"127.0.0.1:9477\" or \"[::1]:9477\" (names such as localhost are not resolved)"))
                })?;
                if !addr.ip().is_loopback() {
                    return Err(InvalidValue(format!("metrics address {addr} is not a loopback address; the metrics endpoint has no authentication, so it listens on 127.0.0.1 or ::1 only: use \"127.0.0.1:{}\"", addr.port())));
                }
                if addr.port() == 0 {
                    return Err(InvalidValue("port 0 picks a random port; choose a fixed one, e.g. \"127.0.0.1:9477\"".to_owned()));
                }
                Ok(addr)
            });
        }
        mgmt
    }

    // ---------------------------------------------------------------- mbufs

    /// The pool must fill every RX ring, cover every TX ring and in-flight bursts.
    fn mbuf_sizing(&mut self, dp: &Dataplane, ports: &[Port]) {
        let Some(workers) = self.workers else { return };
        if ports.is_empty() {
            return;
        }
        let workers = workers as u64;
        let rings: u64 = ports
            .iter()
            .map(|p| {
                u64::from(p.queues) * (u64::from(p.rx_descriptors) + u64::from(p.tx_descriptors))
            })
            .sum();
        let bursts = workers * u64::from(dp.burst) * ports.len() as u64 * 2;
        let needed = rings + bursts + MBUF_HEADROOM;
        if u64::from(dp.mbufs) < needed {
            self.ctx.error(
                "dataplane.mbufs",
                format!("mbufs = {} is too small: at least {needed} are needed ({rings} for RX/TX descriptor rings of {} port(s) + {bursts} for worker bursts + {MBUF_HEADROOM} headroom); set mbufs = {needed} or more (2^n - 1 sizes such as {} use memory best), or lower the descriptor counts", dp.mbufs, ports.len(), (needed + 1).checked_next_power_of_two().map_or(needed, |p| p - 1)),
            );
        }
    }
}

/// An example name for "missing name" messages.
fn example_name(kind: &str) -> &'static str {
    match kind {
        "port" => "p0",
        "bond" => "bond0",
        _ => "wan0",
    }
}

/// `bond[3].name` -> `3`.
fn index_of(path: &str) -> &str {
    path.split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("?", |(n, _)| n)
}

fn bond_names_at(names: &[String], index: usize) -> &str {
    names.get(index).map_or("?", String::as_str)
}

/// `net_memif0` -> `net_memif1`.
fn bump_vdev(name: &str) -> String {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let n: u64 = name[stem.len()..].parse().unwrap_or(0);
    format!("{stem}{}", n.saturating_add(1))
}

/// "fl-" + name, cut to the 15 bytes Linux allows.
fn default_tap_name(name: &str) -> String {
    let mut tap = format!("fl-{name}");
    while tap.len() > MAX_IFNAME {
        tap.pop();
    }
    tap
}

fn unknown_endpoint(name: &str, ports: &[Port], bonds: &[Bond]) -> String {
    let ports: Vec<&str> = ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| p.name.as_str())
        .collect();
    let bonds: Vec<&str> = bonds
        .iter()
        .filter(|b| !b.name.is_empty())
        .map(|b| b.name.as_str())
        .collect();
    format!(
        "unknown port or bond {name:?}; {}; {}",
        known(&ports, "port"),
        known(&bonds, "bond")
    )
}

/// Why an interface address cannot be a host address, if it cannot.
fn host_address_problem(p: &IpPrefix) -> Option<String> {
    let a = p.addr;
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Some(format!(
            "{} is not a usable host address (unspecified, loopback or multicast); use the interface's unicast address",
            a
        ));
    }
    if let IpAddr::V4(v4) = a {
        if v4.is_broadcast() {
            return Some(format!("{v4} is the broadcast address; use a host address"));
        }
        // /31 (RFC 3021) and /32 have no network or broadcast address.
        if p.len <= 30 {
            let host_bits = u32::from(v4) & (u32::MAX >> p.len);
            if host_bits == 0 {
                return Some(format!("{p} is the network address of its subnet, not a host address; use a host inside it, e.g. \"{}/{}\"", std::net::Ipv4Addr::from(u32::from(v4) | 1), p.len));
            }
            if host_bits == u32::MAX >> p.len {
                return Some(format!("{p} is the broadcast address of its subnet, not a host address; use a host inside it"));
            }
        }
    }
    None
}
