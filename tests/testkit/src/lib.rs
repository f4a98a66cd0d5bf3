//! Test support for clusternet-kubeconfig (not shipped).
//!
//! [`Recorder`]: a loopback HTTPS server (rustls, HTTP/1.1, keep-alive, one
//! thread per connection) that records every request and answers like the
//! parent kube-apiserver + clusternet-hub of a Clusternet parent cluster:
//! requests under `/apis/proxies.clusternet.io/v1alpha1/sockets/<id>/proxy/<route>/`
//! are answered as the child cluster's kube-apiserver would answer what follows
//! the route (`/version`, `/api`, `/apis`, `/api/v1`, `/api/v1/namespaces`).
//! With [`Clusters::Parent`] or [`Clusters::Fixed`] it behaves like
//! clusternet-hub instead (see the `hub` module): the hub's checks in the
//! hub's order, then a real dial to the child. The `hub-standin` binary runs
//! it with given certificates behind a real kube-apiserver's aggregator.

mod agent;
mod answer;
mod der;
mod forward;
mod http;
mod hub;
pub mod lab;
pub mod oidc;
pub mod proxies;
mod raw;
pub mod serving;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use agent::run_agent;
pub use answer::{CHILD_GIT_VERSION, CHILD_NAMESPACE, HUB_GIT_VERSION, PROXY_GROUP_PREFIX};
pub use raw::{RawAnswer, RawServer};

/// What the hub knows of one cluster: its ManagedCluster's status, and
/// whether its agent has a session with the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    /// `status.apiserverURL` (None: not reported).
    pub apiserver_url: Option<String>,
    /// `status.useSocket`: requests go through the agent's session.
    pub use_socket: bool,
    /// The agent's session with the hub is up (with [`Clusters::Parent`]:
    /// its `agent-standin` is connected).
    pub session: bool,
}

/// The parent kube-apiserver, for reading ManagedClusters live: its URL, the
/// CA of its serving certificate, and a client certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct ParentApi {
    pub url: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where the stand-in finds the clusters behind `sockets/<id>`.
#[derive(Debug, Clone, Default)]
pub enum Clusters {
    /// Offline recorder: every ID is answered by the built-in child, on every
    /// route, without the hub's checks.
    #[default]
    Canned,
    /// These clusters (ID → status), with the hub's checks and a real dial:
    /// offline tests of the hub's behaviour.
    Fixed(BTreeMap<String, ClusterStatus>),
    /// The parent's ManagedClusters, read at each request, as the hub does.
    Parent(ParentApi),
}

/// Serving certificate, key and (optional) client CA, as PEM text.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The serving certificate chain (leaf first).
    pub cert_chain_pem: String,
    pub key_pem: String,
    /// CA for optional client certificates (e.g. the front-proxy CA).
    pub client_ca_pem: Option<String>,
}

/// How a [`Recorder`] behaves. `RecorderConfig::default()` is a
/// well-behaved hub (canned clusters) on `127.0.0.1:0` with generated
/// certificates.
#[derive(Debug, Clone, Default)]
pub struct RecorderConfig {
    /// Where to listen; default `127.0.0.1:0`.
    pub listen: Option<SocketAddr>,
    /// Serving certificate and client CA; default: generated at start.
    pub tls: Option<TlsMaterial>,
    /// Append each request as one JSON line (a [`RecordedRequest`]) to this file.
    pub record_file: Option<PathBuf>,
    /// The clusters behind the proxy.
    pub clusters: Clusters,
    /// The hub runs without the SocketConnection feature gate.
    pub feature_gate_off: bool,
    /// Serve the canned child at the root (`/version`, `/api`, ...) instead
    /// of the hub: a child apiserver that accepts any credentials.
    pub serve_child: bool,
    /// The hub's request timeout: a non-upgraded request still going after
    /// it is cut. Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Option<Duration>,
    /// With [`Clusters::Parent`]: where agents (`agent-standin`) connect; a
    /// cluster has a session while its agent is connected. None: no agent
    /// ever connects.
    pub agents_socket: Option<PathBuf>,
}

/// clusternet-hub's request timeout: its generic apiserver's default
/// `--request-timeout` (one minute), for every non-upgraded request, watches too.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// As received, without the query.
    pub path: String,
    pub query: Option<String>,
    /// Names lower-cased, values as received, in order.
    pub headers: Vec<(String, String)>,
    /// CN of the TLS client certificate, if one was presented.
    pub client_cert_cn: Option<String>,
    /// The TLS client certificate (DER, standard base64), if one was presented.
    pub client_cert_der_b64: Option<String>,
    /// When the hub dialled the child: the child URL the request was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<String>,
    /// The status code of the answer (the child's, when dialled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every value of a header (name case-insensitive), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// Headers whose lower-cased name starts with `prefix` (lower-case it).
    pub fn headers_with_prefix(&self, prefix: &str) -> Vec<(&str, &str)> {
        let prefix = prefix.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| n.starts_with(&prefix)).map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }
}

/// State shared by the connection threads.
pub(crate) struct Shared {
    pub(crate) lookup: hub::Lookup,
    pub(crate) feature_gate_off: bool,
    pub(crate) serve_child: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) sessions: agent::Sessions,
    requests: Mutex<Vec<RecordedRequest>>,
    record_file: Option<Mutex<File>>,
    stop: AtomicBool,
}

impl Shared {
    pub(crate) fn record(&self, req: RecordedRequest) {
        if let Some(file) = &self.record_file {
            let mut line = serde_json::to_string(&req).expect("a request serializes");
            line.push('\n');
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
                eprintln!("hub-standin: cannot append to the record file: {e}");
            }
        }
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(req);
    }
}

/// A generated CA: certificate and key.
pub(crate) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub(crate) fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key generation");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).expect("CA self-signed");
        Ca { cert, key }
    }

    pub(crate) fn issue(&self, cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        self.issue_to(None, cn, sans, usage)
    }

    /// A leaf certificate and key (PEM) for `O=<organization>, CN=<cn>` (a
    /// Kubernetes group and user), valid for `sans` (IP addresses or DNS names).
    fn issue_to(
        &self,
        organization: Option<&str>,
        cn: &str,
        sans: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().expect("key generation");
        let mut params = CertificateParams::new(sans).expect("leaf params");
        // Without rcgen's default CN, the subject reads `O=<group>, CN=<user>` in that order.
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(o) = organization {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("leaf signed by CA");
        (cert.pem(), key.serialize_pem())
    }
}

/// A self-signed certificate and key (PEM) for tests that need a client
/// certificate nobody trusts, e.g. child credentials that only travel as data.
pub fn self_signed_cert(cn: &str) -> (String, String) {
    let key = KeyPair::generate().expect("key generation");
    let mut params = CertificateParams::new(vec![cn.to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

/// The recording HTTPS server. Stops accepting when dropped.
pub struct Recorder {
    addr: SocketAddr,
    ca_pem: String,
    client_ca: Option<Ca>,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Binds (default `127.0.0.1:0`) and starts serving in background threads.
    pub fn start(config: RecorderConfig) -> io::Result<Recorder> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let (material, ca_pem, client_ca) = match config.tls {
            Some(m) => {
                let ca_pem = m.cert_chain_pem.clone();
                (m, ca_pem, None)
            }
            None => {
                let server_ca = Ca::new("testkit serving CA");
                let (cert, key) = server_ca.issue(
                    "127.0.0.1",
                    vec!["127.0.0.1".to_string(), "localhost".to_string()],
                    ExtendedKeyUsagePurpose::ServerAuth,
                );
                let client_ca = Ca::new("testkit client CA");
                let material =
                    TlsMaterial { cert_chain_pem: cert, key_pem: key, client_ca_pem: Some(client_ca.cert.pem()) };
                (material, server_ca.cert.pem(), Some(client_ca))
            }
        };
        let tls = server_config(&material).map_err(invalid)?;
        let record_file = match &config.record_file {
            Some(path) => Some(Mutex::new(OpenOptions::new().create(true).append(true).open(path)?)),
            None => None,
        };
        let lookup = match config.clusters {
            Clusters::Canned => hub::Lookup::Canned,
            Clusters::Fixed(map) => hub::Lookup::Fixed(map),
            Clusters::Parent(api) => hub::Lookup::Parent(hub::Parent::new(&api).map_err(invalid)?),
        };
        let listener = TcpListener::bind(config.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            lookup,
            feature_gate_off: config.feature_gate_off,
            serve_child: config.serve_child,
            request_timeout: config.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            sessions: agent::Sessions::default(),
            requests: Mutex::new(Vec::new()),
            record_file,
            stop: AtomicBool::new(false),
        });
        if let Some(path) = &config.agents_socket {
            shared.sessions.listen(path)?;
        }
        let accept_shared = shared.clone();
        let accept_thread = std::thread::Builder::new()
            .name("recorder-accept".into())
            .spawn(move || accept_loop(listener, tls, accept_shared))?;
        Ok(Recorder { addr, ca_pem, client_ca, shared, accept_thread: Some(accept_thread) })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the serving certificate (with given
    /// [`TlsMaterial`]: the serving chain itself).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A client certificate and key (PEM) signed by the client CA, with
    /// `cn` as its Common Name. Panics with given [`TlsMaterial`] (no CA key).
    pub fn issue_client_cert(&self, cn: &str) -> (String, String) {
        self.client_ca.as_ref().expect("issue_client_cert needs the generated client CA").issue(
            cn,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets the requests recorded so far (not those in the record file).
    pub fn clear(&self) {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Blocks until the accept loop ends (never, unless it fails).
    pub fn wait(mut self) {
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("serving certificate: {e}"))?;
    if chain.is_empty() {
        return Err("serving certificate: no PEM certificate found".into());
    }
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes()).map_err(|e| format!("serving key: {e}"))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &m.client_ca_pem {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let cert = cert.map_err(|e| format!("client CA: {e}"))?;
                roots.add(cert).map_err(|e| format!("client CA: {e}"))?;
            }
            if roots.is_empty() {
                return Err("client CA: no PEM certificate found".into());
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| format!("serving certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn accept_loop(listener: TcpListener, tls: Arc<rustls::ServerConfig>, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let tls = tls.clone();
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("recorder-conn".into())
            .spawn(move || http::serve_connection(stream, tls, &shared));
    }
}

/// The first run of 1 to 4 words that `line` says twice in a row ("unexpected
/// answer: unexpected answer"), ignoring case and punctuation, if any.
pub fn doubled_words(line: &str) -> Option<String> {
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    for k in 1..=4 {
        for i in 0..words.len().saturating_sub(2 * k - 1) {
            if words[i..i + k] == words[i + k..i + 2 * k] {
                return Some(words[i..i + k].join(" "));
            }
        }
    }
    None
}

#[cfg(test)]
mod doubled_tests {
    #[test]
    fn finds_doubled_runs() {
        assert_eq!(
            super::doubled_words("x: unexpected answer: unexpected answer: see").as_deref(),
            Some("unexpected answer")
        );
        assert_eq!(super::doubled_words("the the end").as_deref(), Some("the"));
        assert_eq!(super::doubled_words("agent disconnected: the agent has no session"), None);
    }
}
