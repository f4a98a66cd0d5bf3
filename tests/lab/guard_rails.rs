//! Against the real parent: an X.509 v1 client certificate (as `openssl x509
//! -req` makes it, and as kubectl sends it) works for `list`, `gen --cluster`,
//! `gen --verify` and `verify`; `verify` refuses kubeconfigs that would answer
//! /version without the proxy (the parent's admin one, the child's own).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A client certificate signed by the lab's client CA with `openssl x509
/// -req` (no extensions: X.509 v1), in group system:masters; a kubeconfig for
/// the lab parent with it. Checked to be v1.
fn v1_admin_kubeconfig(dir: &Path) -> PathBuf {
    let lab = lab();
    let pki = Path::new(lab.var("LAB_ADMIN_CERT")).parent().unwrap();
    let (key, csr, crt) = (dir.join("v1.key"), dir.join("v1.csr"), dir.join("v1.crt"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl (the lab needs it)");
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &s(&key)]);
    openssl(&["req", "-new", "-key", &s(&key), "-subj", "/O=system:masters/CN=lab-v1-admin", "-out", &s(&csr)]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&pki.join("client-ca.crt")),
        "-CAkey",
        &s(&pki.join("client-ca.key")),
        "-CAcreateserial",
        "-CAserial",
        &s(&dir.join("v1.srl")),
        "-days",
        "1",
        "-out",
        &s(&crt),
    ]);
    let shown = openssl(&["x509", "-in", &s(&crt), "-noout", "-text"]);
    assert!(shown.contains("Version: 1 (0x0)"), "not an X.509 v1 certificate:\n{shown}");
    write(
        dir,
        "v1.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: v1\nclusters:\n- name: lab\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: v1-admin\n  user:\n    client-certificate: {}\n    client-key: {}\n\
             contexts:\n- name: v1\n  context: {{cluster: lab, user: v1-admin}}\n",
            lab.server(),
            lab.var("LAB_CA"),
            s(&crt),
            s(&key)
        ),
    )
}

#[test]
fn x509_v1_client_certificates_work_like_with_kubectl() {
    let dir = tempdir();
    let kc = v1_admin_kubeconfig(dir.path());
    let kc_s = kc.to_str().unwrap();
    // The oracle: kubectl authenticates with it.
    let who = kubectl_ok(&kc, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(who, "lab-v1-admin");
    // list
    let (listed, err) = tool_ok(&["list", "--kubeconfig", kc_s]);
    assert!(listed.contains(CHILD_A.id), "{listed}\n{err}");
    // gen --cluster (a lookup) with --verify, keeping the v1 user as the parent auth.
    let token = unique("v1-cert");
    let out = generate(
        dir.path(),
        &["--kubeconfig", kc_s, "--cluster", "child-a", "--token", &token, "--parent-auth", "keep", "--verify"],
    );
    // verify on what it wrote, and kubectl through the proxy with it.
    let (reached, err) = lab_verify(&out).ok();
    assert!(reached.contains("child cluster reachable"), "{reached}\n{err}");
    let v = json(&kubectl_ok(&out, &["version", "-o", "json"]));
    assert_eq!(v["serverVersion"]["gitVersion"], testkit::CHILD_GIT_VERSION);
    assert!(!records_with("x-remote-extra-clusternet-token", &token, 2).is_empty());
}

#[test]
fn verify_refuses_kubeconfigs_that_are_not_generated() {
    let lab = lab();
    // Both answer /version themselves: "reachable" would have tested nothing.
    let child = Path::new(lab.var("LAB_STATE")).join("child.kubeconfig");
    for kc in [PathBuf::from(admin()), child] {
        assert!(kc.exists(), "{}", kc.display());
        let err = lab_verify(&kc).err();
        assert!(err.contains("is not a generated Clusternet context: its server"), "{}: {err}", kc.display());
        assert!(err.contains("pass --kubeconfig with the file `gen` wrote"), "{err}");
    }
    // The same through KUBECONFIG, as a CI step that forgot --kubeconfig.
    let out = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"))
        .arg("verify")
        .env("KUBECONFIG", admin())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a generated Clusternet context"));
}

/// The child's own kubeconfig given to `gen` as the parent (users do this):
/// with --verify the parent's own answer (no Clusternet API) says so.
#[test]
fn gen_verify_names_a_child_kubeconfig_given_as_the_parent() {
    let lab = lab();
    let child = Path::new(lab.var("LAB_STATE")).join("child.kubeconfig");
    let dir = tempdir();
    let out = dir.path().join("never.kubeconfig");
    let err = tool_err(&[
        "gen",
        "--kubeconfig",
        child.to_str().unwrap(),
        "--cluster-id",
        CHILD_A.id,
        "--token",
        &unique("swapped"),
        "--parent-auth",
        "keep",
        "--verify",
        "--output-file",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("serves no Clusternet API (GET /apis/clusters.clusternet.io: 404)"), "{err}");
    assert!(err.contains("is --kubeconfig the child's own kubeconfig?"), "{err}");
    assert!(!out.exists(), "nothing is written");
}
