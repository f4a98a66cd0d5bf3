//! `gen --cluster NAME [-n NS]`: the name is resolved to its ID on the real
//! parent, and kubectl through the result reaches the stand-in as that child.

use crate::support::*;

#[test]
fn cluster_name_resolves_to_its_id() {
    let lab = lab();
    let dir = tempdir();
    let id = CHILD_A.id;
    let token = unique("by-name");
    let kc = generate_on_lab(dir.path(), &["--cluster", "child-a", "--token", &token]);
    let doc: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    assert_eq!(doc["current-context"], "clusternet-child-a");
    assert_eq!(doc["contexts"][0]["name"], "clusternet-child-a");
    assert_eq!(doc["clusters"][0]["name"], "clusternet-child-a");
    assert_eq!(doc["users"][0]["name"], "clusternet-child-a");
    assert_eq!(doc["clusters"][0]["cluster"]["server"], format!("{}{PROXY_PREFIX}{id}/proxy/direct", lab.server()));
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

#[test]
fn duplicate_name_is_an_error_listing_both() {
    let err = lab_gen().cluster("dup").args(&["--token", "t-dup"]).err();
    for seed in [DUP_1, DUP_2] {
        let candidate = format!("{}/dup ({})", seed.namespace, seed.id);
        assert!(err.contains(&candidate), "{candidate} missing: {err}");
    }
    assert!(err.contains("ambiguous") && err.contains("-n NAMESPACE"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn duplicate_name_with_namespace_works() {
    let dir = tempdir();
    let id = DUP_2.id;
    let token = unique("dup-ns");
    let kc = generate_on_lab(dir.path(), &["--cluster", "dup", "-n", DUP_2.namespace, "--token", &token]);
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains("current-context: clusternet-dup"), "{text}");
    assert!(!text.contains(DUP_1.id), "{text}");
    assert_reaches_child(&kc, id, "x-remote-extra-clusternet-token", &token);
}

#[test]
fn typo_suggests_the_closest_name() {
    let err = lab_gen().cluster("chld-a").args(&["--token", "t-typo"]).err();
    assert!(err.contains("no ManagedCluster named \"chld-a\""), "{err}");
    assert!(err.contains(&format!("closest: {}/child-a", CHILD_A.namespace)), "{err}");
    // In a namespace where it does not exist.
    let err = lab_gen().cluster("child-a").args(&["-n", CHILD_B.namespace, "--token", "t-typo"]).err();
    assert!(err.contains(&format!("in namespace {:?}", CHILD_B.namespace)), "{err}");
}
