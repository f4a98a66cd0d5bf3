//! The child credential Clusternet keeps on the parent: clusternet-agent
//! stores the token of the child's `clusternet-app-deployer` service account
//! (bound to cluster-admin on the child) in the Secret `child-cluster-deployer`
//! of the cluster's dedicated namespace, for the hub's own deployers.

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::client::{Connection, api_error};
use super::hub_token::token_of;
use super::managed::CLUSTER_ID_LABEL;
use crate::names::ObjectRef;
use crate::secret::Secret as SecretValue;

/// The Secret's name, the same in every cluster namespace.
pub const SECRET_NAME: &str = "child-cluster-deployer";
/// Whose token the Secret holds, on the child (bound to cluster-admin there).
pub const CHILD_NAMESPACE: &str = "clusternet-system";
pub const CHILD_SERVICE_ACCOUNT: &str = "clusternet-app-deployer";

/// What the Secret of one cluster holds.
#[derive(Debug, Clone)]
pub enum Held {
    Token(SecretValue),
    /// No such Secret: the agent has not registered (yet), or it was deleted.
    Missing,
    /// The Secret has no token, or an empty one.
    EmptyToken,
    /// The Secret is labelled for another cluster ID: not this cluster's.
    OtherCluster(String),
}

/// The Secret [`SECRET_NAME`] in `namespace`.
pub fn secret_ref(namespace: &str) -> ObjectRef {
    ObjectRef { namespace: namespace.to_string(), name: SECRET_NAME.to_string() }
}

/// Reads the Secret of the cluster `cluster_id` in `namespace` (one GET). A
/// refusal or a failed request is an error; a Secret that is not there or not
/// usable is a [`Held`] for the caller to skip or report.
pub async fn read(conn: &Connection, namespace: &str, cluster_id: &str) -> Result<Held> {
    let api: Api<Secret> = Api::namespaced(conn.client.clone(), namespace);
    let secret = secret_ref(namespace);
    let found = api.get_opt(SECRET_NAME).await.map_err(|e| match e {
        kube::Error::Api(status) if status.code == 403 => anyhow::anyhow!(
            "reading Secret {secret} in context {:?} is forbidden ({}): this parent user needs `get` on `secrets` named {SECRET_NAME} in namespace {namespace} on the parent to use the child credential the hub holds (a Role with resourceNames: [{SECRET_NAME}], bound to this user)",
            conn.context,
            status.message.replace('\n', " ")
        ),
        e => api_error(e, &conn.context, &format!("reading Secret {secret}")),
    })?;
    let Some(found) = found else {
        return Ok(Held::Missing);
    };
    let label = found.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_ID_LABEL));
    if let Some(other) = label.filter(|l| l.as_str() != cluster_id) {
        return Ok(Held::OtherCluster(other.clone()));
    }
    Ok(match token_of(&found, &format!("token of Secret {secret}"))? {
        Some(token) => Held::Token(token),
        None => Held::EmptyToken,
    })
}
