//! The one error kind the program branches on: a usage error (exit code 2).
//!
//! Everything else is an [`anyhow::Error`] with context naming the file or flag.

use std::fmt;

/// A flag, or a combination of flags, that cannot work: exit code 2, as clap uses
/// for the usage errors it finds itself.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a usage error as an [`anyhow::Error`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// True when `err`, or any error it wraps, is a [`UsageError`].
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<UsageError>())
}
