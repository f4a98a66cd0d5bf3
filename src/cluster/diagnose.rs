//! What a failed request through the socket proxy means, and the one-line
//! fix. Pure: a status code and a body (or a failure below HTTP) in, a
//! diagnosis out. The server words
//! matched here are those of kube-apiserver, its aggregator and
//! clusternet-hub v0.18.1 (with its agent), as observed on loopback.

use std::fmt;

use super::transport::Failure;

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
    NoSocketSession,
    NoApiserverUrl,
    InvalidKeyPair,
    InvalidCertificate,
    ChildUnreachable,
    SchemeMismatch,
    MalformedRoute,
    Redirected,
    RedirectBlocked,
    ApiServiceMissing,
    ApiServiceUnavailable,
    HubUnreachable,
    TooLarge,
    Tls,
    Connect,
    Timeout,
    Unexpected,
}

impl Cause {
    /// The cause in a few words, then the fix in one line. The two are
    /// printed one after the other, so the fix never repeats the cause.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Cause::AnonymousDisabled => (
                "anonymous auth disabled",
                "the parent refuses anonymous requests: regenerate with --parent-auth token (the clusternet-hub-proxy token) or --parent-auth keep",
            ),
            Cause::ParentCredentialsRejected => (
                "parent credentials rejected",
                "the parent rejected the kubeconfig's parent credentials: refresh the parent token or certificate and regenerate",
            ),
            Cause::ChildCredentialsRejected => (
                "child credentials rejected",
                "the child cluster refused them (401 from the child): give a valid child token or certificate",
            ),
            Cause::ChildForbidden => (
                "child forbids the request",
                "the child cluster authenticated the child identity but denied it (403 from the child): grant it RBAC in the child",
            ),
            Cause::RbacMissing => (
                "Clusternet RBAC missing",
                "the parent does not allow this identity to use sockets/proxy or impersonate clusternet: apply Clusternet's RBAC (ClusterRole clusternet:system:socketsproxy and its binding)",
            ),
            Cause::ExtraRefused => (
                "user extra refused",
                "only clusternet-token, clusternet-certificate and clusternet-privatekey may be impersonated under Clusternet's RBAC: remove other extras",
            ),
            Cause::FeatureGateOff => {
                ("SocketConnection feature gate off", "start clusternet-hub with --feature-gates=SocketConnection=true")
            }
            Cause::UnknownClusterId => (
                "unknown cluster ID",
                "no ManagedCluster on this parent carries this ID: check it (exact, lower-case) with `clusternet-kubeconfig list`",
            ),
            Cause::AgentDisconnected => (
                "agent disconnected",
                "the child's clusternet-agent has no session with the hub: check the agent in the child cluster",
            ),
            Cause::NoSocketSession => (
                "agent has no socket session",
                "is clusternet-agent running with --feature-gates=SocketConnection=true? (the hub reaches every child through its agent's socket, even when status.useSocket is false)",
            ),
            Cause::NoApiserverUrl => (
                "no apiserver URL",
                "the agent has not reported status.apiserverURL: wait for it, or regenerate with --child-server https://<child apiserver>",
            ),
            Cause::InvalidKeyPair => (
                "invalid key pair",
                "the hub could not pair the client certificate and key: give the key that belongs to the certificate",
            ),
            Cause::InvalidCertificate => (
                "invalid child certificate or key",
                "the hub could not decode the clusternet-certificate or clusternet-privatekey extra (standard base64 of PEM): regenerate with --client-certificate and --client-key",
            ),
            Cause::ChildUnreachable => (
                "child apiserver not reachable at this route",
                "the agent could not connect to the child apiserver: check --child-server (scheme, host, port) or, for the direct route, the ManagedCluster's status.apiserverURL",
            ),
            Cause::SchemeMismatch => (
                "plain HTTP sent to an HTTPS child",
                "the route uses http but the child apiserver speaks HTTPS: regenerate with --child-server https://<host[:port]>",
            ),
            Cause::MalformedRoute => (
                "malformed proxy route",
                "the server URL after /proxy/ must be direct, https/<host[:port]> or http/<host[:port]>: regenerate the kubeconfig",
            ),
            Cause::Redirected => (
                "redirected by the hub",
                "a route with no path after it is answered with a redirect: regenerate the kubeconfig rather than editing its server URL",
            ),
            Cause::RedirectBlocked => (
                "redirect blocked",
                "the parent blocks redirects from the hub: start kube-apiserver with --aggregator-reject-forwarding-redirect=false",
            ),
            Cause::ApiServiceMissing => (
                "APIService missing",
                "the parent does not serve proxies.clusternet.io: register APIService v1alpha1.proxies.clusternet.io (is clusternet-hub installed?)",
            ),
            Cause::ApiServiceUnavailable => (
                "APIService unavailable",
                "the aggregator marks v1alpha1.proxies.clusternet.io unavailable: check that clusternet-hub is running (`kubectl get apiservice v1alpha1.proxies.clusternet.io`)",
            ),
            Cause::HubUnreachable => (
                "clusternet-hub not reachable",
                "the aggregator could not connect to the APIService backend: check the clusternet-hub pod and its Service (`kubectl get apiservice v1alpha1.proxies.clusternet.io`, then the hub's logs)",
            ),
            Cause::TooLarge => (
                "answer too large",
                "a Kubernetes /version or /api answer is a few KiB: check that the route leads to a Kubernetes apiserver",
            ),
            Cause::Tls => (
                "TLS error",
                "TLS with the parent failed: check the cluster's certificate-authority-data and tls-server-name",
            ),
            Cause::Connect => (
                "connection failed",
                "the parent apiserver cannot be reached: check the server address and the network",
            ),
            Cause::Timeout => ("timeout", "no complete answer in time: check the network, or raise --timeout"),
            Cause::Unexpected => (
                "unexpected answer",
                "no known Clusternet or Kubernetes failure matches: read the server's message, and the hub's and agent's logs",
            ),
        }
    }

    /// The fix, in one line.
    pub fn hint(self) -> &'static str {
        self.words().1
    }
}

#[cfg(test)]
impl Cause {
    /// Every cause, for the tests that read each one's words.
    pub const ALL: &[Cause] = &[
        Cause::AnonymousDisabled,
        Cause::ParentCredentialsRejected,
        Cause::ChildCredentialsRejected,
        Cause::ChildForbidden,
        Cause::RbacMissing,
        Cause::ExtraRefused,
        Cause::FeatureGateOff,
        Cause::UnknownClusterId,
        Cause::AgentDisconnected,
        Cause::NoSocketSession,
        Cause::NoApiserverUrl,
        Cause::InvalidKeyPair,
        Cause::InvalidCertificate,
        Cause::ChildUnreachable,
        Cause::SchemeMismatch,
        Cause::MalformedRoute,
        Cause::Redirected,
        Cause::RedirectBlocked,
        Cause::ApiServiceMissing,
        Cause::ApiServiceUnavailable,
        Cause::HubUnreachable,
        Cause::TooLarge,
        Cause::Tls,
        Cause::Connect,
        Cause::Timeout,
        Cause::Unexpected,
    ];
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words().0)
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

/// Go's net and crypto/tls errors, as the hub passes them back from a dial
/// to the child (lower-case).
const CHILD_DIAL_WORDS: &[&str] =
    &["dial tcp", "connect: ", "no such host", "i/o timeout", "connection reset", "tls: ", "x509: ", "eof"];

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
        400 if m.contains("invalid certificate in header") || m.contains("invalid private key in header") => {
            Cause::InvalidCertificate
        }
        // Go's TLS server to a plain-HTTP request, passed back by the hub.
        _ if m.contains("client sent an http request to an https server") => Cause::SchemeMismatch,
        503 if m.contains("featuregate socketconnection") => Cause::FeatureGateOff,
        503 if m.contains("cannot retrieve valid apiserver url") => Cause::NoApiserverUrl,
        // The aggregator's own words when the APIService is still Available
        // but nothing answers at its backend.
        503 if m.contains("error trying to reach service") => Cause::HubUnreachable,
        // The hub dials every cluster through its agent's tunnel; an agent
        // started without the SocketConnection gate never opened one.
        500 if m.contains("failed to find session for client") => Cause::NoSocketSession,
        // The hub's proxy handler: a route without a host, or not http(s).
        500 if m.contains("no host in request url") || m.contains("unsupported protocol scheme") => {
            Cause::MalformedRoute
        }
        // Dial and TLS errors towards the child come back as 500 Status
        // without a reason, in Go's words.
        500 if CHILD_DIAL_WORDS.iter().any(|w| m.contains(w)) => Cause::ChildUnreachable,
        _ if m.contains("redirect") => Cause::RedirectBlocked,
        300..=399 => Cause::Redirected,
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

/// A failure below HTTP ([`super::transport::classify`], which reads the error's
/// causes by type) as the cause of a failed request through the proxy.
impl From<&Failure> for Cause {
    fn from(failure: &Failure) -> Cause {
        match failure {
            Failure::UnknownCa
            | Failure::WrongName
            | Failure::Expired
            | Failure::BadServerCertificate(_)
            | Failure::ClientCertificateRefused(_)
            | Failure::NotTls => Cause::Tls,
            Failure::Timeout => Cause::Timeout,
            Failure::Refused | Failure::NoSuchHost | Failure::Reset | Failure::Other => Cause::Connect,
        }
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
    let mut message = crate::redact::text(&message, secrets).into_owned();
    if message.chars().count() > 240 {
        message = message.chars().take(240).collect::<String>() + "…";
    }
    message.replace(['\n', '\r'], " ")
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
            (
                400,
                "invalid certificate in header Clusternet-Certificate: illegal base64 data at input byte 3".into(),
                Cause::InvalidCertificate,
            ),
            (400, "Client sent an HTTP request to an HTTPS server.".into(), Cause::SchemeMismatch),
            (
                503,
                "error trying to reach service: dial tcp 127.0.0.1:10443: connect: connection refused".into(),
                Cause::HubUnreachable,
            ),
            (500, "dial tcp 127.0.0.1:1: connect: connection refused".into(), Cause::ChildUnreachable),
            (500, "tls: first record does not look like a TLS handshake".into(), Cause::ChildUnreachable),
            (500, "dial tcp: lookup child.invalid: no such host".into(), Cause::ChildUnreachable),
            (500, "http: no Host in request URL".into(), Cause::MalformedRoute),
            (500, "unsupported protocol scheme \"ftp\"".into(), Cause::MalformedRoute),
            (301, String::new(), Cause::Redirected),
            (418, "teapot".into(), Cause::Unexpected),
            (500, "something else".into(), Cause::Unexpected),
            (500, format!("failed to find Session for client {id}"), Cause::NoSocketSession),
        ];
        for (status, message, cause) in cases {
            assert_eq!(from_response(status, &message, Anonymous, None), cause, "{message}");
        }
    }

    /// The line reads `<cause>: <fix>`: the fix never repeats the cause's words.
    #[test]
    fn no_fix_repeats_its_cause() {
        for &cause in Cause::ALL {
            let (words, fix) = cause.words();
            assert!(!fix.to_lowercase().starts_with(&words.to_lowercase()), "{cause:?}: {words} / {fix}");
            assert!(!fix.contains(&format!("{words}:")), "{cause:?}: {fix}");
            assert!(!fix.contains('\n') && !words.is_empty(), "{cause:?}");
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
    fn transport_failures() {
        assert_eq!(Cause::from(&Failure::UnknownCa), Cause::Tls);
        assert_eq!(Cause::from(&Failure::ClientCertificateRefused("BadCertificate".into())), Cause::Tls);
        assert_eq!(Cause::from(&Failure::Refused), Cause::Connect);
        assert_eq!(Cause::from(&Failure::Timeout), Cause::Timeout);
    }
}
