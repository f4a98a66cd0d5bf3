//! Reading YAML safely and fast: the parsing under `load` (parents),
//! `write` (merge targets) and the credentials file.
//!
//! Two paths. The fast path, serde-saphyr, streams a document into the typed
//! model without an intermediate event list and enforces its own budget. The
//! careful path, serde_yaml, runs only when the fast path refuses a document
//! (or the document has merge keys): it checks the alias and nesting budget
//! first, words the errors (with the field's path, values cut out) and applies
//! merge keys as kubectl does. So every error message, and every document
//! accepted, is the careful path's.

use std::cell::{Cell, RefCell};
use std::fmt;

use anyhow::{Result, anyhow, bail};
use serde::de::{self, DeserializeOwned, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// Parses a document into `T`; `what` names the kind of file in messages
/// ("kubeconfig", "credentials file").
pub fn typed<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    match fast_parse(text) {
        Some(value) => Ok(value),
        None => careful_parse(text, what),
    }
}

/// The fast path: serde-saphyr streams the document into the typed model
/// without an intermediate event list, about twice as fast as serde_yaml and
/// with half the memory on a large kubeconfig (see the README's Performance
/// section). It enforces the same kind of budget itself (nodes, nesting,
/// aliases). `None` sends the document down [`careful_parse`]: whatever the
/// fast path refuses (or a document with merge keys, which it would apply
/// differently) is judged there, so every error message, and every document
/// accepted, is the careful path's.
fn fast_parse<T: DeserializeOwned>(text: &str) -> Option<T> {
    if text.contains("<<") {
        return None;
    }
    serde_saphyr::from_str_with_options(text, fast_options(text)).ok()
}

/// serde-saphyr's budget scaled to the document, and no source snippets in
/// errors (they would quote values, secrets included).
fn fast_options(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = ALIAS_FLOOR + text.len() / 2;
    budget.max_events = 2 * budget.max_nodes;
    budget.max_depth = MAX_FLOW_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// Parses a whole document as a raw value (a merge target), with the same
/// budget and the same two paths as [`parse`]. A document with tags (`!`) or
/// merge keys takes the careful path, which keeps them as they are written.
pub fn value(text: &str) -> Result<serde_yaml::Value> {
    if !text.contains("<<") && !text.contains('!') {
        let options = fast_options(text);
        if let Ok(value) = serde_saphyr::from_str_with_options(text, options) {
            return Ok(value);
        }
    }
    check_budget(text)?;
    serde_yaml::from_str(text)
        .map_err(|e| anyhow!("is not valid YAML ({})", redact_values(&e.to_string()).replace('\n', " ")))
}

/// The careful path: the alias and nesting budget checked first, serde_yaml's
/// messages (with the field's path, values redacted), merge keys applied.
fn careful_parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    check_budget(text)?;
    let invalid = |e: serde_yaml::Error| anyhow!("is not a valid {what}: {}", redact_values(&e.to_string()));
    let mut config: T = serde_yaml::from_str(text).map_err(invalid)?;
    if text.contains("<<") {
        // Merge keys (`<<: *base`), which kubectl applies: read again through
        // a value with the merges applied. Only then, as it costs a second parse.
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(invalid)?;
        value.apply_merge().map_err(invalid)?;
        config = serde_yaml::from_value(value).map_err(invalid)?;
    }
    Ok(config)
}

/// Nodes a document may always expand to through YAML aliases; beyond that, as
/// many as half its length in bytes (no node takes less than two bytes of text).
const ALIAS_FLOOR: usize = 200_000;

/// Refuses a document whose aliases expand it far beyond its size (an "alias
/// bomb": a few lines that expand to billions of nodes). kubectl refuses
/// those too ("document contains excessive aliasing"). The check walks the
/// document as serde_yaml would expand it, counting nodes and stopping at the
/// budget, so it takes time and memory bounded by the text's size; it runs
/// only when the text contains an alias (`*name`) at all.
pub fn check_budget(text: &str) -> Result<()> {
    check_nesting(text)?;
    if !may_have_alias(text) {
        return Ok(());
    }
    let budget = ALIAS_FLOOR + text.len() / 2;
    let counter = Counter { left: Cell::new(budget), path: RefCell::new(Vec::new()), over: RefCell::new(None) };
    // Any other error is the real parse's to report, with its position.
    let _ = (&counter).deserialize(serde_yaml::Deserializer::from_str(text));
    match counter.over.into_inner() {
        Some(at) => bail!(
            "uses YAML aliases that expand to more than {budget} nodes (at {at}); kubectl refuses such excessive aliasing too: write the values out instead of aliasing them"
        ),
        None => Ok(()),
    }
}

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
            _ => prev = b,
        }
        i += 1;
    }
    Ok(())
}

/// An alias is `*` at the start of a node: after whitespace, a flow indicator,
/// or at the very start. Without one, nothing can expand.
fn may_have_alias(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| b == b'*' && (i == 0 || b" \t\r\n[{,".contains(&bytes[i - 1])))
}

/// Counts the nodes of a document as deserialized (aliases expanded) and
/// fails once the budget is spent, remembering where.
struct Counter {
    left: Cell<usize>,
    path: RefCell<Vec<String>>,
    over: RefCell<Option<String>>,
}

const OVER_BUDGET: &str = "alias budget exceeded";

impl Counter {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => {
                if self.over.borrow().is_none() {
                    *self.over.borrow_mut() = Some(self.where_());
                }
                Err(E::custom(OVER_BUDGET))
            }
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }

    fn where_(&self) -> String {
        let path = self.path.borrow();
        if path.is_empty() {
            return "the top level".to_string();
        }
        let mut out = String::new();
        for part in path.iter() {
            if !part.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
        out
    }
}

impl<'de> DeserializeSeed<'de> for &Counter {
    /// A scalar's text, for naming map keys in the path.
    type Value = Option<String>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Option<String>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &Counter {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<String>, E> {
        self.spend().map(|()| Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
        self.spend().map(|()| Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
        self.spend().map(|()| Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<String>, E> {
        self.spend().map(|()| None)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
        // Only short keys are worth naming; values are never kept.
        self.spend().map(|()| (v.len() <= 64).then(|| v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        self.spend().map(|()| None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
        self.spend().map(|()| None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        self.spend()?;
        let mut index = 0usize;
        loop {
            self.path.borrow_mut().push(format!("[{index}]"));
            let more = seq.next_element_seed(self);
            self.path.borrow_mut().pop();
            if more?.is_none() {
                return Ok(None);
            }
            index += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        self.spend()?;
        while let Some(key) = map.next_key_seed(self)? {
            self.path.borrow_mut().push(key.unwrap_or_else(|| "?".to_string()));
            let value = map.next_value_seed(self);
            self.path.borrow_mut().pop();
            value?;
        }
        Ok(None)
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Option<String>, A::Error> {
        // A tagged node (`!tag value`).
        let (_, variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self).map(|_| None)
    }
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
    use crate::kubeconfig::load::parse;
    use crate::kubeconfig::model::Kubeconfig;

    fn config(text: &str) -> Kubeconfig {
        parse(text.as_bytes()).unwrap()
    }

    /// A merge target read on the fast path is written back with every scalar
    /// meaning to kubectl what it meant before.
    #[test]
    fn merge_targets_keep_their_scalars() {
        let text = "kind: Config\npreferences:\n  a: 0123\n  b: yes\n  c: ~\n  d: 1e3\n  e: 0x1F\n  f: \"0123\"\n  g: 1.50\n  h: 12:30\n  i: 2001-12-14\n  j: .inf\n  k: -0\n  l: +1\n";
        let fast = value(text).unwrap();
        let careful: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        assert_eq!(fast, careful);
        assert_eq!(fast["preferences"]["a"], serde_yaml::Value::from("0123"));
        assert_eq!(fast["preferences"]["b"], serde_yaml::Value::from("yes"));
    }

    /// The fast path never accepts what the careful path refuses, and reads
    /// what both accept the same way.
    #[test]
    fn fast_path_agrees_with_the_careful_path() {
        let docs = [
            "current-context: a\n",
            "clusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: \"true\"}\n",
            "clusters:\n- name: c\n  cluster: {server: 5}\n",
            "clusters:\n- name: 0123\n  cluster: {server: https://x}\n",
            "clusters:\n- name: c\n  cluster: {server: https://x, disable-compression: 1}\n",
            "users:\n- name: u\n  user: {token: [a], as-user-extra: {k: [v]}}\n",
            "users:\n- name: u\n  user: !tagged {token: x}\n",
            "users:\n- name: u\n  user: {token: ~, x: .inf, y: 0x1F, z: 1e3}\n",
            "contexts:\n- name: a\n  context: {cluster: c, user: u, namespace: null}\n",
            "contexts:\n- name: a\n  context: {cluster: c, user: u, namespace: 7}\n",
            "current-context: a\n---\ncurrent-context: b\n",
            "base: &b {server: https://x}\nclusters:\n- name: c\n  cluster: *b\n",
            "clusters:\n- name: c\n  cluster: {server: https://x}\n  extra: 1\n",
            "{\"kind\": \"Config\", \"clusters\": [{\"name\": \"c\", \"cluster\": {\"server\": \"https://x\"}}]}",
            "clusters:\n\t- name: c\n",
            "current-context: a\ncurrent-context: b\n",
            "clusters:\n- name: c\n  cluster:\n    server: https://x\n    extensions: [{name: e, extension: {a: [1, true, null, \"yes\"]}}]\n",
        ];
        for doc in docs {
            match (fast_parse::<Kubeconfig>(doc), careful_parse::<Kubeconfig>(doc, "kubeconfig")) {
                (Some(f), Ok(c)) => assert_eq!(format!("{f:?}"), format!("{c:?}"), "{doc}"),
                (Some(f), Err(e)) => panic!("fast path accepted what the careful path refuses ({e:#}): {doc}\n{f:?}"),
                (None, _) => {}
            }
        }
        // YAML 1.1's `yes` is a boolean to kubectl (go-yaml v2) and to the fast
        // path, in typed fields and in kept values alike; serde_yaml alone reads
        // it as a string (so a kept `yes` stays a string on the careful path).
        let yes = fast_parse::<Kubeconfig>(
            "clusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: yes}\n",
        );
        assert_eq!(yes.unwrap().clusters[0].cluster.insecure_skip_tls_verify, Some(true));
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_libyaml_sees_it() {
        let start = std::time::Instant::now();
        let deep = format!("kind: Config\nclusters: {}\n", "[".repeat(1_000_000));
        let err = format!("{:#}", parse(deep.as_bytes()).unwrap_err());
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
    }

    #[test]
    fn modest_aliases_and_merge_keys_work_as_in_kubectl() {
        let c = config(
            "current-context: x\nclusters:\n- name: base\n  cluster: &base {server: https://a, certificate-authority-data: Q0EK}\n- name: c\n  cluster:\n    <<: *base\n    server: https://c\ncontexts:\n- name: x\n  context: &ctx {cluster: c, user: u}\n- name: y\n  context: *ctx\n",
        );
        assert_eq!(c.clusters[1].cluster.server.as_deref(), Some("https://c"));
        assert_eq!(c.clusters[1].cluster.certificate_authority_data.as_deref(), Some("Q0EK"));
        assert_eq!(c.contexts[1].context.cluster, "c");
        assert!(!may_have_alias("server: https://*.example\ntoken: a*b\n"));
        assert!(may_have_alias("a: *x") && may_have_alias("*x") && may_have_alias("a: [1,*x]"));
    }
}
