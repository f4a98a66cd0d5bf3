//! `proxy` without a cluster: the headers it sends compared on the wire with
//! what real kubectl sends for the same generated kubeconfig (the testkit
//! recorder), streaming and protocol upgrades through a hand-written
//! upstream, the Unix socket, the written kubeconfig, and bad input. Every
//! server here is on 127.0.0.1.

use std::io::{BufRead, BufReader, Read as _, Write as _};
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
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer client-own\r\n\
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
        "POST /api/v1/namespaces/apps/pods/p/exec?command=sh&stdin=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\
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
        "GET /api/v1/namespaces/apps/configmaps?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
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
    let answer = exchange(
        std::os::unix::net::UnixStream::connect(&socket).unwrap(),
        "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    );
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
    let answer = exchange(tcp(&proxy.listening), "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n");
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
    // gen's flags without --cluster-id or --cluster: refused, never ignored
    // (the kubeconfig gen wrote holds the credentials and route already).
    for flag in [
        &["--token-file", "child.token"][..],
        &["--system-namespace", "x"],
        &["--child-server", "https://127.0.0.1:2"],
        &["--parent-auth", "keep"],
        &["--child-credentials", "hub"],
        &["--oidc-audience", "aud"],
        &["--oidc-token-env", "CI_JOB_JWT"],
        &["--client-certificate-data", "Y2VydA==", "--client-key-data", "a2V5"],
    ] {
        fails(&run(&[&["--kubeconfig", kc], flag].concat()), 2, "<--cluster-id <UUID>|--cluster <NAME>>");
    }
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
    let answer = exchange(tcp(&proxy.listening), "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains(testkit::CHILD_GIT_VERSION), "{answer}");
    let got = recorder.requests();
    let r = got.iter().find(|r| r.path == format!("/{PROXY}/{CLUSTER_ID}/proxy/direct/version")).expect("recorded");
    assert_eq!(r.header("impersonate-user"), Some("clusternet"));
    assert_eq!(r.header("impersonate-extra-clusternet-token"), Some(CHILD_TOKEN));
    proxy.stop();
}

// ---------------------------------------------------------------------------
// The attacker's side: a web page in the user's browser (DNS rebinding,
// cross-site WebSockets), another local party sending what no client sends,
// and a parent answer quoting the tool's own credentials.
// ---------------------------------------------------------------------------

/// One request an [`Upstream`] read: its head and how many body bytes followed.
struct Seen {
    head: String,
    body_len: usize,
}

/// A plain-HTTP upstream standing in for the parent: reads each request
/// whole (Content-Length or chunked), records it, and answers with
/// `answer(head)`, then closes.
struct Upstream {
    addr: String,
    seen: mpsc::Receiver<Seen>,
}

impl Upstream {
    fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, seen) = mpsc::channel();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (stream, tx, answer) = (stream.unwrap(), tx.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    while !head.ends_with("\r\n\r\n") && reader.read_line(&mut head).unwrap_or(0) > 0 {}
                    let body_len = drain_body(&mut reader, &head);
                    let mut stream = stream;
                    let _ = stream.write_all(&answer(&head));
                    let _ = tx.send(Seen { head, body_len });
                });
            }
        });
        Upstream { addr, seen }
    }

    /// Every request it read so far (waits `wait` for the first).
    fn requests(&self, wait: Duration) -> Vec<Seen> {
        let mut out: Vec<Seen> = self.seen.recv_timeout(wait).into_iter().collect();
        out.extend(self.seen.try_iter());
        out
    }
}

/// Reads the body that follows `head`; its length.
fn drain_body(reader: &mut impl BufRead, head: &str) -> usize {
    let lower = head.to_ascii_lowercase();
    let length =
        lower.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse::<usize>().unwrap());
    let mut buf = vec![0u8; 64 << 10];
    if let Some(mut left) = length {
        let total = left;
        while left > 0 {
            let n = reader.read(&mut buf[..left.min(64 << 10)]).unwrap();
            assert!(n > 0, "body cut short");
            left -= n;
        }
        return total;
    }
    if !lower.contains("transfer-encoding: chunked") {
        return 0;
    }
    let mut total = 0;
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let mut left = usize::from_str_radix(size.trim(), 16).unwrap();
        if left == 0 {
            let mut end = String::new();
            reader.read_line(&mut end).unwrap();
            return total;
        }
        total += left;
        while left > 0 {
            let n = reader.read(&mut buf[..left.min(64 << 10)]).unwrap();
            assert!(n > 0, "chunk cut short");
            left -= n;
        }
        let mut crlf = String::new();
        reader.read_line(&mut crlf).unwrap();
    }
}

fn answer_200(_: &str) -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec()
}

/// A proxy (with -v) in front of `upstream`.
fn proxy_to(s: &Scratch, upstream: &Upstream) -> Serving {
    let kc = generated(s, &route(&format!("http://{}", upstream.addr)));
    start(s, s.bare(&["proxy", "--kubeconfig", kc, "--port", "0", "-v"]))
}

/// The raw request `head` (ending in an empty line) over a fresh connection: the whole answer.
fn raw(proxy: &Serving, head: &str) -> String {
    let mut stream = tcp(&proxy.listening);
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A refusal: `code`, a Kubernetes Status naming `why`.
fn refused(answer: &str, code: u16, why: &str) {
    let head = answer.lines().next().unwrap_or_default();
    assert!(head.starts_with("HTTP/1.") && head[8..].starts_with(&format!(" {code} ")), "expected {code}: {answer}");
    let body = &answer[answer.find("\r\n\r\n").expect("a head") + 4..];
    let status: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    assert_eq!(status["kind"], "Status", "{answer}");
    assert_eq!(status["code"], code, "{answer}");
    assert!(status["message"].as_str().unwrap().contains(why), "{why:?} missing: {answer}");
}

/// DNS rebinding: a page on rebind.attacker.example whose name now points at
/// 127.0.0.1 sends its own Host. Refused as kubectl proxy refuses it; a
/// loopback name with or without the port passes.
#[test]
fn a_foreign_host_is_refused() {
    let s = Scratch::new();
    let upstream = Upstream::start(answer_200);
    let proxy = proxy_to(&s, &upstream);
    let port = proxy.listening.rsplit_once(':').unwrap().1.to_string();
    for host in [
        "rebind.attacker.example",
        &format!("rebind.attacker.example:{port}"),
        "127.0.0.2",
        "localhost.attacker.example",
    ] {
        let answer = raw(&proxy, &format!("GET /api/v1/secrets HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        refused(&answer, 403, "--accept-hosts");
    }
    let answer = raw(&proxy, "GET /api/v1/secrets HTTP/1.0\r\n\r\n");
    refused(&answer, 403, "--accept-hosts");
    assert!(upstream.requests(Duration::from_millis(500)).is_empty(), "a refused request reached the parent");
    for host in ["localhost", &format!("127.0.0.1:{port}"), &format!("localhost:{port}")] {
        let answer = raw(&proxy, &format!("GET /api/v1/secrets HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    assert_eq!(upstream.requests(WAIT).len() + upstream.requests(Duration::from_millis(200)).len(), 3);
    // Widened on purpose: the same rules as kubectl proxy's flag.
    let kc = generated(&s, &route(&format!("http://{}", upstream.addr)));
    let wide = Serving::start(
        s.bare(&["proxy", "--kubeconfig", kc, "--port", "0", "--accept-hosts", "^proxy\\.internal$"]),
        s.path("wide.stderr"),
    );
    let answer = raw(&wide, "GET /version HTTP/1.1\r\nHost: proxy.internal:8001\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    refused(&raw(&wide, "GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), 403, "Host");
    wide.stop();
    let (_, err) = proxy.stop();
    assert!(err.contains("trace: refused GET /api/v1/secrets: Host \"rebind.attacker.example\""), "{err}");
    no_secrets(&err);
}

/// Cross-site WebSockets: browsers let any page open a WebSocket to
/// 127.0.0.1, and the apiserver serves watch and exec over it to any Origin.
/// An Origin that is not the proxy's own is refused, upgrade or not.
#[test]
fn a_cross_site_origin_is_refused() {
    let s = Scratch::new();
    let upstream = Upstream::start(|_| {
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n".to_vec()
    });
    let proxy = proxy_to(&s, &upstream);
    let ws = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    for origin in [
        "http://attacker.example",
        "null",
        "http://127.0.0.1.attacker.example",
        "https://localhost.attacker.example:8001",
    ] {
        let answer = raw(
            &proxy,
            &format!(
                "GET /api/v1/namespaces/apps/pods?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\n{ws}\r\n"
            ),
        );
        refused(&answer, 403, "Origin");
    }
    let answer = raw(
        &proxy,
        "POST /api/v1/namespaces/apps/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://attacker.example\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    refused(&answer, 403, "Origin");
    assert!(upstream.requests(Duration::from_millis(500)).is_empty(), "a cross-site request reached the parent");
    // The proxy's own origin (a page served on loopback) still upgrades.
    let mut stream = tcp(&proxy.listening);
    write!(stream, "GET /api/v1/namespaces/apps/pods?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:3000\r\n{ws}\r\n").unwrap();
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let (_, err) = proxy.stop();
    assert!(
        err.contains("trace: refused GET /api/v1/namespaces/apps/pods: Origin \"http://attacker.example\""),
        "{err}"
    );
}

/// Requests that would leave the socket path: CONNECT (authority-form),
/// `OPTIONS *`, and absolute-form targets never go out.
#[test]
fn request_targets_off_the_path_are_refused() {
    let s = Scratch::new();
    let upstream = Upstream::start(answer_200);
    let proxy = proxy_to(&s, &upstream);
    for (head, why) in [
        ("CONNECT 127.0.0.1:6443 HTTP/1.1\r\nHost: 127.0.0.1:6443\r\n", "CONNECT"),
        ("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n", "a path starting with /"),
        ("GET http://127.0.0.1/api/v1/secrets HTTP/1.1\r\nHost: 127.0.0.1\r\n", "a path starting with /"),
        ("GET http://attacker.example/api/v1/secrets HTTP/1.1\r\nHost: 127.0.0.1\r\n", "a path starting with /"),
    ] {
        let answer = raw(&proxy, &format!("{head}Connection: close\r\n\r\n"));
        refused(&answer, 400, why);
    }
    assert!(upstream.requests(Duration::from_millis(500)).is_empty(), "a request off the path reached the parent");
    let (_, err) = proxy.stop();
    assert!(err.contains("trace: refused CONNECT"), "{err}");
}

/// Headers a front proxy or a web app trusts as identity never reach the parent.
#[test]
fn front_proxy_identity_headers_are_dropped() {
    let s = Scratch::new();
    let upstream = Upstream::start(answer_200);
    let proxy = proxy_to(&s, &upstream);
    let answer = raw(
        &proxy,
        "GET /api/v1/secrets HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Remote-User: system:admin\r\nx-remote-group: system:masters\r\n\
         X-REMOTE-EXTRA-scopes: all\r\nX-Remote-Uid: 0\r\nCookie: session=stolen-cookie\r\nProxy-Authorization: Basic c3RvbGVu\r\n\
         X-Forwarded-Client-Cert: Hash=stolen\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = upstream.requests(WAIT);
    let head = seen[0].head.to_ascii_lowercase();
    for dropped in ["x-remote-", "system:admin", "system:masters", "cookie", "stolen", "x-forwarded-client-cert"] {
        assert!(!head.contains(dropped), "{dropped:?} reached the parent: {head}");
    }
    assert!(head.contains("accept: application/json") && head.contains("impersonate-user: clusternet"), "{head}");
    proxy.stop();
}

/// A connection that never finishes its request head is closed, instead of
/// holding a task and a socket for ever.
#[test]
fn a_half_sent_head_is_cut() {
    let s = Scratch::new();
    let upstream = Upstream::start(answer_200);
    let proxy = proxy_to(&s, &upstream);
    let mut stream = tcp(&proxy.listening);
    stream.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
    stream.write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a").unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(read.is_ok(), "still open after {:?}: {read:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(20), "closed only after {:?}", started.elapsed());
    assert!(upstream.requests(Duration::from_millis(100)).is_empty());
    proxy.stop();
}

/// The parent's 403 for an impersonated extra quotes its value (the child
/// token); the proxy's own credentials never reach the client, nor -v.
#[test]
fn credentials_quoted_in_an_answer_are_redacted() {
    let s = Scratch::new();
    let upstream = Upstream::start(|_| {
        let body = format!(
            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"users \\\"clusternet\\\" is forbidden: \
             User \\\"system:anonymous\\\" cannot impersonate resource \\\"userextras/clusternet-token\\\" in API group \\\"authentication.k8s.io\\\" \
             at the cluster scope: extra clusternet-token=[{CHILD_TOKEN}], token {PARENT_TOKEN}\",\"reason\":\"Forbidden\",\"code\":403}}"
        );
        format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let kc = generated(&s, &route(&format!("http://{}", upstream.addr)));
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&s.read(kc)).unwrap();
    doc["users"][0]["user"]["token"] = PARENT_TOKEN.into();
    s.write(kc, &serde_yaml::to_string(&doc).unwrap());
    let proxy = start(&s, s.bare(&["proxy", "--kubeconfig", kc, "--port", "0", "-v"]));
    let answer = raw(&proxy, "GET /api/v1/secrets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("cannot impersonate resource"), "the rest of the answer is kept: {answer}");
    no_secrets(&answer);
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let status: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(status["code"], 403, "still the parent's Status: {answer}");
    let seen = upstream.requests(WAIT);
    assert!(seen[0].head.contains(CHILD_TOKEN), "the test's premise: the proxy sends the child token");
    let (_, err) = proxy.stop();
    no_secrets(&err);
}

/// The proxy's peak memory (VmHWM) and pid, from its stdout line and /proc.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Eight clients each upload 32 MiB at once (the apiserver takes 3 MiB for
/// an object, but a body is the client's to choose): the proxy streams them
/// and its peak memory stays far below what the bodies add up to.
#[test]
fn concurrent_large_bodies_stay_bounded() {
    const CLIENTS: usize = 8;
    const BODY: usize = 32 << 20;
    let s = Scratch::new();
    let upstream = Upstream::start(answer_200);
    let kc = generated(&s, &route(&format!("http://{}", upstream.addr)));
    let mut child = s
        .bare(&["proxy", "--kubeconfig", kc, "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim_end().strip_prefix("Starting to serve on ").unwrap_or_else(|| panic!("{line:?}")).to_string();
    let before = peak_kib(child.id());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut stream = tcp(&addr);
                write!(
                    stream,
                    "PUT /api/v1/namespaces/apps/configmaps/c{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     Content-Length: {BODY}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..BODY >> 20 {
                    stream.write_all(&chunk).unwrap();
                }
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    for c in clients {
        let answer = c.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let peak = peak_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let seen = upstream.requests(WAIT);
    let mut all = seen;
    all.extend(upstream.requests(Duration::from_millis(200)));
    assert_eq!(all.len(), CLIENTS);
    assert!(all.iter().all(|r| r.body_len == BODY), "every body arrived whole");
    let total_mib = (CLIENTS * BODY) >> 20;
    assert!(
        peak < 64 << 10,
        "peak memory {} MiB (before: {} MiB) for {CLIENTS} bodies of {} MiB ({total_mib} MiB in all): bodies are held, not streamed",
        peak >> 10,
        before >> 10,
        BODY >> 20
    );
}

// ---------------------------------------------------------------------------
// Over time: the parent (clusternet-hub) ends every request that is not
// upgraded at its request timeout, a watch with events too; through the
// proxy a JSON watch goes on from the last resourceVersion passed on.
// ---------------------------------------------------------------------------

/// One chunk of a chunked body.
fn chunk(s: &str) -> String {
    format!("{:x}\r\n{s}\r\n", s.len())
}

const WATCH_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

fn event(kind: &str, name: &str, rv: u32) -> String {
    format!(
        "{{\"type\":\"{kind}\",\"object\":{{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\",\"resourceVersion\":\"{rv}\"}}}}}}\n"
    )
}

/// The value of query parameter `name` in a request head's target.
fn query_param(head: &str, name: &str) -> Option<String> {
    let target = head.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// The events of a chunked answer read to its end (one event per chunk, as the proxy sends them).
fn events(answer: &str) -> Vec<serde_json::Value> {
    answer.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The parent cuts a watch twice (mid-event, with no terminating chunk; then
/// cleanly); the client sees one stream: the proxy asks again from the last
/// resourceVersion passed on (a BOOKMARK's too), for the time left of the
/// client's timeoutSeconds. A 410 Gone on resuming becomes the apiserver's
/// ERROR event, and the stream ends cleanly, so that an informer relists.
#[test]
fn a_cut_watch_is_resumed_from_the_last_resource_version() {
    let s = Scratch::new();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let upstream = Upstream::start(move |_| {
        match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            // Two events, then half of a third, then the connection closes.
            0 => format!(
                "{WATCH_HEAD}{}{}{}",
                chunk(&event("ADDED", "a", 10)),
                chunk(&event("BOOKMARK", "", 12)),
                chunk("{\"type\":\"MODIFIED\",\"object\":{\"kind\":")
            ),
            1 => format!("{WATCH_HEAD}{}0\r\n\r\n", chunk(&event("MODIFIED", "b", 13))),
            _ => {
                let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 13 (20)","reason":"Expired","code":410}"#;
                format!(
                    "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        }
        .into_bytes()
    });
    let proxy = proxy_to(&s, &upstream);
    let started = std::time::Instant::now();
    let answer = raw(
        &proxy,
        "GET /api/v1/namespaces/apps/configmaps?watch=true&resourceVersion=5&timeoutSeconds=30 HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("0\r\n\r\n"), "the stream ends cleanly after the ERROR event: {answer:?}");
    let got = events(&answer);
    let kinds: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ADDED", "BOOKMARK", "MODIFIED", "ERROR"], "{answer}");
    let error = &got[3]["object"];
    assert_eq!(error["kind"], "Status", "{answer}");
    assert_eq!(error["code"], 410, "{answer}");
    assert_eq!(error["reason"], "Expired", "{answer}");
    assert_eq!(error["message"], "too old resource version: 13 (20)", "{answer}");
    assert!(!answer.contains("\"kind\":\"MODIFIED"), "no half event: {answer}");

    let seen: Vec<String> = upstream.requests(WAIT).into_iter().map(|r| r.head).collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let path = format!("/{PROXY}/{CLUSTER_ID}/proxy/direct/api/v1/namespaces/apps/configmaps?");
    for (head, rv) in seen.iter().zip(["5", "12", "13"]) {
        assert!(head.starts_with(&format!("GET {path}")), "{head}");
        assert_eq!(query_param(head, "resourceVersion").as_deref(), Some(rv), "{head}");
        assert_eq!(query_param(head, "watch").as_deref(), Some("true"), "{head}");
        let timeout: u64 = query_param(head, "timeoutSeconds").unwrap().parse().unwrap();
        let left = 30 - started.elapsed().as_secs().min(30);
        assert!(timeout <= 30 && timeout + 1 >= left, "timeoutSeconds {timeout} with {left} s left: {head}");
        assert!(head.contains(CHILD_TOKEN), "the resumed request carries the context's credentials: {head}");
    }
    let (_, err) = proxy.stop();
    assert!(
        err.contains(
            "trace: watch /api/v1/namespaces/apps/configmaps resumed from resourceVersion 12 after the parent cut the stream"
        ),
        "{err}"
    );
    assert!(
        err.contains("trace: watch /api/v1/namespaces/apps/configmaps: 410 Gone on resuming; ended so that the client lists again"),
        "{err}"
    );
    no_secrets(&err);
}

/// A watch cut before any event resumes with the client's own
/// resourceVersion; a parent that keeps refusing ends the stream, after a
/// bounded number of attempts a second apart, with an ERROR event (Status 503).
#[test]
fn a_watch_the_parent_keeps_refusing_ends_with_an_error_event() {
    let s = Scratch::new();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let upstream = Upstream::start(move |_| {
        match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => WATCH_HEAD.to_string(),
            _ => {
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\ndown\n".into()
            }
        }
        .into_bytes()
    });
    let proxy = proxy_to(&s, &upstream);
    let started = std::time::Instant::now();
    let answer = raw(
        &proxy,
        "GET /api/v1/watch/namespaces/apps/configmaps?resourceVersion=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("0\r\n\r\n"), "{answer:?}");
    let got = events(&answer);
    assert_eq!(got.len(), 1, "{answer}");
    assert_eq!(got[0]["type"], "ERROR", "{answer}");
    assert_eq!(got[0]["object"]["code"], 503, "{answer}");
    assert_eq!(got[0]["object"]["reason"], "ServiceUnavailable", "{answer}");
    let message = got[0]["object"]["message"].as_str().unwrap();
    assert!(message.contains("5 attempts to resume the watch failed, the last: HTTP 503"), "{message}");
    let seen: Vec<String> = upstream.requests(WAIT).into_iter().map(|r| r.head).collect();
    assert_eq!(seen.len(), 6, "the watch, then 5 attempts: {seen:?}");
    assert!(seen.iter().all(|h| query_param(h, "resourceVersion").as_deref() == Some("7")), "{seen:?}");
    assert!(seen.iter().all(|h| query_param(h, "timeoutSeconds").is_none()), "none asked: {seen:?}");
    assert!(took >= Duration::from_secs(5) && took < Duration::from_secs(15), "{took:?}");
    proxy.stop();
}

/// A protobuf watch streams through as it comes: the proxy does not read it,
/// and a cut ends it for the client.
#[test]
fn a_protobuf_watch_is_not_resumed() {
    let s = Scratch::new();
    let upstream = Upstream::start(|_| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.kubernetes.protobuf;stream=watch\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            chunk("k8s\0opaque")
        )
        .into_bytes()
    });
    let proxy = proxy_to(&s, &upstream);
    let answer = raw(
        &proxy,
        "GET /api/v1/configmaps?watch=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/vnd.kubernetes.protobuf;stream=watch\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("k8s\0opaque"), "{answer:?}");
    assert!(!answer.ends_with("0\r\n\r\n"), "the cut is passed on: {answer:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(upstream.requests(WAIT).len(), 1);
    proxy.stop();
}

/// `s` seconds from now, as the apiserver writes a time (RFC 3339, UTC).
fn rfc3339_in(s: u64) -> String {
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + s;
    testkit::lab::rfc3339(at)
}

/// A parent standing in for the TokenRequest API (child tokens through the
/// socket path, the parent token on the parent itself): each token minted is
/// `SECRET-<which>-<n>-token`, expiring 4 s later; every other request gets 200.
fn minting_parent() -> Upstream {
    let (child, parent) = (std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0));
    Upstream::start(move |head| {
        let which = match head {
            h if !h.starts_with("POST ") => return answer_200(h),
            h if h.contains("/serviceaccounts/deployer/token") => ("child", &child),
            h if h.contains("/api/v1/namespaces/clusternet-system/serviceaccounts/clusternet-hub-proxy/token") => {
                ("parent", &parent)
            }
            h => return answer_200(h),
        };
        let n = which.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let body = format!(
            "{{\"kind\":\"TokenRequest\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{{}},\
             \"spec\":{{\"audiences\":[],\"expirationSeconds\":600}},\
             \"status\":{{\"token\":\"SECRET-{}-{n}-token\",\"expirationTimestamp\":\"{}\"}}}}",
            which.0,
            rfc3339_in(4)
        );
        format!(
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// `proxy --cluster-id ... <flags>` with -v in front of `upstream` (plain HTTP, an anonymous parent user).
fn minting_proxy(s: &Scratch, upstream: &Upstream, flags: &[&str]) -> Serving {
    s.write(
        "par.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: p\nclusters:\n- name: p\n  cluster: {{server: 'http://{}'}}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: p\n  context: {{cluster: p, user: u}}\n",
            upstream.addr
        ),
    );
    let args = ["proxy", "--kubeconfig", "par.yaml", "--cluster-id", CLUSTER_ID, "--port", "0", "-v"];
    let mut cmd = s.bare(&args);
    cmd.args(flags);
    start(s, cmd)
}

/// The value of header `name` on the last GET that reached the parent.
fn last_get_header(upstream: &Upstream, name: &str) -> String {
    let seen = upstream.requests(WAIT);
    let head = &seen.iter().rfind(|r| r.head.starts_with("GET ")).expect("a GET reached the parent").head;
    let line = head.lines().find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")));
    line.unwrap_or_else(|| panic!("no {name}: {head}")).split_once(':').unwrap().1.trim().to_string()
}

/// `proxy --child-token-request` renews the token it minted before it
/// expires (when the child says, not the TTL asked): a request after the
/// first token's expiry carries a new one.
#[test]
fn a_minted_child_token_is_renewed_before_it_expires() {
    let s = Scratch::new();
    let upstream = minting_parent();
    let flags = ["--token-file", "child.token", "--child-token-request", "ci/deployer", "--child-token-ttl", "10m"];
    let proxy = minting_proxy(&s, &upstream, &flags);
    let get = "GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert!(raw(&proxy, get).starts_with("HTTP/1.1 200"));
    assert_eq!(last_get_header(&upstream, "impersonate-extra-clusternet-token"), "SECRET-child-1-token");
    std::thread::sleep(Duration::from_secs(5));
    assert!(raw(&proxy, get).starts_with("HTTP/1.1 200"));
    let renewed = last_get_header(&upstream, "impersonate-extra-clusternet-token");
    assert!(renewed.starts_with("SECRET-child-") && renewed != "SECRET-child-1-token", "{renewed}");
    let (_, err) = proxy.stop();
    assert!(err.contains("trace: renewed child token, expires 20"), "{err}");
    assert!(!err.contains("SECRET-"), "{err}");
}

/// `--parent-token-request` too: the parent token the proxy minted is
/// renewed with the child token, before the first of them expires.
#[test]
fn a_minted_parent_token_is_renewed_before_it_expires() {
    let s = Scratch::new();
    let upstream = minting_parent();
    let flags = ["--token-file", "child.token", "--parent-auth", "token", "--parent-token-request"];
    let proxy = minting_proxy(&s, &upstream, &flags);
    let get = "GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    assert!(raw(&proxy, get).starts_with("HTTP/1.1 200"));
    assert_eq!(last_get_header(&upstream, "authorization"), "Bearer SECRET-parent-1-token");
    std::thread::sleep(Duration::from_secs(5));
    assert!(raw(&proxy, get).starts_with("HTTP/1.1 200"));
    let renewed = last_get_header(&upstream, "authorization");
    assert!(renewed.starts_with("Bearer SECRET-parent-") && renewed != "Bearer SECRET-parent-1-token", "{renewed}");
    let (_, err) = proxy.stop();
    assert!(err.contains("trace: renewed parent token, expires 20"), "{err}");
    assert!(!err.contains("SECRET-parent-"), "{err}");
}
