//! Owned packet buffers and fixed-size bursts of them.

use std::ptr::NonNull;

use dpdk_sys::mbuf_fields as mf;
use dpdk_sys::rte_mbuf;

/// A PMD's verdict on a received IPv4 header checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxChecksum {
    /// Verified good by the NIC.
    Good,
    /// Verified bad by the NIC.
    Bad,
    /// Not checked (no offload, or not IPv4): verify in software.
    Unknown,
}

/// The largest burst a [`Burst`] holds; configured burst sizes are at most this.
pub const MAX_BURST: usize = 512;

/// One owned packet buffer. Dropping it returns it to its pool.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an Mbuf is exclusively owned; DPDK mbufs can be freed from any thread
// (mempool put is thread-safe).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` must be a valid mbuf that nobody else owns or frees.
    pub unsafe fn from_raw(m: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    /// Gives up ownership; the caller must free or transmit the mbuf.
    pub fn into_raw(self) -> NonNull<rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    #[inline(always)]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf for our whole lifetime.
        unsafe { self.0.as_ref() }
    }

    /// Total packet length (all segments).
    #[inline]
    pub fn len(&self) -> usize {
        mf::pkt_len(self.raw()) as usize
    }

    /// True for an empty packet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the whole packet is in this first segment (`data()` sees all of it).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        mf::nb_segs(self.raw()) == 1
    }

    /// The NIC's RSS hash, when the PMD delivered one (`RTE_MBUF_F_RX_RSS_HASH`).
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & dpdk_sys::RTE_MBUF_F_RX_RSS_HASH as u64 == 0 {
            return None;
        }
        // With RX_RSS_HASH set, the PMD wrote the RSS member of the hash union.
        Some(mf::rss(m))
    }

    /// Records an RSS hash as a PMD does on receive (tests; software RSS).
    pub fn set_rss_hash(&mut self, hash: u32) {
        // SAFETY: we own the mbuf exclusively (&mut self).
        let m = unsafe { self.0.as_mut() };
        m.ol_flags |= dpdk_sys::RTE_MBUF_F_RX_RSS_HASH as u64;
        mf::set_rss(m, hash);
    }

    /// What the PMD says of the IPv4 header checksum (`RTE_MBUF_F_RX_IP_CKSUM_*`).
    #[inline(always)]
    pub fn ip_checksum(&self) -> RxChecksum {
        const GOOD: u64 = dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD as u64;
        const BAD: u64 = dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64;
        // Both bits set (NONE: "not correct, but the header is intact") or neither: ask
        // the software.
        let f = self.raw().ol_flags & (GOOD | BAD);
        if f == GOOD {
            RxChecksum::Good
        } else if f == BAD {
            RxChecksum::Bad
        } else {
            RxChecksum::Unknown
        }
    }

    /// Records an IPv4 checksum verdict as a PMD does on receive (tests).
    pub fn set_ip_checksum(&mut self, c: RxChecksum) {
        // SAFETY: we own the mbuf exclusively (&mut self).
        let m = unsafe { self.0.as_mut() };
        let mask =
            (dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD | dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_BAD) as u64;
        m.ol_flags &= !mask;
        m.ol_flags |= match c {
            RxChecksum::Good => dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD as u64,
            RxChecksum::Bad => dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64,
            RxChecksum::Unknown => 0,
        };
    }

    /// Hints the CPU to bring the packet's first cache line in (before it is parsed).
    #[inline(always)]
    pub fn prefetch(&self) {
        let m = self.raw();
        let p = m.buf_addr.wrapping_byte_add(mf::data_off(m) as usize);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults and has no architectural effect; SSE is part of
        // the x86_64 baseline.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// Input port recorded by the PMD on receive.
    #[inline]
    pub fn port(&self) -> u16 {
        mf::port(self.raw())
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: data_off is within the mbuf's buffer (DPDK keeps it below buf_len).
        let start = unsafe { (m.buf_addr as *const u8).add(mf::data_off(m) as usize) };
        // SAFETY: start is followed by data_len initialised bytes inside the mbuf's
        // buffer, which we own.
        unsafe { std::slice::from_raw_parts(start, mf::data_len(m) as usize) }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (addr, off, len) = (
            m.buf_addr as *mut u8,
            mf::data_off(m) as usize,
            mf::data_len(m) as usize,
        );
        // SAFETY: as in data().
        let start = unsafe { addr.add(off) };
        // SAFETY: as in data(); &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(start, len) }
    }

    /// Grows the packet by `len` bytes at the end; returns the new bytes (uninitialised
    /// content from the buffer), or `None` if the tailroom is too small.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: valid owned mbuf; on success DPDK returns a pointer to `len` bytes
        // inside the buffer that now belong to the packet.
        let p = unsafe { dpdk_sys::fl_pktmbuf_append(self.0.as_ptr(), len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: see above; exclusive through &mut self.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len as usize) })
    }

    /// Grows the packet by `len` bytes at the front (into headroom). What
    /// rte_pktmbuf_prepend does, inline (a VLAN push on every routed frame would
    /// otherwise call into C).
    #[inline]
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf exclusively (&mut self).
        let m = unsafe { self.0.as_mut() };
        let off = mf::data_off(m);
        if len > off {
            return None;
        }
        mf::set_data_off(m, off - len);
        // data_off + data_len stays within buf_len: the bytes moved from headroom.
        mf::set_data_len(m, mf::data_len(m) + len);
        mf::set_pkt_len(m, mf::pkt_len(m) + len as u32);
        // SAFETY: data_off is within the buffer (it only shrank).
        let p = unsafe { (m.buf_addr as *mut u8).add((off - len) as usize) };
        // SAFETY: the `len` bytes at p are inside the buffer and now part of the packet;
        // exclusive through &mut self.
        Some(unsafe { std::slice::from_raw_parts_mut(p, len as usize) })
    }

    /// Removes `len` bytes from the front. Returns false if the first segment is shorter.
    pub fn adj(&mut self, len: u16) -> bool {
        // SAFETY: valid owned mbuf.
        !unsafe { dpdk_sys::fl_pktmbuf_adj(self.0.as_ptr(), len) }.is_null()
    }

    /// Removes `len` bytes from the end. Returns false if the last segment is shorter.
    pub fn trim(&mut self, len: u16) -> bool {
        // SAFETY: valid owned mbuf.
        unsafe { dpdk_sys::fl_pktmbuf_trim(self.0.as_ptr(), len) == 0 }
    }

    /// Bytes free after the data in the first segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: valid owned mbuf; read only.
        unsafe { dpdk_sys::fl_pktmbuf_tailroom(self.0.as_ptr()) as usize }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this nobody references it.
        unsafe { dpdk_sys::fl_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// A caller-owned, fixed-capacity array of mbufs for burst I/O. It owns what it holds:
/// anything left in it is freed on drop, so nothing leaks when a transmit is partial.
///
/// No allocation happens after construction; workers create their bursts once.
pub struct Burst {
    slots: [*mut rte_mbuf; MAX_BURST],
    len: usize,
}

// SAFETY: the burst exclusively owns the mbufs in slots[..len]; see Mbuf's Send.
unsafe impl Send for Burst {}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).finish()
    }
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst.
    pub fn new() -> Burst {
        Burst {
            slots: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free slots.
    #[inline]
    pub fn room(&self) -> usize {
        MAX_BURST - self.len
    }

    /// The held mbufs.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are valid, owned, non-null mbuf pointers and Mbuf is a
        // repr(transparent) NonNull<rte_mbuf>, so the layouts are identical.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Mbuf, self.len) }
    }

    /// The held mbufs, writable (to edit packet bytes in place).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice; &mut self gives exclusive access. Callers cannot move an
        // Mbuf out through &mut [Mbuf] without putting one back (no null can appear).
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Adds an mbuf at the end; gives it back when full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.slots[self.len] = m.into_raw().as_ptr();
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let p = self.slots[self.len];
        // SAFETY: counted slots hold non-null mbuf pointers.
        let p = unsafe { NonNull::new_unchecked(p) };
        // SAFETY: slots[len] held a valid owned mbuf that we no longer count.
        Some(unsafe { Mbuf::from_raw(p) })
    }

    /// Moves every mbuf out, in order, leaving the burst empty. Mbufs not consumed by the
    /// iterator are freed when it is dropped.
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain {
            slots: &self.slots[..len],
            next: 0,
        }
    }

    /// Moves every mbuf out, in order, into the burst its entry of `to` names: the i-th
    /// into `stages[to[i]]`, or into `rest` when `to[i]` names no stage. The second pass of
    /// a distributor that chose every frame's stage first; one check per frame (the
    /// index), the room of every stage checked once. Leaves this burst empty and returns
    /// how many mbufs found no room and were freed (none while every stage and `rest`
    /// has room for the whole burst, as a worker's stages, emptied after every burst, do).
    ///
    /// Panics if `to` is shorter than the burst.
    #[inline]
    pub fn scatter(&mut self, to: &[u16], stages: &mut [Burst], rest: &mut Burst) -> usize {
        let n = self.len;
        let to = &to[..n];
        self.len = 0;
        if rest.room() < n || stages.iter().any(|s| s.room() < n) {
            return self.scatter_tight(to, stages, rest);
        }
        for (&p, &t) in self.slots[..n].iter().zip(to) {
            let dst = match stages.get_mut(t as usize) {
                Some(s) => s,
                None => &mut *rest,
            };
            // SAFETY: dst held at most MAX_BURST - n mbufs before this call (checked
            // above) and receives at most n here, so dst.len < MAX_BURST. The slot's
            // mbuf moves from this burst (no longer counted: len is 0) to dst.
            unsafe { *dst.slots.get_unchecked_mut(dst.len) = p };
            dst.len += 1;
        }
        0
    }

    /// [`Burst::scatter`] when some destination may fill up: checked pushes, and what does
    /// not fit is freed.
    #[cold]
    #[inline(never)]
    fn scatter_tight(&mut self, to: &[u16], stages: &mut [Burst], rest: &mut Burst) -> usize {
        let mut freed = 0;
        for (i, &t) in to.iter().enumerate() {
            // SAFETY: slots[..to.len()] held this burst's owned mbufs: non-null.
            let p = unsafe { NonNull::new_unchecked(self.slots[i]) };
            // SAFETY: an owned mbuf of this burst (len was set to 0 by the caller, so
            // each is taken exactly once, here).
            let m = unsafe { Mbuf::from_raw(p) };
            let dst = match stages.get_mut(t as usize) {
                Some(s) => s,
                None => &mut *rest,
            };
            if let Err(m) = dst.push(m) {
                drop(m);
                freed += 1;
            }
        }
        freed
    }

    /// Frees every held mbuf.
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: slots[..len] are owned mbufs; after this call we hold none.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr(), self.len as u32) };
        self.len = 0;
    }

    /// Drops the first `n` entries from the array without freeing them (they were handed
    /// to DPDK) and moves the rest to the front.
    #[inline]
    pub(crate) fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        // Usually everything was taken: nothing to move.
        if n < self.len {
            self.slots.copy_within(n..self.len, 0);
        }
        self.len -= n;
    }

    pub(crate) fn spare_ptr(&mut self) -> *mut *mut rte_mbuf {
        // SAFETY: len <= MAX_BURST, so the pointer is within or one past the array.
        unsafe { self.slots.as_mut_ptr().add(self.len) }
    }

    pub(crate) fn front_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.slots.as_mut_ptr()
    }

    /// # Safety
    /// `slots[..len]` must hold valid owned mbufs.
    pub(crate) unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= MAX_BURST);
        self.len = len;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Owning iterator over a drained [`Burst`].
pub struct Drain<'a> {
    slots: &'a [*mut rte_mbuf],
    next: usize,
}

impl Drain<'_> {
    /// The mbufs not yet taken, to look at before taking them.
    #[inline]
    pub fn remaining(&self) -> &[Mbuf] {
        let rest = &self.slots[self.next.min(self.slots.len())..];
        // SAFETY: the untaken slots hold valid, owned, non-null mbuf pointers and Mbuf is
        // a repr(transparent) NonNull<rte_mbuf>, so the layouts are identical.
        unsafe { std::slice::from_raw_parts(rest.as_ptr() as *const Mbuf, rest.len()) }
    }
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        let p = *self.slots.get(self.next)?;
        self.next += 1;
        // SAFETY: the drained burst's slots hold non-null mbuf pointers.
        let p = unsafe { NonNull::new_unchecked(p) };
        // SAFETY: each slot was an owned mbuf of the drained burst and is yielded once.
        Some(unsafe { Mbuf::from_raw(p) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.slots.len() - self.next;
        (n, Some(n))
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}
