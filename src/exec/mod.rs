//! `exec`: run a command against child clusters, each time with `KUBECONFIG`
//! set to a kubeconfig generated for one cluster by `gen`'s own pipeline
//! ([`generate::produce`]), written to a private temporary file for as long as
//! the command runs.
//!
//! Three stages: [`resolve`] turns the flags into the settings `gen` shares and how to
//! run; the pipeline produces one entry per cluster; [`runner`] runs the
//! command (the processes and signals), and [`report`] decides what the
//! outcome means (tags, summary, exit code).

pub mod report;
pub mod runner;

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use self::report::{Cluster, OWN_FAILURE, Outcome};
use self::runner::{Job, Running};
use crate::cli::{ExecArgs, SummaryFormat};
use crate::error::usage;
use crate::generate::targets::Unusable;
use crate::generate::{self, Env, Shared};
use crate::kubeconfig::emit;
use crate::notes;

/// How the command runs, resolved from the flags.
#[derive(Debug)]
pub struct Plan {
    pub command: Vec<OsString>,
    pub parallel: usize,
    pub fail_fast: bool,
    pub summary: SummaryFormat,
    /// `--results DIR`: a new or empty directory.
    pub results: Option<PathBuf>,
}

/// Runs `exec`; the exit code it ends with (see `exec --help`). An error is
/// exec's own failure (usage, or [`OWN_FAILURE`]), and no command ran; the
/// JSON summary (`-o json`, `--results`) is written then too, with the
/// error, so that a CI step that reads it never reads nothing.
pub fn run(args: ExecArgs) -> Result<u8> {
    let (format, results) = (args.output, args.results.clone());
    let result = resolve(args, Env::from_process()).and_then(|(shared, plan)| execute(&shared, &plan));
    notes::flush();
    let err = match result {
        Ok(code) => return Ok(code),
        Err(err) => err,
    };
    let outcomes = match err.chain().find_map(|c| c.downcast_ref::<Unusable>()) {
        Some(unusable) => unusable_outcomes(unusable),
        None => Vec::new(),
    };
    let line = format!("{err:#}").replace(['\n', '\r'], " ");
    if format == SummaryFormat::Table && outcomes.len() > 1 {
        let _ = std::io::stderr().write_all(report::table(&outcomes).as_bytes());
    }
    let json = report::json(&outcomes, failure_code(&err), Some(&line));
    // Into a new or empty directory only: never over another run's results.
    if let Some(dir) = results.filter(|d| std::fs::read_dir(d).map_or(!d.exists(), |mut e| e.next().is_none())) {
        let made = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir);
        let _ = made.and_then(|()| std::fs::write(dir.join("summary.json"), &json));
    }
    if format == SummaryFormat::Json {
        let _ = print_json(&json);
    }
    Err(err)
}

/// The clusters of a run refused for [`Unusable`] ones: all skipped, each
/// with its reason.
fn unusable_outcomes(unusable: &Unusable) -> Vec<Outcome> {
    let mut objects: Vec<(Option<(&str, &str)>, &str)> = unusable
        .usable
        .iter()
        .map(|(object, id)| (object.as_ref().map(|(ns, n)| (ns.as_str(), n.as_str())), id.as_str()))
        .collect();
    objects.extend(
        unusable
            .skipped
            .iter()
            .map(|s| (s.cluster.as_ref().map(|c| (c.namespace.as_str(), c.name.as_str())), s.id.as_str())),
    );
    let reasons = unusable
        .usable
        .iter()
        .map(|_| "not run: other selected clusters cannot be used (--allow-skip runs the others)".to_string())
        .chain(unusable.skipped.iter().map(|s| s.reason.clone()));
    report::labels(&objects)
        .into_iter()
        .zip(&objects)
        .zip(reasons)
        .map(|((label, (object, id)), reason)| Outcome::skipped(cluster(label, *object, id), reason))
        .collect()
}

fn cluster(label: String, object: Option<(&str, &str)>, id: &str) -> Cluster {
    Cluster {
        label,
        namespace: object.map(|(ns, _)| ns.to_string()),
        id: id.to_string(),
        name: object.map_or_else(|| id.to_string(), |(_, name)| name.to_string()),
    }
}

/// The JSON summary as the last line of stdout, on a line of its own.
fn print_json(json: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let newline = if runner::stdout_at_line_start() { "" } else { "\n" };
    out.write_all(newline.as_bytes())
        .and_then(|()| out.write_all(json.as_bytes()))
        .and_then(|()| out.flush())
        .context("writing the summary to stdout")
}

/// `DIR/summary.json` of `--results`.
fn write_summary_file(dir: &Path, json: &str) -> Result<()> {
    let path = dir.join("summary.json");
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))
}

/// The flags: the selection and credentials become the settings `gen` shares (the
/// same rules, the same errors), the rest how to run.
pub fn resolve(args: ExecArgs, env: Env) -> Result<(Shared, Plan)> {
    let ExecArgs { source, parallel, fail_fast, output, results, timeout, command } = args;
    if command.first().is_none_or(|p| p.is_empty()) {
        return Err(usage("give the command to run after --, e.g. -- kubectl get nodes"));
    }
    let shared = Shared::resolve(source, timeout, env)?;
    if let Some(dir) = &results {
        crate::error::refuse_dash("--results", Some(dir))?;
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) || dir.exists() && !dir.is_dir() {
            return Err(usage(format!(
                "--results {} is not a new or empty directory; give another (results of two runs are never mixed)",
                dir.display()
            )));
        }
    }
    Ok((shared, Plan { command, parallel: usize::from(parallel), fail_fast, summary: output, results }))
}

fn execute(shared: &Shared, plan: &Plan) -> Result<u8> {
    let produced = generate::produce(shared, None, generate::Verify::No)?;
    notes::flush();
    // The clusters run, then those skipped (--allow-skip), labelled together.
    let objects: Vec<(Option<(&str, &str)>, &str)> = produced
        .targets
        .iter()
        .map(|t| (t.cluster.as_ref().map(|c| (c.namespace.as_str(), c.name.as_str())), t.id.as_str()))
        .chain(
            produced
                .skipped
                .iter()
                .map(|s| (s.cluster.as_ref().map(|c| (c.namespace.as_str(), c.name.as_str())), s.id.as_str())),
        )
        .collect();
    let mut labels = report::labels(&objects).into_iter().zip(&objects);
    let mut jobs = Vec::new();
    for (entry, (label, (object, id))) in produced.entries.iter().zip(labels.by_ref()) {
        let doc = emit::document(std::slice::from_ref(entry), Some(&entry.name));
        jobs.push(Job { cluster: cluster(label, *object, id), kubeconfig: emit::render(&doc, emit::Format::Yaml)? });
    }
    let skipped: Vec<Outcome> = labels
        .zip(&produced.skipped)
        .map(|((label, (object, id)), s)| Outcome::skipped(cluster(label, *object, id), s.reason.clone()))
        .collect();
    let several = objects.len() > 1;
    if let Some(dir) = &plan.results {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating --results {}", dir.display()))?;
    }
    let how = Running {
        command: &plan.command,
        parallel: plan.parallel,
        fail_fast: plan.fail_fast,
        tagged: several,
        results: plan.results.as_deref(),
        capture_stdout: plan.summary == SummaryFormat::Json,
    };
    let finished = runner::run(&jobs, &how)?;
    let mut outcomes = finished.outcomes;
    outcomes.extend(skipped);
    let code = report::exit_code(&outcomes, finished.interrupted);
    let json = report::json(&outcomes, code, None);
    if let Some(dir) = &plan.results {
        write_summary_file(dir, &json)?;
    }
    // Written, not printed: a closed stdout (`| head`) is an error like any
    // other write (status 141, as for gen), not a panic.
    match plan.summary {
        SummaryFormat::Table if several || plan.results.is_some() => {
            let _ = std::io::stderr().write_all(report::table(&outcomes).as_bytes());
        }
        SummaryFormat::Table => {}
        SummaryFormat::Json => print_json(&json)?,
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
        let (shared, plan) = resolve(a, Env::default()).unwrap();
        assert!(matches!(&shared.wanted, Wanted::Named { ids, names, .. } if ids.len() == 1 && names.is_empty()));
        assert_eq!(plan.command, ["kubectl", "get", "ns"]);
        assert_eq!((plan.parallel, plan.fail_fast, plan.summary), (3, true, SummaryFormat::Json));
        assert_eq!(plan.results, None);
    }

    #[test]
    fn gens_usage_errors_and_exec_own_are_usage_errors() {
        for argv in [
            &["--cluster-id", ID, "--cluster-id", ID, "--token", "t", "--", "true"][..],
            &["--cluster-id", ID, "--token", "t", "--", ""],
        ] {
            let err = resolve(args(argv), Env::default()).unwrap_err();
            assert_eq!(failure_code(&err), 2, "{argv:?}: {err:#}");
        }
        assert_eq!(failure_code(&anyhow::anyhow!("a file")), OWN_FAILURE);
    }
}
