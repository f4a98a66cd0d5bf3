//! `gen`: the dedicated kubeconfig for one child cluster, offline.
//!
//! Two stages, as in ripgrep: [`Settings::resolve`] turns the raw flags into
//! what the program uses (every usage error is found there, before any file is
//! read), then [`run`] follows the pipeline: load the parent kubeconfig →
//! select the context → route the server → attach credentials → emit or write.
//! Nothing here touches the network or starts an async runtime.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::cli::{GenArgs, OutputFormat, ParentAuthMode};
use crate::credentials::{self, ChildSource, TokenSource};
use crate::error::usage;
use crate::kubeconfig::emit::{self, Entries};
use crate::kubeconfig::load::{self, ParentSource};
use crate::kubeconfig::{flatten, select, write};
use crate::route::{self, ClusterId, Route};

/// Where the generated kubeconfig goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File {
        path: PathBuf,
        force: bool,
    },
    Merge {
        path: PathBuf,
        set_current_context: bool,
        lock_timeout: Duration,
    },
}

/// `gen`'s flags, resolved and checked.
#[derive(Debug)]
pub struct Settings {
    pub parent: ParentSource,
    pub context: Option<String>,
    pub cluster_id: ClusterId,
    pub route: Route,
    pub child: ChildSource,
    pub parent_auth: ParentAuthMode,
    pub parent_token: Option<TokenSource>,
    pub name: String,
    pub format: OutputFormat,
    pub destination: Destination,
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
    /// Stage two: raw flags to settings. Every error here is a usage error.
    pub fn resolve(args: GenArgs, env: Env, notes: &mut Vec<String>) -> Result<Settings> {
        let raw_id = args.cluster_id.as_deref().unwrap_or_default();
        let (cluster_id, changed) =
            ClusterId::parse(raw_id).map_err(|e| usage(format!("{e:#}")))?;
        if changed {
            notes.push(format!(
                "note: --cluster-id normalised to {cluster_id} (the hub matches the ID exactly)"
            ));
        }
        let route = match args.child_server.as_deref() {
            Some(url) => Route::from_child_server(url).map_err(|e| usage(format!("{e:#}")))?,
            None => Route::Direct,
        };
        let child = ChildSource::resolve(&args.child, env.child_token)?;
        let parent_token = TokenSource::resolve(&args.parent, env.parent_token)?;
        if child.reads_stdin() && parent_token.as_ref().is_some_and(TokenSource::reads_stdin) {
            return Err(usage(
                "--token-file - and --parent-token-file - cannot both read stdin; use a file for one",
            ));
        }
        let name = match args.out.name {
            Some(name) => check_name(name)?,
            None => format!("clusternet-{cluster_id}"),
        };
        let destination = match (args.out.output_file, args.out.merge_into) {
            (Some(path), _) => Destination::File {
                path,
                force: args.out.force,
            },
            (None, Some(path)) => Destination::Merge {
                path,
                set_current_context: args.out.set_current_context,
                lock_timeout: Duration::from_secs(args.out.lock_timeout),
            },
            (None, None) => Destination::Stdout,
        };
        if matches!(destination, Destination::Merge { .. }) && args.out.output == OutputFormat::Json {
            return Err(usage("--merge-into writes YAML; drop -o json"));
        }
        Ok(Settings {
            parent: load::parent_source(args.kubeconfig.as_deref(), env.kubeconfig, env.home)?,
            context: args.context,
            cluster_id,
            route,
            child,
            parent_auth: args.parent.parent_auth,
            parent_token,
            name,
            format: args.out.output,
            destination,
        })
    }
}

/// A name must survive as a kubeconfig key and in messages.
fn check_name(name: String) -> Result<String> {
    if name.trim().is_empty() {
        return Err(usage(
            "--name is empty; give a name or leave it out for clusternet-<cluster-id>",
        ));
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
    let result = Settings::resolve(args, Env::from_process(), &mut notes)
        .and_then(|settings| generate(&settings, &mut notes).map(|entries| (settings, entries)));
    // Notes first, even when a later step failed: they often explain it.
    for note in notes.drain(..) {
        eprintln!("{note}");
    }
    let (settings, entries) = result?;
    deliver(&settings, &entries)
}

/// load → select → route → credentials: the generated entries, nothing written.
pub fn generate(settings: &Settings, notes: &mut Vec<String>) -> Result<Entries> {
    let loaded = load::load_parent(&settings.parent)?;
    let selection = select::select(&loaded, settings.context.as_deref(), "--context")?;
    let field = format!(
        "server of cluster {:?} in {}",
        selection.cluster_name,
        loaded.describe()
    );
    let parent_server = selection
        .cluster
        .server
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cluster {:?} in {} has no server; set its server field",
                selection.cluster_name,
                loaded.describe()
            )
        })?;
    let server = route::proxy_server(parent_server, &settings.cluster_id, &settings.route, &field)?;
    let ca_data = flatten::ca_data(
        selection.cluster,
        selection.cluster_dir,
        selection.cluster_name,
    )?;
    let child = credentials::child::load(&settings.child, notes)?;
    let parent = credentials::parent::load(
        settings.parent_auth,
        settings.parent_token.as_ref(),
        &selection,
    )?;
    Ok(Entries {
        name: settings.name.clone(),
        cluster: emit::cluster_entry(selection.cluster, server, ca_data),
        context: emit::context_entry(&settings.name, selection.namespace),
        user: credentials::user_entry(&parent, &child, notes),
    })
}

/// Emits to stdout, writes the file, or merges into the target.
fn deliver(settings: &Settings, entries: &Entries) -> Result<()> {
    match &settings.destination {
        Destination::Stdout => {
            let text = emit::render(&emit::document(entries), settings.format)?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing to stdout")
        }
        Destination::File { path, force } => {
            let text = emit::render(&emit::document(entries), settings.format)?;
            write::write_new(path, &text, *force)?;
            eprintln!(
                "wrote context {:?} to {} (mode 0600)",
                entries.name,
                path.display()
            );
            Ok(())
        }
        Destination::Merge {
            path,
            set_current_context,
            lock_timeout,
        } => {
            let report = write::merge_into(path, entries, *set_current_context, *lock_timeout)?;
            let changes: Vec<String> = report
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {:?} {}",
                        c.kind,
                        c.name,
                        if c.added { "added" } else { "updated" }
                    )
                })
                .collect();
            let file = if report.created { "new file" } else { "file" };
            eprintln!("{} in {file} {}", changes.join(", "), report.path.display());
            if report.current_context_set {
                eprintln!("current-context is now {:?}", entries.name);
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
