//! Reaching the real parent through a forward proxy, as kubectl does: the
//! cluster's `proxy-url` (an HTTP CONNECT proxy, a SOCKS5 proxy) and
//! HTTPS_PROXY from the environment. The parent's server is
//! `https://kubernetes.default.svc:PORT`, a name its certificate lists and
//! that only the testkit proxies resolve (to 127.0.0.1): whatever does not
//! go through the proxy fails. kubectl first reaches the parent that way
//! (the oracle), then every subcommand that talks to the parent must too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testkit::lab::{CI_CONFIGMAP, CI_SA, REAL_CHILD_SELECTOR};
use testkit::proxies::{ConnectProxy, Socks5Proxy, Tunnelled};

use crate::support::*;

/// The name the proxies resolve, and the lab apiserver's certificate lists.
const NAME: &str = "kubernetes.default.svc";

fn names() -> [(&'static str, std::net::IpAddr); 1] {
    [(NAME, std::net::IpAddr::from([127, 0, 0, 1]))]
}

/// The lab admin's kubeconfig, embedded, with the server at [`NAME`] and
/// `proxy_url` (if any) on its cluster, written to `dir/parent.yaml`.
fn parent(dir: &Path, proxy_url: Option<&str>) -> PathBuf {
    let out = kubectl(admin(), &["config", "view", "--raw", "--minify", "--flatten", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let port = lab().server().rsplit_once(':').unwrap().1.trim_end_matches('/').to_string();
    let cluster = &mut doc["clusters"][0]["cluster"];
    cluster["server"] = Value::from(format!("https://{NAME}:{port}"));
    if let Some(url) = proxy_url {
        cluster["proxy-url"] = Value::from(url);
    }
    write(dir, "parent.yaml", &doc.to_string())
}

/// The tool with `args` and `env`, nothing else ambient.
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let _shared = shared();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    without_ambient(&mut Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig")))
        .args(args)
        .envs(env.iter().copied())
        .env("TMPDIR", dir.join("tmp"))
        .env("HOME", dir)
        .output()
        .expect("run clusternet-kubeconfig")
}

fn ok(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = run(dir, env, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// kubectl with `kubeconfig` and `env` only.
fn kubectl_env(kubeconfig: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let home = tempdir();
    Command::new("kubectl")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(env.iter().copied())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout=30s"])
        .args(args)
        .output()
        .unwrap()
}

/// How many connections went to the parent through the proxy, each by name;
/// fails on any other target.
fn count(log: &[Tunnelled]) -> usize {
    let port = lab().server().rsplit_once(':').unwrap().1.trim_end_matches('/').to_string();
    let want = format!("{NAME}:{port}");
    for t in log {
        assert!(t.target == want && t.by_name && t.tunnelled, "unexpected tunnel {t:?}");
    }
    log.len()
}

/// kubectl, then list, gen --cluster and --all with hub-held credentials and
/// a token request, verify, exec, proxy and refresh: each through the proxy.
fn every_subcommand_goes_through(env: &[(&str, &str)], proxy_url: Option<&str>, log: &dyn Fn() -> Vec<Tunnelled>) {
    let dir = tempdir();
    let dir = dir.path();
    let parent = parent(dir, proxy_url);
    let p = parent.to_str().unwrap();
    let grew = |before: usize, what: &str| {
        let now = count(&log());
        assert!(now > before, "{what} did not go through the proxy");
        now
    };

    let out = kubectl_env(&parent, env, &["get", "managedclusters", "-A", "-o", "name"]);
    assert!(out.status.success(), "kubectl through the proxy: {}", text(&out.stderr));
    let n = grew(0, "kubectl");

    let listed = ok(dir, env, &["list", "--kubeconfig", p, "-o", "json"]);
    assert!(listed.contains(CHILD_REAL.id), "{listed}");
    let n = grew(n, "list");

    let account = format!("{CHILD_ONLY_NAMESPACE}/{CI_SA}");
    let one = dir.join("one.kubeconfig");
    let hub = ["--child-credentials", "hub", "--child-token-request", &account, "--child-token-ttl", "1h"];
    ok(
        dir,
        env,
        &[
            &["gen", "--kubeconfig", p, "--cluster", CHILD_REAL.name][..],
            &hub,
            &["--merge-into", one.to_str().unwrap()],
        ]
        .concat(),
    );
    let n = grew(n, "gen --cluster with hub credentials and a token request");

    let all = dir.join("all.kubeconfig");
    ok(
        dir,
        env,
        &[
            "gen",
            "--kubeconfig",
            p,
            "--all",
            "-l",
            REAL_CHILD_SELECTOR,
            "--allow-skip",
            "--child-credentials",
            "hub",
            "--output-file",
            all.to_str().unwrap(),
        ],
    );
    let n = grew(n, "gen --all");

    ok(dir, env, &["verify", "--kubeconfig", one.to_str().unwrap()]);
    let n = grew(n, "verify");
    // The token request's account may read one ConfigMap there, and no more.
    let read = ["-n", CHILD_ONLY_NAMESPACE, "get", "configmap", CI_CONFIGMAP, "-o", "name"];
    let out = kubectl_env(&one, env, &read);
    assert!(out.status.success(), "kubectl with the generated kubeconfig: {}", text(&out.stderr));
    let n = grew(n, "kubectl with the generated kubeconfig");

    let ran = ok(
        dir,
        env,
        &[
            &["exec", "--kubeconfig", p, "--cluster", CHILD_REAL.name][..],
            &hub,
            &["--", "kubectl", "-n", CHILD_ONLY_NAMESPACE, "get", "configmap", CI_CONFIGMAP, "-o", "name"],
        ]
        .concat(),
    );
    assert!(ran.contains(CI_CONFIGMAP), "{ran}");
    let n = grew(n, "exec");

    let answer = through_proxy_subcommand(dir, env, &one);
    assert!(answer.starts_with("HTTP/1.1 200"), "proxy: {answer}");
    let n = grew(n, "proxy");

    let (_, err) = (
        (),
        text(
            &run(
                dir,
                env,
                &["refresh", "--kubeconfig", one.to_str().unwrap(), "--before", "2h", "--parent-kubeconfig", p],
            )
            .stderr,
        ),
    );
    assert!(err.contains("refreshed context"), "refresh: {err}");
    grew(n, "refresh");
}

/// `proxy --kubeconfig <generated>` and one GET of the ConfigMap the account may read.
fn through_proxy_subcommand(dir: &Path, env: &[(&str, &str)], generated: &Path) -> String {
    use std::io::{Read as _, Write as _};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"));
    without_ambient(&mut cmd)
        .args(["proxy", "--kubeconfig", generated.to_str().unwrap(), "--port", "0"])
        .envs(env.iter().copied());
    let serving = testkit::serving::Serving::start(cmd, dir.join("proxy.stderr"));
    let mut stream = std::net::TcpStream::connect(&serving.listening).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "GET /api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/configmaps/{CI_CONFIGMAP} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn proxy_url_http_connect_carries_every_subcommand() {
    let proxy = ConnectProxy::start(&names()).unwrap();
    every_subcommand_goes_through(&[], Some(&proxy.url()), &|| proxy.tunnelled());
}

#[test]
fn proxy_url_socks5_carries_every_subcommand() {
    let proxy = Socks5Proxy::start(&names()).unwrap();
    every_subcommand_goes_through(&[], Some(&proxy.url()), &|| proxy.tunnelled());
}

#[test]
fn https_proxy_from_the_environment_carries_every_subcommand() {
    let proxy = ConnectProxy::start(&names()).unwrap();
    let url = proxy.url();
    every_subcommand_goes_through(&[("HTTPS_PROXY", &url), ("NO_PROXY", "10.0.0.0/8,.example")], None, &|| {
        proxy.tunnelled()
    });
}
