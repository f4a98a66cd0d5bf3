//! `verify`: does a generated kubeconfig reach its child? The child's
//! `/version` and `/api` through the proxy, with the kubeconfig's own
//! credentials, and a diagnosis with a fix when not.


use anyhow::{Result, anyhow};

use crate::cli::VerifyArgs;
use crate::cluster::{client, probe};
use crate::credentials;
use crate::kubeconfig::{load, select};

pub fn run(args: VerifyArgs) -> Result<()> {
    let source = load::parent_source_from_env(args.kubeconfig.as_deref())?;
    let loaded = load::load_parent(&source)?;
    let selection = select::select(&loaded, args.context.as_deref(), "--context")?;
    let context = selection.context_name.to_string();
    let secrets = credentials::secrets_in(selection.user);
    let timeout = args.timeout;
    let kubeconfig = client::read_kubeconfig(&source)?;
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
