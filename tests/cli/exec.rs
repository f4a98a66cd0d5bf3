//! `exec`, offline: repeated `--cluster-id` with a credentials file fans out
//! without a cluster; CMD is a shell (or kubectl reading the kubeconfig it
//! was given). Checked: output and exit status passed through (one cluster),
//! tagged lines and the summary (several), `--fail-fast`, the temporary
//! kubeconfig (private, removed on every path including SIGINT and
//! SIGTERM), the environment, and no secret on any command line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const ID_B: &str = "2a1e3c4d-0000-4000-8000-00000000000b";
const ID_C: &str = "2a1e3c4d-0000-4000-8000-00000000000c";
const TOKEN_B: &str = "SECRET-child-token-b-6d21";
const TOKEN_C: &str = "SECRET-child-token-c-0e9f";

/// The scratch dir with a credentials file for three clusters and a private
/// TMPDIR, so that what exec leaves behind can be seen.
fn scratch() -> Scratch {
    let s = Scratch::new();
    s.write(
        "creds.yaml",
        &format!("clusters:\n  {CLUSTER_ID}: {{tokenFile: child.token}}\n  {ID_B}: {{token: {TOKEN_B}}}\n  {ID_C}: {{token: {TOKEN_C}}}\n"),
    );
    std::fs::create_dir(s.path("tmp")).unwrap();
    s
}

/// `exec --kubeconfig parent.yaml` plus `args`, TMPDIR in the scratch dir.
fn exec(s: &Scratch, args: &[&str]) -> Command {
    let mut cmd = s.bare(&["exec", "--kubeconfig", "parent.yaml"]);
    cmd.args(args).env("TMPDIR", s.path("tmp"));
    cmd
}

/// The three clusters with their credentials.
const ALL: [&str; 7] = ["--cluster-id", CLUSTER_ID, "--cluster-id", ID_B, "--cluster-id", ID_C, "--credentials"];

fn fan_out(s: &Scratch, extra: &[&str], script: &str) -> Output {
    let mut cmd = exec(s, &ALL);
    cmd.arg("creds.yaml").args(extra).args(["--", "sh", "-c", script]);
    cmd.output().unwrap()
}

/// Nothing is left in the private TMPDIR.
fn tmp_is_empty(s: &Scratch) {
    let left: Vec<PathBuf> = std::fs::read_dir(s.path("tmp")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| panic!("ended by a signal: {out:?}"))
}

#[test]
fn one_cluster_passes_output_and_status_through_untouched() {
    let s = scratch();
    let out = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--", "sh", "-c"])
        .arg("echo out; printf 'err\\n' >&2; printf 'last'; exit 7")
        .output()
        .unwrap();
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\nlast");
    assert_eq!(stderr(&out), "err\n");
    tmp_is_empty(&s);
    let ok = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--", "true"]).output().unwrap();
    assert_eq!((code(&ok), stdout(&ok), stderr(&ok)), (0, String::new(), String::new()));
}

#[test]
fn the_kubeconfig_is_private_what_gen_writes_and_removed_after() {
    let s = scratch();
    let script = r#"echo "$KUBECONFIG"; stat -c %a "$KUBECONFIG" "$(dirname "$KUBECONFIG")"; cat "$KUBECONFIG""#;
    let out = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let path = PathBuf::from(lines.next().unwrap());
    assert!(path.starts_with(s.path("tmp")), "{path:?}");
    assert_eq!((lines.next(), lines.next()), (Some("600"), Some("700")), "{text}");
    let given: String = lines.map(|l| format!("{l}\n")).collect();
    // What gen writes for the same flags, byte for byte.
    let generated = ok(&mut s.generate(&["--token-file", "child.token"]));
    assert_eq!(given, generated);
    assert!(!path.exists() && !path.parent().unwrap().exists(), "{path:?} left behind");
    tmp_is_empty(&s);
}

#[test]
fn kubectl_as_cmd_reads_the_one_context() {
    let s = scratch();
    let out = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token"])
        .args(["--", "kubectl", "config", "view", "--raw", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let view: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let name = format!("clusternet-{CLUSTER_ID}");
    assert_eq!(view["current-context"], name.as_str());
    assert_eq!(only(&view, "contexts")["name"], name.as_str());
    assert_eq!(only(&view, "clusters")["cluster"]["server"], proxy_server("https://10.0.0.10:6443", "direct"));
    assert_eq!(only(&view, "users")["user"]["as-user-extra"]["clusternet-token"][0], CHILD_TOKEN);
}

#[test]
fn the_environment_names_the_cluster_and_holds_no_token_variable() {
    let s = scratch();
    let script = "env | grep '^CLUSTERNET_' | sort";
    let out = exec(&s, &["--cluster-id", CLUSTER_ID, "--", "sh", "-c", script])
        .env("CLUSTERNET_CHILD_TOKEN", CHILD_TOKEN)
        .env("CLUSTERNET_PARENT_TOKEN", PARENT_TOKEN)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("CLUSTERNET_CLUSTER_ID={CLUSTER_ID}\nCLUSTERNET_CLUSTER_NAME={CLUSTER_ID}\n"));
}

#[test]
fn no_secret_on_any_command_line() {
    let s = scratch();
    // CMD's own command line (the shell, $$) and exec's (its parent), as
    // `ps` shows them, each on a marked line.
    let script = r#"printf 'ARGV-cmd '; tr '\0' ' ' < /proc/$$/cmdline; echo; printf 'ARGV-exec '; tr '\0' ' ' < /proc/$PPID/cmdline; echo; cat "$KUBECONFIG""#;
    let out = fan_out(&s, &["--parallel", "3"], script);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let cmdlines: Vec<&str> = text.lines().filter(|l| l.contains("\tARGV-")).collect();
    assert_eq!(cmdlines.len(), 6, "{text}");
    for line in &cmdlines {
        let argv = line.split_once(' ').unwrap().1;
        let program = if line.contains("ARGV-cmd") { "sh -c " } else { "exec --kubeconfig parent.yaml" };
        assert!(argv.contains(program), "{line}");
    }
    let cmdlines = cmdlines.join("\n");
    for secret in [CHILD_TOKEN, TOKEN_B, TOKEN_C] {
        assert!(!cmdlines.contains(secret), "{secret} on a command line: {cmdlines}");
        // ... but in the kubeconfig each CMD was given.
        assert!(text.contains(secret), "{secret} not in any kubeconfig: {text}");
    }
    tmp_is_empty(&s);
}

#[test]
fn fan_out_tags_every_line_and_ends_with_a_summary() {
    let s = scratch();
    let script = format!(
        r#"echo "out $CLUSTERNET_CLUSTER_NAME"; echo "err" >&2; printf 'tail'; test "$CLUSTERNET_CLUSTER_ID" != {ID_B}"#
    );
    let out = fan_out(&s, &["--parallel", "2"], &script);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let (so, se) = (stdout(&out), stderr(&out));
    for id in [CLUSTER_ID, ID_B, ID_C] {
        let mine: Vec<&str> = so.lines().filter(|l| l.starts_with(&format!("{id}\t"))).collect();
        assert_eq!(mine, [format!("{id}\tout {id}"), format!("{id}\ttail")], "{so}");
        assert!(se.lines().any(|l| l == format!("{id}\terr")), "{se}");
    }
    assert_eq!(so.lines().count(), 6, "only tagged lines on stdout: {so}");
    let table: Vec<&str> = se.lines().skip_while(|l| !l.starts_with("CLUSTER ")).collect();
    assert_eq!(table.len(), 4, "{se}");
    let row = |id: &str| table.iter().find(|l| l.starts_with(id)).unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(&row(CLUSTER_ID)[1..3], ["succeeded", "0"]);
    assert_eq!(&row(ID_B)[1..3], ["failed", "1"]);
    assert_eq!(&row(ID_C)[1..3], ["succeeded", "0"]);
    assert!(row(ID_C)[3].ends_with('s'), "{table:?}");
    no_secrets(&se);
    tmp_is_empty(&s);
    // All succeed: 0.
    assert_eq!(code(&fan_out(&s, &[], "true")), 0);
}

#[test]
fn json_summary_is_the_last_line_of_stdout() {
    let s = scratch();
    let script = format!(r#"echo hello; test "$CLUSTERNET_CLUSTER_ID" != {ID_C} || exit 5"#);
    let out = fan_out(&s, &["-o", "json"], &script);
    assert_eq!(code(&out), 1);
    let so = stdout(&out);
    let last = so.lines().last().unwrap();
    let summary: Value = serde_json::from_str(last).unwrap();
    assert_eq!(summary["exitCode"], 1);
    let clusters = summary["clusters"].as_array().unwrap();
    let got: Vec<(&str, &str, i64)> = clusters
        .iter()
        .map(|c| (c["clusterId"].as_str().unwrap(), c["status"].as_str().unwrap(), c["exitCode"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, [(CLUSTER_ID, "succeeded", 0), (ID_B, "succeeded", 0), (ID_C, "failed", 5)]);
    assert!(
        clusters.iter().all(|c| c["durationMs"].is_u64() && c["signal"].is_null() && c["cluster"] == c["clusterId"])
    );
    assert!(!stderr(&out).contains("CLUSTER "), "no table with -o json: {}", stderr(&out));
    // One cluster: CMD's output as it is, then the summary.
    let one = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "-o", "json", "--", "echo", "hi"])
        .output()
        .unwrap();
    let so = stdout(&one);
    assert!(so.starts_with("hi\n{\"clusters\":[{"), "{so}");
}

#[test]
fn fail_fast_starts_no_more_and_terminates_the_running() {
    let s = scratch();
    // One at a time: the first fails, the others never start.
    let out = fan_out(&s, &["--fail-fast", "-o", "json"], "exit 3");
    assert_eq!(code(&out), 1);
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    let statuses: Vec<&str> =
        summary["clusters"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "skipped", "skipped"]);
    // All at once: the one that fails ends the two that sleep.
    let script = format!(r#"test "$CLUSTERNET_CLUSTER_ID" = {ID_B} && exit 4; exec sleep 30"#);
    let start = Instant::now();
    let out = fan_out(&s, &["--fail-fast", "--parallel", "3", "-o", "json"], &script);
    assert!(start.elapsed() < Duration::from_secs(20), "the sleeping ones were not terminated");
    assert_eq!(code(&out), 1);
    let summary: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    let got: Vec<(String, Value)> = summary["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["status"].as_str().unwrap().to_string(), c["signal"].clone()))
        .collect();
    assert_eq!(
        got,
        [("killed".into(), Value::from(15)), ("failed".into(), Value::Null), ("killed".into(), Value::from(15))]
    );
    tmp_is_empty(&s);
}

#[test]
fn a_command_that_cannot_start_is_127_or_126_and_leaves_nothing() {
    let s = scratch();
    let out = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--", "./no-such-command"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 127);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot run \"./no-such-command\": "), "{err}");
    s.write("not-executable", "#!/bin/sh\n");
    let out = exec(&s, &["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--", "./not-executable"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    // Several: each cluster says so; the run fails.
    let mut cmd = exec(&s, &ALL);
    let out = cmd.args(["creds.yaml", "--", "./no-such-command"]).output().unwrap();
    assert_eq!(code(&out), 1);
    for id in [CLUSTER_ID, ID_B, ID_C] {
        assert!(stderr(&out).contains(&format!("{id}\terror: cannot run")), "{}", stderr(&out));
    }
    assert!(stderr(&out).contains("not-started"), "{}", stderr(&out));
    tmp_is_empty(&s);
}

#[test]
fn own_failures_are_125_or_2_and_run_nothing() {
    let s = scratch();
    let one = ["--cluster-id", CLUSTER_ID, "--token-file", "child.token"];
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["--kubeconfig", "missing.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"],
            125,
            "missing.yaml",
        ),
        (&["--kubeconfig", "parent.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "nope.token"], 125, "nope.token"),
        // Usage: two clusters without --credentials.
        (
            &[
                "--kubeconfig",
                "parent.yaml",
                "--cluster-id",
                ID_B,
                "--cluster-id",
                CLUSTER_ID,
                "--token-file",
                "child.token",
            ],
            2,
            "several clusters need --credentials FILE",
        ),
    ];
    for (args, status, needle) in cases {
        let out = s.bare(&["exec"]).args(args).args(["--", "touch", "ran"]).output().unwrap();
        fails(&out, status, needle);
    }
    // No command; no cluster at all.
    for extra in [&[][..], &["--parallel", "0", "--", "touch", "ran"]] {
        let out = exec(&s, &one).args(extra).output().unwrap();
        assert_eq!(code(&out), 2, "{extra:?}: {}", stderr(&out));
    }
    // gen's own flags (what it names, where it writes, whether it verifies)
    // are not exec's: clap refuses them, so none is ever silently ignored.
    for flag in [
        &["--no-current-context"][..],
        &["--name", "n"],
        &["--output-file", "out.yaml"],
        &["--merge-into", "merged.yaml"],
        &["--dry-run"],
        &["--verify"],
    ] {
        let out = exec(&s, &one).args(flag).args(["--", "touch", "ran"]).output().unwrap();
        fails(&out, 2, &format!("unexpected argument '{}'", flag[0]));
    }
    assert!(!s.path("ran").exists(), "CMD ran after exec's own failure");
    assert!(!s.path("out.yaml").exists() && !s.path("merged.yaml").exists());
}

/// Starts exec with `args`, waits until every CMD printed its KUBECONFIG
/// (one line each), sends `signal` to exec alone, and returns how it ended
/// and the paths CMD was given.
fn interrupt(s: &Scratch, args: &[&str], clusters: usize, signal: &str) -> (Output, Vec<PathBuf>) {
    let mut child = exec(s, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut paths = Vec::new();
    for _ in 0..clusters {
        let line = lines.next().expect("CMD printed its KUBECONFIG").unwrap();
        let path = PathBuf::from(line.rsplit('\t').next().unwrap());
        assert!(path.exists(), "{path:?} should exist while CMD runs");
        paths.push(path);
    }
    let killed = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20), "CMD was not stopped by the forwarded {signal}");
    let _ = rest;
    (out, paths)
}

fn gone(paths: &[PathBuf]) {
    for path in paths {
        assert!(!path.exists() && !path.parent().map(Path::exists).unwrap_or(false), "{path:?} left behind");
    }
}

#[test]
fn sigint_sigterm_and_sighup_are_forwarded_and_everything_is_removed() {
    let script = r#"echo "$KUBECONFIG"; exec sleep 30"#;
    for (signal, status) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let s = scratch();
        let one = ["--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--", "sh", "-c", script];
        let (out, paths) = interrupt(&s, &one, 1, signal);
        assert_eq!(code(&out), status, "{signal}: {}", stderr(&out));
        gone(&paths);
        tmp_is_empty(&s);

        let mut several: Vec<&str> = ALL.to_vec();
        several.extend(["creds.yaml", "--parallel", "3", "--", "sh", "-c", script]);
        let (out, paths) = interrupt(&s, &several, 3, signal);
        assert_eq!(code(&out), status, "{signal}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().filter(|l| l.contains(" killed ")).count(), 3, "{signal}: {err}");
        gone(&paths);
        tmp_is_empty(&s);
    }
}
