//! Reaching the parent as kubectl does, with kubectl as the oracle in every
//! test: the parent's server as written, a server without a scheme, proxies
//! (`proxy-url` and the environment), and the certificates a real apiserver
//! serves. Every test first lets kubectl reach the loopback parent the same
//! way, then this tool (and kubectl with what it generated).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::{RecordedRequest, Recorder, RecorderConfig, TlsMaterial};

use crate::kubectl::{self, Kubectl};
use crate::support::*;

/// The newest kubectl on this machine (the oracle); fails when there is none.
pub fn oracle() -> Kubectl {
    kubectl::find().pop().expect("no kubectl found: these tests need kubectl on PATH")
}

/// Runs kubectl with `kubeconfig` and `env` (on top of its clean environment).
pub fn kubectl_with(k: &Kubectl, kubeconfig: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&k.path);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", scratch.path())
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--cache-dir", scratch.path().to_str().unwrap()])
        .arg("--request-timeout=20s")
        .args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

/// A serving certificate and key (PEM) for `sans`, self-signed; `ca` says
/// whether it is also marked a CA (`openssl req -x509` does that by default).
pub fn self_signed(sans: &[&str], ca: bool) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, sans[0]);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// A recorder serving `cert`/`key` on `listen`.
pub fn recorder_with(cert: &str, key: &str, listen: &str) -> Recorder {
    let tls = TlsMaterial { cert_chain_pem: cert.into(), key_pem: key.into(), client_ca_pem: None };
    Recorder::start(RecorderConfig { tls: Some(tls), listen: Some(listen.parse().unwrap()), ..Default::default() })
        .unwrap()
}

/// Writes `parent.yaml`: one context `p`, cluster `server` with `cluster`
/// (more fields, a JSON object), user with a token.
pub fn write_parent(s: &Scratch, server: &str, cluster: Value) {
    let mut fields = serde_json::json!({ "server": server });
    fields.as_object_mut().unwrap().extend(cluster.as_object().unwrap().clone());
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "p",
        "clusters": [{"name": "p", "cluster": fields}],
        "users": [{"name": "u", "user": {"token": PARENT_USER_TOKEN}}],
        "contexts": [{"name": "p", "context": {"cluster": "p", "user": "u"}}],
    });
    s.write("parent.yaml", &doc.to_string());
}

/// `gen` to `out.yaml` with the child token, the parent's credentials kept, and `extra`.
pub fn generate_to(s: &Scratch, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut cmd =
        s.generate(&["--token-file", "child.token", "--parent-auth", "keep", "--output-file", "out.yaml", "--force"]);
    cmd.args(extra).envs(env.iter().copied());
    cmd.output().unwrap()
}

/// The server of the only cluster of `path`, as kubectl reads it.
pub fn server_of(path: &Path) -> String {
    only(&kubectl_view(path), "clusters")["cluster"]["server"].as_str().unwrap().to_string()
}

fn hosts(requests: &[RecordedRequest]) -> Vec<String> {
    requests.iter().map(|r| r.header("host").unwrap_or_default().to_string()).collect()
}

/// kubectl keeps the parent's server as written and sends its authority as
/// the Host header; the generated server is that same text plus the path,
/// so kubectl sends the same Host through it, and our own probe reaches it.
#[test]
fn the_parent_server_is_kept_as_written() {
    let k = oracle();
    let (cert, key) = self_signed(&["::1"], false);
    let recorder = recorder_with(&cert, &key, "[::1]:0");
    let port = recorder.addr().port();
    // The long form of ::1, which a URL parser would print as [::1].
    let written = format!("https://[0:0:0:0:0:0:0:1]:{port}");
    let s = Scratch::new();
    write_parent(&s, &written, serde_json::json!({ "certificate-authority-data": b64(&cert) }));

    // The oracle: kubectl reaches the parent and sends the host as written.
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
    let seen = hosts(&recorder.requests());
    assert_eq!(seen, [format!("[0:0:0:0:0:0:0:1]:{port}")], "kubectl: {}", kubectl::describe(&out));
    recorder.clear();

    let out = generate_to(&s, &[], &["--verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server_of(&s.path("out.yaml")), format!("{written}/{PROXY}/{CLUSTER_ID}/proxy/direct"));
    let ours = hosts(&recorder.requests());
    assert!(!ours.is_empty() && ours.iter().all(|h| *h == seen[0]), "{ours:?}");
    recorder.clear();

    let out = kubectl_with(&k, &s.path("out.yaml"), &[], &["get", "--raw", "/version"]);
    assert!(out.status.success(), "{}", kubectl::describe(&out));
    assert_eq!(hosts(&recorder.requests()), seen, "kubectl through the generated server");
}

/// A KUBECONFIG list naming a dangling symlink: kubectl skips it (os.Stat
/// follows the link and finds nothing), as it skips a missing file.
#[test]
fn a_dangling_symlink_in_kubeconfig_is_skipped() {
    let k = oracle();
    let s = Scratch::new();
    std::os::unix::fs::symlink(s.path("nowhere/config"), s.path("first")).unwrap();
    let list = format!("{}:{}", s.path("first").display(), s.path("parent.yaml").display());
    let out = Command::new(&k.path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.path(""))
        .env("KUBECONFIG", &list)
        .args(["config", "view", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", kubectl::describe(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["current-context"], "main", "kubectl read parent.yaml");

    let out = s
        .bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"])
        .env("KUBECONFIG", &list)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("server: https://10.0.0.10:6443/{PROXY}/{CLUSTER_ID}/proxy/direct")));
}

/// A plain-HTTP listener on 127.0.0.1 that answers 404 to everything and
/// hands each request head to the test.
fn plain_http() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(&stream);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, rx)
}

/// `server: 127.0.0.1:PORT` without a scheme: kubectl speaks plain HTTP to
/// it, even with a CA and a token (clientcmd decides "secure or not" before
/// it reads them, and then reads neither); the generated server is http://
/// too. A scheme-less server with a path is refused by both.
#[test]
fn a_server_without_scheme_is_plain_http_as_for_kubectl() {
    let k = oracle();
    let (port, heads) = plain_http();
    let written = format!("127.0.0.1:{port}");
    let s = Scratch::new();
    // Every head received for one (finished) kubectl run: at least one.
    let all = |heads: &std::sync::mpsc::Receiver<String>| {
        let first = heads.recv_timeout(std::time::Duration::from_secs(20)).expect("a request");
        let quiet = std::time::Duration::from_secs(1);
        std::iter::once(first).chain(std::iter::from_fn(|| heads.recv_timeout(quiet).ok())).collect::<Vec<_>>()
    };
    for cluster in [serde_json::json!({}), serde_json::json!({ "certificate-authority-data": b64(&s.cert_pem) })] {
        write_parent(&s, &written, cluster);
        let _ = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
        for head in all(&heads) {
            assert!(head.starts_with("GET /version?"), "kubectl speaks plain HTTP: {head}");
            assert!(!head.to_ascii_lowercase().contains("authorization"), "and sends no credentials: {head}");
        }

        // Nor does this tool, asking the parent itself.
        let _ = s.bare(&["list", "--kubeconfig", "parent.yaml", "--timeout", "5s"]).output().unwrap();
        for head in all(&heads) {
            assert!(head.starts_with("GET /apis/clusters.clusternet.io/"), "list speaks plain HTTP: {head}");
            assert!(!head.to_ascii_lowercase().contains("authorization"), "and sends no credentials: {head}");
        }

        let out = generate_to(&s, &[], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let generated = server_of(&s.path("out.yaml"));
        assert_eq!(generated, format!("http://{written}/{PROXY}/{CLUSTER_ID}/proxy/direct"));
        // `get --raw` drops a server's path on some kubectl versions; discovery keeps it.
        let _ = kubectl_with(&k, &s.path("out.yaml"), &[], &["get", "ns"]);
        for head in all(&heads) {
            assert!(head.starts_with(&format!("GET /{PROXY}/{CLUSTER_ID}/proxy/direct/")), "{head}");
        }
    }

    write_parent(&s, &format!("{written}/prefix"), serde_json::json!({}));
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
    let kubectl_err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && kubectl_err.contains("host must be a URL or a host:port pair"), "{kubectl_err}");
    let out = generate_to(&s, &[], &[]);
    fails(&out, 1, "has no scheme and a path");
}

/// What only the proxies resolve: the parent's host name, to 127.0.0.1.
const PARENT_HOST: &str = "parent.test";

fn names() -> [(&'static str, std::net::IpAddr); 1] {
    [(PARENT_HOST, std::net::IpAddr::from([127, 0, 0, 1]))]
}

/// A parent at https://parent.test:PORT (a name no resolver knows), its CA,
/// and `extra` cluster fields, in `parent.yaml`.
fn named_parent(s: &Scratch, extra: Value) -> Recorder {
    let (cert, key) = self_signed(&[PARENT_HOST], false);
    let recorder = recorder_with(&cert, &key, "127.0.0.1:0");
    let mut cluster = serde_json::json!({ "certificate-authority-data": b64(&cert) });
    cluster.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    write_parent(s, &format!("https://{PARENT_HOST}:{}", recorder.addr().port()), cluster);
    recorder
}

/// The targets a proxy tunnelled to, as `host:port (by name)`.
fn targets(log: &[testkit::proxies::Tunnelled]) -> Vec<String> {
    log.iter()
        .filter(|t| t.tunnelled)
        .map(|t| format!("{}{}", t.target, if t.by_name { " (by name)" } else { "" }))
        .collect()
}

/// One request through `proxy` (the subcommand) running on `kubeconfig` with `env`.
fn through_proxy_subcommand(s: &Scratch, kubeconfig: &str, env: &[(&str, &str)]) -> String {
    use std::io::{Read as _, Write as _};
    let mut cmd = s.bare(&["proxy", "--kubeconfig", kubeconfig, "--port", "0"]);
    cmd.envs(env.iter().copied());
    let proxy = testkit::serving::Serving::start(cmd, s.path("proxy.stderr"));
    let mut stream = std::net::TcpStream::connect(&proxy.listening).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    write!(stream, "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// kubectl through the proxy (the oracle), then each of this tool's
/// connections to the parent that work offline: `gen --verify`, `verify`,
/// and `proxy`; each must go through the proxy to `parent.test`.
fn every_connection_goes_through(
    s: &Scratch,
    recorder: &Recorder,
    env: &[(&str, &str)],
    log: &dyn Fn() -> Vec<testkit::proxies::Tunnelled>,
) {
    let k = oracle();
    let port = recorder.addr().port();
    let want = format!("{PARENT_HOST}:{port} (by name)");
    let out = kubectl_with(&k, &s.path("parent.yaml"), env, &["get", "--raw", "/version"]);
    assert_eq!(recorder.requests().len(), 1, "kubectl reaches the parent: {}", kubectl::describe(&out));
    assert_eq!(targets(&log()), std::slice::from_ref(&want), "kubectl went through the proxy");

    let out = generate_to(s, env, &["--verify"]);
    assert!(out.status.success(), "gen --verify: {}", stderr(&out));
    let after_gen = targets(&log());
    assert!(after_gen.len() > 1 && after_gen.iter().all(|t| *t == want), "{after_gen:?}");

    let out = kubectl_with(&k, &s.path("out.yaml"), env, &["get", "--raw", "/version"]);
    assert!(out.status.success(), "kubectl with the generated kubeconfig: {}", kubectl::describe(&out));
    let after_kubectl = targets(&log()).len();
    assert!(after_kubectl > after_gen.len());

    let mut verify = s.bare(&["verify", "--kubeconfig", "out.yaml"]);
    let out = verify.envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "verify: {}", stderr(&out));
    let after_verify = targets(&log()).len();
    assert!(after_verify > after_kubectl, "verify went through the proxy");

    let answer = through_proxy_subcommand(s, "out.yaml", env);
    assert!(answer.starts_with("HTTP/1.1 200"), "proxy: {answer}");
    let all = targets(&log());
    assert!(all.len() > after_verify && all.iter().all(|t| *t == want), "{all:?}");
}

/// `proxy-url: http://...` (a CONNECT proxy): kubectl tunnels through it to
/// the host name, which only the proxy resolves; so does every connection here.
#[test]
fn proxy_url_http_is_followed() {
    let proxy = testkit::proxies::ConnectProxy::start(&names()).unwrap();
    let s = Scratch::new();
    let recorder = named_parent(&s, serde_json::json!({ "proxy-url": proxy.url() }));
    every_connection_goes_through(&s, &recorder, &[], &|| proxy.tunnelled());
}

/// `proxy-url: socks5://...` (as `ssh -D`): kubectl sends the host name for
/// the proxy to resolve (Go's SOCKS5 dialer never resolves locally); so do we.
#[test]
fn proxy_url_socks5_is_followed_with_the_name_resolved_by_the_proxy() {
    let proxy = testkit::proxies::Socks5Proxy::start(&names()).unwrap();
    let s = Scratch::new();
    let recorder = named_parent(&s, serde_json::json!({ "proxy-url": proxy.url() }));
    every_connection_goes_through(&s, &recorder, &[], &|| proxy.tunnelled());
}

/// `proxy-url` applies to a loopback server too (client-go's http.ProxyURL
/// asks no questions), where the environment's proxies never apply.
#[test]
fn proxy_url_applies_to_loopback_and_environment_proxies_do_not() {
    let k = oracle();
    let proxy = testkit::proxies::ConnectProxy::start(&[]).unwrap();
    let recorder = Recorder::start(Default::default()).unwrap();
    let s = Scratch::new();
    let ca = serde_json::json!({ "certificate-authority-data": b64(&recorder.ca_pem()) });
    let env = [("HTTPS_PROXY", proxy.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    write_parent(&s, &recorder.url(), ca.clone());
    let out = kubectl_with(&k, &s.path("parent.yaml"), &env, &["get", "--raw", "/version"]);
    assert_eq!(recorder.requests().len(), 1, "{}", kubectl::describe(&out));
    assert!(proxy.tunnelled().is_empty(), "kubectl: a loopback server never goes through HTTPS_PROXY");
    let out = generate_to(&s, &env, &["--verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(proxy.tunnelled().is_empty(), "nor here");

    let mut with_url = ca.clone();
    with_url["proxy-url"] = Value::from(proxy.url());
    write_parent(&s, &recorder.url(), with_url);
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[("NO_PROXY", "*")], &["get", "--raw", "/version"]);
    assert!(out.status.success() || recorder.requests().len() == 2, "{}", kubectl::describe(&out));
    let by_kubectl = targets(&proxy.tunnelled());
    assert_eq!(by_kubectl, [recorder.addr().to_string()], "kubectl: proxy-url, NO_PROXY or not");
    let out = generate_to(&s, &[("NO_PROXY", "*")], &["--verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(targets(&proxy.tunnelled()).len() > 1);
}

/// HTTPS_PROXY (and https_proxy) from the environment, as Go's
/// ProxyFromEnvironment reads it: kubectl goes through it to a host that is
/// not loopback; so does every connection here.
#[test]
fn https_proxy_from_the_environment_is_followed() {
    let proxy = testkit::proxies::ConnectProxy::start(&names()).unwrap();
    let s = Scratch::new();
    let recorder = named_parent(&s, serde_json::json!({}));
    let url = proxy.url();
    // Host:port alone is an http proxy to Go; NO_PROXY entries for other hosts do not matter.
    let bare = url.trim_start_matches("http://").to_string();
    let env = [("https_proxy", bare.as_str()), ("NO_PROXY", "localhost,.svc,,10.0.0.0/8,other.test:443")];
    every_connection_goes_through(&s, &recorder, &env, &|| proxy.tunnelled());
}

/// Where Go's rules say "direct", kubectl and this tool both go direct (and
/// then fail alike, since nothing else resolves `parent.test`): NO_PROXY
/// naming the host (exactly, as a domain suffix, or `*`), or only HTTP_PROXY
/// set for an https server.
#[test]
fn no_proxy_and_http_proxy_send_an_https_server_direct_as_kubectl_does() {
    let k = oracle();
    let proxy = testkit::proxies::ConnectProxy::start(&names()).unwrap();
    let s = Scratch::new();
    let recorder = named_parent(&s, serde_json::json!({}));
    let url = proxy.url();
    let port = recorder.addr().port().to_string();
    let exact = format!("{PARENT_HOST}:{port}");
    for env in [
        vec![("HTTPS_PROXY", url.as_str()), ("NO_PROXY", PARENT_HOST)],
        vec![("HTTPS_PROXY", url.as_str()), ("no_proxy", "test")],
        vec![("HTTPS_PROXY", url.as_str()), ("NO_PROXY", ".test")],
        vec![("HTTPS_PROXY", url.as_str()), ("NO_PROXY", "*")],
        vec![("HTTPS_PROXY", url.as_str()), ("NO_PROXY", exact.as_str())],
        vec![("HTTP_PROXY", url.as_str())],
    ] {
        let out = kubectl_with(&k, &s.path("parent.yaml"), &env, &["get", "--raw", "/version"]);
        assert!(!out.status.success(), "{env:?}: kubectl must go direct and fail: {}", kubectl::describe(&out));
        let out = generate_to(&s, &env, &["--verify"]);
        fails(&out, 1, "dns error: failed to lookup address");
        assert!(proxy.tunnelled().is_empty() && recorder.requests().is_empty(), "{env:?}: {:?}", proxy.tunnelled());
    }
    // The same NO_PROXY with another port: proxied.
    let env = [("HTTPS_PROXY", url.as_str()), ("NO_PROXY", "parent.test:1")];
    let out = kubectl_with(&k, &s.path("parent.yaml"), &env, &["get", "--raw", "/version"]);
    assert_eq!(recorder.requests().len(), 1, "{}", kubectl::describe(&out));
    let out = generate_to(&s, &env, &["--verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A proxy URL with user info: kubectl sends it as Basic credentials to the
/// proxy; so do we. The password never shows, in errors or -v lines.
#[test]
fn proxy_credentials_are_sent_to_the_proxy_and_never_shown() {
    use base64::Engine as _;
    const PASSWORD: &str = "SECRET-proxy-pw-6e1f";
    let k = oracle();
    let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ops:{PASSWORD}")));
    let proxy = testkit::proxies::ConnectProxy::requiring(&names(), &want).unwrap();
    let s = Scratch::new();
    let recorder = named_parent(&s, serde_json::json!({}));
    let url = format!("http://ops:{PASSWORD}@{}", proxy.addr());
    for env in [vec![("HTTPS_PROXY", url.as_str())], vec![]] {
        if env.is_empty() {
            named_parent_at(&s, &recorder, serde_json::json!({ "proxy-url": url }));
        }
        let before = recorder.requests().len();
        let out = kubectl_with(&k, &s.path("parent.yaml"), &env, &["get", "--raw", "/version"]);
        assert_eq!(recorder.requests().len(), before + 1, "{}", kubectl::describe(&out));
        let out = generate_to(&s, &env, &["--verify", "-v"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("through proxy http://<user info removed>@127.0.0.1:"), "{err}");
        assert!(!err.contains(PASSWORD), "{err}");
        assert!(proxy.tunnelled().iter().all(|t| t.proxy_authorization.as_deref() == Some(want.as_str())));
    }
    // A proxy that is not there: the error names the cause, not the password.
    named_parent_at(&s, &recorder, serde_json::json!({}));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gone = format!("http://ops:{PASSWORD}@{closed}");
    for env in [vec![("HTTPS_PROXY", gone.as_str())], vec![]] {
        if env.is_empty() {
            named_parent_at(&s, &recorder, serde_json::json!({ "proxy-url": gone }));
        }
        let out = generate_to(&s, &env, &["--verify", "-v"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(!err.contains(PASSWORD) && !err.contains("ops:"), "{err}");
    }
    // A scheme kubectl does not take.
    named_parent_at(&s, &recorder, serde_json::json!({ "proxy-url": format!("ftp://ops:{PASSWORD}@{closed}") }));
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
    assert!(!out.status.success(), "{}", kubectl::describe(&out));
    let out = generate_to(&s, &[], &["--verify"]);
    fails(&out, 1, "proxy-url has scheme \"ftp\"");
    assert!(!stderr(&out).contains(PASSWORD));
}

/// `parent.yaml` for `recorder` (at parent.test) again, with other `extra` fields.
fn named_parent_at(s: &Scratch, recorder: &Recorder, extra: Value) {
    let mut cluster = serde_json::json!({ "certificate-authority-data": b64(&recorder.ca_pem()) });
    cluster.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    write_parent(s, &format!("https://{PARENT_HOST}:{}", recorder.addr().port()), cluster);
}

/// A parent whose serving certificate is self-signed and marked a CA
/// (`openssl req -x509`'s default), given as its own certificate-authority-data:
/// kubectl connects (Go takes a leaf that is in the root pool as it is);
/// so does every connection here. A different self-signed certificate as the
/// CA, or a host name the certificate does not list, is refused by both.
#[test]
fn a_self_signed_ca_certificate_served_as_the_leaf_is_accepted_as_kubectl_accepts_it() {
    let k = oracle();
    let (cert, key) = self_signed(&["127.0.0.1"], true);
    let recorder = recorder_with(&cert, &key, "127.0.0.1:0");
    let s = Scratch::new();
    let server = recorder.url();
    write_parent(&s, &server, serde_json::json!({ "certificate-authority-data": b64(&cert) }));
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
    assert_eq!(recorder.requests().len(), 1, "kubectl connects: {}", kubectl::describe(&out));

    let out = generate_to(&s, &[], &["--verify"]);
    assert!(out.status.success(), "gen --verify: {}", stderr(&out));
    let out = s.bare(&["verify", "--kubeconfig", "out.yaml"]).output().unwrap();
    assert!(out.status.success(), "verify: {}", stderr(&out));
    let answer = through_proxy_subcommand(&s, "out.yaml", &[]);
    assert!(answer.starts_with("HTTP/1.1 200"), "proxy: {answer}");
    let out = kubectl_with(&k, &s.path("out.yaml"), &[], &["get", "ns"]);
    assert!(out.status.success(), "kubectl with the generated kubeconfig: {}", kubectl::describe(&out));

    // Another self-signed CA certificate as the CA: refused by both.
    let (other, _) = self_signed(&["127.0.0.1"], true);
    write_parent(&s, &server, serde_json::json!({ "certificate-authority-data": b64(&other) }));
    let before = recorder.requests().len();
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("x509"), "{}", kubectl::describe(&out));
    let out = generate_to(&s, &[], &["--verify"]);
    fails(&out, 1, "CaUsedAsEndEntity");
    // The right certificate, a name it does not list: refused by both.
    write_parent(
        &s,
        &server,
        serde_json::json!({ "certificate-authority-data": b64(&cert), "tls-server-name": "other.test" }),
    );
    let out = kubectl_with(&k, &s.path("parent.yaml"), &[], &["get", "--raw", "/version"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("x509"), "{}", kubectl::describe(&out));
    let out = generate_to(&s, &[], &["--verify"]);
    fails(&out, 1, "certificate not valid for name \"other.test\"");
    assert_eq!(recorder.requests().len(), before, "no request got through");
}
