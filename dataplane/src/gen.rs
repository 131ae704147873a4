//! A traffic generator and checking sink over DPDK queues: used by `fastlag demo` on the
//! far ends of in-process links, by the integration tests (over memif, from another
//! process) and by benchmarks. Each stream sends numbered test frames from one port and
//! expects them, in order and byte-identical, on another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::testframe;
use dpdk::{Burst, Mempool, RxQueue, TxQueue};

/// One port the generator drives.
#[derive(Debug)]
pub struct GenPort {
    /// For messages.
    pub name: String,
    /// Queue the generator receives on.
    pub rx: RxQueue,
    /// Queue the generator sends on.
    pub tx: TxQueue,
    /// Source MAC for frames sent here.
    pub mac: [u8; 6],
}

/// Frame sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// Every frame this long (60..=1514).
    Fixed(usize),
    /// The mixed distribution of [`testframe::mixed_len`].
    Mixed,
}

/// A flow of numbered frames from one port to another.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// Index into the generator's ports: where frames are sent.
    pub from: usize,
    /// Index into the generator's ports: where they must arrive.
    pub to: usize,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Streams; stream i stamps its frames with stream id i.
    pub streams: Vec<Stream>,
    /// Frames per stream; `None` runs until stopped.
    pub count: Option<u64>,
    /// At most this many frames of a stream in flight (sent, not yet received); `None`
    /// sends open loop. A window below the path's queue sizes makes the run lossless.
    pub window: Option<u64>,
    /// Frame sizes.
    pub sizes: Sizes,
    /// Write and check every payload byte (otherwise only the header stamp).
    pub verify_payload: bool,
    /// Frames per burst.
    pub burst: usize,
    /// Give up this long after the last frame was received while frames are missing.
    pub drain_timeout: Duration,
}

/// Live counters of one stream.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Frames sent.
    pub sent: AtomicU64,
    /// Frames received in order and intact.
    pub received: AtomicU64,
    /// Bytes received.
    pub received_bytes: AtomicU64,
    /// Frames received with a gap before them (frames lost or reordered).
    pub gaps: AtomicU64,
    /// Frames that were not byte-identical, or had a wrong length.
    pub corrupt: AtomicU64,
    /// Frames that will not arrive: skipped by a later sequence number, or corrupt.
    pub lost: AtomicU64,
}

/// Counters for a running generator, readable from another thread (for live views).
#[derive(Debug)]
pub struct GenCounters {
    /// Per stream.
    pub streams: Vec<StreamCounters>,
    /// Frames received that were not test frames or belonged to no stream.
    pub foreign: AtomicU64,
    /// Transmit attempts refused because the queue was full.
    pub tx_full: AtomicU64,
}

impl GenCounters {
    /// Counters for `n` streams.
    pub fn new(n: usize) -> Arc<GenCounters> {
        Arc::new(GenCounters {
            streams: (0..n).map(|_| StreamCounters::default()).collect(),
            foreign: AtomicU64::new(0),
            tx_full: AtomicU64::new(0),
        })
    }
}

/// Outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Frames sent.
    pub sent: u64,
    /// Frames received in order and intact.
    pub received: u64,
    /// Bytes received.
    pub received_bytes: u64,
    /// Gaps seen.
    pub gaps: u64,
    /// Corrupt frames.
    pub corrupt: u64,
    /// Frames that never arrived intact.
    pub lost: u64,
}

/// Outcome of a generator run.
#[derive(Debug, Clone)]
pub struct GenReport {
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// Non-test or unexpected frames.
    pub foreign: u64,
    /// Elapsed time from the first send to the end.
    pub elapsed: Duration,
}

impl GenReport {
    /// Frames sent over all streams.
    pub fn sent(&self) -> u64 {
        self.streams.iter().map(|s| s.sent).sum()
    }
    /// Frames received intact over all streams.
    pub fn received(&self) -> u64 {
        self.streams.iter().map(|s| s.received).sum()
    }
}

struct StreamState {
    next_seq: u64,
    expect_seq: u64,
}

fn frame_len(sizes: Sizes, seq: u64) -> usize {
    match sizes {
        Sizes::Fixed(n) => n.clamp(testframe::MIN_LEN, testframe::MAX_LEN),
        Sizes::Mixed => testframe::mixed_len(seq),
    }
}

/// Runs the generator on the calling thread until every stream sent `count` frames and
/// they arrived (or `drain_timeout` passed without progress), or until `stop` is set.
pub fn run(
    cfg: &GenConfig,
    ports: &mut [GenPort],
    pool: &Mempool,
    counters: &GenCounters,
    stop: &AtomicBool,
) -> GenReport {
    let all: Vec<usize> = (0..ports.len()).collect();
    run_listening(cfg, ports, &all, pool, counters, stop)
}

/// [`run`], receiving only on the ports in `listen` (a stopped port must not be polled).
pub fn run_listening(
    cfg: &GenConfig,
    ports: &mut [GenPort],
    listen: &[usize],
    pool: &Mempool,
    counters: &GenCounters,
    stop: &AtomicBool,
) -> GenReport {
    let mut st: Vec<StreamState> = cfg
        .streams
        .iter()
        .map(|_| StreamState {
            next_seq: 0,
            expect_seq: 0,
        })
        .collect();
    let mut out = Burst::new();
    let mut inb = Burst::new();
    let burst = cfg.burst.clamp(1, dpdk::MAX_BURST);
    let start = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut all_sent = true;
        let mut sent_any = false;
        for (i, s) in cfg.streams.iter().enumerate() {
            let state = &mut st[i];
            let c = &counters.streams[i];
            let mut allowed = burst as u64;
            if let Some(total) = cfg.count {
                allowed = allowed.min(total - state.next_seq);
            }
            if let Some(w) = cfg.window {
                let in_flight = state
                    .next_seq
                    .saturating_sub(c.received.load(Ordering::Relaxed) + c.gaps_lost());
                allowed = allowed.min(w.saturating_sub(in_flight));
            }
            if cfg.count.is_some_and(|t| state.next_seq < t) {
                all_sent = false;
            }
            if allowed == 0 {
                continue;
            }
            if !pool.alloc_into(&mut out, allowed as usize) {
                continue;
            }
            let dst = ports[s.to].mac;
            // Each stream is its own flow (its own source MAC), so bond hashing spreads
            // streams over members while every stream stays in order on one of them.
            let mut src = ports[s.from].mac;
            src[4] ^= (i >> 8) as u8;
            src[5] ^= i as u8;
            for (k, m) in out.as_mut_slice().iter_mut().enumerate() {
                let seq = state.next_seq + k as u64;
                let len = frame_len(cfg.sizes, seq);
                let data = m.append(len as u16).expect("mbufs hold a full-size frame");
                if cfg.verify_payload {
                    testframe::fill(data, seq, i as u32, dst, src);
                } else {
                    testframe::fill(&mut data[..26], seq, i as u32, dst, src);
                }
            }
            let sent = ports[s.from].tx.tx_burst(&mut out);
            if !out.is_empty() {
                counters.tx_full.fetch_add(1, Ordering::Relaxed);
                // Unsent frames are dropped here and their numbers reused, so a full
                // queue never shows up as loss on the receive side.
                out.clear();
            }
            state.next_seq += sent as u64;
            sent_any |= sent > 0;
            c.sent.store(state.next_seq, Ordering::Relaxed);
        }

        let mut got_any = false;
        for &p in listen {
            let n = ports[p].rx.rx_burst(&mut inb, burst);
            if n == 0 {
                continue;
            }
            got_any = true;
            for m in inb.as_slice() {
                receive(cfg, m.data(), m.len(), p, &mut st, counters);
            }
            inb.clear();
        }
        if got_any || sent_any {
            last_progress = Instant::now();
        }
        if let Some(total) = cfg.count {
            let done = all_sent
                && counters
                    .streams
                    .iter()
                    .all(|c| c.received.load(Ordering::Relaxed) + c.gaps_lost() >= total);
            // Nothing moved for drain_timeout: the rest is lost (or a window waits for
            // frames that went elsewhere); stop rather than spin forever.
            if done || last_progress.elapsed() > cfg.drain_timeout {
                break;
            }
        }
    }
    GenReport {
        streams: counters
            .streams
            .iter()
            .map(|c| StreamReport {
                sent: c.sent.load(Ordering::Relaxed),
                received: c.received.load(Ordering::Relaxed),
                received_bytes: c.received_bytes.load(Ordering::Relaxed),
                gaps: c.gaps.load(Ordering::Relaxed),
                corrupt: c.corrupt.load(Ordering::Relaxed),
                lost: c
                    .sent
                    .load(Ordering::Relaxed)
                    .saturating_sub(c.received.load(Ordering::Relaxed)),
            })
            .collect(),
        foreign: counters.foreign.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

impl StreamCounters {
    /// Frames known lost (skipped over by a later sequence number) or corrupt: they will
    /// not arrive, so they do not count as in flight.
    fn gaps_lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

fn receive(
    cfg: &GenConfig,
    frame: &[u8],
    pkt_len: usize,
    port: usize,
    st: &mut [StreamState],
    counters: &GenCounters,
) {
    let stamp = match testframe::stamp(frame) {
        Ok(s) => s,
        Err(_) => {
            counters.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let i = stamp.stream as usize;
    let Some(stream) = cfg.streams.get(i) else {
        counters.foreign.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let c = &counters.streams[i];
    if stream.to != port {
        counters.foreign.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let expected_len = frame_len(cfg.sizes, stamp.seq);
    let intact = if cfg.verify_payload {
        pkt_len == frame.len() && testframe::verify(frame, expected_len).is_ok()
    } else {
        pkt_len == expected_len
    };
    let state = &mut st[i];
    if stamp.seq != state.expect_seq {
        c.gaps.fetch_add(1, Ordering::Relaxed);
        if stamp.seq > state.expect_seq {
            c.lost
                .fetch_add(stamp.seq - state.expect_seq, Ordering::Relaxed);
        }
    }
    state.expect_seq = state.expect_seq.max(stamp.seq + 1);
    if intact {
        c.received.fetch_add(1, Ordering::Relaxed);
        c.received_bytes
            .fetch_add(pkt_len as u64, Ordering::Relaxed);
    } else {
        c.corrupt.fetch_add(1, Ordering::Relaxed);
        c.lost.fetch_add(1, Ordering::Relaxed);
    }
}
