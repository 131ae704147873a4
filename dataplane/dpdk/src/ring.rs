//! Single-producer/single-consumer rings of mbufs between threads (DPDK rte_ring, lock-free,
//! no allocation after creation). Workers hand slow-protocol frames to the control thread
//! through these when the NIC cannot steer them to a queue of their own.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::eal::Eal;
use super::error::DpdkError;
use super::mbuf::{Burst, Mbuf};

static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
struct RingInner {
    ptr: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: rte_ring is designed for cross-thread use; the SP/SC discipline is enforced by
// handing out exactly one Producer and one Consumer, neither of which is Sync.
unsafe impl Send for RingInner {}
// SAFETY: see Send; the shared part is only the ring pointer, used by the two halves.
unsafe impl Sync for RingInner {}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Both halves are gone: free what is still queued, then the ring.
        let mut ptrs = [std::ptr::null_mut::<std::ffi::c_void>(); 64];
        loop {
            // SAFETY: no other user of the ring exists any more; ptrs has room for 64.
            let n = unsafe {
                dpdk_sys::fl_ring_dequeue_burst(self.ptr.as_ptr(), ptrs.as_mut_ptr(), 64)
            };
            if n == 0 {
                break;
            }
            for p in &ptrs[..n as usize] {
                // SAFETY: only mbufs are ever enqueued, never null (Producer::push takes an
                // Mbuf).
                let p = unsafe { NonNull::new_unchecked(*p as *mut dpdk_sys::rte_mbuf) };
                // SAFETY: an owned mbuf, dequeued once.
                drop(unsafe { Mbuf::from_raw(p) });
            }
        }
        // SAFETY: the ring was created by rte_ring_create and is no longer used.
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}

/// The sending half (one thread).
#[derive(Debug)]
pub struct Producer {
    inner: Arc<RingInner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The receiving half (one thread).
#[derive(Debug)]
pub struct Consumer {
    inner: Arc<RingInner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// Creates an SPSC ring holding up to `size - 1` mbufs (`size` a power of two).
pub fn mbuf_ring(_eal: &Eal, size: u32) -> Result<(Producer, Consumer), DpdkError> {
    if !size.is_power_of_two() {
        return Err(DpdkError::Invalid(format!(
            "ring size {size} is not a power of two"
        )));
    }
    let name = format!("fl_spsc{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let cname = CString::new(name.clone()).expect("generated name has no NUL");
    let flags = dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ;
    // SAFETY: EAL initialised (we hold &Eal); valid C string.
    let r =
        unsafe { dpdk_sys::rte_ring_create(cname.as_ptr(), size, dpdk_sys::SOCKET_ID_ANY, flags) };
    let ptr = NonNull::new(r).ok_or_else(|| DpdkError::last(format!("rte_ring_create({name})")))?;
    let inner = Arc::new(RingInner { ptr });
    Ok((
        Producer {
            inner: inner.clone(),
            _not_sync: PhantomData,
        },
        Consumer {
            inner,
            _not_sync: PhantomData,
        },
    ))
}

impl Producer {
    /// Queues one mbuf; gives it back when the ring is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let raw = m.into_raw();
        let obj = [raw.as_ptr() as *mut std::ffi::c_void];
        // SAFETY: single producer (this half is unique and !Sync); on success the ring owns
        // the mbuf until the consumer takes it.
        let n =
            unsafe { dpdk_sys::fl_ring_enqueue_burst(self.inner.ptr.as_ptr(), obj.as_ptr(), 1) };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: not enqueued, so we still own it.
            Err(unsafe { Mbuf::from_raw(raw) })
        }
    }
}

impl Consumer {
    /// Moves up to `max` queued mbufs into `burst`. Returns how many.
    pub fn pop_into(&mut self, burst: &mut Burst, max: usize) -> usize {
        let n = max.min(burst.room()) as u32;
        if n == 0 {
            return 0;
        }
        let spare = burst.spare_ptr() as *mut *mut std::ffi::c_void;
        // SAFETY: single consumer; `spare` has room for n pointers; dequeued mbufs were
        // owned by the ring and now belong to the burst.
        let got =
            unsafe { dpdk_sys::fl_ring_dequeue_burst(self.inner.ptr.as_ptr(), spare, n) } as usize;
        // SAFETY: slots [len, len+got) now hold owned mbufs.
        unsafe { burst.set_len(burst.len() + got) };
        got
    }

    /// Mbufs waiting.
    pub fn len(&self) -> usize {
        // SAFETY: read-only count.
        unsafe { dpdk_sys::fl_ring_count(self.inner.ptr.as_ptr()) as usize }
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
