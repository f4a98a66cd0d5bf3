//! How the generated kubeconfig authenticates to the parent apiserver
//! (contract §4): anonymously, with a parent token, or with the parent user's
//! own credentials.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_yaml::Mapping;

use super::child::read_file_or_stdin;
use super::validate;
use crate::cli::{ParentAuthArgs, ParentAuthMode};
use crate::error::usage;
use crate::kubeconfig::flatten;
use crate::kubeconfig::select::Selection;
use crate::secret::Secret;

/// Environment variable that may hold the parent token.
pub const TOKEN_ENV: &str = "CLUSTERNET_PARENT_TOKEN";

#[derive(Debug, Clone)]
pub enum ParentAuth {
    /// `username: system:anonymous`: kubectl sends Basic auth that no
    /// kube-apiserver >= 1.19 authenticates, so the request is anonymous.
    Anonymous,
    /// `token: <parent token>`, e.g. the clusternet-hub-proxy service account's.
    Token(Secret),
    /// The parent user's own entry, made self-contained.
    Keep { user_name: String, user: Mapping },
}

/// Where a parent token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Flag(String),
    File(PathBuf),
    Env(String),
}

impl TokenSource {
    /// The one parent token source, if any; two are a usage error. With
    /// `--parent-auth token` and no source, the token is read from the parent
    /// cluster (the clusternet-hub-proxy Secret, or a TokenRequest).
    pub fn resolve(args: &ParentAuthArgs, env_token: Option<String>) -> Result<Option<TokenSource>> {
        let mut found = Vec::new();
        if let Some(t) = &args.parent_token {
            found.push(("--parent-token", TokenSource::Flag(t.clone())));
        }
        if let Some(p) = &args.parent_token_file {
            found.push(("--parent-token-file", TokenSource::File(p.clone())));
        }
        match env_token {
            Some(t) if !t.is_empty() => found.push((TOKEN_ENV, TokenSource::Env(t))),
            _ => {}
        }
        if found.len() > 1 {
            let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
            return Err(usage(format!("parent token given twice ({}); keep one", names.join(" and "))));
        }
        let source = found.pop();
        if args.parent_token_request && (args.parent_auth != ParentAuthMode::Token || source.is_some()) {
            return Err(usage("--parent-token-request is for --parent-auth token without a given parent token"));
        }
        match (args.parent_auth, source) {
            (ParentAuthMode::Anonymous | ParentAuthMode::Keep, Some((name, _))) if name != TOKEN_ENV => {
                Err(usage(format!("{name} is used only with --parent-auth token")))
            }
            // A parent token in the environment does not force token auth.
            (ParentAuthMode::Anonymous | ParentAuthMode::Keep, _) => Ok(None),
            (ParentAuthMode::Token, source) => Ok(source.map(|(_, s)| s)),
        }
    }

    pub fn reads_stdin(&self) -> bool {
        matches!(self, TokenSource::File(p) if p.as_os_str() == "-")
    }

    /// Reads and checks the token.
    pub fn read(&self) -> Result<Secret> {
        match self {
            TokenSource::Flag(t) => validate::token(t, "--parent-token").map_err(|e| usage(format!("{e:#}"))),
            TokenSource::Env(t) => validate::token(t, TOKEN_ENV),
            TokenSource::File(path) => {
                let origin = if path.as_os_str() == "-" {
                    "--parent-token-file - (stdin)".to_string()
                } else {
                    format!("--parent-token-file {}", path.display())
                };
                validate::token_from_file(&read_file_or_stdin(path, &origin)?, &origin)
            }
        }
    }
}

/// Builds the parent authentication from a token already read (for `token`)
/// or the selected user (for `keep`).
pub fn build(mode: ParentAuthMode, token: Option<Secret>, selection: &Selection) -> Result<ParentAuth> {
    match (mode, token) {
        (ParentAuthMode::Anonymous, _) => Ok(ParentAuth::Anonymous),
        (ParentAuthMode::Token, Some(token)) => Ok(ParentAuth::Token(token)),
        (ParentAuthMode::Token, None) => Err(usage("--parent-auth token needs a parent token")),
        (ParentAuthMode::Keep, _) => {
            selection.require_user().context("--parent-auth keep")?;
            let user = flatten::flatten_user(selection.user, selection.user_dir, selection.user_name)
                .context("--parent-auth keep")?;
            Ok(ParentAuth::Keep { user_name: selection.user_name.to_string(), user })
        }
    }
}
