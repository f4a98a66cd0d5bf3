//! What clusternet-hub v0.18.1 does with `sockets/<id>/proxy/<rest>`, as
//! observed behind a real kube-apiserver with a real agent and child:
//!
//! 1. the SocketConnection feature gate: off → 503 for every ID;
//! 2. the cluster: a ManagedCluster labelled `clusters.clusternet.io/cluster-id=<id>`
//!    (exact match), read live → none: 400 `no cluster id is <id>`;
//! 3. `status.apiserverURL`, only for the `direct` route → empty: 503;
//! 4. the agent's session, only when `status.useSocket` → none: 400
//!    `cannot proxy through cluster <id>, whose agent is disconnected`
//!    (without `useSocket` the hub still dials through the agent's tunnel,
//!    after the steps below: no session → 500 `failed to find Session for
//!    client <id>`, a Status without a reason);
//! 5. the child credentials from the user extras (keys lower-cased):
//!    `clusternet-token` → `Authorization: Bearer`, and the
//!    `clusternet-certificate`/`clusternet-privatekey` pair → the TLS client
//!    certificate, both together when both are given; a lone certificate or
//!    key is ignored; one that is not base64 → 400 `invalid certificate in
//!    header Clusternet-Certificate: ...`; a pair that does not match → 400
//!    `invalid key pair in header: ...`;
//! 6. the location (`ClusterLocation`): `direct[/rest]` → the apiserver URL
//!    (its path kept) + rest; `<scheme>/<host>[/rest]` → `<scheme>://<host>/rest`.
//!    An empty location path → 301 to `https://<Host><path>/`; `proxy/` →
//!    500 `http: no Host in request URL`; a scheme other than http/https → 500
//!    `unsupported protocol scheme "<x>"`;
//! 7. the child is dialled with TLS verification off; dial and TLS errors
//!    come back as 500 Status without a reason, in Go's words.
//!
//! The agent's session is what the hub keeps in memory while the agent's
//! websocket is up; here, while the cluster's `agent-standin` is connected
//! (see [`crate::agent`]), whatever the `Ready` condition says.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::answer::{self, status_response};
use crate::forward::{self, SendError, Target};
use crate::http::{Request, Response};
use crate::{ClusterStatus, ParentApi, Shared};

/// The label the hub selects ManagedClusters by.
pub const CLUSTER_ID_LABEL: &str = "clusters.clusternet.io/cluster-id";

/// Where the clusters come from.
pub(crate) enum Lookup {
    /// Every ID is a connected cluster answered by the built-in child.
    Canned,
    Fixed(BTreeMap<String, ClusterStatus>),
    Parent(Parent),
}

/// A client of the parent kube-apiserver: its URL, CA and a client certificate.
pub(crate) struct Parent {
    url: String,
    roots: Arc<RootCertStore>,
    identity: Arc<CertifiedKey>,
}

impl Parent {
    pub(crate) fn new(api: &ParentApi) -> Result<Parent, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(api.ca_pem.as_bytes()) {
            roots.add(cert.map_err(|e| format!("parent CA: {e}"))?).map_err(|e| format!("parent CA: {e}"))?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(api.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("parent client certificate: {e}"))?;
        let key =
            PrivateKeyDer::from_pem_slice(api.key_pem.as_bytes()).map_err(|e| format!("parent client key: {e}"))?;
        let identity = CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
            .map_err(|e| format!("parent client certificate and key: {e}"))?;
        forward::parse_url(&api.url).map_err(|e| format!("parent URL {}: {e}", api.url))?;
        Ok(Parent {
            url: api.url.trim_end_matches('/').to_string(),
            roots: Arc::new(roots),
            identity: Arc::new(identity),
        })
    }

    /// The first ManagedCluster labelled with `id`, read now.
    fn cluster(&self, id: &str) -> Result<Option<ClusterStatus>, String> {
        let selector = percent_encode(&format!("{CLUSTER_ID_LABEL}={id}"));
        let url = format!("{}/apis/clusters.clusternet.io/v1beta1/managedclusters?labelSelector={selector}", self.url);
        let response = forward::get(&url, &self.roots, &self.identity)?;
        match response.status {
            200 => {}
            // An ID that is no label value matches nothing.
            400 => return Ok(None),
            code => return Err(format!("listing ManagedClusters: HTTP {code}")),
        }
        let list: Value = serde_json::from_slice(&response.body).map_err(|e| format!("ManagedClusterList: {e}"))?;
        Ok(list["items"].as_array().and_then(|items| items.first()).map(|mc| status_of(&mc["status"])))
    }
}

/// What the hub reads of a ManagedCluster's status (the session is not in
/// it: the caller adds it).
fn status_of(status: &Value) -> ClusterStatus {
    ClusterStatus {
        apiserver_url: status["apiserverURL"].as_str().filter(|u| !u.is_empty()).map(str::to_string),
        use_socket: status["useSocket"].as_bool().unwrap_or(false),
        session: false,
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hub's handling of `<id>/<subresource...>` after the sockets prefix.
/// Returns the answer and, when the child was dialled, its URL.
pub(crate) fn sockets(request: &Request, after_prefix: &str, shared: &Shared) -> (Response, Option<String>) {
    let (id, after_id) = after_prefix.split_once('/').unwrap_or((after_prefix, ""));
    // Everything after `proxy`, from its `/` on ("" for a bare `proxy`).
    let Some(tail) = after_id.strip_prefix("proxy").filter(|t| t.is_empty() || t.starts_with('/')) else {
        return (answer::not_found(), None);
    };
    if id.is_empty() {
        return (answer::not_found(), None);
    }
    if shared.feature_gate_off {
        let message = "featuregate SocketConnection has not been enabled on the server side";
        return (status_response(503, "ServiceUnavailable", message), None);
    }
    let cluster = match &shared.lookup {
        Lookup::Canned => return (answer::canned(request, tail.trim_start_matches('/')), None),
        Lookup::Fixed(clusters) => clusters.get(id).cloned(),
        Lookup::Parent(parent) => match parent.cluster(id) {
            Ok(c) => c.map(|c| ClusterStatus { session: shared.sessions.has(id), ..c }),
            Err(e) => return (status_response(500, "InternalError", &e), None),
        },
    };
    let Some(cluster) = cluster else {
        return (status_response(400, "BadRequest", &format!("no cluster id is {id}")), None);
    };
    let route = tail.trim_start_matches('/').split('/').next().unwrap_or("");
    if route == "direct" && cluster.apiserver_url.is_none() {
        let message = format!("cannot retrieve valid apiserver url for cluster {id}");
        return (status_response(503, "ServiceUnavailable", &message), None);
    }
    if cluster.use_socket && !cluster.session {
        let message = format!("cannot proxy through cluster {id}, whose agent is disconnected");
        return (status_response(400, "BadRequest", &message), None);
    }
    let credentials = match forward::credentials(request) {
        Ok(c) => c,
        Err(message) => return (status_response(400, "BadRequest", &message), None),
    };
    let query = request.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    let target = match location(cluster.apiserver_url.as_deref().unwrap_or(""), tail, &query) {
        Location::Redirect => return (redirect(request), None),
        Location::Error(message) => return (failure_500(&message), None),
        Location::Target(t) => t,
    };
    if !cluster.session {
        // Only without `useSocket` (checked above): the hub's dialer asks the
        // tunnel for the agent's session, and there is none.
        return (failure_500(&format!("failed to find Session for client {id}")), None);
    }
    let url = target.url();
    match forward::send(request, &target, &credentials, request.deadline) {
        Ok(response) => (response, Some(url)),
        Err(SendError::Go(message)) => (failure_500(&message), Some(url)),
        Err(SendError::Deadline) => (timeout_504(), Some(url)),
    }
}

/// The request timeout passed before the child's answer began: the generic
/// apiserver's timeout filter answers for the handler (once the answer has
/// begun, it cuts it instead; see `http::write_relayed`).
fn timeout_504() -> Response {
    let message = "Timeout: request did not complete within requested timeout - context deadline exceeded";
    let mut response = status_response(504, "Timeout", message);
    let mut body: Value = serde_json::from_slice(&response.body).expect("JSON");
    body["details"] = serde_json::json!({});
    response.body = serde_json::to_vec(&body).expect("JSON");
    response
}

/// A Status for an error the hub did not make itself: `reason` left out
/// (metav1.StatusReasonUnknown), as apimachinery's `ErrorToAPIStatus` does.
fn failure_500(message: &str) -> Response {
    let mut response = status_response(500, "", message);
    let mut body: Value = serde_json::from_slice(&response.body).expect("JSON");
    body.as_object_mut().expect("object").remove("reason");
    response.body = serde_json::to_vec(&body).expect("JSON");
    response
}

/// The 301 of the proxy handler for an empty location path, made absolute
/// with the Host the hub was reached at (as the real hub's answer reads).
fn redirect(request: &Request) -> Response {
    let host = request.header("host").unwrap_or("localhost");
    let query = request.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    let location = format!("https://{host}{}/{query}", request.path);
    let body = format!("<a href=\"{location}\">Moved Permanently</a>.\n\n").into_bytes();
    Response {
        status: 301,
        content_type: "text/html; charset=utf-8".to_string(),
        body,
        headers: vec![("Location".to_string(), location)],
        ..Response::default()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Location {
    Target(Target),
    Redirect,
    Error(String),
}

/// The hub's `ClusterLocation` and the proxy handler's checks, for `tail`
/// (everything after `proxy`) and the cluster's apiserver URL.
pub(crate) fn location(apiserver_url: &str, tail: &str, query: &str) -> Location {
    if tail.is_empty() {
        return Location::Redirect;
    }
    let rest = &tail[1..];
    let (route, after_route) = rest.split_once('/').map_or((rest, None), |(r, a)| (r, Some(a)));
    let (scheme, host, port, path) = if route == "direct" {
        let Ok((tls, host, port, base_path)) = forward::parse_url(apiserver_url) else {
            return Location::Error(format!("parse {apiserver_url:?}: invalid URL"));
        };
        let path = match after_route {
            Some(a) => format!("{base_path}/{a}"),
            None => base_path,
        };
        (if tls { "https" } else { "http" }.to_string(), host, port, path)
    } else {
        let Some(after_route) = after_route else {
            // `proxy/<scheme>`: no host, no path.
            return if route.is_empty() {
                Location::Error("http: no Host in request URL".into())
            } else {
                Location::Redirect
            };
        };
        let (authority, path) =
            after_route.split_once('/').map_or((after_route, String::new()), |(h, p)| (h, format!("/{p}")));
        let default_port = if route == "http" { 80 } else { 443 };
        let (host, port) = forward::split_host_port(authority, default_port).unwrap_or_default();
        (route.to_string(), host, port, path)
    };
    if path.is_empty() {
        return Location::Redirect;
    }
    if scheme != "http" && scheme != "https" {
        return Location::Error(format!("unsupported protocol scheme {scheme:?}"));
    }
    if host.is_empty() {
        return Location::Error("http: no Host in request URL".into());
    }
    Location::Target(Target { tls: scheme == "https", host, port, path_and_query: format!("{path}{query}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, tail: &str) -> String {
        match location(url, tail, "?q=1") {
            Location::Target(t) => t.url(),
            other => panic!("{tail}: {other:?}"),
        }
    }

    #[test]
    fn locations_follow_the_hub() {
        assert_eq!(target("https://127.0.0.1:6443", "/direct/api/v1"), "https://127.0.0.1:6443/api/v1?q=1");
        assert_eq!(target("https://c.example/k8s/c1/", "/direct/version"), "https://c.example:443/k8s/c1/version?q=1");
        assert_eq!(target("https://c.example/k8s", "/direct"), "https://c.example:443/k8s?q=1");
        assert_eq!(target("", "/https/localhost:7443/api"), "https://localhost:7443/api?q=1");
        assert_eq!(target("", "/http/[::1]:8001/"), "http://[::1]:8001/?q=1");
        assert_eq!(target("https://x:1", "/direct/"), "https://x:1/?q=1");
        for tail in ["", "/direct", "/https/localhost:7443", "/https", "/ftp/x"] {
            assert_eq!(location("https://x:1", tail, ""), Location::Redirect, "{tail:?}");
        }
        assert_eq!(location("https://x:1", "/", ""), Location::Error("http: no Host in request URL".into()));
        assert_eq!(location("", "/https//version", ""), Location::Error("http: no Host in request URL".into()));
        assert_eq!(location("", "/ftp/x/version", ""), Location::Error("unsupported protocol scheme \"ftp\"".into()));
    }

    #[test]
    fn status_and_selector() {
        let s = status_of(&serde_json::json!({
            "apiserverURL": "https://h:1", "useSocket": true,
            "conditions": [{"type": "Ready", "status": "False"}]
        }));
        assert_eq!(s, ClusterStatus { apiserver_url: Some("https://h:1".into()), use_socket: true, session: false });
        let ready = status_of(&serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert!(!ready.session, "a Ready cluster has no session without its agent");
        assert_eq!(status_of(&Value::Null), ClusterStatus { apiserver_url: None, use_socket: false, session: false });
        assert_eq!(percent_encode("a/b=c d"), "a%2Fb%3Dc%20d");
    }
}
