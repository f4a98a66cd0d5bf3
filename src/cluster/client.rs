//! Connecting to a cluster: a kube client from a kubeconfig, and the small
//! runtime that drives it. Only the commands that talk to a cluster get here,
//! so the offline `gen` never starts a runtime.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{tls, transport};
use crate::kubeconfig::load::ParentSource;

/// Runs `future` to completion on a single-threaded runtime.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(future))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// A connection with the runtime that drives it, for a synchronous caller
/// that asks the cluster several things in turn (the client's background
/// task lives on that runtime, so both stay together).
pub struct Session {
    // Declared first: dropped before the runtime that drives it.
    pub conn: Connection,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// A session for `context` of the kubeconfig named by `source`.
    pub fn connect(source: &ParentSource, context: Option<&str>, timeout: Duration) -> Result<Session> {
        let runtime = runtime()?;
        let conn = runtime.block_on(connect_source(source, context, timeout))?;
        Ok(Session { conn, runtime })
    }

    /// Runs `future` (a request on [`Session::conn`]) to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// A connected cluster, named for messages by its context.
pub struct Connection {
    pub client: kube::Client,
    pub context: String,
    /// The cluster URL, as kube resolved it.
    pub server: String,
    pub config: kube::Config,
}

/// Reads the kubeconfig named by `source` as kubectl reads it (see
/// `load::as_json`); nothing loaded here is ever written back.
pub fn read_kubeconfig(source: &ParentSource) -> Result<Kubeconfig> {
    let read = |path: &std::path::Path| {
        let json = crate::kubeconfig::load::as_json(path)?;
        Kubeconfig::from_yaml(&json).map_err(|e| anyhow!("kubeconfig {}: {e}", path.display()))
    };
    match source {
        ParentSource::Flag(path) | ParentSource::Home(path) => read(path),
        ParentSource::EnvList(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in paths.iter().filter(|p| p.exists()) {
                let next = read(path)?;
                merged = Some(match merged {
                    None => next,
                    Some(m) => m.merge(next).map_err(|e| anyhow!("KUBECONFIG: {e}"))?,
                });
            }
            merged.ok_or_else(|| {
                anyhow!(
                    "none of the files in KUBECONFIG exists ({}); pass --kubeconfig PATH or fix KUBECONFIG",
                    crate::kubeconfig::load::describe_missing(paths)
                )
            })
        }
    }
}

/// A client for `context` of the kubeconfig named by `source`.
pub async fn connect_source(source: &ParentSource, context: Option<&str>, timeout: Duration) -> Result<Connection> {
    connect(read_kubeconfig(source)?, context, timeout).await
}

/// A client for `context` (or the current context) of `kubeconfig`, with
/// kube's default retries.
pub async fn connect(kubeconfig: Kubeconfig, context: Option<&str>, timeout: Duration) -> Result<Connection> {
    connect_with(kubeconfig, context, timeout, Retries::KubeDefault).await
}

/// Whether kube retries 429/503/504 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    KubeDefault,
    /// A probe must report the hub's first answer (its 503s are not
    /// transient: feature gate off, no apiserver URL), not retry it until the
    /// timeout.
    None,
}

/// [`connect`], choosing the retries.
pub async fn connect_with(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    timeout: Duration,
    retries: Retries,
) -> Result<Connection> {
    let context_name = context
        .map(str::to_string)
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| anyhow!("the kubeconfig has no current-context; pass --context NAME"))?;
    let options = KubeConfigOptions { context: Some(context_name.clone()), cluster: None, user: None };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| anyhow!("context {context_name:?}: {e}"))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.default_retry = retries == Retries::KubeDefault;
    let server = config.cluster_url.to_string();
    crate::trace::line(|| {
        let server = crate::route::without_userinfo(&server);
        format!("connecting to {server} (context {context_name:?}, timeout {}s)", timeout.as_secs())
    });
    tls::install_provider();
    let client = kube::Client::try_from(config.clone())
        .map_err(|e| anyhow!("context {context_name:?}: {}", tls::client_setup_error(&e)))?;
    Ok(Connection { client, context: context_name, server, config })
}

/// Whether the cluster behind `conn` serves Clusternet's ManagedCluster API
/// (`/apis/clusters.clusternet.io`, which every Clusternet parent has): `Some(false)`
/// on 404, `None` when the answer does not tell (403, network). One GET, asked only
/// after something failed, to tell a child's (or any other cluster's)
/// kubeconfig given as the parent.
pub async fn serves_clusternet(conn: &Connection) -> Option<bool> {
    let request = http::Request::get("/apis/clusters.clusternet.io").body(kube::client::Body::empty()).ok()?;
    let call = conn.client.send(request);
    match tokio::time::timeout(conn.config.read_timeout.unwrap_or(Duration::from_secs(10)), call).await {
        Ok(Ok(response)) => match response.status().as_u16() {
            200 => Some(true),
            404 => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Describes a kube API error in one line for `context`, with the usual fixes.
pub fn api_error(err: kube::Error, context: &str, what: &str) -> anyhow::Error {
    match err {
        kube::Error::Api(status) => {
            let code = status.code;
            let fix = match code {
                400 if status.message.contains("HTTPS server") => {
                    "server is http:// but this port speaks HTTPS: change server to https:// in the kubeconfig"
                }
                401 => "the parent rejected the credentials of this context: refresh them (or pick another --context)",
                403 => "this identity lacks the permission: ask a cluster admin, or use another --context",
                404 => {
                    "not found: is Clusternet installed on this parent (its CRDs), and is this the right --context? (the child's own kubeconfig is not the parent's)"
                }
                _ => "see the message from the server",
            };
            anyhow!("{what} in context {context:?} failed: {code} {}: {fix}", status.message.replace('\n', " "))
        }
        other => anyhow!("{what} in context {context:?} failed: {}", transport::describe(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_do_not_retry_503() {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n\
             users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n",
        )
        .unwrap();
        let retry = block_on(async {
            let default = connect(kubeconfig.clone(), None, Duration::from_secs(1)).await.unwrap();
            let probe = connect_with(kubeconfig, None, Duration::from_secs(1), Retries::None).await.unwrap();
            (default.config.default_retry, probe.config.default_retry)
        })
        .unwrap();
        assert_eq!(retry, (true, false), "kube retries 429/503/504 by default; a probe must not");
    }
}
