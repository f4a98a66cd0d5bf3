//! `exec` against the lab: `--all -l` over the lab's ManagedClusters and
//! real kubectl as the command, reaching the canned children and the real
//! child (`child-real`) through the stand-in, each with its own token.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

/// A fresh token of the real child's service account.
fn child_token() -> String {
    let args = ["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA, "--duration", "1h"];
    kubectl_ok(lab().var("LAB_CHILD_KUBECONFIG"), &args).trim().to_string()
}

/// `exec --kubeconfig <lab admin> <args>` with TMPDIR and HOME (kubectl's
/// discovery cache) in `dir`.
fn exec(dir: &Path, args: &[&str]) -> Output {
    let _shared = shared();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    without_ambient(Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig")).args(["exec", "--kubeconfig", admin()]))
        .args(args)
        .env("TMPDIR", dir.join("tmp"))
        .env("HOME", dir)
        .output()
        .expect("run clusternet-kubeconfig exec")
}

/// The lines tagged with `label`, without the tag.
fn tagged(text: &str, label: &str) -> String {
    let prefix = format!("{label}\t");
    text.lines().filter_map(|l| l.strip_prefix(&prefix)).map(|l| format!("{l}\n")).collect()
}

fn nothing_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir.join("tmp")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn all_with_a_selector_fans_out_kubectl_to_each_child() {
    let lab = lab();
    let dir = tempdir();
    let (a, b, real) = (unique("exec-a"), unique("exec-b"), child_token());
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!("clusters:\n  child-a: {{token: {a}}}\n  child-b: {{token: {b}}}\n  child-real: {{token: {real}}}\n"),
    );
    let selector = format!("clusters.clusternet.io/cluster-id in ({},{},{})", CHILD_A.id, CHILD_B.id, CHILD_REAL.id);
    let script =
        r#"kubectl version -o json && echo "context $(kubectl config current-context) of $CLUSTERNET_CLUSTER_NAME""#;
    let out = exec(
        dir.path(),
        &[
            "--all",
            "-l",
            &selector,
            "--credentials",
            creds.to_str().unwrap(),
            "--parallel",
            "3",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{se}\n{so}");
    for secret in [&a, &b, &real] {
        assert!(!so.contains(secret.as_str()) && !se.contains(secret.as_str()), "a token was printed");
    }
    for (seed, version) in [
        (CHILD_A, testkit::CHILD_GIT_VERSION),
        (CHILD_B, testkit::CHILD_GIT_VERSION),
        (CHILD_REAL, lab.var("LAB_K8S_VERSION")),
    ] {
        let mine = tagged(&so, seed.name);
        let (json_part, last) = mine.trim_end().rsplit_once('\n').unwrap();
        let v = json(json_part);
        assert_eq!(v["serverVersion"]["gitVersion"], version, "{}: {mine}", seed.name);
        assert_eq!(last, format!("context clusternet-{} of {}", seed.name, seed.name));
    }
    // The requests went to each child with its own token.
    for (seed, token) in [(CHILD_A, &a), (CHILD_B, &b), (CHILD_REAL, &real)] {
        let recs = records_with("x-remote-extra-clusternet-token", token, 1);
        let want = format!("{PROXY_PREFIX}{}/proxy/direct/version", seed.id);
        assert!(recs.iter().any(|r| r.path == want), "{}: no {want}: {recs:?}", seed.name);
    }
    let summary = json(so.lines().last().unwrap());
    assert_eq!(summary["exitCode"], 0);
    let clusters: Vec<(&str, &str, &str)> = summary["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cluster"].as_str().unwrap(), c["clusterId"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        clusters,
        [
            (CHILD_A.name, CHILD_A.id, "succeeded"),
            (CHILD_B.name, CHILD_B.id, "succeeded"),
            (CHILD_REAL.name, CHILD_REAL.id, "succeeded")
        ]
    );
    nothing_left(dir.path());
}

#[test]
fn one_real_child_output_and_status_pass_through() {
    let dir = tempdir();
    let token = write(dir.path(), "child.token", &format!("{}\n", child_token()));
    let token = token.to_str().unwrap();
    let out = exec(
        dir.path(),
        &[
            "--cluster",
            CHILD_REAL.name,
            "--token-file",
            token,
            "--",
            "kubectl",
            "get",
            "ns",
            CHILD_ONLY_NAMESPACE,
            "-o",
            "name",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("namespace/{CHILD_ONLY_NAMESPACE}\n"));
    // kubectl's own failure and status, untagged.
    let out = exec(
        dir.path(),
        &["--cluster", CHILD_REAL.name, "--token-file", token, "--", "kubectl", "get", "ns", "no-such-ns"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("Error from server (NotFound)"), "{err}");
    nothing_left(dir.path());
}

#[test]
fn a_child_that_refuses_fails_its_row_only() {
    let dir = tempdir();
    let a = unique("exec-refused-a");
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!("clusters:\n  child-a: {{token: {a}}}\n  child-real: {{token: not-a-valid-token}}\n"),
    );
    let out = exec(
        dir.path(),
        &[
            "--cluster",
            CHILD_REAL.name,
            "--cluster",
            CHILD_A.name,
            "--credentials",
            creds.to_str().unwrap(),
            "--",
            "kubectl",
            "get",
            "ns",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(tagged(&se, CHILD_REAL.name).contains("error: You must be logged in to the server"), "{se}");
    assert!(tagged(&so, CHILD_A.name).contains(&format!("namespace/{}", testkit::CHILD_NAMESPACE)), "{so}");
    let table: Vec<Vec<&str>> =
        se.lines().skip_while(|l| !l.starts_with("CLUSTER ")).skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        table.iter().map(|r| (r[0], r[1], r[2])).collect::<Vec<_>>(),
        [(CHILD_REAL.name, "failed", "1"), (CHILD_A.name, "succeeded", "0")]
    );
    nothing_left(dir.path());
}

/// Fail closed: one selected ManagedCluster without an entry in the
/// credentials file runs nothing anywhere (125), and the JSON summary lists
/// every selected cluster as skipped, that one with its reason. With
/// `--allow-skip` the others run and it is listed, no failure.
#[test]
fn a_selected_cluster_without_credentials_runs_nothing_unless_allow_skip() {
    let dir = tempdir();
    let a = unique("exec-closed-a");
    let creds = write(dir.path(), "creds.yaml", &format!("clusters:\n  child-a: {{token: {a}}}\n"));
    let selector = format!("clusters.clusternet.io/cluster-id in ({},{})", CHILD_A.id, CHILD_B.id);
    let run = |extra: &[&str]| {
        let base = ["--all", "-l", &selector, "--credentials", creds.to_str().unwrap(), "-o", "json"];
        exec(dir.path(), &[&base[..], extra, &["--", "sh", "-c", "echo ran"]].concat())
    };
    let out = run(&[]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(125), "{se}");
    assert!(!so.contains("ran"), "nothing runs: {so}");
    assert!(se.lines().any(|l| l.starts_with("error: no credentials for") && l.contains(CHILD_B.id)), "{se}");
    let summary = json(so.lines().last().unwrap());
    assert_eq!(summary["exitCode"], 125);
    let rows: Vec<(&str, &str, &str)> = summary["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cluster"].as_str().unwrap(), c["status"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), [("child-a", "skipped"), ("child-b", "skipped")]);
    assert!(rows[0].2.starts_with("not run:") && rows[1].2.starts_with("no credentials for"), "{rows:?}");

    let out = run(&["--allow-skip"]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert_eq!(tagged(&so, "child-a"), "ran\n");
    let summary = json(so.lines().last().unwrap());
    let rows: Vec<(&str, &str)> = summary["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cluster"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [("child-a", "succeeded"), ("child-b", "skipped")]);
    assert!(!so.contains(&a) && !se.contains(&a), "a token was printed");
    nothing_left(dir.path());
}
