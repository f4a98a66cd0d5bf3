//! The command line as clap sees it: raw flags only.
//!
//! Nothing here is validated beyond what clap can check by itself; each
//! subcommand resolves its raw flags into the settings it uses (see
//! `generate::Settings`), so that the rules about how flags combine live in one
//! place.

// The doc comments of the flags are clap's help text, written for a terminal
// (`<id>`, `[:port]`), not for rustdoc: escaping them would change `--help`.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

// The help texts are macros so that `concat!` can join them into one literal.
macro_rules! examples {
    () => {
        "\
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

  # CI: a one-hour token of a narrowly bound child service account, asked for with the
  # child's cluster-admin credential that the hub holds (which is not written)
  clusternet-kubeconfig gen --cluster child-a --child-credentials hub \\
      --child-token-request ci/deployer --child-token-ttl 1h --output-file ci.kubeconfig

  # Client certificate of the child, the parent's own credentials, merged into ~/.kube/config
  clusternet-kubeconfig gen --cluster-id dc91021d-... --client-certificate child.crt \\
      --client-key child.key --parent-auth keep --merge-into ~/.kube/config --set-current-context

Where the inputs come from:
  cluster ID   `clusternet-kubeconfig list` (column CLUSTER-ID), or the label
               clusters.clusternet.io/cluster-id of the ManagedCluster
  child token  a service account of the CHILD cluster, e.g.
               `kubectl --context child -n kube-system create token admin`
  parent       your parent kubeconfig: not a generated one, not the child's own

Note: `kubectl get --raw /version` replaces the whole server path and so reaches the
parent, not the child; `kubectl version` and `kubectl get ...` keep the proxy prefix.
"
    };
}

macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0  success
  1  failure: a file, a credential value (from a flag, a file or the environment),
     the cluster's answer, a write; one `error:` line on stderr
  2  usage: unknown or malformed flags, flags that do not combine

Environment:
  KUBECONFIG               parent kubeconfig list, as kubectl reads it (--kubeconfig wins)
  CLUSTERNET_CHILD_TOKEN   child token when no child credential flag is given (a flag wins)
  CLUSTERNET_PARENT_TOKEN  parent token for --parent-auth token (--parent-token[-file] wins)
"
    };
}

/// `list -o json` and `-o yaml`, documented where they are asked for.
pub const LIST_HELP: &str = concat!(
    "\
Output of -o json (the same fields with -o yaml), sorted by namespace, then name:
  {\"items\": [{\"namespace\": \"clusternet-x7k2p\", \"name\": \"child-a\",
              \"clusterId\": \"dc91021d-2361-4f6d-a404-7c33b9e01118\", \"clusterType\": \"EdgeCluster\",
              \"syncMode\": \"Pull\", \"kubernetesVersion\": \"v1.32.1\",
              \"ready\": \"True\", \"apiserverURL\": \"https://10.0.0.5:6443\"}]}
  Every value is a string, as in the ManagedCluster: ready is the status of its Ready
  condition (\"True\", \"False\", \"Unknown\", or \"\" when absent); a missing field is \"\".
  No apiVersion/kind: this is a report, not a Kubernetes object.

",
    exit_codes!()
);

const MAIN_HELP: &str = concat!(examples!(), "\n", exit_codes!());

const EXEC_HELP: &str = "\
Examples:
  # One cluster: CMD's output and exit status as they are
  clusternet-kubeconfig exec --cluster-id dc91021d-... --token-file child.token -- kubectl get nodes

  # Every cluster labelled env=prod, four at a time, a JSON summary as the last line of stdout
  clusternet-kubeconfig exec --all -l env=prod --credentials creds.yaml --parallel 4 -o json \\
      -- kubectl get deploy -A

CMD runs with KUBECONFIG set to a kubeconfig generated as `gen` would (one context, the
current one) in a private temporary directory (0700, the file 0600), removed when CMD ends,
fails, cannot be started, or on SIGINT/SIGTERM/SIGHUP (forwarded to CMD, which is waited
for). CMD's environment also has CLUSTERNET_CLUSTER_ID and CLUSTERNET_CLUSTER_NAME (the
ManagedCluster's name, or the ID when only --cluster-id was given); CLUSTERNET_CHILD_TOKEN
and CLUSTERNET_PARENT_TOKEN are removed from it. Secrets are never on CMD's command line.

Several clusters: CMD runs once per cluster, stdin closed; each line CMD writes is prefixed
with `<cluster><TAB>` on the same stream (as `parallel --tag`), or with --results DIR goes
untagged to DIR/<cluster>/stdout and stderr; a summary (cluster, status, duration, note) ends
stderr, or with -o json stdout, as one line on its own (also when exec itself fails):
  {\"clusters\": [{\"cluster\": \"child-a\", \"namespace\": \"...\", \"clusterId\": \"...\",
    \"status\": \"succeeded|failed|killed|not-started|skipped\", \"exitCode\": 0, \"signal\": null,
    \"durationMs\": 812, \"reason\": null, \"stdout\": null, \"stderr\": null}],
   \"exitCode\": 0, \"error\": null}
One cluster: no prefix, no summary unless -o json. A selected cluster that cannot be used
(no credentials, no usable hub Secret, a bad cluster ID) fails the run before anything
runs (125); with --allow-skip the others run and it is listed as skipped with its reason.

Exit codes:
  0            CMD succeeded (on every cluster)
  1..255       one cluster: CMD's own exit status (128+N when a signal N ended it)
  1            several clusters: CMD failed, was killed or did not start on at least one
  2            usage: unknown or malformed flags, flags that do not combine; nothing ran
  125          exec itself failed (parent kubeconfig, credentials, cluster lookup, a selected
               cluster that cannot be used, temporary file); `error:` lines; CMD did not run
  126/127      one cluster: CMD cannot be executed / was not found
  130/143/129  exec was interrupted by SIGINT/SIGTERM/SIGHUP (forwarded to CMD, files removed)
";

const VERIFY_HELP: &str = concat!(
    "\
verify accepts only a context whose server is a socket-proxy route
(.../apis/proxies.clusternet.io/v1alpha1/sockets/<id>/proxy/...), as `gen` writes it:
pass --kubeconfig with the generated file. On success it prints one line on stdout.

",
    exit_codes!()
);

const PROXY_HELP: &str = concat!(
    "\
Examples:
  # From a kubeconfig written by `gen`; Python, JavaScript and curl then use proxy.kubeconfig
  clusternet-kubeconfig proxy --kubeconfig child.kubeconfig --port 0 --write-kubeconfig proxy.kubeconfig

  # Straight from the parent, with the same flags as gen
  clusternet-kubeconfig proxy --cluster-id dc91021d-... --token-file child.token

Without --cluster-id or --cluster, --kubeconfig (or KUBECONFIG) is a kubeconfig written by `gen`.
Whoever can reach the listening address acts as the child identity: the default is
127.0.0.1; --unix-socket is private to this user (mode 0600).

",
    exit_codes!()
);

/// Generate kubeconfigs that reach Clusternet child clusters through the parent.
#[derive(Debug, Parser)]
#[command(name = "clusternet-kubeconfig", version, about, after_long_help = MAIN_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Trace each step on stderr (secret values are redacted)
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a dedicated kubeconfig for child clusters (no network unless --cluster, --all,
    /// --verify, --child-credentials hub, --child-token-request, or --parent-auth token without a
    /// given token)
    #[command(after_long_help = MAIN_HELP)]
    Gen(Box<GenArgs>),
    /// List the ManagedClusters of the parent (one paginated LIST)
    #[command(after_long_help = LIST_HELP)]
    List(ListArgs),
    /// Check a generated kubeconfig: the child's /version and /api through the proxy
    #[command(after_long_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Run a command with KUBECONFIG set to a temporary kubeconfig for each child cluster
    #[command(after_long_help = EXEC_HELP)]
    Exec(Box<ExecArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(CompletionsArgs),
    /// Show the generated entries of a kubeconfig: cluster, route, credential, expiry
    #[command(after_long_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Regenerate in place the generated entries whose credential expires soon
    #[command(after_long_help = REFRESH_HELP)]
    Refresh(RefreshArgs),
    /// Remove generated entries whose ManagedCluster no longer exists on the parent
    #[command(after_long_help = PRUNE_HELP)]
    Prune(PruneArgs),
    /// Serve the child cluster on a local port for any Kubernetes client (Python, JavaScript,
    /// curl): requests are forwarded through the parent with the child credentials added
    #[command(after_long_help = PROXY_HELP, mut_arg("kubeconfig", |a| a.help(
        "A kubeconfig `gen` wrote; with --cluster-id or --cluster, the parent's, as for gen \
         [default: the KUBECONFIG list, then ~/.kube/config]"
    )), mut_arg("context", |a| a.help("Its context [default: current-context]")))]
    Proxy(Box<ProxyArgs>),
    /// Print the CI job's OIDC ID token as a client-go ExecCredential: the exec entry that
    /// `--parent-auth oidc` writes runs this
    #[command(name = "oidc-token", after_long_help = OIDC_TOKEN_HELP)]
    OidcToken(OidcTokenArgs),
}

const OIDC_TOKEN_HELP: &str = "\
Prints {\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\",
\"status\": {\"token\": \"...\", \"expirationTimestamp\": \"<the token's exp>\"}} on stdout, so that
kubectl, helm, terraform or Argo CD run it again once the token has expired. The token comes from
the GitHub Actions token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN,
set for a job with `permissions: id-token: write`), asked for --audience; or from --token-env VAR
or --token-file PATH. HTTPS is verified against the system's roots (SSL_CERT_FILE names others).
On failure: one `error:` line on stderr, never the token, exit 1.
";

/// `oidc-token`: the exec credential plugin of `--parent-auth oidc`.
#[derive(Debug, Args)]
pub struct OidcTokenArgs {
    /// The audience the ID token is asked for
    #[arg(long, value_name = "AUDIENCE", value_hint = ValueHint::Other)]
    pub audience: String,

    /// Read the ID token from this environment variable instead of the GitHub Actions endpoint
    #[arg(long, value_name = "VAR", value_hint = ValueHint::Other, conflicts_with = "token_file")]
    pub token_env: Option<String>,

    /// Read the ID token from this file instead of the GitHub Actions endpoint
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub token_file: Option<PathBuf>,

    /// How long to wait for the token endpoint, e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

// Where `status`, `refresh` and `prune` look.
macro_rules! maintain_file {
    () => {
        "\
Generated entries are those with the extension kubeconfig.clusternet.io/provenance,
which `gen` writes into every cluster, user and context entry; every other entry is
foreign, counted, and never changed. The file: --kubeconfig, else KUBECONFIG when it
names one file (a list of several is refused), else ~/.kube/config.
"
    };
}

const STATUS_HELP: &str = concat!(
    "\
One row per generated context. EXPIRES is the credential's recorded expiry (a JWT's
exp, a certificate's notAfter, a TokenRequest's expirationTimestamp), `-` when unknown.

Output of -o json:
  {\"kubeconfig\": \"/home/me/.kube/config\", \"foreignContexts\": 1, \"items\": [
    {\"context\": \"clusternet-child-a\", \"cluster\": \"clusternet-child-a\",
     \"managedCluster\": {\"namespace\": \"clusternet-x7k2p\", \"name\": \"child-a\"},
     \"clusterID\": \"dc91021d-...\", \"route\": \"direct\",
     \"credential\": {\"kind\": \"token\", \"source\": \"file\"},
     \"expires\": \"2026-11-29T13:00:00Z\", \"expiresInSeconds\": 3540, \"expired\": false,
     \"verify\": {\"ok\": true, \"message\": \"Kubernetes v1.33.1\"}}]}
  verify only with --verify; a missing value is null.

",
    maintain_file!(),
    "
Exit codes:
  0  every generated entry is unexpired (and, with --verify, reaches its child);
     also when the file has no generated entries (said on stderr)
  1  failure: the file cannot be read; one `error:` line on stderr
  2  usage
  3  an entry has expired, or failed --verify (the rows say which)
"
);

const REFRESH_HELP: &str = concat!(
    "\
An entry is due when its credential expires within --before (expired ones too). It
is rebuilt by the same steps as `gen`, from what its provenance records: the cluster
ID, the route, the parent server, and the credential's source, re-acquired:
  file, credentials-file  read again by the recorded path (a token file, PEM files,
                          a child kubeconfig, the --credentials file's entry)
  hub                     the Secret child-cluster-deployer read again on the recorded
                          parent, with YOUR parent kubeconfig (--parent-kubeconfig, else
                          the KUBECONFIG list, else ~/.kube/config) at the recorded
                          context (--parent-context overrides it), whose server must be
                          the recorded one; connected once per parent, only when needed
  token-request           its base credential re-acquired as above, then the child's
                          TokenRequest API asked again through the proxy for a token of
                          the recorded service account and lifetime; only that token is
                          written, never the base credential
Names, the parent-side authentication and every other entry are kept. The file is
rewritten once, atomically, under kubectl's lock (<file>.lock), taken only once the
credentials are re-acquired; an entry changed meanwhile is kept and reported.
A credential given on the command line, in the environment or on stdin cannot be
read again: such entries are reported, one line each, and kept.

",
    maintain_file!(),
    "
Exit codes:
  0  every due entry was refreshed (or none was due)
  1  failure: nothing was written; one `error:` line on stderr
  2  usage
  3  some due entries could not be refreshed (one line each on stderr: a credential
     from the command line, a source that cannot be read, a Secret missing or not
     readable by your parent user, a refused token request, or a credential read
     again that has expired too); they are kept as they were, the others were written
"
);

const PRUNE_HELP: &str = concat!(
    "\
Each generated entry is looked up by its cluster ID among the ManagedClusters of the
parent its provenance records. The parent is reached with YOUR parent kubeconfig
(--parent-kubeconfig, else the KUBECONFIG list, else ~/.kube/config) at the context
the provenance names (--parent-context overrides it), never with the generated
entry's own credentials (often anonymous). That context's server must be the
recorded parent server; otherwise the entry is kept and reported. With --dry-run
nothing is written.

",
    maintain_file!(),
    "
Exit codes:
  0  done (every generated entry was checked)
  1  failure: nothing was written; one `error:` line on stderr
  2  usage
  3  some entries could not be checked (parent unreachable, other server, no
     cluster ID): kept and reported; the others were pruned
"
);

/// The kubeconfig `status`, `refresh` and `prune` look after.
#[derive(Debug, Args)]
pub struct MaintainFileArgs {
    /// Kubeconfig holding generated entries [default: KUBECONFIG if it names one file, else ~/.kube/config]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: MaintainFileArgs,

    /// Also request each child's /version and /api through the proxy
    #[arg(long)]
    pub verify: bool,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = StatusFormat::Table)]
    pub output: StatusFormat,

    /// With --verify: how long to wait for each request, e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub file: MaintainFileArgs,

    /// Refresh entries whose credential expires within this window, e.g. 1h, 30m
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "1h", value_parser = parse_duration)]
    pub before: Duration,

    #[command(flatten)]
    pub parent: RecordedParentArgs,

    /// How long to wait for `<file>.lock` held by kubectl or another writer, e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

/// How `refresh` and `prune` reach the parent each generated entry records:
/// with the user's own parent kubeconfig, never the entry's credentials.
#[derive(Debug, Args)]
pub struct RecordedParentArgs {
    /// Your parent kubeconfig, to reach the parent each entry records [default: the KUBECONFIG list, then ~/.kube/config]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub parent_kubeconfig: Option<PathBuf>,

    /// Parent context to use [default: the one each entry's provenance records]
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other)]
    pub parent_context: Option<String>,

    /// How long to wait for each request to the parent, e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub file: MaintainFileArgs,

    #[command(flatten)]
    pub parent: RecordedParentArgs,

    /// List what would be removed; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for `<file>.lock` held by kubectl or another writer, e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub parent_config: ParentConfigArgs,

    /// All namespaces (the default)
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Only this namespace
    #[arg(short = 'n', long, value_name = "NAMESPACE", value_hint = ValueHint::Other)]
    pub namespace: Option<String>,

    /// Label selector, e.g. clusters.clusternet.io/cluster-id=<id>
    #[arg(short = 'l', long, value_name = "SELECTOR", value_hint = ValueHint::Other)]
    pub selector: Option<String>,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,

    /// Authenticate with the CI job's OIDC ID token for this audience instead of the context's user,
    /// as `gen --parent-auth oidc` does (with --oidc-token-env or --oidc-token-file as there)
    #[arg(long, value_name = "AUDIENCE", value_hint = ValueHint::Other)]
    pub oidc_audience: Option<String>,

    /// With --oidc-audience: the ID token is in this environment variable
    #[arg(long, value_name = "VAR", value_hint = ValueHint::Other, conflicts_with = "oidc_token_file", requires = "oidc_audience")]
    pub oidc_token_env: Option<String>,

    /// With --oidc-audience: the ID token is in this file
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, requires = "oidc_audience")]
    pub oidc_token_file: Option<PathBuf>,

    /// How long to wait for each request, e.g. 30s, 1m (plain numbers are seconds)
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
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
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub kubeconfig: Option<PathBuf>,

    /// Context to verify [default: current-context]
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other)]
    pub context: Option<String>,

    /// How long to wait for each request, e.g. 10s, 1m (plain numbers are seconds)
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub out: OutputArgs,

    /// Before writing, request the child's /version and /api through the proxy;
    /// on failure write nothing (unless --write-unverified)
    #[arg(long, help_heading = "Verification")]
    pub verify: bool,

    /// With --verify: write even when verification fails (with a warning)
    #[arg(long, requires = "verify", help_heading = "Verification")]
    pub write_unverified: bool,

    /// How long to wait for each request to the parent, e.g. 10s, 1m (plain numbers are seconds)
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout, help_heading = "Verification")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// How many clusters CMD runs on at once
    #[arg(long, value_name = "N", value_hint = ValueHint::Other, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..), help_heading = "Running")]
    pub parallel: u16,

    /// With several clusters: after the first failure start no more, and terminate the running ones
    #[arg(long, help_heading = "Running")]
    pub fail_fast: bool,

    /// Summary format: a table on stderr (several clusters), or one JSON line ending stdout (always,
    /// also when exec itself fails: then with "error")
    #[arg(short = 'o', long, value_enum, default_value_t = SummaryFormat::Table, help_heading = "Running")]
    pub output: SummaryFormat,

    /// Write each cluster's output to DIR/<cluster>/stdout and stderr (mode 0600) instead of tagging
    /// it, and the JSON summary to DIR/summary.json; DIR must be new or empty
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, help_heading = "Running")]
    pub results: Option<PathBuf>,

    /// How long to wait for each request to the parent, e.g. 10s, 1m (plain numbers are seconds)
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout, help_heading = "Running")]
    pub timeout: Duration,

    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD", value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Table,
    Json,
}

/// What `gen` and `exec` generate from: the parent, the child clusters, the
/// route and the credentials.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub parent_config: ParentConfigArgs,

    #[command(flatten)]
    pub targets: TargetArgs,

    #[command(flatten)]
    pub route: RouteArgs,

    #[command(flatten)]
    pub child: ChildCredentialArgs,

    #[command(flatten)]
    pub parent: ParentAuthArgs,

    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// The route through the hub to the child apiserver.
#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Child apiserver as the agent dials it: http(s)://host[:port][/path]
    /// [default: route `direct`, the URL the agent reported]
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub child_server: Option<String>,
}

/// `kubectl proxy`'s default `--accept-hosts`: loopback names only.
pub const DEFAULT_ACCEPT_HOSTS: &str = r"^localhost$,^127\.0\.0\.1$,^\[::1\]$";

/// With `--cluster-id` or `--cluster` the proxy generates its context from
/// `gen`'s flags; without them it reads a kubeconfig `gen` wrote, which holds
/// its credentials and route already: `gen`'s flags then require one of the
/// two, so that none is ever silently ignored (clap refuses, exit 2).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("generated_cluster").args(["cluster_id", "cluster"])))]
#[command(mut_group("RouteArgs", |g| g.requires("generated_cluster")))]
#[command(mut_group("ChildCredentialArgs", |g| g.requires("generated_cluster")))]
#[command(mut_group("ParentAuthArgs", |g| g.requires("generated_cluster")))]
#[command(mut_group("OidcArgs", |g| g.requires("generated_cluster")))]
pub struct ProxyArgs {
    #[command(flatten)]
    pub parent_config: ParentConfigArgs,

    /// Child cluster ID, as for gen [default: the child of the generated --kubeconfig]
    #[arg(long, value_name = "UUID", value_hint = ValueHint::Other, conflicts_with = "cluster", help_heading = "Child cluster")]
    pub cluster_id: Option<String>,

    /// ManagedCluster name, looked up on the parent, as for gen
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other, help_heading = "Child cluster")]
    pub cluster: Option<String>,

    /// Namespace of --cluster
    #[arg(short = 'n', long, value_name = "NAMESPACE", value_hint = ValueHint::Other, requires = "cluster", help_heading = "Child cluster")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub route: RouteArgs,

    #[command(flatten)]
    pub child: ChildCredentialArgs,

    /// Port to listen on (0 = a free port, printed on stdout)
    #[arg(short = 'p', long, default_value_t = 8001, help_heading = "Listening")]
    pub port: u16,

    /// IP address to listen on; one other than loopback needs --allow-remote
    #[arg(long, value_name = "IP", default_value = "127.0.0.1", help_heading = "Listening")]
    pub address: std::net::IpAddr,

    /// Confirm a non-loopback --address: whoever reaches it acts as the child identity
    #[arg(long, help_heading = "Listening")]
    pub allow_remote: bool,

    /// Listen on this Unix socket (created with mode 0600) instead of a port
    #[arg(short = 'u', long, value_name = "PATH", value_hint = ValueHint::FilePath, conflicts_with_all = ["port", "address"], help_heading = "Listening")]
    pub unix_socket: Option<PathBuf>,

    /// Hosts the proxy answers (the Host header without its port): comma-separated regular
    /// expressions, as kubectl proxy's; others get 403 (a web page could reach the proxy under
    /// a name of its own). An Origin header's host must match too
    #[arg(long, value_name = "REGEX,...", value_hint = ValueHint::Other, default_value = DEFAULT_ACCEPT_HOSTS, help_heading = "Listening")]
    pub accept_hosts: String,

    /// Write a kubeconfig for the proxy here (mode 0600, server http://127.0.0.1:<port>, no credentials)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, conflicts_with = "unix_socket", help_heading = "Listening")]
    pub write_kubeconfig: Option<PathBuf>,

    /// How long to wait to connect to the parent (and for gen's lookups), e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: Duration,

    #[command(flatten)]
    pub parent: ParentAuthArgs,

    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// The parent kubeconfig, shared by every subcommand that reads one.
#[derive(Debug, Args)]
pub struct ParentConfigArgs {
    /// Parent kubeconfig [default: the KUBECONFIG list, then ~/.kube/config]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub kubeconfig: Option<PathBuf>,

    /// Parent context to use [default: current-context]
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other)]
    pub context: Option<String>,
}

/// Which child clusters: by ID (offline), or looked up on the parent.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Child clusters")]
pub struct TargetArgs {
    /// Child cluster ID (a UUID; normalised to lower-case hyphenated form); repeatable with --credentials
    #[arg(long, value_name = "UUID", value_hint = ValueHint::Other, required_unless_present_any = ["cluster", "all"])]
    pub cluster_id: Vec<String>,

    /// ManagedCluster name, looked up on the parent; repeatable with --credentials
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other)]
    pub cluster: Vec<String>,

    /// Namespace of --cluster
    #[arg(short = 'n', long, value_name = "NAMESPACE", value_hint = ValueHint::Other)]
    pub namespace: Option<String>,

    /// Every ManagedCluster on the parent (one context each); needs --credentials or --child-credentials hub
    #[arg(long, conflicts_with_all = ["cluster_id", "cluster"])]
    pub all: bool,

    /// With --all: only ManagedClusters matching this label selector
    #[arg(short = 'l', long, value_name = "SELECTOR", value_hint = ValueHint::Other, requires = "all")]
    pub selector: Option<String>,

    /// YAML file with child credentials per cluster name, namespace/name or ID
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub credentials: Option<PathBuf>,

    /// Go on without the selected clusters that cannot be used (no entry in --credentials, no usable
    /// Secret with --child-credentials hub, a cluster ID that is not a UUID), each listed as skipped
    /// [default: they fail the run, and nothing is written or run]
    #[arg(long)]
    pub allow_skip: bool,

    /// Accepted for older scripts: failing on a cluster that cannot be used is the default
    #[arg(long, hide = true)]
    pub strict: bool,
}

/// What is generated and where it goes: `gen`'s alone (`exec` hands each
/// entry to its command, `proxy` forwards through it).
#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// One name for the generated cluster, user and context [default: clusternet-<cluster-id>]
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other)]
    pub name: Option<String>,

    /// With several clusters: leave current-context unset [default: the first named cluster's; --all sets none]
    #[arg(long)]
    pub no_current_context: bool,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,

    /// Write the kubeconfig to this file (mode 0600, atomically) instead of stdout ('-' = stdout)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, conflicts_with = "merge_into")]
    pub output_file: Option<PathBuf>,

    /// Replace an existing --output-file
    #[arg(long)]
    pub force: bool,

    /// Add or replace the generated entries in this kubeconfig (created if missing)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub merge_into: Option<PathBuf>,

    /// With --merge-into: make the generated context the current one
    #[arg(long, requires = "merge_into")]
    pub set_current_context: bool,

    /// With --output-file or --merge-into: print what would change (secrets redacted), write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// With --merge-into: how long to wait for `<file>.lock` held by kubectl or another writer, e.g. 10s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "10s", value_parser = parse_duration, requires = "merge_into")]
    pub lock_timeout: Duration,
}

/// Child credentials: exactly one source.
#[derive(Debug, Args)]
#[command(next_help_heading = "Child credentials (exactly one source)")]
pub struct ChildCredentialArgs {
    /// Child bearer token (prefer --token-file - or env CLUSTERNET_CHILD_TOKEN: argv is visible in `ps`)
    #[arg(long, value_name = "TOKEN", value_hint = ValueHint::Other)]
    pub token: Option<String>,

    /// File holding the child token ('-' = stdin); one trailing newline is trimmed
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub token_file: Option<PathBuf>,

    /// Child client certificate (PEM file)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, requires = "client_key")]
    pub client_certificate: Option<PathBuf>,

    /// Child client private key (PEM file, unencrypted)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, requires = "client_certificate")]
    pub client_key: Option<PathBuf>,

    /// Child client certificate, base64 of the PEM (as in a kubeconfig)
    #[arg(long, value_name = "B64", value_hint = ValueHint::Other, requires = "client_key_data")]
    pub client_certificate_data: Option<String>,

    /// Child client private key, base64 of the PEM (as in a kubeconfig)
    #[arg(long, value_name = "B64", value_hint = ValueHint::Other, requires = "client_certificate_data")]
    pub client_key_data: Option<String>,

    /// Take the child user's token or client certificate from this kubeconfig
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub child_kubeconfig: Option<PathBuf>,

    /// Context of --child-kubeconfig [default: its current-context]
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Other, requires = "child_kubeconfig")]
    pub child_context: Option<String>,

    /// hub: each child's token from the Secret child-cluster-deployer that Clusternet's agent
    /// stores in the ManagedCluster's namespace (the child's cluster-admin credential)
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub child_credentials: Option<ChildCredentialsFrom>,

    /// With the child credential, ask the child's TokenRequest API (through the proxy) for a
    /// token of this service account, and write only that token
    #[arg(long, value_name = "NAMESPACE/SERVICEACCOUNT", value_hint = ValueHint::Other)]
    pub child_token_request: Option<String>,

    /// Lifetime asked for with --child-token-request, e.g. 1h, 30m (at least 10m; the child may shorten it)
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "1h", value_parser = parse_duration, requires = "child_token_request")]
    pub child_token_ttl: Duration,
}

/// Where `--child-credentials` takes the child credentials from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChildCredentialsFrom {
    /// The Secret child-cluster-deployer on the parent, written by Clusternet's agent
    Hub,
}

/// How the generated kubeconfig authenticates to the parent apiserver.
#[derive(Debug, Args)]
#[command(next_help_heading = "Parent authentication")]
pub struct ParentAuthArgs {
    /// anonymous: username system:anonymous; token: a parent token; keep: the parent user's own credentials;
    /// oidc: the CI job's OIDC ID token, fetched when needed by an exec entry that runs this binary (no token
    /// in the file)
    #[arg(long, value_enum, default_value_t = ParentAuthMode::Anonymous)]
    pub parent_auth: ParentAuthMode,

    /// Parent token for --parent-auth token (or env CLUSTERNET_PARENT_TOKEN)
    #[arg(long, value_name = "TOKEN", value_hint = ValueHint::Other)]
    pub parent_token: Option<String>,

    /// File holding the parent token ('-' = stdin)
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub parent_token_file: Option<PathBuf>,

    /// With --parent-auth token and no token given: ask the TokenRequest API for
    /// a token of clusternet-hub-proxy instead of reading its Secret
    #[arg(long)]
    pub parent_token_request: bool,

    /// Lifetime of a --parent-token-request token, e.g. 1h, 30m, 3600s
    #[arg(long, value_name = "DURATION", value_hint = ValueHint::Other, default_value = "1h", value_parser = parse_duration, requires = "parent_token_request")]
    pub parent_token_ttl: Duration,

    /// Namespace of Clusternet's hub and its clusternet-hub-proxy service account
    #[arg(long, value_name = "NAMESPACE", value_hint = ValueHint::Other, default_value = "clusternet-system")]
    pub system_namespace: String,
}

/// Where the CI job's OIDC ID token comes from (`--parent-auth oidc`, and
/// `list` authenticated by it).
#[derive(Debug, Args)]
pub struct OidcArgs {
    /// With --parent-auth oidc: the audience of the ID token, as the parent's AuthenticationConfiguration
    /// expects it [token from the GitHub Actions token endpoint unless --oidc-token-env or --oidc-token-file]
    #[arg(long, value_name = "AUDIENCE", value_hint = ValueHint::Other)]
    pub oidc_audience: Option<String>,

    /// With --parent-auth oidc: the ID token is in this environment variable (GitLab id_tokens:, CircleCI,
    /// Buildkite), read again whenever the exec entry runs
    #[arg(long, value_name = "VAR", value_hint = ValueHint::Other, conflicts_with = "oidc_token_file")]
    pub oidc_token_env: Option<String>,

    /// With --parent-auth oidc: the ID token is in this file (a projected service-account token), read again
    /// whenever the exec entry runs
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub oidc_token_file: Option<PathBuf>,
}

/// A duration as kubectl takes them (Go's `time.ParseDuration`): `90s`, `1m30s`,
/// `500ms`, `1h`; a plain number is seconds, as this tool took before.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration; give e.g. 10s, 1m30s, 500ms or 1h (a plain number is seconds)");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| bad())?;
        rest = next;
    }
    if text.is_empty() { Err(bad()) } else { Ok(total) }
}

/// A request timeout: a duration of at least one millisecond.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(1) {
        return Err(format!("{text:?} is no time to wait; give e.g. 10s"));
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParentAuthMode {
    Anonymous,
    Token,
    Keep,
    Oidc,
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

/// The flags whose value is a credential: the only ones a credential-shaped
/// value is accepted for (see [`refuse_credentials`]).
pub const SECRET_FLAGS: [&str; 4] = ["token", "parent_token", "client_key_data", "client_certificate_data"];

/// Where a credential goes instead, said whenever one is found elsewhere.
const WHERE_SECRETS_GO: &str = "a child token goes in --token-file - (stdin) or env CLUSTERNET_CHILD_TOKEN, a parent token in --parent-token-file - or env CLUSTERNET_PARENT_TOKEN";

/// A value that looks like a credential (see [`crate::secret::credential_shape`])
/// given to a flag that takes a path, name, ID or URL, or as a stray argument:
/// a swapped pair of arguments, a variable expanded in the wrong place. The
/// error names the flag and the shape, never the value (CI logs keep stderr,
/// and most CI systems mask nothing). Checked on what clap makes of the line
/// with its own errors ignored, so that it comes before any of them (a
/// missing flag, a bad value) and covers every flag of every subcommand.
pub fn refuse_credentials(args: &[std::ffi::OsString]) -> Result<(), String> {
    use clap::CommandFactory as _;
    let command = Cli::command().ignore_errors(true);
    let Ok(matches) = command.clone().try_get_matches_from(args) else {
        return Ok(());
    };
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let Some(sub_command) = command.find_subcommand(name) else {
        return Ok(());
    };
    for arg in sub_command.get_arguments() {
        let id = arg.get_id().as_str();
        if SECRET_FLAGS.contains(&id) || arg.is_last_set() || !arg.get_action().takes_values() {
            continue;
        }
        let Ok(Some(values)) = sub.try_get_raw(id) else {
            continue;
        };
        for value in values {
            if let Some(shape) = crate::secret::credential_shape(&value.to_string_lossy()) {
                let flag = match (arg.get_long(), arg.get_short()) {
                    (Some(long), _) => format!("--{long}"),
                    (None, Some(short)) => format!("-{short}"),
                    (None, None) => format!("the argument <{}>", id.to_uppercase()),
                };
                let takes = match arg.get_value_names().and_then(|v| v.first()).map(|v| v.as_str()) {
                    Some(v @ ("UUID" | "URL" | "IP")) => format!("a {v}"),
                    Some(v) => format!("a {}", v.to_lowercase()),
                    None => "a value".into(),
                };
                return Err(format!(
                    "{flag} was given what looks like {shape}, not {takes}; it is not printed: check the order of the arguments; {WHERE_SECRETS_GO}"
                ));
            }
        }
    }
    Ok(())
}

/// clap's own error message with every credential-shaped argument replaced
/// by what it looks like ("unexpected argument '<a JWT, not shown>'", a bad
/// value of a flag): clap quotes the arguments it could not place.
pub fn redact_clap_error(rendered: &str, args: &[std::ffi::OsString]) -> String {
    let mut text = rendered.to_string();
    let mut redacted = false;
    for arg in args.iter().filter_map(|a| a.to_str()) {
        // `--flag=value` is quoted as a whole or by its value.
        let candidates = [Some(arg), arg.split_once('=').map(|(_, v)| v)];
        for value in candidates.into_iter().flatten() {
            if !value.is_empty() && text.contains(value) && crate::secret::credential_shape(value).is_some() {
                text = text.replace(value, &crate::secret::quote(value));
                redacted = true;
            }
        }
    }
    if redacted {
        let end = text.trim_end().len();
        text.truncate(end);
        text.push_str(&format!("\n\nnote: a value that looks like a credential is not printed; {WHERE_SECRETS_GO}\n"));
    }
    text
}
