//! `oidc-issuer`: the lab's OpenID Connect issuer and GitHub Actions token
//! endpoint stand-in (testkit's `oidc` module), for the parent
//! kube-apiserver's `--authentication-config`.
//!
//! ```text
//! oidc-issuer --listen 127.0.0.1:PORT --cert SERVING.crt --key SERVING.key \
//!     --signing-key KEY.pem --request-token-file FILE --record MINTS.jsonl
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;

use testkit::TlsMaterial;
use testkit::oidc::Issuer;

const USAGE: &str = "usage: oidc-issuer --listen ADDR:PORT --cert FILE --key FILE --signing-key FILE --request-token-file FILE --record FILE";

fn run() -> Result<(), String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let known = ["--listen", "--cert", "--key", "--signing-key", "--request-token-file", "--record"];
    let mut flags = BTreeMap::new();
    let mut it = argv.iter();
    while let Some(name) = it.next() {
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown argument {name:?}; {USAGE}"));
        }
        flags.insert(name.as_str(), it.next().ok_or(USAGE)?.clone());
    }
    let get = |name: &str| flags.get(name).cloned().ok_or_else(|| format!("{name} is required; {USAGE}"));
    let read = |name: &str| get(name).and_then(|p| std::fs::read_to_string(&p).map_err(|e| format!("{name} {p}: {e}")));
    let tls = TlsMaterial { cert_chain_pem: read("--cert")?, key_pem: read("--key")?, client_ca_pem: None };
    let listener = std::net::TcpListener::bind(get("--listen")?).map_err(|e| format!("--listen: {e}"))?;
    let request_token = read("--request-token-file")?.trim().to_string();
    let record = Some(get("--record")?.into());
    let issuer = Issuer::serve(listener, &tls, &read("--signing-key")?, &request_token, record, String::new())
        .map_err(|e| e.to_string())?;
    eprintln!("oidc-issuer listening on {}", issuer.url());
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oidc-issuer: {e}");
            ExitCode::FAILURE
        }
    }
}
