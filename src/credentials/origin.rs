//! Where a generated entry's child credential came from: what a kubeconfig
//! may record about its credential, never the credential itself.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::names::ObjectRef;

/// A token to ask the child's TokenRequest API for, with the child credential
/// `gen` holds: for `service_account`, valid for `ttl` (the child may shorten it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildTokenRequest {
    pub service_account: ObjectRef,
    pub ttl: Duration,
}

/// The origin of the child credential in one generated user entry.
///
/// One value per target of `gen`; the credential's value is never part of it,
/// so it may be written into the kubeconfig as a record of what the entry holds.
///
/// - [`Flag`](Self::Flag): a value on the command line (`--token`, or
///   `--client-certificate-data` with `--client-key-data`).
/// - [`Files`](Self::Files): files named by a flag (`--token-file`, where `-`
///   is stdin; `--client-certificate` with `--client-key`, certificate first).
/// - [`ChildKubeconfig`](Self::ChildKubeconfig): the user of a context of
///   `--child-kubeconfig` (its current context when `context` is `None`).
/// - [`Env`](Self::Env): an environment variable (`CLUSTERNET_CHILD_TOKEN`).
/// - [`CredentialsFile`](Self::CredentialsFile): the entry of the
///   `--credentials` file under `key` (a cluster name, namespace/name or ID).
/// - [`Hub`](Self::Hub): the token of the Secret `secret` that Clusternet's
///   agent stores on the parent (`child-cluster-deployer` in the
///   ManagedCluster's namespace): the child's cluster-admin credential.
/// - [`TokenRequest`](Self::TokenRequest): a token the child issued through
///   its TokenRequest API, asked for with the credential from `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOrigin {
    Flag {
        flag: &'static str,
    },
    Files {
        flag: &'static str,
        paths: Vec<PathBuf>,
    },
    ChildKubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    Env {
        variable: &'static str,
    },
    CredentialsFile {
        path: PathBuf,
        key: String,
    },
    Hub {
        secret: ObjectRef,
    },
    TokenRequest {
        /// The service account the token belongs to, on the child.
        service_account: ObjectRef,
        /// The lifetime asked for (`expirationSeconds`).
        requested_ttl: Duration,
        /// When the token expires, as the child said (`status.expirationTimestamp`).
        expiration: SystemTime,
        /// The credential the token was asked for with; it is not in the entry.
        base: Box<CredentialOrigin>,
    },
}

/// `t` in RFC 3339, UTC, as Kubernetes writes timestamps (`2026-11-29T13:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    crate::kubeconfig::provenance::Timestamp::from(t).to_rfc3339()
}

/// A duration in whole seconds as Go writes one, without zero units: `1h`,
/// `720h`, `59m58s`, `30s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if out.is_empty() { "0s".to_string() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_as_kubernetes_writes_them() {
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(720 * 3600)), "720h");
        assert_eq!(human(Duration::from_secs(3598)), "59m58s");
        assert_eq!(human(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human(Duration::ZERO), "0s");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_950_245);
        assert_eq!(rfc3339(t), "2026-11-29T11:04:05Z");
    }
}
