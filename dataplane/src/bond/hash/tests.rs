//! Unit tests of [`super`]: symmetry, per-flow stability, each policy's fields, fragments,
//! tags, robustness, and the quality of the spread over members.

use super::*;
use crate::bond::BondTable;

const ALL: [HashPolicy; 3] = [HashPolicy::Layer2, HashPolicy::Layer23, HashPolicy::Layer34];

struct Frame {
    smac: [u8; 6],
    dmac: [u8; 6],
    vlans: Vec<u16>,
    v6: bool,
    src: u128,
    dst: u128,
    proto: u8,
    sp: u16,
    dp: u16,
    frag: bool,
}

impl Frame {
    fn udp4(src: u32, dst: u32, sp: u16, dp: u16) -> Frame {
        Frame {
            smac: [2, 0, 0, 0, 0, 1],
            dmac: [2, 0, 0, 0, 0, 2],
            vlans: vec![],
            v6: false,
            src: src as u128,
            dst: dst as u128,
            proto: 17,
            sp,
            dp,
            frag: false,
        }
    }

    fn udp6(src: u128, dst: u128, sp: u16, dp: u16) -> Frame {
        Frame {
            v6: true,
            ..Frame::udp4(0, 0, sp, dp)
        }
        .with_addrs(src, dst)
    }

    fn with_addrs(mut self, src: u128, dst: u128) -> Frame {
        self.src = src;
        self.dst = dst;
        self
    }

    fn reversed(&self) -> Frame {
        Frame {
            smac: self.dmac,
            dmac: self.smac,
            vlans: self.vlans.clone(),
            src: self.dst,
            dst: self.src,
            sp: self.dp,
            dp: self.sp,
            ..*self
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dmac);
        f.extend_from_slice(&self.smac);
        for (i, v) in self.vlans.iter().enumerate() {
            let tpid: u16 = if i == 0 && self.vlans.len() == 2 {
                0x88a8
            } else {
                0x8100
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&v.to_be_bytes());
        }
        if self.v6 {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, self.proto, 64]);
            f.extend_from_slice(&self.src.to_be_bytes());
            f.extend_from_slice(&self.dst.to_be_bytes());
        } else {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let frag: u16 = if self.frag { 0x2000 } else { 0 };
            f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0]);
            f.extend_from_slice(&frag.to_be_bytes());
            f.extend_from_slice(&[64, self.proto, 0, 0]);
            f.extend_from_slice(&(self.src as u32).to_be_bytes());
            f.extend_from_slice(&(self.dst as u32).to_be_bytes());
        }
        f.extend_from_slice(&self.sp.to_be_bytes());
        f.extend_from_slice(&self.dp.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f.resize(f.len().max(60), 0);
        f
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn frame(&mut self) -> Frame {
        let r = self.next();
        let mut f = if r & 1 == 0 {
            Frame::udp4(
                self.next() as u32,
                self.next() as u32,
                r as u16,
                (r >> 16) as u16,
            )
        } else {
            Frame::udp6(
                (self.next() as u128) << 64 | self.next() as u128,
                (self.next() as u128) << 64 | self.next() as u128,
                (r >> 8) as u16,
                (r >> 24) as u16,
            )
        };
        f.proto = [6, 17, 132, 1][(r >> 40) as usize % 4];
        f.smac[5] = (r >> 48) as u8;
        f.dmac[4] = (r >> 56) as u8;
        f.vlans = match (r >> 33) % 4 {
            0 => vec![(r >> 20) as u16 & 0xfff],
            1 => vec![100, (r >> 20) as u16 & 0xfff],
            _ => vec![],
        };
        f.frag = !f.v6 && (r >> 37).is_multiple_of(5);
        f
    }
}

#[test]
fn symmetric_for_every_policy_and_frame_kind() {
    let mut rng = Rng(1);
    for _ in 0..5000 {
        let f = rng.frame();
        let (a, b) = (f.bytes(), f.reversed().bytes());
        for p in ALL {
            assert_eq!(flow_hash(&a, p), flow_hash(&b, p), "{p:?} {a:02x?}");
        }
    }
}

#[test]
fn the_fast_path_and_the_general_parser_agree() {
    // Every frame of a flow hashes the same whichever code takes it.
    let mut rng = Rng(2);
    for _ in 0..5000 {
        let f = rng.frame();
        let b = f.bytes();
        // Untagged, one tag, two tags (802.1ad outside, or 802.1Q twice), and the same
        // with a non-IP ethertype.
        let mut variants = vec![b.clone()];
        if f.vlans.len() == 2 {
            let mut q = b.clone();
            q[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
            variants.push(q);
        }
        let et = 12 + 4 * f.vlans.len();
        for v in variants.clone() {
            let mut arp = v;
            arp[et..et + 2].copy_from_slice(&0x0806u16.to_be_bytes());
            variants.push(arp);
        }
        for b in variants {
            for p in ALL {
                assert_eq!(flow_hash(&b, p), general(&b, p), "{p:?} {b:02x?}");
            }
        }
    }
}

#[test]
fn policies_look_at_their_fields_only() {
    let a = Frame::udp4(0x0a00_0001, 0x0a00_0002, 1000, 53);
    let h = |f: &Frame, p| flow_hash(&f.bytes(), p);
    let other_port = Frame::udp4(0x0a00_0001, 0x0a00_0002, 1001, 53);
    let other_ip = Frame::udp4(0x0a00_0003, 0x0a00_0002, 1000, 53);
    let mut other_mac = Frame::udp4(0x0a00_0001, 0x0a00_0002, 1000, 53);
    other_mac.smac[5] = 9;
    use HashPolicy::*;
    assert_eq!(h(&a, Layer2), h(&other_ip, Layer2));
    assert_eq!(h(&a, Layer2), h(&other_port, Layer2));
    assert_ne!(h(&a, Layer2), h(&other_mac, Layer2));
    assert_ne!(h(&a, Layer23), h(&other_ip, Layer23));
    assert_eq!(h(&a, Layer23), h(&other_port, Layer23));
    assert_ne!(h(&a, Layer23), h(&other_mac, Layer23));
    assert_ne!(h(&a, Layer34), h(&other_port, Layer34));
    assert_ne!(h(&a, Layer34), h(&other_ip, Layer34));
    assert_eq!(
        h(&a, Layer34),
        h(&other_mac, Layer34),
        "layer3+4 ignores MACs"
    );
    // Behind VLAN tags and in IPv6 too.
    for vlans in [vec![100], vec![200, 100]] {
        let mut t = Frame::udp4(0x0a00_0001, 0x0a00_0002, 1000, 53);
        t.vlans = vlans.clone();
        let mut tp = Frame::udp4(0x0a00_0001, 0x0a00_0002, 1001, 53);
        tp.vlans = vlans;
        assert_ne!(h(&t, Layer34), h(&tp, Layer34));
        assert_ne!(h(&t, Layer34), h(&a, Layer34), "the VLAN id counts");
    }
    let v6 = Frame::udp6(1, 2, 1000, 53);
    assert_ne!(h(&v6, Layer34), h(&Frame::udp6(1, 2, 1001, 53), Layer34));
    assert_eq!(h(&v6, Layer23), h(&Frame::udp6(1, 2, 1001, 53), Layer23));
    assert_ne!(h(&v6, Layer23), h(&Frame::udp6(1, 3, 1000, 53), Layer23));
}

#[test]
fn fragments_and_non_l4_protocols_hash_on_addresses() {
    let mut a = Frame::udp4(0x0a00_0001, 0x0a00_0002, 1000, 53);
    let mut b = Frame::udp4(0x0a00_0001, 0x0a00_0002, 2000, 80);
    a.frag = true;
    b.frag = true;
    let h = |f: &Frame| flow_hash(&f.bytes(), HashPolicy::Layer34);
    assert_eq!(h(&a), h(&b));
    let mut icmp_a = Frame::udp6(1, 2, 1000, 53);
    let mut icmp_b = Frame::udp6(1, 2, 9, 9);
    icmp_a.proto = 58;
    icmp_b.proto = 58;
    assert_eq!(h(&icmp_a), h(&icmp_b));
}

#[test]
fn non_ip_frames_hash_on_layer2() {
    let mut arp = vec![0u8; 60];
    arp[0..6].copy_from_slice(&[0xff; 6]);
    arp[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut other = arp.clone();
    other[11] = 8;
    for p in ALL {
        assert_eq!(flow_hash(&arp, p), flow_hash(&arp, HashPolicy::Layer2));
        assert_ne!(flow_hash(&arp, p), flow_hash(&other, p));
    }
}

/// Largest and smallest share of `n` members over `flows` random flows, and chi-square.
fn spread(policy: HashPolicy, members: usize, flows: usize, seed: u64) -> (f64, f64, f64) {
    let t = BondTable::new((0..members as u16).collect(), vec![false; members], 1);
    let mut count = vec![0usize; members];
    let mut rng = Rng(seed);
    for _ in 0..flows {
        let mut f = rng.frame();
        f.frag = false;
        count[t.pick(flow_hash(&f.bytes(), policy)).unwrap() as usize] += 1;
    }
    let expect = flows as f64 / members as f64;
    let chi: f64 = count
        .iter()
        .map(|&c| (c as f64 - expect).powi(2) / expect)
        .sum();
    let max = *count.iter().max().unwrap() as f64 / expect;
    let min = *count.iter().min().unwrap() as f64 / expect;
    (max, min, chi)
}

#[test]
fn ten_thousand_flows_spread_evenly_over_members() {
    // With 10,000 flows a fair split stays within a few percent of the mean; chi-square
    // with members-1 degrees of freedom stays below its 99.9th percentile (3 members: 13.8,
    // 8 members: 24.3). BondTable has 256 slots, so 3 members get 86/85/85 of them.
    for policy in [HashPolicy::Layer23, HashPolicy::Layer34] {
        for members in [2usize, 3, 4, 8] {
            let (max, min, chi) = spread(policy, members, 10_000, 7);
            assert!(
                max < 1.08 && min > 0.92 && chi < 25.0,
                "{policy:?} over {members}: max {max:.3} min {min:.3} chi² {chi:.1}"
            );
        }
    }
}

#[test]
fn hosts_differing_in_one_byte_spread() {
    // Hosts on one segment differ in the last MAC/IP byte only: they must still spread.
    let t = BondTable::new(vec![0, 1], vec![false; 2], 1);
    for p in ALL {
        let mut count = [0u32; 2];
        for i in 0..64u32 {
            let mut f = Frame::udp4(0x0a00_0001, 0x0a00_0000 + i, 1000, 80);
            f.smac[5] = i as u8;
            count[t.pick(flow_hash(&f.bytes(), p)).unwrap() as usize] += 1;
        }
        assert!(count[0] > 20 && count[1] > 20, "{p:?}: {count:?}");
    }
}

#[test]
fn short_and_garbage_frames_do_not_panic() {
    let mut rng = Rng(3);
    for len in 0..140 {
        for _ in 0..20 {
            let f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            for p in ALL {
                flow_hash(&f, p);
            }
            let _ = is_slow_protocol(&f);
        }
    }
    // Tagged IPv4 with the longest header.
    let mut f = Frame::udp4(1, 2, 3, 4);
    f.vlans = vec![1, 2];
    let mut b = f.bytes();
    b[22] = 0x4f;
    flow_hash(&b, HashPolicy::Layer34);
}

#[test]
fn slow_protocol_detection() {
    let mut f = vec![0u8; 60];
    f[12] = 0x88;
    f[13] = 0x09;
    assert!(is_slow_protocol(&f));
    f[12] = 0x81;
    f[13] = 0x00;
    assert!(!is_slow_protocol(&f));
    assert!(!is_slow_protocol(&f[..13]));
}

#[test]
fn rss_stands_in_only_for_the_fields_it_covers() {
    assert!(rss_usable(HashPolicy::Layer34, true));
    assert!(!rss_usable(HashPolicy::Layer34, false));
    assert!(rss_usable(HashPolicy::Layer23, false));
    assert!(!rss_usable(HashPolicy::Layer23, true));
    assert!(!rss_usable(HashPolicy::Layer2, false));
}

/// The distributor's first pass trusts [`hash_untagged`] for what it takes and looks for
/// Slow Protocols frames only among what it leaves: it must agree with [`hash_for`] and
/// never take a Slow Protocols frame, a tagged frame or a short one.
#[test]
fn the_untagged_hash_agrees_and_leaves_slow_tagged_and_short_frames() {
    fn check<P: Policy>(b: &[u8]) {
        let tagged = b.len() >= 14 && matches!([b[12], b[13]], [0x81, 0x00] | [0x88, 0xa8]);
        match hash_untagged::<P>(b) {
            Some(h) => {
                assert_eq!(h, hash_for::<P>(b), "{:?} {b:02x?}", P::POLICY);
                assert_eq!(h, flow_hash(b, P::POLICY));
                assert!(!is_slow_protocol(b), "took a slow frame: {b:02x?}");
                assert!(!tagged, "took a tagged frame: {b:02x?}");
                assert!(b.len() >= FAST_LEN);
            }
            None => assert!(
                is_slow_protocol(b)
                    || tagged
                    || b.len() < FAST_LEN
                    || P::POLICY != HashPolicy::Layer2,
                "layer2 left an untagged frame: {b:02x?}"
            ),
        }
    }
    let mut rng = Rng(4);
    let mut taken = 0;
    for _ in 0..5000 {
        let f = rng.frame();
        let b = f.bytes();
        let mut slow = b.clone();
        slow[12..14].copy_from_slice(&0x8809u16.to_be_bytes());
        for v in [
            &b[..],
            &slow[..],
            &b[..b.len().min(57)],
            &b[..b.len().min(13)],
        ] {
            check::<L2>(v);
            check::<L23>(v);
            check::<L34>(v);
        }
        taken += hash_untagged::<L34>(&b).is_some() as u32;
        assert!(hash_untagged::<L2>(&slow).is_none());
        assert!(hash_untagged::<L34>(&slow).is_none());
    }
    // Half the generated frames are untagged IP: the fast path must take them.
    assert!(taken > 2000, "the fast path took only {taken} of 5000");
}
