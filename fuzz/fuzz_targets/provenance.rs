//! The provenance record as `status` and `refresh` read it from a kubeconfig
//! anyone may have edited: the record itself (any YAML), its `expires` time,
//! a certificate's ASN.1 times and a JWT's `exp`. Invariants: no panic; a
//! record read back from what it writes is the same record; a time read is
//! written back as text that reads as the same time.

#![no_main]

use clusternet_kubeconfig::clock::{self, Timestamp, human_until};
use clusternet_kubeconfig::credentials::validate::jwt_expiry;
use clusternet_kubeconfig::kubeconfig::provenance::{self, EXTENSION_NAME, Found, Provenance};
use libfuzzer_sys::fuzz_target;
use serde_yaml::{Mapping, Value};

/// Years the RFC 3339 text of [`clock::rfc3339`] reads back from.
const YEAR_0: i64 = -62_167_219_200;
const YEAR_10000: i64 = 253_402_300_800;

fn times(text: &str) {
    let parsed = [clock::parse_rfc3339(text), clock::from_asn1(text, true), clock::from_asn1(text, false)];
    for t in parsed.into_iter().flatten().chain(jwt_expiry(text)) {
        let _ = human_until(t, Timestamp::UNIX_EPOCH);
        if (YEAR_0..YEAR_10000).contains(&t.as_second()) {
            let text = clock::rfc3339(t);
            assert_eq!(clock::parse_rfc3339(&text), Some(t), "{text}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    times(text);
    let Ok(value) = serde_yaml::from_str::<Value>(text) else { return };
    let mut item = Mapping::new();
    item.insert("name".into(), EXTENSION_NAME.into());
    item.insert("extension".into(), value.clone());
    let entry = Mapping::from_iter([("extensions".into(), Value::Sequence(vec![Value::Mapping(item)]))]);
    match provenance::find(&entry) {
        Found::Record(record) => {
            if let Some(expires) = record.credential.as_ref().and_then(|c| c.expires.as_deref()) {
                times(expires);
            }
            let _ = record.expires();
            assert_eq!(Provenance::from_value(&record.to_value()).as_ref(), Some(&*record));
            let attached = provenance::attach(&entry, &record);
            assert_eq!(provenance::find(&attached), Found::Record(record));
            assert!(provenance::find(&provenance::detach(&attached)) == Found::None);
        }
        Found::Unreadable => assert_eq!(Provenance::from_value(&value), None),
        Found::None => unreachable!("the extension is there"),
    }
});
