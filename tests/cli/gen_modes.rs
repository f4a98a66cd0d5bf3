//! Every mode of `gen`, each output read back through real kubectl
//! (`kubectl config view --raw -o json`), which must show exactly the expected
//! server, user and cluster fields.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::support::*;

const NAME: &str = "clusternet-dc91021d-2361-4f6d-a404-7c33b9e01118";

fn token_extras() -> Value {
    json!({"clusternet-token": [CHILD_TOKEN]})
}

#[test]
fn anonymous_token_to_stdout_is_what_kubectl_sees() {
    let s = Scratch::new();
    let text = ok(&mut s.generate(&["--token-file", "child.token"]));
    let view = kubectl_view_text(&s, &text);
    // kubectl keeps the provenance of all three entries as written.
    let path = s.path("child.token").display().to_string();
    assert_eq!(the_provenance(&view), expected_provenance(json!({"kind": "token", "source": "file", "path": path})));
    let view = without_provenance(view);
    assert_eq!(view["current-context"], NAME);
    let cluster = only(&view, "clusters");
    assert_eq!(cluster["name"], NAME);
    assert_eq!(
        cluster["cluster"],
        json!({
            "server": proxy_server("https://10.0.0.10:6443", "direct"),
            "certificate-authority-data": b64(&s.read("pki/ca.crt")),
        })
    );
    let user = only(&view, "users");
    assert_eq!(user["name"], NAME);
    assert_eq!(
        user["user"],
        json!({"username": "system:anonymous", "as": "clusternet", "as-user-extra": token_extras()})
    );
    let context = only(&view, "contexts");
    assert_eq!(context, &json!({"name": NAME, "context": {"cluster": NAME, "user": NAME}}));
}

#[test]
fn token_from_stdin_env_and_flag_are_the_same() {
    let s = Scratch::new();
    let from_file = ok(&mut s.generate(&["--token-file", "child.token"]));
    let stdin = run_with_stdin(&mut s.generate(&["--token-file", "-"]), &format!("{CHILD_TOKEN}\n"));
    assert!(stdin.status.success(), "{}", stderr(&stdin));
    let env = ok(s.generate(&[]).env("CLUSTERNET_CHILD_TOKEN", CHILD_TOKEN));
    let flag = ok(&mut s.generate(&["--token", CHILD_TOKEN]));
    // The same kubeconfig, but for the recorded source (and no path but the file's).
    for (text, source) in [(stdout(&stdin), "stdin"), (env, "env"), (flag, "flag")] {
        assert_eq!(stripped(&text), stripped(&from_file), "{source}");
        let view = kubectl_view_text(&s, &text);
        assert_eq!(the_provenance(&view)["credential"], json!({"kind": "token", "source": source}));
    }
}

#[test]
fn client_certificate_files_and_data_become_base64_extras() {
    let s = Scratch::new();
    let files = ok(&mut s.generate(&["--client-certificate", "child.crt", "--client-key", "child.key"]));
    let view = kubectl_view_text(&s, &files);
    let extras = &only(&view, "users")["user"]["as-user-extra"];
    assert_eq!(
        extras,
        &json!({"clusternet-certificate": [b64(&s.cert_pem)], "clusternet-privatekey": [b64(&s.key_pem)]})
    );
    // The certificate's notAfter is recorded (tests/fixtures/pki/child.crt: CHILD_CERT_NOT_AFTER).
    let credential = &the_provenance(&view)["credential"];
    assert_eq!(
        credential,
        &json!({
            "kind": "certificate", "source": "file", "expires": CHILD_CERT_NOT_AFTER,
            "path": s.path("child.crt").display().to_string(), "keyPath": s.path("child.key").display().to_string(),
        })
    );
    let data =
        ok(&mut s.generate(&["--client-certificate-data", &b64(&s.cert_pem), "--client-key-data", &b64(&s.key_pem)]));
    assert_eq!(stripped(&data), stripped(&files));
    assert_eq!(
        the_provenance(&kubectl_view_text(&s, &data))["credential"],
        json!({"kind": "certificate", "source": "flag", "expires": CHILD_CERT_NOT_AFTER})
    );
}

#[test]
fn child_kubeconfig_token_or_relative_cert_files() {
    let s = Scratch::new();
    s.write("child/config", include_str!("../fixtures/child/token-and-cert-files.yaml"));
    let by_kubeconfig = ok(&mut s.generate(&["--child-kubeconfig", "child/config"]));
    assert_eq!(stripped(&by_kubeconfig), stripped(&ok(&mut s.generate(&["--token", CHILD_TOKEN]))));
    let config = s.path("child/config").display().to_string();
    assert_eq!(
        the_provenance(&kubectl_view_text(&s, &by_kubeconfig))["credential"],
        json!({"kind": "token", "source": "file", "format": "kubeconfig", "path": config})
    );
    let cert = ok(&mut s.generate(&["--child-kubeconfig", "child/config", "--child-context", "crt"]));
    assert_eq!(
        stripped(&cert),
        stripped(&ok(&mut s.generate(&["--client-certificate", "child.crt", "--client-key", "child.key"])))
    );
    assert_eq!(
        the_provenance(&kubectl_view_text(&s, &cert))["credential"],
        json!({"kind": "certificate", "source": "file", "format": "kubeconfig", "context": "crt",
               "path": config, "expires": CHILD_CERT_NOT_AFTER})
    );
}

#[test]
fn parent_token_from_flag_file_and_env() {
    let s = Scratch::new();
    s.write("parent.token", &format!("{PARENT_TOKEN}\n"));
    let by_file = ok(&mut s.generate(&[
        "--token-file",
        "child.token",
        "--parent-auth",
        "token",
        "--parent-token-file",
        "parent.token",
    ]));
    let view = without_provenance(kubectl_view_text(&s, &by_file));
    assert_eq!(
        only(&view, "users")["user"],
        json!({"token": PARENT_TOKEN, "as": "clusternet", "as-user-extra": token_extras()})
    );
    let by_env = ok(s
        .generate(&["--token-file", "child.token", "--parent-auth", "token"])
        .env("CLUSTERNET_PARENT_TOKEN", PARENT_TOKEN));
    assert_eq!(by_env, by_file);
    let by_flag =
        ok(&mut s.generate(&["--token-file", "child.token", "--parent-auth", "token", "--parent-token", PARENT_TOKEN]));
    assert_eq!(by_flag, by_file);
}

#[test]
fn keep_embeds_the_parent_users_files() {
    let s = Scratch::new();
    let text = ok(&mut s.generate(&["--token-file", "child.token", "--parent-auth", "keep"]));
    let view = without_provenance(kubectl_view_text(&s, &text));
    assert_eq!(
        only(&view, "users")["user"],
        json!({
            "client-certificate-data": b64(&s.parent_cert_pem),
            "client-key-data": b64(&s.parent_key_pem),
            "as": "clusternet",
            "as-user-extra": token_extras(),
        })
    );
    let text = ok(&mut s.generate(&["--token-file", "child.token", "--parent-auth", "keep", "--context", "tokenuser"]));
    let view = kubectl_view_text(&s, &text);
    assert_eq!(only(&view, "users")["user"]["token"], PARENT_USER_TOKEN);
}

#[test]
fn routes_prefixes_and_kept_cluster_settings() {
    let s = Scratch::new();
    let server = |args: &[&str]| {
        let mut all = vec!["--token-file", "child.token"];
        all.extend_from_slice(args);
        let view = kubectl_view_text(&s, &ok(&mut s.generate(&all)));
        only(&view, "clusters")["cluster"]["server"].as_str().unwrap().to_string()
    };
    assert_eq!(
        server(&["--child-server", "https://demo1.cluster.net"]),
        proxy_server("https://10.0.0.10:6443", "https/demo1.cluster.net")
    );
    assert_eq!(
        server(&["--child-server", "http://10.212.0.7:8001/"]),
        proxy_server("https://10.0.0.10:6443", "http/10.212.0.7:8001")
    );
    assert_eq!(
        server(&["--child-server", "https://[::1]:6443"]),
        proxy_server("https://10.0.0.10:6443", "https/[::1]:6443")
    );
    let text = ok(&mut s.generate(&["--token-file", "child.token", "--context", "nsctx"]));
    let view = kubectl_view_text(&s, &text);
    // The parent's own extension is kept beside the provenance, which
    // records the parent server as written (its prefix too).
    assert_eq!(
        the_provenance(&view)["parent"],
        json!({"server": "https://[fd00::10]:6443/prefix/", "context": "nsctx"})
    );
    let view = without_provenance(view);
    assert_eq!(
        only(&view, "clusters")["cluster"],
        json!({
            "server": proxy_server("https://[fd00::10]:6443/prefix", "direct"),
            "certificate-authority-data": "Q0EK",
            "tls-server-name": "kubernetes.default",
            "proxy-url": "http://proxy.example:3128",
            "disable-compression": true,
            "extensions": [{"name": "example.com/meta", "extension": {"region": "eu-1"}}],
        })
    );
    assert_eq!(only(&view, "contexts")["context"]["namespace"], "apps");
}

#[test]
fn name_flag_and_json_output() {
    let s = Scratch::new();
    let yaml = ok(&mut s.generate(&["--token-file", "child.token", "--name", "child-one"]));
    let view = without_provenance(kubectl_view_text(&s, &yaml));
    assert_eq!(view["current-context"], "child-one");
    assert_eq!(
        only(&view, "contexts"),
        &json!({"name": "child-one", "context": {"cluster": "child-one", "user": "child-one"}})
    );
    let json_text = ok(&mut s.generate(&["--token-file", "child.token", "--name", "child-one", "-o", "json"]));
    let from_json: Value = serde_json::from_str(&json_text).unwrap();
    let from_yaml: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(from_json, from_yaml);
    assert_eq!(without_provenance(kubectl_view_text(&s, &json_text)), view);
}

#[test]
fn identical_inputs_give_identical_bytes() {
    let s = Scratch::new();
    let args = [
        "--client-certificate",
        "child.crt",
        "--client-key",
        "child.key",
        "--parent-auth",
        "keep",
        "--context",
        "nsctx",
    ];
    let first = ok(&mut s.generate(&args));
    for _ in 0..5 {
        assert_eq!(ok(&mut s.generate(&args)), first);
    }
}

#[test]
fn kubeconfig_list_first_file_wins_and_relative_paths_follow_their_file() {
    let s = Scratch::new();
    // b/config defines cluster "parent" too, and the current context; a.yaml's
    // "parent" (with its CA file relative to its own directory) must win.
    s.write("b/config", "current-context: main\nclusters:\n- name: parent\n  cluster: {server: https://loser:1}\n");
    let list = format!(
        "{}:{}:{}",
        s.path("missing.yaml").display(),
        s.path("parent.yaml").display(),
        s.path("b/config").display()
    );
    let out = ok(s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]).env("KUBECONFIG", list));
    assert_eq!(out, ok(&mut s.generate(&["--token-file", "child.token"])));
    // ~/.kube/config when nothing else is given.
    s.write(".kube/config", &s.read("parent.yaml").replace("pki/ca.crt", "../pki/ca.crt"));
    let home = ok(&mut s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]));
    assert_eq!(home, out);
}

#[test]
fn output_file_is_private_atomic_and_not_clobbered() {
    let s = Scratch::new();
    let out = s.generate(&["--token-file", "child.token", "--output-file", "out/child.kubeconfig"]).output().unwrap();
    fails(&out, 1, "directory out does not exist");
    fs::create_dir(s.path("out")).unwrap();
    let out = s.generate(&["--token-file", "child.token", "--output-file", "out/child.kubeconfig"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let path = s.path("out/child.kubeconfig");
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(s.read("out/child.kubeconfig"), ok(&mut s.generate(&["--token-file", "child.token"])));
    let again = s.generate(&["--token", "other", "--output-file", "out/child.kubeconfig"]).output().unwrap();
    fails(&again, 1, "already exists; pass --force");
    assert!(s.read("out/child.kubeconfig").contains(CHILD_TOKEN));
    ok(&mut s.generate(&["--token", "other", "--output-file", "out/child.kubeconfig", "--force"]));
    assert!(s.read("out/child.kubeconfig").contains("- other"));
    assert_eq!(fs::read_dir(s.path("out")).unwrap().count(), 1, "no temporary file left");
}

#[test]
fn merge_into_keeps_everything_else() {
    let s = Scratch::new();
    let original = s.read("parent.yaml");
    s.write("target.yaml", &original);
    fs::set_permissions(s.path("target.yaml"), fs::Permissions::from_mode(0o640)).unwrap();
    let before = kubectl_view(&s.path("target.yaml"));
    let out = s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cluster \"{NAME}\" added, context \"{NAME}\" added, user \"{NAME}\" added in file target.yaml"
        )),
        "{err}"
    );
    assert!(err.contains("readable by others (mode 0640)"), "{err}");
    assert_eq!(fs::metadata(s.path("target.yaml")).unwrap().permissions().mode() & 0o777, 0o640);
    let after = kubectl_view(&s.path("target.yaml"));
    assert_eq!(after["current-context"], "main", "current-context unchanged without --set-current-context");
    for list in ["clusters", "users", "contexts"] {
        let kept: Vec<&Value> = after[list].as_array().unwrap().iter().filter(|e| e["name"] != NAME).collect();
        let was: Vec<&Value> = before[list].as_array().unwrap().iter().collect();
        assert_eq!(kept, was, "{list} kept exactly");
    }
    let text = s.read("target.yaml");
    assert!(
        text.contains("certificate-authority: pki/ca.crt") && text.contains("client-key: pki/admin.key"),
        "relative paths kept: {text}"
    );
    // Again, with another token and --set-current-context: updated in place, no duplicates.
    let out =
        s.generate(&["--token", "second", "--merge-into", "target.yaml", "--set-current-context"]).output().unwrap();
    assert!(stderr(&out).contains("updated") && stderr(&out).contains("current-context is now"), "{}", stderr(&out));
    let again = kubectl_view(&s.path("target.yaml"));
    assert_eq!(again["current-context"], NAME);
    assert_eq!(again["users"].as_array().unwrap().len(), 3);
    let ours = again["users"].as_array().unwrap().iter().find(|u| u["name"] == NAME).unwrap();
    assert_eq!(ours["user"]["as-user-extra"]["clusternet-token"], json!(["second"]));
}

#[test]
fn merge_into_a_new_file_and_through_a_symlink() {
    let s = Scratch::new();
    ok(&mut s.generate(&["--token-file", "child.token", "--merge-into", "new.yaml"]));
    assert_eq!(fs::metadata(s.path("new.yaml")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(kubectl_view(&s.path("new.yaml"))["current-context"], NAME);
    std::os::unix::fs::symlink("new.yaml", s.path("link.yaml")).unwrap();
    ok(&mut s.generate(&["--token-file", "child.token", "--name", "second", "--merge-into", "link.yaml"]));
    assert!(fs::symlink_metadata(s.path("link.yaml")).unwrap().file_type().is_symlink());
    assert_eq!(kubectl_view(&s.path("new.yaml"))["contexts"].as_array().unwrap().len(), 2);
}

#[test]
fn merge_waits_for_kubectls_lock_then_gives_up_naming_it() {
    let s = Scratch::new();
    s.write("target.yaml", &s.read("parent.yaml"));
    s.write("target.yaml.lock", "");
    let out = s
        .generate(&["--token-file", "child.token", "--merge-into", "target.yaml", "--lock-timeout", "1"])
        .output()
        .unwrap();
    fails(&out, 1, "lock file target.yaml.lock is held (waited 1s)");
    assert_eq!(s.read("target.yaml"), s.read("parent.yaml"));
    // A lock released while we wait is taken.
    let lock = s.path("target.yaml.lock");
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        fs::remove_file(lock).unwrap();
    });
    ok(&mut s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml", "--lock-timeout", "5"]));
    release.join().unwrap();
    assert!(!s.path("target.yaml.lock").exists());
}

#[test]
fn merged_file_is_still_usable_by_kubectl_config_commands() {
    let s = Scratch::new();
    s.write("target.yaml", &s.read("parent.yaml"));
    ok(&mut s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml"]));
    let out = std::process::Command::new("kubectl")
        .args(["config", "set-context", "extra", "--cluster=parent", "--user=admin", "--kubeconfig"])
        .arg(s.path("target.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view = kubectl_view(&s.path("target.yaml"));
    assert_eq!(view["contexts"].as_array().unwrap().len(), 5);
}

#[test]
fn help_version_and_completions() {
    let s = Scratch::new();
    let help = ok(s
        .bare(&["gen", "--help"])
        .env("CLUSTERNET_CHILD_TOKEN", CHILD_TOKEN)
        .env("CLUSTERNET_PARENT_TOKEN", PARENT_TOKEN));
    assert!(help.contains("Examples:") && help.contains("--token-file") && help.contains("kubectl get --raw"));
    no_secrets(&help);
    let top = ok(&mut s.bare(&["--help"]));
    assert!(top.contains("gen") && top.contains("completions"));
    assert!(ok(&mut s.bare(&["--version"])).starts_with("clusternet-kubeconfig "));
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = ok(&mut s.bare(&["completions", shell]));
        assert!(script.contains("cluster-id"), "{shell}");
    }
}
