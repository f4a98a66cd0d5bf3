//! The generated kubeconfig is authorized by the real kube-apiserver with the
//! Clusternet RBAC, and the child credentials reach the hub as user extras.

use crate::support::*;

/// Anonymous parent auth (the default) + child token: kube-apiserver treats
/// `username: system:anonymous` as anonymous, lets it impersonate `clusternet`
/// with the token extra, and forwards X-Remote-Extra-Clusternet-Token as is.
#[test]
fn anonymous_parent_with_child_token() {
    let lab = lab();
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("child-token");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token]);
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains("username: system:anonymous"), "{text}");
    assert!(text.contains(&format!("{}{PROXY_PREFIX}{id}/proxy/direct", lab.server())), "{text}");

    let recs = assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
    for r in &recs {
        assert_eq!(
            r.headers_with_prefix("x-remote-extra-"),
            vec![("x-remote-extra-clusternet-token", token.as_str())],
            "exactly the token extra: {r:?}"
        );
    }
}

/// Child token from a file (the form the docs recommend), another cluster.
#[test]
fn anonymous_parent_with_child_token_file_child_b() {
    let dir = tempdir();
    let id = CHILD_B.id;
    let token = unique("child-b-token");
    let file = write(dir.path(), "child.token", &format!("{token}\n"));
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token-file", file.to_str().unwrap()]);
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

/// An upper-case ID is normalised by the product: the hub matches IDs exactly.
#[test]
fn upper_case_cluster_id_is_normalised() {
    let dir = tempdir();
    let id = DUP_1.id;
    let token = unique("upper");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", &id.to_uppercase(), "--token", &token]);
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

/// Child client certificate + key: both travel as padded standard base64 of
/// the PEM, as clusternet-certificate / clusternet-privatekey extras.
#[test]
fn anonymous_parent_with_child_client_certificate() {
    let dir = tempdir();
    let id = CHILD_A.id;
    let (cert, key) = child_cert_pair(&unique("child-user"));
    let cert_file = write(dir.path(), "child.crt", &cert);
    let key_file = write(dir.path(), "child.key", &key);
    let kc = generate_on_lab(
        dir.path(),
        &[
            "--cluster-id",
            id,
            "--client-certificate",
            cert_file.to_str().unwrap(),
            "--client-key",
            key_file.to_str().unwrap(),
        ],
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert_b64 = b64.encode(&cert);
    let recs = assert_reaches_child(&kc, id, "x-remote-extra-clusternet-certificate", &cert_b64);
    for r in &recs {
        let key_b64 = r.header("x-remote-extra-clusternet-privatekey").expect("privatekey extra");
        assert_eq!(b64.decode(key_b64).expect("std base64"), key.as_bytes(), "key round-trips");
        assert_eq!(r.header("x-remote-extra-clusternet-token"), None);
        assert_eq!(r.headers_with_prefix("x-remote-extra-").len(), 2, "{r:?}");
    }
}

/// `--parent-auth token` with the real token of the clusternet-hub-proxy
/// Secret, filled by kube-controller-manager's token controller.
#[test]
fn parent_token_from_hub_proxy_secret() {
    let dir = tempdir();
    let id = CHILD_B.id;
    let parent = hub_proxy_token();
    assert_eq!(parent.split('.').count(), 3, "a service-account JWT");
    let parent_file = write(dir.path(), "parent.token", &parent);
    let token = unique("via-parent-token");
    let kc = generate_on_lab(
        dir.path(),
        &[
            "--cluster-id",
            id,
            "--token",
            &token,
            "--parent-auth",
            "token",
            "--parent-token-file",
            parent_file.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(&parent), "the parent token is in the user entry");
    assert!(!text.contains("system:anonymous"), "{text}");
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

/// The parent token really is what authenticates: a wrong one is 401 from
/// kube-apiserver, and nothing reaches the hub.
#[test]
fn wrong_parent_token_is_401() {
    let dir = tempdir();
    let id = CHILD_B.id;
    let token = unique("bad-parent");
    let kc = generate_on_lab(
        dir.path(),
        &["--cluster-id", id, "--token", &token, "--parent-auth", "token", "--parent-token", "not-a-real-token"],
    );
    let out = kubectl(&kc, &["get", "ns", "-v=6"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(records_with("x-remote-extra-clusternet-token", &token, 0).is_empty());
}

/// `--parent-auth keep` with the lab admin's client certificate: the admin
/// (system:masters) may impersonate, so the hub sees `clusternet` too.
#[test]
fn keep_parent_admin_certificate() {
    let dir = tempdir();
    let id = DUP_2.id;
    let token = unique("keep-admin");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token, "--parent-auth", "keep"]);
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(!text.contains("system:anonymous"), "{text}");
    assert!(text.contains("client-certificate"), "the admin's certificate is kept: {text}");
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

/// The seeded data the lab promises (used by other tests and by hand).
#[test]
fn seeded_managed_clusters() {
    let lab = lab();
    let out = kubectl_ok(lab.kubeconfig(), &["get", "managedclusters.clusters.clusternet.io", "-A", "-o", "json"]);
    let list = json(&out);
    let items = list["items"].as_array().unwrap();
    let find = |id: &str| {
        items
            .iter()
            .find(|i| i["spec"]["clusterId"] == id)
            .unwrap_or_else(|| panic!("no ManagedCluster with clusterId {id}"))
    };
    for seed in [CHILD_A, CHILD_B, DUP_1, DUP_2] {
        let id = seed.id;
        let mc = find(id);
        assert_eq!(mc["metadata"]["name"], seed.name);
        assert_eq!(mc["metadata"]["namespace"], seed.namespace);
        assert_eq!(mc["metadata"]["labels"]["clusters.clusternet.io/cluster-id"], id);
        assert_eq!(mc["status"]["useSocket"], true);
        assert!(mc["status"]["apiserverURL"].as_str().is_some_and(|u| u.starts_with("https://")));
    }
    assert_eq!(DUP_1.name, DUP_2.name);
    assert_ne!(DUP_1.namespace, DUP_2.namespace);
    // The hub's lookup: a label selector on the ID, exact match.
    let sel = format!("clusters.clusternet.io/cluster-id={}", CHILD_A.id);
    let names = kubectl_ok(lab.kubeconfig(), &["get", "mcls", "-A", "-l", &sel, "-o", "name"]);
    assert_eq!(names.trim(), "managedcluster.clusters.clusternet.io/child-a");
}
