//! Reading YAML as kubectl reads it.
//!
//! kubectl (client-go `clientcmd.Load`) turns a kubeconfig into JSON with
//! sigs.k8s.io/yaml's `YAMLToJSON`, which decodes the first YAML document
//! with go-yaml v2 into untyped values (YAML 1.1: `yes`, `off`, `0123`, `~`
//! and `<<` mean what YAML 1.1 says) and converts map keys to strings; then it
//! decodes that JSON into its types as encoding/json does. This module is the
//! first half: it builds the same JSON-like value (strings, booleans, numbers,
//! null, sequences, mappings with string keys, in document order) that
//! `YAMLToJSON` produces, so every field means to us what it means to kubectl.
//! The second half (typed decoding) is serde over that value, in `typed`.
//!
//! The events come from granit-parser (a YAML parser in Rust that reports the
//! style and tag of each scalar); the resolution of plain scalars, the merge
//! keys and the key conversion follow go-yaml v2's `resolve.go` and
//! `decode.go` and sigs.k8s.io/yaml's `convertToJSONableObject`.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use granit_parser::{Event, Options, Parser, ScalarStyle, Tag};
use serde_yaml::{Mapping, Number, Value};

/// Limits on what a document may expand to; see `typed`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Nodes, aliases expanded.
    pub nodes: usize,
    /// Nesting of collections.
    pub depth: usize,
    /// Refuse two equal keys in one mapping. kubectl keeps the last one
    /// (go-yaml v2 is not strict there); this tool's own files ask for it,
    /// since two entries for one cluster would leave it to guess.
    pub unique_keys: bool,
}

/// The text of a file, decoded as go-yaml decodes it: UTF-8, or UTF-16 with a
/// byte-order mark; a UTF-8 byte-order mark is dropped.
pub fn text(bytes: &[u8]) -> Result<Cow<'_, str>> {
    let utf16 = |big: bool| -> Result<Cow<'_, str>> {
        let body = &bytes[2..];
        if !body.len().is_multiple_of(2) {
            bail!(
                "is not UTF-8 text, nor valid UTF-16 (it starts with a UTF-16 byte-order mark, then an odd number of bytes)"
            );
        }
        let units = body
            .chunks_exact(2)
            .map(|p| if big { u16::from_be_bytes([p[0], p[1]]) } else { u16::from_le_bytes([p[0], p[1]]) });
        let text: String = char::decode_utf16(units)
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow!("is not UTF-8 text, nor valid UTF-16 (it starts with a UTF-16 byte-order mark, then an unpaired surrogate)"))?;
        Ok(Cow::Owned(text))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        _ => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| anyhow!("is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))?;
            Ok(Cow::Borrowed(text.strip_prefix('\u{feff}').unwrap_or(text)))
        }
    }
}

/// The value of the first document of `text` (null for none), as
/// `YAMLToJSON` makes it. Errors never quote a value.
pub fn document(text: &str, budget: Budget) -> Result<Value> {
    let mut options = Options::default();
    // As libyaml (and so go-yaml) reads them.
    options.bom_inside_document_as_content = true;
    options.block_scalar_eof_without_line_feed = true;
    options.emit_comments = false;
    // The builder's own depth check speaks first, with a better message.
    options.flow_nesting_limit = budget.depth + 1;
    options.block_nesting_limit = budget.depth + 1;
    let mut builder = Builder { budget, spent: 0, stack: Vec::new(), anchors: HashMap::new(), done: None };
    let mut parser = Parser::new_from_str_with_options(text, options);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            anyhow!("is not valid YAML: {} (line {}, column {})", e.info(), e.marker().line(), e.marker().col() + 1)
        })?;
        let at = || format!("line {}", span.start.line());
        match event {
            // go-yaml reads the first document only.
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.as_deref();
                let merge_key = is_merge_key(&text, style, tag);
                let value = scalar(text, style, tag).map_err(|e| anyhow!("{e} ({})", at()))?;
                builder.scalar(value, merge_key, anchor, &at)?;
            }
            Event::Alias(id) => {
                let (value, count) = builder.anchors.get(&id).cloned().ok_or_else(|| {
                    anyhow!("is not valid YAML: an alias refers to an anchor whose value contains it ({})", at())
                })?;
                builder.spend(count, &at)?;
                builder.attach(value, false, &at)?;
            }
            Event::SequenceStart(_, anchor, _) => builder.open(Open::Sequence(Vec::new()), anchor, &at)?,
            Event::MappingStart(_, anchor, _) => builder.open(Open::Mapping(Mapping::new(), None), anchor, &at)?,
            Event::SequenceEnd | Event::MappingEnd => builder.close(&at)?,
            _ => {}
        }
        if builder.done.is_some() {
            break;
        }
    }
    Ok(builder.done.unwrap_or(Value::Null))
}

enum Open {
    Sequence(Vec<Value>),
    /// The mapping so far and the key waiting for its value.
    Mapping(Mapping, Option<Key>),
}

enum Key {
    Merge,
    Name(String),
}

struct Frame {
    open: Open,
    anchor: usize,
    /// Nodes spent before it opened, to know what an alias to it costs.
    spent_before: usize,
}

/// Builds the value from events with an explicit stack (no recursion, so no
/// stack overflow on deep documents).
struct Builder {
    budget: Budget,
    spent: usize,
    stack: Vec<Frame>,
    /// Finished anchored nodes and their size in nodes.
    anchors: HashMap<usize, (Value, usize)>,
    done: Option<Value>,
}

impl Builder {
    fn spend(&mut self, n: usize, at: &dyn Fn() -> String) -> Result<()> {
        self.spent = self.spent.saturating_add(n);
        if self.spent > self.budget.nodes {
            bail!(
                "uses YAML aliases that expand to more than {} nodes (at {}); kubectl refuses such excessive aliasing too: write the values out instead of aliasing them",
                self.budget.nodes,
                at()
            );
        }
        Ok(())
    }

    fn open(&mut self, open: Open, anchor: usize, at: &dyn Fn() -> String) -> Result<()> {
        if let Some(Frame { open: Open::Mapping(_, None), .. }) = self.stack.last() {
            bail!("is not valid for kubectl: a mapping or a list is used as a mapping key ({})", at());
        }
        let spent_before = self.spent;
        self.spend(1, at)?;
        if self.stack.len() >= self.budget.depth {
            bail!(
                "nests lists or mappings deeper than {} levels ({}); no kubeconfig is that deep: is the file truncated or corrupted?",
                self.budget.depth,
                at()
            );
        }
        self.stack.push(Frame { open, anchor, spent_before });
        Ok(())
    }

    fn close(&mut self, at: &dyn Fn() -> String) -> Result<()> {
        let frame = self.stack.pop().ok_or_else(|| anyhow!("is not valid YAML ({})", at()))?;
        let value = match frame.open {
            Open::Sequence(items) => Value::Sequence(items),
            Open::Mapping(map, _) => Value::Mapping(map),
        };
        if frame.anchor != 0 {
            self.anchors.insert(frame.anchor, (value.clone(), self.spent - frame.spent_before));
        }
        self.attach(value, false, at)
    }

    fn scalar(&mut self, value: Value, merge_key: bool, anchor: usize, at: &dyn Fn() -> String) -> Result<()> {
        self.spend(1, at)?;
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), 1));
        }
        self.attach(value, merge_key, at)
    }

    /// Puts a finished value where it belongs: an item, a key, a value.
    fn attach(&mut self, value: Value, merge_key: bool, at: &dyn Fn() -> String) -> Result<()> {
        let Some(frame) = self.stack.last_mut() else {
            check_finite(&value).map_err(|e| anyhow!("{e} ({})", at()))?;
            self.done = Some(value);
            return Ok(());
        };
        let in_error = |e: anyhow::Error| anyhow!("{e} ({})", at());
        match &mut frame.open {
            Open::Sequence(items) => {
                check_finite(&value).map_err(in_error)?;
                items.push(value);
            }
            Open::Mapping(_, key @ None) => {
                *key = Some(if merge_key { Key::Merge } else { Key::Name(key_string(value).map_err(in_error)?) });
            }
            Open::Mapping(map, key) => {
                check_finite(&value).map_err(in_error)?;
                match key.take() {
                    // The last one wins, as in go-yaml v2 (kubectl): no error.
                    Some(Key::Name(name)) => {
                        let key = Value::String(name);
                        if self.budget.unique_keys && map.contains_key(&key) {
                            bail!(
                                "has a duplicate entry with key {:?} ({}); keep one entry per key",
                                key.as_str().unwrap_or_default(),
                                at()
                            );
                        }
                        map.insert(key, value);
                    }
                    Some(Key::Merge) => merge(map, value).map_err(in_error)?,
                    None => {}
                }
            }
        }
        Ok(())
    }
}

/// kubectl turns the document into JSON, which has no infinity nor NaN: it
/// refuses `.inf` and `.nan` anywhere (`json: unsupported value`).
fn check_finite(value: &Value) -> Result<()> {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => {
            bail!("has .inf or .nan as a value, which kubectl cannot read (JSON has no such numbers); quote it")
        }
        _ => Ok(()),
    }
}

/// go-yaml v2 applies `<<: value` where it stands: the merged mapping's keys
/// are set one by one, overwriting keys set before (and overwritten by keys
/// after); with a list of mappings the first one wins.
fn merge(map: &mut Mapping, value: Value) -> Result<()> {
    let want_map = || anyhow!("is not valid YAML for kubectl: a merge key (<<) needs a mapping or a list of mappings");
    match value {
        Value::Mapping(from) => {
            for (k, v) in from {
                map.insert(k, v);
            }
            Ok(())
        }
        Value::Sequence(items) => {
            if !items.iter().all(Value::is_mapping) {
                return Err(want_map());
            }
            for item in items.into_iter().rev() {
                merge(map, item)?;
            }
            Ok(())
        }
        _ => Err(want_map()),
    }
}

/// go-yaml's test for a merge key: `<<` implicit (written plain, or with the
/// non-specific tag `!`, as libyaml counts it), or tagged `!!merge`.
fn is_merge_key(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> bool {
    let tag = tag.map(long_tag);
    value == "<<"
        && match tag.as_deref() {
            None => style == ScalarStyle::Plain,
            Some(tag) => tag == "!" || tag == "tag:yaml.org,2002:merge",
        }
}

fn long_tag(tag: &Tag) -> String {
    format!("{}{}", tag.handle(), tag.suffix())
}

const CORE: &str = "tag:yaml.org,2002:";

/// A scalar as go-yaml v2 decodes it into an untyped value (`resolve`, and
/// `decoder.scalar`): plain scalars are resolved, quoted and block ones are
/// strings, `!!str` and the other core tags force a type, unknown tags leave
/// the text as it is.
fn scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value> {
    let tag = tag.map(long_tag);
    let tag = tag.as_deref().map(|t| t.strip_prefix(CORE).map_or(Cow::Borrowed(t), |s| Cow::Owned(format!("!!{s}"))));
    match tag.as_deref() {
        None if style == ScalarStyle::Plain => Ok(resolve(text)),
        None => Ok(Value::String(text.into_owned())),
        // `!` (non-specific) in go-yaml v2 resolves like no tag.
        Some("!") if style == ScalarStyle::Plain => Ok(Value::String(text.into_owned())),
        Some("!!str") | Some("!!timestamp") => Ok(Value::String(text.into_owned())),
        Some("!!binary") => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| anyhow!("is not valid YAML for kubectl: a !!binary value is not base64"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| anyhow!("is not valid YAML for kubectl: a !!binary value is not text"))
        }
        Some(wanted @ ("!!bool" | "!!int" | "!!float" | "!!null")) => {
            let value = resolve(text);
            let ok = match (wanted, &value) {
                ("!!bool", Value::Bool(_)) | ("!!null", Value::Null) => true,
                ("!!int", Value::Number(n)) => !n.is_f64(),
                ("!!float", Value::Number(n)) => {
                    return Ok(Value::Number(Number::from(n.as_f64().unwrap_or_default())));
                }
                _ => false,
            };
            if ok {
                Ok(value)
            } else {
                bail!("is not valid YAML for kubectl: a value tagged {wanted} is not of that type")
            }
        }
        // Any other tag (local `!x`, `!!map`, `!!seq`...): the text as it is.
        Some(_) => Ok(Value::String(text.into_owned())),
    }
}

/// go-yaml v2's `resolve` for a plain scalar without a tag.
pub fn resolve(text: Cow<'_, str>) -> Value {
    resolve_special(&text).unwrap_or_else(|| Value::String(text.into_owned()))
}

/// [`resolve`] for what is not a string; `None` for a string.
fn resolve_special(text: &str) -> Option<Value> {
    let Some(&first) = text.as_bytes().first() else {
        return Some(Value::Null);
    };
    let value = match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => match text {
            "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Value::Bool(true),
            "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Value::Bool(false),
            "~" | "null" | "Null" | "NULL" => Value::Null,
            _ => return None,
        },
        b'.' => match text {
            // Infinity and NaN resolve as floats in go-yaml, which JSON cannot
            // carry: kubectl fails on them; so does [`key_string`]'s caller.
            ".nan" | ".NaN" | ".NAN" => Value::Number(Number::from(f64::NAN)),
            ".inf" | ".Inf" | ".INF" => Value::Number(Number::from(f64::INFINITY)),
            _ => match go_parse_float(text) {
                Some(f) => Value::Number(Number::from(f)),
                None => return None,
            },
        },
        b'0'..=b'9' | b'+' | b'-' => {
            match text {
                "+.inf" | "+.Inf" | "+.INF" => return Some(Value::Number(Number::from(f64::INFINITY))),
                "-.inf" | "-.Inf" | "-.INF" => return Some(Value::Number(Number::from(f64::NEG_INFINITY))),
                _ => {}
            }
            // A timestamp (`2001-12-14`) stays a string, and nothing that has
            // `-` after four digits is a number either.
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return Some(Value::Number(Number::from(i)));
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Some(Value::Number(Number::from(u)));
            }
            if is_yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Some(Value::Number(Number::from(f)));
            }
            // `0b` followed by a sign, which Go's second try accepts.
            if let Some(rest) = plain.strip_prefix("0b")
                && let Ok(i) = i64::from_str_radix(rest, 2)
            {
                return Some(Value::Number(Number::from(i)));
            }
            if let Some(rest) = plain.strip_prefix("-0b")
                && !rest.starts_with(['+', '-'])
                && let Ok(i) = i64::from_str_radix(&format!("-{rest}"), 2)
            {
                return Some(Value::Number(Number::from(i)));
            }
            return None;
        }
        _ => return None,
    };
    Some(value)
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then `0x`, `0o`, `0b`
/// or a leading `0` (octal) prefix, or decimal digits.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_uint(body)?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 { Some((magnitude as i64).wrapping_neg()) } else { None }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign).
fn go_parse_uint(s: &str) -> Option<u64> {
    let (radix, digits) = if let Some(d) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (2, d)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms go-yaml gets here;
/// out of range is an error in Go (so the text stays a string).
fn go_parse_float(s: &str) -> Option<f64> {
    if !s.bytes().all(|b| b.is_ascii_digit() || b".+-eE".contains(&b)) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// A mapping key as `YAMLToJSON` turns it into a JSON key.
fn key_string(key: Value) -> Result<String> {
    match key {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i.to_string())
            } else if n.is_u64() {
                bail!(
                    "is not valid for kubectl: a mapping key is a number beyond 64-bit integers, which kubectl refuses"
                )
            } else {
                Ok(go_float_key(n.as_f64().unwrap_or_default()))
            }
        }
        Value::Null => bail!("is not valid for kubectl: a mapping key is empty or null, which kubectl refuses"),
        _ => bail!("is not valid YAML: a mapping or a list is used as a key, which kubectl refuses"),
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`, with go-yaml's names for infinity and NaN.
fn go_float_key(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let single = f as f32;
    // Shortest digits and exponent of the single-precision value.
    let sci = format!("{single:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    // Go's %g with the shortest precision: exponent form below 1e-4 and from 1e6.
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let dot = if tail.is_empty() { String::new() } else { format!(".{tail}") };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{head}{dot}e{esign}{:02}", exp.abs())
    } else if exp < 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    }
}
