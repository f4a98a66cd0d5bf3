//! Files as this tool reads and writes them: bounded reads that refuse what
//! is not a regular file, temporary files synced beside their target (for
//! atomic renames), symlinks followed as client-go follows them, and
//! kubectl's lock file. What to write, and when to refuse, is decided by the
//! callers (`kubeconfig::write`); this module only does it safely.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

/// Mode of files this tool creates: they hold credentials.
pub const PRIVATE_MODE: u32 = 0o600;

/// The largest file read (kubeconfigs, credentials files, certificates):
/// eight times the biggest real kubeconfigs seen (a few MB for hundreds of
/// clusters), and a bound on the memory used.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// What a file read holds, for the words of its errors: a kubeconfig, or any
/// other file (a token, a certificate, a credentials file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    File,
    Kubeconfig,
}

impl Holds {
    fn noun(self) -> &'static str {
        match self {
            Holds::File => "file",
            Holds::Kubeconfig => "kubeconfig",
        }
    }
}

/// Reads a file; refuses what is not a regular file, and what is larger than
/// a kubeconfig may be. The caller says where the path came from (a flag, a
/// reference) as the error's context.
pub fn read_path(path: &Path) -> Result<Vec<u8>> {
    read_path_at_most(path, MAX_FILE_BYTES)
}

/// [`read_path`] with its own size limit.
pub fn read_path_at_most(path: &Path, limit: u64) -> Result<Vec<u8>> {
    read_bounded(path, limit, Holds::File)
}

/// The one reader of every file this tool reads: a larger file than `limit`
/// is refused before it is read, and never read past `limit` (it may grow
/// meanwhile); a directory, a FIFO or a device (which would block or never
/// end) is refused. Every error names the file and says what to do.
pub fn read_bounded(path: &Path, limit: u64, holds: Holds) -> Result<Vec<u8>> {
    let shown = path.display();
    let noun = holds.noun();
    let read_error = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => anyhow!("{noun} {shown} does not exist"),
        ErrorKind::PermissionDenied => {
            anyhow!("{noun} {shown} cannot be read (permission denied)")
        }
        _ => anyhow!("{noun} {shown} cannot be read: {e}"),
    };
    let meta = fs::metadata(path).map_err(read_error)?;
    if meta.is_dir() {
        match holds {
            Holds::File => bail!("{shown} is a directory, not a file"),
            Holds::Kubeconfig => bail!("kubeconfig {shown} is a directory; give the path of a kubeconfig file"),
        }
    }
    if !meta.is_file() {
        match holds {
            Holds::File => bail!("{shown} is not a regular file"),
            Holds::Kubeconfig => bail!("kubeconfig {shown} is not a regular file"),
        }
    }
    let advice = match holds {
        Holds::File => "is it the right file?",
        Holds::Kubeconfig => {
            "is it the right file? `kubectl config view --minify --raw` writes one with the current context only"
        }
    };
    let too_big = |len: u64| anyhow!("{noun} {shown} is larger than {} ({len} bytes); {advice}", size(limit));
    if meta.len() > limit {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut bytes)).map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// `64 MiB`, `1 MiB` (whole MiB, rounded down), `4096 bytes`.
pub fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{bytes} bytes") }
}

/// The owner and group of an open file.
pub fn owner_of(file: &fs::File) -> Result<(u32, u32)> {
    let meta = file.metadata().context("reading the temporary file's owner")?;
    Ok((meta.uid(), meta.gid()))
}

/// The file a path names once symlinks are followed, whether or not it
/// exists (client-go writes through a link to a missing file, creating it).
/// A loop or a chain of more than 40 links stops where it is.
pub fn follow_links(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&current) {
            Ok(next) => {
                current = if next.is_absolute() { next } else { parent_dir(&current).join(next) };
            }
            Err(_) => return current,
        }
    }
    current
}

/// The input `meta` is (same device and inode), if any.
pub fn same_file_as<'a>(meta: &fs::Metadata, inputs: &'a [PathBuf]) -> Option<&'a PathBuf> {
    inputs.iter().find(|input| fs::metadata(input).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino()))
}

/// A non-regular file's kind, for messages.
pub fn file_kind(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// The directory a file goes in; `.` for a bare file name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn check_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("{} is not a directory", dir.display()),
        Err(_) => bail!("directory {} does not exist; create it first", dir.display()),
    }
}

/// A fully written and synced temporary file beside the target.
pub fn temp_file(dir: &Path, text: &str, mode: u32) -> Result<tempfile::NamedTempFile> {
    let mut temp = tempfile::Builder::new()
        .prefix(".clusternet-kubeconfig-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    // The umask may have narrowed the mode given at creation; set it exactly.
    fs::set_permissions(temp.path(), Permissions::from_mode(mode)).context("setting the file mode")?;
    temp.write_all(text.as_bytes()).context("writing the temporary file")?;
    temp.as_file().sync_all().context("syncing the temporary file")?;
    Ok(temp)
}

/// kubectl's lock: `<file>.lock`, created exclusively, removed when done
/// (client-go `clientcmd.lockFile`). kubectl gives up at once when the lock is
/// held; this waits up to a timeout, since kubectl holds it only briefly.
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(target: &Path, timeout: Duration) -> Result<Lock> {
        let mut name = target.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let start = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(Lock { path }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if start.elapsed() >= timeout {
                        bail!(
                            "lock file {} is held (waited {}s); if no kubectl or clusternet-kubeconfig is writing {}, it was left by a killed process: remove it with `rm {}`",
                            path.display(),
                            timeout.as_secs(),
                            target.display(),
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => bail!("cannot create lock file {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_lock_times_out_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("config");
        let held = Lock::acquire(&target, Duration::ZERO).unwrap();
        let err = Lock::acquire(&target, Duration::from_millis(50)).err().unwrap();
        assert!(format!("{err:#}").contains("config.lock is held"));
        drop(held);
        assert!(Lock::acquire(&target, Duration::ZERO).is_ok());
    }
}
