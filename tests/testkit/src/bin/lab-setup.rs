//! `lab-setup`: the files `tests/lab-env/lab.sh` starts the loopback lab with, made
//! from testkit's `lab` module (the constants the lab tests use).
//!
//! ```text
//! lab-setup files --state DIR --apiserver-port N --child-port N --hub-port N --canned-port N --oidc-port N --k8s-version V
//!     pki/ (every CA, serving and client certificate, service-account keys),
//!     admin.kubeconfig, kcm.kubeconfig, child.kubeconfig, audit-policy.yaml, manifests/*.json,
//!     the OIDC issuer's files and authentication-config.yaml
//! lab-setup noanon-kubeconfig --state DIR --port N
//!     noanon.kubeconfig: the lab admin on kube-apiserver-noanon
//! lab-setup env --state DIR --k8s-version V --etcd-version V
//!     lab.env: the ports (from ports.env), paths and versions of the running lab
//! lab-setup child-token --state DIR
//!     child/sa.token: a token for the real child's service account (kubectl create token)
//! lab-setup deployer-secrets --state DIR --child-port N
//!     child/deployer.token and manifests/deployer.json: the child-cluster-deployer
//!     Secrets clusternet-agent would store on the parent (kubectl create token)
//! lab-setup seed-many --count N
//!     N more ManagedClusters and their namespaces, as a List (JSON) on stdout
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use testkit::lab::{self, Kubeconfig, Ports, State, Versions};

const USAGE: &str = "usage: lab-setup files --state DIR --apiserver-port N --child-port N --hub-port N --canned-port N --oidc-port N --k8s-version V | noanon-kubeconfig --state DIR --port N | env --state DIR --k8s-version V --etcd-version V | child-token --state DIR | deployer-secrets --state DIR --child-port N | seed-many --count N";

/// `--name value` pairs after the subcommand.
struct Flags(BTreeMap<String, String>);

impl Flags {
    fn parse(argv: &[String], known: &[&str]) -> Result<Flags, String> {
        let mut flags = BTreeMap::new();
        let mut it = argv.iter();
        while let Some(name) = it.next() {
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown argument {name:?}; {USAGE}"));
            }
            let value = it.next().ok_or_else(|| format!("{name} needs a value; {USAGE}"))?;
            flags.insert(name.clone(), value.clone());
        }
        for name in known {
            if !flags.contains_key(*name) {
                return Err(format!("{name} is required; {USAGE}"));
            }
        }
        Ok(Flags(flags))
    }

    fn get(&self, name: &str) -> &str {
        &self.0[name]
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        self.get(name).parse().map_err(|_| format!("{name}: not a number: {:?}", self.get(name)))
    }

    fn state(&self) -> State {
        State { dir: PathBuf::from(self.get("--state")) }
    }
}

fn run(argv: &[String]) -> Result<(), String> {
    let (command, rest) = argv.split_first().ok_or(USAGE)?;
    match command.as_str() {
        "files" => {
            let known = [
                "--state",
                "--apiserver-port",
                "--child-port",
                "--hub-port",
                "--canned-port",
                "--oidc-port",
                "--k8s-version",
            ];
            let f = Flags::parse(rest, &known)?;
            let ports = Ports {
                apiserver: f.number("--apiserver-port")?,
                child: f.number("--child-port")?,
                hub: f.number("--hub-port")?,
                canned: f.number("--canned-port")?,
                oidc: f.number("--oidc-port")?,
            };
            let state = f.state();
            state.write_pki().map_err(|e| format!("writing {}: {e}", state.dir.join("pki").display()))?;
            state.write_kubeconfigs(&ports).map_err(|e| format!("writing kubeconfigs: {e}"))?;
            state.write_oidc(ports.oidc).map_err(|e| format!("writing the OIDC issuer's files: {e}"))?;
            state.write_audit_policy().map_err(|e| format!("writing the audit policy: {e}"))?;
            state
                .write_manifests(&ports, f.get("--k8s-version"), &lab::rfc3339(now()))
                .map_err(|e| format!("writing manifests: {e}"))
        }
        "noanon-kubeconfig" => {
            let f = Flags::parse(rest, &["--state", "--port"])?;
            let out = f.state().dir.join("noanon.kubeconfig");
            f.state()
                .write_kubeconfig(&out, &Kubeconfig::admin(f.number("--port")?))
                .map_err(|e| format!("writing {}: {e}", out.display()))
        }
        "env" => {
            let f = Flags::parse(rest, &["--state", "--k8s-version", "--etcd-version"])?;
            let versions =
                Versions { kubernetes: f.get("--k8s-version").to_string(), etcd: f.get("--etcd-version").to_string() };
            let state = f.state();
            state
                .write_env(&versions, &lab::rfc3339(now()))
                .map_err(|e| format!("writing {}/lab.env: {e}", state.dir.display()))
        }
        "child-token" => {
            let f = Flags::parse(rest, &["--state"])?;
            f.state().write_child_token().map(drop).map_err(|e| format!("the child's token: {e}"))
        }
        "deployer-secrets" => {
            let f = Flags::parse(rest, &["--state", "--child-port"])?;
            f.state()
                .write_deployer_secrets(f.number("--child-port")?)
                .map_err(|e| format!("the deployer Secrets: {e}"))
        }
        "seed-many" => {
            let f = Flags::parse(rest, &["--count"])?;
            println!("{}", lab::many_manifest(f.number("--count")?));
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-setup: {e}");
            ExitCode::FAILURE
        }
    }
}
