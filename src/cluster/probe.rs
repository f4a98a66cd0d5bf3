//! Probing a generated kubeconfig: the child's `/version` and `/api` through
//! the socket proxy, with the kubeconfig's own credentials and impersonation,
//! and a diagnosis when that fails.
//!
//! Everything the other side sends is bounded: one deadline (`--timeout`)
//! covers the whole probe, bodies included, and no more than [`MAX_BODY`]
//! bytes of an answer are read. What was read before an answer broke off is
//! kept for the diagnosis (a Go TLS server's `Client sent an HTTP request to
//! an HTTPS server.` often arrives cut short).

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use http_body_util::BodyExt as _;
use kube::client::Body;
use kube::config::Kubeconfig;

use super::client::{Retries, connect_with};
use super::diagnose::{self, Cause, ParentAuthKind};
use super::transport::{self, Failure};
use crate::route::SOCKETS_PATH;
use crate::terminal::escape;

/// The most of one answer that is read: a Kubernetes `/version` or `/api` is
/// well under a KiB, an error Status a few KiB.
pub const MAX_BODY: usize = 1 << 20;

/// The longest `gitVersion` shown (it comes from the child).
const MAX_VERSION_CHARS: usize = 100;

/// A successful probe.
#[derive(Debug)]
pub struct Reached {
    /// The child's `gitVersion`, escaped for a terminal and shortened.
    pub git_version: String,
    pub version_latency: Duration,
    pub api_latency: Duration,
}

/// A failed probe: what was asked, what came back, and why.
#[derive(Debug)]
pub struct Failed {
    pub path: &'static str,
    pub status: Option<u16>,
    /// The server's words (or the transport error), redacted, one line; not
    /// yet escaped for a terminal.
    pub message: String,
    /// How the answer ended when it did not end normally.
    pub cut: Option<String>,
    pub cause: Cause,
}

impl Failed {
    /// One line: what failed, the server's words, the cause and the fix.
    /// Everything that came from the other side is escaped for a terminal.
    pub fn describe(&self, context: &str) -> String {
        let answer = match self.status {
            Some(code) => format!("HTTP {code}"),
            None => "no HTTP answer".to_string(),
        };
        let message = if self.message.is_empty() { String::new() } else { format!(" ({})", escape(&self.message)) };
        let cut = self.cut.as_deref().map(|c| format!(" [{}]", escape(c))).unwrap_or_default();
        format!(
            "context {context:?}: GET {} through the proxy failed: {answer}{message}{cut}: {}: {}",
            self.path,
            self.cause,
            self.cause.hint()
        )
    }
}

/// Probes `context` of `kubeconfig` within `timeout` (all of it: connecting,
/// both requests, their bodies). `secrets` are redacted from every message.
pub async fn probe(
    kubeconfig: Kubeconfig,
    context: &str,
    timeout: Duration,
    secrets: &[String],
) -> Result<Result<Reached, Failed>> {
    let deadline = Instant::now() + timeout;
    let probe = Probe { deadline, timeout, secrets: secrets.iter().map(String::as_str).collect() };
    let auth = parent_auth_kind(&kubeconfig, context);
    let conn =
        tokio::time::timeout_at(deadline.into(), connect_with(kubeconfig, Some(context), timeout, Retries::None))
            .await
            .map_err(|_| anyhow!("context {context:?}: no client within --timeout ({}s)", timeout.as_secs()))??;
    let (version, version_latency) = match probe.get(&conn.client, "/version").await {
        Got::Answer(a) if a.status == 200 && matches!(a.end, End::Complete) => (a.body, a.latency),
        failure => return Ok(Err(probe.diagnose(failure, "/version", auth, &conn).await)),
    };
    let git_version = serde_json::from_slice::<serde_json::Value>(&version)
        .ok()
        .and_then(|v| v["gitVersion"].as_str().map(|s| shorten(s, MAX_VERSION_CHARS)))
        .unwrap_or_else(|| "unknown".to_string());
    let api_latency = match probe.get(&conn.client, "/api").await {
        Got::Answer(a) if a.status == 200 && matches!(a.end, End::Complete) => a.latency,
        failure => return Ok(Err(probe.diagnose(failure, "/api", auth, &conn).await)),
    };
    Ok(Ok(Reached { git_version: escape(&git_version).into_owned(), version_latency, api_latency }))
}

/// At most `max` characters of `text`, with a marker when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// How reading an answer's body ended.
#[derive(Debug)]
enum End {
    Complete,
    /// More than [`MAX_BODY`]: reading stopped there.
    TooLarge,
    /// The transfer broke off (the error).
    Broken(String),
    /// The deadline passed while reading.
    TimedOut,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    /// At most [`MAX_BODY`] bytes: what was read.
    body: Vec<u8>,
    end: End,
    latency: Duration,
}

#[derive(Debug)]
enum Got {
    Answer(Answer),
    /// No HTTP answer: the error chain, and what it means.
    Transport(String, Failure),
    /// No HTTP answer before the deadline.
    TimedOut,
}

/// One probe's deadline and secrets.
struct Probe<'a> {
    deadline: Instant,
    timeout: Duration,
    secrets: Vec<&'a str>,
}

impl Probe<'_> {
    async fn get(&self, client: &kube::Client, path: &str) -> Got {
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let request = match http::Request::get(path).body(Body::empty()) {
            Ok(r) => r,
            Err(e) => return Got::Transport(e.to_string(), Failure::Other),
        };
        let response = match tokio::time::timeout_at(deadline, client.send(request)).await {
            Err(_) => return Got::TimedOut,
            Ok(Err(e)) => return Got::Transport(error_chain(&e), transport::classify(&e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let end = loop {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => break End::TimedOut,
                Ok(None) => break End::Complete,
                Ok(Some(Err(e))) => break End::Broken(error_chain(&e)),
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else { continue };
                    let room = MAX_BODY - bytes.len();
                    if data.len() > room {
                        bytes.extend_from_slice(&data[..room]);
                        break End::TooLarge;
                    }
                    bytes.extend_from_slice(&data);
                }
            }
        };
        Got::Answer(Answer { status, body: bytes, end, latency: start.elapsed() })
    }

    async fn diagnose(
        &self,
        got: Got,
        path: &'static str,
        auth: ParentAuthKind,
        conn: &super::client::Connection,
    ) -> Failed {
        let timed_out = || format!("timed out after {}s", self.timeout.as_secs());
        let answer = match got {
            Got::Answer(a) => a,
            Got::Transport(chain, failure) => {
                let message = crate::redact::text(&chain, &self.secrets).replace(['\n', '\r'], " ");
                return Failed { path, status: None, cause: Cause::from(&failure), message, cut: None };
            }
            Got::TimedOut => {
                return Failed { path, status: None, cause: Cause::Timeout, message: timed_out(), cut: None };
            }
        };
        let message = diagnose::server_message(&String::from_utf8_lossy(&answer.body), &self.secrets);
        let cut = match &answer.end {
            End::Complete => None,
            End::TooLarge => Some(format!("stopped reading the answer after {} KiB", MAX_BODY >> 10)),
            End::Broken(e) => Some(format!(
                "the answer broke off after {} bytes: {}",
                answer.body.len(),
                crate::redact::text(e, &self.secrets).replace(['\n', '\r'], " ")
            )),
            End::TimedOut => {
                Some(format!("{} while reading the answer ({} bytes read)", timed_out(), answer.body.len()))
            }
        };
        let cause = match (answer.status, &answer.end) {
            (_, End::TooLarge) => Cause::TooLarge,
            (200, End::TimedOut) => Cause::Timeout,
            (200, _) => Cause::Unexpected,
            (status, _) => {
                let parent_accepts = if status == 401 { self.parent_accepts(conn).await } else { None };
                diagnose::from_response(status, &message, auth, parent_accepts)
            }
        };
        Failed { path, status: Some(answer.status), message, cut, cause }
    }

    /// Whether the parent itself accepts the kubeconfig's parent credentials:
    /// its own `/version`, without the proxy path and without impersonation.
    /// Tells a 401 from the parent from a 401 the child sent back through the
    /// hub.
    async fn parent_accepts(&self, conn: &super::client::Connection) -> Option<bool> {
        let mut config = conn.config.clone();
        let url = config.cluster_url.to_string();
        let base = url.find(&format!("/{SOCKETS_PATH}/")).map(|i| &url[..i])?;
        config.cluster_url = base.parse().ok()?;
        config.auth_info.impersonate = None;
        config.auth_info.impersonate_groups = None;
        config.auth_info.impersonate_uid = None;
        config.auth_info.impersonate_user_extra = None;
        let client = kube::Client::try_from(config).ok()?;
        match self.get(&client, "/version").await {
            Got::Answer(a) if a.status == 401 => Some(false),
            Got::Answer(_) => Some(true),
            Got::Transport(..) | Got::TimedOut => None,
        }
    }
}

/// Whether the parent itself accepts the parent credentials of `conn` (see
/// [`Probe::parent_accepts`]), asked before `deadline`: for a 401 of another
/// request through the proxy.
pub(super) async fn parent_accepts(conn: &super::client::Connection, deadline: Instant) -> Option<bool> {
    Probe { deadline, timeout: Duration::ZERO, secrets: Vec::new() }.parent_accepts(conn).await
}

/// An error and its sources, `: `-separated, each said once (kube and
/// hyper repeat their source in their own text).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// The user entry `context` names, as kube read it.
pub(super) fn user_of<'k>(kubeconfig: &'k Kubeconfig, context: &str) -> Option<&'k kube::config::AuthInfo> {
    let named = kubeconfig.contexts.iter().find(|c| c.name == context)?;
    let user = named.context.as_ref()?.user.as_deref()?;
    kubeconfig.auth_infos.iter().find(|a| a.name == user)?.auth_info.as_ref()
}

/// Anonymous unless the user entry carries credentials of its own.
pub(super) fn parent_auth_kind(kubeconfig: &Kubeconfig, context: &str) -> ParentAuthKind {
    match user_of(kubeconfig, context) {
        Some(a)
            if a.token.is_some()
                || a.token_file.is_some()
                || a.client_certificate.is_some()
                || a.client_certificate_data.is_some()
                || a.exec.is_some()
                || a.auth_provider.is_some()
                || a.password.is_some() =>
        {
            ParentAuthKind::Credentials
        }
        _ => ParentAuthKind::Anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cause's line: one line, no run of words said twice, and what
    /// came from the server escaped.
    #[test]
    fn every_line_reads_once_and_is_escaped() {
        for &cause in Cause::ALL {
            let failed = Failed {
                path: "/version",
                status: Some(500),
                message: "dial tcp 127.0.0.1:1: \u{1b}[2Jconnect: connection refused".into(),
                cut: Some("the answer broke off after 3 bytes: \u{202e}x".into()),
                cause,
            };
            let line = failed.describe("ctx");
            assert_eq!(testkit::doubled_words(&line), None, "{cause:?}: {line}");
            assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{cause:?}: {line:?}");
            assert!(line.contains("^[[2Jconnect") && line.contains("\\u{202E}x"), "{line}");
            assert!(line.ends_with(&format!(": {cause}: {}", cause.hint())), "{line}");
        }
    }

    #[test]
    fn error_chains_say_each_source_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let refused = E("Connection refused (os error 111)", None);
        let tcp = E("tcp connect error", Some(Box::new(refused)));
        let client = E("client error (Connect)", Some(Box::new(tcp)));
        let top = E("ServiceError: client error (Connect)", Some(Box::new(client)));
        assert_eq!(
            error_chain(&top),
            "ServiceError: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn long_versions_are_shortened() {
        assert_eq!(shorten("v1.32.0", 100), "v1.32.0");
        assert_eq!(shorten(&"é".repeat(150), 100), format!("{}…", "é".repeat(100)));
    }
}
