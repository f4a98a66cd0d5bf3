//! `-v/--verbose`: what the program does, step by step, on stderr. Secret
//! values never reach a trace line: callers pass descriptions, never values,
//! and user entries are printed through [`redacted`].

use std::sync::atomic::{AtomicBool, Ordering};

use serde_yaml::{Mapping, Value};

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn enable(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Prints `line()` when verbose; the closure keeps formatting off the fast path.
pub fn line(line: impl FnOnce() -> String) {
    if enabled() {
        eprintln!("trace: {}", line());
    }
}

/// Keys of a user entry whose values are secrets.
const SECRET_KEYS: &[&str] = &["token", "password", "client-key-data", "as-user-extra"];

/// A user entry with every secret value replaced by its length, for traces.
pub fn redacted(user: &Mapping) -> String {
    let shown: Vec<String> = user
        .iter()
        .map(|(k, v)| {
            let key = k.as_str().unwrap_or("?");
            if SECRET_KEYS.contains(&key) { format!("{key}: <redacted>") } else { format!("{key}: {}", summary(v)) }
        })
        .collect();
    format!("{{{}}}", shown.join(", "))
}

fn summary(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() > 40 => format!("<{} chars>", s.len()),
        Value::String(s) => s.clone(),
        Value::Mapping(m) => format!("<{} keys>", m.len()),
        Value::Sequence(s) => format!("<{} items>", s.len()),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let user: Mapping = serde_yaml::from_str(
            "token: SECRET1\nas: clusternet\nas-user-extra: {clusternet-token: [SECRET2]}\nclient-key-data: SECRET3\nusername: system:anonymous\n",
        )
        .unwrap();
        let text = redacted(&user);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("as: clusternet") && text.contains("username: system:anonymous"));
    }
}
