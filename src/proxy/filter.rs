//! Which requests the proxy refuses before anything goes to the parent, as
//! pure functions of the request. Every rule is here:
//!
//! - the request target must be a path (origin-form): `CONNECT host:port`,
//!   `OPTIONS *` and absolute-form (`GET http://x/...`) would otherwise leave
//!   the socket path with the parent's credentials;
//! - the `Host` (without its port) must pass `--accept-hosts`, by default
//!   loopback names only, as `kubectl proxy` does: a web page whose name was
//!   rebound to 127.0.0.1 (DNS rebinding) sends its own;
//! - an `Origin`, when there is one, must be a loopback origin (its host
//!   passes `--accept-hosts` too): browsers do not hold WebSockets (nor
//!   simple POSTs) to the same-origin policy, and the apiserver serves watch
//!   and exec over WebSocket to any origin. Kubernetes clients and curl send
//!   no `Origin`;
//! - a path with `.` or `..` segments or an encoded `/` would climb out of
//!   the socket-proxy prefix once the parent cleans it.

use http::{HeaderMap, Method, StatusCode, Uri, header};
use regex::Regex;

/// The hosts a request may name, as `kubectl proxy --accept-hosts` takes
/// them: comma-separated regular expressions, any of which may match (they
/// are not anchored unless they say so).
#[derive(Debug, Clone)]
pub struct AcceptHosts(Vec<Regex>);

impl AcceptHosts {
    /// Parses the flag's value; an error says which expression is wrong.
    pub fn parse(list: &str) -> Result<AcceptHosts, String> {
        let mut out = Vec::new();
        for pattern in list.split(',') {
            if pattern.is_empty() {
                return Err(
                    "an empty expression would accept every host; give expressions such as '^localhost$,^proxy\\.example$'"
                        .into(),
                );
            }
            out.push(Regex::new(pattern).map_err(|e| format!("{pattern:?} is not a regular expression: {e}"))?);
        }
        Ok(AcceptHosts(out))
    }

    /// True when `host` (without its port) matches an expression.
    pub fn accepts(&self, host: &str) -> bool {
        self.0.iter().any(|re| re.is_match(host))
    }
}

/// A refusal: the status to answer with and why, for the client and `-v`.
pub type Refusal = (StatusCode, String);

/// Why the request is refused, if it is.
pub fn check(method: &Method, uri: &Uri, headers: &HeaderMap, accept: &AcceptHosts) -> Result<(), Refusal> {
    let bad_request = |why: String| Err((StatusCode::BAD_REQUEST, why));
    let forbidden = |why: String| Err((StatusCode::FORBIDDEN, why));
    if method == Method::CONNECT {
        return bad_request("CONNECT is refused: the proxy forwards requests for a path starting with / only".into());
    }
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return bad_request(
            "the request target is not a path (absolute-form or *): the proxy forwards requests for a path starting with / only".into(),
        );
    }
    let hosts: Vec<&str> = headers.get_all(header::HOST).iter().map(|v| v.to_str().unwrap_or("\u{fffd}")).collect();
    match hosts.as_slice() {
        [host] if accept.accepts(without_port(host)) => {}
        [host] => {
            return forbidden(format!(
                "Host {:?} is not accepted (a web page could reach the proxy under a name of its own): use http://127.0.0.1:<port> or http://localhost:<port>, or widen --accept-hosts",
                crate::terminal::escape(host)
            ));
        }
        _ => {
            return forbidden(
                "the request has no single Host header: send one with the proxy's address (127.0.0.1 or localhost), which --accept-hosts accepts"
                    .into(),
            );
        }
    }
    for origin in headers.get_all(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        if !origin_host(origin).is_some_and(|host| accept.accepts(host)) {
            return forbidden(format!(
                "Origin {:?} is not accepted: a web page on another site may not use the proxy (an Origin's host must pass --accept-hosts; Kubernetes clients send no Origin)",
                crate::terminal::escape(origin)
            ));
        }
    }
    if let Some(why) = refused_path(uri.path()) {
        return bad_request(why);
    }
    Ok(())
}

/// The host of a `Host` value without its port; an IPv6 address keeps its
/// brackets (`[::1]:8001` is `[::1]`), as `--accept-hosts` writes it.
pub fn without_port(authority: &str) -> &str {
    let is_port = |port: &str| port.bytes().all(|b| b.is_ascii_digit());
    if authority.starts_with('[') {
        return match authority.split_once(']') {
            Some((_, rest)) if rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port) => {
                &authority[..authority.len() - rest.len()]
            }
            _ => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if is_port(port) => host,
        _ => authority,
    }
}

/// The host of a serialized origin (`http://localhost:3000` is `localhost`);
/// `None` for `null` and anything else that is not `http(s)://host[:port]`.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))?;
    (!rest.is_empty() && !rest.contains(['/', '@', '?', '#'])).then(|| without_port(rest))
}

/// Why a path is refused, if it is: a `.` or `..` segment (also
/// percent-encoded) would climb out of the socket-proxy prefix once the
/// parent cleans the path, and reach the parent as the child identity.
pub fn refused_path(path: &str) -> Option<String> {
    let climbs = path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    });
    let encoded_slash = path.contains("%2f") || path.contains("%2F");
    match (climbs, encoded_slash) {
        (true, _) => Some("a path with . or .. segments could leave the child's proxy path; send a clean path".into()),
        (_, true) => Some("a path with an encoded / (%2F) is refused; send a plain path".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubectls_default() -> AcceptHosts {
        AcceptHosts::parse(crate::cli::DEFAULT_ACCEPT_HOSTS).unwrap()
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<(), Refusal> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        check(&method.parse().unwrap(), &target.parse().unwrap(), &map, &kubectls_default())
    }

    #[test]
    fn hosts_are_kubectl_proxys() {
        let accept = kubectls_default();
        for good in ["localhost", "localhost:8001", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:8001"] {
            assert!(accept.accepts(without_port(good)), "{good}");
        }
        for bad in ["rebind.attacker.example", "localhost.attacker.example", "127.0.0.2", "::1", "", "[::1].x"] {
            assert!(!accept.accepts(without_port(bad)), "{bad}");
        }
        let wide = AcceptHosts::parse(r"^proxy\.internal$,^localhost$").unwrap();
        assert!(wide.accepts("proxy.internal") && !wide.accepts("127.0.0.1"));
        assert!(AcceptHosts::parse("a,").unwrap_err().contains("empty expression"));
        assert!(AcceptHosts::parse("(").unwrap_err().contains("\"(\" is not a regular expression"));
    }

    #[test]
    fn origins_must_be_loopback() {
        let host = ("host", "127.0.0.1:8001");
        assert!(request("GET", "/api", &[host]).is_ok(), "no Origin: a Kubernetes client");
        for good in ["http://localhost:3000", "http://127.0.0.1:8001", "https://[::1]"] {
            assert!(request("GET", "/api", &[host, ("origin", good)]).is_ok(), "{good}");
        }
        for bad in
            ["null", "http://attacker.example", "http://127.0.0.1.attacker.example", "http://localhost@x", "file://"]
        {
            let (status, why) = request("GET", "/api", &[host, ("origin", bad)]).unwrap_err();
            assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
            assert!(why.contains("Origin"), "{why}");
        }
    }

    #[test]
    fn only_paths_go_out() {
        let host = ("host", "127.0.0.1");
        assert_eq!(request("CONNECT", "127.0.0.1:6443", &[host]).unwrap_err().0, StatusCode::BAD_REQUEST);
        assert_eq!(request("OPTIONS", "*", &[host]).unwrap_err().0, StatusCode::BAD_REQUEST);
        assert_eq!(request("GET", "http://127.0.0.1/api", &[host]).unwrap_err().0, StatusCode::BAD_REQUEST);
        assert_eq!(request("GET", "/api", &[]).unwrap_err().0, StatusCode::FORBIDDEN, "no Host");
        assert_eq!(request("GET", "/api", &[host, host]).unwrap_err().0, StatusCode::FORBIDDEN, "two Hosts");
    }

    #[test]
    fn climbing_paths_are_refused() {
        for bad in ["/..", "/api/../../x", "/%2e%2e/api", "/%2E./x", "/./api", "/api/v1/namespaces/a%2Fb"] {
            assert!(refused_path(bad).is_some(), "{bad}");
        }
        for good in ["/", "/api/v1/namespaces", "/api/v1/namespaces/a..b", "/version", "/api/v1/x.y"] {
            assert_eq!(refused_path(good), None, "{good}");
        }
    }
}
