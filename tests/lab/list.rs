//! `clusternet-kubeconfig list` against the real apiserver: the seeded
//! ManagedClusters in every format, `-n`, `-l`.

use serde_json::Value;

use crate::support::*;

/// What lab.sh seeded, as `list` must show it (seed, sync, ready, URL).
/// child-a, child-b and dup point at the hub stand-in's canned child.
fn expected() -> Vec<(Seed, &'static str, &'static str, String)> {
    let canned = lab().var("LAB_CANNED_CHILD_SERVER").to_string();
    vec![
        (CHILD_A, "Pull", "True", canned.clone()),
        (CHILD_B, "Push", "True", canned.clone()),
        (DUP_1, "Dual", "True", canned.clone()),
        (DUP_2, "Pull", "True", canned),
        (CHILD_OFFLINE, "Pull", "False", "https://10.0.0.41:6443".into()),
        (CHILD_NOURL, "Pull", "True", String::new()),
    ]
}

fn items_of(out: &str) -> Vec<Value> {
    json(out)["items"].as_array().expect("items").clone()
}

fn find<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items.iter().find(|i| i["clusterId"] == id).unwrap_or_else(|| panic!("{id} not listed: {items:?}"))
}

#[test]
fn json_shows_every_seeded_cluster_with_its_fields() {
    let (out, _) = lab_cmd("list").args(&["-o", "json"]).ok();
    let items = items_of(&out);
    for (seed, sync, ready, url) in expected() {
        let item = find(&items, seed.id);
        let want = serde_json::json!({
            "namespace": seed.namespace,
            "name": seed.name,
            "clusterId": seed.id,
            "clusterType": "EdgeCluster",
            "syncMode": sync,
            "kubernetesVersion": "v1.32.13",
            "ready": ready,
            "apiserverURL": url,
        });
        assert_eq!(item, &want, "{seed:?}");
    }
    // Sorted by namespace/name (the seeded namespaces sort a1b2c < d3e4f < ...).
    let keys: Vec<(String, String)> =
        items.iter().map(|i| (i["namespace"].as_str().unwrap().into(), i["name"].as_str().unwrap().into())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn yaml_is_the_same_data_as_json() {
    let (j, _) = lab_cmd("list").args(&["-o", "json", "-n", CHILD_B.namespace]).ok();
    let (y, _) = lab_cmd("list").args(&["-o", "yaml", "-n", CHILD_B.namespace]).ok();
    let from_yaml: Value = serde_yaml::from_str(&y).unwrap_or_else(|e| panic!("not YAML ({e}): {y}"));
    assert_eq!(from_yaml, json(&j));
    assert_eq!(from_yaml["items"][0]["clusterId"], CHILD_B.id);
    assert!(y.ends_with('\n'));
}

#[test]
fn table_has_one_aligned_row_per_cluster() {
    let (out, _) = lab_cmd("list").ok();
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "CLUSTER-ID", "TYPE", "SYNC-MODE", "K8S-VERSION", "READY", "APISERVER-URL"]
    );
    for (seed, sync, ready, url) in expected() {
        let id = seed.id;
        let row = lines.iter().find(|l| l.contains(id)).unwrap_or_else(|| panic!("no row for {seed:?}: {out}"));
        let mut want = vec![seed.namespace, seed.name, id, "EdgeCluster", sync, "v1.32.13", ready];
        if !url.is_empty() {
            want.push(&url);
        }
        assert_eq!(row.split_whitespace().collect::<Vec<_>>(), want, "{seed:?}");
        // Columns line up with the header.
        assert_eq!(row.find(id), lines[0].find("CLUSTER-ID"), "{row}");
    }
}

#[test]
fn namespace_and_label_selector() {
    let (out, _) = lab_cmd("list").args(&["-o", "json", "-n", DUP_2.namespace]).ok();
    let items = items_of(&out);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["clusterId"], DUP_2.id);
    assert_eq!(items[0]["name"], "dup");

    let sel = format!("clusters.clusternet.io/cluster-id={}", CHILD_OFFLINE.id);
    let (out, _) = lab_cmd("list").args(&["-o", "json", "-l", &sel]).ok();
    let items = items_of(&out);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["name"], "child-offline");
    assert_eq!(items[0]["ready"], "False");

    // Nothing matches: empty list on stdout, a note on stderr.
    let (out, err) = lab_cmd("list").args(&["-o", "json", "-l", "no-such-label=x"]).ok();
    assert_eq!(json(&out)["items"], serde_json::json!([]));
    assert!(err.contains("No ManagedClusters found"), "{err}");

    // -v traces the pages it asked for.
    let (_, err) = lab_cmd("list").args(&["-v", "-l", &sel]).ok();
    assert!(err.contains("LIST managedclusters page 1: 1 items"), "{err}");
}

#[test]
fn a_missing_namespace_is_an_empty_list_and_bad_context_is_named() {
    let (out, _) = lab_cmd("list").args(&["-o", "json", "-n", "no-such-namespace"]).ok();
    assert_eq!(json(&out)["items"], serde_json::json!([]));
    let err = lab_cmd("list").args(&["--context", "nope"]).err();
    assert!(err.contains("nope"), "{err}");
}
