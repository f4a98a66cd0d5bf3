//! `refresh`: regenerates in place the generated entries whose credential
//! expires within a window (and, on every run, those whose expiry is
//! unknown, read again and rewritten only when changed), only for entries
//! [`super::trust`] finds aimed at the user's own parent, with `gen`'s own build step
//! ([`crate::generate::build`]), from what each entry's provenance records.
//!
//! How an entry is rebuilt: its parent side (cluster TLS settings, the parent
//! authentication of its user, the context's namespace) is the entry's own,
//! taken as the parent with `--parent-auth keep`; the parent server is the
//! entry's server without the socket-proxy path; the cluster ID and route
//! come from the provenance; the child credential is re-acquired from the
//! recorded source ([`reacquire`]): read again from its file, read again from
//! the Secret the hub holds (on the recorded parent, with the user's own
//! parent kubeconfig, as `prune` asks it), or asked of the child's
//! TokenRequest API again with such a base credential, which is then dropped.
//! Names and every other entry stay as they are; the file is rewritten once,
//! under kubectl's lock, taken after the credentials are re-acquired.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use serde_yaml::{Mapping, Value};

use super::trust::{self, Side, Transport, Trusted, UserParent};
use super::{Generated, ParentAccess, ParentKey, inventory};
use crate::cli::RefreshArgs;
use crate::clock::{self, Timestamp, human_until, now};
use crate::cluster::client::{self, Session};
use crate::cluster::deployer;
use crate::cluster::managed::{self, CLUSTER_ID_LABEL, ManagedCluster, Query};
use crate::credentials::file::{Credentials, Found as Entry, Wanted as Lookup};
use crate::credentials::origin::{ChildTokenRequest, CredentialOrigin};
use crate::credentials::{self, ChildSource, parent::Method};
use crate::error::{attention, in_cwd};
use crate::generate::targets::{self, Target};
use crate::generate::{self, Parent, Recipe};
use crate::kubeconfig::emit::Entries;
use crate::kubeconfig::load::{self, Loaded};
use crate::kubeconfig::model::Kubeconfig;
use crate::kubeconfig::provenance::{self, Credential, Provenance, Source};
use crate::kubeconfig::{flatten, select, upsert, write, yaml};
use crate::names;
use crate::names::ObjectRef;
use crate::notes;
use crate::route::{self, ClusterId};
use crate::terminal::escape;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub fn run(args: RefreshArgs) -> Result<()> {
    let path = super::target_file_from_env(args.file.kubeconfig.as_deref())?;
    let window = i64::try_from(args.before.as_secs()).unwrap_or(i64::MAX);
    let due_by = clock::from_second(now().as_second().saturating_add(window));
    crate::error::refuse_dash("--parent-kubeconfig", args.parent.parent_kubeconfig.as_deref())?;
    // Decided now, used only if a due entry needs its parent.
    let access = load::parent_source_from_env(args.parent.parent_kubeconfig.as_deref()).map(|source| ParentAccess {
        source,
        context: args.parent.parent_context.clone(),
        timeout: args.parent.timeout,
    });
    let mut reach = Reach::new(access.map_err(|e| format!("{e:#}")), args.parent.timeout);
    let flagged = args.file.kubeconfig.is_some();
    // The credentials are re-acquired (files read, the parent and the child
    // asked) before kubectl's lock is taken: kubectl gives up at once on a
    // held lock, so it is held for the rewrite alone.
    let config = super::read_target(&path, flagged)?;
    let (mut outcome, rebuilt) = prepare(&config, &path, due_by, &mut reach);
    if !rebuilt.is_empty() {
        let rewritten = in_cwd(
            write::rewrite(&path, args.lock_timeout, |doc| {
                apply(doc, &path, rebuilt).map_err(write::WriteError::Other)
            })
            .map_err(|e| anyhow!("{}{e}", if flagged { "--kubeconfig " } else { "" })),
            &path,
        )?;
        outcome.refreshed = rewritten.outcome.refreshed;
        outcome.cannot.extend(rewritten.outcome.changed);
    }
    notes::flush();
    for line in outcome.notes.iter().chain(&outcome.refreshed).chain(&outcome.unchanged) {
        eprintln!("{line}");
    }
    if outcome.refreshed.is_empty() && outcome.cannot.is_empty() {
        eprintln!(
            "nothing to refresh in {}: {} generated context(s), none expiring within {}{}",
            path.display(),
            outcome.generated,
            clock::human_span(window),
            match outcome.unchanged.len() {
                0 => String::new(),
                n => format!("; {n} of unknown expiry read again, unchanged"),
            }
        );
    }
    if outcome.unknown_expiry > 0 {
        eprintln!(
            "{} generated context(s) with no known expiry left as they are (their credential cannot be read again)",
            outcome.unknown_expiry
        );
    }
    for line in &outcome.cannot {
        eprintln!("{line}");
    }
    if !outcome.cannot.is_empty() {
        return Err(attention(format!(
            "{} of {} due context(s) could not be refreshed (listed above)",
            outcome.cannot.len(),
            outcome.cannot.len() + outcome.refreshed.len()
        )));
    }
    Ok(())
}

/// What a refresh did, one line per entry.
#[derive(Debug, Default)]
pub struct Outcome {
    pub generated: usize,
    pub refreshed: Vec<String>,
    pub cannot: Vec<String>,
    /// Entries of unknown expiry read again and found as they were.
    pub unchanged: Vec<String>,
    /// Entries of unknown expiry whose credential cannot be read again.
    pub unknown_expiry: usize,
    /// Notes on single entries (an unreadable expiry).
    pub notes: Vec<String>,
}

/// A due entry rebuilt, to be put in place under the lock.
struct Rebuilt {
    /// The entry as it was read, record included.
    was: Generated,
    entries: Entries,
    /// Its `refreshed context ...` line.
    line: String,
}

/// The due entries of `config` rebuilt (credentials re-acquired), and a line
/// for each that cannot be; nothing written.
fn prepare(config: &Kubeconfig, path: &Path, due_by: Timestamp, reach: &mut Reach) -> (Outcome, Vec<Rebuilt>) {
    let inv = inventory(config);
    let mut outcome = Outcome { generated: inv.generated.len(), ..Default::default() };
    let mut rebuilt = Vec::new();
    for g in inv.generated {
        if let Some(note) = super::unreadable_expiry(&g) {
            outcome.notes.push(note);
        }
        let Some(record) = g.record.as_ref() else {
            let line = format!("context {:?}: cannot refresh: its provenance record is unreadable", escape(&g.context));
            outcome.cannot.push(line);
            continue;
        };
        // A credential of unknown expiry (a hub-held legacy token has no
        // `exp`) may have been replaced at its source at any time: it is read
        // again on every run, whatever --before says, when it can be.
        let unknown = record.expires().is_none();
        match record.expires() {
            None if record.credential.as_ref().is_none_or(|c| reacquire(c).is_err()) => {
                outcome.unknown_expiry += 1;
                continue;
            }
            Some(at) if at > due_by => continue,
            _ => {}
        }
        match rebuild(config, path, &g, reach) {
            Ok(entries) => {
                let record = match provenance::find(&entries.context) {
                    provenance::Found::Record(r) => Some(*r),
                    _ => None,
                };
                match record.as_ref().and_then(Provenance::expires) {
                    // Nothing gained: the entry is left as it is, and said so.
                    Some(at) if at <= now() => outcome.cannot.push(format!(
                        "context {:?}: cannot refresh: the credential read again {}: renew it at its source",
                        escape(&g.context),
                        human_until(at, now())
                    )),
                    // Still of unknown expiry and the same: nothing to write.
                    None if unknown && same_credential(config, &g, &entries) => {
                        outcome.unchanged.push(unchanged_line(&g, record.as_ref()));
                    }
                    _ => {
                        let line = refreshed_line(&g, record.as_ref(), due_by);
                        rebuilt.push(Rebuilt { was: g, entries, line });
                    }
                }
            }
            Err(why) => outcome.cannot.push(format!("context {:?}: {}", escape(&g.context), escape(&why))),
        }
    }
    (outcome, rebuilt)
}

/// What [`apply`] did: the lines of the entries refreshed, and of those that
/// changed meanwhile (kept).
#[derive(Debug, Default)]
struct Applied {
    refreshed: Vec<String>,
    changed: Vec<String>,
}

/// The edit under the lock: the file read again, each rebuilt entry put in
/// place if the entry is still as it was read (names and record), else a
/// line saying it changed meanwhile.
fn apply(doc: Option<Value>, path: &Path, rebuilt: Vec<Rebuilt>) -> Result<(Option<Value>, Applied)> {
    let doc = doc.ok_or_else(|| anyhow!("{} is gone; nothing refreshed", path.display()))?;
    let config: Kubeconfig = yaml::from_value(&doc, "kubeconfig")?;
    let Value::Mapping(mut root) = doc else {
        return Err(anyhow!("{} is not a kubeconfig (its top level is not a mapping)", path.display()));
    };
    let now = inventory(&config);
    let mut applied = Applied::default();
    for r in rebuilt {
        if now.generated.contains(&r.was) {
            replace(&mut root, &r.was, r.entries)?;
            applied.refreshed.push(r.line);
        } else {
            applied.changed.push(format!(
                "context {:?}: cannot refresh: it was changed while its credential was re-acquired; run refresh again",
                escape(&r.was.context)
            ));
        }
    }
    let doc = (!applied.refreshed.is_empty()).then_some(Value::Mapping(root));
    Ok((doc, applied))
}

/// `refreshed context "x": token (file), expires in 59m`, from the new record.
fn refreshed_line(g: &Generated, record: Option<&Provenance>, due_by: Timestamp) -> String {
    let cred = record.and_then(|r| r.credential.as_ref());
    let kind = cred.and_then(|c| c.kind).map_or("credential", |k| k.as_str());
    let source = cred.and_then(|c| c.source).map_or("?", |s| s.as_str());
    let asked = cred.and_then(|c| c.token_request.as_ref()).and_then(|r| r.ttl_seconds);
    let expires = match record.and_then(Provenance::expires) {
        Some(at) if at <= due_by => format!(
            "expires {} (within --before again: {})",
            human_until(at, now()),
            match asked {
                Some(ttl) => format!(
                    "it was asked for {}; gen --child-token-ttl asks for longer",
                    clock::go_duration(Duration::from_secs(ttl))
                ),
                None => "a longer-lived credential at its source would help".to_string(),
            }
        ),
        Some(at) => format!("expires {}", human_until(at, now())),
        None => "expiry unknown".to_string(),
    };
    format!("refreshed context {:?}: {kind} ({source}), {expires}", escape(&g.context))
}

/// Whether the rebuilt entry carries the child credential the file's entry
/// already has (the impersonation extras hold it).
fn same_credential(config: &Kubeconfig, g: &Generated, rebuilt: &Entries) -> bool {
    let extras = |user: &Mapping| user.get("as-user-extra").cloned();
    config.users.iter().find(|u| u.name == g.user).is_some_and(|u| extras(&u.user) == extras(&rebuilt.user))
}

/// `context "x": token (hub) read again: unchanged, expiry unknown`, and
/// what to do if the child rejects it.
fn unchanged_line(g: &Generated, record: Option<&Provenance>) -> String {
    let cred = record.and_then(|r| r.credential.as_ref());
    let kind = cred.and_then(|c| c.kind).map_or("credential", |k| k.as_str());
    let source = cred.and_then(|c| c.source);
    let hub = source == Some(Source::Hub)
        || cred.and_then(|c| c.token_request.as_ref()).is_some_and(|r| r.base == Some(Source::Hub));
    format!(
        "context {:?}: {kind} ({}) read again: unchanged, expiry unknown{}",
        escape(&g.context),
        source.map_or("?", Source::as_str),
        if hub {
            "; if the child rejects it (status --verify), restart clusternet-agent on the child: it writes the hub's copy only when it starts"
        } else {
            "; if the child rejects it (status --verify), renew it at its source"
        }
    )
}

/// The entry rebuilt by `gen`'s build step, or why it cannot be.
fn rebuild(config: &Kubeconfig, path: &Path, g: &Generated, reach: &mut Reach) -> Result<Entries, String> {
    let record = g.record.as_ref().ok_or("cannot refresh: its provenance record is unreadable")?;
    let credential = record.credential.as_ref().ok_or("cannot refresh: its provenance records no credential")?;
    let how = reacquire(credential)?;
    // The rule first (see `trust`): nothing is read or asked for an entry it
    // refuses; the file's own part before the parent, which may be asked.
    let own = super::loaded(path, config.clone());
    let own = select::select(&own, Some(&g.context)).map_err(|e| format!("{:#}", e.naming("--context")))?;
    let entry = side_of(&own, credentials::parent_side(own.user), false)?;
    let parent = reach.user_parent(record)?;
    let Trusted { id, route } = trust::check(record, &entry, &parent)?;
    let as_parent = as_parent(config, g)?;
    let loaded = super::loaded(path, as_parent);
    let selection = select::select(&loaded, Some(&g.context)).map_err(|e| format!("{:#}", e.naming("--context")))?;
    let (source, origin) = acquire(&how.base, &id, record, reach)?;
    let managed = record.managed_cluster.as_ref().map(|m| ManagedCluster {
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        cluster_id: id.to_string(),
        cluster_type: String::new(),
        sync_mode: String::new(),
        kubernetes_version: String::new(),
        ready: String::new(),
        apiserver_url: String::new(),
    });
    let mut target = Target { id, cluster: managed, source, origin };
    let recorded = record.parent.clone().unwrap_or_default();
    let parent = Parent { files: path.display().to_string(), selection, token: None, recorded };
    let recipe = Recipe { route: &route, name: Some(&g.context), parent_auth: &Method::Keep };
    let mut built = generate::build(&recipe, &parent, std::slice::from_ref(&target)).map_err(cannot)?;
    let mut entry = built.pop().ok_or_else(|| "cannot refresh: nothing was built".to_string())?;
    if let Some(request) = &how.token_request {
        // The entry holds the base credential until the child's token replaces
        // it; on a failure it is dropped here, never written.
        client::block_on(generate::request_token(request, &mut target, &mut entry, None, reach.timeout))
            .and_then(|issued| issued)
            .map_err(cannot)?;
    }
    Ok(entry)
}

/// What a selected context says of the way to its server (see
/// [`trust::Side`]), with `user` as its parent authentication. A CA file is
/// read only when `read_ca` (the user's own parent kubeconfig): `gen` embeds
/// the CA, so a generated entry naming a file is refused unread.
fn side_of(selection: &select::Selection, user: Mapping, read_ca: bool) -> Result<Side, String> {
    let cluster = selection.cluster;
    if !read_ca && cluster.certificate_authority.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err("cannot refresh: its cluster names a certificate-authority file, which gen never writes (it embeds the CA); run gen again for this entry".into());
    }
    let ca = flatten::ca_data(cluster, selection.cluster_dir, selection.cluster_name).map_err(cannot)?;
    let ca = match ca {
        Some(data) => {
            let compact: String = data.split_whitespace().collect();
            Some(STANDARD.decode(compact).map_err(|_| "cannot refresh: its certificate-authority-data is not base64")?)
        }
        None => None,
    };
    let text = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    Ok(Side {
        server: selection.server().map_err(cannot)?,
        transport: Transport {
            ca,
            insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
            tls_server_name: text(&cluster.tls_server_name),
            proxy_url: text(&cluster.proxy_url),
        },
        user,
    })
}

/// `cannot refresh: <why>`, on one line.
fn cannot(e: anyhow::Error) -> String {
    format!("cannot refresh: {}", format!("{e:#}").replace('\n', " "))
}

/// How a due entry's child credential is obtained again (see [`reacquire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reacquisition {
    pub base: Base,
    /// A `token-request` credential: the child is asked again, with `base`,
    /// for a token of the same service account and lifetime.
    pub token_request: Option<ChildTokenRequest>,
}

/// Where the credential (or the one a token is asked with) is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Files named by `gen`'s flags: a token file, PEM files, a child kubeconfig.
    Files(ChildSource),
    /// The entry for the cluster in this `--credentials` file.
    CredentialsFile(PathBuf),
    /// The Secret the hub holds in this namespace of the recorded parent,
    /// read with the user's own parent kubeconfig.
    Hub { namespace: String },
}

/// How the recorded credential is re-acquired, or why it cannot be. Pure.
///
/// This is the one place that knows which sources `refresh` can re-acquire:
/// files (a token file, PEM files, a child kubeconfig, the `--credentials`
/// file), the Secret the hub holds, and a TokenRequest made with any of
/// those; not a credential given on the command line, in the environment or
/// on stdin.
pub fn reacquire(credential: &Credential) -> Result<Reacquisition, String> {
    let Some(Source::TokenRequest) = credential.source else {
        return Ok(Reacquisition { base: base(credential)?, token_request: None });
    };
    let request = credential.token_request.as_ref().ok_or("cannot refresh: its provenance records no token request")?;
    let ttl = request.ttl_seconds.filter(|s| *s > 0).ok_or("cannot refresh: its token request records no lifetime")?;
    let checked = names::check_namespace(&request.namespace, "the recorded token request's namespace")
        .and_then(|()| names::check_service_account(&request.service_account, "the recorded token request's"));
    checked.map_err(|e| format!("cannot refresh: {e:#}"))?;
    let with = Credential { source: request.base, ..credential.clone() };
    Ok(Reacquisition {
        base: base(&with).map_err(|why| format!("{why} (the credential its token was asked with)"))?,
        token_request: Some(ChildTokenRequest {
            service_account: ObjectRef { namespace: request.namespace.clone(), name: request.service_account.clone() },
            ttl: Duration::from_secs(ttl),
        }),
    })
}

/// Where a recorded credential other than a token request is read again.
fn base(credential: &Credential) -> Result<Base, String> {
    let path = || credential.path.as_deref().map(PathBuf::from).ok_or("cannot refresh: no file path recorded");
    match credential.source {
        Some(source @ (Source::Flag | Source::Env | Source::Stdin)) => Err(format!(
            "cannot refresh: the credential was given on the command line ({}); run gen again with a file or --credentials",
            source.as_str()
        )),
        Some(Source::File) => {
            let path = path()?;
            Ok(Base::Files(match (credential.format.as_deref(), credential.key_path.as_deref()) {
                (Some(provenance::FORMAT_KUBECONFIG), _) => {
                    ChildSource::ChildKubeconfig { path, context: credential.context.clone() }
                }
                (_, Some(key)) => ChildSource::CertKeyFiles { cert: path, key: key.into() },
                (None, None) => ChildSource::TokenFile(path),
                (Some(other), None) => {
                    return Err(format!("cannot refresh: unknown credential file format {other:?}"));
                }
            }))
        }
        Some(Source::CredentialsFile) => Ok(Base::CredentialsFile(path()?)),
        Some(Source::Hub) => {
            let secret = credential.secret.as_ref().ok_or("cannot refresh: its provenance records no Secret")?;
            if secret.name != deployer::SECRET_NAME {
                return Err(format!(
                    "cannot refresh: the recorded Secret {:?} is not {}, the one Clusternet's agent writes",
                    secret.name,
                    deployer::SECRET_NAME
                ));
            }
            names::check_namespace(&secret.namespace, "the recorded Secret's namespace")
                .map_err(|e| format!("cannot refresh: {e:#}"))?;
            Ok(Base::Hub { namespace: secret.namespace.clone() })
        }
        Some(Source::TokenRequest) => {
            Err("cannot refresh: a token asked for with another requested token is not one gen writes".to_string())
        }
        None => Err("cannot refresh: its provenance records no credential source".to_string()),
    }
}

/// What re-acquiring needs besides the file: the parents, connected lazily
/// (once per recorded server and context, and only when a due entry needs
/// its parent), and how long each request may take. The I/O edge of
/// `refresh`.
pub struct Reach {
    /// How the parents are reached; or why not, when the parent kubeconfig
    /// cannot even be decided (said only if a parent is needed).
    pub access: Result<ParentAccess, String>,
    pub timeout: Duration,
    /// The user's parent kubeconfig, read once when first needed.
    loaded: Option<Result<Loaded, String>>,
    parents: BTreeMap<ParentKey, Result<UserParent, String>>,
    sessions: BTreeMap<ParentKey, Result<Session, String>>,
}

/// Why a record names no parent to check against or ask.
const NO_PARENT: &str =
    "cannot refresh: its provenance records no parent server or parent context (--parent-context names the context)";

impl Reach {
    pub fn new(access: Result<ParentAccess, String>, timeout: Duration) -> Reach {
        Reach { access, timeout, loaded: None, parents: BTreeMap::new(), sessions: BTreeMap::new() }
    }

    /// The parent context `record` names (or --parent-context) as the user's
    /// own parent kubeconfig has it: what [`trust::check`] compares the
    /// entry with. Read, never asked.
    fn user_parent(&mut self, record: &Provenance) -> Result<UserParent, String> {
        let access = self.access.as_ref().map_err(|why| format!("cannot refresh: {why}"))?;
        let key = access.of(Some(record)).ok_or(NO_PARENT)?;
        let loaded = self.loaded.get_or_insert_with(|| {
            generate::load_parent(&access.source)
                .map_err(|e| format!("cannot refresh: the parent kubeconfig (--parent-kubeconfig): {e:#}"))
        });
        let loaded = loaded.as_ref().map_err(Clone::clone)?;
        let parent = self.parents.entry(key).or_insert_with_key(|(_, context)| {
            let selection = select::select(loaded, Some(context)).map_err(|e| cannot(e.naming("--parent-context")))?;
            let side = side_of(&selection, selection.user.clone(), true)?;
            Ok(UserParent { context: context.clone(), files: loaded.describe(), side })
        });
        parent.clone()
    }

    /// The session with the parent `record` names; a failure to connect is
    /// remembered, and said for every entry of that parent.
    fn parent(&mut self, record: &Provenance) -> Result<&Session, String> {
        let access = self.access.as_ref().map_err(|why| format!("cannot refresh: {why}"))?;
        let key = access.of(Some(record)).ok_or(NO_PARENT)?;
        let session = self.sessions.entry(key).or_insert_with_key(|key| access.connect(key).map_err(cannot));
        session.as_ref().map_err(Clone::clone)
    }
}

/// The child credential, obtained again as [`reacquire`] said, and its origin.
fn acquire(
    base: &Base,
    id: &ClusterId,
    record: &Provenance,
    reach: &mut Reach,
) -> Result<(ChildSource, CredentialOrigin), String> {
    match base {
        Base::Files(source) => Ok((source.clone(), source.origin())),
        Base::CredentialsFile(path) => {
            let file = Credentials::read(path).map_err(cannot)?;
            // Offline, the parent is not asked whether a bare name is still
            // unique: the key is taken as it was at generation.
            let object = record.managed_cluster.as_ref().map(|m| (m.namespace.as_str(), m.name.as_str()));
            match file.lookup(Lookup { id, object, same_name: 1 }) {
                Entry::One { source, .. } => {
                    Ok((source.clone(), CredentialOrigin::CredentialsFile { path: path.clone(), key: id.to_string() }))
                }
                _ => Err(format!(
                    "cannot refresh: no entry for cluster {id} in --credentials {} any more",
                    path.display()
                )),
            }
        }
        Base::Hub { namespace: recorded } => {
            let session = reach.parent(record)?;
            // The Secret's namespace is the ManagedCluster's that carries the
            // cluster ID on the parent, as the hub has it: not the record's
            // word (which must agree).
            let query = Query { label_selector: Some(format!("{CLUSTER_ID_LABEL}={id}")), ..Default::default() };
            let listing = session.block_on(managed::list(&session.conn, &query)).map_err(cannot)?;
            let namespace = match listing.clusters.as_slice() {
                [one] => &one.namespace,
                [] => return Err(format!("cannot refresh: no ManagedCluster on the parent carries cluster ID {id}")),
                _ => {
                    return Err(format!("cannot refresh: several ManagedClusters on the parent carry cluster ID {id}"));
                }
            };
            if namespace != recorded {
                return Err(format!(
                    "cannot refresh: its recorded Secret namespace {recorded:?} is not {namespace:?}, the namespace of the ManagedCluster with cluster ID {id}; run gen again for this entry"
                ));
            }
            let held =
                session.block_on(targets::read_one(&session.conn, namespace, &id.to_string())).map_err(cannot)?;
            let what = match &record.managed_cluster {
                Some(m) => format!("{}/{} ({id})", m.namespace, m.name),
                None => id.to_string(),
            };
            targets::held_for(id, namespace, &what, Some(&held)).map_err(cannot)
        }
    }
}

/// The file as a parent for the entry's own context: its cluster's server
/// without the socket-proxy path, its user without the impersonation.
fn as_parent(config: &Kubeconfig, g: &Generated) -> Result<Kubeconfig, String> {
    let mut clusters = config.clusters.clone();
    let cluster =
        clusters.iter_mut().find(|c| c.name == g.cluster).ok_or("cannot refresh: its cluster entry is missing")?;
    let server = cluster.cluster.server.clone().unwrap_or_default();
    let proxied = route::socket_proxy(&server).ok_or("cannot refresh: its server is not a socket-proxy route")?;
    cluster.cluster.server = Some(proxied.parent.to_string());
    let mut users = config.users.clone();
    let user = users.iter_mut().find(|u| u.name == g.user).ok_or("cannot refresh: its user entry is missing")?;
    user.user = credentials::parent_side(&user.user);
    Ok(Kubeconfig {
        clusters,
        users,
        contexts: config.contexts.clone(),
        current_context: config.current_context.clone(),
        ..Default::default()
    })
}

/// Puts the rebuilt entries in place, under the names they had.
fn replace(root: &mut Mapping, g: &Generated, rebuilt: Entries) -> Result<()> {
    let mut context = rebuilt.context;
    // `build` names the cluster and user after the context; keep theirs.
    context.insert("cluster".into(), g.cluster.clone().into());
    context.insert("user".into(), g.user.clone().into());
    upsert::upsert(root, "clusters", "cluster", &g.cluster, &rebuilt.cluster).context("clusters")?;
    upsert::upsert(root, "users", "user", &g.user, &rebuilt.user).context("users")?;
    upsert::upsert(root, "contexts", "context", &g.context, &context).context("contexts")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::provenance::TokenRequest;

    fn hub() -> Credential {
        Credential {
            source: Some(Source::Hub),
            secret: Some(ObjectRef { namespace: "clusternet-abc".into(), name: deployer::SECRET_NAME.into() }),
            ..Default::default()
        }
    }

    fn requested(base: Credential) -> Credential {
        Credential {
            source: Some(Source::TokenRequest),
            token_request: Some(TokenRequest {
                namespace: "ci".into(),
                service_account: "deployer".into(),
                ttl_seconds: Some(600),
                base: base.source,
            }),
            ..base
        }
    }

    #[test]
    fn which_sources_are_reacquired_and_how() {
        let held = reacquire(&hub()).unwrap();
        assert_eq!(held, Reacquisition { base: Base::Hub { namespace: "clusternet-abc".into() }, token_request: None });
        let request = ChildTokenRequest {
            service_account: ObjectRef { namespace: "ci".into(), name: "deployer".into() },
            ttl: Duration::from_secs(600),
        };
        let again = reacquire(&requested(hub())).unwrap();
        assert_eq!(again, Reacquisition { token_request: Some(request.clone()), ..held });
        let file = Credential { source: Some(Source::File), path: Some("/t/admin.crt".into()), ..Default::default() };
        let file = Credential { key_path: Some("/t/admin.key".into()), ..file };
        assert_eq!(
            reacquire(&requested(file)).unwrap(),
            Reacquisition {
                base: Base::Files(ChildSource::CertKeyFiles {
                    cert: "/t/admin.crt".into(),
                    key: "/t/admin.key".into()
                }),
                token_request: Some(request),
            }
        );
        let creds =
            Credential { source: Some(Source::CredentialsFile), path: Some("/c.yaml".into()), ..Default::default() };
        assert_eq!(reacquire(&creds).unwrap().base, Base::CredentialsFile("/c.yaml".into()));
    }

    /// A file with one generated entry `gen`, whose record has `expires`.
    fn file_with(expires: &str) -> Value {
        let record = Provenance {
            cluster_id: Some("11111111-1111-4111-8111-111111111111".into()),
            credential: Some(Credential { expires: Some(expires.into()), ..hub() }),
            ..Provenance::new()
        };
        let ext = serde_json::json!([{"name": provenance::EXTENSION_NAME, "extension": record.to_value()}]);
        serde_yaml::from_str(&format!(
            "clusters: [{{name: gen, cluster: {{server: 'https://p', extensions: {ext}}}}}]\n\
             users: [{{name: gen, user: {{as: clusternet, extensions: {ext}}}}}]\n\
             contexts: [{{name: gen, context: {{cluster: gen, user: gen, extensions: {ext}}}}}]\n"
        ))
        .unwrap()
    }

    #[test]
    fn an_entry_changed_while_it_was_rebuilt_is_kept() {
        let read = file_with("2020-01-01T00:00:00Z");
        let config: Kubeconfig = yaml::from_value(&read, "kubeconfig").unwrap();
        let was = inventory(&config).generated.remove(0);
        let mapping = |v: &Value| v.as_mapping().unwrap().clone();
        let entries = Entries {
            name: "gen".into(),
            cluster: mapping(&serde_yaml::from_str("{server: 'https://p/new'}").unwrap()),
            user: mapping(&serde_yaml::from_str("{as: clusternet}").unwrap()),
            context: mapping(&serde_yaml::from_str("{cluster: x, user: x}").unwrap()),
        };
        let rebuilt = || vec![Rebuilt { was: was.clone(), entries: entries.clone(), line: "refreshed".into() }];
        let path = Path::new("kc");
        // As it was read: put in place.
        let (doc, applied) = apply(Some(read.clone()), path, rebuilt()).unwrap();
        assert_eq!((applied.refreshed, applied.changed.len()), (vec!["refreshed".to_string()], 0));
        assert_eq!(doc.unwrap()["clusters"][0]["cluster"]["server"], Value::from("https://p/new"));
        // Regenerated by someone else meanwhile (another record): kept, said, nothing written.
        let (doc, applied) = apply(Some(file_with("2030-01-01T00:00:00Z")), path, rebuilt()).unwrap();
        assert!(doc.is_none() && applied.refreshed.is_empty(), "{applied:?}");
        assert_eq!(
            applied.changed,
            ["context \"gen\": cannot refresh: it was changed while its credential was re-acquired; run refresh again"]
        );
    }

    #[test]
    fn what_cannot_be_reacquired_says_why() {
        let why = |c: &Credential| reacquire(c).unwrap_err();
        let flag = Credential { source: Some(Source::Flag), ..Default::default() };
        let e = why(&requested(flag));
        assert!(e.contains("given on the command line (flag)") && e.contains("its token was asked with"), "{e}");
        let other = Credential { secret: Some(ObjectRef { namespace: "ns".into(), name: "mine".into() }), ..hub() };
        assert!(why(&other).contains("\"mine\" is not child-cluster-deployer"), "{}", why(&other));
        let bad_ns = Credential {
            secret: Some(ObjectRef { namespace: "../x".into(), name: deployer::SECRET_NAME.into() }),
            ..hub()
        };
        assert!(why(&bad_ns).contains("is not a namespace name"), "{}", why(&bad_ns));
        let mut no_ttl = requested(hub());
        no_ttl.token_request.as_mut().unwrap().ttl_seconds = None;
        assert!(why(&no_ttl).contains("no lifetime"), "{}", why(&no_ttl));
        let mut nested = requested(hub());
        nested.token_request.as_mut().unwrap().base = Some(Source::TokenRequest);
        assert!(why(&nested).contains("not one gen writes"), "{}", why(&nested));
        let bare = Credential { source: Some(Source::TokenRequest), ..Default::default() };
        assert!(why(&bare).contains("records no token request"), "{}", why(&bare));
    }
}
