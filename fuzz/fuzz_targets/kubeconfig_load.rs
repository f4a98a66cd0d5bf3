//! Kubeconfig loading and rewriting: parse (with kubectl's checks), select the
//! current context, rewrite its server to the socket-proxy path, emit YAML and
//! read it back, and merge generated entries into the document as a raw value.
//! Invariants: no panic; the emitter's output parses back to the same value;
//! merged entries are present exactly once.

#![no_main]

use clusternet_kubeconfig::kubeconfig::emit::Entries;
use clusternet_kubeconfig::kubeconfig::{load, select, upsert, yaml};
use clusternet_kubeconfig::route::{self, ClusterId, Route};
use libfuzzer_sys::fuzz_target;
use serde_yaml::{Mapping, Value};

const ID: &str = "dc91021d-2361-4f6d-a404-7c33b9e01118";

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = load::from_bytes(data) {
        let loaded = load::combine(vec![("/fuzz/config".into(), config)]);
        if let Ok(selection) = select::select(&loaded, None, "--context") {
            if let Some(server) = selection.cluster.server.as_deref() {
                let id = ClusterId::parse(ID).unwrap().0;
                if let Ok(out) = route::proxy_server(server, &id, &Route::Direct, "server") {
                    assert!(out.ends_with(&format!("/sockets/{ID}/proxy/direct")), "{out}");
                    assert!(url::Url::parse(&out).is_ok(), "{out}");
                }
            }
        }
    }
    // The raw-value path used by --merge-into, and the emitter.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(doc) = yaml::value(text) else { return };
    round_trip(&doc);
    let entry = Entries {
        name: "fuzz-gen".into(),
        cluster: Mapping::from_iter([("server".into(), "https://10.0.0.1/x".into())]),
        context: Mapping::from_iter([("cluster".into(), "fuzz-gen".into()), ("user".into(), "fuzz-gen".into())]),
        user: Mapping::from_iter([("token".into(), "t".into())]),
    };
    if let Ok((merged, _)) = upsert::apply(Some(doc), &[entry], Some("fuzz-gen"), true) {
        let text = round_trip(&merged);
        let back: Value = yaml::value(&text).unwrap();
        for list in ["clusters", "contexts", "users"] {
            let items = back[list].as_sequence().expect("a list after merge");
            let n = items.iter().filter(|i| i["name"].as_str() == Some("fuzz-gen")).count();
            assert_eq!(n, 1, "{list}: {text}");
        }
        assert_eq!(back["current-context"].as_str(), Some("fuzz-gen"));
    }
});

/// Emits `value`, parses the text back and emits again: both texts must agree
/// (comparing text, not values, so that NaN compares equal to itself).
fn round_trip(value: &Value) -> String {
    let text = yaml::to_yaml(value);
    let back: Value = yaml::value(&text).unwrap_or_else(|e| panic!("emitted YAML does not parse ({e}):\n{text}"));
    assert_eq!(yaml::to_yaml(&back), text, "emitted YAML reads back differently");
    text
}
