//! Connecting to the parent: failures below HTTP get one line with the cause
//! and the fix, and X.509 v1 client certificates (as kubectl sends them) work.
//! Every server here is on 127.0.0.1.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use testkit::{Recorder, RecorderConfig, TlsMaterial};

use crate::support::*;

/// A parent kubeconfig for `server` with `ca_pem` and `user` (a YAML flow mapping).
fn parent(s: &Scratch, server: &str, ca_pem: &str, extra_cluster: &str, user: &str) -> String {
    s.write(
        "parent.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: p\nclusters:\n- name: p\n  cluster: {{server: '{server}', certificate-authority-data: {}{extra_cluster}}}\n\
             users:\n- name: u\n  user: {user}\ncontexts:\n- name: p\n  context: {{cluster: p, user: u}}\n",
            b64(ca_pem)
        ),
    );
    "parent.yaml".to_string()
}

fn list_fails(s: &Scratch, needle: &str) -> String {
    let out = s.bare(&["list", "--kubeconfig", "parent.yaml", "--timeout", "5s"]).output().unwrap();
    fails(&out, 1, needle);
    let err = stderr(&out);
    assert!(!err.contains("ServiceError") && !err.contains("client error (Connect)"), "raw kube chain: {err}");
    err
}

#[test]
fn closed_port_says_nothing_listens() {
    let s = Scratch::new();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    parent(&s, &format!("https://127.0.0.1:{port}"), &s.cert_pem, "", "{token: x}");
    list_fails(&s, "connection refused: nothing listens at the server's address; check server (host and port)");
}

#[test]
fn tls_failures_name_the_kubeconfig_field_to_fix() {
    let recorder = Recorder::start(Default::default()).unwrap();
    let s = Scratch::new();
    // A CA that did not sign the recorder's certificate.
    parent(&s, &recorder.url(), &s.cert_pem, "", "{token: x}");
    list_fails(&s, "not signed by the cluster's certificate-authority(-data)");
    // The right CA, but a name the certificate does not list.
    parent(&s, &recorder.url(), &recorder.ca_pem(), ", tls-server-name: wrong.example", "{token: x}");
    list_fails(&s, "does not name the host in server");
}

#[test]
fn a_plain_http_port_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let s = Scratch::new();
    parent(&s, &format!("https://127.0.0.1:{port}"), &s.cert_pem, "", "{token: x}");
    list_fails(&s, "the server does not speak TLS");
}

/// An X.509 v1 client certificate, as `openssl x509 -req` makes it and as in
/// `examples/parent.kubeconfig`: kubectl sends it; so must we.
#[test]
fn x509_v1_client_certificate_is_sent() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/parent.kubeconfig")).unwrap();
    let field = |name: &str| {
        let line = example.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
        line.split_once(':').unwrap().1.trim().to_string()
    };
    let user = format!(
        "{{client-certificate-data: {}, client-key-data: {}}}",
        field("client-certificate-data:"),
        field("client-key-data:")
    );
    // A server that does not ask for client certificates: before the fix the
    // client could not even be built ("UnsupportedCertVersion").
    let (cert, key) = {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    };
    let tls = TlsMaterial { cert_chain_pem: cert.clone(), key_pem: key, client_ca_pem: None };
    let recorder = Recorder::start(RecorderConfig { tls: Some(tls), ..Default::default() }).unwrap();
    let s = Scratch::new();
    parent(&s, &recorder.url(), &cert, "", &user);
    let out = s.generate(&["--token-file", "child.token", "--parent-auth", "keep", "--verify"]).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("verified \"clusternet-"), "{err}");
    assert!(!recorder.requests().is_empty());
}

/// A parent that answers every request 503 with `Retry-After: 1` (an
/// apiserver shedding load, or starting): kube's retry policy alone would ask
/// again 15 times with a backoff growing to minutes. The request, retries
/// included, is over at `--timeout`, and says so in one line.
#[test]
fn retries_end_at_the_timeout() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    use testkit::{RawAnswer, RawServer};

    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let server = RawServer::start(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"storage is (re)initializing","reason":"ServiceUnavailable","code":503}"#;
        RawAnswer::Bytes(
            format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
    .unwrap();
    let s = Scratch::new();
    parent(&s, &server.url(), &server.ca_pem(), "", "{token: x}");
    let start = Instant::now();
    let out = s.bare(&["list", "--kubeconfig", "parent.yaml", "--timeout", "2s"]).output().unwrap();
    let took = start.elapsed();
    fails(&out, 1, "timed out");
    // 2 s, plus start-up and a loaded machine's slack; without the bound it takes minutes.
    assert!(took < Duration::from_secs(8), "took {took:?}: {}", stderr(&out));
    assert!(asked.load(Ordering::SeqCst) >= 2, "kube's retries still apply within the timeout");
}
