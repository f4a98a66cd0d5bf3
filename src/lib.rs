//! Generate a dedicated kubeconfig that reaches a Clusternet child cluster
//! through the parent cluster's `proxies.clusternet.io` socket proxy.
//!
//! The data flows one way: load the parent kubeconfig ([`kubeconfig::load`]) →
//! select the context ([`kubeconfig::select`]) → route the server ([`route`]) →
//! attach credentials ([`credentials`]) → emit or write ([`kubeconfig::emit`],
//! [`kubeconfig::write`]). Subcommands live in one module each ([`generate`] for
//! `gen`, [`list`], [`verify`], [`completions`]) and only wire those stages
//! together; [`cluster`] is the only module that talks to a cluster.

pub mod cli;
pub mod cluster;
pub mod completions;
pub mod credentials;
pub mod error;
pub mod generate;
pub mod kubeconfig;
pub mod list;
pub mod route;
pub mod secret;
pub mod terminal;
pub mod trace;
pub mod verify;

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line, runs the subcommand and prints its error once.
///
/// Usage errors (bad flags or flag values) exit with 2, like clap's own; every
/// other failure exits with 1.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    trace::enable(cli.verbose);
    let outcome = match cli.command {
        cli::Command::Gen(args) => generate::run(*args),
        cli::Command::List(args) => list::run(args),
        cli::Command::Verify(args) => verify::run(args),
        cli::Command::Completions(args) => completions::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // stdout closed early (`gen | head -c 10`): quiet, as kubectl, which
        // SIGPIPE ends; the shell sees the same status, 128 + SIGPIPE.
        Err(err) if is_broken_pipe(&err) => ExitCode::from(141),
        Err(err) => {
            // One line, whatever the causes contain: scripts grep stderr.
            let line = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("error: {line}");
            if error::is_usage(&err) { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}
