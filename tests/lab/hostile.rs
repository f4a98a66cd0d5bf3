//! What other parties write on the parent: ManagedClusters and their status
//! (each child's agent writes its own), names chosen to collide, a cluster ID
//! that is not a UUID, extra hub-proxy Secrets. The objects are created here,
//! on the real apiserver (status through the status subresource), while the
//! test holds the lab exclusively (other tests list and count every cluster),
//! and removed before it lets go. Every run checks the exit status, the
//! message, no panic, no raw control character on stdout or stderr, and a
//! bound on time and memory.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

const LABEL: &str = "clusternet-kubeconfig.test/hostile";
const SELECTOR: &str = "clusternet-kubeconfig.test/hostile=true";
/// Namespaces sort after every seeded one (`clusternet-...`), so that the
/// order-dependent checks of the other tests are unaffected even if a run
/// is interrupted before the cleanup.
const NS_VICTIM: &str = "zz-hostile-victim";
const NS_ROGUE: &str = "zz-hostile-rogue";
const NS_ODD: &str = "zz-hostile-odd";
const NS_SYSTEM: &str = "zz-hostile-system";

const VICTIM_ID: &str = "a17a0000-0000-4000-8000-0000000000a1";
const ROGUE_ID: &str = "a17a0000-0000-4000-8000-0000000000b1";
/// The cluster ID of the ManagedCluster named like the victim's ID.
const ID_NAMED_ID: &str = "a17a0000-0000-4000-8000-0000000000c1";
const UPPER_ID: &str = "A17A0000-0000-4000-8000-0000000000D1";
const WIDE_ID: &str = "a17a0000-0000-4000-8000-0000000000f1";
/// Matches the CRD's pattern, which is not anchored, yet is not a UUID.
const BAD_ID: &str = "x-a17a0000-0000-4000-8000-0000000000e1-\u{1b}[2J";

/// Escape sequences and controls a hostile agent writes into its status:
/// OSC title, clear screen, CR, BS, a bidi override, C1 CSI.
const EVIL_VERSION: &str = "v1.32.1\u{1b}]0;pwned\u{7}\u{1b}[2J";
const EVIL_URL: &str = "https://victim\r\u{8}\u{202E}.lab.invalid:6443";
const EVIL_TYPE: &str = "Edge\u{1b}[31mCluster\u{9b}0m";
/// One status field of 64 KiB.
const WIDE: usize = 65_536;

/// The hostile ManagedClusters; removed (and the lab released) on drop.
struct Fixture {
    _lab: Exclusive,
}

impl Fixture {
    fn create() -> Fixture {
        let lab = exclusive();
        let fixture = Fixture { _lab: lab };
        let mc = |ns: &str, name: &str, label_id: Option<&str>, spec_id: &str| {
            let mut labels = json!({ LABEL: "true" });
            if let Some(id) = label_id {
                labels["clusters.clusternet.io/cluster-id"] = id.into();
            }
            json!({
                "apiVersion": "clusters.clusternet.io/v1beta1", "kind": "ManagedCluster",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"clusterId": spec_id, "clusterType": "EdgeCluster", "syncMode": "Pull"}
            })
        };
        let namespaces: Vec<Value> = [NS_VICTIM, NS_ROGUE, NS_ODD]
            .iter()
            .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .collect();
        apply(&json!({"apiVersion": "v1", "kind": "List", "items": namespaces}));
        let mut clusters = vec![
            mc(NS_VICTIM, "h-victim", Some(VICTIM_ID), VICTIM_ID),
            // A second h-victim, in a namespace its creator controls.
            mc(NS_ROGUE, "h-victim", Some(ROGUE_ID), ROGUE_ID),
            // Named like the victim's ID.
            mc(NS_ROGUE, VICTIM_ID, Some(ID_NAMED_ID), ID_NAMED_ID),
            mc(NS_ODD, "h-upper", Some(UPPER_ID), UPPER_ID),
            mc(NS_ODD, "h-bad-id", None, BAD_ID),
            mc(NS_ODD, "h-wide", Some(WIDE_ID), WIDE_ID),
        ];
        clusters[0]["spec"]["clusterType"] = EVIL_TYPE.into();
        remove_clusters(); // left by an interrupted run
        create(&json!({"apiVersion": "v1", "kind": "List", "items": clusters}));
        let ready = |status: &str| {
            json!([{"type": "Ready", "status": status, "reason": "x", "message": "x",
                                          "lastTransitionTime": "2025-01-01T00:00:00Z"}])
        };
        status(
            NS_VICTIM,
            "h-victim",
            json!({"k8sVersion": EVIL_VERSION, "apiserverURL": EVIL_URL,
                                              "conditions": ready("True\u{1b}[0m")}),
        );
        status(NS_ROGUE, "h-victim", json!({"k8sVersion": "v1.32.1", "apiserverURL": "https://rogue.lab.invalid"}));
        status(NS_ODD, "h-wide", json!({"k8sVersion": "v".repeat(WIDE), "apiserverURL": "https://wide.lab.invalid"}));
        fixture
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        remove_clusters();
    }
}

fn remove_clusters() {
    let out = kubectl(admin(), &["delete", "managedclusters", "-A", "-l", SELECTOR, "--wait=true"]);
    assert!(out.status.success() || std::thread::panicking(), "cleanup: {}", text(&out.stderr));
}

fn apply(doc: &Value) {
    kubectl_file(&["apply", "--server-side", "--field-manager", "hostile-test"], doc);
}

/// `kubectl create` sends JSON; apply would send YAML, which may not carry
/// control characters (not even escaped ones: kubectl converts them).
fn create(doc: &Value) {
    kubectl_file(&["create"], doc);
}

fn kubectl_file(verb: &[&str], doc: &Value) {
    let dir = tempdir();
    let path = write(dir.path(), "objects.json", &doc.to_string());
    let out = kubectl(admin(), &[verb, &["-f", path.to_str().unwrap()]].concat());
    assert!(out.status.success(), "kubectl {verb:?}: {}", text(&out.stderr));
}

/// Writes `status` through the status subresource, as an agent does.
fn status(ns: &str, name: &str, status: Value) {
    let patch = json!({ "status": status }).to_string();
    let out = kubectl(
        admin(),
        &["-n", ns, "patch", "managedcluster", name, "--subresource=status", "--type=merge", "-p", &patch],
    );
    assert!(out.status.success(), "status of {ns}/{name}: {}", text(&out.stderr));
}

/// The product under GNU time, with the lab held by the caller: output,
/// wall time and peak RSS (KB).
fn timed(args: &[&str]) -> (Output, Duration, u64) {
    assert!(Path::new("/usr/bin/time").exists(), "GNU time (/usr/bin/time) is needed to measure peak memory");
    let start = Instant::now();
    let mut out = without_ambient(
        Command::new("/usr/bin/time").args(["-f", "maxrss=%M", env!("CARGO_BIN_EXE_clusternet-kubeconfig")]).args(args),
    )
    .output()
    .expect("run clusternet-kubeconfig under /usr/bin/time");
    let elapsed = start.elapsed();
    let err = text(&out.stderr);
    let (rest, last) = err.trim_end().rsplit_once('\n').unwrap_or(("", err.trim_end()));
    let kb = last.strip_prefix("maxrss=").unwrap_or_else(|| panic!("no maxrss in {err}")).parse().unwrap();
    out.stderr = if rest.is_empty() { Vec::new() } else { format!("{rest}\n").into_bytes() };
    (out, elapsed, kb)
}

/// Bounded, no panic, nothing a terminal would interpret. JSON and YAML on
/// stdout (`-o json|yaml`, a generated kubeconfig) escape controls by their
/// own rules and carry other characters as they are, as kubectl's do.
fn check(label: &str, out: &Output, elapsed: Duration, rss: u64) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!stderr.contains("panicked"), "{label}: {stderr}");
    assert!(elapsed < Duration::from_secs(20), "{label}: took {elapsed:?}");
    assert!(rss < 100_000, "{label}: peak RSS {rss} KB");
    let machine = stdout.starts_with('{') || stdout.starts_with("apiVersion") || stdout.starts_with("items");
    for (what, s, bidi) in [("stdout", &stdout, !machine), ("stderr", &stderr, true)] {
        let raw: Vec<char> = s
            .chars()
            .filter(|c| {
                (c.is_control() && *c != '\n')
                    || (bidi && matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
            })
            .collect();
        assert!(raw.is_empty(), "{label}: raw {raw:?} on {what}: {s:?}");
    }
}

fn ok(label: &str, args: &[&str]) -> (String, String) {
    let (out, elapsed, rss) = timed(args);
    check(label, &out, elapsed, rss);
    assert!(out.status.success(), "{label}: {}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

fn err(label: &str, args: &[&str], code: i32) -> String {
    let (out, elapsed, rss) = timed(args);
    check(label, &out, elapsed, rss);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{label}: {stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{label}: one error line: {stderr}");
    assert!(out.stdout.is_empty(), "{label}: {}", text(&out.stdout));
    stderr
}

fn doc(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A bare name shared with a rogue cluster in another namespace goes to
/// neither; an ID key goes to that ID only, never to a cluster named like it;
/// `--all` makes no cluster current.
#[test]
fn credentials_go_only_to_the_cluster_they_name() {
    let _f = Fixture::create();
    let dir = tempdir();
    let (by_name, by_id) = (unique("bare-name"), unique("by-id"));
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!("clusters:\n  h-victim: {{token: {by_name}}}\n  {VICTIM_ID}: {{token: {by_id}}}\n"),
    );
    let out = dir.path().join("all.kubeconfig");
    let (_, stderr) = ok(
        "gen --all",
        &[
            "-v",
            "gen",
            "--kubeconfig",
            admin(),
            "--all",
            "-l",
            SELECTOR,
            "--credentials",
            creds.to_str().unwrap(),
            "--allow-skip",
            "--output-file",
            out.to_str().unwrap(),
        ],
    );
    let d = doc(&out);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(d["contexts"].as_array().unwrap().len(), 1, "{text}");
    assert_eq!(d["contexts"][0]["name"], "clusternet-h-victim");
    let server = d["clusters"][0]["cluster"]["server"].as_str().unwrap();
    assert!(server.ends_with(&format!("/sockets/{VICTIM_ID}/proxy/direct")), "{server}");
    assert_eq!(d["users"][0]["user"]["as-user-extra"]["clusternet-token"][0], by_id.as_str());
    assert!(!text.contains(&by_name) && !text.contains(ROGUE_ID) && !text.contains(ID_NAMED_ID), "{text}");
    assert!(d["current-context"].as_str().unwrap_or_default().is_empty(), "--all names no cluster: {text}");
    // Why each was left out, and which key matched which cluster (-v).
    let rogue = format!(
        "warning: key \"h-victim\" of --credentials {} is ambiguous for {NS_ROGUE}/h-victim ({ROGUE_ID}): 2 ManagedClusters are named \"h-victim\" ({NS_ROGUE}/h-victim, {NS_VICTIM}/h-victim)",
        creds.display()
    );
    assert!(stderr.contains(&rogue), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: no credentials for {NS_ROGUE}/{VICTIM_ID} ({ID_NAMED_ID})")),
        "{stderr}"
    );
    assert!(
        stderr
            .contains(&format!("trace: --credentials: key \"{VICTIM_ID}\" matched {NS_VICTIM}/h-victim ({VICTIM_ID})")),
        "{stderr}"
    );

    // Only the rogue's namespace listed: the bare name is still checked
    // against every ManagedCluster on the parent, so nothing is generated.
    let only_name = write(dir.path(), "name.yaml", &format!("clusters:\n  h-victim: {{token: {by_name}}}\n"));
    let only_name = only_name.to_str().unwrap();
    let args = ["gen", "--kubeconfig", admin(), "--all", "-n", NS_ROGUE, "--credentials", only_name, "--allow-skip"];
    let e = err("gen --all -n rogue", &args, 1);
    assert!(e.contains("is ambiguous for zz-hostile-rogue/h-victim") && e.contains("nothing to generate"), "{e}");
    assert!(!e.contains(&by_name), "{e}");

    // --cluster NAME with a shared name is refused (as before), and a
    // UUID-looking --cluster-id reaches the cluster with that ID, not the one
    // named like it.
    let e =
        err("gen --cluster h-victim", &["gen", "--kubeconfig", admin(), "--cluster", "h-victim", "--token", "t"], 1);
    assert!(e.contains("ambiguous"), "{e}");
    let (yaml, _) = ok(
        "gen --cluster-id",
        &[
            "gen",
            "--kubeconfig",
            admin(),
            "--cluster-id",
            VICTIM_ID,
            "--cluster",
            "h-upper",
            "--credentials",
            creds.to_str().unwrap(),
            // h-upper has no entry: skipped (else the run fails, see above).
            "--allow-skip",
        ],
    );
    let d: Value = serde_yaml::from_str(&yaml).unwrap();
    let servers: Vec<&str> =
        d["clusters"].as_array().unwrap().iter().map(|c| c["cluster"]["server"].as_str().unwrap()).collect();
    assert!(servers.len() == 1 && servers[0].contains(VICTIM_ID), "{servers:?}");
}

/// Status fields with escape sequences and a 64 KiB field: the table escapes
/// and cuts them, the output stays small, JSON and YAML keep them exact.
#[test]
fn cluster_fields_never_reach_the_terminal_raw() {
    let _f = Fixture::create();
    let (table, _) = ok("list", &["list", "--kubeconfig", admin(), "-l", SELECTOR]);
    let victim = table.lines().find(|l| l.starts_with(NS_VICTIM)).unwrap_or_else(|| panic!("{table}"));
    assert!(victim.contains("v1.32.1^[]0;pwned\\u{0007}^[[2J"), "{victim}");
    assert!(victim.contains("Edge^[[31mCluster\\u{009B}0m"), "{victim}");
    assert!(victim.contains("https://victim\\r\\b\\u{202E}.lab.invalid:6443"), "{victim}");
    assert!(victim.contains("True^[[0m"), "{victim}");
    let wide = table.lines().find(|l| l.contains("h-wide")).unwrap();
    assert!(wide.contains(&format!("{}...", "v".repeat(61))) && !wide.contains(&"v".repeat(62)), "{wide}");
    // Rows are as wide as the capped columns, not as the 64 KiB field.
    assert!(table.len() < 8 * 1024, "{} bytes for {} rows", table.len(), table.lines().count());

    let (json_text, _) = ok("list -o json", &["list", "--kubeconfig", admin(), "-l", SELECTOR, "-o", "json"]);
    let items: Value = serde_json::from_str(&json_text).unwrap();
    let find = |v: &Value, name: &str, ns: &str| {
        v["items"].as_array().unwrap().iter().find(|i| i["name"] == name && i["namespace"] == ns).cloned().unwrap()
    };
    let v = find(&items, "h-victim", NS_VICTIM);
    assert_eq!((v["kubernetesVersion"].as_str(), v["apiserverURL"].as_str()), (Some(EVIL_VERSION), Some(EVIL_URL)));
    assert_eq!(find(&items, "h-wide", NS_ODD)["kubernetesVersion"].as_str().unwrap().len(), WIDE);
    let (yaml_text, _) = ok("list -o yaml", &["list", "--kubeconfig", admin(), "-l", SELECTOR, "-o", "yaml"]);
    let from_yaml: Value = serde_yaml::from_str(&yaml_text).unwrap();
    assert_eq!(from_yaml, items);
}

/// A cluster ID that is not a UUID fails the run, or with --allow-skip costs
/// that cluster only (a warning); an upper-case ID is normalised with a note.
#[test]
fn a_malformed_cluster_is_skipped_not_fatal() {
    let _f = Fixture::create();
    let dir = tempdir();
    let creds = write(
        dir.path(),
        "creds.yaml",
        &format!(
            "clusters:\n  {NS_ODD}/h-bad-id: {{token: t-bad}}\n  {NS_ODD}/h-upper: {{token: t-upper}}\n  {NS_ODD}/h-wide: {{token: t-wide}}\n"
        ),
    );
    let creds = creds.to_str().unwrap();
    let args = ["gen", "--kubeconfig", admin(), "--all", "-n", NS_ODD, "--credentials", creds, "--allow-skip"];
    let (yaml, stderr) = ok("gen --all", &args);
    let d: Value = serde_yaml::from_str(&yaml).unwrap();
    let names: Vec<&str> = d["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["clusternet-h-upper", "clusternet-h-wide"], "{stderr}");
    let warning = format!(
        "warning: ManagedCluster {NS_ODD}/h-bad-id has cluster ID \"x-a17a0000-0000-4000-8000-0000000000e1-^[[2J\", which is not a UUID; skipped"
    );
    assert!(stderr.contains(&warning), "{stderr}");
    let lower = UPPER_ID.to_lowercase();
    assert!(
        stderr.contains(&format!(
            "note: cluster ID \"{UPPER_ID}\" of ManagedCluster {NS_ODD}/h-upper normalised to {lower}"
        )),
        "{stderr}"
    );
    assert!(yaml.contains(&format!("/sockets/{lower}/proxy/direct")), "{yaml}");

    // By default: that cluster's line, then the run's, and nothing on stdout.
    let (out, _, _) = timed(&args[..args.len() - 1]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{e}");
    assert!(errors[0].starts_with(&format!("error: ManagedCluster {NS_ODD}/h-bad-id has cluster ID")), "{e}");
    assert!(errors[1].contains("cannot be used") && errors[1].contains("--allow-skip"), "{e}");
}

/// Two Secrets annotated for clusternet-hub-proxy: refused, both named; with
/// one left, its token is used; a broken one alone is reported by name.
#[test]
fn several_hub_proxy_secrets_are_refused_by_name() {
    let _lab = exclusive();
    // A token the controller leaves alone (it fills empty ones only), and an
    // empty one it fills.
    let broken = json!({"token": base64::engine::general_purpose::STANDARD.encode("planted\ntoken")});
    let secret = |name: &str, data: &Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token", "data": data,
               "metadata": {"name": name, "namespace": NS_SYSTEM,
                            "annotations": {"kubernetes.io/service-account.name": "clusternet-hub-proxy"}}})
    };
    let list = |items: Vec<Value>| json!({"apiVersion": "v1", "kind": "List", "items": items});
    apply(&list(vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS_SYSTEM}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "clusternet-hub-proxy", "namespace": NS_SYSTEM}}),
    ]));
    create(&list(vec![secret("hub-proxy-planted", &broken), secret("hub-proxy-real", &json!({}))]));
    let delete = |name: &str| {
        let out = kubectl(admin(), &["-n", NS_SYSTEM, "delete", "secret", name, "--wait=true"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    let args = [
        "gen",
        "--kubeconfig",
        admin(),
        "--cluster-id",
        VICTIM_ID,
        "--token",
        "t",
        "--parent-auth",
        "token",
        "--system-namespace",
        NS_SYSTEM,
    ];
    let e = err("two Secrets", &args, 1);
    assert!(
        e.contains(&format!("2 Secrets in namespace \"{NS_SYSTEM}\""))
            && e.contains("(hub-proxy-planted, hub-proxy-real)"),
        "{e}"
    );
    assert!(e.contains("--parent-token-request") && !e.contains("planted\ntoken"), "{e}");

    delete("hub-proxy-planted");
    // The token controller fills the remaining one.
    let out = Wait { within: Duration::from_secs(20), every: Duration::from_millis(200) }.until(
        || {
            let (out, elapsed, rss) = timed(&args);
            check("one Secret", &out, elapsed, rss);
            out
        },
        |out| out.status.success(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let d: Value = serde_yaml::from_str(&yaml).unwrap();
    assert!(d["users"][0]["user"]["token"].as_str().is_some_and(|t| t.starts_with("eyJ")), "{yaml}");

    delete("hub-proxy-real");
    create(&list(vec![secret("hub-proxy-planted", &broken)]));
    let e = err("a broken Secret", &args, 1);
    assert!(e.contains(&format!("token of Secret {NS_SYSTEM}/hub-proxy-planted has a line break")), "{e}");
    delete("hub-proxy-planted");
}

/// Names that would change the request path never reach the apiserver.
#[test]
fn names_are_checked_before_any_request() {
    let _lab = exclusive();
    let before = managedcluster_lists();
    for (label, args, needle) in [
        ("gen -n ..", vec!["gen", "--cluster", "a", "-n", "x/../y", "--token", "t"], "-n/--namespace \"x/../y\""),
        (
            "gen -n path",
            vec!["gen", "--all", "-n", "ns/managedclusters/name?", "--credentials", "/dev/null"],
            "-n/--namespace",
        ),
        ("list -n", vec!["list", "-n", "x/../y"], "-n/--namespace \"x/../y\" is not a namespace name"),
        (
            "--cluster selector",
            vec!["gen", "--cluster", "a,metadata.namespace=b", "--token", "t"],
            "is not a ManagedCluster name",
        ),
    ] {
        let mut all = args.clone();
        all.splice(1..1, ["--kubeconfig", admin()]);
        let e = err(label, &all, 2);
        assert!(e.contains(needle), "{label}: {e}");
    }
    assert_eq!(managedcluster_lists(), before, "a LIST reached the apiserver");
}

/// A credentials entry that points at the parent kubeconfig itself: the lab
/// admin's client certificate would go to the child. Refused, naming the user.
#[test]
fn the_parent_users_credentials_are_not_a_childs() {
    let dir = tempdir();
    let creds = write(dir.path(), "creds.yaml", &format!("clusters:\n  {}: {{kubeconfig: {}}}\n", CHILD_A.id, admin()));
    let _shared = shared();
    let args = ["gen", "--kubeconfig", admin(), "--cluster", "child-a", "--credentials", creds.to_str().unwrap()];
    let e = err("credentials entry = parent kubeconfig", &args, 1);
    assert!(e.contains("they are the client certificate of the parent kubeconfig's user \"lab-admin\""), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");
}
