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

/// The work was done, but something needs attention (an expired or
/// unreachable entry, an entry that could not be refreshed or checked): exit
/// code 3, so that a CI job can tell it from a failure to run at all (1).
#[derive(Debug)]
pub struct Attention(pub String);

impl fmt::Display for Attention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Attention {}

/// Builds an [`Attention`] as an [`anyhow::Error`].
pub fn attention(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Attention(message.into()))
}

/// True when `err` is an [`Attention`] (and not a usage error).
pub fn is_attention(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Attention>())
}

/// True when `err`, or any error it wraps, is a [`UsageError`].
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<UsageError>())
}

/// `-` means standard input for the token files and standard output for
/// `--output-file`; any other path flag refuses it instead of reading or
/// writing a file named `-`.
pub fn refuse_dash(flag: &str, path: Option<&std::path::Path>) -> anyhow::Result<()> {
    if path.is_some_and(|p| p.as_os_str() == "-") {
        return Err(usage(format!(
            "{flag} - is not supported: only --token-file and --parent-token-file read stdin, and --output-file - writes stdout; give a file (./- for a file named -)"
        )));
    }
    Ok(())
}

/// Adds the working directory to an error about a relative path that does not
/// exist: a CI step or a script often runs somewhere else than its author
/// thinks, and `file child.token does not exist` alone does not say where it
/// was looked for. For a file to be written, its directory is what must exist.
pub fn note_cwd(err: anyhow::Error, path: &std::path::Path) -> anyhow::Error {
    let missing = |p: &std::path::Path| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if path.is_absolute() || path.as_os_str() == "-" || !(missing(path) || dir.is_some_and(missing)) {
        return err;
    }
    let Ok(cwd) = std::env::current_dir() else {
        return err;
    };
    let message = format!("{err:#} (relative to the working directory {})", cwd.display());
    if is_usage(&err) { usage(message) } else { anyhow::Error::msg(message) }
}

/// [`note_cwd`] for a result.
pub fn in_cwd<T>(result: anyhow::Result<T>, path: &std::path::Path) -> anyhow::Result<T> {
    result.map_err(|e| note_cwd(e, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_relative_paths_name_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let e = |p: &str| format!("{:#}", note_cwd(anyhow::anyhow!("gone"), std::path::Path::new(p)));
        assert_eq!(e("no-such-file-here"), format!("gone (relative to the working directory {})", cwd.display()));
        assert_eq!(e("no-such-dir/out.yaml"), format!("gone (relative to the working directory {})", cwd.display()));
        assert_eq!(e("/no-such-file"), "gone");
        assert_eq!(e("Cargo.toml"), "gone");
        assert!(is_usage(&note_cwd(usage("u"), std::path::Path::new("no-such-file-here"))));
    }
}
