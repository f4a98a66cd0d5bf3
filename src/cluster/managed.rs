//! Clusternet's ManagedClusters on the parent: listing them (one paginated
//! LIST), and finding one by name.

use anyhow::{Result, bail};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::client::{Connection, api_error};

/// The label that carries the cluster ID; the hub selects by it.
pub const CLUSTER_ID_LABEL: &str = "clusters.clusternet.io/cluster-id";
/// Page size of the LIST: 2 requests per 1,000 clusters.
pub const PAGE_SIZE: u32 = 500;

fn resource() -> ApiResource {
    ApiResource {
        group: "clusters.clusternet.io".into(),
        version: "v1beta1".into(),
        api_version: "clusters.clusternet.io/v1beta1".into(),
        kind: "ManagedCluster".into(),
        plural: "managedclusters".into(),
    }
}

/// What the tool needs of a ManagedCluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    pub namespace: String,
    pub name: String,
    pub cluster_id: String,
    pub cluster_type: String,
    pub sync_mode: String,
    pub kubernetes_version: String,
    pub ready: String,
    #[serde(rename = "apiserverURL")]
    pub apiserver_url: String,
}

impl ManagedCluster {
    fn from_object(obj: &DynamicObject) -> ManagedCluster {
        let data = &obj.data;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let label_id = obj.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_ID_LABEL)).cloned();
        let spec_id = text(&data["spec"]["clusterId"]);
        let ready = data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .map(|c| text(&c["status"]))
            .unwrap_or_else(|| "Unknown".into());
        ManagedCluster {
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            name: obj.metadata.name.clone().unwrap_or_default(),
            // The label is what the hub matches; the spec is the fallback.
            cluster_id: label_id.filter(|l| !l.is_empty()).unwrap_or(spec_id),
            cluster_type: text(&data["spec"]["clusterType"]),
            sync_mode: text(&data["spec"]["syncMode"]),
            kubernetes_version: text(&data["status"]["k8sVersion"]),
            ready,
            apiserver_url: text(&data["status"]["apiserverURL"]),
        }
    }
}

/// Which ManagedClusters to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// The result of a LIST, and how many requests it took.
#[derive(Debug)]
pub struct Listing {
    pub clusters: Vec<ManagedCluster>,
    pub requests: usize,
}

/// Lists ManagedClusters page by page (limit 500 + continue): never one
/// request per cluster.
pub async fn list(conn: &Connection, query: &Query) -> Result<Listing> {
    let api: Api<DynamicObject> = match &query.namespace {
        Some(ns) => Api::namespaced_with(conn.client.clone(), ns, &resource()),
        None => Api::all_with(conn.client.clone(), &resource()),
    };
    let mut params = ListParams::default().limit(PAGE_SIZE);
    params.label_selector = query.label_selector.clone();
    params.field_selector = query.field_selector.clone();
    let mut clusters = Vec::new();
    let mut requests = 0;
    loop {
        requests += 1;
        let page = api.list(&params).await.map_err(|e| api_error(e, &conn.context, "listing ManagedClusters"))?;
        crate::trace::line(|| format!("LIST managedclusters page {requests}: {} items", page.items.len()));
        clusters.extend(page.items.iter().map(ManagedCluster::from_object));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => break,
        }
    }
    clusters.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Listing { clusters, requests })
}

/// Picks the cluster named `name` (in `namespace`, if given) from `clusters`.
/// Two matches are ambiguous; none lists the closest names.
pub fn by_name<'a>(clusters: &'a [ManagedCluster], name: &str, namespace: Option<&str>) -> Result<&'a ManagedCluster> {
    let matches: Vec<&ManagedCluster> =
        clusters.iter().filter(|c| c.name == name && namespace.is_none_or(|ns| c.namespace == ns)).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let closest = closest_names(clusters, name);
            let place = namespace.map(|ns| format!(" in namespace {ns:?}")).unwrap_or_default();
            if closest.is_empty() {
                bail!("no ManagedCluster named {name:?}{place}; `clusternet-kubeconfig list` shows them")
            }
            bail!("no ManagedCluster named {name:?}{place}; closest: {}", closest.join(", "))
        }
        many => {
            let candidates: Vec<String> =
                many.iter().map(|c| format!("{}/{} ({})", c.namespace, c.name, c.cluster_id)).collect();
            bail!(
                "ManagedCluster name {name:?} is ambiguous: {}; pass -n NAMESPACE or --cluster-id",
                candidates.join(", ")
            )
        }
    }
}

/// Up to three names within a small edit distance, closest first.
fn closest_names(clusters: &[ManagedCluster], name: &str) -> Vec<String> {
    let limit = (name.chars().count() / 2).max(2);
    let mut scored: Vec<(usize, String)> = clusters
        .iter()
        .map(|c| (edit_distance(&c.name, name), format!("{}/{}", c.namespace, c.name)))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mc(ns: &str, name: &str) -> ManagedCluster {
        ManagedCluster {
            namespace: ns.into(),
            name: name.into(),
            cluster_id: format!("id-{ns}-{name}"),
            cluster_type: String::new(),
            sync_mode: String::new(),
            kubernetes_version: String::new(),
            ready: String::new(),
            apiserver_url: String::new(),
        }
    }

    #[test]
    fn by_name_finds_one_refuses_two_and_suggests() {
        let all = [mc("clusternet-a", "child-a"), mc("clusternet-b", "dup"), mc("clusternet-c", "dup")];
        assert_eq!(by_name(&all, "child-a", None).unwrap().namespace, "clusternet-a");
        assert_eq!(by_name(&all, "dup", Some("clusternet-c")).unwrap().cluster_id, "id-clusternet-c-dup");
        let amb = format!("{:#}", by_name(&all, "dup", None).unwrap_err());
        assert!(amb.contains("ambiguous: clusternet-b/dup (id-clusternet-b-dup), clusternet-c/dup"), "{amb}");
        let typo = format!("{:#}", by_name(&all, "chld-a", None).unwrap_err());
        assert!(typo.contains("closest: clusternet-a/child-a"), "{typo}");
        assert!(format!("{:#}", by_name(&all, "zzzzzzzzzz", None).unwrap_err()).contains("list` shows them"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn object_fields() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "clusters.clusternet.io/v1beta1", "kind": "ManagedCluster",
            "metadata": {"name": "c", "namespace": "clusternet-x", "labels": {CLUSTER_ID_LABEL: "the-id"}},
            "spec": {"clusterId": "spec-id", "clusterType": "EdgeCluster", "syncMode": "Pull"},
            "status": {"k8sVersion": "v1.32.1", "apiserverURL": "https://c:6443",
                       "conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let c = ManagedCluster::from_object(&obj);
        assert_eq!((c.cluster_id.as_str(), c.ready.as_str(), c.sync_mode.as_str()), ("the-id", "True", "Pull"));
        assert_eq!(c.apiserver_url, "https://c:6443");
    }
}
