//! [`Kernel`]: the two rtnetlink sockets and the requests over them.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::codec::{self, Builder, Msg};
use super::{KernelEvent, KernelLink, KernelNeighbor, KernelNexthop, KernelRoute, RT_TABLE_MAIN};

/// Largest datagram we read. The kernel sizes dump datagrams after the reader's buffer, capped
/// at 32 KiB; single notifications are far smaller.
const RECV_BUF: usize = 64 * 1024;
/// What we ask for the event socket's receive buffer (capped by `net.core.rmem_max`).
const EVENT_RCVBUF: usize = 4 * 1024 * 1024;
/// Datagrams [`Kernel::poll_events`] reads per call, by default.
const EVENT_BUDGET: usize = 4096;
/// Dumps interrupted by concurrent changes (`NLM_F_DUMP_INTR`) are retried this many times.
const DUMP_RETRIES: usize = 8;

const MSG_TRUNC: i32 = 0x20;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;
const ENOBUFS: i32 = 105;
const EOPNOTSUPP: i32 = 95;
const EAFNOSUPPORT: i32 = 97;
const IFNAMSIZ: usize = 16;

/// rtnetlink access for fastlag's control thread: one blocking request socket for dumps and
/// changes (the kernel answers rtnetlink requests at once, so these return in microseconds to
/// milliseconds), and one non-blocking socket subscribed to link, address, route, neighbor and
/// nexthop-object notifications, drained by [`Kernel::poll_events`].
///
/// Routes are followed in one table, [`RT_TABLE_MAIN`] unless [`Kernel::set_table`] says
/// otherwise: dumps return only that table and route events of other tables are dropped.
pub struct Kernel {
    req: Socket,
    events: Socket,
    seq: u32,
    buf: Vec<u8>,
    table: u32,
    budget: usize,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("table", &self.table)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "netlink datagram larger than the buffer",
    )
}

/// A failed request: the errno and the kernel's extended-ack text, if any.
struct NlError {
    errno: i32,
    text: Option<String>,
}

impl From<NlError> for io::Error {
    fn from(e: NlError) -> io::Error {
        let os = io::Error::from_raw_os_error(e.errno);
        match e.text {
            Some(text) => io::Error::new(os.kind(), format!("{os}: {text}")),
            None => os,
        }
    }
}

impl Kernel {
    /// Opens the two sockets in the calling thread's network namespace and subscribes to
    /// link, address (v4, v6), route (v4, v6), neighbor and nexthop-object notifications (the
    /// last where the kernel has nexthop objects, Linux 5.3 and later).
    pub fn open() -> io::Result<Kernel> {
        let req = Socket::new(NETLINK_ROUTE)?;
        // Best effort: error strings from the kernel, and no echo of our request in errors.
        let _ = req.set_ext_ack(true);
        let _ = req.set_cap_ack(true);

        let mut events = Socket::new(NETLINK_ROUTE)?;
        events.bind_auto()?;
        for group in [
            codec::RTNLGRP_LINK,
            codec::RTNLGRP_NEIGH,
            codec::RTNLGRP_IPV4_IFADDR,
            codec::RTNLGRP_IPV6_IFADDR,
            codec::RTNLGRP_IPV4_ROUTE,
            codec::RTNLGRP_IPV6_ROUTE,
        ] {
            events.add_membership(group)?;
        }
        // A kernel without nexthop objects has no such group (EINVAL): nor any nexthop.
        let _ = events.add_membership(codec::RTNLGRP_NEXTHOP);
        events.set_non_blocking(true)?;
        let _ = events.set_rx_buf_sz(EVENT_RCVBUF as i32);
        Ok(Kernel {
            req,
            events,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
            table: RT_TABLE_MAIN,
            budget: EVENT_BUDGET,
        })
    }

    /// Follows routes of `table` instead of the main table (a VRF's table, say).
    pub fn set_table(&mut self, table: u32) {
        self.table = table;
    }

    /// The routing table followed.
    pub fn table(&self) -> u32 {
        self.table
    }

    /// Sets the event socket's receive buffer, in bytes (the kernel doubles it and caps it at
    /// `net.core.rmem_max`). Smaller means [`KernelEvent::Overrun`] sooner; tests use it.
    pub fn set_event_buffer(&mut self, bytes: usize) -> io::Result<()> {
        let bytes = i32::try_from(bytes).map_err(|_| invalid("buffer size too large"))?;
        self.events.set_rx_buf_sz(bytes)
    }

    /// At most this many datagrams (one notification each) are read by one
    /// [`Kernel::poll_events`] call (default 4096), so a burst cannot hold the control thread.
    pub fn set_event_budget(&mut self, datagrams: usize) {
        self.budget = datagrams.max(1);
    }

    /// The event socket's file descriptor, readable when events are pending: for a control
    /// thread that sleeps in `poll`/`epoll` rather than spinning.
    pub fn event_fd(&self) -> RawFd {
        self.events.as_raw_fd()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Reads one datagram of the request socket into `self.buf`.
    fn recv_req(&mut self) -> io::Result<()> {
        self.buf.clear();
        let n = self.req.recv(&mut self.buf, MSG_TRUNC)?;
        if n > self.buf.len() {
            return Err(truncated());
        }
        Ok(())
    }

    /// Sends `msg` and calls `on_reply` for every reply of the same sequence number until the
    /// kernel's ACK (or `NLMSG_DONE` for a dump). Returns whether the dump was interrupted.
    fn transact(
        &mut self,
        msg: &[u8],
        seq: u32,
        mut on_reply: impl FnMut(&Msg<'_>),
    ) -> io::Result<Result<bool, NlError>> {
        self.req.send_to(msg, &SocketAddr::new(0, 0), 0)?;
        let mut interrupted = false;
        loop {
            self.recv_req()?;
            let mut done = None;
            for m in codec::messages(&self.buf) {
                if m.seq != seq {
                    continue; // a late answer to an earlier request
                }
                interrupted |= m.flags & codec::NLM_F_DUMP_INTR != 0;
                match m.ty {
                    codec::NLMSG_DONE => done = Some(Ok(interrupted)),
                    codec::NLMSG_ERROR => {
                        let (code, text) = codec::parse_error(&m)
                            .ok_or_else(|| io::Error::other("short NLMSG_ERROR"))?;
                        done = Some(if code == 0 {
                            Ok(interrupted)
                        } else {
                            Err(NlError { errno: -code, text })
                        });
                    }
                    codec::NLMSG_NOOP | codec::NLMSG_OVERRUN => {}
                    _ => on_reply(&m),
                }
            }
            if let Some(done) = done {
                return Ok(done);
            }
        }
    }

    /// A request answered by an ACK.
    fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<Result<(), NlError>> {
        let seq = self.next_seq();
        let msg = build(seq);
        Ok(self.transact(&msg, seq, |_| {})?.map(|_| ()))
    }

    /// A dump, retried while the kernel flags it as interrupted by concurrent changes. After
    /// [`DUMP_RETRIES`] the last (possibly inconsistent) result is returned: the events queued
    /// meanwhile bring it up to date.
    fn dump<T>(
        &mut self,
        ty: u16,
        header: &[u8],
        parse: impl Fn(&[u8]) -> Option<T>,
    ) -> io::Result<Result<Vec<T>, NlError>> {
        let mut out = Vec::new();
        for _ in 0..DUMP_RETRIES {
            out.clear();
            let seq = self.next_seq();
            let msg = Builder::new(ty, codec::NLM_F_REQUEST | codec::NLM_F_DUMP, seq)
                .header(header)
                .finish();
            match self.transact(&msg, seq, |m| out.extend(parse(m.payload)))? {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(out))
    }

    /// The IPv4 and IPv6 dumps of `ty`; a kernel without IPv6 gives the IPv4 part alone.
    fn dump_inet<T>(
        &mut self,
        ty: u16,
        header: fn(u8) -> [u8; 12],
        parse: impl Fn(&[u8]) -> Option<T> + Copy,
    ) -> io::Result<Vec<T>> {
        let mut out = self.dump(ty, &header(codec::AF_INET), parse)??;
        match self.dump(ty, &header(codec::AF_INET6), parse)? {
            Ok(v6) => out.extend(v6),
            Err(NlError {
                errno: EAFNOSUPPORT | EOPNOTSUPP,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(out)
    }

    /// The link called `name`, if any.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<KernelLink>> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(invalid("interface names are 1 to 15 bytes"));
        }
        let mut ifname = name.as_bytes().to_vec();
        ifname.push(0);
        let seq = self.next_seq();
        let msg = Builder::new(
            codec::RTM_GETLINK,
            codec::NLM_F_REQUEST | codec::NLM_F_ACK,
            seq,
        )
        .header(&codec::ifinfomsg(codec::AF_UNSPEC, 0, 0, 0))
        .attr(codec::IFLA_IFNAME, &ifname)
        .finish();
        let mut link = None;
        match self.transact(&msg, seq, |m| {
            if m.ty == codec::RTM_NEWLINK {
                link = codec::parse_link(m.payload);
            }
        })? {
            Ok(_) => Ok(link),
            Err(NlError { errno: ENODEV, .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The index of the interface called `name`, if it exists.
    pub fn ifindex(&mut self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link_by_name(name)?.map(|l| l.ifindex))
    }

    /// All links (`AF_UNSPEC` view).
    pub fn links(&mut self) -> io::Result<Vec<KernelLink>> {
        let h = codec::ifinfomsg(codec::AF_UNSPEC, 0, 0, 0);
        Ok(self.dump(codec::RTM_GETLINK, &h, codec::parse_link)??)
    }

    /// Sets a link administratively up or down, and its MTU when given.
    pub fn set_link(&mut self, ifindex: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        let flags = if up { codec::IFF_UP } else { 0 };
        let r = self.request(|seq| {
            let b = Builder::new(
                codec::RTM_NEWLINK,
                codec::NLM_F_REQUEST | codec::NLM_F_ACK,
                seq,
            )
            .header(&codec::ifinfomsg(
                codec::AF_UNSPEC,
                ifindex,
                flags,
                codec::IFF_UP,
            ));
            match mtu {
                Some(mtu) => b.attr(codec::IFLA_MTU, &mtu.to_ne_bytes()),
                None => b,
            }
            .finish()
        })?;
        Ok(r?)
    }

    /// Sets the carrier of a device that lets user space drive it (TUN/TAP): without carrier
    /// the kernel sends nothing on it and redoes IPv6 DAD, MLD and router solicitation when
    /// it returns, unlike an administrative down, which would flush IPv6 addresses.
    pub fn set_carrier(&mut self, ifindex: u32, carrier: bool) -> io::Result<()> {
        let r = self.request(|seq| {
            Builder::new(
                codec::RTM_NEWLINK,
                codec::NLM_F_REQUEST | codec::NLM_F_ACK,
                seq,
            )
            .header(&codec::ifinfomsg(codec::AF_UNSPEC, ifindex, 0, 0))
            .attr(codec::IFLA_CARRIER, &[carrier as u8])
            .finish()
        })?;
        Ok(r?)
    }

    /// Assigns `addr/prefix_len` to the interface. Idempotent: an address already there is
    /// success. IPv6 addresses are added with `IFA_F_NODAD`, so they are usable at once (no
    /// "tentative" second); IPv4 addresses get the subnet's broadcast address (like
    /// `ip addr add ... brd +`).
    pub fn add_address(&mut self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        check_prefix(&addr, prefix_len)?;
        let r = self.request(|seq| {
            let mut b = Builder::new(
                codec::RTM_NEWADDR,
                codec::NLM_F_REQUEST | codec::NLM_F_ACK | codec::NLM_F_CREATE | codec::NLM_F_EXCL,
                seq,
            );
            b = address_body(b, ifindex, &addr, prefix_len, true);
            if let (IpAddr::V4(a), true) = (addr, prefix_len < 31) {
                let host_mask = u32::MAX >> prefix_len;
                let brd = u32::from(a) | host_mask;
                b = b.attr(codec::IFA_BROADCAST, &brd.to_be_bytes());
            }
            b.finish()
        })?;
        match r {
            Ok(()) | Err(NlError { errno: EEXIST, .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `addr/prefix_len` from the interface. Idempotent: an absent address is success.
    pub fn remove_address(&mut self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        check_prefix(&addr, prefix_len)?;
        let r = self.request(|seq| {
            let b = Builder::new(
                codec::RTM_DELADDR,
                codec::NLM_F_REQUEST | codec::NLM_F_ACK,
                seq,
            );
            address_body(b, ifindex, &addr, prefix_len, false).finish()
        })?;
        match r {
            Ok(())
            | Err(NlError {
                errno: EADDRNOTAVAIL,
                ..
            }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// All IPv4 and IPv6 routes of the followed table ([`RT_TABLE_MAIN`] by default), in the
    /// kernel's order (for routes of the same key, the one in use first).
    pub fn routes(&mut self) -> io::Result<Vec<KernelRoute>> {
        let mut out = self.dump_inet(codec::RTM_GETROUTE, codec::rtmsg_dump, codec::parse_route)?;
        let table = self.table;
        out.retain(|r| r.table == table && !is_cloned(r));
        Ok(out)
    }

    /// All nexthop objects (`ip nexthop`), of every family; none on a kernel without them.
    /// Dump them before [`Kernel::routes`]: the routes that use them come after them in the
    /// kernel's events too.
    pub fn nexthops(&mut self) -> io::Result<Vec<KernelNexthop>> {
        let h = codec::nhmsg_dump();
        match self.dump(codec::RTM_GETNEXTHOP, &h, codec::parse_nexthop)? {
            Ok(v) => Ok(v),
            Err(NlError {
                errno: EOPNOTSUPP | EAFNOSUPPORT,
                ..
            }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// All IPv4 (ARP) and IPv6 (NDP) neighbor entries, whatever their state.
    pub fn neighbors(&mut self) -> io::Result<Vec<KernelNeighbor>> {
        self.dump_inet(
            codec::RTM_GETNEIGH,
            codec::ndmsg_dump,
            codec::parse_neighbor,
        )
    }

    /// Appends the notifications that have arrived to `out`, without blocking: returns as soon
    /// as the socket is empty, or after the event budget ([`Kernel::set_event_budget`]); in
    /// that case it returns `Ok(true)` (more may be pending), otherwise `Ok(false)`.
    ///
    /// Route events of other tables than the followed one, IPv6 cache clones, proxy neighbor
    /// entries and bridge FDB entries are dropped. A lost-events condition (the socket buffer
    /// overflowed, or a datagram too large) is reported in order as [`KernelEvent::Overrun`];
    /// draining continues after it.
    pub fn poll_events(&mut self, out: &mut Vec<KernelEvent>) -> io::Result<bool> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.poll_into(&mut buf, out);
        self.buf = buf;
        result
    }

    fn poll_into(&mut self, buf: &mut Vec<u8>, out: &mut Vec<KernelEvent>) -> io::Result<bool> {
        for _ in 0..self.budget {
            buf.clear();
            let n = match self.events.recv(buf, MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                    if out.last() != Some(&KernelEvent::Overrun) {
                        out.push(KernelEvent::Overrun);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n > buf.len() {
                out.push(KernelEvent::Overrun);
                continue;
            }
            for m in codec::messages(buf) {
                if let Some(ev) = self.event(&m) {
                    out.push(ev);
                }
            }
        }
        Ok(true)
    }

    fn event(&self, m: &Msg<'_>) -> Option<KernelEvent> {
        const NTF_PROXY: u8 = 0x08;
        match m.ty {
            codec::RTM_NEWROUTE | codec::RTM_DELROUTE => {
                let route = codec::parse_route(m.payload)?;
                if route.table != self.table || is_cloned(&route) {
                    return None;
                }
                Some(if m.ty == codec::RTM_NEWROUTE {
                    let replace = m.flags & codec::NLM_F_REPLACE != 0;
                    KernelEvent::RouteAdded { route, replace }
                } else {
                    KernelEvent::RouteRemoved(route)
                })
            }
            codec::RTM_NEWNEIGH | codec::RTM_DELNEIGH => {
                let n = codec::parse_neighbor(m.payload)?;
                if n.flags & NTF_PROXY != 0 {
                    return None;
                }
                Some(if m.ty == codec::RTM_NEWNEIGH {
                    KernelEvent::NeighborChanged(n)
                } else {
                    KernelEvent::NeighborRemoved(n)
                })
            }
            codec::RTM_NEWLINK => codec::parse_link(m.payload).map(KernelEvent::LinkChanged),
            codec::RTM_DELLINK => codec::parse_link(m.payload).map(KernelEvent::LinkRemoved),
            codec::RTM_NEWADDR => codec::parse_address(m.payload).map(KernelEvent::AddressAdded),
            codec::RTM_DELADDR => codec::parse_address(m.payload).map(KernelEvent::AddressRemoved),
            codec::RTM_NEWNEXTHOP => {
                codec::parse_nexthop(m.payload).map(KernelEvent::NexthopChanged)
            }
            codec::RTM_DELNEXTHOP => {
                codec::parse_nexthop(m.payload).map(KernelEvent::NexthopRemoved)
            }
            codec::NLMSG_OVERRUN => Some(KernelEvent::Overrun),
            _ => None,
        }
    }
}

/// IPv6 route-cache clones (`RTM_F_CLONED`): exceptions, not FIB entries.
fn is_cloned(r: &KernelRoute) -> bool {
    const RTM_F_CLONED: u32 = 0x200;
    r.flags & RTM_F_CLONED != 0
}

fn check_prefix(addr: &IpAddr, prefix_len: u8) -> io::Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(invalid("prefix length too long for the address family"));
    }
    Ok(())
}

fn address_body(b: Builder, ifindex: u32, addr: &IpAddr, prefix_len: u8, add: bool) -> Builder {
    let family = codec::family_of(addr);
    let flags = if add && addr.is_ipv6() {
        codec::IFA_F_NODAD
    } else {
        0
    };
    let bytes = codec::addr_bytes(addr);
    let b = b
        .header(&codec::ifaddrmsg(family, prefix_len, flags as u8, ifindex))
        .attr(codec::IFA_LOCAL, &bytes)
        .attr(codec::IFA_ADDRESS, &bytes);
    if flags != 0 {
        b.attr(codec::IFA_FLAGS, &flags.to_ne_bytes())
    } else {
        b
    }
}
