//! The GitHub Action (.github/actions/kubeconfig/action.yml -> .github/actions/kubeconfig/action.sh) under a simulated
//! runner: temporary RUNNER_TEMP, GITHUB_ENV, GITHUB_OUTPUT and GITHUB_PATH,
//! inputs as INPUT_* variables (as action.yml passes them), the binary under
//! test either given directly or packed into a fake release served from a
//! file:// URL, and real kubectl reading the result.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;

const TARGET: &str = "x86_64-unknown-linux-musl";
const ARCHIVE: &str = "clusternet-kubeconfig-x86_64-unknown-linux-musl.tar.gz";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A job's runner: its files, a workspace, a `bin` dir first on PATH, and a
/// copy of the action (`action/`) whose pinned release (checksums.txt) a test may set.
struct Runner {
    dir: tempfile::TempDir,
}

/// What one action run left behind.
struct Run {
    out: Output,
    stdout: String,
    stderr: String,
    env: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    path: String,
}

impl Runner {
    fn new() -> Runner {
        let runner = Runner { dir: tempfile::tempdir().unwrap() };
        for sub in ["temp", "workspace", "bin", "action"] {
            fs::create_dir_all(runner.path(sub)).unwrap();
        }
        for file in ["env", "output", "path"] {
            fs::write(runner.path(file), "").unwrap();
        }
        for entry in fs::read_dir(repo().join(".github/actions/kubeconfig")).unwrap() {
            let from = entry.unwrap().path();
            fs::copy(&from, runner.path("action").join(from.file_name().unwrap())).unwrap();
        }
        runner
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The action's commit pins `version` with this archive digest, as the
    /// release workflow writes checksums.txt.
    fn pin(&self, version: &str, digest: &str) {
        let text = format!("# pinned by the test\nversion {version}\n{digest}  {ARCHIVE}\n");
        fs::write(self.path("action/checksums.txt"), text).unwrap();
    }

    /// A stand-in for a tool on PATH: records its argv in `<name>.argv`, then runs `body`.
    fn fake_tool(&self, name: &str, body: &str) {
        let argv = self.path(&format!("{name}.argv"));
        let script = format!("#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n{body}\n", argv.display());
        let path = self.path(&format!("bin/{name}"));
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn argv(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.path(&format!("{name}.argv"))).ok()
    }

    /// The action's action.sh with `inputs` (action.yml's names), as the runner starts a
    /// Linux x64 step: a clean environment plus the runner's variables.
    fn run(&self, inputs: &[(&str, &str)]) -> Run {
        for file in ["env", "output", "path"] {
            fs::write(self.path(file), "").unwrap();
        }
        let mut cmd = Command::new("bash");
        cmd.arg(self.path("action/action.sh"))
            .current_dir(self.path("workspace"))
            .env_clear()
            .env("PATH", format!("{}:{}", self.path("bin").display(), std::env::var("PATH").unwrap()))
            .env("HOME", self.dir.path())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", self.path("temp"))
            .env("GITHUB_ENV", self.path("env"))
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_PATH", self.path("path"))
            // Ambient credentials the action must not pick up.
            .env("CLUSTERNET_CHILD_TOKEN", "ambient-child-token")
            .env("KUBECONFIG", "/nonexistent/ambient")
            .stdin(Stdio::null());
        for (name, value) in inputs {
            // Upper case: a variable of the step itself (ACTION_REF, KUBECONFIG), not an input.
            if name.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) {
                cmd.env(name, value);
            } else {
                cmd.env(format!("INPUT_{}", name.to_uppercase().replace('-', "_")), value);
            }
        }
        let out = cmd.output().unwrap();
        Run {
            stdout: stdout(&out),
            stderr: stderr(&out),
            env: runner_file(&self.path("env")),
            outputs: runner_file(&self.path("output")),
            path: fs::read_to_string(self.path("path")).unwrap(),
            out,
        }
    }

    /// The action installing `version` from `releases` (by the action checked
    /// out at `action_ref`: `uses: ...@<ref>`), then a token kubeconfig.
    fn install_as(&self, version: &str, action_ref: &str, releases: &str) -> Run {
        let parent = parent_kubeconfig();
        self.run(&[
            ("ACTION_REF", action_ref),
            ("GITHUB_ACTION_REF", action_ref),
            ("version", version),
            ("release-url", releases),
            ("parent-kubeconfig", &parent),
            ("cluster-id", CLUSTER_ID),
            ("child-token", CHILD_TOKEN),
        ])
    }

    /// Everything left under RUNNER_TEMP, relative.
    fn temp_listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                out.push(path.strip_prefix(base).unwrap().display().to_string());
                if path.is_dir() {
                    walk(base, &path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path("temp"), &self.path("temp"), &mut out);
        out.sort();
        out
    }

    /// Publishes `binary` as the archive of release `version` under
    /// `releases/`, laid out as GitHub serves it (`download/v<version>/...`,
    /// and `latest/download/...` when `latest`), with a SHA256SUMS that matches
    /// it, as whoever publishes (or replaces) a release writes one. Returns
    /// the releases URL and the archive's digest.
    fn release(&self, version: &str, binary: &Path, latest: bool) -> (String, String) {
        let stage = self.path(&format!("stage-{version}"));
        let top = stage.join(format!("clusternet-kubeconfig-{TARGET}"));
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir_all(&top).unwrap();
        for (from, name) in [
            (binary, "clusternet-kubeconfig"),
            (&repo().join("LICENSE"), "LICENSE"),
            (&repo().join("README.md"), "README.md"),
        ] {
            std::os::unix::fs::symlink(from, top.join(name)).unwrap();
        }
        let mut dirs = vec![self.path(&format!("releases/download/v{version}"))];
        if latest {
            dirs.push(self.path("releases/latest/download"));
        }
        for dir in &dirs {
            fs::create_dir_all(dir).unwrap();
            let _ = fs::remove_file(dir.join(ARCHIVE));
        }
        // -h: the files behind the links; gzip -1: a debug binary is large.
        let tar = Command::new("tar")
            .args(["-I", "gzip -1", "-chf"])
            .arg(dirs[0].join(ARCHIVE))
            .arg("-C")
            .arg(&stage)
            .arg(format!("clusternet-kubeconfig-{TARGET}"))
            .status()
            .unwrap();
        assert!(tar.success());
        let sums = Command::new("sha256sum").arg(ARCHIVE).current_dir(&dirs[0]).output().unwrap();
        assert!(sums.status.success());
        for dir in &dirs {
            if dir != &dirs[0] {
                fs::hard_link(dirs[0].join(ARCHIVE), dir.join(ARCHIVE)).unwrap();
            }
            fs::write(dir.join("SHA256SUMS"), stdout(&sums)).unwrap();
        }
        let digest = stdout(&sums).split_whitespace().next().unwrap().to_string();
        (format!("file://{}", self.path("releases").display()), digest)
    }

    /// An impostor binary: records that it ran, then behaves like `clusternet-kubeconfig`.
    fn impostor(&self) -> PathBuf {
        let path = self.path("impostor");
        let marker = self.path("impostor.ran");
        let script = format!("#!/bin/sh\necho ran >> '{}'\nexec '{}' \"$@\"\n", marker.display(), bin().display());
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn impostor_ran(&self) -> bool {
        self.path("impostor.ran").exists()
    }
}

/// `name<<delimiter\nvalue\ndelimiter` entries of a runner file.
fn runner_file(path: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(path).unwrap();
    let mut entries = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").unwrap_or_else(|| panic!("not a multiline entry: {line:?}"));
        let mut value = Vec::new();
        for line in lines.by_ref() {
            if line == delimiter {
                break;
            }
            value.push(line);
        }
        entries.insert(name.to_string(), value.join("\n"));
    }
    entries
}

fn parent_kubeconfig() -> String {
    repo().join("examples/parent.kubeconfig").display().to_string()
}

/// Success, with every secret in `secrets` masked before any other line, and
/// on no other line of stdout or stderr.
fn masked_before_use(run: &Run, secrets: &[&str]) {
    assert!(run.out.status.success(), "action failed: {}{}", run.stdout, run.stderr);
    let masks: Vec<&str> = run.stdout.lines().take_while(|l| l.starts_with("::add-mask::")).collect();
    for secret in secrets {
        assert!(
            masks.contains(&format!("::add-mask::{secret}").as_str()),
            "{secret:?} not masked first: {}",
            run.stdout
        );
    }
    not_printed(run, secrets);
}

/// Success, with each of `masks` (workflow-command data, as the runner reads
/// it) registered before the step's last line, and no secret of `secrets` on
/// any other line.
fn masked_before_export(run: &Run, masks: &[&str], secrets: &[&str]) {
    assert!(run.out.status.success(), "action failed: {}{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let last = lines.iter().position(|l| l.starts_with("KUBECONFIG=")).expect("the export line");
    for mask in masks {
        let line = format!("::add-mask::{mask}");
        assert!(lines[..last].contains(&line.as_str()), "{line:?} missing before the export: {}", run.stdout);
    }
    not_printed(run, secrets);
}

/// No line but the runner's mask commands holds a secret.
fn not_printed(run: &Run, secrets: &[&str]) {
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        if !line.starts_with("::add-mask::") {
            for secret in secrets {
                assert!(!line.contains(secret), "secret printed: {line}");
            }
        }
    }
}

/// The step's error annotations.
fn errors(run: &Run) -> Vec<&str> {
    run.stdout.lines().filter(|l| l.starts_with("::error::")).collect()
}

/// The exported kubeconfig: under RUNNER_TEMP, 0600, the same path in
/// KUBECONFIG and the `kubeconfig` output, the `context` output its
/// current-context as kubectl reads it. Returns kubectl's view.
fn exported(runner: &Runner, run: &Run) -> serde_json::Value {
    let path = PathBuf::from(&run.env["KUBECONFIG"]);
    assert_eq!(run.env.keys().collect::<Vec<_>>(), ["KUBECONFIG"]);
    assert_eq!(run.outputs["kubeconfig"], run.env["KUBECONFIG"]);
    assert!(path.starts_with(runner.path("temp")), "{}", path.display());
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let view = kubectl_view(&path);
    assert_eq!(view["current-context"], run.outputs["context"].as_str());
    // Only the kubeconfig (and an installed binary) stay: credentials files are gone.
    let stale: Vec<_> = runner.temp_listing().into_iter().filter(|p| p.contains("-work.")).collect();
    assert!(stale.is_empty(), "{stale:?}");
    view
}

fn extra(view: &serde_json::Value, key: &str) -> String {
    only(view, "users")["user"]["as-user-extra"][key][0].as_str().unwrap().to_string()
}

#[test]
fn action_writes_a_private_kubeconfig_exports_it_and_prints_no_secret() {
    let runner = Runner::new();
    let real = bin();
    // The binary as a wrapper that records its argv: no secret may be on it.
    runner.fake_tool("clusternet-kubeconfig", &format!("exec '{}' \"$@\"", real.display()));
    let wrapper = runner.path("bin/clusternet-kubeconfig").display().to_string();
    let parent = parent_kubeconfig();
    let run = runner.run(&[
        ("binary", &wrapper),
        ("parent-kubeconfig", &parent),
        ("cluster-id", "DC91021D-2361-4F6D-A404-7C33B9E01118"),
        ("child-token", CHILD_TOKEN),
        ("child-server", "https://10.0.0.5:6443"),
        ("parent-auth", "token"),
        ("parent-token", PARENT_TOKEN),
    ]);
    masked_before_use(&run, &[CHILD_TOKEN, PARENT_TOKEN]);
    let view = exported(&runner, &run);
    assert_eq!(run.outputs["context"], format!("clusternet-{CLUSTER_ID}"));
    assert_eq!(run.outputs["binary"], wrapper);
    assert_eq!(run.path, "", "a given binary's directory is not added to PATH");
    assert_eq!(extra(&view, "clusternet-token"), CHILD_TOKEN);
    assert_eq!(only(&view, "users")["user"]["token"], PARENT_TOKEN);
    assert_eq!(
        only(&view, "clusters")["cluster"]["server"],
        proxy_server("https://parent.example:6443", "https/10.0.0.5:6443").as_str()
    );
    let argv = runner.argv("clusternet-kubeconfig").unwrap();
    assert!(argv.contains("--cluster-id") && argv.contains("--output-file"), "{argv}");
    no_secrets(&argv);
    assert!(!argv.contains("ambient"), "{argv}");
}

#[test]
fn action_takes_a_client_certificate_and_parent_kubeconfig_content() {
    let runner = Runner::new();
    let s = Scratch::new();
    let key_lines: Vec<&str> = s.key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    // Content, as from a secret, with the parent user's own token inline.
    let parent = fs::read_to_string(parent_kubeconfig())
        .unwrap()
        .replace("users:\n", &format!("users:\n- name: ci\n  user:\n    token: \"{PARENT_USER_TOKEN}\"\n"));
    let parent = parent.replace("current-context: kubernetes-admin@kubernetes", "current-context: ci");
    let parent = parent.replace("contexts:\n", "contexts:\n- name: ci\n  context: {cluster: kubernetes, user: ci}\n");
    let run = runner.run(&[
        ("binary", &bin().display().to_string()),
        ("parent-kubeconfig", &parent),
        ("cluster-id", CLUSTER_ID),
        ("child-client-certificate", &s.cert_pem),
        ("child-client-key", &s.key_pem),
        ("parent-auth", "keep"),
        ("name", "child-a"),
    ]);
    let key_b64 = b64(&s.key_pem);
    let mut secrets = key_lines.clone();
    secrets.extend([PARENT_USER_TOKEN, key_b64.as_str()]);
    masked_before_use(&run, &secrets);
    let view = exported(&runner, &run);
    assert_eq!(run.outputs["context"], "child-a");
    // The masked base64 form is exactly what the kubeconfig carries.
    assert_eq!(extra(&view, "clusternet-privatekey"), key_b64);
    assert_eq!(extra(&view, "clusternet-certificate"), b64(&s.cert_pem));
    assert_eq!(only(&view, "users")["user"]["token"], PARENT_USER_TOKEN);
}

/// The bytes the action installed (its `binary` output) are the binary under test.
fn installed_the_real_binary(runner: &Runner, run: &Run) {
    let installed = PathBuf::from(&run.outputs["binary"]);
    assert!(installed.starts_with(runner.path("temp")), "{}", installed.display());
    assert_eq!(fs::read(&installed).unwrap(), fs::read(bin()).unwrap());
    assert_eq!(run.path, format!("{}\n", installed.parent().unwrap().display()));
}

#[test]
fn action_installs_the_release_its_commit_pins_whatever_the_ref() {
    // `latest` is a newer release the action's commit does not name, with
    // its own matching SHA256SUMS: a SHA-pinned (or ref-less) action must not
    // run it, nor build anything.
    let runner = Runner::new();
    runner.fake_tool("cargo", "exit 1");
    let (releases, digest) = runner.release("0.1.0", &bin(), false);
    runner.release("0.2.0", &runner.impostor(), true);
    runner.pin("0.1.0", &digest);
    let sha_ref = "0123456789abcdef0123456789abcdef01234567";
    for (version, action_ref) in [("", sha_ref), ("", ""), ("", "v0.1.0"), ("", "main"), ("v0.1.0", sha_ref)] {
        let run = runner.install_as(version, action_ref, &releases);
        masked_before_use(&run, &[CHILD_TOKEN]);
        assert!(run.stdout.contains(&format!("{ARCHIVE}: checksum OK ({digest})")), "{action_ref}: {}", run.stdout);
        exported(&runner, &run);
        installed_the_real_binary(&runner, &run);
        assert!(!runner.impostor_ran(), "ref {action_ref:?} ran the latest release");
    }
    assert_eq!(runner.argv("cargo"), None, "no fallback when the archive is there");
}

#[test]
fn action_refuses_a_release_whose_archive_and_sums_were_replaced() {
    let runner = Runner::new();
    runner.fake_tool("cargo", "exit 1");
    let (_, digest) = runner.release("0.1.0", &bin(), true);
    // Someone with write access to the releases replaces both files.
    let (releases, replaced) = runner.release("0.1.0", &runner.impostor(), true);
    runner.pin("0.1.0", &digest);
    for version in ["", "0.1.0"] {
        let run = runner.install_as(version, "", &releases);
        assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
        let errors = errors(&run);
        assert_eq!(errors.len(), 1, "{}", run.stdout);
        assert!(errors[0].contains(&format!("checksum mismatch for {ARCHIVE}")), "{}", errors[0]);
        assert!(errors[0].contains(&digest) && errors[0].contains(&replaced), "{}", errors[0]);
        // Nothing run, installed or exported, no fallback to building it.
        assert!(!runner.impostor_ran());
        assert!(run.env.is_empty() && run.outputs.is_empty() && run.path.is_empty());
        assert_eq!(runner.argv("cargo"), None);
        assert!(runner.temp_listing().is_empty(), "{:?}", runner.temp_listing());
        not_printed(&run, &[CHILD_TOKEN]);
    }
}

#[test]
fn action_installs_another_version_only_with_its_digest() {
    let runner = Runner::new();
    runner.fake_tool("cargo", "exit 1");
    let (releases, pinned) = runner.release("0.1.0", &runner.impostor(), false);
    runner.pin("0.1.0", &pinned);
    let (_, digest) = runner.release("0.2.0", &bin(), true);
    for version in ["0.2.0", "latest"] {
        let run = runner.install_as(version, "", &releases);
        assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
        let errors = errors(&run);
        assert_eq!(errors.len(), 1, "{}", run.stdout);
        assert!(errors[0].contains("give the SHA-256 of"), "{}", errors[0]);
        assert!(run.env.is_empty() && !runner.impostor_ran());
    }
    let parent = parent_kubeconfig();
    for version in ["0.2.0", "latest"] {
        let run = runner.run(&[
            ("version", version),
            ("sha256", &digest.to_uppercase()),
            ("release-url", &releases),
            ("parent-kubeconfig", &parent),
            ("cluster-id", CLUSTER_ID),
            ("child-token", CHILD_TOKEN),
        ]);
        masked_before_use(&run, &[CHILD_TOKEN]);
        exported(&runner, &run);
        installed_the_real_binary(&runner, &run);
    }
    // A wrong digest stops it.
    let run = runner.run(&[
        ("version", "0.2.0"),
        ("sha256", &"0".repeat(64)),
        ("release-url", &releases),
        ("parent-kubeconfig", &parent),
        ("cluster-id", CLUSTER_ID),
        ("child-token", CHILD_TOKEN),
    ]);
    assert_eq!(run.out.status.code(), Some(1));
    assert!(errors(&run)[0].contains("checksum mismatch"), "{}", run.stdout);
    assert_eq!(runner.argv("cargo"), None);
}

#[test]
fn action_without_a_pinned_release_needs_a_binary() {
    // The repository's own checksums.txt between releases.
    let runner = Runner::new();
    let (releases, _) = runner.release("0.1.0", &runner.impostor(), true);
    let run = runner.install_as("", "", &releases);
    assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    assert!(errors(&run)[0].contains("pins no release"), "{}", run.stdout);
    assert!(!runner.impostor_ran());
}

#[test]
fn action_builds_with_cargo_install_when_no_archive_is_built_for_the_runner() {
    let runner = Runner::new();
    runner.pin("0.1.0", &"a".repeat(64));
    // Stands in for `cargo install --root DIR`: puts the binary under test in DIR/bin.
    runner.fake_tool(
        "cargo",
        &format!(
            "while [ \"$1\" != --root ]; do shift; done\nmkdir -p \"$2/bin\"\nln -s '{}' \"$2/bin/clusternet-kubeconfig\"",
            bin().display()
        ),
    );
    let parent = parent_kubeconfig();
    let run = runner.run(&[
        ("RUNNER_ARCH", "ARM"),
        ("release-url", "file:///nonexistent"),
        ("parent-kubeconfig", &parent),
        ("cluster-id", CLUSTER_ID),
        ("child-token", CHILD_TOKEN),
    ]);
    masked_before_use(&run, &[CHILD_TOKEN]);
    assert!(run.stdout.contains("::warning::no release archive for Linux/ARM"), "{}", run.stdout);
    let argv = runner.argv("cargo").unwrap();
    let root = argv.lines().nth(3).unwrap();
    assert_eq!(
        argv,
        format!("install\n--locked\n--root\n{root}\n--version\n=0.1.0\nclusternet-kubeconfig\n"),
        "cargo install, pinned to the version"
    );
    exported(&runner, &run);
    assert_eq!(run.outputs["binary"], format!("{root}/bin/clusternet-kubeconfig"));
    assert_eq!(run.path, format!("{root}/bin\n"));
}

#[test]
fn action_masks_the_hub_proxy_token_it_reads_from_the_parent() {
    use testkit::{RawAnswer, RawServer};
    // `%0A` in the token: unencoded, the runner would mask another value.
    const HUB_TOKEN: &str = "SECRET-hub-proxy-100%0Atoken";
    let secret_list = serde_json::json!({
        "apiVersion": "v1", "kind": "SecretList", "metadata": {},
        "items": [{
            "metadata": {"name": "clusternet-hub-proxy-token", "namespace": "clusternet-system",
                "annotations": {"kubernetes.io/service-account.name": "clusternet-hub-proxy"}},
            "type": "kubernetes.io/service-account-token",
            "data": {"token": b64(HUB_TOKEN)},
        }],
    })
    .to_string();
    let server = RawServer::start(move |path| {
        let (status, body) = if path.starts_with("/api/v1/namespaces/clusternet-system/secrets") {
            ("200 OK", secret_list.clone())
        } else {
            ("404 Not Found", r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#.to_string())
        };
        RawAnswer::Bytes(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
    .unwrap();
    let parent = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "p",
        "clusters": [{"name": "p", "cluster": {"server": server.url(), "certificate-authority-data": b64(&server.ca_pem())}}],
        "contexts": [{"name": "p", "context": {"cluster": "p", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": PARENT_USER_TOKEN}}],
    });
    let runner = Runner::new();
    let run = runner.run(&[
        ("binary", &bin().display().to_string()),
        ("parent-kubeconfig", &serde_json::to_string_pretty(&parent).unwrap()),
        ("cluster-id", CLUSTER_ID),
        ("child-token", CHILD_TOKEN),
        ("parent-auth", "token"),
    ]);
    masked_before_export(&run, &["SECRET-hub-proxy-100%250Atoken", PARENT_USER_TOKEN], &[HUB_TOKEN, PARENT_USER_TOKEN]);
    let view = exported(&runner, &run);
    assert_eq!(only(&view, "users")["user"]["token"], HUB_TOKEN);
}

#[test]
fn action_masks_every_credential_it_writes_in_any_yaml_style() {
    let runner = Runner::new();
    // The parent user's credentials (kept: parent-auth keep) as a folded
    // block scalar and a double-quoted password with %, CR and LF.
    let parent = fs::read_to_string(parent_kubeconfig()).unwrap().replace(
        "users:\n",
        &format!(
            "users:\n- name: ci\n  user:\n    token: >-\n      {PARENT_USER_TOKEN}\n    password: \"pass-100%-first-line\\r\\npass-second-line\"\n    username: ci-user\n"
        ),
    );
    let parent = parent.replace("current-context: kubernetes-admin@kubernetes", "current-context: ci");
    let parent = parent.replace("contexts:\n", "contexts:\n- name: ci\n  context: {cluster: kubernetes, user: ci}\n");
    let run = runner.run(&[
        ("binary", &bin().display().to_string()),
        ("parent-kubeconfig", &parent),
        ("cluster-id", CLUSTER_ID),
        ("child-token", "SECRET-child-50%-token"),
        ("parent-auth", "keep"),
    ]);
    masked_before_export(
        &run,
        &[
            PARENT_USER_TOKEN,
            "pass-100%25-first-line%0D%0Apass-second-line",
            "pass-100%25-first-line",
            "pass-second-line",
            "SECRET-child-50%25-token",
        ],
        &[PARENT_USER_TOKEN, "pass-second-line", "SECRET-child-50%-token"],
    );
    assert!(!run.stdout.contains("::add-mask::>-"), "{}", run.stdout);
    assert!(!run.stdout.contains("::add-mask::SECRET-child-50%-token"), "unencoded: {}", run.stdout);
    let view = exported(&runner, &run);
    assert_eq!(only(&view, "users")["user"]["token"], PARENT_USER_TOKEN);
}

#[test]
fn action_context_output_is_the_name_itself() {
    let runner = Runner::new();
    let parent = parent_kubeconfig();
    for name in ["qa \"blue\"", "50% 'off' \\ #1"] {
        let run = runner.run(&[
            ("binary", &bin().display().to_string()),
            ("parent-kubeconfig", &parent),
            ("cluster-id", CLUSTER_ID),
            ("child-token", CHILD_TOKEN),
            ("name", name),
        ]);
        masked_before_use(&run, &[CHILD_TOKEN]);
        exported(&runner, &run);
        assert_eq!(run.outputs["context"], name);
    }
}

#[test]
fn action_refuses_a_windows_runner_with_one_line() {
    // No Windows build exists: the step says so at once, installs nothing, writes nothing.
    let runner = Runner::new();
    let parent = parent_kubeconfig();
    let run = runner.run(&[
        ("RUNNER_OS", "Windows"),
        ("binary", &bin().display().to_string()),
        ("parent-kubeconfig", &parent),
        ("cluster-id", CLUSTER_ID),
        ("child-token", CHILD_TOKEN),
    ]);
    assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    let errors = errors(&run);
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert!(errors[0].contains("Windows runners are not supported"), "{}", errors[0]);
    assert!(run.env.is_empty() && run.outputs.is_empty(), "{:?} {:?}", run.env, run.outputs);
    not_printed(&run, &[CHILD_TOKEN]);
}

#[test]
fn action_error_annotation_carries_the_tools_error_line() {
    let runner = Runner::new();
    let parent = parent_kubeconfig();
    let run = runner.run(&[
        ("binary", &bin().display().to_string()),
        ("parent-kubeconfig", &parent),
        ("cluster-id", CLUSTER_ID),
        ("child-token", CHILD_TOKEN),
        ("child-server", "ftp://10.0.0.5"),
    ]);
    assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    let tool = run.stderr.lines().find_map(|l| l.strip_prefix("error: ")).expect("the tool's error line");
    let errors = errors(&run);
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert!(errors[0].starts_with("::error::clusternet-kubeconfig gen failed (exit "), "{}", errors[0]);
    assert!(errors[0].ends_with(&format!("): {}", tool.replace('%', "%25"))), "{} vs {tool}", errors[0]);
    not_printed(&run, &[CHILD_TOKEN]);
}

#[test]
fn action_accepts_a_base64_parent_kubeconfig() {
    let runner = Runner::new();
    let parent = fs::read_to_string(parent_kubeconfig())
        .unwrap()
        .replace("users:\n", &format!("users:\n- name: ci\n  user:\n    token: |-\n      {PARENT_USER_TOKEN}\n"))
        .replace("current-context: kubernetes-admin@kubernetes", "current-context: ci")
        .replace("contexts:\n", "contexts:\n- name: ci\n  context: {cluster: kubernetes, user: ci}\n");
    // As `base64` prints it (lines of 76) and as `base64 -w0` does.
    let wrapped = {
        let one = b64(&parent);
        let lines: Vec<String> = one.as_bytes().chunks(76).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
        lines.join("\n") + "\n"
    };
    for encoded in [b64(&parent), wrapped] {
        let run = runner.run(&[
            ("binary", &bin().display().to_string()),
            ("parent-kubeconfig", &encoded),
            ("cluster-id", CLUSTER_ID),
            ("child-token", CHILD_TOKEN),
            ("parent-auth", "keep"),
        ]);
        masked_before_export(&run, &[PARENT_USER_TOKEN, &b64(&parent)], &[PARENT_USER_TOKEN, CHILD_TOKEN]);
        let view = exported(&runner, &run);
        assert_eq!(only(&view, "users")["user"]["token"], PARENT_USER_TOKEN);
    }
}

#[test]
fn action_used_twice_in_a_job_keeps_both_contexts() {
    let runner = Runner::new();
    let parent = parent_kubeconfig();
    let binary = bin().display().to_string();
    let use_ = |kubeconfig: &str, name: &str, current: &str| {
        runner.run(&[
            ("KUBECONFIG", kubeconfig),
            ("binary", &binary),
            ("parent-kubeconfig", &parent),
            ("cluster-id", CLUSTER_ID),
            ("child-token", CHILD_TOKEN),
            ("name", name),
            ("set-current-context", current),
        ])
    };
    let first = use_("/nonexistent/ambient", "child-a", "");
    masked_before_use(&first, &[CHILD_TOKEN]);
    let second = use_(&first.env["KUBECONFIG"], "child-b", "");
    masked_before_use(&second, &[CHILD_TOKEN]);
    assert_eq!(second.env["KUBECONFIG"], format!("{}:{}", first.outputs["kubeconfig"], second.outputs["kubeconfig"]));
    assert_eq!(second.outputs["context"], "child-b");
    let view = |list: &str| -> serde_json::Value {
        let out = Command::new("kubectl")
            .args(["config", "view", "--raw", "-o", "json"])
            .env("KUBECONFIG", list)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let merged = view(&second.env["KUBECONFIG"]);
    let names: Vec<&str> = merged["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["child-a", "child-b"]);
    assert_eq!(merged["current-context"], "child-a", "a later use does not take over unless asked");
    // A step in between switches context: kubectl rewrites the first file (as YAML).
    let switch = Command::new("kubectl")
        .args(["config", "use-context", "child-b"])
        .env("KUBECONFIG", &second.env["KUBECONFIG"])
        .output()
        .unwrap();
    assert!(switch.status.success(), "{}", stderr(&switch));
    assert!(!fs::read_to_string(&first.outputs["kubeconfig"]).unwrap().starts_with('{'), "rewritten by kubectl");
    let third = use_(&second.env["KUBECONFIG"], "child-c", "true");
    masked_before_use(&third, &[CHILD_TOKEN]);
    assert_eq!(view(&third.env["KUBECONFIG"])["current-context"], "child-c");
    // The same name again would be hidden behind the first: refused.
    let again = use_(&third.env["KUBECONFIG"], "child-a", "");
    assert_eq!(again.out.status.code(), Some(1), "{}", again.stdout);
    assert!(errors(&again)[0].contains("already in KUBECONFIG"), "{}", again.stdout);
    assert!(again.env.is_empty());
    let kubeconfigs = runner.temp_listing().into_iter().filter(|p| p.ends_with("/kubeconfig")).count();
    assert_eq!(kubeconfigs, 3, "the refused step left its kubeconfig: {:?}", runner.temp_listing());
}

#[test]
fn action_names_the_input_at_fault_and_echoes_no_secret() {
    let runner = Runner::new();
    let binary = bin().display().to_string();
    let parent = parent_kubeconfig();
    let base = [("binary", binary.as_str()), ("parent-kubeconfig", parent.as_str())];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("child-token", CHILD_TOKEN)], "cluster-id (a child cluster's UUID) or cluster"),
        (&[("cluster-id", CLUSTER_ID), ("cluster", "c1"), ("child-token", CHILD_TOKEN)], "not both"),
        (&[("cluster-id", CLUSTER_ID)], "child credentials are required"),
        (
            &[("cluster-id", CLUSTER_ID), ("child-token", CHILD_TOKEN), ("child-client-key", "k")],
            "give one of child-token, child-client-certificate",
        ),
        (&[("cluster-id", CLUSTER_ID), ("child-client-key", "k")], "go together"),
        (
            &[("cluster-id", CLUSTER_ID), ("child-token", CHILD_TOKEN), ("parent-token", PARENT_TOKEN)],
            "parent-token needs parent-auth: token",
        ),
        (&[("cluster-id", CLUSTER_ID), ("child-token", CHILD_TOKEN), ("binary", "/nonexistent/x")], "binary: "),
        (
            &[("cluster-id", CLUSTER_ID), ("child-token", CHILD_TOKEN), ("parent-kubeconfig", PARENT_USER_TOKEN)],
            "parent-kubeconfig is neither a file",
        ),
        // The tool's own refusal: its error line, then the action's.
        (&[("cluster-id", "not-a-uuid"), ("child-token", CHILD_TOKEN)], "clusternet-kubeconfig gen failed"),
    ];
    for (inputs, needle) in cases {
        let mut all: Vec<(&str, &str)> = base.to_vec();
        for (name, value) in inputs.iter() {
            all.retain(|(n, _)| n != name);
            all.push((name, value));
        }
        let run = runner.run(&all);
        assert_eq!(run.out.status.code(), Some(1), "{needle}: {}{}", run.stdout, run.stderr);
        let errors: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("::error::")).collect();
        assert_eq!(errors.len(), 1, "{needle}: {}", run.stdout);
        assert!(!errors[0].contains("see its"), "{needle}: {}", errors[0]);
        assert!(errors[0].contains(needle), "{needle}: {}", errors[0]);
        not_printed(&run, &[CHILD_TOKEN, PARENT_TOKEN, PARENT_USER_TOKEN]);
        assert!(run.env.is_empty() && run.outputs.is_empty(), "{needle}");
    }
    assert!(runner.temp_listing().is_empty(), "{:?}", runner.temp_listing());
}

/// Every `uses:` of the workflows and the action, with its line.
fn uses_lines() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.push(repo().join(".github/actions/kubeconfig/action.yml"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let trimmed = line.trim_start().trim_start_matches("- ");
            if let Some(rest) = trimmed.strip_prefix("uses:") {
                out.push((file.display().to_string(), rest.trim().to_string()));
            }
        }
    }
    out
}

#[test]
fn workflows_pin_every_action_by_commit_and_grant_least_privilege() {
    let uses = uses_lines();
    assert!(uses.len() >= 8, "{uses:?}");
    for (file, value) in &uses {
        if value.starts_with("./") {
            continue;
        }
        // owner/repo[/path]@<40 hex> # <tag>
        let (action, comment) = value.split_once(" # ").unwrap_or((value, ""));
        let (name, reference) = action.split_once('@').unwrap_or_else(|| panic!("{file}: {value}: no ref"));
        assert!(name.split('/').count() >= 2, "{file}: {value}");
        assert!(
            reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{file}: {value} is not pinned to a full commit SHA"
        );
        assert!(comment.starts_with('v'), "{file}: {value}: name the tag in a comment");
    }
    for entry in fs::read_dir(repo().join(".github/workflows")).unwrap() {
        let path = entry.unwrap().path();
        let doc: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let file = path.display();
        assert_eq!(
            doc["permissions"],
            serde_yaml::from_str::<serde_yaml::Value>("contents: read").unwrap(),
            "{file}: top-level permissions"
        );
        for (name, job) in doc["jobs"].as_mapping().unwrap() {
            let granted = &job["permissions"];
            if granted.is_null() {
                continue;
            }
            let writes: Vec<&str> = granted
                .as_mapping()
                .unwrap_or_else(|| panic!("{file}: {name:?}: permissions as a map"))
                .iter()
                .filter(|(_, v)| v.as_str() == Some("write"))
                .map(|(k, _)| k.as_str().unwrap())
                .collect();
            // Only the release's publishing job writes, and only what it needs.
            assert!(file.to_string().ends_with("release.yml") && name.as_str() == Some("publish"), "{file}: {name:?}");
            assert_eq!(writes, ["contents", "id-token", "attestations"], "{file}");
        }
    }
}

#[test]
fn release_candidates_never_become_latest() {
    let text = fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let steps = doc["jobs"]["publish"]["steps"].as_sequence().unwrap();
    let release = steps.iter().find(|s| s["name"].as_str() == Some("The release")).unwrap();
    let script = release["run"].as_str().unwrap();
    // Run the step's own choice of flags for each kind of version, with a stand-in gh.
    let dir = tempfile::tempdir().unwrap();
    let gh = dir.path().join("gh");
    fs::write(&gh, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    fs::set_permissions(&gh, fs::Permissions::from_mode(0o755)).unwrap();
    for (version, expected) in [
        ("1.2.0-rc.1", &["--prerelease", "--latest=false"][..]),
        ("1.2.0-beta", &["--prerelease", "--latest=false"][..]),
        ("1.2.0", &["--latest"][..]),
    ] {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(dir.path())
            .env("PATH", format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap()))
            .env("VERSION", version)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let args: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        let tail: Vec<&str> =
            args.iter().skip_while(|a| *a != "--generate-notes").skip(1).map(String::as_str).collect();
        assert_eq!(tail, expected, "{version}: {args:?}");
        assert!(!args.iter().any(|a| a == "--latest") || !version.contains('-'), "{version}");
    }
}

#[test]
fn action_yml_passes_every_input_to_the_script() {
    let text = fs::read_to_string(repo().join(".github/actions/kubeconfig/action.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let script = fs::read_to_string(repo().join(".github/actions/kubeconfig/action.sh")).unwrap();
    let env = &doc["runs"]["steps"][0]["env"];
    for (name, _) in doc["inputs"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let var = format!("INPUT_{}", name.to_uppercase().replace('-', "_"));
        assert_eq!(env[var.as_str()].as_str(), Some(format!("${{{{ inputs.{name} }}}}").as_str()), "{var}");
        assert!(script.contains(&var), "action.sh never reads {var}");
    }
}

#[test]
fn action_passes_hub_credentials_and_a_token_request_to_gen() {
    // A stand-in that records its argv and fails as the tool does (the
    // example parent is not on loopback: nothing may dial it); the lab test
    // (tests/lab/action.rs) runs the real thing.
    let runner = Runner::new();
    runner.fake_tool("clusternet-kubeconfig", "echo 'error: stand-in: no parent here' >&2\nexit 1");
    let parent = parent_kubeconfig();
    let run = runner.run(&[
        ("binary", &runner.path("bin/clusternet-kubeconfig").display().to_string()),
        ("parent-kubeconfig", &parent),
        ("cluster", "child-a"),
        ("namespace", "fleet"),
        ("child-credentials", "hub"),
        ("child-token-request", "ci/deployer"),
        ("child-token-ttl", "30m"),
    ]);
    assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    assert_eq!(errors(&run), ["::error::clusternet-kubeconfig gen failed (exit 1): stand-in: no parent here"]);
    let argv = runner.argv("clusternet-kubeconfig").unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    let out = runner.path("temp");
    let out_file = argv.last().unwrap();
    assert!(Path::new(out_file).starts_with(&out), "{argv:?}");
    assert_eq!(
        argv[..argv.len() - 1],
        [
            "gen",
            "--kubeconfig",
            &parent,
            "--cluster",
            "child-a",
            "--namespace",
            "fleet",
            "--child-credentials",
            "hub",
            "--child-token-request",
            "ci/deployer",
            "--child-token-ttl",
            "30m",
            "--parent-auth",
            "anonymous",
            "-o",
            "json",
            "--output-file"
        ]
    );
    // Two sources of child credentials are refused before anything runs.
    let both = runner.run(&[
        ("binary", &bin().display().to_string()),
        ("parent-kubeconfig", &parent),
        ("cluster", "child-a"),
        ("child-credentials", "hub"),
        ("child-token", CHILD_TOKEN),
    ]);
    assert_eq!(both.out.status.code(), Some(1));
    assert!(errors(&both)[0].contains("give one of child-token"), "{}", both.stdout);
    not_printed(&both, &[CHILD_TOKEN]);
}

/// Keyless: the parent's URL and CA as inputs (no secret), `parent-auth:
/// oidc` with an audience; the exported kubeconfig's exec entry fetches the
/// job's token from the Actions endpoint (testkit's stand-in, trusted via
/// SSL_CERT_FILE), and kubectl sends it to the parent (a recorder standing in).
#[test]
fn action_keyless_oidc_needs_only_the_parents_url_and_ca() {
    use testkit::oidc::Issuer;
    let request_token = "actions-request-token-5e0a91c4";
    let issuer = Issuer::generated(request_token).unwrap();
    let parent = testkit::Recorder::start(Default::default()).unwrap();
    let runner = Runner::new();
    let oidc_ca = runner.path("oidc-ca.crt");
    fs::write(&oidc_ca, &issuer.ca_pem).unwrap();
    let url = issuer.actions_url("repository=octo-org/octo-repo");
    let job = [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token),
        ("SSL_CERT_FILE", oidc_ca.to_str().unwrap()),
    ];
    let binary = bin().display().to_string();
    let inputs = [
        ("binary", binary.as_str()),
        ("parent-server", &parent.url()),
        ("parent-certificate-authority", &parent.ca_pem()),
        ("cluster-id", CLUSTER_ID),
        ("child-token", CHILD_TOKEN),
        ("parent-auth", "oidc"),
        ("audience", "clusternet-ci"),
    ];
    let run = runner.run(&[&inputs[..], &job[..]].concat());
    masked_before_use(&run, &[CHILD_TOKEN, request_token]);
    let view = exported(&runner, &run);
    let user = &only(&view, "users")["user"];
    assert_eq!(user["exec"]["args"], serde_json::json!(["oidc-token", "--audience", "clusternet-ci"]), "{user}");
    assert!(user.get("token").is_none() && user.get("username").is_none(), "no parent credential: {user}");
    let cluster = &only(&view, "clusters")["cluster"];
    assert_eq!(cluster["server"], proxy_server(&parent.url(), "direct"));
    // A later step: kubectl runs the entry with the job's environment.
    let out = Command::new("kubectl")
        .args(["--kubeconfig", &run.env["KUBECONFIG"], "get", "ns"])
        .env_remove("KUBECONFIG")
        .envs(job)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sent: Vec<String> =
        parent.requests().iter().filter_map(|r| r.header("authorization").map(str::to_string)).collect();
    let bearer = sent.first().and_then(|h| h.strip_prefix("Bearer ")).unwrap_or_else(|| panic!("{sent:?}"));
    let claims = {
        use base64::Engine as _;
        let payload = bearer.split('.').nth(1).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
        serde_json::from_slice::<serde_json::Value>(&raw).unwrap()
    };
    assert_eq!(claims["aud"], "clusternet-ci");
    assert_eq!(claims["iss"], issuer.url());
    assert_eq!(claims["repository"], "octo-org/octo-repo");
}

/// A job without `id-token: write`, an audience without `parent-auth: oidc`,
/// a parent URL without its CA: one line each, nothing exported.
#[test]
fn action_keyless_inputs_are_checked() {
    let runner = Runner::new();
    let binary = bin().display().to_string();
    let ca = fs::read_to_string(repo().join("tests/fixtures/pki/ca.crt")).unwrap();
    let base = [("binary", binary.as_str()), ("cluster-id", CLUSTER_ID), ("child-token", CHILD_TOKEN)];
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("parent-server", "https://127.0.0.1:6443"),
                ("parent-certificate-authority", &ca),
                ("parent-auth", "oidc"),
                ("audience", "a"),
            ],
            "permissions: id-token: write",
        ),
        (
            &[
                ("parent-server", "https://127.0.0.1:6443"),
                ("parent-certificate-authority", &ca),
                ("parent-auth", "oidc"),
            ],
            "needs audience",
        ),
        (&[("parent-kubeconfig", &parent_kubeconfig()), ("audience", "a")], "audience needs parent-auth: oidc"),
        (&[("parent-server", "https://127.0.0.1:6443")], "parent-server needs parent-certificate-authority"),
    ];
    for (inputs, needle) in cases {
        let run = runner.run(&[&base[..], inputs].concat());
        assert_eq!(run.out.status.code(), Some(1), "{needle}: {}{}", run.stdout, run.stderr);
        let errs = errors(&run);
        assert_eq!(errs.len(), 1, "{needle}: {}", run.stdout);
        assert!(errs[0].contains(needle), "{needle}: {}", errs[0]);
        assert!(run.env.is_empty(), "nothing exported");
        not_printed(&run, &[CHILD_TOKEN]);
    }
}
