//! Test support for clusternet-kubeconfig (not shipped).
//!
//! [`Recorder`]: a loopback HTTPS server (rustls, HTTP/1.1, keep-alive, one
//! thread per connection) that records every request and answers like the
//! parent kube-apiserver + clusternet-hub of a Clusternet parent cluster:
//! requests under `/apis/proxies.clusternet.io/v1alpha1/sockets/<id>/proxy/<route>/`
//! are answered as the child cluster's kube-apiserver would answer what follows
//! the route (`/version`, `/api`, `/apis`, `/api/v1`, `/api/v1/namespaces`).
//! The `hub-standin` binary serves the same answers with given certificates,
//! behind a real kube-apiserver's aggregator.

mod answer;
mod der;
mod forward;
mod http;
mod raw;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use answer::{CHILD_GIT_VERSION, CHILD_NAMESPACE, HUB_GIT_VERSION, PROXY_GROUP_PREFIX};
pub use raw::{RawAnswer, RawServer};

/// What the hub answers for a cluster instead of proxying (contract §5), with
/// the hub's own status code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureKind {
    /// 400 `no cluster id is <id>`
    NoCluster,
    /// 400 `cannot proxy through cluster <id>, whose agent is disconnected`
    Disconnected,
    /// 503 `cannot retrieve valid apiserver url for cluster <id>`
    NoApiserverUrl,
    /// 503 `featuregate SocketConnection has not been enabled on the server side`
    FeaturegateOff,
    /// 400 `invalid key pair in header: tls: private key does not match public key`
    InvalidKeyPair,
}

impl FailureKind {
    pub const ALL: [FailureKind; 5] = [
        FailureKind::NoCluster,
        FailureKind::Disconnected,
        FailureKind::NoApiserverUrl,
        FailureKind::FeaturegateOff,
        FailureKind::InvalidKeyPair,
    ];

    /// The command-line spelling: `no-cluster`, `disconnected`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NoCluster => "no-cluster",
            FailureKind::Disconnected => "disconnected",
            FailureKind::NoApiserverUrl => "no-apiserver-url",
            FailureKind::FeaturegateOff => "featuregate-off",
            FailureKind::InvalidKeyPair => "invalid-key-pair",
        }
    }

    /// HTTP status code, `reason` and `message` of the hub's metav1.Status.
    pub fn status(self, cluster_id: &str) -> (u16, &'static str, String) {
        match self {
            FailureKind::NoCluster => (400, "BadRequest", format!("no cluster id is {cluster_id}")),
            FailureKind::Disconnected => {
                (400, "BadRequest", format!("cannot proxy through cluster {cluster_id}, whose agent is disconnected"))
            }
            FailureKind::NoApiserverUrl => {
                (503, "ServiceUnavailable", format!("cannot retrieve valid apiserver url for cluster {cluster_id}"))
            }
            FailureKind::FeaturegateOff => (
                503,
                "ServiceUnavailable",
                "featuregate SocketConnection has not been enabled on the server side".to_string(),
            ),
            FailureKind::InvalidKeyPair => (
                400,
                "BadRequest",
                "invalid key pair in header: tls: private key does not match public key".to_string(),
            ),
        }
    }
}

impl FromStr for FailureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FailureKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown failure kind {s:?} (one of {})", names.join(", "))
        })
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// How a [`Recorder`] behaves. `RecorderConfig::default()` is a well-behaved
/// hub on `127.0.0.1:0` with generated certificates.
#[derive(Debug, Clone, Default)]
pub struct RecorderConfig {
    /// Cluster ID → the failure the hub answers instead of proxying.
    pub failures: BTreeMap<String, FailureKind>,
    /// Where to listen; default `127.0.0.1:0`.
    pub listen: Option<SocketAddr>,
    /// Serving certificate and client CA; default: generated at start.
    pub tls: Option<TlsMaterial>,
    /// Append each request as one JSON line (a [`RecordedRequest`]) to this file.
    pub record_file: Option<PathBuf>,
    /// Cluster ID → the apiserver URL of a real child: requests for these IDs
    /// are forwarded with the child credentials from the user extras, as the
    /// hub does (`direct` → this URL, `https/<host>` → that host).
    pub forwards: BTreeMap<String, String>,
    /// CA (PEM) that signed the forwarded children's serving certificates.
    pub child_ca_pem: Option<String>,
}

impl RecorderConfig {
    /// Adds a failure for a cluster ID (builder style).
    pub fn fail(mut self, cluster_id: &str, kind: FailureKind) -> Self {
        self.failures.insert(cluster_id.to_string(), kind);
        self
    }
}

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
    /// For a forwarded cluster: the child URL the request was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<String>,
    /// The status code of the answer (the child's, when forwarded).
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
    pub(crate) failures: BTreeMap<String, FailureKind>,
    pub(crate) forwarder: forward::Forwarder,
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
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key generation");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).expect("CA self-signed");
        Ca { cert, key }
    }

    fn issue(&self, cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("key generation");
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
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
        let forwarder = forward::Forwarder::new(config.forwards, config.child_ca_pem.as_deref()).map_err(invalid)?;
        let listener = TcpListener::bind(config.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            failures: config.failures,
            forwarder,
            requests: Mutex::new(Vec::new()),
            record_file,
            stop: AtomicBool::new(false),
        });
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

fn server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, String> {
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
