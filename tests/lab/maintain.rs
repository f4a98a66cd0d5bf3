//! `status --verify`, `prune` and `refresh` against the lab: the child's real
//! token expiry and reachability through the proxy; entries of a
//! ManagedCluster deleted on the lab's real parent pruned; entries refreshed
//! from a token file, from the Secret the hub holds, and by asking the real
//! child's TokenRequest API again; everything else left as kubectl saw it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use testkit::lab::{CI_CONFIGMAP, DEPLOYER_NAMESPACE, DEPLOYER_SA, DEPLOYER_SECRET};

use crate::hub_credentials::{ci_account, ci_user, deployer_token, deployer_user};
use crate::parent_token::claims;
use crate::support::*;

/// A kubeconfig holding the lab admin's own (foreign) entries, to merge into.
fn with_foreign_entries(dir: &Path) -> PathBuf {
    let path = dir.join("kc.yaml");
    std::fs::copy(admin(), &path).unwrap();
    path
}

/// A fresh one-hour token of the child's reader service account.
fn child_token(dir: &Path, name: &str) -> PathBuf {
    let args = ["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA, "--duration", "1h"];
    write(dir, name, kubectl_ok(lab().var("LAB_CHILD_KUBECONFIG"), &args).trim())
}

fn view(path: &Path) -> Value {
    json(&kubectl_ok(path, &["config", "view", "--raw", "-o", "json"]))
}

/// `view` without the entries named `name`.
fn others(view: &Value, name: &str) -> Value {
    let mut view = view.clone();
    for list in ["clusters", "users", "contexts"] {
        view[list].as_array_mut().unwrap().retain(|e| e["name"] != name);
    }
    view
}

#[test]
fn status_verify_shows_the_childs_real_expiry_and_reachability() {
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    let foreign = view(&kc)["contexts"].as_array().unwrap().len();
    let good = child_token(dir.path(), "good.token");
    // A real-looking token signed by nobody the child trusts.
    let bad = write(dir.path(), "bad.token", &format!("{}x", std::fs::read_to_string(&good).unwrap()));
    let (kc_arg, good_arg, bad_arg) = (kc.to_str().unwrap(), good.to_str().unwrap(), bad.to_str().unwrap());
    lab_gen().cluster("child-real").args(&["--token-file", good_arg, "--name", "real", "--merge-into", kc_arg]).ok();
    let (out, err) = tool_ok(&["status", "--kubeconfig", kc_arg, "--verify", "-o", "json"]);
    let doc = json(&out);
    assert_eq!(doc["foreignContexts"], foreign, "{err}");
    let item = &doc["items"][0];
    assert_eq!(item["context"], "real");
    assert_eq!(item["clusterID"], CHILD_REAL.id);
    assert_eq!(item["managedCluster"], json!({"namespace": CHILD_REAL.namespace, "name": CHILD_REAL.name}));
    assert_eq!(item["credential"], json!({"kind": "token", "source": "file"}));
    // The child's own TokenRequest set the expiry: one hour, less what has passed.
    let left = item["expiresInSeconds"].as_i64().unwrap();
    assert!((3300..=3600).contains(&left), "{item}");
    assert_eq!(item["verify"], json!({"ok": true, "message": "Kubernetes v1.32.13"}));
    let (table, _) = tool_ok(&["status", "--kubeconfig", kc_arg, "--verify"]);
    assert!(table.lines().next().unwrap().ends_with("EXPIRES   VERIFY"), "{table}");
    assert!(table.contains("token (file)") && table.contains("ok, Kubernetes v1.32.13"), "{table}");

    // An entry the child refuses: a failed row, the diagnosis, exit 3.
    lab_gen().cluster("child-real").args(&["--token-file", bad_arg, "--name", "refused", "--merge-into", kc_arg]).ok();
    let out = tool(&["status", "--kubeconfig", kc_arg, "--verify"]);
    let (table, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{table}\n{err}");
    let refused = table.lines().find(|l| l.starts_with("refused ")).unwrap_or_else(|| panic!("{table}"));
    assert!(refused.trim_end().ends_with("failed"), "{table}");
    assert!(err.contains("context \"refused\": GET /version through the proxy failed: HTTP 401"), "{err}");
    assert!(err.contains(r#"error: 1 of 2 generated context(s) expired or failed verification: "refused""#), "{err}");
    assert!(!err.contains(std::fs::read_to_string(&bad).unwrap().trim()), "the token leaked: {err}");
}

/// A throwaway ManagedCluster on the lab's parent (its own namespace), deleted
/// with the namespace on drop.
struct Throwaway {
    namespace: String,
    id: String,
}

impl Throwaway {
    fn create() -> Throwaway {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let suffix = format!("{:08x}", (nanos as u32) ^ std::process::id());
        let namespace = format!("clusternet-prune-{suffix}");
        let id = format!("d0d0d0d0-0000-4000-8000-0000{suffix}");
        let t = Throwaway { namespace, id };
        let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.namespace}},
            {"apiVersion": "clusters.clusternet.io/v1beta1", "kind": "ManagedCluster",
             "metadata": {"name": "doomed", "namespace": t.namespace,
                          "labels": {"clusters.clusternet.io/cluster-id": t.id}},
             "spec": {"clusterId": t.id, "clusterType": "EdgeCluster", "syncMode": "Pull"}},
        ]});
        let dir = tempdir();
        let file = write(dir.path(), "objects.json", &objects.to_string());
        kubectl_ok(admin(), &["create", "-f", file.to_str().unwrap()]);
        t
    }

    fn delete_cluster(&self) {
        kubectl_ok(admin(), &["-n", &self.namespace, "delete", "managedcluster", "doomed", "--wait=true"]);
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let out = kubectl(admin(), &["delete", "namespace", &self.namespace, "--wait=false"]);
        assert!(out.status.success() || std::thread::panicking(), "cleanup: {}", text(&out.stderr));
    }
}

#[test]
fn prune_removes_the_entries_of_a_deleted_managed_cluster_only() {
    let t = Throwaway::create();
    assert!(uuid_like(&t.id), "{}", t.id);
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    let token = child_token(dir.path(), "child.token");
    let (kc_arg, token_arg) = (kc.to_str().unwrap(), token.to_str().unwrap());
    lab_gen()
        .cluster("doomed")
        .args(&["-n", &t.namespace, "--token-file", token_arg, "--name", "doomed", "--merge-into", kc_arg])
        .ok();
    lab_gen().cluster("child-real").args(&["--token-file", token_arg, "--name", "kept", "--merge-into", kc_arg]).ok();
    let prune = |extra: &[&str]| {
        let mut args = vec!["prune", "--kubeconfig", kc_arg, "--parent-kubeconfig", admin()];
        args.extend_from_slice(extra);
        tool_ok(&args).1
    };
    // Both clusters exist: nothing to prune.
    let before = std::fs::read(&kc).unwrap();
    let err = prune(&[]);
    assert!(
        err.contains("nothing to prune: every checked ManagedCluster still exists (2 generated context(s))"),
        "{err}"
    );
    assert_eq!(std::fs::read(&kc).unwrap(), before);

    t.delete_cluster();
    let view_before = view(&kc);
    let err = prune(&["--dry-run"]);
    let line = format!(
        "would remove context \"doomed\" (ManagedCluster {}/doomed): no ManagedCluster has cluster ID {} on its parent any more",
        t.namespace, t.id
    );
    assert!(err.contains(&line), "{err}");
    assert!(err.contains("dry run:"), "{err}");
    assert_eq!(std::fs::read(&kc).unwrap(), before, "--dry-run writes nothing");

    let err = prune(&[]);
    assert!(err.contains(&line.replace("would remove", "removed")), "{err}");
    let view_after = view(&kc);
    // The foreign entries and the kept generated entry, as kubectl saw them.
    assert_eq!(view_after, others(&view_before, "doomed"));
    for list in ["clusters", "users", "contexts"] {
        assert!(!view_after[list].as_array().unwrap().iter().any(|e| e["name"] == "doomed"), "{list}: {view_after}");
    }
    // The kept entry still works.
    assert!(kubectl_ok(&kc, &["--context", "kept", "get", "ns", "-o", "name"]).contains(CHILD_ONLY_NAMESPACE));
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// A 10-minute child token is due within `--before 30m`; the token file holds
/// a fresh one-hour token by then: `refresh` puts it in, the child accepts it,
/// and the foreign entries are as kubectl saw them.
#[test]
fn refresh_puts_the_token_read_again_into_the_entry() {
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    let short = ["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA, "--duration", "10m"];
    let token = write(dir.path(), "child.token", kubectl_ok(lab().var("LAB_CHILD_KUBECONFIG"), &short).trim());
    let (kc_arg, token_arg) = (kc.to_str().unwrap(), token.to_str().unwrap());
    lab_gen().cluster("child-real").args(&["--token-file", token_arg, "--name", "ci", "--merge-into", kc_arg]).ok();
    let before = view(&kc);
    let expires_in = |kc: &str| {
        json(&tool_ok(&["status", "--kubeconfig", kc, "-o", "json"]).0)["items"][0]["expiresInSeconds"]
            .as_i64()
            .unwrap()
    };
    assert!(expires_in(kc_arg) <= 600, "the child's TokenRequest set 10 minutes");
    child_token(dir.path(), "child.token");
    let (_, err) = tool_ok(&["refresh", "--kubeconfig", kc_arg, "--before", "30m", "--parent-kubeconfig", admin()]);
    assert!(err.contains("refreshed context \"ci\": token (file), expires in "), "{err}");
    assert!(!err.contains("renew it at its source"), "the new token is not due: {err}");
    assert!((3300..=3600).contains(&expires_in(kc_arg)));
    let after = view(&kc);
    assert_eq!(others(&after, "ci"), others(&before, "ci"));
    let sent = std::fs::read_to_string(&token).unwrap();
    let user = after["users"].as_array().unwrap().iter().find(|u| u["name"] == "ci").unwrap();
    assert_eq!(user["user"]["as-user-extra"]["clusternet-token"], json!([sent.trim()]));
    assert!(kubectl_ok(&kc, &["--context", "ci", "get", "ns", "-o", "name"]).contains(CHILD_ONLY_NAMESPACE));
}

/// The child token of user `name` in `view`.
fn child_token_of(view: &Value, name: &str) -> String {
    let user = view["users"].as_array().unwrap().iter().find(|u| u["name"] == name).unwrap();
    user["user"]["as-user-extra"]["clusternet-token"][0].as_str().expect("a child token").to_string()
}

/// The provenance record of context `name` in `view`, as kubectl shows it.
fn record_of(view: &Value, name: &str) -> Value {
    let context = view["contexts"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    let ext = context["context"]["extensions"].as_array().unwrap();
    ext.iter().find(|e| e["name"] == "kubeconfig.clusternet.io/provenance").unwrap()["extension"].clone()
}

/// `refresh --kubeconfig <kc> <args>` (the lab admin's kubeconfig is not passed).
fn refresh(kc: &Path, args: &[&str]) -> std::process::Output {
    tool(&[&["refresh", "--kubeconfig", kc.to_str().unwrap()][..], args].concat())
}

/// The CI pattern, refreshed: a 10-minute token of the narrow service
/// account, asked for with the hub-held cluster-admin token, is due within
/// `--before 30m`; `refresh` reads the Secret again on the recorded parent
/// (with the lab admin's own kubeconfig) and asks the real child again: a
/// new, later-expiring token of the same account replaces the old one, the
/// admin token is never written, and the foreign entries are as kubectl saw
/// them.
#[test]
fn refresh_asks_the_child_again_for_a_token_request_entry() {
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    let kc_arg = kc.to_str().unwrap();
    let request = ["--child-token-request", &ci_account(), "--child-token-ttl", "10m"];
    lab_gen()
        .cluster(CHILD_REAL.name)
        .args(&["--child-credentials", "hub", "--name", "ci", "--merge-into", kc_arg])
        .args(&request)
        .ok();
    let before = view(&kc);
    let old = child_token_of(&before, "ci");
    // The new token is issued at least a second later: a later exp.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = refresh(&kc, &["--before", "30m", "--parent-kubeconfig", admin()]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("refreshed context \"ci\": token (token-request), expires in "), "{err}");
    assert!(
        err.contains("(within --before again: it was asked for 10m; gen --child-token-ttl asks for longer)"),
        "{err}"
    );
    let after = view(&kc);
    let new = child_token_of(&after, "ci");
    assert_ne!(new, old, "a new token");
    let (old_claims, new_claims) = (claims(&old), claims(&new));
    assert_eq!(new_claims["sub"], ci_user(), "{new_claims}");
    assert!(new_claims["exp"].as_i64() > old_claims["exp"].as_i64(), "{old_claims} -> {new_claims}");
    assert_eq!(new_claims["exp"].as_i64().unwrap() - new_claims["iat"].as_i64().unwrap(), 600, "{new_claims}");
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(!text.contains(&deployer_token()), "the cluster-admin token must not be written");
    // The record still says how to ask again: the request over the hub's Secret.
    let credential = &record_of(&after, "ci")["credential"];
    assert_eq!(credential["source"], "token-request", "{credential}");
    assert_eq!(credential["tokenRequest"]["base"], "hub", "{credential}");
    assert_eq!(credential["tokenRequest"]["ttlSeconds"], 600, "{credential}");
    assert_eq!(credential["secret"]["namespace"], CHILD_REAL.namespace, "{credential}");
    assert_eq!(others(&after, "ci"), others(&before, "ci"));
    // The real child takes it: the narrow identity, and what its Role allows.
    let who = json(&kubectl_ok(&kc, &["--context", "ci", "auth", "whoami", "-o", "json"]));
    assert_eq!(who["status"]["userInfo"]["username"], ci_user(), "{who}");
    let cm = json(&kubectl_ok(
        &kc,
        &["--context", "ci", "-n", CHILD_ONLY_NAMESPACE, "get", "configmap", CI_CONFIGMAP, "-o", "json"],
    ));
    assert_eq!(cm["data"]["seeded-by"], "lab");
}

/// `gen --child-credentials hub` as `name` into `kc`.
fn gen_hub(kc: &Path, name: &str) {
    lab_gen()
        .cluster(CHILD_REAL.name)
        .args(&["--child-credentials", "hub", "--name", name, "--merge-into", kc.to_str().unwrap()])
        .ok();
}

/// A hub-held entry (its token is the agent's legacy token: no expiry, so
/// read again on every run); the token in the file was made stale by hand:
/// `refresh` reads the Secret again, and the child takes the entry again.
#[test]
fn refresh_reads_the_hub_held_secret_again() {
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    gen_hub(&kc, "admin");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    let users = doc["users"].as_sequence_mut().unwrap();
    let user = users.iter_mut().find(|u| u["name"] == "admin").unwrap();
    user["user"]["as-user-extra"]["clusternet-token"] = serde_yaml::from_str("[stale]").unwrap();
    std::fs::write(&kc, serde_yaml::to_string(&doc).unwrap()).unwrap();
    let before = view(&kc);
    assert!(!kubectl(&kc, &["--context", "admin", "get", "ns"]).status.success(), "the stale token is refused");
    let out = refresh(&kc, &["--before", "800h", "--parent-kubeconfig", admin()]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err.lines().find(|l| l.starts_with("refreshed context \"admin\"")).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line, "refreshed context \"admin\": token (hub), expiry unknown");
    let after = view(&kc);
    assert_eq!(child_token_of(&after, "admin"), deployer_token(), "the Secret's token, as is");
    assert_eq!(record_of(&after, "admin")["credential"]["source"], "hub");
    assert_eq!(others(&after, "admin"), others(&before, "admin"));
    let who = json(&kubectl_ok(&kc, &["--context", "admin", "auth", "whoami", "-o", "json"]));
    assert_eq!(who["status"]["userInfo"]["username"], deployer_user(), "{who}");
}

/// A parent user who may not read the Secret: one `cannot refresh` line that
/// names the RBAC needed, exit 3, the file unchanged; with a due entry from
/// a file beside it, that one is refreshed all the same.
#[test]
fn refresh_by_a_parent_user_who_may_not_read_the_secret() {
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    gen_hub(&kc, "admin");
    let viewer = lab().var("LAB_VIEWER_KUBECONFIG");
    let refused = |kc: &Path| {
        let out = refresh(kc, &["--before", "800h", "--parent-kubeconfig", viewer]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("context \"admin\": ")).collect();
        let [line] = lines[..] else { panic!("one line for the entry: {err}") };
        let secret = format!("{}/{DEPLOYER_SECRET}", CHILD_REAL.namespace);
        assert!(line.starts_with(&format!("context \"admin\": cannot refresh: reading Secret {secret}")), "{line}");
        let rbac = format!("needs `get` on `secrets` named {DEPLOYER_SECRET} in namespace {}", CHILD_REAL.namespace);
        assert!(line.contains("is forbidden") && line.contains(&rbac), "{line}");
        assert!(!err.contains(&deployer_token()), "{err}");
        err
    };
    let bytes = std::fs::read(&kc).unwrap();
    let err = refused(&kc);
    assert!(err.contains("error: 1 of 1 due context(s) could not be refreshed"), "{err}");
    assert_eq!(std::fs::read(&kc).unwrap(), bytes, "nothing written");

    // A due entry from a token file beside it is refreshed all the same.
    let short = ["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA, "--duration", "10m"];
    let token = write(dir.path(), "child.token", kubectl_ok(lab().var("LAB_CHILD_KUBECONFIG"), &short).trim());
    let kc_arg = kc.to_str().unwrap();
    lab_gen()
        .cluster("child-real")
        .args(&["--token-file", token.to_str().unwrap(), "--name", "ci", "--merge-into", kc_arg])
        .ok();
    child_token(dir.path(), "child.token");
    let before = view(&kc);
    let err = refused(&kc);
    assert!(err.contains("refreshed context \"ci\": token (file), expires in "), "{err}");
    assert!(err.contains("error: 1 of 2 due context(s) could not be refreshed"), "{err}");
    let after = view(&kc);
    assert_eq!(others(&after, "ci"), others(&before, "ci"), "the hub entry and the foreign ones as they were");
    assert_ne!(after, before);
}

/// `kc` with each of `names`' cluster entries changed by `edit` and their
/// records (on their contexts) due, expired in 2020: a file as someone else
/// may have written it.
fn received(kc: &Path, names: &[&str], edit: &dyn Fn(&mut serde_yaml::Mapping)) {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(kc).unwrap()).unwrap();
    for (list, key) in [("clusters", "cluster"), ("contexts", "context")] {
        for item in doc[list].as_sequence_mut().unwrap() {
            if !names.iter().any(|n| item["name"] == *n) {
                continue;
            }
            let body = item[key].as_mapping_mut().unwrap();
            if key == "cluster" {
                edit(body);
                continue;
            }
            let ext = body["extensions"].as_sequence_mut().unwrap();
            let record = ext.iter_mut().find(|e| e["name"] == "kubeconfig.clusternet.io/provenance").unwrap();
            record["extension"]["credential"]["expires"] = "2020-01-01T00:00:00Z".into();
        }
    }
    std::fs::write(kc, serde_yaml::to_string(&doc).unwrap()).unwrap();
}

/// The attacker's file, against the lab's real parent: a received kubeconfig
/// whose hub-held (`admin`) and token-request (`ci`) entries record the real
/// parent and child, due, while each entry's own server goes elsewhere: the
/// sender's host (a recording HTTPS server whose CA the entry trusts),
/// another real cluster's ID, or a dial route to the sender through the real
/// hub. `refresh` with the user's own parent kubeconfig reads no Secret into
/// them and asks nothing through them: one "cannot refresh" line each, exit
/// 3, the file byte for byte, the sender hears nothing, and the child's
/// cluster-admin token is nowhere in the file.
#[test]
fn refresh_sends_no_credential_where_a_received_entry_points() {
    let recorder = testkit::Recorder::start(Default::default()).expect("start the recorder");
    let sender = recorder.url();
    let sender_ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(recorder.ca_pem())
    };
    let parent =
        json(&kubectl_ok(admin(), &["config", "view", "--minify", "-o", "json"]))["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
    type Edit = Box<dyn Fn(&mut serde_yaml::Mapping)>;
    fn server(m: &serde_yaml::Mapping) -> String {
        m["server"].as_str().unwrap().to_string()
    }
    let (to_sender, dial_sender) = (sender.clone(), sender.trim_start_matches("https://").to_string());
    let from = parent.clone();
    let cases: Vec<(&str, Edit, String)> = vec![
        (
            "the sender's host",
            Box::new(move |m| {
                m.insert("server".into(), server(m).replace(&from, &to_sender).into());
                m.insert("certificate-authority-data".into(), sender_ca.clone().into());
            }),
            format!(
                "its server {sender}{PROXY_PREFIX}{}/proxy/direct is not on its recorded parent {parent}",
                CHILD_REAL.id
            ),
        ),
        (
            "another cluster's ID",
            Box::new(|m| {
                m.insert("server".into(), server(m).replace(CHILD_REAL.id, CHILD_A.id).into());
            }),
            format!("its server is for cluster ID \"{}\", its record for {}", CHILD_A.id, CHILD_REAL.id),
        ),
        (
            "a dial route to the sender",
            Box::new(move |m| {
                let dial = server(m).replace("/proxy/direct", &format!("/proxy/https/{dial_sender}"));
                m.insert("server".into(), dial.into());
            }),
            "does not take the recorded route \"direct\"".to_string(),
        ),
    ];
    for (case, edit, needle) in cases {
        let dir = tempdir();
        let kc = with_foreign_entries(dir.path());
        gen_hub(&kc, "admin");
        let request = ["--child-token-request", &ci_account(), "--child-token-ttl", "10m"];
        lab_gen()
            .cluster(CHILD_REAL.name)
            .args(&["--child-credentials", "hub", "--name", "ci", "--merge-into", kc.to_str().unwrap()])
            .args(&request)
            .ok();
        received(&kc, &["admin", "ci"], &*edit);
        let bytes = std::fs::read(&kc).unwrap();
        let out = refresh(&kc, &["--parent-kubeconfig", admin()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{case}: {err}");
        for name in ["admin", "ci"] {
            let lines: Vec<&str> =
                err.lines().filter(|l| l.starts_with(&format!("context \"{name}\": cannot refresh: "))).collect();
            assert_eq!(lines.len(), 1, "{case}: {err}");
            assert!(lines[0].contains(&needle), "{case}: {}", lines[0]);
        }
        assert!(err.contains("error: 2 of 2 due context(s) could not be refreshed"), "{case}: {err}");
        assert!(!err.contains(&deployer_token()), "{case}: {err}");
        assert_eq!(std::fs::read(&kc).unwrap(), bytes, "{case}: the file is as it was");
    }
    let heard = recorder.requests();
    assert!(heard.is_empty(), "the sender heard {} request(s): {:?}", heard.len(), heard.first().map(|r| &r.path));
}

/// The Secret the hub holds, with its token put back on drop.
struct Rotated {
    namespace: String,
    was: String,
}

impl Rotated {
    /// Puts `token` in the hub's `child-cluster-deployer` Secret of the real child.
    fn to(token: &str) -> Rotated {
        use base64::Engine as _;
        let namespace = CHILD_REAL.namespace.to_string();
        let get = ["-n", &namespace, "get", "secret", DEPLOYER_SECRET, "-o", "jsonpath={.data.token}"];
        let was = kubectl_ok(admin(), &get).trim().to_string();
        let patch = json!({"data": {"token": base64::engine::general_purpose::STANDARD.encode(token)}}).to_string();
        kubectl_ok(admin(), &["-n", &namespace, "patch", "secret", DEPLOYER_SECRET, "-p", &patch]);
        Rotated { namespace, was }
    }
}

impl Drop for Rotated {
    fn drop(&mut self) {
        let patch = json!({"data": {"token": self.was}}).to_string();
        let out = kubectl(admin(), &["-n", &self.namespace, "patch", "secret", DEPLOYER_SECRET, "-p", &patch]);
        assert!(out.status.success() || std::thread::panicking(), "put back: {}", text(&out.stderr));
    }
}

/// Clusternet's agent copies the child's legacy token (no `exp`) into the
/// Secret the hub holds, so a hub entry's expiry is unknown, and the copy
/// changes when the token is rotated and the agent restarts. `refresh` reads
/// such an entry's Secret again on every run, whatever --before says: after
/// the Secret's token was rotated to another valid child token, the new one
/// goes in and kubectl works through the entry. (The record is made to say
/// "no expiry" as a legacy token's does, whatever the lab seeded.)
#[test]
fn refresh_reads_a_hub_credential_of_unknown_expiry_again() {
    // The real child's Secret changes for a while: no other test meanwhile.
    let _lab = exclusive();
    let dir = tempdir();
    let kc = with_foreign_entries(dir.path());
    gen_hub(&kc, "admin");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    let item = doc["contexts"].as_sequence_mut().unwrap().iter_mut().find(|e| e["name"] == "admin").unwrap();
    let ext = item["context"]["extensions"].as_sequence_mut().unwrap();
    let record = ext.iter_mut().find(|e| e["name"] == "kubeconfig.clusternet.io/provenance").unwrap();
    record["extension"]["credential"].as_mapping_mut().unwrap().remove("expires");
    std::fs::write(&kc, serde_yaml::to_string(&doc).unwrap()).unwrap();
    let before = view(&kc);
    let old = child_token_of(&before, "admin");
    let (status, _) = tool_ok(&["status", "--kubeconfig", kc.to_str().unwrap(), "-o", "json"]);
    assert_eq!(json(&status)["items"][0]["expires"], Value::Null, "{status}");

    let rotated = ["-n", DEPLOYER_NAMESPACE, "create", "token", DEPLOYER_SA, "--duration", "2h"];
    let rotated = kubectl_ok(lab().var("LAB_CHILD_KUBECONFIG"), &rotated).trim().to_string();
    assert_ne!(rotated, old);
    let _secret = Rotated::to(&rotated);
    let out = refresh(&kc, &["--before", "1m", "--parent-kubeconfig", admin()]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err.lines().find(|l| l.starts_with("refreshed context \"admin\"")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        ["1h59m", "2h"]
            .iter()
            .any(|left| line == format!("refreshed context \"admin\": token (hub), expires in {left}")),
        "{line}"
    );
    assert!(!err.contains(&rotated) && !err.contains(&old), "{err}");
    let after = view(&kc);
    assert_eq!(child_token_of(&after, "admin"), rotated, "the rotated token went in");
    assert_eq!(others(&after, "admin"), others(&before, "admin"));
    let who = json(&kubectl_ok(&kc, &["--context", "admin", "auth", "whoami", "-o", "json"]));
    assert_eq!(who["status"]["userInfo"]["username"], deployer_user(), "{who}");
}
