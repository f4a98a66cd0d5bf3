//! Realistic kubeconfigs, written here from the formats their tools publish
//! (`tests/fixtures/corpus/`: minikube, kind, k3s, EKS, GKE with the exec
//! plugin and with the legacy `gcp` auth-provider, AKS with kubelogin,
//! Rancher, OpenShift, Docker Desktop, Teleport), as merge targets and as
//! parents, with every kubectl as the oracle; and `--parent-auth keep`
//! checked on the wire: the generated kubeconfig sends the parent what
//! kubectl sends for the parent itself.

use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_yaml::{Mapping, Value};
use testkit::{PROXY_GROUP_PREFIX, RecordedRequest, Recorder};

use crate::kubectl::{self, Kubectl};
use crate::parity::{fixtures, merge_case, parent_text_case, suite};
use crate::support::Scratch;

#[test]
fn corpus_as_merge_targets() {
    suite("corpus", merge_case, 11);
}

/// Paths under `/home/user` (minikube's certificate files) point into the
/// scratch directory, where placeholder files are created.
fn localise(text: &str, s: &Scratch) -> String {
    text.replace("/home/user", &s.dir.path().display().to_string())
}

#[test]
fn corpus_as_parents() {
    let kubectls = crate::parity::kubectls();
    let files = fixtures("corpus");
    let problems: Vec<String> = kubectl::parallel(&files, 3, |f| {
        let text = fs::read_to_string(f).unwrap();
        let case = format!("corpus/{}", f.file_name().unwrap().to_string_lossy());
        let prepare = |s: &Scratch| {
            let text = localise(&text, s);
            for line in text.lines() {
                let line = line.trim();
                for key in ["certificate-authority:", "client-certificate:", "client-key:"] {
                    if let Some(path) = line.strip_prefix(key) {
                        let path = Path::new(path.trim());
                        fs::create_dir_all(path.parent().unwrap()).unwrap();
                        fs::write(path, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
                    }
                }
            }
            fs::write(s.path("parent.yaml"), text).unwrap();
        };
        parent_text_case(&case, text.as_bytes(), &prepare, &kubectls)
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

/// The corpus parent pointed at the recording server: its clusters reach the
/// recorder, certificate users get a certificate the recorder trusts, exec
/// users a script printing an ExecCredential (same args and env).
fn on_recorder(text: &str, recorder: &Recorder, dir: &Path, case: &str) -> String {
    let mut doc: Value = serde_yaml::from_str(text).unwrap();
    for cluster in doc["clusters"].as_sequence_mut().unwrap() {
        let c = cluster["cluster"].as_mapping_mut().unwrap();
        c.insert("server".into(), recorder.url().into());
        c.insert("certificate-authority-data".into(), STANDARD.encode(recorder.ca_pem()).into());
        c.remove("certificate-authority");
        c.remove("tls-server-name");
    }
    let (cert, key) = recorder.issue_client_cert(&format!("parent-{case}"));
    let script = dir.join("exec-plugin.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '{{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"exec-token-{case}-%s\"}}}}' \"${{API_VERSION}}\" \"$#\"\n"
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut fs::metadata(&script).unwrap().permissions(), 0o755);
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for user in doc["users"].as_sequence_mut().unwrap() {
        let u: &mut Mapping = user["user"].as_mapping_mut().unwrap();
        if u.contains_key("client-certificate") || u.contains_key("client-certificate-data") {
            u.remove("client-certificate");
            u.remove("client-key");
            u.insert("client-certificate-data".into(), STANDARD.encode(&cert).into());
            u.insert("client-key-data".into(), STANDARD.encode(&key).into());
        }
        if let Some(Value::Mapping(exec)) = u.get_mut("exec") {
            let api = exec.get("apiVersion").cloned().unwrap_or_default();
            exec.insert("command".into(), script.display().to_string().into());
            let env = exec.entry("env".into()).or_insert(Value::Sequence(vec![]));
            if env.is_null() {
                *env = Value::Sequence(vec![]);
            }
            let mut var = Mapping::new();
            var.insert("name".into(), "API_VERSION".into());
            var.insert("value".into(), api);
            env.as_sequence_mut().unwrap().push(Value::Mapping(var));
        }
    }
    serde_yaml::to_string(&doc).unwrap()
}

/// What reached the recorder for one path prefix: authorization and client certificate.
fn credentials_sent(requests: &[RecordedRequest], prefix: &str) -> Option<(Option<String>, Option<String>)> {
    requests
        .iter()
        .find(|r| r.path.starts_with(prefix) && (prefix != "/version" || r.path == "/version"))
        .map(|r| (r.header("authorization").map(str::to_string), r.client_cert_der_b64.clone()))
}

#[test]
fn keep_sends_what_kubectl_sends_for_the_parent() {
    let kubectls = crate::parity::kubectls();
    let newest: &Kubectl = kubectls.last().unwrap();
    let recorder = Recorder::start(Default::default()).expect("start the recorder");
    let mut problems = Vec::new();
    let mut checked = 0;
    for (i, fixture) in fixtures("corpus").iter().enumerate() {
        let case = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        let s = Scratch::new();
        let parent = on_recorder(&fs::read_to_string(fixture).unwrap(), &recorder, s.dir.path(), &case);
        fs::write(s.path("parent.yaml"), &parent).unwrap();
        // kubectl on the parent itself.
        recorder.clear();
        let direct = newest.run(&s.path("parent.yaml"), &["version", "-o", "json"]);
        let want = credentials_sent(&recorder.requests(), "/version");
        let id = format!("dc91021d-2361-4f6d-a404-7c33b9e011{i:02}");
        let out = s
            .bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", &id, "--token-file", "child.token"])
            .args(["--parent-auth", "keep", "--output-file", "out.yaml"])
            .output()
            .unwrap();
        if !out.status.success() {
            // Only a parent kubectl itself cannot use may be refused.
            if want.is_some() {
                problems
                    .push(format!("{case}: kubectl reached the parent but gen failed: {}", kubectl::describe(&out)));
            }
            continue;
        }
        let via = newest.run(&s.path("out.yaml"), &["version", "-o", "json"]);
        let got = credentials_sent(&recorder.requests(), &format!("{PROXY_GROUP_PREFIX}{id}/"));
        match (&want, &got) {
            (None, None) => {
                // Neither reached the parent (the gcp auth-provider kubectl
                // removed): both must fail the same way.
                if direct.status.success() || via.status.success() {
                    problems.push(format!("{case}: {} / {}", kubectl::describe(&direct), kubectl::describe(&via)));
                }
            }
            (Some(w), Some(g)) if w == g => checked += 1,
            _ => problems.push(format!(
                "{case}: kubectl sent {want:?} for the parent, {got:?} for the generated kubeconfig ({})",
                recorder.requests().iter().map(|r| r.path.clone()).collect::<Vec<_>>().join(" ")
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 9, "only {checked} corpus shapes were checked on the wire");
}

/// The precedence classes on the wire: a readable tokenFile wins over an
/// inline token; an empty inline field is unset; an unreadable tokenFile
/// falls back to the inline token.
#[test]
fn keep_follows_client_go_precedence_on_the_wire() {
    let newest = crate::parity::kubectls().pop().unwrap();
    let recorder = Recorder::start(Default::default()).expect("start the recorder");
    let (cert, key) = recorder.issue_client_cert("parent-precedence");
    let s = Scratch::new();
    s.write("from-file.token", "FILE-TOKEN\n");
    s.write("admin.crt", &cert);
    s.write("admin.key", &key);
    let users: Vec<(&str, String)> = vec![
        ("file-wins", "{token: INLINE, tokenFile: from-file.token}".into()),
        ("empty-inline-token", "{token: \"\", tokenFile: from-file.token}".into()),
        ("unreadable-file", "{token: INLINE, tokenFile: missing.token}".into()),
        (
            "empty-cert-data",
            "{client-certificate-data: \"\", client-certificate: admin.crt, client-key: admin.key}".into(),
        ),
        ("basic", "{username: u, password: \"yes\"}".into()),
    ];
    let mut problems = Vec::new();
    for (i, (case, user)) in users.iter().enumerate() {
        let parent = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: p\nclusters:\n- name: p\n  cluster: {{server: \"{}\", certificate-authority-data: {}}}\ncontexts:\n- name: p\n  context: {{cluster: p, user: u}}\nusers:\n- name: u\n  user: {user}\n",
            recorder.url(),
            STANDARD.encode(recorder.ca_pem())
        );
        s.write("parent.yaml", &parent);
        recorder.clear();
        let _ = newest.run(&s.path("parent.yaml"), &["version", "-o", "json"]);
        let want = credentials_sent(&recorder.requests(), "/version");
        let id = format!("dc91021d-2361-4f6d-a404-7c33b9e012{i:02}");
        let out = s
            .bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", &id, "--token-file", "child.token"])
            .args(["--parent-auth", "keep", "--output-file", &format!("{case}.yaml"), "--force"])
            .output()
            .unwrap();
        if !out.status.success() {
            problems.push(format!("{case}: gen failed: {}", kubectl::describe(&out)));
            continue;
        }
        let _ = newest.run(&s.path(&format!("{case}.yaml")), &["version", "-o", "json"]);
        let got = credentials_sent(&recorder.requests(), &format!("{PROXY_GROUP_PREFIX}{id}/"));
        if want.is_none() || want != got {
            problems
                .push(format!("{case}: kubectl sent {want:?} for the parent, {got:?} for the generated kubeconfig"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
