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
