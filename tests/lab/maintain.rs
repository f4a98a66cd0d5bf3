//! `status --verify`, `prune` and `refresh` against the lab: the child's real
//! token expiry and reachability through the proxy; entries of a
//! ManagedCluster deleted on the lab's real parent pruned; entries refreshed
//! from a token file, from the Secret the hub holds, and by asking the real
//! child's TokenRequest API again; everything else left as kubectl saw it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use testkit::lab::{CI_CONFIGMAP, DEPLOYER_SECRET};

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

/// The provenance record of user `name` in `view`, as kubectl shows it.
fn record_of(view: &Value, name: &str) -> Value {
    let user = view["users"].as_array().unwrap().iter().find(|u| u["name"] == name).unwrap();
    let ext = user["user"]["extensions"].as_array().unwrap();
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

/// A hub-held entry (its token is the deployer's 720 h TokenRequest token) is
/// due within `--before 800h`; the token in the file was made stale by hand:
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
    assert!(line.starts_with("refreshed context \"admin\": token (hub), expires in "), "{line}");
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
