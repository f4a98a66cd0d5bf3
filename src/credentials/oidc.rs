//! Keyless parent authentication (`--parent-auth oidc`): an OpenID Connect ID
//! token that the CI system mints for the job, which the parent's
//! kube-apiserver trusts through its structured authentication configuration.
//!
//! The one place that knows where such a token comes from: the GitHub Actions
//! token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`, asked for one
//! audience), an environment variable (GitLab's `id_tokens:`, CircleCI,
//! Buildkite), or a file (a projected service-account token). The generated
//! kubeconfig never holds the token: its user runs this binary as a client-go
//! `exec` credential plugin (`oidc-token`), which fetches a fresh one whenever
//! the last has expired; `gen` fetches one too, for its own requests.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde_yaml::{Mapping, Value};

use super::child::read_token;
use super::validate;
use crate::clock::{self, Timestamp};
use crate::secret::Secret;

/// The URL of the GitHub Actions token endpoint, set for a job with `permissions: id-token: write`.
pub const ACTIONS_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// The bearer token that endpoint asks for (a secret).
pub const ACTIONS_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// The subcommand the generated `exec` entry runs.
pub const PLUGIN_SUBCOMMAND: &str = "oidc-token";
/// The credential plugin API the entry and the plugin speak.
pub const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// Where the ID token comes from, and the audience it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub audience: String,
    pub from: From,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// The GitHub Actions token endpoint, asked for [`Source::audience`].
    Actions,
    /// A JWT in this environment variable.
    Env(String),
    /// A JWT in this file (absolute: the plugin runs in kubectl's directory).
    File(PathBuf),
}

/// A fetched ID token and what it says of itself (read, not verified: the
/// parent verifies it; these are for `expirationTimestamp` and messages).
#[derive(Debug, Clone)]
pub struct IdToken {
    pub token: Secret,
    pub expires: Timestamp,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audiences: Vec<String>,
}

impl IdToken {
    /// What the token says of itself, for a refusal: never the token.
    pub fn describe(&self) -> String {
        let when = match self.expires <= clock::now() {
            true => format!("expired at {}", clock::rfc3339(self.expires)),
            false => format!("expires at {}", clock::rfc3339(self.expires)),
        };
        format!(
            "issuer {:?}, audience {:?}, subject {:?}, {when}",
            self.issuer.as_deref().unwrap_or(""),
            self.audiences.join(","),
            self.subject.as_deref().unwrap_or("")
        )
    }
}

impl Source {
    /// The source asked for: a variable, a file, else the Actions endpoint;
    /// `flags` names the flags of the audience, variable and file, for messages.
    pub fn new(audience: &str, env: Option<&str>, file: Option<&Path>, flags: [&str; 3]) -> Result<Source> {
        let [audience_flag, env_flag, file_flag] = flags;
        check_audience(audience).with_context(|| audience_flag.to_string())?;
        let from = match (env, file) {
            (Some(_), Some(_)) => bail!("{env_flag} and {file_flag} are two token sources; keep one"),
            (Some(name), None) => {
                check_env_name(name).with_context(|| env_flag.to_string())?;
                From::Env(name.to_string())
            }
            (None, Some(path)) if path.as_os_str() == "-" => {
                bail!("{file_flag} cannot be - (stdin): the exec entry reads the file again whenever the token expires")
            }
            (None, Some(path)) => From::File(crate::kubeconfig::load::absolute(path)),
            (None, None) => From::Actions,
        };
        Ok(Source { audience: audience.to_string(), from })
    }

    /// Where the token comes from, for messages.
    pub fn describe(&self) -> String {
        match &self.from {
            From::Actions => "the GitHub Actions token endpoint".to_string(),
            From::Env(name) => format!("env {name}"),
            From::File(path) => format!("file {}", path.display()),
        }
    }

    /// The arguments of the plugin after its subcommand: the source, never a
    /// token (the Actions variables are read from kubectl's environment).
    pub fn plugin_args(&self) -> Vec<String> {
        let mut args = vec![PLUGIN_SUBCOMMAND.to_string(), "--audience".into(), self.audience.clone()];
        match &self.from {
            From::Actions => {}
            From::Env(name) => args.extend(["--token-env".into(), name.clone()]),
            From::File(path) => args.extend(["--token-file".into(), path.display().to_string()]),
        }
        args
    }

    /// The generated user's `exec` entry. The command is the absolute path of
    /// the running binary: kubectl, helm or terraform resolve a bare name
    /// with their own PATH (a container step, a sanitized environment), where
    /// another version, or none, may answer; the path pins the binary that
    /// wrote the file and that the file's arguments were written for.
    pub fn exec_entry(&self) -> Result<Mapping> {
        let binary = std::env::current_exe().context("finding the path of this binary for the exec entry")?;
        let binary = std::fs::canonicalize(&binary).unwrap_or(binary);
        let command = binary
            .to_str()
            .ok_or_else(|| anyhow!("the path of this binary is not UTF-8: {}", binary.display()))?
            .to_string();
        let args = self.plugin_args().into_iter().map(Value::String).collect();
        let mut exec = Mapping::new();
        exec.insert("apiVersion".into(), EXEC_API_VERSION.into());
        exec.insert("args".into(), Value::Sequence(args));
        exec.insert("command".into(), command.into());
        exec.insert(
            "installHint".into(),
            "clusternet-kubeconfig wrote this entry; it runs itself to fetch the CI job's OIDC token".into(),
        );
        // Never a prompt: the plugin runs unattended, in CI.
        exec.insert("interactiveMode".into(), "Never".into());
        exec.insert("provideClusterInfo".into(), false.into());
        Ok(exec)
    }

    /// The token given in a variable or a file, read; `None` for the GitHub
    /// Actions endpoint, which `cluster::actions` asks over the network.
    pub fn read_given(&self) -> Option<Result<Secret>> {
        match &self.from {
            From::Env(name) => Some(from_env(name)),
            From::File(path) => Some(read_token(path, "--oidc-token-file")),
            From::Actions => None,
        }
    }
}

/// Checks a variable name as a shell would take it.
pub fn check_env_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("{name:?} is not an environment variable name (letters, digits and _, not starting with a digit)");
    }
    if name == ACTIONS_REQUEST_TOKEN {
        bail!(
            "{ACTIONS_REQUEST_TOKEN} is the Actions request token, not an ID token: leave out --oidc-token-env on GitHub Actions"
        );
    }
    Ok(())
}

/// Checks an audience: the `aud` the parent's configuration expects.
pub fn check_audience(audience: &str) -> Result<()> {
    if audience.is_empty() || audience.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!(
            "the audience must be a non-empty value without spaces, as the parent's AuthenticationConfiguration lists it"
        );
    }
    Ok(())
}

fn from_env(name: &str) -> Result<Secret> {
    match std::env::var(name) {
        Ok(value) => validate::token(value.trim_end_matches(['\n', '\r']), &format!("env {name}")),
        Err(std::env::VarError::NotPresent) => {
            bail!("env {name} is not set: the CI job must put its OIDC ID token there (GitLab: id_tokens:)")
        }
        Err(std::env::VarError::NotUnicode(_)) => bail!("env {name} is not UTF-8 text"),
    }
}

/// The claims the messages and `expirationTimestamp` need. A token that is not
/// a JWT, or has no `exp`, is no OIDC ID token.
pub fn read_claims(token: Secret, origin: &str) -> Result<IdToken> {
    let not_jwt = || anyhow!("{origin} holds no JWT (three base64url parts): is it the OIDC ID token?");
    let mut parts = token.expose().split('.');
    let payload = parts.nth(1).ok_or_else(not_jwt)?;
    if parts.count() != 1 {
        return Err(not_jwt());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_jwt())?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_jwt())?;
    let expires = validate::jwt_expiry(token.expose())
        .ok_or_else(|| anyhow!("the token from {origin} has no exp claim; an OIDC ID token always has one"))?;
    let text = |key: &str| claims.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let audiences = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    Ok(IdToken { token, expires, issuer: text("iss"), subject: text("sub"), audiences })
}

/// The parent's refusal (its 401) of the OIDC token, with what the token
/// says of itself (never the token): the parent's 401 says nothing more.
pub fn refused(source: &Source, token: &IdToken) -> anyhow::Error {
    anyhow!(
        "the parent refused the OIDC token from {} (401 Unauthorized; {}): its --authentication-config must trust this issuer for audience {:?}, the token must be current, and its claims must pass the claimValidationRules",
        source.describe(),
        token.describe(),
        source.audience
    )
}

/// The `ExecCredential` the plugin prints: the token and when it expires, so
/// that client-go runs the plugin again only then.
pub fn exec_credential(token: &IdToken) -> String {
    serde_json::json!({
        "apiVersion": EXEC_API_VERSION,
        "kind": "ExecCredential",
        "status": {
            "token": token.token.expose(),
            "expirationTimestamp": clock::rfc3339(token.expires),
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> Secret {
        let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        Secret::new(format!("{}.{}.sig", b64(r#"{"alg":"ES256"}"#.into()), b64(claims.to_string())))
    }

    #[test]
    fn claims_are_read_and_the_credential_carries_exp() {
        let token = jwt(serde_json::json!({"iss": "https://i", "aud": ["a", "b"], "sub": "s", "exp": 4102444800u64}));
        let id = read_claims(token, "x").unwrap();
        assert_eq!(id.audiences, ["a", "b"]);
        let out: serde_json::Value = serde_json::from_str(&exec_credential(&id)).unwrap();
        assert_eq!(out["status"]["expirationTimestamp"], "2100-01-01T00:00:00Z");
        assert_eq!(out["kind"], "ExecCredential");
        assert!(id.describe().contains("expires at 2100-01-01T00:00:00Z"), "{}", id.describe());
        let none = read_claims(jwt(serde_json::json!({"sub": "s"})), "env X").unwrap_err();
        assert!(format!("{none}").contains("no exp claim"), "{none}");
        let opaque = read_claims(Secret::new("opaque".into()), "env X").unwrap_err();
        assert!(format!("{opaque}").contains("holds no JWT"), "{opaque}");
    }

    #[test]
    fn plugin_args_name_the_source_never_a_token() {
        let s = |from| Source { audience: "aud".into(), from };
        assert_eq!(s(From::Actions).plugin_args(), ["oidc-token", "--audience", "aud"]);
        assert_eq!(
            s(From::Env("CI_JWT".into())).plugin_args(),
            ["oidc-token", "--audience", "aud", "--token-env", "CI_JWT"]
        );
        assert!(check_env_name("1X").is_err() && check_env_name(ACTIONS_REQUEST_TOKEN).is_err());
        assert!(check_env_name("GITLAB_OIDC_TOKEN").is_ok());
    }
}
