//! Which child clusters `gen` writes contexts for, and with which credentials.
//!
//! `--cluster-id` alone needs nothing but the ID. `--cluster NAME` and `--all`
//! look ManagedClusters up on the parent with one paginated LIST.

use anyhow::{Result, anyhow, bail};

use crate::cluster::client::Connection;
use crate::cluster::managed::{self, ManagedCluster, Query};
use crate::credentials::ChildSource;
use crate::credentials::file::Credentials;
use crate::route::ClusterId;

/// The clusters asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// `--cluster-id` only: offline.
    Ids(Vec<ClusterId>),
    /// Looked up on the parent.
    Lookup { ids: Vec<ClusterId>, names: Vec<String>, namespace: Option<String>, all: bool, selector: Option<String> },
}

impl Wanted {
    pub fn count(&self) -> Option<usize> {
        match self {
            Wanted::Ids(ids) => Some(ids.len()),
            Wanted::Lookup { all: true, .. } => None,
            Wanted::Lookup { ids, names, .. } => Some(ids.len() + names.len()),
        }
    }
}

/// Where child credentials come from.
#[derive(Debug)]
pub enum ChildCredentialSource {
    /// One source from the flags, for the one cluster.
    Flags(ChildSource),
    /// Per cluster, from `--credentials`.
    File(Credentials),
}

/// One cluster to generate a context for.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: ClusterId,
    /// The ManagedCluster, when it was looked up.
    pub cluster: Option<ManagedCluster>,
    pub source: ChildSource,
}

impl Target {
    /// `clusternet-<name>` for a looked-up cluster (with its namespace when the
    /// name is not unique among the targets), `clusternet-<id>` otherwise.
    pub fn default_name(&self, qualify: bool) -> String {
        match &self.cluster {
            Some(c) if qualify => format!("clusternet-{}-{}", c.namespace, c.name),
            Some(c) => format!("clusternet-{}", c.name),
            None => format!("clusternet-{}", self.id),
        }
    }

    pub fn describe(&self) -> String {
        match &self.cluster {
            Some(c) => format!("{}/{} ({})", c.namespace, c.name, self.id),
            None => self.id.to_string(),
        }
    }
}

/// The ManagedClusters asked for, looked up with as few LISTs as possible.
pub async fn look_up(conn: &Connection, wanted: &Wanted, notes: &mut Vec<String>) -> Result<Vec<ManagedCluster>> {
    let Wanted::Lookup { ids, names, namespace, all, selector } = wanted else {
        return Ok(Vec::new());
    };
    if *all {
        let listing = managed::list(
            conn,
            &Query { namespace: namespace.clone(), label_selector: selector.clone(), field_selector: None },
        )
        .await?;
        notes.push(format!("listed {} ManagedClusters in {} request(s)", listing.clusters.len(), listing.requests));
        if listing.clusters.is_empty() {
            bail!("no ManagedCluster matches on context {:?}{}", conn.context, selector_note(selector));
        }
        return Ok(listing.clusters);
    }
    // One name: the server filters by name; a miss lists all for suggestions.
    let by_name_only = ids.is_empty() && names.len() == 1;
    // -n is the namespace of --cluster NAME; an ID is found in any namespace.
    let query = Query {
        namespace: if ids.is_empty() { namespace.clone() } else { None },
        label_selector: None,
        field_selector: by_name_only.then(|| format!("metadata.name={}", names[0])),
    };
    let mut all_clusters = managed::list(conn, &query).await?.clusters;
    if by_name_only && all_clusters.is_empty() {
        all_clusters =
            managed::list(conn, &Query { namespace: namespace.clone(), ..Default::default() }).await?.clusters;
    }
    let mut found = Vec::new();
    for id in ids {
        let cluster = all_clusters.iter().find(|c| c.cluster_id == id.as_str()).ok_or_else(|| {
            anyhow!(
                "no ManagedCluster has cluster ID {id} on context {:?}; `clusternet-kubeconfig list` shows them",
                conn.context
            )
        })?;
        found.push(cluster.clone());
    }
    for name in names {
        found.push(managed::by_name(&all_clusters, name, namespace.as_deref())?.clone());
    }
    Ok(found)
}

fn selector_note(selector: &Option<String>) -> String {
    selector.as_ref().map(|s| format!(" with selector {s:?}")).unwrap_or_default()
}

/// Pairs each cluster with its credentials. A cluster missing from the
/// credentials file is skipped with a warning, or is an error with `strict`.
pub fn pair(
    clusters: Vec<(ClusterId, Option<ManagedCluster>)>,
    credentials: &ChildCredentialSource,
    strict: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for (id, cluster) in clusters {
        let source = match credentials {
            ChildCredentialSource::Flags(source) => source.clone(),
            ChildCredentialSource::File(file) => {
                let (ns, name) =
                    (cluster.as_ref().map(|c| c.namespace.as_str()), cluster.as_ref().map(|c| c.name.as_str()));
                match file.lookup(id.as_str(), ns, name) {
                    Some(source) => source.clone(),
                    None => {
                        let what = Target { id, cluster, source: ChildSource::Token(String::new()) }.describe();
                        let message = format!("no credentials for {what} in --credentials {}", file.path.display());
                        if strict {
                            bail!("{message} (--strict); add an entry under clusters:");
                        }
                        notes.push(format!("warning: {message}; skipped"));
                        continue;
                    }
                }
            }
        };
        targets.push(Target { id, cluster, source });
    }
    if targets.is_empty() {
        bail!("no cluster has credentials in --credentials; nothing to generate");
    }
    Ok(targets)
}
