//! The recorder over real TLS: keep-alive, answers, client certificates; and
//! the hub's behaviour in front of fixed clusters and a real child.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;

use testkit::{ClusterStatus, Clusters, Recorder, RecorderConfig};

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(recorder: &Recorder, client_cert: Option<(String, String)>) -> BufReader<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(recorder.ca_pem().as_bytes()).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap()).unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, TcpStream::connect(recorder.addr()).unwrap()))
}

/// Sends a GET, returns (status, content-type, body).
fn get(stream: &mut BufReader<Tls>, path: &str, extra: &str) -> (u16, String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    stream.get_mut().write_all(req.as_bytes()).unwrap();
    let mut status = String::new();
    stream.read_line(&mut status).unwrap();
    let code: u16 = status.split(' ').nth(1).unwrap().parse().unwrap();
    let (mut len, mut ctype) = (0usize, String::new());
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(": ").unwrap();
        match n.to_ascii_lowercase().as_str() {
            "content-length" => len = v.parse().unwrap(),
            "content-type" => ctype = v.to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).unwrap();
    (code, ctype, String::from_utf8(body).unwrap())
}

#[test]
fn answers_and_records() {
    let id = "dc91021d-2361-4f6d-a404-7c33b9e01118";
    let recorder = Recorder::start(RecorderConfig::default()).unwrap();
    assert!(recorder.url().starts_with("https://127.0.0.1:"));
    let mut s = connect(&recorder, None);
    let p = format!("/apis/proxies.clusternet.io/v1alpha1/sockets/{id}/proxy");
    for route in ["direct", "https/child.example:6443", "http/10.0.0.7:8001"] {
        let (code, ctype, body) = get(&mut s, &format!("{p}/{route}/version"), "");
        assert_eq!((code, ctype.as_str()), (200, "application/json"), "{body}");
        assert!(body.contains(testkit::CHILD_GIT_VERSION));
    }
    let (code, _, body) = get(
        &mut s,
        &format!("{p}/direct/api/v1/namespaces?limit=500"),
        "Accept: application/json;as=Table;v=v1;g=meta.k8s.io\r\n",
    );
    assert_eq!(code, 200);
    assert!(body.contains("\"Table\"") && body.contains(testkit::CHILD_NAMESPACE));
    let (_, _, body) = get(&mut s, &format!("{p}/direct/api/v1/namespaces"), "");
    assert!(body.contains("NamespaceList") && body.contains(testkit::CHILD_NAMESPACE));
    for path in ["/apis/proxies.clusternet.io/v1alpha1", "/apis/proxies.clusternet.io", "/healthz", "/readyz"] {
        assert_eq!(get(&mut s, path, "").0, 200, "{path}");
    }
    // h2 offered, HTTP/1.1 chosen.
    assert_eq!(s.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (code, _, body) = get(&mut s, "/nope", "");
    assert_eq!(code, 404);
    assert!(body.contains("\"kind\":\"Status\"") && body.contains("NotFound"));
    let (cert, key) = recorder.issue_client_cert("someone");
    let mut s2 = connect(&recorder, Some((cert, key)));
    get(
        &mut s2,
        "/healthz?verbose",
        "Impersonate-Extra-Clusternet-Token: gr\u{fc}\u{df}e yes\r\nX-Remote-Group: a\r\nX-Remote-Group: b\r\n",
    );
    let last = recorder.requests().pop().unwrap();
    assert_eq!((last.path.as_str(), last.query.as_deref()), ("/healthz", Some("verbose")));
    assert_eq!(last.header("IMPERSONATE-EXTRA-CLUSTERNET-TOKEN"), Some("gr\u{fc}\u{df}e yes"));
    assert_eq!(last.headers_named("x-remote-group"), ["a", "b"]);
    assert_eq!(last.client_cert_cn.as_deref(), Some("someone"));
    assert!(last.client_cert_der_b64.is_some());
    let first = recorder.requests().remove(0);
    assert_eq!(first.client_cert_cn, None);
    recorder.clear();
    assert!(recorder.requests().is_empty());
}

#[test]
fn record_file_gets_one_json_line_per_request() {
    let dir = tempdir();
    let file = dir.join("record.jsonl");
    let recorder = Recorder::start(RecorderConfig { record_file: Some(file.clone()), ..Default::default() }).unwrap();
    let mut s = connect(&recorder, None);
    get(&mut s, "/healthz", "");
    get(&mut s, "/readyz", "X-Remote-User: alice\r\n");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<testkit::RecordedRequest> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, recorder.requests());
    assert_eq!(lines[1].header("x-remote-user"), Some("alice"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("testkit-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const P: &str = "/apis/proxies.clusternet.io/v1alpha1/sockets";
const ID: &str = "0f0f0f0f-0000-4000-8000-000000000001";

/// A hub in front of fixed clusters, and a canned child (any credentials,
/// its own CA that the hub is never told about: it dials without verifying).
struct Hub {
    hub: Recorder,
    child: Recorder,
}

fn hub_with(clusters: impl Fn(&Recorder) -> BTreeMap<String, ClusterStatus>, gate_off: bool) -> Hub {
    let child = Recorder::start(RecorderConfig { serve_child: true, ..RecorderConfig::default() }).unwrap();
    let hub = Recorder::start(RecorderConfig {
        clusters: Clusters::Fixed(clusters(&child)),
        feature_gate_off: gate_off,
        ..RecorderConfig::default()
    })
    .unwrap();
    Hub { hub, child }
}

fn connected(url: Option<String>) -> ClusterStatus {
    ClusterStatus { apiserver_url: url, use_socket: true, session: true }
}

fn status_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The hub's checks, in the hub's order, each with its status and words.
#[test]
fn hub_checks_run_in_the_hubs_order() {
    let clusters = |_: &Recorder| {
        BTreeMap::from([
            ("no-url".to_string(), connected(None)),
            ("offline".to_string(), ClusterStatus { session: false, ..connected(Some("https://127.0.0.1:1".into())) }),
            ("offline-no-url".to_string(), ClusterStatus { session: false, ..connected(None) }),
            ("no-socket".to_string(), ClusterStatus { use_socket: false, session: false, ..connected(None) }),
        ])
    };
    let h = hub_with(clusters, false);
    let mut s = connect(&h.hub, None);
    let check = |s: &mut BufReader<Tls>, id: &str, route: &str, extra: &str, code: u16, message: &str| {
        let (got, _, body) = get(s, &format!("{P}/{id}/proxy/{route}"), extra);
        let status = status_of(&body);
        assert_eq!((got, status["message"].as_str()), (code, Some(message)), "{id} {route}: {body}");
    };
    check(&mut s, "unknown", "direct/version", "", 400, "no cluster id is unknown");
    let msg = "cannot retrieve valid apiserver url for cluster no-url";
    check(&mut s, "no-url", "direct/version", "", 503, msg);
    // apiserverURL before the session; only for direct.
    let msg = "cannot retrieve valid apiserver url for cluster offline-no-url";
    check(&mut s, "offline-no-url", "direct/version", "", 503, msg);
    let msg = "cannot proxy through cluster offline-no-url, whose agent is disconnected";
    check(&mut s, "offline-no-url", "https/127.0.0.1:1/version", "", 400, msg);
    check(
        &mut s,
        "offline",
        "direct/version",
        "",
        400,
        "cannot proxy through cluster offline, whose agent is disconnected",
    );
    // The session before the credentials.
    let bad = "X-Remote-Extra-Clusternet-Certificate: abc!\r\n";
    check(
        &mut s,
        "offline",
        "direct/version",
        bad,
        400,
        "cannot proxy through cluster offline, whose agent is disconnected",
    );
    let msg = "invalid certificate in header Clusternet-Certificate: illegal base64 data at input byte 3";
    check(&mut s, "no-socket", "https/127.0.0.1:1/version", bad, 400, msg);
    // Without useSocket the hub still dials through the agent's tunnel: with
    // no session, a 500 without a reason, after the credentials.
    let (code, _, body) = get(&mut s, &format!("{P}/no-socket/proxy/https/127.0.0.1:1/version"), "");
    let status = status_of(&body);
    assert_eq!((code, status["message"].as_str()), (500, Some("failed to find Session for client no-socket")));
    assert!(status.get("reason").is_none(), "{body}");
    assert!(h.child.requests().is_empty());

    // The feature gate first, for every ID.
    let off = hub_with(clusters, true);
    let mut s = connect(&off.hub, None);
    for id in ["unknown", "no-url", "offline"] {
        let (code, _, body) = get(&mut s, &format!("{P}/{id}/proxy/direct/version"), "");
        let status = status_of(&body);
        assert_eq!(code, 503, "{body}");
        assert_eq!(status["message"], "featuregate SocketConnection has not been enabled on the server side");
        assert_eq!(status["reason"], "ServiceUnavailable");
    }
}

/// Through the hub to a child: credentials, headers, TLS without
/// verification, the extras never passed on.
#[test]
fn hub_forwards_credentials_and_only_the_hubs_headers() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let h =
        hub_with(|child| BTreeMap::from([(ID.to_string(), connected(Some(format!("{}/base", child.url()))))]), false);
    let (cert, key) = h.child.issue_client_cert("child-user");
    let mut s = connect(&h.hub, None);
    let (code, _, body) = get(
        &mut s,
        &format!("{P}/{ID}/proxy/https/127.0.0.1:{}/version?x=1", h.child.addr().port()),
        &format!(
            "X-Remote-Extra-Clusternet-Token: tok-1\r\nX-Remote-Extra-Clusternet-Certificate: {}\r\n\
             X-Remote-Extra-Clusternet-Privatekey: {}\r\nX-Remote-User: clusternet\r\nAudit-Id: a-1\r\n\
             Accept: application/json\r\nAccept-Encoding: identity\r\nUser-Agent: ua/1\r\nX-Other: no\r\n",
            b64(&cert),
            b64(&key)
        ),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(testkit::CHILD_GIT_VERSION), "{body}");
    let seen = h.child.requests().pop().unwrap();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/version", Some("x=1")));
    // Token and certificate together.
    assert_eq!(seen.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(seen.client_cert_cn.as_deref(), Some("child-user"));
    let names: Vec<&str> = seen.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "host",
            "audit-id",
            "user-agent",
            "accept",
            "accept-encoding",
            "authorization",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-uri",
            "connection"
        ]
    );
    assert_eq!(
        seen.header("x-forwarded-uri"),
        Some(format!("{P}/{ID}/proxy/https/127.0.0.1:{}/version?x=1", h.child.addr().port()).as_str())
    );
    let recorded = h.hub.requests().pop().unwrap();
    assert_eq!(recorded.forwarded_to, Some(format!("{}/version?x=1", h.child.url())));
    assert_eq!(recorded.status, Some(200));

    // direct: the apiserver URL's path kept. A lone certificate is ignored.
    let (code, _, _) = get(
        &mut s,
        &format!("{P}/{ID}/proxy/direct/version"),
        &format!("X-Remote-Extra-Clusternet-Certificate: {}\r\n", b64(&cert)),
    );
    assert_eq!(code, 404);
    let seen = h.child.requests().pop().unwrap();
    assert_eq!(seen.path, "/base/version");
    assert_eq!((seen.header("authorization"), seen.client_cert_cn.as_deref()), (None, None));

    // A key that is not the certificate's: 400, nothing reaches the child.
    let before = h.child.requests().len();
    let (_, other_key) = h.child.issue_client_cert("other");
    let (code, _, body) = get(
        &mut s,
        &format!("{P}/{ID}/proxy/direct/version"),
        &format!(
            "X-Remote-Extra-Clusternet-Certificate: {}\r\nX-Remote-Extra-Clusternet-Privatekey: {}\r\n",
            b64(&cert),
            b64(&other_key)
        ),
    );
    assert_eq!(code, 400);
    assert_eq!(status_of(&body)["message"], "invalid key pair in header: tls: private key does not match public key");
    assert_eq!(h.child.requests().len(), before);
}

/// Paths the hub redirects or refuses, and dial errors as 500 Status
/// without a reason, in Go's words.
#[test]
fn hub_paths_and_dial_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // A plain-HTTP server (not TLS): one answer per connection.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in plain.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let h = hub_with(|child| BTreeMap::from([(ID.to_string(), connected(Some(child.url())))]), false);
    let mut s = connect(&h.hub, None);
    let host = "Host: localhost:4443\r\n";
    for tail in ["/direct", &format!("/https/127.0.0.1:{}", h.child.addr().port()), ""] {
        let (code, _, body) = get(&mut s, &format!("{P}/{ID}/proxy{tail}"), host);
        assert_eq!(code, 301, "{tail}: {body}");
    }
    let raw = format!("GET {P}/{ID}/proxy/direct?a=b HTTP/1.1\r\n{host}\r\n");
    s.get_mut().write_all(raw.as_bytes()).unwrap();
    let mut head = String::new();
    loop {
        let mut line = String::new();
        s.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 301 "), "{head}");
    assert!(head.contains(&format!("Location: https://localhost:4443{P}/{ID}/proxy/direct/?a=b\r\n")), "{head}");
    let len: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
    let mut body = vec![0; len];
    s.read_exact(&mut body).unwrap();

    let cases = [
        ("/".to_string(), "http: no Host in request URL".to_string()),
        ("/ftp/x/version".to_string(), "unsupported protocol scheme \"ftp\"".to_string()),
        (
            format!("/https/127.0.0.1:{closed}/version"),
            format!("dial tcp 127.0.0.1:{closed}: connect: connection refused"),
        ),
        (
            format!("/https/127.0.0.1:{plain_port}/version"),
            "tls: first record does not look like a TLS handshake".into(),
        ),
    ];
    for (tail, message) in cases {
        let (code, _, body) = get(&mut s, &format!("{P}/{ID}/proxy{tail}"), "");
        let status = status_of(&body);
        assert_eq!(code, 500, "{tail}: {body}");
        assert_eq!(status["message"], message.as_str(), "{tail}");
        assert_eq!(status["code"], 500);
        assert!(status.get("reason").is_none(), "no reason: {body}");
    }
}

/// A hub with a short request timeout in front of one cluster at `url`.
fn hub_timing_out(url: String, timeout: std::time::Duration) -> Recorder {
    Recorder::start(RecorderConfig {
        clusters: Clusters::Fixed(BTreeMap::from([(ID.to_string(), connected(Some(url)))])),
        request_timeout: Some(timeout),
        ..RecorderConfig::default()
    })
    .unwrap()
}

/// Reads a head (up to the empty line) from `s`.
fn read_head(s: &mut BufReader<Tls>) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        s.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            return head;
        }
        head.push_str(&line);
    }
}

/// The hub passes an answer on as the child sends it (the first bytes long
/// before the answer ends), and cuts a non-upgraded request at its request
/// timeout: the chunked body ends without its last chunk, the connection closes.
#[test]
fn answers_stream_and_the_request_timeout_cuts_them() {
    use std::time::{Duration, Instant};
    let child = testkit::RawServer::start(|_| testkit::RawAnswer::Trickle {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".to_vec(),
        every: Duration::from_millis(100),
    })
    .unwrap();
    let timeout = Duration::from_secs(2);
    let hub = hub_timing_out(child.url(), timeout);
    let mut s = connect(&hub, None);
    let start = Instant::now();
    s.get_mut()
        .write_all(format!("GET {P}/{ID}/proxy/direct/api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    let mut size = String::new();
    s.read_line(&mut size).unwrap();
    let first = start.elapsed();
    assert!(first < Duration::from_millis(1000), "the first piece came after {first:?}: not streamed");
    let mut rest = Vec::new();
    // The cut: a TLS close (close_notify) or a reset; either way the body ends here.
    let _ = s.read_to_end(&mut rest);
    let ended = start.elapsed();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.matches('x').count() >= 5, "pieces went on arriving: {rest:?}");
    assert!(!rest.ends_with("0\r\n\r\n"), "a cut answer has no last chunk: {rest:?}");
    assert!(ended >= timeout && ended < timeout + Duration::from_secs(2), "cut after {ended:?}, timeout {timeout:?}");
}

/// A child that has not begun to answer by the request timeout: the hub's
/// timeout filter answers 504 for it.
#[test]
fn a_child_silent_past_the_request_timeout_is_a_504() {
    use std::time::{Duration, Instant};
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", silent.local_addr().unwrap());
    let hub = hub_timing_out(url, Duration::from_secs(1));
    let mut s = connect(&hub, None);
    let start = Instant::now();
    let (code, _, body) = get(&mut s, &format!("{P}/{ID}/proxy/direct/version"), "");
    assert_eq!(code, 504, "{body}");
    let status = status_of(&body);
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(
        status["message"],
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
    );
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    drop(silent);
}

/// Upgraded connections (exec, attach, port-forward) outlive the request timeout.
#[test]
fn upgraded_connections_are_not_cut() {
    use std::time::Duration;
    let hub = hub_timing_out("https://127.0.0.1:1".into(), Duration::from_millis(500));
    let mut s = connect(&hub, None);
    let upgrade = format!(
        "POST {P}/{ID}/proxy/direct/api/v1/namespaces/default/pods/p/exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n"
    );
    s.get_mut().write_all(upgrade.as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    std::thread::sleep(Duration::from_millis(1500));
    s.get_mut().write_all(b"ping").unwrap();
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping");
}
