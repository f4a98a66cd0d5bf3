//! `gen --all` and repeated `--cluster`/`--cluster-id` with `--credentials`:
//! one context per cluster, each reaching its child with its own token.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

fn doc(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn context_names(doc: &Value) -> Vec<String> {
    doc["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

fn server_of(doc: &Value, name: &str) -> String {
    let c = doc["clusters"].as_array().unwrap().iter().find(|c| c["name"] == name).expect("cluster entry");
    c["cluster"]["server"].as_str().unwrap().to_string()
}

/// kubectl --context `context` reaches the child `id` with `token`.
fn reaches(kc: &Path, context: &str, id: &str, token: &str) {
    let v = json(&kubectl_ok(kc, &["--context", context, "version", "-o", "json"]));
    assert_eq!(v["serverVersion"]["gitVersion"], testkit::CHILD_GIT_VERSION, "{context}: {v}");
    let recs = records_with("x-remote-extra-clusternet-token", token, 1);
    let want = format!("{PROXY_PREFIX}{id}/proxy/direct/version");
    assert!(recs.iter().any(|r| r.path == want), "{context}: no {want} with its token: {recs:?}");
    assert!(recs.iter().all(|r| r.header("x-remote-user") == Some("clusternet")));
}

struct Tokens {
    a: String,
    b: String,
    dup1: String,
}

/// Entries by name (child-a), by ID (child-b), by namespace/name (dup #1).
fn credentials(dir: &Path) -> (std::path::PathBuf, Tokens) {
    let t = Tokens { a: unique("all-a"), b: unique("all-b"), dup1: unique("all-dup1") };
    write(dir, "b.token", &format!("{}\n", t.b));
    let text = format!(
        "clusters:\n  child-a: {{token: {}}}\n  {}: {{tokenFile: b.token}}\n  {}/dup: {{token: {}}}\n",
        t.a, CHILD_B.id, DUP_1.namespace, t.dup1
    );
    (write(dir, "creds.yaml", &text), t)
}

#[test]
fn all_with_allow_skip_writes_one_context_per_cluster_with_credentials_and_skips_the_rest() {
    let lab = lab();
    let dir = tempdir();
    let (creds, t) = credentials(dir.path());
    let out = dir.path().join("all.kubeconfig");
    let (_, err) = lab_gen().args(&["--all", "--allow-skip"]).credentials(&creds).output_file(&out).ok();
    let d = doc(&out);
    assert_eq!(context_names(&d), ["clusternet-child-a", "clusternet-child-b", "clusternet-dup"]);
    // --all names no cluster, so none is made current (the listing's first is
    // not the user's choice).
    assert!(d["current-context"].as_str().unwrap_or_default().is_empty(), "{d}");
    for (seed, name) in [(CHILD_A, "clusternet-child-a"), (CHILD_B, "clusternet-child-b"), (DUP_1, "clusternet-dup")] {
        let id = seed.id;
        assert_eq!(server_of(&d, name), format!("{}{PROXY_PREFIX}{id}/proxy/direct", lab.server()));
    }
    // Skipped, each with a warning naming it and the file.
    for seed in [DUP_2, CHILD_OFFLINE, CHILD_NOURL] {
        let id = seed.id;
        let line = err.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("no warning for {seed:?}: {err}"));
        assert!(
            line.starts_with("warning: no credentials for") && line.ends_with("; skipped (--allow-skip)"),
            "{line}"
        );
        assert!(line.contains(creds.to_str().unwrap()), "{line}");
    }
    assert!(err.contains("wrote context \"clusternet-child-a\", \"clusternet-child-b\", \"clusternet-dup\""), "{err}");
    // Each context reaches its child with its own token.
    reaches(&out, "clusternet-child-a", CHILD_A.id, &t.a);
    reaches(&out, "clusternet-child-b", CHILD_B.id, &t.b);
    reaches(&out, "clusternet-dup", DUP_1.id, &t.dup1);
}

/// Fail closed: a selected cluster without credentials fails the run, each
/// such cluster named on an `error:` line, and nothing is written; `--strict`
/// (what asked for this before) is accepted and changes nothing.
#[test]
fn a_selected_cluster_without_credentials_fails_the_run_and_nothing_is_written() {
    let dir = tempdir();
    let (creds, _) = credentials(dir.path());
    let out = dir.path().join("closed.kubeconfig");
    for extra in [&[][..], &["--strict"]] {
        let err = lab_gen().args(&["--all"]).args(extra).credentials(&creds).output_file(&out).err();
        for seed in [DUP_2, CHILD_OFFLINE, CHILD_NOURL] {
            assert!(
                err.lines().any(|l| l.starts_with("error: no credentials for") && l.contains(seed.id)),
                "{seed:?}: {err}"
            );
        }
        let last = err.lines().last().unwrap();
        assert!(last.contains("selected clusters cannot be used") && last.contains("--allow-skip"), "{err}");
        assert!(!out.exists(), "nothing written");
    }
}

/// `-l ""` selects everything, as kubectl reads it: the same clusters as
/// `kubectl get managedclusters -A -l ""`.
#[test]
fn an_empty_selector_selects_every_cluster_as_kubectl_does() {
    let dir = tempdir();
    let (creds, _) = credentials(dir.path());
    let out = dir.path().join("empty-selector.kubeconfig");
    let (_, err) = lab_gen().args(&["--all", "-l", "", "--allow-skip"]).credentials(&creds).output_file(&out).ok();
    let listed = err.lines().find(|l| l.starts_with("listed ")).unwrap_or_else(|| panic!("{err}"));
    let kubectl =
        json(&kubectl_ok(admin(), &["get", "managedclusters.clusters.clusternet.io", "-A", "-l", "", "-o", "json"]));
    let n = kubectl["items"].as_array().unwrap().len();
    assert!(n >= 6, "{kubectl}");
    assert!(listed.starts_with(&format!("listed {n} ManagedClusters")), "{listed} (kubectl: {n})");
    assert_eq!(context_names(&doc(&out)), ["clusternet-child-a", "clusternet-child-b", "clusternet-dup"]);
}

/// Two ManagedClusters named `dup`, merged one after the other into one
/// file with the default name: the second would replace the first's
/// entries (both `clusternet-dup`); it is refused, naming the entry and
/// `--name`, and the first is kept. With `--name` both are there.
#[test]
fn merging_a_same_named_cluster_never_replaces_another_clusters_entry() {
    let dir = tempdir();
    let (t1, t2) = (unique("merge-dup1"), unique("merge-dup2"));
    write(dir.path(), "t1", &t1);
    write(dir.path(), "t2", &t2);
    let merged = dir.path().join("config");
    let merge = |ns: &str, token: &str, extra: &[&str]| {
        let token = dir.path().join(token);
        let merged = merged.to_str().unwrap();
        let args = [&["--cluster", "dup", "-n", ns, "--token-file", token.to_str().unwrap()][..], extra].concat();
        lab_gen().args(&args).args(&["--merge-into", merged])
    };
    merge(DUP_1.namespace, "t1", &[]).ok();
    let before = std::fs::read_to_string(&merged).unwrap();
    let err = merge(DUP_2.namespace, "t2", &[]).err();
    assert!(
        err.contains("\"clusternet-dup\" generated for cluster ID") && err.contains(DUP_1.id) && err.contains(DUP_2.id),
        "{err}"
    );
    assert!(err.contains("--name"), "{err}");
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), before, "the first cluster's entries are kept");
    reaches(&merged, "clusternet-dup", DUP_1.id, &t1);
    // Again for the same cluster: replaced, as before.
    merge(DUP_1.namespace, "t1", &[]).ok();
    merge(DUP_2.namespace, "t2", &["--name", "clusternet-dup-2"]).ok();
    let mut names = context_names(&doc(&merged));
    names.sort();
    assert_eq!(names, ["clusternet-dup", "clusternet-dup-2"]);
    reaches(&merged, "clusternet-dup", DUP_1.id, &t1);
    reaches(&merged, "clusternet-dup-2", DUP_2.id, &t2);
}

#[test]
fn selector_picks_the_matching_clusters_only() {
    let dir = tempdir();
    let (creds, t) = credentials(dir.path());
    let out = dir.path().join("sel.kubeconfig");
    let sel = format!("clusters.clusternet.io/cluster-id={}", CHILD_B.id);
    let (_, err) = lab_gen().args(&["--all", "-l", &sel]).credentials(&creds).output_file(&out).ok();
    assert!(err.contains("listed 1 ManagedClusters in 1 request(s)"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let d = doc(&out);
    assert_eq!(context_names(&d), ["clusternet-child-b"]);
    reaches(&out, "clusternet-child-b", CHILD_B.id, &t.b);

    // A selector nothing matches is an error, not an empty kubeconfig.
    let err = lab_gen().args(&["--all", "-l", "nothing=here"]).credentials(&creds).err();
    assert!(err.contains("no ManagedCluster matches") && err.contains("nothing=here"), "{err}");
}

#[test]
fn repeated_cluster_and_cluster_id_with_credentials() {
    let lab = lab();
    let dir = tempdir();
    let (creds, t) = credentials(dir.path());
    let out = dir.path().join("rep.kubeconfig");
    let (_, err) = lab_gen()
        .cluster("child-a")
        .args(&["--cluster-id", CHILD_B.id, "--cluster-id", DUP_1.id])
        .credentials(&creds)
        .args(&["--no-current-context"])
        .output_file(&out)
        .ok();
    let d = doc(&out);
    let mut names = context_names(&d);
    names.sort();
    assert_eq!(names, ["clusternet-child-a", "clusternet-child-b", "clusternet-dup"], "{err}");
    // --no-current-context: none set, so kubectl needs --context.
    assert!(d["current-context"].as_str().unwrap_or_default().is_empty(), "{d}");
    let cur = kubectl(&out, &["config", "current-context"]);
    assert!(!cur.status.success(), "{}", text(&cur.stdout));
    reaches(&out, "clusternet-child-a", CHILD_A.id, &t.a);
    reaches(&out, "clusternet-child-b", CHILD_B.id, &t.b);
    reaches(&out, "clusternet-dup", DUP_1.id, &t.dup1);

    // -n is the namespace of --cluster; an ID is found in any namespace.
    let (out2, err) =
        lab_gen().cluster("dup").args(&["-n", DUP_1.namespace, "--cluster-id", CHILD_B.id]).credentials(&creds).ok();
    let d2: Value = serde_yaml::from_str(&out2).unwrap();
    let mut names = context_names(&d2);
    names.sort();
    assert_eq!(names, ["clusternet-child-b", "clusternet-dup"], "{err}");
    assert_eq!(server_of(&d2, "clusternet-dup"), format!("{}{PROXY_PREFIX}{}/proxy/direct", lab.server(), DUP_1.id));

    // A name without an entry fails the run; --allow-skip skips it with a warning.
    let err = lab_gen().cluster("child-a").cluster("child-offline").credentials(&creds).err();
    assert!(err.contains("error: no credentials for") && err.contains(CHILD_OFFLINE.id), "{err}");
    let (_, err) =
        lab_gen().cluster("child-a").cluster("child-offline").args(&["--allow-skip"]).credentials(&creds).ok();
    assert!(err.contains("warning: no credentials for") && err.contains("child-offline"), "{err}");
}

/// Both `dup`s with credentials: the context names carry the namespace.
#[test]
fn same_name_in_two_namespaces_gets_qualified_names() {
    let dir = tempdir();
    let (t1, t2) = (unique("dup-q1"), unique("dup-q2"));
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!("clusters:\n  {}/dup: {{token: {t1}}}\n  {}/dup: {{token: {t2}}}\n", DUP_1.namespace, DUP_2.namespace),
    );
    let out = dir.path().join("dups.kubeconfig");
    let sel = format!("clusters.clusternet.io/cluster-id in ({},{})", DUP_1.id, DUP_2.id);
    lab_gen().args(&["--all", "-l", &sel]).credentials(&creds).output_file(&out).ok();
    let n1 = format!("clusternet-{}-dup", DUP_1.namespace);
    let n2 = format!("clusternet-{}-dup", DUP_2.namespace);
    assert_eq!(context_names(&doc(&out)), [n1.clone(), n2.clone()]);
    reaches(&out, &n1, DUP_1.id, &t1);
    reaches(&out, &n2, DUP_2.id, &t2);
}
