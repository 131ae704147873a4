//! A small rtnetlink codec: `nlmsghdr`, `ifinfomsg`, `ifaddrmsg`, `rtmsg`, `ndmsg`, `nhmsg` and
//! their attributes, only as far as [`super::Kernel`] needs them. Native byte order throughout
//! (netlink is host-endian); every parser bounds-checks and returns `None` on anything
//! malformed, so a surprising kernel message is skipped, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    KernelAddress, KernelLink, KernelNeighbor, KernelNexthop, KernelRoute, NeighState, NextHop,
    NexthopKind, NexthopMember, RouteKind,
};

// --- netlink core (linux/netlink.h) -------------------------------------------------------
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;

pub(crate) const NLM_F_REQUEST: u16 = 0x01;
pub(crate) const NLM_F_ACK: u16 = 0x04;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// In an `NLMSG_ERROR`: the original request was not echoed back (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// In an `NLMSG_ERROR`: extended-ack attributes follow (`NETLINK_EXT_ACK`).
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const NLA_TYPE_MASK: u16 = 0x3fff;

// --- rtnetlink (linux/rtnetlink.h) --------------------------------------------------------
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_DELROUTE: u16 = 25;
pub(crate) const RTM_GETROUTE: u16 = 26;
pub(crate) const RTM_NEWNEIGH: u16 = 28;
pub(crate) const RTM_DELNEIGH: u16 = 29;
pub(crate) const RTM_GETNEIGH: u16 = 30;
pub(crate) const RTM_NEWNEXTHOP: u16 = 104;
pub(crate) const RTM_DELNEXTHOP: u16 = 105;
pub(crate) const RTM_GETNEXTHOP: u16 = 106;

pub(crate) const AF_UNSPEC: u8 = 0;
pub(crate) const AF_INET: u8 = 2;
pub(crate) const AF_INET6: u8 = 10;

// Multicast groups (enum rtnetlink_groups), for NETLINK_ADD_MEMBERSHIP.
pub(crate) const RTNLGRP_LINK: u32 = 1;
pub(crate) const RTNLGRP_NEIGH: u32 = 3;
pub(crate) const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub(crate) const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub(crate) const RTNLGRP_IPV6_IFADDR: u32 = 9;
pub(crate) const RTNLGRP_IPV6_ROUTE: u32 = 11;
/// Above 31: joinable only with `NETLINK_ADD_MEMBERSHIP`, not the bind-time bitmask.
pub(crate) const RTNLGRP_NEXTHOP: u32 = 32;

// Links.
const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MTU: u16 = 4;
pub(crate) const IFLA_CARRIER: u16 = 33;
pub(crate) const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const IFF_LOWER_UP: u32 = 0x1_0000;

// Addresses.
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_BROADCAST: u16 = 4;
pub(crate) const IFA_FLAGS: u16 = 8;
pub(crate) const IFA_F_NODAD: u32 = 0x02;

// Routes.
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;
const RTA_NH_ID: u16 = 30;
const AF_INET_U16: u16 = 2;
const AF_INET6_U16: u16 = 10;

// Neighbors.
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;

// Nexthop objects (linux/nexthop.h).
const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_FDB: u16 = 11;
const NEXTHOP_GRP_TYPE_RES: u16 = 1;

/// One netlink message out of a datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// Everything after the 16-byte header, up to `nlmsg_len`.
    pub(crate) payload: &'a [u8],
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Iterates over the netlink messages of one datagram; stops at the first malformed header.
pub(crate) struct Messages<'a> {
    buf: &'a [u8],
}

pub(crate) fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { buf }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Msg<'a>;

    fn next(&mut self) -> Option<Msg<'a>> {
        let len = u32_at(self.buf, 0)? as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() {
            self.buf = &[];
            return None;
        }
        let msg = Msg {
            ty: u16_at(self.buf, 4)?,
            flags: u16_at(self.buf, 6)?,
            seq: u32_at(self.buf, 8)?,
            payload: &self.buf[NLMSG_HDRLEN..len],
        };
        self.buf = self.buf.get(align4(len)..).unwrap_or(&[]);
        Some(msg)
    }
}

/// Iterates over `(type, payload)` of a run of route attributes (`struct rtattr`/`nlattr`).
pub(crate) struct Attrs<'a> {
    buf: &'a [u8],
}

pub(crate) fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { buf }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let len = u16_at(self.buf, 0)? as usize;
        if len < 4 || len > self.buf.len() {
            self.buf = &[];
            return None;
        }
        let ty = u16_at(self.buf, 2)? & NLA_TYPE_MASK;
        let payload = &self.buf[4..len];
        self.buf = self.buf.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    }
}

/// Builds one request message.
pub(crate) struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub(crate) fn new(ty: u16, flags: u16, seq: u32) -> Builder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        Builder { buf }
    }

    /// Appends a fixed family header (`ifinfomsg`, `rtmsg`...), padded to 4 bytes.
    pub(crate) fn header(mut self, bytes: &[u8]) -> Builder {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    pub(crate) fn attr(mut self, ty: u16, payload: &[u8]) -> Builder {
        let len = u16::try_from(4 + payload.len()).expect("attribute fits in 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).expect("message fits in 4 GiB");
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg` (16 bytes).
pub(crate) fn ifinfomsg(family: u8, ifindex: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = family;
    h[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg` (8 bytes).
pub(crate) fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, ifindex: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix_len;
    h[2] = flags;
    h[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    h
}

/// `struct rtmsg` (12 bytes), as a dump request for one family.
pub(crate) fn rtmsg_dump(family: u8) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = family;
    h
}

/// `struct ndmsg` (12 bytes), as a dump request for one family.
pub(crate) fn ndmsg_dump(family: u8) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = family;
    h
}

/// `struct nhmsg` (8 bytes), as a dump request for all families.
pub(crate) fn nhmsg_dump() -> [u8; 8] {
    [0; 8]
}

pub(crate) fn family_of(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

pub(crate) fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn parse_addr(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        _ => None,
    }
}

fn parse_mac(b: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(b).ok()
}

/// `RTA_VIA`: `struct rtvia { __kernel_sa_family_t rtvia_family; __u8 rtvia_addr[]; }`.
fn parse_via(b: &[u8]) -> Option<IpAddr> {
    let family = match u16_at(b, 0)? {
        AF_INET_U16 => AF_INET,
        AF_INET6_U16 => AF_INET6,
        _ => return None,
    };
    parse_addr(family, b.get(2..)?)
}

/// The error code and extended-ack message of an `NLMSG_ERROR` payload (0 = plain ACK).
pub(crate) fn parse_error(msg: &Msg<'_>) -> Option<(i32, Option<String>)> {
    let code = i32_at(msg.payload, 0)?;
    let mut text = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 {
        // struct nlmsgerr = error + the original header (+ its payload unless capped).
        let orig_len = u32_at(msg.payload, 4)? as usize;
        let skip = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            orig_len.max(NLMSG_HDRLEN)
        };
        if let Some(tlvs) = msg.payload.get(4 + align4(skip)..) {
            for (ty, p) in attrs(tlvs) {
                if ty == NLMSGERR_ATTR_MSG {
                    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                    text = Some(String::from_utf8_lossy(&p[..end]).into_owned());
                }
            }
        }
    }
    Some((code, text))
}

/// `RTM_NEWROUTE`/`RTM_DELROUTE` payload. `None` for other families or malformed input.
pub(crate) fn parse_route(payload: &[u8]) -> Option<KernelRoute> {
    let h = payload.get(..12)?;
    let family = h[0];
    if family != AF_INET && family != AF_INET6 {
        return None;
    }
    let flags = u32_at(h, 8)?;
    let mut route = KernelRoute {
        dst: match family {
            AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        },
        prefix_len: h[1],
        src_prefix_len: h[2],
        tos: h[3],
        table: u32::from(h[4]),
        protocol: h[5],
        scope: h[6],
        kind: RouteKind::from_raw(h[7]),
        flags,
        priority: None,
        prefsrc: None,
        nexthop_id: None,
        nexthops: Vec::new(),
    };
    let mut gateway = None;
    let mut oif = None;
    let mut multipath = None;
    for (ty, p) in attrs(payload.get(12..)?) {
        match ty {
            RTA_DST => route.dst = parse_addr(family, p)?,
            RTA_OIF => oif = Some(u32_at(p, 0)?),
            RTA_GATEWAY => gateway = Some(parse_addr(family, p)?),
            RTA_VIA => gateway = Some(parse_via(p)?),
            RTA_PRIORITY => route.priority = Some(u32_at(p, 0)?),
            RTA_PREFSRC => route.prefsrc = parse_addr(family, p),
            RTA_TABLE => route.table = u32_at(p, 0)?,
            RTA_NH_ID => route.nexthop_id = Some(u32_at(p, 0)?),
            RTA_MULTIPATH => multipath = Some(parse_multipath(family, p)?),
            _ => {}
        }
    }
    if let Some(hops) = multipath {
        route.nexthops = hops;
    } else if gateway.is_some() || oif.is_some() {
        route.nexthops.push(NextHop {
            gateway,
            oif,
            weight: 1,
            // For a single-hop route the kernel reports the hop's RTNH_F_* in rtm_flags.
            flags: (flags & 0xff) as u8,
        });
    }
    Some(route)
}

/// `RTA_MULTIPATH`: a run of `struct rtnexthop { len u16, flags u8, hops u8, ifindex i32 }`,
/// each followed by its own attributes.
fn parse_multipath(family: u8, mut b: &[u8]) -> Option<Vec<NextHop>> {
    let mut hops = Vec::new();
    while b.len() >= 8 {
        let len = u16_at(b, 0)? as usize;
        if len < 8 || len > b.len() {
            return None;
        }
        let ifindex = u32_at(b, 4)?;
        let mut hop = NextHop {
            gateway: None,
            oif: (ifindex != 0).then_some(ifindex),
            weight: u16::from(b[3]) + 1,
            flags: b[2],
        };
        for (ty, p) in attrs(&b[8..len]) {
            match ty {
                RTA_GATEWAY => hop.gateway = Some(parse_addr(family, p)?),
                RTA_VIA => hop.gateway = Some(parse_via(p)?),
                _ => {}
            }
        }
        hops.push(hop);
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Some(hops)
}

/// `RTM_NEWNEXTHOP`/`RTM_DELNEXTHOP` payload: `struct nhmsg { family u8, scope u8, protocol
/// u8, resvd u8, flags u32 }` and its attributes. `None` without an id, for a group whose
/// member array is not a whole number of `struct nexthop_grp`, or for malformed input.
pub(crate) fn parse_nexthop(payload: &[u8]) -> Option<KernelNexthop> {
    let h = payload.get(..8)?;
    let mut id = None;
    let mut group = None;
    let mut resilient = false;
    let mut blackhole = false;
    let mut fdb = false;
    let mut gateway = None;
    let mut oif = None;
    for (ty, p) in attrs(payload.get(8..)?) {
        match ty {
            NHA_ID => id = Some(u32_at(p, 0)?),
            NHA_GROUP => group = Some(parse_nexthop_group(p)?),
            NHA_GROUP_TYPE => resilient = u16_at(p, 0)? == NEXTHOP_GRP_TYPE_RES,
            NHA_BLACKHOLE => blackhole = true,
            NHA_FDB => fdb = true,
            NHA_OIF => oif = Some(u32_at(p, 0)?).filter(|&i| i != 0),
            // An IPv4 nexthop may have an IPv6 gateway: the length tells.
            NHA_GATEWAY => {
                gateway = Some(match p.len() {
                    4 => parse_addr(AF_INET, p)?,
                    16 => parse_addr(AF_INET6, p)?,
                    _ => return None,
                })
            }
            _ => {}
        }
    }
    let kind = match group {
        Some(members) => NexthopKind::Group { members, resilient },
        None if blackhole => NexthopKind::Blackhole,
        None => NexthopKind::Hop { gateway, oif },
    };
    Some(KernelNexthop {
        id: id.filter(|&i| i != 0)?,
        protocol: h[2],
        flags: u32_at(h, 4)?,
        fdb,
        kind,
    })
}

/// `NHA_GROUP`: an array of `struct nexthop_grp { id u32, weight u8, weight_high u8, resvd
/// u16 }`, the weight minus one on the wire (`weight_high`, its high byte, is 0 before Linux
/// 6.12).
fn parse_nexthop_group(b: &[u8]) -> Option<Vec<NexthopMember>> {
    if !b.len().is_multiple_of(8) {
        return None;
    }
    Some(
        b.chunks_exact(8)
            .map(|m| NexthopMember {
                id: u32::from_ne_bytes([m[0], m[1], m[2], m[3]]),
                weight: (u32::from(m[5]) << 8 | u32::from(m[4])) + 1,
            })
            .collect(),
    )
}

/// `RTM_NEWNEIGH`/`RTM_DELNEIGH` payload (IPv4/IPv6 only; bridge FDB entries give `None`).
pub(crate) fn parse_neighbor(payload: &[u8]) -> Option<KernelNeighbor> {
    let h = payload.get(..12)?;
    let family = h[0];
    if family != AF_INET && family != AF_INET6 {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for (ty, p) in attrs(payload.get(12..)?) {
        match ty {
            NDA_DST => ip = Some(parse_addr(family, p)?),
            NDA_LLADDR => mac = parse_mac(p),
            _ => {}
        }
    }
    Some(KernelNeighbor {
        ifindex: u32_at(h, 4)?,
        ip: ip?,
        mac,
        state: NeighState(u16_at(h, 8)?),
        flags: h[10],
    })
}

/// `RTM_NEWLINK`/`RTM_DELLINK` payload (`AF_UNSPEC` only: bridge-port messages give `None`).
pub(crate) fn parse_link(payload: &[u8]) -> Option<KernelLink> {
    let h = payload.get(..16)?;
    if h[0] != AF_UNSPEC {
        return None;
    }
    let flags = u32_at(h, 8)?;
    let mut link = KernelLink {
        ifindex: u32_at(h, 4)?,
        name: String::new(),
        up: flags & IFF_UP != 0,
        running: flags & IFF_RUNNING != 0,
        lower_up: flags & IFF_LOWER_UP != 0,
        mtu: None,
        mac: None,
    };
    for (ty, p) in attrs(payload.get(16..)?) {
        match ty {
            IFLA_IFNAME => {
                let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                link.name = String::from_utf8_lossy(&p[..end]).into_owned();
            }
            IFLA_MTU => link.mtu = u32_at(p, 0),
            IFLA_ADDRESS => link.mac = parse_mac(p),
            _ => {}
        }
    }
    Some(link)
}

/// `RTM_NEWADDR`/`RTM_DELADDR` payload.
pub(crate) fn parse_address(payload: &[u8]) -> Option<KernelAddress> {
    let h = payload.get(..8)?;
    let family = h[0];
    if family != AF_INET && family != AF_INET6 {
        return None;
    }
    let mut address = None;
    let mut local = None;
    let mut flags = u32::from(h[2]);
    for (ty, p) in attrs(payload.get(8..)?) {
        match ty {
            IFA_ADDRESS => address = parse_addr(family, p),
            IFA_LOCAL => local = parse_addr(family, p),
            IFA_FLAGS => flags = u32_at(p, 0)?,
            _ => {}
        }
    }
    Some(KernelAddress {
        ifindex: u32_at(h, 4)?,
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
        // links (and the only one IPv6 usually sends).
        addr: local.or(address)?,
        prefix_len: h[1],
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtattr(ty: u16, p: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + p.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(p);
        v.resize(align4(v.len()), 0);
        v
    }

    fn rtnh(flags: u8, hops: u8, ifindex: u32, attrs: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((8 + attrs.len()) as u16).to_ne_bytes());
        v.push(flags);
        v.push(hops);
        v.extend_from_slice(&ifindex.to_ne_bytes());
        v.extend_from_slice(attrs);
        v
    }

    fn rtmsg(family: u8, dst_len: u8, table: u8, proto: u8, kind: u8, flags: u32) -> Vec<u8> {
        let mut h = vec![family, dst_len, 0, 0, table, proto, 0, kind];
        h.extend_from_slice(&flags.to_ne_bytes());
        h
    }

    const NHA_ENCAP_TYPE_FOR_TEST: u16 = 7;

    #[test]
    fn builder_lays_out_header_and_padded_attributes() {
        let m = Builder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 7)
            .header(&ifinfomsg(0, 0, 0, 0))
            .attr(IFLA_IFNAME, b"eth0\0")
            .finish();
        assert_eq!(m.len(), 16 + 16 + 12);
        let msg = messages(&m).next().unwrap();
        assert_eq!((msg.ty, msg.flags, msg.seq), (RTM_GETLINK, 5, 7));
        let a: Vec<_> = attrs(&msg.payload[16..]).collect();
        assert_eq!(a, vec![(IFLA_IFNAME, &b"eth0\0"[..])]);
    }

    #[test]
    fn parses_ipv4_multipath_and_ipv6_via() {
        let mut p = rtmsg(AF_INET, 24, 254, 4, 1, 0);
        p.extend(rtattr(RTA_TABLE, &254u32.to_ne_bytes()));
        p.extend(rtattr(RTA_DST, &[10, 4, 0, 0]));
        let mut mp = rtnh(1, 0, 3, &rtattr(RTA_GATEWAY, &[10, 2, 0, 9])); // dead
        mp.extend(rtnh(0, 2, 3, &rtattr(RTA_GATEWAY, &[10, 2, 0, 2])));
        let mut via = 10u16.to_ne_bytes().to_vec();
        via.extend_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
        mp.extend(rtnh(0, 0, 4, &rtattr(RTA_VIA, &via)));
        p.extend(rtattr(RTA_MULTIPATH, &mp));
        let r = parse_route(&p).unwrap();
        assert_eq!(r.dst, "10.4.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(
            (r.prefix_len, r.table, r.kind),
            (24, 254, RouteKind::Unicast)
        );
        assert_eq!(r.nexthops.len(), 3);
        assert_eq!(r.nexthops[0].flags, 1);
        assert_eq!(r.nexthops[1].weight, 3);
        assert_eq!(r.nexthops[2].gateway, Some("fe80::2".parse().unwrap()));
        assert_eq!(r.nexthops[2].oif, Some(4));
    }

    fn nhmsg(family: u8, proto: u8, flags: u32) -> Vec<u8> {
        let mut h = vec![family, 0, proto, 0];
        h.extend_from_slice(&flags.to_ne_bytes());
        h
    }

    fn nh_grp(id: u32, weight: u8, weight_high: u8) -> Vec<u8> {
        let mut v = id.to_ne_bytes().to_vec();
        v.extend_from_slice(&[weight, weight_high, 0, 0]);
        v
    }

    #[test]
    fn parses_nexthop_objects() {
        // A single hop, with attributes this codec does not know before and after.
        let mut p = nhmsg(AF_INET, 4, 0x04); // onlink
        p.extend(rtattr(99, &[1, 2, 3]));
        p.extend(rtattr(NHA_ID, &7u32.to_ne_bytes()));
        p.extend(rtattr(NHA_OIF, &3u32.to_ne_bytes()));
        p.extend(rtattr(NHA_GATEWAY, &[10, 2, 0, 2]));
        p.extend(rtattr(NHA_ENCAP_TYPE_FOR_TEST, &0u16.to_ne_bytes()));
        let nh = parse_nexthop(&p).unwrap();
        assert_eq!((nh.id, nh.protocol, nh.flags, nh.fdb), (7, 4, 0x04, false));
        assert_eq!(
            nh.kind,
            NexthopKind::Hop {
                gateway: Some("10.2.0.2".parse().unwrap()),
                oif: Some(3)
            }
        );
        // An IPv4 nexthop through an IPv6 gateway: the attribute's length decides.
        let mut p = nhmsg(AF_INET, 4, 0);
        p.extend(rtattr(NHA_ID, &8u32.to_ne_bytes()));
        p.extend(rtattr(
            NHA_GATEWAY,
            &"fe80::2".parse::<Ipv6Addr>().unwrap().octets(),
        ));
        let nh = parse_nexthop(&p).unwrap();
        assert_eq!(
            nh.kind,
            NexthopKind::Hop {
                gateway: Some("fe80::2".parse().unwrap()),
                oif: None
            }
        );
        // A group: weights are sent minus one, with a high byte on Linux 6.12 and later.
        let mut p = nhmsg(AF_UNSPEC, 11, 0);
        p.extend(rtattr(NHA_ID, &10u32.to_ne_bytes()));
        let mut g = nh_grp(1, 2, 0);
        g.extend(nh_grp(2, 0, 0));
        g.extend(nh_grp(3, 0xff, 0x01));
        p.extend(rtattr(NHA_GROUP, &g));
        p.extend(rtattr(NHA_GROUP_TYPE, &1u16.to_ne_bytes()));
        let nh = parse_nexthop(&p).unwrap();
        let NexthopKind::Group { members, resilient } = nh.kind else {
            panic!("{nh:?}")
        };
        assert!(resilient);
        let w: Vec<(u32, u32)> = members.iter().map(|m| (m.id, m.weight)).collect();
        assert_eq!(w, vec![(1, 3), (2, 1), (3, 512)]);
        // Blackhole and FDB.
        let mut p = nhmsg(AF_INET, 3, 0);
        p.extend(rtattr(NHA_ID, &4u32.to_ne_bytes()));
        p.extend(rtattr(NHA_BLACKHOLE, &[]));
        assert_eq!(parse_nexthop(&p).unwrap().kind, NexthopKind::Blackhole);
        let mut p = nhmsg(AF_INET6, 3, 0);
        p.extend(rtattr(NHA_ID, &5u32.to_ne_bytes()));
        p.extend(rtattr(NHA_FDB, &[]));
        p.extend(rtattr(
            NHA_GATEWAY,
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
        ));
        assert!(parse_nexthop(&p).unwrap().fdb);
    }

    #[test]
    fn malformed_nexthops_are_rejected_not_panicking() {
        let id = rtattr(NHA_ID, &7u32.to_ne_bytes());
        assert!(parse_nexthop(&[2, 0, 0, 0, 0, 0]).is_none(), "short nhmsg");
        let no_id = [nhmsg(AF_INET, 4, 0), rtattr(NHA_OIF, &3u32.to_ne_bytes())].concat();
        assert!(parse_nexthop(&no_id).is_none(), "no NHA_ID");
        let zero_id = [nhmsg(AF_INET, 4, 0), rtattr(NHA_ID, &0u32.to_ne_bytes())].concat();
        assert!(parse_nexthop(&zero_id).is_none(), "id 0");
        let short_id = [nhmsg(AF_INET, 4, 0), rtattr(NHA_ID, &[7, 0])].concat();
        assert!(parse_nexthop(&short_id).is_none(), "2-byte NHA_ID");
        let gw3 = [
            nhmsg(AF_INET, 4, 0),
            id.clone(),
            rtattr(NHA_GATEWAY, &[10, 2, 0]),
        ]
        .concat();
        assert!(parse_nexthop(&gw3).is_none(), "3-byte gateway");
        let oif2 = [nhmsg(AF_INET, 4, 0), id.clone(), rtattr(NHA_OIF, &[3, 0])].concat();
        assert!(parse_nexthop(&oif2).is_none(), "2-byte NHA_OIF");
        let mut grp = nh_grp(1, 0, 0);
        grp.extend_from_slice(&[2, 0, 0, 0]); // half a struct nexthop_grp
        let g = [nhmsg(AF_UNSPEC, 4, 0), id.clone(), rtattr(NHA_GROUP, &grp)].concat();
        assert!(parse_nexthop(&g).is_none(), "truncated group member");
        // An attribute running past the message: the attributes stop there.
        let mut past = [nhmsg(AF_INET, 4, 0), id.clone()].concat();
        past.extend_from_slice(&[200, 0, NHA_OIF as u8, 0, 1, 0, 0, 0]);
        let nh = parse_nexthop(&past).unwrap();
        assert_eq!(
            nh.kind,
            NexthopKind::Hop {
                gateway: None,
                oif: None
            }
        );
    }

    #[test]
    fn malformed_input_is_rejected_not_panicking() {
        let mut p = rtmsg(AF_INET, 24, 254, 4, 1, 0);
        p.extend(rtattr(RTA_DST, &[10, 4, 0])); // 3-byte IPv4 address
        assert!(parse_route(&p).is_none());
        assert!(parse_route(&[2, 0, 0]).is_none());
        let mut bad = rtmsg(AF_INET, 0, 254, 4, 1, 0);
        bad.extend_from_slice(&[200, 0, 1, 0]); // attribute longer than the buffer
        assert!(parse_route(&bad).unwrap().nexthops.is_empty());
        assert_eq!(messages(&[40, 0, 0, 0, 0, 0]).count(), 0);
        assert!(parse_neighbor(&[7; 12]).is_none()); // AF_BRIDGE-like family
    }
}
