//! `proxy`: the child cluster on a local port (or Unix socket) for clients
//! that do not implement kubeconfig impersonation in full (the Python and
//! JavaScript clients, curl), or that drop the server's path (`kubectl proxy`).
//!
//! [`Settings::resolve`] reads the flags; [`upstream_target`] turns either
//! input (a generated kubeconfig, or `gen`'s pipeline in memory) into one
//! [`Target`]; [`run`] binds, writes the proxy's kubeconfig when asked, and
//! serves ([`server`]) until SIGINT or SIGTERM.

pub mod context;
pub mod filter;
pub mod headers;
pub mod renew;
pub mod server;
pub mod settings;
pub mod watch;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_yaml::Mapping;

pub use self::settings::{Listen, Settings, Source};
use crate::cli::ProxyArgs;
use crate::cluster::client;
use crate::cluster::upstream::{Target, Upstream};
use crate::error::in_cwd;
use crate::generate;
use crate::kubeconfig::emit::{self, Entries};
use crate::kubeconfig::{select, write};

pub fn run(args: ProxyArgs) -> Result<()> {
    let settings = Settings::resolve(args, generate::Env::from_process())?;
    // Before the runtime: gen's pipeline runs its own when it asks the parent.
    let (target, inputs, minted) = upstream_target(&settings.source)?;
    client::block_on(serve(settings, target, &inputs, minted))?
}

/// The context the proxy forwards through, from either input, the files
/// read for it (never written over), and the tokens the proxy minted for it.
pub fn upstream_target(source: &Source) -> Result<(Target, Vec<PathBuf>, renew::Minted)> {
    match source {
        Source::Generated { kubeconfig, context } => {
            let loaded = generate::load_parent(kubeconfig)?;
            let selection = select::select(&loaded, context.as_deref()).map_err(|e| e.naming("--context"))?;
            crate::verify::refuse_unrouted(&selection, &loaded.describe())?;
            let context = selection.context_name.to_string();
            Ok((
                Target { kubeconfig: client::kubeconfig_for(&selection)?, context },
                loaded.files.clone(),
                renew::Minted::default(),
            ))
        }
        Source::Gen(settings) => {
            let produced = generate::produce(settings, None, generate::Verify::No)?;
            let [entry] = produced.entries.as_slice() else {
                bail!(
                    "{} clusters match; the proxy serves one: add -n NAMESPACE, or use --cluster-id",
                    produced.entries.len()
                );
            };
            let minted = renew::Minted::of(&produced);
            let target = Target { kubeconfig: client::kubeconfig_of(entry)?, context: entry.name.clone() };
            Ok((target, produced.inputs.clone(), minted))
        }
    }
}

async fn serve(settings: Settings, target: Target, inputs: &[PathBuf], minted: renew::Minted) -> Result<()> {
    let namespace = context_namespace(&target);
    let context = target.context.clone();
    let upstream = Upstream::connect(target, settings.timeout).await?;
    let (listener, shown, socket_file) = bind(&settings.listen).await?;
    if let Listen::Tcp(addr) = &settings.listen
        && !addr.ip().is_loopback()
    {
        eprintln!(
            "warning: listening on {shown}: whoever reaches this address acts as the child identity of context {context:?}; clients must name a host that --accept-hosts accepts"
        );
    }
    if let (Some(path), server::Listener::Tcp(l)) = (&settings.write_kubeconfig, &listener) {
        let addr = l.local_addr().context("the listening address")?;
        write_kubeconfig(path, &context, namespace.as_deref(), addr, inputs)?;
    }
    crate::trace::line(|| format!("forwarding to {} (context {context:?})", upstream.server));
    let mut out = std::io::stdout().lock();
    writeln!(out, "Starting to serve on {shown}").and_then(|()| out.flush()).context("writing to stdout")?;
    drop(out);
    let context = Arc::new(context::Context::new(upstream, settings.accept_hosts.clone()));
    let renewing = match settings.source {
        Source::Gen(pipeline) if minted.first().is_some() => {
            let renewal = renew::minted(Arc::from(pipeline), context.clone(), minted, settings.timeout);
            Some(tokio::spawn(renewal))
        }
        _ => None,
    };
    let accepting = tokio::spawn(server::accept(listener, context));
    let signal = shutdown_signal().await;
    accepting.abort();
    if let Some(renewing) = renewing {
        renewing.abort();
    }
    if let Some(path) = socket_file {
        let _ = std::fs::remove_file(path);
    }
    // SIGINT and SIGTERM are the normal end of a proxy: exit code 0.
    crate::trace::line(|| format!("{signal}: stopped"));
    Ok(())
}

/// The generated context's namespace, kept in the proxy's kubeconfig.
fn context_namespace(target: &Target) -> Option<String> {
    let named = target.kubeconfig.contexts.iter().find(|c| c.name == target.context)?;
    named.context.as_ref()?.namespace.clone()
}

/// Binds the listener: with the address to print, and the socket file to remove at the end.
async fn bind(listen: &Listen) -> Result<(server::Listener, String, Option<PathBuf>)> {
    match listen {
        Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => anyhow!(
                    "--port {}: {addr} is already in use (another proxy, or kubectl proxy?); pick another --port, or --port 0 for a free one",
                    addr.port()
                ),
                std::io::ErrorKind::PermissionDenied => anyhow!(
                    "--port {}: not allowed to listen on {addr} (ports below 1024 need privileges); pick another --port",
                    addr.port()
                ),
                _ => anyhow!("cannot listen on {addr} (--address, --port): {e}"),
            })?;
            let shown = listener.local_addr().context("the listening address")?.to_string();
            Ok((server::Listener::Tcp(listener), shown, None))
        }
        #[cfg(unix)]
        Listen::Unix(path) => {
            let listener = in_cwd(bind_unix(path), path)?;
            Ok((server::Listener::Unix(listener), path.display().to_string(), Some(path.clone())))
        }
        #[cfg(not(unix))]
        Listen::Unix(_) => bail!("--unix-socket needs a Unix system; use --port"),
    }
}

/// A Unix socket at `path` with mode 0600 from the start: bound in a private
/// directory next to it, restricted, then linked into place (which fails
/// rather than replace an existing file).
#[cfg(unix)]
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = path.display();
    if std::fs::symlink_metadata(path).is_ok() {
        bail!("--unix-socket {shown} already exists; remove it if no proxy listens there, or give another path");
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let private = tempfile::Builder::new()
        .prefix(".clusternet-proxy")
        .tempdir_in(dir)
        .map_err(|e| anyhow!("--unix-socket {shown}: cannot create a file in {}: {e}", dir.display()))?;
    let staged = private.path().join("s");
    let listener =
        tokio::net::UnixListener::bind(&staged).map_err(|e| anyhow!("--unix-socket {shown}: cannot listen: {e}"))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| anyhow!("--unix-socket {shown}: {e}"))?;
    std::fs::hard_link(&staged, path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow!("--unix-socket {shown} already exists; give another path"),
        _ => anyhow!("--unix-socket {shown}: {e}"),
    })?;
    Ok(listener)
}

/// The proxy's kubeconfig: its address as server, no user credentials, the
/// generated context's name and namespace. Mode 0600, never over an input.
fn write_kubeconfig(
    path: &Path,
    context: &str,
    namespace: Option<&str>,
    addr: SocketAddr,
    inputs: &[PathBuf],
) -> Result<()> {
    let entries = [proxy_entries(context, namespace, addr)];
    let text = emit::render(&emit::document(&entries, Some(context)), emit::Format::Yaml)?;
    in_cwd(
        write::write_new(path, &text, false, inputs).map_err(|e| e.flagged("--write-kubeconfig", PROXY_OFFERS)),
        path,
    )?;
    eprintln!("wrote context {context:?} to {} (mode 0600, server http://{})", path.display(), reachable(addr));
    Ok(())
}

/// The proxy writes a new file only: no --force, no stdout, no --name.
const PROXY_OFFERS: write::Offers = write::Offers { force: false, stdout: false, name: false };

/// The entries of the proxy's kubeconfig.
fn proxy_entries(context: &str, namespace: Option<&str>, addr: SocketAddr) -> Entries {
    let mut cluster = Mapping::new();
    // No TLS on the loopback hop, so nothing to verify; the JavaScript client
    // refuses an http:// server unless this says so.
    cluster.insert("insecure-skip-tls-verify".into(), true.into());
    cluster.insert("server".into(), format!("http://{}", reachable(addr)).into());
    Entries {
        name: context.to_string(),
        cluster,
        context: emit::context_entry(context, namespace, None),
        user: Mapping::new(),
    }
}

/// Where a local client reaches `addr`: loopback for an unspecified address.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                std::future::poll_fn(|cx| {
                    if int.poll_recv(cx).is_ready() {
                        std::task::Poll::Ready("SIGINT")
                    } else if term.poll_recv(cx).is_ready() {
                        std::task::Poll::Ready("SIGTERM")
                    } else {
                        std::task::Poll::Pending
                    }
                })
                .await
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_kubeconfig_has_no_credentials() {
        let addr: SocketAddr = "0.0.0.0:8001".parse().unwrap();
        let doc = emit::document(&[proxy_entries("clusternet-x", Some("dev"), addr)], Some("clusternet-x"));
        let text = emit::render(&doc, emit::Format::Yaml).unwrap();
        let view: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let cluster = &view["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "http://127.0.0.1:8001", "{text}");
        assert_eq!(cluster["insecure-skip-tls-verify"], true, "{text}");
        assert_eq!(view["users"][0]["user"], serde_yaml::Value::Mapping(Mapping::new()), "{text}");
        assert_eq!(view["contexts"][0]["context"]["namespace"], "dev", "{text}");
        assert_eq!(view["current-context"], "clusternet-x", "{text}");
        assert_eq!(reachable("[::]:1".parse().unwrap()).to_string(), "[::1]:1");
    }
}
