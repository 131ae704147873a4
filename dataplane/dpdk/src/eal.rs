//! The Environment Abstraction Layer: initialised once per process, alive until it exits.
//!
//! Every DPDK object (pools, the mbufs in them, ports, queues, rings, LPM tables) lives in
//! memory EAL manages, so nothing may outlive EAL. Rather than make every handle (down to
//! each mbuf) keep EAL alive, EAL is process-static: [`Eal::init`] hands out a
//! `&'static Eal`, and `rte_eal_cleanup` never runs while the process does. DPDK cannot
//! initialise twice in one process anyway; the kernel releases EAL's memory at exit, and
//! what must be undone earlier (ports closed, TAPs and memif sockets removed, every mbuf
//! back in its pool) is undone by the owners of those objects.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicU8, Ordering};

use super::error::DpdkError;

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
/// A failed init: DPDK does not allow another try.
const DONE: u8 = 2;

/// DPDK refuses a second `rte_eal_init` in one process, even after cleanup.
static STATE: AtomicU8 = AtomicU8::new(NOT_STARTED);

/// Proof that DPDK's EAL is initialised: creating pools, ports and rings, reading a port by
/// id and registering a thread all take a `&Eal`. It exists once per process, for the
/// rest of the process ([`Eal::init`]).
#[derive(Debug)]
pub struct Eal {
    tsc_hz: u64,
}

impl Eal {
    /// Initialises EAL with `args` (without the program name, which is added). Succeeds
    /// once per process; the `Eal` then lives as long as the process.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<&'static Eal, DpdkError> {
        if STATE
            .compare_exchange(NOT_STARTED, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialised);
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("fastlag").expect("static name has no NUL"));
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| {
                STATE.store(DONE, Ordering::SeqCst);
                DpdkError::Invalid(format!("EAL argument {a:?} contains a NUL byte"))
            })?);
        }
        // EAL may keep pointers into argv (it permutes it and some drivers keep option
        // strings), so the strings live for the rest of the process.
        let owned: &'static mut [CString] = Vec::leak(owned);
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .iter()
                .map(|s| s.as_ptr() as *mut c_char)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        let argc = (argv.len() - 1) as i32;
        // SAFETY: argc/argv describe NUL-terminated strings that live for the rest of the
        // process; rte_eal_init runs at most once per process (guarded by STATE).
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            STATE.store(DONE, Ordering::SeqCst);
            return Err(DpdkError::last("rte_eal_init"));
        }
        // SAFETY: EAL is initialised; rte_get_tsc_hz only reads a global.
        let tsc_hz = unsafe { dpdk_sys::rte_get_tsc_hz() };
        Ok(Box::leak(Box::new(Eal { tsc_hz })))
    }

    /// Time-stamp counter frequency measured by EAL (cycles per second).
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz
    }
}

/// Registers the calling (non-EAL) thread with DPDK: it gets an lcore id and with it a
/// per-lcore mempool cache. Call after pinning the thread. Returns the lcore id.
pub fn register_thread(_eal: &Eal) -> Result<u32, DpdkError> {
    // SAFETY: rte_thread_register has no preconditions beyond an initialised EAL, which
    // the caller proves with `&Eal`.
    let ret = unsafe { dpdk_sys::rte_thread_register() };
    if ret < 0 {
        return Err(DpdkError::last("rte_thread_register"));
    }
    Ok(lcore_id())
}

/// Releases the calling thread's lcore id (its mempool cache stays counted in the pool).
pub fn unregister_thread() {
    // SAFETY: no preconditions; a no-op for unregistered threads.
    unsafe { dpdk_sys::rte_thread_unregister() }
}

/// The calling thread's lcore id (`u32::MAX`, LCORE_ID_ANY, when not registered).
pub fn lcore_id() -> u32 {
    // SAFETY: reads the calling thread's per-lcore variable.
    unsafe { dpdk_sys::fl_lcore_id() }
}

/// Reads the CPU time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the architecture's cycle counter; no preconditions.
        unsafe { dpdk_sys::fl_rdtsc() }
    }
}

/// CLOCK_MONOTONIC now, in microseconds: the clock systemd reads `MONOTONIC_USEC=` on
/// (std's `Instant` uses it too on Linux but does not show its value). Needs no EAL.
pub fn monotonic_usec() -> u64 {
    // SAFETY: clock_gettime with a stack timespec; no preconditions, no shared state.
    let ns = unsafe { dpdk_sys::fl_clock_monotonic_ns() };
    ns / 1000
}

/// The DPDK release this binary was built against, as pkg-config named it ("24.11.3").
pub fn build_version() -> &'static str {
    dpdk_sys::BUILD_VERSION
}

/// The DPDK release loaded at run time, from `rte_version()` ("24.11.3"; DPDK prefixes
/// "DPDK ", which is dropped). Needs no EAL.
pub fn runtime_version() -> String {
    // SAFETY: rte_version needs no initialisation and only formats compile-time
    // constants of the loaded library.
    let p = unsafe { dpdk_sys::rte_version() };
    // SAFETY: it returns a pointer to a static NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    let s = s.to_string_lossy();
    s.strip_prefix("DPDK ").unwrap_or(&s).trim().to_string()
}

/// `Some((built, running))` when the DPDK loaded now is another release than the one the
/// binary was built against (the shared libraries' ABI version keeps releases of another
/// LTS from loading at all; this catches a different patch release or a local build).
pub fn version_mismatch() -> Option<(&'static str, String)> {
    let run = runtime_version();
    (run != build_version()).then(|| (build_version(), run))
}

impl Eal {
    /// EAL's runtime directory for this process (`/var/run/dpdk/<file-prefix>` as root).
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        // SAFETY: EAL is initialised (we hold &Eal); it returns a pointer to its own
        // static, NUL-terminated path buffer.
        let p = unsafe { dpdk_sys::rte_eal_get_runtime_dir() };
        // SAFETY: as above: a NUL-terminated string that lives as long as EAL.
        let s = unsafe { std::ffi::CStr::from_ptr(p) };
        std::path::PathBuf::from(s.to_string_lossy().into_owned())
    }

    /// Removes this process's runtime directory at exit when EAL left it empty (it does
    /// with `--no-shconf` and `--in-memory`, as fastlag runs); a directory with files in
    /// it is left alone. Returns whether it was removed.
    pub fn remove_runtime_dir(&self) -> bool {
        std::fs::remove_dir(self.runtime_dir()).is_ok()
    }
}

/// Removes the empty runtime directories that earlier processes with file prefix
/// `<prefix_stem>-<pid>` left in `base` (e.g. `/var/run/dpdk`) when that pid no longer
/// runs; before EAL starts. Directories with files in them, and those of live
/// processes, are left alone. Returns how many were removed.
pub fn remove_stale_runtime_dirs(base: &std::path::Path, prefix_stem: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix_stem))
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if std::fs::remove_dir(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Where EAL puts runtime directories for this user: `/var/run/dpdk` for root, else
/// `$XDG_RUNTIME_DIR/dpdk` (or `/tmp/dpdk`), as EAL chooses.
pub fn runtime_base() -> std::path::PathBuf {
    // Our effective uid is the owner of /proc/self.
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if root.unwrap_or(false) {
        return "/var/run/dpdk".into();
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/tmp".into())
        .join("dpdk")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_runtime_dirs_of_dead_processes_go_live_and_full_ones_stay() {
        let base = std::env::temp_dir().join(format!("fl-rtdirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        // A pid that cannot run: above pid_max's ceiling (4194304).
        let dead = base.join("fastlag-4194305");
        let full = base.join("fastlag-4194306");
        let live = base.join(format!("fastlag-{}", std::process::id()));
        let other = base.join("fl-peer-4194307");
        for d in [&dead, &full, &live, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(full.join("config"), b"x").unwrap();
        assert_eq!(remove_stale_runtime_dirs(&base, "fastlag"), 1);
        assert!(!dead.exists());
        assert!(full.exists() && live.exists() && other.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
