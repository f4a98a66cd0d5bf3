//! Writing files safely: a temporary file in the same directory, renamed over
//! the target (readers see the old file or the new one, never half of one), and
//! kubectl's lock around a read-modify-write of a shared kubeconfig.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_yaml::Value;

use super::emit::Entries;
use super::merge::{Change, merge};
use super::yaml;

/// Mode of files this tool creates: they hold credentials.
pub const PRIVATE_MODE: u32 = 0o600;

/// Writes `text` to `path` atomically with mode 0600. Without `force` an
/// existing file is left alone and reported.
pub fn write_new(path: &Path, text: &str, force: bool) -> Result<()> {
    let shown = path.display();
    if !force && fs::symlink_metadata(path).is_ok() {
        bail!("--output-file {shown} already exists; pass --force to replace it");
    }
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        bail!("--output-file {shown} is a directory; give a file path");
    }
    let dir = parent_dir(path);
    check_dir(&dir, "--output-file")?;
    let temp = temp_file(&dir, text, PRIVATE_MODE).context("--output-file")?;
    let result = if force {
        temp.persist(path).map(|_| ()).map_err(|e| e.error)
    } else {
        // No-clobber rename: a file that appeared meanwhile is not replaced.
        temp.persist_noclobber(path).map(|_| ()).map_err(|e| e.error)
    };
    result.map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => {
            anyhow!("--output-file {shown} already exists; pass --force to replace it")
        }
        _ => anyhow!("--output-file {shown} cannot be written: {e}"),
    })
}

/// What a merge did, for the report on stderr.
#[derive(Debug)]
pub struct MergeReport {
    pub path: PathBuf,
    pub created: bool,
    pub changes: Vec<Change>,
    pub current_context_set: bool,
    /// The mode of an existing file that others can read.
    pub loose_mode: Option<u32>,
}

/// Merges `entries` into the kubeconfig at `path` under kubectl's lock.
pub fn merge_into(
    path: &Path,
    entries: &[Entries],
    current: Option<&str>,
    set_current: bool,
    lock_timeout: Duration,
) -> Result<MergeReport> {
    let shown = path.display();
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        bail!("--merge-into {shown} is a directory; give a kubeconfig file path");
    }
    let dir = parent_dir(path);
    check_dir(&dir, "--merge-into")?;
    let _lock = Lock::acquire(path, lock_timeout)?;
    // Write through a symlink (~/.kube/config -> dotfiles/kube.yaml) to the real
    // file, as kubectl does, instead of replacing the link with a file.
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let (existing, mode) = match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => bail!("--merge-into {shown} is not a regular file"),
        Ok(meta) => {
            let bytes = fs::read(&target).map_err(|e| anyhow!("--merge-into {shown} cannot be read: {e}"))?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| anyhow!("--merge-into {shown} is not UTF-8 text; it was left unchanged"))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let doc: Option<Value> = if text.trim().is_empty() {
                None
            } else {
                // The same alias and nesting budget as for a parent: a hostile
                // target fails fast instead of expanding in memory.
                Some(
                    super::parse::value(text)
                        .map_err(|e| anyhow!("--merge-into {shown} {e:#}; it was left unchanged"))?,
                )
            };
            (Some(doc), meta.permissions().mode() & 0o7777)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => (None, PRIVATE_MODE),
        Err(e) => bail!("--merge-into {shown} cannot be read: {e}"),
    };
    let created = existing.is_none();
    let had_current = existing.as_ref().and_then(|d| d.as_ref()).and_then(|d| d.get("current-context")).cloned();
    let (doc, changes) = merge(existing.flatten(), entries, current, set_current)
        .map_err(|e| anyhow!("--merge-into {shown} {e:#}; it was left unchanged"))?;
    let current_context_set = doc.get("current-context") != had_current.as_ref();
    let temp_dir = parent_dir(&target);
    let temp = temp_file(&temp_dir, &yaml::to_yaml(&doc), mode).context("--merge-into")?;
    temp.persist(&target).map_err(|e| anyhow!("--merge-into {shown} cannot be written: {}", e.error))?;
    Ok(MergeReport {
        path: path.to_path_buf(),
        created,
        changes,
        current_context_set,
        loose_mode: (!created && mode & 0o077 != 0).then_some(mode),
    })
}

/// The directory a file goes in; `.` for a bare file name.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn check_dir(dir: &Path, flag: &str) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("{flag}: {} is not a directory", dir.display()),
        Err(_) => bail!("{flag}: directory {} does not exist; create it first", dir.display()),
    }
}

/// A fully written and synced temporary file beside the target.
fn temp_file(dir: &Path, text: &str, mode: u32) -> Result<tempfile::NamedTempFile> {
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
    fn write_new_is_private_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        write_new(&path, "a: 1\n", false).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = write_new(&path, "b: 2\n", false).unwrap_err();
        assert!(format!("{err:#}").contains("already exists; pass --force"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 1\n");
        write_new(&path, "b: 2\n", true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "b: 2\n");
        let missing = dir.path().join("nope/out");
        assert!(
            format!("{:#}", write_new(&missing, "", false).unwrap_err()).contains("does not exist; create it first")
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }

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
