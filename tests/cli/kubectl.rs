//! Finding the kubectl binaries on this machine and running them in a clean,
//! per-invocation environment.
//!
//! Search: `CLUSTERNET_KUBECTL_BINARIES` (colon-separated paths) when set and
//! not empty; otherwise `kubectl` on PATH, plus the versioned binaries
//! (`kubectl.1.*`) that the Google Cloud CLI installs beside the real file
//! behind it. Identical files count once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::bin;

/// Overrides the search: colon-separated kubectl paths.
pub const BINARIES_ENV: &str = "CLUSTERNET_KUBECTL_BINARIES";

/// One kubectl binary.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub path: PathBuf,
    /// `clientVersion.gitVersion`, e.g. `v1.31.9` or `v1.32.4-dispatcher`.
    pub git_version: String,
}

impl Kubectl {
    /// `v1.31.9 (kubectl.1.31)`, for tables and messages.
    pub fn label(&self) -> String {
        let file = self.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        format!("{} ({file})", self.git_version)
    }

    /// Runs `kubectl --kubeconfig <kubeconfig> --cache-dir <fresh> ARGS` with a
    /// clean environment (only PATH, and HOME in a fresh directory), so that
    /// nothing leaks between invocations.
    pub fn run(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let scratch = tempfile::tempdir().expect("temp dir");
        let home = scratch.path().join("home");
        let cache = scratch.path().join("cache");
        fs::create_dir_all(&home).expect("home dir");
        let mut cmd = Command::new(&self.path);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("KUBECACHEDIR", &cache)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--request-timeout=30s")
            .args(args);
        cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.path.display()))
    }
}

/// Every kubectl found (see the module doc), sorted by version. Empty when
/// there is none: callers fail on that, they do not skip.
pub fn find() -> Vec<Kubectl> {
    let mut found: Vec<Kubectl> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for path in candidates() {
        let real = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.iter().any(|s| *s == real || same_content(s, &real)) {
            continue;
        }
        seen.push(real);
        let git_version = client_version(&path)
            .unwrap_or_else(|| panic!("{} does not answer `version --client -o json`", path.display()));
        found.push(Kubectl { path, git_version });
    }
    found.sort_by_key(|k| version_key(&k.git_version));
    found
}

fn candidates() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os(BINARIES_ENV).filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .inspect(|p| {
                assert!(p.is_file(), "{BINARIES_ENV} names {}: not a file", p.display());
            })
            .collect();
    }
    let Some(on_path) = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("kubectl")).find(|p| p.is_file()))
    else {
        return Vec::new();
    };
    let mut out = vec![on_path.clone()];
    let real = fs::canonicalize(&on_path).unwrap_or(on_path);
    if let Some(dir) = real.parent()
        && let Ok(entries) = fs::read_dir(dir)
    {
        let mut versioned: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.strip_prefix("kubectl.1.").is_some_and(|v| !v.is_empty()))
                    && p.is_file()
            })
            .collect();
        versioned.sort();
        out.extend(versioned);
    }
    out
}

/// Two files with the same bytes (sizes first: these are 50 MB binaries).
fn same_content(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {
            matches!((fs::read(a), fs::read(b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

fn client_version(path: &Path) -> Option<String> {
    let out = Command::new(path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    doc["clientVersion"]["gitVersion"].as_str().map(str::to_string)
}

/// `v1.32.4-dispatcher` → (1, 32, 4, "-dispatcher").
fn version_key(git_version: &str) -> (u32, u32, u32, String) {
    let v = git_version.trim_start_matches('v');
    let (numbers, suffix) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let mut n = numbers.split('.').map(|p| p.parse().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0), n.next().unwrap_or(0), suffix.to_string())
}

#[test]
fn versions_sort_numerically() {
    let mut v = ["v1.33.1", "v1.9.0", "v1.32.4-dispatcher", "v1.32.5", "v1.27.16"];
    v.sort_by_key(|s| version_key(s));
    assert_eq!(v, ["v1.9.0", "v1.27.16", "v1.32.4-dispatcher", "v1.32.5", "v1.33.1"]);
}

/// A parent kubeconfig for `recorder`: one cluster `parent` (the recorder's
/// URL and CA), one context, and a user `parent-user` whose entry is `user`
/// (a JSON object, e.g. `{"token": "..."}`). JSON is valid YAML.
pub fn parent_kubeconfig(recorder: &testkit::Recorder, user: serde_json::Value) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(recorder.ca_pem());
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "parent", "cluster": {
            "server": recorder.url(),
            "certificate-authority-data": ca,
        }}],
        "contexts": [{"name": "parent", "context": {"cluster": "parent", "user": "parent-user"}}],
        "current-context": "parent",
        "users": [{"name": "parent-user", "user": user}],
    })
    .to_string()
}

/// Runs the product binary with ARGS, without any CLUSTERNET_* or KUBECONFIG
/// variable from the caller.
pub fn run_gen(args: &[String]) -> Output {
    let mut cmd = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("CLUSTERNET_") || name_str == "KUBECONFIG" {
            cmd.env_remove(&name);
        }
    }
    cmd.arg("gen").args(args).output().expect("run clusternet-kubeconfig")
}

/// Runs `f` over `items` on `workers` threads; results in item order.
pub fn parallel<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every item ran")).collect()
}

/// Worker threads for kubectl runs: 2 to 4, after the machine's cores.
pub fn workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 4)
}

/// stdout and stderr of a failed command, shortened, for a report.
pub fn describe(out: &Output) -> String {
    let short = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).trim().replace('\n', " | ");
        if s.chars().count() > 400 { format!("{}…", s.chars().take(400).collect::<String>()) } else { s }
    };
    format!("exit {:?}; stderr: {}; stdout: {}", out.status.code(), short(&out.stderr), short(&out.stdout))
}
