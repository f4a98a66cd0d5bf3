//! Making entries self-contained: file references become inline data.
//!
//! kubectl resolves a relative reference against the directory of the file the
//! entry came from (client-go `ResolveLocalPaths`); so do we. The generated
//! kubeconfig may be copied to another machine, so every file it would need is
//! embedded, as `kubectl config view --flatten` does.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_yaml::{Mapping, Value};

use super::model::Cluster;
use crate::fs::read_path;

/// `reference` resolved against `base` when it is relative.
pub fn resolve(reference: &str, base: &Path) -> PathBuf {
    let path = Path::new(reference);
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

/// Reads a referenced file. `what` says where the reference is, e.g.
/// `certificate-authority of cluster "prod"`; it starts every message.
pub fn read_reference(reference: &str, base: &Path, what: &str) -> Result<Vec<u8>> {
    read_path(&resolve(reference, base)).with_context(|| what.to_owned())
}

/// The cluster's CA bundle as inline base64 data, or `None` when it has none.
/// Inline data wins over a file, as in client-go.
pub fn ca_data(cluster: &Cluster, base: &Path, cluster_name: &str) -> Result<Option<String>> {
    if let Some(data) = cluster.certificate_authority_data.as_deref().filter(|d| !d.is_empty()) {
        return Ok(Some(data.to_string()));
    }
    match cluster.certificate_authority.as_deref().filter(|p| !p.is_empty()) {
        Some(reference) => {
            let what = format!("certificate-authority of cluster {cluster_name:?}");
            Ok(Some(STANDARD.encode(read_reference(reference, base, &what)?)))
        }
        None => Ok(None),
    }
}

/// A copy of a user entry with `client-certificate`, `client-key` and
/// `tokenFile` embedded as `client-certificate-data`, `client-key-data` and
/// `token`, and a relative exec command made absolute. Everything else is kept
/// as it is, unknown fields included.
pub fn flatten_user(user: &Mapping, base: &Path, user_name: &str) -> Result<Mapping> {
    let mut out = user.clone();
    embed(&mut out, base, user_name, "client-certificate", "client-certificate-data", Encoding::Base64)?;
    embed(&mut out, base, user_name, "client-key", "client-key-data", Encoding::Base64)?;
    embed(&mut out, base, user_name, "tokenFile", "token", Encoding::TrimmedText)?;
    absolutise_exec_command(&mut out, base);
    Ok(out)
}

enum Encoding {
    Base64,
    /// kubectl trims whitespace around a token read from a file.
    TrimmedText,
}

fn embed(
    user: &mut Mapping,
    base: &Path,
    user_name: &str,
    file_key: &str,
    data_key: &str,
    encoding: Encoding,
) -> Result<()> {
    let Some(reference) = user.remove(file_key) else {
        return Ok(());
    };
    let what = format!("users[{user_name:?}].user.{file_key}");
    let reference = match reference {
        Value::String(reference) => reference,
        Value::Null => return Ok(()),
        _ => bail!("{what} must be a string (a file path)"),
    };
    // An empty inline field is unset, as for client-go (`token: ""`).
    let inline = user.get(data_key).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
    if reference.is_empty() {
        return Ok(());
    }
    let value = match encoding {
        // Inline certificate and key data win over the files (client-go's
        // `dataFromSliceOrFile`).
        Encoding::Base64 if inline => return Ok(()),
        Encoding::Base64 => STANDARD.encode(read_reference(&reference, base, &what)?),
        // A readable token file wins over an inline token: client-go reads
        // the file on every request and falls back to the inline token only
        // when it cannot (`NewBearerAuthWithRefreshRoundTripper`).
        Encoding::TrimmedText => match read_reference(&reference, base, &what) {
            Ok(bytes) => {
                String::from_utf8(bytes).map_err(|_| anyhow!("the token file is not UTF-8 text"))?.trim().to_string()
            }
            Err(_) if inline => return Ok(()),
            Err(e) => return Err(e),
        },
    };
    user.insert(Value::String(data_key.to_string()), Value::String(value));
    Ok(())
}

/// client-go resolves an exec command against the kubeconfig's directory only
/// when it is a relative path with a separator (`./bin/helper`), not a bare
/// name looked up in PATH.
fn absolutise_exec_command(user: &mut Mapping, base: &Path) {
    let Some(Value::Mapping(exec)) = user.get_mut("exec") else {
        return;
    };
    let Some(Value::String(command)) = exec.get_mut("command") else {
        return;
    };
    if command.contains('/') && !Path::new(command.as_str()).is_absolute() {
        *command = base.join(command.as_str()).display().to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn user(text: &str) -> Mapping {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn embeds_relative_references_against_the_base() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("pki")).unwrap();
        fs::write(dir.path().join("pki/c.crt"), "CERT").unwrap();
        fs::write(dir.path().join("pki/c.key"), "KEY").unwrap();
        fs::write(dir.path().join("tok"), "  abc\n").unwrap();
        let u = user("client-certificate: pki/c.crt\nclient-key: pki/c.key\ntokenFile: tok\nextra-field: 1\n");
        let out = flatten_user(&u, dir.path(), "u").unwrap();
        assert_eq!(out.get("client-certificate-data").unwrap(), &Value::from(STANDARD.encode("CERT")));
        assert_eq!(out.get("client-key-data").unwrap(), &Value::from(STANDARD.encode("KEY")));
        assert_eq!(out.get("token").unwrap(), &Value::from("abc"));
        assert!(out.get("client-certificate").is_none() && out.get("tokenFile").is_none());
        assert_eq!(out.get("extra-field").unwrap(), &Value::from(1));
    }

    #[test]
    fn inline_data_wins_and_exec_paths_resolve() {
        let u = user("client-certificate: missing.crt\nclient-certificate-data: QQ==\nexec: {command: ./bin/auth}\n");
        let out = flatten_user(&u, Path::new("/cfg"), "u").unwrap();
        assert_eq!(out.get("client-certificate-data").unwrap(), &Value::from("QQ=="));
        assert_eq!(out["exec"]["command"], Value::from("/cfg/./bin/auth"));
        let bare = flatten_user(&user("exec: {command: gke-gcloud-auth-plugin}\n"), Path::new("/cfg"), "u").unwrap();
        assert_eq!(bare["exec"]["command"], Value::from("gke-gcloud-auth-plugin"));
    }

    #[test]
    fn empty_inline_fields_are_unset_and_a_readable_token_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("tok"), "FILE\n").unwrap();
        fs::write(dir.path().join("c.crt"), "CERT").unwrap();
        let u = user("token: INLINE\ntokenFile: tok\nclient-certificate-data: \"\"\nclient-certificate: c.crt\n");
        let out = flatten_user(&u, dir.path(), "u").unwrap();
        assert_eq!(out.get("token").unwrap(), &Value::from("FILE"));
        assert_eq!(out.get("client-certificate-data").unwrap(), &Value::from(STANDARD.encode("CERT")));
        // An unreadable token file: the inline token, as client-go falls back to it.
        let u = user("token: INLINE\ntokenFile: missing\n");
        assert_eq!(flatten_user(&u, dir.path(), "u").unwrap().get("token").unwrap(), &Value::from("INLINE"));
        let u = user("token: \"\"\ntokenFile: missing\n");
        assert!(flatten_user(&u, dir.path(), "u").is_err());
    }

    #[test]
    fn missing_reference_names_field_and_file() {
        let err = flatten_user(&user("client-key: nope.key\n"), Path::new("/cfg"), "admin").unwrap_err();
        assert_eq!(format!("{err:#}"), "users[\"admin\"].user.client-key: file /cfg/nope.key does not exist");
    }

    #[test]
    fn ca_file_is_embedded() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        let c = Cluster { certificate_authority: Some("ca.crt".into()), ..Default::default() };
        assert_eq!(ca_data(&c, dir.path(), "p").unwrap(), Some(STANDARD.encode("CA")));
        let missing = Cluster { certificate_authority: Some("no.crt".into()), ..Default::default() };
        assert!(
            format!("{:#}", ca_data(&missing, dir.path(), "p").unwrap_err())
                .contains("certificate-authority of cluster \"p\"")
        );
    }
}
