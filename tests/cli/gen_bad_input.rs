//! Bad input: exit code 2 for usage errors and 1 for the rest, one `error:`
//! line naming the file, flag or field and the fix, no panic, no planted
//! secret in any output, and no file created or changed.

use std::process::Command;

use crate::support::*;

/// Runs `cmd` and checks the failure contract, including that the scratch
/// directory is byte-for-byte what it was.
fn refused(s: &Scratch, cmd: &mut Command, code: i32, needle: &str) {
    let before = s.listing();
    let out = cmd.output().unwrap();
    fails(&out, code, needle);
    assert_eq!(s.listing(), before, "files changed by a failed run ({needle})");
}

/// A parent kubeconfig whose text is `parent.yaml` with `from` replaced by `to`.
fn parent_with(s: &Scratch, from: &str, to: &str) {
    let text = s.read("parent.yaml");
    assert!(text.contains(from), "{from}");
    s.write("parent.yaml", &text.replacen(from, to, 1));
}

const TOKEN: [&str; 2] = ["--token-file", "child.token"];

#[test]
fn parent_file_problems() {
    let s = Scratch::new();
    let gen_with = |path: &str| {
        let mut c = s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token", "--kubeconfig", path]);
        c.env("KUBECONFIG", "ignored");
        c
    };
    refused(&s, &mut gen_with("nope.yaml"), 1, "kubeconfig nope.yaml does not exist");
    refused(&s, &mut gen_with("pki"), 1, "kubeconfig pki is a directory");
    refused(&s, &mut gen_with("/proc/self/mem"), 1, "kubeconfig /proc/self/mem cannot be read");
    s.write("empty.yaml", "\n\n");
    refused(&s, &mut gen_with("empty.yaml"), 1, "empty.yaml has no contexts (is it empty?)");
    s.write("garbage.yaml", "clusters: [\n  - {name: x\n");
    refused(&s, &mut gen_with("garbage.yaml"), 1, "kubeconfig garbage.yaml: is not valid YAML");
    s.write("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n");
    refused(&s, &mut gen_with("pod.yaml"), 1, "has kind \"Pod\"");
    s.write("other.yaml", "name: x\nreplicas: 3\n");
    refused(&s, &mut gen_with("other.yaml"), 1, "other.yaml has no contexts");
    s.write("binary.yaml", "\u{0}\u{1}");
    std::fs::write(s.path("binary.yaml"), b"\xff\xfe\x00kind").unwrap();
    refused(&s, &mut gen_with("binary.yaml"), 1, "binary.yaml: is not UTF-8");
    s.write(
        "dup.yaml",
        "clusters:\n- name: a\n  cluster: {server: https://a}\n- name: a\n  cluster: {server: https://b}\n",
    );
    refused(&s, &mut gen_with("dup.yaml"), 1, "two cluster entries named \"a\"");
    let fifo = s.path("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    refused(&s, &mut gen_with("fifo"), 1, "kubeconfig fifo is not a regular file");
}

#[test]
fn no_kubeconfig_anywhere() {
    let s = Scratch::new();
    let mut cmd = s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]);
    refused(&s, &mut cmd, 1, ".kube/config does not exist and KUBECONFIG is not set; pass --kubeconfig");
    let mut cmd = s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]);
    cmd.env("KUBECONFIG", "/nope/a:/nope/b");
    refused(&s, &mut cmd, 1, "none of the files in KUBECONFIG exists");
}

#[test]
fn context_cluster_and_server_problems() {
    let s = Scratch::new();
    refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--context", "ghost"]), 1, "context \"ghost\" is not in");
    parent_with(&s, "current-context: main\n", "");
    refused(&s, &mut s.generate(&TOKEN), 1, "has no current-context; pass --context NAME (contexts: \"main\"");

    let s = Scratch::new();
    parent_with(&s, "context: {cluster: parent, user: admin}", "context: {cluster: gone, user: admin}");
    refused(&s, &mut s.generate(&TOKEN), 1, "context \"main\" names cluster \"gone\", which is not in");
    let s = Scratch::new();
    parent_with(&s, "context: {cluster: parent, user: admin}", "context: {cluster: parent, user: gone}");
    refused(&s, &mut s.generate(&TOKEN), 1, "names user \"gone\"");

    for (server, needle) in [
        ("", "has no server"),
        ("ftp://10.0.0.10", "has scheme \"ftp\""),
        // Without a scheme kubectl dials http://host:port, and refuses a path.
        ("10.0.0.10:6443/prefix", "has no scheme and a path"),
        ("https://10.0.0.10:6443/?x=1", "has a query"),
        ("https://10.0.0.10:6443/#frag", "has a fragment"),
        ("https://admin:SECRET-parent-token-91bc@10.0.0.10", "contains user info"),
    ] {
        let s = Scratch::new();
        let line = if server.is_empty() { String::new() } else { format!("server: \"{server}\"") };
        parent_with(&s, "server: https://10.0.0.10:6443", &line);
        refused(&s, &mut s.generate(&TOKEN), 1, needle);
    }
    let s = Scratch::new();
    parent_with(&s, "certificate-authority: pki/ca.crt", "certificate-authority: pki/missing.crt");
    refused(&s, &mut s.generate(&TOKEN), 1, "certificate-authority of cluster \"parent\": file");
}

#[test]
fn cluster_id_and_child_server_flags() {
    let s = Scratch::new();
    let mut cmd =
        s.bare(&["gen", "--kubeconfig", "parent.yaml", "--token-file", "child.token", "--cluster-id", "dc91021d-nope"]);
    refused(&s, &mut cmd, 2, "--cluster-id \"dc91021d-nope\" is not a UUID");
    let mut cmd = s.bare(&["gen", "--kubeconfig", "parent.yaml", "--token-file", "child.token"]);
    refused(&s, &mut cmd, 2, "--cluster-id");
    for (url, needle) in [
        ("https://", "--child-server"),
        ("https://host:6443/?a=b", "--child-server has a query"),
        ("ftp://host", "--child-server has scheme \"ftp\""),
        ("host:6443", "--child-server has scheme"),
        ("https://u:pw@host", "--child-server contains user info"),
    ] {
        refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--child-server", url]), 2, needle);
    }
}

#[test]
fn credential_sources() {
    let s = Scratch::new();
    refused(&s, &mut s.generate(&[]), 2, "no child credentials");
    refused(
        &s,
        &mut s.generate(&["--token", CHILD_TOKEN, "--token-file", "child.token"]),
        2,
        "given twice (--token and --token-file)",
    );
    refused(&s, &mut s.generate(&["--client-certificate", "child.crt"]), 2, "--client-key");
    refused(&s, &mut s.generate(&["--child-context", "x", "--token", "t"]), 2, "--child-kubeconfig");
    // A bad value is exit 1 from every source (flag, file, environment).
    refused(&s, &mut s.generate(&["--token", ""]), 1, "--token is empty");
    refused(&s, &mut s.generate(&["--token", "a\nb"]), 1, "--token has a line break");
    refused(&s, &mut s.generate(&["--token", " padded"]), 1, "--token has spaces");
    refused(&s, s.generate(&[]).env("CLUSTERNET_CHILD_TOKEN", "a\nb"), 1, "CLUSTERNET_CHILD_TOKEN has a line break");
    refused(&s, s.generate(&[]).env("CLUSTERNET_CHILD_TOKEN", ""), 1, "CLUSTERNET_CHILD_TOKEN is empty");
    s.write("empty.token", "\n");
    refused(&s, &mut s.generate(&["--token-file", "empty.token"]), 1, "--token-file empty.token is empty");
    s.write("two-lines.token", &format!("{CHILD_TOKEN}\nsecond\n"));
    refused(&s, &mut s.generate(&["--token-file", "two-lines.token"]), 1, "has a line break inside the token");
    refused(
        &s,
        &mut s.generate(&["--token-file", "missing.token"]),
        1,
        "--token-file: file missing.token does not exist",
    );
    let jwt_b64 = b64("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln");
    s.write("b64.token", &jwt_b64);
    refused(
        &s,
        &mut s.generate(&["--token-file", "b64.token"]),
        1,
        "is base64-encoded (as in a Secret's .data.token); decode it first",
    );
    assert!(!stderr(&s.generate(&["--token-file", "b64.token"]).output().unwrap()).contains(&jwt_b64));
}

#[test]
fn certificate_and_key_problems() {
    let s = Scratch::new();
    s.write("not.pem", "hello");
    s.write(
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    // The parent admin's key: a valid key of another certificate.
    s.write("other.key", &s.parent_key_pem);
    let pair = |c: &str, k: &str| s.generate(&["--client-certificate", c, "--client-key", k]);
    refused(&s, &mut pair("not.pem", "child.key"), 1, "--client-certificate not.pem is not a PEM certificate");
    refused(&s, &mut pair("child.crt", "not.pem"), 1, "--client-key not.pem is not a PEM private key");
    refused(&s, &mut pair("child.crt", "enc.key"), 1, "--client-key enc.key is an encrypted private key");
    refused(
        &s,
        &mut pair("child.crt", "other.key"),
        1,
        "--client-key other.key does not belong to --client-certificate child.crt",
    );
    refused(&s, &mut pair("child.crt", "missing.key"), 1, "--client-key: file missing.key does not exist");
    refused(
        &s,
        &mut s.generate(&["--client-certificate-data", "%%%", "--client-key-data", "QQ=="]),
        1,
        "--client-certificate-data is not base64",
    );
    refused(
        &s,
        &mut s.generate(&[
            "--client-certificate-data",
            &b64(&s.cert_pem),
            "--client-key-data",
            &b64(&s.parent_key_pem),
        ]),
        1,
        "does not belong",
    );
}

#[test]
fn child_kubeconfig_problems() {
    let s = Scratch::new();
    s.write("child.yaml", include_str!("../fixtures/child/unusable-users.yaml"));
    let child = |ctx: &str| s.generate(&["--child-kubeconfig", "child.yaml", "--child-context", ctx]);
    refused(&s, &mut child("e"), 1, "authenticates with an exec or auth-provider plugin");
    refused(&s, &mut child("nc"), 1, "has no token and no client certificate");
    refused(&s, &mut child("f"), 1, "users[\"f\"].user.tokenFile: file");
    refused(&s, &mut child("k"), 1, "has a client certificate but no client key");
    refused(&s, &mut child("zz"), 1, "context \"zz\" is not in");
    refused(
        &s,
        &mut s.generate(&["--child-kubeconfig", "none.yaml"]),
        1,
        "--child-kubeconfig: kubeconfig none.yaml does not exist",
    );
}

#[test]
fn parent_auth_problems() {
    let s = Scratch::new();
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--parent-token-request"]),
        2,
        "--parent-token-request is for --parent-auth token",
    );
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--parent-token", PARENT_TOKEN]),
        2,
        "--parent-token is used only with --parent-auth token",
    );
    refused(
        &s,
        &mut s.generate(&["--token-file", "-", "--parent-auth", "token", "--parent-token-file", "-"]),
        2,
        "cannot both read stdin",
    );
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--parent-auth", "token", "--parent-token-file", "nope"]),
        1,
        "--parent-token-file: file nope does not exist",
    );
    refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--parent-auth", "bogus"]), 2, "invalid value 'bogus'");
    // Without a given token, it is read from the parent: a parent that cannot be
    // reached (a closed loopback port) is a clear error, and nothing is written.
    let closed = Scratch::new();
    parent_with(&closed, "server: https://10.0.0.10:6443", "server: https://127.0.0.1:1");
    refused(
        &closed,
        &mut closed.generate(&[TOKEN[0], TOKEN[1], "--parent-auth", "token", "--output-file", "out.yaml"]),
        1,
        "listing Secrets in namespace \"clusternet-system\" in context \"main\" failed",
    );
    parent_with(&s, "client-key: pki/admin.key", "client-key: pki/gone.key");
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--parent-auth", "keep"]),
        1,
        "users[\"admin\"].user.client-key: file",
    );
}

#[test]
fn output_and_merge_problems() {
    let s = Scratch::new();
    s.write("exists.yaml", "keep me\n");
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--output-file", "exists.yaml"]),
        1,
        "already exists; pass --force",
    );
    refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--output-file", "pki"]), 1, "--output-file pki");
    refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--output-file", "a/b/c"]), 1, "directory a/b does not exist");
    refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--force"]), 2, "--output-file");
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--output-file", "x", "--merge-into", "y"]),
        2,
        "cannot be used with",
    );
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--merge-into", "y", "-o", "json"]),
        2,
        "--merge-into writes YAML",
    );
    refused(&s, &mut s.generate(&[TOKEN[0], TOKEN[1], "--name", ""]), 2, "--name is empty");
    s.write("notkube.yaml", "name: x\nreplicas: 3\n");
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--merge-into", "notkube.yaml"]),
        1,
        "--merge-into notkube.yaml is not a kubeconfig",
    );
    s.write("broken.yaml", "clusters: [\n");
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--merge-into", "broken.yaml"]),
        1,
        "--merge-into broken.yaml is not valid YAML",
    );
    s.write("list.yaml", "- a\n- b\n");
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--merge-into", "list.yaml"]),
        1,
        "its top level is not a mapping",
    );
    refused(
        &s,
        &mut s.generate(&[TOKEN[0], TOKEN[1], "--merge-into", "exists.yaml/config"]),
        1,
        "exists.yaml is not a directory",
    );
    // A missing directory is made, as kubectl makes ~/.kube (fail_closed.rs).
}
