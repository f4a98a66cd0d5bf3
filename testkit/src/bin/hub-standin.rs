//! `hub-standin`: answers like clusternet-hub behind a real kube-apiserver's
//! aggregator (APIService v1alpha1.proxies.clusternet.io), recording every
//! request as one JSON line.
//!
//! ```text
//! hub-standin --listen 127.0.0.1:PORT --cert SERVING.crt --key SERVING.key \
//!     --client-ca FRONT_PROXY_CA.crt --record RECORD.jsonl [--fail <cluster-id>=<kind> ...] \
//!     [--forward <cluster-id>=<apiserver URL> ... --child-ca CHILD_CA.crt]
//! ```
//!
//! `--forward` makes the stand-in do for that cluster what clusternet-hub's
//! exchanger does: forward to the real child apiserver (`direct` → the URL,
//! `https/<host[:port]>/...` → that host), with the child credentials of the
//! user extras (`clusternet-token` → `Authorization: Bearer`, the
//! `clusternet-certificate`/`clusternet-privatekey` pair → the TLS client
//! certificate; a pair that does not match → 400 invalid key pair in header).
//! Other clusters get the built-in answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use testkit::{FailureKind, Recorder, RecorderConfig, TlsMaterial};

const USAGE: &str = "usage: hub-standin --listen ADDR:PORT --cert FILE --key FILE [--client-ca FILE] --record FILE [--fail CLUSTER-ID=KIND ...] [--forward CLUSTER-ID=URL ... [--child-ca FILE]]";

struct Args {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    record: PathBuf,
    failures: BTreeMap<String, FailureKind>,
    forwards: BTreeMap<String, String>,
    child_ca: Option<PathBuf>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = None;
    let mut cert = None;
    let mut key = None;
    let mut client_ca = None;
    let mut record = None;
    let mut failures = BTreeMap::new();
    let mut forwards = BTreeMap::new();
    let mut child_ca = None;
    while let Some(flag) = argv.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(USAGE.to_string());
        }
        let mut value =
            || inline.clone().or_else(|| argv.next()).ok_or_else(|| format!("{name} needs a value; {USAGE}"));
        match name.as_str() {
            "--listen" => {
                let v = value()?;
                listen = Some(v.parse::<SocketAddr>().map_err(|e| format!("--listen {v:?}: {e}"))?);
            }
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--client-ca" => client_ca = Some(PathBuf::from(value()?)),
            "--record" => record = Some(PathBuf::from(value()?)),
            "--fail" => {
                let v = value()?;
                let (id, kind) = v.split_once('=').ok_or_else(|| format!("--fail {v:?}: expected CLUSTER-ID=KIND"))?;
                if id.is_empty() {
                    return Err(format!("--fail {v:?}: empty cluster ID"));
                }
                let kind: FailureKind = kind.parse().map_err(|e| format!("--fail {v:?}: {e}"))?;
                failures.insert(id.to_string(), kind);
            }
            "--forward" => {
                let v = value()?;
                let (id, url) = v.split_once('=').ok_or_else(|| format!("--forward {v:?}: expected CLUSTER-ID=URL"))?;
                if id.is_empty() || !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("--forward {v:?}: expected CLUSTER-ID=http(s)://HOST[:PORT][/PATH]"));
                }
                forwards.insert(id.to_string(), url.to_string());
            }
            "--child-ca" => child_ca = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {flag:?}; {USAGE}")),
        }
    }
    let missing = |n: &str| format!("{n} is required; {USAGE}");
    Ok(Args {
        listen: listen.ok_or_else(|| missing("--listen"))?,
        cert: cert.ok_or_else(|| missing("--cert"))?,
        key: key.ok_or_else(|| missing("--key"))?,
        client_ca,
        record: record.ok_or_else(|| missing("--record"))?,
        failures,
        forwards,
        child_ca,
    })
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
    let recorder = Recorder::start(RecorderConfig {
        failures: args.failures,
        listen: Some(args.listen),
        tls: Some(tls),
        record_file: Some(args.record.clone()),
        forwards: args.forwards,
        child_ca_pem: args.child_ca.as_ref().map(|p| read(p, "--child-ca")).transpose()?,
    })
    .map_err(|e| format!("cannot start: {e}"))?;
    println!("hub-standin listening on {}", recorder.url());
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
