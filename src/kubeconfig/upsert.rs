//! Merging generated entries into an existing kubeconfig, as a raw YAML value
//! so that everything else in the file survives: unknown fields, extensions,
//! relative paths (never absolutised), the order of entries.

use anyhow::{Result, bail};
use serde_yaml::{Mapping, Value};

use crate::kubeconfig::emit::{Entries, document, named};

/// Merges `entries` into `doc` (the parsed target; `None` for a new or empty
/// file). An entry with a generated name is replaced where it stands, a new one
/// is appended. `current-context` becomes `current` only with `set_current`, or
/// when the file has none (a new file, say).
pub fn apply(doc: Option<Value>, entries: &[Entries], current: Option<&str>, set_current: bool) -> Result<Value> {
    let Some(doc) = doc.filter(|d| !d.is_null()) else {
        return Ok(document(entries, current));
    };
    let Value::Mapping(mut root) = doc else {
        bail!("is not a kubeconfig (its top level is not a mapping); give a kubeconfig file or a new path");
    };
    check_is_kubeconfig(&root)?;
    for entry in entries {
        for (list, kind, body) in [
            ("clusters", "cluster", &entry.cluster),
            ("contexts", "context", &entry.context),
            ("users", "user", &entry.user),
        ] {
            upsert(&mut root, list, kind, &entry.name, body)?;
        }
    }
    let has_current = matches!(root.get("current-context"), Some(Value::String(s)) if !s.is_empty());
    if let Some(current) = current
        && (set_current || !has_current)
    {
        root.insert("current-context".into(), current.into());
    }
    Ok(Value::Mapping(root))
}

fn check_is_kubeconfig(root: &Mapping) -> Result<()> {
    match root.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k == "Config" => {}
        Some(_) => bail!("has a kind other than Config; it is not a kubeconfig"),
    }
    let known = ["apiVersion", "kind", "clusters", "contexts", "users", "current-context", "preferences"];
    // `{}` is an empty kubeconfig; a file with only other fields is probably
    // another tool's file given by mistake, and is left alone.
    if !root.is_empty() && !known.iter().any(|k| root.contains_key(*k)) {
        bail!("is not a kubeconfig (no clusters, contexts, users or kind); give a kubeconfig file or a new path");
    }
    Ok(())
}

/// Replaces the entry named `name` in `root[list]`, or appends it. Refuses
/// lists kubectl would refuse.
pub fn upsert(root: &mut Mapping, list: &str, kind: &str, name: &str, body: &Mapping) -> Result<()> {
    let items = match root.get_mut(list) {
        None | Some(Value::Null) => {
            root.insert(list.into(), Value::Sequence(Vec::new()));
            match root.get_mut(list) {
                Some(Value::Sequence(items)) => items,
                _ => bail!("{list} could not be created"),
            }
        }
        Some(Value::Sequence(items)) => items,
        Some(_) => bail!("field {list} is not a list; fix the file first"),
    };
    let mut found = None;
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        // A missing name is the empty name, as for kubectl.
        let item_name = match item.get("name") {
            Some(Value::String(n)) => n.as_str(),
            None | Some(Value::Null) => "",
            _ => bail!("{list}[{index}] has a name that is not a string; fix the file first"),
        };
        // kubectl refuses a file with two entries of one name; so do we,
        // rather than write such a file back.
        if !seen.insert(item_name) {
            bail!("has two {kind} entries named {item_name:?}; kubectl refuses such a file too: fix it first");
        }
        if item_name == name {
            found = Some(index);
        }
    }
    let entry = named(kind, name, body);
    match found {
        Some(index) => items[index] = entry,
        None => items.push(entry),
    }
    Ok(())
}

/// Removes the entries named `name` from `root[list]`; true when one was there.
pub fn remove(root: &mut Mapping, list: &str, name: &str) -> bool {
    let Some(Value::Sequence(items)) = root.get_mut(list) else {
        return false;
    };
    let before = items.len();
    items.retain(|item| item.get("name").and_then(Value::as_str).unwrap_or_default() != name);
    items.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::plan::{Action, merge_plan};
    use crate::kubeconfig::yaml::to_yaml;

    fn entries(name: &str) -> Entries {
        Entries {
            name: name.into(),
            cluster: serde_yaml::from_str("server: https://new").unwrap(),
            context: serde_yaml::from_str(&format!("cluster: {name}\nuser: {name}")).unwrap(),
            user: serde_yaml::from_str("username: system:anonymous").unwrap(),
        }
    }

    const EXISTING: &str = "\
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: parent
  cluster:
    certificate-authority: ./ca.crt
    server: https://parent
    extensions:
    - name: x
      extension: {a: 1}
- name: gen
  cluster: {server: https://old}
contexts:
- name: admin
  context: {cluster: parent, user: admin}
users:
- name: admin
  user: {client-certificate: rel/admin.crt, client-key: rel/admin.key, unknown-field: kept}
preferences: {colors: true}
some-unknown-top-level: 1
";

    #[test]
    fn replaces_in_place_appends_and_keeps_the_rest() {
        let doc: Value = serde_yaml::from_str(EXISTING).unwrap();
        let plan = merge_plan(Some(doc.clone()), &[entries("gen")], Some("gen"), false).unwrap();
        assert_eq!(
            plan.changes.iter().map(|c| (c.kind, c.action)).collect::<Vec<_>>(),
            [("cluster", Action::Updated), ("context", Action::Added), ("user", Action::Added)]
        );
        assert_eq!(plan.kept, [1, 1, 1]);
        let out = plan.doc;
        assert_eq!(out["clusters"][1]["cluster"]["server"], Value::from("https://new"));
        assert_eq!(out["clusters"][0], doc["clusters"][0]);
        assert_eq!(out["users"][0], doc["users"][0]);
        assert_eq!(out["current-context"], Value::from("admin"));
        assert_eq!(out["some-unknown-top-level"], Value::from(1));
        let text = to_yaml(&out);
        assert!(
            text.contains("certificate-authority: \"./ca.crt\"") && text.contains("client-certificate: rel/admin.crt")
        );
    }

    #[test]
    fn current_context_only_when_asked_or_unset() {
        let doc: Value = serde_yaml::from_str(EXISTING).unwrap();
        let out = apply(Some(doc), &[entries("gen")], Some("gen"), true).unwrap();
        assert_eq!(out["current-context"], Value::from("gen"));
        let fresh = merge_plan(None, &[entries("gen")], Some("gen"), false).unwrap();
        assert_eq!(fresh.doc["current-context"], Value::from("gen"));
        assert!(fresh.created && fresh.changes.iter().all(|c| c.action == Action::Added));
    }

    #[test]
    fn refuses_what_is_not_a_kubeconfig() {
        for (text, needle) in [
            ("- a\n", "top level is not a mapping"),
            ("foo: bar\n", "not a kubeconfig"),
            ("kind: Pod\n", "kind other than Config"),
            ("kind: Config\nclusters: 5\n", "clusters is not a list"),
            ("kind: Config\nusers:\n- {name: [x], user: {}}\n", "users[0] has a name that is not a string"),
            ("kind: Config\nclusters:\n- {name: gen}\n- {name: gen}\n", "two cluster entries"),
            ("kind: Config\nusers:\n- {name: other}\n- {name: other}\n", "two user entries named \"other\""),
        ] {
            let doc: Value = serde_yaml::from_str(text).unwrap();
            let err = format!("{:#}", apply(Some(doc), &[entries("gen")], Some("gen"), false).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
