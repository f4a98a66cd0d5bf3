//! `gen`: dedicated kubeconfigs for child clusters.
//!
//! Two stages, as in ripgrep: [`Settings::resolve`] turns the raw flags into
//! what the program uses (every usage error is found there, before any file is
//! read), then [`run`] follows one pipeline: load the parent kubeconfig →
//! select the context → find the clusters → pair them with credentials → the
//! parent token → route the server and build the entries → verify → emit or
//! write. Plain `gen --cluster-id` never touches the network nor starts an
//! async runtime; only `--cluster`, `--all`, `--child-credentials hub`, a
//! parent token read from the cluster and `--verify` connect to the parent, and
//! `--child-token-request` reaches the child through it (all through
//! [`crate::cluster`]).

pub mod guard;
pub mod record;
pub mod settings;
pub mod targets;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};

pub use self::settings::{Destination, Env, Settings, Shared, Verify};
use self::targets::{ChildCredentialSource, Found, Paired, Pairing, Skipped, Target, Unusable, Wanted};
use crate::cli::GenArgs;
use crate::clock::{self, Timestamp};
use crate::cluster::client::{self, Session};
use crate::cluster::{actions, deployer, hub_token, probe, token_request};
use crate::credentials::origin::{ChildTokenRequest, CredentialOrigin};
use crate::credentials::parent::GivenToken;
use crate::credentials::{self, ChildCredentials, TokenSource, oidc};
use crate::error::in_cwd;
use crate::kubeconfig::emit::{self, Entries};
use crate::kubeconfig::load::{self, ParentSource};
use crate::kubeconfig::select::Selection;
use crate::kubeconfig::{flatten, plan, provenance, select, write};
use crate::notes;
use crate::route;
use crate::secret::Secret;
use crate::trace;

pub fn run(args: GenArgs) -> Result<()> {
    let result = Settings::resolve(args, Env::from_process()).and_then(|settings| generate(&settings));
    // Notes that were not printed yet (a failure before delivery).
    notes::flush();
    result
}

/// The parent kubeconfig; a missing relative --kubeconfig names the working directory.
pub fn load_parent(source: &ParentSource) -> Result<load::Loaded> {
    match source {
        ParentSource::Flag(path) => in_cwd(load::load_parent(source), path),
        _ => load::load_parent(source),
    }
}

/// The pipeline, from the parent kubeconfig to the written entries.
fn generate(settings: &Settings) -> Result<()> {
    let produced = produce(&settings.shared, settings.name.as_deref(), settings.verify)?;
    deliver(settings, &produced.entries, &produced.parent_context, &produced.inputs)
}

/// What the pipeline produced, before it is written anywhere.
pub struct Produced {
    /// One per target, in the same order.
    pub targets: Vec<Target>,
    pub entries: Vec<Entries>,
    /// The selected parent context.
    pub parent_context: String,
    /// Every file this run read.
    pub inputs: Vec<PathBuf>,
    /// Selected clusters left out (`--allow-skip`), each with its reason.
    pub skipped: Vec<Skipped>,
    /// When the parent token expires, if this run minted it (`--parent-token-request`).
    pub parent_expiration: Option<Timestamp>,
}

/// The pipeline up to the entries (verified when asked), nothing written:
/// `gen` delivers them, `exec` runs a command with each, `proxy` forwards
/// through one. `name` and `check` are `gen`'s `--name` and `--verify`.
pub fn produce(shared: &Shared, name: Option<&str>, check: Verify) -> Result<Produced> {
    let loaded = load_parent(&shared.parent)?;
    let selection = select::select(&loaded, shared.context.as_deref()).map_err(|e| e.naming("--context"))?;
    guard::refuse_generated_parent(&loaded, &selection)?;
    // `--parent-auth oidc`: the tool itself uses the ID token the exec entry
    // would fetch, fetched once, and only when it asks the parent anything.
    let asks_parent = shared.needs_cluster() || check != Verify::No;
    let id_token = oidc_token(shared, asks_parent)?;
    let bearer = id_token.as_ref().map(|t| &t.token);
    // Connected only when something must be asked of the parent.
    let session = asks_parent.then(|| Session::connect(&selection, bearer, shared.timeout)).transpose()?;
    if let (Some(s), Some(token), credentials::parent::Method::Oidc(source)) =
        (&session, &id_token, &shared.parent_auth)
    {
        // Only a refusal stops here: a parent without the SelfSubjectReview
        // API (before v1.28, with --oidc-* flags) answers the lookups alike.
        match s.block_on(client::who_am_i(&s.conn)) {
            Ok(user) => trace::line(|| format!("the parent authenticates the OIDC token as {user:?}")),
            Err(e) if client::api_status(&e) == Some(401) => return Err(oidc::refused(source, token)),
            Err(e) => trace::line(|| format!("who the OIDC token is, unknown: {e:#}")),
        }
    }
    let (found, ids) = match &shared.wanted {
        // IDs alone need no lookup, unless the hub holds the credentials (in
        // each ManagedCluster's namespace).
        Wanted::Named { ids, names, .. } if names.is_empty() && !shared.reads_hub_credentials() => {
            (Found::default(), ids.as_slice())
        }
        wanted => {
            let s = connected(&session)?;
            let mut found = s.block_on(targets::look_up(&s.conn, wanted))?;
            s.block_on(targets::complete(&s.conn, &mut found, &shared.child))?;
            (found, &[][..])
        }
    };
    let held = match shared.reads_hub_credentials() {
        true => {
            let s = connected(&session)?;
            s.block_on(targets::read_held(&s.conn, &found.clusters))?
        }
        false => Default::default(),
    };
    let pairing = Pairing { credentials: &shared.child, seen: &found.seen, held: &held };
    let Paired { mut targets, skipped } = targets::pair(found.clusters, ids, &pairing)?;
    refuse_or_skip(shared, &targets, &skipped)?;
    if shared.reads_hub_credentials() {
        notes::push(hub_warning(shared.token_request.as_ref()));
    }
    let (token, parent_expiration) = parent_token(shared, &session)?;
    let recorded = record::parent(selection.server()?.as_deref(), selection.context_name);
    let parent = Parent { files: loaded.describe(), selection, token, recorded };
    let mut entries =
        build(&Recipe { route: &shared.route, name, parent_auth: &shared.parent_auth }, &parent, &targets)?;
    if let Some(request) = &shared.token_request {
        client::block_on(request_tokens(shared, request, bearer, &mut targets, &mut entries))??;
    }
    notes::flush();
    if check != Verify::No {
        let s = connected(&session)?;
        s.block_on(verify(shared.timeout, check, s, &parent, &entries, bearer))?;
    }
    let inputs = input_files(shared, &loaded, &targets);
    let parent_context = parent.selection.context_name.to_string();
    Ok(Produced { parent_context, targets, entries, inputs, skipped, parent_expiration })
}

/// Selected clusters that cannot be used fail the run (one `error:` line
/// each, then [`Unusable`]), unless `--allow-skip` asked to go on without
/// them (one `warning:` line each); with none left, there is nothing to do.
fn refuse_or_skip(shared: &Shared, targets: &[Target], skipped: &[Skipped]) -> Result<()> {
    let level = if shared.allow_skip { "warning" } else { "error" };
    for s in skipped {
        let skip = if shared.allow_skip { "; skipped (--allow-skip)" } else { "" };
        notes::push(format!("{level}: {}{skip}", s.reason));
    }
    if !skipped.is_empty() && !shared.allow_skip {
        let usable = targets
            .iter()
            .map(|t| (t.cluster.as_ref().map(|c| (c.namespace.clone(), c.name.clone())), t.id.to_string()))
            .collect();
        return Err(anyhow::Error::new(Unusable { skipped: skipped.to_vec(), usable }));
    }
    if targets.is_empty() {
        bail!("none of the {} selected clusters can be used (warnings above); nothing to generate", skipped.len());
    }
    Ok(())
}

/// What `--child-credentials hub` hands over, said before anything is written.
fn hub_warning(request: Option<&ChildTokenRequest>) -> String {
    let what = format!(
        "the child-cluster-deployer Secret holds each child's cluster-admin credential (service account {}/{} on the child)",
        deployer::CHILD_NAMESPACE,
        deployer::CHILD_SERVICE_ACCOUNT
    );
    match request {
        Some(r) => format!(
            "note: --child-credentials hub: {what}; it is used only to request the token of {} and is not written",
            r.service_account
        ),
        None => format!(
            "warning: --child-credentials hub: {what}, and it is written into the kubeconfig: whoever reads the file is cluster-admin on the child; prefer --child-token-request NAMESPACE/SERVICEACCOUNT for a short-lived, narrowly bound token"
        ),
    }
}

/// `--child-token-request`: for every entry, [`request_token`]; with several
/// clusters, a failure names the cluster.
async fn request_tokens(
    shared: &Shared,
    request: &ChildTokenRequest,
    bearer: Option<&Secret>,
    targets: &mut [Target],
    entries: &mut [Entries],
) -> Result<()> {
    let several = targets.len() > 1;
    for (target, entry) in targets.iter_mut().zip(entries.iter_mut()) {
        let described = target.describe();
        let issued = request_token(request, target, entry, bearer, shared.timeout).await;
        match several {
            true => issued.with_context(|| format!("cluster {described}"))?,
            false => issued?,
        }
    }
    Ok(())
}

/// Asks the child's TokenRequest API, through the socket proxy with the entry
/// itself, for a token of the service account; the entry then holds that
/// token alone (the credential it was asked with is gone from it), and the
/// target's origin records the request over that credential. `gen` and
/// `refresh` both get their child tokens here. `bearer`: the OIDC token
/// already fetched, in place of the entry's exec plugin.
pub async fn request_token(
    request: &ChildTokenRequest,
    target: &mut Target,
    entry: &mut Entries,
    bearer: Option<&Secret>,
    timeout: Duration,
) -> Result<()> {
    let kubeconfig = client::with_bearer(client::kubeconfig_of(entry)?, bearer);
    let asked_at = clock::now();
    let issued = token_request::request(kubeconfig, &entry.name, request, timeout).await?;
    trace::line(|| {
        format!(
            "{}: TokenRequest for {} through the proxy: expires at {}",
            target.describe(),
            request.service_account,
            clock::rfc3339(issued.expiration)
        )
    });
    // To the minute: the child counts from its own clock, in whole seconds.
    let granted = Duration::try_from(issued.expiration.duration_since(asked_at)).unwrap_or_default();
    let granted = Duration::from_secs((granted.as_secs() + 30) / 60 * 60);
    if granted + Duration::from_secs(60) < request.ttl {
        notes::push(format!(
            "note: the child shortened the token of {} for {}: asked for {}, it expires at {} (in {})",
            request.service_account,
            target.describe(),
            clock::go_duration(request.ttl),
            clock::rfc3339(issued.expiration),
            clock::go_duration(granted)
        ));
    }
    let child = ChildCredentials::Token(issued.token);
    credentials::replace_child(&mut entry.user, &child);
    target.origin = CredentialOrigin::TokenRequest {
        service_account: request.service_account.clone(),
        requested_ttl: request.ttl,
        expiration: issued.expiration,
        base: Box::new(target.origin.clone()),
    };
    record::restamp(entry, &target.origin, &child);
    Ok(())
}

/// The session [`Shared::needs_cluster`] (or `--verify`) asked for.
fn connected(session: &Option<Session>) -> Result<&Session> {
    session.as_ref().ok_or_else(|| anyhow!("internal: the parent cluster is needed but not connected"))
}

/// The parent token of `--parent-auth token`: given, or read from the
/// parent; and when it expires, if minted here.
fn parent_token(shared: &Shared, session: &Option<Session>) -> Result<(Option<Secret>, Option<Timestamp>)> {
    let credentials::parent::Method::Token(source) = &shared.parent_auth else {
        return Ok((None, None));
    };
    let mut expiration = None;
    let token = match source {
        TokenSource::Given(given) => given.read()?,
        TokenSource::HubSecret { namespace } => {
            let s = connected(session)?;
            s.block_on(hub_token::from_secret(&s.conn, namespace))?.ok_or_else(|| {
                anyhow!(
                    "no Secret for service account {} in namespace {namespace:?} on context {:?}; pass --parent-token-request to ask the TokenRequest API, or --parent-token-file",
                    hub_token::SERVICE_ACCOUNT,
                    s.conn.context
                )
            })?
        }
        TokenSource::TokenRequest { namespace, ttl } => {
            let s = connected(session)?;
            let (token, expires) = s.block_on(hub_token::request(&s.conn, namespace, *ttl))?;
            expiration = Some(expires);
            token
        }
    };
    Ok((Some(token), expiration))
}

/// The OIDC ID token of `--parent-auth oidc`, when this run asks the parent
/// (or a child through it) anything.
fn oidc_token(shared: &Shared, asks_parent: bool) -> Result<Option<oidc::IdToken>> {
    let credentials::parent::Method::Oidc(source) = &shared.parent_auth else {
        return Ok(None);
    };
    if !asks_parent && shared.token_request.is_none() {
        return Ok(None);
    }
    let token = client::block_on(actions::fetch(source, shared.timeout))?.context("--parent-auth oidc")?;
    trace::line(|| format!("OIDC token from {}: {}", source.describe(), token.describe()));
    Ok(Some(token))
}

/// `--verify`: every entry probed before anything is written; a failure on a
/// parent without Clusternet's API names the likely mix-up.
async fn verify(
    timeout: Duration,
    check: Verify,
    session: &Session,
    parent: &Parent<'_>,
    entries: &[Entries],
    bearer: Option<&Secret>,
) -> Result<()> {
    let Err(failed) = verify_all(timeout, check, entries, bearer).await else {
        return Ok(());
    };
    // The parent's own answer tells a child's kubeconfig given as the parent.
    if client::serves_clusternet(&session.conn).await == Some(false) {
        bail!(
            "context {:?} of {} serves no Clusternet API (GET /apis/clusters.clusternet.io: 404), so it is not the Clusternet parent: is --kubeconfig the child's own kubeconfig? pass the parent's (where clusternet-hub runs); verification said: {failed:#}",
            session.conn.context,
            parent.files
        );
    }
    Err(failed)
}

/// Every file this run reads: an output file must never be one of them.
fn input_files(shared: &Shared, loaded: &load::Loaded, targets: &[Target]) -> Vec<PathBuf> {
    let mut files = loaded.files.clone();
    files.extend(targets.iter().flat_map(|t| t.source.files()));
    if let ChildCredentialSource::File(credentials) = &shared.child {
        files.push(credentials.path.clone());
    }
    match &shared.parent_auth {
        credentials::parent::Method::Token(TokenSource::Given(GivenToken::File(path))) => files.push(path.clone()),
        credentials::parent::Method::Oidc(oidc::Source { from: oidc::From::File(path), .. }) => {
            files.push(path.clone())
        }
        _ => {}
    }
    files
}

/// The parent side of a generation: the selected context of the loaded files,
/// the parent token when `--parent-auth token`, and the parent as the
/// provenance records it.
pub struct Parent<'a> {
    /// The loaded files, for messages.
    pub files: String,
    pub selection: Selection<'a>,
    pub token: Option<Secret>,
    pub recorded: provenance::ParentRef,
}

/// What shapes the entries besides the parent and the targets: `gen`'s
/// flags, or what `refresh` reads back from a generated entry.
pub struct Recipe<'a> {
    pub route: &'a route::Route,
    pub name: Option<&'a str>,
    pub parent_auth: &'a credentials::parent::Method,
}

/// route → credentials → provenance: the entries for every target, nothing
/// written. `gen` and `refresh` both build their entries here.
pub fn build(recipe: &Recipe, parent: &Parent, targets: &[Target]) -> Result<Vec<Entries>> {
    let Parent { files, selection, token, recorded } = parent;
    let field = format!("server of cluster {:?} in {files}", selection.cluster_name);
    let parent_server = selection.server().with_context(|| files.clone())?;
    let parent_server = parent_server.as_deref().ok_or_else(|| {
        anyhow!("cluster {:?} in {files} has no server; set its server field", selection.cluster_name)
    })?;
    let ca_data = flatten::ca_data(selection.cluster, selection.cluster_dir, selection.cluster_name)?;
    let parent = credentials::parent::build(recipe.parent_auth, token.clone(), selection)?;
    // `keep` has flattened the user already; otherwise flatten it for the
    // comparison alone (unreadable references cannot be compared).
    let parent_user = match &parent {
        credentials::ParentAuth::Keep { user, .. } => user.clone(),
        _ => flatten::flatten_user(selection.user, selection.user_dir, selection.user_name).unwrap_or_default(),
    };
    trace::line(|| {
        format!(
            "parent {files}: context {:?}, cluster {:?} ({}), user {:?}; parent auth {:?}",
            selection.context_name,
            selection.cluster_name,
            route::without_userinfo(parent_server),
            selection.user_name,
            recipe.parent_auth.name()
        )
    });
    let mut entries = Vec::new();
    for target in targets {
        let server = route::proxy_server(parent_server, &target.id, recipe.route, &field)?;
        let child = credentials::child::load(&target.source).with_context(|| for_target(targets, target))?;
        if let Some(what) = credentials::reused_parent_credential(&child, &parent_user) {
            bail!(
                "{}: they are the {what} of the parent kubeconfig's user {:?}; the hub passes child credentials on to the child cluster, which could then act as that user on the parent: give the child cluster's own credentials",
                for_target(targets, target),
                selection.user_name
            );
        }
        // Other credentials, same server: parent and child swapped, or one cluster.
        guard::refuse_same_server(parent_server, &target.source)?;
        let name = match recipe.name {
            Some(name) => name.to_string(),
            None => {
                let shared = target.cluster.as_ref().is_some_and(|c| {
                    targets.iter().filter(|t| t.cluster.as_ref().is_some_and(|o| o.name == c.name)).count() > 1
                });
                target.default_name(shared)
            }
        };
        let user = credentials::user_entry(&parent, &child);
        trace::line(|| {
            format!(
                "{}: name {name:?}, server {}, user {}",
                target.describe(),
                route::without_userinfo(&server),
                credentials::redacted(&user)
            )
        });
        let record = record::provenance(recorded, target, recipe, &child);
        entries.push(Entries {
            // One record, on the context: the cluster and user entries are
            // the ones it names (see kubeconfig::provenance).
            cluster: emit::cluster_entry(selection.cluster, server, ca_data.clone()),
            context: provenance::attach(
                &emit::context_entry(&name, selection.namespace, selection.context_extensions),
                &record,
            ),
            user,
            name,
        });
    }
    Ok(entries)
}

/// Error context naming the cluster, when there are several.
fn for_target(targets: &[Target], target: &Target) -> String {
    if targets.len() > 1 { format!("cluster {}", target.describe()) } else { "child credentials".to_string() }
}

/// The first context, when the user named the clusters; `--all` names none, so
/// it sets none (whatever a listing puts first is not the user's choice).
fn current_context(settings: &Settings, entries: &[Entries]) -> Option<String> {
    let named = !matches!(settings.shared.wanted, Wanted::All { .. });
    (settings.set_current && named).then(|| entries.first().map(|e| e.name.clone())).flatten()
}

/// Probes every generated context before anything is written.
async fn verify_all(timeout: Duration, check: Verify, entries: &[Entries], bearer: Option<&Secret>) -> Result<()> {
    let mut failures = Vec::new();
    for entry in entries {
        let kubeconfig = client::with_bearer(client::kubeconfig_of(entry)?, bearer);
        let secrets = credentials::secrets_in(&entry.user);
        match probe::probe(kubeconfig, &entry.name, timeout, &secrets).await? {
            Ok(reached) => eprintln!(
                "verified {:?}: child Kubernetes {} (/version {} ms, /api {} ms)",
                entry.name,
                // Written by whatever answers as the child.
                crate::terminal::escape(&reached.git_version),
                reached.version_latency.as_millis(),
                reached.api_latency.as_millis()
            ),
            Err(failed) => failures.push(failed.describe(&entry.name)),
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        _ if check == Verify::WarnOnly => {
            for f in &failures {
                eprintln!("warning: {}; writing anyway (--write-unverified)", crate::terminal::escape(f));
            }
            Ok(())
        }
        [one] => bail!("{one}; nothing written (--write-unverified writes anyway)"),
        [first, rest @ ..] => bail!(
            "{first}; and {} more context(s) failed; nothing written (--write-unverified writes anyway)",
            rest.len()
        ),
    }
}

/// `gen` offers --force, stdout and --name besides another path.
const GEN_OFFERS: write::Offers = write::Offers { force: true, stdout: true, name: true };

fn flagged(flag: &str) -> impl Fn(write::WriteError) -> anyhow::Error + '_ {
    move |e| e.flagged(flag, GEN_OFFERS)
}

/// Emits to stdout, writes the file, or merges into the target.
/// `parent_context` is named when the merge changes the default parent;
/// `inputs` are the files this run reads, never written over.
fn deliver(settings: &Settings, entries: &[Entries], parent_context: &str, inputs: &[PathBuf]) -> Result<()> {
    let current = current_context(settings, entries);
    trace::line(|| format!("writing {} context(s) to {:?}", entries.len(), settings.destination));
    if settings.dry_run {
        return dry_run(settings, entries, current.as_deref(), inputs);
    }
    match &settings.destination {
        Destination::Stdout => {
            let text = emit::render(&emit::document(entries, current.as_deref()), settings.format)?;
            if let Some(line) = write::private_stdout() {
                eprintln!("{line}");
            }
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("writing to stdout")
        }
        Destination::File { path, force } => {
            let text = emit::render(&emit::document(entries, current.as_deref()), settings.format)?;
            in_cwd(write::write_new(path, &text, *force, inputs).map_err(flagged("--output-file")), path)?;
            let names: Vec<String> = entries.iter().map(|e| format!("{:?}", e.name)).collect();
            eprintln!("wrote context {} to {} (mode 0600)", names.join(", "), path.display());
            Ok(())
        }
        Destination::Merge { path, set_current_context, lock_timeout } => {
            let report = in_cwd(
                write::merge_into(path, entries, current.as_deref(), *set_current_context, *lock_timeout)
                    .map_err(flagged("--merge-into")),
                path,
            )?;
            let changes: Vec<String> =
                report.changes.iter().map(|c| format!("{} {:?} {}", c.kind, c.name, c.action.name())).collect();
            if let Some(dir) = &report.created_dir {
                eprintln!("created directory {} (mode 0755, as kubectl does)", dir.display());
            }
            let file = if report.created { "new file" } else { "file" };
            eprintln!("{} in {file} {}", changes.join(", "), report.path.display());
            if report.current_context_set {
                eprintln!("current-context is now {:?}", current.clone().unwrap_or_default());
                if settings.default_parent.as_ref().is_some_and(|d| guard::is_default_parent(path, d)) {
                    eprintln!(
                        "warning: {} is read by default as the parent kubeconfig, and its current context is now the generated {:?}; the next `gen` without --context would take that as its parent and is refused: pass --context {parent_context:?}",
                        report.path.display(),
                        current.unwrap_or_default()
                    );
                }
            }
            if let Some(why) = report.in_place {
                eprintln!("note: {} was rewritten in place, as kubectl does, since {why}", report.path.display());
            }
            if let Some(mode) = report.loose_mode {
                eprintln!(
                    "warning: {} is readable by others (mode {mode:04o}) and holds credentials; consider `chmod 600 {}`",
                    report.path.display(),
                    report.path.display()
                );
            }
            Ok(())
        }
    }
}

/// `--dry-run`: the plan the write would carry out, printed on stdout with
/// secrets left out; nothing is written (no file, no lock, no temporary file).
fn dry_run(settings: &Settings, entries: &[Entries], current: Option<&str>, inputs: &[PathBuf]) -> Result<()> {
    let (plan, target) = match &settings.destination {
        Destination::File { path, force } => {
            let doc = emit::document(entries, current);
            let plan = write::plan_new(path, doc, entries, *force, inputs).map_err(flagged("--output-file"));
            (in_cwd(plan, path)?, format!("--output-file {}", path.display()))
        }
        Destination::Merge { path, set_current_context, .. } => {
            let plan = write::plan_merge(path, entries, current, *set_current_context).map_err(flagged("--merge-into"));
            (in_cwd(plan, path)?, format!("--merge-into {}", path.display()))
        }
        Destination::Stdout => bail!("internal: --dry-run without a file to write"),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(plan::render(&plan, &target).as_bytes()).and_then(|()| out.flush()).context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_name_the_flag_that_gave_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = |p: &std::path::Path, flag| {
            format!("{:#}", write::write_new(p, "", false, &[]).map_err(flagged(flag)).unwrap_err())
        };
        assert_eq!(
            err(dir.path(), "--output-file"),
            format!("--output-file {} is a directory; give a file path", dir.path().display())
        );
        assert_eq!(
            err(&dir.path().join("nope/out"), "--output-file"),
            format!("--output-file: directory {} does not exist; create it first", dir.path().join("nope").display())
        );
    }
}
