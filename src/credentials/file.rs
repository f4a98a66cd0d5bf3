//! The credentials file of `gen --all` and of repeated `--cluster`/`--cluster-id`:
//! child credentials differ per cluster, so they come per cluster from a file.
//!
//! A key names a cluster one way only: a UUID is a cluster ID (matched against
//! the cluster ID, never against a name, so that a ManagedCluster *named* like
//! another's ID gets nothing), `namespace/name` is exact, and a bare name
//! matches only when exactly one ManagedCluster on the parent has that name (a
//! second `child-a` in another namespace makes the key ambiguous, and the
//! credential goes to neither).
//!
//! ```yaml
//! clusters:
//!   child-a:                        # a ManagedCluster name,
//!     tokenFile: tokens/child-a     # paths relative to this file
//!   clusternet-x7k2p/dup:           # or namespace/name,
//!     clientCertificate: dup.crt
//!     clientKey: dup.key
//!   dc91021d-2361-4f6d-a404-7c33b9e01118:   # or a cluster ID
//!     kubeconfig: child-c.kubeconfig
//!     context: admin@child-c
//!   child-d:
//!     token: <token>               # inline: keep the file private
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Deserialize;

use super::child::ChildSource;
use crate::kubeconfig::{flatten, load, yaml};
use crate::names;
use crate::notes;
use crate::route::ClusterId;
use crate::secret::Secret;
use crate::terminal::escape;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    clusters: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    token: Option<Secret>,
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
    kubeconfig: Option<String>,
    context: Option<String>,
}

/// How a key of the file names a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// A cluster ID, normalised as `--cluster-id` is.
    Id(ClusterId),
    /// `namespace/name`.
    Qualified { namespace: String, name: String },
    /// A ManagedCluster name alone.
    Name(String),
}

impl Key {
    /// Reads a key: `namespace/name`, a UUID, or a name; each part must be a
    /// Kubernetes name. Returns the key and whether an ID was normalised.
    fn parse(text: &str) -> Result<(Key, bool)> {
        if let Some((namespace, name)) = text.split_once('/') {
            names::check_namespace(namespace, "its namespace")?;
            names::check_object_name(name, "its name")?;
            return Ok((Key::Qualified { namespace: namespace.into(), name: name.into() }, false));
        }
        if let Ok((id, changed)) = ClusterId::parse(text) {
            return Ok((Key::Id(id), changed));
        }
        names::check_object_name(text, "the key")?;
        Ok((Key::Name(text.into()), false))
    }
}

/// The cluster a credential is looked up for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub id: &'a ClusterId,
    /// Namespace and name, when the cluster was looked up on the parent.
    pub object: Option<(&'a str, &'a str)>,
    /// How many ManagedClusters on the parent have this cluster's name.
    pub same_name: usize,
}

/// What the file holds for a cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// The entry under `key` (as written in the file).
    One {
        key: &'a str,
        source: &'a ChildSource,
    },
    /// Only a bare-name entry, and the name is not unique on the parent.
    AmbiguousName {
        key: &'a str,
    },
    None,
}

/// Child credential sources per cluster key (name, namespace/name or ID).
#[derive(Debug)]
pub struct Credentials {
    pub path: PathBuf,
    /// By key; the key as written in the file, for messages.
    entries: BTreeMap<Key, (String, ChildSource)>,
}

impl Credentials {
    /// Reads and checks the file; every entry must name exactly one source,
    /// and no two keys may name the same cluster.
    pub fn read(path: &Path) -> Result<Credentials> {
        let what = format!("--credentials {}", path.display());
        let bytes = crate::fs::read_path(path).context("--credentials")?;
        let text = std::str::from_utf8(&bytes).map_err(|_| anyhow!("{what} is not UTF-8 text"))?;
        // Inline tokens may sit here: the parser's messages never quote values.
        let file: File = yaml::typed(text, "credentials file").map_err(|e| anyhow!("{what} {e:#}"))?;
        let base = load::absolute(path).parent().map(Path::to_path_buf).unwrap_or_default();
        let mut entries: BTreeMap<Key, (String, ChildSource)> = BTreeMap::new();
        for (text, entry) in file.clusters {
            let shown = escape(&text);
            let (key, normalised) = Key::parse(&text).map_err(|e| anyhow!("{what}: clusters.{shown}: {e:#}"))?;
            if let (true, Key::Id(id)) = (normalised, &key) {
                notes::push(format!(
                    "note: {what}: key {shown} normalised to cluster ID {id} (the hub matches the ID exactly)"
                ));
            }
            let source = entry.into_source(&base).map_err(|e| anyhow!("{what}: clusters.{shown}: {e}"))?;
            if let Some((first, _)) = entries.get(&key) {
                bail!("{what}: clusters.{} and clusters.{shown} name the same cluster; keep one", escape(first));
            }
            entries.insert(key, (text, source));
        }
        if entries.is_empty() {
            bail!("{what} has no entries under clusters:");
        }
        Ok(Credentials { path: path.to_path_buf(), entries })
    }

    /// The entry for a cluster: its ID first, then its namespace/name, then its
    /// bare name when no other ManagedCluster has that name.
    pub fn lookup(&self, wanted: Wanted<'_>) -> Found<'_> {
        let one = |key: &Key| self.entries.get(key).map(|(key, source)| Found::One { key, source });
        let by_id = one(&Key::Id(wanted.id.clone()));
        let Some((namespace, name)) = wanted.object else {
            return by_id.unwrap_or(Found::None);
        };
        let qualified = || one(&Key::Qualified { namespace: namespace.into(), name: name.into() });
        let bare = || match self.entries.get(&Key::Name(name.into())) {
            Some((key, _)) if wanted.same_name != 1 => Some(Found::AmbiguousName { key }),
            Some((key, source)) => Some(Found::One { key, source }),
            None => None,
        };
        by_id.or_else(qualified).or_else(bare).unwrap_or(Found::None)
    }

    /// True when some key is a bare name equal to one of `names`.
    pub fn has_bare_name<'a>(&self, mut names: impl Iterator<Item = &'a str>) -> bool {
        names.any(|n| self.entries.contains_key(&Key::Name(n.into())))
    }
}

impl Entry {
    fn into_source(self, base: &Path) -> Result<ChildSource> {
        let resolve = |p: &str| flatten::resolve(p, base);
        let mut found = Vec::new();
        if let Some(t) = self.token {
            found.push(ChildSource::Token(t));
        }
        if let Some(f) = self.token_file {
            found.push(ChildSource::TokenFile(resolve(&f)));
        }
        match (self.client_certificate, self.client_key) {
            (Some(c), Some(k)) => found.push(ChildSource::CertKeyFiles { cert: resolve(&c), key: resolve(&k) }),
            (Some(_), None) => bail!("clientCertificate needs clientKey"),
            (None, Some(_)) => bail!("clientKey needs clientCertificate"),
            (None, None) => {}
        }
        if let Some(k) = self.kubeconfig {
            found.push(ChildSource::ChildKubeconfig { path: resolve(&k), context: self.context });
        } else if self.context.is_some() {
            bail!("context needs kubeconfig");
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => bail!("no credentials: give one of token, tokenFile, clientCertificate+clientKey, kubeconfig"),
            _ => bail!("more than one credential source; keep one"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "1b2f7d0a-4c1e-4e6b-9a51-0000000000a1";
    const ID_B: &str = "2c3e8e1b-5d2f-4f7c-8b62-0000000000b2";

    fn id(text: &str) -> ClusterId {
        ClusterId::parse(text).unwrap().0
    }

    fn read(text: &str) -> (Credentials, tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.yaml");
        std::fs::write(&path, text).unwrap();
        (Credentials::read(&path).unwrap(), dir, notes::take())
    }

    fn key_of<'a>(
        c: &'a Credentials,
        id: &ClusterId,
        object: Option<(&'a str, &'a str)>,
        same: usize,
    ) -> Option<&'a str> {
        match c.lookup(Wanted { id, object, same_name: same }) {
            Found::One { key, .. } => Some(key),
            Found::AmbiguousName { .. } => Some("<ambiguous>"),
            Found::None => None,
        }
    }

    #[test]
    fn entries_resolve_relative_to_the_file_and_lookup_order() {
        let text = format!(
            "clusters:\n  a: {{tokenFile: t/a}}\n  ns/b: {{clientCertificate: b.crt, clientKey: b.key}}\n  b: {{token: x}}\n  {ID_A}: {{kubeconfig: k, context: c}}\n"
        );
        let (c, dir, _) = read(&text);
        let (a, b) = (id(ID_A), id(ID_B));
        let source = |o: Option<(&str, &str)>| match c.lookup(Wanted { id: &b, object: o, same_name: 1 }) {
            Found::One { source, .. } => Some(source.clone()),
            _ => None,
        };
        assert_eq!(source(Some(("z", "a"))), Some(ChildSource::TokenFile(dir.path().join("t/a"))));
        assert!(matches!(source(Some(("ns", "b"))), Some(ChildSource::CertKeyFiles { .. })));
        assert_eq!(source(Some(("other", "b"))), Some(ChildSource::Token(Secret::new("x".into()))));
        // The ID first, whatever the name.
        assert_eq!(key_of(&c, &a, Some(("ns", "b")), 1), Some(ID_A));
        assert_eq!(key_of(&c, &a, None, 0), Some(ID_A));
        assert_eq!(key_of(&c, &b, Some(("z", "none")), 1), None);
        // Without a looked-up object (offline --cluster-id), names never match.
        assert_eq!(key_of(&c, &b, None, 0), None);
    }

    #[test]
    fn an_id_key_never_matches_a_name_and_a_bare_name_must_be_unique() {
        let (c, _dir, _) = read(&format!("clusters:\n  {ID_A}: {{token: a}}\n  child-a: {{token: tok-n}}\n"));
        // A ManagedCluster named like child-a's ID, with another ID.
        assert_eq!(key_of(&c, &id(ID_B), Some(("rogue", ID_A)), 1), None);
        // A second child-a elsewhere: the bare name is ambiguous for both.
        assert_eq!(key_of(&c, &id(ID_B), Some(("clusternet-x", "child-a")), 2), Some("<ambiguous>"));
        assert_eq!(key_of(&c, &id(ID_B), Some(("clusternet-x", "child-a")), 1), Some("child-a"));
    }

    #[test]
    fn id_keys_are_normalised_with_a_note_and_two_keys_for_one_cluster_are_refused() {
        let upper = ID_A.to_uppercase();
        let (c, _dir, notes) = read(&format!("clusters:\n  {upper}: {{token: a}}\n"));
        assert_eq!(key_of(&c, &id(ID_A), None, 0), Some(upper.as_str()));
        assert!(notes.len() == 1 && notes[0].contains(&format!("normalised to cluster ID {ID_A}")), "{notes:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.yaml");
        std::fs::write(&path, format!("clusters:\n  {upper}: {{token: a}}\n  {ID_A}: {{token: b}}\n")).unwrap();
        let err = format!("{:#}", Credentials::read(&path).unwrap_err());
        assert!(err.contains("name the same cluster"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.yaml");
        std::fs::write(&path, "clusters:\n  child-a: {token: first}\n  child-a: {token: second}\n").unwrap();
        let err = format!("{:#}", Credentials::read(&path).unwrap_err());
        assert!(err.contains("duplicate") && err.contains("child-a") && !err.contains("second"), "{err}");
    }

    #[test]
    fn bad_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.yaml");
        for (text, needle) in [
            ("clusters:\n  a: {}\n", "clusters.a: no credentials"),
            ("clusters:\n  a: {token: x, tokenFile: t}\n", "more than one"),
            ("clusters:\n  a: {clientKey: k}\n", "clientKey needs clientCertificate"),
            ("clusters:\n  a: {tokn: x}\n", "unknown field `tokn`"),
            ("clusters: {}\n", "no entries"),
            ("clusters:\n  x/../y: {token: t}\n", "clusters.x/../y: its name \"../y\" is not a ManagedCluster name"),
            ("clusters:\n  a/b/c: {token: t}\n", "is not a ManagedCluster name"),
            ("clusters:\n  Child: {token: t}\n", "the key \"Child\" is not a ManagedCluster name"),
            ("clusters:\n  \"a\\e[2J\": {token: t}\n", "clusters.a^[[2J: the key"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Credentials::read(&path).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
