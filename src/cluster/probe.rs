//! Probing a generated kubeconfig: the child's `/version` and `/api` through
//! the socket proxy, with the kubeconfig's own credentials and impersonation,
//! and a diagnosis when that fails.

use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::BodyExt as _;
use kube::client::Body;
use kube::config::Kubeconfig;

use super::client::{Retries, connect_with};
use super::diagnose::{self, Cause, ParentAuthKind};
use crate::route::SOCKETS_PATH;

/// A successful probe.
#[derive(Debug)]
pub struct Reached {
    pub git_version: String,
    pub version_latency: Duration,
    pub api_latency: Duration,
}

/// A failed probe: what was asked, what came back, and why.
#[derive(Debug)]
pub struct Failed {
    pub path: &'static str,
    pub status: Option<u16>,
    pub message: String,
    pub cause: Cause,
}

impl Failed {
    /// One line: what failed, the server's words, the cause and the fix.
    pub fn describe(&self, context: &str) -> String {
        let answer = match self.status {
            Some(code) => format!("HTTP {code}"),
            None => "no HTTP answer".to_string(),
        };
        let message = if self.message.is_empty() { String::new() } else { format!(" ({})", self.message) };
        format!(
            "context {context:?}: GET {} through the proxy failed: {answer}{message}: {}: {}",
            self.path,
            self.cause,
            self.cause.hint()
        )
    }
}

/// Probes `context` of `kubeconfig`. `secrets` are redacted from every message.
pub async fn probe(
    kubeconfig: Kubeconfig,
    context: &str,
    timeout: Duration,
    secrets: &[String],
) -> Result<Result<Reached, Failed>> {
    let auth = parent_auth_kind(&kubeconfig, context);
    let conn = connect_with(kubeconfig, Some(context), timeout, Retries::None).await?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let (version, version_latency) = match get(&conn.client, "/version", timeout).await {
        Answer::Ok(body, latency) => (body, latency),
        failure => return Ok(Err(diagnose_failure(failure, "/version", auth, &conn, timeout, &secrets).await)),
    };
    let git_version = serde_json::from_str::<serde_json::Value>(&version)
        .ok()
        .and_then(|v| v["gitVersion"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    let api_latency = match get(&conn.client, "/api", timeout).await {
        Answer::Ok(_, latency) => latency,
        failure => return Ok(Err(diagnose_failure(failure, "/api", auth, &conn, timeout, &secrets).await)),
    };
    Ok(Ok(Reached { git_version, version_latency, api_latency }))
}

enum Answer {
    Ok(String, Duration),
    Status(u16, String),
    Transport(String),
}

async fn get(client: &kube::Client, path: &str, timeout: Duration) -> Answer {
    let start = Instant::now();
    let request = match http::Request::get(path).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => return Answer::Transport(e.to_string()),
    };
    let call = async {
        let response = client.send(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Ok::<_, kube::Error>((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Answer::Transport(format!("timed out after {}s", timeout.as_secs())),
        Ok(Err(e)) => Answer::Transport(format!("{:#}", anyhow::Error::from(e))),
        Ok(Ok((200, body))) => Answer::Ok(body, start.elapsed()),
        Ok(Ok((status, body))) => Answer::Status(status, body),
    }
}

async fn diagnose_failure(
    answer: Answer,
    path: &'static str,
    auth: ParentAuthKind,
    conn: &super::client::Connection,
    timeout: Duration,
    secrets: &[&str],
) -> Failed {
    match answer {
        Answer::Status(status, body) => {
            let message = diagnose::server_message(&body, secrets);
            let parent_accepts = if status == 401 { parent_accepts(conn, timeout).await } else { None };
            Failed {
                path,
                status: Some(status),
                cause: diagnose::from_response(status, &message, auth, parent_accepts),
                message,
            }
        }
        Answer::Transport(chain) => {
            let message = diagnose::redact(&chain, secrets).replace('\n', " ");
            Failed { path, status: None, cause: diagnose::from_transport(&chain), message }
        }
        Answer::Ok(..) => Failed { path, status: Some(200), cause: Cause::Unexpected, message: String::new() },
    }
}

/// Whether the parent itself accepts the kubeconfig's parent credentials: its
/// own `/version`, without the proxy path and without impersonation. Tells a
/// 401 from the parent from a 401 the child sent back through the hub.
async fn parent_accepts(conn: &super::client::Connection, timeout: Duration) -> Option<bool> {
    let mut config = conn.config.clone();
    let url = config.cluster_url.to_string();
    let base = url.find(&format!("/{SOCKETS_PATH}/")).map(|i| &url[..i])?;
    config.cluster_url = base.parse().ok()?;
    config.auth_info.impersonate = None;
    config.auth_info.impersonate_groups = None;
    config.auth_info.impersonate_uid = None;
    config.auth_info.impersonate_user_extra = None;
    let client = kube::Client::try_from(config).ok()?;
    match get(&client, "/version", timeout).await {
        Answer::Ok(..) => Some(true),
        Answer::Status(401, _) => Some(false),
        Answer::Status(..) => Some(true),
        Answer::Transport(_) => None,
    }
}

/// Anonymous unless the user entry carries credentials of its own.
fn parent_auth_kind(kubeconfig: &Kubeconfig, context: &str) -> ParentAuthKind {
    let user = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    let auth = user.and_then(|u| kubeconfig.auth_infos.iter().find(|a| a.name == u)).and_then(|a| a.auth_info.as_ref());
    match auth {
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
