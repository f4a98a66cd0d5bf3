//! A short-lived token from the child's TokenRequest API, asked for through
//! the socket proxy with a generated kubeconfig: the request authenticates to
//! the parent and impersonates `clusternet` with the child credential as user
//! extras, exactly as kubectl would with that kubeconfig, and the hub takes it
//! on to the child.
//!
//! One POST, never retried, bounded as a whole by `--timeout`: the hub's and
//! the aggregator's 503s (hub down, feature gate off, no apiserver URL) do
//! not pass by waiting, and a refused or failed request is diagnosed as
//! `verify` diagnoses a probe.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;

use super::client::{Retries, connect_with};
use super::diagnose::{self, Cause};
use super::{probe, transport};
use crate::credentials::origin::ChildTokenRequest;
use crate::credentials::{self, validate};
use crate::secret::Secret as SecretValue;
use crate::terminal::escape;

/// The token the child issued.
#[derive(Debug)]
pub struct Issued {
    pub token: SecretValue,
    /// `status.expirationTimestamp`.
    pub expiration: crate::clock::Timestamp,
}

/// Asks the child, through `context` of `kubeconfig` (a generated one), for a
/// token of `request.service_account` valid for `request.ttl`, within `timeout`.
pub async fn request(
    kubeconfig: Kubeconfig,
    context: &str,
    request: &ChildTokenRequest,
    timeout: Duration,
) -> Result<Issued> {
    let deadline = Instant::now() + timeout;
    let what = format!("TokenRequest for service account {} on the child", request.service_account);
    match tokio::time::timeout_at(deadline.into(), ask(kubeconfig, context, request, timeout, deadline, &what)).await {
        Ok(issued) => issued,
        Err(_) => Err(anyhow!(
            "{what} failed: no answer within --timeout ({}s): {}: {}",
            timeout.as_secs(),
            Cause::Timeout,
            Cause::Timeout.hint()
        )),
    }
}

async fn ask(
    kubeconfig: Kubeconfig,
    context: &str,
    request: &ChildTokenRequest,
    timeout: Duration,
    deadline: Instant,
    what: &str,
) -> Result<Issued> {
    let account = &request.service_account;
    let auth = probe::parent_auth_kind(&kubeconfig, context);
    let secrets = secrets_of(&kubeconfig, context);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let conn = connect_with(kubeconfig, Some(context), timeout, Retries::None).await?;
    let api: Api<ServiceAccount> = Api::namespaced(conn.client.clone(), &account.namespace);
    let body = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(request.ttl.as_secs() as i64), ..Default::default() },
        ..Default::default()
    };
    let status = match api.create_token_request(&account.name, &PostParams::default(), &body).await {
        Ok(answer) => answer.status.ok_or_else(|| anyhow!("{what}: the answer has no status"))?,
        Err(kube::Error::Api(status)) => {
            // The server's words, with every credential of the context cut
            // out (an impersonation 403 names the extra's value).
            let message = escape(&diagnose::server_message(&status.message, &secrets)).into_owned();
            let fix = match status.code {
                404 => {
                    format!("no service account {account} on the child: create it there, or fix --child-token-request")
                }
                403 => match diagnose::from_response(403, &message, auth, None) {
                    // The child refuses the token.
                    Cause::ChildForbidden => format!(
                        "the child credential may not create tokens for {account}: it needs `create` on `serviceaccounts/token` in namespace {} on the child",
                        account.namespace
                    ),
                    // The parent refuses the impersonation itself.
                    cause => format!("{cause}: {}", cause.hint()),
                },
                code => {
                    let parent_accepts = if code == 401 { probe::parent_accepts(&conn, deadline).await } else { None };
                    let cause = diagnose::from_response(code, &message, auth, parent_accepts);
                    format!("{cause}: {}", cause.hint())
                }
            };
            bail!("{what} failed: HTTP {} ({message}): {fix}", status.code);
        }
        Err(other) => {
            let line = crate::redact::text(&transport::describe(&other), &secrets).into_owned();
            bail!("{what} failed: {}", escape(&line));
        }
    };
    if status.token.is_empty() {
        bail!("{what} returned no token");
    }
    let token = validate::token(&status.token, &format!("the token the child issued for {account}"))?;
    Ok(Issued { token, expiration: status.expiration_timestamp.0 })
}

/// Every string of `context`'s user entry that may be a secret (parent
/// token, client key, the child credential in the impersonated extras), as
/// `verify` collects them: what no message may repeat.
fn secrets_of(kubeconfig: &Kubeconfig, context: &str) -> Vec<String> {
    // kube writes its secrets out when serialized, in the kubeconfig's own keys.
    match probe::user_of(kubeconfig, context).map(serde_yaml::to_value) {
        Some(Ok(serde_yaml::Value::Mapping(user))) => credentials::secrets_in(&user),
        _ => Vec::new(),
    }
}
