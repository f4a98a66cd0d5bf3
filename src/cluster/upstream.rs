//! `proxy`'s side towards the parent: a kube client for one generated
//! context, so that every request carries what the generated kubeconfig
//! says, encoded as client-go encodes it (parent credentials, `Impersonate-User`,
//! `Impersonate-Extra-<key>` with the key percent-escaped) and goes to the
//! context's server, socket-proxy path included.

use std::time::Duration;

use anyhow::{Result, anyhow};
use kube::config::Kubeconfig;

use super::{client, tls, transport};

/// Where `proxy` forwards to: one context of a generated kubeconfig (read
/// from a file, or built in memory by `gen`'s pipeline).
pub struct Target {
    pub kubeconfig: Kubeconfig,
    pub context: String,
}

/// The connected upstream.
pub struct Upstream {
    client: kube::Client,
    /// The context's server, without user info, for messages.
    pub server: String,
}

impl Upstream {
    /// A client for `target`; `connect_timeout` bounds each connection to the parent.
    pub async fn connect(target: Target, connect_timeout: Duration) -> Result<Upstream> {
        let (mut config, context) = client::config(target.kubeconfig, Some(&target.context)).await?;
        config.connect_timeout = Some(connect_timeout);
        // A watch or `logs -f` may stay quiet for minutes: no read or write timeout.
        config.read_timeout = None;
        config.write_timeout = None;
        // The client gets the parent's first answer: retrying a POST is not the proxy's call.
        config.default_retry = false;
        let server = crate::route::without_userinfo(&config.cluster_url.to_string());
        tls::install_provider();
        let client = kube::Client::try_from(config)
            .map_err(|e| anyhow!("context {context:?}: {}", tls::client_setup_error(&e)))?;
        Ok(Upstream { client, server })
    }

    /// Sends `request` (its URI is path and query only: the context's server
    /// and path prefix are put in front). The answer streams; an error below
    /// HTTP comes back as one line with the cause and the fix.
    pub async fn send(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<kube::client::Body>, String> {
        let request = request.map(kube::client::Body::from);
        self.client.send(request).await.map_err(|e| transport::describe(&e))
    }
}
