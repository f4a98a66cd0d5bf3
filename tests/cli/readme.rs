//! The README's usage block lists exactly the flags each subcommand has, and
//! every sample it shows is what the tool prints.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

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

/// A README sample: the shell script in the `<!-- sample: ... -->` comment
/// above a code block, and that block, which is what the script prints.
struct Sample {
    line: usize,
    script: String,
    shown: String,
}

/// Every `<!-- sample:` comment of the README and the code block after it.
fn samples(readme: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let lines: Vec<&str> = readme.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(first) = lines[i].trim_start().strip_prefix("<!-- sample:") else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let mut script = String::new();
        let mut rest = first.to_string();
        loop {
            if let Some(end) = rest.find("-->") {
                script.push_str(&rest[..end]);
                break;
            }
            script.push_str(&rest);
            script.push('\n');
            i += 1;
            rest = lines.get(i).unwrap_or_else(|| panic!("README line {line}: unterminated sample comment")).to_string();
        }
        i += 1;
        assert!(
            lines.get(i).is_some_and(|l| l.starts_with("```")),
            "README line {line}: a sample comment must be followed by a code block"
        );
        i += 1;
        let mut shown = String::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            shown.push_str(lines[i]);
            shown.push('\n');
            i += 1;
        }
        out.push(Sample { line, script: script.trim().to_string(), shown });
    }
    out
}

/// Whether the tool's `actual` output is what the README shows: line by
/// line, where a shown line ending in `...` stands for any line that starts
/// with the rest (a long base64 value, cut), and a shown line starting with
/// `$ ` is the command itself, not output.
fn matches(shown: &str, actual: &str) -> Result<(), String> {
    let shown: Vec<&str> = shown.lines().filter(|l| !l.starts_with("$ ")).collect();
    let actual: Vec<&str> = actual.lines().collect();
    for (n, pair) in shown.iter().zip(actual.iter()).enumerate() {
        let (want, got) = pair;
        let ok = match want.strip_suffix("...") {
            Some(prefix) => got.starts_with(prefix),
            None => want == got,
        };
        if !ok {
            return Err(format!("line {}: README shows\n  {want}\nthe tool prints\n  {got}", n + 1));
        }
    }
    if shown.len() != actual.len() {
        return Err(format!("README shows {} lines, the tool prints {}:\n{}", shown.len(), actual.len(), actual.join("\n")));
    }
    Ok(())
}

/// Every sample the README shows is the tool's real output: the script in the
/// sample's comment runs under bash in a scratch copy of `examples/`, with
/// the binary under test first on PATH and HOME the scratch directory (shown
/// as `/home/me`), its stdout and stderr together compared with the block.
#[test]
fn readme_samples_are_the_tools_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let samples = samples(&readme);
    assert!(samples.len() >= 2, "the README's samples were not found ({} found)", samples.len());
    let bin_dir = crate::support::bin().parent().unwrap().to_path_buf();
    let mut problems = Vec::new();
    for sample in &samples {
        let home = tempfile::tempdir().unwrap();
        let copy = Command::new("cp").arg("-r").arg(root.join("examples")).arg(home.path()).status().unwrap();
        assert!(copy.success());
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &format!("exec 2>&1\n{}", sample.script)])
            .current_dir(home.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", home.path())
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).replace(&home.path().display().to_string(), "/home/me");
        if !out.status.success() {
            problems.push(format!("README line {}: the sample's script failed ({}):\n{printed}", sample.line, out.status));
        } else if let Err(why) = matches(&sample.shown, &printed) {
            problems.push(format!("README line {}: {why}", sample.line));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
