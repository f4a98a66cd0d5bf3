//! Writing files safely: a temporary file in the same directory, renamed over
//! the target (readers see the old file or the new one, never half of one), and
//! kubectl's lock around a read-modify-write of a shared kubeconfig.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::emit::Entries;
use super::model::Kubeconfig;
use super::plan::{self, Change, Plan};
use super::yaml;
use crate::fs::{
    Holds, Lock, MAX_FILE_BYTES, PRIVATE_MODE, check_dir, file_kind, follow_links, owner_of, parent_dir, same_file_as,
    temp_file,
};
use anyhow::{Context as _, Result};

/// Why a write was refused or failed. The path came from the command line,
/// and only the caller knows which flag gave it, so it names the flag and
/// what the command offers ([`WriteError::flagged`]).
#[derive(Debug)]
pub enum WriteError {
    /// About the file itself; the message starts with its path.
    File(String),
    /// A refusal that the user fixes by choosing differently on the command
    /// line; the message starts with the file's path.
    Refused(String, Fix),
    /// About where the file goes: its directory, the temporary file beside it.
    Place(anyhow::Error),
    /// Anything else (the lock), already complete.
    Other(anyhow::Error),
}

/// The message without a flag, as a caller that has none shows it.
impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::File(message) | WriteError::Refused(message, _) => f.write_str(message),
            WriteError::Place(e) | WriteError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for WriteError {
    fn from(e: anyhow::Error) -> Self {
        WriteError::Other(e)
    }
}

/// How the user gets past a refusal; [`WriteError::flagged`] says it in the
/// terms of the command's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// The file exists: ask for it to be replaced.
    Replace,
    /// Not a regular file: give a file path, or write to stdout instead.
    FilePathOrStdout,
    /// An input of this run: never written over, even when asked to replace.
    OtherPath,
    /// An entry of that name belongs to another cluster: choose another name.
    OtherName,
}

/// What the command that writes offers its user besides another path: the
/// advice of a refusal names only what the command has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offers {
    /// `--force`, to replace a file.
    pub force: bool,
    /// Leaving the flag out, to write to stdout.
    pub stdout: bool,
    /// `--name`, to name the entries otherwise.
    pub name: bool,
}

impl WriteError {
    /// The error as the user sees it, led by `flag` (which gave the path),
    /// a refusal with its [`Fix`] as advice in the terms of `offers`.
    pub fn flagged(self, flag: &str, offers: Offers) -> anyhow::Error {
        let other_path = if offers.force {
            "it is never written over (not even with --force): give another path"
        } else {
            "it is never written over: give another path"
        };
        match self {
            WriteError::File(message) => anyhow::anyhow!("{flag} {message}"),
            WriteError::Refused(message, fix) => {
                let advice = match fix {
                    Fix::Replace if offers.force => "pass --force to replace it".to_string(),
                    Fix::Replace => "remove it, or give another path".to_string(),
                    Fix::FilePathOrStdout if offers.stdout => {
                        format!("give a file path, or leave out {flag} to write to stdout")
                    }
                    Fix::FilePathOrStdout => "give a file path".to_string(),
                    Fix::OtherPath => other_path.to_string(),
                    Fix::OtherName if offers.name => {
                        "pass --name NAME to give this cluster's entries another name".to_string()
                    }
                    Fix::OtherName => "give another path".to_string(),
                };
                anyhow::anyhow!("{flag} {message}; {advice}")
            }
            WriteError::Place(e) => e.context(flag.to_owned()),
            WriteError::Other(e) => e,
        }
    }
}

/// A failed merge plan as a write error: an entry of another cluster is a
/// refusal the user gets past by naming the entries otherwise.
fn unmerged(path: &Path, e: anyhow::Error) -> WriteError {
    match e.downcast_ref::<plan::OtherCluster>() {
        Some(other) => WriteError::Refused(format!("{} {other}", path.display()), Fix::OtherName),
        None => WriteError::File(format!("{} {e:#}; it was left unchanged", path.display())),
    }
}

/// Shorthand for a refusal about the file itself.
macro_rules! refuse {
    ($fix:expr; $($arg:tt)*) => {
        return Err(WriteError::Refused(format!($($arg)*), $fix))
    };
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
    let target = check_new(path, force, inputs)?;
    let temp = temp_file(&parent_dir(&target), text, PRIVATE_MODE).map_err(WriteError::Place)?;
    let result = if force {
        temp.persist(&target).map(|_| ()).map_err(|e| e.error)
    } else {
        // No-clobber rename: a file that appeared meanwhile is not replaced.
        temp.persist_noclobber(&target).map(|_| ()).map_err(|e| e.error)
    };
    result.map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => WriteError::Refused(format!("{shown} already exists"), Fix::Replace),
        _ => WriteError::File(format!("{shown} cannot be written: {e}")),
    })
}

/// The checks of [`write_new`] before it writes: the file it would write
/// (a symlink is written through, to its target, as kubectl does).
fn check_new(path: &Path, force: bool, inputs: &[PathBuf]) -> Result<PathBuf, WriteError> {
    let shown = path.display();
    let target = follow_links(path);
    match fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => refuse!("{shown} is a directory; give a file path"),
        Ok(meta) if !meta.is_file() => {
            refuse!(Fix::FilePathOrStdout; "{shown} is not a regular file ({}); it is left alone", file_kind(&meta))
        }
        Ok(meta) => {
            if let Some(input) = same_file_as(&meta, inputs) {
                refuse!(Fix::OtherPath; "{shown} is {}, an input of this run", input.display());
            }
            if !force {
                refuse!(Fix::Replace; "{shown} already exists");
            }
        }
        Err(_) if !force && fs::symlink_metadata(path).is_ok() && target == path => {
            refuse!(Fix::Replace; "{shown} already exists")
        }
        Err(_) => {}
    }
    check_dir(&parent_dir(&target)).map_err(WriteError::Place)?;
    Ok(target)
}

/// Standard output about to receive credentials (`gen > child.kubeconfig`):
/// when it is a regular file others may read (the shell made it with the
/// umask, 0644 mostly), it is narrowed to the owner (0600) as long as it is
/// ours and still empty, that is the shell made or truncated it for this run,
/// before anything is written. A file that already held something (`>>` to a
/// log) is not changed behind its owner's back: a warning says how to fix
/// it. Returns the line that says which.
pub fn private_stdout() -> Option<String> {
    use std::os::fd::AsFd as _;
    let file = fs::File::from(std::io::stdout().as_fd().try_clone_to_owned().ok()?);
    let meta = file.metadata().ok()?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_file() || mode & 0o077 == 0 {
        return None;
    }
    let name = fs::read_link("/proc/self/fd/1").map_or("stdout".into(), |p| p.display().to_string());
    let name = crate::terminal::escape(&name);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let mine = meta.uid() == unsafe { libc::geteuid() };
    let narrowed = mode & 0o700;
    if mine && meta.len() == 0 && file.set_permissions(fs::Permissions::from_mode(narrowed)).is_ok() {
        return Some(format!(
            "note: stdout is the empty file {name}, which others could read (mode {mode:04o}): made it {narrowed:04o} before writing credentials into it (--output-file does so itself)"
        ));
    }
    Some(format!(
        "warning: stdout is the file {name}, readable by others (mode {mode:04o}), and now holds credentials: `chmod 600` it, or write with --output-file (mode 0600)"
    ))
}

/// `--dry-run` of [`write_new`]: the same checks, and what replacing the file
/// by `doc` would change; nothing is written.
pub fn plan_new(
    path: &Path,
    doc: serde_yaml::Value,
    entries: &[Entries],
    force: bool,
    inputs: &[PathBuf],
) -> Result<Plan, WriteError> {
    let target = check_new(path, force, inputs)?;
    // What is there now, when it can be read as a kubeconfig at all.
    let existing = crate::fs::read_bounded(&target, MAX_FILE_BYTES, Holds::Kubeconfig)
        .ok()
        .and_then(|bytes| yaml::text(&bytes).ok().and_then(|t| yaml::value(&t).ok()));
    Ok(plan::replace_plan(existing, doc, entries))
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
    /// The directory that was made for the file.
    pub created_dir: Option<PathBuf>,
}

/// Merges `entries` into the kubeconfig at `path` under kubectl's lock (see
/// [`rewrite`]). A missing directory is made first, as kubectl makes
/// `~/.kube` (client-go `clientcmd.WriteToFile` and its lock: `MkdirAll(dir,
/// 0755)`, the file 0600): a fresh CI runner has none.
pub fn merge_into(
    path: &Path,
    entries: &[Entries],
    current: Option<&str>,
    set_current: bool,
    lock_timeout: Duration,
) -> Result<MergeReport, WriteError> {
    let dir = parent_dir(&follow_links(path));
    let created_dir = match fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt as _;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
                .with_context(|| format!("creating directory {}", dir.display()))
                .map_err(WriteError::Place)?;
            Some(dir)
        }
        _ => None,
    };
    let rewritten = rewrite(path, lock_timeout, |existing| {
        let plan = plan::merge_plan(existing, entries, current, set_current).map_err(|e| unmerged(path, e))?;
        let current_context_set = plan.current_after != plan.current_before;
        Ok((Some(plan.doc), (plan.changes, current_context_set)))
    })?;
    let (changes, current_context_set) = rewritten.outcome;
    Ok(MergeReport {
        path: path.to_path_buf(),
        created: rewritten.created,
        changes,
        current_context_set,
        loose_mode: rewritten.loose_mode,
        in_place: rewritten.in_place,
        created_dir,
    })
}

/// What [`rewrite`] did besides what the edit says.
#[derive(Debug)]
pub struct Rewritten<T> {
    /// The file did not exist before.
    pub created: bool,
    /// Whatever the edit returned besides the document.
    pub outcome: T,
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
    let (target, dir) = merge_place(path)?;
    let _lock = Lock::acquire(path, lock_timeout)?;
    let (existing, meta) = read_merge_target(path, &target)?;
    let created = existing.is_none();
    let mode = meta.as_ref().map_or(PRIVATE_MODE, |m| m.permissions().mode() & 0o7777);
    let loose_mode = (!created && mode & 0o077 != 0).then_some(mode);
    let (doc, outcome) = edit(existing.flatten())?;
    let Some(doc) = doc else {
        return Ok(Rewritten { created, outcome, loose_mode, in_place: None });
    };
    let text = yaml::to_yaml(&doc);
    let temp = temp_file(&dir, &text, mode).map_err(WriteError::Place)?;
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
            let mut file = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| WriteError::File(format!("{shown} cannot be written: {e}")))?;
            file.set_len(0)
                .and_then(|()| file.write_all(text.as_bytes()))
                .and_then(|()| file.sync_all())
                .map_err(|e| WriteError::File(format!("{shown} cannot be written: {e}")))?;
        }
    }
    Ok(Rewritten { created, outcome, loose_mode, in_place })
}

/// The file a merge writes and its directory. A symlink (~/.kube/config ->
/// dotfiles/kube.yaml) is written through to the real file, as kubectl does,
/// also when that file does not exist yet.
fn merge_place(path: &Path) -> Result<(PathBuf, PathBuf), WriteError> {
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        refuse!("{} is a directory; give a kubeconfig file path", path.display());
    }
    let target = follow_links(path);
    let dir = parent_dir(&target);
    check_dir(&dir).map_err(WriteError::Place)?;
    Ok((target, dir))
}

/// The target of a merge as it is now, and its metadata: `None` when
/// missing, `Some(None)` when empty; refused when kubectl would not read it.
type Existing = (Option<Option<serde_yaml::Value>>, Option<fs::Metadata>);

fn read_merge_target(path: &Path, target: &Path) -> Result<Existing, WriteError> {
    let shown = path.display();
    match fs::metadata(target) {
        Ok(meta) if !meta.is_file() => refuse!(
            "{shown} is not a regular file ({}); it is left alone: give a kubeconfig file path",
            file_kind(&meta)
        ),
        Ok(meta) => {
            let bytes = crate::fs::read_bounded(target, MAX_FILE_BYTES, Holds::Kubeconfig)
                .map_err(|e| WriteError::File(format!("{e:#}; it was left unchanged")))?;
            let unchanged = |e: anyhow::Error| WriteError::File(format!("{shown} {e:#}; it was left unchanged"));
            let text = yaml::text(&bytes).map_err(unchanged)?;
            // The same budget as for a parent: a hostile target fails fast
            // instead of expanding in memory. And what kubectl refuses to
            // read is not written to.
            let doc = yaml::value(&text).map_err(unchanged)?;
            if doc.is_mapping() {
                let config = yaml::from_value::<Kubeconfig>(&doc, "kubeconfig").map_err(unchanged)?;
                // (Borrowed: the document itself is edited and written below.)
                super::load::check(&config).map_err(unchanged)?;
            }
            Ok((Some(Some(doc).filter(|d| !d.is_null())), Some(meta)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok((None, None)),
        Err(e) => refuse!("{shown} cannot be read: {e}"),
    }
}

/// `--dry-run` of [`merge_into`]: the same checks and the same plan, without
/// the lock and without writing anything.
pub fn plan_merge(
    path: &Path,
    entries: &[Entries],
    current: Option<&str>,
    set_current: bool,
) -> Result<Plan, WriteError> {
    // A missing directory is made by the write itself: nothing there yet.
    if fs::symlink_metadata(parent_dir(&follow_links(path))).is_err_and(|e| e.kind() == ErrorKind::NotFound) {
        return plan::merge_plan(None, entries, current, set_current)
            .map_err(|e| WriteError::File(format!("{} {e:#}", path.display())));
    }
    let (target, _) = merge_place(path)?;
    let (existing, _) = read_merge_target(path, &target)?;
    plan::merge_plan(existing.flatten(), entries, current, set_current).map_err(|e| unmerged(path, e))
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
        assert!(matches!(&err, WriteError::Refused(m, Fix::Replace) if m.ends_with("out already exists")), "{err}");
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
    fn a_merge_target_over_the_limit_is_refused_unread_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::File::create(&path).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
        let mut edited = false;
        let err = rewrite(&path, Duration::ZERO, |doc| {
            edited = true;
            Ok((doc, ()))
        })
        .err()
        .unwrap();
        assert!(format!("{err}").contains("config is larger than 64 MiB"), "{err}");
        assert!(!edited, "the edit never sees an unread file");
        assert_eq!(fs::metadata(&path).unwrap().len(), MAX_FILE_BYTES + 1, "left unchanged");
    }
}
