//! A long-running proxy renews the child token it minted
//! (`--child-token-request`): a TokenRequest token expires (the child says
//! when, which may be sooner than the TTL asked), and without renewal every
//! request after that gets 401. Before it expires, `gen`'s pipeline runs
//! again and the upstream is swapped whole, for the requests that follow.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cluster::client;
use crate::cluster::upstream::Target;
use crate::credentials::origin::{self, CredentialOrigin};
use crate::generate;
use crate::trace;

use super::server;

/// The share of a token's remaining lifetime after which it is renewed.
const RENEW_AT: f64 = 0.8;

/// The first wait after a failed renewal; doubled each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// When the child token of a generated entry expires, if the pipeline minted it.
pub fn minted_expiry(target: &generate::targets::Target) -> Option<SystemTime> {
    match &target.origin {
        CredentialOrigin::TokenRequest { expiration, .. } => Some(*expiration),
        _ => None,
    }
}

/// Renews the child token before `expires`, for ever (the task is dropped with the proxy).
pub async fn child_token(
    settings: Arc<generate::Settings>,
    context: Arc<server::Context>,
    mut expires: SystemTime,
    timeout: Duration,
) {
    loop {
        let left = expires.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(left.mul_f64(RENEW_AT).max(Duration::from_secs(1))).await;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match renew_once(&settings, &context, timeout).await {
                Ok(next) => {
                    trace::line(|| format!("renewed child token, expires {}", origin::rfc3339(next)));
                    expires = next;
                    break;
                }
                Err(e) if SystemTime::now() + backoff < expires => {
                    trace::line(|| {
                        format!("renewing the child token failed, trying again in {}: {e:#}", origin::human(backoff))
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    eprintln!(
                        "warning: the child token could not be renewed before it expired at {} ({e:#}); requests through the proxy are refused from now: restart it",
                        origin::rfc3339(expires)
                    );
                    return;
                }
            }
        }
    }
}

/// One run of the pipeline, and the upstream swapped; when the new token expires.
async fn renew_once(
    settings: &Arc<generate::Settings>,
    context: &server::Context,
    timeout: Duration,
) -> anyhow::Result<SystemTime> {
    let pipeline = settings.clone();
    // The pipeline runs its own runtime: on a thread of its own.
    let produced = tokio::task::spawn_blocking(move || generate::produce(&pipeline))
        .await
        .map_err(|e| anyhow::anyhow!("the renewal stopped: {e}"))??;
    let (Some(entry), Some(target)) = (produced.entries.first(), produced.targets.first()) else {
        anyhow::bail!("no cluster matches any more");
    };
    let expires = minted_expiry(target).ok_or_else(|| anyhow::anyhow!("no token was minted"))?;
    let target = Target { kubeconfig: client::kubeconfig_of(entry)?, context: entry.name.clone() };
    let upstream = context.upstream().renewed(target, timeout).await?;
    context.replace_upstream(upstream);
    Ok(expires)
}
