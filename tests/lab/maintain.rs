//! `status --verify` and `prune` against the lab: the child's real token
//! expiry and reachability through the proxy; entries of a ManagedCluster
//! deleted on the lab's real parent pruned, everything else left as kubectl
//! saw it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

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
    let (_, err) = tool_ok(&["refresh", "--kubeconfig", kc_arg, "--before", "30m"]);
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
