//! What the real kube-apiserver refuses (or lets through) before the hub.

use crate::support::*;

fn hand_written_kubeconfig(dir: &std::path::Path, server: &str, user: &str) -> std::path::PathBuf {
    let lab = lab();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: parent
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: u
  user:
{user}
contexts:
- name: c
  context: {{cluster: parent, user: u}}
current-context: c
",
        ca = lab.var("LAB_CA")
    );
    write(dir, &format!("{}.kubeconfig", unique("hand")), &text)
}

fn proxy_server(id: &str) -> String {
    format!("{}{PROXY_PREFIX}{id}/proxy/direct", lab().server())
}

/// An extra key outside the three Clusternet ones: 403 from kube-apiserver
/// (cannot impersonate userextras/<key>), nothing reaches the hub.
#[test]
fn extra_key_outside_the_three_is_403() {
    let dir = tempdir();
    let token = unique("extra-key");
    let kc = hand_written_kubeconfig(
        dir.path(),
        &proxy_server(CHILD_A.id),
        &format!(
            "    username: system:anonymous
    as: clusternet
    as-user-extra:
      clusternet-token: [{token}]
      clusternet-namespace: [default]"
        ),
    );
    // -v=8: kubectl logs the status line and the Status body it got.
    let out = kubectl(&kc, &["get", "ns", "-v=8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must be refused");
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(
        err.contains("cannot impersonate resource \\\"userextras/clusternet-namespace\\\"")
            || err.contains("cannot impersonate resource \"userextras/clusternet-namespace\""),
        "{err}"
    );
    assert!(records_with("x-remote-extra-clusternet-token", &token, 0).is_empty());
}

/// Impersonating a user other than `clusternet` is refused.
#[test]
fn impersonating_another_user_is_403() {
    let dir = tempdir();
    let token = unique("other-user");
    let kc = hand_written_kubeconfig(
        dir.path(),
        &proxy_server(CHILD_A.id),
        &format!(
            "    username: system:anonymous
    as: lab-admin
    as-user-extra:
      clusternet-token: [{token}]"
        ),
    );
    let out = kubectl(&kc, &["get", "ns", "-v=8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(err.contains("cannot impersonate resource") && err.contains("users"), "{err}");
    assert!(records_with("x-remote-extra-clusternet-token", &token, 0).is_empty());
}

/// Anonymous without impersonation: kube-apiserver's anonymous 403 on the
/// parent's own resources. On the proxy path itself the Clusternet RBAC (bound
/// to system:anonymous / system:unauthenticated, as upstream) lets the request
/// through: it reaches the hub as system:anonymous with no child credentials.
#[test]
fn anonymous_without_impersonation() {
    let lab = lab();
    let dir = tempdir();
    let plain = hand_written_kubeconfig(dir.path(), lab.server(), "    username: system:anonymous");
    let out = kubectl(&plain, &["get", "--raw", "/api/v1/namespaces", "-v=6"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(err.contains("system:anonymous") && err.contains("cannot list resource"), "{err}");

    // No `as`: the proxy path reaches the hub as the anonymous user.
    let marker = unique("anon");
    let proxied = hand_written_kubeconfig(
        dir.path(),
        &format!("{}/{marker}", proxy_server(CHILD_A.id)),
        "    username: system:anonymous",
    );
    let _ = kubectl(&proxied, &["version", "-o", "json"]);
    let recs: Vec<Rec> =
        Wait { within: std::time::Duration::from_secs(3), every: std::time::Duration::from_millis(50) }.until(
            || records().into_iter().filter(|r| r.path.contains(&marker)).collect(),
            |r: &Vec<Rec>| !r.is_empty(),
        );
    assert!(!recs.is_empty(), "the anonymous request should reach the hub");
    for r in &recs {
        assert_eq!(r.header("x-remote-user"), Some("system:anonymous"), "{r:?}");
        assert_eq!(r.header("x-remote-group"), Some("system:unauthenticated"), "{r:?}");
        assert!(r.headers_with_prefix("x-remote-extra-").is_empty(), "{r:?}");
    }
}
