//! Talking to a child kube-apiserver as clusternet-hub (and its agent) do:
//! the child credentials come from the user extras the aggregator forwards
//! (`X-Remote-Extra-Clusternet-Token`, `...-Certificate`, `...-Privatekey`);
//! the child is dialled with TLS verification off (`InsecureSkipVerify`);
//! only the headers the real hub was seen to pass reach the child; dial and
//! TLS errors read as Go's. Also a small verified GET for the parent's API.
//!
//! A blocking HTTP/1.1 client over rustls, one connection per request
//! (`Connection: close`); the child's status, Content-Type, Content-Encoding
//! and body come back unchanged, and a body that breaks off comes back broken.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

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

/// Sends `request` to `target` with `credentials`, as the hub does. Errors
/// are Go's words for the failure (`dial tcp ...`, `tls: ...`).
pub(crate) fn send(request: &Request, target: &Target, credentials: &Credentials) -> Result<Response, String> {
    let tcp = dial(target)?;
    let head = request_head(request, target, credentials);
    let result = if target.tls {
        let config = client_config(Arc::new(InsecureSkipVerify), credentials.cert.clone())?;
        let conn = rustls::ClientConnection::new(config, server_name(&target.host)?).map_err(|e| e.to_string())?;
        exchange(rustls::StreamOwned::new(conn, tcp), &head, &request.body, &request.method)
    } else {
        exchange(tcp, &head, &request.body, &request.method)
    };
    result.map_err(|e| go_error(&e, target))
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
    let tcp = dial(&target)?;
    let conn = rustls::ClientConnection::new(config, server_name(&target.host)?).map_err(|e| e.to_string())?;
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        target.path_and_query,
        target.addr()
    );
    let response =
        exchange(rustls::StreamOwned::new(conn, tcp), &head, b"", "GET").map_err(|e| go_error(&e, &target))?;
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

/// Connects to the target (each resolved address in turn), Go's words on failure.
fn dial(target: &Target) -> Result<TcpStream, String> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = match (host, target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return Err(format!("dial tcp: lookup {host}: no such host")),
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(tcp) => {
                let _ = tcp.set_read_timeout(Some(TIMEOUT));
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
fn go_error(e: &io::Error, target: &Target) -> String {
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
        _ => format!("read tcp {}: {}", target.addr(), go_errno(e)),
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

/// Sends the request on `stream` and reads the answer.
fn exchange<S: Read + Write>(mut stream: S, head: &str, body: &[u8], method: &str) -> io::Result<Response> {
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    stream.flush()?;
    read_response(BufReader::new(stream), method == "HEAD")
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

/// Reads a body up to `limit` bytes into `out`; false when it broke off.
fn read_exactly<R: Read>(reader: &mut R, limit: u64, out: &mut Vec<u8>) -> bool {
    let before = out.len();
    let ok = reader.take(limit).read_to_end(out).is_ok();
    ok && (out.len() - before) as u64 == limit
}

/// Reads an answer. Once the status line and headers are in, a body that
/// breaks off (or, as the real hub relays it, one delimited only by the
/// child closing the connection) gives a `broken` answer with what was read.
pub(crate) fn read_response<R: BufRead>(mut reader: R, head_only: bool) -> io::Result<Response> {
    let mut status_line = line(&mut reader)?;
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
            let l = line(&mut reader)?;
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
        status_line = line(&mut reader)?;
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let content_type = header("content-type").unwrap_or("").to_string();
    let passed = header("content-encoding").map(|v| vec![("Content-Encoding".to_string(), v.to_string())]);
    let mut response = Response { status, content_type, headers: passed.unwrap_or_default(), ..Response::default() };
    if head_only || status == 204 || status == 304 {
        return Ok(response);
    }
    let body = &mut response.body;
    if header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        loop {
            let Ok(size_line) = line(&mut reader) else {
                response.broken = true;
                break;
            };
            let size = u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                while line(&mut reader).is_ok_and(|l| !l.is_empty()) {}
                break;
            }
            if body.len() as u64 + size > MAX_RESPONSE {
                return Err(bad("answer too large"));
            }
            if !read_exactly(&mut reader, size, body) || line(&mut reader).is_err() {
                response.broken = true;
                break;
            }
        }
    } else if let Some(len) = header("content-length") {
        let len: u64 = len.parse().map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        if len > MAX_RESPONSE {
            return Err(bad("answer too large"));
        }
        response.broken = !read_exactly(&mut reader, len, body);
    } else {
        // Delimited by the close: the real hub relayed such an answer (Go's
        // `Client sent an HTTP request to an HTTPS server.`) cut short.
        let _ = reader.take(MAX_RESPONSE).read_to_end(body);
        response.broken = true;
    }
    Ok(response)
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
