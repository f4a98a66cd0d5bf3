//! A short-lived token from the child's TokenRequest API, asked for through
//! the socket proxy with a generated kubeconfig: the request authenticates to
//! the parent and impersonates `clusternet` with the child credential as user
//! extras, exactly as kubectl would with that kubeconfig, and the hub takes it
//! on to the child.

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;

use super::client::connect;
use super::transport;
use crate::credentials::origin::ChildTokenRequest;
use crate::credentials::validate;
use crate::secret::Secret as SecretValue;

/// The token the child issued.
#[derive(Debug)]
pub struct Issued {
    pub token: SecretValue,
    /// `status.expirationTimestamp`.
    pub expiration: SystemTime,
}

/// Asks the child, through `context` of `kubeconfig` (a generated one), for a
/// token of `request.service_account` valid for `request.ttl`.
pub async fn request(
    kubeconfig: Kubeconfig,
    context: &str,
    request: &ChildTokenRequest,
    timeout: Duration,
) -> Result<Issued> {
    let account = &request.service_account;
    let conn = connect(kubeconfig, Some(context), timeout).await?;
    let api: Api<ServiceAccount> = Api::namespaced(conn.client.clone(), &account.namespace);
    let body = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(request.ttl.as_secs() as i64), ..Default::default() },
        ..Default::default()
    };
    let what = format!("TokenRequest for service account {account} on the child");
    let answer =
        api.create_token_request(&account.name, &PostParams::default(), &body).await.map_err(|e| match e {
            kube::Error::Api(status) => {
                let message = status.message.replace('\n', " ");
                let fix = match status.code {
                    404 => format!(
                        "no service account {account} on the child: create it there, or fix --child-token-request"
                    ),
                    // The parent refuses the impersonation itself; the child refuses the token.
                    403 if message.contains("impersonate") => {
                        "the parent refused the impersonation of clusternet: check Clusternet's socket-proxy RBAC"
                            .to_string()
                    }
                    403 => format!(
                        "the child credential may not create tokens for {account}: it needs `create` on `serviceaccounts/token` in namespace {} on the child",
                        account.namespace
                    ),
                    401 => "the child rejected the child credential: give a valid one".to_string(),
                    _ => "see the message from the server".to_string(),
                };
                anyhow!("{what} failed: {} {message}: {fix}", status.code)
            }
            other => anyhow!("{what} failed: {}", transport::describe(&other)),
        })?;
    let status = answer.status.ok_or_else(|| anyhow!("{what}: the answer has no status"))?;
    if status.token.is_empty() {
        bail!("{what} returned no token");
    }
    let token = validate::token(&status.token, &format!("the token the child issued for {account}"))?;
    Ok(Issued { token, expiration: SystemTime::from(status.expiration_timestamp.0) })
}
