//! The parts of a kubeconfig this tool reads, typed.
//!
//! Modelled on kube-rs' `kube_client::config::Kubeconfig`, with two differences
//! that matter here: user entries stay a raw YAML mapping (with `--parent-auth
//! keep` they are copied as they are, unknown fields included, and their secret
//! values must never pass through serde's error messages, which quote values),
//! and nothing uses a `HashMap`, so that output order never depends on hashing.
//! Top-level fields that generation does not need (`preferences`, `extensions`)
//! are ignored when reading a parent; a merge target is handled as a raw
//! `serde_yaml::Value` instead (see `write::merge`), so nothing in it is lost.

use serde::{Deserialize, Deserializer};
use serde_yaml::{Mapping, Value};

/// One kubeconfig file, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    #[serde(default)]
    pub kind: Option<String>,
    // Not kebab-case: the field is `apiVersion`.
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub current_context: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<NamedUser>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster: Cluster,
}

/// A cluster entry: the fields that are carried into the generated kubeconfig.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub certificate_authority: Option<String>,
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
    #[serde(default, deserialize_with = "plain_bool")]
    pub insecure_skip_tls_verify: Option<bool>,
    #[serde(default)]
    pub tls_server_name: Option<String>,
    #[serde(default)]
    pub proxy_url: Option<String>,
    #[serde(default, deserialize_with = "plain_bool")]
    pub disable_compression: Option<bool>,
    #[serde(default, deserialize_with = "extension_list")]
    pub extensions: Option<Value>,
}

/// A user entry, kept raw: see the module documentation.
#[derive(Debug, Clone, Deserialize)]
pub struct NamedUser {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: Mapping,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedContext {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub context: Context,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `extensions` is kept as it is, but must be a list (of named extensions), as
/// kubectl requires: anything else would be copied into a generated kubeconfig
/// that kubectl then refuses to read.
fn extension_list<'de, D>(deserializer: D) -> Result<Option<Value>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(list @ Value::Sequence(_)) => Ok(Some(list)),
        Some(_) => {
            Err(serde::de::Error::custom("extensions must be a list of named extensions (- name: ..., extension: ...)"))
        }
    }
}

/// A boolean written as one (`true`, not `"true"`): kubectl refuses a quoted
/// string there, and every YAML parser here must agree on that.
fn plain_bool<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Plain;
    impl<'de> serde::de::Visitor<'de> for Plain {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean (true or false)")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Plain)
}

/// kubectl treats `clusters: null` like a missing list; so do we.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_is_read() {
        let k: Kubeconfig = serde_yaml::from_str("apiVersion: v1").unwrap();
        assert_eq!(k.api_version.as_deref(), Some("v1"));
        assert!(serde_yaml::from_str::<Kubeconfig>("apiVersion: {v: 1}").is_err());
    }

    #[test]
    fn extensions_must_be_a_list() {
        let c: Cluster = serde_yaml::from_str("extensions: [{name: a, extension: {x: 1}}]").unwrap();
        assert!(matches!(c.extensions, Some(Value::Sequence(_))));
        let c: Cluster = serde_yaml::from_str("extensions: null").unwrap();
        assert!(c.extensions.is_none());
        let err = serde_yaml::from_str::<Cluster>("extensions: 5").unwrap_err().to_string();
        assert!(err.contains("must be a list of named extensions"), "{err}");
    }
}
