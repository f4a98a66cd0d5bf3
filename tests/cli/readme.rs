//! The README's usage block lists exactly the flags each subcommand has.

use std::collections::BTreeSet;

use clap::CommandFactory;
use clusternet_kubeconfig::cli::Cli;

/// `--flag` words of a text.
fn flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2 && w.as_bytes()[2].is_ascii_lowercase())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_usage_block_matches_each_subcommands_flags() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let usage = readme.split("\n## Usage\n").nth(1).expect("a Usage section");
    let block = usage.split("```").nth(1).expect("a code block under Usage");
    // Per subcommand: its `--flag` words and its text (for short forms like -n).
    let mut documented: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for line in block.lines() {
        if let Some(rest) = line.strip_prefix("clusternet-kubeconfig ") {
            let sub = rest.split_whitespace().next().unwrap().to_string();
            documented.push((sub, BTreeSet::new()));
            texts.push(String::new());
        } else if line.starts_with("global:") {
            documented.push(("global".into(), BTreeSet::new()));
            texts.push(String::new());
        }
        if let Some(text) = texts.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
        if let Some((_, set)) = documented.last_mut() {
            // A flag named in prose ("kubectl's -v=N") is not one of ours to check.
            set.extend(flags(line).into_iter().filter(|f| f != "--"));
        }
    }
    let cli = Cli::command();
    let global: BTreeSet<String> = cli
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .chain(["--help".into(), "--version".into()])
        .collect();
    let mut problems = Vec::new();
    for ((sub, listed), text) in documented.iter().zip(&texts) {
        let words: BTreeSet<&str> = text.split(|c: char| c.is_whitespace() || "[]|(),".contains(c)).collect();
        let real: BTreeSet<String> = if sub == "global" {
            global.clone()
        } else {
            let Some(cmd) = cli.find_subcommand(sub) else {
                problems.push(format!("README lists subcommand {sub}, which does not exist"));
                continue;
            };
            // A hidden flag is not in --help either.
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let (Some(long), short) = (arg.get_long(), arg.get_short()) else { continue };
                let long = format!("--{long}");
                let by_short = short.is_some_and(|s| words.contains(format!("-{s}").as_str()));
                if !global.contains(&long) && !listed.contains(&long) && !by_short {
                    problems.push(format!("{sub}: {long} is in --help but not in the README usage block"));
                }
            }
            cmd.get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long())
                .map(|l| format!("--{l}"))
                .collect()
        };
        if sub == "global" {
            for missing in real.difference(listed) {
                problems.push(format!("global: {missing} is in --help but not in the README usage block"));
            }
        }
        for extra in listed.difference(&real) {
            problems.push(format!("{sub}: {extra} is in the README usage block but not in --help"));
        }
    }
    let subs: BTreeSet<&str> = documented.iter().map(|(s, _)| s.as_str()).collect();
    for sub in cli.get_subcommands().map(|c| c.get_name()).filter(|n| *n != "help") {
        if !subs.contains(sub) {
            problems.push(format!("subcommand {sub} is missing from the README usage block"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
