//! How the generated kubeconfig authenticates to the parent apiserver:
//! anonymously, with a parent token, with the parent user's own credentials,
//! or with the CI job's OIDC ID token (fetched by an exec plugin).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_yaml::Mapping;

use super::child::read_token;
use super::validate;
use crate::error::usage;
use crate::kubeconfig::flatten;
use crate::kubeconfig::select::Selection;
use crate::secret::Secret;

/// Environment variable that may hold the parent token.
pub const TOKEN_ENV: &str = "CLUSTERNET_PARENT_TOKEN";

/// How the generated kubeconfig is to authenticate to the parent, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// As `system:anonymous`.
    Anonymous,
    /// With the selected parent user's own credentials.
    Keep,
    /// With a parent token from this source.
    Token(TokenSource),
    /// With an OIDC ID token from this source, fetched by the exec plugin.
    Oidc(super::oidc::Source),
}

impl Method {
    /// The method's name, for the trace.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Anonymous => "Anonymous",
            Method::Keep => "Keep",
            Method::Token(_) => "Token",
            Method::Oidc(_) => "Oidc",
        }
    }
}

/// The parent authentication of the generated kubeconfig, ready to write.
#[derive(Debug, Clone)]
pub enum ParentAuth {
    /// `username: system:anonymous`: kubectl sends Basic auth that no
    /// kube-apiserver >= 1.19 authenticates, so the request is anonymous.
    Anonymous,
    /// `token: <parent token>`, e.g. the clusternet-hub-proxy service account's.
    Token(Secret),
    /// The parent user's own entry, made self-contained.
    Keep { user_name: String, user: Mapping },
    /// `exec:` that runs this binary's `oidc-token`: no token in the file.
    Oidc { exec: Mapping },
}

/// Where a parent token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Given by the caller.
    Given(GivenToken),
    /// The clusternet-hub-proxy service account's Secret in this namespace.
    HubSecret { namespace: String },
    /// The TokenRequest API, for the clusternet-hub-proxy service account in
    /// this namespace.
    TokenRequest { namespace: String, ttl: Duration },
}

/// A parent token the caller gave: on the command line, in a file (or
/// stdin), or in [`TOKEN_ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GivenToken {
    Flag(Secret),
    File(PathBuf),
    Env(Secret),
}

impl GivenToken {
    pub fn reads_stdin(&self) -> bool {
        matches!(self, GivenToken::File(p) if p.as_os_str() == "-")
    }

    /// Reads and checks the token.
    pub fn read(&self) -> Result<Secret> {
        match self {
            // Checked and trimmed alike from every source, as the child token.
            GivenToken::Flag(t) => validate::token_from_file(t.expose().as_bytes(), "--parent-token"),
            GivenToken::Env(t) => validate::token_from_file(t.expose().as_bytes(), TOKEN_ENV),
            GivenToken::File(path) => read_token(path, "--parent-token-file"),
        }
    }
}

/// Builds the parent authentication from a token already read (for `token`)
/// or the selected user (for `keep`).
pub fn build(method: &Method, token: Option<Secret>, selection: &Selection) -> Result<ParentAuth> {
    match (method, token) {
        (Method::Anonymous, _) => Ok(ParentAuth::Anonymous),
        (Method::Token(_), Some(token)) => Ok(ParentAuth::Token(token)),
        (Method::Token(_), None) => Err(usage("--parent-auth token needs a parent token")),
        (Method::Oidc(source), _) => Ok(ParentAuth::Oidc { exec: source.exec_entry()? }),
        (Method::Keep, _) => {
            selection.require_user().context("--parent-auth keep")?;
            let user = flatten::flatten_user(selection.user, selection.user_dir, selection.user_name)
                .context("--parent-auth keep")?;
            Ok(ParentAuth::Keep { user_name: selection.user_name.to_string(), user })
        }
    }
}
