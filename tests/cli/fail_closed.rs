//! Unattended runs fail closed: a selected cluster that cannot be used fails
//! `gen` and `exec` unless `--allow-skip`; a credential pasted where a path,
//! name, ID or URL belongs is never printed (every flag of every subcommand,
//! taken from clap's own description of the command line); `gen > file` does
//! not leave the token readable by others; `--merge-into` makes a missing
//! directory as kubectl does; `exec` output that machines can read.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use clap::CommandFactory as _;
use serde_json::Value;

use crate::support::*;

const ID_B: &str = "2a1e3c4d-0000-4000-8000-00000000000b";
const ID_C: &str = "2a1e3c4d-0000-4000-8000-00000000000c";

/// A JWT-shaped value (header `{"alg":"RS256","kid":"x"}`), as a service
/// account token looks.
const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2k6ZGVwbG95ZXIifQ.QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo";

/// Credentials for CLUSTER_ID and ID_B, none for ID_C.
fn scratch() -> Scratch {
    let s = Scratch::new();
    s.write(
        "creds.yaml",
        &format!("clusters:\n  {CLUSTER_ID}: {{tokenFile: child.token}}\n  {ID_B}: {{token: tok-b}}\n"),
    );
    s
}

const THREE: [&str; 8] =
    ["--cluster-id", CLUSTER_ID, "--cluster-id", ID_B, "--cluster-id", ID_C, "--credentials", "creds.yaml"];

fn run(s: &Scratch, args: &[&str]) -> Output {
    s.bare(args).output().unwrap()
}

#[test]
fn gen_with_a_cluster_without_credentials_fails_and_writes_nothing_unless_allow_skip() {
    let s = scratch();
    let generate = |extra: &[&str]| run(&s, &[&["gen", "--kubeconfig", "parent.yaml"][..], &THREE, extra].concat());
    let before = s.listing();
    let out = generate(&["--output-file", "fleet.kubeconfig"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("error: no credentials for") && lines[0].contains(ID_C), "{err}");
    assert!(
        lines[1].starts_with("error: 1 of the 3 selected clusters cannot be used") && lines[1].contains("--allow-skip")
    );
    assert_eq!(s.listing(), before, "nothing written");
    // Opted in: the others are written, the skipped one said.
    let out = generate(&["--output-file", "fleet.kubeconfig", "--allow-skip"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.lines().any(|l| l.starts_with("warning: no credentials for") && l.contains(ID_C)), "{err}");
    let view = kubectl_view(&s.path("fleet.kubeconfig"));
    assert_eq!(view["contexts"].as_array().unwrap().len(), 2);
    // --strict, the old way to ask for this, is still accepted (and the default).
    let out = generate(&["--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    fails(&generate(&["--strict", "--allow-skip"]), 2, "--strict and --allow-skip contradict each other");
}

fn exec(s: &Scratch, extra: &[&str], script: &str) -> Output {
    let mut cmd = s.bare(&[&["exec", "--kubeconfig", "parent.yaml"][..], &THREE, extra].concat());
    cmd.args(["--", "sh", "-c", script]).output().unwrap()
}

fn summary(out: &Output) -> Value {
    let text = stdout(out);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

fn rows(v: &Value) -> Vec<(String, String)> {
    let c = v["clusters"].as_array().unwrap();
    c.iter().map(|c| (c["cluster"].as_str().unwrap().into(), c["status"].as_str().unwrap().into())).collect()
}

#[test]
fn exec_with_a_cluster_without_credentials_runs_nothing_and_lists_it_unless_allow_skip() {
    let s = scratch();
    let out = exec(&s, &["-o", "json"], "echo ran");
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(!stdout(&out).contains("ran"), "nothing runs");
    let v = summary(&out);
    assert_eq!(v["exitCode"], 125);
    assert!(v["error"].as_str().unwrap().contains("1 of the 3 selected clusters cannot be used"), "{v}");
    assert_eq!(
        rows(&v),
        [(CLUSTER_ID.into(), "skipped".into()), (ID_B.into(), "skipped".into()), (ID_C.into(), "skipped".into())]
    );
    assert!(v["clusters"][2]["reason"].as_str().unwrap().starts_with("no credentials for"), "{v}");
    assert!(v["clusters"][0]["reason"].as_str().unwrap().starts_with("not run:"), "{v}");
    // --results: the same summary in DIR/summary.json, for the step that reads it.
    let out = exec(&s, &["--results", "r"], "echo ran");
    assert_eq!(out.status.code(), Some(125));
    let on_disk: Value = serde_json::from_str(&s.read("r/summary.json")).unwrap();
    assert_eq!((on_disk["exitCode"].as_u64(), rows(&on_disk).len()), (Some(125), 3), "{on_disk}");
    // The table says the same.
    let out = exec(&s, &[], "echo ran");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.lines().any(|l| l.starts_with(ID_C) && l.contains("skipped") && l.contains("no credentials for")));
    // Opted in: the others run, the skipped one is listed and is no failure.
    let out = exec(&s, &["-o", "json", "--allow-skip"], "echo ran");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = summary(&out);
    assert_eq!(
        rows(&v),
        [(CLUSTER_ID.into(), "succeeded".into()), (ID_B.into(), "succeeded".into()), (ID_C.into(), "skipped".into())]
    );
    assert_eq!(v["exitCode"], 0);
}

/// Every flag that takes a value (but a secret), of every subcommand, and a
/// stray argument: given a JWT, the value is never printed, the run ends
/// with 2 and the message names the flag.
#[test]
fn a_credential_given_where_a_path_name_id_or_url_belongs_is_never_printed() {
    let s = scratch();
    let cli = clusternet_kubeconfig::cli::Cli::command();
    let mut checked = 0;
    for sub in cli.get_subcommands() {
        let name = sub.get_name();
        for arg in sub.get_arguments() {
            let id = arg.get_id().as_str();
            if clusternet_kubeconfig::cli::SECRET_FLAGS.contains(&id) || !arg.get_action().takes_values() {
                continue;
            }
            let (forms, names) = if arg.is_positional() {
                if arg.is_last_set() {
                    continue;
                }
                (vec![vec![name.to_string(), JWT.into()]], String::new())
            } else {
                let flag = match arg.get_long() {
                    Some(long) => format!("--{long}"),
                    None => format!("-{}", arg.get_short().unwrap()),
                };
                (vec![vec![name.into(), flag.clone(), JWT.into()], vec![name.into(), format!("{flag}={JWT}")]], flag)
            };
            for argv in forms {
                let out = s.bare(&argv.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
                let (so, se) = (stdout(&out), stderr(&out));
                assert!(!so.contains(JWT) && !se.contains(JWT), "{argv:?} printed the value: {se}{so}");
                assert!(!se.contains("eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ"), "{argv:?}: {se}");
                assert_eq!(out.status.code(), Some(2), "{argv:?}: {se}");
                assert!(se.contains(&names) && se.contains("a JWT"), "{argv:?}: {se}");
                checked += 1;
            }
        }
        // A stray argument (swapped, or a variable expanded in the wrong place).
        if sub.get_arguments().all(|a| !a.is_positional()) {
            let out = s.bare(&[name, JWT]).output().unwrap();
            let se = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{name}: {se}");
            assert!(!se.contains(JWT) && se.contains("unexpected argument '<a JWT, not shown>'"), "{name}: {se}");
        }
    }
    assert!(checked > 60, "only {checked} flags checked");
    // The order of arguments swapped in a real line: the ID is refused first.
    let out = s.bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", JWT, "--token-file", CLUSTER_ID]).output();
    let se = stderr(&out.unwrap());
    assert!(se.contains("--cluster-id was given what looks like a JWT") && se.contains("--token-file -"), "{se}");
}

/// `gen > file` under umask 022: the shell makes the file 0644; the token in
/// it is for its owner only. `>>` to a file that holds something already is
/// left as it is, with a warning.
#[test]
fn gen_into_a_shell_redirection_is_private() {
    let s = scratch();
    let bin = bin();
    let sh = |script: &str| {
        Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&bin)
            .current_dir(s.path(""))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .output()
            .unwrap()
    };
    let generate = format!("\"$1\" gen --kubeconfig parent.yaml --cluster-id {CLUSTER_ID} --token-file child.token");
    let out = sh(&format!("umask 022; {generate} > child.kubeconfig"));
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(s.path("child.kubeconfig")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("note: stdout is the empty file"), "{}", stderr(&out));
    assert!(s.read("child.kubeconfig").contains(CHILD_TOKEN));
    // Appended to a file with content: not changed, but said.
    s.write("log.txt", "earlier\n");
    std::fs::set_permissions(s.path("log.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = sh(&format!("{generate} >> log.txt"));
    assert!(out.status.success());
    assert_eq!(std::fs::metadata(s.path("log.txt")).unwrap().permissions().mode() & 0o777, 0o644);
    let err = stderr(&out);
    assert!(err.starts_with("warning: stdout is the file") && err.contains("--output-file"), "{err}");
}

/// A fresh runner has no ~/.kube: kubectl makes it (0755 under umask 022,
/// client-go's MkdirAll), and so does --merge-into; the file is 0600.
#[test]
fn merge_into_a_fresh_home_makes_the_directory_as_kubectl_does() {
    let s = scratch();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let umask = |cmd: &mut Command| {
        let program = cmd.get_program().to_owned();
        let mut sh = Command::new("sh");
        sh.args(["-c", "umask 022; exec \"$@\"", "sh"]).arg(program).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.current_dir(cmd.get_current_dir().unwrap()).env("PATH", std::env::var_os("PATH").unwrap());
        sh.output().unwrap()
    };
    let kubectl_home = s.path("kubectl-home");
    std::fs::create_dir(&kubectl_home).unwrap();
    let mut kubectl = Command::new("kubectl");
    kubectl.args(["config", "set-cluster", "x", "--server", "https://127.0.0.1:1"]);
    kubectl.env_clear().env("HOME", &kubectl_home).current_dir(s.path(""));
    let out = umask(&mut kubectl);
    assert!(out.status.success(), "{}", stderr(&out));
    let home = s.path("home");
    std::fs::create_dir(&home).unwrap();
    let mut generate = s.generate(&["--token-file", "child.token", "--merge-into"]);
    generate.arg(home.join(".kube/config")).env("HOME", &home);
    let out = umask(&mut generate);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("created directory {}", home.join(".kube").display())));
    assert_eq!(mode(&home.join(".kube")), mode(&kubectl_home.join(".kube")));
    assert_eq!(mode(&home.join(".kube/config")), 0o600);
    assert_eq!(mode(&kubectl_home.join(".kube/config")), 0o600);
    let view = kubectl_view(&home.join(".kube/config"));
    assert_eq!(view["contexts"][0]["name"], format!("clusternet-{CLUSTER_ID}"));
}

/// `--results DIR`: each cluster's output in its own files, untagged (JSON
/// a machine can parse), the summary naming them and in DIR/summary.json.
#[test]
fn exec_results_puts_each_clusters_output_in_its_files() {
    let s = scratch();
    let script = r#"printf '{"id": "%s"}' "$CLUSTERNET_CLUSTER_ID"; echo oops >&2"#;
    let out = exec(&s, &["--allow-skip", "--parallel", "2", "-o", "json", "--results", "out"], script);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = summary(&out);
    assert_eq!(stdout(&out).lines().count(), 1, "only the summary on stdout: {}", stdout(&out));
    let on_disk: Value = serde_json::from_str(&s.read("out/summary.json")).unwrap();
    assert_eq!(on_disk, v);
    for (i, id) in [CLUSTER_ID, ID_B].iter().enumerate() {
        let c = &v["clusters"][i];
        assert_eq!(c["stdout"], format!("out/{id}/stdout"), "{v}");
        let json: Value = serde_json::from_str(&s.read(&format!("out/{id}/stdout"))).unwrap();
        assert_eq!(json["id"], *id);
        assert_eq!(s.read(&format!("out/{id}/stderr")), "oops\n");
        assert_eq!(std::fs::metadata(s.path(&format!("out/{id}/stdout"))).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(v["clusters"][2]["status"], "skipped");
    assert_eq!(v["clusters"][2]["stdout"], Value::Null);
    // Never mixed with an earlier run's.
    let out = exec(&s, &["--allow-skip", "--results", "out"], "true");
    fails(&out, 2, "--results out is not a new or empty directory");
}

/// The README's recipe: `-o json` ends stdout with the summary whatever
/// happens, so `tail -n 1 | jq` always reads one; when exec itself fails, it
/// says so there too (exitCode 125, error).
#[test]
fn exec_json_summary_is_always_the_last_line_on_its_own() {
    let s = scratch();
    // One cluster whose output has no final newline.
    let mut cmd = s.bare(&["exec", "--kubeconfig", "parent.yaml", "--cluster-id", CLUSTER_ID, "--token-file"]);
    let out = cmd.args(["child.token", "-o", "json", "--", "printf", "no newline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("no newline\n{\"clusters\":"), "{text}");
    assert_eq!(summary(&out)["exitCode"], 0);
    // exec's own failure: a parent kubeconfig that is not there.
    let mut cmd = s.bare(&["exec", "--kubeconfig", "missing.yaml", "--cluster-id", CLUSTER_ID, "--token-file"]);
    let out = cmd.args(["child.token", "-o", "json", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let v = summary(&out);
    assert_eq!((v["exitCode"].as_u64(), v["clusters"].as_array().map(Vec::len)), (Some(125), Some(0)));
    assert!(v["error"].as_str().unwrap().contains("missing.yaml"), "{v}");
}

/// A large --parallel under a low open-files limit: every command still
/// runs (exec runs fewer at once and says so) instead of failing with 126.
#[test]
fn exec_parallel_is_capped_by_the_open_files_limit() {
    let s = Scratch::new();
    let ids: Vec<String> = (0..40).map(|i| format!("2a1e3c4d-0000-4000-8000-{i:012}")).collect();
    let creds: String = ids.iter().map(|id| format!("  {id}: {{token: t}}\n")).collect();
    s.write("creds.yaml", &format!("clusters:\n{creds}"));
    let mut args = vec!["exec", "--kubeconfig", "parent.yaml", "--credentials", "creds.yaml"];
    for id in &ids {
        args.extend(["--cluster-id", id]);
    }
    args.extend(["--parallel", "40", "-o", "json", "--", "sh", "-c", "sleep 0.3"]);
    let cmd = s.bare(&args);
    let mut sh = Command::new("sh");
    sh.args(["-c", "ulimit -n 48; exec \"$@\"", "sh"]).arg(cmd.get_program()).args(cmd.get_args());
    sh.current_dir(s.path("")).env_clear().env("PATH", std::env::var_os("PATH").unwrap()).env("HOME", s.path(""));
    let out = sh.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("note: --parallel 40 lowered to") && err.contains("ulimit -n"), "{err}");
    let v = summary(&out);
    assert!(v["clusters"].as_array().unwrap().iter().all(|c| c["status"] == "succeeded"), "{v}");
}

/// A merge never replaces an entry generated for another cluster ID, by
/// default name or by --name: refused, naming the entry and --name; the
/// file is unchanged.
#[test]
fn a_merge_never_replaces_another_clusters_entry() {
    let s = scratch();
    let merge = |id: &str| {
        let args = ["gen", "--kubeconfig", "parent.yaml", "--cluster-id", id, "--token-file", "child.token"];
        s.bare(&args).args(["--name", "prod", "--merge-into", "config"]).output().unwrap()
    };
    assert!(merge(CLUSTER_ID).status.success());
    let before = s.read("config");
    assert!(merge(CLUSTER_ID).status.success(), "the same cluster again: replaced");
    let out = merge(ID_B);
    fails(
        &out,
        1,
        &format!("--merge-into config has the context \"prod\" generated for cluster ID {CLUSTER_ID}, not {ID_B}"),
    );
    assert!(stderr(&out).contains("pass --name NAME"), "{}", stderr(&out));
    assert_eq!(s.read("config"), before);
}
