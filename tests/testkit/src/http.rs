//! HTTP/1.1 over rustls, by hand: request line, headers, Content-Length or
//! chunked body; keep-alive until the client closes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::{ServerConnection, StreamOwned};

use crate::forward::{self, Next};
use crate::{RecordedRequest, Shared, answer, der};

/// Limits: a request head (line + headers) and a body.
const MAX_HEAD: u64 = 1 << 20;
const MAX_BODY: u64 = 16 << 20;

/// A parsed request.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length or de-chunked), kept for forwarding.
    pub body: Vec<u8>,
    pub close: bool,
    /// The client's address (the aggregator's), for `X-Forwarded-For`.
    pub peer: Option<std::net::SocketAddr>,
    /// When the hub's request timeout ends this request (unless upgraded).
    pub deadline: Instant,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What to send back.
#[derive(Default)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// More headers (`Location`, `Content-Encoding`).
    pub headers: Vec<(String, String)>,
    /// The answer broke off (the child's transfer ended early): sent chunked
    /// without its last chunk, then the connection is closed.
    pub broken: bool,
    /// The child's Content-Length, passed on with a relayed body.
    pub content_length: Option<u64>,
    /// A body follows the head (read by [`forward`]; not yet in `body`).
    pub body_follows: bool,
    /// The child's body, still arriving: passed on as it comes, until the
    /// request timeout.
    pub relay: Option<forward::Relay>,
}

enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    /// Something to answer with this status, then close.
    Bad(u16, String),
}

pub(crate) fn serve_connection(stream: TcpStream, tls: Arc<rustls::ServerConfig>, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(tls) else {
        return;
    };
    let mut reader = BufReader::new(StreamOwned::new(conn, stream));
    loop {
        let request = match read_request(&mut reader) {
            Ok(mut r) => {
                r.peer = peer;
                r.deadline = Instant::now() + shared.request_timeout;
                r
            }
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, message)) => {
                let response = answer::status_response(status, reason_phrase(status), &message);
                let _ = write_response(reader.get_mut(), &response, false, true);
                break;
            }
        };
        let peer_cert = reader.get_ref().conn.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
        let upgrade = upgrade_on_socket(&request);
        let (mut response, forwarded_to) = match &upgrade {
            Some(_) => (Response { status: 101, ..Default::default() }, None),
            None => answer::respond(&request, shared),
        };
        let recorded = RecordedRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            client_cert_cn: peer_cert.as_deref().and_then(der::subject_cn),
            client_cert_der_b64: peer_cert.as_deref().map(|d| STANDARD.encode(d)),
            forwarded_to,
            status: Some(response.status),
        };
        shared.record(recorded);
        if let Some(protocol) = upgrade {
            let _ = echo_upgraded(&mut reader, &protocol);
            break;
        }
        let head_only = request.method == "HEAD";
        if let Some(relay) = response.relay.take() {
            match write_relayed(reader.get_mut(), &response, &relay, request.close) {
                Ok(Next::End) if !request.close => continue,
                Ok(Next::Deadline) => {
                    // What the hub's generic apiserver logs when its request timeout cuts an answer.
                    eprintln!(
                        "hub-standin: timeout or abort while handling: method={} URI={:?} (request timeout {:?})",
                        request.method, request.path, shared.request_timeout
                    );
                    break;
                }
                _ => break,
            }
        }
        let close = request.close || response.broken;
        if write_response(reader.get_mut(), &response, head_only, close).is_err() || close {
            break;
        }
    }
    let stream = reader.get_mut();
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

/// The protocol an upgrade request on a socket-proxy path asks for (exec,
/// attach, port-forward: `Connection: Upgrade`, `Upgrade: SPDY/3.1` or
/// `websocket`).
fn upgrade_on_socket(request: &Request) -> Option<String> {
    let on_socket = request.path.strip_prefix(crate::PROXY_GROUP_PREFIX).is_some_and(|rest| rest.contains("/proxy/"));
    let asks =
        request.header("connection").is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    request.header("upgrade").filter(|_| on_socket && asks).map(str::to_string)
}

/// Where the hub would splice the connection to the child's kubelet (the lab
/// has no kubelet): `101 Switching Protocols`, then every byte the client
/// sends comes back, until it closes.
fn echo_upgraded<S: Read + Write>(reader: &mut BufReader<S>, protocol: &str) -> io::Result<()> {
    let head = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n");
    reader.get_mut().write_all(head.as_bytes())?;
    reader.get_mut().flush()?;
    let mut buf = [0u8; 4096];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        reader.get_mut().write_all(&buf[..n])?;
        reader.get_mut().flush()?;
    }
}

fn read_line<R: BufRead>(reader: &mut R, budget: &mut u64) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(*budget).read_until(b'\n', &mut line).map_err(|_| ReadError::Closed)?;
    *budget -= n as u64;
    if !line.ends_with(b"\n") {
        if *budget == 0 {
            return Err(ReadError::Bad(431, "request header too large".into()));
        }
        return Err(ReadError::Closed);
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(line)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn read_request<R: BufRead>(reader: &mut R) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD;
    let mut line = read_line(reader, &mut budget)?;
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    while line.is_empty() {
        line = read_line(reader, &mut budget)?;
    }
    let line = text(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, format!("malformed request line {line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(505, format!("unsupported version {version}")));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ReadError::Bad(400, "malformed header line".into()));
        };
        let name = text(line[..colon].to_vec()).to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(ReadError::Bad(400, "malformed header name".into()));
        }
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((name, text(value)));
    }
    let mut request = Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
        close: false,
        peer: None,
        deadline: Instant::now(),
    };
    let connection = request.header("connection").unwrap_or("").to_ascii_lowercase();
    request.close = connection.split(',').any(|t| t.trim() == "close")
        || (version == "HTTP/1.0" && !connection.contains("keep-alive"));
    let chunked = request.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(reader)?;
    } else if let Some(len) = request.header("content-length") {
        let len: u64 = len.trim().parse().map_err(|_| ReadError::Bad(400, "bad Content-Length".into()))?;
        if len > MAX_BODY {
            return Err(ReadError::Bad(413, "request body too large".into()));
        }
        let mut body = Vec::with_capacity(len as usize);
        reader.by_ref().take(len).read_to_end(&mut body).map_err(|_| ReadError::Closed)?;
        if body.len() as u64 != len {
            return Err(ReadError::Closed);
        }
        request.body = body;
    }
    Ok(request)
}

/// Reads a chunked body (trailers read and dropped).
fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut budget = MAX_HEAD;
    let mut total = 0u64;
    let mut body = Vec::new();
    loop {
        let line = text(read_line(reader, &mut budget)?);
        let size = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size".into()))?;
        total += size;
        if total > MAX_BODY {
            return Err(ReadError::Bad(413, "request body too large".into()));
        }
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        let before = body.len();
        reader.by_ref().take(size).read_to_end(&mut body).map_err(|_| ReadError::Closed)?;
        if (body.len() - before) as u64 != size {
            return Err(ReadError::Closed);
        }
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(ReadError::Bad(400, "chunk not followed by CRLF".into()));
        }
    }
}

pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes the head of a relayed answer, then each piece of the body as it
/// arrives (flushed at once), with the child's Content-Length or chunked.
/// Returns how the body ended: `End` (complete), `Broken` (the child's
/// transfer broke off: no last chunk), `Deadline` (the request timeout cut
/// it: no last chunk, as the hub's timeout filter aborts the handler). Any
/// but `End` leaves the connection to be closed.
fn write_relayed<W: Write>(out: &mut W, response: &Response, relay: &forward::Relay, close: bool) -> io::Result<Next> {
    let mut head = head_start(response);
    match response.content_length {
        Some(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.flush()?;
    let chunked = response.content_length.is_none();
    loop {
        match relay.next() {
            Next::Data(data) => {
                if chunked {
                    out.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
                    out.write_all(&data)?;
                    out.write_all(b"\r\n")?;
                } else {
                    out.write_all(&data)?;
                }
                out.flush()?;
            }
            Next::End => {
                if chunked {
                    out.write_all(b"0\r\n\r\n")?;
                    out.flush()?;
                }
                return Ok(Next::End);
            }
            other => return Ok(other),
        }
    }
}

/// The status line and the headers every answer carries (its framing,
/// Content-Length or chunked, is the caller's).
fn head_start(response: &Response) -> String {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nCache-Control: no-cache, private\r\n",
        response.status,
        reason_phrase(response.status)
    );
    if !response.content_type.is_empty() {
        head.push_str(&format!("Content-Type: {}\r\n", response.content_type));
    }
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

fn write_response<W: Write>(out: &mut W, response: &Response, head_only: bool, close: bool) -> io::Result<()> {
    let mut head = head_start(response);
    if response.broken {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if !head_only {
        if response.broken {
            // What arrived, as one chunk, and no last chunk: the client sees
            // the transfer end early, as it would behind the real hub.
            if !response.body.is_empty() {
                bytes.extend_from_slice(format!("{:x}\r\n", response.body.len()).as_bytes());
                bytes.extend_from_slice(&response.body);
                bytes.extend_from_slice(b"\r\n");
            }
        } else {
            bytes.extend_from_slice(&response.body);
        }
    }
    out.write_all(&bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Request, u16> {
        let mut reader = BufReader::new(raw.as_bytes());
        read_request(&mut reader).map_err(|e| match e {
            ReadError::Closed => 0,
            ReadError::Bad(s, _) => s,
        })
    }

    #[test]
    fn parses_line_headers_and_bodies() {
        let r = parse("GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nX-A:  v  w \r\nx-a: 2\r\n\r\n").ok().unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/a/b"));
        assert_eq!(r.query.as_deref(), Some("x=1&y"));
        assert_eq!(r.headers[1], ("x-a".to_string(), "v  w".to_string()));
        assert!(!r.close);
        let r = parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc").ok().unwrap();
        assert!(r.close);
        let raw =
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
        let mut reader = BufReader::new(raw.as_bytes());
        assert_eq!(read_request(&mut reader).ok().unwrap().body, b"abc");
        assert_eq!(read_request(&mut reader).ok().unwrap().path, "/next");
        let r = parse("PUT / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").ok().unwrap();
        assert_eq!(r.body, b"{}");
        assert_eq!(parse("GARBAGE\r\n\r\n").err(), Some(400));
        assert_eq!(parse("").err(), Some(0));
        let r = parse("GET / HTTP/1.1\r\nX: gr\u{fc}\u{df}e\r\n\r\n").ok().unwrap();
        assert_eq!(r.headers[0].1, "gr\u{fc}\u{df}e");
    }
}
