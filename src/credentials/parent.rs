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
    /// The one parent token source, if any; two are a usage error.
    pub fn resolve(
        args: &ParentAuthArgs,
        env_token: Option<String>,
    ) -> Result<Option<TokenSource>> {
        let mut found = Vec::new();
        if let Some(t) = &args.parent_token {
            found.push(("--parent-token", TokenSource::Flag(t.clone())));
        }
        if let Some(p) = &args.parent_token_file {
            found.push(("--parent-token-file", TokenSource::File(p.clone())));
        }
        match env_token {
            Some(t)
                if !t.is_empty()
                    || (found.is_empty() && args.parent_auth == ParentAuthMode::Token) =>
            {
                found.push((TOKEN_ENV, TokenSource::Env(t)))
            }
            _ => {}
        }
        if found.len() > 1 {
            let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
            return Err(usage(format!(
                "parent token given twice ({}); keep one",
                names.join(" and ")
            )));
        }
        let source = found.pop();
        match (args.parent_auth, &source) {
            (ParentAuthMode::Token, None) => Err(usage(format!(
                "--parent-auth token needs a parent token: --parent-token-file PATH (or -), or env {TOKEN_ENV}"
            ))),
            (ParentAuthMode::Anonymous | ParentAuthMode::Keep, Some((name, _)))
                if *name != TOKEN_ENV =>
            {
                Err(usage(format!(
                    "{name} is used only with --parent-auth token"
                )))
            }
            // A parent token in the environment does not force token auth.
            (ParentAuthMode::Anonymous | ParentAuthMode::Keep, Some(_)) => Ok(None),
            _ => Ok(source.map(|(_, s)| s)),
        }
    }

    pub fn reads_stdin(&self) -> bool {
        matches!(self, TokenSource::File(p) if p.as_os_str() == "-")
    }
}

/// Builds the parent authentication. Only `keep` looks at the selected user.
pub fn load(
    mode: ParentAuthMode,
    token: Option<&TokenSource>,
    selection: &Selection,
) -> Result<ParentAuth> {
    match mode {
        ParentAuthMode::Anonymous => Ok(ParentAuth::Anonymous),
        ParentAuthMode::Token => {
            let secret = match token {
                Some(TokenSource::Flag(t)) => {
                    validate::token(t, "--parent-token").map_err(|e| usage(format!("{e:#}")))?
                }
                Some(TokenSource::Env(t)) => validate::token(t, TOKEN_ENV)?,
                Some(TokenSource::File(path)) => {
                    let origin = if path.as_os_str() == "-" {
                        "--parent-token-file - (stdin)".to_string()
                    } else {
                        format!("--parent-token-file {}", path.display())
                    };
                    validate::token_from_file(&read_file_or_stdin(path, &origin)?, &origin)?
                }
                None => {
                    return Err(usage(format!(
                        "--parent-auth token needs a parent token: --parent-token-file PATH (or -), or env {TOKEN_ENV}"
                    )));
                }
            };
            Ok(ParentAuth::Token(secret))
        }
        ParentAuthMode::Keep => {
            let user =
                flatten::flatten_user(selection.user, selection.user_dir, selection.user_name)
                    .context("--parent-auth keep")?;
            Ok(ParentAuth::Keep {
                user_name: selection.user_name.to_string(),
                user,
            })
        }
    }
}
