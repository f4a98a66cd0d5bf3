//! `gen`'s edge: raw flags and the environment become [`Settings`], in one
//! place. Every rule about how flags combine lives here, every usage error is
//! found here (before any file is read), and only here are flags named; the
//! pipeline and the domain modules never see clap's types.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::targets::{ChildCredentialSource, Wanted};
use crate::cli::{
    ChildCredentialArgs, ChildCredentialsFrom, GenArgs, OidcArgs, OutputArgs, OutputFormat, ParentAuthArgs,
    ParentAuthMode, SourceArgs, TargetArgs,
};
use crate::credentials::file::Credentials;
use crate::credentials::origin::ChildTokenRequest;
use crate::credentials::parent::{GivenToken, Method, TokenSource};
use crate::credentials::{ChildSource, child, oidc, parent};
use crate::error::{in_cwd, refuse_dash, usage};
use crate::kubeconfig::emit;
use crate::kubeconfig::load::{self, ParentSource};
use crate::names;
use crate::names::ObjectRef;
use crate::notes;
use crate::route::{ClusterId, Route};
use crate::secret::Secret;

/// Where the generated kubeconfig goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File { path: PathBuf, force: bool },
    Merge { path: PathBuf, set_current_context: bool, lock_timeout: Duration },
}

/// What `gen`, `exec` and `proxy` generate from (the parent, the clusters,
/// the route, both sides' credentials), resolved once from the flag group
/// they share ([`SourceArgs`]), as ripgrep's low-level flags become its
/// high-level settings: each subcommand adds only what is its own.
#[derive(Debug)]
pub struct Shared {
    pub parent: ParentSource,
    pub context: Option<String>,
    pub wanted: Wanted,
    pub route: Route,
    pub child: ChildCredentialSource,
    /// `--child-token-request`: write a token the child issues instead of `child`.
    pub token_request: Option<ChildTokenRequest>,
    /// Go on without the selected clusters that cannot be used (listed);
    /// by default they fail the run.
    pub allow_skip: bool,
    pub parent_auth: Method,
    pub timeout: Duration,
}

/// `--verify` and `--write-unverified`: writing unverified entries is
/// something only a verification can have refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    No,
    /// On failure write nothing.
    Required,
    /// On failure warn and write anyway (`--write-unverified`).
    WarnOnly,
}

/// `gen`'s settings: the [`Shared`] ones, plus the names it gives, where it
/// writes and whether it verifies first.
#[derive(Debug)]
pub struct Settings {
    pub shared: Shared,
    pub name: Option<String>,
    pub set_current: bool,
    pub format: emit::Format,
    pub destination: Destination,
    /// Print what the write would change; write nothing.
    pub dry_run: bool,
    pub verify: Verify,
    /// The parent kubeconfig of a run without --kubeconfig: a merge that
    /// changes its current context is warned about.
    pub default_parent: Option<ParentSource>,
}

/// The environment `gen` reads, passed in so that resolution stays pure.
#[derive(Debug, Default)]
pub struct Env {
    pub kubeconfig: Option<std::ffi::OsString>,
    pub home: Option<PathBuf>,
    pub child_token: Option<Secret>,
    pub parent_token: Option<Secret>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            child_token: std::env::var(child::TOKEN_ENV).ok().map(Secret::new),
            parent_token: std::env::var(parent::TOKEN_ENV).ok().map(Secret::new),
        }
    }
}

impl Settings {
    /// Stage two for `gen`: the shared flags, then its own. Every error here
    /// is a usage error, except reading the credentials file.
    pub fn resolve(args: GenArgs, env: Env) -> Result<Settings> {
        refuse_dash("--merge-into", args.out.merge_into.as_deref())?;
        let default_parent = load::parent_source(None, env.kubeconfig.clone(), env.home.clone()).ok();
        let shared = Shared::resolve(args.source, args.timeout, env)?;
        if shared.wanted.count().is_none_or(|n| n > 1) && args.out.name.is_some() {
            return Err(usage("--name names one cluster's entries; with several clusters the names are derived"));
        }
        let name = args.out.name.clone().map(check_name).transpose()?;
        let destination = destination(&args.out)?;
        Ok(Settings {
            shared,
            name,
            set_current: !args.out.no_current_context,
            format: match args.out.output {
                OutputFormat::Yaml => emit::Format::Yaml,
                OutputFormat::Json => emit::Format::Json,
            },
            destination,
            dry_run: args.out.dry_run,
            verify: match (args.verify, args.write_unverified) {
                (false, _) => Verify::No,
                (true, false) => Verify::Required,
                (true, true) => Verify::WarnOnly,
            },
            default_parent,
        })
    }
}

impl Shared {
    /// The shared flags to settings, for `gen`, `exec` and `proxy` alike.
    pub fn resolve(args: SourceArgs, timeout: Duration, env: Env) -> Result<Shared> {
        let t = &args.targets;
        for (flag, path) in [
            ("--kubeconfig", &args.parent_config.kubeconfig),
            ("--client-certificate", &args.child.client_certificate),
            ("--client-key", &args.child.client_key),
            ("--child-kubeconfig", &args.child.child_kubeconfig),
            ("--credentials", &t.credentials),
        ] {
            refuse_dash(flag, path.as_deref())?;
        }
        let wanted = wanted(t, &args.parent.system_namespace)?;
        warn_secrets_on_argv(&args);
        let several = wanted.count().is_none_or(|n| n > 1);
        let child = child_credentials(&args, env.child_token, several)?;
        let token_request = token_request(&args.child)?;
        let route = match args.route.child_server.as_deref() {
            Some(url) => Route::from_child_server(url).map_err(|e| usage(format!("{e:#}")))?,
            None => Route::Direct,
        };
        let parent_auth = parent_method(&args.parent, &args.oidc, env.parent_token)?;
        let child_reads_stdin = matches!(&child, ChildCredentialSource::Flags(s) if s.reads_stdin());
        if child_reads_stdin && matches!(&parent_auth, Method::Token(TokenSource::Given(s)) if s.reads_stdin()) {
            return Err(usage("--token-file - and --parent-token-file - cannot both read stdin; use a file for one"));
        }
        Ok(Shared {
            parent: load::parent_source(args.parent_config.kubeconfig.as_deref(), env.kubeconfig, env.home)?,
            context: args.parent_config.context,
            allow_skip: args.targets.allow_skip,
            wanted,
            route,
            child,
            token_request,
            parent_auth,
            timeout,
        })
    }

    /// True when something must be asked of the parent cluster (before any
    /// `--verify`, which asks it too).
    pub fn needs_cluster(&self) -> bool {
        self.wanted.needs_lookup()
            || self.reads_hub_credentials()
            || matches!(
                self.parent_auth,
                Method::Token(TokenSource::HubSecret { .. } | TokenSource::TokenRequest { .. })
            )
    }

    /// True with `--child-credentials hub`: every cluster is looked up (for its
    /// namespace) and its Secret read.
    pub fn reads_hub_credentials(&self) -> bool {
        matches!(self.child, ChildCredentialSource::Hub)
    }
}

/// The least lifetime the TokenRequest API grants (`expirationSeconds` >= 600).
const MIN_CHILD_TOKEN_TTL: Duration = Duration::from_secs(600);

/// `--child-token-request NAMESPACE/SERVICEACCOUNT` and `--child-token-ttl`, checked.
fn token_request(args: &ChildCredentialArgs) -> Result<Option<ChildTokenRequest>> {
    let Some(text) = &args.child_token_request else {
        return Ok(None);
    };
    let flag = "--child-token-request";
    let (namespace, name) = text
        .split_once('/')
        .filter(|(_, n)| !n.contains('/'))
        .ok_or_else(|| usage(format!("{flag} {text:?} is not NAMESPACE/SERVICEACCOUNT; give e.g. ci/deployer")))?;
    names::check_namespace(namespace, &format!("the namespace of {flag}")).map_err(|e| usage(format!("{e:#}")))?;
    names::check_service_account(name, &format!("the service account of {flag}"))
        .map_err(|e| usage(format!("{e:#}")))?;
    let ttl = args.child_token_ttl;
    if ttl < MIN_CHILD_TOKEN_TTL {
        return Err(usage(format!(
            "--child-token-ttl must be at least 10m (the TokenRequest API's least lifetime), not {}s",
            ttl.as_secs()
        )));
    }
    if ttl.subsec_nanos() != 0 {
        return Err(usage("--child-token-ttl is counted in whole seconds; give e.g. 1h or 90m"));
    }
    Ok(Some(ChildTokenRequest {
        service_account: ObjectRef { namespace: namespace.to_string(), name: name.to_string() },
        ttl,
    }))
}

/// The clusters asked for, checked.
fn wanted(t: &TargetArgs, system_namespace: &str) -> Result<Wanted> {
    let mut ids = Vec::new();
    for raw in &t.cluster_id {
        let (id, changed) = ClusterId::parse(raw).map_err(|e| usage(format!("{e:#}")))?;
        if changed {
            notes::push(format!("note: --cluster-id normalised to {id} (the hub matches the ID exactly)"));
        }
        ids.push(id);
    }
    check_names(t, system_namespace)?;
    if t.namespace.is_some() && t.cluster.is_empty() && !t.all {
        return Err(usage("-n/--namespace is for --cluster NAME or --all"));
    }
    Ok(match t.all {
        true => Wanted::All { namespace: t.namespace.clone(), selector: names::selector(t.selector.as_deref()) },
        false => Wanted::Named { ids, names: t.cluster.clone(), namespace: t.namespace.clone() },
    })
}

/// The child credentials: per cluster from `--credentials`, or one source
/// from the flags (for one cluster only).
fn child_credentials(args: &SourceArgs, env_token: Option<Secret>, several: bool) -> Result<ChildCredentialSource> {
    if let Some(ChildCredentialsFrom::Hub) = args.child.child_credentials {
        if args.targets.credentials.is_some() {
            return Err(usage(
                "child credentials come either from the hub (--child-credentials hub) or from --credentials, not both",
            ));
        }
        if has_child_flags(args) {
            return Err(usage(
                "child credentials come either from the hub (--child-credentials hub) or from flags, not both",
            ));
        }
        if is_set(&env_token) {
            notes::push(unused_env_warning(child::TOKEN_ENV, "--child-credentials hub gives the child credentials"));
        }
        return Ok(ChildCredentialSource::Hub);
    }
    if args.targets.strict && args.targets.allow_skip {
        return Err(usage(
            "--strict and --allow-skip contradict each other; --strict is the default (and does nothing)",
        ));
    }
    if (args.targets.strict || args.targets.allow_skip) && args.targets.credentials.is_none() {
        let flag = if args.targets.strict { "--strict" } else { "--allow-skip" };
        return Err(usage(format!("{flag} is for --credentials FILE or --child-credentials hub")));
    }
    if args.targets.all && args.targets.credentials.is_none() {
        return Err(usage("--all needs child credentials per cluster: --credentials FILE, or --child-credentials hub"));
    }
    match &args.targets.credentials {
        Some(path) => {
            if is_set(&env_token) {
                notes::push(unused_env_warning(child::TOKEN_ENV, "--credentials gives the child credentials"));
            }
            if has_child_flags(args) {
                return Err(usage(
                    "child credentials come either per cluster from --credentials or from flags, not both",
                ));
            }
            Ok(ChildCredentialSource::File(in_cwd(Credentials::read(path), path)?))
        }
        None if several => Err(usage(
            "several clusters need --credentials FILE or --child-credentials hub (child credentials differ per cluster)",
        )),
        None => Ok(ChildCredentialSource::Flags(child_source(&args.child, env_token)?)),
    }
}

/// Where the kubeconfig goes, and the flags that only make sense for one place.
fn destination(out: &OutputArgs) -> Result<Destination> {
    // `--output-file -` is stdout, as `-` is stdin for the token files.
    let output_file = out.output_file.clone().filter(|p| p.as_os_str() != "-");
    let destination = match (output_file, out.merge_into.clone()) {
        (Some(path), _) => Destination::File { path, force: out.force },
        (None, Some(path)) => {
            Destination::Merge { path, set_current_context: out.set_current_context, lock_timeout: out.lock_timeout }
        }
        (None, None) => Destination::Stdout,
    };
    if out.force && !matches!(destination, Destination::File { .. }) {
        return Err(usage(
            "--force replaces an existing --output-file; to write despite a failed --verify, use --write-unverified",
        ));
    }
    if out.dry_run && destination == Destination::Stdout {
        return Err(usage(
            "--dry-run shows what --output-file or --merge-into would change; without them nothing is written anyway",
        ));
    }
    if matches!(destination, Destination::Merge { .. }) && out.output == OutputFormat::Json {
        return Err(usage("--merge-into writes YAML; drop -o json"));
    }
    Ok(destination)
}

/// The command line of a process is visible to other users (`ps`); a person
/// typing a secret there (stdin is a terminal) is told the safer ways.
fn warn_secrets_on_argv(args: &SourceArgs) {
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
            notes::push(format!(
                "warning: {flag} puts a secret on the command line, where other users can see it (ps); prefer {instead}"
            ));
        }
    }
}

/// Namespaces, names and selectors go into request paths and selectors: each
/// must be what the apiserver accepts as one (usage errors).
fn check_names(t: &TargetArgs, system_namespace: &str) -> Result<()> {
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

fn has_child_flags(args: &SourceArgs) -> bool {
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

/// True when a secret variable is set to something (an empty one is "not
/// given" for the warnings).
fn is_set(value: &Option<Secret>) -> bool {
    value.as_ref().is_some_and(|t| !t.expose().is_empty())
}

/// The warning for a secret variable that is set but not used: a CI job may
/// set it for every step, and it must not silently mean nothing.
fn unused_env_warning(variable: &str, why: &str) -> String {
    format!("warning: {variable} is set but not used: {why}")
}

/// Picks the one child credential source given by the flags, else
/// `env_token` (the value of CLUSTERNET_CHILD_TOKEN): a flag wins over the
/// environment, as with kubectl's flags and variables, and a variable set but
/// not used is a warning (a note). An empty variable is reported as empty
/// only when it is the only source.
fn child_source(args: &ChildCredentialArgs, env_token: Option<Secret>) -> Result<ChildSource> {
    let mut found: Vec<(&str, ChildSource)> = Vec::new();
    if let Some(t) = &args.token {
        found.push(("--token", ChildSource::Token(Secret::new(t.clone()))));
    }
    if let Some(p) = &args.token_file {
        found.push(("--token-file", ChildSource::TokenFile(p.clone())));
    }
    if let (Some(cert), Some(key)) = (&args.client_certificate, &args.client_key) {
        found.push((
            "--client-certificate/--client-key",
            ChildSource::CertKeyFiles { cert: cert.clone(), key: key.clone() },
        ));
    }
    if let (Some(cert), Some(key)) = (&args.client_certificate_data, &args.client_key_data) {
        found.push((
            "--client-certificate-data/--client-key-data",
            ChildSource::CertKeyData { cert: cert.clone(), key: Secret::new(key.clone()) },
        ));
    }
    if let Some(p) = &args.child_kubeconfig {
        found.push((
            "--child-kubeconfig",
            ChildSource::ChildKubeconfig { path: p.clone(), context: args.child_context.clone() },
        ));
    }
    let env_set = is_set(&env_token);
    match (found.len(), env_token) {
        (0, Some(t)) => Ok(ChildSource::TokenEnv(t)),
        (0, None) => Err(usage(format!(
            "no child credentials: pass --token-file PATH (or -, or env {}), --client-certificate with --client-key, or --child-kubeconfig",
            child::TOKEN_ENV
        ))),
        (1, _) => {
            let (flag, source) = found.remove(0);
            if env_set {
                notes::push(unused_env_warning(child::TOKEN_ENV, &format!("{flag} is given (a flag wins)")));
            }
            Ok(source)
        }
        _ => {
            let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
            Err(usage(format!("child credentials given twice ({}); keep exactly one source", names.join(" and "))))
        }
    }
}

/// The parent authentication asked for. A parent token comes from a flag,
/// else CLUSTERNET_PARENT_TOKEN (`env_token`), else the parent cluster (the
/// clusternet-hub-proxy Secret, or a TokenRequest). Two flags are a usage
/// error; a flag wins over the variable, and a variable that is set but not
/// used (another source, or a --parent-auth that takes no token) is a warning
/// (a note).
fn parent_method(args: &ParentAuthArgs, oidc: &OidcArgs, env_token: Option<Secret>) -> Result<Method> {
    let mut flags = Vec::new();
    if let Some(t) = &args.parent_token {
        flags.push(("--parent-token", GivenToken::Flag(Secret::new(t.clone()))));
    }
    if let Some(p) = &args.parent_token_file {
        flags.push(("--parent-token-file", GivenToken::File(p.clone())));
    }
    if flags.len() > 1 {
        return Err(usage("parent token given twice (--parent-token and --parent-token-file); keep one"));
    }
    let flag = flags.pop();
    let oidc = oidc_source(args.parent_auth, oidc)?;
    if let Some((name, _)) = &flag
        && args.parent_auth != ParentAuthMode::Token
    {
        return Err(usage(format!("{name} is used only with --parent-auth token")));
    }
    if args.parent_token_request && (args.parent_auth != ParentAuthMode::Token || flag.is_some()) {
        return Err(usage("--parent-token-request is for --parent-auth token without a given parent token"));
    }
    let unused = match (&flag, args.parent_auth) {
        (Some((name, _)), _) => Some(format!("{name} is given (a flag wins)")),
        (None, ParentAuthMode::Token) if args.parent_token_request => {
            Some("--parent-token-request asks for a token instead".to_string())
        }
        (None, ParentAuthMode::Token) => None,
        (None, mode) => Some(format!(
            "--parent-auth is {}; pass --parent-auth token to use it",
            match mode {
                ParentAuthMode::Keep => "keep",
                ParentAuthMode::Oidc => "oidc",
                _ => "anonymous",
            }
        )),
    };
    let given = match unused {
        Some(why) => {
            if is_set(&env_token) {
                notes::push(unused_env_warning(parent::TOKEN_ENV, &why));
            }
            flag.map(|(_, s)| s)
        }
        // Set but empty is an error when read (a CI secret that is missing),
        // not a reason to fetch a token from the cluster instead.
        None => env_token.map(GivenToken::Env),
    };
    let namespace = args.system_namespace.clone();
    Ok(match args.parent_auth {
        ParentAuthMode::Anonymous => Method::Anonymous,
        ParentAuthMode::Keep => Method::Keep,
        ParentAuthMode::Oidc => Method::Oidc(oidc.ok_or_else(|| {
            usage("--parent-auth oidc needs --oidc-audience AUDIENCE (the audience the parent's AuthenticationConfiguration expects)")
        })?),
        ParentAuthMode::Token => Method::Token(match given {
            Some(given) => TokenSource::Given(given),
            None if args.parent_token_request => TokenSource::TokenRequest { namespace, ttl: args.parent_token_ttl },
            None => TokenSource::HubSecret { namespace },
        }),
    })
}

/// `--oidc-*`: only with `--parent-auth oidc`, which needs the audience.
fn oidc_source(mode: ParentAuthMode, o: &OidcArgs) -> Result<Option<oidc::Source>> {
    let given = [
        ("--oidc-audience", o.oidc_audience.is_some()),
        ("--oidc-token-env", o.oidc_token_env.is_some()),
        ("--oidc-token-file", o.oidc_token_file.is_some()),
    ];
    if mode != ParentAuthMode::Oidc {
        return match given.iter().find(|(_, set)| *set) {
            Some((flag, _)) => Err(usage(format!("{flag} is used only with --parent-auth oidc"))),
            None => Ok(None),
        };
    }
    let Some(audience) = &o.oidc_audience else {
        return Ok(None);
    };
    oidc::Source::new(
        audience,
        o.oidc_token_env.as_deref(),
        o.oidc_token_file.as_deref(),
        ["--oidc-audience", "--oidc-token-env", "--oidc-token-file"],
    )
    .map(Some)
    .map_err(|e| usage(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::is_usage;

    fn args() -> ChildCredentialArgs {
        ChildCredentialArgs {
            token: None,
            token_file: None,
            client_certificate: None,
            client_key: None,
            client_certificate_data: None,
            client_key_data: None,
            child_kubeconfig: None,
            child_context: None,
            child_credentials: None,
            child_token_request: None,
            child_token_ttl: Duration::from_secs(3600),
        }
    }

    #[test]
    fn exactly_one_child_source_and_flags_win_over_the_environment() {
        let secret = |t: &str| Secret::new(t.into());
        let a = ChildCredentialArgs { token: Some("t".into()), ..args() };
        assert_eq!(child_source(&a, None).unwrap(), ChildSource::Token(secret("t")));
        assert_eq!(child_source(&a, Some(secret(""))).unwrap(), ChildSource::Token(secret("t")));
        assert_eq!(notes::take(), Vec::<String>::new());
        let e = || Some(secret("e"));
        assert_eq!(child_source(&args(), e()).unwrap(), ChildSource::TokenEnv(secret("e")));
        assert_eq!(child_source(&args(), Some(secret(""))).unwrap(), ChildSource::TokenEnv(secret("")));
        let none = child_source(&args(), None).unwrap_err();
        assert!(is_usage(&none) && format!("{none}").contains("no child credentials"));
        assert_eq!(child_source(&a, e()).unwrap(), ChildSource::Token(secret("t")));
        assert_eq!(
            notes::take(),
            ["warning: CLUSTERNET_CHILD_TOKEN is set but not used: --token is given (a flag wins)"]
        );
        let b = ChildCredentialArgs { token_file: Some("f".into()), ..a };
        let two = child_source(&b, e()).unwrap_err();
        assert!(is_usage(&two) && format!("{two}").contains("--token and --token-file"), "{two}");
    }
}
