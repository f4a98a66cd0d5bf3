//! A CI user's common mistakes: a generated context or the child's kubeconfig
//! as the parent, `verify` on a kubeconfig that is not a generated one,
//! environment variables next to flags, kubectl's flag habits, relative paths
//! run from another directory, and what `--help` promises.

use std::process::Command;

use crate::support::*;

const OTHER_ID: &str = "0b7a4c1e-9a51-4c3e-8f0e-2b1f6c0d9e42";

fn refused(s: &Scratch, cmd: &mut Command, code: i32, needle: &str) -> String {
    let before = s.listing();
    let out = cmd.output().unwrap();
    fails(&out, code, needle);
    assert_eq!(s.listing(), before, "files changed by a failed run ({needle})");
    stderr(&out)
}

/// The documented sequence: two `gen --merge-into ~/.kube/config
/// --set-current-context` runs, the second without --kubeconfig/--context.
#[test]
fn a_generated_context_is_not_taken_as_the_parent() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path(".kube")).unwrap();
    // The parent kubeconfig as ~/.kube/config, its relative files next to it.
    std::fs::copy(s.path("parent.yaml"), s.path(".kube/config")).unwrap();
    std::fs::create_dir_all(s.path(".kube/pki")).unwrap();
    for f in ["pki/ca.crt", "pki/admin.crt", "pki/admin.key"] {
        std::fs::copy(s.path(f), s.path(&format!(".kube/{f}"))).unwrap();
    }
    let first = s
        .bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"])
        .args(["--merge-into", ".kube/config", "--set-current-context"])
        .output()
        .unwrap();
    let err = stderr(&first);
    assert!(first.status.success(), "{err}");
    assert!(
        err.contains("warning: ")
            && err.contains("is read by default as the parent kubeconfig")
            && err.contains("pass --context \"main\""),
        "the changed default parent is announced: {err}"
    );
    // The second run takes the generated context as its parent: refused, and
    // the parent's own contexts are named.
    let mut second = s.bare(&["gen", "--cluster-id", OTHER_ID, "--token-file", "child.token"]);
    second.args(["--merge-into", ".kube/config", "--set-current-context"]);
    let err = refused(&s, &mut second, 1, &format!("context \"clusternet-{CLUSTER_ID}\" in "));
    assert!(err.contains("is a generated Clusternet context, not the parent's"), "{err}");
    assert!(err.contains(&format!("socket proxy of cluster {CLUSTER_ID} on https://10.0.0.10:6443")), "{err}");
    assert!(err.contains("pass --context with the parent's own context (\"main\""), "{err}");
    // A generated kubeconfig given as --kubeconfig: the same.
    let generated = ok(&mut s.generate(&["--token-file", "child.token"]));
    s.write("generated.yaml", &generated);
    refused(
        &s,
        &mut s.bare(&[
            "gen",
            "--kubeconfig",
            "generated.yaml",
            "--cluster-id",
            OTHER_ID,
            "--token-file",
            "child.token",
        ]),
        1,
        "is a generated Clusternet context, not the parent's: its server already goes through the socket proxy",
    );
    // With the parent's context named, the second cluster works.
    let out = ok(s
        .bare(&["gen", "--context", "main", "--cluster-id", OTHER_ID, "--token-file", "child.token"])
        .args(["--merge-into", ".kube/config"]));
    assert!(out.is_empty());
    let view = kubectl_view(&s.path(".kube/config"));
    let servers: Vec<&str> =
        view["clusters"].as_array().unwrap().iter().filter_map(|c| c["cluster"]["server"].as_str()).collect();
    assert!(servers.iter().all(|srv| srv.matches("/sockets/").count() <= 1), "nested proxy path: {servers:?}");
}

#[test]
fn the_childs_own_kubeconfig_as_parent_is_refused() {
    let s = Scratch::new();
    // Parent and child swapped: --child-kubeconfig points at the parent's server.
    refused(
        &s,
        &mut s.generate(&["--child-kubeconfig", "parent.yaml", "--child-context", "tokenuser"]),
        1,
        "points at the parent's own server https://10.0.0.10:6443: pass the Clusternet parent's kubeconfig",
    );
}

#[test]
fn verify_refuses_what_is_not_a_socket_proxy_route() {
    let s = Scratch::new();
    // The parent's admin kubeconfig (from KUBECONFIG, as a CI step that forgot
    // --kubeconfig would have it): refused before any request.
    let err = refused(&s, s.bare(&["verify"]).env("KUBECONFIG", "parent.yaml"), 1, "context \"main\" in ");
    assert!(
        err.contains(
            "is not a generated Clusternet context: its server \"https://10.0.0.10:6443\" is not a socket-proxy route"
        ),
        "{err}"
    );
    assert!(err.contains("pass --kubeconfig with the file `gen` wrote"), "{err}");
    refused(&s, &mut s.bare(&["verify"]), 1, "no kubeconfig to verify:");
    refused(
        &s,
        s.bare(&["verify"]).env("KUBECONFIG", "gone.yaml"),
        1,
        "no kubeconfig to verify: none of the files in KUBECONFIG exists (gone.yaml; relative to the working directory",
    );
}

#[test]
fn flags_win_over_the_environment_and_values_are_checked_alike() {
    let s = Scratch::new();
    let from_file = ok(&mut s.generate(&["--token-file", "child.token"]));
    // One trailing newline in the variable is trimmed, as in a file.
    let env = s.generate(&[]).env("CLUSTERNET_CHILD_TOKEN", format!("{CHILD_TOKEN}\n")).output().unwrap();
    assert!(env.status.success(), "{}", stderr(&env));
    assert_eq!(stripped(&stdout(&env)), stripped(&from_file));
    // A job-wide variable and a flag: the flag wins, the variable is warned about.
    let both = s.generate(&["--token", "from-flag"]).env("CLUSTERNET_CHILD_TOKEN", CHILD_TOKEN).output().unwrap();
    assert!(both.status.success(), "{}", stderr(&both));
    assert!(stdout(&both).contains("from-flag") && !stdout(&both).contains(CHILD_TOKEN));
    assert!(
        stderr(&both).contains("warning: CLUSTERNET_CHILD_TOKEN is set but not used: --token is given (a flag wins)"),
        "{}",
        stderr(&both)
    );
    // A parent token variable under the default anonymous auth: a warning, not silence.
    let anon =
        s.generate(&["--token-file", "child.token"]).env("CLUSTERNET_PARENT_TOKEN", PARENT_TOKEN).output().unwrap();
    assert!(anon.status.success());
    assert_eq!(stdout(&anon), from_file);
    assert!(
        stderr(&anon).contains("warning: CLUSTERNET_PARENT_TOKEN is set but not used: --parent-auth is anonymous; pass --parent-auth token to use it"),
        "{}",
        stderr(&anon)
    );
    no_secrets(&stderr(&anon));
    // --parent-token-file wins over the variable.
    s.write("p.token", "file-parent-token\n");
    let flag = s
        .generate(&["--token-file", "child.token", "--parent-auth", "token", "--parent-token-file", "p.token"])
        .env("CLUSTERNET_PARENT_TOKEN", PARENT_TOKEN)
        .output()
        .unwrap();
    assert!(flag.status.success(), "{}", stderr(&flag));
    assert!(stdout(&flag).contains("token: file-parent-token"));
    assert!(stderr(&flag).contains("CLUSTERNET_PARENT_TOKEN is set but not used: --parent-token-file is given"));
    // An empty parent token variable with --parent-auth token is an error, not a
    // reason to fetch a token from the cluster.
    refused(
        &s,
        s.generate(&["--token-file", "child.token", "--parent-auth", "token"]).env("CLUSTERNET_PARENT_TOKEN", ""),
        1,
        "CLUSTERNET_PARENT_TOKEN is empty",
    );
    // The same bad value: the same exit status from a flag, a file and the environment.
    s.write("two.token", "a\nb\n");
    refused(&s, &mut s.generate(&["--token", "a\nb"]), 1, "--token has a line break");
    refused(&s, &mut s.generate(&["--token-file", "two.token"]), 1, "--token-file two.token has a line break");
    refused(&s, s.generate(&[]).env("CLUSTERNET_CHILD_TOKEN", "a\nb"), 1, "CLUSTERNET_CHILD_TOKEN has a line break");
}

#[test]
fn kubectl_style_flags() {
    let s = Scratch::new();
    // Durations with units (and plain seconds).
    for timeout in ["3s", "1m", "1m30s", "500ms", "10"] {
        let out = s.generate(&["--token-file", "child.token", "--timeout", timeout]).output().unwrap();
        assert!(out.status.success(), "--timeout {timeout}: {}", stderr(&out));
    }
    let out = s
        .generate(&["--token-file", "child.token", "--merge-into", "m.yaml", "--lock-timeout", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = s.generate(&["--token-file", "child.token", "--timeout", "3x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("\"3x\" is not a duration; give e.g. 10s, 1m30s, 500ms or 1h"), "{}", stderr(&bad));
    // kubectl's -v=N.
    for v in ["-v=6", "--v=6", "-v6"] {
        let out = s.generate(&["--token-file", "child.token", v]).output().unwrap();
        assert!(out.status.success(), "{v}: {}", stderr(&out));
        assert!(stderr(&out).contains("(kubectl's log level) read as -v"), "{v}: {}", stderr(&out));
        assert!(stderr(&out).contains("parent "), "{v} traces: {}", stderr(&out));
    }
    // `-` is stdout for --output-file, as it is stdin for --token-file.
    let to_stdout = ok(&mut s.generate(&["--token-file", "child.token", "--output-file", "-"]));
    assert_eq!(to_stdout, ok(&mut s.generate(&["--token-file", "child.token"])));
    assert!(!s.path("-").exists(), "a file named - was written");
    for flag in ["--merge-into", "--credentials", "--child-kubeconfig"] {
        let args: Vec<&str> =
            if flag == "--credentials" { vec![flag, "-"] } else { vec!["--token-file", "child.token", flag, "-"] };
        refused(&s, &mut s.generate(&args), 2, &format!("{flag} - is not supported"));
    }
    refused(&s, &mut s.bare(&["list", "--kubeconfig", "-"]), 2, "--kubeconfig - is not supported");
    // A name where a UUID is expected: the flag for names and `list` are suggested.
    refused(
        &s,
        &mut s.bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", "child-a", "--token-file", "child.token"]),
        2,
        "for a ManagedCluster name pass --cluster \"child-a\", or take the CLUSTER-ID column of `clusternet-kubeconfig list`",
    );
}

#[test]
fn relative_paths_name_the_working_directory() {
    let s = Scratch::new();
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    let err = refused(&s, &mut s.generate(&["--token-file", "missing.token"]), 1, "missing.token does not exist");
    assert!(err.contains(&format!("(relative to the working directory {})", cwd.display())), "{err}");
    let err = refused(
        &s,
        &mut s.bare(&["gen", "--kubeconfig", "nope.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]),
        1,
        "nope.yaml",
    );
    assert!(err.contains(&format!("relative to the working directory {}", cwd.display())), "{err}");
    let err = refused(
        &s,
        s.generate(&["--token-file", "child.token"]).arg("--output-file").arg("no/dir/out.yaml"),
        1,
        "no/dir",
    );
    assert!(err.contains("relative to the working directory"), "{err}");
    // KUBECONFIG with no existing file: the files are listed.
    let err = refused(
        &s,
        s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"])
            .env("KUBECONFIG", "a.yaml:/abs/b.yaml"),
        1,
        "none of the files in KUBECONFIG exists (a.yaml, /abs/b.yaml; relative to the working directory",
    );
    assert!(err.contains(&cwd.display().to_string()), "{err}");
}

#[test]
fn help_documents_exit_codes_json_shapes_and_the_network() {
    let s = Scratch::new();
    let top = ok(&mut s.bare(&["--help"])).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!top.contains("offline"), "gen connects with --cluster, --all, --verify: {top}");
    assert!(top.contains("no network unless --cluster, --all"), "{top}");
    for sub in ["gen", "list", "verify"] {
        let help = ok(&mut s.bare(&[sub, "--help"]));
        assert!(help.contains("Exit codes:") && help.contains("  2  usage:"), "{sub}: {help}");
        assert!(help.contains("CLUSTERNET_CHILD_TOKEN") && help.contains("(a flag wins)"), "{sub}");
    }
    let gen_help = ok(&mut s.bare(&["gen", "--help"]));
    assert!(
        gen_help.contains("cluster ID   `clusternet-kubeconfig list`") && gen_help.contains("create token"),
        "{gen_help}"
    );
    let list = ok(&mut s.bare(&["list", "--help"]));
    assert!(list.contains("{\"items\": [{\"namespace\"") && list.contains("\"ready\": \"True\""), "{list}");
    assert!(list.contains("No apiVersion/kind"), "{list}");
}
