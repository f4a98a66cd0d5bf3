//! `exec`: run a command against child clusters, each time with `KUBECONFIG`
//! set to a kubeconfig generated for one cluster by `gen`'s own pipeline
//! ([`generate::produce`]), written to a private temporary file for as long as
//! the command runs.
//!
//! Three stages: [`resolve`] turns the flags into `gen`'s settings and how to
//! run; the pipeline produces one entry per cluster; [`runner`] runs the
//! command (the processes and signals), and [`report`] decides what the
//! outcome means (tags, summary, exit code).

pub mod report;
pub mod runner;

use std::ffi::OsString;
use std::io::Write as _;

use anyhow::{Context as _, Result};

use self::report::{Cluster, OWN_FAILURE};
use self::runner::{Job, Running};
use crate::cli::{ExecArgs, GenArgs, OutputArgs, SummaryFormat};
use crate::error::usage;
use crate::generate::{self, Env, Settings};
use crate::kubeconfig::emit;
use crate::notes;

/// How the command runs, resolved from the flags.
#[derive(Debug)]
pub struct Plan {
    pub command: Vec<OsString>,
    pub parallel: usize,
    pub fail_fast: bool,
    pub summary: SummaryFormat,
}

/// Runs `exec`; the exit code it ends with (see `exec --help`). An error is
/// exec's own failure (usage, or [`OWN_FAILURE`]), and no command ran.
pub fn run(args: ExecArgs) -> Result<u8> {
    let result = resolve(args, Env::from_process()).and_then(|(settings, plan)| execute(&settings, &plan));
    notes::flush();
    result
}

/// The flags: the selection and credentials become `gen`'s settings (the
/// same rules, the same errors), the rest how to run.
pub fn resolve(args: ExecArgs, env: Env) -> Result<(Settings, Plan)> {
    let ExecArgs { source, parallel, fail_fast, output, timeout, command } = args;
    if command.first().is_none_or(|p| p.is_empty()) {
        return Err(usage("give the command to run after --, e.g. -- kubectl get nodes"));
    }
    if source.targets.no_current_context {
        return Err(usage("--no-current-context is for gen: each kubeconfig of exec has one context, the current one"));
    }
    // Nothing is written where `gen` would write: the runner writes each entry.
    let out = OutputArgs::unused();
    let gen_args = GenArgs { source, out, verify: false, write_unverified: false, timeout };
    let settings = Settings::resolve(gen_args, env)?;
    Ok((settings, Plan { command, parallel: usize::from(parallel), fail_fast, summary: output }))
}

fn execute(settings: &Settings, plan: &Plan) -> Result<u8> {
    let produced = generate::produce(settings)?;
    notes::flush();
    let objects: Vec<(Option<(&str, &str)>, &str)> = produced
        .targets
        .iter()
        .map(|t| (t.cluster.as_ref().map(|c| (c.namespace.as_str(), c.name.as_str())), t.id.as_str()))
        .collect();
    let labels = report::labels(&objects);
    let mut jobs = Vec::new();
    for ((target, entry), label) in produced.targets.iter().zip(&produced.entries).zip(labels) {
        let doc = emit::document(std::slice::from_ref(entry), Some(&entry.name));
        jobs.push(Job {
            cluster: Cluster {
                label,
                namespace: target.cluster.as_ref().map(|c| c.namespace.clone()),
                id: target.id.to_string(),
                name: target.cluster.as_ref().map_or_else(|| target.id.to_string(), |c| c.name.clone()),
            },
            kubeconfig: emit::render(&doc, emit::Format::Yaml)?,
        });
    }
    let how = Running { command: &plan.command, parallel: plan.parallel, fail_fast: plan.fail_fast };
    let finished = runner::run(&jobs, &how)?;
    let code = report::exit_code(&finished.outcomes, finished.interrupted);
    // Written, not printed: a closed stdout (`| head`) is an error like any
    // other write (status 141, as for gen), not a panic.
    match plan.summary {
        SummaryFormat::Table if jobs.len() > 1 => {
            let _ = std::io::stderr().write_all(report::table(&finished.outcomes).as_bytes());
        }
        SummaryFormat::Table => {}
        SummaryFormat::Json => {
            let mut out = std::io::stdout().lock();
            out.write_all(report::json(&finished.outcomes, code).as_bytes())
                .and_then(|()| out.flush())
                .context("writing the summary to stdout")?;
        }
    }
    Ok(code)
}

/// The exit code of an error of exec's own: usage (2) or [`OWN_FAILURE`].
pub fn failure_code(err: &anyhow::Error) -> u8 {
    if crate::error::is_usage(err) { 2 } else { OWN_FAILURE }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::generate::Destination;
    use crate::generate::targets::Wanted;

    fn args(argv: &[&str]) -> ExecArgs {
        let cli = Cli::try_parse_from(["clusternet-kubeconfig", "exec"].iter().chain(argv)).unwrap();
        match cli.command {
            Command::Exec(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    const ID: &str = "dc91021d-2361-4f6d-a404-7c33b9e01118";

    #[test]
    fn flags_become_gens_settings_and_how_to_run() {
        let argv = [
            "--kubeconfig",
            "/k/config",
            "--cluster-id",
            ID,
            "--token",
            "t",
            "--parallel",
            "3",
            "--fail-fast",
            "-o",
            "json",
        ];
        let a = args(&[&argv[..], &["--", "kubectl", "get", "ns"]].concat());
        let (settings, plan) = resolve(a, Env::default()).unwrap();
        assert!(matches!(&settings.wanted, Wanted::Named { ids, names, .. } if ids.len() == 1 && names.is_empty()));
        assert_eq!(settings.destination, Destination::Stdout);
        assert!(!settings.verify && !settings.dry_run);
        assert_eq!(plan.command, ["kubectl", "get", "ns"]);
        assert_eq!((plan.parallel, plan.fail_fast, plan.summary), (3, true, SummaryFormat::Json));
    }

    #[test]
    fn gens_usage_errors_and_exec_own_are_usage_errors() {
        for argv in [
            &["--cluster-id", ID, "--token", "t", "--no-current-context", "--", "true"][..],
            &["--cluster-id", ID, "--cluster-id", ID, "--token", "t", "--", "true"],
            &["--cluster-id", ID, "--token", "t", "--", ""],
        ] {
            let err = resolve(args(argv), Env::default()).unwrap_err();
            assert_eq!(failure_code(&err), 2, "{argv:?}: {err:#}");
        }
        assert_eq!(failure_code(&anyhow::anyhow!("a file")), OWN_FAILURE);
    }
}
