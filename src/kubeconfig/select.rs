//! Choosing the context, and with it the cluster and the user, like kubectl does.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use serde_yaml::{Mapping, Value};

use super::load::Loaded;
use super::model::Cluster;

/// The context chosen from a loaded kubeconfig, with its cluster and user.
#[derive(Debug)]
pub struct Selection<'a> {
    pub context_name: &'a str,
    pub namespace: Option<&'a str>,
    pub cluster_name: &'a str,
    pub cluster: &'a Cluster,
    /// Directory that relative paths in the cluster entry are resolved against.
    pub cluster_dir: &'a Path,
    /// Context extensions, kept as `kubectl config view --minify` keeps them.
    pub context_extensions: Option<&'a Value>,
    pub user_name: &'a str,
    /// The user entry; empty when the context names none or a missing one
    /// (see [`Selection::require_user`]).
    pub user: &'a Mapping,
    /// Directory that relative paths in the user entry are resolved against.
    pub user_dir: &'a Path,
    /// Why there is no user entry, when there is none.
    missing_user: Option<String>,
}

impl Selection<'_> {
    /// The cluster's server as kubectl dials it (a server without a scheme
    /// is plain HTTP: see [`crate::route::with_default_scheme`]). None when
    /// the cluster has no server.
    pub fn server(&self) -> Result<Option<String>> {
        let Some(server) = self.cluster.server.as_deref().filter(|s| !s.trim().is_empty()) else { return Ok(None) };
        let field = format!("server of cluster {:?}", self.cluster_name);
        crate::route::with_default_scheme(server, &field).map(Some)
    }

    /// Fails when the context has no user entry. Only what uses the user
    /// needs one: with `--parent-auth anonymous` or `token`, a context
    /// without `user:` is fine, as it is for kubectl.
    pub fn require_user(&self) -> Result<()> {
        match &self.missing_user {
            Some(problem) => bail!("{problem}"),
            None => Ok(()),
        }
    }
}

static NO_USER: std::sync::LazyLock<Mapping> = std::sync::LazyLock::new(Mapping::new);

/// Why no context was selected. Only the caller knows which flag picks the
/// context (`--context`, `--child-context`), so [`SelectError::naming`] puts
/// it into the advice; the domain never names flags.
#[derive(Debug)]
pub enum SelectError {
    /// No context was asked for and the file has no current-context.
    NoCurrent { file: String, contexts: String },
    /// The context asked for is not in the file.
    NotFound { name: String, file: String, contexts: String },
    /// The file itself must be fixed (no contexts, a missing cluster or user).
    File(anyhow::Error),
}

impl SelectError {
    /// The error for a user who picks the context with `flag`.
    pub fn naming(self, flag: &str) -> anyhow::Error {
        match self {
            SelectError::NoCurrent { file, contexts } => {
                anyhow!("{file} has no current-context; pass {flag} NAME (contexts: {contexts})")
            }
            SelectError::NotFound { name, file, contexts } => {
                anyhow!("context {name:?} is not in {file}; pass {flag} with one of: {contexts}")
            }
            SelectError::File(e) => e,
        }
    }
}

impl From<anyhow::Error> for SelectError {
    fn from(e: anyhow::Error) -> Self {
        SelectError::File(e)
    }
}

/// Selects `context` (or the current context) and checks that its cluster and
/// user exist.
pub fn select<'a>(loaded: &'a Loaded, context: Option<&str>) -> Result<Selection<'a>, SelectError> {
    let contexts = || list(loaded.contexts.iter().map(|c| c.item.name.as_str()));
    let name = match context.filter(|c| !c.is_empty()) {
        Some(name) => name,
        None if loaded.contexts.is_empty() && loaded.current_context.is_none() => {
            return Err(anyhow!(
                "{} has no contexts (is it empty?); give a kubeconfig with the parent's context",
                loaded.describe()
            )
            .into());
        }
        None => loaded
            .current_context
            .as_deref()
            .ok_or_else(|| SelectError::NoCurrent { file: loaded.describe(), contexts: contexts() })?,
    };
    let context = loaded.contexts.iter().find(|c| c.item.name == name).ok_or_else(|| SelectError::NotFound {
        name: name.to_owned(),
        file: loaded.describe(),
        contexts: contexts(),
    })?;
    let ctx = &context.item.context;
    if ctx.cluster.is_empty() {
        return Err(anyhow!("context {name:?} in {} names no cluster; set its cluster field", loaded.describe()).into());
    }
    let cluster = loaded.clusters.iter().find(|c| c.item.name == ctx.cluster).ok_or_else(|| {
        anyhow!(
            "context {name:?} names cluster {:?}, which is not in {}; add the cluster or fix the context",
            ctx.cluster,
            loaded.describe()
        )
    })?;
    // A context without `user:` is fine until the user is needed (see
    // `require_user`); one naming a user that is not there is an error, as
    // for `kubectl config view --minify` ("cannot locate user").
    let user = match ctx.user.as_str() {
        "" => None,
        wanted => Some(loaded.users.iter().find(|u| u.item.name == wanted).ok_or_else(|| {
            anyhow!(
                "context {name:?} names user {wanted:?}, which is not in {}; add the user or fix the context",
                loaded.describe()
            )
        })?),
    };
    let missing_user =
        user.is_none().then(|| format!("context {name:?} in {} names no user; set its user field", loaded.describe()));
    Ok(Selection {
        context_name: &context.item.name,
        namespace: ctx.namespace.as_deref().filter(|n| !n.is_empty()),
        cluster_name: &cluster.item.name,
        cluster: &cluster.item.cluster,
        cluster_dir: loaded.base_dir(cluster.file),
        context_extensions: ctx.extensions.as_ref(),
        user_name: &ctx.user,
        user: user.map_or(&*NO_USER, |u| &u.item.user),
        user_dir: loaded.base_dir(user.map_or(cluster.file, |u| u.file)),
        missing_user,
    })
}

/// A short list of names for a message: huge kubeconfigs must not flood stderr.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return "none".to_string();
    }
    let mut text = names.iter().take(SHOWN).map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::load::{combine, from_bytes};

    const TWO: &str = "\
current-context: b
clusters:
- name: c1
  cluster: {server: https://one}
- name: c2
  cluster: {server: https://two}
users:
- name: u1
  user: {token: t}
contexts:
- name: a
  context: {cluster: c1, user: u1, namespace: ns}
- name: b
  context: {cluster: c2, user: u1}
- name: broken
  context: {cluster: nope, user: u1}
- name: nouser
  context: {cluster: c1, user: ghost}
";

    fn loaded(text: &str) -> Loaded {
        combine(vec![("/k/config".into(), from_bytes(text.as_bytes()).unwrap())])
    }

    #[test]
    fn current_context_is_the_default() {
        let l = loaded(TWO);
        let s = select(&l, None).unwrap();
        assert_eq!(s.context_name, "b");
        assert_eq!(s.cluster.server.as_deref(), Some("https://two"));
        assert_eq!(s.namespace, None);
        assert_eq!(s.cluster_dir, Path::new("/k"));
    }

    #[test]
    fn explicit_context_with_namespace() {
        let l = loaded(TWO);
        let s = select(&l, Some("a")).unwrap();
        assert_eq!((s.cluster_name, s.user_name, s.namespace), ("c1", "u1", Some("ns")));
    }

    #[test]
    fn errors_name_the_problem_and_the_fix() {
        let l = loaded(TWO);
        let err = |c: Option<&str>| format!("{:#}", select(&l, c).unwrap_err().naming("--context"));
        assert!(err(Some("zz")).contains("context \"zz\" is not in /k/config; pass --context with one of: \"a\""));
        assert!(err(Some("broken")).contains("names cluster \"nope\""));
        assert!(err(Some("nouser")).contains("names user \"ghost\""));
        assert!(select(&l, Some("a")).unwrap().require_user().is_ok());
        let l = loaded(
            "contexts:\n- name: a\n  context: {cluster: c1}\nclusters:\n- name: c1\n  cluster: {server: https://one}\n",
        );
        let s = select(&l, Some("a")).unwrap();
        assert!(format!("{:#}", s.require_user().unwrap_err()).contains("names no user"));
        let none = loaded("apiVersion: v1\nkind: Config\n");
        assert!(
            format!("{:#}", select(&none, None).unwrap_err().naming("--context"))
                .contains("has no contexts (is it empty?)")
        );
    }
}
