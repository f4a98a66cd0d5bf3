//! The hub's failure answers (contract §5) reach kubectl through the real
//! aggregator with their status and message.

use crate::support::*;

fn fails_with(id_var: &str, code: &str, message: &str) {
    let lab = lab();
    let dir = tempdir();
    let id = lab.var(id_var);
    let token = unique("fail");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token]);
    // -v=8: kubectl logs the status line and the hub's Status body.
    let out = kubectl(&kc, &["get", "ns", "-v=8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{id_var}: must fail");
    assert!(err.contains(code), "{id_var}: expected {code}: {err}");
    assert!(err.contains(message), "{id_var}: expected {message:?}: {err}");
    // It was the hub that answered, reached as clusternet with the token.
    let recs = records_with("x-remote-extra-clusternet-token", &token, 1);
    assert!(!recs.is_empty(), "{id_var}: nothing reached the hub");
    assert!(recs.iter().all(|r| r.header("x-remote-user") == Some("clusternet")));
}

#[test]
fn no_cluster() {
    let id = lab().var("LAB_FAIL_NO_CLUSTER").to_string();
    fails_with("LAB_FAIL_NO_CLUSTER", "400", &format!("no cluster id is {id}"));
}

#[test]
fn disconnected() {
    fails_with("LAB_FAIL_DISCONNECTED", "400", "whose agent is disconnected");
}

#[test]
fn no_apiserver_url() {
    fails_with("LAB_FAIL_NO_APISERVER_URL", "503", "cannot retrieve valid apiserver url");
}

#[test]
fn featuregate_off() {
    fails_with("LAB_FAIL_FEATUREGATE_OFF", "503", "featuregate SocketConnection has not been enabled");
}
