//! `gen --dry-run`: the plan it prints is what the real write then does (as
//! kubectl reads the file before and after), secrets are redacted, and
//! nothing at all is written: no file, no lock, no temporary file.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::support::*;

/// `(kind, name, action)` of each entry line of a dry run.
fn plan_lines(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with("other entries"))
        .map(|l| {
            let (kind, rest) = l.split_once(' ').unwrap();
            let (name, rest) = rest.strip_prefix('"').unwrap().split_once('"').unwrap();
            let action = rest.trim_start().split([':', ' ']).next().unwrap();
            (kind.to_string(), name.to_string(), action.to_string())
        })
        .collect()
}

/// The `current-context:` line of a dry run: `(before, after)`.
fn current_line(text: &str) -> (String, String) {
    let line = text.lines().find_map(|l| l.strip_prefix("current-context: ")).expect("a current-context line");
    match line.split_once(" -> ") {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => {
            let same = line.strip_suffix(" (unchanged)").unwrap().to_string();
            (same.clone(), same)
        }
    }
}

/// An entry of a kubectl view by kind and name.
fn entry<'a>(view: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    view[format!("{kind}s")].as_array().and_then(|items| items.iter().find(|i| i["name"] == name))
}

fn quoted_current(view: &Value) -> String {
    match view["current-context"].as_str() {
        Some(c) if !c.is_empty() => format!("{c:?}"),
        _ => "(none)".into(),
    }
}

/// Each line of the plan holds between the kubectl views before and after
/// the real write.
fn check_plan_against_views(plan: &str, before: &Value, after: &Value) {
    let lines = plan_lines(plan);
    assert!(!lines.is_empty(), "{plan}");
    for (kind, name, action) in &lines {
        let (was, now) = (entry(before, kind, name), entry(after, kind, name));
        match action.as_str() {
            "added" => assert!(was.is_none() && now.is_some(), "{kind} {name} added? {before} {after}"),
            "updated" => assert!(was.is_some() && now.is_some() && was != now, "{kind} {name} updated?"),
            "unchanged" => assert!(was.is_some() && was == now, "{kind} {name} unchanged?"),
            "removed" => assert!(was.is_some() && now.is_none(), "{kind} {name} removed?"),
            other => panic!("unknown action {other} in {plan}"),
        }
    }
    // Every entry that changed is in the plan.
    for kind in ["cluster", "context", "user"] {
        let names = |v: &Value| -> Vec<String> {
            v[format!("{kind}s")].as_array().map_or(vec![], |a| a.iter().map(|i| i["name"].to_string()).collect())
        };
        for name in names(before).into_iter().chain(names(after)) {
            let name: String = serde_json::from_str(&name).unwrap();
            if entry(before, kind, &name) != entry(after, kind, &name) {
                assert!(lines.iter().any(|(k, n, _)| k == kind && *n == name), "{kind} {name} changed, not in {plan}");
            }
        }
    }
    assert_eq!(current_line(plan), (quoted_current(before), quoted_current(after)), "{plan}");
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// A target with the parent's entries (current context `main`) and an old
/// generated entry with another token.
fn target(s: &Scratch) -> std::path::PathBuf {
    s.write("old.token", "SECRET-old-token\n");
    s.write("target.yaml", &s.read("parent.yaml"));
    ok(&mut s.generate(&["--token-file", "old.token", "--merge-into", "target.yaml"]));
    s.path("target.yaml")
}

/// A new entry `fresh` merged into target.yaml and made current, plus `extra`.
fn merge_fresh(s: &Scratch, extra: &[&str]) -> std::process::Output {
    let mut cmd = s.generate(&["--token-file", "child.token", "--name", "fresh", "--merge-into", "target.yaml"]);
    cmd.arg("--set-current-context").args(extra).output().unwrap()
}

#[test]
fn merge_dry_run_writes_nothing_and_the_merge_then_does_what_it_said() {
    let s = Scratch::new();
    let path = target(&s);
    // A lock left by a writer: the dry run takes none, so it is not in the way.
    s.write("target.yaml.lock", "");
    let listing = s.listing();
    let when = mtime(&path);
    let out = merge_fresh(&s, &["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    no_secrets(&plan);
    no_secrets(&stderr(&out));
    assert!(!plan.contains("SECRET"), "{plan}");
    assert!(plan.starts_with("dry run: --merge-into target.yaml (existing file); nothing written\n"), "{plan}");
    assert!(
        plan.contains("user \"fresh\" added: as clusternet, as-user-extra (redacted), username system:anonymous"),
        "{plan}"
    );
    assert_eq!(s.listing(), listing, "the dry run wrote something");
    assert_eq!(mtime(&path), when);
    fs::remove_file(s.path("target.yaml.lock")).unwrap();

    let before = kubectl_view(&path);
    let real = merge_fresh(&s, &[]);
    assert!(real.status.success(), "{}", stderr(&real));
    let after = kubectl_view(&path);
    check_plan_against_views(&plan, &before, &after);
    // The write reports the same plan.
    let said: Vec<(String, String, String)> = plan_lines(&plan);
    let reported = stderr(&real);
    for (kind, name, action) in &said {
        assert!(reported.contains(&format!("{kind} {name:?} {action}")), "{reported}");
    }
}

#[test]
fn merge_dry_run_says_what_is_updated_then_unchanged() {
    let s = Scratch::new();
    let path = target(&s);
    // Again with another token file: the user is updated, and the context
    // too, since its provenance records the new file; the cluster is not.
    let out =
        s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml", "--dry-run"]).output().unwrap();
    let plan = stdout(&out);
    let name = format!("clusternet-{CLUSTER_ID}");
    assert_eq!(
        plan_lines(&plan),
        [
            ("cluster".into(), name.clone(), "unchanged".into()),
            ("context".into(), name.clone(), "updated".into()),
            ("user".into(), name.clone(), "updated".into())
        ]
    );
    assert!(plan.contains(&format!("user \"{name}\" updated: as-user-extra (redacted)")), "{plan}");
    no_secrets(&plan);
    let before = kubectl_view(&path);
    s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml"]).output().unwrap();
    check_plan_against_views(&plan, &before, &kubectl_view(&path));
    // The same run again changes nothing.
    let again =
        s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml", "--dry-run"]).output().unwrap();
    let unchanged: Vec<(String, String, String)> =
        ["cluster", "context", "user"].map(|k| (k.into(), name.clone(), "unchanged".into())).into();
    assert_eq!(plan_lines(&stdout(&again)), unchanged, "{}", stdout(&again));
}

#[test]
fn merge_dry_run_into_a_missing_file_creates_nothing() {
    let s = Scratch::new();
    let listing = s.listing();
    let out = s.generate(&["--token-file", "child.token", "--merge-into", "new.yaml", "--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.starts_with("dry run: --merge-into new.yaml (new file); nothing written\n"), "{plan}");
    assert!(plan.contains(&format!("current-context: (none) -> \"clusternet-{CLUSTER_ID}\"")), "{plan}");
    assert_eq!(s.listing(), listing);
}

#[test]
fn output_file_dry_run_refuses_as_the_write_would_and_lists_what_force_removes() {
    let s = Scratch::new();
    let path = target(&s);
    let listing = s.listing();
    let when = mtime(&path);
    // Without --force the write would be refused: so is the dry run.
    let out =
        s.generate(&["--token-file", "child.token", "--output-file", "target.yaml", "--dry-run"]).output().unwrap();
    fails(&out, 1, "--output-file target.yaml already exists; pass --force to replace it");
    // With --force: the old file's other entries are removed.
    let out = s
        .generate(&["--token-file", "child.token", "--output-file", "target.yaml", "--force", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    no_secrets(&plan);
    assert_eq!(s.listing(), listing);
    assert_eq!(mtime(&path), when);
    let before = kubectl_view(&path);
    let real =
        s.generate(&["--token-file", "child.token", "--output-file", "target.yaml", "--force"]).output().unwrap();
    assert!(real.status.success(), "{}", stderr(&real));
    check_plan_against_views(&plan, &before, &kubectl_view(&path));
    assert!(plan_lines(&plan).iter().any(|(_, _, a)| a == "updated"), "{plan}");

    // A new file: nothing is created.
    let listing = s.listing();
    let out = s.generate(&["--token-file", "child.token", "--output-file", "new.yaml", "--dry-run"]).output().unwrap();
    let plan = stdout(&out);
    assert!(plan.starts_with("dry run: --output-file new.yaml (new file); nothing written\n"), "{plan}");
    assert_eq!(plan_lines(&plan).iter().filter(|(_, _, a)| a == "added").count(), 3, "{plan}");
    assert_eq!(s.listing(), listing);
}

#[test]
fn dry_run_needs_a_file_and_refuses_what_the_write_refuses() {
    let s = Scratch::new();
    let out = s.generate(&["--token-file", "child.token", "--dry-run"]).output().unwrap();
    fails(&out, 2, "--dry-run shows what --output-file or --merge-into would change");
    s.write("not-a-kubeconfig.yaml", "foo: bar\n");
    let listing = s.listing();
    let out = s
        .generate(&["--token-file", "child.token", "--merge-into", "not-a-kubeconfig.yaml", "--dry-run"])
        .output()
        .unwrap();
    fails(&out, 1, "--merge-into not-a-kubeconfig.yaml is not a kubeconfig");
    assert_eq!(s.listing(), listing);
}
