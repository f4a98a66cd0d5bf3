//! Connecting to a cluster: a kube client from a kubeconfig, and the small
//! runtime that drives it. Only the commands that talk to a cluster get here,
//! so the offline `gen` never starts a runtime.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use kube::client::retry::RetryPolicy;
use kube::config::Kubeconfig;
use tower::ServiceBuilder;
use tower::retry::RetryLayer;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

use super::{forward_proxy, tls, transport};
use crate::kubeconfig::emit::{self, Entries};
use crate::kubeconfig::flatten;
use crate::kubeconfig::select::Selection;
use crate::secret::Secret;

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
    /// A session for the selected context; with `bearer`, authenticated by
    /// that token instead of the context's user (`--parent-auth oidc`).
    pub fn connect(selection: &Selection, bearer: Option<&Secret>, timeout: Duration) -> Result<Session> {
        let kubeconfig = with_bearer(kubeconfig_for(selection)?, bearer);
        let runtime = runtime()?;
        let conn = runtime.block_on(connect(kubeconfig, None, timeout))?;
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
    pub config: kube::Config,
}

/// The selected context as kube's client takes it, built from the kubeconfig
/// this tool has already read (kubectl's YAML and KUBECONFIG rules), so the
/// file is parsed once. Files the entries name are embedded, as
/// `kubectl config view --minify --flatten` would, so kube reads none itself.
pub fn kubeconfig_for(selection: &Selection) -> Result<Kubeconfig> {
    let cluster = selection.cluster;
    let ca_data = flatten::ca_data(cluster, selection.cluster_dir, selection.cluster_name)?;
    // The server as kubectl dials it (one without a scheme is http://).
    let server = selection.server()?;
    let mut cluster_entry = emit::cluster_entry(cluster, server.clone().unwrap_or_default(), ca_data);
    // Extensions are the parent's own business, not kube's; a missing server
    // is left for kube to refuse.
    cluster_entry.remove("extensions");
    if server.is_none() {
        cluster_entry.remove("server");
    }
    let entry = Entries {
        name: selection.context_name.to_string(),
        cluster: cluster_entry,
        context: emit::context_entry(selection.context_name, selection.namespace, None),
        // kubectl takes a server without a scheme for plain HTTP before it
        // reads the user, and sends it no credentials: nor does this tool.
        user: match server.as_deref() == selection.cluster.server.as_deref().map(str::trim) {
            true => flatten::flatten_user(selection.user, selection.user_dir, selection.user_name)?,
            false => Default::default(),
        },
    };
    kubeconfig_of(&entry)
}

/// One entry (a generated one, or the selected context as [`kubeconfig_for`]
/// makes it) as a kubeconfig of its own, for kube's client: the one bridge
/// from this tool's kubeconfig model to kube's.
pub fn kubeconfig_of(entry: &Entries) -> Result<Kubeconfig> {
    let doc = emit::document(std::slice::from_ref(entry), Some(&entry.name));
    // kube's own messages quote values; never let one carry a credential.
    serde_yaml::from_value(doc)
        .map_err(|_| anyhow!("context {:?}: its user entry is not one kube's client can use", entry.name))
}

/// `kubeconfig` whose users authenticate with `bearer` alone, when given:
/// the CI job's OIDC token, in place of the parent kubeconfig's user or of a
/// generated entry's exec plugin (which would fetch another). The
/// impersonation (of `clusternet`, with the child's extras) stays.
pub fn with_bearer(mut kubeconfig: Kubeconfig, bearer: Option<&Secret>) -> Kubeconfig {
    let Some(token) = bearer else {
        return kubeconfig;
    };
    for user in &mut kubeconfig.auth_infos {
        let old = user.auth_info.take().unwrap_or_default();
        user.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.expose().to_string().into()),
            impersonate: old.impersonate,
            impersonate_uid: old.impersonate_uid,
            impersonate_groups: old.impersonate_groups,
            impersonate_user_extra: old.impersonate_user_extra,
            ..Default::default()
        });
    }
    kubeconfig
}

/// Who the parent says the connection's user is (a SelfSubjectReview): one
/// request, made first, so that a refused credential is reported as such.
pub async fn who_am_i(conn: &Connection) -> Result<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: kube::Api<SelfSubjectReview> = kube::Api::all(conn.client.clone());
    let review = SelfSubjectReview { metadata: Default::default(), status: None };
    let answer = api
        .create(&kube::api::PostParams::default(), &review)
        .await
        .map_err(|e| api_error(e, &conn.context, "asking the parent who this user is (SelfSubjectReview)"))?;
    Ok(answer.status.and_then(|s| s.user_info).and_then(|u| u.username).unwrap_or_default())
}

/// kube's client configuration for `context` (or the current context) of
/// `kubeconfig`, with the context's name; the proxy is the one kubectl would
/// use (see [`forward_proxy`]).
pub async fn config(kubeconfig: Kubeconfig, context: Option<&str>) -> Result<(kube::Config, String)> {
    let context_name = context
        .map(str::to_string)
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| anyhow!("the kubeconfig has no current-context"))?;
    let named = |name: &str| kubeconfig.contexts.iter().find(|c| c.name == name).and_then(|c| c.context.clone());
    let chosen = named(&context_name).ok_or_else(|| anyhow!("context {context_name:?} is not in the kubeconfig"))?;
    let cluster =
        kubeconfig.clusters.iter().find(|c| c.name == chosen.cluster).and_then(|c| c.cluster.clone()).ok_or_else(
            || anyhow!("context {context_name:?}: its cluster {:?} is not in the kubeconfig", chosen.cluster),
        )?;
    let mut user = chosen
        .user
        .as_ref()
        .and_then(|name| kubeconfig.auth_infos.iter().find(|u| &u.name == name))
        .and_then(|u| u.auth_info.clone())
        .unwrap_or_default();
    let server = cluster.server.as_deref().unwrap_or_default();
    // A server kept as written may hold what Go's net/url encodes when it
    // sends (an IDN host, a space in the path); the url crate encodes it alike.
    let cluster_url: http::Uri = server
        .parse()
        .or_else(|_| url::Url::parse(server).map_err(drop).and_then(|u| u.as_str().parse().map_err(drop)))
        .map_err(|_| {
            anyhow!("context {context_name:?}: its server {:?} is not a URL", crate::route::without_userinfo(server))
        })?;
    let proxy =
        forward_proxy::proxy_for(cluster.proxy_url.as_deref(), &cluster_url, &forward_proxy::Environment::of_process())
            .map_err(|e| anyhow!("context {context_name:?}: {e:#}"))?;
    // kube's loader would read HTTPS_PROXY and NO_PROXY by rules of its own
    // (see forward_proxy); the rest is what it does with a kubeconfig.
    if let Some(exec) = user.exec.as_mut()
        && exec.provide_cluster_info
    {
        exec.cluster = Some((&cluster).try_into().map_err(|e| anyhow!("context {context_name:?}: {e}"))?);
    }
    let mut config = kube::Config::new(cluster_url);
    config.default_namespace = chosen.namespace.clone().unwrap_or_else(|| "default".into());
    config.root_cert = root_certs(&cluster).map_err(|e| anyhow!("context {context_name:?}: {e:#}"))?;
    config.accept_invalid_certs = cluster.insecure_skip_tls_verify.unwrap_or(false);
    config.disable_compression = cluster.disable_compression.unwrap_or(false);
    config.tls_server_name = cluster.tls_server_name.clone();
    config.proxy_url = proxy;
    config.auth_info = user;
    Ok((config, context_name))
}

/// The cluster's CA certificates (DER), from certificate-authority-data or
/// the certificate-authority file.
fn root_certs(cluster: &kube::config::Cluster) -> Result<Option<Vec<Vec<u8>>>> {
    use base64::Engine as _;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let pem = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
        (Some(data), _) if !data.trim().is_empty() => {
            let compact: String = data.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| anyhow!("the cluster's certificate-authority-data is not base64"))?
        }
        (_, Some(file)) if !file.is_empty() => {
            crate::fs::read_path(std::path::Path::new(file)).context("the cluster's certificate-authority")?
        }
        _ => return Ok(None),
    };
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("the cluster's certificate-authority is not PEM"))?;
    if certs.is_empty() {
        bail!("the cluster's certificate-authority holds no PEM certificate");
    }
    Ok(Some(certs))
}

/// A client for `context` (or the current context) of `kubeconfig`, for
/// the parent's own API, with kube's default retries (429/503/504, as a
/// just-started apiserver answers `storage is (re)initializing`).
pub async fn connect(kubeconfig: Kubeconfig, context: Option<&str>, timeout: Duration) -> Result<Connection> {
    connect_with(kubeconfig, context, timeout, Retries::KubeDefault).await
}

/// Whether kube retries 429/503/504 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    KubeDefault,
    /// Every request through the socket proxy (probes, token requests):
    /// the hub's and the aggregator's 503s are not transient (hub down,
    /// feature gate off, no apiserver URL), and kube's policy retries them
    /// 15 times with a backoff growing to minutes, whatever `--timeout`
    /// says (a token request through a stopped hub took six minutes): the
    /// first answer is reported.
    None,
}

/// [`connect`], choosing the retries. Each request, its retries included,
/// is bounded by `timeout`.
pub async fn connect_with(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    timeout: Duration,
    retries: Retries,
) -> Result<Connection> {
    let (mut config, context_name) = config(kubeconfig, context).await?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.default_retry = retries == Retries::KubeDefault;
    crate::trace::line(|| {
        let server = crate::route::without_userinfo(&config.cluster_url.to_string());
        let via = config
            .proxy_url
            .as_ref()
            .map(|p| format!(" through proxy {}", forward_proxy::shown(p)))
            .unwrap_or_default();
        format!("connecting to {server}{via} (context {context_name:?}, timeout {}s)", timeout.as_secs())
    });
    let setup = |e: kube::Error| anyhow!("context {context_name:?}: {}", tls::client_setup_error(&e));
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(timeout));
    // Through the proxy kubectl would use, the server's certificate checked as kubectl checks it.
    let https =
        tls::https_connector(&config, forward_proxy::connector(config.proxy_url.as_ref(), tcp)).map_err(setup)?;
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build::<_, kube::client::Body>(https);
    let retries = config.default_retry.then(|| RetryLayer::new(RetryPolicy::server_retry()));
    // kube's own stack (kube's ClientBuilder cannot take this connector),
    // outermost first, in a timeout: a request is over at `timeout`, retries
    // included. kube's policy backs off up to 15 times, for minutes, on
    // 429/503/504; one read timeout bounds one attempt only.
    let service = ServiceBuilder::new()
        .layer(tower::timeout::TimeoutLayer::new(timeout))
        .layer(config.base_uri_layer())
        .option_layer(retries)
        .option_layer(config.auth_layer().map_err(setup)?)
        .layer(config.extra_headers_layer().map_err(setup)?)
        .map_err(BoxError::from)
        .service(hyper);
    let client = kube::Client::new(service, config.default_namespace.clone());
    Ok(Connection { client, context: context_name, config })
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

/// The parent's answer to an API request that failed: shown as its message,
/// and its status code kept for the callers that branch on it (the parent's
/// 401 to an OIDC token), so that none reads it back out of the text.
#[derive(Debug)]
pub struct ApiFailure {
    pub code: u16,
    message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiFailure {}

/// The status code of the parent's answer in `err`'s chain, if it was one.
pub fn api_status(err: &anyhow::Error) -> Option<u16> {
    err.chain().find_map(|c| c.downcast_ref::<ApiFailure>()).map(|f| f.code)
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
            let message =
                format!("{what} in context {context:?} failed: {code} {}: {fix}", status.message.replace('\n', " "));
            anyhow::Error::new(ApiFailure { code, message })
        }
        other => anyhow!("{what} in context {context:?} failed: {}", transport::describe(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::{load, select};

    #[test]
    fn the_proxy_is_not_retried() {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n\
             users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n",
        )
        .unwrap();
        let (parent, proxy) = block_on(async {
            let parent = connect(kubeconfig.clone(), None, Duration::from_secs(1)).await.unwrap();
            let proxy = connect_with(kubeconfig, None, Duration::from_secs(1), Retries::None).await.unwrap();
            (parent, proxy)
        })
        .unwrap();
        assert!(parent.config.default_retry, "the parent's own API: kube retries 429/503/504");
        assert!(!proxy.config.default_retry, "through the proxy: the first answer");
        let secs = Some(Duration::from_secs(1));
        assert_eq!(
            (proxy.config.connect_timeout, proxy.config.read_timeout, proxy.config.write_timeout),
            (secs, secs, secs)
        );
    }

    #[test]
    fn kube_gets_the_selected_context_as_kubectl_reads_it_with_files_embedded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pki")).unwrap();
        std::fs::write(dir.path().join("pki/ca.crt"), "CA").unwrap();
        std::fs::write(dir.path().join("t"), " tok\n").unwrap();
        let path = dir.path().join("config");
        // YAML 1.1 `yes`, relative references, a second document kubectl ignores.
        std::fs::write(
            &path,
            "current-context: a\nclusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: yes, certificate-authority: pki/ca.crt}\n\
             users:\n- name: u\n  user: {tokenFile: t, exec: {command: ./bin/x, apiVersion: client.authentication.k8s.io/v1}}\n\
             contexts:\n- name: a\n  context: {cluster: c, user: u, namespace: ns}\n- name: b\n  context: {cluster: c, user: u}\n---\nignored: 1\n",
        )
        .unwrap();
        let loaded = load::combine(vec![(path.clone(), load::read_file(&path).unwrap())]);
        let kubeconfig = kubeconfig_for(&select::select(&loaded, None).unwrap()).unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some("a"));
        assert_eq!(kubeconfig.contexts.len(), 1, "only the selected context");
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some() && user.token_file.is_none(), "the token file is embedded");
        let exec = user.exec.as_ref().unwrap();
        assert_eq!(exec.command.as_deref(), Some(dir.path().join("./bin/x").to_str().unwrap()));
        let context = kubeconfig.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.namespace.as_deref(), Some("ns"));
    }
}
