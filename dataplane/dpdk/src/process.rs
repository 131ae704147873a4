//! What a process that replaces itself (`exec`) must undo of what EAL did to it: the main
//! thread's CPU pinning (the new EAL would find its worker cores "not available") and the
//! file descriptors EAL and the PMDs open without close-on-exec (hugepage files, sockets,
//! TAPs), which the new process must be able to take.

use std::io;

/// CPUs a mask covers (1024, glibc's `CPU_SETSIZE`).
const MAX_CPUS: usize = 1024;

/// Sets the calling thread's CPU affinity to `cpus` (what `exec` hands on to the new
/// program). CPUs at or above 1024 are ignored.
pub fn set_thread_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut mask = [0u64; MAX_CPUS / 64];
    for &c in cpus.iter().filter(|&&c| c < MAX_CPUS) {
        mask[c / 64] |= 1 << (c % 64);
    }
    if mask.iter().all(|&w| w == 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no CPU to run on",
        ));
    }
    // SAFETY: `mask` is a live, initialised buffer of `size_of_val(&mask)` bytes laid out as
    // the kernel's CPU bitmap (cpu_set_t is exactly such an array of unsigned longs); the
    // kernel only reads it. pid 0 is the calling thread.
    let rc = unsafe {
        libc::sched_setaffinity(
            0,
            std::mem::size_of_val(&mask),
            mask.as_ptr().cast::<libc::cpu_set_t>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Marks every file descriptor from 3 up close-on-exec, so that `exec` closes them all
/// (stdin, stdout and stderr stay).
pub fn close_on_exec_from_3() -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors of this
    // process; it touches no memory.
    let rc = unsafe {
        libc::close_range(
            3,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11: one descriptor at a time.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= 3)
        .collect();
    for fd in fds {
        // SAFETY: fcntl(F_SETFD) sets a descriptor flag; a descriptor closed meanwhile (the
        // one read_dir used) fails with EBADF, which is harmless here.
        let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}
