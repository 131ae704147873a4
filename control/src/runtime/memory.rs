//! Step: the memory the plan asks EAL for (`dataplane.memory_mb`) must be memory this
//! machine can give now. EAL itself finds out late and badly: asked for more than there is,
//! it maps and faults for tens of seconds, then fails in an unrelated allocation ("error
//! allocating rte services array") naming no key. Checked at run, not by check-config: it
//! depends on the machine and the moment.

use super::RuntimeError;

/// Memory EAL may take from this machine, in MiB, and where that figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Available {
    pub mib: u64,
    pub source: String,
}

/// What `hugepages` decides: free hugepages (any size) or ordinary memory (MemAvailable,
/// capped by this process's cgroup limit).
pub(crate) fn available(hugepages: bool) -> Option<Available> {
    if hugepages {
        free_hugepages(std::path::Path::new("/sys/kernel/mm/hugepages"))
    } else {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let avail = meminfo_kib(&meminfo, "MemAvailable")? / 1024;
        let limit = cgroup_limit_mib();
        Some(match limit {
            Some((lim, path)) if lim < avail => Available {
                mib: lim,
                source: format!("this process's cgroup limit ({path})"),
            },
            _ => Available {
                mib: avail,
                source: "MemAvailable in /proc/meminfo".to_string(),
            },
        })
    }
}

/// Refuses a plan whose `memory_mb` exceeds what [`available`] reports. Unknown (no
/// /proc/meminfo, no hugepage sysfs): let EAL decide.
pub(crate) fn check(memory_mb: u32, hugepages: bool) -> Result<(), RuntimeError> {
    match available(hugepages) {
        Some(a) => compare(memory_mb, hugepages, &a),
        None => Ok(()),
    }
}

fn compare(memory_mb: u32, hugepages: bool, a: &Available) -> Result<(), RuntimeError> {
    if u64::from(memory_mb) <= a.mib {
        return Ok(());
    }
    let hint = if hugepages {
        "reserve more hugepages (e.g. echo N > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) or lower dataplane.memory_mb"
    } else {
        "lower dataplane.memory_mb (or free memory on this machine)"
    };
    Err(RuntimeError::Memory {
        requested: memory_mb,
        available: a.mib,
        from: a.source.clone(),
        hint,
    })
}

/// A `Key:   N kB` line of /proc/meminfo.
fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Free hugepages of every size under `dir` (hugepages-<size>kB/free_hugepages), in MiB.
fn free_hugepages(dir: &std::path::Path) -> Option<Available> {
    let mut total_kib = 0u64;
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let free: u64 = std::fs::read_to_string(entry.path().join("free_hugepages"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        total_kib += free * size;
        parts.push(format!("{free} x {size} kB"));
    }
    parts.sort();
    Some(Available {
        mib: total_kib / 1024,
        source: format!(
            "free hugepages ({})",
            if parts.is_empty() {
                "none configured".to_string()
            } else {
                parts.join(", ")
            }
        ),
    })
}

/// cgroup v2 memory.max of this process's cgroup, when set.
fn cgroup_limit_mib() -> Option<(u64, String)> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let path = format!("/sys/fs/cgroup{}/memory.max", rel.trim_end_matches('/'));
    let max = std::fs::read_to_string(&path).ok()?;
    let bytes: u64 = max.trim().parse().ok()?; // "max": no limit
    Some((bytes / (1024 * 1024), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines_are_read_by_key() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20480000 kB\n";
        assert_eq!(meminfo_kib(text, "MemAvailable"), Some(20_480_000));
        assert_eq!(meminfo_kib(text, "MemFree"), Some(100));
        assert_eq!(meminfo_kib(text, "Mem"), None);
    }

    #[test]
    fn more_than_available_is_refused_naming_the_key_and_the_source() {
        let a = Available {
            mib: 20_000,
            source: "MemAvailable in /proc/meminfo".into(),
        };
        assert!(compare(20_000, false, &a).is_ok());
        let e = compare(1_000_000, false, &a).unwrap_err().to_string();
        assert!(e.contains("dataplane.memory_mb = 1000000"), "{e}");
        assert!(e.contains("20000 MiB"), "{e}");
        assert!(e.contains("MemAvailable"), "{e}");
        let e = compare(
            4096,
            true,
            &Available {
                mib: 0,
                source: "free hugepages (none configured)".into(),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hugepages"), "{e}");
    }

    #[test]
    fn free_hugepages_sum_every_size() {
        let dir = std::env::temp_dir().join(format!("fl-hp-{}", std::process::id()));
        for (size, free) in [("2048", "512"), ("1048576", "1")] {
            let d = dir.join(format!("hugepages-{size}kB"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("free_hugepages"), free).unwrap();
        }
        let a = free_hugepages(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(a.mib, 1024 + 1024);
        assert!(a.source.contains("512 x 2048 kB"), "{}", a.source);
    }
}
