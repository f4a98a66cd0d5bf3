//! Keyless CI (`--parent-auth oidc`): the lab's parent kube-apiserver runs
//! with an `--authentication-config` that trusts testkit's loopback OIDC
//! issuer (audience `clusternet-lab`, username `oidc:<sub>`, a CEL rule that
//! pins the repository `octo-org/octo-repo`), and the issuer stands in for
//! the GitHub Actions token endpoint. The parent kubeconfig holds the
//! parent's URL and CA only, as a CI job has them; every token the tool and
//! kubectl use is minted by the stand-in for the job, and the real apiserver
//! decides whether it is accepted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use testkit::lab::{CI_SA, REAL_CHILD_SELECTOR};
use testkit::oidc::{AUDIENCE, REPOSITORY, default_username};

use crate::parent_token::claims;
use crate::support::*;

/// A CI job's parent kubeconfig: server and CA, a user with nothing in it.
fn ci_parent(dir: &Path) -> PathBuf {
    write(
        dir,
        "parent.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: parent, cluster: {{server: '{}', certificate-authority: '{}'}}}}]\n\
             users: [{{name: ci, user: {{}}}}]\ncontexts: [{{name: parent, context: {{cluster: parent, user: ci}}}}]\n\
             current-context: parent\n",
            lab().server(),
            lab().var("LAB_CA")
        ),
    )
}

/// The environment of a GitHub Actions job with `id-token: write`, its
/// endpoint minting with `query` (claims, lifetime) and a marker of its own,
/// trusted through SSL_CERT_FILE; and the marker, to count its mints.
fn actions_job(query: &str) -> (Vec<(String, String)>, String) {
    let marker = unique("job");
    let request_token = std::fs::read_to_string(lab().var("LAB_OIDC_REQUEST_TOKEN_FILE")).unwrap();
    let url = format!("{}/actions/token?api-version=2.0&job={marker}&{query}", lab().var("LAB_OIDC_URL"));
    let env = vec![
        ("ACTIONS_ID_TOKEN_REQUEST_URL".to_string(), url),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_string(), request_token.trim().to_string()),
        ("SSL_CERT_FILE".to_string(), lab().var("LAB_OIDC_CA").to_string()),
    ];
    (env, marker)
}

/// How many tokens the stand-in minted for the job with `marker`.
fn mints(marker: &str) -> usize {
    let text = std::fs::read_to_string(lab().var("LAB_OIDC_RECORD")).unwrap_or_default();
    text.lines().filter(|l| l.contains(&format!("job={marker}"))).count()
}

fn tool_in(env: &[(String, String)], args: &[&str]) -> Output {
    let _shared = shared();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"));
    without_ambient(cmd.args(args)).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap()
}

fn kubectl_in(env: &[(String, String)], kc: &Path, args: &[&str]) -> Output {
    let _shared = shared();
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .arg("--request-timeout=20s")
        .args(args)
        .env_remove("KUBECONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok_text(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `gen` offline (no token needed to write the file) for the real child with
/// its reader token: the parent side is the exec entry alone.
fn offline_kubeconfig(dir: &Path, audience: &str) -> PathBuf {
    let parent = ci_parent(dir);
    let out = dir.join(format!("{}.kubeconfig", unique("oidc")));
    let (_, err) = tool_ok(&[
        "gen",
        "--kubeconfig",
        parent.to_str().unwrap(),
        "--cluster-id",
        CHILD_REAL.id,
        "--token-file",
        lab().var("LAB_CHILD_TOKEN_FILE"),
        "--parent-auth",
        "oidc",
        "--oidc-audience",
        audience,
        "--output-file",
        out.to_str().unwrap(),
    ]);
    assert!(err.starts_with("wrote context"), "{err}");
    out
}

/// kubectl runs the exec entry, which asks the Actions stand-in for a token;
/// the real parent accepts it, and the hub reaches the real child.
#[test]
fn kubectl_lists_the_real_childs_namespaces_with_a_fresh_oidc_token() {
    let dir = tempdir();
    let kc = offline_kubeconfig(dir.path(), AUDIENCE);
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(!text.contains("username:") && !text.contains("\n    token:"), "no parent credential: {text}");
    let (env, marker) = actions_job(&format!("repository={REPOSITORY}"));
    let table = ok_text(&kubectl_in(&env, &kc, &["get", "ns"]), "kubectl get ns");
    assert!(table.lines().any(|l| l.starts_with(CHILD_ONLY_NAMESPACE)), "the child's namespaces: {table}");
    assert!(mints(&marker) >= 1, "kubectl ran the plugin, which asked the endpoint");
    // The identity the parent maps the job's token to (what its RBAC names).
    let review = Command::new(env!("CARGO_BIN_EXE_clusternet-kubeconfig"))
        .args(["oidc-token", "--audience", AUDIENCE])
        .env_remove("KUBECONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let credential: Value = serde_json::from_slice(&review.stdout).unwrap();
    let token = credential["status"]["token"].as_str().unwrap();
    let out = Command::new("kubectl")
        .args(["--server", lab().server(), "--certificate-authority", lab().var("LAB_CA"), "--token", token])
        .args(["auth", "whoami", "-o", "json"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let who = json(&ok_text(&out, "kubectl auth whoami"));
    assert_eq!(who["status"]["userInfo"]["username"], default_username(), "{who}");
}

/// Refused by the real apiserver: a token for another audience, an expired
/// one, and one whose repository fails the CEL rule; `gen` says so in one
/// line (with what the token says of itself, never the token), and kubectl
/// through a generated file is refused too.
#[test]
fn tokens_the_parent_refuses_are_reported_in_one_line() {
    let dir = tempdir();
    let parent = ci_parent(dir.path());
    let cases = [
        ("other-audience", "", "audience \"other-audience\""),
        (AUDIENCE, "ttl=-120", "expired at"),
        (AUDIENCE, "repository=evil-org/evil-repo", "subject \"repo:evil-org/evil-repo:ref:refs/heads/main\""),
    ];
    for (audience, query, says) in cases {
        let (env, marker) = actions_job(query);
        let out = tool_in(
            &env,
            &[
                "gen",
                "--kubeconfig",
                parent.to_str().unwrap(),
                "--cluster",
                CHILD_REAL.name,
                "--token-file",
                lab().var("LAB_CHILD_TOKEN_FILE"),
                "--parent-auth",
                "oidc",
                "--oidc-audience",
                audience,
            ],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{query}: {err}");
        assert!(out.stdout.is_empty(), "nothing written: {}", text(&out.stdout));
        assert_eq!(err.lines().count(), 1, "{query}: one line: {err}");
        assert!(err.starts_with("error: the parent refused the OIDC token"), "{query}: {err}");
        assert!(err.contains("401") && err.contains(says), "{query}: {err}");
        assert!(!err.contains("eyJ"), "no token in the message: {err}");
        assert_eq!(mints(&marker), 1, "one token per run");
        let kc = offline_kubeconfig(dir.path(), audience);
        let refused = kubectl_in(&env, &kc, &["get", "ns"]);
        assert!(!refused.status.success(), "{query}: kubectl must be refused");
        assert!(text(&refused.stderr).contains("Unauthorized"), "{query}: {}", text(&refused.stderr));
    }
}

/// client-go runs the plugin again once the token's `expirationTimestamp`
/// has passed: one `kubectl proxy` session, two requests a token lifetime
/// apart, both answered by the child, two tokens minted.
#[test]
fn the_plugin_mints_again_after_expiry_within_one_kubectl_session() {
    let dir = tempdir();
    let kc = offline_kubeconfig(dir.path(), AUDIENCE);
    let (env, marker) = actions_job("ttl=6");
    let _shared = shared();
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(&kc).args(["proxy", "--port", "0"]).env_remove("KUBECONFIG");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let proxy = testkit::serving::Serving::start(cmd, dir.path().join("kubectl-proxy.stderr"));
    // kubectl proxy serves the parent; the socket-proxy path reaches the child.
    let path = format!("{PROXY_PREFIX}{}/proxy/direct/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}", CHILD_REAL.id);
    let get = || {
        let out = Command::new("curl").args(["-sS", &format!("http://{}{path}", proxy.listening)]).output().unwrap();
        json(&text(&out.stdout))
    };
    assert_eq!(get()["metadata"]["name"], CHILD_ONLY_NAMESPACE);
    assert_eq!(mints(&marker), 1);
    std::thread::sleep(std::time::Duration::from_secs(8));
    let again = get();
    assert_eq!(again["metadata"]["name"], CHILD_ONLY_NAMESPACE, "after expiry: {again}");
    assert_eq!(mints(&marker), 2, "a fresh token after the first expired");
    let (status, err) = proxy.stop();
    assert!(!err.contains("eyJ"), "{status}: {err}");
}

/// The keyless recipe end to end: `--all` with the hub-held credentials and
/// child token requests, authenticated by the job's OIDC token alone; only
/// the two clusters whose Secret the CI identity may read are written, and
/// the file holds no secret but the child tokens the children minted.
#[test]
fn keyless_all_with_hub_credentials_and_token_requests() {
    let dir = tempdir();
    let parent = ci_parent(dir.path());
    let out = dir.path().join("ci.kubeconfig");
    let (env, marker) = actions_job("");
    let account = format!("{CHILD_ONLY_NAMESPACE}/{CI_SA}");
    let run = tool_in(
        &env,
        &[
            "gen",
            "--kubeconfig",
            parent.to_str().unwrap(),
            "--all",
            "-l",
            REAL_CHILD_SELECTOR,
            "--allow-skip",
            "--child-credentials",
            "hub",
            "--child-token-request",
            &account,
            "--child-token-ttl",
            "1h",
            "--parent-auth",
            "oidc",
            "--oidc-audience",
            AUDIENCE,
            "--output-file",
            out.to_str().unwrap(),
        ],
    );
    let err = text(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert_eq!(mints(&marker), 1, "one token for the whole run: {err}");
    let skipped: Vec<&str> = err.lines().filter(|l| l.ends_with("skipped (--allow-skip)")).collect();
    assert_eq!(skipped.len(), 2, "the two real-labelled clusters without a usable Secret: {err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let contexts: Vec<&str> = doc["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(contexts, ["clusternet-child-real", "clusternet-child-real-2"], "{err}");
    // Every JWT in the file is a child's token for the narrow account.
    let jwts: Vec<&str> = text.split(|c: char| c.is_whitespace()).filter(|w| w.starts_with("eyJ")).collect();
    assert_eq!(jwts.len(), 2, "{text}");
    for jwt in jwts {
        let c = claims(jwt);
        assert_eq!(c["sub"], format!("system:serviceaccount:{CHILD_ONLY_NAMESPACE}:{CI_SA}"), "{c}");
    }
    assert!(!text.contains(&crate::hub_credentials::deployer_token()), "the hub-held admin token is not written");
    // The files of the run: the credential-less parent kubeconfig and the output.
    let mut files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["ci.kubeconfig", "parent.kubeconfig"]);
    for context in contexts {
        let cm = kubectl_in(&env, &out, &["--context", context, "-n", CHILD_ONLY_NAMESPACE, "get", "cm", "-o", "name"]);
        assert!(ok_text(&cm, "kubectl get cm").contains("lab-marker"), "{context}");
    }
}

/// `list --oidc-audience`: the ManagedClusters, as the CI identity; the
/// same credential-less parent kubeconfig without it is anonymous, and refused.
#[test]
fn list_as_the_ci_identity() {
    let dir = tempdir();
    let parent = ci_parent(dir.path());
    let (env, marker) = actions_job("");
    let listed =
        tool_in(&env, &["list", "--kubeconfig", parent.to_str().unwrap(), "--oidc-audience", AUDIENCE, "-o", "json"]);
    let items = json(&ok_text(&listed, "list --oidc-audience"));
    let names: Vec<&str> = items["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(names.contains(&CHILD_REAL.name), "{names:?}");
    assert_eq!(mints(&marker), 1);
    let anonymous = tool_in(&env, &["list", "--kubeconfig", parent.to_str().unwrap()]);
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(text(&anonymous.stderr).contains("system:anonymous"), "{}", text(&anonymous.stderr));
    let refused =
        tool_in(&env, &["list", "--kubeconfig", parent.to_str().unwrap(), "--oidc-audience", "another-audience"]);
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: the parent refused the OIDC token") && err.lines().count() == 1, "{err}");
}
