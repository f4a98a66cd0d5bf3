//! `refresh` and `prune` offline: a due entry is rebuilt from its recorded
//! source and nothing else changes (as kubectl sees the file); what cannot
//! be refreshed or checked is reported, kept, and exits 3.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::status::mixed;
use crate::support::*;

/// The view without one context and its cluster and user entries.
fn others(view: &Value, name: &str) -> Value {
    let mut view = view.clone();
    for list in ["clusters", "users", "contexts"] {
        view[list].as_array_mut().unwrap().retain(|e| e["name"] != name);
    }
    view
}

fn entry<'a>(view: &'a Value, list: &str, name: &str) -> &'a Value {
    view[list].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()
}

#[test]
fn refresh_rereads_the_credentials_file_and_rewrites_only_that_entry() {
    let s = Scratch::new();
    mixed(&s);
    let a = "clusternet-11111111-1111-4111-8111-111111111111";
    // gen-a's token (from the credentials file) expires in a minute.
    s.write("tokens/a", &jwt(60));
    ok(&mut s.bare(&[
        "gen",
        "--kubeconfig",
        "parent.yaml",
        "--cluster-id",
        "11111111-1111-4111-8111-111111111111",
        "--credentials",
        "creds.yaml",
        "--merge-into",
        "kc.yaml",
    ]));
    fs::set_permissions(s.path("kc.yaml"), fs::Permissions::from_mode(0o640)).unwrap();
    let before = kubectl_view(&s.path("kc.yaml"));
    let fresh = jwt(2 * 3600 - 30);
    s.write("tokens/a", &fresh);
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml"]).output().unwrap();
    // gen-b is due too (expired), but its token file still holds the expired
    // token: reported, kept as it was, exit 3.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("refreshed context \"{a}\": token (credentials-file), expires in 1h59m")), "{err}");
    assert!(
        err.contains(
            "context \"gen-b\": cannot refresh: the credential read again expired 3h ago: renew it at its source"
        ),
        "{err}"
    );
    assert!(err.contains("error: 1 of 2 due context(s) could not be refreshed"), "{err}");
    no_secrets(&err);
    let after = kubectl_view(&s.path("kc.yaml"));
    // Every other entry (foreign ones, gen-b, gen-c) is as kubectl saw it before.
    assert_eq!(others(&after, a), others(&before, a));
    let user = &entry(&after, "users", a)["user"];
    assert_eq!(user["as-user-extra"], json!({"clusternet-token": [fresh]}));
    assert_eq!(user["username"], "system:anonymous");
    // Names, references and the server are kept; the provenance says when it expires now.
    assert_eq!(entry(&after, "contexts", a)["context"]["cluster"], a);
    assert_eq!(entry(&after, "clusters", a)["cluster"]["server"], entry(&before, "clusters", a)["cluster"]["server"]);
    let record = provenance_of(&entry(&after, "contexts", a)["context"]);
    let old = provenance_of(&entry(&before, "contexts", a)["context"]);
    assert_eq!(record, provenance_of(user));
    assert_eq!(record, provenance_of(&entry(&after, "clusters", a)["cluster"]));
    assert_ne!(record["credential"]["expires"], old["credential"]["expires"]);
    let mut same = record.clone();
    same["credential"]["expires"] = old["credential"]["expires"].clone();
    assert_eq!(&same, old, "only the expiry changed in the record");
    assert_eq!(fs::metadata(s.path("kc.yaml")).unwrap().permissions().mode() & 0o777, 0o640, "mode kept");
    assert!(!s.path("kc.yaml.lock").exists());
    // Within a 30m window only gen-b is due, and it cannot get better: exit 3,
    // nothing written.
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--before", "30m"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!stderr(&out).contains(a) && stderr(&out).contains("\"gen-b\": cannot refresh"), "{}", stderr(&out));
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes);
}

#[test]
fn refresh_of_a_command_line_credential_reports_it_and_exits_3() {
    let s = Scratch::new();
    fs::copy(s.path("parent.yaml"), s.path("kc.yaml")).unwrap();
    let expired = jwt(-60);
    ok(&mut s.generate(&["--token", &expired, "--name", "by-flag", "--merge-into", "kc.yaml"]));
    ok(s.bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", "22222222-2222-4222-8222-222222222222"])
        .args(["--name", "by-env", "--merge-into", "kc.yaml"])
        .env("CLUSTERNET_CHILD_TOKEN", &expired));
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    for (name, source) in [("by-flag", "flag"), ("by-env", "env")] {
        assert!(
            err.contains(&format!(
                "context \"{name}\": cannot refresh: the credential was given on the command line ({source})"
            )),
            "{err}"
        );
    }
    assert!(err.contains("error: 2 of 2 due context(s) could not be refreshed"), "{err}");
    assert!(!err.contains(&expired), "{err}");
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes, "nothing written");
}

#[test]
fn prune_keeps_what_it_cannot_check_and_dry_run_writes_nothing() {
    let s = Scratch::new();
    mixed(&s);
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    // The parent context "main" of another kubeconfig points elsewhere: its
    // answer says nothing about these entries' clusters.
    s.write("other.yaml", &s.read("parent.yaml").replace("https://10.0.0.10:6443", "https://127.0.0.1:9"));
    let out = s
        .bare(&["prune", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "other.yaml", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("context \"gen-b\": kept: parent context \"main\" of")
            && err.contains("points at https://127.0.0.1:9, not at the recorded parent https://10.0.0.10:6443"),
        "{err}"
    );
    assert!(err.contains("error: 3 generated context(s) could not be checked"), "{err}");
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes);
    // No generated entries: nothing to do, nothing asked.
    let out = s.bare(&["prune", "--kubeconfig", "parent.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no entries generated by clusternet-kubeconfig"), "{}", stderr(&out));
}

/// `kc.yaml` with the records of `name`'s three entries given `credential`
/// (as a hub-held or token-request entry would record it).
fn recorded_as(s: &Scratch, name: &str, credential: serde_yaml::Value) {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&s.read("kc.yaml")).unwrap();
    for (list, key) in [("clusters", "cluster"), ("users", "user"), ("contexts", "context")] {
        let item = doc[list].as_sequence_mut().unwrap().iter_mut().find(|e| e["name"] == name).unwrap();
        item[key]["extensions"][0]["extension"]["credential"] = credential.clone();
    }
    s.write("kc.yaml", &serde_yaml::to_string(&doc).unwrap());
}

/// Due hub-held and token-request entries need their recorded parent, reached
/// with the user's parent kubeconfig: one whose context points at another
/// server is refused before anything is asked, the entries are kept, exit 3;
/// the other due entry is refreshed.
#[test]
fn refresh_of_hub_entries_needs_the_recorded_parent() {
    let s = Scratch::new();
    mixed(&s);
    let hub = "{kind: token, source: hub, secret: {namespace: clusternet-x7k2p, name: child-cluster-deployer}, \
               expires: '2020-01-01T00:00:00Z'}";
    recorded_as(&s, "gen-b", serde_yaml::from_str(hub).unwrap());
    let requested = "{kind: token, source: token-request, secret: {namespace: clusternet-x7k2p, name: child-cluster-deployer}, \
                     tokenRequest: {namespace: ci, serviceAccount: deployer, ttlSeconds: 600, base: hub}, \
                     expires: '2020-01-01T00:00:00Z'}";
    recorded_as(&s, "gen-c", serde_yaml::from_str(requested).unwrap());
    s.write("other.yaml", &s.read("parent.yaml").replace("https://10.0.0.10:6443", "https://127.0.0.1:9"));
    let before = kubectl_view(&s.path("kc.yaml"));
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "other.yaml"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for name in ["gen-b", "gen-c"] {
        let line = format!("context \"{name}\": cannot refresh: parent context \"main\" of ");
        assert!(err.contains(&line), "{err}");
    }
    assert_eq!(
        err.matches("points at https://127.0.0.1:9, not at the recorded parent https://10.0.0.10:6443").count(),
        2,
        "{err}"
    );
    assert!(err.contains("error: 2 of 3 due context(s) could not be refreshed"), "{err}");
    let a = "clusternet-11111111-1111-4111-8111-111111111111";
    assert!(err.contains(&format!("refreshed context \"{a}\"")), "{err}");
    no_secrets(&err);
    let after = kubectl_view(&s.path("kc.yaml"));
    assert_eq!(others(&after, a), others(&before, a), "the hub entries kept as they were");
}

#[test]
fn refresh_usage_errors_of_the_parent_flags() {
    let s = Scratch::new();
    fs::copy(s.path("parent.yaml"), s.path("kc.yaml")).unwrap();
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "-"]).output().unwrap();
    fails(&out, 2, "--parent-kubeconfig");
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--timeout", "0s"]).output().unwrap();
    fails(&out, 2, "is no time to wait");
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-context"]).output().unwrap();
    fails(&out, 2, "--parent-context <NAME>");
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes, "nothing written");
}
