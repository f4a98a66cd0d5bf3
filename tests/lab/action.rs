//! The GitHub Action (.github/actions/kubeconfig/action.sh) against the lab,
//! as the README recommends it for CI: the child by name, the child
//! credential the hub holds only asking the child for a short-lived token of
//! a narrowly bound service account, and the parent token read from the
//! cluster. Both credentials that reach the kubeconfig come from the
//! network, so only reading the written kubeconfig back can mask them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::lab::CHILD_REAL;

use crate::child::child_username;
use crate::hub_credentials::{ci_account, ci_user, deployer_token};
use crate::support::*;

/// `name<<delimiter\nvalue\ndelimiter` entries of a runner file.
fn runner_file(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut entries = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").unwrap_or_else(|| panic!("not a multiline entry: {line:?}"));
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        entries.insert(name.to_string(), value.join("\n"));
    }
    entries
}

/// The Action's script as a Linux runner starts it: the runner's files
/// (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_PATH`, `RUNNER_TEMP`) in `dir`,
/// the tool under test as the binary; each test adds its inputs.
fn runner(dir: &Path) -> Command {
    std::fs::create_dir(dir.join("temp")).unwrap();
    for file in ["env", "output", "path"] {
        std::fs::write(dir.join(file), "").unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/actions/kubeconfig/action.sh");
    let mut command = Command::new("bash");
    without_ambient(command.arg(script))
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", dir.join("temp"))
        .env("GITHUB_ENV", dir.join("env"))
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_PATH", dir.join("path"))
        .env("INPUT_BINARY", env!("CARGO_BIN_EXE_clusternet-kubeconfig"));
    command
}

#[test]
fn action_with_hub_credentials_and_a_token_request_masks_what_it_read() {
    let dir = tempdir();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let out = {
        let _shared = shared();
        runner(dir.path())
            .env("INPUT_PARENT_KUBECONFIG", admin())
            .env("INPUT_CLUSTER", CHILD_REAL.name)
            .env("INPUT_NAMESPACE", CHILD_REAL.namespace)
            .env("INPUT_CHILD_CREDENTIALS", "hub")
            .env("INPUT_CHILD_TOKEN_REQUEST", ci_account())
            .env("INPUT_CHILD_TOKEN_TTL", "30m")
            .env("INPUT_PARENT_AUTH", "token")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    let env = runner_file(&path("env"));
    let kubeconfig = PathBuf::from(&env["KUBECONFIG"]);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let user = &doc["users"][0]["user"];
    let child_token = user["as-user-extra"]["clusternet-token"][0].as_str().unwrap().to_string();
    let parent_token = user["token"].as_str().unwrap().to_string();
    assert_eq!(parent_token, hub_proxy_token(), "the token read from the cluster");
    // Masked before the step's last line; printed nowhere else; the hub-held
    // admin token is neither written nor printed.
    let lines: Vec<&str> = stdout.lines().collect();
    let last = lines.iter().position(|l| l.starts_with("KUBECONFIG=")).expect("the export line");
    for secret in [&child_token, &parent_token] {
        assert!(lines[..last].contains(&format!("::add-mask::{secret}").as_str()), "{secret} not masked: {stdout}");
    }
    let deployer = deployer_token();
    for line in stdout.lines().chain(stderr.lines()) {
        if !line.starts_with("::add-mask::") {
            assert!(!line.contains(&child_token) && !line.contains(&parent_token), "secret printed: {line}");
        }
        assert!(!line.contains(&deployer), "the hub-held token printed: {line}");
    }
    assert!(!std::fs::read_to_string(&kubeconfig).unwrap().contains(&deployer));
    // The child accepts the short-lived token: the narrow identity, through the proxy.
    assert_eq!(child_username(&kubeconfig), ci_user());
    let outputs = runner_file(&path("output"));
    assert_eq!(outputs["context"], format!("clusternet-{}", CHILD_REAL.name));
}

/// The keyless recipe as a workflow runs it: the parent's URL and CA (no
/// secret), `parent-auth: oidc`, the child by name with the hub-held
/// credential asking for a short-lived token. The job's OIDC token (from the
/// lab's stand-in for the Actions endpoint) authenticates the lookup, the
/// Secret read and the token request, and kubectl in a later step.
#[test]
fn action_keyless_with_oidc_hub_credentials_and_a_token_request() {
    let dir = tempdir();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let request_token = std::fs::read_to_string(lab().var("LAB_OIDC_REQUEST_TOKEN_FILE")).unwrap();
    let marker = unique("action-job");
    let job = [
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/actions/token?api-version=2.0&job={marker}", lab().var("LAB_OIDC_URL")),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token.trim().to_string()),
        ("SSL_CERT_FILE", lab().var("LAB_OIDC_CA").to_string()),
    ];
    let out = {
        let _shared = shared();
        runner(dir.path())
            .env("INPUT_PARENT_SERVER", lab().server())
            .env("INPUT_PARENT_CERTIFICATE_AUTHORITY", std::fs::read_to_string(lab().var("LAB_CA")).unwrap())
            .env("INPUT_CLUSTER", CHILD_REAL.name)
            .env("INPUT_CHILD_CREDENTIALS", "hub")
            .env("INPUT_CHILD_TOKEN_REQUEST", ci_account())
            .env("INPUT_PARENT_AUTH", "oidc")
            .env("INPUT_AUDIENCE", testkit::oidc::AUDIENCE)
            .envs(job.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("::add-mask::{}", request_token.trim())), "{stdout}");
    let env = runner_file(&path("env"));
    let kubeconfig = PathBuf::from(&env["KUBECONFIG"]);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(!text.contains(&deployer_token()), "the hub-held admin token is not written");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let user = &doc["users"][0]["user"];
    assert!(user.get("token").is_none() && user["exec"]["command"].is_string(), "{user}");
    // A later step of the job: kubectl, with the job's environment, as the narrow identity.
    let who = Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "auth", "whoami", "-o", "json"])
        .env_remove("KUBECONFIG")
        .envs(job.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
    let who = json(&String::from_utf8_lossy(&who.stdout));
    assert_eq!(who["status"]["userInfo"]["username"], ci_user(), "{who}");
    let minted = std::fs::read_to_string(lab().var("LAB_OIDC_RECORD")).unwrap();
    assert_eq!(minted.lines().filter(|l| l.contains(&marker)).count(), 2, "one for gen, one for kubectl");
}
