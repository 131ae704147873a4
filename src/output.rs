//! What the CLI prints, in one place: `out!`/`outln!` (stdout) and `errln!` (stderr)
//! instead of `print!` and friends, which panic when the reader has gone (`fastlag
//! check-config x.toml | head -1`: "failed printing to stdout: Broken pipe", exit 101).
//!
//! A closed pipe (EPIPE) ends that stream quietly: later writes to it are dropped and the
//! command finishes with the exit status it would have had, so `check-config ok.toml |
//! grep -q OK` sees 0. Loops that print until stopped (`ctl show events --follow`) end
//! when [`stdout_closed`] says so. Any other write error (a full disk behind a redirect)
//! is reported once on stderr and makes the command fail ([`stdout_failed`]).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Nothing more goes to stdout (its reader has gone, or a write failed).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// A write to stdout failed for another reason than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// Nothing more goes to stderr.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; see the module documentation for what happens when it cannot.
pub(crate) fn write_out(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            write_err(format_args!("fastlag: error: writing to stdout: {e}\n"));
        }
    }
}

/// Writes to stderr; a stderr that cannot be written is given up on silently (there is
/// nowhere left to say so).
pub(crate) fn write_err(args: fmt::Arguments<'_>) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut err = io::stderr().lock();
    if err.write_fmt(args).and_then(|()| err.flush()).is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether stdout takes no more output (a loop printing until stopped should end).
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Whether output was lost to a write error other than a closed pipe.
pub(crate) fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// `print!` that ends quietly on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `println!` that ends quietly on a closed pipe.
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that ends quietly on a closed pipe.
macro_rules! errln {
    () => {
        $crate::output::write_err(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
