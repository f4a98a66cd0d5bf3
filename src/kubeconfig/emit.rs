//! The generated kubeconfig: one cluster, one context, one user, one name.

use anyhow::{Context as _, Result};
use serde_yaml::{Mapping, Value};

use super::model::Cluster;
use super::yaml;

/// The three entries a generation produces, all under one name.
#[derive(Debug, Clone)]
pub struct Entries {
    pub name: String,
    pub cluster: Mapping,
    pub context: Mapping,
    pub user: Mapping,
}

/// The generated cluster entry: the rewritten server and the parent cluster's
/// TLS and transport settings, which still apply to the parent apiserver the
/// requests go to (CA embedded as data so the file is self-contained).
pub fn cluster_entry(parent: &Cluster, server: String, ca_data: Option<String>) -> Mapping {
    let mut map = Mapping::new();
    // Keys in kubectl's (alphabetical) order.
    if let Some(ca) = ca_data {
        map.insert("certificate-authority-data".into(), ca.into());
    }
    if let Some(b) = parent.disable_compression {
        map.insert("disable-compression".into(), b.into());
    }
    if let Some(ext) = &parent.extensions {
        map.insert("extensions".into(), ext.clone());
    }
    if let Some(b) = parent.insecure_skip_tls_verify {
        map.insert("insecure-skip-tls-verify".into(), b.into());
    }
    if let Some(p) = parent.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        map.insert("proxy-url".into(), p.into());
    }
    map.insert("server".into(), server.into());
    if let Some(n) = parent.tls_server_name.as_deref().filter(|n| !n.is_empty()) {
        map.insert("tls-server-name".into(), n.into());
    }
    map
}

/// The generated context entry; the parent context's namespace and
/// extensions are kept.
pub fn context_entry(name: &str, namespace: Option<&str>, extensions: Option<&Value>) -> Mapping {
    let mut map = Mapping::new();
    map.insert("cluster".into(), name.into());
    if let Some(ext) = extensions {
        map.insert("extensions".into(), ext.clone());
    }
    if let Some(ns) = namespace {
        map.insert("namespace".into(), ns.into());
    }
    map.insert("user".into(), name.into());
    map
}

/// `{name: ..., <kind>: body}`, in kubectl's key order.
pub fn named(kind: &str, name: &str, body: &Mapping) -> Value {
    let mut map = Mapping::new();
    if kind < "name" {
        map.insert(kind.into(), Value::Mapping(body.clone()));
        map.insert("name".into(), name.into());
    } else {
        map.insert("name".into(), name.into());
        map.insert(kind.into(), Value::Mapping(body.clone()));
    }
    Value::Mapping(map)
}

/// A complete kubeconfig holding only `entries` (one context per child), with
/// `current` as its current context (kubectl writes `""` for none).
pub fn document(entries: &[Entries], current: Option<&str>) -> Value {
    let list = |kind: &str, body: fn(&Entries) -> &Mapping| {
        Value::Sequence(entries.iter().map(|e| named(kind, &e.name, body(e))).collect())
    };
    let mut map = Mapping::new();
    map.insert("apiVersion".into(), "v1".into());
    map.insert("clusters".into(), list("cluster", |e| &e.cluster));
    map.insert("contexts".into(), list("context", |e| &e.context));
    map.insert("current-context".into(), current.unwrap_or_default().into());
    map.insert("kind".into(), "Config".into());
    map.insert("preferences".into(), Value::Mapping(Mapping::new()));
    map.insert("users".into(), list("user", |e| &e.user));
    Value::Mapping(map)
}

/// The text formats a kubeconfig is written in (kubectl reads both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The document as text in the requested format, ending in a newline.
pub fn render(doc: &Value, format: Format) -> Result<String> {
    match format {
        Format::Yaml => Ok(yaml::to_yaml(doc)),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(doc).context("rendering JSON")?;
            text.push('\n');
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Entries {
        let parent = Cluster {
            server: Some("https://p".into()),
            tls_server_name: Some("kubernetes".into()),
            insecure_skip_tls_verify: Some(false),
            proxy_url: Some("socks5://proxy:1080".into()),
            disable_compression: Some(true),
            ..Default::default()
        };
        Entries {
            name: "clusternet-x".into(),
            cluster: cluster_entry(&parent, "https://p/apis/x".into(), Some("Q0E=".into())),
            context: context_entry("clusternet-x", Some("dev"), None),
            user: serde_yaml::from_str("username: system:anonymous").unwrap(),
        }
    }

    #[test]
    fn document_layout() {
        let text = render(&document(&[entries()], Some("clusternet-x")), Format::Yaml).unwrap();
        assert_eq!(
            text,
            "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    disable-compression: true
    insecure-skip-tls-verify: false
    proxy-url: socks5://proxy:1080
    server: https://p/apis/x
    tls-server-name: kubernetes
  name: clusternet-x
contexts:
- context:
    cluster: clusternet-x
    namespace: dev
    user: clusternet-x
  name: clusternet-x
current-context: clusternet-x
kind: Config
preferences: {}
users:
- name: clusternet-x
  user:
    username: system:anonymous
"
        );
    }

    #[test]
    fn json_is_the_same_document() {
        let doc = document(&[entries()], Some("clusternet-x"));
        let json = render(&doc, Format::Json).unwrap();
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
    }
}
