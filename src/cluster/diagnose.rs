//! What a failed request through the socket proxy means (contract §5), and the
//! one-line fix. Pure: a status code and a body in, a diagnosis out.

use std::fmt;

/// Why a request through the proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    AnonymousDisabled,
    ParentCredentialsRejected,
    ChildCredentialsRejected,
    ChildForbidden,
    RbacMissing,
    ExtraRefused,
    FeatureGateOff,
    UnknownClusterId,
    AgentDisconnected,
    NoApiserverUrl,
    InvalidKeyPair,
    RedirectBlocked,
    ApiServiceMissing,
    ApiServiceUnavailable,
    Tls,
    Connect,
    Timeout,
    Unexpected,
}

impl Cause {
    /// The fix, in one line.
    pub fn hint(self) -> &'static str {
        match self {
            Cause::AnonymousDisabled => {
                "anonymous auth is disabled on the parent: regenerate with --parent-auth token (the clusternet-hub-proxy token) or --parent-auth keep"
            }
            Cause::ParentCredentialsRejected => {
                "the parent rejected the kubeconfig's parent credentials: refresh the parent token or certificate and regenerate"
            }
            Cause::ChildCredentialsRejected => {
                "the child cluster rejected the child credentials (401 from the child): give a valid child token or certificate"
            }
            Cause::ChildForbidden => {
                "the child cluster authenticated the child identity but forbids the request (403 from the child): grant it RBAC in the child"
            }
            Cause::RbacMissing => {
                "the parent does not allow this identity to use sockets/proxy or impersonate clusternet: apply Clusternet's RBAC (ClusterRole clusternet:system:socketsproxy and its binding)"
            }
            Cause::ExtraRefused => {
                "the parent refused to impersonate a user extra: only clusternet-token, clusternet-certificate and clusternet-privatekey are allowed by Clusternet's RBAC"
            }
            Cause::FeatureGateOff => {
                "clusternet-hub runs without the SocketConnection feature gate: start it with --feature-gates=SocketConnection=true"
            }
            Cause::UnknownClusterId => {
                "no ManagedCluster carries this cluster ID on this parent: check the ID (exact, lower-case) with `clusternet-kubeconfig list`"
            }
            Cause::AgentDisconnected => {
                "the child's clusternet-agent is not connected to the hub: check the agent in the child cluster"
            }
            Cause::NoApiserverUrl => {
                "the agent has not reported status.apiserverURL: wait for it, or regenerate with --child-server https://<child apiserver>"
            }
            Cause::InvalidKeyPair => {
                "the hub could not pair the client certificate and key: give the key that belongs to the certificate"
            }
            Cause::RedirectBlocked => {
                "the parent blocks redirects from the hub: start kube-apiserver with --aggregator-reject-forwarding-redirect=false"
            }
            Cause::ApiServiceMissing => {
                "the parent does not serve proxies.clusternet.io: register APIService v1alpha1.proxies.clusternet.io (is clusternet-hub installed?)"
            }
            Cause::ApiServiceUnavailable => {
                "the APIService v1alpha1.proxies.clusternet.io is unavailable: check that clusternet-hub is running (`kubectl get apiservice v1alpha1.proxies.clusternet.io`)"
            }
            Cause::Tls => {
                "TLS with the parent failed: check the cluster's certificate-authority-data and tls-server-name"
            }
            Cause::Connect => "the parent apiserver cannot be reached: check the server address and the network",
            Cause::Timeout => "no answer in time: check the network, or raise --timeout",
            Cause::Unexpected => "unexpected answer: see the message from the server",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Cause::AnonymousDisabled => "anonymous auth disabled",
            Cause::ParentCredentialsRejected => "parent credentials rejected",
            Cause::ChildCredentialsRejected => "child credentials rejected",
            Cause::ChildForbidden => "child forbids the request",
            Cause::RbacMissing => "Clusternet RBAC missing",
            Cause::ExtraRefused => "user extra refused",
            Cause::FeatureGateOff => "SocketConnection feature gate off",
            Cause::UnknownClusterId => "unknown cluster ID",
            Cause::AgentDisconnected => "agent disconnected",
            Cause::NoApiserverUrl => "no apiserver URL",
            Cause::InvalidKeyPair => "invalid key pair",
            Cause::RedirectBlocked => "redirect blocked",
            Cause::ApiServiceMissing => "APIService missing",
            Cause::ApiServiceUnavailable => "APIService unavailable",
            Cause::Tls => "TLS error",
            Cause::Connect => "connection failed",
            Cause::Timeout => "timeout",
            Cause::Unexpected => "unexpected answer",
        };
        f.write_str(text)
    }
}

/// How the parent authenticates the request: a 401 means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentAuthKind {
    Anonymous,
    Credentials,
}

/// Where a 401 came from, when a second probe of the parent's own `/version`
/// could tell (`Some(true)`: the parent accepts these credentials).
pub type ParentAccepts = Option<bool>;

/// Maps an HTTP answer to its cause.
pub fn from_response(status: u16, message: &str, auth: ParentAuthKind, parent_accepts: ParentAccepts) -> Cause {
    let m = message.to_ascii_lowercase();
    match status {
        401 => match (parent_accepts, auth) {
            (Some(true), _) => Cause::ChildCredentialsRejected,
            (_, ParentAuthKind::Anonymous) => Cause::AnonymousDisabled,
            (_, ParentAuthKind::Credentials) => Cause::ParentCredentialsRejected,
        },
        403 if m.contains("userextras") => Cause::ExtraRefused,
        // The parent's refusals name impersonation or the sockets/proxy resource;
        // any other 403 came back from the child through the hub.
        403 if m.contains("impersonate") || m.contains("sockets") || m.contains("proxies.clusternet.io") => {
            Cause::RbacMissing
        }
        403 => Cause::ChildForbidden,
        400 if m.contains("no cluster id is") => Cause::UnknownClusterId,
        400 if m.contains("agent is disconnected") => Cause::AgentDisconnected,
        400 if m.contains("invalid key pair") => Cause::InvalidKeyPair,
        503 if m.contains("featuregate socketconnection") => Cause::FeatureGateOff,
        503 if m.contains("cannot retrieve valid apiserver url") => Cause::NoApiserverUrl,
        _ if m.contains("redirect") => Cause::RedirectBlocked,
        300..=399 => Cause::RedirectBlocked,
        404 if m.contains("page not found")
            || m.contains("the server could not find the requested resource")
            || m.is_empty() =>
        {
            Cause::ApiServiceMissing
        }
        503 if m.contains("service unavailable") || m.contains("unavailable") || m.contains("no endpoints") => {
            Cause::ApiServiceUnavailable
        }
        _ => Cause::Unexpected,
    }
}

/// Maps a transport error (its full cause chain, as text) to its cause.
pub fn from_transport(chain: &str) -> Cause {
    let c = chain.to_ascii_lowercase();
    if c.contains("certificate") || c.contains("unknownissuer") || c.contains("tls") || c.contains("handshake") {
        Cause::Tls
    } else if c.contains("timed out") || c.contains("elapsed") || c.contains("timeout") {
        Cause::Timeout
    } else {
        Cause::Connect
    }
}

/// The message of a Kubernetes `Status` body, or the body's first line;
/// short, one line, with every known secret replaced: an impersonation 403
/// names the extra's *value* as the resource name.
pub fn server_message(body: &str, secrets: &[&str]) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string());
    let mut message = redact(&message, secrets);
    if message.chars().count() > 240 {
        message = message.chars().take(240).collect::<String>() + "…";
    }
    message.replace(['\n', '\r'], " ")
}

/// Replaces each non-empty secret in `text` by `<redacted>`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParentAuthKind::*;

    #[test]
    fn hub_errors_map_to_their_causes() {
        let id = "dc91021d-2361-4f6d-a404-7c33b9e01118";
        let cases = [
            (400, format!("no cluster id is {id}"), Cause::UnknownClusterId),
            (400, format!("cannot proxy through cluster {id}, whose agent is disconnected"), Cause::AgentDisconnected),
            (503, format!("cannot retrieve valid apiserver url for cluster {id}"), Cause::NoApiserverUrl),
            (503, "featuregate SocketConnection has not been enabled on the server side".into(), Cause::FeatureGateOff),
            (400, "invalid key pair in header".into(), Cause::InvalidKeyPair),
            (
                403,
                "users \"clusternet\" is forbidden: User \"system:anonymous\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope".into(),
                Cause::RbacMissing,
            ),
            (
                403,
                "userextras.authentication.k8s.io \"x\" is forbidden: User \"system:anonymous\" cannot impersonate resource \"userextras/other\"".into(),
                Cause::ExtraRefused,
            ),
            (404, "the server could not find the requested resource".into(), Cause::ApiServiceMissing),
            (503, "service unavailable".into(), Cause::ApiServiceUnavailable),
            (502, "the backend attempted to redirect this request, which is not permitted".into(), Cause::RedirectBlocked),
            (
                403,
                "sockets.proxies.clusternet.io \"x\" is forbidden: User \"system:anonymous\" cannot get resource \"sockets/proxy\" in API group \"proxies.clusternet.io\"".into(),
                Cause::RbacMissing,
            ),
            (
                403,
                "forbidden: User \"system:serviceaccount:child-only:lab-reader\" cannot get path \"/version\"".into(),
                Cause::ChildForbidden,
            ),
            (418, "teapot".into(), Cause::Unexpected),
        ];
        for (status, message, cause) in cases {
            assert_eq!(from_response(status, &message, Anonymous, None), cause, "{message}");
        }
    }

    #[test]
    fn unauthorized_depends_on_who_said_it() {
        assert_eq!(from_response(401, "Unauthorized", Anonymous, Some(false)), Cause::AnonymousDisabled);
        assert_eq!(from_response(401, "Unauthorized", Credentials, Some(false)), Cause::ParentCredentialsRejected);
        assert_eq!(from_response(401, "Unauthorized", Anonymous, Some(true)), Cause::ChildCredentialsRejected);
    }

    #[test]
    fn server_messages_are_short_one_line_and_redacted() {
        let body = r#"{"kind":"Status","message":"cannot impersonate resource \"userextras/clusternet-token\" named \"SECRET-tok\""}"#;
        assert_eq!(
            server_message(body, &["SECRET-tok"]),
            "cannot impersonate resource \"userextras/clusternet-token\" named \"<redacted>\""
        );
        assert_eq!(server_message("\nplain text\nsecond", &[]), "plain text");
        assert!(server_message(&"x".repeat(1000), &[]).chars().count() <= 241);
    }

    #[test]
    fn transport_errors() {
        assert_eq!(from_transport("invalid peer certificate: UnknownIssuer"), Cause::Tls);
        assert_eq!(from_transport("tcp connect error: Connection refused (os error 111)"), Cause::Connect);
        assert_eq!(from_transport("operation timed out"), Cause::Timeout);
    }
}
