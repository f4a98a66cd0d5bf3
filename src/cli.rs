//! The command line as clap sees it: raw flags only.
//!
//! Nothing here is validated beyond what clap can check by itself; each
//! subcommand resolves its raw flags into the settings it uses (see
//! `gen::Settings`), so that the rules about how flags combine live in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  # Child token from a file, anonymous parent auth, kubeconfig to stdout
  clusternet-kubeconfig gen --cluster-id dc91021d-2361-4f6d-a404-7c33b9e01118 \\
      --token-file child.token > child.kubeconfig

  # Token on stdin (never on the command line of a shared machine)
  kubectl --context child -n kube-system create token admin | \\
      clusternet-kubeconfig gen --cluster-id dc91021d-... --token-file - > child.kubeconfig

  # Route through the child's own address instead of the agent-reported one
  clusternet-kubeconfig gen --cluster-id dc91021d-... --child-server https://10.0.0.5:6443 \\
      --child-kubeconfig ~/.kube/child.config --output-file child.kubeconfig

  # Client certificate of the child, the parent's own credentials, merged into ~/.kube/config
  clusternet-kubeconfig gen --cluster-id dc91021d-... --client-certificate child.crt \\
      --client-key child.key --parent-auth keep --merge-into ~/.kube/config --set-current-context

Note: `kubectl get --raw /version` replaces the whole server path and so reaches the
parent, not the child; `kubectl version` and `kubectl get ...` keep the proxy prefix.";

/// Generate kubeconfigs that reach Clusternet child clusters through the parent.
#[derive(Debug, Parser)]
#[command(name = "clusternet-kubeconfig", version, about, after_long_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Trace each step on stderr (secret values are redacted)
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a dedicated kubeconfig for one child cluster (offline: no network)
    #[command(after_long_help = EXAMPLES)]
    Gen(Box<GenArgs>),
    /// List the ManagedClusters of the parent (one paginated LIST)
    List(ListArgs),
    /// Check a generated kubeconfig: the child's /version and /api through the proxy
    Verify(VerifyArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub parent_config: ParentConfigArgs,

    /// All namespaces (the default)
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Only this namespace
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Label selector, e.g. clusters.clusternet.io/cluster-id=<id>
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,

    /// Seconds to wait for each request
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The generated kubeconfig [default: the KUBECONFIG list, then ~/.kube/config]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Context to verify [default: current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Seconds to wait for each request
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub parent_config: ParentConfigArgs,

    #[command(flatten)]
    pub targets: TargetArgs,

    /// Child apiserver as the agent dials it: http(s)://host[:port][/path]
    /// [default: route `direct`, the URL the agent reported]
    #[arg(long, value_name = "URL")]
    pub child_server: Option<String>,

    #[command(flatten)]
    pub child: ChildCredentialArgs,

    #[command(flatten)]
    pub parent: ParentAuthArgs,

    #[command(flatten)]
    pub out: OutputArgs,

    /// Before writing, request the child's /version and /api through the proxy;
    /// on failure write nothing (unless --write-unverified)
    #[arg(long, help_heading = "Verification")]
    pub verify: bool,

    /// With --verify: write even when verification fails (with a warning)
    #[arg(long, requires = "verify", help_heading = "Verification")]
    pub write_unverified: bool,

    /// Seconds to wait for each request to the parent
    #[arg(long, value_name = "SECONDS", default_value_t = 10, help_heading = "Verification")]
    pub timeout: u64,
}

/// The parent kubeconfig, shared by every subcommand that reads one.
#[derive(Debug, Args)]
pub struct ParentConfigArgs {
    /// Parent kubeconfig [default: the KUBECONFIG list, then ~/.kube/config]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Parent context to use [default: current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Which child clusters: by ID (offline), or looked up on the parent.
#[derive(Debug, Args)]
#[command(next_help_heading = "Child clusters")]
pub struct TargetArgs {
    /// Child cluster ID (a UUID; normalised to lower-case hyphenated form); repeatable with --credentials
    #[arg(long, value_name = "UUID", required_unless_present_any = ["cluster", "all"])]
    pub cluster_id: Vec<String>,

    /// ManagedCluster name, looked up on the parent; repeatable with --credentials
    #[arg(long, value_name = "NAME")]
    pub cluster: Vec<String>,

    /// Namespace of --cluster
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Every ManagedCluster on the parent (one context each); needs --credentials
    #[arg(long, conflicts_with_all = ["cluster_id", "cluster"], requires = "credentials")]
    pub all: bool,

    /// With --all: only ManagedClusters matching this label selector
    #[arg(short = 'l', long, value_name = "SELECTOR", requires = "all")]
    pub selector: Option<String>,

    /// YAML file with child credentials per cluster name, namespace/name or ID
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Fail when a cluster has no entry in --credentials (default: skip it with a warning)
    #[arg(long, requires = "credentials")]
    pub strict: bool,

    /// With several clusters: leave current-context unset [default: the first named cluster's; --all sets none]
    #[arg(long)]
    pub no_current_context: bool,
}

/// What is generated and where it goes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// One name for the generated cluster, user and context [default: clusternet-<cluster-id>]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,

    /// Write the kubeconfig to this file (mode 0600, atomically) instead of stdout
    #[arg(long, value_name = "PATH", conflicts_with = "merge_into")]
    pub output_file: Option<PathBuf>,

    /// Replace an existing --output-file
    #[arg(long)]
    pub force: bool,

    /// Add or replace the generated entries in this kubeconfig (created if missing)
    #[arg(long, value_name = "PATH")]
    pub merge_into: Option<PathBuf>,

    /// With --merge-into: make the generated context the current one
    #[arg(long, requires = "merge_into")]
    pub set_current_context: bool,

    /// With --merge-into: how long to wait for `<file>.lock` held by kubectl or another writer
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "merge_into")]
    pub lock_timeout: u64,
}

/// Child credentials: exactly one source.
#[derive(Debug, Args)]
#[command(next_help_heading = "Child credentials (exactly one source)")]
pub struct ChildCredentialArgs {
    /// Child bearer token, as is (prefer --token-file - or env CLUSTERNET_CHILD_TOKEN: argv is visible in `ps`)
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// File holding the child token ('-' = stdin); one trailing newline is trimmed
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Child client certificate (PEM file)
    #[arg(long, value_name = "PATH", requires = "client_key")]
    pub client_certificate: Option<PathBuf>,

    /// Child client private key (PEM file, unencrypted)
    #[arg(long, value_name = "PATH", requires = "client_certificate")]
    pub client_key: Option<PathBuf>,

    /// Child client certificate, base64 of the PEM (as in a kubeconfig)
    #[arg(long, value_name = "B64", requires = "client_key_data")]
    pub client_certificate_data: Option<String>,

    /// Child client private key, base64 of the PEM (as in a kubeconfig)
    #[arg(long, value_name = "B64", requires = "client_certificate_data")]
    pub client_key_data: Option<String>,

    /// Take the child user's token or client certificate from this kubeconfig
    #[arg(long, value_name = "PATH")]
    pub child_kubeconfig: Option<PathBuf>,

    /// Context of --child-kubeconfig [default: its current-context]
    #[arg(long, value_name = "NAME", requires = "child_kubeconfig")]
    pub child_context: Option<String>,
}

/// How the generated kubeconfig authenticates to the parent apiserver.
#[derive(Debug, Args)]
#[command(next_help_heading = "Parent authentication")]
pub struct ParentAuthArgs {
    /// anonymous: username system:anonymous; token: a parent token; keep: the parent user's own credentials
    #[arg(long, value_enum, default_value_t = ParentAuthMode::Anonymous)]
    pub parent_auth: ParentAuthMode,

    /// Parent token for --parent-auth token (or env CLUSTERNET_PARENT_TOKEN)
    #[arg(long, value_name = "TOKEN")]
    pub parent_token: Option<String>,

    /// File holding the parent token ('-' = stdin)
    #[arg(long, value_name = "PATH")]
    pub parent_token_file: Option<PathBuf>,

    /// With --parent-auth token and no token given: ask the TokenRequest API for
    /// a token of clusternet-hub-proxy instead of reading its Secret
    #[arg(long)]
    pub parent_token_request: bool,

    /// Lifetime of a --parent-token-request token, e.g. 1h, 30m, 3600s
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration, requires = "parent_token_request")]
    pub parent_token_ttl: std::time::Duration,

    /// Namespace of Clusternet's hub and its clusternet-hub-proxy service account
    #[arg(long, value_name = "NAMESPACE", default_value = "clusternet-system")]
    pub system_namespace: String,
}

/// `90`, `90s`, `30m`, `1h`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 1h, 30m or 600s"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?} is not a duration like 1h, 30m or 600s")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParentAuthMode {
    Anonymous,
    Token,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
