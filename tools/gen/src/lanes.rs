//! The generator's loop: lanes of flows sent at a rate, the sink counting what comes back
//! (order, loss, latency), the answering side for replies.

use super::*;

pub(crate) struct Gen<'a> {
    pub(crate) args: &'a Args,
    pub(crate) tsc_hz: u64,
    pub(crate) templates: Templates,
    pub(crate) mix: SizeMix,
    pub(crate) seq: Vec<u32>,
    pub(crate) sink: Sink,
    pub(crate) responders: Vec<Responder>,
    pub(crate) totals: Totals,
    /// Frames sent so far over all lanes (picks the IMIX size class).
    pub(crate) size_n: u64,
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub(crate) enum Phase {
    Warmup,
    Window,
    Drain,
}

impl Gen<'_> {
    /// Sends one burst on `lane`: at most `budget` frames.
    #[inline]
    pub(crate) fn send(
        &mut self,
        pool: &Mempool,
        lane: &mut Lane,
        tx: &mut TxQueue,
        out: &mut Burst,
        budget: usize,
        now: u64,
    ) -> usize {
        if !pool.alloc_into(out, budget) {
            return 0;
        }
        let nf = lane.flows.len();
        let mut lens = [0u16; MAX_BURST];
        let mut at = lane.cursor;
        for (k, m) in out.as_mut_slice().iter_mut().enumerate() {
            let flow = lane.flows[at] as usize;
            at += 1;
            if at == nf {
                at = 0;
            }
            let class = self.mix.class(self.size_n + k as u64);
            let len = self.templates.len(flow, class);
            lens[k] = len as u16;
            let Some(buf) = m.append(len as u16) else {
                continue;
            };
            let seq = self.seq[flow];
            self.templates.write(flow, class, buf, seq, now);
            self.seq[flow] = seq.wrapping_add(1);
        }
        let n = out.len();
        let bytes: u64 = lens[..n].iter().map(|&l| l as u64).sum();
        let sent = tx.tx_burst(out);
        let mut unsent_bytes = 0;
        if sent < n {
            // Unsent frames are freed and their sequence numbers taken back, so a full queue
            // does not read as loss at the sink. They are each flow's latest frames (a bond
            // reorders what it could not send, but keeps each member's, and so each flow's,
            // order), so the stamps say which flows get a number back.
            for m in out.as_slice() {
                if let Some(s) = loadgen::parse_stamp(m.data()) {
                    let f = s.flow as usize;
                    self.seq[f] = self.seq[f].wrapping_sub(1);
                }
                unsent_bytes += m.len() as u64;
            }
            out.clear();
            self.totals.tx_full += 1;
        }
        lane.cursor = at;
        self.size_n += n as u64;
        self.totals.tx_packets += sent as u64;
        self.totals.tx_bytes += bytes - unsent_bytes;
        sent
    }

    /// Polls one RX queue; answers ARP/ND on `txs[port][0]`.
    #[inline]
    pub(crate) fn receive(
        &mut self,
        pool: &Mempool,
        port: usize,
        rx: &mut RxQueue,
        txs: &mut [Vec<TxQueue>],
        inb: &mut Burst,
        now: u64,
    ) -> usize {
        let got = rx.rx_burst(inb, self.args.burst);
        if got == 0 {
            return 0;
        }
        for m in inb.as_slice() {
            if let Some(s) = loadgen::parse_stamp(m.data()) {
                self.sink.record(s, m.len(), now);
                continue;
            }
            let mut reply = [0u8; ANSWER_MAX];
            match self.responders[port].answer(m.data(), &mut reply) {
                Some(a) => {
                    let len = match a {
                        Answer::Arp(l) => {
                            self.totals.arp_replies += 1;
                            l
                        }
                        Answer::Nd(l) => {
                            self.totals.nd_replies += 1;
                            l
                        }
                    };
                    if let Some(mut r) = pool.alloc() {
                        if let Some(b) = r.append(len as u16) {
                            b.copy_from_slice(&reply[..len]);
                            let mut one = Burst::new();
                            let _ = one.push(r);
                            txs[port][0].tx_burst(&mut one);
                        }
                    }
                }
                None => self.totals.foreign += 1,
            }
        }
        inb.clear();
        got
    }

    pub(crate) fn run(
        &mut self,
        pool: &Mempool,
        lanes: &mut [Lane],
        txs: &mut [Vec<TxQueue>],
        rxs: &mut [(usize, RxQueue)],
        stop: &AtomicBool,
    ) -> Result<Value, AnyError> {
        let hz = self.tsc_hz as f64;
        let secs = |c: u64| c as f64 / hz;
        let to_tsc = |s: f64| (s * hz) as u64;
        let burst = self.args.burst;
        let mut out = Burst::new();
        let mut inb = Burst::new();
        let start = dpdk::rdtsc();
        let mut phase = Phase::Warmup;
        let mut window_start = (start, Totals::default(), 0u64, 0u64);
        let mut window_end = window_start;
        // Set when the first frame comes back: the warm-up runs from then on.
        let mut phase_end = u64::MAX;
        let ready_deadline = start + to_tsc(self.args.ready_timeout);
        let mut next_tick = start + self.tsc_hz;
        let mut last_tick = (start, 0u64);
        let mut per_second = Vec::new();
        let mut stopped = false;
        let mut loops = 0u64;
        // Reordering while a bond converges (flows move between members) is counted apart.
        let mut reordered_before = 0;
        let mut missing_before = 0;
        loop {
            let now = dpdk::rdtsc();
            if stop.load(Ordering::Relaxed) && !stopped {
                stopped = true;
                if phase != Phase::Drain {
                    phase_end = now;
                }
            }
            if phase == Phase::Warmup && phase_end == u64::MAX && self.sink.rx_packets > 0 {
                phase_end = now + to_tsc(self.args.warmup);
            }
            if phase == Phase::Warmup
                && self.sink.rx_packets == 0
                && !stopped
                && now >= ready_deadline
            {
                phase_end = now;
            }
            if now >= phase_end {
                match phase {
                    Phase::Warmup => {
                        if self.sink.rx_packets == 0 && !stopped {
                            return Err(format!(
                                "no frame came back within {} s ({} sent, {} ARP and {} ND requests answered, {} foreign frames received)",
                                self.args.ready_timeout, self.totals.tx_packets, self.totals.arp_replies, self.totals.nd_replies, self.totals.foreign
                            )
                            .into());
                        } else {
                            phase = Phase::Window;
                            self.sink.latency.reset();
                            self.sink.record_latency = true;
                            reordered_before = self.sink.reordered();
                            missing_before = self.sink.missing();
                            window_start =
                                (now, self.totals, self.sink.rx_packets, self.sink.rx_bytes);
                            phase_end = if stopped {
                                now
                            } else {
                                now + to_tsc(self.args.seconds)
                            };
                            last_tick = (now, self.sink.rx_packets);
                            next_tick = now + self.tsc_hz;
                            // Harnesses take the forwarder's counters at these two lines.
                            eprintln!("fastlag-gen: window start");
                        }
                    }
                    Phase::Window => {
                        phase = Phase::Drain;
                        eprintln!("fastlag-gen: window end");
                        window_end = (now, self.totals, self.sink.rx_packets, self.sink.rx_bytes);
                        phase_end = now + to_tsc(self.args.drain_ms as f64 / 1000.0);
                    }
                    Phase::Drain => break,
                }
            }
            if phase != Phase::Drain {
                // Frames all lanes together may still send now (None: no limit).
                let mut allowed: Option<u64> = None;
                if self.args.rate > 0 {
                    let due = ((now - start) as f64 / hz * self.args.rate as f64) as u64;
                    allowed = Some(due.saturating_sub(self.totals.tx_packets));
                }
                if let Some(c) = self.args.count {
                    let left = c.saturating_sub(self.totals.tx_packets);
                    allowed = Some(allowed.map_or(left, |a| a.min(left)));
                    if left == 0 && phase == Phase::Window {
                        phase_end = now;
                    }
                }
                // A limited allowance goes to the lanes in turn, starting with a different
                // one every loop, so no lane is favoured.
                let nl = lanes.len();
                let first = (loops % nl as u64) as usize;
                loops += 1;
                for i in 0..nl {
                    let n = allowed.map_or(burst as u64, |a| a.min(burst as u64));
                    if n == 0 {
                        break;
                    }
                    let lane = &mut lanes[(first + i) % nl];
                    let tx = &mut txs[lane.port][lane.tx];
                    let sent = self.send(pool, lane, tx, &mut out, n as usize, now);
                    if let Some(a) = allowed.as_mut() {
                        *a -= sent as u64;
                    }
                }
            }
            for (p, rx) in rxs.iter_mut() {
                self.receive(pool, *p, rx, txs, &mut inb, now);
            }
            if phase == Phase::Window && now >= next_tick {
                let dt = secs(now - last_tick.0);
                let mpps = (self.sink.rx_packets - last_tick.1) as f64 / dt / 1e6;
                per_second.push((mpps * 1000.0).round() / 1000.0);
                if self.args.progress {
                    eprintln!("fastlag-gen: rx {mpps:.3} Mpps");
                }
                last_tick = (now, self.sink.rx_packets);
                next_tick += self.tsc_hz;
            }
        }
        if window_end.0 == start {
            window_end = (
                dpdk::rdtsc(),
                self.totals,
                self.sink.rx_packets,
                self.sink.rx_bytes,
            );
        }
        let dur = secs(window_end.0 - window_start.0).max(1e-9);
        let (t0, t1) = (window_start.1, window_end.1);
        let rate = |pk: u64, by: u64| {
            json!({
                "packets": pk,
                "bytes": by,
                "mpps": round3(pk as f64 / dur / 1e6),
                "gbps": round3((by + pk * FCS as u64) as f64 * 8.0 / dur / 1e9),
            })
        };
        let sent = self.totals.tx_packets;
        let received = self.sink.rx_packets;
        let lost = sent.saturating_sub(received);
        let h = &self.sink.latency;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        let flows_with_loss = self
            .sink
            .flows
            .iter()
            .zip(&self.seq)
            .filter(|(f, &s)| f.received < s as u64)
            .count();
        // Gaps in the flows' sequence numbers opened during the window and the drain, over
        // the frames sent in the window: loss in steady state (frames lost while a bond
        // converged or a router resolved its next hop are not in it).
        let window_sent = t1.tx_packets - t0.tx_packets;
        let window_missing = self.sink.missing().saturating_sub(missing_before);
        let window_loss_pct = if window_sent > 0 {
            round3(window_missing as f64 * 100.0 / window_sent as f64)
        } else {
            0.0
        };
        Ok(json!({
            "window_s": round3(dur),
            "tx": rate(t1.tx_packets - t0.tx_packets, t1.tx_bytes - t0.tx_bytes),
            "rx": rate(window_end.2 - window_start.2, window_end.3 - window_start.3),
            "rx_mpps_per_second": per_second,
            "window_loss_pct": window_loss_pct,
            "total": {
                "sent": sent,
                "received": received,
                "lost": lost,
                "loss_pct": if sent > 0 { round3(lost as f64 * 100.0 / sent as f64) } else { 0.0 },
                "reordered": self.sink.reordered() - reordered_before,
                "reordered_in_warmup": reordered_before,
                "flows_reordered": self.sink.flows_reordered(),
                "flows_with_loss": flows_with_loss,
                "flows_received": self.sink.flows.iter().filter(|f| f.received > 0).count(),
                "unknown_flow": self.sink.unknown_flow,
                "foreign": self.totals.foreign,
                "tx_full": self.totals.tx_full,
                "arp_replies": self.totals.arp_replies,
                "nd_replies": self.totals.nd_replies,
            },
            "latency_ns": {
                "samples": h.len(),
                "min": if h.is_empty() { 0 } else { h.min() },
                "p50": q(0.5),
                "p99": q(0.99),
                "p99_9": q(0.999),
                "max": if h.is_empty() { 0 } else { h.max() },
                "mean": round3(if h.is_empty() { 0.0 } else { h.mean() }),
            },
            "tsc_hz": self.tsc_hz,
        }))
    }
}
