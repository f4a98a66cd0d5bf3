//! Credential parsing: tokens (from a flag and from a file), base64 data, PEM
//! certificate and key pairs, and a child kubeconfig's user. The first byte
//! picks the parser. Invariants: no panic; no message contains the value it
//! checked (tokens, key material).

#![no_main]

use std::io::Write as _;
use std::sync::OnceLock;

use clusternet_kubeconfig::credentials::ChildSource;
use clusternet_kubeconfig::credentials::child;
use clusternet_kubeconfig::credentials::validate;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ck-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A message must not repeat a checked value long enough to be recognisable.
fn no_echo(message: &str, value: &[u8]) {
    if value.len() >= 24 {
        if let Ok(v) = std::str::from_utf8(value) {
            assert!(!message.contains(v), "value echoed: {message}");
        }
    }
    assert!(!message.contains("PRIVATE KEY-----"), "key echoed: {message}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 5 {
        0 => {
            if let Err(e) = validate::token_from_file(rest, "--token-file f") {
                no_echo(&format!("{e:#}"), rest);
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            match validate::token(text, "--token") {
                Ok(secret) => assert_eq!(secret.expose(), text),
                Err(e) => no_echo(&format!("{e:#}"), rest),
            }
        }
        2 => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            if let Err(e) = validate::base64_data(text, "--client-key-data") {
                no_echo(&format!("{e:#}"), rest);
            }
        }
        3 => {
            // Certificate and key, split at the first NUL.
            let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len() / 2);
            let (cert, key) = rest.split_at(split);
            let key = key.strip_prefix(&[0u8]).unwrap_or(key);
            if let Err(e) = validate::cert_and_key(cert, key, "CERT", "KEY") {
                no_echo(&format!("{e:#}"), key);
            }
        }
        _ => {
            // A child kubeconfig, through the same path as --child-kubeconfig.
            let path = scratch().join("child.kubeconfig");
            let mut file = std::fs::File::create(&path).unwrap();
            file.write_all(rest).unwrap();
            drop(file);
            let source = ChildSource::ChildKubeconfig { path, context: None };
            if let Err(e) = child::load(&source) {
                let message = format!("{e:#}");
                assert!(!message.contains("PRIVATE KEY-----"), "key echoed: {message}");
            }
        }
    }
});
