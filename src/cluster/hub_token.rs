//! The parent token of the `clusternet-hub-proxy` service account, the
//! identity Clusternet's socket-proxy RBAC is bound to: from its token Secret,
//! or from the TokenRequest API.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};

use super::client::{Connection, api_error};
use crate::clock::Timestamp;
use crate::credentials::validate;
use crate::secret::Secret as SecretValue;

/// The service account whose token the hub's docs hand to users.
pub const SERVICE_ACCOUNT: &str = "clusternet-hub-proxy";
const SA_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// The token from the Secret in `namespace` annotated with the service account
/// `clusternet-hub-proxy`, or `None` when there is no such Secret.
pub async fn from_secret(conn: &Connection, namespace: &str) -> Result<Option<SecretValue>> {
    let api: Api<Secret> = Api::namespaced(conn.client.clone(), namespace);
    // The field selector narrows to token Secrets on the server; the
    // annotation is checked here, as the docs' jsonpath does.
    let params = ListParams::default().fields("type=kubernetes.io/service-account-token");
    let list = api
        .list(&params)
        .await
        .map_err(|e| api_error(e, &conn.context, &format!("listing Secrets in namespace {namespace:?}")))?;
    let mut annotated: Vec<Secret> = list
        .items
        .into_iter()
        .filter(|s| {
            s.metadata.annotations.as_ref().and_then(|a| a.get(SA_ANNOTATION)).is_some_and(|n| n == SERVICE_ACCOUNT)
        })
        .collect();
    // Anyone who may create Secrets in the namespace can plant one with the
    // annotation: with two, which holds the hub's token is not ours to guess.
    if annotated.len() > 1 {
        let mut names: Vec<String> = annotated.iter().map(|s| s.metadata.name.clone().unwrap_or_default()).collect();
        names.sort();
        bail!(
            "{} Secrets in namespace {namespace:?} on context {:?} are annotated for service account {SERVICE_ACCOUNT} ({}); which one holds its token is not clear: delete the one(s) that do not belong, or pass --parent-token-request (a fresh token from the TokenRequest API) or --parent-token-file",
            names.len(),
            conn.context,
            names.join(", ")
        );
    }
    let Some(secret) = annotated.pop() else {
        return Ok(None);
    };
    let name = secret.metadata.name.clone().unwrap_or_default();
    let origin = format!("token of Secret {namespace}/{name}");
    let token = token_of(&secret, &origin)?.ok_or_else(|| {
        anyhow!("{origin} is empty: the token controller has not filled it yet; retry, or use --parent-token-request")
    })?;
    Ok(Some(token))
}

/// The `token` key of a Secret, checked as a bearer token (`origin` names it
/// in errors); `None` when the key is missing or empty, which each caller
/// explains in its own words.
pub(super) fn token_of(secret: &Secret, origin: &str) -> Result<Option<SecretValue>> {
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get("token")).filter(|b| !b.0.is_empty()) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes.0).map_err(|_| anyhow!("{origin} is not UTF-8"))?;
    Ok(Some(validate::token(text, origin)?))
}

/// The fix when the service account is not where we looked.
fn no_account_hint(namespace: &str) -> String {
    format!(
        "no service account {SERVICE_ACCOUNT} in namespace {namespace:?}: pass --system-namespace with the namespace of clusternet-hub, or --parent-token-file"
    )
}

/// A fresh token for the service account from the TokenRequest API.
/// The token and when it expires (the answer's `expirationTimestamp`).
pub async fn request(conn: &Connection, namespace: &str, ttl: Duration) -> Result<(SecretValue, Timestamp)> {
    let api: Api<ServiceAccount> = Api::namespaced(conn.client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(ttl.as_secs() as i64), ..Default::default() },
        ..Default::default()
    };
    let answer = api.create_token_request(SERVICE_ACCOUNT, &PostParams::default(), &request).await.map_err(|e| {
        match e {
            // Not "is Clusternet installed (its CRDs)": the namespace or the account is missing.
            kube::Error::Api(status) if status.code == 404 => anyhow!(
                "TokenRequest for {namespace}/{SERVICE_ACCOUNT} in context {:?} failed: 404 {}: {}",
                conn.context,
                status.message.replace('\n', " "),
                no_account_hint(namespace)
            ),
            e => api_error(e, &conn.context, &format!("TokenRequest for {namespace}/{SERVICE_ACCOUNT}")),
        }
    })?;
    let Some(status) = answer.status.filter(|s| !s.token.is_empty()) else {
        bail!("TokenRequest for {namespace}/{SERVICE_ACCOUNT} returned no token");
    };
    Ok((validate::token(&status.token, "the requested token")?, status.expiration_timestamp.0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn missing_account_hint_names_the_flags() {
        let hint = super::no_account_hint("clusternet-sys");
        assert!(hint.contains("\"clusternet-sys\"") && hint.contains("--system-namespace"), "{hint}");
    }
}
