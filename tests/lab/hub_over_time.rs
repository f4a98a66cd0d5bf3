//! What clusternet-hub does over time, through the real aggregator: answers
//! stream as the child sends them; the hub's request timeout ends every
//! non-upgraded request (a watch too) but not an upgraded connection; a
//! cluster's session lives exactly as long as its agent, whatever `Ready`
//! says; a cluster without `useSocket` is still dialled through the agent's
//! tunnel. And what the tool makes of it: a token request with the hub down
//! ends within `--timeout` with verify's diagnosis; the seeded credential the
//! agent stores has the real shape.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use testkit::lab::{CHILD_NOSOCKET, DEPLOYER_NAMESPACE, DEPLOYER_SA, DEPLOYER_SECRET};
use testkit::serving::Serving;

use crate::hub_credentials::ci_account;
use crate::parent_token::claims;
use crate::support::*;

/// The hub's request timeout the tests restart it with.
const SHORT_TIMEOUT: Duration = Duration::from_secs(5);

/// `verify --kubeconfig kc`, which must fail: its one line.
fn verify_fails(kc: &Path) -> String {
    let out = tool(&["verify", "--kubeconfig", kc.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "verify must fail: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// kubectl on the child itself (its admin), for setup.
fn on_child(args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab().var("LAB_CHILD_KUBECONFIG"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl");
    assert!(out.status.success(), "kubectl {args:?} on the child: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A fresh, empty namespace on the real child (no controller-manager there:
/// nothing appears in it unless a test creates it).
fn child_namespace() -> String {
    let ns = unique("w");
    on_child(&["create", "namespace", &ns]);
    ns
}

/// A kubeconfig for the real child through the hub, with the child admin's certificate.
fn real_child_kubeconfig(dir: &Path) -> PathBuf {
    generate_on_lab(dir, &["--cluster-id", CHILD_REAL.id, "--child-kubeconfig", lab().var("LAB_CHILD_KUBECONFIG")])
}

/// `kubectl get configmaps -n <ns> -w` through `kc`, running: its stdout
/// line by line as it comes (`<kind>/<name><message>`: a Status kubectl
/// makes of a watch error has a message, an object a name), its stderr in a file.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Watch {
    fn start(dir: &Path, kc: &Path, ns: &str) -> Watch {
        let stderr = dir.join(format!("{}.stderr", unique("watch")));
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kc)
            .arg("--cache-dir")
            .arg(dir.join(unique("cache")))
            .args(["get", "configmaps", "-n", ns, "-w", "-o", r#"jsonpath={.kind}/{.metadata.name}{.message}{"\n"}"#])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("kubectl");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // The watch is up once the hub has dialled the child for it (the
        // stand-in records a request when the child's answer begins).
        let path = format!("{PROXY_PREFIX}{}/proxy/direct/api/v1/namespaces/{ns}/configmaps", CHILD_REAL.id);
        let watching = Wait { within: Duration::from_secs(20), every: Duration::from_millis(50) }.until(
            || {
                records()
                    .into_iter()
                    .any(|r| r.path == path && r.forwarded_to.as_deref().is_some_and(|u| u.contains("watch=")))
            },
            |found| *found,
        );
        assert!(watching, "no watch of {path} reached the hub: {}", std::fs::read_to_string(&stderr).unwrap());
        Watch { child, lines, stderr }
    }

    fn next_line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A watch event reaches kubectl while the child still holds the stream: the
/// hub passes the answer on as it comes, it does not wait for its end.
#[test]
fn watch_events_stream_through_the_hub() {
    let dir = tempdir();
    let kc = real_child_kubeconfig(dir.path());
    let ns = child_namespace();
    let _shared = shared();
    let mut watch = Watch::start(dir.path(), &kc, &ns);
    on_child(&["-n", &ns, "create", "configmap", "first"]);
    let created = Instant::now();
    let line = watch.next_line(Duration::from_secs(15));
    let latency = created.elapsed();
    assert_eq!(line.as_deref(), Some("ConfigMap/first"), "kubectl: {}", watch.stderr());
    assert!(latency < Duration::from_secs(3), "the event took {latency:?}: the answer was not streamed");
    assert!(watch.child.try_wait().unwrap().is_none(), "the watch is still open: {}", watch.stderr());
}

/// The hub's request timeout (short here) ends a kubectl watch through a
/// generated kubeconfig with a stream error (over HTTP/2, as through the real
/// hub: kubectl prints it as a Status and exits 0), the events before the cut
/// seen; an upgraded connection (exec) opened before the cut outlives it.
#[test]
fn the_request_timeout_ends_a_watch_but_not_an_upgraded_connection() {
    let dir = tempdir();
    let kc = real_child_kubeconfig(dir.path());
    let ns = child_namespace();
    let _hub = hub_with_short_timeout();
    let started = Instant::now();
    let mut watch = Watch::start(dir.path(), &kc, &ns);
    let upgraded = Upgraded::open(dir.path(), &kc);
    on_child(&["-n", &ns, "create", "configmap", "before-the-cut"]);
    assert_eq!(watch.next_line(Duration::from_secs(4)).as_deref(), Some("ConfigMap/before-the-cut"));
    // kubectl ends when the hub cuts the watch.
    let status = Wait { within: SHORT_TIMEOUT + Duration::from_secs(10), every: Duration::from_millis(100) }
        .until(|| watch.child.try_wait().unwrap(), Option::is_some)
        .unwrap_or_else(|| panic!("the watch outlived the request timeout: {}", watch.stderr()));
    let ended = started.elapsed();
    assert!(ended >= SHORT_TIMEOUT - Duration::from_millis(500), "ended after {ended:?}: {}", watch.stderr());
    let error = watch.next_line(Duration::from_secs(1)).unwrap_or_default();
    assert!(
        error.starts_with("Status/")
            && error.contains("unable to decode an event from the watch stream: stream error: stream ID")
            && error.contains("INTERNAL_ERROR; received from peer"),
        "kubectl sees the stream reset (HTTP/2): {error:?} ({status}, {})",
        watch.stderr()
    );
    // The upgraded connection, past the cut.
    std::thread::sleep((started + SHORT_TIMEOUT + Duration::from_secs(1)).saturating_duration_since(Instant::now()));
    upgraded.echoes("after the cut");
}

/// The lab held by this test alone, its hub restarted with [`SHORT_TIMEOUT`]
/// as request timeout, and started again as usual when this goes (before the
/// lab is released: fields drop in order).
struct ShortTimeout {
    _restore: Restore<fn()>,
    _lab: Exclusive,
}

fn hub_with_short_timeout() -> ShortTimeout {
    let lab = exclusive();
    let restore: Restore<fn()> = Restore(|| {
        lab_sh(&["hub-start"]);
    });
    lab_sh(&["hub-start", "--request-timeout", &format!("{}s", SHORT_TIMEOUT.as_secs())]);
    ShortTimeout { _restore: restore, _lab: lab }
}

/// Through `proxy`, a watch outlives the hub's request timeout (short here):
/// the proxy asks again from the last resourceVersion it passed on, so that
/// kubectl (`get -w`, no timeout) and curl (`timeoutSeconds`) each see one
/// stream with the events made before and after the cut, curl's ending when
/// its own timeoutSeconds is up.
#[test]
fn a_watch_through_the_proxy_outlives_the_request_timeout() {
    const CLIENT_TIMEOUT: Duration = Duration::from_secs(14);
    let dir = tempdir();
    let kc = real_child_kubeconfig(dir.path());
    let ns = child_namespace();
    let _hub = hub_with_short_timeout();
    let written = dir.path().join("proxy.kubeconfig");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"));
    without_ambient(cmd.args(["proxy", "--kubeconfig", kc.to_str().unwrap(), "--port", "0", "-v"]));
    cmd.arg("--write-kubeconfig").arg(&written);
    let proxy = Serving::start(cmd, dir.path().join(format!("{}.stderr", unique("proxy"))));

    let started = Instant::now();
    let url = format!(
        "http://{}/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds={}",
        proxy.listening,
        CLIENT_TIMEOUT.as_secs()
    );
    let curl = std::thread::spawn(move || {
        let out = Command::new("curl").args(["-sSN", "--max-time", "40"]).arg(url).output().expect("run curl");
        (out, Instant::now())
    });
    let mut watch = Watch::start(dir.path(), &written, &ns);
    let at = |t: Duration| std::thread::sleep((started + t).saturating_duration_since(Instant::now()));
    at(Duration::from_secs(1));
    on_child(&["-n", &ns, "create", "configmap", "before-the-cut"]);
    at(SHORT_TIMEOUT + Duration::from_secs(3));
    on_child(&["-n", &ns, "create", "configmap", "after-the-cut"]);
    let first = watch.next_line(Duration::from_secs(5));
    let second = watch.next_line(Duration::from_secs(5));
    assert_eq!(
        (first.as_deref(), second.as_deref()),
        (Some("ConfigMap/before-the-cut"), Some("ConfigMap/after-the-cut")),
        "kubectl: {}; proxy: {}",
        watch.stderr(),
        proxy.stderr()
    );
    assert!(watch.child.try_wait().unwrap().is_none(), "kubectl's watch is still open: {}", watch.stderr());

    let (out, ended) = curl.join().unwrap();
    let took = ended - started;
    let stream = text(&out.stdout);
    assert!(out.status.success(), "curl: {} {stream}", text(&out.stderr));
    let events: Vec<serde_json::Value> = stream.lines().map(json).collect();
    let seen: Vec<String> =
        events.iter().map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["object"]["metadata"]["name"])).collect();
    assert_eq!(seen, ["ADDED \"before-the-cut\"", "ADDED \"after-the-cut\""], "curl: {stream}");
    assert!(
        took >= CLIENT_TIMEOUT - Duration::from_secs(1) && took < CLIENT_TIMEOUT + Duration::from_secs(5),
        "curl's stream ended after {took:?}, its timeoutSeconds {CLIENT_TIMEOUT:?}"
    );
    let (_, err) = proxy.stop();
    assert!(err.contains("resumed from resourceVersion ") && err.contains(" after the parent "), "{err}");
}

/// An exec upgrade through `proxy` (plain HTTP on loopback), the aggregator
/// and the stand-in (which echoes: the lab has no kubelet).
struct Upgraded {
    _proxy: Serving,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Upgraded {
    fn open(dir: &Path, kc: &Path) -> Upgraded {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"));
        without_ambient(cmd.args(["proxy", "--kubeconfig", kc.to_str().unwrap(), "--port", "0"]));
        let proxy = Serving::start(cmd, dir.join(format!("{}.stderr", unique("proxy"))));
        let (stream, reader, _) =
            spdy_upgrade(&proxy.listening, "/api/v1/namespaces/default/pods/p/exec", Duration::from_secs(20));
        Upgraded { _proxy: proxy, stream, reader }
    }

    fn echoes(mut self, what: &str) {
        writeln!(self.stream, "{what}").unwrap();
        let mut echoed = String::new();
        self.reader.read_line(&mut echoed).unwrap();
        assert_eq!(echoed.trim_end(), what);
    }
}

/// With the hub stopped (its APIService still registered), a token request
/// through the proxy gets the aggregator's 503 and `gen` ends at once, within
/// `--timeout`, with verify's diagnosis and one POST (no retries), counted in
/// the audit log of the second parent apiserver.
#[test]
fn a_token_request_with_the_hub_down_ends_within_the_timeout() {
    let dir = tempdir();
    let out = dir.path().join("out.kubeconfig");
    let parent = noanon_kubeconfig();
    let _lab = exclusive();
    let _restore = Restore(|| {
        lab_sh(&["hub-start"]);
    });
    lab_sh(&["hub-stop"]);
    let timeout = Duration::from_secs(3);
    let ((run, took), events) = audited(|| {
        let started = Instant::now();
        let run = lab_cmd("gen")
            .kubeconfig(parent)
            .cluster(CHILD_REAL.name)
            .args(&["--child-credentials", "hub", "--child-token-request", &ci_account(), "--parent-auth", "keep"])
            .args(&["--timeout", "3s"])
            .output_file(&out)
            .run();
        (run, started.elapsed())
    });
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(took < timeout + Duration::from_secs(2), "gen took {took:?} with --timeout 3s: {err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "one error line: {err}");
    let what = format!("TokenRequest for service account {} on the child failed: HTTP 503", ci_account());
    assert!(err.contains(&format!("\nerror: {what}")), "{err}");
    // The aggregator's words while it still counts the APIService Available,
    // or its own once it no longer does.
    assert!(
        err.contains(": clusternet-hub not reachable: ") || err.contains(": APIService unavailable: "),
        "verify's diagnosis: {err}"
    );
    assert!(!out.exists(), "nothing written");
    // One audit ID per request (its stages each have an event).
    let mut posts: Vec<&str> = events
        .iter()
        .filter(|e| e["verb"] == "create")
        .filter(|e| {
            let uri = e["requestURI"].as_str().unwrap_or_default();
            uri.contains(PROXY_PREFIX) && uri.split('?').next().unwrap_or_default().ends_with("/token")
        })
        .filter_map(|e| e["auditID"].as_str())
        .collect();
    posts.dedup();
    assert_eq!(posts.len(), 1, "one POST, no retries: {posts:?}");
}

/// The agent stops: the hub answers 400 "disconnected" at once, while the
/// ManagedCluster's `Ready` condition stays True; verify says so. The agent
/// back: the cluster answers again.
#[test]
fn an_agent_stopped_is_disconnected_at_once_while_ready_stays_true() {
    let seed = CHILD_B;
    let dir = tempdir();
    let token = unique("agent");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", seed.id, "--token", &token]);
    let _lab = exclusive();
    let _restore = Restore(|| {
        lab_sh(&["agent-start", seed.id]);
    });
    kubectl_ok(&kc, &["get", "ns"]);
    lab_sh(&["agent-stop", seed.id]);
    let out = kubectl(&kc, &["get", "ns", "-v=8"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot proxy through cluster {}, whose agent is disconnected", seed.id)), "{err}");
    let ready = kubectl_ok(
        admin(),
        &[
            "get",
            "managedcluster",
            "-n",
            seed.namespace,
            seed.name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
    );
    assert_eq!(ready, "True", "Ready says nothing of the session");
    let line = verify_fails(&kc);
    assert!(line.contains("HTTP 400 (cannot proxy through cluster"), "{line}");
    assert!(line.contains(": agent disconnected: the child's clusternet-agent has no session with the hub"), "{line}");
    assert!(!line.contains(&token), "{line}");
    lab_sh(&["agent-start", seed.id]);
    kubectl_ok(&kc, &["get", "ns"]);
}

/// A cluster whose agent runs without the SocketConnection gate (no
/// `status.useSocket`): the hub still dials through the tunnel and finds no
/// session, a 500; verify names the gate.
#[test]
fn a_cluster_without_use_socket_has_no_session() {
    let id = CHILD_NOSOCKET.id;
    let dir = tempdir();
    let token = unique("nosocket");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token]);
    let out = kubectl(&kc, &["get", "ns", "-v=8"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("500") && err.contains(&format!("failed to find Session for client {id}")), "{err}");
    let line = verify_fails(&kc);
    assert!(
        line.contains(&format!(
            "HTTP 500 (failed to find Session for client {id}): agent has no socket session: is clusternet-agent running with --feature-gates=SocketConnection=true?"
        )),
        "{line}"
    );
    let recs = records_with("x-remote-extra-clusternet-token", &token, 1);
    assert!(!recs.is_empty() && recs.iter().all(|r| r.forwarded_to.is_none()), "the hub dialled a child: {recs:?}");
}

/// The `child-cluster-deployer` Secret as clusternet-agent writes it: the
/// child's legacy Secret-based token (no `exp`), the real keys, labels and
/// annotation; the child accepts the token.
#[test]
fn the_seeded_deployer_secret_has_the_agents_shape() {
    let secret =
        json(&kubectl_ok(admin(), &["get", "secret", "-n", CHILD_REAL.namespace, DEPLOYER_SECRET, "-o", "json"]));
    let mut keys: Vec<&str> = secret["data"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["apiserver-advertise-url", "ca.crt", "service-account.name", "service-account.uid", "token"]);
    let labels = &secret["metadata"]["labels"];
    assert_eq!(labels["clusters.clusternet.io/cluster-id"], CHILD_REAL.id);
    assert_eq!(labels["clusternet.io/created-by"], "clusternet-agent");
    assert_eq!(labels["clusters.clusternet.io/bootstrapping"], "credentials-auto");
    assert_eq!(secret["metadata"]["annotations"]["clusternet.io/autoupdate"], "true");
    let token = deployer_token_of(&secret);
    let c = claims(&token);
    assert!(c.get("exp").is_none() && c.get("iat").is_none(), "a legacy token has no expiry: {c}");
    assert_eq!(c["iss"], "kubernetes/serviceaccount");
    assert_eq!(c["sub"], format!("system:serviceaccount:{DEPLOYER_NAMESPACE}:{DEPLOYER_SA}"));
    assert_eq!(c["kubernetes.io/serviceaccount/service-account.name"], DEPLOYER_SA);
    let who = Command::new("kubectl")
        .args(["--server", lab().var("LAB_CHILD_SERVER"), "--certificate-authority", lab().var("LAB_CHILD_CA")])
        .args([
            "--token",
            &token,
            "--kubeconfig",
            "/dev/null",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&who.stdout), c["sub"].as_str().unwrap(), "the child accepts it: {}", text(&who.stderr));
}

fn deployer_token_of(secret: &serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = secret["data"]["token"].as_str().unwrap();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}
