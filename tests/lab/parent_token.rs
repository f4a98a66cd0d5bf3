//! `--parent-auth token` without a token: the clusternet-hub-proxy token read
//! from the real Secret, or a TokenRequest token; both are accepted by the
//! real apiserver. A wrong `--system-namespace` is a clear error.

use base64::Engine as _;

use crate::support::*;

fn user_token(kc: &std::path::Path) -> String {
    let doc: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(kc).unwrap()).unwrap();
    assert!(doc["users"][0]["user"].get("username").is_none(), "no anonymous username with a token: {doc}");
    doc["users"][0]["user"]["token"].as_str().expect("a parent token in the user entry").to_string()
}

/// The JWT's claims (the middle part, base64url).
pub(crate) fn claims(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[test]
fn token_read_from_the_hub_proxy_secret() {
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("secret-parent");
    let kc = generate_on_lab(dir.path(), &["--cluster-id", id, "--token", &token, "--parent-auth", "token"]);
    let parent = user_token(&kc);
    assert_eq!(parent, hub_proxy_token(), "the Secret's decoded data.token");
    assert_eq!(claims(&parent)["sub"], HUB_PROXY_USER);
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
    assert_eq!(parent_user(dir.path(), &parent), HUB_PROXY_USER);
}

const HUB_PROXY_USER: &str = "system:serviceaccount:clusternet-system:clusternet-hub-proxy";

/// Who the parent itself says `token` is (`kubectl auth whoami`, no proxy).
fn parent_user(dir: &std::path::Path, token: &str) -> String {
    let lab = lab();
    let kc = write(
        dir,
        &format!("{}.kubeconfig", unique("parent-only")),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: p, cluster: {{server: '{}', certificate-authority: '{}'}}}}]\n\
             users: [{{name: u, user: {{token: '{token}'}}}}]\ncontexts: [{{name: p, context: {{cluster: p, user: u}}}}]\ncurrent-context: p\n",
            lab.server(),
            lab.var("LAB_CA")
        ),
    );
    let who = json(&kubectl_ok(&kc, &["auth", "whoami", "-o", "json"]));
    who["status"]["userInfo"]["username"].as_str().unwrap().to_string()
}

#[test]
fn token_request_gives_a_fresh_working_token() {
    let dir = tempdir();
    let id = CHILD_B.id;
    let token = unique("tokenrequest");
    let kc = generate_on_lab(
        dir.path(),
        &[
            "--cluster",
            "child-b",
            "--token",
            &token,
            "--parent-auth",
            "token",
            "--parent-token-request",
            "--parent-token-ttl",
            "30m",
        ],
    );
    let parent = user_token(&kc);
    assert_ne!(parent, hub_proxy_token(), "not the Secret's token");
    let c = claims(&parent);
    assert_eq!(c["sub"], HUB_PROXY_USER);
    let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 1800, "--parent-token-ttl 30m: {c}");
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
    assert_eq!(parent_user(dir.path(), &parent), HUB_PROXY_USER);
}

#[test]
fn wrong_system_namespace_offers_token_request() {
    let dir = tempdir();
    let out = dir.path().join("never.kubeconfig");
    // The child's credentials and the parent's token from the kubeconfig.
    let child_a = || lab_gen().args(&["--cluster-id", CHILD_A.id, "--token", "child-tok", "--parent-auth", "token"]);
    let err = child_a().args(&["--system-namespace", "clusternet-sys"]).output_file(&out).err();
    assert!(err.contains("namespace \"clusternet-sys\""), "{err}");
    assert!(err.contains("--parent-token-request"), "{err}");
    assert!(err.contains("context \"lab\""), "{err}");
    assert!(!out.exists());

    // The TokenRequest in a namespace without the service account: also named.
    let err = child_a().args(&["--parent-token-request", "--system-namespace", "clusternet-sys"]).err();
    assert!(err.contains("clusternet-sys/clusternet-hub-proxy"), "{err}");
    assert!(err.contains("--system-namespace"), "{err}");
}
