//! The parts of a kubeconfig this tool reads, typed.
//!
//! Modelled on kube-rs' `kube_client::config::Kubeconfig`, with two differences
//! that matter here: user entries stay a raw YAML mapping (with `--parent-auth
//! keep` they are copied as they are, unknown fields included, and their secret
//! values must never pass through serde's error messages, which quote values),
//! and nothing uses a `HashMap`, so that output order never depends on hashing.
//! Every field kubectl decodes is checked as kubectl's encoding/json decoding
//! checks it (types, base64 of `*-data`, unique extension names), also where
//! generation does not use it (`preferences`, user fields), so that what
//! kubectl refuses is refused here too, before anything is written. A merge
//! target is checked with this model, then edited as a raw value (see
//! `upsert::apply`), so nothing in it is lost.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_yaml::{Mapping, Value};

/// One kubeconfig file, as read.
#[derive(Debug, Clone, Default, Deserialize)]
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
    // Checked on reading, as kubectl checks them, and never used: hence
    // the underscores.
    #[serde(default, rename = "preferences", deserialize_with = "checked")]
    pub _preferences: Option<Preferences>,
    #[serde(default, rename = "extensions", deserialize_with = "extension_list")]
    pub _extensions: Option<Value>,
}

/// `preferences`, checked only.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Preferences {
    #[serde(default, rename = "colors")]
    pub _colors: Option<bool>,
    #[serde(default, rename = "extensions", deserialize_with = "extension_list")]
    pub _extensions: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedCluster {
    #[serde(default, deserialize_with = "null_as_default")]
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
    #[serde(default, deserialize_with = "base64_bytes")]
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
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "auth_info")]
    pub user: Mapping,
}

/// The fields of a user entry as kubectl types them (client-go `AuthInfo`),
/// to check a user entry as kubectl would; the entry itself stays raw.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
struct AuthInfo<'a> {
    #[serde(default)]
    client_certificate: Option<&'a str>,
    #[serde(default, deserialize_with = "base64_checked")]
    client_certificate_data: (),
    #[serde(default)]
    client_key: Option<&'a str>,
    #[serde(default, deserialize_with = "base64_checked")]
    client_key_data: (),
    #[serde(default)]
    token: Option<&'a str>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<&'a str>,
    #[serde(default, rename = "as")]
    impersonate: Option<&'a str>,
    #[serde(default, rename = "as-uid")]
    impersonate_uid: Option<&'a str>,
    #[serde(default, rename = "as-groups")]
    impersonate_groups: Option<Vec<&'a str>>,
    #[serde(default, rename = "as-user-extra")]
    impersonate_user_extra: Option<std::collections::BTreeMap<&'a str, Option<Vec<&'a str>>>>,
    #[serde(default)]
    username: Option<&'a str>,
    #[serde(default)]
    password: Option<&'a str>,
    #[serde(default, rename = "auth-provider")]
    auth_provider: Option<AuthProvider<'a>>,
    #[serde(default)]
    exec: Option<Exec<'a>>,
    #[serde(default, deserialize_with = "extension_list")]
    extensions: Option<Value>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct AuthProvider<'a> {
    #[serde(default)]
    name: Option<&'a str>,
    #[serde(default)]
    config: Option<std::collections::BTreeMap<&'a str, Option<&'a str>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Exec<'a> {
    #[serde(default)]
    command: Option<&'a str>,
    #[serde(default)]
    args: Option<Vec<Option<&'a str>>>,
    #[serde(default)]
    env: Option<Vec<ExecEnv<'a>>>,
    #[serde(default)]
    api_version: Option<&'a str>,
    #[serde(default)]
    install_hint: Option<&'a str>,
    #[serde(default)]
    provide_cluster_info: Option<bool>,
    #[serde(default)]
    interactive_mode: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ExecEnv<'a> {
    #[serde(default)]
    name: Option<&'a str>,
    #[serde(default)]
    value: Option<&'a str>,
}

/// A user entry kept raw, after checking it as kubectl's `AuthInfo`.
fn auth_info<'de, D>(deserializer: D) -> Result<Mapping, D::Error>
where
    D: Deserializer<'de>,
{
    let user = Value::Mapping(Option::<Mapping>::deserialize(deserializer)?.unwrap_or_default());
    // Borrowed: nothing of a (large) user entry is copied to check it.
    AuthInfo::deserialize(&user).map_err(serde::de::Error::custom)?;
    match user {
        Value::Mapping(user) => Ok(user),
        _ => Ok(Mapping::new()),
    }
}

/// [`base64_bytes`] for a field only checked, borrowing its text.
fn base64_checked<'de, D>(deserializer: D) -> Result<(), D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<&'de str>::deserialize(deserializer)? {
        Some(text) if !is_base64(text) => Err(not_base64()),
        _ => Ok(()),
    }
}

fn not_base64<E: serde::de::Error>() -> E {
    E::custom("is not base64 (kubectl decodes this field as base64)")
}

/// Whether encoding/json decodes `text` as a `[]byte`: standard base64,
/// padding required, line breaks ignored. Checked without copying the text
/// unless it has line breaks (a large kubeconfig has thousands of these).
fn is_base64(text: &str) -> bool {
    use base64::Engine as _;
    let compact: Cow<str> =
        if text.contains(['\r', '\n']) { text.replace(['\r', '\n'], "").into() } else { Cow::Borrowed(text) };
    let mut buf = Vec::with_capacity(compact.len() * 3 / 4 + 3);
    base64::engine::general_purpose::STANDARD.decode_vec(compact.as_bytes(), &mut buf).is_ok()
}

/// A field only checked: null or missing is `None`.
fn checked<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// A `[]byte` field of kubectl's types: a JSON string that encoding/json
/// decodes as standard base64 (padding required, line breaks ignored). kubectl
/// refuses a kubeconfig where it is not; so do we. Kept as the text it is.
fn base64_bytes<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<String>::deserialize(deserializer)? {
        Some(text) if !is_base64(&text) => Err(not_base64()),
        text => Ok(text),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamedContext {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub context: Context,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Kept through minification, as `kubectl config view --minify` keeps it.
    #[serde(default, deserialize_with = "extension_list")]
    pub extensions: Option<Value>,
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
        Some(Value::Sequence(items)) => {
            // kubectl turns the list into a map by name: a name twice is an error.
            let mut names = std::collections::HashSet::new();
            for item in &items {
                let name = match item.get("name") {
                    None | Some(Value::Null) => "",
                    Some(Value::String(name)) => name.as_str(),
                    Some(_) => return Err(serde::de::Error::custom("an extension name must be a string")),
                };
                if !names.insert(name.to_string()) {
                    return Err(serde::de::Error::custom(format!(
                        "two extensions are named {name:?}; kubectl refuses such a file too"
                    )));
                }
            }
            Ok(Some(Value::Sequence(items)))
        }
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
