//! Generate a dedicated kubeconfig that reaches a Clusternet child cluster
//! through the parent cluster's `proxies.clusternet.io` socket proxy.
//!
//! The data flows one way: load the parent kubeconfig ([`kubeconfig::load`]) →
//! select the context ([`kubeconfig::select`]) → route the server ([`route`]) →
//! attach credentials ([`credentials`]) → emit or write ([`kubeconfig::emit`],
//! [`kubeconfig::write`]). Subcommands live in one module each ([`generate`] for
//! `gen`, [`exec`], [`list`], [`verify`], [`completions`], [`maintain`] for
//! `status`, `refresh` and `prune`) and only wire those stages
//! together; [`cluster`] is the only module that talks to a cluster.

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod completions;
pub mod credentials;
pub mod error;
pub mod exec;
pub mod fs;
pub mod generate;
pub mod kubeconfig;
pub mod list;
pub mod maintain;
pub mod names;
pub mod notes;
pub mod oidc_token;
pub mod proxy;
pub mod redact;
pub mod route;
pub mod secret;
pub mod terminal;
pub mod trace;
pub mod verify;

use std::process::ExitCode;

use clap::Parser as _;

/// Parses the command line, runs the subcommand and prints its error once.
///
/// Usage errors (bad flags or flag values) exit with 2, like clap's own; a
/// run that did its work but found entries needing attention (`status`,
/// `refresh`, `prune`) exits with 3; every other failure exits with 1, except
/// in `exec`, which ends with its command's status and has a code of its own
/// for its failures (125).
pub fn run() -> ExitCode {
    let args = kubectl_verbosity(std::env::args_os().collect(), &mut |note| eprintln!("{note}"));
    // A credential where a path, name, ID or URL belongs is refused before
    // anything quotes it, clap's own errors included.
    if let Err(message) = cli::refuse_credentials(&args) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // --help, --version: printed as clap prints them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", cli::redact_clap_error(&e.render().to_string(), &args));
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    trace::enable(cli.verbose);
    // exec ends with its command's status; its own failures have codes of their own.
    let mut failure_code: fn(&anyhow::Error) -> u8 = |err| match (error::is_usage(err), error::is_attention(err)) {
        (true, _) => 2,
        (false, true) => 3,
        _ => 1,
    };
    let outcome = match cli.command {
        cli::Command::Gen(args) => generate::run(*args).map(|()| 0),
        cli::Command::List(args) => list::run(args).map(|()| 0),
        cli::Command::Verify(args) => verify::run(args).map(|()| 0),
        cli::Command::Exec(args) => {
            failure_code = exec::failure_code;
            exec::run(*args)
        }
        cli::Command::Completions(args) => completions::run(args).map(|()| 0),
        cli::Command::Status(args) => maintain::status::run(args).map(|()| 0),
        cli::Command::Refresh(args) => maintain::refresh::run(args).map(|()| 0),
        cli::Command::Prune(args) => maintain::prune::run(args).map(|()| 0),
        cli::Command::Proxy(args) => proxy::run(*args).map(|()| 0),
        cli::Command::OidcToken(args) => oidc_token::run(args).map(|()| 0),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        // stdout closed early (`gen | head -c 10`): quiet, as kubectl, which
        // SIGPIPE ends; the shell sees the same status, 128 + SIGPIPE.
        Err(err) if is_broken_pipe(&err) => ExitCode::from(141),
        Err(err) => {
            // One line, whatever the causes contain: scripts grep stderr. Causes
            // quote servers and cluster objects: escaped for the terminal.
            let line = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("error: {}", terminal::escape(&line));
            ExitCode::from(failure_code(&err))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// kubectl's habit `-v=6` (also `--v=6`, `-v6`, `-v 6`): this tool has one
/// trace level, `-v`. Instead of clap's puzzling "unexpected argument '-='",
/// a level above 0 is read as `-v` and 0 as no tracing, with a note. Only
/// arguments before `--` are looked at.
pub fn kubectl_verbosity(args: Vec<std::ffi::OsString>, note: &mut dyn FnMut(String)) -> Vec<std::ffi::OsString> {
    let level = |text: &str| -> Option<u32> {
        let digits = text
            .strip_prefix("--v=")
            .or_else(|| text.strip_prefix("-v="))
            .or_else(|| text.strip_prefix("-v").filter(|d| !d.is_empty()))?;
        digits.parse().ok()
    };
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter().peekable();
    let mut rest = false;
    while let Some(arg) = iter.next() {
        let text = arg.to_str().unwrap_or("");
        if rest || text == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let (written, n) = match level(text) {
            Some(n) => (text.to_string(), n),
            None if matches!(text, "-v" | "--v")
                && iter
                    .peek()
                    .and_then(|next| next.to_str())
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) =>
            {
                let next = iter.next().unwrap_or_default();
                let digits = next.to_string_lossy().into_owned();
                (format!("{text} {digits}"), digits.parse().unwrap_or(1))
            }
            None => {
                out.push(arg);
                continue;
            }
        };
        if n > 0 {
            note(format!(
                "note: {written} (kubectl's log level) read as -v: this tool has one trace level, -v/--verbose"
            ));
            out.push("--verbose".into());
        } else {
            note(format!("note: {written} (kubectl's log level 0) read as no tracing"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut notes = Vec::new();
        let out = kubectl_verbosity(args.iter().map(Into::into).collect(), &mut |n| notes.push(n));
        (out.into_iter().map(|a| a.into_string().unwrap()).collect(), notes)
    }

    #[test]
    fn kubectl_log_levels_become_verbose() {
        for form in [&["-v=6"][..], &["--v=6"], &["-v6"], &["-v", "6"], &["--v", "6"]] {
            let args: Vec<&str> = ["x", "list"].iter().chain(form).copied().collect();
            let (out, notes) = run(&args);
            assert_eq!(out, ["x", "list", "--verbose"], "{form:?}");
            assert!(notes[0].contains("read as -v"), "{notes:?}");
        }
        assert_eq!(run(&["x", "list", "-v=0"]).0, ["x", "list"]);
        for kept in [&["x", "-v", "list"][..], &["x", "list", "-n", "-v=6x"], &["x", "--", "-v=6"]] {
            assert_eq!(run(kept), (kept.iter().map(|s| s.to_string()).collect(), vec![]), "{kept:?}");
        }
    }
}
