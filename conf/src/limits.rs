//! What the DPDK that fastlag runs with allows, and the memory a configuration needs.
//!
//! This crate does not depend on DPDK: the binary fills [`Limits`] from the dpdk crate's
//! build constants (`control::limits()`), so `fastlag check-config` and `fastlag run`
//! check against the same numbers; [`Limits::default`] is a stock DPDK build for x86-64
//! (Debian's 22.11 and 24.11 packages), for tools and tests without DPDK.

use crate::model::{Config, Forward};
use crate::values::Device;

/// Compile-time limits of the DPDK build and the mbuf layout facts the memory estimate
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `RTE_MAX_ETHPORTS`: ethdev ports one process can have (configured ports, both ends
    /// of every ring link, TAPs).
    pub max_ethports: u32,
    /// `RTE_MAX_LCORE`: lcores one process can have (EAL's main lcore, the control thread
    /// and every worker each take one).
    pub max_lcores: u32,
    /// `RTE_MEMPOOL_CACHE_MAX_SIZE`: the largest per-lcore mempool cache.
    pub mempool_cache_max: u32,
    /// `RTE_MAX_MEM_MB`: the most memory EAL manages.
    pub max_memory_mb: u32,
    /// `sizeof(struct rte_mbuf)`.
    pub mbuf_struct_bytes: u32,
    /// `RTE_PKTMBUF_HEADROOM`.
    pub mbuf_headroom: u32,
    /// `RTE_MBUF_DEFAULT_BUF_SIZE`: the smallest data room fastlag gives an mbuf.
    pub default_buf_size: u32,
}

impl Default for Limits {
    /// A stock DPDK build (`RTE_MAX_ETHPORTS` 32, `RTE_MAX_LCORE` 128).
    fn default() -> Self {
        Limits {
            max_ethports: 32,
            max_lcores: 128,
            mempool_cache_max: 512,
            max_memory_mb: 524_288,
            mbuf_struct_bytes: 128,
            mbuf_headroom: 128,
            default_buf_size: 2048 + 128,
        }
    }
}

/// Longest EAL `--file-prefix`: EAL makes it the name of its runtime directory
/// (`/var/run/dpdk/<prefix>`), and a file name has at most NAME_MAX (255) bytes. Longer,
/// EAL logs "No DPDK runtime directory created" and goes on without one.
pub const MAX_FILE_PREFIX: usize = 255;

/// Cache line of the CPUs DPDK lays mempool objects out for.
const CACHE_LINE: u64 = 64;
/// `struct rte_mempool_objhdr` (list link, pool, IOVA: 24 bytes) in its cache line.
const OBJ_HEADER: u64 = CACHE_LINE;
/// Descriptor ring entries of one in-process link queue (the runtime's ring size).
const LINK_RING_ENTRIES: u64 = 1024;
/// EAL's and the ethdev layer's own allocations from the `-m` memory (service and lcore
/// tables, ethdev data for every possible port, heap element headers). Measured with
/// DPDK 22.11 `--no-huge`: 0.2 to 0.5 MiB; this keeps a margin above that.
const EAL_OVERHEAD: u64 = 768 << 10;
/// Per ethdev port: the PMD's private data and queue structures.
const PER_PORT: u64 = 16 << 10;
/// Per hardware descriptor (descriptor and software ring entry, both generous).
const PER_DESCRIPTOR: u64 = 64;
/// Page of ordinary memory (`hugepages = false`: EAL's `--no-huge` memory is 4 KiB pages).
const SMALL_PAGE: u64 = 4 << 10;
/// The smallest common hugepage; larger hugepages (1 GiB) waste less per object but
/// round every allocation up further (the free hugepages are checked by `run`).
const HUGE_PAGE: u64 = 2 << 20;

/// The memory a configuration asks of EAL, by what takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The packet pool's objects (mbuf header and data room in page-aligned chunks: with
    /// 4 KiB pages a 2,368-byte mbuf takes a whole page).
    pub pool_bytes: u64,
    /// The pool's ring and its per-lcore caches (one per possible lcore when the cache is
    /// on).
    pub pool_overhead_bytes: u64,
    /// Ring links' rings, ports' queues and descriptors.
    pub ports_bytes: u64,
    /// EAL's own allocations.
    pub eal_bytes: u64,
    /// Everything, in MiB, rounded up (to whole pages with hugepages).
    pub total_mib: u64,
}

/// Bytes of buffer each mbuf needs for the largest configured MTU (Ethernet header, two
/// VLAN tags, FCS room) plus DPDK's headroom; never below DPDK's default.
pub fn data_room(cfg: &Config, limits: &Limits) -> u16 {
    let max_mtu = cfg
        .ports
        .iter()
        .map(|p| u32::from(p.mtu))
        .max()
        .unwrap_or(1500);
    let need = max_mtu + 14 + 8 + 4 + limits.mbuf_headroom;
    u16::try_from(need.max(limits.default_buf_size)).unwrap_or(u16::MAX)
}

/// Ethdev ports `cfg` creates: its PCI and vdev ports, both ends of every ring link (an
/// end no port claims is created too) and, in router mode, one TAP per interface.
pub fn ethdev_ports(cfg: &Config) -> usize {
    let mut links: Vec<&str> = Vec::new();
    let mut ports = 0;
    for p in &cfg.ports {
        match &p.device {
            Device::Ring { link, .. } => {
                if !links.contains(&link.as_str()) {
                    links.push(link);
                }
            }
            Device::Pci(_) | Device::Vdev { .. } => ports += 1,
        }
    }
    let taps = match cfg.forward {
        Forward::Router => cfg.interfaces.iter().filter(|i| i.tap).count(),
        Forward::Xconnect { .. } => 0,
    };
    ports + 2 * links.len() + taps
}

/// Lcores `cfg` takes: EAL's main lcore, the control thread and one per worker.
pub fn lcores(cfg: &Config) -> usize {
    cfg.dataplane.workers() + 2
}

/// Bytes of one packet-pool object as `rte_mempool_calc_obj_size` lays it out: header and
/// element in whole cache lines, spread over memory channels (an odd number of lines).
fn pool_object_bytes(cfg: &Config, limits: &Limits) -> u64 {
    let element = u64::from(limits.mbuf_struct_bytes) + u64::from(data_room(cfg, limits));
    let mut lines = (OBJ_HEADER + element).div_ceil(CACHE_LINE);
    if lines.is_multiple_of(2) {
        lines += 1;
    }
    lines * CACHE_LINE
}

/// What `cfg` asks of EAL's `-m` memory: the packet pool as DPDK lays it out (objects do
/// not cross page boundaries), its ring and caches, the ports and EAL's own share.
pub fn memory_estimate(cfg: &Config, limits: &Limits) -> MemoryEstimate {
    let dp = &cfg.dataplane;
    let page = if dp.hugepages { HUGE_PAGE } else { SMALL_PAGE };
    let n = u64::from(dp.mbufs);
    let obj = pool_object_bytes(cfg, limits);
    let pool_bytes = if obj <= page {
        let per_page = page / obj;
        n / per_page * page + n % per_page * obj
    } else {
        obj.div_ceil(page) * page * n
    };
    let ring = (n + 1).next_power_of_two() * 8 + 4096;
    // struct rte_mempool_cache: counters, then 2 x RTE_MEMPOOL_CACHE_MAX_SIZE pointers.
    let cache = CACHE_LINE + 2 * u64::from(limits.mempool_cache_max) * 8;
    let caches = if dp.mbuf_cache > 0 {
        u64::from(limits.max_lcores) * cache
    } else {
        0
    };
    let workers = dp.workers() as u64;
    let queues = workers + 1;
    let mut ports_bytes = ethdev_ports(cfg) as u64 * PER_PORT;
    let mut links: Vec<&str> = Vec::new();
    for p in &cfg.ports {
        match &p.device {
            Device::Ring { link, .. } => {
                if !links.contains(&link.as_str()) {
                    links.push(link);
                    // Both directions, one ring per queue.
                    ports_bytes += 2 * queues * (LINK_RING_ENTRIES * 8 + 4096);
                }
            }
            Device::Pci(_) | Device::Vdev { .. } => {
                let descriptors = u64::from(p.rx_descriptors) + u64::from(p.tx_descriptors);
                ports_bytes += queues * (descriptors * PER_DESCRIPTOR + 2 * SMALL_PAGE);
            }
        }
    }
    let total = pool_bytes + ring + caches + ports_bytes + EAL_OVERHEAD;
    let total_mib = if dp.hugepages {
        // Whole hugepages, and one more: allocations of different sizes do not share
        // their last page.
        (total.div_ceil(HUGE_PAGE) + 1) * (HUGE_PAGE >> 20)
    } else {
        total.div_ceil(1 << 20)
    };
    MemoryEstimate {
        pool_bytes,
        pool_overhead_bytes: ring + caches,
        ports_bytes,
        eal_bytes: EAL_OVERHEAD,
        total_mib,
    }
}

/// `n` bytes as MiB with one decimal.
pub(crate) fn mib(n: u64) -> String {
    format!("{:.1}", n as f64 / f64::from(1 << 20))
}
