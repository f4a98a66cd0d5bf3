//! A small YAML emitter for kubeconfig documents.
//!
//! Why not serde_yaml's serializer: kubectl parses YAML with go-yaml in YAML 1.1
//! mode, where plain scalars such as `yes`, `on`, `0123` (octal) or `0x1F` are
//! not strings, and where U+0085, U+2028 and U+2029 are line breaks. A token or
//! a name must reach kubectl byte for byte, so this emitter writes a string
//! plain only when it is unambiguous in YAML 1.1 and 1.2 alike, and otherwise
//! double-quoted with every character outside YAML's printable set escaped.
//! Layout follows `kubectl config view`: block mappings indented by two, block
//! sequences at their key's indentation.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_yaml::{Mapping, Value};

/// The whole document, ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(map) if !map.is_empty() => mapping(&mut out, map, 0, false),
        Value::Sequence(seq) if !seq.is_empty() => sequence(&mut out, seq, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

/// A block mapping at `indent`. With `after_dash`, the first key goes on the
/// current line, right after a sequence's `- `.
fn mapping(out: &mut String, map: &Mapping, indent: usize, after_dash: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if !(i == 0 && after_dash) {
            pad(out, indent);
        }
        let key = inline(key);
        if key.len() > MAX_IMPLICIT_KEY {
            // `? key` on its own line, then `: value` at the same column.
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            pad(out, indent);
        } else {
            out.push_str(&key);
        }
        out.push(':');
        match value {
            Value::Mapping(inner) if !inner.is_empty() => {
                out.push('\n');
                mapping(out, inner, indent + 2, false);
            }
            Value::Sequence(items) if !items.is_empty() => {
                out.push('\n');
                sequence(out, items, indent);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push_str("- ");
        match item {
            Value::Mapping(inner) if !inner.is_empty() => mapping(out, inner, indent + 2, true),
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// libyaml and go-yaml (kubectl) read an implicit key (`key: value`) only up
/// to 1024 characters; a longer key is written as an explicit one (`? key`).
const MAX_IMPLICIT_KEY: usize = 1000;

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A value on one line: scalars, and flow style for the rare nested collection
/// that has no block position (a sequence inside a sequence, a tagged value).
/// A string written plain is borrowed, not copied: a large merge target is
/// mostly such strings.
fn inline(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string().into(),
        Value::Number(n) => n.to_string().into(),
        Value::String(s) => string(s),
        Value::Sequence(items) => {
            let parts: Vec<Cow<str>> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", ")).into()
        }
        Value::Mapping(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let key = inline(k);
                    let explicit = if key.len() > MAX_IMPLICIT_KEY { "? " } else { "" };
                    format!("{explicit}{key}: {}", inline(v))
                })
                .collect();
            format!("{{{}}}", parts.join(", ")).into()
        }
        Value::Tagged(tagged) => format!("{} {}", written_tag(&tagged.tag.to_string()), inline(&tagged.value)).into(),
    }
}

/// How a tag (as serde_yaml displays it) is written. Tags are never dropped:
/// `e`, `! e` and `!x e` are three different keys to serde_yaml, and dropping
/// a tag could make two keys equal. The non-specific tag `!`, which
/// serde_yaml displays as `!!` (not YAML), is written `!`; in other tags,
/// every character but letters, digits and `-_./:` is percent-escaped, which
/// the parser decodes back.
fn written_tag(tag: &str) -> String {
    if tag == "!!" {
        return "!".to_string();
    }
    let name = tag.strip_prefix('!').unwrap_or(tag);
    let mut out = String::from("!");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_./:".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A string scalar: plain when that is unambiguous, double-quoted otherwise.
pub fn string(s: &str) -> Cow<'_, str> {
    if is_plain_safe(s) { Cow::Borrowed(s) } else { Cow::Owned(quoted(s)) }
}

/// Words that YAML 1.1 (go-yaml v2, and so kubectl) reads as booleans or null.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

fn is_plain_safe(s: &str) -> bool {
    // Bytes, not chars: this runs on every scalar of a 27 MB merge target, and
    // anything outside ASCII is quoted anyway.
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    // A letter or `/` first rules out numbers, dates, indicators (`-`, `?`, `:`,
    // `&`, `*`, `!`, `|`, `>`, `%`, `@`, `#`, quotes) and `.inf`/`.nan`.
    (first.is_ascii_alphabetic() || first == b'/')
        && bytes
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b':' | b'@' | b'+' | b'='))
        && bytes.last() != Some(&b':')
        && (bytes.len() > 5 || !RESERVED.iter().any(|w| w.eq_ignore_ascii_case(s)))
}

/// Double-quoted, escaping `"`, `\` and every character YAML does not allow
/// raw or reads as a line break (C0 and C1 controls, DEL, U+0085, U+2028,
/// U+2029, U+FEFF, U+FFFE, U+FFFF).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0x2027 | 0x202A..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x10000..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) {
        let doc = Value::Mapping(Mapping::from_iter([(Value::from("k"), Value::from(s))]));
        let text = to_yaml(&doc);
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back["k"], Value::from(s), "{text}");
    }

    #[test]
    fn yaml_special_strings_are_quoted_and_survive() {
        for s in [
            "yes",
            "No",
            "ON",
            "off",
            "null",
            "~",
            "0123",
            "1e3",
            "0x1F",
            "- x",
            "#x",
            "a: b",
            "'q'",
            "\"q\"",
            " lead",
            "trail ",
            "",
            "grüße ✓",
            "a\u{2028}b",
            "a\u{85}b",
            "x\u{7f}",
            "tab\there",
            "=",
            "<<",
            "a:",
            "true",
            "12:30",
            "2001-12-14",
            ".inf",
            "@x",
            "!x",
            "*x",
            "&x",
            "%x",
            "|",
            ">",
            "?",
            "[a]",
            "{a}",
            "a,b",
        ] {
            round_trip(s);
        }
        assert_eq!(string("yes"), "\"yes\"");
        assert_eq!(string("0123"), "\"0123\"");
        assert_eq!(string("a\u{2028}"), "\"a\\u2028\"");
    }

    #[test]
    fn ordinary_values_stay_plain() {
        for s in [
            "clusternet",
            "https://10.0.0.1:6443/apis/x",
            "LS0tLS1CRUdJTg==",
            "system:anonymous",
            "kubernetes-admin@kubernetes",
        ] {
            assert_eq!(string(s), s);
        }
    }

    #[test]
    fn layout_matches_kubectl() {
        let doc: Value = serde_yaml::from_str(
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://a\n  name: c\npreferences: {}\nusers:\n- name: u\n  user:\n    as-user-extra:\n      clusternet-token:\n      - t\n",
        )
        .unwrap();
        assert_eq!(
            to_yaml(&doc),
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://a\n  name: c\npreferences: {}\nusers:\n- name: u\n  user:\n    as-user-extra:\n      clusternet-token:\n      - t\n"
        );
    }

    #[test]
    fn non_specific_and_odd_tags_do_not_break_the_output() {
        // Found by fuzzing (kubeconfig_load): `! user: ...` is read with the
        // non-specific tag `!`, which serde_yaml displays as `!!`, not YAML.
        for text in ["a: ! x\n", "! a: x\n", "- name: u\n  ! user: {token: t}\n", "a: !x y\n", "a: !x {b: 1}\n"] {
            let doc: Value = serde_yaml::from_str(text).unwrap();
            let out = to_yaml(&doc);
            let back: Value = serde_yaml::from_str(&out).unwrap_or_else(|e| panic!("{text:?} -> {out:?}: {e}"));
            assert_eq!(to_yaml(&back), out, "{text:?}");
        }
        assert_eq!(to_yaml(&serde_yaml::from_str("a: ! x\n").unwrap()), "a: ! x\n");
        // Found by fuzzing too: `e`, `! e` and `!)-- e` are three keys to
        // serde_yaml, and `? !)--` and `?` two (null and tagged null).
        for text in ["e: 1\n!)-- e: 2\n", "?  !)--\n?\n", "!a=b\n- x\n", "k: !%C3%A9t%20 x\n"] {
            let doc: Value = serde_yaml::from_str(text).unwrap();
            let out = to_yaml(&doc);
            assert_eq!(serde_yaml::from_str::<Value>(&out).unwrap(), doc, "{text:?}: {out}");
            assert_eq!(to_yaml(&serde_yaml::from_str(&out).unwrap()), out, "{text:?}");
        }
        let doc: Value = serde_yaml::from_str("e: !base\n- name: base\n! e: !base\n- name: b\n").unwrap();
        let out = to_yaml(&doc);
        assert_eq!(serde_yaml::from_str::<Value>(&out).unwrap(), doc, "{out}");
        // Found by fuzzing too: a dropped tag on a collection, at the top level
        // or as a value, must not change its layout between two emissions.
        for text in ["!a=b\n- er: {token: t}\n", "k: !a=b\n  - x\n", "- !a=b {x: 1}\n"] {
            let doc: Value = serde_yaml::from_str(text).unwrap();
            let out = to_yaml(&doc);
            assert_eq!(to_yaml(&serde_yaml::from_str(&out).unwrap()), out, "{text:?}");
        }
        assert_eq!(to_yaml(&serde_yaml::from_str("a: !x y\n").unwrap()), "a: !x \"y\"\n");
    }

    #[test]
    fn long_keys_are_explicit() {
        // Found by fuzzing (kubeconfig_load): a 1100-character key written as
        // `key: value` is not YAML any more.
        let long = "k".repeat(1100);
        let key = |suffix: &str| Value::from(format!("{long}{suffix}"));
        let map = |pairs: Vec<(Value, Value)>| Value::Mapping(Mapping::from_iter(pairs));
        let doc = map(vec![
            (key(""), Value::from(1)),
            (key("x"), map(vec![("a".into(), 1.into())])),
            (key("y"), Value::Sequence(vec![1.into()])),
            ("l".into(), Value::Sequence(vec![map(vec![(key(""), 2.into()), ("b".into(), 3.into())])])),
            ("f".into(), Value::Sequence(vec![Value::Sequence(vec![map(vec![(key(""), 1.into())])])])),
            ("m".into(), map(vec![(map(vec![(key("z"), 1.into())]), 1.into())])),
        ]);
        let out = to_yaml(&doc);
        let back: Value = serde_yaml::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
        assert_eq!(back, doc);
        assert!(out.starts_with(&format!("? {long}\n: 1\n")), "{out}");
    }

    #[test]
    fn nested_and_odd_values_round_trip() {
        let doc: Value = serde_yaml::from_str(
            "a: [[1, 2], []]\nb: {}\nc: !tag x\nd: 1.5\ne: null\nf: [{x: 1}]\ng: {\"k y\": [\"yes\"]}\n",
        )
        .unwrap();
        let back: Value = serde_yaml::from_str(&to_yaml(&doc)).unwrap();
        assert_eq!(back, doc);
    }
}
