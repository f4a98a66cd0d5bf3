//! `gen`: dedicated kubeconfigs for child clusters.
//!
//! Two stages, as in ripgrep: [`Settings::resolve`] turns the raw flags into
//! what the program uses (every usage error is found there, before any file is
//! read), then [`run`] follows the pipeline: load the parent kubeconfig →
//! select the context → route the server → attach credentials → emit or write.
//! Plain `gen --cluster-id` never touches the network nor starts an async
//! runtime; only `--cluster`, `--all`, a parent token read from the cluster and
//! `--verify` connect to the parent (through [`crate::cluster`]).

pub mod guard;
pub mod targets;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};

use self::targets::{ChildCredentialSource, Pairing, Target, Wanted};
use crate::cli::{GenArgs, OutputFormat, ParentAuthMode};
use crate::cluster::client;
use crate::cluster::{hub_token, probe};
use crate::credentials::file::Credentials;
use crate::credentials::{self, ChildSource, TokenSource};
use crate::error::{in_cwd, refuse_dash, usage};
use crate::kubeconfig::emit::{self, Entries};
use crate::kubeconfig::load::{self, ParentSource};
use crate::kubeconfig::select::Selection;
use crate::kubeconfig::{flatten, select, write};
use crate::names;
use crate::route::{self, ClusterId, Route};
use crate::secret::Secret;
use crate::trace;

/// Where the generated kubeconfig goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File { path: PathBuf, force: bool },
    Merge { path: PathBuf, set_current_context: bool, lock_timeout: Duration },
}

/// How the parent token is obtained for `--parent-auth token`.
#[derive(Debug)]
pub enum ParentToken {
    Given(TokenSource),
    /// From the clusternet-hub-proxy Secret in the namespace.
    FromSecret {
        namespace: String,
    },
    /// From the TokenRequest API.
    Request {
        namespace: String,
        ttl: Duration,
    },
}

/// `gen`'s flags, resolved and checked.
#[derive(Debug)]
pub struct Settings {
    pub parent: ParentSource,
    pub context: Option<String>,
    pub wanted: Wanted,
    pub route: Route,
    pub child: ChildCredentialSource,
    pub strict: bool,
    pub parent_auth: ParentAuthMode,
    pub parent_token: Option<ParentToken>,
    pub name: Option<String>,
    pub set_current: bool,
    pub format: OutputFormat,
    pub destination: Destination,
    pub verify: bool,
    /// Write even when the verification fails.
    pub write_unverified: bool,
    pub timeout: Duration,
    /// The parent kubeconfig of a run without --kubeconfig: a merge that
    /// changes its current context is warned about.
    pub default_parent: Option<ParentSource>,
}

/// The environment `gen` reads, passed in so that resolution stays pure.
#[derive(Debug, Default)]
pub struct Env {
    pub kubeconfig: Option<std::ffi::OsString>,
    pub home: Option<PathBuf>,
    pub child_token: Option<String>,
    pub parent_token: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            child_token: std::env::var(credentials::child::TOKEN_ENV).ok(),
            parent_token: std::env::var(credentials::parent::TOKEN_ENV).ok(),
        }
    }
}

impl Settings {
    /// Stage two: raw flags to settings. Every error here is a usage error,
    /// except reading the credentials file.
    pub fn resolve(args: GenArgs, env: Env, notes: &mut Vec<String>) -> Result<Settings> {
        let t = &args.targets;
        for (flag, path) in [
            ("--kubeconfig", &args.parent_config.kubeconfig),
            ("--client-certificate", &args.child.client_certificate),
            ("--client-key", &args.child.client_key),
            ("--child-kubeconfig", &args.child.child_kubeconfig),
            ("--credentials", &t.credentials),
            ("--merge-into", &args.out.merge_into),
        ] {
            refuse_dash(flag, path.as_deref())?;
        }
        let mut ids = Vec::new();
        for raw in &t.cluster_id {
            let (id, changed) = ClusterId::parse(raw).map_err(|e| usage(format!("{e:#}")))?;
            if changed {
                notes.push(format!("note: --cluster-id normalised to {id} (the hub matches the ID exactly)"));
            }
            ids.push(id);
        }
        check_names(t, &args.parent.system_namespace)?;
        let wanted = if t.cluster.is_empty() && !t.all {
            Wanted::Ids(ids)
        } else {
            Wanted::Lookup {
                ids,
                names: t.cluster.clone(),
                namespace: t.namespace.clone(),
                all: t.all,
                selector: t.selector.clone(),
            }
        };
        if t.namespace.is_some() && t.cluster.is_empty() && !t.all {
            return Err(usage("-n/--namespace is for --cluster NAME or --all"));
        }
        warn_secrets_on_argv(&args, notes);
        let several = wanted.count().is_none_or(|n| n > 1);
        let child = match &t.credentials {
            Some(path) => {
                if env.child_token.as_deref().is_some_and(|t| !t.is_empty()) {
                    notes.push(credentials::child::unused_env_warning(
                        credentials::child::TOKEN_ENV,
                        "--credentials gives the child credentials",
                    ));
                }
                if has_child_flags(&args) {
                    return Err(usage(
                        "child credentials come either per cluster from --credentials or from flags, not both",
                    ));
                }
                ChildCredentialSource::File(in_cwd(Credentials::read(path, notes), path)?)
            }
            None if several => {
                return Err(usage("several clusters need --credentials FILE (child credentials differ per cluster)"));
            }
            None => ChildCredentialSource::Flags(ChildSource::resolve(&args.child, env.child_token, notes)?),
        };
        if several && args.out.name.is_some() {
            return Err(usage("--name names one cluster's entries; with several clusters the names are derived"));
        }
        let route = match args.child_server.as_deref() {
            Some(url) => Route::from_child_server(url).map_err(|e| usage(format!("{e:#}")))?,
            None => Route::Direct,
        };
        let p = &args.parent;
        let parent_token = match (p.parent_auth, TokenSource::resolve(p, env.parent_token, notes)?) {
            (ParentAuthMode::Token, Some(source)) => Some(ParentToken::Given(source)),
            (ParentAuthMode::Token, None) if p.parent_token_request => {
                Some(ParentToken::Request { namespace: p.system_namespace.clone(), ttl: p.parent_token_ttl })
            }
            (ParentAuthMode::Token, None) => Some(ParentToken::FromSecret { namespace: p.system_namespace.clone() }),
            _ => None,
        };
        let child_reads_stdin = matches!(&child, ChildCredentialSource::Flags(s) if s.reads_stdin());
        if child_reads_stdin && matches!(&parent_token, Some(ParentToken::Given(s)) if s.reads_stdin()) {
            return Err(usage("--token-file - and --parent-token-file - cannot both read stdin; use a file for one"));
        }
        let name = args.out.name.map(check_name).transpose()?;
        // `--output-file -` is stdout, as `-` is stdin for the token files.
        let output_file = args.out.output_file.filter(|p| p.as_os_str() != "-");
        let destination = match (output_file, args.out.merge_into) {
            (Some(path), _) => Destination::File { path, force: args.out.force },
            (None, Some(path)) => Destination::Merge {
                path,
                set_current_context: args.out.set_current_context,
                lock_timeout: args.out.lock_timeout,
            },
            (None, None) => Destination::Stdout,
        };
        if args.out.force && !matches!(destination, Destination::File { .. }) {
            return Err(usage(
                "--force replaces an existing --output-file; to write despite a failed --verify, use --write-unverified",
            ));
        }
        if matches!(destination, Destination::Merge { .. }) && args.out.output == OutputFormat::Json {
            return Err(usage("--merge-into writes YAML; drop -o json"));
        }
        Ok(Settings {
            parent: load::parent_source(
                args.parent_config.kubeconfig.as_deref(),
                env.kubeconfig.clone(),
                env.home.clone(),
            )?,
            default_parent: load::parent_source(None, env.kubeconfig, env.home).ok(),
            context: args.parent_config.context,
            wanted,
            route,
            child,
            strict: t.strict,
            parent_auth: p.parent_auth,
            parent_token,
            name,
            set_current: !t.no_current_context,
            format: args.out.output,
            destination,
            verify: args.verify,
            write_unverified: args.write_unverified,
            timeout: args.timeout,
        })
    }

    /// True when something must be asked of the parent cluster.
    pub fn needs_cluster(&self) -> bool {
        matches!(self.wanted, Wanted::Lookup { .. })
            || matches!(self.parent_token, Some(ParentToken::FromSecret { .. } | ParentToken::Request { .. }))
            || self.verify
    }
}

/// The command line of a process is visible to other users (`ps`); a person
/// typing a secret there (stdin is a terminal) is told the safer ways.
fn warn_secrets_on_argv(args: &GenArgs, notes: &mut Vec<String>) {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return;
    }
    let flags = [
        ("--token", args.child.token.is_some(), "--token-file - or env CLUSTERNET_CHILD_TOKEN"),
        ("--client-key-data", args.child.client_key_data.is_some(), "--client-key FILE"),
        ("--parent-token", args.parent.parent_token.is_some(), "--parent-token-file - or env CLUSTERNET_PARENT_TOKEN"),
    ];
    for (flag, given, instead) in flags {
        if given {
            notes.push(format!(
                "warning: {flag} puts a secret on the command line, where other users can see it (ps); prefer {instead}"
            ));
        }
    }
}

/// Namespaces, names and selectors go into request paths and selectors: each
/// must be what the apiserver accepts as one (usage errors).
fn check_names(t: &crate::cli::TargetArgs, system_namespace: &str) -> Result<()> {
    let checks = t
        .namespace
        .iter()
        .map(|ns| names::check_namespace(ns, "-n/--namespace"))
        .chain(t.cluster.iter().map(|name| names::check_object_name(name, "--cluster")))
        .chain(t.selector.iter().map(|s| names::check_selector(s, "-l/--selector")))
        .chain(std::iter::once(names::check_namespace(system_namespace, "--system-namespace")));
    for check in checks {
        check.map_err(|e| usage(format!("{e:#}")))?;
    }
    Ok(())
}

fn has_child_flags(args: &GenArgs) -> bool {
    let c = &args.child;
    c.token.is_some()
        || c.token_file.is_some()
        || c.client_certificate.is_some()
        || c.client_certificate_data.is_some()
        || c.child_kubeconfig.is_some()
}

/// A name must survive as a kubeconfig key and in messages.
fn check_name(name: String) -> Result<String> {
    if name.trim().is_empty() {
        return Err(usage("--name is empty; give a name or leave it out for clusternet-<cluster-id>"));
    }
    if name.chars().any(char::is_control) {
        return Err(usage("--name contains control characters"));
    }
    if name != name.trim() {
        return Err(usage("--name has spaces before or after it; remove them"));
    }
    Ok(name)
}

pub fn run(args: GenArgs) -> Result<()> {
    let mut notes = Vec::new();
    let result = Settings::resolve(args, Env::from_process(), &mut notes).and_then(|settings| {
        if settings.needs_cluster() {
            client::block_on(run_connected(&settings, &mut notes))?
        } else {
            run_offline(&settings, &mut notes)
        }
    });
    // Notes that were not printed yet (a failure before delivery).
    flush(&mut notes);
    result
}

/// Notes quote names and fields from the cluster: escaped for the terminal.
fn flush(notes: &mut Vec<String>) {
    for note in notes.drain(..) {
        eprintln!("{}", crate::terminal::escape(&note));
    }
}

/// The parent kubeconfig; a missing relative --kubeconfig names the working directory.
pub fn load_parent(source: &ParentSource) -> Result<load::Loaded> {
    match source {
        ParentSource::Flag(path) => in_cwd(load::load_parent(source), path),
        _ => load::load_parent(source),
    }
}

/// `--cluster-id` with credentials from flags or a file: no network.
fn run_offline(settings: &Settings, notes: &mut Vec<String>) -> Result<()> {
    let loaded = load_parent(&settings.parent)?;
    let selection = select::select(&loaded, settings.context.as_deref(), "--context")?;
    guard::refuse_generated_parent(&loaded, &selection)?;
    let Wanted::Ids(ids) = &settings.wanted else {
        bail!("internal: a lookup needs the parent cluster");
    };
    let pairing = Pairing { credentials: &settings.child, strict: settings.strict, seen: &[] };
    let targets = targets::pair(Vec::new(), ids, &pairing, notes)?;
    let token = match &settings.parent_token {
        Some(ParentToken::Given(source)) => Some(source.read()?),
        _ => None,
    };
    let parent = Parent { files: loaded.describe(), selection, token };
    let entries = build(settings, &parent, &targets, notes)?;
    flush(notes);
    deliver(settings, &entries, parent.selection.context_name)
}

/// Lookups, a parent token from the cluster, or verification.
async fn run_connected(settings: &Settings, notes: &mut Vec<String>) -> Result<()> {
    let loaded = load_parent(&settings.parent)?;
    let selection = select::select(&loaded, settings.context.as_deref(), "--context")?;
    guard::refuse_generated_parent(&loaded, &selection)?;
    let conn = client::connect_source(&settings.parent, Some(selection.context_name), settings.timeout).await?;
    let (found, ids) = match &settings.wanted {
        Wanted::Ids(ids) => (targets::Found::default(), ids.as_slice()),
        wanted => {
            let mut found = targets::look_up(&conn, wanted, notes).await?;
            targets::complete(&conn, &mut found, &settings.child).await?;
            (found, &[][..])
        }
    };
    let pairing = Pairing { credentials: &settings.child, strict: settings.strict, seen: &found.seen };
    let targets = targets::pair(found.clusters, ids, &pairing, notes)?;
    let token = match &settings.parent_token {
        Some(ParentToken::Given(source)) => Some(source.read()?),
        Some(ParentToken::FromSecret { namespace }) => Some(hub_token::from_secret(&conn, namespace).await?.ok_or_else(|| {
            anyhow!(
                "no Secret for service account {} in namespace {namespace:?} on context {:?}; pass --parent-token-request to ask the TokenRequest API, or --parent-token-file",
                hub_token::SERVICE_ACCOUNT,
                conn.context
            )
        })?),
        Some(ParentToken::Request { namespace, ttl }) => Some(hub_token::request(&conn, namespace, *ttl).await?),
        None => None,
    };
    let parent = Parent { files: loaded.describe(), selection, token };
    let entries = build(settings, &parent, &targets, notes)?;
    flush(notes);
    if settings.verify
        && let Err(failed) = verify_all(settings, &entries).await
    {
        // The parent's own answer tells a child's kubeconfig given as the parent.
        if client::serves_clusternet(&conn).await == Some(false) {
            bail!(
                "context {:?} of {} serves no Clusternet API (GET /apis/clusters.clusternet.io: 404), so it is not the Clusternet parent: is --kubeconfig the child's own kubeconfig? pass the parent's (where clusternet-hub runs); verification said: {failed:#}",
                conn.context,
                parent.files
            );
        }
        return Err(failed);
    }
    deliver(settings, &entries, parent.selection.context_name)
}

/// route → credentials: the entries for every target, nothing written.
/// The parent side of a generation: the selected context of the loaded files,
/// and the parent token when `--parent-auth token`.
struct Parent<'a> {
    files: String,
    selection: Selection<'a>,
    token: Option<Secret>,
}

fn build(settings: &Settings, parent: &Parent, targets: &[Target], notes: &mut Vec<String>) -> Result<Vec<Entries>> {
    let Parent { files, selection, token } = parent;
    let field = format!("server of cluster {:?} in {files}", selection.cluster_name);
    let parent_server = selection.cluster.server.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        anyhow!("cluster {:?} in {files} has no server; set its server field", selection.cluster_name)
    })?;
    let ca_data = flatten::ca_data(selection.cluster, selection.cluster_dir, selection.cluster_name)?;
    let parent = credentials::parent::build(settings.parent_auth, token.clone(), selection)?;
    // Unreadable references cannot be compared; `keep` reports them itself.
    let parent_user =
        flatten::flatten_user(selection.user, selection.user_dir, selection.user_name).unwrap_or_default();
    trace::line(|| {
        format!(
            "parent {files}: context {:?}, cluster {:?} ({parent_server}), user {:?}; parent auth {:?}",
            selection.context_name, selection.cluster_name, selection.user_name, settings.parent_auth
        )
    });
    let mut entries = Vec::new();
    for target in targets {
        let server = route::proxy_server(parent_server, &target.id, &settings.route, &field)?;
        let child = credentials::child::load(&target.source, notes).with_context(|| for_target(targets, target))?;
        if let Some(what) = credentials::reused_parent_credential(&child, &parent_user) {
            bail!(
                "{}: they are the {what} of the parent kubeconfig's user {:?}; the hub passes child credentials on to the child cluster, which could then act as that user on the parent: give the child cluster's own credentials",
                for_target(targets, target),
                selection.user_name
            );
        }
        // Other credentials, same server: parent and child swapped, or one cluster.
        guard::refuse_same_server(parent_server, &target.source)?;
        let name = match &settings.name {
            Some(name) => name.clone(),
            None => {
                let shared = target.cluster.as_ref().is_some_and(|c| {
                    targets.iter().filter(|t| t.cluster.as_ref().is_some_and(|o| o.name == c.name)).count() > 1
                });
                target.default_name(shared)
            }
        };
        let user = credentials::user_entry(&parent, &child, notes);
        trace::line(|| {
            format!("{}: name {name:?}, server {server}, user {}", target.describe(), trace::redacted(&user))
        });
        entries.push(Entries {
            cluster: emit::cluster_entry(selection.cluster, server, ca_data.clone()),
            context: emit::context_entry(&name, selection.namespace),
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
    let named = !matches!(settings.wanted, Wanted::Lookup { all: true, .. });
    (settings.set_current && named).then(|| entries.first().map(|e| e.name.clone())).flatten()
}

/// Probes every generated context before anything is written.
async fn verify_all(settings: &Settings, entries: &[Entries]) -> Result<()> {
    let mut failures = Vec::new();
    for entry in entries {
        let doc = emit::document(std::slice::from_ref(entry), Some(&entry.name));
        let text = emit::render(&doc, OutputFormat::Yaml)?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| anyhow!("internal: {e}"))?;
        let secrets = credentials::secrets_in(&entry.user);
        match probe::probe(kubeconfig, &entry.name, settings.timeout, &secrets).await? {
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
        _ if settings.write_unverified => {
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

/// Emits to stdout, writes the file, or merges into the target.
/// `parent_context` is named when the merge changes the default parent.
fn deliver(settings: &Settings, entries: &[Entries], parent_context: &str) -> Result<()> {
    let current = current_context(settings, entries);
    trace::line(|| format!("writing {} context(s) to {:?}", entries.len(), settings.destination));
    match &settings.destination {
        Destination::Stdout => {
            let text = emit::render(&emit::document(entries, current.as_deref()), settings.format)?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("writing to stdout")
        }
        Destination::File { path, force } => {
            let text = emit::render(&emit::document(entries, current.as_deref()), settings.format)?;
            in_cwd(write::write_new(path, &text, *force), path)?;
            let names: Vec<String> = entries.iter().map(|e| format!("{:?}", e.name)).collect();
            eprintln!("wrote context {} to {} (mode 0600)", names.join(", "), path.display());
            Ok(())
        }
        Destination::Merge { path, set_current_context, lock_timeout } => {
            let report = in_cwd(
                write::merge_into(path, entries, current.as_deref(), *set_current_context, *lock_timeout),
                path,
            )?;
            let changes: Vec<String> = report
                .changes
                .iter()
                .map(|c| format!("{} {:?} {}", c.kind, c.name, if c.added { "added" } else { "updated" }))
                .collect();
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
