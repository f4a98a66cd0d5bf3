//! Forwarding to a real child kube-apiserver, as clusternet-hub's exchanger
//! does (contract §3): the child credentials come from the user extras the
//! aggregator forwards (`X-Remote-Extra-Clusternet-Token`, `...-Certificate`,
//! `...-Privatekey`), the target from the route (`direct` → the cluster's
//! apiserver URL, `https/<host[:port]>` / `http/<host[:port]>` → that host).
//!
//! A blocking HTTP/1.1 client over rustls, one connection per request
//! (`Connection: close`): method, path and query, body, Accept and
//! Content-Type go to the child; its status, Content-Type and body come back
//! unchanged.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::answer::status_response;
use crate::http::{Request, Response};

/// The header prefix of user extras behind the aggregator (lower-cased).
pub const EXTRA_PREFIX: &str = "x-remote-extra-";

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RESPONSE: u64 = 64 << 20;

/// Cluster IDs forwarded for real, and the CA the child's serving certificate
/// is verified with.
pub(crate) struct Forwarder {
    /// Cluster ID → its apiserver URL (what `status.apiserverURL` holds).
    targets: BTreeMap<String, String>,
    roots: Arc<RootCertStore>,
}

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
}

/// The child credentials of a request.
enum Credentials {
    None,
    Token(String),
    Cert(Arc<CertifiedKey>),
}

impl Forwarder {
    pub(crate) fn new(targets: BTreeMap<String, String>, child_ca_pem: Option<&str>) -> Result<Forwarder, String> {
        let mut roots = RootCertStore::empty();
        if let Some(pem) = child_ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("child CA: {e}"))?;
                roots.add(cert).map_err(|e| format!("child CA: {e}"))?;
            }
            if roots.is_empty() {
                return Err("child CA: no PEM certificate found".into());
            }
        }
        for (id, url) in &targets {
            parse_url(url).map_err(|e| format!("--forward {id}={url}: {e}"))?;
        }
        Ok(Forwarder { targets, roots: Arc::new(roots) })
    }

    pub(crate) fn forwards(&self, cluster_id: &str) -> bool {
        self.targets.contains_key(cluster_id)
    }

    /// Forwards `request` for `cluster_id`, `route` (`direct`, `https`, `http`)
    /// and `rest` (after the route; for https/http it starts with the host).
    /// Returns the answer and the URL it was sent to (None: not sent).
    pub(crate) fn forward(
        &self,
        request: &Request,
        cluster_id: &str,
        route_and_rest: &str,
    ) -> (Response, Option<String>) {
        let Some(base) = self.targets.get(cluster_id) else {
            return (status_response(404, "NotFound", "not forwarded"), None);
        };
        let query = request.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
        let target = match target_for(base, route_and_rest, &query) {
            Ok(t) => t,
            Err(msg) => return (status_response(400, "BadRequest", &msg), None),
        };
        let credentials = match credentials(request) {
            Ok(c) => c,
            Err(msg) => return (status_response(400, "BadRequest", &msg), None),
        };
        let url = target.url();
        match self.send(request, &target, &credentials) {
            Ok(response) => (response, Some(url)),
            Err(e) => {
                let msg = format!("error trying to reach cluster {cluster_id} at {url}: {e}");
                (status_response(502, "ServiceUnavailable", &msg), Some(url))
            }
        }
    }

    fn send(&self, request: &Request, target: &Target, credentials: &Credentials) -> io::Result<Response> {
        let tcp = TcpStream::connect((target.host.trim_start_matches('[').trim_end_matches(']'), target.port))?;
        tcp.set_read_timeout(Some(TIMEOUT))?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let _ = tcp.set_nodelay(true);
        let head = request_head(request, target, credentials);
        if !target.tls {
            return exchange(tcp, &head, &request.body, &request.method);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(self.roots.clone());
        let mut config = match credentials {
            Credentials::Cert(key) => builder.with_client_cert_resolver(Arc::new(OneCert(key.clone()))),
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host = target.host.trim_start_matches('[').trim_end_matches(']').to_string();
        let name = ServerName::try_from(host).map_err(io::Error::other)?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
        exchange(rustls::StreamOwned::new(conn, tcp), &head, &request.body, &request.method)
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
fn parse_url(url: &str) -> Result<(bool, String, u16, String), String> {
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

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
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

/// The hub's `ClusterLocation`: `direct[/rest]` → the apiserver URL (its path
/// kept) plus the rest; `https/<host[:port]>[/rest]` and `http/...` → that host.
pub(crate) fn target_for(base: &str, route_and_rest: &str, query: &str) -> Result<Target, String> {
    let (route, rest) = route_and_rest.split_once('/').unwrap_or((route_and_rest, ""));
    let (tls, host, port, prefix, rest) = match route {
        "direct" => {
            let (tls, host, port, prefix) = parse_url(base)?;
            (tls, host, port, prefix, rest)
        }
        "https" | "http" => {
            let (authority, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let (host, port) = split_host_port(authority, if route == "https" { 443 } else { 80 })?;
            (route == "https", host, port, String::new(), rest)
        }
        other => return Err(format!("unknown route {other:?}")),
    };
    Ok(Target { tls, host, port, path_and_query: format!("{prefix}/{rest}{query}") })
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

fn credentials(request: &Request) -> Result<Credentials, String> {
    let extras = extras(request);
    let first = |k: &str| extras.get(k).and_then(|v| v.first()).map(String::as_str);
    // The hub prefers the certificate pair when both are given.
    match (first("clusternet-certificate"), first("clusternet-privatekey")) {
        (Some(cert), Some(key)) => return key_pair(cert, key).map(Credentials::Cert),
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "invalid key pair in header: both clusternet-certificate and clusternet-privatekey are needed".into()
            );
        }
        (None, None) => {}
    }
    Ok(match first("clusternet-token") {
        Some(token) => Credentials::Token(token.to_string()),
        None => Credentials::None,
    })
}

/// Go's `base64.StdEncoding` then `tls.X509KeyPair`, with its messages.
fn key_pair(cert_b64: &str, key_b64: &str) -> Result<Arc<CertifiedKey>, String> {
    let invalid = |e: String| format!("invalid key pair in header: {e}");
    let cert_pem = STANDARD.decode(cert_b64).map_err(|e| invalid(format!("certificate: illegal base64 data: {e}")))?;
    let key_pem = STANDARD.decode(key_b64).map_err(|e| invalid(format!("private key: illegal base64 data: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("tls: failed to find any PEM data in certificate input ({e})")))?;
    if chain.is_empty() {
        return Err(invalid("tls: failed to find any PEM data in certificate input".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(format!("tls: failed to find any PEM data in key input ({e})")))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => invalid("tls: private key does not match public key".into()),
            other => invalid(other.to_string()),
        })
        .map(Arc::new)
}

fn request_head(request: &Request, target: &Target, credentials: &Credentials) -> String {
    let default_port = if target.tls { 443 } else { 80 };
    let host =
        if target.port == default_port { target.host.clone() } else { format!("{}:{}", target.host, target.port) };
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", request.method, target.path_and_query);
    for name in ["accept", "content-type", "user-agent"] {
        if let Some(v) = request.header(name) {
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    if let Credentials::Token(token) = credentials {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !request.body.is_empty() || !matches!(request.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// Sends the request on `stream` and reads the whole answer.
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
        return Err(bad("the child closed the connection mid-answer"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A clean EOF without close_notify is still the end of a `Connection: close` body.
fn read_to_end_lenient<R: Read>(reader: &mut R, out: &mut Vec<u8>) -> io::Result<()> {
    match reader.take(MAX_RESPONSE).read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn read_response<R: BufRead>(mut reader: R, head_only: bool) -> io::Result<Response> {
    let mut status_line = line(&mut reader)?;
    let mut status: u16;
    let mut headers: Vec<(String, String)>;
    loop {
        let mut parts = status_line.splitn(3, ' ');
        let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
            return Err(bad(format!("malformed status line {status_line:?}")));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("malformed status line {status_line:?}")));
        }
        status = code.parse().map_err(|_| bad(format!("malformed status line {status_line:?}")))?;
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
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 {
        // no body
    } else if header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = line(&mut reader)?;
            let size = u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                while !line(&mut reader)?.is_empty() {}
                break;
            }
            if body.len() as u64 + size > MAX_RESPONSE {
                return Err(bad("answer too large"));
            }
            let before = body.len();
            reader.by_ref().take(size).read_to_end(&mut body)?;
            if (body.len() - before) as u64 != size {
                return Err(bad("the child closed the connection mid-chunk"));
            }
            line(&mut reader)?;
        }
    } else if let Some(len) = header("content-length") {
        let len: u64 = len.parse().map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        if len > MAX_RESPONSE {
            return Err(bad("answer too large"));
        }
        reader.by_ref().take(len).read_to_end(&mut body)?;
        if body.len() as u64 != len {
            return Err(bad("the child closed the connection mid-body"));
        }
    } else {
        read_to_end_lenient(&mut reader, &mut body)?;
    }
    Ok(Response { status, content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_the_hubs_routes() {
        let t = target_for("https://127.0.0.1:6443", "direct/api/v1/namespaces", "?limit=500").unwrap();
        assert_eq!(t.url(), "https://127.0.0.1:6443/api/v1/namespaces?limit=500");
        let t = target_for("https://child.example/k8s/c1/", "direct/version", "").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path_and_query.as_str()), ("child.example", 443, "/k8s/c1/version"));
        let t = target_for("https://ignored:1", "https/localhost:7443/api", "").unwrap();
        assert_eq!(t.url(), "https://localhost:7443/api");
        let t = target_for("https://ignored:1", "http/[::1]:8001", "").unwrap();
        assert_eq!(t.url(), "http://[::1]:8001/");
        assert!(target_for("https://x:1", "ftp/x", "").is_err());
    }

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
        let raw = b"HTTP/1.1 200 OK\r\n\r\nuntil eof";
        assert_eq!(read_response(&raw[..], false).unwrap().body, b"until eof");
    }

    #[test]
    fn mismatched_key_pair_is_the_hubs_400() {
        let (cert, _) = crate::self_signed_cert("a");
        let (_, other_key) = crate::self_signed_cert("b");
        let err = key_pair(&STANDARD.encode(&cert), &STANDARD.encode(&other_key)).err().unwrap();
        assert_eq!(err, "invalid key pair in header: tls: private key does not match public key");
        let (cert, key) = crate::self_signed_cert("c");
        assert!(key_pair(&STANDARD.encode(cert), &STANDARD.encode(key)).is_ok());
        assert!(key_pair("not base64!", "x").err().unwrap().starts_with("invalid key pair in header"));
    }
}
