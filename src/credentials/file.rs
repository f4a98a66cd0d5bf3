//! The credentials file of `gen --all` and of repeated `--cluster`/`--cluster-id`:
//! child credentials differ per cluster, so they come per cluster from a file.
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

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;

use super::child::ChildSource;
use crate::kubeconfig::{flatten, load, parse};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    clusters: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    token: Option<String>,
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
    kubeconfig: Option<String>,
    context: Option<String>,
}

/// Child credential sources per cluster key (name, namespace/name or ID).
#[derive(Debug)]
pub struct Credentials {
    pub path: PathBuf,
    entries: BTreeMap<String, ChildSource>,
}

impl Credentials {
    /// Reads and checks the file; every entry must name exactly one source.
    pub fn read(path: &Path) -> Result<Credentials> {
        let what = format!("--credentials {}", path.display());
        let bytes = flatten::read_path(path, "--credentials")?;
        let text = std::str::from_utf8(&bytes).map_err(|_| anyhow!("{what} is not UTF-8 text"))?;
        // Inline tokens may sit here: the parser's messages never quote values.
        let file: File = parse::typed(text, "credentials file").map_err(|e| anyhow!("{what} {e:#}"))?;
        let base = load::absolute(path).parent().map(Path::to_path_buf).unwrap_or_default();
        let mut entries = BTreeMap::new();
        for (key, entry) in file.clusters {
            let source = entry.into_source(&base).map_err(|e| anyhow!("{what}: clusters.{key}: {e}"))?;
            entries.insert(key, source);
        }
        if entries.is_empty() {
            bail!("{what} has no entries under clusters:");
        }
        Ok(Credentials { path: path.to_path_buf(), entries })
    }

    /// The source for a cluster: by ID first, then namespace/name, then name.
    pub fn lookup(&self, id: &str, namespace: Option<&str>, name: Option<&str>) -> Option<&ChildSource> {
        let qualified = namespace.zip(name).map(|(ns, n)| format!("{ns}/{n}"));
        self.entries
            .get(id)
            .or_else(|| qualified.and_then(|q| self.entries.get(&q)))
            .or_else(|| name.and_then(|n| self.entries.get(n)))
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

    #[test]
    fn entries_resolve_relative_to_the_file_and_lookup_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.yaml");
        std::fs::write(
            &path,
            "clusters:\n  a: {tokenFile: t/a}\n  ns/b: {clientCertificate: b.crt, clientKey: b.key}\n  b: {token: x}\n  id-1: {kubeconfig: k, context: c}\n",
        )
        .unwrap();
        let c = Credentials::read(&path).unwrap();
        assert_eq!(c.lookup("?", Some("z"), Some("a")), Some(&ChildSource::TokenFile(dir.path().join("t/a"))));
        assert!(matches!(c.lookup("?", Some("ns"), Some("b")), Some(ChildSource::CertKeyFiles { .. })));
        assert_eq!(c.lookup("?", Some("other"), Some("b")), Some(&ChildSource::Token("x".into())));
        assert!(matches!(c.lookup("id-1", None, Some("a")), Some(ChildSource::ChildKubeconfig { .. })));
        assert_eq!(c.lookup("?", None, Some("none")), None);
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
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Credentials::read(&path).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
