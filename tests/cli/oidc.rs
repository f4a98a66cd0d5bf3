//! `--parent-auth oidc` offline, and its exec credential plugin `oidc-token`
//! against testkit's loopback OIDC issuer and GitHub Actions token endpoint
//! stand-in (in-process, TLS with a CA of its own): what the plugin prints,
//! how the endpoint is verified, and that neither the request token nor an ID
//! token is ever repeated, whatever the endpoint answers.

use std::process::Output;

use serde_json::Value;
use testkit::oidc::{Claims, Issuer};

use crate::support::*;

const REQUEST_TOKEN: &str = "actions-request-token-d0c7e1b2a9f84c3e";

fn issuer() -> Issuer {
    Issuer::generated(REQUEST_TOKEN).unwrap()
}

/// `oidc-token --audience aud` as kubectl runs it on an Actions runner whose
/// endpoint is `url`, trusting the issuer's CA (SSL_CERT_FILE) unless `ca` is None.
fn plugin(s: &Scratch, issuer: &Issuer, url: &str, ca: Option<&str>, extra: &[&str]) -> Output {
    let ca_file = s.write("oidc-ca.crt", &issuer.ca_pem);
    let mut cmd = s.bare(&[&["oidc-token", "--audience", "aud"][..], extra].concat());
    cmd.env("ACTIONS_ID_TOKEN_REQUEST_URL", url).env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN);
    if ca.is_some() {
        cmd.env("SSL_CERT_FILE", &ca_file);
    }
    cmd.output().unwrap()
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// One `error:` line, exit 1, nothing on stdout, neither the request token nor any JWT.
fn refused(out: &Output, needle: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "{}", stdout(out));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "expected {needle:?}: {err}");
    assert!(!err.contains(REQUEST_TOKEN) && !err.contains("eyJ"), "a secret leaked: {err}");
    err
}

#[test]
fn the_plugin_prints_an_exec_credential_with_the_tokens_exp() {
    let s = Scratch::new();
    let i = issuer();
    let out = plugin(&s, &i, &i.actions_url("repository=octo-org/octo-repo&ttl=300"), Some("ca"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let credential: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    let token = credential["status"]["token"].as_str().unwrap();
    let c = claims_of(token);
    assert_eq!(c["aud"], "aud", "the audience asked for: {c}");
    assert_eq!(c["iss"], i.url());
    // expirationTimestamp is the token's own exp, to the second.
    let exp = c["exp"].as_i64().unwrap();
    let stamp = credential["status"]["expirationTimestamp"].as_str().unwrap();
    let days = exp.div_euclid(86_400);
    let secs = exp.rem_euclid(86_400);
    assert!(stamp.ends_with(&format!("T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)), "{stamp} {exp}");
    assert!(days > 20_000, "{stamp}");
}

#[test]
fn the_endpoint_is_verified_and_never_reached_in_clear() {
    let s = Scratch::new();
    let i = issuer();
    // Without SSL_CERT_FILE, the system's roots do not know the loopback CA.
    let err = refused(&plugin(&s, &i, &i.actions_url(""), None, &[]), "TLS");
    assert!(err.contains("SSL_CERT_FILE"), "{err}");
    let http = i.actions_url("").replace("https://", "http://");
    refused(&plugin(&s, &i, &http, Some("ca"), &[]), "not https://");
}

#[test]
fn missing_actions_variables_name_the_permission() {
    let s = Scratch::new();
    let out = s.bare(&["oidc-token", "--audience", "aud"]).output().unwrap();
    refused(&out, "permissions: id-token: write");
}

/// The endpoint refuses a wrong request token; a hostile one quotes it in its
/// error, or hands it back as the "ID token": the tool repeats neither.
#[test]
fn refusals_and_hostile_answers_never_repeat_the_request_token() {
    let s = Scratch::new();
    let i = issuer();
    let ca_file = s.write("oidc-ca.crt", &i.ca_pem);
    let mut wrong = s.bare(&["oidc-token", "--audience", "aud"]);
    wrong
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", i.actions_url(""))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "not-the-request-token")
        .env("SSL_CERT_FILE", &ca_file);
    let err = refused(&wrong.output().unwrap(), "answered 401");
    assert!(!err.contains("not-the-request-token"), "{err}");
    let echo = refused(&plugin(&s, &i, &i.actions_url("hostile=echo"), Some("ca"), &[]), "answered 500");
    assert!(!echo.contains("Bearer"), "{echo}");
    refused(&plugin(&s, &i, &i.actions_url("hostile=value"), Some("ca"), &[]), "request token itself");
}

#[test]
fn tokens_from_a_variable_or_a_file() {
    let s = Scratch::new();
    let i = issuer();
    let token = i.signer.mint(&Claims::new("gitlab"));
    let mut from_env = s.bare(&["oidc-token", "--audience", "gitlab", "--token-env", "CI_JOB_JWT_V2"]);
    let out = from_env.env("CI_JOB_JWT_V2", format!("{token}\n")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let credential: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(credential["status"]["token"], token.as_str());
    let file = s.write("projected.token", &token);
    let out = s.bare(&["oidc-token", "--audience", "gitlab", "--token-file", file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let unset = s.bare(&["oidc-token", "--audience", "gitlab", "--token-env", "CI_JOB_JWT_V2"]).output().unwrap();
    refused(&unset, "env CI_JOB_JWT_V2 is not set");
    let mut opaque = s.bare(&["oidc-token", "--audience", "gitlab", "--token-env", "CI_JOB_JWT_V2"]);
    refused(&opaque.env("CI_JOB_JWT_V2", "opaque-secret-value").output().unwrap(), "holds no JWT");
}

/// Offline `gen`: the user runs this very binary (absolute path) with the
/// source as arguments; no token in the file, no request made, kubectl reads
/// the entry as an exec plugin.
#[test]
fn gen_writes_an_exec_entry_and_no_token() {
    let s = Scratch::new();
    let out = ok(&mut s.generate(&[
        "--token-file",
        "child.token",
        "--parent-auth",
        "oidc",
        "--oidc-audience",
        "clusternet-ci",
        "--oidc-token-file",
        "ci/id.token",
    ]));
    let view = kubectl_view_text(&s, &out);
    let user = &only(&view, "users")["user"];
    let exec = &user["exec"];
    let binary = std::fs::canonicalize(bin()).unwrap();
    assert_eq!(exec["command"], binary.to_str().unwrap(), "{exec}");
    let file = s.dir.path().canonicalize().unwrap().join("ci/id.token");
    assert_eq!(
        exec["args"],
        serde_json::json!(["oidc-token", "--audience", "clusternet-ci", "--token-file", file.to_str().unwrap()])
    );
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["interactiveMode"], "Never");
    assert_eq!(user["as"], "clusternet");
    assert!(user.get("token").is_none() && user.get("username").is_none(), "{user}");
}

#[test]
fn oidc_flags_are_checked() {
    let s = Scratch::new();
    let run = |args: &[&str]| s.generate(&[&["--token-file", "child.token"][..], args].concat()).output().unwrap();
    fails(&run(&["--parent-auth", "oidc"]), 2, "--parent-auth oidc needs --oidc-audience");
    fails(&run(&["--oidc-audience", "a"]), 2, "--oidc-audience is used only with --parent-auth oidc");
    fails(&run(&["--parent-auth", "oidc", "--oidc-audience", "a", "--oidc-token-file", "-"]), 2, "cannot be - (stdin)");
    fails(
        &run(&["--parent-auth", "oidc", "--oidc-audience", "a", "--oidc-token-env", "9X"]),
        2,
        "not an environment variable name",
    );
    fails(&run(&["--parent-auth", "oidc", "--oidc-audience", "has space"]), 2, "--oidc-audience");
}

/// A run that asks the parent fetches the token first: without the Actions
/// variables, it says which permission the job lacks, before any request.
#[test]
fn gen_that_asks_the_parent_needs_the_token_first() {
    let s = Scratch::new();
    let out = s
        .bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster", "child-a", "--token-file", "child.token"])
        .args(["--parent-auth", "oidc", "--oidc-audience", "clusternet-ci"])
        .output()
        .unwrap();
    fails(&out, 1, "--parent-auth oidc: ACTIONS_ID_TOKEN_REQUEST_URL is not set");
    assert!(stderr(&out).contains("permissions: id-token: write"), "{}", stderr(&out));
}
