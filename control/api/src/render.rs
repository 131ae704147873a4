//! How answers read for people: the tables and lines `fastlag ctl` prints (`--json` prints
//! the server's JSON instead).

use crate::{
    BondView, CaptureView, DrainView, EventView, InterfaceView, LacpBond, LacpMember, Participant,
    Pong, PortView, ReloadSummary, RestartView, RoutesView, Stats, WhyBond,
};

/// A plain text table: columns padded to their widest cell.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            rows: vec![head.iter().map(|s| s.to_string()).collect()],
        }
    }

    fn row(&mut self, r: Vec<String>) {
        self.rows.push(r);
    }

    fn render(&self, indent: &str) -> String {
        let n = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let w: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        for r in &self.rows {
            let mut line = indent.to_string();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<width$}  ", width = w[i]));
                }
            }
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }
}

/// A value as a table cell: "-" for none, "yes"/"no" for flags.
trait Cell {
    fn cell(&self) -> String;
}

impl Cell for str {
    fn cell(&self) -> String {
        self.to_string()
    }
}

impl Cell for String {
    fn cell(&self) -> String {
        self.clone()
    }
}

impl Cell for bool {
    fn cell(&self) -> String {
        if *self { "yes" } else { "no" }.to_string()
    }
}

macro_rules! numeric_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
numeric_cell!(u8, u16, u32, u64, usize);

impl<T: Cell> Cell for Option<T> {
    fn cell(&self) -> String {
        self.as_ref().map_or_else(|| "-".to_string(), Cell::cell)
    }
}

fn t<T: Cell + ?Sized>(v: &T) -> String {
    v.cell()
}

fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 1e6 => format!("{:.2}M", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1}k", x / 1e3),
        Some(x) => format!("{x:.0}"),
    }
}

fn hex16(v: Option<u16>) -> String {
    v.map_or("-".into(), |k| format!("{k:#06x}"))
}

fn one_decimal(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}"))
}

fn met(yes: bool) -> &'static str {
    if yes {
        "met"
    } else {
        "NOT met"
    }
}

/// `ping`.
pub fn pong(p: &Pong) -> String {
    format!("fastlag up {:.1} s\n", p.uptime_ms as f64 / 1e3)
}

/// `show bonds`: one line per bond.
pub fn bonds(v: &[BondView]) -> String {
    let mut tb = Table::new(&[
        "BOND",
        "MODE",
        "HASH",
        "SYSTEM",
        "AGGREGATOR",
        "PARTNER",
        "MIN_LINKS",
        "DISTRIBUTING",
    ]);
    for b in v {
        let agg = b.active_aggregator.as_ref();
        tb.row(vec![
            t(&b.name),
            t(&b.mode),
            t(&b.hash),
            t(&b.system),
            agg.map_or("-".into(), |a| a.id.clone()),
            agg.map_or("-".into(), |a| {
                format!("{} key {}", a.partner_system, hex16(Some(a.partner_key)))
            }) + &individual_members(b),
            format!("{} ({})", b.min_links, met(b.min_links_met)),
            format!(
                "{}/{} {}",
                b.distributing.len(),
                b.members.len(),
                b.distributing.join(",")
            ),
        ]);
    }
    tb.render("")
}

/// " [partner individual: m0,m1]" when the partner sends Aggregation = 0 on some
/// members, else "".
fn individual_members(b: &BondView) -> String {
    let names: Vec<&str> = b
        .members
        .iter()
        .filter(|m| m.partner_individual)
        .map(|m| m.name.as_str())
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" [partner individual: {}]", names.join(","))
    }
}

/// The partner's LACPDUs on this member say Aggregation = 0 (state bit 2 clear).
fn partner_says_individual(m: &LacpMember) -> bool {
    m.partner_from_lacpdu && m.partner.state & 0x04 == 0
}

/// The Mux state with why it waits: WAITING is also where a member kept out by selection
/// (standby, another aggregator) stays, with no timer running.
fn mux_with_cause(m: &LacpMember) -> String {
    if m.mux_state != "WAITING" {
        return m.mux_state.clone();
    }
    match m.timers_ms.wait_while {
        Some(ms) => format!("WAITING (aggregate wait, {ms:.0} ms left)"),
        None if m.selected == "standby" => {
            "WAITING (held in standby by selection; attaches when selected)".into()
        }
        None => "WAITING (for the other members' aggregate wait)".into(),
    }
}

/// `show bond NAME`.
pub fn bond(b: &BondView) -> String {
    let mut s = format!(
        "bond {}: {} mode, hash {}, mac {}\n",
        b.name,
        b.mode,
        t(&b.hash),
        b.mac
    );
    if b.system.is_some() {
        s += &format!(
            "  LACP: system {}, admin key {}, {} {}, selection {}, max_active {}\n",
            t(&b.system),
            hex16(b.admin_key),
            t(&b.activity),
            t(&b.rate),
            t(&b.selection),
            t(&b.max_active)
        );
        match &b.active_aggregator {
            None => s += "  active aggregator: none\n",
            Some(a) => {
                s += &format!(
                    "  active aggregator: {} (our key {}, partner {} key {}{})\n",
                    a.id,
                    hex16(Some(a.actor_key)),
                    a.partner_system,
                    hex16(Some(a.partner_key)),
                    if a.individual { ", individual" } else { "" }
                )
            }
        }
    }
    s += &format!(
        "  min_links {}: {}; distributing: {}\n",
        b.min_links,
        met(b.min_links_met),
        if b.distributing.is_empty() {
            "none".to_string()
        } else {
            b.distributing.join(", ")
        }
    );
    let mut tb = Table::new(&[
        "MEMBER", "LINK", "SPEED", "DUPLEX", "SELECTED", "COLL", "DIST", "RX pps", "TX pps",
        "RX bit/s", "TX bit/s", "REASON",
    ]);
    for m in &b.members {
        tb.row(vec![
            t(&m.name),
            if m.link_up { "up" } else { "down" }.into(),
            m.speed_mbps.map_or("unknown".into(), |x| format!("{x}M")),
            t(&m.duplex),
            if m.partner_individual {
                format!("{} (partner individual)", t(&m.selected))
            } else {
                t(&m.selected)
            },
            t(&m.collecting),
            t(&m.distributing),
            rate(m.rx_pps),
            rate(m.tx_pps),
            rate(m.rx_bps),
            rate(m.tx_bps),
            m.reason.clone().unwrap_or_default(),
        ]);
    }
    s + &tb.render("  ")
}

fn state_names(p: &Participant) -> String {
    if p.state_names.is_empty() {
        "none".into()
    } else {
        p.state_names.join(" ")
    }
}

/// `show lacp [--detail]`.
pub fn lacp(v: &[LacpBond], detail: bool) -> String {
    let mut s = String::new();
    for b in v {
        s += &format!(
            "bond {}: system {}, admin key {}, {} {}, active aggregator {}, min_links {} ({})\n",
            b.bond,
            t(&b.system),
            hex16(b.admin_key),
            t(&b.activity),
            t(&b.rate),
            t(&b.active_aggregator),
            t(&b.min_links),
            met(b.min_links_met == Some(true))
        );
        for m in &b.members {
            let (a, p) = (&m.actor, &m.partner);
            s += &format!(
                "\n  member {} ({}): link {}, {}, {}{}\n",
                m.name,
                m.mac,
                if m.link_up { "up" } else { "down" },
                m.selected,
                if m.distributing {
                    "distributing".to_string()
                } else {
                    format!("not distributing: {}", t(&m.reason))
                },
                if m.drained { " [drained]" } else { "" }
            );
            if partner_says_individual(m) {
                s += "    partner says Individual (Aggregation = 0): it will not aggregate this link\n";
            }
            let mut tb = Table::new(&["", "actor (us)", "partner"]);
            let row =
                |f: &dyn Fn(&Participant) -> String, name: &str| vec![name.to_string(), f(a), f(p)];
            tb.row(row(
                &|x| format!("{},{}", x.system_priority, x.system),
                "system",
            ));
            tb.row(row(&|x| hex16(Some(x.key)), "key"));
            tb.row(row(
                &|x| format!("{}/{}", x.port_priority, x.port),
                "port priority/number",
            ));
            tb.row(row(
                &|x| format!("{:#04x} {}", x.state, state_names(x)),
                "state",
            ));
            s += &tb.render("    ");
            s += &format!(
                "    partner info from {}, matched {}; receive {}, mux {}, periodic {}, aggregator {}\n",
                if m.partner_from_lacpdu { "LACPDUs" } else { "defaults" },
                t(&m.matched),
                m.rx_state,
                mux_with_cause(m),
                m.periodic_state,
                t(&m.aggregator)
            );
            let c = &m.counters;
            s += &format!(
                "    LACPDUs rx {} tx {}; last rx {} ({} s ago), last tx {} ({} s ago)\n",
                c.lacpdus_rx,
                c.lacpdus_tx,
                t(&m.last_rx),
                one_decimal(m.last_rx_age_s),
                t(&m.last_tx),
                one_decimal(m.last_tx_age_s),
            );
            if detail {
                let tm = &m.timers_ms;
                let ms = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.0} ms"));
                s += &format!(
                    "    timers: current_while {}, periodic {}, wait_while {}, actor_churn {}, partner_churn {}\n",
                    ms(tm.current_while),
                    ms(tm.periodic),
                    ms(tm.wait_while),
                    ms(tm.actor_churn),
                    ms(tm.partner_churn)
                );
                s += &format!(
                    "    churn: actor {} partner {}; ntt {}, fallback {}, loopback {}\n",
                    m.actor_churn,
                    m.partner_churn,
                    t(&m.ntt),
                    t(&m.fallback),
                    t(&m.loopback)
                );
                let g = &m.lacpdu_departures;
                s += &format!(
                    "    LACPDU departures: {} sent, interval min {} / mean {} / max {} ms; slow frames not sent: {}\n",
                    g.count,
                    one_decimal(Some(g.min_ms)),
                    one_decimal(Some(g.mean_ms)),
                    one_decimal(Some(g.max_ms)),
                    m.slow_tx_failed
                );
                s += "    802.3ad counters:";
                for (k, v) in c.named() {
                    s += &format!(" {k}={v}");
                }
                s += "\n";
            }
        }
        s += "\n";
    }
    s
}

/// `why BOND`.
pub fn why(v: &WhyBond) -> String {
    let up = v.members.iter().filter(|m| m.distributing).count();
    let mut s = format!(
        "bond {} ({}): {} of {} members distributing\n",
        v.bond,
        v.mode,
        up,
        v.members.len()
    );
    for m in &v.members {
        if m.distributing {
            s += &format!("  {}: distributing\n", m.member);
            continue;
        }
        s += &format!(
            "  {}: NOT distributing [{}]: {}\n",
            m.member,
            t(&m.class),
            t(&m.reason)
        );
        for e in &m.evidence {
            s += &format!("      - {e}\n");
        }
    }
    s
}

/// `show ports`.
pub fn ports(v: &[PortView]) -> String {
    let mut tb = Table::new(&[
        "PORT",
        "BOND",
        "LINK",
        "RX pps",
        "TX pps",
        "RX bit/s",
        "TX bit/s",
        "RX pkts",
        "TX pkts",
        "RX missed",
        "DROPS",
        "DEVICE",
    ]);
    for p in v {
        tb.row(vec![
            t(&p.name),
            t(&p.bond),
            t(&p.link),
            rate(Some(p.rx_pps)),
            rate(Some(p.tx_pps)),
            rate(Some(p.rx_bps)),
            rate(Some(p.tx_bps)),
            t(&p.rx_packets),
            t(&p.tx_packets),
            t(&p.rx_missed),
            t(&p.drops),
            t(&p.device),
        ]);
    }
    tb.render("")
}

/// `show stats`.
pub fn stats(v: &Stats) -> String {
    let v = &v.snapshot;
    let mut tb = Table::new(&[
        "PORT",
        "PMD rx",
        "PMD tx",
        "rx missed",
        "rx errors",
        "tx errors",
        "workers rx",
        "workers tx",
        "not collecting",
        "bond down",
        "tx full",
        "slow to control",
    ]);
    for p in &v.ports {
        let (d, w) = (&p.pmd, &p.workers);
        tb.row(vec![
            t(&p.name),
            t(&d.rx_packets),
            t(&d.tx_packets),
            t(&d.rx_missed),
            t(&d.rx_errors),
            t(&d.tx_errors),
            t(&w.rx),
            t(&w.tx),
            t(&w.drop_not_collecting),
            t(&w.drop_bond_down),
            t(&w.drop_tx_full),
            t(&w.slow_to_control),
        ]);
    }
    let mut s = tb.render("");
    let mut wt = Table::new(&[
        "WORKER",
        "loops",
        "busy polls",
        "idle polls",
        "rx",
        "tx",
        "drops",
        "cycles/pkt",
    ]);
    for w in &v.workers {
        wt.row(vec![
            t(&w.index),
            t(&w.loops),
            t(&w.busy_polls),
            t(&w.idle_polls),
            t(&w.rx),
            t(&w.tx),
            t(&w.drops),
            w.cycles_per_packet
                .map_or("-".into(), |x| format!("{x:.0}")),
        ]);
    }
    s += "\n";
    s += &wt.render("");
    if !v.interfaces.is_empty() {
        s += "\n";
        s += &iface_rows(
            v.interfaces
                .iter()
                .map(|i| (i.name.as_str(), None, Some(i))),
        );
    }
    s
}

fn iface_rows<'a>(
    it: impl Iterator<
        Item = (
            &'a str,
            Option<&'a Option<String>>,
            Option<&'a crate::IfaceSnapshot>,
        ),
    >,
) -> String {
    let mut tb = Table::new(&[
        "INTERFACE",
        "TAP",
        "rx",
        "forwarded",
        "to kernel",
        "policed",
        "ring full",
        "drops",
        "egress failed",
    ]);
    let sum = |m: &std::collections::BTreeMap<String, u64>| -> u64 { m.values().sum() };
    for (name, tap, c) in it {
        tb.row(vec![
            name.to_string(),
            tap.map_or("-".into(), t),
            c.map_or("-".into(), |c| t(&c.rx)),
            c.map_or("-".into(), |c| t(&c.forwarded)),
            c.map_or(0, |c| sum(&c.exceptions)).to_string(),
            c.map_or(0, |c| sum(&c.policed)).to_string(),
            c.map_or("-".into(), |c| t(&c.exception_ring_full)),
            c.map_or(0, |c| sum(&c.drops)).to_string(),
            c.map_or("-".into(), |c| t(&c.egress_failed)),
        ]);
    }
    tb.render("")
}

/// `show interfaces`.
pub fn interfaces(v: &[InterfaceView]) -> String {
    iface_rows(
        v.iter()
            .map(|i| (i.name.as_str(), Some(&i.tap), i.counters.as_ref())),
    )
}

/// `show routes`.
pub fn routes(v: &RoutesView) -> String {
    let mut s = format!(
        "FIB version {}: {} IPv4 and {} IPv6 prefixes routed, {} routes and {} neighbors mirrored from the kernel\n",
        v.fib_version, v.routes_v4, v.routes_v6, v.kernel_routes, v.kernel_neighbors
    );
    let mut tb = Table::new(&[
        "PREFIX",
        "ORIGIN",
        "INTERFACE",
        "GATEWAY",
        "ACTIVE",
        "WEIGHT",
        "STATE",
    ]);
    for r in &v.routes {
        tb.row(vec![
            t(&r.prefix),
            t(&r.origin),
            t(&r.interface),
            r.gateway.clone().unwrap_or_else(|| "direct".into()),
            t(&r.active),
            t(&r.weight),
            t(&r.state),
        ]);
    }
    s += &tb.render("");
    s
}

/// One line of `show events`.
pub fn event(e: &EventView) -> String {
    if e.is_admin() {
        return format!("{} {} {}: {}", e.at, e.bond, e.member, e.to);
    }
    format!(
        "{} {} {}: {} {} -> {} ({})",
        e.at, e.bond, e.member, e.machine, e.from, e.to, e.cause
    )
}

/// `member drain|undrain`.
pub fn drain(v: &DrainView) -> String {
    format!("{} of {}: {}\n", v.member, v.bond, v.state)
}

/// `reload`: the changes applied, one per line.
/// `fastlag ctl restart`.
pub fn restart(v: &RestartView) -> String {
    let how = if v.mode == "exit" {
        "exits (status 75) for the service manager to start the new binary"
    } else {
        "replaces itself with the binary at the same path"
    };
    format!(
        "restart: handoff state goes to {}; the process {how}\n",
        v.state_file
    )
}

/// `fastlag ctl reload`.
pub fn reload(v: &ReloadSummary) -> String {
    if v.changes.is_empty() {
        return "reload: the configuration file matches what runs; nothing changed\n".to_owned();
    }
    let mut s = format!("reload applied ({} change(s)):\n", v.changes.len());
    for c in &v.changes {
        s.push_str("  - ");
        s.push_str(c);
        s.push('\n');
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A capture as a libpcap file (microsecond timestamps, LINKTYPE_ETHERNET), with how many
/// frames it holds, received and sent.
pub fn pcap(v: &CaptureView) -> Result<(Vec<u8>, usize, usize), String> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    let (mut rx, mut tx) = (0, 0);
    for f in &v.frames {
        let bytes = unhex(&f.hex).ok_or("capture: bad frame bytes from the server")?;
        let at: u128 = f
            .at_ns
            .parse()
            .map_err(|_| "capture: bad timestamp from the server")?;
        out.extend_from_slice(&((at / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((at / 1000 % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.orig_len.max(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
        if f.direction == "tx" {
            tx += 1;
        } else {
            rx += 1;
        }
    }
    Ok((out, rx, tx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BondMember;

    #[test]
    fn tables_pad_columns_and_trim_lines() {
        let mut tb = Table::new(&["A", "BB"]);
        tb.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(tb.render("> "), "> A    BB\n> xyz  1\n");
    }

    #[test]
    fn cells_and_rates_read_as_before() {
        assert_eq!(t(&None::<String>), "-");
        assert_eq!(t(&true), "yes");
        assert_eq!(rate(Some(1_500_000.0)), "1.50M");
        assert_eq!(rate(Some(1500.0)), "1.5k");
        assert_eq!(hex16(Some(0x21)), "0x0021");
    }

    /// A partner that sends Aggregation = 0 is marked where people look (`show bonds`,
    /// `show bond`, `show lacp`), and a member held in WAITING says why it waits.
    #[test]
    fn individual_partners_and_waiting_members_are_explained() {
        let m0 = BondMember {
            name: "m0".into(),
            selected: Some("selected".into()),
            partner_individual: true,
            ..Default::default()
        };
        let m1 = BondMember {
            name: "m1".into(),
            selected: Some("standby".into()),
            ..Default::default()
        };
        let b = BondView {
            name: "bond0".into(),
            members: vec![m0, m1],
            ..Default::default()
        };
        let all = bonds(std::slice::from_ref(&b));
        assert!(all.contains("[partner individual: m0]"), "{all}");
        let one = bond(&b);
        assert!(one.contains("selected (partner individual)"), "{one}");
        assert_eq!(one.matches("partner individual").count(), 1, "{one}");

        let individual = LacpMember {
            name: "m0".into(),
            partner_from_lacpdu: true,
            partner: Participant {
                state: 0x39, // activity, aggregation clear, sync, collecting, distributing
                ..Default::default()
            },
            mux_state: "COLLECTING_DISTRIBUTING".into(),
            selected: "selected".into(),
            ..Default::default()
        };
        let standby = LacpMember {
            name: "m1".into(),
            partner_from_lacpdu: true,
            partner: Participant {
                state: 0x3f,
                ..Default::default()
            },
            mux_state: "WAITING".into(),
            selected: "standby".into(),
            ..Default::default()
        };
        let mut waiting = standby.clone();
        waiting.name = "m2".into();
        waiting.selected = "selected".into();
        waiting.timers_ms.wait_while = Some(1500.0);
        let v = LacpBond {
            bond: "bond0".into(),
            members: vec![individual, standby, waiting],
            ..Default::default()
        };
        let text = lacp(&[v], false);
        assert_eq!(text.matches("partner says Individual").count(), 1, "{text}");
        assert!(
            text.contains("mux WAITING (held in standby by selection"),
            "{text}"
        );
        assert!(
            text.contains("mux WAITING (aggregate wait, 1500 ms left)"),
            "{text}"
        );
    }

    #[test]
    fn pcap_has_a_header_and_one_record_per_frame() {
        let v = CaptureView {
            bond: "b".into(),
            recorded_total: 1,
            kept: 1,
            frames: vec![crate::CapturedFrame {
                at_ns: "1500000000".into(),
                member: Some("m".into()),
                direction: "tx".into(),
                orig_len: 2,
                hex: "0a0b".into(),
            }],
        };
        let (bytes, rx, tx) = pcap(&v).unwrap();
        assert_eq!((rx, tx), (0, 1));
        assert_eq!(bytes.len(), 24 + 16 + 2);
        assert_eq!(&bytes[bytes.len() - 2..], &[0x0a, 0x0b]);
    }
}
