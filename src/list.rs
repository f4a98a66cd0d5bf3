//! `list`: the ManagedClusters of the parent, from one paginated LIST.

use std::io::Write;

use anyhow::{Context as _, Result};
use serde_yaml::Value;

use crate::cli::{ListArgs, ListFormat};
use crate::cluster::managed::{self, ManagedCluster, Query};
use crate::cluster::{actions, client};
use crate::credentials::oidc::{self, Source};
use crate::error::usage;
use crate::kubeconfig::{load, yaml};
use crate::names;
use crate::terminal::escape;

/// The widest a table cell gets, in characters: one cluster's field (written
/// by its agent) must not widen every row. Longer cells end in [`MORE`];
/// `-o json|yaml` carry the whole value.
pub const MAX_CELL: usize = 64;
/// The end of a shortened cell.
pub const MORE: &str = "...";

pub fn run(args: ListArgs) -> Result<()> {
    crate::error::refuse_dash("--kubeconfig", args.parent_config.kubeconfig.as_deref())?;
    let source = load::parent_source_from_env(args.parent_config.kubeconfig.as_deref())?;
    // Our own loader first: its errors name the file and the fix.
    let loaded = crate::generate::load_parent(&source)?;
    let selection = crate::kubeconfig::select::select(&loaded, args.parent_config.context.as_deref())
        .map_err(|e| e.naming("--context"))?;
    let oidc = match &args.oidc_audience {
        Some(audience) => Some(
            Source::new(
                audience,
                args.oidc_token_env.as_deref(),
                args.oidc_token_file.as_deref(),
                ["--oidc-audience", "--oidc-token-env", "--oidc-token-file"],
            )
            .map_err(|e| usage(format!("{e:#}")))?,
        ),
        None => None,
    };
    let kubeconfig = client::kubeconfig_for(&selection)?;
    if let Some(ns) = &args.namespace {
        names::check_namespace(ns, "-n/--namespace").map_err(|e| usage(format!("{e:#}")))?;
    }
    if let Some(selector) = &args.selector {
        names::check_selector(selector, "-l/--selector").map_err(|e| usage(format!("{e:#}")))?;
    }
    let query = Query {
        namespace: args.namespace.clone(),
        label_selector: names::selector(args.selector.as_deref()),
        field_selector: None,
    };
    let timeout = args.timeout;
    let listing = client::block_on(async {
        // The CI job's token in place of the context's user (`--oidc-audience`).
        let token = match &oidc {
            Some(source) => Some(actions::fetch(source, timeout).await.context("--oidc-audience")?),
            None => None,
        };
        let kubeconfig = client::with_bearer(kubeconfig, token.as_ref().map(|t| &t.token));
        let conn = client::connect(kubeconfig, None, timeout).await?;
        managed::list(&conn, &query).await.map_err(|e| match (&oidc, &token) {
            (Some(source), Some(token)) if client::api_status(&e) == Some(401) => oidc::refused(source, token),
            _ => e,
        })
    })??;
    if listing.clusters.is_empty() {
        eprintln!("No ManagedClusters found.");
    }
    let text = render(&listing.clusters, args.output)?;
    std::io::stdout().lock().write_all(text.as_bytes()).context("writing to stdout")
}

/// The clusters as a table, or as `{items: [...]}` in JSON or YAML.
pub fn render(clusters: &[ManagedCluster], format: ListFormat) -> Result<String> {
    match format {
        ListFormat::Table => Ok(table(clusters)),
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&serde_json::json!({ "items": clusters }))?;
            Ok(format!("{}\n", crate::terminal::escape_json(&text)))
        }
        ListFormat::Yaml => {
            let value: Value = serde_yaml::to_value(serde_json::json!({ "items": clusters }))?;
            Ok(yaml::to_yaml(&value))
        }
    }
}

/// Aligned columns, as kubectl prints them. Every cell is escaped (fields are
/// written by other parties) and at most [`MAX_CELL`] characters wide.
fn table(clusters: &[ManagedCluster]) -> String {
    let header = ["NAMESPACE", "NAME", "CLUSTER-ID", "TYPE", "SYNC-MODE", "K8S-VERSION", "READY", "APISERVER-URL"];
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            [
                &c.namespace,
                &c.name,
                &c.cluster_id,
                &c.cluster_type,
                &c.sync_mode,
                &c.kubernetes_version,
                &c.ready,
                &c.apiserver_url,
            ]
            .map(|field| cell(field))
            .to_vec()
        })
        .collect();
    columns(&header, &rows)
}

/// `rows` (cells already made with [`cell`]) under `header`, in columns three
/// spaces apart, without trailing blanks.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths = vec![0; header.len()];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 3));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A field as a table cell: escaped, then cut to [`MAX_CELL`] characters.
pub fn cell(field: &str) -> String {
    let shown = escape(field);
    match shown.char_indices().nth(MAX_CELL - MORE.len()) {
        Some((cut, _)) if shown.chars().count() > MAX_CELL => format!("{}{MORE}", &shown[..cut]),
        _ => shown.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mc(name: &str) -> ManagedCluster {
        ManagedCluster {
            namespace: "clusternet-abcde".into(),
            name: name.into(),
            cluster_id: "dc91021d-2361-4f6d-a404-7c33b9e01118".into(),
            cluster_type: "EdgeCluster".into(),
            sync_mode: "Pull".into(),
            kubernetes_version: "v1.32.1".into(),
            ready: "True".into(),
            apiserver_url: "https://child:6443".into(),
        }
    }

    #[test]
    fn table_is_aligned() {
        let text = render(&[mc("a"), mc("longer-name")], ListFormat::Table).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAMESPACE          NAME          CLUSTER-ID"));
        assert_eq!(lines[1].find("dc91021d"), lines[0].find("CLUSTER-ID"));
    }

    #[test]
    fn the_json_shape_in_help_is_the_real_one() {
        let json: serde_json::Value = serde_json::from_str(&render(&[mc("a")], ListFormat::Json).unwrap()).unwrap();
        let item = json["items"][0].as_object().unwrap();
        let help = crate::cli::LIST_HELP;
        let start = help.find('{').unwrap();
        let end = help.rfind('}').unwrap();
        let shown: serde_json::Value = serde_json::from_str(&help[start..=end]).unwrap();
        let shown = shown["items"][0].as_object().unwrap();
        assert_eq!(shown.keys().collect::<Vec<_>>(), item.keys().collect::<Vec<_>>());
        assert!(shown.values().chain(item.values()).all(|v| v.is_string()));
    }

    #[test]
    fn cells_are_escaped_and_cut_and_rows_stay_bounded() {
        let mut hostile = mc("evil");
        hostile.kubernetes_version = "v1\x1b]0;owned\x07\x1b[2J\r\u{202E}".into();
        hostile.apiserver_url = "x".repeat(70_000);
        let text = render(&[mc("a"), hostile.clone()], ListFormat::Table).unwrap();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n') && !text.contains('\u{202E}'), "{text:?}");
        assert!(text.contains("v1^[]0;owned\\u{0007}^[[2J\\r\\u{202E}"), "{text}");
        let url = format!("{}{MORE}", "x".repeat(MAX_CELL - MORE.len()));
        assert!(text.lines().nth(2).unwrap().ends_with(&format!("   {url}")), "{text}");
        assert!(text.lines().all(|l| l.chars().count() < 8 * (MAX_CELL + 3)), "{text}");
        // Exactly MAX_CELL characters are kept whole.
        assert_eq!(cell(&"y".repeat(MAX_CELL)), "y".repeat(MAX_CELL));
        assert_eq!(cell(&"y".repeat(MAX_CELL + 1)).chars().count(), MAX_CELL);
        // Machine outputs keep the value whole and valid.
        let json: serde_json::Value = serde_json::from_str(&render(&[hostile], ListFormat::Json).unwrap()).unwrap();
        assert_eq!(json["items"][0]["apiserverURL"].as_str().unwrap().len(), 70_000);
    }

    #[test]
    fn json_and_yaml_carry_every_field() {
        let json: serde_json::Value = serde_json::from_str(&render(&[mc("a")], ListFormat::Json).unwrap()).unwrap();
        assert_eq!(json["items"][0]["apiserverURL"], "https://child:6443");
        assert_eq!(json["items"][0]["kubernetesVersion"], "v1.32.1");
        let yaml: serde_json::Value = serde_yaml::from_str(&render(&[mc("a")], ListFormat::Yaml).unwrap()).unwrap();
        assert_eq!(yaml, json);
    }
}
