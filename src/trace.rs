//! `-v/--verbose`: what the program does, step by step, on stderr. Secret
//! values never reach a trace line: callers pass descriptions, never values,
//! and user entries are printed through the credentials module.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn enable(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Prints `line()` when verbose; the closure keeps formatting off the fast path.
pub fn line(line: impl FnOnce() -> String) {
    if enabled() {
        eprintln!("trace: {}", line());
    }
}
