//! kubectl is the oracle: every kubectl on this machine reads the fixtures in
//! `tests/fixtures/parity/` and what this tool wrote from them, and must see
//! the same thing.
//!
//! - `merge/`: merge targets kubectl reads. After `gen --merge-into`, every
//!   kubectl still reads the file, and `kubectl config view --raw -o json`
//!   of everything but the generated entries is what it was before.
//! - `parent/`: parents kubectl reads. `gen` succeeds; the generated cluster
//!   is kubectl's `--minify --flatten` view of the parent's cluster but for
//!   the server, and the context keeps the namespace and extensions.
//! - `refused/`: files kubectl refuses. `gen` refuses them as a parent (one
//!   `error:` line) and as a merge target (left byte for byte unchanged).
//! - `list/`: files kubectl tolerates in a KUBECONFIG list; `gen` does too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::kubectl::{self, Kubectl};
use crate::support::{CLUSTER_ID, Scratch, stderr};

const GENERATED: &str = "gen";

pub fn kubectls() -> Vec<Kubectl> {
    let found = kubectl::find();
    assert!(!found.is_empty(), "no kubectl found: the parity suite needs kubectl on PATH");
    found
}

/// The files of `tests/fixtures/<kind>`, sorted.
pub fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(kind);
    let mut files: Vec<PathBuf> =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// `kubectl config view --raw -o json [extra]`, or kubectl's error.
pub fn view(k: &Kubectl, path: &Path, extra: &[&str]) -> Result<Value, String> {
    let mut args = vec!["config", "view", "--raw", "-o", "json"];
    args.extend_from_slice(extra);
    let out = k.run(path, &args);
    if !out.status.success() {
        return Err(kubectl::describe(&out));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("kubectl printed no JSON: {e}"))
}

/// A view without the generated entries (and the current context when the
/// merge set it), for comparing everything else.
fn untouched(view: &Value, drop_current: bool) -> Value {
    let mut view = view.clone();
    for list in ["clusters", "contexts", "users"] {
        if let Some(items) = view[list].as_array_mut() {
            items.retain(|item| item["name"] != GENERATED);
            if items.is_empty() {
                view[list] = Value::Null;
            }
        }
    }
    if drop_current {
        view["current-context"] = Value::Null;
    }
    view
}

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.output().expect("run clusternet-kubeconfig")
}

/// `gen` with the scratch parent and a child token, named [`GENERATED`].
fn generate(s: &Scratch, extra: &[&str]) -> Output {
    let mut args = vec!["--token-file", "child.token", "--name", GENERATED];
    args.extend_from_slice(extra);
    run(&mut s.generate(&args))
}

/// One case against every kubectl; problems are collected, not panicked on,
/// so that the report lists every failing case.
pub fn merge_case(fixture: &Path, kubectls: &[Kubectl]) -> Vec<String> {
    let case = name(fixture);
    let s = Scratch::new();
    let target = s.path("target.yaml");
    fs::copy(fixture, &target).unwrap();
    let before: Vec<Value> = match kubectls.iter().map(|k| view(k, &target, &[])).collect() {
        Ok(views) => views,
        Err(e) => return vec![format!("merge/{case}: kubectl does not read the fixture itself: {e}")],
    };
    let out = generate(&s, &["--merge-into", "target.yaml"]);
    if !out.status.success() {
        return vec![format!("merge/{case}: gen failed: {}", kubectl::describe(&out))];
    }
    let mut problems = Vec::new();
    for (k, before) in kubectls.iter().zip(&before) {
        let after = match view(k, &target, &[]) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("merge/{case}: {} cannot read the merged file: {e}", k.label()));
                continue;
            }
        };
        let set_current = before["current-context"].as_str().unwrap_or("").is_empty();
        if untouched(before, set_current) != untouched(&after, set_current) {
            problems.push(format!(
                "merge/{case}: {} sees the untouched entries differently:\n before {}\n after  {}",
                k.label(),
                untouched(before, set_current),
                untouched(&after, set_current)
            ));
        }
        let generated = after["clusters"].as_array().into_iter().flatten().filter(|c| c["name"] == GENERATED).count();
        if generated != 1 {
            problems.push(format!("merge/{case}: {} sees {generated} generated clusters", k.label()));
        }
    }
    problems
}

fn parent_case(fixture: &Path, kubectls: &[Kubectl]) -> Vec<String> {
    parent_text_case(&name(fixture), &fs::read(fixture).unwrap(), &|_| {}, kubectls)
}

/// A parent given as bytes; `prepare` may add the files it references.
pub fn parent_text_case(case: &str, parent: &[u8], prepare: &dyn Fn(&Scratch), kubectls: &[Kubectl]) -> Vec<String> {
    let s = Scratch::new();
    fs::write(s.path("parent.yaml"), parent).unwrap();
    prepare(&s);
    let out = generate(&s, &["--output-file", "out.yaml"]);
    if !out.status.success() {
        return vec![format!("parent/{case}: gen failed: {}", kubectl::describe(&out))];
    }
    let mut problems = Vec::new();
    for k in kubectls {
        let (parent, generated) =
            match (view(k, &s.path("parent.yaml"), &["--minify", "--flatten"]), view(k, &s.path("out.yaml"), &[])) {
                (Ok(p), Ok(g)) => (p, g),
                (p, g) => {
                    problems.push(format!(
                        "parent/{case}: {}: parent {:?} / generated {:?}",
                        k.label(),
                        p.err(),
                        g.err()
                    ));
                    continue;
                }
            };
        // Every entry carries the provenance, read by kubectl exactly as we
        // wrote it; apart from it, the entries are the parent's.
        let written: serde_json::Value =
            serde_yaml::from_str(&fs::read_to_string(s.path("out.yaml")).unwrap()).unwrap();
        let record = crate::support::the_provenance(&written);
        if crate::support::the_provenance(&generated) != record {
            problems.push(format!("parent/{case}: {}: provenance reads back differently from {record}", k.label()));
        }
        let generated = crate::support::without_provenance(generated);
        let mut want = parent["clusters"][0]["cluster"].clone();
        let mut got = generated["clusters"][0]["cluster"].clone();
        want.as_object_mut().map(|o| o.remove("server"));
        got.as_object_mut().map(|o| o.remove("server"));
        if want != got {
            problems.push(format!("parent/{case}: {}: cluster {got} is not the parent's {want}", k.label()));
        }
        let (pc, gc) = (&parent["contexts"][0]["context"], &generated["contexts"][0]["context"]);
        for field in ["namespace", "extensions"] {
            if pc[field] != gc[field] {
                problems.push(format!(
                    "parent/{case}: {}: context {field} {} is not the parent's {}",
                    k.label(),
                    gc[field],
                    pc[field]
                ));
            }
        }
    }
    problems
}

fn refused_case(fixture: &Path, kubectls: &[Kubectl]) -> Vec<String> {
    let case = name(fixture);
    let mut problems = Vec::new();
    for k in kubectls {
        if view(k, fixture, &[]).is_ok() {
            problems.push(format!("refused/{case}: {} reads it: the fixture is wrong", k.label()));
        }
    }
    let s = Scratch::new();
    fs::copy(fixture, s.path("bad.yaml")).unwrap();
    let out = run(&mut s.bare(&[
        "gen",
        "--kubeconfig",
        "bad.yaml",
        "--cluster-id",
        CLUSTER_ID,
        "--token-file",
        "child.token",
    ]));
    check_one_error(&format!("refused/{case} as parent"), &out, &mut problems);
    let original = fs::read(fixture).unwrap();
    let out = generate(&s, &["--merge-into", "bad.yaml"]);
    check_one_error(&format!("refused/{case} as merge target"), &out, &mut problems);
    if fs::read(s.path("bad.yaml")).unwrap() != original {
        problems.push(format!("refused/{case}: the merge target was changed"));
    }
    problems
}

pub fn check_one_error(what: &str, out: &Output, problems: &mut Vec<String>) {
    let err = stderr(out);
    let lines = err.lines().filter(|l| l.starts_with("error:")).count();
    if out.status.code() != Some(1) || lines != 1 || err.contains("panicked") || !out.stdout.is_empty() {
        problems.push(format!("{what}: expected exit 1 and one error line: {}", kubectl::describe(out)));
    }
}

fn list_case(fixture: &Path, kubectls: &[Kubectl]) -> Vec<String> {
    let case = name(fixture);
    let s = Scratch::new();
    fs::copy(fixture, s.path("extra.yaml")).unwrap();
    let list = format!("{}:{}", s.path("extra.yaml").display(), s.path("parent.yaml").display());
    let mut problems = Vec::new();
    for k in kubectls {
        let out = k.run(&s.path("extra.yaml"), &["config", "view"]);
        if !out.status.success() {
            problems.push(format!("list/{case}: {} does not read it: {}", k.label(), kubectl::describe(&out)));
        }
    }
    let out = run(s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]).env("KUBECONFIG", &list));
    if !out.status.success() {
        problems.push(format!(
            "list/{case}: gen failed with KUBECONFIG=extra.yaml:parent.yaml: {}",
            kubectl::describe(&out)
        ));
    }
    problems
}

/// Runs every case of one kind on a few threads and fails with all problems.
pub fn suite(kind: &str, case: fn(&Path, &[Kubectl]) -> Vec<String>, at_least: usize) {
    let kubectls = kubectls();
    let files = fixtures(kind);
    assert!(files.len() >= at_least, "{kind}: {} fixtures, expected at least {at_least}", files.len());
    let problems: Vec<String> = kubectl::parallel(&files, 3, |f| case(f, &kubectls)).into_iter().flatten().collect();
    assert!(
        problems.is_empty(),
        "{} problem(s) with {} kubectl(s):\n{}",
        problems.len(),
        kubectls.len(),
        problems.join("\n")
    );
}

#[test]
fn merge_targets_mean_the_same_to_kubectl_afterwards() {
    suite("parity/merge", merge_case, 30);
}

#[test]
fn parents_mean_to_us_what_they_mean_to_kubectl() {
    suite("parity/parent", parent_case, 14);
}

#[test]
fn what_kubectl_refuses_is_refused_and_left_alone() {
    suite("parity/refused", refused_case, 14);
}

#[test]
fn kubeconfig_lists_tolerate_what_kubectl_tolerates() {
    suite("parity/list", list_case, 7);
}
