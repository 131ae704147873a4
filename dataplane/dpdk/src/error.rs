//! Errors from DPDK calls, carrying DPDK's own explanation (rte_strerror).

use std::ffi::CStr;

/// A failed DPDK operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK call returned an error; `text` is `rte_strerror(errno)`.
    #[error("{op} failed: {text} (errno {errno})")]
    Call {
        /// The DPDK function or the operation that failed.
        op: String,
        /// The (positive) error number.
        errno: i32,
        /// DPDK's description of the error.
        text: String,
    },
    /// The Environment Abstraction Layer initialises once per process.
    #[error("DPDK EAL is already initialised in this process (it can only be initialised once)")]
    AlreadyInitialised,
    /// An argument was rejected before calling into DPDK.
    #[error("{0}")]
    Invalid(String),
}

impl DpdkError {
    /// Builds an error from a positive errno value.
    pub(crate) fn from_errno(op: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        DpdkError::Call {
            op: op.into(),
            errno,
            text: strerror(errno),
        }
    }

    /// Builds an error from the calling thread's `rte_errno`.
    pub(crate) fn last(op: impl Into<String>) -> Self {
        // SAFETY: fl_errno reads the calling thread's rte_errno; it has no preconditions.
        let errno = unsafe { dpdk_sys::fl_errno() };
        Self::from_errno(op, errno)
    }

    /// Maps a DPDK return code (0 or positive = success, negative errno = failure).
    pub(crate) fn check(op: &str, ret: i32) -> Result<i32, DpdkError> {
        if ret < 0 {
            Err(Self::from_errno(op, -ret))
        } else {
            Ok(ret)
        }
    }
}

/// DPDK's text for an error number (covers both libc and DPDK-specific codes).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string that stays valid until the next call on this thread; we copy it at once.
    let ptr = unsafe { dpdk_sys::rte_strerror(errno) };
    if ptr.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: non-null pointer to a NUL-terminated string, see above.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}
