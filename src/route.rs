//! Where requests go: the cluster ID, the route inside the child, and the
//! parent server URL rewritten to the hub's socket-proxy path.
//!
//! The hub parses `<rest>` of `.../sockets/<id>/proxy/<rest>` in
//! `pkg/hub/exchanger/exchanger.go` (`ClusterLocation`): `direct[/...]` goes to
//! the apiserver URL the agent reported; `https/<host[:port]>[/path]` and
//! `http/<host[:port]>[/path]` are dialled from inside the child cluster.

use std::fmt;

use anyhow::{Result, anyhow, bail};
use url::Url;

/// The path the hub serves under the parent apiserver, without the cluster ID.
pub const SOCKETS_PATH: &str = "apis/proxies.clusternet.io/v1alpha1/sockets";

/// A child cluster ID in the one form the hub matches: the hub selects
/// ManagedClusters by an exact, case-sensitive label match, and the agent
/// writes lower-case hyphenated UUIDs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterId(String);

impl ClusterId {
    /// Parses any form the uuid crate accepts (hyphenated, simple, braced, URN,
    /// any case). The flag says whether the normalised form differs from the input.
    pub fn parse(input: &str) -> Result<(ClusterId, bool)> {
        let id = uuid::Uuid::try_parse(input.trim()).map_err(|_| {
            anyhow!(
                "--cluster-id {input:?} is not a UUID; for a ManagedCluster name pass --cluster {input:?}, or take the CLUSTER-ID column of `clusternet-kubeconfig list` (e.g. dc91021d-2361-4f6d-a404-7c33b9e01118)"
            )
        })?;
        let text = id.hyphenated().to_string();
        let changed = text != input;
        Ok((ClusterId(text), changed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the hub reaches the child's apiserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The apiserver URL the agent reported in `ManagedCluster.status.apiserverURL`.
    Direct,
    /// `https/<host[:port]>[/path]` or `http/...`: dialled from inside the child.
    Dial { scheme: &'static str, target: String },
}

impl Route {
    /// Parses `--child-server`: `http(s)://host[:port][/path]`, nothing else.
    pub fn from_child_server(input: &str) -> Result<Route> {
        let flag = "--child-server";
        check_text(input, flag)?;
        let url = Url::parse(input.trim()).map_err(|e| {
            let shown = without_userinfo(input);
            anyhow!("{flag} {shown:?} is not a URL ({e}); give http(s)://host[:port][/path]")
        })?;
        let scheme = match url.scheme() {
            "https" => "https",
            "http" => "http",
            other => bail!("{flag} has scheme {other:?}; the hub dials only https:// or http://"),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            let shown = without_userinfo(input);
            anyhow!("{flag} {shown:?} has no host; give http(s)://host[:port][/path]")
        })?;
        reject_extras(&url, flag)?;
        check_host_and_port(input, &url, flag)?;
        let mut target = host.to_string();
        if let Some(port) = url.port() {
            target.push_str(&format!(":{port}"));
        }
        target.push_str(url.path().trim_end_matches('/'));
        Ok(Route::Dial { scheme, target })
    }

    /// The route [`Route::path`] wrote: `direct`, `https/<host...>` or
    /// `http/<host...>`; `None` for anything else.
    pub fn from_path(path: &str) -> Option<Route> {
        match path.split_once('/') {
            None if path == "direct" => Some(Route::Direct),
            Some(("https", target)) if !target.is_empty() => {
                Some(Route::Dial { scheme: "https", target: target.into() })
            }
            Some(("http", target)) if !target.is_empty() => Some(Route::Dial { scheme: "http", target: target.into() }),
            _ => None,
        }
    }

    /// The `<rest>` prefix under `.../proxy/`.
    pub fn path(&self) -> String {
        match self {
            Route::Direct => "direct".to_string(),
            Route::Dial { scheme, target } => format!("{scheme}/{target}"),
        }
    }
}

/// A URL for messages and traces: user info (`user:password@`) is cut out,
/// whether or not the rest parses, since the password is a secret.
pub fn without_userinfo(url: &str) -> String {
    replace_userinfo(url, "<user info removed>@")
}

/// A URL to record (`https://user:pw@host/x` as `https://host/x`): user info
/// dropped without a trace, whether or not the rest parses.
pub fn cut_userinfo(url: &str) -> String {
    replace_userinfo(url, "")
}

/// `url` with the user info of its authority (up to the last `@`) replaced.
fn replace_userinfo(url: &str, with: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{with}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}

/// The server of the generated cluster: the parent server, exactly one `/`,
/// then `apis/proxies.clusternet.io/v1alpha1/sockets/<id>/proxy/<route>`.
/// A path prefix of the parent (Rancher-style) is kept; `field` names the
/// parent's server field for messages.
pub fn proxy_server(parent_server: &str, id: &ClusterId, route: &Route, field: &str) -> Result<String> {
    check_text(parent_server, field)?;
    let url = Url::parse(parent_server.trim())
        .map_err(|e| anyhow!("{field} is not a URL ({e}); it must be https://host[:port][/path]"))?;
    if !matches!(url.scheme(), "https" | "http") {
        bail!("{field} has scheme {:?}; it must be https:// or http://", url.scheme());
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("{field} has no host");
    }
    reject_extras(&url, field)?;
    check_host_and_port(parent_server, &url, field)?;
    // As written, not as the URL parser prints it: the parser drops a default
    // port (`:443`, which changes the Host header kubectl sends), and rewrites
    // IPv6 hosts and case; kubectl sends what the kubeconfig says.
    let base = parent_server.trim().trim_end_matches('/');
    Ok(format!("{base}/{SOCKETS_PATH}/{id}/proxy/{}", route.path()))
}

/// The server as kubectl dials it. A server with a scheme and a host is
/// kept as written; one without (`localhost:443`, `my-host`, `10.0.0.1:6443`)
/// gets `http://`, and then may have no path. client-go's `DefaultServerURL`
/// would pick `https://` for a config with a CA or a client certificate, but
/// kubectl decides before it reads them from the kubeconfig
/// (clientcmd reads the CA and the user only "if we are secure"): plain HTTP,
/// without the user's credentials.
pub fn with_default_scheme(server: &str, field: &str) -> Result<String> {
    let written = server.trim();
    if has_scheme_and_host(written) {
        return Ok(written.to_string());
    }
    let scheme = "http";
    let url = format!("{scheme}://{written}");
    let path = url[scheme.len() + 3..].find(['/', '?', '#']).map_or("", |i| &url[scheme.len() + 3 + i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !path.is_empty() && path != "/" {
        bail!(
            "{field} has no scheme and a path; kubectl refuses that (host must be a URL or a host:port pair): write {scheme}://{}",
            without_userinfo(written)
        );
    }
    Ok(url)
}

/// What Go's url.Parse reads as a scheme (a letter, then letters, digits,
/// `+`, `-`, `.`) followed by `://` and a non-empty host.
fn has_scheme_and_host(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    scheme_ok && !host.is_empty()
}

/// A server that already goes through a socket proxy, as `gen` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedServer<'a> {
    /// The parent server, before the proxy path.
    pub parent: &'a str,
    /// The cluster ID in the path (as written).
    pub cluster_id: &'a str,
}

/// The parent server and cluster ID when `server` is a socket-proxy route
/// (`<parent>/apis/proxies.clusternet.io/v1alpha1/sockets/<id>/proxy/...`).
pub fn socket_proxy(server: &str) -> Option<ProxiedServer<'_>> {
    let marker = format!("/{SOCKETS_PATH}/");
    let at = server.find(&marker)?;
    let rest = &server[at + marker.len()..];
    let (id, after) = rest.split_once('/')?;
    (!id.is_empty() && (after == "proxy" || after.starts_with("proxy/")))
        .then_some(ProxiedServer { parent: &server[..at], cluster_id: id })
}

/// The URL parser silently drops tabs and line breaks inside a URL and reads
/// `\\` as `/`; kubectl (Go's net/url) refuses the first and reads the second
/// differently. Refuse both rather than generate a server kubectl would not.
fn check_text(input: &str, field: &str) -> Result<()> {
    if input.trim().chars().any(char::is_control) {
        bail!("{field} contains control characters (a line break or tab inside the URL); remove them");
    }
    if input.contains('\\') {
        bail!("{field} contains a backslash; URLs use `/`");
    }
    Ok(())
}

/// The URL parser rewrites some hosts that kubectl would take as they are:
/// percent-escapes (`%31%30.0.0.1`, which Go refuses) and IPv4 shorthands
/// (`0x7f.1`, a host name to Go, 127.0.0.1 here). Such a host, and port 0,
/// are refused; case and IDN (punycode) conversions are fine.
fn check_host_and_port(input: &str, url: &Url, field: &str) -> Result<()> {
    if url.port() == Some(0) {
        bail!("{field} has port 0; give the apiserver's port, or none for the scheme's default");
    }
    let after_scheme = input.trim().split_once("://").map_or("", |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('%') && !authority.starts_with('[') {
        bail!("{field} has a percent-escaped host; write the host name as it is");
    }
    if let Some(url::Host::Ipv4(ip)) = url.host() {
        let written = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
        if written != ip.to_string() {
            bail!("{field} has host {written:?}, which kubectl would not read as the IPv4 address {ip}; write {ip}");
        }
    }
    Ok(())
}

/// Query, fragment and user info have no place in a server URL; user info
/// would also be a credential in the wrong place, so it is never echoed.
fn reject_extras(url: &Url, field: &str) -> Result<()> {
    if !url.username().is_empty() || url.password().is_some() {
        bail!("{field} contains user info (user:password@); remove it: credentials belong in the user entry");
    }
    if url.query().is_some() {
        bail!("{field} has a query (?...); remove it");
    }
    if url.fragment().is_some() {
        bail!("{field} has a fragment (#...); remove it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_info_never_shows() {
        assert_eq!(
            super::without_userinfo("https://admin:PW@host:99999/x"),
            "https://<user info removed>@host:99999/x"
        );
        assert_eq!(super::without_userinfo("https://a:P@W@ho st"), "https://<user info removed>@ho st");
        assert_eq!(super::without_userinfo("https://host/a@b"), "https://host/a@b");
        let err = format!("{:#}", super::Route::from_child_server("https://admin:PW@ho st").unwrap_err());
        assert!(!err.contains("PW"), "{err}");
    }

    use super::*;

    const ID: &str = "dc91021d-2361-4f6d-a404-7c33b9e01118";

    fn id() -> ClusterId {
        ClusterId::parse(ID).unwrap().0
    }

    fn server(parent: &str, route: &Route) -> String {
        proxy_server(parent, &id(), route, "server").unwrap()
    }

    #[test]
    fn cluster_id_forms_normalise() {
        assert_eq!(ClusterId::parse(ID).unwrap(), (id(), false));
        for form in [
            "DC91021D-2361-4F6D-A404-7C33B9E01118",
            "dc91021d23614f6da4047c33b9e01118",
            "{dc91021d-2361-4f6d-a404-7c33b9e01118}",
            "urn:uuid:dc91021d-2361-4f6d-a404-7c33b9e01118",
        ] {
            assert_eq!(ClusterId::parse(form).unwrap(), (id(), true), "{form}");
        }
        for bad in ["", "dc91021d", "not-a-uuid", "dc91021d-2361-4f6d-a404-7c33b9e0111z"] {
            assert!(format!("{:#}", ClusterId::parse(bad).unwrap_err()).contains("--cluster-id"));
        }
    }

    #[test]
    fn server_gets_exactly_one_slash() {
        let want = format!("https://10.0.0.10:6443/{SOCKETS_PATH}/{ID}/proxy/direct");
        assert_eq!(server("https://10.0.0.10:6443", &Route::Direct), want);
        assert_eq!(server("https://10.0.0.10:6443/", &Route::Direct), want);
        assert_eq!(server("https://10.0.0.10:6443///", &Route::Direct), want);
    }

    #[test]
    fn path_prefixes_and_ipv6_are_kept() {
        assert_eq!(
            server("https://rancher.example/k8s/clusters/c-xyz/", &Route::Direct),
            format!("https://rancher.example/k8s/clusters/c-xyz/{SOCKETS_PATH}/{ID}/proxy/direct")
        );
        assert_eq!(
            server("https://[fd00::1]:6443", &Route::Direct),
            format!("https://[fd00::1]:6443/{SOCKETS_PATH}/{ID}/proxy/direct")
        );
    }

    #[test]
    fn child_server_routes() {
        let r = |s: &str| Route::from_child_server(s).unwrap().path();
        assert_eq!(r("https://demo1.cluster.net"), "https/demo1.cluster.net");
        assert_eq!(r("https://127.0.0.1:6443/"), "https/127.0.0.1:6443");
        assert_eq!(r("http://10.212.0.7:8001"), "http/10.212.0.7:8001");
        assert_eq!(r("https://[::1]:6443/prefix/"), "https/[::1]:6443/prefix");
        assert_eq!(r("https://Host.Example"), "https/host.example");
        // From fuzzing (server_url): `@` and `:` in the path are path, not user info or port.
        assert_eq!(r("https://10ttps61/10.0.061:..0.0@61:.0443"), "https/10ttps61/10.0.061:..0.0@61:.0443");
        for (bad, needle) in [
            ("ftp://x", "scheme \"ftp\""),
            ("https://", "not a URL"),
            ("x.example:6443", "scheme"),
            ("https://x/?a=b", "query"),
            ("https://x/#f", "fragment"),
            ("https://u:p@x", "user info"),
            ("demo1.cluster.net", "not a URL"),
        ] {
            let err = format!("{:#}", Route::from_child_server(bad).unwrap_err());
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(!err.contains(":p@"), "{err}");
        }
    }

    #[test]
    fn hosts_and_ports_kubectl_would_read_differently() {
        for (bad, needle) in [
            ("https://h:0", "port 0"),
            ("https://10.0.0.10\n:6443", "control characters"),
            ("https://h/a\tb", "control characters"),
            ("https:\\\\h", "backslash"),
            ("https://%31%30.0.0.1", "percent-escaped host"),
            ("https://0x7f.1:6443", "host \"0x7f.1\", which kubectl would not read as the IPv4 address 127.0.0.1"),
            ("https://127.1", "IPv4 address 127.0.0.1"),
        ] {
            let err = format!("{:#}", proxy_server(bad, &id(), &Route::Direct, "server").unwrap_err());
            assert!(err.contains(needle), "{bad:?}: {err}");
            let err = format!("{:#}", Route::from_child_server(bad).unwrap_err());
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
        for good in
            ["https://H.Example:6443", "https://bücher.example", "https://10.0.0.1:443", "https://[fd00::1%25]:1"]
        {
            let _ = proxy_server(good, &id(), &Route::Direct, "server");
        }
        // Kept as written (kubectl converts an IDN host when it dials, and
        // sends a default port in the Host header as written).
        for written in [
            "https://bücher.example",
            "https://H.Example:443",
            "http://h.example:80",
            "https://[0:0:0:0:0:0:0:0]:6443",
            "https://10.0.0.1:6443/Pre%2Ffix",
        ] {
            assert_eq!(server(written, &Route::Direct), format!("{written}/{SOCKETS_PATH}/{ID}/proxy/direct"));
        }
        assert!(server("https://10.0.0.1:6443", &Route::Direct).starts_with("https://10.0.0.1:6443/"));
        assert!(server(" https://10.0.0.1:6443\n", &Route::Direct).starts_with("https://10.0.0.1:6443/"));
    }

    #[test]
    fn a_server_without_scheme_gets_the_one_client_go_uses() {
        let f = |s: &str| with_default_scheme(s, "server").map_err(|e| format!("{e:#}"));
        assert_eq!(f("localhost:443").unwrap(), "http://localhost:443");
        assert_eq!(f("my-host").unwrap(), "http://my-host");
        assert_eq!(f("10.0.0.1:6443/").unwrap(), "http://10.0.0.1:6443/");
        assert_eq!(f("[::1]:6443").unwrap(), "http://[::1]:6443");
        // With a scheme and a host: as written.
        assert_eq!(f(" https://h:443 ").unwrap(), "https://h:443");
        assert!(f("my-host/prefix").unwrap_err().contains("has no scheme and a path"));
    }

    #[test]
    fn socket_proxy_routes_are_recognised() {
        let generated = server("https://10.0.0.10:6443/prefix", &Route::Direct);
        assert_eq!(
            socket_proxy(&generated),
            Some(ProxiedServer { parent: "https://10.0.0.10:6443/prefix", cluster_id: ID })
        );
        let dial = server("https://10.0.0.10:6443", &Route::from_child_server("https://c:6443").unwrap());
        assert_eq!(socket_proxy(&dial).unwrap().cluster_id, ID);
        for not in [
            "https://10.0.0.10:6443",
            "https://10.0.0.10:6443/apis/proxies.clusternet.io/v1alpha1/sockets/",
            "https://10.0.0.10:6443/apis/proxies.clusternet.io/v1alpha1/sockets/x/status",
        ] {
            assert_eq!(socket_proxy(not), None, "{not}");
        }
    }

    #[test]
    fn bad_parent_servers() {
        for (bad, needle) in [
            ("10.0.0.1:6443", "must be https://"),
            ("ftp://x", "scheme"),
            ("https://x?y=1", "query"),
            ("https://x#y", "fragment"),
            ("https://admin:secret@x", "user info"),
            ("", "not a URL"),
        ] {
            let err = format!("{:#}", proxy_server(bad, &id(), &Route::Direct, "server").unwrap_err());
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(!err.contains("secret"));
        }
    }
}
