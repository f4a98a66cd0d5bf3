//! Talking to a child kube-apiserver as clusternet-hub (and its agent) do:
//! the child credentials come from the user extras the aggregator forwards
//! (`X-Remote-Extra-Clusternet-Token`, `...-Certificate`, `...-Privatekey`);
//! the child is dialled with TLS verification off (`InsecureSkipVerify`);
//! only the headers the real hub was seen to pass reach the child; dial and
//! TLS errors read as Go's. Also a small verified GET for the parent's API.
//!
//! A blocking HTTP/1.1 client over rustls, one connection per request
//! (`Connection: close`); the child's status, Content-Type, Content-Encoding
//! and body come back unchanged, the body passed on as it arrives (a
//! [`Relay`]), and a body that breaks off comes back broken.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::RootCertStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::http::{Request, Response};

/// The header prefix of user extras behind the aggregator (lower-cased).
pub const EXTRA_PREFIX: &str = "x-remote-extra-";

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE: u64 = 64 << 20;

/// Request headers the real hub passed on to the child (besides the
/// `Authorization` it makes from the token extra).
const PASSED_HEADERS: &[&str] = &["audit-id", "user-agent", "accept", "accept-encoding", "content-type"];

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

impl Target {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.path_and_query)
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The child credentials of a request: a token, a client certificate, both.
#[derive(Default)]
pub(crate) struct Credentials {
    token: Option<String>,
    cert: Option<Arc<CertifiedKey>>,
}

/// Why [`send`] got no answer from the child.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Go's words for the failure (`dial tcp ...`, `tls: ...`).
    Go(String),
    /// The request timeout passed before the child's answer began.
    Deadline,
}

/// Sends `request` to `target` with `credentials`, as the hub does, and
/// waits for the child's status line and headers until `deadline`. The body
/// is not read here: the answer's [`Relay`] passes it on piece by piece as
/// the child sends it (the hub does not buffer answers).
pub(crate) fn send(
    request: &Request,
    target: &Target,
    credentials: &Credentials,
    deadline: Instant,
) -> Result<Response, SendError> {
    let tcp = dial(target, deadline).map_err(SendError::Go)?;
    // Ends the exchange from outside: at the deadline, or when the answer is dropped.
    let cut = tcp.try_clone().map_err(|e| SendError::Go(e.to_string()))?;
    let stream: Box<dyn ReadWrite> = if target.tls {
        let config = client_config(Arc::new(InsecureSkipVerify), credentials.cert.clone()).map_err(SendError::Go)?;
        let conn = rustls::ClientConnection::new(config, server_name(&target.host).map_err(SendError::Go)?)
            .map_err(|e| SendError::Go(e.to_string()))?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let mut bytes = request_head(request, target, credentials).into_bytes();
    bytes.extend_from_slice(&request.body);
    let head_only = request.method == "HEAD";
    let addr = target.addr();
    // Small: a child faster than the client waits for it, as over a socket.
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::Builder::new()
        .name("hub-relay".into())
        .spawn(move || pump(stream, &bytes, head_only, &addr, &tx))
        .map_err(|e| SendError::Go(e.to_string()))?;
    let relay = Relay { rx, cut, deadline };
    match relay.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Piece::Head(Ok(mut response))) => {
            if response.body_follows {
                response.relay = Some(relay);
            }
            Ok(response)
        }
        Ok(Piece::Head(Err(message))) => Err(SendError::Go(message)),
        Ok(_) | Err(RecvTimeoutError::Disconnected) => Err(SendError::Go("EOF".into())),
        Err(RecvTimeoutError::Timeout) => Err(SendError::Deadline),
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// What the relay thread passes on: the answer's head, then its body as it comes.
enum Piece {
    Head(Result<Response, String>),
    Data(Vec<u8>),
    /// The body ended as its framing says.
    End,
    /// The body broke off (or was delimited only by the close).
    Broken,
}

/// How a relayed body goes on, piece by piece.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Data(Vec<u8>),
    End,
    Broken,
    /// The request timeout passed.
    Deadline,
}

/// The body of a child's answer, still arriving: read by a thread of its
/// own, handed over as it comes until the request's deadline.
pub(crate) struct Relay {
    rx: mpsc::Receiver<Piece>,
    cut: TcpStream,
    deadline: Instant,
}

impl Relay {
    /// The next piece of the body, waiting at most until the deadline.
    pub(crate) fn next(&self) -> Next {
        match self.rx.recv_timeout(self.deadline.saturating_duration_since(Instant::now())) {
            Ok(Piece::Data(d)) => Next::Data(d),
            Ok(Piece::End) => Next::End,
            Ok(Piece::Head(_) | Piece::Broken) | Err(RecvTimeoutError::Disconnected) => Next::Broken,
            Err(RecvTimeoutError::Timeout) => Next::Deadline,
        }
    }
}

impl Drop for Relay {
    /// The hub drops the child's connection when the request ends, however it ends.
    fn drop(&mut self) {
        let _ = self.cut.shutdown(std::net::Shutdown::Both);
    }
}

/// The relay thread: sends the request, reads the head, then the body in
/// the pieces the child sends, until it ends or nobody listens.
fn pump(mut stream: Box<dyn ReadWrite>, request: &[u8], head_only: bool, addr: &str, tx: &SyncSender<Piece>) {
    let sent = stream.write_all(request).and_then(|()| stream.flush());
    let mut reader = BufReader::new(stream);
    let head = sent.and_then(|()| read_head(&mut reader, head_only));
    let (response, mut body) = match head {
        Ok(h) => h,
        Err(e) => {
            let _ = tx.send(Piece::Head(Err(go_error(&e, addr))));
            return;
        }
    };
    let body_follows = response.body_follows;
    if tx.send(Piece::Head(Ok(response))).is_err() || !body_follows {
        return;
    }
    loop {
        let piece = match body.next(&mut reader) {
            Ok(Some(data)) => Piece::Data(data),
            Ok(None) => Piece::End,
            Err(()) => Piece::Broken,
        };
        let last = !matches!(piece, Piece::Data(_));
        if tx.send(piece).is_err() || last {
            return;
        }
    }
}

/// A GET of `url` (https) verified against `roots`, with a client certificate.
pub(crate) fn get(url: &str, roots: &Arc<RootCertStore>, identity: &Arc<CertifiedKey>) -> Result<Response, String> {
    let (_, host, port, path) = parse_url(url)?;
    let target = Target { tls: true, host, port, path_and_query: if path.is_empty() { "/".into() } else { path } };
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let config = client_config(verifier, Some(identity.clone()))?;
    let tcp = dial(&target, Instant::now() + TIMEOUT)?;
    let _ = tcp.set_read_timeout(Some(TIMEOUT));
    let conn = rustls::ClientConnection::new(config, server_name(&target.host)?).map_err(|e| e.to_string())?;
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        target.path_and_query,
        target.addr()
    );
    let response = exchange(rustls::StreamOwned::new(conn, tcp), &head).map_err(|e| go_error(&e, &target.addr()))?;
    if response.broken {
        return Err(format!("GET {url}: the answer broke off"));
    }
    Ok(response)
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).map_err(|e| e.to_string())
}

fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    cert: Option<Arc<CertifiedKey>>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match cert {
        Some(key) => builder.with_client_cert_resolver(Arc::new(OneCert(key))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Connects to the target (each resolved address in turn) before `deadline`,
/// Go's words on failure. No read timeout: a watch may be quiet for long,
/// and the request's deadline ends it.
fn dial(target: &Target, deadline: Instant) -> Result<TcpStream, String> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = match (host, target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return Err(format!("dial tcp: lookup {host}: no such host")),
    };
    let mut last = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now()).min(TIMEOUT);
        if left.is_zero() {
            last = Some(io::Error::from(io::ErrorKind::TimedOut));
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => {
                let _ = tcp.set_write_timeout(Some(TIMEOUT));
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address"));
    Err(format!("dial tcp {}: {}", target.addr(), go_errno(&e)))
}

/// Go's text for a connect or read error.
fn go_errno(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "i/o timeout".into(),
        io::ErrorKind::ConnectionReset => "read: connection reset by peer".into(),
        io::ErrorKind::UnexpectedEof => "EOF".into(),
        _ => e.to_string(),
    }
}

/// Go's text for an error during the exchange.
fn go_error(e: &io::Error, addr: &str) -> String {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return match tls {
            // A plain-HTTP server answering a ClientHello.
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            | rustls::Error::InvalidMessage(_) => "tls: first record does not look like a TLS handshake".into(),
            rustls::Error::AlertReceived(alert) => format!("remote error: tls: {alert:?}"),
            other => format!("tls: {other}"),
        };
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "EOF".into(),
        _ => format!("read tcp {addr}: {}", go_errno(e)),
    }
}

/// The hub dials the child with `InsecureSkipVerify: true`.
#[derive(Debug)]
struct InsecureSkipVerify;

impl ServerCertVerifier for InsecureSkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_tls12_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Always the one client certificate (whatever the server's CA hints say).
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for OneCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// `scheme://host[:port][/path]` → (tls, host, port, path without trailing `/`).
pub(crate) fn parse_url(url: &str) -> Result<(bool, String, u16, String), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("expected an http:// or https:// URL".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(authority, if tls { 443 } else { 80 })?;
    Ok((tls, host, port, path.trim_end_matches('/').to_string()))
}

pub(crate) fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    if authority.is_empty() {
        return Err("empty host".into());
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => (&authority[..=i], authority[i + 1..].strip_prefix(':')),
            None => return Err(format!("bad host {authority:?}")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port in {authority:?}"))?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

/// Decodes the `%XX` escapes of a requestheader extra key (client-go's
/// `headerKeyEscape` is undone by `unescapeExtraKey`).
fn unescape_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(b) = u8::from_str_radix(&key[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// The user extras of a request behind the aggregator: key (unescaped,
/// lower-cased) → values, in order.
pub(crate) fn extras(request: &Request) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        if let Some(key) = name.strip_prefix(EXTRA_PREFIX) {
            out.entry(unescape_key(key)).or_default().push(value.clone());
        }
    }
    out
}

/// The child credentials in the extras. A lone certificate or key is
/// ignored (the hub pairs them only when both are there); each is decoded
/// first, with the hub's message when it is not base64.
pub(crate) fn credentials(request: &Request) -> Result<Credentials, String> {
    let extras = extras(request);
    let first = |k: &str| extras.get(k).and_then(|v| v.first()).map(String::as_str);
    let decode = |key: &str, header: &str, what: &str| -> Result<Option<Vec<u8>>, String> {
        first(key)
            .map(|v| {
                STANDARD.decode(v).map_err(|e| format!("invalid {what} in header {header}: {}", go_base64_error(&e)))
            })
            .transpose()
    };
    let cert = decode("clusternet-certificate", "Clusternet-Certificate", "certificate")?;
    let key = decode("clusternet-privatekey", "Clusternet-Privatekey", "private key")?;
    let cert = match (cert, key) {
        (Some(cert), Some(key)) => Some(key_pair(&cert, &key)?),
        _ => None,
    };
    Ok(Credentials { token: first("clusternet-token").map(str::to_string), cert })
}

/// Go's `base64.CorruptInputError` text.
fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(offset, _) | base64::DecodeError::InvalidLastSymbol(offset, _) => *offset,
        base64::DecodeError::InvalidLength(len) => *len,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

/// Go's `tls.X509KeyPair`, with its messages.
fn key_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let invalid = |e: &str| format!("invalid key pair in header: {e}");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("tls: failed to find any PEM data in certificate input"))?;
    if chain.is_empty() {
        return Err(invalid("tls: failed to find any PEM data in certificate input"));
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| invalid("tls: failed to find any PEM data in key input"))?;
    let provider = rustls::crypto::ring::default_provider();
    // Go compares the key types first (RSA, ECDSA, Ed25519), then the keys.
    let key_algorithm = provider
        .key_provider
        .load_private_key(key.clone_key())
        .ok()
        .and_then(|k| k.public_key().and_then(|spki| crate::der::spki_algorithm(&spki)));
    let same_type = key_algorithm.is_some() && key_algorithm == crate::der::public_key_algorithm(&chain[0]);
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) if !same_type => {
                invalid("tls: private key type does not match public key type")
            }
            rustls::Error::InconsistentKeys(_) => invalid("tls: private key does not match public key"),
            other => invalid(&other.to_string()),
        })
        .map(Arc::new)
}

fn request_head(request: &Request, target: &Target, credentials: &Credentials) -> String {
    let default_port = if target.tls { 443 } else { 80 };
    let host =
        if target.port == default_port { target.host.clone() } else { format!("{}:{}", target.host, target.port) };
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", request.method, target.path_and_query);
    for name in PASSED_HEADERS {
        for (_, v) in request.headers.iter().filter(|(n, _)| n == name) {
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    if let Some(token) = &credentials.token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    // What Go's reverse proxy adds: the client, and how the hub was reached.
    if let Some(peer) = request.peer {
        head.push_str(&format!("X-Forwarded-For: {}\r\n", peer.ip()));
    }
    if let Some(h) = request.header("host") {
        head.push_str(&format!("X-Forwarded-Host: {h}\r\n"));
    }
    head.push_str("X-Forwarded-Proto: https\r\n");
    let query = request.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    head.push_str(&format!("X-Forwarded-Uri: {}{query}\r\n", request.path));
    if !request.body.is_empty() || !matches!(request.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// Sends a request head on `stream` and reads the whole answer.
fn exchange<S: Read + Write>(mut stream: S, head: &str) -> io::Result<Response> {
    stream.write_all(head.as_bytes())?;
    stream.flush()?;
    read_response(BufReader::new(stream), false)
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn line<R: BufRead>(reader: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    reader.by_ref().take(1 << 20).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the child closed the connection mid-answer"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Reads a whole answer (for the parent's API and the tests). A body that
/// breaks off, or one delimited only by the close, gives a `broken` answer
/// with what was read.
pub(crate) fn read_response<R: BufRead>(mut reader: R, head_only: bool) -> io::Result<Response> {
    let (mut response, mut body) = read_head(&mut reader, head_only)?;
    if !response.body_follows {
        return Ok(response);
    }
    loop {
        match body.next(&mut reader) {
            Ok(Some(data)) => {
                if response.body.len() + data.len() > MAX_RESPONSE as usize {
                    return Err(bad("answer too large"));
                }
                response.body.extend_from_slice(&data);
            }
            Ok(None) => break,
            Err(()) => {
                response.broken = true;
                break;
            }
        }
    }
    response.body_follows = false;
    Ok(response)
}

/// Reads an answer's status line and headers (after any 1xx interim
/// answers): the answer without its body, and how its body is delimited.
fn read_head<R: BufRead>(reader: &mut R, head_only: bool) -> io::Result<(Response, Body)> {
    let mut status_line = line(reader)?;
    let mut status: u16;
    let mut headers: Vec<(String, String)>;
    loop {
        let mut parts = status_line.splitn(3, ' ');
        let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
            return Err(bad(format!("malformed HTTP response {status_line:?}")));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("malformed HTTP response {status_line:?}")));
        }
        status = code.parse().map_err(|_| bad(format!("malformed HTTP status code {code:?}")))?;
        headers = Vec::new();
        loop {
            let l = line(reader)?;
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        // 1xx interim answers (100 Continue) precede the real one.
        if !(100..200).contains(&status) {
            break;
        }
        status_line = line(reader)?;
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let content_type = header("content-type").unwrap_or("").to_string();
    let passed = header("content-encoding").map(|v| vec![("Content-Encoding".to_string(), v.to_string())]);
    let mut response = Response { status, content_type, headers: passed.unwrap_or_default(), ..Response::default() };
    let body = if head_only || status == 204 || status == 304 {
        Body::Length(0)
    } else if header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        Body::Chunked { left: 0 }
    } else if let Some(len) = header("content-length") {
        let len: u64 = len.parse().map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        if len > MAX_RESPONSE {
            return Err(bad("answer too large"));
        }
        response.content_length = Some(len);
        Body::Length(len)
    } else {
        // Delimited by the close: the real hub relayed such an answer (Go's
        // `Client sent an HTTP request to an HTTPS server.`) cut short.
        Body::Close
    };
    response.body_follows = body != Body::Length(0);
    Ok((response, body))
}

/// How much of an answer's body is still to come, by its framing.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    /// Chunked: `left` bytes of the current chunk (0: a size line is next).
    Chunked { left: u64 },
    /// Content-Length: this many bytes left.
    Length(u64),
    /// Until the child closes.
    Close,
}

/// At most this much per piece: a piece goes on as soon as it is read.
const PIECE: usize = 64 << 10;

impl Body {
    /// The next piece of the body as soon as some of it is there: `None` at
    /// its proper end, `Err` when it broke off or was ended by the close.
    fn next<R: BufRead>(&mut self, reader: &mut R) -> Result<Option<Vec<u8>>, ()> {
        match self {
            Body::Length(0) => Ok(None),
            Body::Length(left) => {
                let piece = some(reader, *left)?;
                *left -= piece.len() as u64;
                Ok(Some(piece))
            }
            Body::Close => match some(reader, PIECE as u64) {
                Ok(piece) => Ok(Some(piece)),
                Err(()) => Err(()),
            },
            Body::Chunked { left } => {
                if *left == 0 {
                    let size_line = line(reader).map_err(|_| ())?;
                    let size =
                        u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| ())?;
                    if size == 0 {
                        // Trailers, up to the empty line.
                        while line(reader).is_ok_and(|l| !l.is_empty()) {}
                        return Ok(None);
                    }
                    *left = size;
                }
                let piece = some(reader, *left)?;
                *left -= piece.len() as u64;
                if *left == 0 && !line(reader).is_ok_and(|l| l.is_empty()) {
                    return Err(());
                }
                Ok(Some(piece))
            }
        }
    }
}

/// Whatever is there (at least one byte, at most `limit` and [`PIECE`]);
/// `Err` at the end of the stream or on an error.
fn some<R: BufRead>(reader: &mut R, limit: u64) -> Result<Vec<u8>, ()> {
    let available = loop {
        match reader.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        }
    };
    if available.is_empty() {
        return Err(());
    }
    let n = available.len().min(PIECE).min(limit as usize);
    let piece = available[..n].to_vec();
    reader.consume(n);
    Ok(piece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_are_unescaped_and_lowercased() {
        assert_eq!(unescape_key("Clusternet-Token"), "clusternet-token");
        assert_eq!(unescape_key("example.com%2fkey"), "example.com/key");
        assert_eq!(unescape_key("50%"), "50%");
    }

    #[test]
    fn reads_chunked_and_sized_answers() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n";
        let r = read_response(&raw[..], false).unwrap();
        assert_eq!(
            (r.status, r.content_type.as_str(), r.body.as_slice()),
            (200, "application/json", &b"{\"a\":1}"[..])
        );
        let raw = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nnoEXTRA";
        let r = read_response(&raw[..], false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (401, &b"no"[..]));
        assert!(!r.broken);
        let raw = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
        let r = read_response(&raw[..], false).unwrap();
        assert_eq!((r.body.as_slice(), r.broken), (&b"Client sent an HTTP request to an HTTPS server.\n"[..], true));
        let raw = b"HTTP/1.1 500 x\r\nContent-Length: 10\r\n\r\nshort";
        let r = read_response(&raw[..], false).unwrap();
        assert_eq!((r.body.as_slice(), r.broken), (&b"short"[..], true));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
        let r = read_response(&raw[..], false).unwrap();
        assert_eq!((r.body.as_slice(), r.broken), (&b"abc"[..], true));
    }

    #[test]
    fn mismatched_key_pair_is_the_hubs_400() {
        let (cert, _) = crate::self_signed_cert("a");
        let (_, other_key) = crate::self_signed_cert("b");
        let err = key_pair(cert.as_bytes(), other_key.as_bytes()).err().unwrap();
        assert_eq!(err, "invalid key pair in header: tls: private key does not match public key");
        let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map(|k| k.serialize_pem());
        // ring cannot generate RSA keys: an Ed25519 key against an ECDSA certificate.
        let other_type = rsa.unwrap_or_else(|_| {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key").serialize_pem()
        });
        let err = key_pair(cert.as_bytes(), other_type.as_bytes()).err().unwrap();
        assert_eq!(err, "invalid key pair in header: tls: private key type does not match public key type");
        let (cert, key) = crate::self_signed_cert("c");
        assert!(key_pair(cert.as_bytes(), key.as_bytes()).is_ok());
        assert!(key_pair(b"not PEM", key.as_bytes()).err().unwrap().starts_with("invalid key pair in header: tls:"));
        let e = STANDARD.decode("abc!def=").unwrap_err();
        assert_eq!(go_base64_error(&e), "illegal base64 data at input byte 3");
    }
}
