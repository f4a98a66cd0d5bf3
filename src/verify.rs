//! `verify`: does a generated kubeconfig reach its child? The child's
//! `/version` and `/api` through the proxy, with the kubeconfig's own
//! credentials, and a diagnosis with a fix when not.

use anyhow::{Result, anyhow, bail};

use crate::cli::VerifyArgs;
use crate::cluster::{client, probe};
use crate::credentials;
use crate::kubeconfig::load::{self, ParentSource};
use crate::kubeconfig::select::{self, Selection};
use crate::route;

pub fn run(args: VerifyArgs) -> Result<()> {
    crate::error::refuse_dash("--kubeconfig", args.kubeconfig.as_deref())?;
    let source = load::parent_source_from_env(args.kubeconfig.as_deref()).map_err(|_| {
        anyhow!("no kubeconfig to verify: HOME is not set; pass --kubeconfig with the file `gen` wrote")
    })?;
    match &source {
        ParentSource::Home(path) if !path.exists() => bail!(
            "no kubeconfig to verify: {} does not exist and KUBECONFIG is not set; pass --kubeconfig with the file `gen` wrote",
            path.display()
        ),
        ParentSource::EnvList(paths) if !paths.iter().any(|p| p.exists()) => bail!(
            "no kubeconfig to verify: none of the files in KUBECONFIG exists ({}); pass --kubeconfig with the file `gen` wrote",
            load::describe_missing(paths)
        ),
        _ => {}
    }
    let loaded = crate::generate::load_parent(&source)?;
    let selection = select::select(&loaded, args.context.as_deref()).map_err(|e| e.naming("--context"))?;
    let context = selection.context_name.to_string();
    refuse_unrouted(&selection, &loaded.describe())?;
    let secrets = credentials::secrets_in(selection.user);
    let timeout = args.timeout;
    let kubeconfig = client::kubeconfig_for(&selection)?;
    let outcome = client::block_on(probe::probe(kubeconfig, &context, timeout, &secrets))??;
    match outcome {
        Ok(reached) => {
            println!(
                "context {context:?}: child cluster reachable, Kubernetes {} (/version {} ms, /api {} ms)",
                reached.git_version,
                reached.version_latency.as_millis(),
                reached.api_latency.as_millis()
            );
            Ok(())
        }
        Err(failed) => Err(anyhow!("{}", failed.describe(&context))),
    }
}

/// Only a socket-proxy route is verified: any other kubeconfig (the parent's
/// admin one, the child's own) answers /version too, and "reachable" would
/// then test nothing. Refused before any request.
pub fn refuse_unrouted(selection: &Selection, files: &str) -> Result<()> {
    let server = selection.cluster.server.as_deref().unwrap_or("");
    if route::socket_proxy(server).is_some() {
        return Ok(());
    }
    bail!(
        "context {:?} in {files} is not a generated Clusternet context: its server {server:?} is not a socket-proxy route (.../{}/<cluster-id>/proxy/...); pass --kubeconfig with the file `gen` wrote (and --context with its context)",
        selection.context_name,
        route::SOCKETS_PATH
    )
}
