//! `proxy`'s edge: raw flags and the environment become [`Settings`]. Every
//! usage error is found here, before any file is read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::filter::AcceptHosts;
use crate::cli::{ProxyArgs, SourceArgs, TargetArgs};
use crate::error::{refuse_dash, usage};
use crate::generate;
use crate::kubeconfig::load::{self, ParentSource};

/// Where the upstream comes from.
#[derive(Debug)]
pub enum Source {
    /// A kubeconfig `gen` wrote, and the context to use (default: its current one).
    Generated { kubeconfig: ParentSource, context: Option<String> },
    /// `gen`'s pipeline, run in memory for one cluster.
    Gen(Box<generate::Shared>),
}

/// Where the proxy listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug)]
pub struct Settings {
    pub source: Source,
    pub listen: Listen,
    pub write_kubeconfig: Option<PathBuf>,
    /// Connecting to the parent (and `gen`'s lookups).
    pub timeout: Duration,
    pub accept_hosts: AcceptHosts,
}

impl Settings {
    pub fn resolve(args: ProxyArgs, env: generate::Env) -> Result<Settings> {
        refuse_dash("--write-kubeconfig", args.write_kubeconfig.as_deref())?;
        refuse_dash("--unix-socket", args.unix_socket.as_deref())?;
        let listen = listen(&args)?;
        let accept_hosts = AcceptHosts::parse(&args.accept_hosts)
            .map_err(|why| usage(format!("--accept-hosts {:?}: {why}", args.accept_hosts)))?;
        let (write_kubeconfig, timeout) = (args.write_kubeconfig.clone(), args.timeout);
        let source = if args.cluster_id.is_some() || args.cluster.is_some() {
            Source::Gen(Box::new(generate::Shared::resolve(shared_args(args), timeout, env)?))
        } else {
            // gen's flags need --cluster-id or --cluster: clap refuses them here.
            refuse_dash("--kubeconfig", args.parent_config.kubeconfig.as_deref())?;
            let kubeconfig = load::parent_source(args.parent_config.kubeconfig.as_deref(), env.kubeconfig, env.home)?;
            Source::Generated { kubeconfig, context: args.parent_config.context.clone() }
        };
        Ok(Settings { source, listen, write_kubeconfig, timeout, accept_hosts })
    }
}

fn listen(args: &ProxyArgs) -> Result<Listen> {
    if let Some(path) = &args.unix_socket {
        if cfg!(unix) {
            return Ok(Listen::Unix(path.clone()));
        }
        return Err(usage("--unix-socket needs a Unix system; use --port"));
    }
    if !args.address.is_loopback() && !args.allow_remote {
        return Err(usage(format!(
            "--address {} is reachable from other machines, and whoever reaches the proxy acts as the child identity; pass --allow-remote to confirm, or leave --address out (127.0.0.1)",
            args.address
        )));
    }
    Ok(Listen::Tcp(SocketAddr::new(args.address, args.port)))
}

/// The shared flags for the one cluster of the proxy: by ID or by name, as
/// for `gen`; nothing else of `gen`'s selection is in proxy's flags.
fn shared_args(args: ProxyArgs) -> SourceArgs {
    SourceArgs {
        parent_config: args.parent_config,
        targets: TargetArgs {
            cluster_id: args.cluster_id.into_iter().collect(),
            cluster: args.cluster.into_iter().collect(),
            namespace: args.namespace,
            ..TargetArgs::default()
        },
        route: args.route,
        child: args.child,
        parent: args.parent,
        oidc: args.oidc,
    }
}
