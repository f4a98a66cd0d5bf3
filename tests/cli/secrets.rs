//! Secrets stay secret: `--verbose` traces are redacted, and a secret typed on
//! the command line (stdin a terminal) draws a warning naming the safer ways.

use std::process::Command;

use crate::support::*;

#[test]
fn verbose_trace_shows_steps_but_no_secret() {
    let s = Scratch::new();
    s.write("parent.token", PARENT_TOKEN);
    for args in [
        vec!["-v", "--token", CHILD_TOKEN, "--parent-auth", "token", "--parent-token-file", "parent.token"],
        vec!["--verbose", "--client-certificate", "child.crt", "--client-key", "child.key", "--parent-auth", "keep"],
    ] {
        let out = s.generate(&args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("trace: parent") && err.contains("as-user-extra: <redacted>"), "{err}");
        no_secrets(&err);
        assert!(!err.contains(&b64(&s.key_pem)) && !err.contains(&b64(&s.parent_key_pem)), "{err}");
    }
}

/// Runs `gen` under `script`, which gives it a terminal as stdin.
fn on_a_terminal(s: &Scratch, args: &str) -> String {
    let bin = bin().display().to_string();
    let command =
        format!("{bin} gen --kubeconfig parent.yaml --cluster-id {CLUSTER_ID} {args} --output-file out.yaml --force");
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(s.dir.path())
        .env("HOME", s.dir.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("script (util-linux) runs a command on a terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn secrets_on_the_command_line_of_a_terminal_draw_a_warning() {
    let s = Scratch::new();
    let text = on_a_terminal(&s, &format!("--token {CHILD_TOKEN}"));
    assert!(text.contains("warning: --token puts a secret on the command line"), "{text}");
    assert!(text.contains("prefer --token-file - or env CLUSTERNET_CHILD_TOKEN"), "{text}");
    assert!(!text.contains(CHILD_TOKEN), "{text}");
    let quiet = on_a_terminal(&s, "--token-file child.token");
    assert!(!quiet.contains("warning"), "{quiet}");
    // Not on a terminal (a CI pipe): no warning.
    let piped = s.generate(&["--token", CHILD_TOKEN]).output().unwrap();
    assert!(!stderr(&piped).contains("warning"));
}
