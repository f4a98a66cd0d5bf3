//! What a write does to a kubeconfig, computed before anything is written:
//! the same plan is carried out by the real write ([`super::write`]) and shown
//! by `--dry-run`, so the two cannot disagree.

use std::collections::HashMap;

use anyhow::Result;
use serde_yaml::Value;

use super::emit::Entries;
use super::upsert::apply;

/// What happens to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Updated,
    Unchanged,
    /// In the old file only (a replaced `--output-file`).
    Removed,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Removed => "removed",
        }
    }
}

/// One entry (cluster, context or user) and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `cluster`, `context` or `user`.
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
    /// Added or updated: what is new, secrets left out (only names, flags and
    /// URLs are shown).
    pub details: Vec<String>,
}

/// A write, fully decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The document that is written.
    pub doc: Value,
    /// The generated entries first (cluster, context, user each), then the
    /// removed ones.
    pub changes: Vec<Change>,
    /// Entries of the old file that the write leaves as they are, per kind.
    pub kept: [usize; 3],
    pub current_before: Option<String>,
    pub current_after: Option<String>,
    /// No file (or an empty one) before.
    pub created: bool,
}

const KINDS: [(&str, &str); 3] = [("clusters", "cluster"), ("contexts", "context"), ("users", "user")];

/// `merge` of `entries` into the parsed target `existing` (`None`: no file or
/// an empty one).
pub fn merge_plan(existing: Option<Value>, entries: &[Entries], current: Option<&str>, set: bool) -> Result<Plan> {
    let existing = existing.filter(|d| !d.is_null());
    if let Some(doc) = &existing {
        refuse_other_cluster(doc, entries)?;
    }
    let generated: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // A merge replaces or appends the generated entries and may set the
    // current context; every other entry stays as it is (see `upsert`). So
    // only those are kept from before, not a copy of a shared kubeconfig
    // that may hold thousands of entries.
    let before = existing.as_ref().map(|doc| only(doc, &generated));
    let doc = apply(existing, entries, current, set)?;
    Ok(compare(before.as_ref(), doc, &generated, Scope::Generated))
}

/// An entry of the target generated for another cluster ID than the entry of
/// the same name that would replace it: two ManagedClusters of one name in
/// two namespaces get the same default name, and a merge must not silently
/// swap one for the other.
#[derive(Debug)]
pub struct OtherCluster {
    pub kind: &'static str,
    pub name: String,
    pub was: String,
    pub now: String,
}

impl std::fmt::Display for OtherCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "has the {} {:?} generated for cluster ID {}, not {}: it is not replaced by another cluster's entry",
            self.kind,
            self.name,
            crate::terminal::escape(&self.was),
            self.now
        )
    }
}

impl std::error::Error for OtherCluster {}

fn refuse_other_cluster(doc: &Value, entries: &[Entries]) -> Result<()> {
    let id_of = |body: Option<&serde_yaml::Mapping>| match body.map(super::provenance::find) {
        Some(super::provenance::Found::Record(record)) => record.cluster_id,
        _ => None,
    };
    for entry in entries {
        let Some(now) = id_of(Some(&entry.context)) else { continue };
        for (list, kind) in KINDS {
            let same_name = items(Some(doc), list).into_iter().filter(|(name, _)| *name == entry.name);
            for (_, item) in same_name {
                if let Some(was) = id_of(item.get(kind).and_then(Value::as_mapping)).filter(|was| *was != now) {
                    return Err(OtherCluster { kind, name: entry.name.clone(), was, now: now.clone() }.into());
                }
            }
        }
    }
    Ok(())
}

/// The generated entries of `doc` and its current context, for [`merge_plan`].
fn only(doc: &Value, generated: &[&str]) -> Value {
    let mut out = serde_yaml::Mapping::new();
    for (list, _) in KINDS {
        let kept: Vec<Value> = items(Some(doc), list)
            .into_iter()
            .filter(|(name, _)| generated.contains(name))
            .map(|(_, item)| item.clone())
            .collect();
        out.insert(list.into(), Value::Sequence(kept));
    }
    if let Some(current) = doc.get("current-context") {
        out.insert("current-context".into(), current.clone());
    }
    Value::Mapping(out)
}

/// What the `before` given to [`compare`] holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The whole old file.
    Whole,
    /// Only the generated entries: every other entry is unchanged by
    /// construction, and nothing is removed.
    Generated,
}

/// The whole file replaced by `doc` (`--output-file`, with `--force` over an
/// existing file). An old file that is not a kubeconfig counts as none.
pub fn replace_plan(existing: Option<Value>, doc: Value, entries: &[Entries]) -> Plan {
    let before = existing.filter(Value::is_mapping);
    let generated: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    compare(before.as_ref(), doc, &generated, Scope::Whole)
}

/// Every entry of `after` compared with `before`, by kind and name: the
/// generated ones (named in `generated`) and any other that changed are
/// listed, the others counted.
fn compare(before: Option<&Value>, doc: Value, generated: &[&str], scope: Scope) -> Plan {
    let mut changes = Vec::new();
    let mut removed = Vec::new();
    let mut kept = [0; 3];
    for (slot, (list, kind)) in KINDS.iter().enumerate() {
        // By name, borrowed: a shared kubeconfig may hold thousands of entries.
        let old = items(before, list);
        let new = items(Some(&doc), list);
        let old_by_name = by_name(&old);
        let new_by_name = by_name(&new);
        for &(name, body) in &new {
            if scope == Scope::Generated && !generated.contains(&name) {
                kept[slot] += 1;
                continue;
            }
            let (action, details) = match old_by_name.get(name) {
                None => (Action::Added, fields(kind, None, body)),
                Some(was) if *was == body => (Action::Unchanged, Vec::new()),
                Some(was) => (Action::Updated, fields(kind, Some(was), body)),
            };
            if action == Action::Unchanged && !generated.contains(&name) {
                kept[slot] += 1;
            } else {
                changes.push(Change { kind, name: name.to_string(), action, details });
            }
        }
        for &(name, _) in old.iter().filter(|(n, _)| !new_by_name.contains_key(n)) {
            removed.push(Change { kind, name: name.to_string(), action: Action::Removed, details: Vec::new() });
        }
    }
    changes.extend(removed);
    let current = |d: Option<&Value>| {
        d.and_then(|d| d.get("current-context")).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
    };
    Plan {
        current_before: current(before),
        current_after: current(Some(&doc)),
        created: before.is_none(),
        kept,
        changes,
        doc,
    }
}

/// `(name, body)` of each entry of a list (a missing name is `""`, as for kubectl).
fn items<'a>(doc: Option<&'a Value>, list: &str) -> Vec<(&'a str, &'a Value)> {
    let Some(Value::Sequence(items)) = doc.and_then(|d| d.get(list)) else {
        return Vec::new();
    };
    items.iter().map(|item| (item.get("name").and_then(Value::as_str).unwrap_or_default(), item)).collect()
}

/// The entries by name; the first of two with the same name, as kubectl reads them.
fn by_name<'a>(items: &[(&'a str, &'a Value)]) -> HashMap<&'a str, &'a Value> {
    let mut map = HashMap::with_capacity(items.len());
    for &(name, body) in items {
        map.entry(name).or_insert(body);
    }
    map
}

/// The fields of an entry whose value may be shown: names, flags and URLs
/// (without userinfo). Anything else is named only: a user's credentials, and
/// whatever a field this tool does not know may hold.
fn shown(kind: &str, field: &str, value: &Value) -> Option<String> {
    let text = value.as_str().map(String::from).or_else(|| value.as_bool().map(|b| b.to_string()))?;
    match (kind, field) {
        ("cluster", "server" | "proxy-url") => Some(crate::route::without_userinfo(&text)),
        ("cluster", "tls-server-name" | "insecure-skip-tls-verify" | "disable-compression") => Some(text),
        ("context", "cluster" | "user" | "namespace") => Some(text),
        ("user", "as" | "username") => Some(text),
        _ => None,
    }
}

/// What is new in an entry: `field value` (or `field old -> new`) for a field
/// that may be shown, `field (redacted)` for the others.
fn fields(kind: &str, before: Option<&Value>, after: &Value) -> Vec<String> {
    let body = |entry: Option<&Value>| entry.and_then(|e| e.get(kind)).and_then(Value::as_mapping).cloned();
    let old = body(before).unwrap_or_default();
    let new = body(Some(after)).unwrap_or_default();
    let mut keys: Vec<&Value> = new.keys().chain(old.keys().filter(|k| !new.contains_key(*k))).collect();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let field = key.as_str().unwrap_or("?");
        let (was, now) = (old.get(key), new.get(key));
        if was == now {
            continue;
        }
        let show = |v: Option<&Value>| v.and_then(|v| shown(kind, field, v));
        out.push(match (was, now, show(was), show(now)) {
            (_, None, _, _) => format!("{field} removed"),
            (None, Some(_), _, Some(v)) => format!("{field} {v}"),
            (Some(_), Some(_), Some(a), Some(b)) => format!("{field} {a} -> {b}"),
            _ => format!("{field} (redacted)"),
        });
    }
    out
}

/// A name from a file, quoted and made safe for a terminal.
fn quoted(name: &str) -> String {
    format!("\"{}\"", crate::terminal::escape(name))
}

/// The plan as `--dry-run` prints it; `target` names the flag and the file.
pub fn render(plan: &Plan, target: &str) -> String {
    let file = if plan.created { "new file" } else { "existing file" };
    let mut out = format!("dry run: {target} ({file}); nothing written\n");
    for c in &plan.changes {
        let details = if c.details.is_empty() { String::new() } else { format!(": {}", c.details.join(", ")) };
        let details = crate::terminal::escape(&details);
        out.push_str(&format!("  {} {} {}{details}\n", c.kind, quoted(&c.name), c.action.name()));
    }
    let others: Vec<String> = plan
        .kept
        .iter()
        .zip(KINDS)
        .filter(|(n, _)| **n > 0)
        .map(|(n, (_, kind))| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if !others.is_empty() {
        out.push_str(&format!("  other entries unchanged: {}\n", others.join(", ")));
    }
    let current = |c: &Option<String>| c.as_deref().map_or("(none)".to_string(), quoted);
    if plan.current_before == plan.current_after {
        out.push_str(&format!("current-context: {} (unchanged)\n", current(&plan.current_before)));
    } else {
        out.push_str(&format!(
            "current-context: {} -> {}\n",
            current(&plan.current_before),
            current(&plan.current_after)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(name: &str, token: &str) -> Entries {
        Entries {
            name: name.into(),
            cluster: serde_yaml::from_str("server: https://u:pw@parent/apis/x").unwrap(),
            context: super::super::emit::context_entry(name, None, None),
            user: serde_yaml::from_str(&format!(
                "as: clusternet\nas-user-extra: {{clusternet-token: [{token}]}}\nusername: system:anonymous"
            ))
            .unwrap(),
        }
    }

    const EXISTING: &str = "\
kind: Config
current-context: admin
clusters:
- {name: parent, cluster: {server: https://parent}}
- {name: gen, cluster: {server: https://old}}
contexts:
- {name: admin, context: {cluster: parent, user: admin}}
- {name: gen, context: {cluster: gen, user: gen}}
users:
- {name: admin, user: {token: SECRET-admin}}
";

    fn actions(plan: &Plan) -> Vec<(&str, &str, Action)> {
        plan.changes.iter().map(|c| (c.kind, c.name.as_str(), c.action)).collect()
    }

    #[test]
    fn merge_plan_lists_generated_entries_and_counts_the_rest() {
        let doc: Value = serde_yaml::from_str(EXISTING).unwrap();
        let plan = merge_plan(Some(doc), &[entries("gen", "SECRET-1")], Some("gen"), true).unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("cluster", "gen", Action::Updated),
                ("context", "gen", Action::Unchanged),
                ("user", "gen", Action::Added)
            ]
        );
        assert_eq!(plan.kept, [1, 1, 1]);
        assert_eq!((plan.current_before.as_deref(), plan.current_after.as_deref()), (Some("admin"), Some("gen")));
        assert!(!plan.created);
        assert_eq!(plan.changes[0].details, ["server https://old -> https://<user info removed>@parent/apis/x"]);
        assert_eq!(plan.changes[2].details, ["as clusternet", "as-user-extra (redacted)", "username system:anonymous"]);
        // Merged again with another token: only the user changes.
        let again = merge_plan(Some(plan.doc.clone()), &[entries("gen", "SECRET-2")], Some("gen"), false).unwrap();
        assert_eq!(
            actions(&again),
            [
                ("cluster", "gen", Action::Unchanged),
                ("context", "gen", Action::Unchanged),
                ("user", "gen", Action::Updated)
            ]
        );
        assert_eq!(again.changes[2].details, ["as-user-extra (redacted)"]);
        assert_eq!(again.current_before, again.current_after);
    }

    #[test]
    fn replace_plan_lists_what_the_old_file_loses() {
        let doc: Value = serde_yaml::from_str(EXISTING).unwrap();
        let new = super::super::emit::document(&[entries("gen", "SECRET-1")], Some("gen"));
        let plan = replace_plan(Some(doc), new, &[entries("gen", "SECRET-1")]);
        assert_eq!(
            actions(&plan),
            [
                ("cluster", "gen", Action::Updated),
                ("context", "gen", Action::Unchanged),
                ("user", "gen", Action::Added),
                ("cluster", "parent", Action::Removed),
                ("context", "admin", Action::Removed),
                ("user", "admin", Action::Removed),
            ]
        );
        assert_eq!(plan.kept, [0, 0, 0]);
        // Not a kubeconfig before: as if there were none.
        let fresh = replace_plan(Some(Value::from("text")), Value::Mapping(Default::default()), &[]);
        assert!(fresh.created && fresh.changes.is_empty());
    }

    #[test]
    fn render_redacts_secrets_and_says_nothing_is_written() {
        let doc: Value = serde_yaml::from_str(EXISTING).unwrap();
        let plan = merge_plan(Some(doc), &[entries("gen\x1b[31m", "SECRET-1")], None, false).unwrap();
        let text = render(&plan, "--merge-into /k/config");
        assert_eq!(
            text,
            "\
dry run: --merge-into /k/config (existing file); nothing written
  cluster \"gen^[[31m\" added: server https://<user info removed>@parent/apis/x
  context \"gen^[[31m\" added: cluster gen^[[31m, user gen^[[31m
  user \"gen^[[31m\" added: as clusternet, as-user-extra (redacted), username system:anonymous
  other entries unchanged: 2 clusters, 2 contexts, 1 user
current-context: \"admin\" (unchanged)
"
        );
        assert!(!text.contains("SECRET") && !text.contains("pw"), "{text}");
    }
}
