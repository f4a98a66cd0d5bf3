//! `refresh` and `prune` offline: a due entry is rebuilt from its recorded
//! source and nothing else changes (as kubectl sees the file); what cannot
//! be refreshed or checked is reported, kept, and exits 3.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::status::mixed;
use crate::support::*;
use testkit::Recorder;

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
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "parent.yaml"]).output().unwrap();
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
    for body in [user, &entry(&after, "clusters", a)["cluster"]] {
        assert!(body.get("extensions").is_none(), "the record is the context's only: {body}");
    }
    assert_ne!(record["credential"]["expires"], old["credential"]["expires"]);
    let mut same = record.clone();
    same["credential"]["expires"] = old["credential"]["expires"].clone();
    assert_eq!(&same, old, "only the expiry changed in the record");
    assert_eq!(fs::metadata(s.path("kc.yaml")).unwrap().permissions().mode() & 0o777, 0o640, "mode kept");
    assert!(!s.path("kc.yaml.lock").exists());
    // Within a 30m window only gen-b is due, and it cannot get better: exit 3,
    // nothing written.
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    let out = s
        .bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "parent.yaml", "--before", "30m"])
        .output()
        .unwrap();
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

/// `kc.yaml` with the record of `name`'s context given `credential` (as a
/// hub-held or token-request entry would record it).
fn recorded_as(s: &Scratch, name: &str, credential: serde_yaml::Value) {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&s.read("kc.yaml")).unwrap();
    let item = doc["contexts"].as_sequence_mut().unwrap().iter_mut().find(|e| e["name"] == name).unwrap();
    item["context"]["extensions"][0]["extension"]["credential"] = credential;
    s.write("kc.yaml", &serde_yaml::to_string(&doc).unwrap());
}

/// Every due entry needs its recorded parent to be the one the user's own
/// parent kubeconfig names (hub-held and token-request entries are read
/// through it; file entries go to it): one whose context points at another
/// server is refused before anything is read or asked, the entries are
/// kept, exit 3.
#[test]
fn refresh_needs_the_recorded_parent_in_the_users_parent_kubeconfig() {
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
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "other.yaml"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let a = "clusternet-11111111-1111-4111-8111-111111111111";
    for name in [a, "gen-b", "gen-c"] {
        let line = format!("context \"{name}\": cannot refresh: parent context \"main\" of ");
        assert!(err.contains(&line), "{err}");
    }
    assert_eq!(
        err.matches("points at https://127.0.0.1:9, not at the recorded parent https://10.0.0.10:6443").count(),
        3,
        "{err}"
    );
    assert!(err.contains("error: 3 of 3 due context(s) could not be refreshed"), "{err}");
    no_secrets(&err);
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes, "nothing written");
    // Without any parent kubeconfig (none given, none in HOME): refused too.
    let out = s.bare(&["refresh", "--kubeconfig", "kc.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line =
        format!("context \"{a}\": cannot refresh: the parent kubeconfig (--parent-kubeconfig): no parent kubeconfig");
    assert!(stderr(&out).contains(&line), "{}", stderr(&out));
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes, "nothing written");
}

/// `kc.yaml` with the cluster entry of each of `names` changed by `edit`.
fn edit_clusters(s: &Scratch, names: &[&str], edit: &dyn Fn(&mut serde_yaml::Mapping)) {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&s.read("kc.yaml")).unwrap();
    for item in doc["clusters"].as_sequence_mut().unwrap() {
        if names.iter().any(|n| item["name"] == *n) {
            edit(item["cluster"].as_mapping_mut().unwrap());
        }
    }
    s.write("kc.yaml", &serde_yaml::to_string(&doc).unwrap());
}

/// The attacker's file: a kubeconfig received from someone else whose
/// generated entries record the user's real parent (`main` of the user's
/// own parent.yaml) while their own cluster is aimed elsewhere: the sender's
/// host (a recording HTTPS server), another cluster ID or route in the path,
/// the sender's proxy, no TLS verification. Fresh credentials wait in the
/// user's token and credentials files. Nothing is read into those entries:
/// each is said once ("cannot refresh"), the file stays byte for byte, exit
/// 3, and the sender's server hears nothing.
#[test]
fn refresh_reacquires_nothing_for_a_received_entry_aimed_elsewhere() {
    let recorder = Recorder::start(Default::default()).expect("start the recorder");
    let sender = recorder.url();
    let a = "clusternet-11111111-1111-4111-8111-111111111111";
    fn server(m: &serde_yaml::Mapping) -> String {
        m["server"].as_str().unwrap().to_string()
    }
    type Edit = Box<dyn Fn(&mut serde_yaml::Mapping)>;
    let to_sender = sender.clone();
    let via_sender = sender.clone();
    let cases: Vec<(&str, Edit, String)> = vec![
        (
            "the sender's host",
            Box::new(move |m| {
                let aimed = server(m).replace("https://10.0.0.10:6443", &to_sender);
                m.insert("server".into(), aimed.into());
            }),
            format!("its server {sender}/apis/proxies.clusternet.io/v1alpha1/sockets/"),
        ),
        (
            "another cluster ID",
            Box::new(move |m| {
                let other = server(m)
                    .replace("11111111-1111-4111-8111-111111111111", "44444444-4444-4444-8444-444444444444")
                    .replace("22222222-2222-4222-8222-222222222222", "44444444-4444-4444-8444-444444444444");
                m.insert("server".into(), other.into());
            }),
            "its server is for cluster ID \"44444444-4444-4444-8444-444444444444\", its record for ".into(),
        ),
        (
            "another route",
            Box::new(|m| {
                let dial = server(m).replace("/proxy/direct", "/proxy/https/127.0.0.1:9");
                m.insert("server".into(), dial.into());
            }),
            "does not take the recorded route \"direct\"".into(),
        ),
        (
            "the sender's proxy",
            Box::new(move |m| {
                m.insert("proxy-url".into(), via_sender.clone().into());
            }),
            "its proxy-url is not that of parent context \"main\"".into(),
        ),
        (
            "no TLS verification",
            Box::new(|m| {
                m.insert("insecure-skip-tls-verify".into(), true.into());
            }),
            "its insecure-skip-tls-verify is not that of parent context \"main\"".into(),
        ),
    ];
    for (case, edit, needle) in cases {
        let s = Scratch::new();
        mixed(&s);
        edit_clusters(&s, &[a, "gen-b"], &*edit);
        let fresh = jwt(3 * 3600);
        s.write("tokens/a", &fresh);
        s.write("tokens/b", &fresh);
        let bytes = fs::read(s.path("kc.yaml")).unwrap();
        let out = s
            .bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "parent.yaml", "--before", "2h"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{case}: {err}");
        for name in [a, "gen-b"] {
            let lines: Vec<&str> =
                err.lines().filter(|l| l.starts_with(&format!("context \"{name}\": cannot refresh: "))).collect();
            assert_eq!(lines.len(), 1, "{case}: {err}");
            assert!(lines[0].contains(&needle), "{case}: {err}");
        }
        assert!(!err.contains("refreshed context"), "{case}: {err}");
        assert!(err.contains("error: 2 of 2 due context(s) could not be refreshed"), "{case}: {err}");
        assert!(!err.contains(&fresh), "{case}: {err}");
        no_secrets(&err);
        assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes, "{case}: the file is as it was");
    }
    assert_eq!(recorder.requests().len(), 0, "the sender's server heard nothing");
}

/// Garbage where the record says when the credential expires (a multibyte
/// character in the offset once made status and refresh panic): that entry's
/// expiry is unknown, said once; status lists every entry, refresh reads
/// that entry's credential again (its record gets a real time) and refreshes
/// the others.
#[test]
fn an_unreadable_expiry_is_unknown_for_status_and_refresh() {
    for bad in [
        "2026-11-29T13:00:00+0é00",
        "2026-11-29T13:00:00+01:0é",
        "",
        "é",
        "not a time",
        "99999-11-29T13:00:00Z",
        "+292277026596-12-04T15:30:07Z",
        "2016-12-31T23:59:60Z",
        "2026-11-29t13:00:00z",
        "2026-11-29T13:00:00",
        "2026-02-30T13:00:00Z",
    ] {
        let s = Scratch::new();
        mixed(&s);
        let mut doc: serde_yaml::Value = serde_yaml::from_str(&s.read("kc.yaml")).unwrap();
        let item = doc["contexts"].as_sequence_mut().unwrap().iter_mut().find(|e| e["name"] == "gen-c").unwrap();
        item["context"]["extensions"][0]["extension"]["credential"]["expires"] = bad.into();
        s.write("kc.yaml", &serde_yaml::to_string(&doc).unwrap());
        let note = "context \"gen-c\": expiry unknown: its recorded expiry is not an RFC 3339 time";

        let out = s.bare(&["status", "--kubeconfig", "kc.yaml"]).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{bad:?}: gen-b expired: {err}");
        assert_eq!(err.matches(note).count(), 1, "{bad:?}: {err}");
        let text = stdout(&out);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 4, "{bad:?}: {text}");
        assert_eq!(
            rows[3],
            ["gen-c", "gen-c", "33333333-3333-4333-8333-333333333333", "direct", "certificate", "(file)", "-"]
        );
        let out = s.bare(&["status", "--kubeconfig", "kc.yaml", "-o", "json"]).output().unwrap();
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(doc["items"][2]["expires"], Value::Null, "{bad:?}");

        s.write("tokens/b", &jwt(3 * 3600));
        let out = s
            .bare(&["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "parent.yaml", "--before", "2h"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{bad:?}: {err}");
        assert_eq!(err.matches(note).count(), 1, "{bad:?}: {err}");
        for name in ["clusternet-11111111-1111-4111-8111-111111111111", "gen-b", "gen-c"] {
            assert!(err.contains(&format!("refreshed context \"{name}\"")), "{bad:?}: {err}");
        }
        let after = kubectl_view(&s.path("kc.yaml"));
        let record = provenance_of(&entry(&after, "contexts", "gen-c")["context"]);
        assert_eq!(record["credential"]["expires"], CHILD_CERT_NOT_AFTER, "{bad:?}: the record repaired");
    }
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

/// A credential of unknown expiry (an opaque token here; a hub's legacy
/// token in Clusternet) may be replaced at its source at any time: it is
/// read again on every run, whatever --before says. The same: said so,
/// nothing written, exit 0. Replaced at its source: the new one goes in.
#[test]
fn refresh_reads_a_credential_of_unknown_expiry_again_on_every_run() {
    let s = Scratch::new();
    fs::copy(s.path("parent.yaml"), s.path("kc.yaml")).unwrap();
    ok(s.bare(&["gen", "--kubeconfig", "parent.yaml", "--cluster-id", "22222222-2222-4222-8222-222222222222"]).args([
        "--token-file",
        "child.token",
        "--name",
        "opaque",
        "--merge-into",
        "kc.yaml",
    ]));
    let bytes = fs::read(s.path("kc.yaml")).unwrap();
    let refresh = || {
        let args = ["refresh", "--kubeconfig", "kc.yaml", "--parent-kubeconfig", "parent.yaml", "--before", "1s"];
        let out = s.bare(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stderr(&out)
    };
    let err = refresh();
    assert!(
        err.contains(
            "context \"opaque\": token (file) read again: unchanged, expiry unknown; if the child rejects it (status --verify), renew it at its source"
        ),
        "{err}"
    );
    assert!(err.contains("none expiring within 1s; 1 of unknown expiry read again, unchanged"), "{err}");
    assert!(!err.contains(CHILD_TOKEN), "{err}");
    assert_eq!(fs::read(s.path("kc.yaml")).unwrap(), bytes, "nothing written");

    s.write("child.token", "SECRET-rotated-token-9c1d\n");
    let err = refresh();
    assert!(err.contains("refreshed context \"opaque\": token (file), expiry unknown"), "{err}");
    assert!(!err.contains("SECRET-rotated-token-9c1d"), "{err}");
    let after = kubectl_view(&s.path("kc.yaml"));
    let user = &entry(&after, "users", "opaque")["user"];
    assert_eq!(user["as-user-extra"]["clusternet-token"], json!(["SECRET-rotated-token-9c1d"]));
}
