//! The GitHub Actions token endpoint, asked over the network for the job's
//! OIDC ID token (`--parent-auth oidc` without `--oidc-token-env` or
//! `--oidc-token-file`); what a token is and where else it may come from is
//! `credentials::oidc`'s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};

use crate::credentials::oidc::{ACTIONS_REQUEST_TOKEN, ACTIONS_URL, IdToken, Source, read_claims};
use crate::credentials::validate;
use crate::secret::Secret;

/// The source's token, fetched (the Actions endpoint, within `timeout`) or
/// read (a variable or a file), and its claims read.
pub async fn fetch(source: &Source, timeout: Duration) -> Result<IdToken> {
    let token = match source.read_given() {
        Some(given) => given?,
        None => tokio::time::timeout(timeout, from_actions(&source.audience))
            .await
            .map_err(|_| anyhow!("the GitHub Actions token endpoint did not answer within {}s", timeout.as_secs()))??,
    };
    read_claims(token, &source.describe())
}

/// The longest answer of the token endpoint read: a JSON object with one JWT.
const MAX_ANSWER_BYTES: usize = 64 << 10;

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
