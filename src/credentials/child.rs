//! The child cluster's credentials: where they come from, and reading them.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_yaml::{Mapping, Value};

use super::origin::CredentialOrigin;
use super::validate::{self, KeyCheck};
use crate::error::in_cwd;
use crate::kubeconfig::{flatten, load, select};
use crate::notes;
use crate::secret::Secret;

/// Environment variable that may hold the child token.
pub const TOKEN_ENV: &str = "CLUSTERNET_CHILD_TOKEN";

/// Credentials for the child apiserver, checked and ready to travel as extras.
#[derive(Debug, Clone)]
pub enum ChildCredentials {
    Token(Secret),
    /// PEM text of the client certificate and of its key.
    ClientCertificate {
        cert_pem: String,
        key_pem: Secret,
    },
}

/// Where the child credentials come from: exactly one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildSource {
    /// `--token`, a `token` of the credentials file, or a token read from the
    /// cluster (the target's [`CredentialOrigin`] says which).
    Token(Secret),
    TokenFile(PathBuf),
    /// [`TOKEN_ENV`].
    TokenEnv(Secret),
    CertKeyFiles {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Base64 of the PEM texts, as in a kubeconfig.
    CertKeyData {
        cert: String,
        key: Secret,
    },
    ChildKubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
}

impl ChildSource {
    /// The files this source reads (stdin, `-`, is not a file).
    pub fn files(&self) -> Vec<PathBuf> {
        let paths: Vec<&PathBuf> = match self {
            ChildSource::TokenFile(p) => vec![p],
            ChildSource::CertKeyFiles { cert, key } => vec![cert, key],
            ChildSource::ChildKubeconfig { path, .. } => vec![path],
            _ => vec![],
        };
        paths.into_iter().filter(|p| p.as_os_str() != "-").cloned().collect()
    }

    /// Where a source given by the flags takes its credential from.
    pub fn origin(&self) -> CredentialOrigin {
        match self {
            ChildSource::Token(_) => CredentialOrigin::Flag { flag: "--token" },
            ChildSource::TokenFile(path) => CredentialOrigin::Files { flag: "--token-file", paths: vec![path.clone()] },
            ChildSource::TokenEnv(_) => CredentialOrigin::Env { variable: TOKEN_ENV },
            ChildSource::CertKeyFiles { cert, key } => CredentialOrigin::Files {
                flag: "--client-certificate/--client-key",
                paths: vec![cert.clone(), key.clone()],
            },
            ChildSource::CertKeyData { .. } => {
                CredentialOrigin::Flag { flag: "--client-certificate-data/--client-key-data" }
            }
            ChildSource::ChildKubeconfig { path, context } => {
                CredentialOrigin::ChildKubeconfig { path: path.clone(), context: context.clone() }
            }
        }
    }

    /// True when the source reads standard input.
    pub fn reads_stdin(&self) -> bool {
        matches!(self, ChildSource::TokenFile(p) if p.as_os_str() == "-")
    }
}

/// Reads and checks the credentials; warnings are reported as notes.
pub fn load(source: &ChildSource) -> Result<ChildCredentials> {
    match source {
        // A token is checked and trimmed alike wherever it comes from (flag,
        // environment, file): one trailing line break, as `echo` adds, is dropped.
        ChildSource::Token(t) => {
            Ok(ChildCredentials::Token(validate::token_from_file(t.expose().as_bytes(), "--token")?))
        }
        ChildSource::TokenEnv(t) => {
            Ok(ChildCredentials::Token(validate::token_from_file(t.expose().as_bytes(), TOKEN_ENV)?))
        }
        ChildSource::TokenFile(path) => Ok(ChildCredentials::Token(read_token(path, "--token-file")?)),
        ChildSource::CertKeyFiles { cert, key } => {
            let cert_origin = file_origin("--client-certificate", cert);
            let key_origin = file_origin("--client-key", key);
            let cert_pem = in_cwd(crate::fs::read_path(cert).context("--client-certificate"), cert)?;
            let key_pem = in_cwd(crate::fs::read_path(key).context("--client-key"), key)?;
            cert_key(cert_pem, key_pem, &cert_origin, &key_origin)
        }
        ChildSource::CertKeyData { cert, key } => {
            let cert_pem = validate::base64_data(cert, "--client-certificate-data")?;
            let key_pem = validate::base64_data(key.expose(), "--client-key-data")?;
            cert_key(cert_pem, key_pem, "--client-certificate-data", "--client-key-data")
        }
        ChildSource::ChildKubeconfig { path, context } => in_cwd(from_kubeconfig(path, context.as_deref()), path),
    }
}

fn file_origin(flag: &str, path: &Path) -> String {
    if path.as_os_str() == "-" { format!("{flag} - (stdin)") } else { format!("{flag} {}", path.display()) }
}

/// Reads and checks a token from a file, or standard input for `-`; `flag`
/// names where the path came from, for messages.
pub fn read_token(path: &Path, flag: &str) -> Result<Secret> {
    let origin = file_origin(flag, path);
    let raw = in_cwd(read_token_file(path, flag, &origin), path)?;
    validate::token_from_file(&raw, &origin)
}

/// Reads a token file, or standard input for `-`, never past
/// [`validate::MAX_TOKEN_BYTES`] (and its line break).
fn read_token_file(path: &Path, flag: &str, origin: &str) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        // Two more bytes: a token of the largest size with its CRLF is fine.
        let limit = validate::MAX_TOKEN_BYTES + 2;
        std::io::stdin().take(limit + 1).read_to_end(&mut buf).with_context(|| format!("{origin}: reading stdin"))?;
        if buf.len() as u64 > limit {
            bail!(
                "{origin}: more than {} on stdin; a token is at most that long",
                crate::fs::size(validate::MAX_TOKEN_BYTES)
            );
        }
        return Ok(buf);
    }
    crate::fs::read_path_at_most(path, validate::MAX_TOKEN_BYTES + 2).with_context(|| flag.to_owned())
}

fn cert_key(cert_pem: Vec<u8>, key_pem: Vec<u8>, cert_origin: &str, key_origin: &str) -> Result<ChildCredentials> {
    if let KeyCheck::Unchecked(why) = validate::cert_and_key(&cert_pem, &key_pem, cert_origin, key_origin)? {
        notes::push(format!("warning: could not check that {key_origin} matches {cert_origin}: {why}"));
    }
    let cert_pem = String::from_utf8(cert_pem).map_err(|_| anyhow!("{cert_origin} is not PEM text"))?;
    let key_pem = String::from_utf8(key_pem).map_err(|_| anyhow!("{key_origin} is not PEM text"))?;
    Ok(ChildCredentials::ClientCertificate { cert_pem, key_pem: Secret::new(key_pem) })
}

/// Takes the credentials of a child kubeconfig's user, as kubectl-clusternet
/// does: its token (or tokenFile), else its client certificate and key (inline
/// or files, resolved against that kubeconfig's directory).
fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<ChildCredentials> {
    let config = load::read_file(path).context("--child-kubeconfig")?;
    let loaded = load::combine(vec![(load::absolute(path), config)]);
    let selection =
        select::select(&loaded, context).map_err(|e| e.naming("--child-context")).context("--child-kubeconfig")?;
    selection.require_user().context("--child-kubeconfig")?;
    let user_name = selection.user_name;
    let user = flatten::flatten_user(selection.user, selection.user_dir, user_name).context("--child-kubeconfig")?;
    let origin = format!("user {user_name:?} of --child-kubeconfig {}", path.display());
    let token = string_field(&user, "token", &origin)?;
    let cert = string_field(&user, "client-certificate-data", &origin)?;
    let key = string_field(&user, "client-key-data", &origin)?;
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        if cert.is_some() {
            notes::push(format!("note: {origin} has both a token and a client certificate; using the token"));
        }
        return Ok(ChildCredentials::Token(validate::token(token, &format!("token of {origin}"))?));
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let cert_pem = validate::base64_data(cert, &format!("client-certificate-data of {origin}"))?;
            let key_pem = validate::base64_data(key, &format!("client-key-data of {origin}"))?;
            cert_key(cert_pem, key_pem, &format!("client certificate of {origin}"), &format!("client key of {origin}"))
        }
        (Some(_), None) => bail!("{origin} has a client certificate but no client key"),
        (None, Some(_)) => bail!("{origin} has a client key but no client certificate"),
        (None, None) if user.contains_key("exec") || user.contains_key("auth-provider") => bail!(
            "{origin} authenticates with an exec or auth-provider plugin, whose credentials cannot be forwarded through the hub; pass --token-file or --client-certificate/--client-key"
        ),
        (None, None) => bail!("{origin} has no token and no client certificate"),
    }
}

/// A string field of a user entry; other types are refused without quoting the value.
fn string_field<'a>(user: &'a Mapping, key: &str, origin: &str) -> Result<Option<&'a str>> {
    match user.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => bail!("{key} of {origin} must be a string"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::is_usage;

    #[test]
    fn tokens_are_trimmed_alike_from_every_source() {
        let secret = |t: &str| Secret::new(t.into());
        for source in [ChildSource::Token(secret("tok\n")), ChildSource::TokenEnv(secret("tok\n"))] {
            match load(&source).unwrap() {
                ChildCredentials::Token(t) => assert_eq!(t.expose(), "tok"),
                other => panic!("{other:?}"),
            }
        }
        for source in [ChildSource::Token(secret("a\nb")), ChildSource::TokenEnv(secret("a\nb"))] {
            let err = load(&source).unwrap_err();
            assert!(!is_usage(&err), "a bad value is exit 1 from every source: {err:#}");
        }
    }

    #[test]
    fn child_kubeconfig_token_and_cert() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = super::super::validate::tests::pair();
        std::fs::write(dir.path().join("c.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("c.key"), &key).unwrap();
        let cfg = dir.path().join("child");
        std::fs::write(
            &cfg,
            "current-context: t\ncontexts:\n- name: t\n  context: {cluster: c, user: tok}\n- name: x\n  context: {cluster: c, user: crt}\n- name: e\n  context: {cluster: c, user: exec}\nclusters:\n- name: c\n  cluster: {server: https://child}\nusers:\n- name: tok\n  user: {token: child-token}\n- name: crt\n  user: {client-certificate: c.crt, client-key: c.key}\n- name: exec\n  user: {exec: {command: x}}\n",
        )
        .unwrap();
        let src =
            |ctx: Option<&str>| ChildSource::ChildKubeconfig { path: cfg.clone(), context: ctx.map(String::from) };
        match load(&src(None)).unwrap() {
            ChildCredentials::Token(t) => assert_eq!(t.expose(), "child-token"),
            other => panic!("{other:?}"),
        }
        match load(&src(Some("x"))).unwrap() {
            ChildCredentials::ClientCertificate { cert_pem, key_pem } => {
                assert_eq!(cert_pem, cert);
                assert_eq!(key_pem.expose(), key);
            }
            other => panic!("{other:?}"),
        }
        assert!(format!("{:#}", load(&src(Some("e"))).unwrap_err()).contains("exec or auth-provider"));
    }
}
