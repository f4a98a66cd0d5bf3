//! `completions`: print a shell completion script generated from the clap model.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};

/// The name the scripts complete: the installed binary's.
pub const BIN_NAME: &str = "clusternet-kubeconfig";

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let script = script(args.shell);
    std::io::stdout().write_all(script.as_bytes()).context("writing the completion script to stdout")
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN_NAME, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    match shell {
        Shell::Bash => fix_bash_names(&script, BIN_NAME),
        Shell::Fish => script + &fish_positional_values(&Cli::command(), BIN_NAME),
        _ => script,
    }
}

/// clap_complete's fish script completes the values of options but not of
/// positional arguments (`completions <shell>`); these lines add them, with
/// the script's own "using subcommand" condition.
fn fish_positional_values(command: &clap::Command, bin: &str) -> String {
    let condition = format!("__fish_{}_using_subcommand", bin.replace('-', "_"));
    let mut lines = String::new();
    for sub in command.get_subcommands() {
        for arg in sub.get_positionals() {
            let values = visible_values(arg);
            if !values.is_empty() {
                lines.push_str(&format!(
                    "complete -c {bin} -n \"{condition} {}\" -f -a \"{}\"\n",
                    sub.get_name(),
                    values.join(" ")
                ));
            }
        }
    }
    lines
}

/// The values of an argument that completions offer (its visible possible values).
pub fn visible_values(arg: &clap::Arg) -> Vec<String> {
    arg.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_string()).collect()
}

/// clap_complete's bash script names a subcommand's state `<bin>__subcmd__<sub>`
/// with each `-` of the binary name turned into `__` where it sets the state,
/// but into `__subcmd__` in the `case` arms that read it; with a hyphenated
/// name such as ours no arm ever matches and completion stops after the
/// subcommand. The arms are renamed to the names that are set.
fn fix_bash_names(script: &str, bin: &str) -> String {
    let set = format!("{}__subcmd__", bin.replace('-', "__"));
    let read = format!("{}__subcmd__", bin.replace('-', "__subcmd__"));
    script.replace(&read, &set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bash_state_that_is_read_is_set() {
        let script = script(Shell::Bash);
        let set: Vec<&str> =
            script.lines().filter_map(|l| l.trim().strip_prefix("cmd=\"").and_then(|r| r.strip_suffix('"'))).collect();
        let arms: Vec<&str> = script
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("clusternet__") && l.ends_with(')') && !l.contains(','))
            .map(|l| l.trim_end_matches(')'))
            .collect();
        assert!(arms.len() >= 5, "{arms:?}");
        for arm in arms {
            assert!(set.contains(&arm) || arm == "clusternet__kubeconfig", "case arm {arm} is never set");
        }
    }
}
