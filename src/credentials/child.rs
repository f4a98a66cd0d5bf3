//! The child cluster's credentials: where they come from, and reading them.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_yaml::{Mapping, Value};

use super::validate::{self, KeyCheck};
use crate::cli::ChildCredentialArgs;
use crate::error::usage;
use crate::kubeconfig::{flatten, load, select};
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
    Token(String),
    TokenFile(PathBuf),
    TokenEnv(String),
    CertKeyFiles { cert: PathBuf, key: PathBuf },
    CertKeyData { cert: String, key: String },
    ChildKubeconfig { path: PathBuf, context: Option<String> },
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

    /// Picks the one source given by the flags and `env_token` (the value of
    /// CLUSTERNET_CHILD_TOKEN). An empty variable counts as unset unless it is
    /// the only candidate, so that it is reported as empty.
    pub fn resolve(args: &ChildCredentialArgs, env_token: Option<String>) -> Result<ChildSource> {
        let mut found: Vec<(&str, ChildSource)> = Vec::new();
        if let Some(t) = &args.token {
            found.push(("--token", ChildSource::Token(t.clone())));
        }
        if let Some(p) = &args.token_file {
            found.push(("--token-file", ChildSource::TokenFile(p.clone())));
        }
        if let (Some(cert), Some(key)) = (&args.client_certificate, &args.client_key) {
            found.push((
                "--client-certificate/--client-key",
                ChildSource::CertKeyFiles { cert: cert.clone(), key: key.clone() },
            ));
        }
        if let (Some(cert), Some(key)) = (&args.client_certificate_data, &args.client_key_data) {
            found.push((
                "--client-certificate-data/--client-key-data",
                ChildSource::CertKeyData { cert: cert.clone(), key: key.clone() },
            ));
        }
        if let Some(p) = &args.child_kubeconfig {
            found.push((
                "--child-kubeconfig",
                ChildSource::ChildKubeconfig { path: p.clone(), context: args.child_context.clone() },
            ));
        }
        match env_token {
            Some(t) if !t.is_empty() || found.is_empty() => found.push((TOKEN_ENV, ChildSource::TokenEnv(t))),
            _ => {}
        }
        match found.len() {
            1 => Ok(found.remove(0).1),
            0 => Err(usage(format!(
                "no child credentials: pass --token-file PATH (or -, or env {TOKEN_ENV}), --client-certificate with --client-key, or --child-kubeconfig"
            ))),
            _ => {
                let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
                Err(usage(format!("child credentials given twice ({}); keep exactly one source", names.join(" and "))))
            }
        }
    }

    /// True when the source reads standard input.
    pub fn reads_stdin(&self) -> bool {
        matches!(self, ChildSource::TokenFile(p) if p.as_os_str() == "-")
    }
}

/// Reads and checks the credentials; notes (warnings) go to `notes`.
pub fn load(source: &ChildSource, notes: &mut Vec<String>) -> Result<ChildCredentials> {
    match source {
        ChildSource::Token(t) => validate::token(t, "--token").map(ChildCredentials::Token).map_err(usage_if_flag),
        ChildSource::TokenEnv(t) => Ok(ChildCredentials::Token(validate::token(t, TOKEN_ENV)?)),
        ChildSource::TokenFile(path) => {
            let origin = file_origin("--token-file", path);
            let raw = read_file_or_stdin(path, &origin)?;
            Ok(ChildCredentials::Token(validate::token_from_file(&raw, &origin)?))
        }
        ChildSource::CertKeyFiles { cert, key } => {
            let cert_origin = file_origin("--client-certificate", cert);
            let key_origin = file_origin("--client-key", key);
            let cert_pem = flatten::read_path(cert, "--client-certificate")?;
            let key_pem = flatten::read_path(key, "--client-key")?;
            cert_key(cert_pem, key_pem, &cert_origin, &key_origin, notes)
        }
        ChildSource::CertKeyData { cert, key } => {
            let cert_pem = validate::base64_data(cert, "--client-certificate-data").map_err(usage_if_flag)?;
            let key_pem = validate::base64_data(key, "--client-key-data").map_err(usage_if_flag)?;
            cert_key(cert_pem, key_pem, "--client-certificate-data", "--client-key-data", notes)
        }
        ChildSource::ChildKubeconfig { path, context } => from_kubeconfig(path, context.as_deref(), notes),
    }
}

/// Values given on the command line are usage errors (exit 2).
fn usage_if_flag(err: anyhow::Error) -> anyhow::Error {
    usage(format!("{err:#}"))
}

fn file_origin(flag: &str, path: &Path) -> String {
    if path.as_os_str() == "-" { format!("{flag} - (stdin)") } else { format!("{flag} {}", path.display()) }
}

/// Reads a flag's file, or standard input for `-`.
pub fn read_file_or_stdin(path: &Path, origin: &str) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).with_context(|| format!("{origin}: reading stdin"))?;
        return Ok(buf);
    }
    let flag = origin.split(' ').next().unwrap_or(origin);
    flatten::read_path(path, flag)
}

fn cert_key(
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    cert_origin: &str,
    key_origin: &str,
    notes: &mut Vec<String>,
) -> Result<ChildCredentials> {
    if let KeyCheck::Unchecked(why) = validate::cert_and_key(&cert_pem, &key_pem, cert_origin, key_origin)? {
        notes.push(format!("warning: could not check that {key_origin} matches {cert_origin}: {why}"));
    }
    let cert_pem = String::from_utf8(cert_pem).map_err(|_| anyhow!("{cert_origin} is not PEM text"))?;
    let key_pem = String::from_utf8(key_pem).map_err(|_| anyhow!("{key_origin} is not PEM text"))?;
    Ok(ChildCredentials::ClientCertificate { cert_pem, key_pem: Secret::new(key_pem) })
}

/// Takes the credentials of a child kubeconfig's user, as kubectl-clusternet
/// does: its token (or tokenFile), else its client certificate and key (inline
/// or files, resolved against that kubeconfig's directory).
fn from_kubeconfig(path: &Path, context: Option<&str>, notes: &mut Vec<String>) -> Result<ChildCredentials> {
    let config = load::read_file(path).context("--child-kubeconfig")?;
    let loaded = load::merge(vec![(load::absolute(path), config)]);
    let selection = select::select(&loaded, context, "--child-context").context("--child-kubeconfig")?;
    selection.require_user().context("--child-kubeconfig")?;
    let user_name = selection.user_name;
    let user = flatten::flatten_user(selection.user, selection.user_dir, user_name).context("--child-kubeconfig")?;
    let origin = format!("user {user_name:?} of --child-kubeconfig {}", path.display());
    let token = string_field(&user, "token", &origin)?;
    let cert = string_field(&user, "client-certificate-data", &origin)?;
    let key = string_field(&user, "client-key-data", &origin)?;
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        if cert.is_some() {
            notes.push(format!("note: {origin} has both a token and a client certificate; using the token"));
        }
        return Ok(ChildCredentials::Token(validate::token(token, &format!("token of {origin}"))?));
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let cert_pem = validate::base64_data(cert, &format!("client-certificate-data of {origin}"))?;
            let key_pem = validate::base64_data(key, &format!("client-key-data of {origin}"))?;
            cert_key(
                cert_pem,
                key_pem,
                &format!("client certificate of {origin}"),
                &format!("client key of {origin}"),
                notes,
            )
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

    fn args() -> ChildCredentialArgs {
        ChildCredentialArgs {
            token: None,
            token_file: None,
            client_certificate: None,
            client_key: None,
            client_certificate_data: None,
            client_key_data: None,
            child_kubeconfig: None,
            child_context: None,
        }
    }

    #[test]
    fn exactly_one_source() {
        let a = ChildCredentialArgs { token: Some("t".into()), ..args() };
        assert_eq!(ChildSource::resolve(&a, None).unwrap(), ChildSource::Token("t".into()));
        assert_eq!(ChildSource::resolve(&a, Some(String::new())).unwrap(), ChildSource::Token("t".into()));
        assert_eq!(ChildSource::resolve(&args(), Some("e".into())).unwrap(), ChildSource::TokenEnv("e".into()));
        assert_eq!(ChildSource::resolve(&args(), Some(String::new())).unwrap(), ChildSource::TokenEnv(String::new()));
        let none = ChildSource::resolve(&args(), None).unwrap_err();
        assert!(is_usage(&none) && format!("{none}").contains("no child credentials"));
        let two = ChildSource::resolve(&a, Some("e".into())).unwrap_err();
        assert!(is_usage(&two) && format!("{two}").contains("--token and CLUSTERNET_CHILD_TOKEN"));
        assert!(!format!("{two}").contains("\"e\""));
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
        let mut notes = vec![];
        let src =
            |ctx: Option<&str>| ChildSource::ChildKubeconfig { path: cfg.clone(), context: ctx.map(String::from) };
        match load(&src(None), &mut notes).unwrap() {
            ChildCredentials::Token(t) => assert_eq!(t.expose(), "child-token"),
            other => panic!("{other:?}"),
        }
        match load(&src(Some("x")), &mut notes).unwrap() {
            ChildCredentials::ClientCertificate { cert_pem, key_pem } => {
                assert_eq!(cert_pem, cert);
                assert_eq!(key_pem.expose(), key);
            }
            other => panic!("{other:?}"),
        }
        assert!(format!("{:#}", load(&src(Some("e")), &mut notes).unwrap_err()).contains("exec or auth-provider"));
    }
}
