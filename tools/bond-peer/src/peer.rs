//! The polling state: DPDK's bond polled every millisecond (its 802.3ad machines run only
//! inside rx_burst/tx_burst), traffic sent and checked, and the status file.

use super::*;

/// The polling state.
pub(crate) struct Peer<'a> {
    pub(crate) eal: &'a Eal,
    pub(crate) args: &'a Args,
    pub(crate) bond_id: PortId,
    pub(crate) bond_mac: MacAddr,
    pub(crate) dst_mac: MacAddr,
    pub(crate) members: Vec<Member>,
    pub(crate) rx: Vec<RxQueue>,
    pub(crate) pool: Arc<Mempool>,
    pub(crate) traffic: Traffic,
    pub(crate) start: Instant,
    /// Next flow frame's sequence number.
    pub(crate) seq: u64,
    /// Frames allowed to be sent now (token bucket, at most one burst).
    pub(crate) tokens: f64,
}

impl Peer<'_> {
    /// Polls until `stop` or `quiesce` is set (or `--seconds` passed).
    pub(crate) fn poll_loop(&mut self, tx: &mut TxQueue, stop: &AtomicBool, quiesce: &AtomicBool) {
        let poll = Duration::from_micros(self.args.poll_us.max(1));
        let kick = Duration::from_millis(self.args.kick_ms);
        let status_every = Duration::from_millis(self.args.status_interval_ms.max(10));
        let deadline = self
            .args
            .seconds
            .map(|s| self.start + Duration::from_secs_f64(s.max(0.0)));
        let mut inb = Burst::new();
        let mut out = Burst::new();
        let mut last_tx = self.start;
        let mut last_poll = self.start;
        let mut next_status = self.start;
        let mut next_poll = self.start;
        loop {
            let now = Instant::now();
            if stop.load(Ordering::Relaxed)
                || quiesce.load(Ordering::Relaxed)
                || deadline.is_some_and(|d| now >= d)
            {
                break;
            }
            let gap = now.duration_since(last_poll);
            self.traffic.max_poll_gap_us = self.traffic.max_poll_gap_us.max(gap.as_micros() as u64);
            if gap > Duration::from_millis(100) {
                self.traffic.late_polls += 1;
            }
            last_poll = now;

            for q in &mut self.rx {
                loop {
                    let n = q.rx_burst(&mut inb, RX_BURST);
                    self.traffic.rx_total += n as u64;
                    for m in inb.as_slice() {
                        if is_flow_frame(m.data()) {
                            self.traffic.rx_flow_frames += 1;
                        }
                    }
                    inb.clear();
                    if n < RX_BURST {
                        break;
                    }
                }
            }

            let mut called_tx = false;
            let left = self
                .args
                .count
                .map_or(u64::MAX, |c| c.saturating_sub(self.traffic.sent));
            if self.args.send_flows > 0 && left > 0 {
                let dt = gap.as_secs_f64();
                self.tokens = (self.tokens + dt * self.args.rate as f64).min(MAX_BURST as f64);
                let n = (self.tokens.floor() as u64).min(left) as usize;
                if n > 0 && self.pool.alloc_into(&mut out, n) {
                    for m in out.as_mut_slice() {
                        let seq = self.seq;
                        self.seq += 1;
                        let flow = (seq % self.args.send_flows as u64) as u32;
                        let len = self.args.frame_len;
                        let buf = m.append(len).expect("an mbuf holds a 1514-byte frame");
                        flow_frame(
                            buf,
                            flow,
                            seq,
                            self.dst_mac,
                            self.bond_mac,
                            self.args.xmit_policy,
                        );
                    }
                    let sent = tx.tx_burst(&mut out);
                    self.tokens -= n as f64;
                    self.traffic.sent += sent as u64;
                    self.traffic.refused += out.len() as u64;
                    self.traffic.tx_calls += 1;
                    out.clear();
                    called_tx = true;
                }
            }
            if !called_tx && now.duration_since(last_tx) >= kick {
                tx.flush();
                self.traffic.kicks += 1;
                self.traffic.tx_calls += 1;
                called_tx = true;
            }
            if called_tx {
                last_tx = now;
            }

            if now >= next_status {
                if let Some(path) = &self.args.status {
                    write_json(path, &self.status());
                }
                next_status = now + status_every;
            }

            next_poll += poll;
            let now = Instant::now();
            if next_poll > now {
                std::thread::sleep(next_poll - now);
            } else {
                next_poll = now;
            }
        }
    }

    pub(crate) fn status(&self) -> Value {
        let bond_info = dpdk::link(self.eal, self.bond_id).ok();
        let bond_stats = dpdk::stats(self.eal, self.bond_id).ok();
        let members: Vec<Value> = self
            .members
            .iter()
            .map(|m| {
                let link = dpdk::link(self.eal, m.id).ok();
                let mac = dpdk::mac(self.eal, m.id).ok();
                let stats = dpdk::stats(self.eal, m.id).ok();
                let lacp = match dpdk::bond::bond_member_info(self.bond_id, m.id) {
                    Ok(i) => {
                        // DPDK advertises the aggregator member's MAC as actor system id
                        // (bond_member_info does not return the actor system itself).
                        let agg = PortId(i.agg_port_id);
                        let agg_name = self
                            .members
                            .iter()
                            .find(|x| x.id == agg)
                            .map(|x| x.name.clone());
                        let actor_system = dpdk::mac(self.eal, agg).ok().map(|a| a.to_string());
                        json!({
                            "selected": match i.selected {
                                0 => "UNSELECTED",
                                1 => "STANDBY",
                                2 => "SELECTED",
                                _ => "?",
                            },
                            "aggregator": { "port": i.agg_port_id, "name": agg_name },
                            "actor": {
                                "system": actor_system,
                                "key": i.actor_key,
                                "port": i.actor_port_number,
                                "state": i.actor_state,
                                "state_names": state_names(i.actor_state),
                                "sync": i.actor_state & SYNC != 0,
                                "collecting": i.actor_state & COLLECTING != 0,
                                "distributing": i.actor_state & DISTRIBUTING != 0,
                            },
                            "partner": {
                                "system": format!("{},{}", i.partner_system_priority, i.partner_system),
                                "system_priority": i.partner_system_priority,
                                "system_mac": i.partner_system.to_string(),
                                "key": i.partner_key,
                                "port": i.partner_port_number,
                                "state": i.partner_state,
                                "state_names": state_names(i.partner_state),
                                "sync": i.partner_state & SYNC != 0,
                                "collecting": i.partner_state & COLLECTING != 0,
                                "distributing": i.partner_state & DISTRIBUTING != 0,
                            },
                        })
                    }
                    // Not an active member (link down): DPDK has no 802.3ad state for it.
                    Err(e) => json!({ "error": e.to_string() }),
                };
                json!({
                    "name": m.name,
                    "spec": m.spec,
                    "port": m.id.0,
                    "mac": mac.map(|a| a.to_string()),
                    "link": link.map(link_json),
                    "lacp": lacp,
                    "stats": stats.map(stats_json),
                })
            })
            .collect();
        json!({
            "pid": std::process::id(),
            "running": true,
            "polling": true,
            "uptime_ms": self.start.elapsed().as_millis() as u64,
            "bond": {
                "name": self.args.bond_name,
                "port": self.bond_id.0,
                "mac": self.bond_mac.to_string(),
                "xmit_policy": self.args.xmit_policy.devarg(),
                "link": bond_info.map(link_json),
                "stats": bond_stats.map(stats_json),
            },
            "members": members,
            "traffic": traffic_json(&self.traffic, self.args),
            "pool": { "size": self.pool.size(), "available": self.pool.available() },
        })
    }
}

pub(crate) const SYNC: u8 = 1 << 3;
pub(crate) const COLLECTING: u8 = 1 << 4;
pub(crate) const DISTRIBUTING: u8 = 1 << 5;

/// 802.1AX state bits, LSB first, as names.
pub(crate) fn state_names(bits: u8) -> String {
    const NAMES: [&str; 8] = [
        "ACTIVITY",
        "SHORT_TIMEOUT",
        "AGGREGATION",
        "SYNC",
        "COLLECTING",
        "DISTRIBUTING",
        "DEFAULTED",
        "EXPIRED",
    ];
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn link_json(l: dpdk::Link) -> Value {
    json!({
        "up": l.up,
        "speed_mbps": match l.speed { Speed::Mbps(m) => Some(m), Speed::Unknown => None },
        "duplex": match l.duplex { Duplex::Full => "full", Duplex::Half => "half", Duplex::Unknown => "unknown" },
    })
}

pub(crate) fn stats_json(s: PortStats) -> Value {
    json!({
        "rx_packets": s.rx_packets,
        "tx_packets": s.tx_packets,
        "rx_bytes": s.rx_bytes,
        "tx_bytes": s.tx_bytes,
        "rx_missed": s.rx_missed,
        "rx_errors": s.rx_errors,
        "tx_errors": s.tx_errors,
    })
}

pub(crate) fn traffic_json(t: &Traffic, args: &Args) -> Value {
    json!({
        "flows": args.send_flows,
        "rate_pps": if args.send_flows > 0 { args.rate } else { 0 },
        "count": args.count,
        "done": args.send_flows > 0 && args.count.is_some_and(|c| t.sent >= c),
        "frame_len": args.frame_len,
        "sent": t.sent,
        "refused": t.refused,
        "kicks": t.kicks,
        "kicks_sent": t.kicks_sent,
        "tx_calls": t.tx_calls,
        "rx_total": t.rx_total,
        "rx_flow_frames": t.rx_flow_frames,
        "late_polls": t.late_polls,
        "max_poll_gap_us": t.max_poll_gap_us,
    })
}

pub(crate) fn write_json(path: &Path, v: &Value) {
    let tmp = path.with_extension("tmp");
    let ok = serde_json::to_vec_pretty(v)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|()| std::fs::rename(&tmp, path).ok());
    if ok.is_none() {
        tracing::warn!(path = %path.display(), "could not write the status file");
    }
}

/// Writes an IPv4/UDP frame of `buf.len()` bytes for `flow` from 198.18.0.1 (RFC 2544
/// benchmarking range) to 198.19.0.1:9; the payload starts with "FLBP", the flow and the
/// sequence number. The UDP source port is 1024 + flow; for the l23 policy the source
/// address is 198.18.x.y instead, for l2 the source MAC varies with the flow. DPDK's l34
/// hash XORs addresses and ports, so only one of them varies there.
pub(crate) fn flow_frame(
    buf: &mut [u8],
    flow: u32,
    seq: u64,
    dst: MacAddr,
    src: MacAddr,
    policy: XmitPolicy,
) {
    let len = buf.len();
    buf.fill(0);
    buf[0..6].copy_from_slice(&dst.0);
    let mut smac = src.0;
    if policy == XmitPolicy::L2 {
        // Only MACs are hashed: vary a locally administered source MAC per flow.
        smac = [
            0x02,
            0xfb,
            0,
            (flow >> 16) as u8,
            (flow >> 8) as u8,
            flow as u8,
        ];
    }
    buf[6..12].copy_from_slice(&smac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut buf[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17; // UDP
    let src_ip = match policy {
        XmitPolicy::L34 => [198, 18, 0, 1],
        XmitPolicy::L2 | XmitPolicy::L23 => [198, 18, (flow >> 8) as u8, flow as u8],
    };
    ip[12..16].copy_from_slice(&src_ip);
    ip[16..20].copy_from_slice(&[198, 19, 0, 1]);
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut buf[34..42];
    udp[0..2].copy_from_slice(&(1024u16.wrapping_add(flow as u16)).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    // UDP checksum 0: none (allowed for IPv4).
    let p = &mut buf[42..];
    p[0..4].copy_from_slice(FLOW_MAGIC);
    p[4..8].copy_from_slice(&flow.to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
}

pub(crate) fn is_flow_frame(f: &[u8]) -> bool {
    f.len() >= 46 && f[12..14] == [0x08, 0x00] && f[23] == 17 && &f[42..46] == FLOW_MAGIC
}

pub(crate) fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, c)| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
