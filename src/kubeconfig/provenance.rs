//! What a generated entry records about itself: the provenance extension.
//!
//! Every context `gen` writes carries, in its `extensions` list, a named
//! extension [`EXTENSION_NAME`] whose value says which tool wrote it, from
//! which parent, for which child, through which route, and with which kind
//! of credential from which source, and when that credential expires. Never
//! a secret value: paths and names only. kubectl keeps extensions (it reads
//! them as raw JSON and writes them back), so the record survives `kubectl
//! config` edits; `status`, `refresh` and `prune` find generated entries by
//! it and leave every other entry alone.
//!
//! One record per generated entry, on the context only: the context is what
//! `status`, `refresh` and `prune` list, what `kubectl config view --minify`
//! keeps with its cluster and user, and what names them. `gen` gives the
//! three entries one name, so the cluster and user entries a generated
//! context names under its own name are generated too. Files written by
//! earlier versions carry the record on the cluster and user entries as
//! well; it is still read there (and dropped when `refresh` rewrites them).
//!
//! The value is written with its keys sorted at every level, as kubectl
//! writes an extension back (it goes through JSON, whose maps it sorts), so
//! that what we write and what kubectl shows are the same text; and no
//! generation timestamp, so that the same inputs give the same bytes.
//!
//! This module is pure: values in, values out.

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::clock::{self, Timestamp};
use crate::names::ObjectRef;

/// The name of the extension, in every generated entry's `extensions` list.
pub const EXTENSION_NAME: &str = "kubeconfig.clusternet.io/provenance";

/// The `generator` this tool writes.
pub const GENERATOR: &str = "clusternet-kubeconfig";

/// The record, as this tool reads and writes it. Every field is optional on
/// reading: a record from another version (or edited by hand) is used for
/// what it says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
    #[serde(default, rename = "clusterID", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The ManagedCluster, when it was looked up on the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_cluster: Option<ObjectRef>,
    /// `direct`, `https/<host[:port]>[/path]` or `http/...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// The parent the entry was generated from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent cluster's server URL, without user info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The parent kubeconfig's context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// The child credential the entry carries: its kind, where it came from,
/// when it expires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The file read: `file` and `credentials-file` sources. For a client
    /// certificate from PEM files, the certificate's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The private key's file, for a client certificate from PEM files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    /// `kubeconfig` when `path` is a child kubeconfig (its user's credential
    /// was taken); absent for a token file or PEM files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The context of that child kubeconfig, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The Secret on the parent that held the credential (`hub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The TokenRequest that made the token (`token-request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_request: Option<TokenRequest>,
    /// RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The value of `credential.format` for a child kubeconfig.
pub const FORMAT_KUBECONFIG: &str = "kubeconfig";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Token,
    Certificate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Certificate => "certificate",
        }
    }
}

/// Where the child credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag (`--token`, `--client-*-data`).
    Flag,
    /// The environment (`CLUSTERNET_CHILD_TOKEN`).
    Env,
    /// Standard input (`--token-file -`).
    Stdin,
    /// A file named by a flag (`--token-file`, `--client-certificate`/`--client-key`,
    /// `--child-kubeconfig`).
    File,
    /// An entry of `--credentials`.
    CredentialsFile,
    /// A Secret on the parent, held by the hub.
    Hub,
    /// A TokenRequest to the child, made with another credential.
    TokenRequest,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Stdin => "stdin",
            Source::File => "file",
            Source::CredentialsFile => "credentials-file",
            Source::Hub => "hub",
            Source::TokenRequest => "token-request",
        }
    }
}

/// The service-account token request a `token-request` credential came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub service_account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// The source of the credential the request was made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Source>,
}

impl Provenance {
    /// A record of this tool, this version.
    pub fn new() -> Provenance {
        Provenance {
            generator: Some(GENERATOR.to_string()),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            ..Default::default()
        }
    }

    /// The extension's value, keys sorted at every level (see the module
    /// documentation).
    pub fn to_value(&self) -> Value {
        // serde_json's map is ordered by key: the sort comes with it.
        let json = serde_json::to_value(self).unwrap_or_default();
        serde_yaml::to_value(json).unwrap_or_default()
    }

    /// Reads a record; `None` when the value is not one (wrong types).
    pub fn from_value(value: &Value) -> Option<Provenance> {
        serde_yaml::from_value(value.clone()).ok()
    }

    /// When the credential expires, if known and readable.
    pub fn expires(&self) -> Option<Timestamp> {
        self.credential.as_ref()?.expires.as_deref().and_then(clock::parse_rfc3339)
    }
}

/// What an entry's `extensions` says about provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Not generated by this tool: no provenance extension.
    None,
    /// The extension is there but cannot be read as a record.
    Unreadable,
    Record(Box<Provenance>),
}

/// The provenance of an entry (the `cluster:`, `user:` or `context:` mapping).
pub fn find(entry: &Mapping) -> Found {
    find_in(entry.get("extensions"))
}

/// The provenance in an `extensions` list.
pub fn find_in(extensions: Option<&Value>) -> Found {
    let Some(Value::Sequence(items)) = extensions else {
        return Found::None;
    };
    let Some(item) = items.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(EXTENSION_NAME)) else {
        return Found::None;
    };
    match item.get("extension").and_then(Provenance::from_value) {
        Some(record) => Found::Record(Box::new(record)),
        None => Found::Unreadable,
    }
}

/// `entry` with the record in its `extensions` list: one already there is
/// replaced where it stands, else the record is appended (other extensions,
/// copied from the parent, are kept). A new `extensions` key is put in
/// alphabetical place, as kubectl orders an entry's keys.
pub fn attach(entry: &Mapping, record: &Provenance) -> Mapping {
    let item = |record: &Provenance| {
        let mut m = Mapping::new();
        m.insert("extension".into(), record.to_value());
        m.insert("name".into(), EXTENSION_NAME.into());
        Value::Mapping(m)
    };
    let mut out = entry.clone();
    match out.get_mut("extensions") {
        Some(Value::Sequence(items)) => {
            match items.iter_mut().find(|i| i.get("name").and_then(Value::as_str) == Some(EXTENSION_NAME)) {
                Some(existing) => *existing = item(record),
                None => items.push(item(record)),
            }
            out
        }
        _ => {
            let mut sorted: Vec<(Value, Value)> = out.into_iter().filter(|(k, _)| k != "extensions").collect();
            sorted.push(("extensions".into(), Value::Sequence(vec![item(record)])));
            sorted.sort_by(|a, b| a.0.as_str().unwrap_or_default().cmp(b.0.as_str().unwrap_or_default()));
            sorted.into_iter().collect()
        }
    }
}

/// `entry` without the record (every other extension kept; an emptied list
/// removed).
pub fn detach(entry: &Mapping) -> Mapping {
    let mut out = entry.clone();
    if let Some(Value::Sequence(items)) = out.get_mut("extensions") {
        items.retain(|i| i.get("name").and_then(Value::as_str) != Some(EXTENSION_NAME));
        if items.is_empty() {
            out.remove("extensions");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Provenance {
        Provenance {
            parent: Some(ParentRef { server: Some("https://p:6443".into()), context: Some("admin".into()) }),
            cluster_id: Some("dc91021d-2361-4f6d-a404-7c33b9e01118".into()),
            managed_cluster: Some(ObjectRef { namespace: "ns".into(), name: "child".into() }),
            route: Some("direct".into()),
            credential: Some(Credential {
                kind: Some(Kind::Token),
                source: Some(Source::CredentialsFile),
                path: Some("/c.yaml".into()),
                expires: Some("2026-11-29T13:00:00Z".into()),
                ..Default::default()
            }),
            ..Provenance::new()
        }
    }

    #[test]
    fn keys_are_sorted_and_camel_case() {
        let text = crate::kubeconfig::yaml::to_yaml(&record().to_value());
        assert_eq!(
            text,
            format!(
                "clusterID: dc91021d-2361-4f6d-a404-7c33b9e01118
credential:
  expires: \"2026-11-29T13:00:00Z\"
  kind: token
  path: /c.yaml
  source: credentials-file
generator: clusternet-kubeconfig
managedCluster:
  name: child
  namespace: ns
parent:
  context: admin
  server: https://p:6443
route: direct
version: \"{}\"
",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn round_trips_through_an_entry() {
        let entry: Mapping =
            serde_yaml::from_str("server: https://x\nextensions: [{name: other, extension: 1}]").unwrap();
        let with = attach(&entry, &record());
        assert_eq!(find(&with), Found::Record(Box::new(record())));
        assert_eq!(with["extensions"].as_sequence().unwrap().len(), 2);
        let again = attach(&with, &Provenance::new());
        assert_eq!(again["extensions"].as_sequence().unwrap().len(), 2, "replaced, not added");
        assert_eq!(detach(&again), entry);
        let bare: Mapping = serde_yaml::from_str("a: 1\nz: 2").unwrap();
        let keys: Vec<_> = attach(&bare, &record()).keys().map(|k| k.as_str().unwrap().to_string()).collect();
        assert_eq!(keys, ["a", "extensions", "z"]);
        assert!(detach(&attach(&bare, &record())).get("extensions").is_none());
        assert_eq!(find(&bare), Found::None);
        let odd: Mapping =
            serde_yaml::from_str(&format!("extensions: [{{name: {EXTENSION_NAME}, extension: [1]}}]")).unwrap();
        assert_eq!(find(&odd), Found::Unreadable);
    }

    #[test]
    fn hub_and_token_request_variants() {
        let p = Provenance {
            credential: Some(Credential {
                kind: Some(Kind::Token),
                source: Some(Source::TokenRequest),
                token_request: Some(TokenRequest {
                    namespace: "ci".into(),
                    service_account: "deployer".into(),
                    ttl_seconds: Some(3600),
                    base: Some(Source::Hub),
                }),
                secret: Some(ObjectRef { namespace: "clusternet-abc".into(), name: "child-cluster-deployer".into() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = crate::kubeconfig::yaml::to_yaml(&p.to_value());
        assert!(text.contains("source: token-request") && text.contains("ttlSeconds: 3600"), "{text}");
        assert!(text.contains("serviceAccount: deployer") && text.contains("base: hub"), "{text}");
        assert_eq!(Provenance::from_value(&p.to_value()), Some(p));
    }
}
