//! Shell completions, run in the real shells: bash (the completion function the
//! script registers, called as bash calls it), zsh (an interactive zsh on a
//! pseudo-terminal via zsh/zpty, pressing Tab) and fish (`complete -C`).
//! The cases come from the clap model: every subcommand, every option of each,
//! and every value of each option that has a fixed set.
//! zsh and fish must be installed (`bash tests/run.sh` installs them); a missing shell fails.

use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use clusternet_kubeconfig::cli::Cli;

use crate::support::*;

/// One case: the words typed so far (the last one is being completed) and
/// words that must be offered.
struct Case {
    words: Vec<String>,
    want: Vec<String>,
}

fn cases() -> Vec<Case> {
    let cli = Cli::command();
    let bin = "clusternet-kubeconfig".to_string();
    let mut cases = vec![Case {
        words: vec![bin.clone(), String::new()],
        want: cli.get_subcommands().map(|c| c.get_name().to_string()).filter(|n| n != "help").collect(),
    }];
    for sub in cli.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = sub.get_name().to_string();
        let longs: Vec<String> = sub
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .filter(|l| l != "--help")
            .collect();
        if !longs.is_empty() {
            cases.push(Case { words: vec![bin.clone(), name.clone(), "--".into()], want: longs });
        }
        for arg in sub.get_arguments().filter(|a| a.get_action().takes_values()) {
            let values = clusternet_kubeconfig::completions::visible_values(arg);
            if values.is_empty() {
                continue;
            }
            let mut words = vec![bin.clone(), name.clone()];
            if let Some(long) = arg.get_long() {
                words.push(format!("--{long}"));
            }
            words.push(String::new());
            cases.push(Case { words, want: values });
        }
    }
    // A path flag completes file names.
    cases.push(Case {
        words: vec![bin.clone(), "gen".into(), "--kubeconfig".into(), "par".into()],
        want: vec!["parent.yaml".into()],
    });
    cases
}

fn script(s: &Scratch, shell: &str) -> String {
    ok(&mut s.bare(&["completions", shell]))
}

/// The folder of the binary under test (the static one under
/// tests/static.sh), put first on the shells' PATH.
fn bin_dir() -> PathBuf {
    bin().parent().unwrap().to_path_buf()
}

fn shell(name: &str) -> Command {
    let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().unwrap();
    assert!(
        found.status.success(),
        "{name} is not installed: install it (apt-get install {name}), or run `bash tests/run.sh`, which installs what the tests need"
    );
    Command::new(name)
}

/// Checks every case with `run(case) -> offered text`; reports all misses at once.
fn check(shell_name: &str, run: impl Fn(&Case) -> String + Sync) {
    let cases = cases();
    assert!(cases.len() >= 8, "too few cases: {}", cases.len());
    let results: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases.iter().map(|c| scope.spawn(|| run(c))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut misses = Vec::new();
    for (case, offered) in cases.iter().zip(&results) {
        let plain = strip_terminal_codes(offered);
        for want in &case.want {
            let found = plain.split(|c: char| c.is_whitespace() || c.is_control()).any(|w| w == want);
            if !found {
                misses.push(format!("{:?}: {want} missing from {offered:?}", case.words.join(" ")));
            }
        }
    }
    assert!(misses.is_empty(), "{shell_name} completion:\n{}", misses.join("\n"));
}

/// The text without ANSI escape sequences (`ESC [ ... letter`).
fn strip_terminal_codes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    let s = Scratch::new();
    s.write("completion.bash", &script(&s, "bash"));
    check("bash", |case| {
        let quoted: Vec<String> = case.words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source ./completion.bash\nCOMP_WORDS=({})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
             _clusternet__kubeconfig clusternet-kubeconfig \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            quoted.join(" ")
        );
        let out = shell("bash").arg("--norc").arg("-c").arg(program).current_dir(s.dir.path()).output().unwrap();
        assert!(out.status.success(), "bash: {}", stderr(&out));
        stdout(&out)
    });
}

#[test]
fn fish_completes_subcommands_flags_and_values() {
    let s = Scratch::new();
    s.write("completion.fish", &script(&s, "fish"));
    check("fish", |case| {
        let line = case.words.join(" ");
        let program = format!("source ./completion.fish; complete -C '{line}'");
        let out = shell("fish").arg("--no-config").arg("-c").arg(program).current_dir(s.dir.path()).output().unwrap();
        assert!(out.status.success(), "fish: {}", stderr(&out));
        // `complete -C` prints "candidate<TAB>description".
        stdout(&out).lines().map(|l| l.split('\t').next().unwrap_or("")).collect::<Vec<_>>().join("\n")
    });
}

/// Drives an interactive zsh on a pseudo-terminal: compinit with the script on
/// fpath, the line typed, Tab twice (complete, then list), and the screen read back.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty || exit 3
fdir=$1 bdir=$2 input=$3
zpty z zsh -f -i
zpty -w z "PS1='> '; PATH=$bdir:\$PATH; fpath=($fdir \$fpath); autoload -Uz compinit; compinit -u -D; LISTMAX=1000; unsetopt menu_complete auto_menu; setopt auto_list list_ambiguous; print -r -- SET''UP-DONE"
zpty -r z chunk "*SETUP-DONE*" >/dev/null || exit 4
zpty -w -n z "$input"$'\t'
sleep 1
zpty -w -n z $'\t'
sleep 1
out=
while zpty -r -t z chunk; do out+=$chunk; done
zpty -d z
print -r -- "$out"
"#;

#[test]
fn zsh_completes_subcommands_flags_and_values() {
    let s = Scratch::new();
    s.write("fn/_clusternet-kubeconfig", &script(&s, "zsh"));
    s.write("drive.zsh", ZSH_DRIVER);
    let fpath = s.path("fn");
    check("zsh", |case| {
        let line = case.words.join(" ");
        let out = shell("zsh")
            .args(["-f", "drive.zsh"])
            .arg(&fpath)
            .arg(bin_dir())
            .arg(&line)
            .current_dir(s.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "zsh: {}", stderr(&out));
        // Only what follows the typed line is the completion.
        let screen = stdout(&out);
        screen.split_once(line.trim_end()).map_or(screen.clone(), |(_, after)| after.to_string())
    });
}
