//! `list`: the ManagedClusters of the parent, from one paginated LIST.

use std::io::Write;

use anyhow::{Context as _, Result};
use serde_yaml::Value;

use crate::cli::{ListArgs, ListFormat};
use crate::cluster::client;
use crate::cluster::managed::{self, ManagedCluster, Query};
use crate::kubeconfig::{load, yaml};

pub fn run(args: ListArgs) -> Result<()> {
    crate::error::refuse_dash("--kubeconfig", args.parent_config.kubeconfig.as_deref())?;
    let source = load::parent_source_from_env(args.parent_config.kubeconfig.as_deref())?;
    // Our own loader first: its errors name the file and the fix.
    let loaded = crate::generate::load_parent(&source)?;
    crate::kubeconfig::select::select(&loaded, args.parent_config.context.as_deref(), "--context")?;
    let query =
        Query { namespace: args.namespace.clone(), label_selector: args.selector.clone(), field_selector: None };
    let timeout = args.timeout;
    let listing = client::block_on(async {
        let conn = client::connect_source(&source, args.parent_config.context.as_deref(), timeout).await?;
        managed::list(&conn, &query).await
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
            let mut text = serde_json::to_string_pretty(&serde_json::json!({ "items": clusters }))?;
            text.push('\n');
            Ok(text)
        }
        ListFormat::Yaml => {
            let value: Value = serde_yaml::to_value(serde_json::json!({ "items": clusters }))?;
            Ok(yaml::to_yaml(&value))
        }
    }
}

fn table(clusters: &[ManagedCluster]) -> String {
    let header = ["NAMESPACE", "NAME", "CLUSTER-ID", "TYPE", "SYNC-MODE", "K8S-VERSION", "READY", "APISERVER-URL"];
    let rows: Vec<[&str; 8]> = clusters
        .iter()
        .map(|c| {
            [
                c.namespace.as_str(),
                c.name.as_str(),
                c.cluster_id.as_str(),
                c.cluster_type.as_str(),
                c.sync_mode.as_str(),
                c.kubernetes_version.as_str(),
                c.ready.as_str(),
                c.apiserver_url.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
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
    fn json_and_yaml_carry_every_field() {
        let json: serde_json::Value = serde_json::from_str(&render(&[mc("a")], ListFormat::Json).unwrap()).unwrap();
        assert_eq!(json["items"][0]["apiserverURL"], "https://child:6443");
        assert_eq!(json["items"][0]["kubernetesVersion"], "v1.32.1");
        let yaml: serde_json::Value = serde_yaml::from_str(&render(&[mc("a")], ListFormat::Yaml).unwrap()).unwrap();
        assert_eq!(yaml, json);
    }
}
