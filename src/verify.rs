//! `verify`: does a generated kubeconfig reach its child? The child's
//! `/version` and `/api` through the proxy, with the kubeconfig's own
//! credentials, and a diagnosis with a fix when not.

use std::time::Duration;

use anyhow::{Result, anyhow};
use serde_yaml::Value;

use crate::cli::VerifyArgs;
use crate::cluster::{client, probe};
use crate::kubeconfig::{load, select};

pub fn run(args: VerifyArgs) -> Result<()> {
    let source = load::parent_source(
        args.kubeconfig.as_deref(),
        std::env::var_os("KUBECONFIG"),
        std::env::var_os("HOME").map(Into::into),
    )?;
    let loaded = load::load_parent(&source)?;
    let selection = select::select(&loaded, args.context.as_deref(), "--context")?;
    let context = selection.context_name.to_string();
    let mut secrets = Vec::new();
    collect_strings(&Value::Mapping(selection.user.clone()), &mut secrets);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let kubeconfig = client::read_kubeconfig(&source)?;
    let outcome = client::block_on(probe::probe(kubeconfig, &context, timeout, &secrets))??;
    match outcome {
        Ok(reached) => {
            println!(
                "context {context:?}: child cluster reachable, Kubernetes {} (/version {} ms, /api {} ms)",
                reached.git_version,
                reached.version_latency.as_millis(),
                reached.api_latency.as_millis()
            );
            Ok(())
        }
        Err(failed) => Err(anyhow!("{}", failed.describe(&context))),
    }
}

/// Fields of a user entry that are never secret, and that the parent quotes in
/// its refusals (`users "clusternet" is forbidden: User "system:anonymous"
/// ...`): redacting them would hide who was refused.
const NOT_SECRET: &[&str] = &[
    "as",
    "as-groups",
    "as-uid",
    "username",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "tokenFile",
];

/// Every other string of a user entry: any of them may be a secret to redact.
fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Mapping(map) => map
            .iter()
            .filter(|(k, _)| k.as_str().is_none_or(|k| !NOT_SECRET.contains(&k)))
            .for_each(|(_, v)| collect_strings(v, out)),
        Value::Tagged(t) => collect_strings(&t.value, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_collected_names_are_not() {
        let user: Value = serde_yaml::from_str(
            "{as: clusternet, username: system:anonymous, token: PARENT, client-key-data: KEY, \
             as-user-extra: {clusternet-token: [CHILD]}, exec: {env: [{name: X, value: ENVSECRET}]}}",
        )
        .unwrap();
        let mut out = Vec::new();
        collect_strings(&user, &mut out);
        for secret in ["PARENT", "KEY", "CHILD", "ENVSECRET"] {
            assert!(out.iter().any(|s| s == secret), "{secret} missing from {out:?}");
        }
        assert!(!out.iter().any(|s| s == "clusternet" || s == "system:anonymous"), "{out:?}");
    }
}
