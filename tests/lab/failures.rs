//! The hub's failure answers reach kubectl through the real aggregator with
//! their status and message. They come from the seeded ManagedClusters, as
//! they would from clusternet-hub: no cluster with the ID, an agent without a
//! session (child-offline), no `status.apiserverURL` (child-nourl); and the
//! paths the hub redirects or refuses.

use std::process::Command;

use crate::support::*;

/// An ID no ManagedCluster carries.
const UNKNOWN_ID: &str = "e0000000-0000-4000-8000-000000000400";

fn fails_with(id: &str, code: &str, message: &str) {
    let dir = tempdir();
    let token = unique("fail");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token]);
    // -v=8: kubectl logs the status line and the hub's Status body.
    let out = kubectl(&kc, &["get", "ns", "-v=8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{id}: must fail");
    assert!(err.contains(code), "{id}: expected {code}: {err}");
    assert!(err.contains(message), "{id}: expected {message:?}: {err}");
    // It was the hub that answered, reached as clusternet with the token.
    let recs = records_with("x-remote-extra-clusternet-token", &token, 1);
    assert!(!recs.is_empty(), "{id}: nothing reached the hub");
    assert!(recs.iter().all(|r| r.header("x-remote-user") == Some("clusternet")));
    assert!(recs.iter().all(|r| r.forwarded_to.is_none()), "{id}: the hub dialled a child: {recs:?}");
}

#[test]
fn no_cluster() {
    fails_with(UNKNOWN_ID, "400", &format!("no cluster id is {UNKNOWN_ID}"));
}

#[test]
fn disconnected() {
    let id = CHILD_OFFLINE.id;
    fails_with(id, "400", &format!("cannot proxy through cluster {id}, whose agent is disconnected"));
}

#[test]
fn no_apiserver_url() {
    let id = CHILD_NOURL.id;
    fails_with(id, "503", &format!("cannot retrieve valid apiserver url for cluster {id}"));
}

/// `curl` through the parent as the lab admin, impersonating clusternet:
/// (status, Location header, body).
fn curl(path: &str) -> (u16, String, String) {
    let lab = lab();
    let _shared = shared();
    let out = Command::new("curl")
        .args(["-sS", "--cacert", lab.var("LAB_CA"), "--cert", lab.var("LAB_ADMIN_CERT"), "--key"])
        .arg(lab.var("LAB_ADMIN_KEY"))
        .args(["-H", "Impersonate-User: clusternet", "-w", "\n%{http_code} %{redirect_url}"])
        .arg(format!("{}{path}", lab.server()))
        .output()
        .expect("curl");
    let stdout = text(&out.stdout);
    let (body, last) = stdout.rsplit_once('\n').unwrap_or_else(|| panic!("curl {path}: {}", text(&out.stderr)));
    let (code, location) = last.split_once(' ').unwrap_or((last, ""));
    (code.parse().unwrap(), location.to_string(), body.to_string())
}

/// A location without a path is redirected to the hub's own address (the
/// parent runs with --aggregator-reject-forwarding-redirect=false); `proxy/`
/// and an unknown scheme are 500 Status without a reason.
#[test]
fn paths_the_hub_redirects_or_refuses() {
    let lab = lab();
    let id = CHILD_A.id;
    let hub = format!("https://localhost:{}", lab.var("LAB_HUB_PORT"));
    let canned = lab.var("LAB_CANNED_CHILD_SERVER").strip_prefix("https://").unwrap();
    for tail in ["/direct", &format!("/https/{canned}"), ""] {
        let path = format!("{PROXY_PREFIX}{id}/proxy{tail}");
        let (code, location, body) = curl(&path);
        assert_eq!((code, location.as_str()), (301, format!("{hub}{path}/").as_str()), "{tail}: {body}");
    }
    for (tail, message) in
        [("/", "http: no Host in request URL"), ("/ftp/x/version", "unsupported protocol scheme \"ftp\"")]
    {
        let (code, _, body) = curl(&format!("{PROXY_PREFIX}{id}/proxy{tail}"));
        let status = json(&body);
        assert_eq!((code, status["message"].as_str()), (500, Some(message)), "{tail}: {body}");
        assert!(status.get("reason").is_none(), "{tail}: {body}");
    }
}
