//! Benchmark traffic: IPv4/IPv6 UDP frames built from per-flow templates, stamped with a
//! per-flow sequence number and a TSC timestamp; the receiving side's per-flow loss,
//! reordering and latency accounting; and answers to ARP requests and IPv6 neighbour
//! solicitations, so a router under test can resolve the generator like any host.
//!
//! Pure byte handling (no DPDK): `fastlag-gen` drives it over DPDK queues; the unit tests
//! below check it on byte arrays.
//!
//! The stamp sits right after the UDP header (16 bytes, so a 64-byte IPv4 frame holds it):
//! magic `0xF1A6` (2), flow id (2), sequence number (4), all big-endian, then the sender's
//! TSC (8, little-endian). The UDP checksum is valid: the template carries the one's
//! complement sum of everything but the stamp, and each frame adds the stamp's words.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hdrhistogram::Histogram;

/// First two bytes of every stamp.
pub const MAGIC: u16 = 0xF1A6;
/// Bytes of the stamp.
pub const STAMP_LEN: usize = 16;
/// Ethernet FCS bytes: frame sizes given on the command line count it (a "64-byte frame"
/// is 60 bytes in the buffer), as testpmd and pktgen do.
pub const FCS: usize = 4;
/// Largest frame (without FCS) for a 1500-byte MTU.
pub const MAX_LEN: usize = 1514;

const ETH: usize = 14;
const IP4: usize = 20;
const IP6: usize = 40;
const UDP: usize = 8;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_VLAN: u16 = 0x8100;

/// IP version of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4/UDP.
    V4,
    /// IPv6/UDP.
    V6,
}

impl Family {
    /// Bytes before the stamp.
    pub fn header_len(self) -> usize {
        match self {
            Family::V4 => ETH + IP4 + UDP,
            Family::V6 => ETH + IP6 + UDP,
        }
    }

    /// Smallest frame (without FCS) that holds headers and stamp: 60 (the Ethernet
    /// minimum) for IPv4, 78 for IPv6.
    pub fn min_len(self) -> usize {
        (self.header_len() + STAMP_LEN).max(60)
    }
}

/// Frame sizes, counted with FCS as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeMix {
    /// Every frame this size (raised to the family's minimum).
    Fixed(usize),
    /// Simple IMIX: 64, 594 and 1518 bytes in the ratio 7:4:1 (IPv6: 82 instead of 64).
    Imix,
}

/// Position of each IMIX class in a repeating pattern of 12 (7 small, 4 medium, 1 large),
/// interleaved so no burst is all large frames.
pub const IMIX_PATTERN: [u8; 12] = [0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1];

impl SizeMix {
    /// Frame lengths without FCS, one per size class.
    pub fn lengths(self, family: Family) -> Vec<usize> {
        let fit = |wire: usize| (wire.saturating_sub(FCS)).clamp(family.min_len(), MAX_LEN);
        match self {
            SizeMix::Fixed(n) => vec![fit(n)],
            SizeMix::Imix => vec![fit(64), fit(594), fit(1518)],
        }
    }

    /// The size class of the `n`th frame.
    #[inline]
    pub fn class(self, n: u64) -> usize {
        match self {
            SizeMix::Fixed(_) => 0,
            SizeMix::Imix => IMIX_PATTERN[(n % 12) as usize] as usize,
        }
    }
}

/// One flow's addresses. Both addresses must be of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowDef {
    /// Destination MAC (the next hop: the peer port or the router's port).
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// UDP source port.
    pub sport: u16,
    /// UDP destination port.
    pub dport: u16,
}

impl FlowDef {
    /// The flow's family, or an error when its addresses mix families.
    pub fn family(&self) -> Result<Family, String> {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(Family::V4),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(Family::V6),
            _ => Err(format!(
                "flow {} -> {} mixes IPv4 and IPv6",
                self.src, self.dst
            )),
        }
    }
}

/// Headers of one (flow, size class) and the UDP checksum of everything but the stamp.
#[derive(Debug, Clone, Copy)]
struct Template {
    /// Headers, then zeros: frames copy a fixed 60 or 64 bytes (an inlined copy, where a
    /// length known only at run time would call memcpy).
    hdr: [u8; 64],
    hdr_len: u8,
    len: u16,
    /// One's complement sum (folded, not inverted) of the pseudo-header, the UDP header with
    /// a zero checksum and a zero payload.
    sum: u16,
}

/// Prebuilt frames for every (flow, size class).
#[derive(Debug, Clone)]
pub struct Templates {
    t: Vec<Template>,
    classes: usize,
}

/// One's complement sum of big-endian 16-bit words (an odd last byte is padded).
#[inline]
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u32) << 8;
    }
    acc
}

#[inline]
fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[inline]
fn udp_checksum(sum: u16) -> u16 {
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    match !sum {
        0 => 0xffff,
        c => c,
    }
}

impl Templates {
    /// Builds the templates of `flows` for the sizes of `mix`.
    pub fn new(flows: &[FlowDef], mix: SizeMix) -> Result<Templates, String> {
        if flows.is_empty() {
            return Err("no flows".into());
        }
        if flows.len() > u16::MAX as usize + 1 {
            return Err(format!(
                "{} flows: at most {} (the stamp's flow id has 16 bits)",
                flows.len(),
                u16::MAX as usize + 1
            ));
        }
        let mut t = Vec::new();
        let mut classes = 0;
        for f in flows {
            let family = f.family()?;
            let lens = mix.lengths(family);
            classes = lens.len();
            for len in lens {
                t.push(build(f, family, len));
            }
        }
        Ok(Templates { t, classes })
    }

    /// Number of flows.
    pub fn flows(&self) -> usize {
        self.t.len() / self.classes
    }

    /// Frame length (without FCS) of `flow` in size class `class`.
    #[inline]
    pub fn len(&self, flow: usize, class: usize) -> usize {
        self.t[flow * self.classes + class].len as usize
    }

    /// Writes the frame of `flow`, size class `class`, into `buf` (exactly
    /// [`Templates::len`] bytes): headers, stamp, zero padding, checksum.
    #[inline]
    pub fn write(&self, flow: usize, class: usize, buf: &mut [u8], seq: u32, tsc: u64) {
        let t = &self.t[flow * self.classes + class];
        let h = t.hdr_len as usize;
        if buf.len() >= 64 {
            buf[..64].copy_from_slice(&t.hdr);
            buf[64..].fill(0);
        } else {
            // 60..64 bytes: the IPv4 minimum (IPv6 frames are at least 78).
            buf[..60].copy_from_slice(&t.hdr[..60]);
            buf[60..].fill(0);
        }
        let mut stamp = [0u8; STAMP_LEN];
        stamp[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        stamp[2..4].copy_from_slice(&(flow as u16).to_be_bytes());
        stamp[4..8].copy_from_slice(&seq.to_be_bytes());
        stamp[8..16].copy_from_slice(&tsc.to_le_bytes());
        buf[h..h + STAMP_LEN].copy_from_slice(&stamp);
        let c = udp_checksum(fold(sum16(&stamp, t.sum as u32)));
        buf[h - 2..h].copy_from_slice(&c.to_be_bytes());
    }
}

fn build(f: &FlowDef, family: Family, len: usize) -> Template {
    let mut hdr = [0u8; 64];
    hdr[0..6].copy_from_slice(&f.dst_mac);
    hdr[6..12].copy_from_slice(&f.src_mac);
    // UDP header and payload: everything after the IP header.
    let udp_len = (len - (family.header_len() - UDP)) as u16;
    let mut pseudo = 0u32;
    let udp_at = match (family, f.src, f.dst) {
        (Family::V4, IpAddr::V4(s), IpAddr::V4(d)) => {
            hdr[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let ip = &mut hdr[ETH..ETH + IP4];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((len - ETH) as u16).to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = !fold(sum16(ip, 0));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            pseudo = sum16(&s.octets(), pseudo);
            pseudo = sum16(&d.octets(), pseudo);
            ETH + IP4
        }
        (_, IpAddr::V6(s), IpAddr::V6(d)) => {
            hdr[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let ip = &mut hdr[ETH..ETH + IP6];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
            ip[6] = 17;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            pseudo = sum16(&s.octets(), pseudo);
            pseudo = sum16(&d.octets(), pseudo);
            ETH + IP6
        }
        _ => unreachable!("family checked by FlowDef::family"),
    };
    pseudo += 17 + udp_len as u32;
    let udp = &mut hdr[udp_at..udp_at + UDP];
    udp[0..2].copy_from_slice(&f.sport.to_be_bytes());
    udp[2..4].copy_from_slice(&f.dport.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    let sum = fold(sum16(udp, pseudo));
    Template {
        hdr,
        hdr_len: (udp_at + UDP) as u8,
        len: len as u16,
        sum,
    }
}

/// What a received stamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Flow id.
    pub flow: u16,
    /// Sequence number within the flow.
    pub seq: u32,
    /// Sender's TSC when the frame was built.
    pub tsc: u64,
}

/// The EtherType and the offset of the L3 header, skipping one 802.1Q tag.
#[inline]
fn l3(frame: &[u8]) -> Option<(u16, usize)> {
    let et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if et == ETHERTYPE_VLAN {
        let et = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        return Some((et, ETH + 4));
    }
    Some((et, ETH))
}

/// Finds the stamp of a generator frame (IPv4 or IPv6 UDP, optionally one VLAN tag).
/// `None` for anything else; never panics on short or malformed input.
#[inline]
pub fn parse_stamp(frame: &[u8]) -> Option<Stamp> {
    let (et, o) = l3(frame)?;
    let at = match et {
        ETHERTYPE_IPV4 => {
            let ihl = (*frame.get(o)? & 0x0f) as usize * 4;
            if *frame.get(o + 9)? != 17 || ihl < IP4 {
                return None;
            }
            o + ihl + UDP
        }
        ETHERTYPE_IPV6 => {
            if *frame.get(o + 6)? != 17 {
                return None;
            }
            o + IP6 + UDP
        }
        _ => return None,
    };
    let s = frame.get(at..at + STAMP_LEN)?;
    if u16::from_be_bytes([s[0], s[1]]) != MAGIC {
        return None;
    }
    Some(Stamp {
        flow: u16::from_be_bytes([s[2], s[3]]),
        seq: u32::from_be_bytes([s[4], s[5], s[6], s[7]]),
        tsc: u64::from_le_bytes(s[8..16].try_into().ok()?),
    })
}

/// Receive-side state of one flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowRx {
    /// The sequence number that would continue the flow in order.
    pub expect: u32,
    /// Frames received.
    pub received: u64,
    /// Frames that arrived after a frame with a higher sequence number.
    pub reordered: u64,
    /// Frames whose sequence number was above `expect` (a gap: lost or reordered frames
    /// before them).
    pub gaps: u64,
    /// Frames skipped over by gaps and not (yet) arrived late: lost so far, as far as the
    /// flow's later frames tell.
    pub missing: u64,
}

/// The sink: per-flow order, latency histogram, totals.
#[derive(Debug)]
pub struct Sink {
    /// Per flow id.
    pub flows: Vec<FlowRx>,
    /// Latency in nanoseconds (sender TSC to receive TSC).
    pub latency: Histogram<u64>,
    /// Whether latency is recorded now (off during warm-up).
    pub record_latency: bool,
    /// Stamped frames received.
    pub rx_packets: u64,
    /// Their bytes (without FCS).
    pub rx_bytes: u64,
    /// Frames with a flow id the generator did not send.
    pub unknown_flow: u64,
    ns_per_tsc: f64,
}

impl Sink {
    /// A sink for `flows` flows; `tsc_hz` converts TSC differences to nanoseconds.
    pub fn new(flows: usize, tsc_hz: u64) -> Sink {
        Sink {
            flows: vec![FlowRx::default(); flows],
            // 1 ns .. 100 s at 3 significant digits.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("valid histogram bounds"),
            record_latency: false,
            rx_packets: 0,
            rx_bytes: 0,
            unknown_flow: 0,
            ns_per_tsc: 1e9 / tsc_hz.max(1) as f64,
        }
    }

    /// Accounts one received stamped frame of `len` bytes at TSC `now`.
    #[inline]
    pub fn record(&mut self, s: Stamp, len: usize, now: u64) {
        let Some(f) = self.flows.get_mut(s.flow as usize) else {
            self.unknown_flow += 1;
            return;
        };
        // Wrapping distance: a flow of more than 2^31 frames still compares correctly.
        let d = s.seq.wrapping_sub(f.expect) as i32;
        if d >= 0 {
            if d > 0 {
                f.gaps += 1;
                f.missing += d as u64;
            }
            f.expect = s.seq.wrapping_add(1);
        } else {
            f.reordered += 1;
            f.missing = f.missing.saturating_sub(1);
        }
        f.received += 1;
        self.rx_packets += 1;
        self.rx_bytes += len as u64;
        if self.record_latency {
            let ns = (now.wrapping_sub(s.tsc) as f64 * self.ns_per_tsc) as u64;
            self.latency.saturating_record(ns.max(1));
        }
    }

    /// Frames received after a later frame of their flow, over all flows.
    pub fn reordered(&self) -> u64 {
        self.flows.iter().map(|f| f.reordered).sum()
    }

    /// Frames missing over all flows (see [`FlowRx::missing`]).
    pub fn missing(&self) -> u64 {
        self.flows.iter().map(|f| f.missing).sum()
    }

    /// Flows with at least one reordered frame.
    pub fn flows_reordered(&self) -> usize {
        self.flows.iter().filter(|f| f.reordered > 0).count()
    }
}

/// Answers ARP requests and IPv6 neighbour solicitations for one port's own addresses.
#[derive(Debug, Clone, Copy)]
pub struct Responder {
    /// The port's MAC.
    pub mac: [u8; 6],
    /// Its IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
}

/// What [`Responder::answer`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An ARP reply of this many bytes.
    Arp(usize),
    /// A neighbour advertisement of this many bytes.
    Nd(usize),
}

/// Room [`Responder::answer`] needs.
pub const ANSWER_MAX: usize = 86;

impl Responder {
    /// If `frame` is an ARP request or a neighbour solicitation for one of our addresses,
    /// writes the reply into `out` and says what it is.
    pub fn answer(&self, frame: &[u8], out: &mut [u8; ANSWER_MAX]) -> Option<Answer> {
        let (et, o) = l3(frame)?;
        match et {
            ETHERTYPE_ARP => self.arp(frame, o, out).map(Answer::Arp),
            ETHERTYPE_IPV6 => self.nd(frame, o, out).map(Answer::Nd),
            _ => None,
        }
    }

    fn arp(&self, frame: &[u8], o: usize, out: &mut [u8; ANSWER_MAX]) -> Option<usize> {
        let ip = self.ipv4?;
        let a = frame.get(o..o + 28)?;
        // Ethernet/IPv4 request for our address.
        if a[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] || a[24..28] != ip.octets() {
            return None;
        }
        out.fill(0);
        out[0..6].copy_from_slice(&a[8..14]);
        out[6..12].copy_from_slice(&self.mac);
        out[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        let r = &mut out[ETH..ETH + 28];
        r[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        r[8..14].copy_from_slice(&self.mac);
        r[14..18].copy_from_slice(&ip.octets());
        r[18..28].copy_from_slice(&a[8..18]);
        Some(60)
    }

    fn nd(&self, frame: &[u8], o: usize, out: &mut [u8; ANSWER_MAX]) -> Option<usize> {
        let ip = self.ipv6?;
        let h = frame.get(o..o + IP6 + 24)?;
        // ICMPv6 neighbour solicitation (RFC 4861 4.3), hop limit 255, for our address.
        if h[6] != 58 || h[7] != 255 || h[IP6] != 135 || h[IP6 + 1] != 0 {
            return None;
        }
        if h[IP6 + 8..IP6 + 24] != ip.octets() {
            return None;
        }
        let src: [u8; 16] = h[8..24].try_into().ok()?;
        if src == [0; 16] {
            // Duplicate address detection: not a resolution, nothing to answer.
            return None;
        }
        out.fill(0);
        out[0..6].copy_from_slice(&frame[6..12]);
        out[6..12].copy_from_slice(&self.mac);
        out[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let len = 32u16;
        {
            let ip6 = &mut out[ETH..ETH + IP6];
            ip6[0] = 0x60;
            ip6[4..6].copy_from_slice(&len.to_be_bytes());
            ip6[6] = 58;
            ip6[7] = 255;
            ip6[8..24].copy_from_slice(&ip.octets());
            ip6[24..40].copy_from_slice(&src);
        }
        let icmp = &mut out[ETH + IP6..ETH + IP6 + 32];
        icmp[0] = 136;
        icmp[4] = 0x60; // solicited, override (RFC 4861 4.4)
        icmp[8..24].copy_from_slice(&ip.octets());
        icmp[24] = 2; // target link-layer address option, 1 unit of 8 bytes
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&self.mac);
        let mut acc = sum16(&ip.octets(), 0);
        acc = sum16(&src, acc);
        acc += len as u32 + 58;
        acc = sum16(icmp, acc);
        let c = !fold(acc);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        Some(ETH + IP6 + 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn flow4() -> FlowDef {
        FlowDef {
            dst_mac: B,
            src_mac: A,
            src: "10.1.0.2".parse().unwrap(),
            dst: "10.2.0.2".parse().unwrap(),
            sport: 1234,
            dport: 5678,
        }
    }

    fn flow6() -> FlowDef {
        FlowDef {
            src: "2001:db8:1::2".parse().unwrap(),
            dst: "2001:db8:2::2".parse().unwrap(),
            ..flow4()
        }
    }

    /// Full UDP checksum verification over pseudo-header and datagram.
    fn udp_ok(frame: &[u8]) -> bool {
        let (et, o) = l3(frame).unwrap();
        let (mut acc, udp) = if et == ETHERTYPE_IPV4 {
            let ip = &frame[o..o + IP4];
            assert_eq!(fold(sum16(ip, 0)), 0xffff, "IPv4 header checksum");
            (sum16(&ip[12..20], 0), &frame[o + IP4..])
        } else {
            (sum16(&frame[o + 8..o + 40], 0), &frame[o + IP6..])
        };
        let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        acc += 17 + ulen as u32;
        fold(sum16(&udp[..ulen], acc)) == 0xffff
    }

    #[test]
    fn frames_carry_valid_checksums_and_round_trip_the_stamp() {
        for f in [flow4(), flow6()] {
            for mix in [SizeMix::Fixed(64), SizeMix::Imix, SizeMix::Fixed(1518)] {
                let t = Templates::new(&[f, f], mix).unwrap();
                for class in 0..mix.lengths(f.family().unwrap()).len() {
                    let len = t.len(1, class);
                    let mut buf = vec![0xaau8; len];
                    for (seq, tsc) in [(0u32, 0u64), (7, 123456789), (u32::MAX, u64::MAX)] {
                        t.write(1, class, &mut buf, seq, tsc);
                        assert!(udp_ok(&buf), "{f:?} {mix:?} class {class}");
                        assert_eq!(parse_stamp(&buf), Some(Stamp { flow: 1, seq, tsc }));
                    }
                }
            }
        }
    }

    #[test]
    fn sizes_follow_the_wire_convention() {
        assert_eq!(SizeMix::Fixed(64).lengths(Family::V4), vec![60]);
        assert_eq!(SizeMix::Fixed(64).lengths(Family::V6), vec![78]);
        assert_eq!(SizeMix::Imix.lengths(Family::V4), vec![60, 590, 1514]);
        let counts = (0..12).fold([0; 3], |mut c, n| {
            c[SizeMix::Imix.class(n)] += 1;
            c
        });
        assert_eq!(counts, [7, 4, 1]);
    }

    #[test]
    fn mixed_families_and_too_many_flows_are_refused() {
        let mut f = flow4();
        f.dst = "::1".parse().unwrap();
        assert!(Templates::new(&[f], SizeMix::Fixed(64)).is_err());
        assert!(Templates::new(&[], SizeMix::Fixed(64)).is_err());
        assert!(Templates::new(&vec![flow4(); 65537], SizeMix::Fixed(64)).is_err());
    }

    #[test]
    fn parse_never_panics_and_ignores_foreign_frames() {
        let t = Templates::new(&[flow4()], SizeMix::Fixed(64)).unwrap();
        let mut buf = vec![0; 60];
        t.write(0, 0, &mut buf, 5, 9);
        for n in 0..buf.len() {
            let _ = parse_stamp(&buf[..n]);
        }
        buf[42] ^= 1; // magic
        assert_eq!(parse_stamp(&buf), None);
        assert_eq!(parse_stamp(&[0x88, 0xb5]), None);
    }

    #[test]
    fn sink_counts_gaps_and_reordering_per_flow() {
        let mut s = Sink::new(2, 1_000_000_000);
        s.record_latency = true;
        let st = |flow, seq| Stamp {
            flow,
            seq,
            tsc: 100,
        };
        for seq in [0, 1, 3, 2, 4] {
            s.record(st(0, seq), 60, 1100);
        }
        for seq in [0, 1, 2] {
            s.record(st(1, seq), 60, 1100);
        }
        s.record(st(9, 0), 60, 1100);
        assert_eq!(s.flows[0].reordered, 1);
        assert_eq!(s.flows[0].gaps, 1);
        assert_eq!(
            s.flows[0].missing, 0,
            "frame 2 arrived late, so nothing is missing"
        );
        assert_eq!(s.flows[1].reordered, 0);
        assert_eq!(s.reordered(), 1);
        assert_eq!(s.flows_reordered(), 1);
        assert_eq!(s.unknown_flow, 1);
        assert_eq!(s.rx_packets, 8);
        assert_eq!(s.latency.len(), 8);
        assert!(s.latency.equivalent(s.latency.max(), 1000));
        // Sequence numbers wrap without reading as reordering.
        let mut s = Sink::new(1, 1);
        s.flows[0].expect = u32::MAX - 1;
        for seq in [u32::MAX - 1, u32::MAX, 0, 1] {
            s.record(st(0, seq), 60, 0);
        }
        assert_eq!(s.flows[0].reordered, 0);
    }

    #[test]
    fn answers_arp_requests_for_its_address_only() {
        let r = Responder {
            mac: A,
            ipv4: Some("10.2.0.2".parse().unwrap()),
            ipv6: None,
        };
        let mut req = vec![0u8; 60];
        req[0..6].fill(0xff);
        req[6..12].copy_from_slice(&B);
        req[12..14].copy_from_slice(&[8, 6]);
        req[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        req[22..28].copy_from_slice(&B);
        req[28..32].copy_from_slice(&[10, 2, 0, 1]);
        req[38..42].copy_from_slice(&[10, 2, 0, 2]);
        let mut out = [0u8; ANSWER_MAX];
        assert_eq!(r.answer(&req, &mut out), Some(Answer::Arp(60)));
        assert_eq!(&out[0..6], &B);
        assert_eq!(&out[20..22], &[0, 2]);
        assert_eq!(&out[22..28], &A);
        assert_eq!(&out[28..32], &[10, 2, 0, 2]);
        assert_eq!(&out[32..38], &B);
        assert_eq!(&out[38..42], &[10, 2, 0, 1]);
        req[41] = 3;
        assert_eq!(r.answer(&req, &mut out), None);
        for n in 0..req.len() {
            let _ = r.answer(&req[..n], &mut out);
        }
    }

    #[test]
    fn answers_neighbour_solicitations_with_a_valid_advertisement() {
        let me: Ipv6Addr = "2001:db8:2::2".parse().unwrap();
        let them: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
        let r = Responder {
            mac: A,
            ipv4: None,
            ipv6: Some(me),
        };
        let mut ns = vec![0u8; ETH + IP6 + 32];
        ns[0..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 2]);
        ns[6..12].copy_from_slice(&B);
        ns[12..14].copy_from_slice(&[0x86, 0xdd]);
        ns[14] = 0x60;
        ns[18..20].copy_from_slice(&32u16.to_be_bytes());
        ns[20] = 58;
        ns[21] = 255;
        ns[22..38].copy_from_slice(&them.octets());
        ns[54] = 135;
        ns[62..78].copy_from_slice(&me.octets());
        let mut out = [0u8; ANSWER_MAX];
        assert_eq!(r.answer(&ns, &mut out), Some(Answer::Nd(86)));
        assert_eq!(&out[0..6], &B);
        assert_eq!(out[54], 136);
        assert_eq!(&out[38..54], &them.octets());
        assert_eq!(&out[80..86], &A);
        // ICMPv6 checksum over the pseudo-header verifies.
        let mut acc = sum16(&out[22..54], 0) + 32 + 58;
        acc = sum16(&out[54..86], acc);
        assert_eq!(fold(acc), 0xffff);
        // Not for us, or duplicate address detection: no answer.
        let mut other = ns.clone();
        other[77] = 9;
        assert_eq!(r.answer(&other, &mut out), None);
        let mut dad = ns.clone();
        dad[22..38].fill(0);
        assert_eq!(r.answer(&dad, &mut out), None);
    }
}
