//! `completions`: print a shell completion script generated from the clap model.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "clusternet-kubeconfig", &mut script);
    std::io::stdout().write_all(&script).context("writing the completion script to stdout")
}
