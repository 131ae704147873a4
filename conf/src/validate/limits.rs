//! What the DPDK build allows ([`Limits`]) and the memory the configuration needs: checks
//! that `fastlag run` would otherwise fail late in EAL or a pool creation, naming no key.

use super::Validator;
use crate::limits::{self, mib, MAX_FILE_PREFIX};
use crate::model::{Config, Forward};
use crate::values::Device;

impl Validator<'_> {
    pub(super) fn dpdk_limits(&mut self, cfg: &Config) {
        let limits = *self.limits;
        let dp = &cfg.dataplane;

        if let Some(prefix) = &dp.file_prefix {
            if prefix.len() > MAX_FILE_PREFIX {
                self.ctx.error(
                    "dataplane.file_prefix",
                    format!("file_prefix is {} bytes long; EAL names its runtime directory after it and a file name has at most {MAX_FILE_PREFIX} bytes: shorten it (or remove the key to let fastlag pick a unique one)", prefix.len()),
                );
            }
        }

        if dp.memory_mb > limits.max_memory_mb {
            self.ctx.error(
                "dataplane.memory_mb",
                format!("memory_mb = {} is more than DPDK manages (RTE_MAX_MEM_MB = {}); use at most {} (what this machine can give is checked by `fastlag run`)", dp.memory_mb, limits.max_memory_mb, limits.max_memory_mb),
            );
        }

        if dp.mbuf_cache > limits.mempool_cache_max {
            self.ctx.error(
                "dataplane.mbuf_cache",
                format!("mbuf_cache = {} is more than this DPDK allows (RTE_MEMPOOL_CACHE_MAX_SIZE = {}); use at most {}", dp.mbuf_cache, limits.mempool_cache_max, limits.mempool_cache_max),
            );
        }

        let lcores = limits::lcores(cfg);
        if lcores > limits.max_lcores as usize {
            let most = (limits.max_lcores as usize).saturating_sub(2);
            self.ctx.error(
                "dataplane.worker_cores",
                format!("{} workers need {lcores} DPDK lcores (EAL's main lcore, the control thread and one per worker); this DPDK has RTE_MAX_LCORE = {}: use at most {most} workers", dp.workers(), limits.max_lcores),
            );
        }

        self.ethdev_ports(cfg);

        // The estimate depends on every dataplane and port value: only for a file that is
        // otherwise valid (it would only report consequences of the other errors).
        if self.ctx.diagnostics.is_empty() {
            self.memory(cfg);
        }
    }

    /// Ethdev ports against RTE_MAX_ETHPORTS, reported where the count goes over.
    fn ethdev_ports(&mut self, cfg: &Config) {
        let max = self.limits.max_ethports as usize;
        let total = limits::ethdev_ports(cfg);
        if total <= max {
            return;
        }
        let mut count = 0;
        let mut links: Vec<&str> = Vec::new();
        let mut at: Option<String> = None;
        for (i, p) in cfg.ports.iter().enumerate() {
            match &p.device {
                Device::Ring { link, .. } => {
                    if !links.contains(&link.as_str()) {
                        links.push(link);
                        count += 2;
                    }
                }
                Device::Pci(_) | Device::Vdev { .. } => count += 1,
            }
            if count > max {
                at = Some(format!("port[{i}].device"));
                break;
            }
        }
        if at.is_none() && cfg.forward == Forward::Router {
            for (i, iface) in cfg.interfaces.iter().enumerate() {
                count += usize::from(iface.tap);
                if count > max {
                    at = Some(format!("interface[{i}]"));
                    break;
                }
            }
        }
        let at = at.unwrap_or_else(|| "port".to_owned());
        self.ctx.error(
            &at,
            format!("this configuration needs {total} DPDK ports (one per PCI or vdev port, two per ring link, one per router TAP) and this DPDK allows RTE_MAX_ETHPORTS = {max}; the count goes over here: remove ports, ring links or TAPs (tap = false)"),
        );
    }

    /// The memory estimate against `memory_mb`.
    fn memory(&mut self, cfg: &Config) {
        let limits = *self.limits;
        let dp = &cfg.dataplane;
        let est = limits::memory_estimate(cfg, &limits);
        if est.total_mib <= u64::from(dp.memory_mb) {
            return;
        }
        // The most mbufs that fit as configured otherwise.
        let fits = {
            let mut probe = cfg.clone();
            let (mut lo, mut hi) = (0u32, dp.mbufs);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                probe.dataplane.mbufs = mid;
                if limits::memory_estimate(&probe, &limits).total_mib <= u64::from(dp.memory_mb) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            lo
        };
        let page = if dp.hugepages {
            "2 MiB hugepages"
        } else {
            "4 KiB pages"
        };
        let fewer = if fits > 0 {
            format!(", or lower dataplane.mbufs to {fits} or less (if the rings still fit)")
        } else {
            String::new()
        };
        self.ctx.error(
            "dataplane.memory_mb",
            format!(
                "memory_mb = {} is too small: this configuration needs about {} MiB (packet pool {} MiB: {} mbufs of {} bytes data room in {page}; pool ring and per-lcore caches {} MiB; ports {} MiB; EAL {} MiB); set memory_mb = {} or more{fewer}",
                dp.memory_mb,
                est.total_mib,
                mib(est.pool_bytes),
                dp.mbufs,
                limits::data_room(cfg, &limits),
                mib(est.pool_overhead_bytes),
                mib(est.ports_bytes),
                mib(est.eal_bytes),
                est.total_mib,
            ),
        );
    }
}
