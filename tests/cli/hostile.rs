//! Hostile input: malformed, oversized, ambiguous and booby-trapped
//! kubeconfigs, URLs, paths and files. A refused input exits 1 (2 for a flag)
//! with one `error:` line naming the file and the field, without a panic,
//! without any planted secret in stdout or stderr, and without creating or
//! changing a file; an accepted one (what kubectl accepts) gives the right
//! output. Every case has a label that failures print.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A parent kubeconfig without file references, so that it works from any
/// directory, with a planted secret as its user's token.
const BASE: &str = "apiVersion: v1
kind: Config
current-context: main
clusters:
- name: parent
  cluster:
    certificate-authority-data: Q0EK
    server: https://10.0.0.10:6443
contexts:
- name: main
  context:
    cluster: parent
    user: admin
users:
- name: admin
  user:
    token: SECRET-parent-user-token-55de
";

/// BASE with `from` replaced by `to` (which must be there).
fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

/// Runs `cmd`, killing it after `limit`: a hang is a failure, not a stuck test.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}; stderr: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

const LIMIT: Duration = Duration::from_secs(30);

/// The failure contract, plus: the scratch directory is unchanged, and the
/// message contains every needle (the file, the field).
fn refused(label: &str, s: &Scratch, cmd: &mut Command, code: i32, needles: &[&str]) {
    let before = s.listing();
    let out = output_within(cmd, LIMIT);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{label}: exit code; stderr: {err}");
    fails(&out, code, needles[0]);
    for needle in needles {
        assert!(err.contains(needle), "{label}: expected {needle:?} in: {err}");
    }
    assert!(!err.contains("PRIVATE KEY"), "{label}: {err}");
    assert_eq!(s.listing(), before, "{label}: files changed by a failed run");
}

/// Success with the generated kubeconfig on stdout; nothing written, no secret
/// on stderr. Returns stdout.
fn accepted(label: &str, s: &Scratch, cmd: &mut Command) -> String {
    let before = s.listing();
    let out = output_within(cmd, LIMIT);
    let err = stderr(&out);
    assert!(out.status.success(), "{label}: expected success, got {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{label}: {err}");
    no_secrets(&err);
    assert_eq!(s.listing(), before, "{label}: files changed by a stdout run");
    stdout(&out)
}

/// `gen` on `hostile.yaml` holding `bytes`.
fn gen_on(s: &Scratch, bytes: &[u8]) -> Command {
    fs::write(s.path("hostile.yaml"), bytes).unwrap();
    s.bare(&["gen", "--kubeconfig", "hostile.yaml", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"])
}

const FILE: &str = "hostile.yaml";

#[test]
fn wrong_types_for_every_field() {
    let p = PARENT_TOKEN;
    let cases: Vec<(&str, String, &str)> = vec![
        ("kind", base_with("kind: Config", "kind: [Config]"), "kind: invalid type: sequence"),
        ("apiVersion", base_with("apiVersion: v1", "apiVersion: {v: 1}"), "apiVersion: invalid type: map"),
        (
            "current-context",
            base_with("current-context: main", &format!("current-context: [{p}]")),
            "current-context: invalid type: sequence",
        ),
        (
            "clusters string",
            base_with("clusters:\n- name: parent", &format!("clusters: {p}\nx:\n- name: parent")),
            "clusters: invalid type: string <value>, expected a sequence",
        ),
        (
            "clusters map",
            base_with("clusters:\n- name: parent", "clusters: {a: 1}\nx:\n- name: parent"),
            "clusters: invalid type: map",
        ),
        ("clusters item", base_with("clusters:\n", "clusters:\n- 42\n"), "clusters[0]: invalid type: integer"),
        ("cluster name", base_with("- name: parent", "- name: [parent]"), "clusters[0].name: invalid type: sequence"),
        (
            "cluster name missing",
            base_with("- name: parent", "- nam: parent"),
            "names cluster \"parent\", which is not in",
        ),
        (
            "cluster body",
            base_with(
                "  cluster:\n    certificate-authority-data: Q0EK\n    server: https://10.0.0.10:6443\n",
                &format!("  cluster: [{p}]\n"),
            ),
            "clusters[0].cluster: invalid type: sequence",
        ),
        (
            "server list",
            base_with("server: https://10.0.0.10:6443", "server: [https://10.0.0.10:6443]"),
            "clusters[0].cluster.server: invalid type: sequence",
        ),
        (
            "server map",
            base_with("server: https://10.0.0.10:6443", "server: {host: x}"),
            "clusters[0].cluster.server: invalid type: map",
        ),
        (
            "certificate-authority-data",
            base_with("certificate-authority-data: Q0EK", "certificate-authority-data: [Q0EK]"),
            "clusters[0].cluster.certificate-authority-data: invalid type: sequence",
        ),
        (
            "certificate-authority",
            base_with("    server:", "    certificate-authority: {path: x}\n    server:"),
            "clusters[0].cluster.certificate-authority: invalid type: map",
        ),
        (
            "insecure-skip-tls-verify",
            base_with("    server:", &format!("    insecure-skip-tls-verify: {p}\n    server:")),
            "clusters[0].cluster.insecure-skip-tls-verify: invalid type: string <value>, expected a boolean",
        ),
        (
            "tls-server-name",
            base_with("    server:", "    tls-server-name: [a]\n    server:"),
            "clusters[0].cluster.tls-server-name: invalid type: sequence",
        ),
        (
            "proxy-url",
            base_with("    server:", "    proxy-url: {a: 1}\n    server:"),
            "clusters[0].cluster.proxy-url: invalid type: map",
        ),
        (
            "disable-compression",
            base_with("    server:", "    disable-compression: 2\n    server:"),
            "clusters[0].cluster.disable-compression: invalid type: integer <value>, expected a boolean",
        ),
        (
            "extensions",
            base_with("    server:", "    extensions: 5\n    server:"),
            "clusters[0].cluster.extensions: extensions must be a list of named extensions",
        ),
        ("users", base_with("users:\n", "users: 7\nx:\n"), "users: invalid type: integer"),
        ("user name", base_with("- name: admin", "- name: {admin: 1}"), "users[0].name: invalid type: map"),
        (
            "user body list",
            base_with("  user:\n    token: ", "  user: [x]\n  x:\n    token: "),
            "users[0].user: invalid type: sequence",
        ),
        (
            "user body string (the secret)",
            base_with("  user:\n    token: SECRET-parent-user-token-55de\n", "  user: SECRET-parent-user-token-55de\n"),
            "users[0].user: invalid type: string <value>",
        ),
        ("contexts", base_with("contexts:\n", "contexts: true\nx:\n"), "contexts: invalid type: boolean"),
        ("context name", base_with("- name: main", "- name: [main]"), "contexts[0].name: invalid type: sequence"),
        (
            "context body",
            base_with("  context:\n    cluster: parent\n    user: admin\n", "  context: 5\n"),
            "contexts[0].context: invalid type: integer",
        ),
        (
            "context cluster",
            base_with("    cluster: parent", "    cluster: [parent]"),
            "contexts[0].context.cluster: invalid type: sequence",
        ),
        (
            "context user",
            base_with("    user: admin", "    user: {admin: 1}"),
            "contexts[0].context.user: invalid type: map",
        ),
        (
            "context namespace",
            base_with("    user: admin\n", "    user: admin\n    namespace: [a]\n"),
            "contexts[0].context.namespace: invalid type: sequence",
        ),
    ];
    let s = Scratch::new();
    for (label, text, needle) in &cases {
        refused(label, &s, &mut gen_on(&s, text.as_bytes()), 1, &[needle, FILE]);
    }
    assert_eq!(cases.len(), 28);
}

#[test]
fn truncated_and_malformed_yaml() {
    let s = Scratch::new();
    let cut = |at: &str| {
        let end = BASE.find(at).unwrap() + at.len();
        BASE[..end].to_string()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut in a key", cut("certificate-authority-d").into_bytes(), "clusters[0].cluster: invalid type: string"),
        ("cut in a server", cut("server: https://10.0").into_bytes(), "context \"main\" is not in"),
        ("cut after users:", cut("users:\n").into_bytes(), "names user \"admin\", which is not in"),
        (
            "cut in a flow mapping",
            b"kind: Config\ncontexts: [{name: main, context: {cluster: par".to_vec(),
            "hostile.yaml: is not valid",
        ),
        ("cut in a quoted string", b"kind: Config\ncurrent-context: \"mai".to_vec(), "hostile.yaml: is not valid"),
        ("cut inside a UTF-8 character", "current-context: grüße".as_bytes()[..20].to_vec(), "is not UTF-8"),
        ("tab indentation", base_with("    server:", "\tserver:").into_bytes(), "hostile.yaml: is not valid"),
        ("undefined alias", base_with("users:\n", "users:\n- *nope\n").into_bytes(), "unknown anchor"),
        // kubectl reads the first of two documents (tests/cli/parity.rs), and
        // a lone `---` as an empty kubeconfig.
        ("a lone ---", b"---\n".to_vec(), "has no contexts (is it empty?)"),
        ("NUL byte", base_with("admin\n", "ad\0min\n").into_bytes(), "hostile.yaml: is not valid"),
        // Valid YAML (a flow mapping may end in a comma), as for kubectl.
        ("JSON with a trailing comma", b"{\"kind\": \"Config\",}".to_vec(), "has no contexts (is it empty?)"),
        (
            "JSON with a comment",
            b"{\"kind\": \"Config\" /* c */, \"clusters\": []}".to_vec(),
            "hostile.yaml: is not valid",
        ),
        // UTF-16 with a byte-order mark is read, as by kubectl (tests/cli/parity.rs);
        // without one it is not text.
        ("UTF-16 without BOM", utf16le(BASE)[2..].to_vec(), "is not"),
        (
            "Latin-1 byte in a name",
            [b"current-context: caf".as_slice(), b"\xe9\n", BASE.as_bytes()].concat(),
            "is not UTF-8 text (invalid byte at offset 20)",
        ),
        ("overlong UTF-8", b"kind: Config\ncurrent-context: \xc0\xaf\n".to_vec(), "is not UTF-8 text"),
        (
            "null lists",
            b"apiVersion: v1\nkind: Config\ncurrent-context: main\nclusters: null\nusers: ~\ncontexts:\n".to_vec(),
            "context \"main\" is not in",
        ),
        (
            "null cluster",
            base_with(
                "  cluster:\n    certificate-authority-data: Q0EK\n    server: https://10.0.0.10:6443\n",
                "  cluster: null\n",
            )
            .into_bytes(),
            "cluster \"parent\" in",
        ),
        (
            "null context",
            base_with("  context:\n    cluster: parent\n    user: admin\n", "  context: ~\n").into_bytes(),
            "context \"main\" in",
        ),
        // Of two equal keys the last one wins, as for kubectl (tests/cli/parity.rs).
        (
            "duplicate top-level key, the last one empty",
            format!("{BASE}clusters: []\n").into_bytes(),
            "names cluster \"parent\", which is not in",
        ),
        (
            "duplicate user names",
            format!("{BASE}- name: admin\n  user: {{token: x}}\n").into_bytes(),
            "has two user entries named \"admin\"",
        ),
        (
            "duplicate context names",
            base_with("users:\n", "- name: main\n  context: {cluster: parent, user: admin}\nusers:\n").into_bytes(),
            "has two context entries named \"main\"",
        ),
        (
            "duplicate names through an alias",
            base_with("- name: parent\n  cluster:", "- &c\n  name: parent\n  cluster:")
                .replacen("contexts:\n", "- *c\ncontexts:\n", 1)
                .into_bytes(),
            "has two cluster entries named \"parent\"",
        ),
    ];
    for (label, bytes, needle) in &cases {
        refused(label, &s, &mut gen_on(&s, bytes), 1, &[needle, FILE]);
    }
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0xfe];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn nesting_and_alias_bombs_fail_fast_with_bounded_memory() {
    let s = Scratch::new();
    // An alias bomb: 1000 x 1000 x 1000 scalars from 4000 lines, in a user
    // entry, in an ignored top-level field, and through merge keys.
    let mut bomb = String::from("    x0: &a0\n");
    bomb.push_str(&"    - lol\n".repeat(1000));
    for i in 1..4 {
        bomb.push_str(&format!("    x{i}: &a{i}\n"));
        bomb.push_str(&format!("    - *a{}\n", i - 1).repeat(1000));
    }
    let in_user = base_with("    token: SECRET-parent-user-token-55de\n", &bomb);
    let in_preferences = format!("{BASE}preferences:\n{bomb}");
    let merged = format!("{BASE}preferences:\n{bomb}    m:\n      <<: [{}]\n", vec!["*a2"; 50].join(", "));
    let deep_flow = format!("kind: Config\nclusters: {}\n", "[".repeat(2_000_000));
    let deep_balanced = format!("kind: Config\nclusters: {}{}\n", "[".repeat(300), "]".repeat(300));
    let mut deep_block = String::from("kind: Config\nusers:\n- name: u\n  user:\n");
    for level in 2..300 {
        deep_block.push_str(&format!("{}k:\n", "  ".repeat(level)));
    }
    for (label, text, needles) in [
        ("alias bomb in a user", in_user, &["uses YAML aliases that expand to more than", "(at line"][..]),
        ("alias bomb in preferences", in_preferences, &["uses YAML aliases", "(at line"][..]),
        ("alias bomb through merge keys", merged, &["uses YAML aliases"][..]),
        ("2 MB of [", deep_flow, &["nests lists or mappings deeper than 256 levels (line 2)"][..]),
        ("300 balanced [", deep_balanced, &["deeper than 256 levels"][..]),
        ("300 nested block mappings", deep_block, &["deeper than 256 levels"][..]),
    ] {
        let start = Instant::now();
        let mut needles = needles.to_vec();
        needles.push(FILE);
        let (out, max_rss_kb) = with_max_rss(&mut gen_on(&s, text.as_bytes()));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{label}: {err}");
        for needle in &needles {
            assert!(err.contains(needle), "{label}: expected {needle:?} in: {err}");
        }
        no_secrets(&err);
        assert!(out.stdout.is_empty(), "{label}");
        assert!(start.elapsed() < Duration::from_secs(10), "{label}: took {:?}", start.elapsed());
        assert!(max_rss_kb < 200_000, "{label}: peak RSS {max_rss_kb} KB");
    }
}

/// Runs `cmd` under GNU time and returns its output and peak RSS in KB (the
/// last line time writes to stderr, which is then removed).
pub(crate) fn with_max_rss(cmd: &mut Command) -> (Output, u64) {
    assert!(Path::new("/usr/bin/time").exists(), "GNU time (/usr/bin/time) is needed to measure peak memory");
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("maxrss=%M").arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    timed.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    timed.stdin(Stdio::null());
    // The caller asserts its own time bound; this one only stops a hang, and
    // is above the loosest of them (a loaded machine is slow, not hung).
    let mut out = output_within(&mut timed, Duration::from_secs(150));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, last) = err.trim_end().rsplit_once('\n').unwrap_or(("", err.trim_end()));
    let kb = last.strip_prefix("maxrss=").unwrap_or_else(|| panic!("no maxrss in {err}")).parse().unwrap();
    out.stderr = format!("{rest}\n").into_bytes();
    (out, kb)
}

#[test]
fn what_kubectl_accepts_is_accepted() {
    let s = Scratch::new();
    let server = proxy_server("https://10.0.0.10:6443", "direct");
    let json = serde_json::to_string(&serde_yaml::from_str::<serde_json::Value>(BASE).unwrap()).unwrap();
    let merge_keys = base_with(
        "- name: parent\n  cluster:\n    certificate-authority-data: Q0EK\n    server: https://10.0.0.10:6443\n",
        "- name: base\n  cluster: &base\n    certificate-authority-data: Q0EK\n    server: https://10.9.9.9\n- name: parent\n  cluster:\n    <<: *base\n    server: https://10.0.0.10:6443\n",
    );
    let aliased_context = base_with("- name: main\n  context:\n", "- name: main\n  context: &ctx\n").replacen(
        "users:\n",
        "- name: other\n  context: *ctx\nusers:\n",
        1,
    );
    for (label, bytes) in [
        ("UTF-8 BOM", [b"\xef\xbb\xbf".as_slice(), BASE.as_bytes()].concat()),
        ("CRLF line ends", BASE.replace('\n', "\r\n").into_bytes()),
        ("tab after a colon", base_with("server: https", "server:\thttps").into_bytes()),
        ("JSON", json.into_bytes()),
        ("merge keys (CA inherited, as kubectl does)", merge_keys.into_bytes()),
        ("an aliased context", aliased_context.into_bytes()),
        (
            "user: null (anonymous parent auth)",
            base_with("  user:\n    token: ", "  user: null\n  x:\n    token: ").into_bytes(),
        ),
        ("brackets in quotes and comments", format!("# {}\n{BASE}", "[".repeat(1000)).into_bytes()),
    ] {
        let out = accepted(label, &s, &mut gen_on(&s, &bytes));
        assert!(out.contains(&format!("server: {server}")), "{label}: {out}");
        assert!(out.contains("certificate-authority-data: Q0EK"), "{label}: {out}");
    }
}

#[test]
fn server_urls() {
    let s = Scratch::new();
    let field = "server of cluster \"parent\" in";
    for (label, server, needle) in [
        ("userinfo without a password (the secret)", format!("https://{PARENT_TOKEN}@10.0.0.10"), "contains user info"),
        ("percent-encoded userinfo", format!("https://a%3Ab:{PARENT_TOKEN}@10.0.0.10"), "contains user info"),
        ("port 0", "https://10.0.0.10:0".into(), "has port 0"),
        ("port 65536", "https://10.0.0.10:65536".into(), "is not a URL (invalid port number)"),
        ("negative port", "https://10.0.0.10:-1".into(), "is not a URL"),
        ("invalid punycode", "https://xn--zz.example".into(), "is not a URL (invalid international domain name)"),
        ("IPv6 zone", "https://[fe80::1%25eth0]:6443".into(), "is not a URL (invalid IPv6 address)"),
        ("percent-escaped host", "https://%31%30.0.0.10".into(), "percent-escaped host"),
        ("IPv4 shorthand", "https://0x7f.1:6443".into(), "which kubectl would not read as the IPv4 address 127.0.0.1"),
        ("five-part IPv4", "https://1.2.3.4.5".into(), "invalid IPv4 address"),
        ("line break inside", "https://10.0.0.10\\n:6443".into(), "contains control characters"),
        ("backslashes", "https:\\\\\\\\10.0.0.10".into(), "contains a backslash"),
    ] {
        let text = base_with("server: https://10.0.0.10:6443", &format!("server: \"{server}\""));
        refused(label, &s, &mut gen_on(&s, text.as_bytes()), 1, &[needle, field, "hostile.yaml"]);
    }
    let tail = format!("{PROXY}/{CLUSTER_ID}/proxy/direct");
    // Kept as written, as kubectl keeps them (it encodes what it sends itself).
    for (label, server, want) in [
        ("IDN host", "https://bücher.example:6443", format!("https://bücher.example:6443/{tail}")),
        ("odd but valid port", "https://10.0.0.10:65535", format!("https://10.0.0.10:65535/{tail}")),
        ("default port", "https://10.0.0.10:443", format!("https://10.0.0.10:443/{tail}")),
        ("percent-encoding in the path", "https://h.example/k8s/c%2Fx", format!("https://h.example/k8s/c%2Fx/{tail}")),
        ("space in the path", "https://h.example/a b", format!("https://h.example/a b/{tail}")),
        ("upper case", "HTTPS://H.EXAMPLE:6443", format!("HTTPS://H.EXAMPLE:6443/{tail}")),
    ] {
        let text = base_with("server: https://10.0.0.10:6443", &format!("server: \"{server}\""));
        let out = accepted(label, &s, &mut gen_on(&s, text.as_bytes()));
        let view = kubectl_view_text(&s, &out);
        assert_eq!(only(&view, "clusters")["cluster"]["server"], want.as_str(), "{label}");
    }
}

#[test]
fn child_server_urls() {
    let s = Scratch::new();
    for (label, url, needle) in [
        ("userinfo (the secret)", format!("https://{CHILD_TOKEN}@h"), "--child-server contains user info"),
        ("port 0", "https://h:0".into(), "--child-server has port 0"),
        ("port 70000", "https://h:70000".into(), "--child-server"),
        ("IPv6 zone", "https://[fe80::1%25eth0]".into(), "--child-server"),
        ("percent-escaped host", "https://%68".into(), "--child-server has a percent-escaped host"),
        ("IPv4 shorthand", "http://10.1:8001".into(), "--child-server has host \"10.1\""),
        ("tab inside", "https://h\t:6443".into(), "--child-server contains control characters"),
    ] {
        refused(label, &s, &mut s.generate(&["--token-file", "child.token", "--child-server", &url]), 2, &[needle]);
    }
    let out = accepted(
        "IDN child",
        &s,
        &mut s.generate(&["--token-file", "child.token", "--child-server", "https://bücher.example:6443/p/"]),
    );
    assert!(out.contains("/proxy/https/xn--bcher-kva.example:6443/p\n"), "{out}");
}

#[test]
fn paths_symlinks_and_special_files() {
    let s = Scratch::new();
    s.write("dir with space/parent kube.yaml", BASE);
    let gen_path =
        |path: &str| s.bare(&["gen", "--kubeconfig", path, "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]);
    accepted("path with spaces", &s, &mut gen_path("dir with space/parent kube.yaml"));
    std::os::unix::fs::symlink("dir with space/parent kube.yaml", s.path("link.yaml")).unwrap();
    accepted("symlink", &s, &mut gen_path("link.yaml"));
    std::os::unix::fs::symlink("gone.yaml", s.path("dangling.yaml")).unwrap();
    refused("dangling symlink", &s, &mut gen_path("dangling.yaml"), 1, &["kubeconfig dangling.yaml does not exist"]);
    std::os::unix::fs::symlink("loop-b", s.path("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", s.path("loop-b")).unwrap();
    refused("symlink loop", &s, &mut gen_path("loop-a"), 1, &["kubeconfig loop-a cannot be read"]);
    std::os::unix::fs::symlink("pki", s.path("dirlink")).unwrap();
    refused("symlink to a directory", &s, &mut gen_path("dirlink"), 1, &["kubeconfig dirlink is a directory"]);
    refused("/dev/zero", &s, &mut gen_path("/dev/zero"), 1, &["kubeconfig /dev/zero is not a regular file"]);
    let mut cmd = s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]);
    cmd.env("KUBECONFIG", "pki");
    refused("directory in KUBECONFIG", &s, &mut cmd, 1, &["KUBECONFIG: kubeconfig pki is a directory"]);

    // FIFOs wherever a file is read: refused at once, never waited on.
    assert!(Command::new("mkfifo").arg(s.path("fifo")).status().unwrap().success());
    let mut cmd = s.bare(&["gen", "--cluster-id", CLUSTER_ID, "--token-file", "child.token"]);
    cmd.env("KUBECONFIG", "fifo");
    refused("FIFO in KUBECONFIG", &s, &mut cmd, 1, &["kubeconfig fifo is not a regular file"]);
    refused(
        "FIFO as --token-file",
        &s,
        &mut s.generate(&["--token-file", "fifo"]),
        1,
        &["--token-file: fifo is not a regular file"],
    );
    refused(
        "FIFO as --client-key",
        &s,
        &mut s.generate(&["--client-certificate", "child.crt", "--client-key", "fifo"]),
        1,
        &["--client-key: fifo is not a regular file"],
    );
    refused(
        "FIFO as --child-kubeconfig",
        &s,
        &mut s.generate(&["--child-kubeconfig", "fifo"]),
        1,
        &["--child-kubeconfig: kubeconfig fifo is not a regular file"],
    );
    let with_fifo_ca = base_with("certificate-authority-data: Q0EK", "certificate-authority: fifo");
    refused(
        "FIFO as certificate-authority",
        &s,
        &mut gen_on(&s, with_fifo_ca.as_bytes()),
        1,
        &["certificate-authority of cluster \"parent\":", "fifo is not a regular file"],
    );
}

#[test]
fn huge_files() {
    let s = Scratch::new();
    // 100 MB of real kubeconfig text: refused before it is read, at once.
    let entry = format!("- name: c\n  cluster:\n    certificate-authority-data: {}\n", "Q".repeat(1000));
    let mut big = String::with_capacity(101 << 20);
    big.push_str("kind: Config\nclusters:\n");
    while big.len() < 100_000_000 {
        big.push_str(&entry.replacen("name: c", &format!("name: c{}", big.len()), 1));
    }
    let start = Instant::now();
    let (out, rss) = with_max_rss(&mut gen_on(&s, big.as_bytes()));
    fails(&out, 1, "kubeconfig hostile.yaml is larger than 64 MiB");
    assert!(stderr(&out).contains("kubectl config view --minify --raw"));
    assert!(start.elapsed() < Duration::from_secs(5) && rss < 50_000, "{:?}, {rss} KB", start.elapsed());
    drop(big);

    // A 30 MB kubeconfig with 10000 clusters, users and contexts loads in seconds.
    let mut large = String::from("apiVersion: v1\nkind: Config\ncurrent-context: ctx-9999\nclusters:\n");
    let blob = "Q".repeat(1000);
    for i in 0..10_000 {
        large.push_str(&format!(
            "- name: c-{i}\n  cluster:\n    certificate-authority-data: {blob}\n    server: https://10.0.{}.{}:6443\n",
            i / 256,
            i % 256
        ));
    }
    large.push_str("users:\n");
    for i in 0..10_000 {
        large.push_str(&format!(
            "- name: u-{i}\n  user:\n    client-certificate-data: {blob}\n    client-key-data: {blob}\n"
        ));
    }
    large.push_str("contexts:\n");
    for i in 0..10_000 {
        large.push_str(&format!("- name: ctx-{i}\n  context: {{cluster: c-{i}, user: u-{i}}}\n"));
    }
    assert!(large.len() > 30_000_000);
    let start = Instant::now();
    let (out, rss) = with_max_rss(&mut gen_on(&s, large.as_bytes()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("server: https://10.0.39.15:6443/"));
    // A bound far above the normal figure (see the benchmark): it catches
    // quadratic behaviour, not slowness on a loaded machine.
    assert!(start.elapsed() < Duration::from_secs(120), "took {:?}", start.elapsed());
    assert!(rss < 600_000, "peak RSS {rss} KB for 30 MB");
}

/// As root, mode 000 does not stop reads: the unreadable cases run as nobody.
fn as_nobody(s: &Scratch, args: &[&str]) -> Command {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    let mut cmd = if uid.trim() == "0" {
        // A copy inside the scratch dir: the build tree may sit where uid
        // 65534 cannot reach (a clone under /root, say).
        let copy = s.path("nobody-bin/clusternet-kubeconfig");
        if !copy.exists() {
            fs::create_dir_all(copy.parent().unwrap()).unwrap();
            fs::copy(bin(), &copy).unwrap();
            fs::set_permissions(copy.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&copy);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(args)
        .current_dir(s.dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.dir.path())
        .stdin(Stdio::null());
    cmd
}

#[test]
fn unreadable_files() {
    let s = Scratch::new();
    // nobody must reach the scratch files and the binary (checked below).
    fs::set_permissions(s.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    s.write("readable.yaml", BASE);
    s.write("locked.yaml", BASE);
    s.write("locked.token", CHILD_TOKEN);
    s.write("ca-locked.yaml", &base_with("certificate-authority-data: Q0EK", "certificate-authority: pki/ca.crt"));
    for file in ["child.token", "readable.yaml", "ca-locked.yaml"] {
        fs::set_permissions(s.path(file), fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::set_permissions(s.path("pki"), fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["locked.yaml", "locked.token", "pki/ca.crt"] {
        fs::set_permissions(s.path(file), fs::Permissions::from_mode(0o000)).unwrap();
    }
    let g = |kubeconfig: &str, token: &str| {
        as_nobody(&s, &["gen", "--kubeconfig", kubeconfig, "--cluster-id", CLUSTER_ID, "--token-file", token])
    };
    // The control: the same user can run the tool and read a readable file.
    let out = output_within(&mut g("readable.yaml", "child.token"), LIMIT);
    assert!(
        out.status.success(),
        "as nobody, the binary must run (is target/ reachable by uid 65534?): {}",
        stderr(&out)
    );
    refused(
        "mode 000 kubeconfig",
        &s,
        &mut g("locked.yaml", "child.token"),
        1,
        &["kubeconfig locked.yaml cannot be read (permission denied)"],
    );
    refused(
        "mode 000 token file",
        &s,
        &mut g("readable.yaml", "locked.token"),
        1,
        &["--token-file: file locked.token cannot be read (permission denied)"],
    );
    refused(
        "mode 000 CA file",
        &s,
        &mut g("ca-locked.yaml", "child.token"),
        1,
        &["certificate-authority of cluster \"parent\": file", "pki/ca.crt cannot be read (permission denied)"],
    );
    fs::create_dir(s.path("closed")).unwrap();
    fs::copy(s.path("readable.yaml"), s.path("closed/config")).unwrap();
    fs::set_permissions(s.path("closed"), fs::Permissions::from_mode(0o000)).unwrap();
    refused(
        "kubeconfig in a mode 000 directory",
        &s,
        &mut g("closed/config", "child.token"),
        1,
        &["kubeconfig closed/config cannot be read (permission denied)"],
    );
    fs::set_permissions(s.path("closed"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn hostile_merge_targets_are_left_unchanged() {
    let s = Scratch::new();
    let merge =
        |target: &str| s.generate(&["--token-file", "child.token", "--merge-into", target, "--lock-timeout", "1"]);
    for (label, bytes, needle) in [
        ("non-UTF-8 target", b"kind: Config\nclusters: []\ncurrent-context: \xff\n".to_vec(), "is not UTF-8 text"),
        (
            "target with duplicate names",
            format!("kind: Config\nusers:\n- {{name: clusternet-{CLUSTER_ID}, user: {{}}}}\n- {{name: clusternet-{CLUSTER_ID}, user: {{}}}}\n").into_bytes(),
            "has two user entries named",
        ),
        ("target with clusters: 5", b"kind: Config\nclusters: 5\n".to_vec(), "clusters: invalid type: integer"),
        (
            "target with a name that is not a string",
            b"kind: Config\ncontexts:\n- {name: [x], context: {}}\n".to_vec(),
            "contexts[0].name: invalid type: sequence",
        ),
        ("truncated target", b"kind: Config\nclusters:\n- name: \"a".to_vec(), "is not valid YAML"),
    ] {
        fs::write(s.path("target.yaml"), &bytes).unwrap();
        refused(label, &s, &mut merge("target.yaml"), 1, &[needle, "target.yaml"]);
        assert!(!s.path("target.yaml.lock").exists(), "{label}: lock left behind");
    }
    fs::remove_file(s.path("target.yaml")).unwrap();
    assert!(Command::new("mkfifo").arg(s.path("target.yaml")).status().unwrap().success());
    refused("FIFO target", &s, &mut merge("target.yaml"), 1, &["--merge-into target.yaml is not a regular file"]);
    assert!(!s.path("target.yaml.lock").exists());
    // Accepted targets: CRLF and a BOM, JSON, null lists.
    for (label, text) in [
        ("CRLF + BOM target", "\u{feff}apiVersion: v1\r\nkind: Config\r\nclusters: []\r\n".to_string()),
        ("JSON target", "{\"apiVersion\": \"v1\", \"kind\": \"Config\", \"users\": []}".to_string()),
        ("null lists", "kind: Config\nclusters: null\nusers: ~\ncontexts:\n".to_string()),
    ] {
        let path = s.write(&format!("{}.yaml", label.replace(' ', "-")), &text);
        let out = output_within(&mut merge(path.to_str().unwrap()), LIMIT);
        assert!(out.status.success(), "{label}: {}", stderr(&out));
        let view = kubectl_view(&path);
        assert_eq!(only(&view, "contexts")["name"], format!("clusternet-{CLUSTER_ID}").as_str(), "{label}");
    }
}

/// Known bug (reported): the merge target is parsed by `write::merge_into`
/// without the alias budget that `load::check_budget` applies to parents.
#[test]
fn alias_bomb_in_a_merge_target_fails_fast() {
    let s = Scratch::new();
    let mut bomb = String::from("kind: Config\npreferences:\n  x0: &a0\n");
    bomb.push_str(&"  - lol\n".repeat(1000));
    for i in 1..4 {
        bomb.push_str(&format!("  x{i}: &a{i}\n"));
        bomb.push_str(&format!("  - *a{}\n", i - 1).repeat(1000));
    }
    s.write("target.yaml", &bomb);
    let (out, rss) = with_max_rss(&mut s.generate(&["--token-file", "child.token", "--merge-into", "target.yaml"]));
    fails(&out, 1, "--merge-into target.yaml uses YAML aliases that expand to more than");
    assert!(rss < 200_000, "peak RSS {rss} KB");
    assert_eq!(s.read("target.yaml"), bomb);
    assert!(!s.path("target.yaml.lock").exists(), "lock released");
}

#[test]
fn written_files_are_private_whatever_the_umask() {
    let s = Scratch::new();
    let bin = bin().display().to_string();
    let run = |args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000; exec \"{bin}\" gen --kubeconfig parent.yaml --cluster-id {CLUSTER_ID} --token-file child.token {args}"))
            .current_dir(s.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args}: {}", stderr(&out));
        no_secrets(&stderr(&out));
        stderr(&out)
    };
    let mode = |rel: &str| fs::metadata(s.path(rel)).unwrap().permissions().mode() & 0o7777;
    run("--output-file out.yaml");
    assert_eq!(mode("out.yaml"), 0o600, "--output-file under umask 000");
    s.write("open.yaml", "stale\n");
    fs::set_permissions(s.path("open.yaml"), fs::Permissions::from_mode(0o644)).unwrap();
    run("--output-file open.yaml --force");
    assert_eq!(mode("open.yaml"), 0o600, "--force replaces a 0644 file with a 0600 one");
    run("--merge-into new.yaml");
    assert_eq!(mode("new.yaml"), 0o600, "--merge-into a new file under umask 000");
    for loose in [0o604, 0o666] {
        let rel = format!("loose-{loose:o}.yaml");
        s.write(&rel, "apiVersion: v1\nkind: Config\nclusters: []\n");
        fs::set_permissions(s.path(&rel), fs::Permissions::from_mode(loose)).unwrap();
        let err = run(&format!("--merge-into {rel}"));
        assert_eq!(mode(&rel), loose, "merge keeps mode {loose:o}");
        assert!(err.contains(&format!("warning: {rel} is readable by others (mode {loose:04o})")), "{err}");
    }
    assert!(
        !fs::read_dir(s.dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".clusternet"))
    );
}

/// Token files and stdin are read at most 1 MiB (a token travels in a request
/// header, and Go's HTTP servers accept 1 MiB of headers): a 1 GiB file or a
/// 70 MB token is refused at once, with bounded memory, whether it comes from
/// `--token-file`, a `tokenFile:` entry of `--credentials`, `--parent-token-file`
/// or stdin.
#[test]
fn oversized_tokens_are_refused_without_being_read() {
    let s = Scratch::new();
    fs::File::create(s.path("huge.token")).unwrap().set_len(1 << 30).unwrap();
    s.write("big.token", &"t".repeat(70_000_000));
    s.write("creds.yaml", &format!("clusters:\n  {CLUSTER_ID}: {{tokenFile: huge.token}}\n"));
    let parent = ["--parent-auth", "token", "--parent-token-file", "huge.token", "--token-file", "child.token"];
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "1 GiB --token-file",
            vec!["--token-file", "huge.token"],
            "--token-file: file huge.token is larger than 1 MiB",
        ),
        ("70 MB --token-file", vec!["--token-file", "big.token"], "--token-file: file big.token is larger than 1 MiB"),
        ("1 GiB tokenFile: entry", vec!["--credentials", "creds.yaml"], "huge.token is larger than 1 MiB"),
        ("1 GiB --parent-token-file", parent.to_vec(), "--parent-token-file: file huge.token is larger than 1 MiB"),
    ];
    for (label, args, needle) in cases {
        let before = s.listing();
        let start = Instant::now();
        let (out, rss) = with_max_rss(&mut s.generate(&args));
        fails(&out, 1, needle);
        assert!(!out.stderr.iter().any(|b| b.is_ascii_control() && *b != b'\n'), "{label}: {}", stderr(&out));
        assert!(start.elapsed() < Duration::from_secs(5) && rss < 50_000, "{label}: {:?}, {rss} KB", start.elapsed());
        assert_eq!(s.listing(), before, "{label}: files changed");
    }

    // 70 MB on stdin: read no further than the limit.
    let mut child = s
        .generate(&["--token-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // The tool stops reading and exits: a broken pipe is expected.
        let _ = stdin.write_all(&vec![b't'; 70_000_000]);
    });
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    fails(&out, 1, "--token-file - (stdin): more than 1 MiB on stdin");
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());

    // A long but possible token (16 KiB; the output stays within a pipe's buffer) is still a token.
    s.write("long.token", &"t".repeat(16 << 10));
    accepted("16 KiB token", &s, &mut s.generate(&["--token-file", "long.token"]));
}

/// The parent kubeconfig's own user as child credentials, from `--credentials`
/// or `--child-kubeconfig`: the hub would hand the parent user's credentials to
/// the child. Refused, naming the user.
#[test]
fn the_parent_users_own_credentials_are_refused_as_a_childs() {
    let s = Scratch::new();
    s.write("creds.yaml", &format!("clusters:\n  {CLUSTER_ID}: {{kubeconfig: parent.yaml}}\n"));
    s.write(
        "creds-token.yaml",
        &format!("clusters:\n  {CLUSTER_ID}: {{kubeconfig: parent.yaml, context: tokenuser}}\n"),
    );
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "credentials entry, certificate",
            vec!["--credentials", "creds.yaml"],
            "client certificate of the parent kubeconfig's user \"admin\"",
        ),
        (
            "credentials entry, tokenFile",
            vec!["--context", "tokenuser", "--credentials", "creds-token.yaml"],
            "token of the parent kubeconfig's user \"tokenuser\"",
        ),
        (
            "--child-kubeconfig",
            vec!["--child-kubeconfig", "parent.yaml"],
            "client certificate of the parent kubeconfig's user",
        ),
        (
            "--token-file",
            vec!["--context", "tokenuser", "--token-file", "parent-user.token"],
            "token of the parent kubeconfig's user",
        ),
    ];
    for (label, args, needle) in cases {
        refused(label, &s, &mut s.generate(&args), 1, &[needle, "give the child cluster's own credentials"]);
    }
}

/// Namespaces, names and selectors are checked before they reach a request
/// path or a field selector (kubectl refuses them too: "may not contain '/'").
#[test]
fn names_that_would_change_the_request_path_are_refused() {
    let s = Scratch::new();
    let cases: [(&str, Vec<&str>, &str); 6] = [
        (
            "-n with ..",
            vec!["gen", "--cluster", "a", "-n", "x/../y", "--token", "t"],
            "-n/--namespace \"x/../y\" is not a namespace name",
        ),
        (
            "-n with a path",
            vec!["gen", "--cluster", "a", "-n", "ns/managedclusters/name?", "--token", "t"],
            "-n/--namespace \"ns/managedclusters/name?\" is not a namespace name",
        ),
        (
            "--system-namespace",
            vec![
                "gen",
                "--cluster-id",
                CLUSTER_ID,
                "--token",
                "t",
                "--parent-auth",
                "token",
                "--system-namespace",
                "x/../y",
            ],
            "--system-namespace \"x/../y\" is not a namespace name",
        ),
        (
            "--cluster with a selector",
            vec!["gen", "--cluster", "a,metadata.namespace=b", "--token", "t"],
            "--cluster \"a,metadata.namespace=b\" is not a ManagedCluster name",
        ),
        ("list -n", vec!["list", "-n", "x/../y"], "-n/--namespace \"x/../y\" is not a namespace name"),
        (
            "list -l with an escape",
            vec!["list", "-l", "a=\u{1b}[2J"],
            "-l/--selector \"a=\\u{1b}[2J\" contains control characters",
        ),
    ];
    for (label, args, needle) in cases {
        let mut all = args.clone();
        all.splice(1..1, ["--kubeconfig", "parent.yaml"]);
        refused(label, &s, &mut s.bare(&all), 2, &[needle]);
    }
}
