//! Whole outputs, compared byte for byte with `tests/fixtures/snapshots/`:
//! where `gen` is deterministic, the complete text is the specification (the
//! other tests read outputs back through kubectl; these pin every byte,
//! including order, quoting and layout). `UPDATE_SNAPSHOTS=1 cargo test
//! --test cli snapshots` rewrites them after a deliberate change.

use crate::support::*;

/// `gen` with `args` on the scratch parent; stdout, which must be a success.
fn gen_stdout(args: &[&str]) -> String {
    let s = Scratch::new();
    // Recorded paths are absolute: the scratch directory differs between runs.
    ok(&mut s.generate(args)).replace(s.dir.path().to_str().unwrap(), "<scratch>")
}

/// `gen` with `args`, expected to fail: its exit code and whole stderr.
fn gen_failure(args: &[&str]) -> String {
    let s = Scratch::new();
    let out = s.generate(args).output().unwrap();
    assert!(!out.status.success() && out.stdout.is_empty(), "{}", stderr(&out));
    // The scratch directory is the one part that differs between runs.
    let text = stderr(&out).replace(s.dir.path().to_str().unwrap(), "<scratch>");
    format!("exit {}\n{text}", out.status.code().unwrap())
}

#[test]
fn token_anonymous() {
    snapshot("gen-token-anonymous.yaml", &gen_stdout(&["--token-file", "child.token"]));
}

#[test]
fn token_anonymous_json() {
    snapshot("gen-token-anonymous.json", &gen_stdout(&["--token-file", "child.token", "-o", "json"]));
}

#[test]
fn certificate_with_the_parent_user_kept() {
    snapshot(
        "gen-certificate-keep.yaml",
        &gen_stdout(&["--client-certificate", "child.crt", "--client-key", "child.key", "--parent-auth", "keep"]),
    );
}

#[test]
fn parent_token_and_https_route_in_a_namespaced_context() {
    snapshot(
        "gen-parent-token-https-route.yaml",
        &gen_stdout(&[
            "--context",
            "nsctx",
            "--token-file",
            "child.token",
            "--parent-auth",
            "token",
            "--parent-token-file",
            "parent-user.token",
            "--child-server",
            "https://child.example:6443",
            "--name",
            "child-eu",
        ]),
    );
}

#[test]
fn errors_are_one_line() {
    let cases: [(&str, &[&str]); 4] = [
        ("missing-token-file", &["--token-file", "nope.token"]),
        ("unknown-context", &["--context", "nope", "--token-file", "child.token"]),
        ("key-of-another-certificate", &["--client-certificate", "child.crt", "--client-key", "pki/admin.key"]),
        ("bad-child-server", &["--token-file", "child.token", "--child-server", "ftp://x"]),
    ];
    let mut all = String::new();
    for (name, args) in cases {
        all.push_str(&format!("## {name}: {}", gen_failure(args)));
    }
    snapshot("gen-errors.txt", &all);
}
