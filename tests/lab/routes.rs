//! `--child-server`, `--child-kubeconfig` and `--merge-into` through the real
//! aggregator.

use crate::support::*;

/// `https://host:port` becomes the `https/<host:port>` route (here the
/// canned child's own address, which the hub dials).
#[test]
fn child_server_https_route() {
    let lab = lab();
    let dir = tempdir();
    let id = CHILD_B.id;
    let token = unique("route-https");
    let server = lab.var("LAB_CANNED_CHILD_SERVER");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token, "--child-server", server]);
    let route = format!("https/{}", server.strip_prefix("https://").unwrap());
    assert_reaches_child_via(&kc, id, &route, "x-remote-extra-clusternet-token", &token);
}

/// `http://host:port/base` (a `kubectl proxy` in the child) keeps its path.
#[test]
fn child_server_http_route_with_path() {
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("route-http");
    // A closed port: the hub's dial fails; the path is what matters here.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = format!("http://127.0.0.1:{port}/base");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token, "--child-server", &server]);
    let _ = kubectl(&kc, &["get", "ns"]);
    let recs = records_with("x-remote-extra-clusternet-token", &token, 1);
    let want = format!("{PROXY_PREFIX}{id}/proxy/http/127.0.0.1:{port}/base/api");
    assert!(recs.iter().any(|r| r.path.starts_with(&want)), "no request under {want}: {recs:?}");
    assert!(recs.iter().all(|r| r.header("x-remote-user") == Some("clusternet")));
}

/// The child token taken from a child kubeconfig.
#[test]
fn child_kubeconfig_token() {
    let dir = tempdir();
    let id = DUP_1.id;
    let token = unique("child-kc");
    let child = write(
        dir.path(),
        "child.kubeconfig",
        &format!(
            "apiVersion: v1
kind: Config
clusters:
- name: child
  cluster: {{server: https://10.1.2.3:6443, insecure-skip-tls-verify: true}}
users:
- name: admin
  user: {{token: {token}}}
contexts:
- name: child
  context: {{cluster: child, user: admin}}
current-context: child
"
        ),
    );
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--child-kubeconfig", child.to_str().unwrap()]);
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

/// `--merge-into` a copy of the admin kubeconfig: the admin context keeps
/// working, and the generated one (made current) reaches the child.
#[test]
fn merge_into_admin_kubeconfig() {
    let lab = lab();
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("merge");
    let merged = dir.path().join("merged.kubeconfig");
    std::fs::copy(lab.kubeconfig(), &merged).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"))
        .args(["gen", "--kubeconfig", lab.kubeconfig(), "--cluster-id", id, "--token", &token])
        .arg("--merge-into")
        .arg(&merged)
        .arg("--set-current-context")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_reaches_child(&merged, id, "x-remote-extra-clusternet-token", &token);
    let ns = kubectl_ok(&merged, &["--context", "lab", "get", "ns", "clusternet-system", "-o", "name"]);
    assert_eq!(ns.trim(), "namespace/clusternet-system");
}
