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
use std::sync::Arc;
use std::time::Duration;

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

/// The longest answer of the token endpoint read: a JSON object with one JWT.
const MAX_ANSWER_BYTES: usize = 64 << 10;

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

    /// Fetches and reads a token, within `timeout`.
    pub async fn fetch(&self, timeout: Duration) -> Result<IdToken> {
        let token = match &self.from {
            From::Env(name) => from_env(name)?,
            From::File(path) => read_token(path, "--oidc-token-file")?,
            From::Actions => tokio::time::timeout(timeout, from_actions(&self.audience)).await.map_err(|_| {
                anyhow!("the GitHub Actions token endpoint did not answer within {}s", timeout.as_secs())
            })??,
        };
        read_claims(token, &self.describe())
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
fn read_claims(token: Secret, origin: &str) -> Result<IdToken> {
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

/// GET `<ACTIONS_ID_TOKEN_REQUEST_URL>&audience=AUD` with the request token;
/// the answer is `{"value": "<jwt>"}`. Verified against the system's roots
/// (SSL_CERT_FILE and SSL_CERT_DIR are honoured, as by Go and OpenSSL); a
/// plain `http://` URL is refused: the request token would travel in clear.
async fn from_actions(audience: &str) -> Result<Secret> {
    let missing = |name: &str| {
        anyhow!(
            "{name} is not set: on GitHub Actions the job needs `permissions: id-token: write` for an OIDC token (elsewhere, pass --oidc-token-env VAR or --oidc-token-file PATH)"
        )
    };
    let url = std::env::var(ACTIONS_URL).map_err(|_| missing(ACTIONS_URL))?;
    let request_token = Secret::new(std::env::var(ACTIONS_REQUEST_TOKEN).map_err(|_| missing(ACTIONS_REQUEST_TOKEN))?);
    let mut url = url::Url::parse(&url).map_err(|_| anyhow!("{ACTIONS_URL} is not a URL"))?;
    if url.scheme() != "https" {
        bail!("{ACTIONS_URL} is not https://; the request token is never sent in clear");
    }
    url.query_pairs_mut().append_pair("audience", audience);
    let secrets = [request_token.expose().to_string()];
    let answer = get(&url, &request_token).await.map_err(|e| {
        // A transport error may quote the URL (its query holds no secret) but
        // never the header; redacted all the same.
        anyhow!("the GitHub Actions token endpoint: {}", crate::redact::text(&format!("{e:#}"), &secrets))
    })?;
    let (status, body) = answer;
    let body = String::from_utf8_lossy(&body);
    if status != 200 {
        bail!(
            "the GitHub Actions token endpoint answered {status}{}: is the job's `permissions: id-token: write` set, and the request token current?",
            match status {
                401 | 403 => " (the request token was refused)",
                _ => "",
            }
        );
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        value: Option<String>,
    }
    let value = serde_json::from_str::<Answer>(&body)
        .ok()
        .and_then(|a| a.value)
        .ok_or_else(|| anyhow!("the GitHub Actions token endpoint answered 200 without a \"value\" string"))?;
    if value == request_token.expose() {
        bail!("the GitHub Actions token endpoint answered with the request token itself, not an ID token");
    }
    validate::token(&value, "the GitHub Actions token endpoint's value")
}

/// One HTTPS GET with a bearer token: status and body (bounded).
async fn get(url: &url::Url, bearer: &Secret) -> Result<(u16, Vec<u8>)> {
    use http_body_util::{BodyExt as _, Empty, Limited};
    let host = url.host_str().ok_or_else(|| anyhow!("the URL has no host"))?.to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    let name = rustls_pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
        .map_err(|_| anyhow!("{host} is not a server name"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config()?)).connect(name, tcp).await.map_err(|e| {
        anyhow!("TLS with {host}:{port}: {e} (the system's roots are used; SSL_CERT_FILE names other ones)")
    })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.context("HTTP handshake")?;
    tokio::spawn(connection);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request = http::Request::get(path)
        // host[:port], the port only when not 443, as an HTTP client sends it.
        .header(http::header::HOST, &url[url::Position::BeforeHost..url::Position::AfterPort])
        .header(http::header::AUTHORIZATION, format!("Bearer {}", bearer.expose()))
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, concat!("clusternet-kubeconfig/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<bytes::Bytes>::new())
        .context("building the request")?;
    let response = sender.send_request(request).await.context("sending the request")?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|_| anyhow!("the answer is not readable or larger than {} KiB", MAX_ANSWER_BYTES >> 10))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

/// rustls with the system's roots (rustls-native-certs reads SSL_CERT_FILE
/// and SSL_CERT_DIR first, as Go and OpenSSL do).
fn tls_config() -> Result<rustls::ClientConfig> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        bail!("no trusted root certificates found on this system (SSL_CERT_FILE can name a bundle)");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether `err` is the parent's 401 (as the cluster client words it).
pub fn is_refusal(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains(" 401 ")
}

/// The parent's refusal of the OIDC token, with what the token says of
/// itself (never the token): the parent's 401 says nothing more. Any other
/// error is passed on as it is.
pub fn refused(err: anyhow::Error, source: &Source, token: &IdToken) -> anyhow::Error {
    if !is_refusal(&err) {
        return err;
    }
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
