//! `hub-standin`: answers like clusternet-hub v0.18.1 behind a real
//! kube-apiserver's aggregator (APIService v1alpha1.proxies.clusternet.io),
//! recording every request as one JSON line.
//!
//! ```text
//! hub-standin --listen 127.0.0.1:PORT --cert SERVING.crt --key SERVING.key \
//!     --client-ca FRONT_PROXY_CA.crt --record RECORD.jsonl \
//!     --parent https://127.0.0.1:PORT --parent-ca CA.crt --parent-cert ADMIN.crt --parent-key ADMIN.key \
//!     [--feature-gates SocketConnection=true|false] [--canned-child 127.0.0.1:PORT] \
//!     [--request-timeout 60s] [--agents-socket STATE/hub-agents.sock]
//! ```
//!
//! `--agents-socket`: where agents (`agent-standin`, one per cluster) hold
//! their sessions; a cluster has one exactly while its agent is connected.
//!
//! `--request-timeout` is the hub's generic apiserver request timeout (Go
//! duration: `60s`, `1m0s`, `1500ms`; default one minute): a non-upgraded
//! request still going then is cut (its answer ends without its last chunk;
//! 504 when the child has not begun to answer). Answers are passed on as
//! they arrive.
//!
//! Which real-hub behaviours it models (the `hub` module of testkit has the
//! details): each cluster ID is looked up among the parent's ManagedClusters
//! (label `clusters.clusternet.io/cluster-id`) at each request; the checks
//! run in the hub's order (feature gate 503 for every ID, unknown ID 400,
//! missing `status.apiserverURL` 503 for `direct`, agent without a session
//! 400 when `status.useSocket`, bad certificate or key pair 400); the token
//! and the certificate pair are forwarded together, a lone certificate or key
//! is ignored; the child is dialled with TLS verification off; a location
//! without a path is redirected (301), `proxy/` and unknown schemes are 500;
//! dial and TLS errors are 500 Status without a reason, in Go's words; only
//! the headers the hub passes reach the child, never the clusternet-* extras.
//! An agent has a session exactly while its `agent-standin` is connected
//! (`Ready` plays no part); without `status.useSocket` the cluster is still
//! dialled through the tunnel: 500 `failed to find Session` with no session.
//! Answers stream; non-upgraded requests end at `--request-timeout`.
//!
//! `--canned-child` also serves, on another port, a tiny child apiserver that
//! accepts any credentials (`gitVersion` v1.32.13-standin): ManagedClusters
//! whose `status.apiserverURL` points there reach it through the hub like any
//! child.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use testkit::{Clusters, ParentApi, Recorder, RecorderConfig, TlsMaterial};

const USAGE: &str = "usage: hub-standin --listen ADDR:PORT --cert FILE --key FILE [--client-ca FILE] --record FILE --parent URL --parent-ca FILE --parent-cert FILE --parent-key FILE [--feature-gates SocketConnection=true|false] [--canned-child ADDR:PORT] [--request-timeout DURATION] [--agents-socket PATH]";

struct Args {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    record: PathBuf,
    parent: String,
    parent_ca: PathBuf,
    parent_cert: PathBuf,
    parent_key: PathBuf,
    socket_connection: bool,
    canned_child: Option<SocketAddr>,
    request_timeout: Option<Duration>,
    agents_socket: Option<PathBuf>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut flags = std::collections::BTreeMap::new();
    while let Some(flag) = argv.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(USAGE.to_string());
        }
        const KNOWN: [&str; 13] = [
            "--listen",
            "--cert",
            "--key",
            "--client-ca",
            "--record",
            "--parent",
            "--parent-ca",
            "--parent-cert",
            "--parent-key",
            "--feature-gates",
            "--canned-child",
            "--request-timeout",
            "--agents-socket",
        ];
        if !KNOWN.contains(&name.as_str()) {
            return Err(format!("unknown argument {flag:?}; {USAGE}"));
        }
        let value = inline.or_else(|| argv.next()).ok_or_else(|| format!("{name} needs a value; {USAGE}"))?;
        flags.insert(name, value);
    }
    let mut take = |n: &str| flags.remove(n);
    let required = |v: Option<String>, n: &str| v.ok_or_else(|| format!("{n} is required; {USAGE}"));
    let addr = |v: String, n: &str| v.parse::<SocketAddr>().map_err(|e| format!("{n} {v:?}: {e}"));
    let socket_connection = match take("--feature-gates").as_deref() {
        None | Some("SocketConnection=true") => true,
        Some("SocketConnection=false") => false,
        Some(other) => return Err(format!("--feature-gates {other:?}: expected SocketConnection=true|false")),
    };
    Ok(Args {
        listen: addr(required(take("--listen"), "--listen")?, "--listen")?,
        cert: required(take("--cert"), "--cert")?.into(),
        key: required(take("--key"), "--key")?.into(),
        client_ca: take("--client-ca").map(PathBuf::from),
        record: required(take("--record"), "--record")?.into(),
        parent: required(take("--parent"), "--parent")?,
        parent_ca: required(take("--parent-ca"), "--parent-ca")?.into(),
        parent_cert: required(take("--parent-cert"), "--parent-cert")?.into(),
        parent_key: required(take("--parent-key"), "--parent-key")?.into(),
        socket_connection,
        canned_child: take("--canned-child").map(|v| addr(v, "--canned-child")).transpose()?,
        request_timeout: take("--request-timeout").map(|v| go_duration(&v)).transpose()?,
        agents_socket: take("--agents-socket").map(PathBuf::from),
    })
}

/// A Go duration as the hub's flags take it: `60s`, `1m0s`, `1500ms`, `2m`.
fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("--request-timeout {text:?}: expected a duration such as 60s, 1m0s or 1500ms");
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        total += match &rest[..unit] {
            "h" => Duration::from_secs(n * 3600),
            "m" => Duration::from_secs(n * 60),
            "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            _ => return Err(bad()),
        };
        rest = &rest[unit..];
    }
    if total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

fn read(path: &PathBuf, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn run() -> Result<(), String> {
    let args = parse(std::env::args().skip(1))?;
    let tls = TlsMaterial {
        cert_chain_pem: read(&args.cert, "--cert")?,
        key_pem: read(&args.key, "--key")?,
        client_ca_pem: args.client_ca.as_ref().map(|p| read(p, "--client-ca")).transpose()?,
    };
    // Started first: the hub may be asked for a cluster behind it at once.
    let _canned_child = match args.canned_child {
        Some(addr) => {
            let child_tls = TlsMaterial { client_ca_pem: None, ..tls.clone() };
            let child = Recorder::start(RecorderConfig {
                listen: Some(addr),
                tls: Some(child_tls),
                serve_child: true,
                ..RecorderConfig::default()
            })
            .map_err(|e| format!("cannot start the canned child on {addr}: {e}"))?;
            println!("canned child listening on {}", child.url());
            Some(child)
        }
        None => None,
    };
    let parent = ParentApi {
        url: args.parent.clone(),
        ca_pem: read(&args.parent_ca, "--parent-ca")?,
        cert_pem: read(&args.parent_cert, "--parent-cert")?,
        key_pem: read(&args.parent_key, "--parent-key")?,
    };
    let recorder = Recorder::start(RecorderConfig {
        listen: Some(args.listen),
        tls: Some(tls),
        record_file: Some(args.record.clone()),
        clusters: Clusters::Parent(parent),
        feature_gate_off: !args.socket_connection,
        serve_child: false,
        request_timeout: args.request_timeout,
        agents_socket: args.agents_socket.clone(),
    })
    .map_err(|e| format!("cannot start: {e}"))?;
    let timeout = args.request_timeout.unwrap_or(testkit::DEFAULT_REQUEST_TIMEOUT);
    println!(
        "hub-standin listening on {} (SocketConnection={}, request timeout {timeout:?})",
        recorder.url(),
        args.socket_connection
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    recorder.wait();
    Err("the accept loop ended".to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hub-standin: {}", e.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_read_as_go_durations() {
        assert_eq!(go_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(go_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(go_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(go_duration("2m3s"), Ok(Duration::from_secs(123)));
        for bad in ["", "0s", "5", "s", "5x", "-1s", "1.5s"] {
            assert!(go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
