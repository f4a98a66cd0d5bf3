//! The pure side of `exec`: how output lines are tagged, how a run ends
//! (status per cluster, the exit code), and the summary (table or JSON).
//! No process, file or signal is touched here.

use std::time::Duration;

use serde::Serialize;

/// One cluster CMD runs on, as the user knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The prefix of CMD's lines and the first column of the summary.
    pub label: String,
    /// The ManagedCluster's namespace, when it was looked up.
    pub namespace: Option<String>,
    pub id: String,
    /// CLUSTERNET_CLUSTER_NAME: the ManagedCluster's name, else the ID.
    pub name: String,
}

/// How CMD ended on one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    /// Ended by this signal.
    Killed(i32),
    /// Could not be started: 127 not found, 126 anything else (as a shell),
    /// [`OWN_FAILURE`] when its kubeconfig could not be written.
    NotStarted(u8),
    /// Never started: the cluster cannot be used (`--allow-skip`), or
    /// `--fail-fast` or a signal stopped the run first (the reason says).
    Skipped,
}

impl Status {
    pub fn succeeded(self) -> bool {
        self == Status::Exited(0)
    }

    fn name(self) -> &'static str {
        match self {
            Status::Exited(0) => "succeeded",
            Status::Exited(_) => "failed",
            Status::Killed(_) => "killed",
            Status::NotStarted(_) => "not-started",
            Status::Skipped => "skipped",
        }
    }

    /// The status a shell would report for it: the exit code, 128 + signal,
    /// 126/127 for a command that could not be started.
    fn shell_code(self) -> Option<i32> {
        match self {
            Status::Exited(code) => Some(code),
            Status::Killed(signal) => Some(128 + signal),
            Status::NotStarted(code) => Some(i32::from(code)),
            Status::Skipped => None,
        }
    }
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub cluster: Cluster,
    pub status: Status,
    /// From start to end; none when skipped.
    pub duration: Option<Duration>,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// With `--results DIR`: the directory of its `stdout` and `stderr`.
    pub output: Option<std::path::PathBuf>,
}

impl Outcome {
    /// A cluster CMD never ran on, and why.
    pub fn skipped(cluster: Cluster, reason: String) -> Outcome {
        Outcome { cluster, status: Status::Skipped, duration: None, reason: Some(reason), output: None }
    }
}

/// The exit code of `exec` itself when something of its own failed (no CMD ran).
pub const OWN_FAILURE: u8 = 125;

/// The exit code of the whole run. Interrupted: 128 + the signal, as a shell
/// reports a process a signal ended. One cluster: CMD's status passed through.
/// Several: 0 when every CMD that ran succeeded, else 1. A skipped cluster
/// counts for nothing: one that cannot be used is skipped only with
/// `--allow-skip` (else exec fails before anything runs), and `--fail-fast`
/// or a signal skips the rest only after a failure or with a code of its own.
pub fn exit_code(outcomes: &[Outcome], interrupted: Option<i32>) -> u8 {
    if let Some(signal) = interrupted {
        return clamp(128 + signal);
    }
    match outcomes {
        [one] => one.status.shell_code().map_or(1, clamp),
        all if all.iter().any(|o| o.status != Status::Skipped)
            && all.iter().all(|o| o.status.succeeded() || o.status == Status::Skipped) =>
        {
            0
        }
        _ => 1,
    }
}

fn clamp(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

/// `<label>\t<line>\n`, as `parallel --tag` writes it: a last line without a
/// newline gets one, so that the next cluster's line starts on its own.
pub fn tag(label: &str, line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + line.len() + 2);
    out.extend_from_slice(label.as_bytes());
    out.push(b'\t');
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// Cuts a byte stream into lines (each with its newline). A line longer than
/// [`MAX_LINE`] is cut there, so that a stream without newlines (a binary
/// blob) is not held in memory whole.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

/// The longest line held back before it is written in pieces.
pub const MAX_LINE: usize = 64 * 1024;

impl Lines {
    /// The complete lines in what has arrived so far.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n').map(|i| start + i + 1) {
            lines.push(self.pending[start..end].to_vec());
            start = end;
        }
        while self.pending.len() - start > MAX_LINE {
            lines.push(self.pending[start..start + MAX_LINE].to_vec());
            start += MAX_LINE;
        }
        self.pending.drain(..start);
        lines
    }

    /// What is left at the end of the stream: a last line without a newline.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then_some(self.pending)
    }
}

/// The labels of the clusters: the ManagedCluster's name, `namespace/name`
/// when two clusters share a name, the ID when only the ID was given.
pub fn labels(clusters: &[(Option<(&str, &str)>, &str)]) -> Vec<String> {
    clusters
        .iter()
        .map(|(object, id)| match object {
            Some((namespace, name)) => {
                let shared = clusters.iter().filter(|(o, _)| o.is_some_and(|(_, n)| n == *name)).count() > 1;
                if shared { format!("{namespace}/{name}") } else { name.to_string() }
            }
            None => id.to_string(),
        })
        .collect()
}

/// The summary as a table for stderr: one row per cluster, in the order given;
/// NOTE says why a cluster was skipped, or where its output is (`--results`).
pub fn table(outcomes: &[Outcome]) -> String {
    let mut rows = vec![["CLUSTER".to_string(), "STATUS".into(), "EXIT".into(), "DURATION".into(), "NOTE".into()]];
    for o in outcomes {
        let note = match (&o.reason, &o.output) {
            (Some(reason), _) => reason.clone(),
            (None, Some(dir)) => format!("{}/", dir.display()),
            (None, None) => String::new(),
        };
        rows.push([
            crate::terminal::escape(&o.cluster.label).into_owned(),
            o.status.name().to_string(),
            o.status.shell_code().map_or("-".into(), |c| c.to_string()),
            o.duration.map_or("-".into(), |d| format!("{:.2}s", d.as_secs_f64())),
            crate::terminal::escape(&note).into_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSummary<'a> {
    clusters: Vec<JsonCluster<'a>>,
    exit_code: u8,
    /// exec's own failure (exit code 2 or 125), as its `error:` line says it.
    error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonCluster<'a> {
    cluster: &'a str,
    namespace: &'a str,
    cluster_id: &'a str,
    status: &'static str,
    exit_code: Option<i32>,
    signal: Option<i32>,
    duration_ms: Option<u128>,
    reason: Option<&'a str>,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// The summary as one JSON line (for the last line of stdout); `error` is
/// exec's own failure, when it failed.
pub fn json(outcomes: &[Outcome], exit_code: u8, error: Option<&str>) -> String {
    let clusters = outcomes
        .iter()
        .map(|o| JsonCluster {
            cluster: &o.cluster.label,
            namespace: o.cluster.namespace.as_deref().unwrap_or_default(),
            cluster_id: &o.cluster.id,
            status: o.status.name(),
            exit_code: match o.status {
                Status::Exited(c) => Some(c),
                Status::NotStarted(c) => Some(i32::from(c)),
                _ => None,
            },
            signal: match o.status {
                Status::Killed(s) => Some(s),
                _ => None,
            },
            duration_ms: o.duration.map(|d| d.as_millis()),
            reason: o.reason.as_deref(),
            stdout: o.output.as_ref().map(|d| d.join("stdout").display().to_string()),
            stderr: o.output.as_ref().map(|d| d.join("stderr").display().to_string()),
        })
        .collect();
    let mut line = serde_json::to_string(&JsonSummary { clusters, exit_code, error }).unwrap_or_default();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(label: &str, status: Status, ms: Option<u64>) -> Outcome {
        Outcome {
            cluster: Cluster { label: label.into(), namespace: None, id: format!("id-{label}"), name: label.into() },
            status,
            duration: ms.map(Duration::from_millis),
            reason: None,
            output: None,
        }
    }

    #[test]
    fn one_cluster_passes_cmds_status_through() {
        let one = |s| exit_code(&[outcome("a", s, Some(1))], None);
        assert_eq!(one(Status::Exited(0)), 0);
        assert_eq!(one(Status::Exited(3)), 3);
        assert_eq!(one(Status::Exited(255)), 255);
        assert_eq!(one(Status::Killed(9)), 137);
        assert_eq!(one(Status::NotStarted(127)), 127);
        assert_eq!(one(Status::NotStarted(126)), 126);
        assert_eq!(exit_code(&[outcome("a", Status::Exited(0), None)], Some(2)), 130);
        assert_eq!(exit_code(&[outcome("a", Status::Killed(15), None)], Some(15)), 143);
    }

    #[test]
    fn several_clusters_exit_0_only_when_all_succeed() {
        let ok = outcome("a", Status::Exited(0), Some(1));
        assert_eq!(exit_code(&[ok.clone(), ok.clone()], None), 0);
        for bad in [Status::Exited(7), Status::Killed(15), Status::NotStarted(127)] {
            assert_eq!(exit_code(&[ok.clone(), outcome("b", bad, None)], None), 1, "{bad:?}");
        }
        // Skipped with --allow-skip: listed, not a failure; nothing ran at all is one.
        let skipped = Outcome::skipped(ok.cluster.clone(), "no credentials".into());
        assert_eq!(exit_code(&[ok.clone(), skipped.clone()], None), 0);
        assert_eq!(exit_code(&[skipped.clone(), skipped], None), 1);
        assert_eq!(exit_code(&[ok.clone(), ok], Some(15)), 143);
    }

    #[test]
    fn tags_every_line_and_ends_the_last_one() {
        assert_eq!(tag("child-a", b"hello\n"), b"child-a\thello\n");
        assert_eq!(tag("child-a", b"no newline"), b"child-a\tno newline\n");
        assert_eq!(tag("c", b"\n"), b"c\t\n");
    }

    #[test]
    fn lines_are_split_across_reads_and_long_ones_cut() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"a\nb"), vec![b"a\n".to_vec()]);
        assert_eq!(lines.push(b"c\n\nd"), vec![b"bc\n".to_vec(), b"\n".to_vec()]);
        assert_eq!(lines.finish(), Some(b"d".to_vec()));
        let mut long = Lines::default();
        let cut = long.push(&vec![b'x'; MAX_LINE * 2 + 5]);
        assert_eq!(cut.iter().map(Vec::len).collect::<Vec<_>>(), [MAX_LINE, MAX_LINE]);
        assert_eq!(long.finish().map(|l| l.len()), Some(5));
        assert_eq!(Lines::default().finish(), None);
    }

    #[test]
    fn labels_are_names_qualified_only_when_shared() {
        let got =
            labels(&[(Some(("ns1", "a")), "1"), (Some(("ns1", "dup")), "2"), (Some(("ns2", "dup")), "3"), (None, "4")]);
        assert_eq!(got, ["a", "ns1/dup", "ns2/dup", "4"]);
    }

    #[test]
    fn table_aligns_columns_and_marks_what_did_not_run() {
        let text = table(&[
            outcome("child-a", Status::Exited(0), Some(812)),
            outcome("b", Status::Exited(3), Some(50)),
            outcome("child-c", Status::Killed(15), Some(1500)),
            Outcome::skipped(outcome("d", Status::Skipped, None).cluster, "no credentials for d".into()),
        ]);
        assert_eq!(
            text,
            "\
CLUSTER   STATUS      EXIT   DURATION   NOTE
child-a   succeeded   0      0.81s
b         failed      3      0.05s
child-c   killed      143    1.50s
d         skipped     -      -          no credentials for d
"
        );
    }

    #[test]
    fn json_summary_is_one_line_with_every_field() {
        let b = Outcome { output: Some("out/b".into()), ..outcome("b", Status::Killed(15), Some(7)) };
        let line = json(&[outcome("a", Status::Exited(0), Some(5)), b], 1, None);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"clusters": [
                {"cluster": "a", "namespace": "", "clusterId": "id-a", "status": "succeeded",
                 "exitCode": 0, "signal": null, "durationMs": 5, "reason": null, "stdout": null, "stderr": null},
                {"cluster": "b", "namespace": "", "clusterId": "id-b", "status": "killed",
                 "exitCode": null, "signal": 15, "durationMs": 7, "reason": null,
                 "stdout": "out/b/stdout", "stderr": "out/b/stderr"}],
             "exitCode": 1, "error": null})
        );
    }
}
