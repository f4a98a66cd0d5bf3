//! Which child clusters `gen` writes contexts for, and with which credentials.
//!
//! `--cluster-id` alone needs nothing but the ID. `--cluster NAME` and `--all`
//! look ManagedClusters up on the parent with one paginated LIST.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

use crate::cluster::client::Connection;
use crate::cluster::deployer::{self, Held};
use crate::cluster::managed::{self, ManagedCluster, Query};
use crate::credentials::ChildSource;
use crate::credentials::file::{Credentials, Found as Entry, Wanted as Lookup};
use crate::credentials::origin::CredentialOrigin;
use crate::notes;
use crate::route::ClusterId;
use crate::terminal::escape;

/// The clusters asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Named one by one: cluster IDs (enough by themselves, offline) and
    /// ManagedCluster names (looked up on the parent, in `namespace` when given).
    Named { ids: Vec<ClusterId>, names: Vec<String>, namespace: Option<String> },
    /// Every ManagedCluster on the parent (in `namespace`, matching `selector`,
    /// when given).
    All { namespace: Option<String>, selector: Option<String> },
}

impl Wanted {
    /// How many clusters are asked for, when known before the lookup.
    pub fn count(&self) -> Option<usize> {
        match self {
            Wanted::Named { ids, names, .. } => Some(ids.len() + names.len()),
            Wanted::All { .. } => None,
        }
    }

    /// True when the clusters must be looked up on the parent.
    pub fn needs_lookup(&self) -> bool {
        match self {
            Wanted::Named { names, .. } => !names.is_empty(),
            Wanted::All { .. } => true,
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
    /// Per cluster, the Secret Clusternet's agent stores on the parent
    /// (`--child-credentials hub`).
    Hub,
}

/// One cluster to generate a context for.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: ClusterId,
    /// The ManagedCluster, when it was looked up.
    pub cluster: Option<ManagedCluster>,
    pub source: ChildSource,
    /// Where `source` came from (the record a kubeconfig may keep).
    pub origin: CredentialOrigin,
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

/// What the lookup found.
#[derive(Debug, Default)]
pub struct Found {
    /// The clusters asked for, in order.
    pub clusters: Vec<ManagedCluster>,
    /// Every ManagedCluster the LISTs returned.
    pub seen: Vec<ManagedCluster>,
    /// True when `seen` holds every ManagedCluster that bears the name of one
    /// of `clusters` (the LISTs covered all namespaces and all labels).
    pub seen_every_name: bool,
}

/// The ManagedClusters asked for, looked up with as few LISTs as possible
/// (IDs too, when the caller needs their ManagedClusters).
pub async fn look_up(conn: &Connection, wanted: &Wanted) -> Result<Found> {
    match wanted {
        Wanted::Named { ids, names, .. } if ids.is_empty() && names.is_empty() => Ok(Found::default()),
        Wanted::Named { ids, names, namespace } => find_named(conn, ids, names, namespace).await,
        Wanted::All { namespace, selector } => list_all(conn, namespace, selector).await,
    }
}

/// `--all`: one LIST, with the namespace and selector asked for.
async fn list_all(conn: &Connection, namespace: &Option<String>, selector: &Option<String>) -> Result<Found> {
    let listing = managed::list(
        conn,
        &Query { namespace: namespace.clone(), label_selector: selector.clone(), field_selector: None },
    )
    .await?;
    notes::push(format!("listed {} ManagedClusters in {} request(s)", listing.clusters.len(), listing.requests));
    if listing.clusters.is_empty() {
        bail!("no ManagedCluster matches on context {:?}{}", conn.context, selector_note(selector));
    }
    let seen_every_name = namespace.is_none() && selector.is_none();
    Ok(Found { seen: listing.clusters.clone(), clusters: listing.clusters, seen_every_name })
}

/// IDs and names: found among as few ManagedClusters as one LIST (two for a
/// single name that is not there) returns.
async fn find_named(
    conn: &Connection,
    ids: &[ClusterId],
    names: &[String],
    namespace: &Option<String>,
) -> Result<Found> {
    // One name: the server filters by name; a miss lists all for suggestions.
    let by_name_only = ids.is_empty() && names.len() == 1;
    // -n is the namespace of --cluster NAME; an ID is found in any namespace.
    let query = Query {
        namespace: if ids.is_empty() { namespace.clone() } else { None },
        label_selector: None,
        field_selector: by_name_only.then(|| format!("metadata.name={}", names[0])),
    };
    let seen_every_name = query.namespace.is_none();
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
    Ok(Found { clusters: found, seen: all_clusters, seen_every_name })
}

/// Every ManagedCluster on the parent, when the lookup saw only some and the
/// credentials file has a bare name that must be unique on the parent.
pub async fn complete(conn: &Connection, found: &mut Found, credentials: &ChildCredentialSource) -> Result<()> {
    let ChildCredentialSource::File(file) = credentials else {
        return Ok(());
    };
    if found.seen_every_name || !file.has_bare_name(found.clusters.iter().map(|c| c.name.as_str())) {
        return Ok(());
    }
    let listing = managed::list(conn, &Query::default()).await?;
    crate::trace::line(|| {
        format!(
            "listed all {} ManagedClusters to check that bare names in --credentials are unique",
            listing.clusters.len()
        )
    });
    found.seen = listing.clusters;
    found.seen_every_name = true;
    Ok(())
}

fn selector_note(selector: &Option<String>) -> String {
    selector.as_ref().map(|s| format!(" with selector {s:?}")).unwrap_or_default()
}

/// The hub-held credentials of the clusters, read with
/// [`read_held`], by namespace.
pub type HeldByNamespace = BTreeMap<String, Held>;

/// `--child-credentials hub`: the Secret of every cluster, one GET each.
pub async fn read_held(conn: &Connection, clusters: &[ManagedCluster]) -> Result<HeldByNamespace> {
    let mut held = BTreeMap::new();
    for c in clusters {
        held.insert(c.namespace.clone(), read_one(conn, &c.namespace, &c.cluster_id).await?);
    }
    Ok(held)
}

/// The hub-held credential of the cluster `cluster_id`, from the Secret in
/// `namespace` (one GET, traced): `gen` reads them all, `refresh` one again.
pub async fn read_one(conn: &Connection, namespace: &str, cluster_id: &str) -> Result<Held> {
    let found = deployer::read(conn, namespace, cluster_id).await?;
    crate::trace::line(|| {
        let what = match &found {
            Held::Token(_) => "a token".to_string(),
            Held::Missing => "missing".to_string(),
            Held::EmptyToken => "an empty token".to_string(),
            Held::OtherCluster(id) => format!("labelled for cluster ID {:?}", escape(&clip(id))),
        };
        format!("GET Secret {}: {what}", deployer::secret_ref(namespace))
    });
    Ok(found)
}

/// What [`pair`] needs besides the clusters.
pub struct Pairing<'a> {
    pub credentials: &'a ChildCredentialSource,
    /// With [`ChildCredentialSource::Hub`]: what [`read_held`] found.
    pub held: &'a HeldByNamespace,
    /// Every ManagedCluster known (for the uniqueness of bare names).
    pub seen: &'a [ManagedCluster],
}

/// A selected cluster that cannot be used, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The ID as given or as the ManagedCluster has it (perhaps not a UUID).
    pub id: String,
    pub cluster: Option<ManagedCluster>,
    /// One line, naming the cluster.
    pub reason: String,
}

/// The clusters [`pair`] could pair with credentials, and those it could not.
#[derive(Debug, Default)]
pub struct Paired {
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
}

/// Some selected clusters cannot be used, and skipping was not asked for
/// (`--allow-skip`): nothing is generated, written or run. Each reason is
/// said on a line of its own before this error.
#[derive(Debug)]
pub struct Unusable {
    pub skipped: Vec<Skipped>,
    /// The clusters that could have been used: `(namespace/name, ID)`.
    pub usable: Vec<(Option<(String, String)>, String)>,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of the {} selected clusters cannot be used (each said above); none was used: give them credentials, narrow the selection, or pass --allow-skip to go on without them",
            self.skipped.len(),
            self.skipped.len() + self.usable.len()
        )
    }
}

impl std::error::Error for Unusable {}

/// Pairs each cluster with its credentials. A cluster that cannot be used (no
/// entry in the credentials file, only an ambiguous bare name, no usable
/// Secret on the hub, a cluster ID that is not a UUID) is returned as
/// skipped, for the caller to refuse or skip; when it is the only cluster,
/// its reason is the error.
pub fn pair(clusters: Vec<ManagedCluster>, ids: &[ClusterId], with: &Pairing) -> Result<Paired> {
    let candidates = clusters.len() + ids.len();
    let mut paired = Paired::default();
    let mut items: Vec<(String, Option<ManagedCluster>, Result<ClusterId>)> =
        ids.iter().map(|id| (id.to_string(), None, Ok(id.clone()))).collect();
    items.extend(
        clusters.into_iter().map(|c| (c.cluster_id.clone(), cluster_id(&c), c)).map(|(raw, id, c)| (raw, Some(c), id)),
    );
    for (raw, cluster, id) in items {
        let usable = id.and_then(|id| credentials_for(&id, cluster.as_ref(), with).map(|found| (id, found)));
        match usable {
            Ok((id, (source, origin))) => paired.targets.push(Target { id, cluster, source, origin }),
            Err(e) => paired.skipped.push(Skipped { id: raw, cluster, reason: format!("{e:#}") }),
        }
    }
    if paired.targets.is_empty() && candidates == 1 {
        bail!("{}", paired.skipped.remove(0).reason);
    }
    Ok(paired)
}

/// The ID a looked-up cluster is reached by; the hub matches it exactly, so a
/// form that is not the canonical one is said, as for `--cluster-id`.
fn cluster_id(cluster: &ManagedCluster) -> Result<ClusterId> {
    let what = format!("ManagedCluster {}/{}", cluster.namespace, cluster.name);
    let (id, changed) = ClusterId::parse(&cluster.cluster_id)
        .map_err(|_| anyhow!("{what} has cluster ID {:?}, which is not a UUID", escape(&clip(&cluster.cluster_id))))?;
    if changed {
        notes::push(format!(
            "note: cluster ID {:?} of {what} normalised to {id} (the hub matches the ID exactly)",
            escape(&cluster.cluster_id)
        ));
    }
    Ok(id)
}

/// At most 80 characters of a value from the cluster, for a message.
fn clip(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The credentials of one cluster, from the flags, the credentials file or
/// the hub, and where they came from.
fn credentials_for(
    id: &ClusterId,
    cluster: Option<&ManagedCluster>,
    with: &Pairing,
) -> Result<(ChildSource, CredentialOrigin)> {
    let what = match cluster {
        Some(c) => format!("{}/{} ({id})", c.namespace, c.name),
        None => id.to_string(),
    };
    let file = match with.credentials {
        ChildCredentialSource::Flags(source) => return Ok((source.clone(), source.origin())),
        ChildCredentialSource::Hub => {
            let namespace = cluster.map(|c| c.namespace.as_str()).unwrap_or_default();
            return held_for(id, namespace, &what, with.held.get(namespace));
        }
        ChildCredentialSource::File(file) => file,
    };
    let object = cluster.map(|c| (c.namespace.as_str(), c.name.as_str()));
    let same_name = cluster.map_or(0, |c| with.seen.iter().filter(|o| o.name == c.name).count());
    match file.lookup(Lookup { id, object, same_name }) {
        Entry::One { key, source } => {
            crate::trace::line(|| format!("--credentials: key {:?} matched {what}", escape(key)));
            Ok((source.clone(), CredentialOrigin::CredentialsFile { path: file.path.clone(), key: key.to_string() }))
        }
        Entry::AmbiguousName { key } => {
            let name = cluster.map(|c| c.name.as_str()).unwrap_or_default();
            let mut others: Vec<String> =
                with.seen.iter().filter(|o| o.name == name).map(|o| format!("{}/{}", o.namespace, o.name)).collect();
            others.sort();
            bail!(
                "key {:?} of --credentials {} is ambiguous for {what}: {} ManagedClusters are named {name:?} ({}); use the key namespace/name or the cluster ID",
                escape(key),
                file.path.display(),
                others.len(),
                others.join(", ")
            )
        }
        Entry::None => bail!("no credentials for {what} in --credentials {}", file.path.display()),
    }
}

/// The hub-held credential of the cluster `what` (ID `id`), as the Secret in
/// `namespace` was found; a Secret that is missing or unusable is an error
/// for [`pair`] to skip or report (and for `refresh`, a line).
pub fn held_for(
    id: &ClusterId,
    namespace: &str,
    what: &str,
    held: Option<&Held>,
) -> Result<(ChildSource, CredentialOrigin)> {
    let secret = deployer::secret_ref(namespace);
    // The agent writes this Secret only when it starts: a missing or stale
    // one comes back (current) after a restart, not before.
    let give_another = "restart the child's clusternet-agent (it writes this Secret only when it starts), or give the child credentials with --credentials or a flag";
    match held {
        Some(Held::Token(token)) => Ok((ChildSource::Token(token.clone()), CredentialOrigin::Hub { secret })),
        Some(Held::Missing) => bail!(
            "no Secret {secret} on the parent for cluster {what}: Clusternet's agent stores the child's credentials there when it registers; {give_another}"
        ),
        Some(Held::EmptyToken) => bail!(
            "Secret {secret} for cluster {what} has an empty token: the agent has not stored the child's credentials; {give_another}"
        ),
        Some(Held::OtherCluster(other)) => bail!(
            "Secret {secret} is labelled for cluster ID {:?}, not {id}: it does not hold {what}'s credentials; {give_another}",
            escape(&clip(other))
        ),
        None => bail!("internal: the hub-held credentials of cluster {what} were not read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ObjectRef;
    use crate::secret::Secret;

    fn cluster(namespace: &str, name: &str, id: &str) -> ManagedCluster {
        ManagedCluster {
            namespace: namespace.into(),
            name: name.into(),
            cluster_id: id.into(),
            cluster_type: String::new(),
            sync_mode: String::new(),
            kubernetes_version: String::new(),
            ready: String::new(),
            apiserver_url: String::new(),
        }
    }

    const ID_A: &str = "1b2f7d0a-4c1e-4e6b-9a51-0000000000a1";
    const ID_B: &str = "2c3e8e1b-5d2f-4f7c-8b62-0000000000b2";

    #[test]
    fn hub_held_tokens_pair_with_their_clusters_and_unusable_secrets_are_skipped() {
        let clusters = vec![cluster("ns-a", "a", ID_A), cluster("ns-b", "b", ID_B)];
        let held: HeldByNamespace = [
            ("ns-a".to_string(), Held::Token(Secret::new("tok-a".into()))),
            ("ns-b".to_string(), Held::OtherCluster("someone-else".into())),
        ]
        .into();
        let pairing = Pairing { credentials: &ChildCredentialSource::Hub, seen: &[], held: &held };
        let Paired { targets, skipped } = pair(clusters, &[], &pairing).unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].source, ChildSource::Token(Secret::new("tok-a".into())));
        let secret = ObjectRef { namespace: "ns-a".into(), name: "child-cluster-deployer".into() };
        assert_eq!(targets[0].origin, CredentialOrigin::Hub { secret });
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].id, ID_B);
        let reason = &skipped[0].reason;
        assert!(
            reason.contains("Secret ns-b/child-cluster-deployer is labelled for cluster ID \"someone-else\", not")
                && reason.contains("ns-b/b"),
            "{reason}"
        );
    }

    #[test]
    fn each_source_records_its_origin() {
        let file = ChildSource::TokenFile("t".into());
        let pairing =
            Pairing { credentials: &ChildCredentialSource::Flags(file), seen: &[], held: &Default::default() };
        let (id, _) = ClusterId::parse(ID_A).unwrap();
        let targets = pair(vec![], &[id], &pairing).unwrap().targets;
        assert_eq!(targets[0].origin, CredentialOrigin::Files { flag: "--token-file", paths: vec!["t".into()] });
    }
}
