//! `proxy`'s side towards the parent: kube's own TLS, authentication and
//! impersonation layers for one generated context, so that every request
//! carries what the generated kubeconfig says, encoded as client-go encodes
//! it (parent credentials, `Impersonate-User`, `Impersonate-Extra-<key>` with
//! the key percent-escaped) and goes to the context's server, socket-proxy
//! path included.
//!
//! The layers wrap hyper's client directly rather than `kube::Client`: kube's
//! request body is whole bytes, and the proxy streams request bodies (a
//! client's upload is not held in memory, however large or however many).

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Result, anyhow};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use kube::config::Kubeconfig;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt as _};

use super::{client, forward_proxy, tls, transport};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A request body: any stream of bytes. A type of its own, not an alias of
/// the boxed body: a `dyn Error` in the request type of the service trips the
/// compiler's check that the server's task is `Send` for every lifetime.
pub struct RequestBody(UnsyncBoxBody<Bytes, BoxError>);

impl RequestBody {
    pub fn new<B>(body: B) -> RequestBody
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        RequestBody(body.map_err(Into::into).boxed_unsync())
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.0.size_hint()
    }
}

type Service = BoxCloneSyncService<http::Request<RequestBody>, http::Response<Incoming>, BoxError>;

/// Where `proxy` forwards to: one context of a generated kubeconfig (read
/// from a file, or built in memory by `gen`'s pipeline).
pub struct Target {
    pub kubeconfig: Kubeconfig,
    pub context: String,
}

/// The connected upstream; a clone shares its connections and credentials.
#[derive(Clone)]
pub struct Upstream {
    service: Service,
    /// The context's server, without user info, for messages.
    pub server: String,
    /// Every credential value this upstream has put on a request or holds for
    /// TLS, so that the proxy can keep them out of what it shows.
    sent: Arc<RwLock<Vec<String>>>,
}

impl Upstream {
    /// A client for `target`; `connect_timeout` bounds each connection to the parent.
    pub async fn connect(target: Target, connect_timeout: Duration) -> Result<Upstream> {
        Upstream::connect_remembering(target, connect_timeout, Arc::new(RwLock::new(Vec::new()))).await
    }

    /// A client for `target` (renewed credentials) that keeps remembering
    /// what this one sent: an old credential stays out of what is shown.
    pub async fn renewed(&self, target: Target, connect_timeout: Duration) -> Result<Upstream> {
        Upstream::connect_remembering(target, connect_timeout, self.sent.clone()).await
    }

    async fn connect_remembering(
        target: Target,
        connect_timeout: Duration,
        sent: Arc<RwLock<Vec<String>>>,
    ) -> Result<Upstream> {
        if let Ok(mut known) = sent.write() {
            for value in held_credentials(&target) {
                push_secret(&mut known, &value);
            }
        }
        let (config, context) = client::config(target.kubeconfig, Some(&target.context)).await?;
        let server = crate::route::without_userinfo(&config.cluster_url.to_string());
        tls::install_provider();
        let setup = |e: kube::Error| anyhow!("context {context:?}: {}", tls::client_setup_error(&e));
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        // A watch or `logs -f` may stay quiet for minutes: no read or write
        // timeout, and no retries (the client gets the parent's first answer:
        // retrying a POST is not the proxy's call).
        // Through the proxy kubectl would use (the cluster's proxy-url, or the environment's).
        let tcp = forward_proxy::connector(config.proxy_url.as_ref(), http);
        let connector = tls::https_connector(&config, tcp).map_err(setup)?;
        let hyper = Client::builder(TokioExecutor::new()).build::<_, RequestBody>(connector);
        let recorder = sent.clone();
        // Outermost first: the server's URL and path prefix, the parent
        // credentials, the impersonation headers, then what was put on the
        // request is remembered.
        let stack = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(config.auth_layer().map_err(setup)?)
            .layer(config.extra_headers_layer().map_err(setup)?)
            .map_request(move |request: http::Request<RequestBody>| {
                remember(&recorder, request.headers());
                request
            })
            .map_err(BoxError::from)
            .service(hyper);
        Ok(Upstream { service: BoxCloneSyncService::new(stack), server, sent })
    }

    /// Sends `request` (its URI is path and query only: the context's server
    /// and path prefix are put in front); its body streams up, the answer
    /// streams back. An error below HTTP comes back as one line with the
    /// cause and the fix.
    pub async fn send(&self, request: http::Request<RequestBody>) -> Result<http::Response<Incoming>, String> {
        self.service.clone().oneshot(request).await.map_err(|e| transport::describe(&*e))
    }

    /// The credential values this upstream holds or has sent so far (the
    /// parent token, the child token and other impersonated extras, client
    /// certificate and key data).
    pub fn credentials(&self) -> Vec<String> {
        self.sent.read().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Values shorter than this are not worth hiding (and would hide common words).
const SHORTEST_SECRET: usize = 8;

/// The secret values of the context's user entry: known before any request.
fn held_credentials(target: &Target) -> Vec<String> {
    let named = target.kubeconfig.contexts.iter().find(|c| c.name == target.context);
    let user_name = named.and_then(|c| c.context.as_ref()).and_then(|c| c.user.clone());
    let user = target.kubeconfig.auth_infos.iter().find(|u| Some(&u.name) == user_name.as_ref());
    let Some(info) = user.and_then(|u| u.auth_info.as_ref()) else { return Vec::new() };
    let mut out = Vec::new();
    // kube serializes its secret strings as they are, which is what is wanted here.
    if let Ok(value) = serde_json::to_value(info) {
        for key in ["token", "password", "client-certificate-data", "client-key-data"] {
            if let Some(s) = value.get(key).and_then(|v| v.as_str()) {
                push_secret(&mut out, s);
            }
        }
    }
    for values in info.impersonate_user_extra.iter().flat_map(|m| m.values()) {
        for v in values {
            push_secret(&mut out, v);
        }
    }
    out
}

/// Records the credential values of an outgoing request: the parent
/// credentials (an exec plugin's or a token file's may change over time) and
/// the impersonated extras (the child token).
fn remember(sent: &RwLock<Vec<String>>, headers: &http::HeaderMap) {
    let values = headers.iter().filter_map(|(name, value)| {
        let value = value.to_str().ok()?;
        match name.as_str() {
            "authorization" => Some(value.split_once(' ').map_or(value, |(_, v)| v.trim())),
            n if n.starts_with("impersonate-extra-") => Some(value),
            _ => None,
        }
    });
    let new: Vec<&str> = match sent.read() {
        Ok(known) => values.filter(|v| v.len() >= SHORTEST_SECRET && !known.iter().any(|k| k == v)).collect(),
        Err(_) => return,
    };
    if !new.is_empty()
        && let Ok(mut known) = sent.write()
    {
        for v in new {
            push_secret(&mut known, v);
        }
    }
}

fn push_secret(out: &mut Vec<String>, value: &str) {
    let value = value.trim();
    if value.len() >= SHORTEST_SECRET && !out.iter().any(|v| v == value) {
        out.push(value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_credentials_are_the_users_secret_values() {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n\
             users:\n- name: u\n  user: {token: parent-token-value, client-key-data: a2V5LWRhdGEtdmFsdWU=, as: clusternet, \
             as-user-extra: {clusternet-token: [child-token-value]}}\n- name: other\n  user: {token: someone-elses}\n\
             contexts:\n- name: c\n  context: {cluster: c, user: u}\n",
        )
        .unwrap();
        let held = held_credentials(&Target { kubeconfig, context: "c".into() });
        assert_eq!(held, ["parent-token-value", "a2V5LWRhdGEtdmFsdWU=", "child-token-value"]);

        let sent = RwLock::new(Vec::new());
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Bearer refreshed-token".parse().unwrap());
        headers.insert("impersonate-user", "clusternet".parse().unwrap());
        headers.insert("impersonate-extra-clusternet-token", "child-token-value".parse().unwrap());
        remember(&sent, &headers);
        remember(&sent, &headers);
        assert_eq!(*sent.read().unwrap(), ["refreshed-token", "child-token-value"]);
    }
}
