//! `--child-credentials hub`: the child's token from the Secret
//! `child-cluster-deployer` that clusternet-agent stores on the parent (the
//! lab seeds it as the agent would: the real child's `clusternet-app-deployer`
//! service account, bound to cluster-admin there), and `--child-token-request`:
//! a short-lived token of a narrowly bound service account, issued by the real
//! child's TokenRequest API through the socket proxy. Every test asserts on
//! what the real child says (who we are, what we may read), and every failure
//! on its one `error:` line and on nothing written.

use std::path::{Path, PathBuf};

use testkit::lab::{
    CHILD_EMPTY_TOKEN, CHILD_MAX_TOKEN_HOURS, CHILD_NO_SECRET, CHILD_REAL_2, CI_CONFIGMAP, CI_SA, DEPLOYER_NAMESPACE,
    DEPLOYER_SA, DEPLOYER_SECRET, REAL_CHILD_SELECTOR,
};

use crate::child::child_username;
use crate::parent_token::claims;
use crate::support::*;

const HUB: [&str; 2] = ["--child-credentials", "hub"];

pub(crate) fn deployer_user() -> String {
    format!("system:serviceaccount:{DEPLOYER_NAMESPACE}:{DEPLOYER_SA}")
}

pub(crate) fn ci_user() -> String {
    format!("system:serviceaccount:{CHILD_ONLY_NAMESPACE}:{CI_SA}")
}

pub(crate) fn ci_account() -> String {
    format!("{CHILD_ONLY_NAMESPACE}/{CI_SA}")
}

/// The cluster-admin token the lab stored in the deployer Secrets.
pub(crate) fn deployer_token() -> String {
    std::fs::read_to_string(lab().var("LAB_DEPLOYER_TOKEN_FILE")).unwrap().trim().to_string()
}

fn out_file(dir: &Path) -> PathBuf {
    dir.join(format!("{}.kubeconfig", unique("hub")))
}

fn doc(path: &Path) -> serde_json::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The child token of every user entry of `kc`.
fn child_tokens(kc: &Path) -> Vec<String> {
    let d = doc(kc);
    d["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"]["as-user-extra"]["clusternet-token"][0].as_str().expect("a child token").to_string())
        .collect()
}

/// `kubectl --context <context>` through `kc` reaches the real child as `user`
/// and reads the child-only namespace.
fn reaches_as(kc: &Path, context: &str, user: &str) {
    let ctx = ["--context", context];
    let who = json(&kubectl_ok(kc, &[&ctx[..], &["auth", "whoami", "-o", "json"]].concat()));
    assert_eq!(who["status"]["userInfo"]["username"], user, "{context}: {who}");
    let ns = json(&kubectl_ok(kc, &[&ctx[..], &["get", "ns", CHILD_ONLY_NAMESPACE, "-o", "json"]].concat()));
    assert_eq!(ns["metadata"]["name"], CHILD_ONLY_NAMESPACE, "{context}: {ns}");
}

/// The warning that the written credential is the child's cluster-admin one.
fn assert_admin_warning(stderr: &str) {
    let line = stderr.lines().find(|l| l.starts_with("warning: --child-credentials hub")).unwrap_or_else(|| {
        panic!("no cluster-admin warning: {stderr}");
    });
    assert!(line.contains("cluster-admin") && line.contains("written into the kubeconfig"), "{line}");
    assert!(line.contains(&format!("{DEPLOYER_NAMESPACE}/{DEPLOYER_SA}")), "{line}");
}

#[test]
fn hub_credentials_by_id_are_the_childs_deployer() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let (_, err) = lab_gen().args(&["--cluster-id", CHILD_REAL.id]).args(&HUB).output_file(&out).ok();
    assert_admin_warning(&err);
    assert_eq!(child_tokens(&out), [deployer_token()], "the Secret's token, as is");
    let name = format!("clusternet-{}", CHILD_REAL.name);
    reaches_as(&out, &name, &deployer_user());
    // It is cluster-admin there: it may read what the narrow account may not.
    kubectl_ok(&out, &["auth", "can-i", "delete", "namespaces"]);
}

#[test]
fn hub_credentials_by_name() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let (_, err) = lab_gen().cluster(CHILD_REAL_2.name).args(&HUB).output_file(&out).ok();
    assert_admin_warning(&err);
    reaches_as(&out, &format!("clusternet-{}", CHILD_REAL_2.name), &deployer_user());
}

#[test]
fn hub_credentials_for_several_clusters() {
    let dir = tempdir();
    let out = out_file(dir.path());
    lab_gen().cluster(CHILD_REAL.name).args(&["--cluster-id", CHILD_REAL_2.id]).args(&HUB).output_file(&out).ok();
    let d = doc(&out);
    assert_eq!(d["users"].as_array().unwrap().len(), 2, "{d}");
    for seed in [CHILD_REAL, CHILD_REAL_2] {
        reaches_as(&out, &format!("clusternet-{}", seed.name), &deployer_user());
    }
}

/// `--all` needs no credentials file; clusters whose Secret is missing or
/// empty fail the run, or with --allow-skip are skipped with a warning
/// naming the Secret.
#[test]
fn all_with_hub_credentials_skips_clusters_without_a_usable_secret() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let (_, err) =
        lab_gen().args(&["--all", "-l", REAL_CHILD_SELECTOR, "--allow-skip"]).args(&HUB).output_file(&out).ok();
    let d = doc(&out);
    let contexts: Vec<&str> = d["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(contexts, ["clusternet-child-real", "clusternet-child-real-2"], "{err}");
    for seed in [CHILD_REAL, CHILD_REAL_2] {
        reaches_as(&out, &format!("clusternet-{}", seed.name), &deployer_user());
    }
    let skipped = |seed: Seed, why: &str| {
        let line =
            err.lines().find(|l| l.contains(seed.id)).unwrap_or_else(|| panic!("no warning for {seed:?}: {err}"));
        assert!(line.starts_with("warning: ") && line.ends_with("; skipped (--allow-skip)"), "{line}");
        assert!(line.contains(&format!("{}/{DEPLOYER_SECRET}", seed.namespace)) && line.contains(why), "{line}");
    };
    skipped(CHILD_NO_SECRET, "no Secret");
    skipped(CHILD_EMPTY_TOKEN, "empty token");

    let strict = out_file(dir.path());
    let e = lab_gen().args(&["--all", "-l", REAL_CHILD_SELECTOR]).args(&HUB).output_file(&strict).err();
    assert!(e.contains("cannot be used") && e.contains(CHILD_NO_SECRET.id), "{e}");
    assert!(!strict.exists(), "nothing written by default");
}

/// The CI pattern: the hub-held admin credential only asks the child for a
/// one-hour token of a narrowly bound service account; that token alone is
/// written, the child itself accepts it, and it may do no more than its Role.
#[test]
fn token_request_writes_only_the_narrow_short_lived_token() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let (_, err) = lab_gen()
        .cluster(CHILD_REAL.name)
        .args(&HUB)
        .args(&["--child-token-request", &ci_account(), "--child-token-ttl", "1h"])
        .output_file(&out)
        .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(&deployer_token()), "the cluster-admin token must not be written");
    assert!(err.contains("used only to request the token") && !err.contains("warning:"), "{err}");
    assert!(!err.contains("shortened"), "{err}");
    let [token] = &child_tokens(&out)[..] else { panic!("one user: {text}") };
    // The child's own token: its claims, and the child accepts it directly.
    let c = claims(token);
    assert_eq!(c["sub"], ci_user(), "{c}");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600, "{c}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((c["exp"].as_i64().unwrap() - now - 3600).abs() < 120, "expires in an hour from now: {c}");
    let direct = write(
        dir.path(),
        "direct.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{}', certificate-authority: '{}'}}}}]\n\
             users: [{{name: u, user: {{token: '{token}'}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n",
            lab().var("LAB_CHILD_SERVER"),
            lab().var("LAB_CHILD_CA")
        ),
    );
    assert_eq!(child_username(&direct), ci_user());
    // Through the proxy: the narrow identity, its Role and no more.
    assert_eq!(child_username(&out), ci_user());
    let cm = json(&kubectl_ok(&out, &["-n", CHILD_ONLY_NAMESPACE, "get", "configmap", CI_CONFIGMAP, "-o", "json"]));
    assert_eq!(cm["data"]["seeded-by"], "lab");
    let denied = kubectl(&out, &["get", "ns"]);
    assert!(!denied.status.success() && text_of(&denied).contains("forbidden"), "{}", text_of(&denied));
    // The TokenRequest went through the socket proxy, as clusternet, with the hub-held token.
    let recs = records_with("x-remote-extra-clusternet-token", &deployer_token(), 1);
    let path = format!(
        "{PROXY_PREFIX}{}/proxy/direct/api/v1/namespaces/{CHILD_ONLY_NAMESPACE}/serviceaccounts/{CI_SA}/token",
        CHILD_REAL.id
    );
    let post = recs.iter().find(|r| r.method == "POST" && r.path == path).unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(post.header("x-remote-user"), Some("clusternet"), "{post:?}");
    assert_eq!(post.status, Some(201), "{post:?}");
}

fn text_of(out: &std::process::Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// More than the child grants: it shortens the token to its maximum, and `gen` says so.
#[test]
fn token_request_says_when_the_child_shortened_the_ttl() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let asked = CHILD_MAX_TOKEN_HOURS + 280;
    let (_, err) = lab_gen()
        .cluster(CHILD_REAL.name)
        .args(&HUB)
        .args(&["--child-token-request", &ci_account(), "--child-token-ttl", &format!("{asked}h")])
        .output_file(&out)
        .ok();
    let note = err.lines().find(|l| l.contains("shortened")).unwrap_or_else(|| panic!("no note: {err}"));
    assert!(note.starts_with("note: the child shortened the token of child-only/ci-reader"), "{note}");
    assert!(
        note.contains(&format!("asked for {asked}h")) && note.contains(&format!("(in {CHILD_MAX_TOKEN_HOURS}h)")),
        "{note}"
    );
    let [token] = &child_tokens(&out)[..] else { panic!("one user") };
    let c = claims(token);
    let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert_eq!(lifetime, CHILD_MAX_TOKEN_HOURS as i64 * 3600, "{c}");
}

/// Any child credential that may create tokens will do: here the child
/// admin's client certificate, given by flags.
#[test]
fn token_request_with_a_credential_from_flags() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let state = lab().var("LAB_STATE");
    let (cert, key) = (format!("{state}/pki/child-admin.crt"), format!("{state}/pki/child-admin.key"));
    lab_gen()
        .cluster(CHILD_REAL.name)
        .args(&["--client-certificate", &cert, "--client-key", &key, "--child-token-request", &ci_account()])
        .output_file(&out)
        .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("clusternet-certificate") && !text.contains("clusternet-privatekey"), "{text}");
    assert_eq!(child_username(&out), ci_user());
}

/// The negative cases: one `error:` line each, naming what is wrong and the fix, nothing written.
#[test]
fn failures_are_one_line_and_write_nothing() {
    let dir = tempdir();
    // `gen --kubeconfig <lab admin> <args>`: one error line with every needle, nothing written.
    let fails = |args: &[&str], needles: &[&str]| {
        let out = out_file(dir.path());
        let e = lab_gen().args(args).output_file(&out).err();
        assert_eq!(e.lines().filter(|l| l.starts_with("error:")).count(), 1, "{e}");
        for needle in needles {
            assert!(e.contains(needle), "{needle:?} missing from: {e}");
        }
        assert!(!e.contains(&deployer_token()), "a secret in the error: {e}");
        assert!(!out.exists(), "nothing written: {e}");
    };
    let missing = format!("no Secret {}/{DEPLOYER_SECRET} on the parent", CHILD_NO_SECRET.namespace);
    fails(&["--cluster", CHILD_NO_SECRET.name, "--child-credentials", "hub"], &[&missing]);
    let empty = format!("Secret {}/{DEPLOYER_SECRET}", CHILD_EMPTY_TOKEN.namespace);
    fails(&["--cluster", CHILD_EMPTY_TOKEN.name, "--child-credentials", "hub"], &[&empty, "has an empty token"]);
    // The service account is not on the child.
    fails(
        &["--cluster", CHILD_REAL.name, "--child-credentials", "hub", "--child-token-request", "child-only/nope"],
        &["404", "no service account child-only/nope on the child"],
    );
    // A credential that may not create tokens (lab-reader may only list namespaces).
    let reader = lab().var("LAB_CHILD_TOKEN_FILE");
    fails(
        &["--cluster", CHILD_REAL.name, "--token-file", reader, "--child-token-request", &ci_account()],
        &["403", "needs `create` on `serviceaccounts/token` in namespace child-only on the child"],
    );
    // A parent user that may read ManagedClusters but not Secrets.
    let out = out_file(dir.path());
    let viewer = lab().var("LAB_VIEWER_KUBECONFIG");
    let args = ["gen", "--kubeconfig", viewer, "--cluster", CHILD_REAL.name, "--child-credentials", "hub"];
    let e = tool_err(&[&args[..], &["--output-file", out.to_str().unwrap()]].concat());
    let rbac = format!("needs `get` on `secrets` named {DEPLOYER_SECRET} in namespace {}", CHILD_REAL.namespace);
    assert!(e.contains("is forbidden") && e.contains(&rbac), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(!out.exists());
}

/// Several clusters, each base credential from the `--credentials` file (the
/// child admin's certificate), a token request for each, and `--verify`
/// probing the written, narrow tokens before anything is written.
#[test]
fn token_requests_for_several_clusters_from_a_credentials_file_verified() {
    let dir = tempdir();
    let out = out_file(dir.path());
    let state = lab().var("LAB_STATE");
    let entry = format!("{{clientCertificate: {state}/pki/child-admin.crt, clientKey: {state}/pki/child-admin.key}}");
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!("clusters:\n  {}: {entry}\n  {}: {entry}\n", CHILD_REAL.name, CHILD_REAL_2.id),
    );
    let (_, err) = lab_gen()
        .cluster(CHILD_REAL.name)
        .cluster(CHILD_REAL_2.name)
        .credentials(&creds)
        .args(&["--child-token-request", &ci_account(), "--verify"])
        .output_file(&out)
        .ok();
    for seed in [CHILD_REAL, CHILD_REAL_2] {
        let name = format!("clusternet-{}", seed.name);
        assert!(err.contains(&format!("verified {name:?}")), "{err}");
        let who = json(&kubectl_ok(&out, &["--context", &name, "auth", "whoami", "-o", "json"]));
        assert_eq!(who["status"]["userInfo"]["username"], ci_user(), "{name}: {who}");
    }
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("clusternet-certificate"), "the admin certificate must not be written: {text}");
    let tokens = child_tokens(&out);
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1], "one token per cluster");
}
