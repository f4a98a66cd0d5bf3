//! 1,000 extra ManagedClusters (`lab.sh seed-many 1000`): `list` and
//! `gen --all` page through them with LIMIT 500 + continue, counted by the
//! kube-apiserver itself (`apiserver_request_total` in its /metrics). The
//! test holds the lab exclusively so that no other test's LIST is counted.

use std::time::Instant;

use crate::support::*;

#[test]
fn list_and_gen_all_page_through_a_thousand_clusters() {
    let lab = lab();
    let dir = tempdir();
    let _lab = exclusive();
    let t0 = Instant::now();
    seed_many();
    eprintln!("[many] seed-many {MANY}: {:.1}s", t0.elapsed().as_secs_f64());

    // list: every cluster, ceil(n/500) LISTs as the apiserver counts them.
    let before = managedcluster_lists();
    let t0 = Instant::now();
    let (out, err) = lab_cmd("list").args(&["-o", "json", "-v"]).ok();
    let list_time = t0.elapsed();
    let lists = managedcluster_lists() - before;
    let items = json(&out)["items"].as_array().unwrap().clone();
    let n = items.len();
    assert!(n > MANY, "{n} listed");
    let pages = n.div_ceil(500) as u64;
    assert_eq!(lists, pages, "the apiserver served {lists} LISTs for {n} clusters");
    let traced = err.lines().filter(|l| l.starts_with("trace: LIST managedclusters page")).count() as u64;
    assert_eq!(traced, pages, "{err}");
    assert!(err.contains("LIST managedclusters page 1: 500 items"), "{err}");
    for i in [1, 500, 501, MANY] {
        let (name, namespace, id) = testkit::lab::many(i);
        let item = items.iter().find(|c| c["clusterId"] == id.as_str()).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(item["name"], name);
        assert_eq!(item["namespace"], namespace);
        assert_eq!(item["ready"], "Unknown", "seed-many sets no status");
    }
    let mut ids: Vec<&str> = items.iter().map(|c| c["clusterId"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no cluster twice across pages");
    eprintln!(
        "[many] list: {n} clusters in {:.2}s, {lists} LIST requests (apiserver metrics)",
        list_time.as_secs_f64()
    );

    // The whole table too (default output).
    let (table, _) = lab_cmd("list").ok();
    assert_eq!(table.lines().count(), n + 1);

    // gen --all with a credentials file keyed by ID, one entry per cluster.
    let mut creds = String::from("clusters:\n");
    for id in &ids {
        creds.push_str(&format!("  {id}: {{token: tok-{id}}}\n"));
    }
    let creds = write(dir.path(), "creds.yaml", &creds);
    let out = dir.path().join("all.kubeconfig");
    let total_before = apiserver_requests(&[]);
    let managed_before = apiserver_requests(&[r#"resource="managedclusters""#]);
    let lists_before = managedcluster_lists();
    let t0 = Instant::now();
    let (_, err) = lab_gen().args(&["--all", "--strict"]).credentials(&creds).output_file(&out).ok();
    let gen_time = t0.elapsed();
    let lists = managedcluster_lists() - lists_before;
    // Everything the apiserver served meanwhile, the lab's own background
    // traffic (controller-manager, availability checks) included.
    let total = apiserver_requests(&[]) - total_before;
    assert_eq!(lists, pages, "{err}");
    assert!(err.contains(&format!("listed {n} ManagedClusters in {pages} request(s)")), "{err}");
    let doc: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let contexts = doc["contexts"].as_array().unwrap();
    assert_eq!(contexts.len(), n);
    assert_eq!(doc["users"].as_array().unwrap().len(), n);
    let c = doc["clusters"].as_array().unwrap().iter().find(|c| c["name"] == "clusternet-many-00777").unwrap();
    assert_eq!(
        c["cluster"]["server"],
        format!("{}{PROXY_PREFIX}5eed0000-0000-4000-8000-000000000777/proxy/direct", lab.server())
    );
    let u = doc["users"].as_array().unwrap().iter().find(|u| u["name"] == "clusternet-many-00777").unwrap();
    assert_eq!(u["user"]["as-user-extra"]["clusternet-token"][0], "tok-5eed0000-0000-4000-8000-000000000777");
    eprintln!(
        "[many] gen --all: {n} contexts in {:.2}s; apiserver: {lists} LIST managedclusters ({total} requests in all meanwhile, background included)",
        gen_time.as_secs_f64()
    );
    // The apiserver served nothing else for ManagedClusters (no GET per cluster).
    assert_eq!(
        apiserver_requests(&[r#"resource="managedclusters""#]) - managed_before,
        pages,
        "ManagedCluster requests other than the LISTs"
    );

    // Exactly which requests: the same through the second parent
    // (`lab.sh up-noanon`), whose audit log records every request with its user.
    let noanon = noanon_kubeconfig();
    let out2 = dir.path().join("all-audited.kubeconfig");
    let args = ["gen", "--kubeconfig", noanon, "--all", "--credentials", creds.to_str().unwrap(), "--output-file"];
    let (_, events) = audited(|| tool_ok(&[&args[..], &[out2.to_str().unwrap()]].concat()));
    let ours: Vec<String> = events
        .iter()
        .filter(|e| e["user"]["username"] == "lab-admin")
        .map(|e| format!("{} {}", e["verb"].as_str().unwrap(), e["requestURI"].as_str().unwrap()))
        .collect();
    eprintln!("[many] gen --all via the audited parent: {} request(s): {ours:?}", ours.len());
    assert_eq!(ours.len() as u64, pages, "{ours:?}");
    assert!(
        ours.iter().all(|r| r.starts_with("list /apis/clusters.clusternet.io/v1beta1/managedclusters?")),
        "{ours:?}"
    );
    assert!(ours[0].contains("limit=500") && ours[1..].iter().all(|r| r.contains("continue=")), "{ours:?}");

    // One context of the thousand works through the real aggregator, once
    // its agent has connected (a session with the hub) and reported
    // (seed-many sets no status): as with the hub, the direct route needs
    // status.apiserverURL.
    lab_sh(&["agent-start", &testkit::lab::many(777).2]);
    let status = serde_json::json!({"status": {
        "apiserverURL": lab.var("LAB_CANNED_CHILD_SERVER"),
        "useSocket": true,
        "conditions": [{"type": "Ready", "status": "True", "reason": "ManagedClusterReady", "message": "ready",
                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
    }});
    kubectl_ok(
        admin(),
        &[
            "-n",
            "clusternet-m00777",
            "patch",
            "managedcluster",
            "many-00777",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ],
    );
    let v = json(&kubectl_ok(&out, &["--context", "clusternet-many-00777", "version", "-o", "json"]));
    assert_eq!(v["serverVersion"]["gitVersion"], testkit::CHILD_GIT_VERSION);
}
