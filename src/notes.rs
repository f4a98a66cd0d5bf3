//! The one reporter of notes and warnings for stderr (`note: ...`,
//! `warning: ...`).
//!
//! Any stage may report; the lines wait until the command prints them with
//! [`flush`]: `gen` prints them before it writes (so that they come before
//! what it says about the write) or, on a failure, before the error line.
//! They quote names and fields from the cluster: [`flush`] escapes them for
//! the terminal.

use std::cell::RefCell;

thread_local! {
    // One command runs on one thread (the runtime of a connected `gen` is
    // single-threaded), so its notes are its thread's.
    static PENDING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Reports a line, printed at the next [`flush`].
pub fn push(line: String) {
    PENDING.with_borrow_mut(|pending| pending.push(line));
}

/// Prints the reported lines on stderr, in order, and forgets them.
pub fn flush() {
    for line in take() {
        eprintln!("{}", crate::terminal::escape(&line));
    }
}

/// Takes the reported lines without printing them (tests read them).
pub fn take() -> Vec<String> {
    PENDING.with_borrow_mut(std::mem::take)
}
