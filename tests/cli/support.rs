//! Small helpers shared by the CLI tests: a scratch directory with a parent
//! kubeconfig and child credentials, running the binary with a clean
//! environment, and reading a kubeconfig back through real kubectl.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::assert::OutputAssertExt as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use predicates::prelude::*;
use serde_json::Value;

pub const CLUSTER_ID: &str = "dc91021d-2361-4f6d-a404-7c33b9e01118";
pub const PROXY: &str = "apis/proxies.clusternet.io/v1alpha1/sockets";
/// Planted secrets: no message may ever contain them.
pub const CHILD_TOKEN: &str = "SECRET-child-token-7f3a";
pub const PARENT_TOKEN: &str = "SECRET-parent-token-91bc";
pub const PARENT_USER_TOKEN: &str = "SECRET-parent-user-token-55de";

/// The binary under test: `CLUSTERNET_KUBECONFIG_BIN` when set (the static
/// release build, say: tests/static.sh), else the one cargo just built.
/// A set variable that names no file fails every test rather than quietly
/// testing the other binary.
pub fn bin() -> PathBuf {
    match std::env::var_os("CLUSTERNET_KUBECONFIG_BIN") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "CLUSTERNET_KUBECONFIG_BIN={} is not a file", path.display());
            path
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_clusternet-kubeconfig")),
    }
}

/// A scratch directory holding a parent kubeconfig, child credentials and a CA.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub cert_pem: String,
    pub key_pem: String,
    pub parent_cert_pem: String,
    pub parent_key_pem: String,
}

/// Fixed certificates and keys (tests/fixtures/pki): outputs that embed them
/// are the same on every run, so they can be compared whole.
const CHILD_CERT: &str = include_str!("../fixtures/pki/child.crt");
const CHILD_KEY: &str = include_str!("../fixtures/pki/child.key");
pub const PARENT_CERT: &str = include_str!("../fixtures/pki/admin.crt");
pub const PARENT_KEY: &str = include_str!("../fixtures/pki/admin.key");
pub const PARENT_CA: &str = include_str!("../fixtures/pki/ca.crt");
/// The notAfter of tests/fixtures/pki/child.crt (`openssl x509 -noout -enddate`).
pub const CHILD_CERT_NOT_AFTER: &str = "2126-11-05T12:11:36Z";

impl Scratch {
    /// A parent kubeconfig `parent.yaml` with contexts `main` (current: CA file
    /// `pki/ca.crt` relative, user `admin` with relative client cert files),
    /// `tokenuser` (user with a tokenFile) and `nsctx` (namespace `apps`, TLS
    /// options and extensions on its cluster); child credentials `child.token`,
    /// `child.crt`, `child.key`.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let s = Scratch {
            dir,
            cert_pem: CHILD_CERT.into(),
            key_pem: CHILD_KEY.into(),
            parent_cert_pem: PARENT_CERT.into(),
            parent_key_pem: PARENT_KEY.into(),
        };
        s.write("pki/ca.crt", PARENT_CA);
        s.write("pki/admin.crt", &s.parent_cert_pem);
        s.write("pki/admin.key", &s.parent_key_pem);
        s.write("parent-user.token", &format!("{PARENT_USER_TOKEN}\n"));
        s.write("child.token", &format!("{CHILD_TOKEN}\n"));
        s.write("child.crt", &s.cert_pem);
        s.write("child.key", &s.key_pem);
        s.write(
            "parent.yaml",
            "apiVersion: v1
kind: Config
current-context: main
clusters:
- name: parent
  cluster:
    certificate-authority: pki/ca.crt
    server: https://10.0.0.10:6443
- name: fancy
  cluster:
    certificate-authority-data: Q0EK
    server: https://[fd00::10]:6443/prefix/
    tls-server-name: kubernetes.default
    proxy-url: http://proxy.example:3128
    disable-compression: true
    insecure-skip-tls-verify: false
    extensions:
    - name: example.com/meta
      extension:
        region: eu-1
contexts:
- name: main
  context: {cluster: parent, user: admin}
- name: tokenuser
  context: {cluster: parent, user: tokenuser}
- name: nsctx
  context: {cluster: fancy, user: admin, namespace: apps}
users:
- name: admin
  user:
    client-certificate: pki/admin.crt
    client-key: pki/admin.key
- name: tokenuser
  user:
    tokenFile: parent-user.token
",
        );
        s
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    /// `gen --kubeconfig parent.yaml --cluster-id ID` plus `args`, run in the scratch dir.
    pub fn generate(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", CLUSTER_ID]);
        cmd.args(args);
        cmd
    }

    /// The binary with `args`, a clean environment and the scratch dir as cwd and HOME.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Names of the files in the scratch dir (recursively), for "nothing was written" checks.
    pub fn listing(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            for path in entries {
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    walk(&path, out);
                } else if meta.is_file() && meta.permissions().mode() & 0o400 != 0 {
                    let bytes = fs::read(&path).unwrap_or_default();
                    out.push((path, bytes));
                } else {
                    out.push((path, Vec::new()));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

/// Runs a command with `stdin` as standard input.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Success, and the generated kubeconfig on stdout.
pub fn ok(cmd: &mut Command) -> String {
    stdout(cmd.assert().success().get_output())
}

/// A failure with `code`, one `error:` line containing `needle`, no panic,
/// nothing on stdout, and no planted secret anywhere.
pub fn fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    out.clone()
        .assert()
        .code(code)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(needle).and(predicate::str::contains("panicked").not()));
    let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(error_lines.len(), 1, "one error line expected: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    no_secrets(&err);
}

pub fn no_secrets(text: &str) {
    for secret in [CHILD_TOKEN, PARENT_TOKEN, PARENT_USER_TOKEN, "PRIVATE KEY-----"] {
        assert!(!text.contains(secret), "secret {secret:?} leaked: {text}");
    }
}

/// `kubectl config view --raw -o json` of a kubeconfig file: what kubectl understood.
pub fn kubectl_view(path: &Path) -> Value {
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(path)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl must be installed (`bash tests/run.sh` installs it)");
    assert!(out.status.success(), "kubectl config view failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes generated text to a file and reads it back through kubectl.
pub fn kubectl_view_text(scratch: &Scratch, text: &str) -> Value {
    let path = scratch.write("generated.kubeconfig", text);
    let view = kubectl_view(&path);
    fs::remove_file(path).unwrap();
    view
}

/// The single entry of `list` (clusters, users, contexts) in a kubectl view.
pub fn only<'a>(view: &'a Value, list: &str) -> &'a Value {
    let items = view[list].as_array().unwrap_or_else(|| panic!("{list} missing in {view}"));
    assert_eq!(items.len(), 1, "{list}: {view}");
    &items[0]
}

pub fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

pub fn proxy_server(parent: &str, route: &str) -> String {
    format!("{parent}/{PROXY}/{CLUSTER_ID}/proxy/{route}")
}

/// Compares `actual` with the whole expected text in
/// `tests/fixtures/snapshots/<name>` (where output is deterministic, the
/// whole of it is the specification). `UPDATE_SNAPSHOTS=1` rewrites the
/// file instead: review the diff before committing it.
pub fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("snapshot {} cannot be read ({e}); run with UPDATE_SNAPSHOTS=1 to create it", path.display())
    });
    assert!(
        expected == actual,
        "output differs from {} (UPDATE_SNAPSHOTS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// The name of the provenance extension every generated context carries.
pub const PROVENANCE: &str = "kubeconfig.clusternet.io/provenance";

/// The provenance record of one entry body (`cluster`, `user` or `context`
/// of a kubectl view); fails when there is none.
pub fn provenance_of(body: &Value) -> &Value {
    let items = body["extensions"].as_array().unwrap_or_else(|| panic!("no extensions in {body}"));
    let item = items.iter().find(|i| i["name"] == PROVENANCE).unwrap_or_else(|| panic!("no provenance in {body}"));
    &item["extension"]
}

/// The record of every context of a view: each carries one and they are
/// the same (one generation, one record), and no cluster or user entry
/// carries one (the context's record is theirs); returns it.
pub fn the_provenance(view: &Value) -> Value {
    for (list, kind) in [("clusters", "cluster"), ("users", "user")] {
        for item in view[list].as_array().unwrap_or_else(|| panic!("{list} missing in {view}")) {
            let items = item[kind]["extensions"].as_array().map(Vec::as_slice).unwrap_or_default();
            assert!(!items.iter().any(|i| i["name"] == PROVENANCE), "a record on a {kind} entry: {item}");
        }
    }
    let contexts = view["contexts"].as_array().unwrap_or_else(|| panic!("contexts missing in {view}"));
    let mut records: Vec<Value> = contexts.iter().map(|c| provenance_of(&c["context"]).clone()).collect();
    assert!(records.windows(2).all(|w| w[0] == w[1]), "records differ: {records:?}");
    records.pop().expect("no entries")
}

/// A kubeconfig (a kubectl view, or our YAML/JSON text parsed) without the
/// provenance extensions (an emptied `extensions` list is dropped), to
/// compare what two generations mean apart from where their credential came from.
pub fn without_provenance(mut doc: Value) -> Value {
    for (list, kind) in [("clusters", "cluster"), ("users", "user"), ("contexts", "context")] {
        for item in doc[list].as_array_mut().into_iter().flatten() {
            let Some(body) = item.get_mut(kind).and_then(Value::as_object_mut) else { continue };
            if let Some(Value::Array(items)) = body.get_mut("extensions") {
                items.retain(|i| i["name"] != PROVENANCE);
                if items.is_empty() {
                    body.remove("extensions");
                }
            }
        }
    }
    doc
}

/// [`without_provenance`] of generated text (YAML or JSON).
pub fn stripped(text: &str) -> Value {
    without_provenance(serde_yaml::from_str(text).expect("generated text parses"))
}

/// The record `gen` writes for the scratch parent's context `main`, with
/// `credential` as given.
pub fn expected_provenance(credential: Value) -> Value {
    serde_json::json!({
        "generator": "clusternet-kubeconfig",
        "version": env!("CARGO_PKG_VERSION"),
        "parent": {"server": "https://10.0.0.10:6443", "context": "main"},
        "clusterID": CLUSTER_ID,
        "route": "direct",
        "credential": credential,
    })
}

/// An unsigned JWT whose `exp` is `from_now` seconds away (negative: in the
/// past), for the expiry `gen` records and `status` shows.
pub fn jwt(from_now: i64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = serde_json::json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer", "exp": now + from_now});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
