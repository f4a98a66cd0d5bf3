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

/// A job's runner: its files, a workspace and a `bin` dir first on PATH.
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
        for sub in ["temp", "workspace", "bin"] {
            fs::create_dir_all(runner.path(sub)).unwrap();
        }
        for file in ["env", "output", "path"] {
            fs::write(runner.path(file), "").unwrap();
        }
        runner
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
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

    /// .github/actions/kubeconfig/action.sh with `inputs` (action.yml's names), as the runner starts a
    /// Linux x64 step: a clean environment plus the runner's variables.
    fn run(&self, inputs: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join(".github/actions/kubeconfig/action.sh"))
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
            // Upper case: a variable of the step itself (ACTION_REF), not an input.
            if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
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

    /// The action installing `version` from `releases`, then a token kubeconfig.
    fn install(&self, version: &str, releases: &str) -> Run {
        self.install_as(version, "", releases)
    }

    /// As `install`, by the action checked out at `action_ref` (`uses: ...@<ref>`).
    fn install_as(&self, version: &str, action_ref: &str, releases: &str) -> Run {
        let parent = parent_kubeconfig();
        self.run(&[
            ("ACTION_REF", action_ref),
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

    /// A release `version` under `releases/`, laid out as GitHub serves it
    /// (`download/v<version>/...` and `latest/download/...`), holding the binary
    /// under test in the release archive and `sums` as SHA256SUMS (None: the real sums).
    fn release(&self, version: &str, sums: Option<&str>) -> String {
        let stage = self.path(&format!("stage/clusternet-kubeconfig-{TARGET}"));
        fs::create_dir_all(&stage).unwrap();
        let binary = bin();
        for (from, name) in [
            (binary.as_path(), "clusternet-kubeconfig"),
            (&repo().join("LICENSE"), "LICENSE"),
            (&repo().join("README.md"), "README.md"),
        ] {
            std::os::unix::fs::symlink(from, stage.join(name)).unwrap();
        }
        let dirs = [self.path(&format!("releases/download/v{version}")), self.path("releases/latest/download")];
        for dir in &dirs {
            fs::create_dir_all(dir).unwrap();
        }
        // -h: the files behind the links; gzip -1: a debug binary is large.
        let tar = Command::new("tar")
            .args(["-I", "gzip -1", "-chf"])
            .arg(dirs[0].join(ARCHIVE))
            .arg("-C")
            .arg(self.path("stage"))
            .arg(format!("clusternet-kubeconfig-{TARGET}"))
            .status()
            .unwrap();
        assert!(tar.success());
        fs::hard_link(dirs[0].join(ARCHIVE), dirs[1].join(ARCHIVE)).unwrap();
        let real = Command::new("sha256sum").arg(ARCHIVE).current_dir(&dirs[0]).output().unwrap();
        assert!(real.status.success());
        for dir in &dirs {
            fs::write(dir.join("SHA256SUMS"), sums.map(str::to_owned).unwrap_or_else(|| stdout(&real))).unwrap();
        }
        format!("file://{}", self.path("releases").display())
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
        proxy_server("https://10.0.0.10:6443", "https/10.0.0.5:6443").as_str()
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

#[test]
fn action_installs_the_release_archive_after_checking_its_sum() {
    // (version input, the action's ref, where the archive must come from)
    let cases = [
        ("v0.1.0", "", "download/v0.1.0"),
        ("latest", "v0.1.0", "latest/download"),
        ("", "v0.1.0", "download/v0.1.0"),
        ("", "main", "latest/download"),
        ("", "", "latest/download"),
    ];
    for (version, action_ref, layout) in cases {
        let runner = Runner::new();
        runner.fake_tool("cargo", "exit 1");
        let releases = runner.release("0.1.0", None);
        // Only the expected place has the archive.
        for other in ["download/v0.1.0", "latest/download"].into_iter().filter(|l| *l != layout) {
            fs::remove_file(runner.path(&format!("releases/{other}/{ARCHIVE}"))).unwrap();
        }
        let run = runner.install_as(version, action_ref, &releases);
        masked_before_use(&run, &[CHILD_TOKEN]);
        assert!(run.stdout.contains(&format!("{ARCHIVE}: checksum OK")), "{}", run.stdout);
        exported(&runner, &run);
        let installed = PathBuf::from(&run.outputs["binary"]);
        assert!(installed.starts_with(runner.path("temp")), "{}", installed.display());
        assert_eq!(fs::read(&installed).unwrap(), fs::read(bin()).unwrap(), "{layout}");
        assert_eq!(run.path, format!("{}\n", installed.parent().unwrap().display()));
        assert_eq!(runner.argv("cargo"), None, "no fallback when the archive is there");
    }
}

#[test]
fn action_refuses_an_archive_whose_sum_does_not_match() {
    let runner = Runner::new();
    runner.fake_tool("cargo", "exit 1");
    let wrong = format!("{}  {ARCHIVE}\n", "0".repeat(64));
    let releases = runner.release("0.1.0", Some(&wrong));
    let run = runner.install("0.1.0", &releases);
    assert_eq!(run.out.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    let errors: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("::error::")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert!(errors[0].contains(&format!("checksum mismatch for {ARCHIVE}")), "{}", errors[0]);
    assert!(errors[0].contains(&"0".repeat(64)), "{}", errors[0]);
    // Nothing installed, nothing exported, no fallback to building it.
    assert!(run.env.is_empty() && run.outputs.is_empty() && run.path.is_empty());
    assert_eq!(runner.argv("cargo"), None);
    assert!(runner.temp_listing().is_empty(), "{:?}", runner.temp_listing());
    not_printed(&run, &[CHILD_TOKEN]);
}

#[test]
fn action_builds_with_cargo_install_when_the_release_has_no_archive() {
    let runner = Runner::new();
    // Stands in for `cargo install --root DIR`: puts the binary under test in DIR/bin.
    runner.fake_tool(
        "cargo",
        &format!(
            "while [ \"$1\" != --root ]; do shift; done\nmkdir -p \"$2/bin\"\nln -s '{}' \"$2/bin/clusternet-kubeconfig\"",
            bin().display()
        ),
    );
    fs::create_dir_all(runner.path("releases/download/v0.2.0")).unwrap();
    let releases = format!("file://{}", runner.path("releases").display());
    let run = runner.install("0.2.0", &releases);
    masked_before_use(&run, &[CHILD_TOKEN]);
    assert!(run.stdout.contains(&format!("::warning::no {ARCHIVE} in release 0.2.0")), "{}", run.stdout);
    let argv = runner.argv("cargo").unwrap();
    let root = argv.lines().nth(3).unwrap();
    assert_eq!(
        argv,
        format!("install\n--locked\n--root\n{root}\n--version\n0.2.0\nclusternet-kubeconfig\n"),
        "cargo install, pinned to the version"
    );
    exported(&runner, &run);
    assert_eq!(run.outputs["binary"], format!("{root}/bin/clusternet-kubeconfig"));
    assert_eq!(run.path, format!("{root}/bin\n"));
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
            "give child-token or child-client-certificate",
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
        assert!(errors[0].contains(needle), "{needle}: {}", errors[0]);
        not_printed(&run, &[CHILD_TOKEN, PARENT_TOKEN, PARENT_USER_TOKEN]);
        assert!(run.env.is_empty() && run.outputs.is_empty(), "{needle}");
    }
    assert!(runner.temp_listing().is_empty(), "{:?}", runner.temp_listing());
}
