//! Reading YAML safely and as kubectl does: the parsing under `load`
//! (parents, child kubeconfigs), `write` (merge targets) and the credentials
//! file.
//!
//! One path for every document: [`decode::document`] builds the value kubectl
//! sees (go-yaml v2's YAML 1.1 through sigs.k8s.io/yaml's `YAMLToJSON`), with
//! a budget on nodes and nesting; typed models are then read from that value
//! with serde, which, like encoding/json, refuses a string where a boolean
//! belongs and ignores unknown fields. Messages name the field, never a value.

use anyhow::{Result, anyhow, bail};
use serde::de::DeserializeOwned;

use super::decode::{self, Budget};

/// Parses one of this tool's own files (the credentials file) into `T`;
/// `what` names the kind of file in messages. Read as kubectl reads YAML,
/// except that two equal keys in one mapping are refused: kubectl keeps the
/// last, which here would pick one of two credentials for a cluster silently.
pub fn typed<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    let strict = || document(text, true);
    into_typed(strict()?, what, strict)
}

/// `T` from a value, consuming it (no string is copied). Only when that
/// fails is the value built again, by `again`, to say where the error is.
pub fn into_typed<T: DeserializeOwned>(
    value: serde_yaml::Value,
    what: &str,
    again: impl FnOnce() -> Result<serde_yaml::Value>,
) -> Result<T> {
    match T::deserialize(value) {
        Ok(typed) => Ok(typed),
        Err(e) => {
            let value = again()?;
            Err(anyhow!("is not a valid {what}: {}", located::<T>(&value, e)))
        }
    }
}

/// `T` from a value built by [`value`], as encoding/json would decode it.
pub fn from_value<T: DeserializeOwned>(value: &serde_yaml::Value, what: &str) -> Result<T> {
    T::deserialize(value).map_err(|e| anyhow!("is not a valid {what}: {}", located::<T>(value, e)))
}

/// serde says what is wrong but not where: on this error path alone, the
/// field is found by trying each part of the document on its own (the part
/// at that path, nothing else), going down while the error persists. So the
/// message names the field (`clusters[0].cluster.server: invalid type: ...`);
/// values are cut out of it.
fn located<T: DeserializeOwned>(value: &serde_yaml::Value, error: serde_yaml::Error) -> String {
    use serde_yaml::Value;
    /// A key, or an index in a list.
    enum Step {
        Key(String),
        Index(usize),
    }
    let wrap = |step: &Step, inner: Value| match step {
        Step::Key(key) => Value::Mapping(std::iter::once((Value::String(key.clone()), inner)).collect()),
        Step::Index(_) => Value::Sequence(vec![inner]),
    };
    let mut path: Vec<Step> = Vec::new();
    let mut node = value;
    'down: loop {
        let children: Vec<(Step, &Value)> = match node {
            Value::Mapping(map) => {
                map.iter().filter_map(|(k, v)| Some((Step::Key(k.as_str()?.to_string()), v))).collect()
            }
            Value::Sequence(items) => items.iter().enumerate().map(|(i, v)| (Step::Index(i), v)).collect(),
            _ => break,
        };
        // Wrong as a whole (a list where a string belongs): the error is here.
        let emptied = match node {
            Value::Mapping(_) => Value::Mapping(serde_yaml::Mapping::new()),
            _ => Value::Sequence(Vec::new()),
        };
        if !path.is_empty()
            && T::deserialize(
                &path[..path.len() - 1]
                    .iter()
                    .rev()
                    .fold(wrap(&path[path.len() - 1], emptied), |inner, s| wrap(s, inner)),
            )
            .is_err()
        {
            break;
        }
        for (step, child) in children {
            let alone = path.iter().rev().fold(wrap(&step, child.clone()), |inner, s| wrap(s, inner));
            if T::deserialize(&alone).is_err() {
                path.push(step);
                node = child;
                continue 'down;
            }
        }
        break;
    }
    let mut shown = String::new();
    for step in &path {
        match step {
            Step::Key(key) if shown.is_empty() => shown.push_str(key),
            Step::Key(key) => {
                shown.push('.');
                shown.push_str(key);
            }
            Step::Index(i) => shown.push_str(&format!("[{i}]")),
        }
    }
    let message = redact_values(&error.to_string());
    if shown.is_empty() { message } else { format!("{shown}: {message}") }
}

/// Parses a whole document as a value: the value kubectl sees. Null for a
/// document with no content (empty, comments only, `---`).
pub fn value(text: &str) -> Result<serde_yaml::Value> {
    document(text, false)
}

fn document(text: &str, unique_keys: bool) -> Result<serde_yaml::Value> {
    check_nesting(text)?;
    let budget = Budget { nodes: ALIAS_FLOOR + text.len() / 2, depth: MAX_FLOW_DEPTH, unique_keys };
    decode::document(text, budget).map_err(|e| anyhow!("{}", redact_values(&format!("{e:#}"))))
}

/// Nodes a document may always expand to through YAML aliases; beyond that, as
/// many as half its length in bytes (no node takes less than two bytes of text).
const ALIAS_FLOOR: usize = 200_000;

/// Flow collections (`[`, `{`) nested deeper than this are refused before
/// parsing: libyaml's scanner takes time quadratic in the nesting depth (a
/// 2 MB line of `[` would keep it busy for hours), and serde_yaml refuses more
/// than 128 levels anyway, after that scan.
const MAX_FLOW_DEPTH: usize = 256;

/// One pass over the text counting the depth of flow brackets outside quoted
/// scalars and comments. It may count a bracket inside a plain scalar (`a[b`),
/// hence the margin over serde_yaml's 128 levels; it never misses one.
fn check_nesting(text: &str) -> Result<()> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1usize, 0usize);
    // The last significant byte before `i` on this line, to tell a quote that
    // opens a scalar from an apostrophe inside a plain one (`don't`).
    let mut prev: u8 = b'\n';
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                prev = b'\n';
            }
            b'#' if matches!(prev, b'\n' | b' ' | b'\t') || i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if matches!(prev, b'\n' | b':' | b'[' | b'{' | b',' | b'-' | b'?' | b'!' | b'&') => {
                // A quoted scalar: skip to its end (`\"` escapes in "...", `''` in '...').
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if b == b'"' => i += 1,
                        b'\n' => line += 1,
                        q if q == b => {
                            if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                prev = b;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    bail!(
                        "nests lists or mappings deeper than {MAX_FLOW_DEPTH} levels (line {line}); no kubeconfig is that deep: is the file truncated or corrupted?"
                    );
                }
                prev = b;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                prev = b;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => {
                // This byte and the run after it that no arm above acts on
                // (most of a large file: base64 data, names) at once, keeping
                // the run's last byte as the last significant one.
                i += 1 + bytes[i + 1..].iter().position(|&c| is_nesting_relevant(c)).unwrap_or(bytes.len() - i - 1);
                prev = bytes[i - 1];
                continue;
            }
        }
        i += 1;
    }
    Ok(())
}

/// The bytes [`check_nesting`] does more with than remember as the last one.
fn is_nesting_relevant(b: u8) -> bool {
    matches!(b, b'\n' | b'#' | b'"' | b'\'' | b'[' | b'{' | b']' | b'}' | b' ' | b'\t' | b'\r')
}

/// serde's messages quote the offending value (`invalid type: string "..."`);
/// a value may be a secret put in the wrong field, so it is cut out, keeping
/// the field path, the expected type and the position.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(['"', '`']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let quote = from.as_bytes()[0] as char;
        // Find the closing quote; a `"`-quoted value is Debug-escaped.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in from.char_indices().skip(1) {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            out.push_str("<value>");
            rest = "";
            break;
        };
        let inner = &from[1..end];
        // Field names (`server`, duplicate field `kind`, duplicate entry with
        // key "token") stay; values go.
        let is_name = (quote == '`' || out.ends_with("with key "))
            && !inner.is_empty()
            && inner.len() <= 64
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            && inner.chars().any(|c| c.is_ascii_alphabetic());
        if is_name {
            out.push_str(&from[..=end]);
        } else {
            out.push_str("<value>");
        }
        rest = &from[end + 1..];
    }
    out.push_str(rest);
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::load::from_bytes;
    use crate::kubeconfig::model::Kubeconfig;

    fn config(text: &str) -> Kubeconfig {
        from_bytes(text.as_bytes()).unwrap()
    }

    /// Scalars mean what YAML 1.1 (go-yaml v2, kubectl) says they mean.
    #[test]
    fn scalars_resolve_as_in_kubectl() {
        let v = value("p:\n  a: 0123\n  b: yes\n  c: ~\n  d: 1e3\n  e: 0x1F\n  f: \"0123\"\n  g: 1.50\n  h: 12:30\n  i: 2001-12-14\n  k: -0\n  l: +1\n  m: Off\n  n1: y\n  o: 08\n  p: 1_000\n  q: !!str yes\n  r: !x 12\n  s: 'on'\n  t: |\n    yes\n  u: NULL\n  v: .5\n  w: 0b101\n  x: 0o17\n  y1: yEs\n  z:\n").unwrap();
        let p = &v["p"];
        let n = |f: &str| serde_yaml::Value::from(serde_json::from_str::<f64>(f).unwrap());
        assert_eq!(p["a"], serde_yaml::Value::from(83));
        assert_eq!(p["b"], serde_yaml::Value::from(true));
        assert!(p["c"].is_null() && p["u"].is_null() && p["z"].is_null());
        assert_eq!(p["d"], n("1000"));
        assert_eq!(p["e"], serde_yaml::Value::from(31));
        assert_eq!(p["f"], serde_yaml::Value::from("0123"));
        assert_eq!(p["g"], n("1.5"));
        assert_eq!(p["h"], serde_yaml::Value::from("12:30"));
        assert_eq!(p["i"], serde_yaml::Value::from("2001-12-14"));
        assert_eq!(p["k"], serde_yaml::Value::from(0));
        assert_eq!(p["l"], serde_yaml::Value::from(1));
        assert_eq!(p["m"], serde_yaml::Value::from(false));
        assert_eq!(p["n1"], serde_yaml::Value::from(true));
        assert_eq!(p["o"], n("8"));
        assert_eq!(p["p"], serde_yaml::Value::from(1000));
        assert_eq!(p["q"], serde_yaml::Value::from("yes"));
        assert_eq!(p["r"], serde_yaml::Value::from("12"));
        assert_eq!(p["s"], serde_yaml::Value::from("on"));
        assert_eq!(p["t"], serde_yaml::Value::from("yes\n"));
        assert_eq!(p["v"], n("0.5"));
        assert_eq!(p["w"], serde_yaml::Value::from(5));
        assert_eq!(p["x"], serde_yaml::Value::from(15));
        assert_eq!(p["y1"], serde_yaml::Value::from("yEs"));
    }

    #[test]
    fn keys_become_strings_and_the_last_duplicate_wins() {
        let v = value("1: a\nyes: b\n1.5: c\n2e6: d\nk: 1\nk: 2\n").unwrap();
        let keys: Vec<&str> = v.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["1", "true", "1.5", "2e+06", "k"]);
        assert_eq!(v["k"], serde_yaml::Value::from(2));
        for bad in ["~: x\n", "[a]: x\n", "a: .inf\n", "a: [.nan]\n", "18446744073709551615: x\n"] {
            assert!(value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_fields_are_decoded_as_encoding_json_does() {
        let c = config("clusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: yes}\n");
        assert_eq!(c.clusters[0].cluster.insecure_skip_tls_verify, Some(true));
        for (text, needle) in [
            (
                "clusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: \"true\"}\n",
                "expected a boolean",
            ),
            ("clusters:\n- name: c\n  cluster: {server: 5}\n", "clusters[0].cluster.server: invalid type: integer"),
            ("clusters:\n- name: 0123\n  cluster: {server: https://x}\n", "clusters[0].name: invalid type"),
            (
                "contexts:\n- name: a\n  context: {cluster: c, user: yes}\n",
                "contexts[0].context.user: invalid type: boolean",
            ),
        ] {
            let err = format!("{:#}", from_bytes(text.as_bytes()).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
        // Unknown fields are ignored, null is unset, later documents are not read.
        let c =
            config("kind: Config\nfoo: [1]\nclusters:\n- name: c\n  cluster: {server: ~}\n  extra: 1\n---\n: bad\n");
        assert!(c.clusters[0].cluster.server.is_none());
        // Nothing but unknown fields, comments or `---`: an empty kubeconfig.
        for empty in ["", "# only\n", "---\n", "{}\n", "foo: bar\n", "\u{feff}\n"] {
            let c = config(empty);
            assert!(c.clusters.is_empty() && c.contexts.is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_read() {
        let text = "current-context: a\n";
        let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
        assert_eq!(from_bytes(&le).unwrap().current_context.as_deref(), Some("a"));
        assert_eq!(from_bytes(&be).unwrap().current_context.as_deref(), Some("a"));
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_the_parser_sees_it() {
        let start = std::time::Instant::now();
        let deep = format!("kind: Config\nclusters: {}\n", "[".repeat(1_000_000));
        let err = format!("{:#}", from_bytes(deep.as_bytes()).unwrap_err());
        assert!(err.contains("deeper than 256 levels (line 2)"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // Brackets in quotes, comments and plain scalars are not nesting.
        let text = format!(
            "kind: Config # {}\ncurrent-context: \"{}\"\nusers:\n- name: don't\n  user: {{token: '{}''{}'}}\n",
            "[".repeat(300),
            "{".repeat(300),
            "[".repeat(300),
            "\"[".repeat(300)
        );
        assert_eq!(config(&text).users[0].name, "don't");
        assert!(check_nesting(&format!("a: {}1{}", "[".repeat(120), "]".repeat(120))).is_ok());
        let block = format!("a:\n{}", (1..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>());
        assert!(format!("{:#}", value(&block).unwrap_err()).contains("deeper than 256 levels"));
    }

    #[test]
    fn aliases_and_merge_keys_work_as_in_kubectl() {
        let c = config(
            "current-context: x\nclusters:\n- name: base\n  cluster: &base {server: https://a, certificate-authority-data: Q0EK}\n- name: c\n  cluster:\n    <<: *base\n    server: https://c\ncontexts:\n- name: x\n  context: &ctx {cluster: c, user: u}\n- name: z\n  context: *ctx\n",
        );
        assert_eq!(c.clusters[1].cluster.server.as_deref(), Some("https://c"));
        assert_eq!(c.clusters[1].cluster.certificate_authority_data.as_deref(), Some("Q0EK"));
        assert_eq!(c.contexts[1].context.cluster, "c");
        // go-yaml v2 applies a merge where it stands: a key after it wins, a
        // key before it loses; in a list the first mapping wins.
        let v = value("a: &a {k: 1, m: 1}\nb: &b {k: 2, q: 2}\nc: {k: 0, <<: *a}\nd: {<<: [*a, *b]}\ne: {\"<<\": 1}\n")
            .unwrap();
        assert_eq!(v["c"]["k"], serde_yaml::Value::from(1));
        assert_eq!(v["d"]["k"], serde_yaml::Value::from(1));
        assert_eq!(v["d"]["q"], serde_yaml::Value::from(2));
        assert_eq!(v["e"]["<<"], serde_yaml::Value::from(1));
        assert!(value("a: {<<: 1}\n").is_err());
        assert!(value("a: &a [*a]\n").is_err());
    }
}
