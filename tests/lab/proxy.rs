//! `proxy` in the lab: clients that do not implement kubeconfig
//! impersonation in full (the official Python and JavaScript clients, curl)
//! reach the real child (`child-real`, its `child-only` namespace) through the
//! proxy, the real parent aggregator and the hub stand-in; the same clients
//! with the generated kubeconfig itself do not. Watches, POST and DELETE,
//! protocol upgrades, and the client's own identity headers (stripped).
//!
//! The clients are installed by `tests/lab-env/clients.sh` (pinned versions,
//! under target/clients); without them these tests fail and say so.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use testkit::serving::Serving;

use crate::support::*;

fn id() -> &'static str {
    CHILD_REAL.id
}

/// The pinned clients, or a failure naming the script that installs them.
fn clients() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients");
    for pin in ["python.pin", "node.pin"] {
        assert!(
            dir.join(pin).is_file(),
            "{} is missing: run tests/lab-env/clients.sh (the Python and JavaScript clients these tests drive)",
            dir.join(pin).display()
        );
    }
    dir
}

/// A generated kubeconfig for `child-real` with the child admin's client
/// certificate (it may create and delete), route `direct`, anonymous parent.
fn generated(dir: &Path) -> PathBuf {
    generate_on_lab(dir, &["--cluster-id", id(), "--child-kubeconfig", lab().var("LAB_CHILD_KUBECONFIG")])
}

/// `proxy <args> --port 0`, serving until dropped.
fn start(dir: &Path, args: &[&str]) -> Serving {
    let _shared = shared();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"));
    without_ambient(cmd.arg("proxy").args(args).args(["--port", "0"]));
    Serving::start(cmd, dir.join(format!("{}.stderr", unique("proxy"))))
}

/// A proxy for the generated kubeconfig `kc`, and the kubeconfig it wrote.
fn proxy_for(dir: &Path, kc: &Path) -> (Serving, PathBuf) {
    let written = dir.join("proxy.kubeconfig");
    let proxy = start(dir, &["--kubeconfig", kc.to_str().unwrap(), "--write-kubeconfig", written.to_str().unwrap()]);
    (proxy, written)
}

fn run(cmd: &mut Command) -> Output {
    let _shared = shared();
    cmd.env_remove("KUBECONFIG").output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// curl through the proxy: (status code, body).
fn curl(proxy: &Serving, method: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let url = format!("http://{}{path}", proxy.listening);
    let out = run(Command::new("curl")
        .args(["-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", "30"])
        .args(extra)
        .arg(&url));
    assert!(out.status.success(), "curl {method} {url}: {}", text(&out.stderr));
    let body = text(&out.stdout);
    let (body, code) = body.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// kubectl on the child itself (not through the parent), for checks and setup.
fn on_child(args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab().var("LAB_CHILD_KUBECONFIG"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl")
}

const PYTHON: &str = r#"
import json, sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
print(v1.read_namespace(sys.argv[2]).metadata.name)
print(json.dumps(sorted(n.metadata.name for n in v1.list_namespace().items)))
"#;

const JAVASCRIPT: &str = r#"
import * as k8s from '@kubernetes/client-node';
const kc = new k8s.KubeConfig();
kc.loadFromFile(process.argv[2]);
const api = kc.makeApiClient(k8s.CoreV1Api);
console.log((await api.readNamespace({ name: process.argv[3] })).metadata.name);
const list = await api.listNamespace();
console.log(JSON.stringify(list.items.map((n) => n.metadata.name).sort()));
"#;

/// The two lines the scripts print: the one namespace, then every name.
fn assert_lists_child_only(out: &Output, who: &str) {
    assert!(out.status.success(), "{who} through the proxy failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(CHILD_ONLY_NAMESPACE), "{who}: {stdout}");
    let names: Vec<String> = serde_json::from_str(lines.next().unwrap_or("[]")).unwrap();
    assert!(names.iter().any(|n| n == CHILD_ONLY_NAMESPACE), "{who}: {names:?}");
    // The namespace of the ManagedCluster: the parent has it, the child not
    // (both have clusternet-system: the child's holds the agent's accounts).
    assert!(!names.iter().any(|n| n == CHILD_REAL.namespace), "{who}: the parent's namespaces: {names:?}");
}

/// The same script with the generated kubeconfig itself: the client sends
/// no (Python) or not all (JavaScript) impersonation headers, so the hub gets
/// no child credentials and the child refuses.
fn assert_fails_directly(out: &Output, who: &str) {
    assert!(
        !out.status.success(),
        "{who} reached the child with the generated kubeconfig directly: {}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains(CHILD_ONLY_NAMESPACE), "{who}: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("Unauthorized"), "{who}: the child's 401 expected: {}", text(&out.stderr));
}

#[test]
fn python_client_reaches_the_child_through_the_proxy_only() {
    let python = clients().join("venv/bin/python");
    let dir = tempdir();
    let kc = generated(dir.path());
    let (_proxy, written) = proxy_for(dir.path(), &kc);
    let script = write(dir.path(), "probe.py", PYTHON);
    let through = run(Command::new(&python).arg(&script).arg(&written).arg(CHILD_ONLY_NAMESPACE));
    assert_lists_child_only(&through, "the Python client");
    let direct = run(Command::new(&python).arg(&script).arg(&kc).arg(CHILD_ONLY_NAMESPACE));
    assert_fails_directly(&direct, "the Python client");
}

#[test]
fn javascript_client_reaches_the_child_through_the_proxy_only() {
    let modules = clients().join("node/node_modules");
    let dir = tempdir();
    // ES modules resolve imports next to the script.
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    let kc = generated(dir.path());
    let (_proxy, written) = proxy_for(dir.path(), &kc);
    let script = write(dir.path(), "probe.mjs", JAVASCRIPT);
    let through = run(Command::new("node").arg(&script).arg(&written).arg(CHILD_ONLY_NAMESPACE));
    assert_lists_child_only(&through, "the JavaScript client");
    let direct = run(Command::new("node").arg(&script).arg(&kc).arg(CHILD_ONLY_NAMESPACE));
    assert_fails_directly(&direct, "the JavaScript client");
}

/// curl and kubectl through the proxy; a ConfigMap created (POST) and deleted
/// (DELETE) in the child, checked on the child itself.
#[test]
fn curl_and_kubectl_read_create_and_delete() {
    let dir = tempdir();
    let kc = generated(dir.path());
    let (proxy, written) = proxy_for(dir.path(), &kc);
    let (code, body) = curl(&proxy, "GET", &format!("/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}"), &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["metadata"]["name"], CHILD_ONLY_NAMESPACE);
    let table = kubectl_ok(&written, &["get", "ns", CHILD_ONLY_NAMESPACE, "-o", "name"]);
    assert_eq!(table.trim(), format!("namespace/{CHILD_ONLY_NAMESPACE}"));

    let name = unique("cm");
    let configmaps = format!("/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/configmaps");
    let object =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}});
    let (code, body) = curl(
        &proxy,
        "POST",
        &configmaps,
        &["-H", "Content-Type: application/json", "--data-binary", &object.to_string()],
    );
    assert_eq!(code, 201, "{body}");
    let on = on_child(&["-n", CHILD_ONLY_NAMESPACE, "get", "configmap", &name, "-o", "jsonpath={.data.k}"]);
    assert_eq!(text(&on.stdout), "v", "created in the child: {}", text(&on.stderr));

    let (code, body) = curl(&proxy, "DELETE", &format!("{configmaps}/{name}"), &[]);
    assert_eq!(code, 200, "{body}");
    let gone = on_child(&["-n", CHILD_ONLY_NAMESPACE, "get", "configmap", &name]);
    assert!(text(&gone.stderr).contains("NotFound"), "deleted in the child: {}", text(&gone.stderr));
}

/// A watch through the proxy (from the list's resourceVersion) receives the
/// ADDED event of a ConfigMap created in the child after it started.
#[test]
fn watch_receives_an_event_made_after_it_started() {
    let dir = tempdir();
    let kc = generated(dir.path());
    let (proxy, _) = proxy_for(dir.path(), &kc);
    let configmaps = format!("/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/configmaps");
    let (code, body) = curl(&proxy, "GET", &configmaps, &[]);
    assert_eq!(code, 200, "{body}");
    let rv = json(&body)["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let url = format!("http://{}{configmaps}?watch=true&resourceVersion={rv}&timeoutSeconds=6", proxy.listening);
    // The lab stays as it is (no test stops the hub) until the watch is over.
    let held = shared();
    let watch = std::thread::spawn(move || {
        Command::new("curl").args(["-sSN", "--max-time", "30"]).arg(url).output().expect("run curl")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let name = unique("watched");
    let made = on_child(&["-n", CHILD_ONLY_NAMESPACE, "create", "configmap", &name]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let out = watch.join().unwrap();
    drop(held);
    on_child(&["-n", CHILD_ONLY_NAMESPACE, "delete", "configmap", &name]);
    let stream = text(&out.stdout);
    let events: Vec<Value> = stream.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        events.iter().any(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == name.as_str()),
        "no ADDED event for {name} in the watch: {stream} {}",
        text(&out.stderr)
    );
}

/// The client's own Authorization (a valid token of the child!) and
/// Impersonate-* headers are not forwarded: the child sees the identity of
/// the generated kubeconfig's credentials.
#[test]
fn client_identity_headers_are_stripped() {
    let dir = tempdir();
    let kc = generated(dir.path());
    let (proxy, _) = proxy_for(dir.path(), &kc);
    let own = json(&text(&on_child(&["auth", "whoami", "-o", "json"]).stdout));
    let want = own["status"]["userInfo"]["username"].as_str().unwrap().to_string();
    let token = text(&on_child(&["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA]).stdout).trim().to_string();
    assert!(!token.is_empty());
    let review = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).to_string();
    let marker = unique("ua");
    let headers = [
        "-H".to_string(),
        format!("Authorization: Bearer {token}"),
        "-H".into(),
        "Impersonate-User: system:admin".into(),
        "-H".into(),
        "Impersonate-Group: system:masters".into(),
        "-H".into(),
        format!("User-Agent: {marker}"),
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        review,
    ];
    let extra: Vec<&str> = headers.iter().map(String::as_str).collect();
    let (code, body) = curl(&proxy, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", &extra);
    assert_eq!(code, 201, "{body}");
    let got = json(&body);
    assert_eq!(got["status"]["userInfo"]["username"], want.as_str(), "{got}");
    for r in records_with("user-agent", &marker, 1) {
        assert_eq!(
            r.header("x-remote-user"),
            Some("clusternet"),
            "the parent authenticated the kubeconfig's identity: {r:?}"
        );
        assert_eq!(r.header("authorization"), None, "{r:?}");
        assert!(!format!("{:?}", r.headers).contains(&token), "the client's token reached the hub: {r:?}");
    }
}

/// An upgrade request (exec) through the proxy and the real aggregator: the
/// stand-in answers 101 (the lab has no kubelet) and echoes; the bytes come back.
#[test]
fn upgrades_pass_through_the_aggregator() {
    let dir = tempdir();
    let kc = generated(dir.path());
    let (proxy, _) = proxy_for(dir.path(), &kc);
    let _shared = shared();
    let pod = unique("pod");
    let exec = format!("/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/pods/{pod}/exec");
    let (mut stream, mut reader, head) = spdy_upgrade(&proxy.listening, &exec, Duration::from_secs(30));
    assert!(head.to_ascii_lowercase().contains("upgrade: spdy/3.1"), "{head}");
    stream.write_all(b"ping\n").unwrap();
    let mut echoed = String::new();
    reader.read_line(&mut echoed).unwrap();
    assert_eq!(echoed, "ping\n");
    let path = format!("{PROXY_PREFIX}{}/proxy/direct/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/pods/{pod}/exec", id());
    let recs = Wait { within: Duration::from_secs(5), every: Duration::from_millis(50) }
        .until(|| records().into_iter().filter(|r| r.path == path).collect::<Vec<_>>(), |r| !r.is_empty());
    let [r] = recs.as_slice() else { panic!("one exec request expected at the stand-in: {recs:?}") };
    assert_eq!(r.status, Some(101));
    assert_eq!(r.header("x-remote-user"), Some("clusternet"), "{r:?}");
    assert!(r.header("x-remote-extra-clusternet-certificate").is_some(), "the child credentials came along: {r:?}");
}

/// `gen`'s flags instead of a generated file: the cluster by name, a
/// `--child-server` route (`https/<host>`), the child token from a file.
#[test]
fn gen_flags_and_another_route() {
    let lab = lab();
    let dir = tempdir();
    let child_server = lab.var("LAB_CHILD_SERVER");
    let proxy = start(
        dir.path(),
        &[
            "--kubeconfig",
            admin(),
            "--cluster",
            CHILD_REAL.name,
            "--token-file",
            lab.var("LAB_CHILD_TOKEN_FILE"),
            "--child-server",
            child_server,
        ],
    );
    let marker = unique("ua");
    let ua = format!("User-Agent: {marker}");
    let (code, body) = curl(&proxy, "GET", &format!("/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}"), &["-H", &ua]);
    assert_eq!(code, 200, "{body}");
    let host = child_server.strip_prefix("https://").unwrap();
    let want = format!("{PROXY_PREFIX}{}/proxy/https/{host}/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}", id());
    let recs = records_with("user-agent", &marker, 1);
    assert!(recs.iter().any(|r| r.path == want && r.status == Some(200)), "no GET {want}: {recs:?}");
}

/// A web page in the user's browser: under a rebound name (DNS rebinding)
/// or from another site over WebSocket (which browsers let any page open),
/// it is refused with a Status before anything reaches the parent; the same
/// requests from a Kubernetes client (loopback Host, no Origin) go through
/// the real aggregator to the child.
#[test]
fn browser_hosts_and_origins_are_refused_before_the_parent() {
    let dir = tempdir();
    let kc = generated(dir.path());
    let proxy = start(dir.path(), &["--kubeconfig", kc.to_str().unwrap(), "-v"]);
    let path = format!("/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/configmaps");
    let rebound = unique("rebound");
    let (code, body) =
        curl(&proxy, "GET", &path, &["-H", "Host: rebind.attacker.example", "-H", &format!("User-Agent: {rebound}")]);
    assert_eq!(code, 403, "{body}");
    let status = json(&body);
    assert_eq!(status["kind"], "Status", "{body}");
    assert!(status["message"].as_str().unwrap().contains("--accept-hosts"), "{body}");

    let cross = unique("cross-site");
    let _shared = shared();
    let mut stream = TcpStream::connect(&proxy.listening).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "GET {path}?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://attacker.example\r\nUser-Agent: {cross}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    BufReader::new(stream).read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");

    // The control: a Kubernetes client's request reaches the child.
    let client = unique("client");
    let (code, body) = curl(&proxy, "GET", &path, &["-H", &format!("User-Agent: {client}")]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["kind"], "ConfigMapList", "{body}");
    assert_eq!(records_with("user-agent", &client, 1).len(), 1, "the control reached the hub");
    assert!(records_with("user-agent", &rebound, 1).is_empty(), "a rebound request reached the hub");
    assert!(records_with("user-agent", &cross, 1).is_empty(), "a cross-site upgrade reached the hub");
    let (_, err) = proxy.stop();
    assert!(err.contains(&format!("trace: refused GET {path}: Host \"rebind.attacker.example\"")), "{err}");
    assert!(err.contains(&format!("trace: refused GET {path}: Origin \"http://attacker.example\"")), "{err}");
}
