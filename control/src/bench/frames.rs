//! The frames a benchmark feeds: minimum-size UDP datagrams over IPv4 or IPv6, one per
//! flow (flows differ in source MAC, addresses and ports, so every hash policy spreads
//! them), and the pcap file the router scenarios replay.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use dpdk::MacAddr;

/// What the frames carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpec {
    /// IPv6 instead of IPv4.
    pub v6: bool,
    /// Number of flows (frames), at most 65,536.
    pub flows: usize,
    /// Destination MAC of every frame.
    pub dst_mac: MacAddr,
    /// First source MAC (flow k adds k to its last two octets).
    pub src_mac: MacAddr,
    /// First source address (flow k adds k).
    pub src4: Ipv4Addr,
    /// First destination address (flow k adds k % 256 to the last octet).
    pub dst4: Ipv4Addr,
    /// IPv6 source base (flow k adds k).
    pub src6: Ipv6Addr,
    /// IPv6 destination base (flow k adds k % 256).
    pub dst6: Ipv6Addr,
}

/// One frame per flow: 60 bytes for IPv4 (64 on the wire), 62 for IPv6 (the smallest that
/// holds an IPv6 UDP header).
pub fn udp_frames(s: &FlowSpec) -> Vec<Vec<u8>> {
    (0..s.flows.min(65_536)).map(|k| frame(s, k)).collect()
}

fn frame(s: &FlowSpec, k: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&s.dst_mac.0);
    let mut src = s.src_mac.0;
    let low = u16::from_be_bytes([src[4], src[5]]).wrapping_add(k as u16);
    src[4..6].copy_from_slice(&low.to_be_bytes());
    f.extend_from_slice(&src);
    let sport = 1024 + (k as u16 % 60_000);
    let dport = 5001u16;
    if s.v6 {
        f.extend_from_slice(&types::ethertype::IPV6.to_be_bytes());
        let src = u128::from(s.src6).wrapping_add(k as u128);
        let dst = u128::from(s.dst6).wrapping_add((k % 256) as u128);
        let payload = 8u16; // UDP header, no data
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&payload.to_be_bytes());
        f.extend_from_slice(&[17, 64]);
        f.extend_from_slice(&src.to_be_bytes());
        f.extend_from_slice(&dst.to_be_bytes());
        udp(&mut f, sport, dport, payload);
    } else {
        f.extend_from_slice(&types::ethertype::IPV4.to_be_bytes());
        let src = u32::from(s.src4).wrapping_add(k as u32);
        let dst = u32::from(s.dst4).wrapping_add((k % 256) as u32);
        let total = 46u16; // 60-byte frame
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&(k as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.to_be_bytes());
        ip[16..20].copy_from_slice(&dst.to_be_bytes());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        udp(&mut f, sport, dport, total - 20);
        f.resize(60, 0);
    }
    f
}

fn udp(f: &mut Vec<u8>, sport: u16, dport: u16, len: u16) {
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&len.to_be_bytes());
    // Checksum 0: "none" for IPv4; nothing on the path verifies it for IPv6.
    f.extend_from_slice(&[0, 0]);
}

/// The RFC 791 header checksum of `h` (its checksum field zero).
fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Writes `frames` as a classic pcap file (microseconds, LINKTYPE_ETHERNET).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(24 + frames.len() * 80);
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32 / 1_000_000).to_le_bytes());
        out.extend_from_slice(&(i as u32 % 1_000_000).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v6: bool) -> FlowSpec {
        FlowSpec {
            v6,
            flows: 300,
            dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            src_mac: MacAddr([2, 0, 0, 0, 1, 0]),
            src4: Ipv4Addr::new(10, 0, 0, 2),
            dst4: Ipv4Addr::new(198, 18, 1, 1),
            src6: "2001:db8:1::2".parse().unwrap(),
            dst6: "2001:200:0:1::1".parse().unwrap(),
        }
    }

    #[test]
    fn ipv4_frames_are_valid_minimum_size_datagrams() {
        let f = udp_frames(&spec(false));
        assert_eq!(f.len(), 300);
        for fr in &f {
            assert_eq!(fr.len(), 60);
            assert_eq!(checksum(&fr[14..34]), 0, "header checksum verifies");
            assert_eq!(fr[22], 64, "TTL");
        }
        assert_ne!(f[0][6..12], f[1][6..12], "flows differ in source MAC");
        assert_ne!(f[0][34..36], f[1][34..36], "and in source port");
        assert_eq!(
            &f[257][30..34],
            &[198, 18, 1, 2],
            "destinations cycle over 256"
        );
    }

    #[test]
    fn ipv6_frames_carry_a_udp_header() {
        let f = udp_frames(&spec(true));
        assert_eq!(f[0].len(), 62);
        assert_eq!(&f[0][12..14], &[0x86, 0xdd]);
        assert_eq!(f[0][20], 17, "next header UDP");
        assert_eq!(f[0][21], 64, "hop limit");
    }

    #[test]
    fn pcap_has_one_record_per_frame() {
        let dir = std::env::temp_dir().join(format!("fl-bench-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.pcap");
        let f = udp_frames(&spec(false));
        write_pcap(&path, &f).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 24 + f.len() * (16 + 60));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
