//! Reading kubeconfig files, and kubectl's rules for merging a KUBECONFIG list.
//!
//! File I/O stays in [`read_file`]; [`from_bytes`] and [`combine`] are pure.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};

use super::model::{Kubeconfig, NamedCluster, NamedContext, NamedUser};
use crate::fs::{Holds, MAX_FILE_BYTES};

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

/// [`parent_source`] with this process's KUBECONFIG and HOME.
pub fn parent_source_from_env(flag: Option<&Path>) -> Result<ParentSource> {
    parent_source(flag, std::env::var_os("KUBECONFIG"), std::env::var_os("HOME").map(PathBuf::from))
}

/// Reads and merges the parent kubeconfig from `source`.
pub fn load_parent(source: &ParentSource) -> Result<Loaded> {
    match source {
        ParentSource::Flag(path) => {
            let config = read_file(path).context("--kubeconfig")?;
            Ok(combine(vec![(absolute(path), config)]))
        }
        ParentSource::Home(path) => {
            if !path.exists() {
                bail!(
                    "no parent kubeconfig: {} does not exist and KUBECONFIG is not set; pass --kubeconfig PATH",
                    path.display()
                );
            }
            let config = read_file(path)?;
            Ok(combine(vec![(absolute(path), config)]))
        }
        ParentSource::EnvList(paths) => {
            let mut files = Vec::new();
            for path in paths {
                // kubectl skips files of the list that do not exist (os.Stat,
                // which follows symlinks: a dangling one is skipped too); any
                // other problem with a file that is there is an error.
                if matches!(fs::metadata(path), Err(e) if e.kind() == ErrorKind::NotFound) {
                    continue;
                }
                let config = read_file(path).context("KUBECONFIG")?;
                files.push((absolute(path), config));
            }
            if files.is_empty() {
                bail!(
                    "no parent kubeconfig: none of the files in KUBECONFIG exists ({}); pass --kubeconfig PATH or fix KUBECONFIG",
                    describe_missing(paths)
                );
            }
            Ok(combine(files))
        }
    }
}

/// The files of a KUBECONFIG list for a message, the relative ones with the
/// working directory they were looked for in.
pub fn describe_missing(paths: &[PathBuf]) -> String {
    const SHOWN: usize = 8;
    let mut names: Vec<String> = paths.iter().take(SHOWN).map(|p| p.display().to_string()).collect();
    if paths.len() > SHOWN {
        names.push(format!("and {} more", paths.len() - SHOWN));
    }
    let mut text = names.join(", ");
    if paths.iter().any(|p| p.is_relative())
        && let Ok(cwd) = std::env::current_dir()
    {
        text.push_str(&format!("; relative to the working directory {}", cwd.display()));
    }
    text
}

/// Reads one kubeconfig file. Every error names the file and says what to do.
pub fn read_file(path: &Path) -> Result<Kubeconfig> {
    let bytes = crate::fs::read_bounded(path, MAX_FILE_BYTES, Holds::Kubeconfig)?;
    from_bytes(&bytes).with_context(|| format!("kubeconfig {}", path.display()))
}

/// Parses one kubeconfig document and checks the rules kubectl enforces on
/// load. A document without content (empty, comments only, `---`) is an empty
/// kubeconfig, as for kubectl; so is one with unknown fields only.
pub fn from_bytes(bytes: &[u8]) -> Result<Kubeconfig> {
    let text = super::yaml::text(bytes)?;
    let value = super::yaml::value(&text)?;
    match &value {
        serde_yaml::Value::Null => return Ok(Kubeconfig::default()),
        serde_yaml::Value::Mapping(_) => {}
        _ => bail!("is not a kubeconfig (its top level is not a mapping)"),
    }
    let config: Kubeconfig = super::yaml::into_typed(value, "kubeconfig", || super::yaml::value(&text))?;
    check(&config)?;
    Ok(config)
}

/// What kubectl checks once a kubeconfig is decoded: its kind and version,
/// and one entry per name in each list.
pub fn check(config: &Kubeconfig) -> Result<()> {
    if let Some(kind) = config.kind.as_deref().filter(|k| !k.is_empty())
        && kind != "Config"
    {
        bail!("has kind {kind:?}; a kubeconfig has kind Config");
    }
    if let Some(version) = config.api_version.as_deref().filter(|v| !v.is_empty())
        && version != "v1"
    {
        bail!("has apiVersion {version:?}; kubectl reads kubeconfigs of apiVersion v1 only");
    }
    no_duplicates("cluster", config.clusters.iter().map(|c| c.name.as_str()))?;
    no_duplicates("user", config.users.iter().map(|u| u.name.as_str()))?;
    no_duplicates("context", config.contexts.iter().map(|c| c.name.as_str()))
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
pub fn combine(files: Vec<(PathBuf, Kubeconfig)>) -> Loaded {
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

    fn config(text: &str) -> Kubeconfig {
        from_bytes(text.as_bytes()).unwrap()
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
        let c = config("current-context: z\n");
        let m = combine(vec![("/1/a".into(), a), ("/2/b".into(), b), ("/3/c".into(), c)]);
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
            ("kind: Pod\n", "kind \"Pod\""),
            ("apiVersion: v2\n", "apiVersion \"v2\""),
            ("- a\n- b\n", "top level is not a mapping"),
            ("hello\n", "top level is not a mapping"),
            ("clusters: [\n", "not valid YAML"),
            ("clusters: {}\n", "clusters: invalid type: map"),
            ("current-context: y\n", "current-context: invalid type: boolean"),
            ("a: .inf\n", "kubectl cannot read"),
            ("~: x\n", "mapping key is empty or null"),
            ("clusters:\n- name: c\n  cluster: {certificate-authority-data: Q0E}\n", "is not base64"),
            (
                "users:\n- name: u\n  user: {client-key-data: 5}\n",
                "users[0].user.client-key-data: invalid type: integer",
            ),
            (
                "users:\n- name: u\n  user: {exec: {provideClusterInfo: \"true\"}}\n",
                "users[0].user.exec.provideClusterInfo: invalid type: string",
            ),
            ("clusters:\n- name: c\n  cluster: {extensions: [{name: a}, {name: a}]}\n", "two extensions are named"),
            ("users:\n- name: u\n  user: {}\n- name: u\n  user: {}\n", "two user entries named \"u\""),
            ("clusters:\n- name: c\n  cluster: {server: [a]}\n", "clusters[0].cluster.server"),
        ] {
            let err = format!("{:#}", from_bytes(text.as_bytes()).unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        assert!(format!("{:#}", from_bytes(b"\xfe\xfe").unwrap_err()).contains("not UTF-8"));
    }

    /// What kubectl reads without complaint: an empty kubeconfig, the last of
    /// two equal keys, unknown fields.
    #[test]
    fn accepts_what_kubectl_accepts() {
        for text in ["", "  \n", "# c\n", "---\n", "{}\n", "foo: bar\n", "kind: \"\"\napiVersion: \"\"\n"] {
            assert!(config(text).contexts.is_empty(), "{text:?}");
        }
        let c = config("kind: Config\nkind: Config\nusers:\n- name: u\n  user: {token: a, token: b}\n");
        assert_eq!(c.users[0].user.get("token"), Some(&serde_yaml::Value::from("b")));
        let c = config("clusters:\n- cluster: {server: https://x, certificate-authority-data: \"Q0\\nE=\"}\n");
        assert_eq!(c.clusters[0].name, "");
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
        let err = format!("{:#}", from_bytes(text.as_bytes()).unwrap_err());
        assert!(err.contains("uses YAML aliases that expand to more than"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
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
        ] {
            let err = format!("{:#}", from_bytes(text.as_bytes()).unwrap_err());
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
