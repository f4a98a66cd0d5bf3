//! A long-running proxy renews the tokens it minted (`--child-token-request`,
//! `--parent-token-request`): a TokenRequest token expires (the cluster says
//! when, which may be sooner than the TTL asked), and without renewal every
//! request after that gets 401. Before the first expires, `gen`'s pipeline
//! runs again (minting both anew) and the upstream is swapped whole, for the
//! requests that follow.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, Timestamp};
use crate::cluster::client;
use crate::cluster::upstream::Target;
use crate::credentials::origin::CredentialOrigin;
use crate::generate;
use crate::trace;

use super::context::Context;

/// The share of a token's remaining lifetime after which it is renewed.
const RENEW_AT: f64 = 0.8;

/// The first wait after a failed renewal; doubled each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// When the tokens the pipeline minted expire.
#[derive(Debug, Clone, Copy, Default)]
pub struct Minted {
    child: Option<Timestamp>,
    parent: Option<Timestamp>,
}

impl Minted {
    /// What `produced` (one cluster) minted.
    pub fn of(produced: &generate::Produced) -> Minted {
        let child = produced.targets.first().and_then(|target| match &target.origin {
            CredentialOrigin::TokenRequest { expiration, .. } => Some(*expiration),
            _ => None,
        });
        Minted { child, parent: produced.parent_expiration }
    }

    /// When the first of them expires; `None` when nothing was minted.
    pub fn first(&self) -> Option<Timestamp> {
        self.child.into_iter().chain(self.parent).min()
    }

    fn trace_renewed(&self) {
        for (which, expires) in [("child", self.child), ("parent", self.parent)] {
            if let Some(expires) = expires {
                trace::line(|| format!("renewed {which} token, expires {}", clock::rfc3339(expires)));
            }
        }
    }

    fn named(&self) -> &'static str {
        match (self.child, self.parent) {
            (Some(_), Some(_)) => "the child and parent tokens",
            (None, Some(_)) => "the parent token",
            _ => "the child token",
        }
    }
}

/// Renews what was minted before the first of it expires, for ever (the
/// task is dropped with the proxy).
pub async fn minted(settings: Arc<generate::Shared>, context: Arc<Context>, mut minted: Minted, timeout: Duration) {
    while let Some(expires) = minted.first() {
        let left = clock::until(expires);
        tokio::time::sleep(left.mul_f64(RENEW_AT).max(Duration::from_secs(1))).await;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match renew_once(&settings, &context, timeout).await {
                Ok(next) => {
                    next.trace_renewed();
                    minted = next;
                    break;
                }
                Err(e) if clock::until(expires) > backoff => {
                    let what = minted.named();
                    trace::line(|| {
                        format!("renewing {what} failed, trying again in {}: {e:#}", clock::go_duration(backoff))
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    eprintln!(
                        "warning: {} could not be renewed before {} ({e:#}); requests through the proxy are refused from now: restart it",
                        minted.named(),
                        clock::rfc3339(expires)
                    );
                    return;
                }
            }
        }
    }
}

/// One run of the pipeline, and the upstream swapped; what it minted.
async fn renew_once(settings: &Arc<generate::Shared>, context: &Context, timeout: Duration) -> anyhow::Result<Minted> {
    let pipeline = settings.clone();
    // The pipeline runs its own runtime: on a thread of its own.
    let produced = tokio::task::spawn_blocking(move || generate::produce(&pipeline, None, generate::Verify::No))
        .await
        .map_err(|e| anyhow::anyhow!("the renewal stopped: {e}"))??;
    let Some(entry) = produced.entries.first() else {
        anyhow::bail!("no cluster matches any more");
    };
    let minted = Minted::of(&produced);
    let target = Target { kubeconfig: client::kubeconfig_of(entry)?, context: entry.name.clone() };
    let upstream = context.upstream().renewed(target, timeout).await?;
    context.replace_upstream(upstream);
    Ok(minted)
}
