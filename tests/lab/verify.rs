//! `verify` and `gen --verify` against the real parent: success through the
//! aggregator to the stand-in, and every failure we can cause here with its
//! diagnosis and fix. Messages never carry the kubeconfig's secrets.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::*;

/// `verify --kubeconfig kc [extra]`: (success, stdout, stderr).
fn verify(kc: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["verify", "--kubeconfig", kc.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = tool(&args);
    let ok = out.status.success();
    if !ok {
        assert_eq!(out.status.code(), Some(1), "verify fails with exit code 1");
    }
    (ok, text(&out.stdout), text(&out.stderr))
}

/// verify must fail; its one `error:` line, checked for the secrets.
fn verify_fails(kc: &Path, secrets: &[&str]) -> String {
    let (ok, stdout, stderr) = verify(kc, &[]);
    assert!(!ok, "verify should fail: {stdout}");
    assert!(stdout.is_empty(), "nothing on stdout on failure: {stdout}");
    assert!(stderr.starts_with("error: context "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_eq!(testkit::doubled_words(&stderr), None, "words said twice: {stderr}");
    for s in secrets {
        assert!(!stderr.contains(s), "the secret {s:?} leaked: {stderr}");
    }
    stderr
}

fn gen_token(dir: &Path, parent: &str, id: &str, token: &str) -> PathBuf {
    generate(dir, &["--kubeconfig", parent, "--cluster-id", id, "--token", token])
}

#[test]
fn success_prints_the_child_version() {
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("verify-ok");
    let kc = gen_token(dir.path(), admin(), id, &token);
    let (ok, stdout, stderr) = verify(&kc, &["--timeout", "5"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "context \"clusternet-{id}\": child cluster reachable, Kubernetes {}",
            testkit::CHILD_GIT_VERSION
        )),
        "{stdout}"
    );
    assert_eq!(testkit::CHILD_GIT_VERSION, "v1.32.13-standin");
    // Both probes went through the aggregator to the stand-in, as clusternet.
    let recs = records_with("x-remote-extra-clusternet-token", &token, 2);
    let prefix = format!("{PROXY_PREFIX}{id}/proxy/direct");
    for path in ["/version", "/api"] {
        assert!(recs.iter().any(|r| r.path == format!("{prefix}{path}")), "no {path}: {recs:?}");
    }
    assert!(recs.iter().all(|r| r.header("x-remote-user") == Some("clusternet")
        && r.client_cert_cn.as_deref() == Some("front-proxy-client")));
}

#[test]
fn context_flag_picks_the_context() {
    let dir = tempdir();
    let (ta, tb) = (unique("ctx-a"), unique("ctx-b"));
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!("clusters:\n  child-a: {{token: {ta}}}\n  child-b: {{token: {tb}}}\n"),
    );
    let kc = dir.path().join("two.kubeconfig");
    lab_gen().cluster("child-a").cluster("child-b").credentials(&creds).output_file(&kc).ok();
    let (ok, stdout, stderr) = verify(&kc, &["--context", "clusternet-child-b"]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("context \"clusternet-child-b\": child cluster reachable"), "{stdout}");
    let recs = records_with("x-remote-extra-clusternet-token", &tb, 2);
    assert!(recs.iter().all(|r| r.path.contains(CHILD_B.id)), "{recs:?}");
    assert!(records_with("x-remote-extra-clusternet-token", &ta, 0).is_empty(), "child-a was not probed");
    let err = lab_verify(&kc).args(&["--context", "nope"]).err();
    assert!(err.contains("nope"), "{err}");
}

/// The hub's own failures, from the seeded ManagedClusters as the real hub
/// makes them, each with its cause and fix.
#[test]
fn hub_failures_are_diagnosed() {
    let dir = tempdir();
    let unknown = "e0000000-0000-4000-8000-000000000400";
    let cases = [
        (unknown, "HTTP 400", "no cluster id is", "unknown cluster ID", "clusternet-kubeconfig list"),
        (CHILD_OFFLINE.id, "HTTP 400", "whose agent is disconnected", "agent disconnected", "check the agent"),
        (CHILD_NOURL.id, "HTTP 503", "cannot retrieve valid apiserver url", "no apiserver URL", "--child-server"),
    ];
    for (id, status, server, cause, hint) in cases {
        let token = unique("verify-fail");
        let kc = gen_token(dir.path(), admin(), id, &token);
        let t0 = Instant::now();
        let err = verify_fails(&kc, &[&token]);
        // The hub's first answer is reported, not retried until the timeout.
        assert!(t0.elapsed() < Duration::from_secs(5), "{id}: took {:?}", t0.elapsed());
        assert!(err.contains("GET /version through the proxy failed"), "{id}: {err}");
        for want in [status, server, cause, hint] {
            assert!(err.contains(want), "{id}: {want:?} missing: {err}");
        }
        assert!(!records_with("x-remote-extra-clusternet-token", &token, 1).is_empty(), "{id}: the hub answered");
    }
}

/// A generated kubeconfig with its user extras replaced (gen refuses such
/// input): `extras` is a YAML mapping.
fn with_extras(dir: &Path, id: &str, extras: &str) -> PathBuf {
    let kc = gen_token(dir, admin(), id, &unique("extras"));
    let mut doc: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    doc["users"][0]["user"]["as-user-extra"] = serde_yaml::from_str(extras).unwrap();
    std::fs::write(&kc, serde_yaml::to_string(&doc).unwrap()).unwrap();
    kc
}

/// A certificate extra that is not base64: the hub's 400 in its words. A
/// lone certificate (no key) is ignored by the hub: the real child answers
/// 401 to a request without credentials.
#[test]
fn certificate_extras_as_the_hub_reads_them() {
    use base64::Engine as _;
    let lab = lab();
    let dir = tempdir();
    let kc =
        with_extras(dir.path(), CHILD_REAL.id, "{clusternet-certificate: [abc!def], clusternet-privatekey: [abc]}");
    let err = verify_fails(&kc, &[]);
    assert!(
        err.contains(
            "HTTP 400 (invalid certificate in header Clusternet-Certificate: illegal base64 data at input byte 3)"
        ),
        "{err}"
    );
    assert!(err.contains(": invalid child certificate or key: "), "{err}");

    let cert = base64::engine::general_purpose::STANDARD.encode(std::fs::read(lab.var("LAB_CHILD_CERT")).unwrap());
    let kc = with_extras(dir.path(), CHILD_REAL.id, &format!("{{clusternet-certificate: ['{cert}']}}"));
    let err = verify_fails(&kc, &[]);
    assert!(err.contains("HTTP 401") && err.contains("child credentials rejected"), "{err}");
}

/// Routes the hub (its agent) cannot use, for real: a closed port, an https
/// route to a plain-HTTP server, an http route to the HTTPS child (its
/// answer arrives cut short and is kept), and a scheme that is neither.
#[test]
fn routes_the_agent_cannot_reach() {
    let lab = lab();
    let dir = tempdir();
    let id = CHILD_REAL.id;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // A plain-HTTP server, answering like Go's net/http to a TLS ClientHello.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for mut conn in plain.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request");
        }
    });
    let child_port = lab.var("LAB_CHILD_PORT");
    let cases = [
        (
            format!("https://127.0.0.1:{closed}"),
            format!("HTTP 500 (dial tcp 127.0.0.1:{closed}: connect: connection refused)"),
            "child apiserver not reachable at this route: the agent could not connect",
        ),
        (
            format!("https://127.0.0.1:{plain_port}"),
            "HTTP 500 (tls: first record does not look like a TLS handshake)".to_string(),
            "child apiserver not reachable at this route: the agent could not connect",
        ),
        (
            format!("http://127.0.0.1:{child_port}"),
            "HTTP 400 (Client sent an HTTP request to an HTTPS server.) [the answer broke off after 48 bytes"
                .to_string(),
            "plain HTTP sent to an HTTPS child: the route uses http but the child apiserver speaks HTTPS",
        ),
    ];
    for (server, answer, diagnosis) in cases {
        let token = unique("route");
        let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token, "--child-server", &server]);
        let err = verify_fails(&kc, &[&token]);
        assert!(err.contains(answer.as_str()), "{server}: {err}");
        assert!(err.contains(diagnosis), "{server}: {err}");
        assert!(err.contains("--child-server"), "{server}: {err}");
    }
    // A route that is neither direct, https nor http (edited by hand).
    let kc = gen_token(dir.path(), admin(), id, &unique("ftp"));
    let text = std::fs::read_to_string(&kc).unwrap().replace("/proxy/direct", "/proxy/ftp/127.0.0.1:1");
    std::fs::write(&kc, text).unwrap();
    let err = verify_fails(&kc, &[]);
    assert!(err.contains("HTTP 500 (unsupported protocol scheme \"ftp\"): malformed proxy route: "), "{err}");
}

#[test]
fn tls_error_with_a_wrong_ca() {
    use base64::Engine as _;
    let lab = lab();
    let dir = tempdir();
    let token = unique("tls");
    let kc = gen_token(dir.path(), admin(), CHILD_A.id, &token);
    // The hub's CA instead of the apiserver's.
    let wrong = base64::engine::general_purpose::STANDARD.encode(std::fs::read(lab.var("LAB_HUB_CA")).unwrap());
    let text = std::fs::read_to_string(&kc).unwrap();
    let line = text.lines().find(|l| l.contains("certificate-authority-data:")).unwrap();
    std::fs::write(&kc, text.replace(line, &format!("    certificate-authority-data: {wrong}"))).unwrap();
    let err = verify_fails(&kc, &[&token]);
    assert!(err.contains("no HTTP answer"), "{err}");
    assert!(err.contains("TLS with the parent failed: check the cluster's certificate-authority-data"), "{err}");
    assert!(records_with("x-remote-extra-clusternet-token", &token, 0).is_empty());
}

#[test]
fn connection_refused_on_a_closed_port() {
    let lab = lab();
    let dir = tempdir();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let parent = std::fs::read_to_string(admin()).unwrap().replace(lab.server(), &format!("https://127.0.0.1:{port}"));
    let parent = write(dir.path(), "closed.kubeconfig", &parent);
    let token = unique("refused");
    let kc = gen_token(dir.path(), parent.to_str().unwrap(), CHILD_A.id, &token);
    let err = verify_fails(&kc, &[&token]);
    assert!(err.contains(&format!("127.0.0.1:{port}")) || err.contains("onnection refused"), "{err}");
    assert!(err.contains("the parent apiserver cannot be reached"), "{err}");
}

/// A parent with --anonymous-auth=false (`lab.sh up-noanon`, same etcd): the
/// anonymous kubeconfig gets 401, diagnosed as such; the fix it names works.
#[test]
fn anonymous_auth_disabled() {
    let noanon = noanon_kubeconfig();
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("noanon");
    let kc = gen_token(dir.path(), noanon, id, &token);
    let err = verify_fails(&kc, &[&token]);
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains("anonymous auth disabled: the parent refuses anonymous requests"), "{err}");
    assert!(err.contains("--parent-auth token"), "{err}");
    assert!(records_with("x-remote-extra-clusternet-token", &token, 0).is_empty(), "refused before the hub");

    // The fix: the hub-proxy token from the Secret (read through the same parent).
    let token2 = unique("noanon-fixed");
    let kc = generate(
        dir.path(),
        &["--kubeconfig", noanon, "--cluster-id", id, "--token", &token2, "--parent-auth", "token"],
    );
    let (ok, stdout, stderr) = verify(&kc, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(testkit::CHILD_GIT_VERSION), "{stdout}");
    assert!(!records_with("x-remote-extra-clusternet-token", &token2, 2).is_empty());
}

/// A wrong parent token: 401, and the parent's own /version says it is the
/// parent that refuses (not the child).
#[test]
fn wrong_parent_token_is_diagnosed_and_not_echoed() {
    let dir = tempdir();
    let parent = "wrong-parent-token-0123456789";
    let token = unique("wrong-parent");
    let kc = generate_on_lab(
        dir.path(),
        &["--cluster-id", CHILD_A.id, "--token", &token, "--parent-auth", "token", "--parent-token", parent],
    );
    let err = verify_fails(&kc, &[&token, parent]);
    assert!(err.contains("HTTP 401") && err.contains("parent credentials rejected"), "{err}");
}

/// An extra outside Clusternet's three: the parent's 403 names the extra's
/// value as the resource; verify redacts it and names the cause.
#[test]
fn refused_extra_is_redacted() {
    let lab = lab();
    let dir = tempdir();
    let secret = unique("extra-secret");
    let kc = write(
        dir.path(),
        "extra.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: x, cluster: {{server: '{}{PROXY_PREFIX}{}/proxy/direct', certificate-authority: '{}'}}}}]\n\
             users: [{{name: x, user: {{username: 'system:anonymous', as: clusternet, as-user-extra: {{other-key: ['{secret}']}}}}}}]\n\
             contexts: [{{name: x, context: {{cluster: x, user: x}}}}]\n",
            lab.server(),
            CHILD_A.id,
            lab.var("LAB_CA")
        ),
    );
    let err = verify_fails(&kc, &[&secret]);
    assert!(err.contains("HTTP 403") && err.contains("<redacted>"), "{err}");
    assert!(err.contains("user extra refused"), "{err}");
    // The refused identity is named, not redacted.
    assert!(err.contains("system:anonymous"), "{err}");
}

#[test]
fn gen_verify_writes_only_on_success_or_with_write_unverified() {
    let dir = tempdir();
    // Success: written, with the verification on stderr.
    let token = unique("gen-verify-ok");
    let ok = dir.path().join("ok.kubeconfig");
    let args = ["gen", "--kubeconfig", admin(), "--cluster", "child-a", "--token", &token, "--verify"];
    let (_, err) = tool_ok(&[&args[..], &["--output-file", ok.to_str().unwrap()]].concat());
    assert!(err.contains("verified \"clusternet-child-a\": child Kubernetes v1.32.13-standin"), "{err}");
    assert!(std::fs::read_to_string(&ok).unwrap().contains(&token));

    // Failure: nothing written, the diagnosis, exit 1, no token.
    let token = unique("gen-verify-fail");
    let id = CHILD_OFFLINE.id;
    let bad = dir.path().join("bad.kubeconfig");
    let base = ["gen", "--kubeconfig", admin(), "--cluster-id", id, "--token", &token, "--verify", "--output-file"];
    let err = tool_err(&[&base[..], &[bad.to_str().unwrap()]].concat());
    assert!(
        err.contains("agent disconnected") && err.contains("nothing written (--write-unverified writes anyway)"),
        "{err}"
    );
    assert!(!err.contains(&token), "{err}");
    assert!(!bad.exists(), "nothing written on failure");
    // To stdout: nothing on stdout either.
    let out = lab_cmd("gen").args(&["--cluster-id", id, "--token", &token, "--verify"]).run();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // --write-unverified: written anyway, with a warning.
    let (_, err) = tool_ok(&[&base[..], &[bad.to_str().unwrap(), "--write-unverified"]].concat());
    assert!(err.contains("warning: ") && err.contains("writing anyway (--write-unverified)"), "{err}");
    assert!(!err.contains(&token), "{err}");
    assert!(std::fs::read_to_string(&bad).unwrap().contains(&token));

    // The file exists now: --force replaces it only when verification
    // passes; a failed verification still writes nothing.
    let before = std::fs::read_to_string(&bad).unwrap();
    let err = tool_err(&[&base[..], &[bad.to_str().unwrap(), "--force"]].concat());
    assert!(err.contains("agent disconnected") && err.contains("nothing written"), "{err}");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), before, "--force alone did not write despite the failure");
    let args = ["gen", "--kubeconfig", admin(), "--cluster", "child-a", "--token", &token, "--verify", "--force"];
    tool_ok(&[&args[..], &["--output-file", bad.to_str().unwrap()]].concat());
    assert!(std::fs::read_to_string(&bad).unwrap().contains("clusternet-child-a"));
}

// ------------------------------------------------------------- lab mutations

/// An object as `kubectl get -o json`, made creatable again.
fn saved(kind_name: &str) -> String {
    let mut obj = json(&kubectl_ok(admin(), &["get", kind_name, "-o", "json"]));
    let meta = obj["metadata"].as_object_mut().unwrap();
    for k in ["resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"] {
        meta.remove(k);
    }
    obj.as_object_mut().unwrap().remove("status");
    obj.to_string()
}

fn create(dir: &Path, json: &str) {
    let f = write(dir, &format!("{}.json", unique("obj")), json);
    let out = kubectl(admin(), &["create", "-f", f.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(out.status.success() || err.contains("AlreadyExists"), "restore failed: {err}");
}

/// Polls verify until `pred(success, stderr)` holds; the last stderr.
fn verify_until(kc: &Path, what: &str, pred: impl Fn(bool, &str) -> bool) -> String {
    let (ok, _, err) = Wait { within: Duration::from_secs(60), every: Duration::from_millis(300) }
        .until(|| verify(kc, &["--timeout", "5"]), |(ok, _, err)| pred(*ok, err));
    assert!(pred(ok, &err), "{what}: not within 60s; last: {err}");
    err
}

/// RBAC removed, then the APIService removed: each diagnosed, each restored.
/// One test, holding the lab exclusively (every other test would fail meanwhile).
#[test]
fn rbac_and_apiservice_removed() {
    let dir = tempdir();
    let token = unique("mutations");
    let kc = gen_token(dir.path(), admin(), CHILD_A.id, &token);
    let _lab = exclusive();

    // 1. The socket-proxy ClusterRoleBinding.
    let crb = "clusterrolebinding/clusternet:system:socketsproxy";
    let binding = saved(crb);
    {
        let _restore = Restore(|| create(dir.path(), &binding));
        kubectl_ok(admin(), &["delete", crb]);
        let err = verify_until(&kc, "RBAC refusal", |ok, err| !ok && err.contains("HTTP 403"));
        assert!(err.contains("Clusternet RBAC missing"), "{err}");
        assert!(err.contains("apply Clusternet's RBAC (ClusterRole clusternet:system:socketsproxy and its binding)"));
        assert!(
            err.contains("users \"clusternet\" is forbidden: User \"system:anonymous\" cannot impersonate"),
            "{err}"
        );
        assert!(!err.contains(&token), "{err}");
    }
    verify_until(&kc, "success after restoring the binding", |ok, _| ok);

    // 2. The APIService.
    let apiservice = "apiservice/v1alpha1.proxies.clusternet.io";
    let registration = saved(apiservice);
    {
        let _restore = Restore(|| {
            create(dir.path(), &registration);
            kubectl_ok(admin(), &["wait", "--for", "condition=Available", "--timeout", "60s", apiservice]);
        });
        kubectl_ok(admin(), &["delete", apiservice]);
        let err = verify_until(&kc, "APIService missing", |ok, err| !ok && err.contains("HTTP 404"));
        assert!(err.contains("APIService missing"), "{err}");
        assert!(err.contains("register APIService v1alpha1.proxies.clusternet.io"), "{err}");
    }
    let cond = kubectl_ok(
        admin(),
        &["get", apiservice, "-o", "jsonpath={.status.conditions[?(@.type==\"Available\")].status}"],
    );
    assert_eq!(cond, "True");
    verify_until(&kc, "success after restoring the APIService", |ok, _| ok);
}

/// The hub process stopped while its APIService stays registered: first the
/// aggregator's own 503 "error trying to reach service", then (once the
/// availability check has run) 503 "service unavailable"; then the hub
/// started again without the SocketConnection feature gate: 503 for every
/// ID. Holds the lab exclusively; the hub is restarted as it was, also when
/// the test fails.
#[test]
fn hub_stopped_then_started_without_the_gate() {
    let lab = lab();
    let dir = tempdir();
    let token = unique("hub-down");
    let kc = gen_token(dir.path(), admin(), CHILD_A.id, &token);
    let unknown = gen_token(dir.path(), admin(), "e0000000-0000-4000-8000-000000000400", &token);
    let _lab = exclusive();
    let _restore = Restore(|| {
        lab_sh(&["hub-start"]);
    });
    lab_sh(&["hub-stop"]);
    let err = verify_fails(&kc, &[&token]);
    // The aggregator's availability check runs on its own clock: on a loaded
    // machine it may already have marked the APIService unavailable before
    // this first request, which then gets the second 503 below.
    if !err.contains("(service unavailable)") {
        assert!(
            err.contains(&format!(
                "HTTP 503 (error trying to reach service: dial tcp 127.0.0.1:{}: connect: connection refused)",
                lab.var("LAB_HUB_PORT")
            )),
            "{err}"
        );
        assert!(
            err.contains(": clusternet-hub not reachable: the aggregator could not connect to the APIService backend"),
            "{err}"
        );
    }
    let err =
        verify_until(&kc, "the APIService marked unavailable", |ok, err| !ok && err.contains("(service unavailable)"));
    assert!(err.contains("HTTP 503 (service unavailable): APIService unavailable: "), "{err}");
    assert!(err.contains("check that clusternet-hub is running"), "{err}");

    lab_sh(&["hub-start", "--feature-gates", "SocketConnection=false"]);
    for kc in [&kc, &unknown] {
        let err = verify_fails(kc, &[&token]);
        assert!(
            err.contains("HTTP 503 (featuregate SocketConnection has not been enabled on the server side): SocketConnection feature gate off: start clusternet-hub with --feature-gates=SocketConnection=true"),
            "{err}"
        );
    }
    lab_sh(&["hub-start"]);
    verify_until(&kc, "success with the hub back", |ok, _| ok);
}
