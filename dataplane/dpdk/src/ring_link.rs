//! In-process links: two ethdev ports joined back to back by DPDK rings
//! (`rte_eth_from_rings`). What end A transmits on queue q, end B receives on queue q.

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};

use super::eal::Eal;
use super::error::DpdkError;
use super::port::PortId;

static NEXT_RING: AtomicU32 = AtomicU32::new(0);

fn ring(size: u32, multi_producer: bool) -> Result<*mut dpdk_sys::rte_ring, DpdkError> {
    // Ring names are global and short (RTE_RING_NAMESIZE); a counter keeps them unique.
    let name = format!("fl_link{}", NEXT_RING.fetch_add(1, Ordering::Relaxed));
    let cname = CString::new(name.clone()).expect("generated name has no NUL");
    // One thread dequeues (the owner of the receiving RX queue); one thread enqueues (the
    // owner of the sending TX queue), or several when extra TX queues share the ring.
    let flags = if multi_producer {
        dpdk_sys::RING_F_SC_DEQ
    } else {
        dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ
    };
    // SAFETY: EAL is initialised (callers hold &Eal); the name is a valid C string.
    let r =
        unsafe { dpdk_sys::rte_ring_create(cname.as_ptr(), size, dpdk_sys::SOCKET_ID_ANY, flags) };
    if r.is_null() {
        return Err(DpdkError::last(format!("rte_ring_create({name}, {size})")));
    }
    Ok(r)
}

/// Creates two ports named `name_a` and `name_b`, joined back to back with `queues`
/// queue pairs whose rings hold `size` packets (a power of two).
///
/// Each end also gets `extra_tx` more TX queues that feed the peer's RX queue 0 (like a
/// wire, where the TX queue does not matter to the receiver): the control thread's own
/// queue then reaches a peer that polls only its worker queues.
pub fn ring_link(
    _eal: &Eal,
    name_a: &str,
    name_b: &str,
    queues: u16,
    extra_tx: u16,
    size: u32,
) -> Result<(PortId, PortId), DpdkError> {
    if !size.is_power_of_two() {
        return Err(DpdkError::Invalid(format!(
            "ring size {size} is not a power of two"
        )));
    }
    let mut a_to_b = Vec::with_capacity(queues as usize);
    let mut b_to_a = Vec::with_capacity(queues as usize);
    if queues == 0 {
        return Err(DpdkError::Invalid(
            "a ring link needs at least one queue".into(),
        ));
    }
    for q in 0..queues {
        let shared = q == 0 && extra_tx > 0;
        a_to_b.push(ring(size, shared)?);
        b_to_a.push(ring(size, shared)?);
    }
    let with_extra = |rings: &[*mut dpdk_sys::rte_ring]| {
        let mut v = rings.to_vec();
        v.extend(std::iter::repeat_n(rings[0], extra_tx as usize));
        v
    };
    let make = |name: &str, rx: &[*mut dpdk_sys::rte_ring], tx: &[*mut dpdk_sys::rte_ring]| {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::Invalid(format!("port name {name:?} contains NUL")))?;
        // SAFETY: the ring arrays hold `queues` valid rings that live for the rest of the
        // process (ring ports do not free rings they were given).
        let ret = unsafe {
            dpdk_sys::rte_eth_from_rings(
                cname.as_ptr(),
                rx.as_ptr(),
                rx.len() as u32,
                tx.as_ptr(),
                tx.len() as u32,
                0,
            )
        };
        if ret < 0 {
            return Err(DpdkError::last(format!("rte_eth_from_rings({name})")));
        }
        Ok(PortId(ret as u16))
    };
    let a = make(name_a, &b_to_a, &with_extra(&a_to_b))?;
    let b = make(name_b, &a_to_b, &with_extra(&b_to_a))?;
    Ok((a, b))
}
