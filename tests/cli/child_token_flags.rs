//! `--child-credentials hub` and `--child-token-request`: how they combine
//! with the other flags. Every refusal is a usage error (exit 2) found before
//! anything is read or asked of a cluster, one `error:` line, nothing written.

use crate::support::*;

/// Refused with exit 2 and `needle`, the scratch directory unchanged.
fn usage(s: &Scratch, args: &[&str], needle: &str) {
    let before = s.listing();
    let out = s
        .bare(&[&["gen", "--kubeconfig", "parent.yaml"][..], args, &["--output-file", "out.yaml"]].concat())
        .output()
        .unwrap();
    fails(&out, 2, needle);
    assert_eq!(s.listing(), before, "files changed by a refused run ({args:?})");
}

#[test]
fn hub_credentials_are_one_source_among_the_others() {
    let s = Scratch::new();
    s.write("creds.yaml", "clusters:\n  child-a: {token: t}\n");
    let id = ["--cluster-id", CLUSTER_ID];
    let hub = ["--child-credentials", "hub"];
    usage(
        &s,
        &[&id[..], &hub, &["--credentials", "creds.yaml"]].concat(),
        "from the hub (--child-credentials hub) or from --credentials, not both",
    );
    usage(
        &s,
        &[&id[..], &hub, &["--token-file", "child.token"]].concat(),
        "from the hub (--child-credentials hub) or from flags, not both",
    );
    usage(
        &s,
        &[&id[..], &["--child-credentials", "agent"]].concat(),
        "invalid value 'agent' for '--child-credentials <SOURCE>'",
    );
    // Several clusters, --all and --strict need per-cluster credentials: a file or the hub.
    let two = [
        "--cluster-id",
        CLUSTER_ID,
        "--cluster-id",
        "1b2f7d0a-4c1e-4e6b-9a51-0000000000a1",
        "--token-file",
        "child.token",
    ];
    usage(&s, &two, "several clusters need --credentials FILE or --child-credentials hub");
    usage(&s, &["--all"], "--all needs child credentials per cluster: --credentials FILE, or --child-credentials hub");
    usage(
        &s,
        &[&id[..], &["--token-file", "child.token", "--strict"]].concat(),
        "--strict is for --credentials FILE or --child-credentials hub",
    );
}

#[test]
fn token_request_flags_are_checked_before_anything_is_asked() {
    let s = Scratch::new();
    let base = ["--cluster-id", CLUSTER_ID, "--child-credentials", "hub"];
    fn joined<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
        [a, b].concat()
    }
    let with = |extra: &[&'static str]| joined(&base, extra);
    usage(&s, &with(&["--child-token-request", "ci"]), "--child-token-request \"ci\" is not NAMESPACE/SERVICEACCOUNT");
    usage(&s, &with(&["--child-token-request", "ci/a/b"]), "is not NAMESPACE/SERVICEACCOUNT");
    usage(
        &s,
        &with(&["--child-token-request", "CI/deployer"]),
        "the namespace of --child-token-request \"CI\" is not a namespace name",
    );
    usage(
        &s,
        &with(&["--child-token-request", "ci/"]),
        "the service account of --child-token-request \"\" is not a service account name",
    );
    usage(
        &s,
        &with(&["--child-token-request", "ci/deployer", "--child-token-ttl", "5m"]),
        "--child-token-ttl must be at least 10m",
    );
    usage(
        &s,
        &with(&["--child-token-request", "ci/deployer", "--child-token-ttl", "600.5s"]),
        "--child-token-ttl is counted in whole seconds",
    );
    usage(
        &s,
        &with(&["--child-token-request", "ci/deployer", "--child-token-ttl", "soon"]),
        "\"soon\" is not a duration",
    );
    // The lifetime means nothing without the request.
    usage(&s, &with(&["--child-token-ttl", "1h"]), "--child-token-request");
}

/// The flags are in `gen --help`, the hub source saying what it hands over.
#[test]
fn help_names_the_flags_and_the_cluster_admin_credential() {
    let s = Scratch::new();
    let help = ok(&mut s.bare(&["gen", "--help"]));
    for flag in [
        "--child-credentials <SOURCE>",
        "--child-token-request <NAMESPACE/SERVICEACCOUNT>",
        "--child-token-ttl <DURATION>",
    ] {
        assert!(help.contains(flag), "{flag} missing from gen --help");
    }
    assert!(help.contains("cluster-admin"), "{help}");
}

/// The hub answers the token request 503 (here: its SocketConnection gate
/// is off): one POST, no retries (kube's default policy retried such a 503
/// for minutes, past `--timeout`), ended well within `--timeout`, and the
/// answer diagnosed as `verify` diagnoses it; nothing written.
#[test]
fn a_token_request_answered_503_is_asked_once_and_diagnosed() {
    use testkit::{Recorder, RecorderConfig};
    let recorder = Recorder::start(RecorderConfig { feature_gate_off: true, ..Default::default() }).unwrap();
    let s = Scratch::new();
    s.write(
        "parent.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: main\nclusters:\n- name: parent\n  cluster:\n    server: {}\n    \
             certificate-authority-data: {}\ncontexts:\n- name: main\n  context: {{cluster: parent, user: anon}}\n\
             users:\n- name: anon\n  user: {{}}\n",
            recorder.url(),
            b64(&recorder.ca_pem())
        ),
    );
    let started = std::time::Instant::now();
    let out = s
        .generate(&["--token-file", "child.token", "--child-token-request", "ns/sa", "--timeout", "10s"])
        .args(["--output-file", "out.yaml"])
        .output()
        .unwrap();
    let took = started.elapsed();
    fails(
        &out,
        1,
        "TokenRequest for service account ns/sa on the child failed: HTTP 503 (featuregate SocketConnection has not been enabled on the server side): SocketConnection feature gate off: start clusternet-hub with --feature-gates=SocketConnection=true",
    );
    let posts = recorder.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/token")).count();
    assert_eq!(posts, 1, "asked once");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(!s.path("out.yaml").exists());
}
