//! The safe DPDK layer over an in-process ring link: configure, start, burst I/O with
//! partial transmits, counters, link state, clean stop with every mbuf back in the pool;
//! and `Burst::scatter`, the distributor's move of frames into per-port stages.

use std::sync::Arc;

use dpdk::{Burst, Eal, Mempool, Port, PortSetup, Speed};

fn eal() -> &'static Eal {
    static EAL: std::sync::OnceLock<&'static Eal> = std::sync::OnceLock::new();
    EAL.get_or_init(init)
}

fn init() -> &'static Eal {
    let prefix = format!("--file-prefix=fl-test-{}", std::process::id());
    Eal::init(&[
        "--no-huge",
        "-m",
        "128",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=*:warning",
        prefix.as_str(),
    ])
    .expect("EAL init")
}

#[test]
fn ring_link_round_trip_and_clean_stop() {
    let eal = eal();
    assert!(matches!(
        Eal::init(&["--no-huge"]),
        Err(dpdk::DpdkError::AlreadyInitialised)
    ));
    let pool = Arc::new(Mempool::new(eal, "test_pool", 4095, 0, 2176).unwrap());
    assert_eq!(pool.available(), 4095);

    // Small rings so that a transmit can be partial.
    let (a, b) = dpdk::ring_link(eal, "net_ring_a", "net_ring_b", 1, 0, 64).unwrap();
    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_descriptors: 128,
        tx_descriptors: 128,
        mtu: None,
        pool: pool.clone(),
    };
    let (pa, _rxa, mut txa) = Port::configure(eal, a, "a", &setup).unwrap();
    let (pb, mut rxb, _txb) = Port::configure(eal, b, "b", &setup).unwrap();
    let pa = pa.start().map_err(|(_, e)| e).unwrap();
    let pb = pb.start().map_err(|(_, e)| e).unwrap();

    let link = pa.info().link().unwrap();
    assert!(link.up);
    println!("ring link reports: {link}");
    assert!(matches!(link.speed, Speed::Mbps(_) | Speed::Unknown));

    // 100 frames into a ring of 64 (63 usable): the transmit is partial and the unsent
    // mbufs stay with us, in order.
    let mut out = Burst::new();
    for i in 0..100u16 {
        let mut m = pool.alloc().expect("mbuf");
        let len = 60 + i;
        let d = m.append(len).unwrap();
        d.fill(0);
        d[0..2].copy_from_slice(&i.to_be_bytes());
        out.push(m).unwrap();
    }
    let sent = txa[0].tx_burst(&mut out);
    assert_eq!(sent, 63);
    assert_eq!(out.len(), 37);
    assert_eq!(
        u16::from_be_bytes([out.as_slice()[0].data()[0], out.as_slice()[0].data()[1]]),
        63
    );

    let mut got = Burst::new();
    let n = rxb[0].rx_burst(&mut got, 32);
    assert_eq!(n, 32);
    let n2 = rxb[0].rx_burst(&mut got, 512);
    assert_eq!(n2, 31);
    for (i, m) in got.as_slice().iter().enumerate() {
        assert_eq!(m.len(), 60 + i);
        assert!(m.is_contiguous());
        assert_eq!(u16::from_be_bytes([m.data()[0], m.data()[1]]) as usize, i);
    }
    // The rest goes once there is room again.
    got.clear();
    assert_eq!(txa[0].tx_burst(&mut out), 37);
    assert!(out.is_empty());
    assert_eq!(rxb[0].rx_burst(&mut got, 512), 37);
    let moved: Vec<_> = got.drain().take(5).collect();
    assert_eq!(moved.len(), 5);
    assert!(got.is_empty());
    drop(moved);

    let sa = pa.info().stats().unwrap();
    let sb = pb.info().stats().unwrap();
    assert_eq!(sa.tx_packets, 100);
    assert_eq!(sb.rx_packets, 100);

    // Closing with live queue handles is refused; after dropping them it works.
    let pa = pa.stop().map_err(|(_, e)| e).unwrap();
    let pa = match pa.close() {
        Err((p, e)) => {
            assert!(e.to_string().contains("queue handles"), "{e}");
            p
        }
        Ok(()) => panic!("close must be refused while queues are alive"),
    };
    drop((_rxa, txa, rxb, _txb));
    pa.close().map_err(|(_, e)| e).unwrap();
    pb.stop()
        .map_err(|(_, e)| e)
        .unwrap()
        .close()
        .map_err(|(_, e)| e)
        .unwrap();
    assert_eq!(
        pool.available(),
        pool.size(),
        "every mbuf is back in the pool"
    );
}

/// A burst of `n` mbufs whose first data byte is its index.
fn numbered(pool: &Mempool, n: usize) -> Burst {
    let mut b = Burst::new();
    for i in 0..n {
        let mut m = pool.alloc().expect("mbuf");
        m.append(60).unwrap()[0] = i as u8;
        b.push(m).unwrap();
    }
    b
}

fn firsts(b: &Burst) -> Vec<u8> {
    b.as_slice().iter().map(|m| m.data()[0]).collect()
}

#[test]
fn scatter_moves_each_frame_to_its_stage_in_order() {
    let eal = eal();
    let pool = Mempool::new(eal, "scatter_pool", 2047, 0, 2176).unwrap();
    let free = pool.available();

    // 40 frames over 3 stages, every 7th to no stage (index 9, and u16::MAX).
    let mut frames = numbered(&pool, 40);
    let to: Vec<u16> = (0..40u16)
        .map(|i| match i % 7 {
            0 => 9,
            6 => u16::MAX,
            _ => i % 3,
        })
        .collect();
    let mut stages: Vec<Burst> = (0..3).map(|_| Burst::new()).collect();
    let mut rest = Burst::new();
    assert_eq!(frames.scatter(&to, &mut stages, &mut rest), 0);
    assert!(frames.is_empty());
    for (s, stage) in stages.iter().enumerate() {
        let want: Vec<u8> = (0..40u8)
            .filter(|&i| !matches!(i % 7, 0 | 6) && (i % 3) as usize == s)
            .collect();
        assert_eq!(firsts(stage), want, "stage {s}");
    }
    let want: Vec<u8> = (0..40u8).filter(|i| matches!(i % 7, 0 | 6)).collect();
    assert_eq!(firsts(&rest), want, "rest");
    assert_eq!(pool.available(), free - 40);

    // A stage with room for only 5 more: those 5 go in, in order, the rest are freed and
    // counted, the other stage is filled as usual.
    let mut full = numbered(&pool, dpdk::MAX_BURST - 5);
    assert_eq!(full.len(), dpdk::MAX_BURST - 5);
    std::mem::swap(&mut full, &mut stages[0]);
    drop(full);
    let mut frames = numbered(&pool, 20);
    let to: Vec<u16> = (0..20u16).map(|i| i % 2).collect();
    assert_eq!(frames.scatter(&to, &mut stages, &mut rest), 5);
    assert_eq!(stages[0].len(), dpdk::MAX_BURST);
    assert_eq!(&firsts(&stages[0])[dpdk::MAX_BURST - 5..], &[0, 2, 4, 6, 8]);
    let tail: Vec<u8> = firsts(&stages[1])[stages[1].len() - 10..].to_vec();
    assert_eq!(tail, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);

    // Nothing leaked: every mbuf is back once the bursts are gone.
    drop(stages);
    drop(rest);
    assert_eq!(pool.available(), free);
}
