//! What passes through the proxy, as pure functions of the request: which
//! headers go on (never the client's own credentials, impersonation or
//! asserted identity, never hop-by-hop ones), and whether a request asks for
//! a protocol upgrade. Which requests are refused is [`super::filter`]'s.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// Hop-by-hop headers (RFC 9110, section 7.6.1, and the older proxy ones):
/// they concern one connection, not the request.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// True when the request asks to switch protocols (exec, attach,
/// port-forward: SPDY or WebSocket): `Connection: upgrade` and an `Upgrade`.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// The names listed in `Connection`, hop-by-hop too.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Headers that assert who the client is, to the apiserver or to what the
/// socket proxy reaches: whoever can reach the proxy must not become someone
/// else through it (the proxy adds the context's own credentials).
/// `Impersonate-*` asks the apiserver to act as another user; `X-Remote-*`
/// is the front-proxy (request-header) identity an aggregator or
/// authenticating proxy asserts; `Cookie` is a browser's session for web
/// apps on loopback; `X-Forwarded-Client-Cert` is a TLS-terminating proxy's
/// client certificate. Header names are lowercase here (HTTP/1 names are
/// case-insensitive, and `http` lowercases them).
fn is_identity(name: &HeaderName) -> bool {
    const EXACT: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-forwarded-client-cert"];
    const PREFIXES: &[&str] = &["impersonate-", "x-remote-"];
    let name = name.as_str();
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `headers` without hop-by-hop ones; for an upgrade, `Connection: Upgrade`
/// and `Upgrade` kept, as the upgrade needs them on each hop.
fn end_to_end(headers: &HeaderMap, upgrade: bool, also_drop: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let listed: Vec<String> = connection_tokens(headers).map(str::to_ascii_lowercase).collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let hop = HOP_BY_HOP.contains(&name.as_str()) || listed.iter().any(|l| l == name.as_str());
        if !hop && !also_drop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    if upgrade && let Some(protocol) = headers.get(header::UPGRADE) {
        out.insert(header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
        out.insert(header::UPGRADE, protocol.clone());
    }
    out
}

/// The request headers passed on to the parent: end-to-end ones, without
/// `Host` (the parent's is set) and without the client's identity.
pub fn request_headers(headers: &HeaderMap, upgrade: bool) -> HeaderMap {
    end_to_end(headers, upgrade, |name| name == header::HOST || is_identity(name))
}

/// The response headers passed back to the client.
pub fn response_headers(headers: &HeaderMap, upgrade: bool) -> HeaderMap {
    end_to_end(headers, upgrade, |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    fn names(m: &HeaderMap) -> Vec<String> {
        m.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap())).collect()
    }

    #[test]
    fn client_identity_and_hop_by_hop_headers_are_dropped() {
        let given = map(&[
            ("host", "127.0.0.1:8001"),
            ("authorization", "Bearer client"),
            ("impersonate-user", "system:admin"),
            ("impersonate-group", "system:masters"),
            ("impersonate-extra-clusternet-token", "stolen"),
            ("impersonate-uid", "1"),
            ("x-remote-user", "system:admin"),
            ("x-remote-group", "system:masters"),
            ("x-remote-extra-scopes", "all"),
            ("cookie", "session=1"),
            ("x-forwarded-client-cert", "Hash=1"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("accept", "application/json"),
            ("user-agent", "python"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            names(&request_headers(&given, false)),
            ["accept: application/json", "user-agent: python", "content-type: application/json"]
        );
        // Answers keep their own Authorization-like headers: only hop-by-hop go.
        let answer = map(&[("content-type", "application/json"), ("transfer-encoding", "chunked"), ("audit-id", "a")]);
        assert_eq!(names(&response_headers(&answer, false)), ["content-type: application/json", "audit-id: a"]);
    }

    #[test]
    fn upgrades_keep_connection_and_upgrade() {
        let given = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("authorization", "Bearer client"),
        ]);
        assert!(is_upgrade(&given));
        assert_eq!(
            names(&request_headers(&given, true)),
            ["x-stream-protocol-version: v4.channel.k8s.io", "connection: Upgrade", "upgrade: SPDY/3.1"]
        );
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])), "Upgrade alone is not a request to upgrade");
        assert!(!is_upgrade(&map(&[("connection", "upgrade")])));
        assert!(is_upgrade(&map(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")])));
    }
}
