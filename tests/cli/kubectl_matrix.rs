//! Every kubectl on this machine × route × child credentials × parent
//! auth, against the recording server. Each cell generates a kubeconfig with
//! the real binary, runs `kubectl version -o json` and `kubectl get ns`, and
//! checks what reached the server. Run with `--nocapture` to see the matrix.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use testkit::{CHILD_GIT_VERSION, CHILD_NAMESPACE, PROXY_GROUP_PREFIX, RecordedRequest, Recorder};

use crate::kubectl::{self, Kubectl};

const ROUTES: [Route; 3] = [Route::Direct, Route::Https, Route::Http];
const CREDS: [Cred; 2] = [Cred::Token, Cred::CertKey];
const AUTHS: [Auth; 3] = [Auth::Anonymous, Auth::Token, Auth::Keep];

/// `Authorization` that kubectl sends for `username: system:anonymous`.
const ANONYMOUS_BASIC: &str = "Basic c3lzdGVtOmFub255bW91czo=";
const PARENT_TOKEN: &str = "parent-token.clusternet-hub-proxy";
/// The parent user's own token: it must never reach the server, whatever the mode.
const PARENT_OWN_TOKEN: &str = "parent-own-token-must-not-leak";
const PARENT_CLIENT_CN: &str = "parent-admin";

#[derive(Clone, Copy)]
enum Route {
    Direct,
    Https,
    Http,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Https => "https/<host>",
            Route::Http => "http/<host:port>",
        }
    }
    fn child_server(self) -> Option<&'static str> {
        match self {
            Route::Direct => None,
            Route::Https => Some("https://child.example:6443"),
            Route::Http => Some("http://10.0.0.7:8001"),
        }
    }
    /// The path segment(s) after `proxy/`.
    fn segment(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Https => "https/child.example:6443",
            Route::Http => "http/10.0.0.7:8001",
        }
    }
}

#[derive(Clone, Copy)]
enum Cred {
    Token,
    CertKey,
}

impl Cred {
    fn label(self) -> &'static str {
        match self {
            Cred::Token => "token",
            Cred::CertKey => "cert/key",
        }
    }
}

#[derive(Clone, Copy)]
enum Auth {
    Anonymous,
    Token,
    Keep,
}

impl Auth {
    fn label(self) -> &'static str {
        match self {
            Auth::Anonymous => "anon",
            Auth::Token => "tok",
            Auth::Keep => "keep",
        }
    }
    fn flag(self) -> &'static str {
        match self {
            Auth::Anonymous => "anonymous",
            Auth::Token => "token",
            Auth::Keep => "keep",
        }
    }
}

struct Cell<'a> {
    kubectl: &'a Kubectl,
    row: usize,
    route: Route,
    cred: Cred,
    auth: Auth,
    col: usize,
}

impl Cell<'_> {
    fn cluster_id(&self) -> String {
        format!("{:08x}-0000-4000-8000-{:012x}", self.row + 1, self.col + 1)
    }
    fn child_token(&self) -> String {
        format!("child-token-r{}-c{}", self.row, self.col)
    }
    fn name(&self) -> String {
        format!("{} × {} × {} × {}", self.kubectl.label(), self.route.label(), self.cred.label(), self.auth.label())
    }
}

/// Files every cell shares.
struct Fixture {
    dir: tempfile::TempDir,
    child_cert: String,
    child_key: String,
    parent_client_cert_der_b64: String,
}

impl Fixture {
    fn new(recorder: &Recorder) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let (child_cert, child_key) = testkit::self_signed_cert("child-user");
        std::fs::write(dir.path().join("child.crt"), &child_cert).unwrap();
        std::fs::write(dir.path().join("child.key"), &child_key).unwrap();
        let (parent_cert, parent_key) = recorder.issue_client_cert(PARENT_CLIENT_CN);
        let parent_client_cert_der_b64 = {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            STANDARD.encode(CertificateDer::from_pem_slice(parent_cert.as_bytes()).unwrap())
        };
        // anonymous and token: the parent user has a token of its own, which
        // must not travel; keep: a client certificate only.
        let own = kubectl::parent_kubeconfig(recorder, json!({ "token": PARENT_OWN_TOKEN }));
        let cert = kubectl::parent_kubeconfig(
            recorder,
            json!({
                "client-certificate-data": STANDARD.encode(&parent_cert),
                "client-key-data": STANDARD.encode(&parent_key),
            }),
        );
        std::fs::write(dir.path().join("parent-token-user.yaml"), own).unwrap();
        std::fs::write(dir.path().join("parent-cert-user.yaml"), cert).unwrap();
        Fixture { dir, child_cert, child_key, parent_client_cert_der_b64 }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

/// Paths kubectl may ask the child for in these two commands.
const CHILD_PATHS: [&str; 5] = ["/version", "/api", "/apis", "/api/v1", "/api/v1/namespaces"];

fn run_cell(cell: &Cell, fx: &Fixture, recorder: &Recorder) -> Result<(), Vec<String>> {
    let id = cell.cluster_id();
    let cell_dir = tempfile::tempdir().expect("temp dir");
    let out = cell_dir.path().join("child.kubeconfig");
    let parent = match cell.auth {
        Auth::Keep => fx.path("parent-cert-user.yaml"),
        _ => fx.path("parent-token-user.yaml"),
    };
    let mut args = vec![
        "--kubeconfig".to_string(),
        parent,
        "--cluster-id".into(),
        id.clone(),
        "--parent-auth".into(),
        cell.auth.flag().into(),
        "--output-file".into(),
        out.to_string_lossy().into_owned(),
    ];
    if let Some(server) = cell.route.child_server() {
        args.push(format!("--child-server={server}"));
    }
    match cell.cred {
        Cred::Token => args.push(format!("--token={}", cell.child_token())),
        Cred::CertKey => {
            args.push(format!("--client-certificate={}", fx.path("child.crt")));
            args.push(format!("--client-key={}", fx.path("child.key")));
        }
    }
    if let Auth::Token = cell.auth {
        args.push(format!("--parent-token={PARENT_TOKEN}"));
    }
    let generated = kubectl::run_gen(&args);
    if !generated.status.success() {
        return Err(vec![format!("gen failed: {}", kubectl::describe(&generated))]);
    }

    let mut problems = Vec::new();
    check_version(cell.kubectl, &out, &mut problems);
    check_get_ns(cell.kubectl, &out, &mut problems);

    let prefix = format!("{PROXY_GROUP_PREFIX}{id}/proxy/{}", cell.route.segment());
    let marker = format!("{PROXY_GROUP_PREFIX}{id}/");
    let requests: Vec<RecordedRequest> =
        recorder.requests().into_iter().filter(|r| r.path.starts_with(&marker)).collect();
    let rests: Vec<&str> = requests.iter().filter_map(|r| r.path.strip_prefix(&prefix)).collect();
    for wanted in ["/version", "/api/v1/namespaces"] {
        if !rests.contains(&wanted) {
            problems.push(format!("no request for {prefix}{wanted}"));
        }
    }
    for r in &requests {
        check_request(cell, fx, r, &prefix, &mut problems);
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn check_version(k: &Kubectl, kubeconfig: &Path, problems: &mut Vec<String>) {
    let out = k.run(kubeconfig, &["version", "-o", "json"]);
    if !out.status.success() {
        problems.push(format!("kubectl version: {}", kubectl::describe(&out)));
        return;
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let server = doc["serverVersion"]["gitVersion"].as_str().unwrap_or("");
    if server != CHILD_GIT_VERSION {
        problems.push(format!("kubectl version: serverVersion.gitVersion {server:?}, expected {CHILD_GIT_VERSION:?}"));
    }
}

fn check_get_ns(k: &Kubectl, kubeconfig: &Path, problems: &mut Vec<String>) {
    let out = k.run(kubeconfig, &["get", "ns"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains(CHILD_NAMESPACE) {
        problems.push(format!("kubectl get ns (expected {CHILD_NAMESPACE}): {}", kubectl::describe(&out)));
    }
}

fn check_request(cell: &Cell, fx: &Fixture, r: &RecordedRequest, prefix: &str, problems: &mut Vec<String>) {
    let at = format!("{} {}", r.method, r.path);
    match r.path.strip_prefix(prefix) {
        Some(rest) if CHILD_PATHS.contains(&rest) => {}
        _ => problems.push(format!("{at}: not the proxy prefix {prefix} + one of {CHILD_PATHS:?}")),
    }

    // Impersonation: exactly the user and the credential extras, once each.
    let mut expected: Vec<(&str, String)> = vec![("impersonate-user", "clusternet".to_string())];
    match cell.cred {
        Cred::Token => expected.push(("impersonate-extra-clusternet-token", cell.child_token())),
        Cred::CertKey => {
            expected.push(("impersonate-extra-clusternet-certificate", fx.child_cert.clone()));
            expected.push(("impersonate-extra-clusternet-privatekey", fx.child_key.clone()));
        }
    }
    let impersonate = r.headers_with_prefix("impersonate-");
    for (name, _) in &impersonate {
        if !expected.iter().any(|(n, _)| n == name) {
            problems.push(format!("{at}: unexpected header {name}"));
        }
    }
    for (name, want) in &expected {
        let values = r.headers_named(name);
        let [value] = values.as_slice() else {
            problems.push(format!("{at}: {name} sent {} times, expected once", values.len()));
            continue;
        };
        let ok = if name.ends_with("-certificate") || name.ends_with("-privatekey") {
            STANDARD.decode(value).is_ok_and(|pem| pem == want.as_bytes())
        } else {
            value == want
        };
        if !ok {
            problems.push(format!("{at}: {name}: {value:?} is not {want:?} (base64 for PEMs)"));
        }
    }

    // Parent authentication.
    let authorization = r.headers_named("authorization");
    let expected_auth = match cell.auth {
        Auth::Anonymous => Some(ANONYMOUS_BASIC.to_string()),
        Auth::Token => Some(format!("Bearer {PARENT_TOKEN}")),
        Auth::Keep => None,
    };
    match (&expected_auth, authorization.as_slice()) {
        (Some(want), [got]) if got == want => {}
        (None, []) => {}
        (want, got) => {
            problems.push(format!("{at}: Authorization {got:?}, expected {:?}", want.iter().collect::<Vec<_>>()))
        }
    }
    match cell.auth {
        Auth::Keep => {
            if r.client_cert_cn.as_deref() != Some(PARENT_CLIENT_CN)
                || r.client_cert_der_b64.as_deref() != Some(fx.parent_client_cert_der_b64.as_str())
            {
                problems.push(format!(
                    "{at}: TLS client certificate CN {:?}, expected the parent's ({PARENT_CLIENT_CN})",
                    r.client_cert_cn
                ));
            }
        }
        _ => {
            if r.client_cert_cn.is_some() {
                problems.push(format!("{at}: unexpected TLS client certificate {:?}", r.client_cert_cn));
            }
        }
    }
    if r.headers.iter().any(|(_, v)| v.contains(PARENT_OWN_TOKEN)) {
        problems.push(format!("{at}: the parent user's own token was sent"));
    }
}

fn render(kubectls: &[Kubectl], results: &[Result<(), Vec<String>>]) -> String {
    const CELL: usize = 5;
    let label_width = kubectls.iter().map(|k| k.label().chars().count()).max().unwrap_or(0).max(24);
    let cred_width = CELL * AUTHS.len();
    let route_width = cred_width * CREDS.len() + 2;
    let mut s = String::new();
    let _ = write!(s, "{:label_width$} ", "route →");
    for route in ROUTES {
        let _ = write!(s, "| {:route_width$}", route.label());
    }
    s.push('\n');
    let _ = write!(s, "{:label_width$} ", "child credentials →");
    for _ in ROUTES {
        s.push_str("| ");
        for cred in CREDS {
            let _ = write!(s, "{:cred_width$} ", cred.label());
        }
    }
    s.push('\n');
    let _ = write!(s, "{:label_width$} ", "kubectl ↓   parent auth →");
    for _ in ROUTES {
        s.push_str("| ");
        for _ in CREDS {
            for auth in AUTHS {
                let _ = write!(s, "{:CELL$}", auth.label());
            }
            s.push(' ');
        }
    }
    s.push('\n');
    let per_row = ROUTES.len() * CREDS.len() * AUTHS.len();
    for (row, k) in kubectls.iter().enumerate() {
        let _ = write!(s, "{:label_width$} ", k.label());
        let row_results = &results[row * per_row..(row + 1) * per_row];
        for route_cells in row_results.chunks(CREDS.len() * AUTHS.len()) {
            s.push_str("| ");
            for cred_cells in route_cells.chunks(AUTHS.len()) {
                for r in cred_cells {
                    let mark = if r.is_ok() { "ok" } else { "FAIL" };
                    let _ = write!(s, "{mark:CELL$}");
                }
                s.push(' ');
            }
        }
        s.push('\n');
    }
    s
}

#[test]
fn kubectl_matrix() {
    let kubectls = kubectl::find();
    assert!(
        !kubectls.is_empty(),
        "no kubectl found (PATH, or {}); install one (Debian: kubernetes-client): this test fails rather than skips",
        kubectl::BINARIES_ENV
    );
    let recorder = Recorder::start(Default::default()).expect("start the recorder");
    let fx = Fixture::new(&recorder);

    let mut cells = Vec::new();
    for (row, k) in kubectls.iter().enumerate() {
        let mut col = 0;
        for route in ROUTES {
            for cred in CREDS {
                for auth in AUTHS {
                    cells.push(Cell { kubectl: k, row, route, cred, auth, col });
                    col += 1;
                }
            }
        }
    }
    let workers = kubectl::workers();
    let started = Instant::now();
    let results = kubectl::parallel(&cells, workers, |cell| run_cell(cell, &fx, &recorder));
    let elapsed = started.elapsed();

    // Nothing may reach the parent outside a cell's proxy prefix.
    let strays: Vec<String> = recorder
        .requests()
        .into_iter()
        .filter(|r| !r.path.starts_with(PROXY_GROUP_PREFIX))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();

    let passed = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "\nkubectl matrix: {} kubectl × {} = {} cells, {passed} ok, {} workers, {:.1} s\n",
        kubectls.len(),
        ROUTES.len() * CREDS.len() * AUTHS.len(),
        cells.len(),
        workers,
        elapsed.as_secs_f64()
    );
    println!("{}", render(&kubectls, &results));
    for k in &kubectls {
        println!("  {} = {}", k.label(), k.path.display());
    }

    let mut report = String::new();
    for (cell, result) in cells.iter().zip(&results) {
        if let Err(problems) = result {
            let _ = writeln!(report, "{}:", cell.name());
            for p in problems.iter().take(6) {
                let _ = writeln!(report, "    {p}");
            }
        }
    }
    if !strays.is_empty() {
        let _ = writeln!(report, "requests outside the proxy prefix: {strays:?}");
    }
    if !report.is_empty() {
        println!("\n{report}");
        panic!("{} of {} cells wrong\n{}\n{report}", cells.len() - passed, cells.len(), render(&kubectls, &results));
    }
}
