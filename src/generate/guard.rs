//! Guard rails for the parent `gen` reads: the parent context must be the
//! parent's own, not a context `gen` generated earlier (nor one made the same
//! way by hand) and not the child's.
//!
//! A generated context taken as the parent nests the proxy path
//! (`.../sockets/<id1>/proxy/direct/apis/.../sockets/<id2>/proxy/direct`): the
//! result is written without complaint, and kubectl later fails with
//! `Forbidden: unknown`. That happens by default after `gen --merge-into
//! ~/.kube/config --set-current-context`, when the next `gen` takes the
//! current context as its parent.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde_yaml::{Mapping, Value};

use crate::credentials::{ChildSource, EXTRA_CERTIFICATE, EXTRA_TOKEN, IMPERSONATED_USER};
use crate::kubeconfig::load::{self, Loaded, ParentSource};
use crate::kubeconfig::select::{self, Selection};
use crate::route;

/// Why a context is a generated one, if it is: its server is a socket-proxy
/// route, or its user impersonates `clusternet` with a child's credentials.
fn generated(server: Option<&str>, user: Option<&Mapping>) -> Option<String> {
    if let Some(proxied) = server.and_then(route::socket_proxy) {
        return Some(format!(
            "its server already goes through the socket proxy of cluster {} on {}",
            proxied.cluster_id, proxied.parent
        ));
    }
    let user = user?;
    let impersonates = user.get("as").and_then(Value::as_str) == Some(IMPERSONATED_USER);
    let extras = user.get("as-user-extra").and_then(Value::as_mapping);
    let carries_child = extras.is_some_and(|e| e.contains_key(EXTRA_TOKEN) || e.contains_key(EXTRA_CERTIFICATE));
    (impersonates && carries_child)
        .then(|| format!("its user impersonates {IMPERSONATED_USER} with a child's credentials"))
}

/// Refuses a parent context that is a generated one, naming the contexts of
/// the same files that could be the parent.
pub fn refuse_generated_parent(loaded: &Loaded, selection: &Selection) -> Result<()> {
    let Some(why) = generated(selection.cluster.server.as_deref(), Some(selection.user)) else {
        return Ok(());
    };
    let candidates: Vec<String> = loaded
        .contexts
        .iter()
        .filter(|c| {
            let cluster = loaded.clusters.iter().find(|k| k.item.name == c.item.context.cluster);
            let user = loaded.users.iter().find(|u| u.item.name == c.item.context.user);
            cluster.is_some()
                && generated(cluster.and_then(|k| k.item.cluster.server.as_deref()), user.map(|u| &u.item.user))
                    .is_none()
        })
        .map(|c| format!("{:?}", c.item.name))
        .take(5)
        .collect();
    let instead = if candidates.is_empty() {
        "pass --kubeconfig with the parent cluster's own kubeconfig".to_string()
    } else {
        format!("pass --context with the parent's own context ({}) or --kubeconfig", candidates.join(", "))
    };
    bail!(
        "context {:?} in {} is a generated Clusternet context, not the parent's: {why}; {instead}",
        selection.context_name,
        loaded.describe()
    )
}

/// Refuses a `--child-kubeconfig` whose server is the parent's: the two are
/// the same cluster, or parent and child were swapped. A child kubeconfig
/// that cannot be read is left to the credential loader to report.
pub fn refuse_same_server(parent_server: &str, child: &ChildSource) -> Result<()> {
    let ChildSource::ChildKubeconfig { path, context } = child else {
        return Ok(());
    };
    let Ok(config) = load::read_file(path) else {
        return Ok(());
    };
    let loaded = load::combine(vec![(load::absolute(path), config)]);
    let Ok(selection) = select::select(&loaded, context.as_deref()) else {
        return Ok(());
    };
    let normal = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    match selection.cluster.server.as_deref() {
        Some(server) if normal(server) == normal(parent_server) => bail!(
            "--child-kubeconfig {} points at the parent's own server {parent_server}: pass the Clusternet parent's kubeconfig (where clusternet-hub runs) as --kubeconfig and the child cluster's as --child-kubeconfig",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// True when `path` is a file the next `gen` reads as its parent by default
/// (without --kubeconfig): a file of KUBECONFIG, or ~/.kube/config.
pub fn is_default_parent(path: &Path, default_parent: &ParentSource) -> bool {
    let same = |a: &Path, b: &Path| {
        let canon = |p: &Path| -> PathBuf {
            std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or_default())
        };
        canon(a) == canon(b)
    };
    match default_parent {
        ParentSource::Flag(flag) => same(path, flag),
        ParentSource::Home(home) => same(path, home),
        ParentSource::EnvList(files) => files.iter().any(|f| same(path, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::load::{combine, from_bytes};
    use crate::kubeconfig::select::select;

    const FILE: &str = "\
current-context: gen
clusters:
- name: parent
  cluster: {server: https://10.0.0.10:6443}
- name: gen
  cluster: {server: https://10.0.0.10:6443/apis/proxies.clusternet.io/v1alpha1/sockets/dc91021d-2361-4f6d-a404-7c33b9e01118/proxy/direct}
users:
- name: admin
  user: {token: t}
- name: imp
  user: {as: clusternet, as-user-extra: {clusternet-token: [x]}, username: system:anonymous}
contexts:
- name: gen
  context: {cluster: gen, user: imp}
- name: byhand
  context: {cluster: parent, user: imp}
- name: admin@parent
  context: {cluster: parent, user: admin}
";

    #[test]
    fn generated_contexts_are_refused_with_the_parent_contexts_named() {
        let loaded = combine(vec![("/k/config".into(), from_bytes(FILE.as_bytes()).unwrap())]);
        let err = |ctx: &str| {
            format!("{:#}", refuse_generated_parent(&loaded, &select(&loaded, Some(ctx)).unwrap()).unwrap_err())
        };
        let e = err("gen");
        assert!(e.contains("context \"gen\" in /k/config is a generated Clusternet context"), "{e}");
        assert!(
            e.contains("socket proxy of cluster dc91021d-2361-4f6d-a404-7c33b9e01118 on https://10.0.0.10:6443"),
            "{e}"
        );
        assert!(e.contains("pass --context with the parent's own context (\"admin@parent\")"), "{e}");
        assert!(err("byhand").contains("impersonates clusternet with a child's credentials"));
        refuse_generated_parent(&loaded, &select(&loaded, Some("admin@parent")).unwrap()).unwrap();
    }

    #[test]
    fn same_server_for_parent_and_child_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("child.yaml");
        std::fs::write(&path, "current-context: c\nclusters: [{name: c, cluster: {server: 'https://H:6443/'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n").unwrap();
        let child = ChildSource::ChildKubeconfig { path, context: None };
        let err = format!("{:#}", refuse_same_server("https://h:6443", &child).unwrap_err());
        assert!(err.contains("points at the parent's own server https://h:6443"), "{err}");
        refuse_same_server("https://other:6443", &child).unwrap();
        refuse_same_server("https://h:6443", &ChildSource::Token(crate::secret::Secret::new("t".into()))).unwrap();
    }
}
