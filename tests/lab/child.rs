//! The child side made real: `child-real` is a second kube-apiserver
//! (its own CA, client CA and service-account key, etcd prefix
//! /child-registry), and the hub stand-in forwards its requests there as
//! clusternet-hub's exchanger would (from its ManagedCluster's
//! `status.apiserverURL`, or the route's host): the token extra becomes
//! `Authorization: Bearer`, the certificate/key extras the TLS client
//! certificate. Every test asserts on the child's own data (the namespace
//! `child-only` that the parent does not have, the identity the child
//! authenticated), not only on a status code.
//!
//! What is still a stand-in: clusternet-hub and clusternet-agent (their Go
//! module is not served by the module proxy, so they cannot be built here).

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn id() -> &'static str {
    CHILD_REAL.id
}

fn child_server() -> &'static str {
    lab().var("LAB_CHILD_SERVER")
}

fn child_only() -> &'static str {
    CHILD_ONLY_NAMESPACE
}

/// `127.0.0.1:<port>` of the child apiserver.
fn child_host() -> &'static str {
    child_server().strip_prefix("https://").unwrap()
}

/// A fresh token of the child's service account (TokenRequest through the
/// child admin kubeconfig): unique, so our requests can be found in the record.
fn fresh_token() -> String {
    let args = ["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA, "--duration", "1h"];
    kubectl_ok(lab().var("LAB_CHILD_KUBECONFIG"), &args).trim().to_string()
}

fn sa_username() -> String {
    format!("system:serviceaccount:{CHILD_ONLY_NAMESPACE}:{CHILD_SA}")
}

/// `kubectl get ns` through `kc` lists the child's namespaces: `child-only`
/// (which the parent does not have), not the parent's; the table output too.
fn assert_child_namespaces(kc: &Path) {
    let table = kubectl_ok(kc, &["get", "ns"]);
    assert!(
        table.lines().any(|l| l.split_whitespace().next() == Some(child_only()) && l.contains("Active")),
        "{} missing from kubectl get ns:\n{table}",
        child_only()
    );
    let ns = json(&kubectl_ok(kc, &["get", "ns", "-o", "json"]));
    let names: Vec<&str> =
        ns["items"].as_array().expect("items").iter().filter_map(|i| i["metadata"]["name"].as_str()).collect();
    assert!(names.contains(&child_only()), "{names:?}");
    assert!(names.contains(&"kube-system"), "a real apiserver's namespaces: {names:?}");
    // The cluster's dedicated namespace exists on the parent only (both have
    // clusternet-system: the child's holds clusternet-agent's service accounts).
    assert!(!names.contains(&CHILD_REAL.namespace), "the parent's namespaces leaked: {names:?}");
    assert!(!names.contains(&testkit::CHILD_NAMESPACE), "the stand-in's canned child answered: {names:?}");
    // One object by name, from the child.
    let one = json(&kubectl_ok(kc, &["get", "ns", child_only(), "-o", "json"]));
    assert_eq!(one["metadata"]["name"], child_only());
    assert_eq!(one["status"]["phase"], "Active");
}

/// Who the child says we are (`kubectl auth whoami`: a POST of a
/// SelfSubjectReview, so the request body travels through the stand-in too).
pub(crate) fn child_username(kc: &Path) -> String {
    let review = json(&kubectl_ok(kc, &["auth", "whoami", "-o", "json"]));
    assert_eq!(review["kind"], "SelfSubjectReview", "{review}");
    review["status"]["userInfo"]["username"].as_str().unwrap_or_default().to_string()
}

/// Recorded requests carrying `header: value`, once one of them satisfies
/// `want` (the stand-in appends after it answered; others may share the value).
fn records_until(header: &str, value: &str, want: impl Fn(&Rec) -> bool) -> Vec<Rec> {
    Wait { within: std::time::Duration::from_secs(5), every: std::time::Duration::from_millis(50) }
        .until(|| records_with(header, value, 1), |recs| recs.iter().any(&want))
}

/// The recorded requests for `header: value` went to the child at `route`,
/// through the aggregator as `clusternet`, and were forwarded to `url_prefix`.
fn assert_forwarded(header: &str, value: &str, route: &str, url_prefix: &str) -> Vec<Rec> {
    let want = format!("{PROXY_PREFIX}{}/proxy/{route}", id());
    let recs = records_until(header, value, |r| r.method == "GET" && r.path == format!("{want}/api/v1/namespaces"));
    assert!(
        recs.iter().any(|r| r.method == "GET" && r.path == format!("{want}/api/v1/namespaces")),
        "no GET {want}/api/v1/namespaces recorded: {:?}",
        recs.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
    );
    for r in &recs {
        assert!(r.path.starts_with(&want), "unexpected path {}", r.path);
        assert_eq!(r.client_cert_cn.as_deref(), Some("front-proxy-client"), "{r:?}");
        assert_eq!(r.header("x-remote-user"), Some("clusternet"), "{r:?}");
        assert_eq!(r.header("authorization"), None, "parent credentials must not reach the hub");
        let to = r.forwarded_to.as_deref().unwrap_or_else(|| panic!("not forwarded: {r:?}"));
        assert!(to.starts_with(url_prefix), "forwarded to {to}, expected {url_prefix}...");
        let rest = &r.path[want.len()..];
        assert!(to[url_prefix.len()..].starts_with(rest), "{to} does not end in {rest}");
    }
    recs
}

#[test]
fn the_child_is_real_and_separate() {
    let lab = lab();
    // The parent has no such namespace; the child has it.
    let out = kubectl(admin(), &["get", "ns", child_only()]);
    assert!(!out.status.success(), "the parent must not have {}", child_only());
    assert!(text(&out.stderr).contains("NotFound"), "{}", text(&out.stderr));
    kubectl_ok(lab.var("LAB_CHILD_KUBECONFIG"), &["get", "ns", child_only()]);
    let v = json(&kubectl_ok(lab.var("LAB_CHILD_KUBECONFIG"), &["get", "--raw", "/version"]));
    assert_eq!(v["gitVersion"], lab.var("LAB_K8S_VERSION"));
}

/// `gen --cluster-id` with the service-account token, route `direct`, anonymous parent.
#[test]
fn token_by_id_direct_anonymous_parent() {
    let dir = tempdir();
    let token = fresh_token();
    let file = write(dir.path(), "child.token", &format!("{token}\n"));
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id(), "--token-file", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains("username: system:anonymous"), "{text}");
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), sa_username());
    let recs = assert_forwarded("x-remote-extra-clusternet-token", &token, "direct", child_server());
    assert!(recs.iter().all(|r| r.status == Some(200) || r.status == Some(201)), "{recs:?}");
    // The whoami POST: its body reached the child (it answered with our identity above).
    assert!(recs.iter().any(|r| r.method == "POST" && r.path.ends_with("/selfsubjectreviews")), "{recs:?}");
}

/// `gen --cluster child-real` (by name) with the lab's token file.
#[test]
fn token_file_by_name() {
    let lab = lab();
    let dir = tempdir();
    let kc = generate_on_lab(dir.path(), &["--cluster", "child-real", "--token-file", lab.var("LAB_CHILD_TOKEN_FILE")]);
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(&format!("{PROXY_PREFIX}{}/proxy/direct", id())), "{text}");
    assert!(text.contains("name: clusternet-child-real"), "{text}");
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), sa_username());
}

/// Route `https/<child>` (`--child-server`) with the parent token from the
/// clusternet-hub-proxy Secret (`--parent-auth token` without a given token).
#[test]
fn token_child_server_route_and_parent_token() {
    let dir = tempdir();
    let token = fresh_token();
    let kc = generate_on_lab(
        dir.path(),
        &["--cluster", "child-real", "--token", &token, "--child-server", child_server(), "--parent-auth", "token"],
    );
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(&format!("/proxy/https/{}", child_host())), "{text}");
    assert!(!text.contains("system:anonymous"), "{text}");
    assert!(text.contains(&hub_proxy_token()), "the hub-proxy token is the parent credential");
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), sa_username());
    assert_forwarded("x-remote-extra-clusternet-token", &token, &format!("https/{}", child_host()), child_server());
}

/// The child client certificate and key, both routes; the child sees its CN.
#[test]
fn client_certificate_direct_and_child_server() {
    let lab = lab();
    let dir = tempdir();
    let (cert, key) = (lab.var("LAB_CHILD_CERT"), lab.var("LAB_CHILD_KEY"));
    let user = CHILD_CERT_USER;
    let cert_b64 = B64.encode(std::fs::read(cert).unwrap());

    let kc = generate_on_lab(dir.path(), &["--cluster-id", id(), "--client-certificate", cert, "--client-key", key]);
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), user);
    let namespaces = format!("{}/api/v1/namespaces?limit=500", child_server());
    // kubectl adds `&timeout=20s` (--request-timeout).
    let forwarded =
        |r: &Rec| r.forwarded_to.as_deref().is_some_and(|u| u.starts_with(&namespaces)) && r.status == Some(200);
    let recs = records_until("x-remote-extra-clusternet-certificate", &cert_b64, forwarded);
    assert!(!recs.is_empty(), "the certificate extra is the standard base64 of the PEM file");
    assert!(recs.iter().all(|r| r.headers_with_prefix("x-remote-extra-").len() == 2), "{recs:?}");
    assert!(recs.iter().any(forwarded), "{namespaces} not forwarded with 200: {recs:?}");

    let kc = generate_on_lab(
        dir.path(),
        &[
            "--cluster",
            "child-real",
            "--client-certificate",
            cert,
            "--client-key",
            key,
            "--child-server",
            &format!("https://{}", child_host()),
            "--parent-auth",
            "token",
        ],
    );
    assert!(std::fs::read_to_string(&kc).unwrap().contains(&format!("/proxy/https/{}", child_host())));
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), user);
}

/// `--child-kubeconfig`: the child's own admin kubeconfig (certificate files),
/// and a token kubeconfig for the service account.
#[test]
fn child_kubeconfig() {
    let lab = lab();
    let dir = tempdir();
    let kc =
        generate_on_lab(dir.path(), &["--cluster-id", id(), "--child-kubeconfig", lab.var("LAB_CHILD_KUBECONFIG")]);
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), "child-admin");

    let token = fresh_token();
    let child = write(
        dir.path(),
        "child-sa.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: child\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: reader\n  user:\n    token: {token}\ncontexts:\n- name: reader@child\n  context: {{cluster: child, user: reader}}\n\
             current-context: reader@child\n",
            child_server(),
            lab.var("LAB_CHILD_CA")
        ),
    );
    // The same kubeconfig works directly against the child ...
    kubectl_ok(&child, &["get", "ns", child_only()]);
    // ... and through the parent.
    let kc = generate_on_lab(dir.path(), &["--cluster", "child-real", "--child-kubeconfig", child.to_str().unwrap()]);
    assert_child_namespaces(&kc);
    assert_eq!(child_username(&kc), sa_username());
    assert_forwarded("x-remote-extra-clusternet-token", &token, "direct", child_server());
}

#[test]
fn list_shows_child_real_ready() {
    let lab = lab();
    let (out, _) = lab_cmd("list").args(&["-o", "json"]).ok();
    let items = json(&out)["items"].as_array().expect("items").clone();
    let item = items.iter().find(|i| i["clusterId"] == id()).unwrap_or_else(|| panic!("child-real not listed: {out}"));
    assert_eq!(
        item,
        &serde_json::json!({
            "namespace": CHILD_REAL.namespace,
            "name": "child-real",
            "clusterId": id(),
            "clusterType": "EdgeCluster",
            "syncMode": "Pull",
            "kubernetesVersion": lab.var("LAB_K8S_VERSION"),
            "ready": "True",
            "apiserverURL": child_server(),
        })
    );
    let (table, _) = lab_cmd("list").args(&["-n", CHILD_REAL.namespace]).ok();
    let row = table.lines().find(|l| l.contains("child-real")).unwrap_or_else(|| panic!("{table}"));
    for want in [id(), "True", child_server()] {
        assert!(row.contains(want), "{want} missing: {row}");
    }
}

/// `verify --kubeconfig kc`: (success, stdout, stderr).
fn verify(kc: &Path) -> (bool, String, String) {
    let out = lab_verify(kc).args(&["--timeout", "10"]).run();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn verify_reports_the_childs_own_version() {
    let lab = lab();
    let dir = tempdir();
    let token = fresh_token();
    let child_version = json(&kubectl_ok(lab.var("LAB_CHILD_KUBECONFIG"), &["version", "-o", "json"]))["serverVersion"]
        ["gitVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(child_version, "v1.32.13");
    for extra in [&[][..], &["--parent-auth", "token"][..]] {
        let mut args = vec!["--cluster-id", id(), "--token", &token];
        args.extend_from_slice(extra);
        let kc = generate_on_lab(dir.path(), &args);
        let (ok, stdout, stderr) = verify(&kc);
        assert!(ok, "{stderr}");
        assert!(
            stdout.starts_with(&format!(
                "context \"clusternet-{}\": child cluster reachable, Kubernetes {child_version} (",
                id()
            )),
            "{stdout}"
        );
        assert!(!stdout.contains(testkit::CHILD_GIT_VERSION), "the canned child answered: {stdout}");
    }
    // Its /version and /api probes were answered by the child itself.
    let api = format!("{}/api", child_server());
    let to = |r: &Rec| r.forwarded_to.as_deref().map(|u| u.split('?').next().unwrap().to_string());
    let recs = records_until("x-remote-extra-clusternet-token", &token, |r| {
        to(r).as_deref() == Some(api.as_str()) && r.status == Some(200)
    });
    for path in ["/version", "/api"] {
        let want = format!("{}{path}", child_server());
        assert!(
            recs.iter().any(|r| to(r).as_deref() == Some(want.as_str()) && r.status == Some(200)),
            "{want} not forwarded with 200: {recs:?}"
        );
    }
}

/// A token the child does not accept: 401 from the child, through the parent.
/// `verify` tells it from a parent 401 (the parent's own /version accepts the
/// parent credentials) and says so; kubectl gets Unauthorized.
#[test]
fn wrong_child_token_is_diagnosed() {
    let dir = tempdir();
    // A real-looking token signed by nobody the child trusts.
    let bad = format!("{}x", fresh_token());
    for extra in [&[][..], &["--parent-auth", "token"][..]] {
        let mut args = vec!["--cluster-id", id(), "--token", &bad];
        args.extend_from_slice(extra);
        let kc = generate_on_lab(dir.path(), &args);
        let (ok, stdout, stderr) = verify(&kc);
        assert!(!ok, "verify should fail: {stdout}");
        assert!(stderr.contains("GET /version through the proxy failed: HTTP 401"), "{stderr}");
        assert!(stderr.contains("child credentials rejected"), "{extra:?}: {stderr}");
        assert!(stderr.contains("401 from the child"), "{stderr}");
        assert!(!stderr.contains(&bad), "the token leaked: {stderr}");
        let out = kubectl(&kc, &["get", "ns"]);
        assert!(!out.status.success());
        // kubectl's words for a 401 (the child's, passed back unchanged).
        assert!(text(&out.stderr).contains("You must be logged in to the server"), "{}", text(&out.stderr));
    }
    let recs = records_until("x-remote-extra-clusternet-token", &bad, |r| r.status == Some(401));
    assert!(recs.iter().any(|r| r.status == Some(401) && r.forwarded_to.is_some()), "the child answered 401: {recs:?}");
}

/// A key that is not the certificate's, written by hand as raw extras (gen
/// refuses the pair): the hub's 400 "invalid key pair in header", diagnosed;
/// nothing reaches the child.
#[test]
fn mismatched_key_pair_is_diagnosed() {
    let lab = lab();
    let dir = tempdir();
    let kc = generate_on_lab(
        dir.path(),
        &[
            "--cluster-id",
            id(),
            "--client-certificate",
            lab.var("LAB_CHILD_CERT"),
            "--client-key",
            lab.var("LAB_CHILD_KEY"),
        ],
    );
    let (_, other_key) = child_cert_pair(&unique("other"));
    let other_b64 = B64.encode(&other_key);
    let mut doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    let extras = &mut doc["users"][0]["user"]["as-user-extra"];
    assert!(extras["clusternet-privatekey"].is_array(), "{extras}");
    extras["clusternet-privatekey"] = serde_json::json!([other_b64]);
    std::fs::write(&kc, serde_yaml::to_string(&doc).unwrap()).unwrap();

    let (ok, stdout, stderr) = verify(&kc);
    assert!(!ok, "verify should fail: {stdout}");
    for want in ["HTTP 400", "invalid key pair in header", "invalid key pair:", "the key that belongs"] {
        assert!(stderr.contains(want), "{want:?} missing: {stderr}");
    }
    assert!(!stderr.contains(&other_b64), "the key leaked: {stderr}");
    let out = kubectl(&kc, &["get", "ns"]);
    assert!(!out.status.success());
    let recs = records_until("x-remote-extra-clusternet-privatekey", &other_b64, |r| r.status == Some(400));
    assert!(!recs.is_empty(), "the hub got the pair");
    assert!(recs.iter().all(|r| r.status == Some(400) && r.forwarded_to.is_none()), "{recs:?}");
}

/// The child authenticates the child identity but forbids the request (its
/// discovery bindings removed): a 403 from the child, which `verify` must not
/// blame on the parent's Clusternet RBAC. Holds the lab exclusively and puts
/// the bindings back, also when it fails.
#[test]
fn child_forbidding_the_request_is_diagnosed() {
    let dir = tempdir();
    let token = fresh_token();
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id(), "--token", &token]);
    let child_admin = lab().var("LAB_CHILD_KUBECONFIG");
    let _lab = exclusive();
    let bindings = ["system:public-info-viewer", "system:discovery", "system:basic-user"];
    let saved: Vec<String> = bindings
        .iter()
        .map(|b| {
            let mut obj = json(&kubectl_ok(child_admin, &["get", "clusterrolebinding", b, "-o", "json"]));
            let meta = obj["metadata"].as_object_mut().unwrap();
            for k in ["resourceVersion", "uid", "creationTimestamp", "managedFields"] {
                meta.remove(k);
            }
            write(dir.path(), &format!("{}.json", b.replace(':', "-")), &obj.to_string()).display().to_string()
        })
        .collect();
    struct PutBack<'a>(&'a str, &'a [String]);
    impl Drop for PutBack<'_> {
        fn drop(&mut self) {
            for file in self.1 {
                let out = kubectl(self.0, &["apply", "-f", file]);
                assert!(out.status.success(), "restoring {file}: {}", text(&out.stderr));
            }
        }
    }
    let _put_back = PutBack(child_admin, &saved);
    for b in bindings {
        kubectl_ok(child_admin, &["delete", "clusterrolebinding", b]);
    }
    // RBAC changes reach the authorizer's cache within a moment.
    let forbidden = |(ok, _, stderr): &(bool, String, String)| !ok && stderr.contains("HTTP 403");
    let last = Wait { within: std::time::Duration::from_secs(30), every: std::time::Duration::from_millis(300) }
        .until(|| verify(&kc), forbidden);
    assert!(forbidden(&last), "no 403 from the child: {}", last.2);
    let stderr = last.2;
    assert!(stderr.contains("child forbids the request"), "{stderr}");
    assert!(stderr.contains("grant it RBAC in the child"), "{stderr}");
    assert!(!stderr.contains("Clusternet RBAC missing"), "{stderr}");
    assert!(stderr.contains(&sa_username()), "the child's own words: {stderr}");
    assert!(!stderr.contains(&token), "{stderr}");
}
