//! Tokens and names that YAML treats specially reach kubectl unchanged.
//!
//! kubectl reads kubeconfigs with go-yaml in YAML 1.1 mode, where `yes`, `on`,
//! `0123`, `0x1F`... are not strings. Each token below is generated as the
//! child token and as the parent token; the headers that real kubectl sends to
//! the recording server must equal the input byte for byte. Names travel in no
//! header: `kubectl config` must read them back unchanged, and resolve the
//! context. Tokens and names with spaces before or after them are rejected by
//! `gen` (exit 2): HTTP strips such spaces, so they could never arrive.
//!
//! Runs with the oldest and the newest kubectl found (see `kubectl::find`).

use std::path::Path;

use serde_json::json;
use testkit::{CHILD_GIT_VERSION, PROXY_GROUP_PREFIX, Recorder};

use crate::kubectl::{self, Kubectl};

/// Values that YAML 1.1 or 1.2 would read as something other than the string.
fn special_values() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&str, String)> = [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "true",
        "False",
        "null",
        "~",
        "0123",
        "1e3",
        "0x1F",
        "0o17",
        "1_000",
        ".inf",
        "12:30",
        "2001-12-14",
        "- x",
        "#x",
        "a: b",
        "a #b",
        "'q'",
        "\"q\"",
        "[a]",
        "{a}",
        "&x",
        "*x",
        "!x",
        "%x",
        "@x",
        "`x",
        "|",
        ">",
        "?",
        "=",
        "<<",
        "a,b",
        "back\\slash",
        "grüße ✓ 日本語 токен",
    ]
    .into_iter()
    .map(|s| (s, s.to_string()))
    .collect();
    v.push(("8 KiB token", "k".repeat(8 * 1024 - 10) + "-end.9_Z~="));
    v
}

fn oldest_and_newest() -> Vec<Kubectl> {
    let all = kubectl::find();
    assert!(
        !all.is_empty(),
        "no kubectl found (PATH, or {}); install one (Debian: kubernetes-client): this test fails rather than skips",
        kubectl::BINARIES_ENV
    );
    let mut pick = vec![all[0].clone()];
    if all.len() > 1 {
        pick.push(all[all.len() - 1].clone());
    }
    pick
}

fn parent_config(recorder: &Recorder, dir: &Path) -> String {
    let path = dir.join("parent.yaml");
    std::fs::write(&path, kubectl::parent_kubeconfig(recorder, json!({"token": "parent-own"}))).unwrap();
    path.to_string_lossy().into_owned()
}

/// Child token and parent token `value`: both headers equal it exactly.
fn token_case(k: &Kubectl, recorder: &Recorder, parent: &str, id: &str, value: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("child.kubeconfig");
    let generated = kubectl::run_gen(&[
        format!("--kubeconfig={parent}"),
        format!("--cluster-id={id}"),
        format!("--token={value}"),
        "--parent-auth=token".into(),
        format!("--parent-token={value}"),
        format!("--output-file={}", out.display()),
    ]);
    if !generated.status.success() {
        return Err(format!("gen: {}", kubectl::describe(&generated)));
    }
    let run = k.run(&out, &["version", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_default();
    if !run.status.success() || doc["serverVersion"]["gitVersion"] != CHILD_GIT_VERSION {
        return Err(format!("kubectl version: {}", kubectl::describe(&run)));
    }
    let marker = format!("{PROXY_GROUP_PREFIX}{id}/proxy/direct/version");
    let requests: Vec<_> = recorder.requests().into_iter().filter(|r| r.path == marker).collect();
    if requests.is_empty() {
        return Err(format!("no request for {marker}"));
    }
    let bearer = format!("Bearer {value}");
    for r in &requests {
        let child = r.headers_named("impersonate-extra-clusternet-token");
        if child != [value] {
            return Err(format!("Impersonate-Extra-Clusternet-Token {:?}, expected {value:?}", child));
        }
        let auth = r.headers_named("authorization");
        if auth != [bearer.as_str()] {
            return Err(format!("Authorization {auth:?}, expected {bearer:?}"));
        }
    }
    Ok(())
}

/// `--name value`: kubectl reads the names back unchanged and uses the context.
fn name_case(k: &Kubectl, parent: &str, id: &str, value: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("child.kubeconfig");
    let generated = kubectl::run_gen(&[
        format!("--kubeconfig={parent}"),
        format!("--cluster-id={id}"),
        "--token=child-token".into(),
        format!("--name={value}"),
        format!("--output-file={}", out.display()),
    ]);
    if !generated.status.success() {
        return Err(format!("gen: {}", kubectl::describe(&generated)));
    }
    let current = k.run(&out, &["config", "current-context"]);
    let current = String::from_utf8_lossy(&current.stdout);
    if current.strip_suffix('\n') != Some(value) {
        return Err(format!("current-context {current:?}, expected {value:?}"));
    }
    for field in ["clusters", "users", "contexts"] {
        let jsonpath = format!("-o=jsonpath={{.{field}[0].name}}");
        let got = k.run(&out, &["config", "view", &jsonpath]);
        let got = String::from_utf8_lossy(&got.stdout);
        if got != value {
            return Err(format!("{field}[0].name {got:?}, expected {value:?}"));
        }
    }
    let run = k.run(&out, &["version", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_default();
    if !run.status.success() || doc["serverVersion"]["gitVersion"] != CHILD_GIT_VERSION {
        return Err(format!("kubectl version with context {value:?}: {}", kubectl::describe(&run)));
    }
    Ok(())
}

#[test]
fn special_tokens_reach_kubectl_headers_byte_for_byte() {
    let kubectls = oldest_and_newest();
    let recorder = Recorder::start(Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let parent = parent_config(&recorder, dir.path());
    let values = special_values();
    let mut cases = Vec::new();
    for (row, k) in kubectls.iter().enumerate() {
        for (i, (label, value)) in values.iter().enumerate() {
            let id = format!("{:08x}-0000-4000-8000-{:012x}", row + 0x100, i + 1);
            cases.push((k, *label, value.clone(), id));
        }
    }
    let results =
        kubectl::parallel(&cases, kubectl::workers(), |(k, _, value, id)| token_case(k, &recorder, &parent, id, value));
    let failures: Vec<String> = cases
        .iter()
        .zip(results)
        .filter_map(|((k, label, _, _), r)| r.err().map(|e| format!("{} token {label:?}: {e}", k.label())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn special_names_reach_kubectl_unchanged() {
    let kubectls = oldest_and_newest();
    let recorder = Recorder::start(Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let parent = parent_config(&recorder, dir.path());
    let names: Vec<(&str, String)> = special_values()
        .into_iter()
        .filter(|(label, _)| !label.starts_with("8 KiB"))
        .chain([("inner spaces", "a  b c".to_string())])
        .collect();
    let mut cases = Vec::new();
    for (row, k) in kubectls.iter().enumerate() {
        for (i, (label, value)) in names.iter().enumerate() {
            let id = format!("{:08x}-0000-4000-8000-{:012x}", row + 0x200, i + 1);
            cases.push((k, *label, value.clone(), id));
        }
    }
    let results = kubectl::parallel(&cases, kubectl::workers(), |(k, _, value, id)| name_case(k, &parent, id, value));
    let failures: Vec<String> = cases
        .iter()
        .zip(results)
        .filter_map(|((k, label, _, _), r)| r.err().map(|e| format!("{} name {label:?}: {e}", k.label())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spaces_around_tokens_and_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(Default::default()).unwrap();
    let parent = parent_config(&recorder, dir.path());
    let id = "00000300-0000-4000-8000-000000000001";
    for padded in [" s3cr3t", "s3cr3t ", " s3cr3t ", "\ts3cr3t", "s3cr3t\t"] {
        let base = [format!("--kubeconfig={parent}"), format!("--cluster-id={id}")];
        let cases: [(&str, Vec<String>); 3] = [
            ("--token", vec![format!("--token={padded}")]),
            (
                "--parent-token",
                vec!["--token=child".into(), "--parent-auth=token".into(), format!("--parent-token={padded}")],
            ),
            ("--name", vec!["--token=child".into(), format!("--name={padded}")]),
        ];
        for (flag, extra) in cases {
            let args: Vec<String> = base.iter().cloned().chain(extra).collect();
            let out = kubectl::run_gen(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            // A bad credential value is exit 1 whatever its source (flag, file,
            // environment); --name exists only as a flag: a usage error.
            let code = if flag == "--name" { 2 } else { 1 };
            assert_eq!(out.status.code(), Some(code), "{flag} {padded:?}: exit {code}: {}", kubectl::describe(&out));
            assert!(out.stdout.is_empty(), "{flag} {padded:?}: no kubeconfig on stdout");
            // A tab is refused as a control character, a space as a space.
            let why = if padded.contains('\t') { "control characters" } else { "spaces" };
            assert!(
                stderr.contains(flag) && stderr.contains(why),
                "{flag} {padded:?}: the message names the flag and {why}: {stderr}"
            );
            if flag != "--name" {
                assert!(!stderr.contains("s3cr3t"), "{flag}: the message echoes the secret: {stderr}");
            }
        }
    }
    assert!(recorder.requests().is_empty());
}

#[test]
fn leading_dash_token_needs_the_equals_form_only() {
    // `--token=- x` is the way to pass a value that starts with a dash; the
    // value then travels unchanged (checked in the byte-for-byte test).
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(Default::default()).unwrap();
    let parent = parent_config(&recorder, dir.path());
    let out = kubectl::run_gen(&[
        format!("--kubeconfig={parent}"),
        "--cluster-id=00000301-0000-4000-8000-000000000001".into(),
        "--token=- x".into(),
    ]);
    assert!(out.status.success(), "{}", kubectl::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("- \"- x\"\n"));
}
