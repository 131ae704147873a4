//! DPDK's longest-prefix-match tables (rte_lpm for IPv4, rte_lpm6 for IPv6), wrapped for
//! the router's benchmark: the fast path uses fastlag's own tables (`router::lpm`, see
//! docs/router.md for why), these are the reference they were measured against.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::eal::Eal;
use super::error::DpdkError;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique_name(kind: &str) -> CString {
    // LPM tables live in named memzones: names must be unique per process.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    CString::new(format!("fl_{kind}{n}")).expect("no NUL in generated name")
}

/// Bit set in [`RteLpm::lookup_bulk`] results on a hit (RTE_LPM_LOOKUP_SUCCESS).
pub const LPM_LOOKUP_SUCCESS: u32 = 0x0100_0000;

/// An rte_lpm table (IPv4, DIR-24-8, 24-bit next hops). Lookups take `&self` and may run
/// on many threads; changes take `&mut self`.
#[derive(Debug)]
pub struct RteLpm {
    ptr: NonNull<dpdk_sys::rte_lpm>,
}

// SAFETY: the table is plain memory owned by this value; DPDK's lookup only reads it, and
// rte_lpm_add/delete are reached only through &mut self.
unsafe impl Send for RteLpm {}
// SAFETY: see Send: shared access is read-only lookups.
unsafe impl Sync for RteLpm {}

impl RteLpm {
    /// A table for up to `max_rules` prefixes and `tbl8s` second-level groups (each 1 KB;
    /// one per /24 that holds longer prefixes).
    pub fn new(_eal: &Eal, max_rules: u32, tbl8s: u32) -> Result<RteLpm, DpdkError> {
        let name = unique_name("lpm");
        let cfg = dpdk_sys::rte_lpm_config {
            max_rules,
            number_tbl8s: tbl8s,
            flags: 0,
        };
        // SAFETY: EAL is initialised (we hold &Eal); name and cfg are valid for the call.
        let p = unsafe { dpdk_sys::rte_lpm_create(name.as_ptr(), dpdk_sys::SOCKET_ID_ANY, &cfg) };
        NonNull::new(p)
            .map(|ptr| RteLpm { ptr })
            .ok_or_else(|| DpdkError::last("rte_lpm_create"))
    }

    /// Adds or replaces `ip/depth -> next_hop` (next_hop < 2^24).
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<(), DpdkError> {
        // SAFETY: valid table, exclusive access through &mut self.
        let r = unsafe { dpdk_sys::rte_lpm_add(self.ptr.as_ptr(), ip, depth, next_hop) };
        DpdkError::check("rte_lpm_add", r).map(drop)
    }

    /// Removes `ip/depth`.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<(), DpdkError> {
        // SAFETY: valid table, exclusive access through &mut self.
        let r = unsafe { dpdk_sys::rte_lpm_delete(self.ptr.as_ptr(), ip, depth) };
        DpdkError::check("rte_lpm_delete", r).map(drop)
    }

    /// The next hop of the longest prefix containing `ip`.
    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let mut nh = 0u32;
        // SAFETY: valid table; rte_lpm_lookup only reads it and writes *next_hop.
        let r = unsafe { dpdk_sys::fl_lpm_lookup(self.ptr.as_ptr(), ip, &mut nh) };
        (r == 0).then_some(nh)
    }

    /// Looks up `ips` into `out` (same length or longer): `LPM_LOOKUP_SUCCESS | next_hop`
    /// on a hit.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
        let n = ips.len().min(out.len());
        // SAFETY: valid table; both arrays hold at least n elements.
        unsafe {
            dpdk_sys::fl_lpm_lookup_bulk(
                self.ptr.as_ptr(),
                ips.as_ptr(),
                out.as_mut_ptr(),
                n as u32,
            )
        };
    }
}

impl Drop for RteLpm {
    fn drop(&mut self) {
        // SAFETY: we own the table; nobody uses it after this.
        unsafe { dpdk_sys::rte_lpm_free(self.ptr.as_ptr()) }
    }
}

/// An rte_lpm6 table (IPv6: 24-bit first level, then 8-bit groups).
#[derive(Debug)]
pub struct RteLpm6 {
    ptr: NonNull<dpdk_sys::rte_lpm6>,
}

// SAFETY: as for RteLpm.
unsafe impl Send for RteLpm6 {}
// SAFETY: as for RteLpm.
unsafe impl Sync for RteLpm6 {}

impl RteLpm6 {
    /// A table for up to `max_rules` prefixes and `tbl8s` groups (1 KB each).
    pub fn new(_eal: &Eal, max_rules: u32, tbl8s: u32) -> Result<RteLpm6, DpdkError> {
        let name = unique_name("lpm6_");
        let cfg = dpdk_sys::rte_lpm6_config {
            max_rules,
            number_tbl8s: tbl8s,
            flags: 0,
        };
        // SAFETY: EAL is initialised; name and cfg are valid for the call.
        let p = unsafe { dpdk_sys::rte_lpm6_create(name.as_ptr(), dpdk_sys::SOCKET_ID_ANY, &cfg) };
        NonNull::new(p)
            .map(|ptr| RteLpm6 { ptr })
            .ok_or_else(|| DpdkError::last("rte_lpm6_create"))
    }

    /// Adds or replaces `ip/depth -> next_hop` (next_hop < 2^21).
    pub fn add(&mut self, ip: [u8; 16], depth: u8, next_hop: u32) -> Result<(), DpdkError> {
        // SAFETY: valid table, exclusive access; ip points to 16 bytes.
        let r = unsafe { dpdk_sys::fl_lpm6_add(self.ptr.as_ptr(), ip.as_ptr(), depth, next_hop) };
        DpdkError::check("rte_lpm6_add", r).map(drop)
    }

    /// Removes `ip/depth`.
    pub fn delete(&mut self, ip: [u8; 16], depth: u8) -> Result<(), DpdkError> {
        // SAFETY: valid table, exclusive access; ip points to 16 bytes.
        let r = unsafe { dpdk_sys::fl_lpm6_delete(self.ptr.as_ptr(), ip.as_ptr(), depth) };
        DpdkError::check("rte_lpm6_delete", r).map(drop)
    }

    /// The next hop of the longest prefix containing `ip`.
    #[inline]
    pub fn lookup(&self, ip: &[u8; 16]) -> Option<u32> {
        let mut nh = 0u32;
        // SAFETY: valid table, read only; ip points to 16 bytes.
        let r = unsafe { dpdk_sys::fl_lpm6_lookup(self.ptr.as_ptr(), ip.as_ptr(), &mut nh) };
        (r == 0).then_some(nh)
    }

    /// Looks up `ips` into `out`: the next hop on a hit, -1 on a miss.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[[u8; 16]], out: &mut [i32]) {
        let n = ips.len().min(out.len());
        // SAFETY: valid table, read only; both arrays hold at least n elements (the
        // addresses 16 contiguous bytes each).
        unsafe {
            dpdk_sys::fl_lpm6_lookup_bulk(
                self.ptr.as_ptr(),
                ips.as_ptr().cast::<u8>(),
                out.as_mut_ptr(),
                n as u32,
            )
        };
    }
}

impl Drop for RteLpm6 {
    fn drop(&mut self) {
        // SAFETY: we own the table; nobody uses it after this.
        unsafe { dpdk_sys::rte_lpm6_free(self.ptr.as_ptr()) }
    }
}
