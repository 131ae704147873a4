//! The exposition text for one snapshot: one HELP/TYPE block per metric family.

use std::fmt::Write as _;

use crate::status::{
    BondStatus, IfaceSnapshot, IfaceStatus, MemberLacp, MemberStatus, Mib, PortSnapshot, Scrape,
    WorkerSnapshot,
};

/// Label values escaped as the exposition format requires.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Builds the exposition text: one HELP/TYPE block per metric family.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", esc(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family whose samples come from `rows`.
    fn each<T>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        rows: &[T],
        labels: impl Fn(&T) -> Vec<(&'static str, String)>,
        value: impl Fn(&T) -> Option<f64>,
    ) {
        let samples: Vec<(Vec<(&'static str, String)>, f64)> = rows
            .iter()
            .filter_map(|r| value(r).map(|v| (labels(r), v)))
            .collect();
        if samples.is_empty() {
            return;
        }
        self.family(name, kind, help);
        for (l, v) in samples {
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.sample(name, &l, num(v));
        }
    }
}

/// Integers print without a fraction (exact comparison with the status file).
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A counter family: name suffix, help, and how to read it.
type Field<T> = (&'static str, &'static str, fn(&T) -> u64);

/// The exposition text for one snapshot.
pub fn render(s: &Scrape) -> String {
    let mut o = Out {
        text: String::with_capacity(16 * 1024),
    };
    let st = &s.control;
    let c = &s.counters;
    o.family(
        "fastlag_status_sequence",
        "gauge",
        "Sequence number of the snapshot served (the status file's \"sequence\").",
    );
    o.sample("fastlag_status_sequence", &[], s.sequence);
    o.family(
        "fastlag_uptime_seconds",
        "gauge",
        "Seconds since the control thread started.",
    );
    o.sample(
        "fastlag_uptime_seconds",
        &[],
        num(st.uptime_ms as f64 / 1e3),
    );

    // Ports: the PMD's counters, then what the workers counted.
    let port = |p: &PortSnapshot| vec![("port", p.name.clone())];
    type P = PortSnapshot;
    let pmd: [Field<P>; 8] = [
        ("rx_packets", "Packets received (PMD).", |p| {
            p.pmd.rx_packets
        }),
        ("tx_packets", "Packets sent (PMD).", |p| p.pmd.tx_packets),
        ("rx_bytes", "Bytes received (PMD).", |p| p.pmd.rx_bytes),
        ("tx_bytes", "Bytes sent (PMD).", |p| p.pmd.tx_bytes),
        ("rx_errors", "Erroneous packets received (PMD).", |p| {
            p.pmd.rx_errors
        }),
        ("tx_errors", "Failed transmissions (PMD).", |p| {
            p.pmd.tx_errors
        }),
        (
            "rx_missed",
            "Packets dropped for lack of an RX descriptor (PMD).",
            |p| p.pmd.rx_missed,
        ),
        ("rx_nombuf", "RX mbuf allocation failures (PMD).", |p| {
            p.pmd.rx_nombuf
        }),
    ];
    for (name, help, f) in pmd {
        o.each(
            &format!("fastlag_port_{name}_total"),
            "counter",
            help,
            &c.ports,
            port,
            |p| Some(f(p) as f64),
        );
    }
    o.each(
        "fastlag_port_worker_rx_packets_total",
        "counter",
        "Packets the workers received on the port.",
        &c.ports,
        port,
        |p| Some(p.workers.rx as f64),
    );
    o.each(
        "fastlag_port_worker_tx_packets_total",
        "counter",
        "Packets the workers sent on the port.",
        &c.ports,
        port,
        |p| Some(p.workers.tx as f64),
    );
    o.each(
        "fastlag_port_slow_to_control_total",
        "counter",
        "Slow-protocol frames the workers passed to the control thread.",
        &c.ports,
        port,
        |p| Some(p.workers.slow_to_control as f64),
    );
    let drops: Vec<(&P, &str, u64)> = c
        .ports
        .iter()
        .flat_map(|p| {
            let w = &p.workers;
            [
                (p, "tx_queue_full", w.drop_tx_full),
                (p, "no_egress", w.drop_no_egress),
                (p, "not_collecting", w.drop_not_collecting),
                (p, "bond_down", w.drop_bond_down),
                (p, "slow_ring_full", w.drop_slow_ring_full),
            ]
        })
        .collect();
    o.each(
        "fastlag_port_drops_total",
        "counter",
        "Frames the workers dropped, by reason.",
        &drops,
        |(p, r, _)| vec![("port", p.name.clone()), ("reason", r.to_string())],
        |(_, _, v)| Some(*v as f64),
    );

    // Bonds.
    type B = BondStatus;
    let bond = |b: &B| vec![("bond", b.name.clone()), ("mode", b.mode.clone())];
    o.each(
        "fastlag_bond_up",
        "gauge",
        "1 when the bond has a distributing member.",
        &st.bonds,
        bond,
        |b| Some(!b.distributing.is_empty() as u8 as f64),
    );
    o.each(
        "fastlag_bond_members",
        "gauge",
        "Configured members.",
        &st.bonds,
        bond,
        |b| Some(b.members.len() as f64),
    );
    o.each(
        "fastlag_bond_distributing_members",
        "gauge",
        "Members in the distribution table.",
        &st.bonds,
        bond,
        |b| Some(b.distributing.len() as f64),
    );
    o.each(
        "fastlag_bond_min_links",
        "gauge",
        "Fewest distributing members for the bond to be up.",
        &st.bonds,
        bond,
        |b| Some(b.min_links as f64),
    );
    o.each(
        "fastlag_bond_min_links_met",
        "gauge",
        "1 when at least min_links members distribute.",
        &st.bonds,
        bond,
        |b| Some((b.distributing.len() >= b.min_links.max(1) as usize) as u8 as f64),
    );
    o.each(
        "fastlag_bond_table_version",
        "gauge",
        "Version of the member table the workers use.",
        &st.bonds,
        bond,
        |b| Some(b.table_version as f64),
    );

    // Members.
    type M<'a> = (&'a B, &'a MemberStatus);
    let members: Vec<M> = st
        .bonds
        .iter()
        .flat_map(|b| b.members.iter().map(move |m| (b, m)))
        .collect();
    let mem = |(b, m): &M| vec![("bond", b.name.clone()), ("member", m.name.clone())];
    o.each(
        "fastlag_member_link_up",
        "gauge",
        "1 when the member's link is up.",
        &members,
        mem,
        |(_, m)| Some(m.link_up as u8 as f64),
    );
    o.each(
        "fastlag_member_speed_bits_per_second",
        "gauge",
        "Link speed, where known.",
        &members,
        mem,
        |(_, m)| m.speed_mbps.map(|s| s as f64 * 1e6),
    );
    o.each(
        "fastlag_member_collecting",
        "gauge",
        "1 when ingress on the member is accepted.",
        &members,
        mem,
        |(_, m)| Some(m.collecting as u8 as f64),
    );
    o.each(
        "fastlag_member_distributing",
        "gauge",
        "1 when the member carries egress.",
        &members,
        mem,
        |(_, m)| Some(m.distributing as u8 as f64),
    );
    o.each("fastlag_member_selected", "gauge", "1 when LACP selected the member (802.1AX SELECTED); static members: 1 when its link is up.", &members, mem, |(_, m)| Some(match &m.lacp {
        Some(l) => (l.selected == "selected") as u8 as f64,
        None => m.link_up as u8 as f64,
    }));
    o.each(
        "fastlag_member_standby",
        "gauge",
        "1 when LACP holds the member in STANDBY (max_active).",
        &members,
        mem,
        |(_, m)| {
            m.lacp
                .as_ref()
                .map(|l| (l.selected == "standby") as u8 as f64)
        },
    );
    let lacp: Vec<(&B, &MemberStatus, &MemberLacp)> = members
        .iter()
        .filter_map(|(b, m)| m.lacp.as_ref().map(|l| (*b, *m, l)))
        .collect();
    for (side, help) in [
        ("actor", "Our LACP state bits, one series per bit."),
        (
            "partner",
            "The partner's LACP state bits, one series per bit.",
        ),
    ] {
        let bits: Vec<(&B, &MemberStatus, usize, u8)> = lacp
            .iter()
            .flat_map(|(b, m, l)| {
                let v = if side == "actor" {
                    l.actor_state
                } else {
                    l.partner_state
                };
                (0..8).map(move |i| (*b, *m, i, (v >> i) & 1))
            })
            .collect();
        o.each(
            &format!("fastlag_lacp_{side}_state"),
            "gauge",
            help,
            &bits,
            |(b, m, i, _)| {
                vec![
                    ("bond", b.name.clone()),
                    ("member", m.name.clone()),
                    ("bit", lacp::PortState::BIT_NAMES[*i].to_string()),
                ]
            },
            |(_, _, _, v)| Some(*v as f64),
        );
    }
    type L<'a> = (&'a B, &'a MemberStatus, &'a MemberLacp);
    let lab = |(b, m, _): &L| vec![("bond", b.name.clone()), ("member", m.name.clone())];
    let mib: [Field<Mib>; 11] = [
        (
            "lacpdus_rx",
            "Valid LACPDUs received (dot3adAggPortStatsLACPDUsRx).",
            |c| c.lacpdus_rx,
        ),
        (
            "lacpdus_tx",
            "LACPDUs sent (dot3adAggPortStatsLACPDUsTx).",
            |c| c.lacpdus_tx,
        ),
        ("marker_pdus_rx", "Marker PDUs received.", |c| {
            c.marker_pdus_rx
        }),
        (
            "marker_response_pdus_rx",
            "Marker response PDUs received.",
            |c| c.marker_response_pdus_rx,
        ),
        (
            "marker_response_pdus_tx",
            "Marker response PDUs sent.",
            |c| c.marker_response_pdus_tx,
        ),
        (
            "unknown_rx",
            "Slow-protocol frames of an unknown subtype.",
            |c| c.unknown_rx,
        ),
        ("illegal_rx", "Malformed slow-protocol PDUs.", |c| {
            c.illegal_rx
        }),
        ("actor_churn", "Entries into actor churn.", |c| {
            c.actor_churn_count
        }),
        ("partner_churn", "Entries into partner churn.", |c| {
            c.partner_churn_count
        }),
        (
            "actor_sync_transitions",
            "Changes of our Synchronization bit.",
            |c| c.actor_sync_transitions,
        ),
        (
            "partner_sync_transitions",
            "Changes of the partner's Synchronization bit.",
            |c| c.partner_sync_transitions,
        ),
    ];
    for (name, help, f) in mib {
        o.each(
            &format!("fastlag_lacp_{name}_total"),
            "counter",
            help,
            &lacp,
            lab,
            |(_, _, l)| Some(f(&l.mib) as f64),
        );
    }
    o.each(
        "fastlag_lacp_tx_interval_max_seconds",
        "gauge",
        "Longest interval between two of our LACPDUs on the member.",
        &lacp,
        lab,
        |(_, _, l)| (l.tx_gaps.count > 1).then_some(l.tx_gaps.max_ms / 1e3),
    );

    // Workers.
    type W = WorkerSnapshot;
    let wl = |w: &W| vec![("worker", w.index.to_string())];
    o.each(
        "fastlag_worker_loops_total",
        "counter",
        "Worker loop iterations.",
        &c.workers,
        wl,
        |w| Some(w.loops as f64),
    );
    o.each(
        "fastlag_worker_busy_polls_total",
        "counter",
        "RX polls that returned packets.",
        &c.workers,
        wl,
        |w| Some(w.busy_polls as f64),
    );
    o.each(
        "fastlag_worker_idle_polls_total",
        "counter",
        "RX polls that returned nothing.",
        &c.workers,
        wl,
        |w| Some(w.idle_polls as f64),
    );
    o.each(
        "fastlag_worker_busy_cycles_total",
        "counter",
        "TSC cycles spent in polls that returned packets.",
        &c.workers,
        wl,
        |w| Some(w.busy_cycles as f64),
    );
    let tsc = c.tsc_hz.max(1) as f64;
    o.each(
        "fastlag_worker_busy_seconds_total",
        "counter",
        "Time spent in polls that returned packets; its rate is the worker's utilisation (0..1).",
        &c.workers,
        wl,
        |w| Some(w.busy_cycles as f64 / tsc),
    );
    o.each(
        "fastlag_worker_rx_packets_total",
        "counter",
        "Packets the worker received.",
        &c.workers,
        wl,
        |w| Some(w.rx as f64),
    );
    o.each(
        "fastlag_worker_tx_packets_total",
        "counter",
        "Packets the worker sent.",
        &c.workers,
        wl,
        |w| Some(w.tx as f64),
    );
    o.each(
        "fastlag_worker_drops_total",
        "counter",
        "Packets the worker dropped.",
        &c.workers,
        wl,
        |w| Some(w.drops as f64),
    );
    o.family(
        "fastlag_tsc_hertz",
        "gauge",
        "TSC frequency (cycles per second).",
    );
    o.sample("fastlag_tsc_hertz", &[], c.tsc_hz);

    // Router interfaces (worker side), and the exception path's control side.
    type I = IfaceSnapshot;
    let il = |i: &I| vec![("interface", i.name.clone())];
    o.each(
        "fastlag_interface_rx_packets_total",
        "counter",
        "Frames received on the L3 interface.",
        &c.interfaces,
        il,
        |i| Some(i.rx as f64),
    );
    o.each(
        "fastlag_interface_forwarded_packets_total",
        "counter",
        "Frames routed out of the interface.",
        &c.interfaces,
        il,
        |i| Some(i.forwarded as f64),
    );
    let hops: Vec<(String, String, u64)> = c
        .interfaces
        .iter()
        .flat_map(|i| {
            i.next_hops
                .iter()
                .map(move |(gw, n)| (i.name.clone(), gw.clone(), *n))
        })
        .collect();
    o.each(
        "fastlag_route_next_hop_packets_total",
        "counter",
        "Frames routed to a next hop of ECMP routes, by egress interface and gateway.",
        &hops,
        |h: &(String, String, u64)| vec![("interface", h.0.clone()), ("gateway", h.1.clone())],
        |h| Some(h.2 as f64),
    );
    o.each(
        "fastlag_interface_exception_ring_full_total",
        "counter",
        "Exception frames dropped for a full ring.",
        &c.interfaces,
        il,
        |i| Some(i.exception_ring_full as f64),
    );
    o.each(
        "fastlag_interface_egress_failed_total",
        "counter",
        "Frames that could not leave (no headroom, egress bond down).",
        &c.interfaces,
        il,
        |i| Some(i.egress_failed as f64),
    );
    for (name, help, pick) in [
        (
            "exceptions",
            "Frames handed to the kernel (TAP), by exception class.",
            0,
        ),
        (
            "policed",
            "Exception frames the policer dropped, by class.",
            1,
        ),
        ("drops", "Frames dropped, by reason.", 2),
    ] {
        let label = if pick == 2 { "reason" } else { "class" };
        let rows: Vec<(&I, &str, u64)> = c
            .interfaces
            .iter()
            .flat_map(|i| {
                let m = match pick {
                    0 => &i.exceptions,
                    1 => &i.policed,
                    _ => &i.drops,
                };
                m.iter().map(move |(k, v)| (i, k.as_str(), *v))
            })
            .collect();
        o.each(
            &format!("fastlag_interface_{name}_total"),
            "counter",
            help,
            &rows,
            |(i, k, _)| vec![("interface", i.name.clone()), (label, k.to_string())],
            |(_, _, v)| Some(*v as f64),
        );
    }
    if let Some(r) = &st.router {
        type K = IfaceStatus;
        let kl = |i: &K| vec![("interface", i.name.clone())];
        o.each(
            "fastlag_interface_tap_to_kernel_total",
            "counter",
            "Frames written to the interface's TAP.",
            &r.interfaces,
            kl,
            |i| Some(i.kernel.to_kernel as f64),
        );
        o.each(
            "fastlag_interface_tap_from_kernel_total",
            "counter",
            "Frames the kernel sent out through the interface.",
            &r.interfaces,
            kl,
            |i| Some(i.kernel.from_kernel as f64),
        );
        o.each(
            "fastlag_interface_tap_to_kernel_dropped_total",
            "counter",
            "Frames the TAP did not take.",
            &r.interfaces,
            kl,
            |i| Some(i.kernel.to_kernel_dropped as f64),
        );
        o.each(
            "fastlag_interface_tap_from_kernel_dropped_total",
            "counter",
            "Frames from the kernel that could not be sent.",
            &r.interfaces,
            kl,
            |i| Some((i.kernel.from_kernel_dropped + i.kernel.from_kernel_link_down) as f64),
        );
        o.family(
            "fastlag_fib_routes",
            "gauge",
            "Routes in the FIB, by family.",
        );
        o.sample("fastlag_fib_routes", &[("family", "ipv4")], r.routes_v4);
        o.sample("fastlag_fib_routes", &[("family", "ipv6")], r.routes_v6);
        o.family(
            "fastlag_fib_version",
            "gauge",
            "Version of the FIB the workers use.",
        );
        o.sample("fastlag_fib_version", &[], r.fib_version);
    }
    o.text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn integers_print_exactly() {
        assert_eq!(num(12345678901234.0), "12345678901234");
        assert_eq!(num(0.5), "0.5");
    }
}
