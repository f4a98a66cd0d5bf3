//! Where a generated entry's child credential came from: what a kubeconfig
//! may record about its credential, never the credential itself.

use std::path::PathBuf;
use std::time::Duration;

use crate::clock::Timestamp;
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
        expiration: Timestamp,
        /// The credential the token was asked for with; it is not in the entry.
        base: Box<CredentialOrigin>,
    },
}
