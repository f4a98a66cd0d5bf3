//! Concurrent writers: this tool and kubectl sharing one kubeconfig
//! under kubectl's lock (`<file>.lock`), writers killed mid-run (the atomic
//! rename leaves the old file or the new one, never a truncated one), and the
//! stale lock such a kill leaves behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// The names of `list` (clusters, contexts, users) in a kubeconfig file, which
/// must be valid YAML.
fn names(path: &Path, list: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(path).unwrap();
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML ({e}):\n{text}", path.display()));
    doc[list]
        .as_sequence()
        .map(|items| items.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// `gen --merge-into shared.yaml` for names `prefix-0` .. `prefix-49`, in turn.
fn writer(s: &Scratch, prefix: &'static str) -> impl FnOnce() + Send + use<> {
    let cmds: Vec<Command> = (0..50)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            s.generate(&[
                "--token-file",
                "child.token",
                "--name",
                &name,
                "--merge-into",
                "shared.yaml",
                "--lock-timeout",
                "60",
            ])
        })
        .collect();
    move || {
        for mut cmd in cmds {
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{prefix}: {}", stderr(&out));
            no_secrets(&stderr(&out));
        }
    }
}

/// `kubectl config set-context k-0` .. `k-49`. kubectl does not wait for a
/// held lock: it fails, and (like a user) the loop retries. Returns the retries.
fn kubectl_loop(shared: std::path::PathBuf) -> impl FnOnce() -> usize + Send {
    move || {
        let mut lock_retries = 0;
        for i in 0..50 {
            loop {
                let out = Command::new("kubectl")
                    .args(["config", "set-context", &format!("k-{i}"), "--cluster=kc", "--user=ku", "--kubeconfig"])
                    .arg(&shared)
                    .env_remove("KUBECONFIG")
                    .output()
                    .unwrap();
                if out.status.success() {
                    break;
                }
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains(".lock"), "kubectl failed for another reason: {err}");
                lock_retries += 1;
                assert!(lock_retries < 5000, "kubectl never got the lock");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        lock_retries
    }
}

fn wanted(prefixes: &[&str]) -> BTreeSet<String> {
    prefixes.iter().flat_map(|p| (0..50).map(move |i| format!("{p}-{i}"))).collect()
}

fn no_leftovers(s: &Scratch) {
    assert!(!s.path("shared.yaml.lock").exists(), "lock left behind");
    let leftovers: Vec<_> = fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".clusternet-kubeconfig-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

const EMPTY: &str = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n";

#[test]
fn two_writers_lose_nothing() {
    let s = Scratch::new();
    s.write("shared.yaml", EMPTY);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let a = scope.spawn(writer(&s, "a"));
        let b = scope.spawn(writer(&s, "b"));
        a.join().unwrap();
        b.join().unwrap();
    });
    let shared = s.path("shared.yaml");
    for list in ["clusters", "contexts", "users"] {
        assert_eq!(names(&shared, list), wanted(&["a", "b"]), "{list}");
    }
    assert_eq!(kubectl_view(&shared)["contexts"].as_array().unwrap().len(), 100);
    no_leftovers(&s);
    eprintln!("2 x 50 merges in {:?}", start.elapsed());
}

/// Two writers of this tool and a kubectl loop on one file. kubectl's own
/// writes are never lost and the file is always valid. kubectl itself,
/// however, can delete entries that others add while it runs: `ModifyConfig`
/// (client-go tools/clientcmd/config.go) reads the file before taking the
/// lock, then, under the lock, deletes every entry of the file that is not in
/// what it read. Entries lost that way are reported, and must be lost whole
/// (cluster, context and user together, as kubectl deletes them).
#[test]
fn two_writers_and_kubectl() {
    let s = Scratch::new();
    s.write("shared.yaml", EMPTY);
    let shared = s.path("shared.yaml");
    let start = Instant::now();
    let retries = std::thread::scope(|scope| {
        let a = scope.spawn(writer(&s, "a"));
        let b = scope.spawn(writer(&s, "b"));
        let k = scope.spawn(kubectl_loop(shared.clone()));
        a.join().unwrap();
        b.join().unwrap();
        k.join().unwrap()
    });
    let elapsed = start.elapsed();
    let contexts = names(&shared, "contexts");
    let clusters = names(&shared, "clusters");
    let users = names(&shared, "users");
    let ours = wanted(&["a", "b"]);
    for k in wanted(&["k"]) {
        assert!(contexts.contains(&k), "kubectl's context {k} lost");
    }
    let lost: Vec<&String> = ours.difference(&contexts).collect();
    for name in &ours {
        let present = [contexts.contains(name), clusters.contains(name), users.contains(name)];
        assert!(present.iter().all(|p| *p) || present.iter().all(|p| !*p), "{name} partly lost: {present:?}");
    }
    assert_eq!(kubectl_view(&shared)["contexts"].as_array().unwrap().len(), contexts.len());
    no_leftovers(&s);
    eprintln!(
        "{} of 150 entries present after {elapsed:?}; kubectl retried {retries} times on a held lock; lost to kubectl's ModifyConfig race: {lost:?}",
        contexts.len()
    );
}

#[test]
fn a_killed_writer_never_leaves_a_truncated_kubeconfig() {
    let s = Scratch::new();
    // A big target (about 12 MB), so that a write takes long enough to be hit.
    let mut text = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    let blob = "Q".repeat(4000);
    for i in 0..3000 {
        text.push_str(&format!(
            "- name: big-{i}\n  cluster:\n    certificate-authority-data: {blob}\n    server: https://10.1.0.1\n"
        ));
    }
    s.write("target.yaml", &text);
    let target = s.path("target.yaml");
    let lock = s.path("target.yaml.lock");
    let (mut killed_holding_lock, mut completed, mut killed) = (0, 0, 0);
    for round in 0..12u64 {
        let before = names(&target, "clusters");
        let name = format!("gen-{round}");
        let mut child = s
            .generate(&["--token-file", "child.token", "--name", &name, "--merge-into", "target.yaml"])
            .spawn()
            .unwrap();
        // Kill at spread-out moments: before, during and after the write.
        std::thread::sleep(Duration::from_millis(40 + round * 60));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            completed += 1;
        } else {
            killed += 1;
        }
        // Always a whole file: the old entries, plus the new one or not.
        let after = names(&target, "clusters");
        assert!(after.is_superset(&before), "round {round}: entries lost");
        assert!(after.len() == before.len() || (after.len() == before.len() + 1 && after.contains(&name)));
        if lock.exists() {
            killed_holding_lock += 1;
            // The stale lock: a clear error naming it and how to remove it.
            let out = s
                .generate(&["--token-file", "child.token", "--merge-into", "target.yaml", "--lock-timeout", "1"])
                .output()
                .unwrap();
            fails(&out, 1, "target.yaml.lock is held (waited 1s)");
            let err = stderr(&out);
            assert!(
                err.contains("it was left by a killed process: remove it with `rm ")
                    && err.contains("target.yaml.lock`"),
                "{err}"
            );
            fs::remove_file(&lock).unwrap();
        }
        // Temporary files of killed writers are never the target; remove them.
        for entry in fs::read_dir(s.dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().starts_with(".clusternet-kubeconfig-") {
                fs::remove_file(entry.path()).unwrap();
            }
        }
    }
    assert!(killed > 0, "no writer was killed mid-run ({completed} completed)");
    eprintln!(
        "{killed} writers killed ({killed_holding_lock} holding the lock), {completed} completed; the target was whole every time"
    );
    assert!(kubectl_view(&target)["clusters"].as_array().unwrap().len() >= 3000);
}

#[test]
fn a_stale_lock_names_the_lock_and_how_to_remove_it() {
    let s = Scratch::new();
    s.write("config", "apiVersion: v1\nkind: Config\nclusters: []\n");
    // Left by a kubectl killed while holding it: an empty file.
    s.write("config.lock", "");
    let before = s.read("config");
    let start = Instant::now();
    let out =
        s.generate(&["--token-file", "child.token", "--merge-into", "config", "--lock-timeout", "2"]).output().unwrap();
    fails(
        &out,
        1,
        "lock file config.lock is held (waited 2s); if no kubectl or clusternet-kubeconfig is writing config, it was left by a killed process: remove it with `rm config.lock`",
    );
    assert!(start.elapsed() >= Duration::from_secs(2) && start.elapsed() < Duration::from_secs(10));
    assert_eq!(s.read("config"), before);
    assert!(s.path("config.lock").exists(), "someone else's lock is never removed");
}
