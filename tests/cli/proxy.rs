//! `proxy` without a cluster: the headers it sends compared on the wire with
//! what real kubectl sends for the same generated kubeconfig (the testkit
//! recorder), streaming and protocol upgrades through a hand-written
//! upstream, the Unix socket, the written kubeconfig, and bad input. Every
//! server here is on 127.0.0.1.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use testkit::Recorder;
use testkit::serving::Serving;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

/// `proxy` running in the scratch dir.
fn start(s: &Scratch, cmd: Command) -> Serving {
    Serving::start(cmd, s.path(&format!("proxy-{}.stderr", std::process::id())))
}

/// One HTTP/1.1 exchange over `stream`: `head` (request line and headers,
/// `Connection: close` added), then the whole answer.
fn exchange(mut stream: impl std::io::Read + std::io::Write, head: &str) -> String {
    write!(stream, "{head}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn tcp(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// A generated kubeconfig by hand, for `server` (the socket-proxy route).
fn generated(s: &Scratch, server: &str) -> &'static str {
    s.write(
        "gen.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\n\
             users:\n- name: c\n  user:\n    username: system:anonymous\n    as: clusternet\n    as-user-extra:\n      clusternet-token: [{CHILD_TOKEN}]\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: c, namespace: apps}}\n"
        ),
    );
    "gen.kubeconfig"
}

fn route(base: &str) -> String {
    format!("{base}/{PROXY}/{CLUSTER_ID}/proxy/direct")
}

/// The credentials and impersonation a request carried, sorted (client-go
/// sends the extras in map order).
fn identity(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        headers.iter().filter(|(k, _)| k == "authorization" || k.starts_with("impersonate-")).cloned().collect();
    out.sort();
    out
}

/// `rec.yaml`: a parent kubeconfig for the recorder, user without credentials.
fn parent_of(s: &Scratch, recorder: &Recorder) {
    s.write(
        "rec.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: p\nclusters:\n- name: p\n  cluster: {{server: '{}', certificate-authority-data: {}}}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: p\n  context: {{cluster: p, user: u}}\n",
            recorder.url(),
            b64(&recorder.ca_pem())
        ),
    );
}

#[test]
fn headers_on_the_wire_are_kubectls() {
    let recorder = Recorder::start(Default::default()).unwrap();
    let s = Scratch::new();
    parent_of(&s, &recorder);
    s.write("parent.token", &format!("{PARENT_TOKEN}\n"));
    let gen_args = ["gen", "--kubeconfig", "rec.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"];
    let parent = ["--parent-auth", "token", "--parent-token-file", "parent.token"];
    ok(s.bare(&gen_args).args(parent).args(["--output-file", "gen.kubeconfig"]));
    // An extra key that must be escaped in a header name, with two values, as
    // a hand-edited kubeconfig may have: encoded as client-go encodes it.
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&s.read("gen.kubeconfig")).unwrap();
    doc["users"][0]["user"]["as-user-extra"]["example.com/odd key%"] = serde_yaml::from_str("[one, two]").unwrap();
    s.write("gen.kubeconfig", &serde_yaml::to_string(&doc).unwrap());

    let path = format!("/{PROXY}/{CLUSTER_ID}/proxy/direct/api/v1/namespaces");
    let out = Command::new("kubectl")
        .args(["--kubeconfig", "gen.kubeconfig", "get", "ns", "-o", "name", "--request-timeout", "10s"])
        .current_dir(s.dir.path())
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl: {}", stderr(&out));
    let kubectl = recorder.requests().into_iter().find(|r| r.path == path).expect("kubectl's GET recorded");
    recorder.clear();

    let proxy = start(&s, s.bare(&["proxy", "--kubeconfig", "gen.kubeconfig", "--port", "0"]));
    let answer = exchange(
        tcp(&proxy.listening),
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer client-own\r\n\
         Impersonate-User: system:admin\r\nImpersonate-Group: system:masters\r\nImpersonate-Extra-Clusternet-Token: stolen\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let through = recorder.requests().into_iter().find(|r| r.path == path).expect("the proxy's GET recorded");

    let want = identity(&kubectl.headers);
    assert!(want.contains(&("authorization".into(), format!("Bearer {PARENT_TOKEN}"))), "{want:?}");
    assert!(want.contains(&("impersonate-extra-example.com%2fodd%20key%25".into(), "two".into())), "{want:?}");
    assert_eq!(identity(&through.headers), want, "the proxy must send what kubectl sends");
    let sent = format!("{:?}", through.headers);
    for client_own in ["client-own", "system:admin", "system:masters", "stolen"] {
        assert!(!sent.contains(client_own), "the client's {client_own:?} was forwarded: {sent}");
    }
    let (status, err) = proxy.stop();
    assert!(status.success(), "SIGTERM ends the proxy with 0: {status}; {err}");
}

/// A plain-HTTP upstream standing in for the parent: a watch that sends one
/// event, waits for `go`, then another; a 101 answer to an upgrade, then an
/// echo. Returns its address and the request heads it read.
fn upstream(go: mpsc::Receiver<()>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (heads_tx, heads) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") && reader.read_line(&mut head).unwrap_or(0) > 0 {}
            let _ = heads_tx.send(head.clone());
            let lower = head.to_ascii_lowercase();
            if lower.contains("\r\nupgrade: spdy/3.1") {
                stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
                    .unwrap();
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    stream.write_all(&buf[..n]).unwrap();
                }
            } else if head.contains("watch=true") {
                let chunk = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
                let first = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                    chunk("{\"type\":\"ADDED\"}\n")
                );
                stream.write_all(first.as_bytes()).unwrap();
                stream.flush().unwrap();
                // Only once the client has seen the first event.
                go.recv_timeout(WAIT).expect("the first event never reached the client: buffered?");
                stream.write_all(format!("{}0\r\n\r\n", chunk("{\"type\":\"DELETED\"}\n")).as_bytes()).unwrap();
                return;
            } else {
                stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            }
        }
    });
    (addr, heads)
}

#[test]
fn watches_stream_and_upgrades_pass_through() {
    let s = Scratch::new();
    let (go_tx, go) = mpsc::channel();
    let (addr, heads) = upstream(go);
    let kc = generated(&s, &route(&format!("http://{addr}")));
    let proxy = start(&s, s.bare(&["proxy", "--kubeconfig", kc, "--port", "0", "-v"]));

    // The upgrade: 101 back to the client, then bytes both ways.
    let mut stream = tcp(&proxy.listening);
    write!(
        stream,
        "POST /api/v1/namespaces/apps/pods/p/exec?command=sh&stdin=true HTTP/1.1\r\nHost: x\r\n\
         Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    stream.write_all(b"ping\n").unwrap();
    let mut echoed = String::new();
    reader.read_line(&mut echoed).unwrap();
    assert_eq!(echoed, "ping\n", "the tunnel carries bytes both ways");
    drop((reader, stream));
    let head = heads.recv_timeout(WAIT).unwrap();
    assert!(
        head.starts_with(&format!(
            "POST /{PROXY}/{CLUSTER_ID}/proxy/direct/api/v1/namespaces/apps/pods/p/exec?command=sh&stdin=true "
        )),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    for kept in [
        "connection: upgrade",
        "upgrade: spdy/3.1",
        "x-stream-protocol-version: v4.channel.k8s.io",
        "impersonate-user: clusternet",
    ] {
        assert!(lower.contains(kept), "{kept} missing upstream: {head}");
    }

    // The watch: the first event arrives while the upstream still holds the second back.
    let mut stream = tcp(&proxy.listening);
    write!(
        stream,
        "GET /api/v1/namespaces/apps/configmaps?watch=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut seen = String::new();
    while !seen.contains("ADDED") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed before the first event: {seen}");
        seen.push_str(&line);
    }
    go_tx.send(()).unwrap();
    reader.read_to_string(&mut seen).unwrap();
    assert!(seen.contains("DELETED"), "{seen}");

    let (status, err) = proxy.stop();
    assert!(status.success(), "{status}: {err}");
    // -v: one line per request, method, path, status; never the child token.
    assert!(err.contains("trace: POST /api/v1/namespaces/apps/pods/p/exec 101 "), "{err}");
    assert!(err.contains("trace: GET /api/v1/namespaces/apps/configmaps 200 "), "{err}");
    no_secrets(&err);
}

#[test]
fn unix_socket_is_private_and_removed_on_sigterm() {
    let s = Scratch::new();
    let recorder = Recorder::start(Default::default()).unwrap();
    // The recorder speaks HTTPS; answered or not, the socket is what is tested.
    let kc = generated(&s, &route(&recorder.url()));
    let socket = s.path("proxy.sock");
    let proxy = start(&s, s.bare(&["proxy", "--kubeconfig", kc, "--unix-socket", "proxy.sock"]));
    assert_eq!(proxy.listening, "proxy.sock");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let answer =
        exchange(std::os::unix::net::UnixStream::connect(&socket).unwrap(), "GET /version HTTP/1.1\r\nHost: x\r\n");
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    // Taken: a second proxy on the same path is refused.
    let out = s.bare(&["proxy", "--kubeconfig", kc, "--unix-socket", "proxy.sock"]).output().unwrap();
    fails(&out, 1, "--unix-socket proxy.sock already exists");
    let (status, err) = proxy.stop();
    assert!(status.success(), "{status}: {err}");
    assert!(!socket.exists(), "the socket file is removed on SIGTERM");
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!format!("{leftovers:?}").contains(".clusternet-proxy"), "{leftovers:?}");
}

#[test]
fn written_kubeconfig_has_the_address_and_no_credentials() {
    let s = Scratch::new();
    let kc = generated(&s, &route("https://127.0.0.1:1"));
    let proxy =
        start(&s, s.bare(&["proxy", "--kubeconfig", kc, "--port", "0", "--write-kubeconfig", "proxy.kubeconfig"]));
    let written = s.path("proxy.kubeconfig");
    assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o777, 0o600);
    let view = kubectl_view(&written);
    assert_eq!(only(&view, "clusters")["cluster"]["server"], format!("http://{}", proxy.listening));
    assert_eq!(only(&view, "users")["user"], serde_json::json!({}), "no credentials: {view}");
    // Nothing to verify on the loopback hop; the JavaScript client wants it said.
    assert_eq!(only(&view, "clusters")["cluster"]["insecure-skip-tls-verify"], true);
    assert_eq!(only(&view, "contexts")["context"]["namespace"], "apps", "the generated context's namespace");
    assert_eq!(view["current-context"], "c");
    no_secrets(&s.read("proxy.kubeconfig"));
    // Never over an existing file.
    let mut again = s.bare(&["proxy", "--kubeconfig", kc, "--port", "0", "--write-kubeconfig", "proxy.kubeconfig"]);
    fails(&again.output().unwrap(), 1, "--write-kubeconfig proxy.kubeconfig already exists");
    // The parent is down: the client gets a Status naming the cause, not a hang.
    let answer = exchange(tcp(&proxy.listening), "GET /version HTTP/1.1\r\nHost: x\r\n");
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert!(answer.contains("\"kind\":\"Status\"") && answer.contains("connection refused"), "{answer}");
    proxy.stop();
}

#[test]
fn bad_input_is_one_line() {
    let s = Scratch::new();
    let kc = generated(&s, &route("https://127.0.0.1:1"));
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = |args: &[&str]| s.bare(&[&["proxy"], args].concat()).output().unwrap();
    fails(
        &run(&["--kubeconfig", kc, "--port", &port]),
        1,
        &format!("--port {port}: 127.0.0.1:{port} is already in use"),
    );
    fails(&run(&["--kubeconfig", kc, "--address", "0.0.0.0"]), 2, "pass --allow-remote to confirm");
    fails(&run(&["--kubeconfig", "missing.yaml"]), 1, "missing.yaml");
    fails(&run(&["--kubeconfig", "parent.yaml"]), 1, "is not a generated Clusternet context");
    fails(
        &run(&["--kubeconfig", kc, "--token-file", "child.token"]),
        2,
        "--token-file is for --cluster-id or --cluster",
    );
    fails(&run(&["--kubeconfig", kc, "--unix-socket", "s", "--write-kubeconfig", "k"]), 2, "cannot be used with");
    fails(&run(&["--kubeconfig", kc, "--write-kubeconfig", "-"]), 2, "--write-kubeconfig - is not supported");
    fails(&run(&["--kubeconfig", kc, "--port", "70000"]), 2, "70000");
    // Nothing was written by any of them.
    assert!(!s.path("k").exists() && !s.path("s").exists());
    drop(taken);
}

/// The proxy serves `gen`'s flags too (here offline: --cluster-id), the
/// generated entries built in memory.
#[test]
fn gen_flags_build_the_upstream_in_memory() {
    let recorder = Recorder::start(Default::default()).unwrap();
    let s = Scratch::new();
    parent_of(&s, &recorder);
    let args =
        ["proxy", "--kubeconfig", "rec.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--port", "0"];
    let proxy = start(&s, s.bare(&args));
    let answer = exchange(tcp(&proxy.listening), "GET /version HTTP/1.1\r\nHost: x\r\n");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains(testkit::CHILD_GIT_VERSION), "{answer}");
    let got = recorder.requests();
    let r = got.iter().find(|r| r.path == format!("/{PROXY}/{CLUSTER_ID}/proxy/direct/version")).expect("recorded");
    assert_eq!(r.header("impersonate-user"), Some("clusternet"));
    assert_eq!(r.header("impersonate-extra-clusternet-token"), Some(CHILD_TOKEN));
    proxy.stop();
}
