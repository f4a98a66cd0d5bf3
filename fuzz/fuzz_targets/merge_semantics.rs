//! A merge changes nothing but the generated entries, in meaning: for any
//! merge target kubectl reads, the file written after the merge is read (by
//! the same reader as kubectl's: YAML 1.1 scalars, merge keys, anchors,
//! duplicate keys) as a kubeconfig kubectl reads too, and every entry but the
//! generated ones, `preferences`, `extensions`, every unknown top-level field
//! and (unless it was unset) `current-context` have the same value as before.
//! The parity suite (tests/cli/parity.rs) checks that this reader agrees with
//! kubectl; this target checks the merge over inputs no one wrote by hand.

#![no_main]

use clusternet_kubeconfig::kubeconfig::emit::Entries;
use clusternet_kubeconfig::kubeconfig::model::Kubeconfig;
use clusternet_kubeconfig::kubeconfig::{load, upsert, yaml};
use libfuzzer_sys::fuzz_target;
use serde_yaml::{Mapping, Value};

const NAME: &str = "fuzz-gen";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = yaml::text(data) else { return };
    let Ok(before) = yaml::value(&text) else { return };
    // What kubectl refuses, a merge refuses too (and writes nothing).
    if before.is_mapping() {
        let Ok(config) = yaml::from_value::<Kubeconfig>(&before, "kubeconfig") else { return };
        if load::check(&config).is_err() {
            return;
        }
    }
    let entry = Entries {
        name: NAME.into(),
        cluster: Mapping::from_iter([("server".into(), "https://10.0.0.1/x".into())]),
        context: Mapping::from_iter([("cluster".into(), NAME.into()), ("user".into(), NAME.into())]),
        user: Mapping::from_iter([("token".into(), "t".into())]),
    };
    let doc = Some(before.clone()).filter(|d| !d.is_null());
    let Ok((merged, _)) = upsert::apply(doc, &[entry], Some(NAME), false) else { return };
    let written = yaml::to_yaml(&merged);
    let after = yaml::value(&written).unwrap_or_else(|e| panic!("the merged file does not parse ({e}):\n{written}"));
    let config: Kubeconfig = yaml::from_value(&after, "kubeconfig")
        .unwrap_or_else(|e| panic!("kubectl would refuse the merged file ({e}):\n{written}"));
    load::check(&config).unwrap_or_else(|e| panic!("kubectl would refuse the merged file ({e}):\n{written}"));
    let Value::Mapping(before) = before else { return };
    let after = after.as_mapping().expect("a mapping after the merge");
    for (key, value) in &before {
        let key_str = key.as_str().unwrap_or_default();
        match key_str {
            "clusters" | "contexts" | "users" => {
                let kept = |v: Option<&Value>| -> Vec<Value> {
                    v.and_then(Value::as_sequence)
                        .map(|items| items.iter().filter(|i| i.get("name").and_then(Value::as_str) != Some(NAME)).cloned().collect())
                        .unwrap_or_default()
                };
                assert_eq!(kept(Some(value)), kept(after.get(key)), "{key_str} changed:\n{written}");
            }
            "current-context" if value.as_str().is_none_or(str::is_empty) => {}
            _ => assert_eq!(Some(value), after.get(key), "{key_str} changed:\n{written}"),
        }
    }
    // The generated entries are there, once.
    for list in ["clusters", "contexts", "users"] {
        let items = after.get(list).and_then(Value::as_sequence).expect("a list after the merge");
        let n = items.iter().filter(|i| i.get("name").and_then(Value::as_str) == Some(NAME)).count();
        assert_eq!(n, 1, "{list}:\n{written}");
    }
});
