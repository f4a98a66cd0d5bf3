//! `gen`: dedicated kubeconfigs for child clusters.
//!
//! Two stages, as in ripgrep: [`Settings::resolve`] turns the raw flags into
//! what the program uses (every usage error is found there, before any file is
//! read), then [`run`] follows the pipeline: load the parent kubeconfig →
//! select the context → route the server → attach credentials → emit or write.
//! Plain `gen --cluster-id` never touches the network nor starts an async
//! runtime; only `--cluster`, `--all`, a parent token read from the cluster and
//! `--verify` connect to the parent (through [`crate::cluster`]).

pub mod targets;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};

use self::targets::{ChildCredentialSource, Target, Wanted};
use crate::cli::{GenArgs, OutputFormat, ParentAuthMode};
use crate::cluster::client;
use crate::cluster::{hub_token, probe};
use crate::credentials::file::Credentials;
use crate::credentials::{self, ChildSource, TokenSource};
use crate::error::usage;
use crate::kubeconfig::emit::{self, Entries};
use crate::kubeconfig::load::{self, ParentSource};
use crate::kubeconfig::select::Selection;
use crate::kubeconfig::{flatten, select, write};
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
    pub force: bool,
    pub timeout: Duration,
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
        let mut ids = Vec::new();
        for raw in &t.cluster_id {
            let (id, changed) = ClusterId::parse(raw).map_err(|e| usage(format!("{e:#}")))?;
            if changed {
                notes.push(format!("note: --cluster-id normalised to {id} (the hub matches the ID exactly)"));
            }
            ids.push(id);
        }
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
                if has_child_flags(&args) {
                    return Err(usage(
                        "child credentials come either per cluster from --credentials or from flags, not both",
                    ));
                }
                ChildCredentialSource::File(Credentials::read(path)?)
            }
            None if several => {
                return Err(usage("several clusters need --credentials FILE (child credentials differ per cluster)"));
            }
            None => ChildCredentialSource::Flags(ChildSource::resolve(&args.child, env.child_token)?),
        };
        if several && args.out.name.is_some() {
            return Err(usage("--name names one cluster's entries; with several clusters the names are derived"));
        }
        let route = match args.child_server.as_deref() {
            Some(url) => Route::from_child_server(url).map_err(|e| usage(format!("{e:#}")))?,
            None => Route::Direct,
        };
        let p = &args.parent;
        let parent_token = match (p.parent_auth, TokenSource::resolve(p, env.parent_token)?) {
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
        let destination = match (args.out.output_file, args.out.merge_into) {
            (Some(path), _) => Destination::File { path, force: args.out.force },
            (None, Some(path)) => Destination::Merge {
                path,
                set_current_context: args.out.set_current_context,
                lock_timeout: Duration::from_secs(args.out.lock_timeout),
            },
            (None, None) => Destination::Stdout,
        };
        if args.out.force && !args.verify && !matches!(destination, Destination::File { .. }) {
            return Err(usage("--force is for --output-file (replace it) or --verify (write despite a failure)"));
        }
        if matches!(destination, Destination::Merge { .. }) && args.out.output == OutputFormat::Json {
            return Err(usage("--merge-into writes YAML; drop -o json"));
        }
        Ok(Settings {
            parent: load::parent_source(args.parent_config.kubeconfig.as_deref(), env.kubeconfig, env.home)?,
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
            force: args.out.force,
            timeout: Duration::from_secs(args.timeout.max(1)),
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

fn flush(notes: &mut Vec<String>) {
    for note in notes.drain(..) {
        eprintln!("{note}");
    }
}

/// `--cluster-id` with credentials from flags or a file: no network.
fn run_offline(settings: &Settings, notes: &mut Vec<String>) -> Result<()> {
    let loaded = load::load_parent(&settings.parent)?;
    let selection = select::select(&loaded, settings.context.as_deref(), "--context")?;
    let Wanted::Ids(ids) = &settings.wanted else {
        bail!("internal: a lookup needs the parent cluster");
    };
    let clusters = ids.iter().map(|id| (id.clone(), None)).collect();
    let targets = targets::pair(clusters, &settings.child, settings.strict, notes)?;
    let token = match &settings.parent_token {
        Some(ParentToken::Given(source)) => Some(source.read()?),
        _ => None,
    };
    let parent = Parent { files: loaded.describe(), selection, token };
    let entries = build(settings, &parent, &targets, notes)?;
    flush(notes);
    deliver(settings, &entries, &input_files(settings, &loaded, &targets))
}

/// Lookups, a parent token from the cluster, or verification.
async fn run_connected(settings: &Settings, notes: &mut Vec<String>) -> Result<()> {
    let loaded = load::load_parent(&settings.parent)?;
    let selection = select::select(&loaded, settings.context.as_deref(), "--context")?;
    let conn = client::connect_source(&settings.parent, Some(selection.context_name), settings.timeout).await?;
    let clusters: Vec<(ClusterId, Option<_>)> = match &settings.wanted {
        Wanted::Ids(ids) => ids.iter().map(|id| (id.clone(), None)).collect(),
        wanted => {
            let found = targets::look_up(&conn, wanted, notes).await?;
            let mut pairs = Vec::new();
            for cluster in found {
                let (id, _) = ClusterId::parse(&cluster.cluster_id).map_err(|_| {
                    anyhow!(
                        "ManagedCluster {}/{} has cluster ID {:?}, which is not a UUID",
                        cluster.namespace,
                        cluster.name,
                        cluster.cluster_id
                    )
                })?;
                pairs.push((id, Some(cluster)));
            }
            pairs
        }
    };
    let targets = targets::pair(clusters, &settings.child, settings.strict, notes)?;
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
    if settings.verify {
        verify_all(settings, &entries).await?;
    }
    deliver(settings, &entries, &input_files(settings, &loaded, &targets))
}

/// Every file this run reads: an output file must never be one of them.
fn input_files(settings: &Settings, loaded: &load::Loaded, targets: &[Target]) -> Vec<PathBuf> {
    let mut files = loaded.files.clone();
    files.extend(targets.iter().flat_map(|t| t.source.files()));
    if let ChildCredentialSource::File(credentials) = &settings.child {
        files.push(credentials.path.clone());
    }
    if let Some(ParentToken::Given(TokenSource::File(path))) = &settings.parent_token {
        files.push(path.clone());
    }
    files
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
    trace::line(|| {
        format!(
            "parent {files}: context {:?}, cluster {:?} ({}), user {:?}; parent auth {:?}",
            selection.context_name,
            selection.cluster_name,
            route::without_userinfo(parent_server),
            selection.user_name,
            settings.parent_auth
        )
    });
    let mut entries = Vec::new();
    for target in targets {
        let server = route::proxy_server(parent_server, &target.id, &settings.route, &field)?;
        let child = credentials::child::load(&target.source, notes).with_context(|| for_target(targets, target))?;
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
            format!(
                "{}: name {name:?}, server {}, user {}",
                target.describe(),
                route::without_userinfo(&server),
                trace::redacted(&user)
            )
        });
        entries.push(Entries {
            cluster: emit::cluster_entry(selection.cluster, server, ca_data.clone()),
            context: emit::context_entry(&name, selection.namespace, selection.context_extensions),
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

fn current_context(settings: &Settings, entries: &[Entries]) -> Option<String> {
    settings.set_current.then(|| entries.first().map(|e| e.name.clone())).flatten()
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
                reached.git_version,
                reached.version_latency.as_millis(),
                reached.api_latency.as_millis()
            ),
            Err(failed) => failures.push(failed.describe(&entry.name)),
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        _ if settings.force => {
            for f in &failures {
                eprintln!("warning: {f}; writing anyway (--force)");
            }
            Ok(())
        }
        [one] => bail!("{one}; nothing written (--force writes anyway)"),
        [first, rest @ ..] => {
            bail!("{first}; and {} more context(s) failed; nothing written (--force writes anyway)", rest.len())
        }
    }
}

/// Emits to stdout, writes the file, or merges into the target.
fn deliver(settings: &Settings, entries: &[Entries], inputs: &[PathBuf]) -> Result<()> {
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
            write::write_new(path, &text, *force, inputs)?;
            let names: Vec<String> = entries.iter().map(|e| format!("{:?}", e.name)).collect();
            eprintln!("wrote context {} to {} (mode 0600)", names.join(", "), path.display());
            Ok(())
        }
        Destination::Merge { path, set_current_context, lock_timeout } => {
            let report = write::merge_into(path, entries, current.as_deref(), *set_current_context, *lock_timeout)?;
            let changes: Vec<String> = report
                .changes
                .iter()
                .map(|c| format!("{} {:?} {}", c.kind, c.name, if c.added { "added" } else { "updated" }))
                .collect();
            let file = if report.created { "new file" } else { "file" };
            eprintln!("{} in {file} {}", changes.join(", "), report.path.display());
            if report.current_context_set {
                eprintln!("current-context is now {:?}", current.unwrap_or_default());
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
