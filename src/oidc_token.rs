//! `oidc-token`: the exec credential plugin of `--parent-auth oidc`. kubectl
//! (or any client-go tool) runs it for the generated user and caches what it
//! prints until `expirationTimestamp`; then runs it again.

use std::io::Write as _;

use anyhow::{Context as _, Result};

use crate::cli::OidcTokenArgs;
use crate::cluster::{actions, client};
use crate::credentials::oidc::{self, Source};
use crate::error::usage;

pub fn run(args: OidcTokenArgs) -> Result<()> {
    let source = Source::new(
        &args.audience,
        args.token_env.as_deref(),
        args.token_file.as_deref(),
        ["--audience", "--token-env", "--token-file"],
    )
    .map_err(|e| usage(format!("{e:#}")))?;
    let token = client::block_on(actions::fetch(&source, args.timeout))??;
    crate::trace::line(|| format!("OIDC token from {}: {}", source.describe(), token.describe()));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", oidc::exec_credential(&token)).and_then(|()| out.flush()).context("writing to stdout")
}
