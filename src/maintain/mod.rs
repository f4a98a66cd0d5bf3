//! `status`, `refresh` and `prune`: looking after kubeconfigs `gen` wrote.
//!
//! Generated entries are found by their provenance extension (see
//! [`crate::kubeconfig::provenance`]) and nothing else: an entry without it is
//! foreign, counted, and never touched. [`inventory`] is the pure part all
//! three share; each subcommand adds its own I/O at the edge.

pub mod prune;
pub mod refresh;
pub mod status;
pub mod trust;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};

use crate::cluster::client::Session;
use crate::error::usage;
use crate::generate::record;
use crate::kubeconfig::load::{Loaded, ParentSource};
use crate::kubeconfig::model::{Kubeconfig, NamedCluster, NamedContext, NamedUser};
use crate::kubeconfig::provenance::{self, Found, Provenance};
use crate::kubeconfig::select;

/// The one kubeconfig file these subcommands read (and `refresh` and `prune`
/// write): `--kubeconfig`, else KUBECONFIG when it names exactly one file,
/// else `~/.kube/config`. A KUBECONFIG list of several files is refused: an
/// in-place rewrite needs one file, and which one would be a guess. Pure:
/// the environment is passed in.
pub fn target_file(flag: Option<&Path>, kubeconfig_env: Option<OsString>, home: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = flag {
        crate::error::refuse_dash("--kubeconfig", Some(path))?;
        return Ok(path.to_path_buf());
    }
    if let Some(list) = kubeconfig_env.filter(|v| !v.is_empty()) {
        let files: Vec<PathBuf> = std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
        match files.as_slice() {
            [] => {}
            [one] => return Ok(one.clone()),
            _ => {
                return Err(usage(format!(
                    "KUBECONFIG names {} files; pass --kubeconfig with the one file that holds the generated entries",
                    files.len()
                )));
            }
        }
    }
    match home {
        Some(home) => Ok(home.join(".kube").join("config")),
        None => Err(usage("no kubeconfig: HOME is not set; pass --kubeconfig FILE")),
    }
}

/// [`target_file`] with this process's environment.
pub fn target_file_from_env(flag: Option<&Path>) -> Result<PathBuf> {
    target_file(flag, std::env::var_os("KUBECONFIG"), std::env::var_os("HOME").map(PathBuf::from))
}

/// One generated context, with the names of its cluster and user entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub context: String,
    pub cluster: String,
    pub user: String,
    /// The context's record; `None` when the extension is there but unreadable.
    pub record: Option<Provenance>,
}

/// The generated entries of a kubeconfig, and how many others there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// In the file's order of contexts.
    pub generated: Vec<Generated>,
    /// Contexts without the provenance extension (left alone).
    pub foreign_contexts: usize,
    /// Cluster and user entries with the extension that no generated context
    /// names (left behind by a hand edit): reported, never removed.
    pub orphans: Vec<String>,
}

/// Lists what `gen` wrote: every context whose own entry carries the
/// provenance extension. A context made by hand that names a generated
/// cluster or user is foreign (and so never removed or rewritten).
pub fn inventory(config: &Kubeconfig) -> Inventory {
    let mut inv = Inventory::default();
    for NamedContext { name, context } in &config.contexts {
        let record = match provenance::find_in(context.extensions.as_ref()) {
            Found::None => {
                inv.foreign_contexts += 1;
                continue;
            }
            Found::Unreadable => None,
            Found::Record(r) => Some(*r),
        };
        inv.generated.push(Generated {
            context: name.clone(),
            cluster: context.cluster.clone(),
            user: context.user.clone(),
            record,
        });
    }
    let used = |pick: fn(&Generated) -> &String, name: &str| inv.generated.iter().any(|g| pick(g) == name);
    for c in &config.clusters {
        if cluster_record(c) != Found::None && !used(|g| &g.cluster, &c.name) {
            inv.orphans.push(format!("cluster {:?}", c.name));
        }
    }
    for u in &config.users {
        if user_record(u) != Found::None && !used(|g| &g.user, &u.name) {
            inv.orphans.push(format!("user {:?}", u.name));
        }
    }
    inv
}

fn cluster_record(c: &NamedCluster) -> Found {
    provenance::find_in(c.cluster.extensions.as_ref())
}

fn user_record(u: &NamedUser) -> Found {
    provenance::find(&u.user)
}

/// A line for a generated entry whose record says when its credential
/// expires in a way that is not a time (a hand edit, another tool): its
/// expiry is unknown, said per entry, and every other entry goes on.
pub fn unreadable_expiry(g: &Generated) -> Option<String> {
    let text = g.record.as_ref()?.credential.as_ref()?.expires.as_deref()?;
    crate::clock::parse_rfc3339(text).is_none().then(|| {
        format!(
            "context {:?}: expiry unknown: its recorded expiry is not an RFC 3339 time (like 2026-11-29T13:00:00Z)",
            crate::terminal::escape(&g.context)
        )
    })
}

/// A session with the parent an entry's provenance records: `context` of the
/// user's parent kubeconfig (`source`), which must point at the recorded
/// `server` (a context of the same name on another cluster says nothing
/// about this entry). What `prune` asks the parent with, and what `refresh`
/// reads a hub-held credential again with.
pub fn recorded_parent(source: &ParentSource, server: &str, context: &str, timeout: Duration) -> Result<Session> {
    let loaded = crate::generate::load_parent(source)?;
    let selection = select::select(&loaded, Some(context)).map_err(|e| e.naming("--parent-context"))?;
    let actual = record::parent(selection.server()?.as_deref(), context).server.unwrap_or_default();
    if !trust::same_server(&actual, server) {
        return Err(anyhow!(
            "parent context {context:?} of {} points at {actual}, not at the recorded parent {server}; pass --parent-kubeconfig (and --parent-context) for that parent",
            loaded.describe()
        ));
    }
    Session::connect(&selection, None, timeout)
}

/// How `prune` and `refresh` reach the parents the entries record: the
/// user's own parent kubeconfig, a context that overrides the recorded one,
/// the request timeout.
pub struct ParentAccess {
    pub source: ParentSource,
    pub context: Option<String>,
    pub timeout: Duration,
}

/// A recorded parent: its server and the context to reach it at.
pub type ParentKey = (String, String);

impl ParentAccess {
    /// The parent of `record` (the context overridden when asked), or `None`
    /// when the record does not say.
    pub fn of(&self, record: Option<&Provenance>) -> Option<ParentKey> {
        let parent = record.and_then(|r| r.parent.as_ref());
        let server = parent.and_then(|p| p.server.clone())?;
        let context = self.context.clone().or_else(|| parent.and_then(|p| p.context.clone()))?;
        Some((server, context))
    }

    /// A session with that parent ([`recorded_parent`]).
    pub fn connect(&self, (server, context): &ParentKey) -> Result<Session> {
        recorded_parent(&self.source, server, context, self.timeout)
    }
}

/// Reads the file [`target_file`] chose, as kubectl would; errors name
/// `--kubeconfig` when the flag gave it.
pub fn read_target(path: &Path, flag_given: bool) -> Result<Kubeconfig> {
    let read = crate::kubeconfig::load::read_file(path);
    let read = if flag_given { read.context("--kubeconfig") } else { read };
    crate::error::in_cwd(read, path)
}

/// One file as [`Loaded`], for the code that selects contexts in it.
pub fn loaded(path: &Path, config: Kubeconfig) -> Loaded {
    crate::kubeconfig::load::combine(vec![(crate::kubeconfig::load::absolute(path), config)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_file_precedence() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(target_file(Some(Path::new("k")), Some("a:b".into()), home.clone()).unwrap(), PathBuf::from("k"));
        assert_eq!(target_file(None, Some("a".into()), home.clone()).unwrap(), PathBuf::from("a"));
        assert_eq!(target_file(None, Some("".into()), home.clone()).unwrap(), PathBuf::from("/home/u/.kube/config"));
        let err = target_file(None, Some("a:b".into()), home).unwrap_err();
        assert!(crate::error::is_usage(&err) && format!("{err}").contains("names 2 files"), "{err}");
        assert!(target_file(Some(Path::new("-")), None, None).is_err());
    }

    #[test]
    fn generated_and_foreign_entries() {
        let record = Provenance { cluster_id: Some("x".into()), ..Provenance::new() };
        let ext = crate::kubeconfig::yaml::to_yaml(&serde_yaml::Value::Sequence(vec![
            serde_yaml::to_value(serde_yaml::Mapping::from_iter([
                ("name".into(), provenance::EXTENSION_NAME.into()),
                ("extension".into(), record.to_value()),
            ]))
            .unwrap(),
        ]));
        let ext = ext.replace('\n', "\n    ");
        let text = format!(
            "contexts:\n- name: gen\n  context:\n    cluster: g\n    user: g\n    extensions:\n    {ext}\n- name: mine\n  context: {{cluster: m, user: m}}\nclusters:\n- name: g\n  cluster: {{server: https://g}}\n- name: m\n  cluster: {{server: https://m}}\n"
        );
        let config: Kubeconfig = serde_yaml::from_str(&text).unwrap();
        let inv = inventory(&config);
        assert_eq!(inv.foreign_contexts, 1);
        assert_eq!(inv.generated.len(), 1);
        assert_eq!(inv.generated[0].context, "gen");
        assert_eq!(inv.generated[0].record, Some(record));
        assert!(inv.orphans.is_empty());
    }
}
