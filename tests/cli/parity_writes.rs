//! Writing files as kubectl does, and never damaging one: owner, group and
//! mode kept, symlinks and hard links followed as kubectl follows them,
//! devices, FIFOs and sockets never replaced, inputs never written over,
//! secrets never printed, and a closed stdout ending the run quietly.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::process::{Command, Output, Stdio};

use crate::kubectl;
use crate::support::{CLUSTER_ID, Scratch, fails, kubectl_view, stderr};

fn merge_into(s: &Scratch, target: &str) -> Output {
    s.generate(&["--token-file", "child.token", "--name", "gen", "--merge-into", target]).output().unwrap()
}

fn target(s: &Scratch) -> std::path::PathBuf {
    s.write("target.yaml", "apiVersion: v1\nkind: Config\nclusters:\n- name: keep\n  cluster: {server: \"https://keep\", insecure-skip-tls-verify: yes}\n")
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn a_merge_keeps_owner_group_and_mode() {
    let s = Scratch::new();
    let path = target(&s);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    // As root (the container this runs in), the file belongs to someone else,
    // as when root merges into a user's kubeconfig.
    let owner = if is_root() {
        std::os::unix::fs::chown(&path, Some(4242), Some(4343)).unwrap();
        (4242, 4343)
    } else {
        let m = fs::metadata(&path).unwrap();
        (m.uid(), m.gid())
    };
    let out = merge_into(&s, "target.yaml");
    assert!(out.status.success(), "{}", kubectl::describe(&out));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), owner);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    let view = kubectl_view(&path);
    let keep = view["clusters"].as_array().unwrap().iter().find(|c| c["name"] == "keep").unwrap();
    assert_eq!(keep["cluster"]["insecure-skip-tls-verify"], true);
}

#[test]
fn a_symlink_to_a_missing_file_creates_the_file_as_kubectl_does() {
    let s = Scratch::new();
    fs::create_dir(s.path("dotfiles")).unwrap();
    symlink("dotfiles/kube.yaml", s.path("link.yaml")).unwrap();
    let out = merge_into(&s, "link.yaml");
    assert!(out.status.success(), "{}", kubectl::describe(&out));
    assert!(fs::symlink_metadata(s.path("link.yaml")).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(fs::metadata(s.path("dotfiles/kube.yaml")).unwrap().is_file());
    assert_eq!(kubectl_view(&s.path("link.yaml"))["clusters"][0]["name"], "gen");
    // kubectl does the same with a dangling link.
    symlink("dotfiles/other.yaml", s.path("link2.yaml")).unwrap();
    let set = Command::new("kubectl")
        .args(["config", "set-cluster", "x", "--server=https://x", "--kubeconfig"])
        .arg(s.path("link2.yaml"))
        .output()
        .unwrap();
    assert!(set.status.success());
    assert!(fs::symlink_metadata(s.path("link2.yaml")).unwrap().file_type().is_symlink());
    assert!(s.path("dotfiles/other.yaml").is_file());
}

#[test]
fn a_hard_linked_file_keeps_its_links_as_with_kubectl() {
    let s = Scratch::new();
    let path = target(&s);
    fs::hard_link(&path, s.path("other-name.yaml")).unwrap();
    let out = merge_into(&s, "target.yaml");
    assert!(out.status.success(), "{}", kubectl::describe(&out));
    assert!(stderr(&out).contains("rewritten in place"), "{}", stderr(&out));
    assert_eq!(fs::metadata(&path).unwrap().nlink(), 2);
    assert_eq!(fs::read(&path).unwrap(), fs::read(s.path("other-name.yaml")).unwrap());
    // The oracle: kubectl writes in place too, so the link survives.
    let set = Command::new("kubectl")
        .args(["config", "set-cluster", "x", "--server=https://x", "--kubeconfig"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(set.status.success());
    assert_eq!(fs::metadata(&path).unwrap().nlink(), 2);
}

/// Device nodes, FIFOs and sockets are never replaced by a regular file, with
/// or without --force, as --output-file or as --merge-into.
#[test]
fn special_files_are_never_replaced() {
    let s = Scratch::new();
    let fifo = s.path("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let _socket = std::os::unix::net::UnixListener::bind(s.path("socket")).unwrap();
    let mut specials = vec![("fifo", "a FIFO"), ("socket", "a socket")];
    // A null device of our own (root only), never the system's /dev/null.
    if is_root() {
        assert!(Command::new("mknod").arg(s.path("null")).args(["c", "1", "3"]).status().unwrap().success());
        specials.push(("null", "a character device"));
    }
    for (name, kind) in specials {
        for force in [false, true] {
            let mut args = vec!["--token-file", "child.token", "--output-file", name];
            if force {
                args.push("--force");
            }
            fails(&s.generate(&args).output().unwrap(), 1, &format!("is not a regular file ({kind})"));
        }
        fails(&merge_into(&s, name), 1, &format!("is not a regular file ({kind})"));
        let file_type = fs::symlink_metadata(s.path(name)).unwrap().file_type();
        assert!(file_type.is_fifo() || file_type.is_socket() || file_type.is_char_device(), "{name} was replaced");
    }
}

/// No input of the run is written over, even with --force: not the parent,
/// not a child kubeconfig, not the credentials file, not a token file.
#[test]
fn inputs_are_never_written_over() {
    let s = Scratch::new();
    s.write(
        "child.kubeconfig",
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {server: \"https://c\"}\ncontexts:\n- name: c\n  context: {cluster: c, user: c}\nusers:\n- name: c\n  user: {token: child}\n",
    );
    fs::hard_link(s.path("parent.yaml"), s.path("parent-alias.yaml")).unwrap();
    symlink("child.token", s.path("token-link")).unwrap();
    let before = s.listing();
    for (args, shown) in [
        (vec!["--token-file", "child.token", "--output-file", "parent.yaml", "--force"], "parent.yaml"),
        (vec!["--token-file", "child.token", "--output-file", "parent-alias.yaml", "--force"], "parent.yaml"),
        (vec!["--token-file", "child.token", "--output-file", "token-link", "--force"], "child.token"),
        (
            vec!["--child-kubeconfig", "child.kubeconfig", "--output-file", "child.kubeconfig", "--force"],
            "child.kubeconfig",
        ),
    ] {
        let out = s.generate(&args).output().unwrap();
        fails(&out, 1, "an input of this run");
        assert!(stderr(&out).contains(shown), "{}", stderr(&out));
    }
    s.write("creds.yaml", &format!("clusters:\n  {CLUSTER_ID}:\n    tokenFile: child.token\n"));
    let before_creds = fs::read(s.path("creds.yaml")).unwrap();
    let out = s.generate(&["--credentials", "creds.yaml", "--output-file", "creds.yaml", "--force"]).output().unwrap();
    fails(&out, 1, "an input of this run");
    assert_eq!(fs::read(s.path("creds.yaml")).unwrap(), before_creds);
    let after: Vec<_> = s.listing().into_iter().filter(|(p, _)| !p.ends_with("creds.yaml")).collect();
    assert_eq!(after, before);
}

#[test]
fn user_info_in_urls_never_shows() {
    let s = Scratch::new();
    s.write(
        "parent.yaml",
        "apiVersion: v1\nkind: Config\ncurrent-context: p\nclusters:\n- name: p\n  cluster: {server: \"https://admin:PW-SECRET-1@host:99999\"}\ncontexts:\n- name: p\n  context: {cluster: p, user: u}\nusers:\n- name: u\n  user: {}\n",
    );
    let out = s
        .bare(&["-v", "gen", "--kubeconfig", "parent.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("PW-SECRET-1"), "{}", stderr(&out));
    for url in ["https://admin:PW-SECRET-1@ho st", "https://admin:PW-SECRET-1@", "https://admin:PW-SECRET-1@host:99999"]
    {
        let out = s.generate(&["--token-file", "child.token", "--child-server", url]).output().unwrap();
        assert!(!out.status.success(), "{url}");
        assert!(!stderr(&out).contains("PW-SECRET-1"), "{url}: {}", stderr(&out));
    }
}

/// `gen | head -c 10`: the reader is gone; the run ends quietly, as kubectl
/// (ended by SIGPIPE) does: no `error:` line, status 128 + SIGPIPE.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let s = Scratch::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = s
        .generate(&["--token-file", "child.token"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // And through a real pipeline.
    let sh = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} gen --kubeconfig parent.yaml --cluster-id {CLUSTER_ID} --token-file child.token | head -c 10 >/dev/null",
            env!("CARGO_BIN_EXE_clusternet-kubeconfig")
        ))
        .current_dir(s.dir.path())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&sh.stderr).contains("error"), "{}", String::from_utf8_lossy(&sh.stderr));
}
