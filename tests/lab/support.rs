//! Lab access: the env file (ports and paths), the seeded objects (testkit's
//! constants), the product binary, kubectl, the stand-in's record.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
pub use testkit::lab::{
    CHILD_A, CHILD_B, CHILD_CERT_USER, CHILD_NOURL, CHILD_OFFLINE, CHILD_ONLY_NAMESPACE, CHILD_REAL, CHILD_SA, DUP_1,
    DUP_2, Seed,
};

pub const PROXY_PREFIX: &str = "/apis/proxies.clusternet.io/v1alpha1/sockets/";

/// The running lab, as `tests/lab-env/lab.sh up` wrote it to `lab.env`: what is known
/// only at run time (ports, paths). What it seeded is in `testkit::lab`.
pub struct Lab {
    vars: HashMap<String, String>,
}

impl Lab {
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| {
            panic!(
                "{name} missing from the lab env file {} (it has ports and paths; seeded names and IDs are \
                 testkit::lab's constants, e.g. CHILD_A.id)",
                env_file().display()
            )
        })
    }
    pub fn kubeconfig(&self) -> &str {
        self.var("LAB_KUBECONFIG")
    }
    pub fn server(&self) -> &str {
        self.var("LAB_SERVER")
    }
}

fn env_file() -> PathBuf {
    match std::env::var_os("CLUSTERNET_LAB_ENV") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab-env/state/lab.env"),
    }
}

/// The lab, or a panic that says how to start it.
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let path = env_file();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the lab is not up: cannot read {} ({e}).\n\
                 Start it with `tests/lab-env/lab.sh up` (or run tests/lab-env/test.sh), \
                 or point CLUSTERNET_LAB_ENV at a running lab's lab.env.",
                path.display()
            )
        });
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lab = Lab { vars };
        // Fail early and clearly when the env file is stale.
        let out = kubectl_unlocked(lab.kubeconfig(), &["get", "--raw", "/readyz"]);
        assert!(
            out.status.success(),
            "the lab described by {} does not answer (stale state? run `tests/lab-env/lab.sh down && tests/lab-env/lab.sh up`): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    })
}

/// A fresh value nobody else uses (tokens, file names), to find our requests
/// in the shared record file.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("lab-{tag}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("clusternet-lab-test").tempdir().unwrap()
}

/// Runs `clusternet-kubeconfig gen <args>`, asserts success, writes the
/// kubeconfig into `dir` and returns its path.
pub fn generate(dir: &Path, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{}.kubeconfig", unique("gen")));
    let _shared = shared();
    let res = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"))
        .arg("gen")
        .args(args)
        .arg("--output-file")
        .arg(&out)
        .env_remove("KUBECONFIG")
        .env_remove("CLUSTERNET_CHILD_TOKEN")
        .env_remove("CLUSTERNET_PARENT_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run clusternet-kubeconfig");
    assert!(
        res.status.success(),
        "clusternet-kubeconfig gen {args:?} failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

/// [`generate`] against the lab's parent (`--kubeconfig <lab admin>` first).
pub fn generate_on_lab(dir: &Path, args: &[&str]) -> PathBuf {
    let mut all = vec!["--kubeconfig", lab().kubeconfig()];
    all.extend_from_slice(args);
    generate(dir, &all)
}

/// Real kubectl with a private discovery cache (so discovery goes through the
/// proxy every time) and no ambient KUBECONFIG.
pub fn kubectl(kubeconfig: impl AsRef<Path>, args: &[&str]) -> Output {
    let _shared = shared();
    kubectl_unlocked(kubeconfig, args)
}

fn kubectl_unlocked(kubeconfig: impl AsRef<Path>, args: &[&str]) -> Output {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(tempdir);
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig.as_ref())
        .arg("--cache-dir")
        .arg(cache.path().join(unique("cache")))
        .arg("--request-timeout=20s")
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl (is it on PATH?)")
}

/// kubectl that must succeed; returns stdout.
pub fn kubectl_ok(kubeconfig: impl AsRef<Path>, args: &[&str]) -> String {
    let kc = kubeconfig.as_ref();
    let out = kubectl(kc, args);
    assert!(
        out.status.success(),
        "kubectl --kubeconfig {} {args:?} failed ({}):\n{}\nkubeconfig:\n{}",
        kc.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        redacted(kc)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn redacted(kc: &Path) -> String {
    std::fs::read_to_string(kc)
        .unwrap_or_default()
        .lines()
        .map(|l| if l.len() > 160 { format!("{}...", &l[..120]) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One request as the stand-in recorded it.
#[derive(Debug, Clone)]
pub struct Rec {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub client_cert_cn: Option<String>,
    /// The child URL the stand-in dialled for the request (none when the hub answered itself).
    pub forwarded_to: Option<String>,
    /// The status code of its answer (the child's, when forwarded).
    pub status: Option<u16>,
}

impl Rec {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn headers_with_prefix(&self, prefix: &str) -> Vec<(&str, &str)> {
        self.headers.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

fn parse_rec(v: &Value) -> Rec {
    let headers = v["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter_map(|h| match h {
                    Value::Array(kv) if kv.len() == 2 => {
                        Some((kv[0].as_str()?.to_ascii_lowercase(), kv[1].as_str()?.to_string()))
                    }
                    Value::Object(o) => {
                        Some((o.get("name")?.as_str()?.to_ascii_lowercase(), o.get("value")?.as_str()?.to_string()))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Rec {
        method: v["method"].as_str().unwrap_or_default().to_string(),
        path: v["path"].as_str().unwrap_or_default().to_string(),
        headers,
        client_cert_cn: v["client_cert_cn"].as_str().map(str::to_string),
        forwarded_to: v["forwarded_to"].as_str().map(str::to_string),
        status: v["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
    }
}

/// All requests recorded so far.
pub fn records() -> Vec<Rec> {
    let path = lab().var("LAB_HUB_RECORD");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| parse_rec(&v))
        .collect()
}

/// How a test waits for the lab to catch up: try every `every`, for at most
/// `within`.
pub struct Wait {
    pub within: Duration,
    pub every: Duration,
}

impl Wait {
    /// `attempt` until `done` holds for what it returned or time is up: the
    /// last result either way, for the caller to assert on.
    pub fn until<T>(&self, mut attempt: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
        let deadline = Instant::now() + self.within;
        loop {
            let result = attempt();
            if done(&result) || Instant::now() > deadline {
                return result;
            }
            std::thread::sleep(self.every);
        }
    }
}

/// Recorded requests carrying `header: value`, waiting briefly for at least
/// `min` of them (the stand-in may append after it answered).
pub fn records_with(header: &str, value: &str, min: usize) -> Vec<Rec> {
    Wait { within: Duration::from_secs(3), every: Duration::from_millis(50) }.until(
        || records().into_iter().filter(|r| r.header(header) == Some(value)).collect::<Vec<Rec>>(),
        |found| found.len() >= min,
    )
}

pub fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The parent's own /version gitVersion (to tell the child's answer from it).
pub fn parent_git_version() -> String {
    let v = json(&kubectl_ok(lab().kubeconfig(), &["get", "--raw", "/version"]));
    v["gitVersion"].as_str().unwrap().to_string()
}

/// Asserts that `kubectl version` and `kubectl get ns` through `kc` are
/// answered by the stand-in (as the child), and returns the requests it
/// recorded for them, found by `header: value`.
pub fn assert_reaches_child(kc: &Path, cluster_id: &str, header: &str, value: &str) -> Vec<Rec> {
    assert_reaches_child_via(kc, cluster_id, "direct", header, value)
}

/// [`assert_reaches_child`] for another route after `proxy/` (`https/<host>`, ...).
pub fn assert_reaches_child_via(kc: &Path, cluster_id: &str, route: &str, header: &str, value: &str) -> Vec<Rec> {
    let v = json(&kubectl_ok(kc, &["version", "-o", "json"]));
    let child = v["serverVersion"]["gitVersion"].as_str().unwrap_or_default().to_string();
    assert_eq!(child, testkit::CHILD_GIT_VERSION, "serverVersion should be the child's: {v}");
    assert_ne!(child, parent_git_version(), "the parent answered, not the child");

    let ns = json(&kubectl_ok(kc, &["get", "ns", "-o", "json"]));
    let names: Vec<&str> =
        ns["items"].as_array().expect("items").iter().filter_map(|i| i["metadata"]["name"].as_str()).collect();
    assert!(names.contains(&testkit::CHILD_NAMESPACE), "child namespaces expected, got {names:?}");
    assert!(!names.contains(&"clusternet-system"), "the parent's namespaces leaked: {names:?}");

    let recs = records_with(header, value, 2);
    let want = format!("{PROXY_PREFIX}{cluster_id}/proxy/{route}");
    for path in ["/version", "/api/v1/namespaces"] {
        assert!(
            recs.iter().any(|r| r.method == "GET" && r.path == format!("{want}{path}")),
            "no GET {want}{path} with {header}={value} recorded; got {:?}",
            recs.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
        );
    }
    for r in &recs {
        assert!(r.path.starts_with(&want), "unexpected path {}", r.path);
        // It came through the aggregator: front-proxy client certificate, and
        // the identity kube-apiserver authenticated and then impersonated.
        assert_eq!(r.client_cert_cn.as_deref(), Some("front-proxy-client"), "{r:?}");
        assert_eq!(r.header("x-remote-user"), Some("clusternet"), "{r:?}");
        assert_eq!(r.header("x-remote-group"), Some("system:authenticated"), "{r:?}");
        assert_eq!(r.header("impersonate-user"), None, "impersonation headers must not reach the hub");
        assert_eq!(r.header("authorization"), None, "parent credentials must not reach the hub");
    }
    recs
}

/// Child client certificate and key (PEM), from rcgen.
pub fn child_cert_pair(cn: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// data.token of the clusternet-hub-proxy Secret, base64-decoded.
pub fn hub_proxy_token() -> String {
    use base64::Engine as _;
    let b64 = kubectl_ok(
        lab().kubeconfig(),
        &["-n", "clusternet-system", "get", "secret", "clusternet-hub-proxy", "-o", "jsonpath={.data.token}"],
    );
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("token is base64");
    String::from_utf8(raw).unwrap()
}

// ------------------------------------------------------------ shared lab state
//
// Some tests change what every other test relies on (they delete the
// socket-proxy ClusterRoleBinding or the APIService, or count the
// apiserver's requests). They hold the lab exclusively; every kubectl and
// product run of the other tests holds it shared for the duration of that one
// command, so a command runs either wholly before or wholly after a mutation.

static LAB_LOCK: RwLock<()> = RwLock::new(());

thread_local! {
    static EXCLUSIVE: Cell<bool> = const { Cell::new(false) };
}

/// Held while a command runs against the lab; nothing on the thread holding
/// [`Exclusive`] (it already excludes everyone else).
pub fn shared() -> Option<RwLockReadGuard<'static, ()>> {
    if EXCLUSIVE.with(Cell::get) {
        return None;
    }
    Some(LAB_LOCK.read().unwrap_or_else(|e| e.into_inner()))
}

/// The lab to this test alone (in this test process) until dropped.
pub struct Exclusive {
    _guard: RwLockWriteGuard<'static, ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        EXCLUSIVE.with(|e| e.set(false));
    }
}

/// Runs `restore` when dropped (also when the test panics): puts back what a
/// test holding the lab [`exclusive`]ly changed.
pub struct Restore<F: FnMut()>(pub F);
impl<F: FnMut()> Drop for Restore<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

pub fn exclusive() -> Exclusive {
    lab(); // initialised outside the lock
    let guard = LAB_LOCK.write().unwrap_or_else(|e| e.into_inner());
    EXCLUSIVE.with(|e| e.set(true));
    Exclusive { _guard: guard }
}

// --------------------------------------------------------------- the product

/// `clusternet-kubeconfig <args>` with no ambient KUBECONFIG or tokens.
pub fn tool(args: &[&str]) -> Output {
    let _shared = shared();
    without_ambient(Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig")).args(args))
        .output()
        .expect("run clusternet-kubeconfig")
}

/// `cmd` without the environment the product reads (KUBECONFIG, tokens) and
/// without stdin.
pub fn without_ambient(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("KUBECONFIG")
        .env_remove("CLUSTERNET_CHILD_TOKEN")
        .env_remove("CLUSTERNET_PARENT_TOKEN")
        .stdin(Stdio::null())
}

/// [`tool`] that must succeed: (stdout, stderr).
pub fn tool_ok(args: &[&str]) -> (String, String) {
    let out = tool(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "clusternet-kubeconfig {args:?} failed ({}):\n{stderr}", out.status);
    (stdout, stderr)
}

/// [`tool`] that must fail with exit code 1: stderr.
pub fn tool_err(args: &[&str]) -> String {
    let out = tool(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "clusternet-kubeconfig {args:?} should fail with 1:\n{stderr}");
    assert!(stderr.starts_with("error: ") || stderr.contains("\nerror: "), "one error line expected: {stderr}");
    stderr
}

/// `clusternet-kubeconfig <subcommand> --kubeconfig <lab admin>` and then
/// the arguments the test adds, in the order it adds them.
pub fn lab_cmd(subcommand: &str) -> Cmd {
    Cmd { subcommand: subcommand.into(), kubeconfig: admin().into(), args: Vec::new() }
}

/// `gen` against the lab as its admin: [`lab_cmd`]`("gen")`.
pub fn lab_gen() -> Cmd {
    lab_cmd("gen")
}

/// `verify --kubeconfig <kubeconfig>` (a generated one).
pub fn lab_verify(kubeconfig: &Path) -> Cmd {
    lab_cmd("verify").kubeconfig(kubeconfig)
}

/// The argv of one run of the tool against the lab, built by [`lab_cmd`].
pub struct Cmd {
    subcommand: String,
    kubeconfig: PathBuf,
    args: Vec<String>,
}

impl Cmd {
    /// Another kubeconfig than the lab admin's.
    pub fn kubeconfig(mut self, path: impl AsRef<Path>) -> Self {
        self.kubeconfig = path.as_ref().to_path_buf();
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn cluster(self, name: &str) -> Self {
        self.args(&["--cluster", name])
    }

    pub fn credentials(self, path: &Path) -> Self {
        self.args(&["--credentials", path.to_str().unwrap()])
    }

    pub fn output_file(self, path: &Path) -> Self {
        self.args(&["--output-file", path.to_str().unwrap()])
    }

    fn argv(&self) -> Vec<&str> {
        let head = [self.subcommand.as_str(), "--kubeconfig", self.kubeconfig.to_str().unwrap()];
        head.into_iter().chain(self.args.iter().map(String::as_str)).collect()
    }

    /// [`tool`]: the whole output, whatever the exit status.
    pub fn run(self) -> Output {
        tool(&self.argv())
    }

    /// [`tool_ok`]: (stdout, stderr).
    pub fn ok(self) -> (String, String) {
        tool_ok(&self.argv())
    }

    /// [`tool_err`]: stderr.
    pub fn err(self) -> String {
        tool_err(&self.argv())
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lab admin kubeconfig as a `&str` argument.
pub fn admin() -> &'static str {
    lab().kubeconfig()
}

// ------------------------------------------------------------------- lab.sh

/// `tests/lab-env/lab.sh <args>` on this lab's state dir; stdout.
pub fn lab_sh(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab-env/lab.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .env("CLUSTERNET_LAB_STATE", lab().var("LAB_STATE"))
        .stdin(Stdio::null())
        .output()
        .expect("run tests/lab-env/lab.sh");
    assert!(out.status.success(), "tests/lab-env/lab.sh {args:?} failed:\n{}", text(&out.stderr));
    text(&out.stdout)
}

/// The second parent apiserver, with --anonymous-auth=false (`lab.sh up-noanon`):
/// its `LAB_NOANON_*` variables (SERVER, KUBECONFIG with the lab admin, AUDIT log).
pub fn noanon(name: &str) -> &'static str {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    let vars = VARS.get_or_init(|| {
        let out = lab_sh(&["up-noanon"]);
        out.lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    vars.get(name).unwrap_or_else(|| panic!("{name} not printed by lab.sh up-noanon: {vars:?}"))
}

pub fn noanon_kubeconfig() -> &'static str {
    noanon("LAB_NOANON_KUBECONFIG")
}

/// The audit events (JSON) appended to the second apiserver's log while `f` ran.
pub fn audited<T>(f: impl FnOnce() -> T) -> (T, Vec<Value>) {
    let path = noanon("LAB_NOANON_AUDIT");
    let start = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as usize;
    let result = f();
    let text = std::fs::read(path).unwrap();
    let events =
        String::from_utf8_lossy(&text[start..]).lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    (result, events)
}

pub const MANY: usize = 1000;

/// `lab.sh seed-many 1000`, once per test process (server-side apply: a lab
/// that already has them is unchanged).
pub fn seed_many() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        lab_sh(&["seed-many", &MANY.to_string()]);
    });
}

/// The kube-apiserver's own count (`apiserver_request_total` in /metrics) of
/// requests matching every `label="value"` in `labels`, summed over the rest.
pub fn apiserver_requests(labels: &[&str]) -> u64 {
    let metrics = kubectl_ok(admin(), &["get", "--raw", "/metrics"]);
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// LIST requests for ManagedClusters the apiserver has served so far.
pub fn managedcluster_lists() -> u64 {
    apiserver_requests(&[r#"resource="managedclusters""#, r#"verb="LIST""#])
}

/// An exec upgrade (`POST <path>?command=sh&stdin=true`, SPDY/3.1) sent to
/// the proxy listening at `addr`: the connection, a reader on it, and the
/// answer's head, which must be a 101.
pub fn spdy_upgrade(
    addr: &str,
    path: &str,
    timeout: Duration,
) -> (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>, String) {
    use std::io::{BufRead as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "POST {path}?command=sh&stdin=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "closed: {head}");
    }
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (stream, reader, head)
}
