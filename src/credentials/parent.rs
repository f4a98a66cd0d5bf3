//! How the generated kubeconfig authenticates to the parent apiserver:
//! anonymously, with a parent token, or with the parent user's own credentials.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_yaml::Mapping;

use super::child::read_token_file;
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
    /// The parent token source, if any: a flag, else CLUSTERNET_PARENT_TOKEN
    /// (`env_token`). Two flags are a usage error; a flag wins over the
    /// variable, and a variable that is set but not used (another source, or
    /// a --parent-auth that takes no token) is a warning in `notes`. With
    /// `--parent-auth token` and no source, the token is read from the parent
    /// cluster (the clusternet-hub-proxy Secret, or a TokenRequest).
    pub fn resolve(
        args: &ParentAuthArgs,
        env_token: Option<String>,
        notes: &mut Vec<String>,
    ) -> Result<Option<TokenSource>> {
        let mut flags = Vec::new();
        if let Some(t) = &args.parent_token {
            flags.push(("--parent-token", TokenSource::Flag(t.clone())));
        }
        if let Some(p) = &args.parent_token_file {
            flags.push(("--parent-token-file", TokenSource::File(p.clone())));
        }
        if flags.len() > 1 {
            return Err(usage("parent token given twice (--parent-token and --parent-token-file); keep one"));
        }
        let flag = flags.pop();
        if let Some((name, _)) = &flag
            && args.parent_auth != ParentAuthMode::Token
        {
            return Err(usage(format!("{name} is used only with --parent-auth token")));
        }
        if args.parent_token_request && (args.parent_auth != ParentAuthMode::Token || flag.is_some()) {
            return Err(usage("--parent-token-request is for --parent-auth token without a given parent token"));
        }
        let env_set = env_token.as_deref().is_some_and(|t| !t.is_empty());
        let unused = match (&flag, args.parent_auth) {
            (Some((name, _)), _) => Some(format!("{name} is given (a flag wins)")),
            (None, ParentAuthMode::Token) if args.parent_token_request => {
                Some("--parent-token-request asks for a token instead".to_string())
            }
            (None, ParentAuthMode::Token) => None,
            (None, mode) => Some(format!(
                "--parent-auth is {}; pass --parent-auth token to use it",
                if mode == ParentAuthMode::Keep { "keep" } else { "anonymous" }
            )),
        };
        match unused {
            Some(why) => {
                if env_set {
                    notes.push(super::child::unused_env_warning(TOKEN_ENV, &why));
                }
                Ok(flag.map(|(_, s)| s))
            }
            // Set but empty is an error when read (a CI secret that is missing),
            // not a reason to fetch a token from the cluster instead.
            None => Ok(env_token.map(TokenSource::Env)),
        }
    }

    pub fn reads_stdin(&self) -> bool {
        matches!(self, TokenSource::File(p) if p.as_os_str() == "-")
    }

    /// Reads and checks the token.
    pub fn read(&self) -> Result<Secret> {
        match self {
            // Checked and trimmed alike from every source, as the child token.
            TokenSource::Flag(t) => validate::token_from_file(t.as_bytes(), "--parent-token"),
            TokenSource::Env(t) => validate::token_from_file(t.as_bytes(), TOKEN_ENV),
            TokenSource::File(path) => {
                let origin = if path.as_os_str() == "-" {
                    "--parent-token-file - (stdin)".to_string()
                } else {
                    format!("--parent-token-file {}", path.display())
                };
                let raw = crate::error::in_cwd(read_token_file(path, &origin), path)?;
                validate::token_from_file(&raw, &origin)
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
            let user = flatten::flatten_user(selection.user, selection.user_dir, selection.user_name)
                .context("--parent-auth keep")?;
            Ok(ParentAuth::Keep { user_name: selection.user_name.to_string(), user })
        }
    }
}
