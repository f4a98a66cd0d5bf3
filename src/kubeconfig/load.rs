//! Reading kubeconfig files, and kubectl's rules for merging a KUBECONFIG list.
//!
//! File I/O stays in [`read_file`]; [`parse`] and [`merge`] are pure.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use super::model::{Kubeconfig, NamedCluster, NamedContext, NamedUser};

/// An entry together with the file it came from: relative paths in it are
/// resolved against that file's directory, as kubectl does.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub item: T,
    pub file: usize,
}

/// One or more kubeconfig files merged with kubectl's rules.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Absolute paths of the files that were read, in KUBECONFIG order.
    pub files: Vec<PathBuf>,
    pub current_context: Option<String>,
    pub clusters: Vec<Sourced<NamedCluster>>,
    pub users: Vec<Sourced<NamedUser>>,
    pub contexts: Vec<Sourced<NamedContext>>,
}

impl Loaded {
    /// The directory relative references of entries from `file` are resolved against.
    pub fn base_dir(&self, file: usize) -> &Path {
        self.files[file].parent().unwrap_or(Path::new("/"))
    }

    /// The files, for messages: `a.yaml` or `a.yaml, b.yaml`.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        names.join(", ")
    }
}

/// Where the parent kubeconfig comes from, in kubectl's order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentSource {
    /// `--kubeconfig PATH`: exactly this file, which must exist.
    Flag(PathBuf),
    /// The KUBECONFIG list: missing files are skipped.
    EnvList(Vec<PathBuf>),
    /// `~/.kube/config`.
    Home(PathBuf),
}

/// Decides where the parent kubeconfig comes from. Pure: the environment is passed in.
pub fn parent_source(
    flag: Option<&Path>,
    kubeconfig_env: Option<OsString>,
    home: Option<PathBuf>,
) -> Result<ParentSource> {
    if let Some(path) = flag {
        return Ok(ParentSource::Flag(path.to_path_buf()));
    }
    if let Some(list) = kubeconfig_env.filter(|v| !v.is_empty()) {
        // kubectl splits on the OS list separator and drops empty items.
        let files: Vec<PathBuf> = std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
        if !files.is_empty() {
            return Ok(ParentSource::EnvList(files));
        }
    }
    let home =
        home.ok_or_else(|| anyhow!("no parent kubeconfig: HOME is not set; pass --kubeconfig PATH or set KUBECONFIG"))?;
    Ok(ParentSource::Home(home.join(".kube").join("config")))
}

/// Reads and merges the parent kubeconfig from `source`.
pub fn load_parent(source: &ParentSource) -> Result<Loaded> {
    match source {
        ParentSource::Flag(path) => {
            let config = read_file(path).context("--kubeconfig")?;
            Ok(merge(vec![(absolute(path), config)]))
        }
        ParentSource::Home(path) => {
            if !path.exists() {
                bail!(
                    "no parent kubeconfig: {} does not exist and KUBECONFIG is not set; pass --kubeconfig PATH",
                    path.display()
                );
            }
            let config = read_file(path)?;
            Ok(merge(vec![(absolute(path), config)]))
        }
        ParentSource::EnvList(paths) => {
            let mut files = Vec::new();
            for path in paths {
                // kubectl skips files of the list that do not exist; any other
                // problem with a file that is there is an error.
                if matches!(fs::symlink_metadata(path), Err(e) if e.kind() == ErrorKind::NotFound) {
                    continue;
                }
                let config = read_file(path).context("KUBECONFIG")?;
                files.push((absolute(path), config));
            }
            if files.is_empty() {
                bail!("no parent kubeconfig: none of the files in KUBECONFIG exists; pass --kubeconfig PATH");
            }
            Ok(merge(files))
        }
    }
}

/// Reads one kubeconfig file. Every error names the file and says what to do.
pub fn read_file(path: &Path) -> Result<Kubeconfig> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => anyhow!("kubeconfig {shown} does not exist"),
        ErrorKind::PermissionDenied => {
            anyhow!("kubeconfig {shown} cannot be read (permission denied)")
        }
        _ => anyhow!("kubeconfig {shown} cannot be read: {e}"),
    })?;
    if meta.is_dir() {
        bail!("kubeconfig {shown} is a directory; give the path of a kubeconfig file");
    }
    if !meta.is_file() {
        // A FIFO or a device would block or never end.
        bail!("kubeconfig {shown} is not a regular file");
    }
    if meta.len() > MAX_FILE_BYTES {
        bail!("{}", too_big(&shown, meta.len()));
    }
    let read_error = |e: std::io::Error| match e.kind() {
        ErrorKind::PermissionDenied => {
            anyhow!("kubeconfig {shown} cannot be read (permission denied)")
        }
        _ => anyhow!("kubeconfig {shown} cannot be read: {e}"),
    };
    let file = fs::File::open(path).map_err(read_error)?;
    // The size is checked again while reading: the file may grow meanwhile.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!("{}", too_big(&shown, bytes.len() as u64));
    }
    parse(&bytes).with_context(|| format!("kubeconfig {shown}"))
}

/// The largest kubeconfig read: eight times the biggest real ones seen (a
/// few MB for hundreds of clusters), and a bound on the memory used.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

fn too_big(shown: &impl fmt::Display, len: u64) -> String {
    format!(
        "kubeconfig {shown} is larger than {} MiB ({} bytes); pass --kubeconfig with a smaller file, e.g. `kubectl config view --minify --raw > parent.kubeconfig`",
        MAX_FILE_BYTES >> 20,
        len
    )
}

/// Parses one kubeconfig document and checks the rules kubectl enforces on load.
pub fn parse(bytes: &[u8]) -> Result<Kubeconfig> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| anyhow!("is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))?;
    // A UTF-8 byte-order mark is harmless; kubectl accepts it too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        bail!("is empty; give a kubeconfig with at least one context");
    }
    let config = match fast_parse(text) {
        Some(config) => config,
        None => careful_parse(text)?,
    };
    if let Some(kind) = &config.kind
        && kind != "Config"
    {
        bail!("has kind {kind:?}; a kubeconfig has kind Config");
    }
    if config.kind.is_none()
        && config.api_version.is_none()
        && config.current_context.is_none()
        && config.clusters.is_empty()
        && config.users.is_empty()
        && config.contexts.is_empty()
    {
        bail!("is not a kubeconfig (no clusters, users, contexts or current-context)");
    }
    no_duplicates("cluster", config.clusters.iter().map(|c| c.name.as_str()))?;
    no_duplicates("user", config.users.iter().map(|u| u.name.as_str()))?;
    no_duplicates("context", config.contexts.iter().map(|c| c.name.as_str()))?;
    Ok(config)
}

/// The fast path: serde-saphyr streams the document into the typed model
/// without an intermediate event list, about twice as fast as serde_yaml and
/// with half the memory on a large kubeconfig (see the README's Performance
/// section). It enforces the same kind of budget itself (nodes, nesting,
/// aliases). `None` sends the document down [`careful_parse`]: whatever the
/// fast path refuses (or a document with merge keys, which it would apply
/// differently) is judged there, so every error message, and every document
/// accepted, is the careful path's.
fn fast_parse(text: &str) -> Option<Kubeconfig> {
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
pub fn parse_value(text: &str) -> Result<serde_yaml::Value> {
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
fn careful_parse(text: &str) -> Result<Kubeconfig> {
    check_budget(text)?;
    let invalid = |e: serde_yaml::Error| anyhow!("is not a valid kubeconfig: {}", redact_values(&e.to_string()));
    let mut config: Kubeconfig = serde_yaml::from_str(text).map_err(invalid)?;
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

/// kubectl refuses a file with two entries of one name in a list; so do we.
fn no_duplicates<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            bail!("has two {kind} entries named {name:?}; kubectl refuses such a file too: rename or remove one");
        }
    }
    Ok(())
}

/// Merges files with kubectl's rules (client-go `ClientConfigLoadingRules.Load`):
/// "the first file to set a particular map key wins and map key's value is
/// never changed", and `current-context` comes from the first file that sets it.
pub fn merge(files: Vec<(PathBuf, Kubeconfig)>) -> Loaded {
    let mut loaded = Loaded::default();
    let mut clusters = HashSet::new();
    let mut users = HashSet::new();
    let mut contexts = HashSet::new();
    for (index, (path, config)) in files.into_iter().enumerate() {
        loaded.files.push(path);
        if loaded.current_context.is_none() {
            loaded.current_context = config.current_context.filter(|c| !c.is_empty());
        }
        for item in config.clusters {
            if clusters.insert(item.name.clone()) {
                loaded.clusters.push(Sourced { item, file: index });
            }
        }
        for item in config.users {
            if users.insert(item.name.clone()) {
                loaded.users.push(Sourced { item, file: index });
            }
        }
        for item in config.contexts {
            if contexts.insert(item.name.clone()) {
                loaded.contexts.push(Sourced { item, file: index });
            }
        }
    }
    loaded
}

/// Like kubectl, resolve relative to the working directory without following symlinks.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A merge target read on the fast path is written back with every scalar
    /// meaning to kubectl what it meant before.
    #[test]
    fn merge_targets_keep_their_scalars() {
        let text = "kind: Config\npreferences:\n  a: 0123\n  b: yes\n  c: ~\n  d: 1e3\n  e: 0x1F\n  f: \"0123\"\n  g: 1.50\n  h: 12:30\n  i: 2001-12-14\n  j: .inf\n  k: -0\n  l: +1\n";
        let fast = parse_value(text).unwrap();
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
            match (fast_parse(doc), careful_parse(doc)) {
                (Some(f), Ok(c)) => assert_eq!(format!("{f:?}"), format!("{c:?}"), "{doc}"),
                (Some(f), Err(e)) => panic!("fast path accepted what the careful path refuses ({e:#}): {doc}\n{f:?}"),
                (None, _) => {}
            }
        }
        // YAML 1.1's `yes` is a boolean to kubectl (go-yaml v2) and to the fast
        // path, in typed fields and in kept values alike; serde_yaml alone reads
        // it as a string (so a kept `yes` stays a string on the careful path).
        let yes = fast_parse("clusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: yes}\n");
        assert_eq!(yes.unwrap().clusters[0].cluster.insecure_skip_tls_verify, Some(true));
    }

    fn config(text: &str) -> Kubeconfig {
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn flag_beats_env_and_home() {
        let s = parent_source(Some(Path::new("/a")), Some("/b".into()), Some(PathBuf::from("/h"))).unwrap();
        assert_eq!(s, ParentSource::Flag("/a".into()));
    }

    #[test]
    fn env_list_is_split_and_empty_items_dropped() {
        let s = parent_source(None, Some("/a::/b".into()), Some("/h".into())).unwrap();
        assert_eq!(s, ParentSource::EnvList(vec!["/a".into(), "/b".into()]));
    }

    #[test]
    fn empty_env_falls_back_to_home() {
        let s = parent_source(None, Some("".into()), Some("/h".into())).unwrap();
        assert_eq!(s, ParentSource::Home("/h/.kube/config".into()));
        assert!(parent_source(None, None, None).is_err());
    }

    #[test]
    fn first_file_wins_per_name_and_for_current_context() {
        let a = config("clusters:\n- name: c\n  cluster: {server: https://a}\ncontexts: []\n");
        let b = config(
            "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://b}\n- name: d\n  cluster: {server: https://d}\n",
        );
        let c = config("current-context: y\n");
        let m = merge(vec![("/1/a".into(), a), ("/2/b".into(), b), ("/3/c".into(), c)]);
        assert_eq!(m.current_context.as_deref(), Some("x"));
        assert_eq!(m.clusters.len(), 2);
        assert_eq!(m.clusters[0].item.cluster.server.as_deref(), Some("https://a"));
        assert_eq!(m.clusters[0].file, 0);
        assert_eq!(m.clusters[1].file, 1);
        assert_eq!(m.base_dir(1), Path::new("/2"));
    }

    #[test]
    fn null_lists_are_empty() {
        let c = config("apiVersion: v1\nkind: Config\nclusters: null\nusers: ~\ncontexts:\n");
        assert!(c.clusters.is_empty() && c.users.is_empty() && c.contexts.is_empty());
    }

    #[test]
    fn rejects_what_kubectl_rejects() {
        for (text, needle) in [
            ("", "is empty"),
            ("  \n", "is empty"),
            ("kind: Pod\n", "kind \"Pod\""),
            ("foo: bar\n", "not a kubeconfig"),
            ("- a\n- b\n", "not a valid kubeconfig"),
            ("clusters: [\n", "not a valid kubeconfig"),
            ("users:\n- name: u\n  user: {}\n- name: u\n  user: {}\n", "two user entries named \"u\""),
            ("clusters:\n- name: c\n  cluster: {server: [a]}\n", "clusters[0].cluster.server"),
        ] {
            let err = format!("{:#}", parse(text.as_bytes()).unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        assert!(format!("{:#}", parse(b"\xff\xfe").unwrap_err()).contains("not UTF-8"));
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        // 1000 x 1000 x 1000 scalars: serde_yaml's own repetition limit lets
        // hundreds of millions through before it stops.
        let mut text = String::from("kind: Config\nusers:\n- name: u\n  user:\n    x0: &a0\n");
        text.push_str(&"    - lol\n".repeat(1000));
        for i in 1..4 {
            text.push_str(&format!("    x{i}: &a{i}\n"));
            text.push_str(&format!("    - *a{}\n", i - 1).repeat(1000));
        }
        let start = std::time::Instant::now();
        let err = format!("{:#}", parse(text.as_bytes()).unwrap_err());
        assert!(err.contains("uses YAML aliases that expand to more than"), "{err}");
        assert!(err.contains("(at users[0].user.x"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
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

    #[test]
    fn wrong_types_name_the_field_but_not_the_value() {
        for (text, needle) in [
            (
                "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: SECRET-value-1}\n",
                "clusters[0].cluster.insecure-skip-tls-verify: invalid type: string <value>, expected a boolean",
            ),
            ("clusters: \"SECRET-value-1\"\n", "clusters: invalid type: string <value>, expected a sequence"),
            ("current-context: [SECRET-value-1]\n", "current-context: invalid type: sequence"),
            (
                "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: 1234567}\n",
                "verify: invalid type: integer <value>",
            ),
            ("users:\n- name: u\n  user: {token: a, token: SECRET-value-1}\n", "duplicate entry with key \"token\""),
            ("kind: Config\nkind: Config\n", "duplicate field `kind`"),
        ] {
            let err = format!("{:#}", parse(text.as_bytes()).unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(!err.contains("SECRET") && !err.contains("1234567"), "{err}");
        }
    }

    #[test]
    fn files_over_the_limit_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge");
        fs::File::create(&path).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = format!("{:#}", read_file(&path).unwrap_err());
        assert!(err.contains("huge is larger than 64 MiB"), "{err}");
    }

    #[test]
    fn accepts_bom_json_and_crlf() {
        assert_eq!(config("\u{feff}current-context: a\n").current_context.as_deref(), Some("a"));
        assert_eq!(config("{\"current-context\": \"a\"}").current_context.as_deref(), Some("a"));
        assert_eq!(config("current-context: a\r\nkind: Config\r\n").current_context.as_deref(), Some("a"));
    }
}
