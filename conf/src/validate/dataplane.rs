//! `[dataplane]`: cores, memory, mbuf pool and EAL arguments.

use std::collections::HashMap;

use super::Validator;
use crate::model::{Dataplane, Port};
use crate::raw::{List, RawDataplane};

/// Defaults of the schema.
const DEFAULT_MEMORY_MB: u32 = 256;
const DEFAULT_MBUFS: u32 = 16_383;
const DEFAULT_MBUF_CACHE: u32 = 256;
const DEFAULT_BURST: u16 = 32;
/// Mbufs kept free beyond the descriptor rings and in-flight bursts.
const MBUF_HEADROOM: u64 = 1024;

/// EAL options fastlag derives from the configuration, and the key to use instead.
fn reserved_eal_arg(arg: &str) -> Option<(&'static str, &'static str)> {
    const SHORT: &[(&str, &str)] = &[
        ("-l", "dataplane.control_core and dataplane.worker_cores"),
        ("-c", "dataplane.control_core and dataplane.worker_cores"),
        ("-a", "a [[port]] with device = \"<PCI address>\""),
        ("-w", "a [[port]] with device = \"<PCI address>\""),
        ("-m", "dataplane.memory_mb"),
    ];
    const LONG: &[(&str, &str)] = &[
        (
            "--lcores",
            "dataplane.control_core and dataplane.worker_cores",
        ),
        ("--main-lcore", "dataplane.control_core"),
        ("--master-lcore", "dataplane.control_core"),
        ("--file-prefix", "dataplane.file_prefix"),
        (
            "--vdev",
            "a [[port]] with device = \"net_<driver><id>,...\"",
        ),
        ("--allow", "a [[port]] with device = \"<PCI address>\""),
        (
            "--pci-whitelist",
            "a [[port]] with device = \"<PCI address>\"",
        ),
        ("--no-huge", "dataplane.hugepages = false"),
        (
            "--socket-mem",
            "dataplane.memory_mb (DPDK refuses --socket-mem together with the -m fastlag passes)",
        ),
    ];
    if arg.starts_with("--") {
        LONG.iter()
            .find(|(opt, _)| {
                arg == *opt
                    || arg
                        .strip_prefix(opt)
                        .is_some_and(|rest| rest.starts_with('='))
            })
            .copied()
    } else {
        // Short options may carry their value attached: "-l1-3", "-m512".
        SHORT.iter().find(|(opt, _)| arg.starts_with(opt)).copied()
    }
}

impl Validator<'_> {
    pub(super) fn dataplane(&mut self, raw: Option<RawDataplane>) -> Dataplane {
        let mut dp = Dataplane {
            control_core: 0,
            worker_cores: Vec::new(),
            hugepages: true,
            memory_mb: DEFAULT_MEMORY_MB,
            mbufs: DEFAULT_MBUFS,
            mbuf_cache: DEFAULT_MBUF_CACHE,
            burst: DEFAULT_BURST,
            eal_args: Vec::new(),
            file_prefix: None,
            stats_interval_s: 0,
        };
        let Some(raw) = raw else {
            self.ctx.error(
                "dataplane",
                "missing required section [dataplane]; add it with at least `control_core = 0` and `worker_cores = [1]` (CPU ids of the control thread and the workers)".to_owned(),
            );
            return dp;
        };
        let ctx = &mut self.ctx;

        match raw.control_core {
            None => ctx.error(
                "dataplane.control_core",
                "missing required key `control_core`: the CPU id of the control thread, e.g. `control_core = 0`".to_owned(),
            ),
            Some(raw) => {
                self.control_core = ctx.int("dataplane.control_core", raw);
                dp.control_core = self.control_core.unwrap_or(0);
            }
        }

        match raw.worker_cores {
            None => ctx.error(
                "dataplane.worker_cores",
                "missing required key `worker_cores`: CPU ids of the poll-mode workers, e.g. `worker_cores = [1]`".to_owned(),
            ),
            Some(List(cores)) if cores.is_empty() => ctx.error(
                "dataplane.worker_cores",
                "worker_cores is empty; list at least one CPU id for a poll-mode worker, e.g. [1]"
                    .to_owned(),
            ),
            Some(List(cores)) => {
                self.workers = Some(cores.len());
                let mut seen: HashMap<u32, usize> = HashMap::new();
                for (i, raw) in cores.into_iter().enumerate() {
                    let path = format!("dataplane.worker_cores[{i}]");
                    let Some(cpu) = ctx.int::<u32, 0, 1023>(&path, raw) else {
                        continue;
                    };
                    if Some(cpu) == self.control_core {
                        ctx.error(
                            &path,
                            format!("CPU {cpu} is also dataplane.control_core; the control thread needs a CPU of its own: remove {cpu} from worker_cores or change control_core"),
                        );
                    } else if let Some(first) = seen.get(&cpu) {
                        ctx.error(
                            &path,
                            format!("CPU {cpu} is listed twice (also worker_cores[{first}]); each worker needs a CPU of its own"),
                        );
                    } else {
                        seen.insert(cpu, i);
                    }
                    dp.worker_cores.push(cpu);
                }
            }
        }

        dp.hugepages = raw.hugepages.unwrap_or(true);
        dp.memory_mb = ctx.int_or("dataplane.memory_mb", raw.memory_mb, DEFAULT_MEMORY_MB);
        dp.burst = ctx.int_or("dataplane.burst", raw.burst, DEFAULT_BURST);
        dp.stats_interval_s = ctx.int_or("dataplane.stats_interval_s", raw.stats_interval_s, 0);

        let mbufs = raw
            .mbufs
            .and_then(|r| ctx.int::<u32, 1, 4_294_967_295>("dataplane.mbufs", r));
        let cache = raw
            .mbuf_cache
            .and_then(|r| ctx.int::<u32, 0, 512>("dataplane.mbuf_cache", r));
        let mbufs_ok = mbufs.is_some() || raw.mbufs.is_none();
        dp.mbufs = mbufs.unwrap_or(DEFAULT_MBUFS);
        dp.mbuf_cache = cache.unwrap_or(DEFAULT_MBUF_CACHE);
        let cache_ok = cache.is_some() || raw.mbuf_cache.is_none();
        // rte_mempool_create() refuses a cache larger than n / 1.5 (CACHE_FLUSHTHRESH_MULTIPLIER).
        if mbufs_ok && cache_ok && u64::from(dp.mbuf_cache) * 3 > u64::from(dp.mbufs) * 2 {
            let max = u64::from(dp.mbufs) * 2 / 3;
            let need = (u64::from(dp.mbuf_cache) * 3).div_ceil(2);
            ctx.error(
                "dataplane.mbuf_cache",
                format!(
                    "mbuf_cache = {} is too large for mbufs = {}: DPDK requires mbuf_cache <= mbufs / 1.5 = {max}; lower mbuf_cache to {max} or less, or raise mbufs to {need} or more",
                    dp.mbuf_cache, dp.mbufs
                ),
            );
        }

        if let Some(List(args)) = raw.eal_args {
            for (i, arg) in args.iter().enumerate() {
                if let Some((option, instead)) = reserved_eal_arg(arg) {
                    ctx.error(
                        &format!("dataplane.eal_args[{i}]"),
                        format!("{arg:?}: fastlag sets EAL option {option} itself; remove it from eal_args and use {instead} instead"),
                    );
                }
            }
            dp.eal_args = args;
        }

        if let Some(prefix) = raw.file_prefix {
            let ok = !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                ctx.error(
                    "dataplane.file_prefix",
                    format!("{prefix:?} is not a valid file prefix; use one or more of A-Z a-z 0-9 _ - (or remove the key to let fastlag pick a unique one)"),
                );
            }
            dp.file_prefix = Some(prefix);
        }
        dp
    }

    /// The pool must fill every RX ring, cover every TX ring and in-flight bursts.
    pub(super) fn mbuf_sizing(&mut self, dp: &Dataplane, ports: &[Port]) {
        let Some(workers) = self.workers else { return };
        if ports.is_empty() {
            return;
        }
        let workers = workers as u64;
        let rings: u64 = ports
            .iter()
            .map(|p| {
                u64::from(p.queues) * (u64::from(p.rx_descriptors) + u64::from(p.tx_descriptors))
            })
            .sum();
        let bursts = workers * u64::from(dp.burst) * ports.len() as u64 * 2;
        let needed = rings + bursts + MBUF_HEADROOM;
        if u64::from(dp.mbufs) < needed {
            self.ctx.error(
                "dataplane.mbufs",
                format!("mbufs = {} is too small: at least {needed} are needed ({rings} for RX/TX descriptor rings of {} port(s) + {bursts} for worker bursts + {MBUF_HEADROOM} headroom); set mbufs = {needed} or more (2^n - 1 sizes such as {} use memory best), or lower the descriptor counts", dp.mbufs, ports.len(), (needed + 1).checked_next_power_of_two().map_or(needed, |p| p - 1)),
            );
        }
    }
}
