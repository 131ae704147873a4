//! Packet buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;

use super::eal::Eal;
use super::error::DpdkError;
use super::mbuf::{Burst, Mbuf};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// Thread-safe: DPDK's mempool is a lock-free ring with per-lcore caches.
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    size: u32,
}

// SAFETY: rte_mempool get/put and the count functions are multi-thread safe; the pointer
// is only freed in Drop, when no other reference to the Mempool exists.
unsafe impl Send for Mempool {}
// SAFETY: see Send; shared access only uses DPDK's thread-safe operations.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `size` mbufs with `cache` per-lcore cached mbufs and `data_room`
    /// bytes of buffer each (headroom included).
    pub fn new(
        _eal: &Eal,
        name: &str,
        size: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::Invalid(format!("pool name {name:?} contains NUL")))?;
        // SAFETY: EAL is initialised (we hold &Eal); the name is a valid C string that
        // DPDK copies.
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                size,
                cache,
                0,
                data_room,
                dpdk_sys::SOCKET_ID_ANY,
            )
        };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name})")))?;
        Ok(Mempool {
            ptr,
            name: name.to_string(),
            size,
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Mbufs currently in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: valid pool pointer; the count is a thread-safe read.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: valid pool pointer; the count is a thread-safe read.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Allocates one mbuf (reset, empty), or `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: valid pool pointer; a non-null result is a fresh mbuf we now own.
        let m = unsafe { dpdk_sys::fl_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(|m| {
            // SAFETY: freshly allocated, exclusively owned.
            unsafe { Mbuf::from_raw(m) }
        })
    }

    /// Fills `burst` up to `n` mbufs in total (all or nothing). Returns false when the
    /// pool cannot supply them.
    pub fn alloc_into(&self, burst: &mut Burst, n: usize) -> bool {
        let want = n.saturating_sub(burst.len()).min(burst.room());
        if want == 0 {
            return true;
        }
        let spare = burst.spare_ptr();
        // SAFETY: `spare` points at `want` free slots inside the burst's array; on success
        // DPDK writes `want` fresh mbuf pointers there, which the burst then owns.
        let ret = unsafe { dpdk_sys::fl_pktmbuf_alloc_bulk(self.ptr.as_ptr(), spare, want as u32) };
        if ret != 0 {
            return false;
        }
        // SAFETY: the `want` slots after len were just filled with valid mbufs.
        unsafe { burst.set_len(burst.len() + want) };
        true
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use != 0 {
            // Freeing a pool with mbufs still out would let them write into freed memory.
            tracing::warn!(
                pool = %self.name,
                in_use,
                "mempool still has mbufs in use at shutdown; leaving it allocated"
            );
            return;
        }
        // SAFETY: no mbuf of this pool is outstanding and no other reference exists.
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}
