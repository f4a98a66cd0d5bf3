//! The documentation stays true and findable: the reference's usage block
//! lists exactly the flags each subcommand has, every sample any document
//! shows is what the tool prints, the README stays short with a table of
//! contents, and every relative link leads to a file and heading that exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
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

/// Where the full usage block lives, linked from the README.
const REFERENCE: &str = ".github/docs/reference.md";

/// The repository's own documents: the README and every file it sends a
/// reader to. Samples and links are checked in all of them.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> =
        ["README.md", ".github/SECURITY.md", ".github/release.md", "tests/README.md", "benches/README.md"]
            .iter()
            .map(|p| root.join(p))
            .collect();
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join(".github/docs"))
        .expect(".github/docs holds the reference documents")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    for doc in &docs {
        assert!(doc.is_file(), "{} is missing", doc.display());
    }
    docs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A document's name relative to the repository, for messages.
fn shown(path: &Path) -> String {
    let path = &path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).display().to_string()
}

#[test]
fn reference_usage_block_matches_each_subcommands_flags() {
    let reference = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE));
    let usage = reference.split("\n## Usage\n").nth(1).expect("a Usage section in the reference");
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
                problems.push(format!("the reference lists subcommand {sub}, which does not exist"));
                continue;
            };
            // A hidden flag is not in --help either.
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let (Some(long), short) = (arg.get_long(), arg.get_short()) else { continue };
                let long = format!("--{long}");
                let by_short = short.is_some_and(|s| words.contains(format!("-{s}").as_str()));
                if !global.contains(&long) && !listed.contains(&long) && !by_short {
                    problems.push(format!("{sub}: {long} is in --help but not in the reference usage block"));
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
                problems.push(format!("global: {missing} is in --help but not in the reference usage block"));
            }
        }
        for extra in listed.difference(&real) {
            problems.push(format!("{sub}: {extra} is in the reference usage block but not in --help"));
        }
    }
    let subs: BTreeSet<&str> = documented.iter().map(|(s, _)| s.as_str()).collect();
    for sub in cli.get_subcommands().map(|c| c.get_name()).filter(|n| *n != "help") {
        if !subs.contains(sub) {
            problems.push(format!("subcommand {sub} is missing from the reference usage block"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A document's sample: the shell script in the `<!-- sample: ... -->` comment
/// above a code block, and that block, which is what the script prints.
struct Sample {
    doc: String,
    line: usize,
    script: String,
    shown: String,
}

/// Every `<!-- sample:` comment of a document and the code block after it.
fn samples(name: &str, readme: &str) -> Vec<Sample> {
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
            rest =
                lines.get(i).unwrap_or_else(|| panic!("{name} line {line}: unterminated sample comment")).to_string();
        }
        i += 1;
        assert!(
            lines.get(i).is_some_and(|l| l.starts_with("```")),
            "{name} line {line}: a sample comment must be followed by a code block"
        );
        i += 1;
        let mut shown = String::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            shown.push_str(lines[i]);
            shown.push('\n');
            i += 1;
        }
        out.push(Sample { doc: name.to_string(), line, script: script.trim().to_string(), shown });
    }
    out
}

/// Whether the tool's `actual` output is what the document shows: line by
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
            return Err(format!("line {}: the document shows\n  {want}\nthe tool prints\n  {got}", n + 1));
        }
    }
    if shown.len() != actual.len() {
        return Err(format!(
            "the document shows {} lines, the tool prints {}:\n{}",
            shown.len(),
            actual.len(),
            actual.join("\n")
        ));
    }
    Ok(())
}

/// Every sample a document shows is the tool's real output (the README's
/// `gen` output, the reference's dry run, any other): the script in the
/// sample's comment runs under bash in a scratch copy of `examples/`, with
/// the binary under test first on PATH and HOME the scratch directory (shown
/// as `/home/me`), its stdout and stderr together compared with the block.
#[test]
fn document_samples_are_the_tools_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let samples: Vec<Sample> = documents().iter().flat_map(|doc| samples(&shown(doc), &read(doc))).collect();
    assert!(samples.len() >= 2, "the documents' samples were not found ({} found)", samples.len());
    assert!(
        samples.iter().any(|s| s.doc == "README.md" && s.script.contains("gen ")),
        "the README shows what its first command prints as a sample"
    );
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
            problems.push(format!(
                "{} line {}: the sample's script failed ({}):\n{printed}",
                sample.doc, sample.line, out.status
            ));
        } else if let Err(why) = matches(&sample.shown, &printed) {
            problems.push(format!("{} line {}: {why}", sample.doc, sample.line));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The README is read in five minutes: this many bytes at most.
const README_MAX_BYTES: usize = 26_000;

/// Lines of a markdown text outside fenced code blocks, with their numbers
/// (from 1): a `# comment` in a shell block is not a heading, a `[x](y)` in
/// a YAML block not a link.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((n + 1, line));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, markup and punctuation dropped
/// except `-` and `_`, each space a `-`; a repeated one gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        let Some(title) = line.get(hashes..).and_then(|t| t.strip_prefix(' ')) else { continue };
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// The targets of the inline links `[text](target)` of a text, with their
/// line numbers; code spans are not links.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        // Drop code spans, keeping what is around them: "[`exec`](x)" is a link.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            out.push((n, rest[..end].trim().to_string()));
            rest = &rest[end..];
        }
    }
    out
}

/// Whether `target`, a link in `doc`, leads somewhere: a file or folder that
/// exists, and for `#anchor` into a markdown file a heading it has.
fn broken(doc: &Path, target: &str) -> Option<String> {
    if target.starts_with("https://") || target.starts_with("http://") || target.starts_with("mailto:") {
        return None;
    }
    if target.is_empty() || target.contains(char::is_whitespace) {
        return Some(format!("a link to {target:?} leads nowhere"));
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let file = if path.is_empty() { doc.to_path_buf() } else { doc.parent().unwrap().join(path) };
    if !file.exists() {
        return Some(format!("{target}: {} does not exist", file.display()));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|e| e != "md") {
        return Some(format!("{target}: an anchor into a file that is not markdown"));
    }
    if anchors(&read(&file)).contains(anchor) {
        None
    } else {
        Some(format!("{target}: {} has no heading with anchor #{anchor}", shown(&file)))
    }
}

/// The README stays a five-minute read: under the size budget, with a table
/// of contents near the top that names every section and whose links all
/// lead to the README's own headings.
#[test]
fn readme_is_short_and_has_a_table_of_contents() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = read(&path);
    assert!(
        readme.len() < README_MAX_BYTES,
        "README.md is {} bytes, over {README_MAX_BYTES}: move reference material to .github/docs/ and link it",
        readme.len()
    );
    let headings: Vec<(usize, &str)> = prose(&readme).into_iter().filter(|(_, l)| l.starts_with("## ")).collect();
    let contents =
        headings.iter().position(|(_, l)| *l == "## Contents").expect("a '## Contents' section in README.md");
    assert_eq!(contents, 0, "the table of contents is the README's first section");
    let end = headings.get(1).map_or(usize::MAX, |(n, _)| *n);
    let start = headings[0].0;
    let toc: Vec<String> = links(&readme).into_iter().filter(|(n, _)| *n > start && *n < end).map(|(_, t)| t).collect();
    let own = anchors(&readme);
    let mut problems = Vec::new();
    for target in &toc {
        match target.strip_prefix('#') {
            Some(anchor) if own.contains(anchor) => {}
            _ => problems.push(format!("the table of contents links {target}, which is not a heading of README.md")),
        }
    }
    // Every section is listed, so a new one cannot hide below the fold.
    for (_, heading) in &headings[1..] {
        let anchor = anchors(heading).into_iter().next().unwrap();
        if !toc.iter().any(|t| t.strip_prefix('#') == Some(anchor.as_str())) {
            problems.push(format!("the table of contents does not list {heading:?} (#{anchor})"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every relative link in the README and the documents it sends readers to
/// points at a file that exists, and an `#anchor` at a heading of that file
/// (GitHub's anchors): moving a section cannot leave a dead link behind.
#[test]
fn documents_relative_links_resolve() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        for (line, target) in links(&read(&doc)) {
            checked += 1;
            if let Some(why) = broken(&doc, &target) {
                problems.push(format!("{} line {line}: {why}", shown(&doc)));
            }
        }
    }
    assert!(checked >= 40, "only {checked} links found: is the link reader broken?");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "# Troubleshooting `verify`\n```\n# not a heading\n```\n## `proxy`: the child\n### Unattended runs (CI)\n## Notes\n## Notes\n";
    let got: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(got, ["notes", "notes-1", "proxy-the-child", "troubleshooting-verify", "unattended-runs-ci"]);
    let links = links("see [`exec`'s](a.md#x) and `[not](a link)`\n```\n[no](link)\n```\n[b](c)\n");
    assert_eq!(links, [(1, "a.md#x".to_string()), (5, "c".to_string())]);
}
