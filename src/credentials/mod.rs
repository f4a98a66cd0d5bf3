//! Credentials: the child's travel as impersonation extras, the parent's
//! authenticate the request to the parent apiserver.
//!
//! The generated user entry impersonates `clusternet` and carries the child
//! credentials as user extras (as Clusternet's hub writes them itself, in its
//! `pkg/utils/kubeconfig.go`). kubectl turns each extra into an
//! `Impersonate-Extra-<Key>` header; the hub reads them back to build the
//! request to the child.

pub mod child;
pub mod file;
pub mod oidc;
pub mod origin;
pub mod parent;
pub mod validate;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_yaml::{Mapping, Value};

use crate::notes;

pub use child::{ChildCredentials, ChildSource};
pub use parent::{ParentAuth, TokenSource};

/// The user the parent impersonates; Clusternet's RBAC allows exactly this one.
pub const IMPERSONATED_USER: &str = "clusternet";
/// The child's bearer token, as is.
pub const EXTRA_TOKEN: &str = "clusternet-token";
/// The child's client certificate PEM, standard base64 (the hub uses Go's `base64.StdEncoding`).
pub const EXTRA_CERTIFICATE: &str = "clusternet-certificate";
/// The matching private key PEM, standard base64.
pub const EXTRA_PRIVATE_KEY: &str = "clusternet-privatekey";

/// Impersonation fields a kept parent user may already have. They are replaced:
/// the parent authorizes impersonating `clusternet` with the three extras only,
/// so an `Impersonate-Group` or `Impersonate-Uid` would be refused with 403.
const IMPERSONATION_KEYS: &[&str] = &["as", "as-groups", "as-uid", "as-user-extra"];

/// The `as-user-extra` mapping for the child credentials, keys sorted.
pub fn extras(child: &ChildCredentials) -> Mapping {
    let one = |v: String| Value::Sequence(vec![Value::String(v)]);
    let mut map = Mapping::new();
    match child {
        ChildCredentials::Token(token) => {
            map.insert(EXTRA_TOKEN.into(), one(token.expose().to_string()));
        }
        ChildCredentials::ClientCertificate { cert_pem, key_pem } => {
            map.insert(EXTRA_CERTIFICATE.into(), one(STANDARD.encode(cert_pem)));
            map.insert(EXTRA_PRIVATE_KEY.into(), one(STANDARD.encode(key_pem.expose())));
        }
    }
    map
}

/// The generated user entry (the `user:` mapping), keys in sorted order like
/// `kubectl config view`. A replaced impersonation field is reported as a note.
pub fn user_entry(parent: &ParentAuth, child: &ChildCredentials) -> Mapping {
    let mut fields: Vec<(String, Value)> = match parent {
        ParentAuth::Anonymous => vec![("username".into(), "system:anonymous".into())],
        ParentAuth::Token(token) => vec![("token".into(), token.expose().into())],
        ParentAuth::Oidc { exec } => vec![("exec".into(), Value::Mapping(exec.clone()))],
        ParentAuth::Keep { user_name, user } => {
            let mut kept = Vec::new();
            for (key, value) in user {
                let key = match key {
                    Value::String(k) => k.clone(),
                    other => crate::kubeconfig::yaml::to_yaml(other).trim_end().to_string(),
                };
                if IMPERSONATION_KEYS.contains(&key.as_str()) {
                    notes::push(format!(
                        "note: parent user {user_name:?} had {key}; replaced by the impersonation of {IMPERSONATED_USER}"
                    ));
                    continue;
                }
                kept.push((key, value.clone()));
            }
            kept
        }
    };
    fields.push(("as".into(), IMPERSONATED_USER.into()));
    fields.push(("as-user-extra".into(), Value::Mapping(extras(child))));
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
}

/// Puts `child` in place of the child credentials of a generated user entry
/// (the `as-user-extra` mapping), leaving the parent side as it is.
pub fn replace_child(user: &mut Mapping, child: &ChildCredentials) {
    user.insert("as-user-extra".into(), Value::Mapping(extras(child)));
}

/// Which credential of the parent kubeconfig's user `child` repeats, if any.
/// The hub hands the child credentials to the child cluster: the parent
/// user's own token given as a child's (a `--credentials` entry pointing at
/// the parent kubeconfig, say) would let that child act as the parent user on
/// the parent. `parent_user` is the selected parent user, flattened (inline
/// `token` and `client-certificate-data`). A `--parent-token` given as the
/// child token too is the caller's explicit choice, not checked here.
pub fn reused_parent_credential(child: &ChildCredentials, parent_user: &Mapping) -> Option<&'static str> {
    let text = |key: &str| parent_user.get(key).and_then(Value::as_str);
    match child {
        ChildCredentials::Token(token) => (text("token") == Some(token.expose())).then_some("token"),
        ChildCredentials::ClientCertificate { cert_pem, .. } => {
            let parent_pem = validate::base64_data(text("client-certificate-data")?, "").ok()?;
            let der = |pem: &[u8]| validate::first_certificate(pem);
            (der(&parent_pem).is_some() && der(&parent_pem) == der(cert_pem.as_bytes())).then_some("client certificate")
        }
    }
}

/// Fields of a user entry that are never secret, and that the parent quotes in
/// its refusals (`users "clusternet" is forbidden: User "system:anonymous"
/// ...`): redacting them would hide who was refused.
const NOT_SECRET: &[&str] = &[
    "as",
    "as-groups",
    "as-uid",
    "username",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "tokenFile",
];

/// Every string of a user entry that may be a secret, to redact from what a
/// server says (`verify`, `gen --verify`).
/// The provenance record holds no secret, and its words (`token`, `file`)
/// must not be blotted out of a server's message.
pub fn secrets_in(user: &Mapping) -> Vec<String> {
    let mut out = Vec::new();
    collect_fields(&crate::kubeconfig::provenance::detach(user), &mut out);
    out
}

/// A user entry for a trace line: every field that may hold a secret (all
/// but `NOT_SECRET`, the same rule as [`secrets_in`]) is shown as
/// `<redacted>`, the others in short.
pub fn redacted(user: &Mapping) -> String {
    let shown: Vec<String> = user
        .iter()
        .map(|(k, v)| {
            let key = k.as_str().unwrap_or("?");
            if NOT_SECRET.contains(&key) { format!("{key}: {}", summary(v)) } else { format!("{key}: <redacted>") }
        })
        .collect();
    format!("{{{}}}", shown.join(", "))
}

fn summary(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() > 40 => format!("<{} chars>", s.len()),
        Value::String(s) => s.clone(),
        Value::Mapping(m) => format!("<{} keys>", m.len()),
        Value::Sequence(s) => format!("<{} items>", s.len()),
        other => format!("{other:?}"),
    }
}

/// The parent side of a generated user entry: the entry without its
/// impersonation of `clusternet` (and the child credentials in it), as
/// `refresh` keeps it.
pub fn parent_side(user: &Mapping) -> Mapping {
    user.iter()
        .filter(|(k, _)| k.as_str().is_none_or(|k| !IMPERSONATION_KEYS.contains(&k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn collect_fields(map: &Mapping, out: &mut Vec<String>) {
    map.iter()
        .filter(|(k, _)| k.as_str().is_none_or(|k| !NOT_SECRET.contains(&k)))
        .for_each(|(_, v)| collect_strings(v, out));
}

/// Every string under `value` except the values of [`NOT_SECRET`] fields.
fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Mapping(map) => collect_fields(map, out),
        Value::Tagged(t) => collect_strings(&t.value, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn token() -> ChildCredentials {
        ChildCredentials::Token(Secret::new("child-tok".into()))
    }

    #[test]
    fn anonymous_user_entry() {
        let u = user_entry(&ParentAuth::Anonymous, &token());
        let text = crate::kubeconfig::yaml::to_yaml(&Value::Mapping(u));
        assert_eq!(
            text,
            "as: clusternet\nas-user-extra:\n  clusternet-token:\n  - child-tok\nusername: system:anonymous\n"
        );
    }

    #[test]
    fn token_user_entry_has_no_username() {
        let u = user_entry(&ParentAuth::Token(Secret::new("p".into())), &token());
        assert_eq!(u.get("token").unwrap(), &Value::from("p"));
        assert!(u.get("username").is_none());
    }

    #[test]
    fn cert_extras_are_standard_base64() {
        let c = ChildCredentials::ClientCertificate { cert_pem: "CERT\n".into(), key_pem: Secret::new("KEY\n".into()) };
        let e = extras(&c);
        assert_eq!(e.get(EXTRA_CERTIFICATE).unwrap()[0], Value::from("Q0VSVAo="));
        assert_eq!(e.get(EXTRA_PRIVATE_KEY).unwrap()[0], Value::from("S0VZCg=="));
        let keys: Vec<_> = e.keys().collect();
        assert_eq!(keys, [&Value::from(EXTRA_CERTIFICATE), &Value::from(EXTRA_PRIVATE_KEY)]);
    }

    #[test]
    fn keep_replaces_existing_impersonation() {
        let user: Mapping =
            serde_yaml::from_str("client-certificate-data: QQ==\nas: someone\nas-groups: [g]\nzz: 1\n").unwrap();
        let u = user_entry(&ParentAuth::Keep { user_name: "admin".into(), user }, &token());
        let keys: Vec<&str> = u.keys().map(|k| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["as", "as-user-extra", "client-certificate-data", "zz"]);
        assert_eq!(u.get("as").unwrap(), &Value::from("clusternet"));
        assert_eq!(crate::notes::take().len(), 2);
    }

    #[test]
    fn reused_parent_credentials_are_found() {
        let (cert, key) = validate::tests::pair();
        let user: Mapping =
            serde_yaml::from_str(&format!("token: admin-tok\nclient-certificate-data: {}\n", STANDARD.encode(&cert)))
                .unwrap();
        let admin = ChildCredentials::Token(Secret::new("admin-tok".into()));
        let reused = |child: &ChildCredentials| reused_parent_credential(child, &user);
        assert_eq!(reused(&admin), Some("token"));
        assert_eq!(reused(&token()), None);
        let same_cert = ChildCredentials::ClientCertificate { cert_pem: cert, key_pem: Secret::new(key.clone()) };
        assert_eq!(reused(&same_cert), Some("client certificate"));
        let (other, _) = validate::tests::pair();
        let other_cert = ChildCredentials::ClientCertificate { cert_pem: other, key_pem: Secret::new(key) };
        assert_eq!(reused(&other_cert), None);
    }

    #[test]
    fn traces_show_names_and_redact_everything_else() {
        let user: Mapping = serde_yaml::from_str(
            "token: SECRET1\nas: clusternet\nas-user-extra: {clusternet-token: [SECRET2]}\nclient-key-data: SECRET3\n\
             username: system:anonymous\nexec: {env: [{name: X, value: SECRET4}]}\npassword: SECRET5\n",
        )
        .unwrap();
        let text = redacted(&user);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("as: clusternet") && text.contains("username: system:anonymous"), "{text}");
    }

    #[test]
    fn secrets_are_collected_names_are_not() {
        let user: Value = serde_yaml::from_str(
            "{as: clusternet, username: system:anonymous, token: PARENT, client-key-data: KEY, \
             as-user-extra: {clusternet-token: [CHILD]}, exec: {env: [{name: X, value: ENVSECRET}]}}",
        )
        .unwrap();
        let out = secrets_in(user.as_mapping().unwrap());
        for secret in ["PARENT", "KEY", "CHILD", "ENVSECRET"] {
            assert!(out.iter().any(|s| s == secret), "{secret} missing from {out:?}");
        }
        assert!(!out.iter().any(|s| s == "clusternet" || s == "system:anonymous"), "{out:?}");
    }
}
