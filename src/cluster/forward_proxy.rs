//! Which proxy a connection to a cluster goes through, decided as kubectl
//! decides it, and the connector that goes through it.
//!
//! - The cluster's `proxy-url` (http, https or socks5), when set: client-go
//!   hands it to Go's transport as `http.ProxyURL`, so every request goes
//!   through it, whatever the host and whatever NO_PROXY says.
//! - Otherwise Go's `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy):
//!   HTTPS_PROXY for an https server, HTTP_PROXY for an http one (upper case
//!   first, then lower case); `localhost` and loopback addresses never go
//!   through a proxy; NO_PROXY (or no_proxy) is a comma-separated list of `*`,
//!   CIDRs, IP addresses and host names, each optionally with `:port`, where
//!   `example.com` matches it and its subdomains and `.example.com` (or
//!   `*.example.com`) only its subdomains; empty and malformed entries are
//!   ignored. A value without a scheme is an http proxy.
//!
//! kube's own loader reads HTTPS_PROXY and NO_PROXY with other rules (NO_PROXY
//! matched against the proxy instead of the server, HTTP_PROXY never read,
//! an empty entry an error), so [`super::client`] builds the client's
//! configuration without it and takes the proxy from here.
//!
//! A proxy URL may carry a password (`http://user:pass@proxy:3128`): no
//! message shows one; [`shown`] is the form messages and traces use.

use std::error::Error as StdError;
use std::net::IpAddr;

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::rt::TokioIo;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

/// The proxy variables of the environment, as Go reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    /// REQUEST_METHOD is set: a CGI environment, where Go refuses HTTP_PROXY
    /// (a request header, `Proxy:`, can set it).
    pub cgi: bool,
}

impl Environment {
    /// This process's variables: the upper-case name when set and not empty,
    /// else the lower-case one.
    pub fn of_process() -> Environment {
        let any = |names: [&str; 2]| {
            names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty())).unwrap_or_default()
        };
        Environment {
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
            cgi: std::env::var_os("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// The proxy for requests to `server`: the cluster's `proxy_url` when set,
/// else the environment's; `None` for a direct connection.
pub fn proxy_for(proxy_url: Option<&str>, server: &Uri, env: &Environment) -> Result<Option<Uri>> {
    if let Some(url) = proxy_url.map(str::trim).filter(|u| !u.is_empty()) {
        return parse(url, "the cluster's proxy-url").map(Some);
    }
    let (value, variable) = match server.scheme_str() {
        Some("https") => (&env.https_proxy, "HTTPS_PROXY"),
        Some("http") => (&env.http_proxy, "HTTP_PROXY"),
        _ => return Ok(None),
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if variable == "HTTP_PROXY" && env.cgi {
        bail!(
            "HTTP_PROXY is set in a CGI environment (REQUEST_METHOD is set), where kubectl refuses it; unset one of them"
        );
    }
    let Some(host) = server.host() else { return Ok(None) };
    let port = server.port_u16().unwrap_or(if server.scheme_str() == Some("https") { 443 } else { 80 });
    if !uses_proxy(host, port, &env.no_proxy) {
        return Ok(None);
    }
    // Go reads a value whose scheme is not one of its proxies' as host[:port].
    let url = if has_proxy_scheme(value) { value.to_string() } else { format!("http://{value}") };
    parse(&url, &format!("{variable} (or {})", variable.to_ascii_lowercase())).map(Some)
}

fn has_proxy_scheme(value: &str) -> bool {
    value
        .split_once("://")
        .is_some_and(|(scheme, _)| ["http", "https", "socks5"].iter().any(|s| s.eq_ignore_ascii_case(scheme)))
}

/// A proxy URL as kubectl takes it; `what` names it in messages, which never
/// repeat the URL (it may hold a password).
fn parse(url: &str, what: &str) -> Result<Uri> {
    let uri: Uri =
        url.parse().map_err(|_| anyhow!("{what} is not a URL; give http(s)://host:port or socks5://host:port"))?;
    let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "socks5") {
        bail!("{what} has scheme {scheme:?}; kubectl takes a proxy only as http://, https:// or socks5://");
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("{what} has no host; give {scheme}://host:port");
    }
    if scheme == "socks5" && userinfo(&uri).is_some() {
        bail!(
            "{what} is a SOCKS5 proxy with user:password, which this tool cannot send; use a SOCKS5 proxy without authentication (e.g. ssh -D) or an http:// proxy"
        );
    }
    Ok(uri)
}

fn userinfo(uri: &Uri) -> Option<&str> {
    uri.authority().and_then(|a| a.as_str().rsplit_once('@')).map(|(info, _)| info)
}

/// A proxy URL for messages and traces: without its user info.
pub fn shown(proxy: &Uri) -> String {
    crate::route::without_userinfo(&proxy.to_string())
}

/// Go's `useProxy`: whether a request to `host:port` goes through the
/// environment's proxy, given NO_PROXY.
fn uses_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim().to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let port = port.to_string();
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some(net) = cidr(&entry) {
            if ip.is_some_and(|ip| net.0.contains(ip)) {
                return false;
            }
            continue;
        }
        let (entry_host, entry_port) = split_host_port(&entry);
        if entry_port.is_some() && entry_host.is_empty() {
            continue;
        }
        let port_ok = entry_port.is_none_or(|p| p == port);
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip.is_some_and(|ip| ip == entry_ip) && port_ok {
                return false;
            }
            continue;
        }
        if entry_host.is_empty() {
            continue;
        }
        let bare = entry_host.strip_prefix('*').filter(|rest| rest.starts_with('.')).unwrap_or(entry_host);
        let (suffix, match_host) = match bare.strip_prefix('.') {
            Some(_) => (bare.to_string(), false),
            None => (format!(".{bare}"), true),
        };
        if (host.ends_with(&suffix) || (match_host && host == suffix[1..])) && port_ok {
            return false;
        }
    }
    true
}

/// Go's `net.SplitHostPort` for a NO_PROXY entry: `host:port` or
/// `[v6]:port` split, anything else the host alone.
fn split_host_port(entry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((host, port)) = rest.split_once("]:")
        && !port.contains(':')
    {
        return (host, Some(port));
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.starts_with('[') => (host, Some(port)),
        _ => (entry, None),
    }
}

/// An IPv4 or IPv6 network in CIDR notation (Go's `net.ParseCIDR`).
struct Cidr(Network);

struct Network {
    addr: IpAddr,
    bits: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, width) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)) << 96, u128::from(u32::from(b)) << 96, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            (IpAddr::V4(a), IpAddr::V6(b)) => match b.to_ipv4_mapped() {
                Some(b) => (u128::from(u32::from(a)) << 96, u128::from(u32::from(b)) << 96, 32),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => return false,
        };
        let bits = u32::from(self.bits.min(width));
        let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
        a & mask == b & mask
    }
}

fn cidr(entry: &str) -> Option<Cidr> {
    let (addr, bits) = entry.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok().filter(|b: &u8| *b <= if addr.is_ipv4() { 32 } else { 128 })?;
    Some(Cidr(Network { addr, bits }))
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// A TCP connector to the server, through `proxy` when there is one: an
/// HTTP CONNECT tunnel (with the proxy's user info as Basic credentials, as
/// Go sends them) or a SOCKS5 connection that names the server's host for
/// the proxy to resolve (as Go's SOCKS5 dialer does). TLS to the server goes
/// on top, end to end.
pub fn connector(
    proxy: Option<&Uri>,
    tcp: HttpConnector,
) -> BoxCloneSyncService<Uri, TokioIo<tokio::net::TcpStream>, BoxError> {
    match proxy {
        Some(proxy) if proxy.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("socks5")) => {
            BoxCloneSyncService::new(SocksV5::new(proxy.clone(), tcp).map_err(BoxError::from))
        }
        Some(proxy) => {
            let mut tunnel = Tunnel::new(proxy.clone(), tcp);
            if let Some(value) = basic_auth(proxy) {
                tunnel = tunnel.with_auth(value);
            }
            BoxCloneSyncService::new(tunnel.map_err(BoxError::from))
        }
        None => BoxCloneSyncService::new(tcp.map_err(BoxError::from)),
    }
}

/// `Proxy-Authorization: Basic ...` from the proxy URL's user info,
/// percent-decoded as Go's url package decodes it.
fn basic_auth(proxy: &Uri) -> Option<http::HeaderValue> {
    let info = userinfo(proxy)?;
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    let decode = |s: &str| percent_decode(s);
    let mut value = http::HeaderValue::from_str(&format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", decode(user), decode(password)))
    ))
    .ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: &str, no_proxy: &str) -> Environment {
        Environment {
            https_proxy: https.into(),
            http_proxy: "http://plain:3128".into(),
            no_proxy: no_proxy.into(),
            cgi: false,
        }
    }

    fn via(server: &str, e: &Environment) -> Option<String> {
        proxy_for(None, &server.parse().unwrap(), e).unwrap().map(|u| u.to_string())
    }

    /// The hosts of Go's own table (net/http, UseProxyTests, NO_PROXY
    /// "foobar.com, .barbaz.net"), with what httpproxy's matcher decides.
    #[test]
    fn go_use_proxy_table() {
        let no_proxy = "foobar.com, .barbaz.net";
        for (host, proxied) in [
            ("localhost", false),
            ("127.0.0.1", false),
            ("127.0.0.2", false),
            ("[::1]", false),
            ("[::2]", true),
            ("barbaz.net", true),
            ("foobar.com", false),
            ("foofoobar.com", true),
            ("baz.com", true),
            ("localhost.net", true),
            ("local.localhost", true),
            ("barbarbaz.net", true),
            ("www.barbaz.net", false),
            ("www.foobar.com", false),
        ] {
            let got = via(&format!("https://{host}:6443"), &env("http://proxy:3128", no_proxy)).is_some();
            assert_eq!(got, proxied, "{host}");
        }
    }

    #[test]
    fn no_proxy_entries() {
        let e = |n: &str| env("http://proxy:3128", n);
        let p = |s: &str, n: &str| via(s, &e(n)).is_some();
        assert!(!p("https://10.1.2.3", "10.0.0.0/8"));
        assert!(p("https://11.1.2.3", "10.0.0.0/8"));
        assert!(!p("https://[fd00::5]:6443", "fd00::/8"));
        assert!(!p("https://10.1.2.3:6443", "10.1.2.3:6443"));
        assert!(p("https://10.1.2.3:6443", "10.1.2.3:443"));
        assert!(!p("https://10.1.2.3", "10.1.2.3:443"), "the scheme's port");
        assert!(!p("https://[fd00::5]:6443", "[fd00::5]:6443"));
        assert!(!p("https://api.corp.example", "*"));
        assert!(!p("https://api.corp.example", "corp.example"));
        assert!(!p("https://corp.example", "corp.example"));
        assert!(!p("https://api.corp.example", ".corp.example"));
        assert!(p("https://corp.example", ".corp.example"));
        assert!(!p("https://api.corp.example", "*.corp.example"));
        assert!(!p("https://API.Corp.Example:6443", "corp.example:6443"));
        assert!(p("https://api.corp.example:6443", "corp.example:443"));
        assert!(!p("https://api.corp.example", " , ,x.example,, corp.example ,"), "empty entries are skipped");
        assert!(p("https://api.corp.example", ":6443,[]:1,/8"), "malformed entries are ignored");
        assert!(!p("https://localhost:6443", ""), "localhost is never proxied");
        assert!(!p("https://127.9.9.9:6443", ""), "nor loopback");
    }

    #[test]
    fn which_variable_and_which_url() {
        let e = env("proxy.corp:3128", "");
        assert_eq!(via("https://api.example", &e).as_deref(), Some("http://proxy.corp:3128/"));
        assert_eq!(via("http://api.example", &e).as_deref(), Some("http://plain:3128/"));
        assert_eq!(
            via("https://api.example", &env("socks5://127.0.0.1:1080", "")).as_deref(),
            Some("socks5://127.0.0.1:1080/")
        );
        assert_eq!(via("https://api.example", &env("", "")), None);
        let cgi = Environment { cgi: true, ..e.clone() };
        assert!(proxy_for(None, &"http://api.example".parse().unwrap(), &cgi).is_err());
        assert!(proxy_for(None, &"https://api.example".parse().unwrap(), &cgi).unwrap().is_some());
        // The kubeconfig's proxy-url wins, for loopback and NO_PROXY hosts too.
        let star = env("http://envproxy:1", "*");
        let got =
            proxy_for(Some("socks5://127.0.0.1:1080"), &"https://127.0.0.1:6443".parse().unwrap(), &star).unwrap();
        assert_eq!(got.unwrap().to_string(), "socks5://127.0.0.1:1080/");
    }

    #[test]
    fn bad_proxy_urls_are_named_without_their_password() {
        for (url, needle) in [
            ("ftp://u:SECRETPW@p:21", "scheme \"ftp\""),
            ("socks5h://u:SECRETPW@p:1080", "scheme \"socks5h\""),
            ("socks5://u:SECRETPW@p:1080", "SOCKS5 proxy with user:password"),
            ("http://u:SECRETPW@p:3128 x", "not a URL"),
        ] {
            let err = format!(
                "{:#}",
                proxy_for(Some(url), &"https://h".parse().unwrap(), &Environment::default()).unwrap_err()
            );
            assert!(err.contains(needle) && !err.contains("SECRETPW"), "{url}: {err}");
        }
        let proxy: Uri = "http://u:SECRETPW@p:3128".parse().unwrap();
        assert!(!shown(&proxy).contains("SECRETPW"));
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let value = basic_auth(&"http://us%40er:p%3Aw+d@p:3128".parse().unwrap()).unwrap();
        assert_eq!(value.to_str().unwrap(), format!("Basic {}", STANDARD.encode("us@er:p:w+d")));
        assert!(basic_auth(&"http://p:3128".parse().unwrap()).is_none());
    }
}
