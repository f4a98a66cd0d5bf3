//! Writing files safely: a temporary file in the same directory, renamed over
//! the target (readers see the old file or the new one, never half of one), and
//! kubectl's lock around a read-modify-write of a shared kubeconfig.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::emit::Entries;
use super::merge::{Change, merge};
use super::model::Kubeconfig;
use super::yaml;
use anyhow::{Context as _, Result, bail};

/// Mode of files this tool creates: they hold credentials.
pub const PRIVATE_MODE: u32 = 0o600;

/// Why a write was refused or failed. The path came from the command line,
/// and only the caller knows which flag gave it, so it names the flag.
#[derive(Debug)]
pub enum WriteError {
    /// About the file itself; the message starts with its path.
    File(String),
    /// About where the file goes: its directory, the temporary file beside it.
    Place(anyhow::Error),
    /// Anything else (the lock), already complete.
    Other(anyhow::Error),
}

/// The message without a flag, as a caller that has none shows it.
impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::File(message) => f.write_str(message),
            WriteError::Place(e) | WriteError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for WriteError {
    fn from(e: anyhow::Error) -> Self {
        WriteError::Other(e)
    }
}

/// Shorthand for a refusal about the file itself.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(WriteError::File(format!($($arg)*)))
    };
}

/// Writes `text` to `path` atomically with mode 0600. Without `force` an
/// existing file is left alone and reported. `inputs` are the files this run
/// reads (parent kubeconfigs, child kubeconfigs, credentials and token files):
/// none of them is ever written over, even with `force`.
pub fn write_new(path: &Path, text: &str, force: bool, inputs: &[PathBuf]) -> Result<(), WriteError> {
    let shown = path.display();
    // A symlink is written through, to its target, as kubectl does.
    let target = follow_links(path);
    match fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => refuse!("{shown} is a directory; give a file path"),
        Ok(meta) if !meta.is_file() => refuse!(
            "{shown} is not a regular file ({}); it is left alone: give a file path, or leave out --output-file to write to stdout",
            file_kind(&meta)
        ),
        Ok(meta) => {
            if let Some(input) = same_file_as(&meta, inputs) {
                refuse!(
                    "{shown} is {}, an input of this run; it is never written over (not even with --force): give another path",
                    input.display()
                );
            }
            if !force {
                refuse!("{shown} already exists; pass --force to replace it");
            }
        }
        Err(_) if !force && fs::symlink_metadata(path).is_ok() && target == path => {
            refuse!("{shown} already exists; pass --force to replace it")
        }
        Err(_) => {}
    }
    let dir = parent_dir(&target);
    check_dir(&dir).map_err(WriteError::Place)?;
    let temp = temp_file(&dir, text, PRIVATE_MODE).map_err(WriteError::Place)?;
    let result = if force {
        temp.persist(&target).map(|_| ()).map_err(|e| e.error)
    } else {
        // No-clobber rename: a file that appeared meanwhile is not replaced.
        temp.persist_noclobber(&target).map(|_| ()).map_err(|e| e.error)
    };
    result.map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => WriteError::File(format!("{shown} already exists; pass --force to replace it")),
        _ => WriteError::File(format!("{shown} cannot be written: {e}")),
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
    /// Written in place rather than replaced (see [`merge_into`]), and why.
    pub in_place: Option<&'static str>,
}

/// Merges `entries` into the kubeconfig at `path` under kubectl's lock (see
/// [`rewrite`]).
pub fn merge_into(
    path: &Path,
    entries: &[Entries],
    current: Option<&str>,
    set_current: bool,
    lock_timeout: Duration,
) -> Result<MergeReport, WriteError> {
    let shown = path.display();
    let rewritten = rewrite(path, lock_timeout, |existing| {
        let had_current = existing.as_ref().and_then(|d| d.get("current-context")).cloned();
        let (doc, changes) = merge(existing, entries, current, set_current)
            .map_err(|e| WriteError::File(format!("{shown} {e:#}; it was left unchanged")))?;
        let current_context_set = doc.get("current-context") != had_current.as_ref();
        Ok((Some(doc), (changes, current_context_set)))
    })?;
    let (changes, current_context_set) = rewritten.outcome;
    Ok(MergeReport {
        path: path.to_path_buf(),
        created: rewritten.created,
        changes,
        current_context_set,
        loose_mode: rewritten.loose_mode,
        in_place: rewritten.in_place,
    })
}

/// What [`rewrite`] did besides what the edit says.
#[derive(Debug)]
pub struct Rewritten<T> {
    /// The file did not exist before.
    pub created: bool,
    /// Whatever the edit returned besides the document.
    pub outcome: T,
    /// True when the file was written (the edit returned a document).
    pub written: bool,
    /// The mode of an existing file that others can read.
    pub loose_mode: Option<u32>,
    /// Written in place rather than replaced, and why.
    pub in_place: Option<&'static str>,
}

/// A read-modify-write of the kubeconfig at `path` under kubectl's lock:
/// `edit` gets the parsed document (`None` for a missing or empty file) and
/// returns the new one, or `None` to write nothing.
///
/// The file keeps its owner, group and mode. It is replaced atomically (a
/// temporary file renamed over it) unless that would break something kubectl
/// keeps, since kubectl writes in place: a file with several hard links, or
/// an owner this process cannot give the new file. Then the new content,
/// fully written to a temporary file first, is copied into the file itself.
pub fn rewrite<T>(
    path: &Path,
    lock_timeout: Duration,
    edit: impl FnOnce(Option<serde_yaml::Value>) -> Result<(Option<serde_yaml::Value>, T), WriteError>,
) -> Result<Rewritten<T>, WriteError> {
    let shown = path.display();
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        refuse!("{shown} is a directory; give a kubeconfig file path");
    }
    // Write through a symlink (~/.kube/config -> dotfiles/kube.yaml) to the real
    // file, as kubectl does, also when that file does not exist yet.
    let target = follow_links(path);
    let dir = parent_dir(&target);
    check_dir(&dir).map_err(WriteError::Place)?;
    let _lock = Lock::acquire(path, lock_timeout)?;
    let (existing, meta) = match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => refuse!(
            "{shown} is not a regular file ({}); it is left alone: give a kubeconfig file path",
            file_kind(&meta)
        ),
        Ok(meta) => {
            let bytes = fs::read(&target).map_err(|e| WriteError::File(format!("{shown} cannot be read: {e}")))?;
            let unchanged = |e: anyhow::Error| WriteError::File(format!("{shown} {e:#}; it was left unchanged"));
            let text = super::decode::text(&bytes).map_err(unchanged)?;
            // The same budget as for a parent: a hostile target fails fast
            // instead of expanding in memory. And what kubectl refuses to
            // read is not written to.
            let doc = super::parse::value(&text).map_err(unchanged)?;
            if doc.is_mapping() {
                let config = super::parse::from_value::<Kubeconfig>(&doc, "kubeconfig").map_err(unchanged)?;
                // (Borrowed: the document itself is edited and written below.)
                super::load::check(&config).map_err(unchanged)?;
            }
            (Some(Some(doc).filter(|d| !d.is_null())), Some(meta))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => (None, None),
        Err(e) => refuse!("{shown} cannot be read: {e}"),
    };
    let created = existing.is_none();
    let mode = meta.as_ref().map_or(PRIVATE_MODE, |m| m.permissions().mode() & 0o7777);
    let loose_mode = (!created && mode & 0o077 != 0).then_some(mode);
    let (doc, outcome) = edit(existing.flatten())?;
    let Some(doc) = doc else {
        return Ok(Rewritten { created, outcome, written: false, loose_mode, in_place: None });
    };
    let temp = temp_file(&dir, &yaml::to_yaml(&doc), mode).map_err(WriteError::Place)?;
    let in_place = match &meta {
        Some(meta) if meta.nlink() > 1 => Some("it has several hard links"),
        Some(meta) if (meta.uid(), meta.gid()) != owner_of(temp.as_file())? => {
            match std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid())) {
                Ok(()) => None,
                Err(_) => Some("its owner or group differs from this user's"),
            }
        }
        _ => None,
    };
    match in_place {
        None => {
            temp.persist(&target).map_err(|e| WriteError::File(format!("{shown} cannot be written: {}", e.error)))?;
        }
        Some(_) => {
            let text = fs::read(temp.path()).context("reading the temporary file").map_err(WriteError::Place)?;
            let mut file = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| WriteError::File(format!("{shown} cannot be written: {e}")))?;
            file.set_len(0)
                .and_then(|()| file.write_all(&text))
                .and_then(|()| file.sync_all())
                .map_err(|e| WriteError::File(format!("{shown} cannot be written: {e}")))?;
        }
    }
    Ok(Rewritten { created, outcome, written: true, loose_mode, in_place })
}

/// The owner and group of an open file.
fn owner_of(file: &fs::File) -> Result<(u32, u32)> {
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
fn same_file_as<'a>(meta: &fs::Metadata, inputs: &'a [PathBuf]) -> Option<&'a PathBuf> {
    inputs.iter().find(|input| fs::metadata(input).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino()))
}

/// A non-regular file's kind, for messages.
fn file_kind(meta: &fs::Metadata) -> &'static str {
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
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn check_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("{} is not a directory", dir.display()),
        Err(_) => bail!("directory {} does not exist; create it first", dir.display()),
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
        write_new(&path, "a: 1\n", false, &[]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = write_new(&path, "b: 2\n", false, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("already exists; pass --force"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 1\n");
        write_new(&path, "b: 2\n", true, &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "b: 2\n");
        let missing = dir.path().join("nope/out");
        assert!(
            format!("{:#}", write_new(&missing, "", false, &[]).unwrap_err())
                .contains("does not exist; create it first")
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
