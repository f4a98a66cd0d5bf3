//! The recorder over real TLS: keep-alive, answers, failures, client certificates.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use testkit::{FailureKind, Recorder, RecorderConfig};

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
fn answers_records_and_fails_like_the_hub() {
    let id = "dc91021d-2361-4f6d-a404-7c33b9e01118";
    let mut config = RecorderConfig::default();
    for (i, kind) in FailureKind::ALL.into_iter().enumerate() {
        config = config.fail(&format!("fail-{i}"), kind);
    }
    let recorder = Recorder::start(config).unwrap();
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
    for (i, kind) in FailureKind::ALL.into_iter().enumerate() {
        let fid = format!("fail-{i}");
        let (code, _, body) =
            get(&mut s, &format!("/apis/proxies.clusternet.io/v1alpha1/sockets/{fid}/proxy/direct/version"), "");
        let (want_code, reason, message) = kind.status(&fid);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code, want_code, "{kind}");
        assert_eq!(status["code"], want_code);
        assert_eq!(status["reason"], reason);
        assert_eq!(status["message"], message.as_str());
        assert_eq!(kind.as_str().parse::<FailureKind>(), Ok(kind));
    }
    assert_eq!(FailureKind::NoCluster.status("X").2, "no cluster id is X");

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

/// `forwards`: a second recorder plays the child apiserver. The token extra
/// becomes `Authorization: Bearer`, the certificate pair the TLS client
/// certificate; a mismatched pair is the hub's 400; others stay canned.
#[test]
fn forwards_to_a_real_child_with_the_extras() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let child = Recorder::start(RecorderConfig::default()).unwrap();
    let id = "0f0f0f0f-0000-4000-8000-000000000001";
    let mut config = RecorderConfig { child_ca_pem: Some(child.ca_pem()), ..RecorderConfig::default() };
    config.forwards.insert(id.to_string(), format!("{}/base", child.url()));
    let hub = Recorder::start(config).unwrap();
    let mut s = connect(&hub, None);
    let p = format!("/apis/proxies.clusternet.io/v1alpha1/sockets/{id}/proxy");

    // The child's own /version (its hub answer, so not the canned child's).
    let (code, _, body) = get(
        &mut s,
        &format!("{p}/direct/version?x=1"),
        "X-Remote-Extra-Clusternet-Token: tok-1\r\nAccept: application/json\r\n",
    );
    assert_eq!(code, 404, "{body}"); // /base/version is not a path the child serves
    let (code, ctype, body) = get(
        &mut s,
        &format!("{p}/https/127.0.0.1:{}/version", child.addr().port()),
        "X-Remote-Extra-Clusternet-Token: tok-2\r\n",
    );
    assert_eq!((code, ctype.as_str()), (200, "application/json"), "{body}");
    assert!(body.contains(testkit::HUB_GIT_VERSION), "{body}");
    let seen = child.requests();
    assert_eq!(seen[0].path, "/base/version");
    assert_eq!(seen[0].query.as_deref(), Some("x=1"));
    assert_eq!(seen[0].header("authorization"), Some("Bearer tok-1"));
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    assert_eq!(seen[1].path, "/version");
    assert_eq!(seen[1].header("authorization"), Some("Bearer tok-2"));
    assert!(seen.iter().all(|r| r.header("x-remote-extra-clusternet-token").is_none()));
    let recorded = hub.requests();
    assert_eq!(recorded[1].forwarded_to, Some(format!("{}/version", child.url())));
    assert_eq!(recorded[1].status, Some(200));

    // Certificate and key: the TLS client certificate towards the child.
    let (cert, key) = child.issue_client_cert("child-user");
    let (code, _, body) = get(
        &mut s,
        &format!("{p}/direct/"),
        &format!(
            "X-Remote-Extra-Clusternet-Certificate: {}\r\nX-Remote-Extra-Clusternet-Privatekey: {}\r\n",
            b64(&cert),
            b64(&key)
        ),
    );
    assert_eq!(code, 404, "{body}");
    let last = child.requests().pop().unwrap();
    assert_eq!(last.client_cert_cn.as_deref(), Some("child-user"));
    assert_eq!(last.header("authorization"), None);

    // A key that is not the certificate's: 400, nothing reaches the child.
    let before = child.requests().len();
    let (_, other_key) = child.issue_client_cert("other");
    let (code, _, body) = get(
        &mut s,
        &format!("{p}/direct/version"),
        &format!(
            "X-Remote-Extra-Clusternet-Certificate: {}\r\nX-Remote-Extra-Clusternet-Privatekey: {}\r\n",
            b64(&cert),
            b64(&other_key)
        ),
    );
    assert_eq!(code, 400);
    assert!(body.contains("invalid key pair in header"), "{body}");
    assert_eq!(child.requests().len(), before);

    // Another cluster: the canned child.
    let (code, _, body) = get(&mut s, "/apis/proxies.clusternet.io/v1alpha1/sockets/other/proxy/direct/version", "");
    assert_eq!(code, 200);
    assert!(body.contains(testkit::CHILD_GIT_VERSION), "{body}");
}
