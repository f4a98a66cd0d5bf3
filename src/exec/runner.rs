//! The edge of `exec`: the temporary directory, the processes, their output
//! and the signals. What to do with what happens here is decided in
//! [`super::report`].
//!
//! Every kubeconfig lives in one private directory (0700) made before the
//! first CMD starts and removed after the last one ended; each file (0600) is
//! written just before its CMD starts and removed as soon as it ended, so a
//! credential is on disk only while a command uses it. SIGINT, SIGTERM and
//! SIGHUP are caught before anything is written: they are forwarded to the
//! running commands, which are waited for, then the directory is removed
//! (only SIGKILL can leave it behind).

use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context as _, Result};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::report::{Cluster, Lines, OWN_FAILURE, Outcome, Status, tag};
use crate::credentials::{child, parent};

/// One cluster and the kubeconfig CMD gets for it.
pub struct Job {
    pub cluster: Cluster,
    /// The generated kubeconfig (it holds the child's credentials).
    pub kubeconfig: String,
}

/// How CMD runs.
pub struct Running<'a> {
    pub command: &'a [OsString],
    pub parallel: usize,
    pub fail_fast: bool,
    /// Several clusters: each CMD's lines tagged with its cluster, stdin closed.
    pub tagged: bool,
    /// `--results DIR`: each CMD's stdout and stderr go to `DIR/<cluster>/`
    /// instead (the directory exists and is empty).
    pub results: Option<&'a Path>,
    /// One cluster with a JSON summary: CMD's stdout passes through this
    /// process, so that the summary starts on a line of its own.
    pub capture_stdout: bool,
}

/// True when nothing, or a whole line, was written to stdout so far by
/// [`write_out`]: the JSON summary then needs no newline before it.
static STDOUT_AT_LINE_START: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn stdout_at_line_start() -> bool {
    STDOUT_AT_LINE_START.load(std::sync::atomic::Ordering::SeqCst)
}

/// How the run ended.
pub struct Finished {
    /// One per job, in the order of the jobs.
    pub outcomes: Vec<Outcome>,
    /// The first signal that stopped the run.
    pub interrupted: Option<i32>,
}

/// What the supervisor hears of.
enum Event {
    Done { index: usize, status: Status },
    Signal(i32),
}

/// Runs CMD for every job; returns when every started CMD has ended and every
/// file is removed.
pub fn run(jobs: &[Job], how: &Running) -> Result<Finished> {
    let parallel = parallel_cap(how.parallel.min(jobs.len().max(1)), if how.results.is_some() { 2 } else { 4 });
    let how = &Running { parallel, ..*how };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_io().build().context("starting the process supervisor")?;
    runtime.block_on(run_all(jobs, how))
}

async fn run_all(jobs: &[Job], how: &Running<'_>) -> Result<Finished> {
    let (events, mut heard) = unbounded_channel();
    // Caught before the first file exists, so that no signal ends this
    // process with a credential left on disk.
    for signal_number in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let mut stream =
            signal(SignalKind::from_raw(signal_number)).with_context(|| format!("catching signal {signal_number}"))?;
        let events = events.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let _ = events.send(Event::Signal(signal_number));
            }
        });
    }
    let dir = private_dir()?;
    let tagged = how.tagged;
    let mut statuses: Vec<Option<Status>> = vec![None; jobs.len()];
    let mut started: Vec<Option<Instant>> = vec![None; jobs.len()];
    let mut ended: Vec<Option<Instant>> = vec![None; jobs.len()];
    // Process IDs of the running commands, by job.
    let mut running: Vec<(usize, i32)> = Vec::new();
    let mut next = 0;
    let mut stopping = false;
    let mut interrupted = None;
    loop {
        while !stopping && running.len() < how.parallel && next < jobs.len() {
            let index = next;
            next += 1;
            started[index] = Some(Instant::now());
            let file = dir.path().join(format!("cluster-{index}.kubeconfig"));
            match start(&jobs[index], &file, how) {
                Ok(child) => {
                    if let Some(pid) = child.id() {
                        running.push((index, pid as i32));
                    }
                    let copy = match (tagged, how.capture_stdout) {
                        _ if how.results.is_some() => Copy::None,
                        (true, _) => Copy::Tagged(jobs[index].cluster.label.clone()),
                        (false, true) => Copy::Stdout,
                        (false, false) => Copy::None,
                    };
                    tokio::spawn(supervise(index, child, file, copy, events.clone()));
                }
                Err(failure) => {
                    let _ = fs::remove_file(&file);
                    let line = format!("error: {}", crate::terminal::escape(&failure.message));
                    match tagged {
                        true => write_out(Stream::Err, &tag(&jobs[index].cluster.label, line.as_bytes())),
                        false => eprintln!("{line}"),
                    }
                    ended[index] = Some(Instant::now());
                    statuses[index] = Some(failure.status);
                    stopping |= how.fail_fast;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        match heard.recv().await {
            Some(Event::Done { index, status }) => {
                running.retain(|(i, _)| *i != index);
                ended[index] = Some(Instant::now());
                statuses[index] = Some(status);
                if how.fail_fast && !status.succeeded() && !stopping {
                    stopping = true;
                    forward(&running, libc::SIGTERM, tagged);
                }
            }
            Some(Event::Signal(number)) => {
                interrupted.get_or_insert(number);
                stopping = true;
                forward(&running, number, tagged);
            }
            None => break,
        }
    }
    let shown = dir.path().display().to_string();
    dir.close().with_context(|| format!("removing the temporary directory {shown}"))?;
    let outcomes = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| Outcome {
            cluster: job.cluster.clone(),
            status: statuses[i].unwrap_or(Status::Skipped),
            duration: started[i].zip(ended[i]).map(|(s, e)| e.duration_since(s)),
            reason: statuses[i].is_none().then(|| {
                let why = if interrupted.is_some() { "a signal" } else { "--fail-fast" };
                format!("not started: {why} stopped the run")
            }),
            output: how.results.filter(|_| started[i].is_some()).map(|d| d.join(&job.cluster.label)),
        })
        .collect();
    Ok(Finished { outcomes, interrupted })
}

/// The private directory of the run's kubeconfigs.
fn private_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("clusternet-kubeconfig-exec-")
        .tempdir()
        .context("creating a temporary directory (set TMPDIR to a writable directory)")?;
    fs::set_permissions(dir.path(), Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.path().display()))?;
    Ok(dir)
}

/// Why CMD did not start.
struct NotStarted {
    status: Status,
    message: String,
}

/// Writes the job's kubeconfig and starts CMD with it. Several clusters: each
/// CMD in a process group of its own (a signal reaches what it started too),
/// stdin closed, its output piped to be tagged, or into its files under
/// `--results`.
fn start(job: &Job, file: &Path, how: &Running) -> Result<tokio::process::Child, NotStarted> {
    let (command, tagged) = (how.command, how.tagged);
    let program = command.first().cloned().unwrap_or_default();
    let shown = crate::secret::quote(&program.to_string_lossy());
    let own = |message: String| NotStarted { status: Status::NotStarted(OWN_FAILURE), message };
    // exec's own failure, not CMD's.
    write_private(file, &job.kubeconfig)
        .map_err(|e| NotStarted { status: Status::NotStarted(OWN_FAILURE), message: format!("{e:#}") })?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&command[1..])
        .env("KUBECONFIG", file)
        .env("CLUSTERNET_CLUSTER_ID", &job.cluster.id)
        .env("CLUSTERNET_CLUSTER_NAME", &job.cluster.name)
        // The credentials are in the kubeconfig; nowhere else.
        .env_remove(child::TOKEN_ENV)
        .env_remove(parent::TOKEN_ENV);
    if tagged {
        cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    } else if how.capture_stdout {
        cmd.stdout(Stdio::piped());
    }
    if let Some(results) = how.results {
        let dir = results.join(&job.cluster.label);
        let (stdout, stderr) = output_files(&dir).map_err(|e| own(format!("{e:#}")))?;
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    }
    cmd.spawn().map_err(|e| match e.raw_os_error() {
        // Not CMD's fault, and not 126: exec ran out of file descriptors.
        Some(libc::EMFILE | libc::ENFILE) => {
            own(format!("cannot run {shown}: {e}: lower --parallel, or raise the open-files limit (ulimit -n)"))
        }
        _ => NotStarted {
            status: Status::NotStarted(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }),
            message: format!("cannot run {shown}: {e}"),
        },
    })
}

/// `DIR/<cluster>/stdout` and `stderr`, new, readable by this user only (a
/// command's output may hold what the cluster keeps secret).
fn output_files(dir: &Path) -> Result<(std::fs::File, std::fs::File)> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let open = |name: &str| {
        let path = dir.join(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::fs::PRIVATE_MODE)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))
    };
    Ok((open("stdout")?, open("stderr")?))
}

/// At most as many commands at once as the open-files limit allows, `per_job`
/// descriptors each: past it, spawning fails with EMFILE, which would look
/// like a command that cannot be executed. The soft limit is first raised to
/// the hard one (as Go programs do); a lowered `--parallel` is said.
fn parallel_cap(wanted: usize, per_job: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let open = fs::read_dir("/proc/self/fd").map_or(16, |d| d.count());
    // Room for the runtime, the signal handlers, the temporary files.
    let free = usize::try_from(soft).unwrap_or(usize::MAX).saturating_sub(open + 16);
    let cap = (free / per_job).max(1);
    if wanted > cap {
        crate::notes::push(format!(
            "note: --parallel {wanted} lowered to {cap}: the open-files limit (ulimit -n) is {soft}; raise it to run more at once"
        ));
        crate::notes::flush();
    }
    wanted.min(cap)
}

/// A new file, readable by this user only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::fs::PRIVATE_MODE)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// What this process copies of a CMD's output.
enum Copy {
    /// Nothing: CMD writes to exec's stdout and stderr, or to its files.
    None,
    /// Both streams, each line tagged with this label.
    Tagged(String),
    /// Stdout as it is (see [`Running::capture_stdout`]).
    Stdout,
}

/// Waits for one CMD (and its output, copied), removes its kubeconfig, and
/// says how it ended.
async fn supervise(
    index: usize,
    mut child: tokio::process::Child,
    file: PathBuf,
    copy: Copy,
    events: UnboundedSender<Event>,
) {
    let mut pumps = Vec::new();
    match &copy {
        Copy::Tagged(label) => {
            if let Some(out) = child.stdout.take() {
                pumps.push(tokio::spawn(pump(out, Some(label.clone()), Stream::Out)));
            }
            if let Some(err) = child.stderr.take() {
                pumps.push(tokio::spawn(pump(err, Some(label.clone()), Stream::Err)));
            }
        }
        Copy::Stdout => {
            if let Some(out) = child.stdout.take() {
                pumps.push(tokio::spawn(pump(out, None, Stream::Out)));
            }
        }
        Copy::None => {}
    }
    let status = match child.wait().await {
        Ok(exit) => match (exit.code(), exit.signal()) {
            (Some(code), _) => Status::Exited(code),
            (None, Some(signal)) => Status::Killed(signal),
            (None, None) => Status::Exited(1),
        },
        Err(_) => Status::Exited(1),
    };
    let _ = fs::remove_file(&file);
    for pump in pumps {
        let _ = pump.await;
    }
    let _ = events.send(Event::Done { index, status });
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// Copies one output stream of CMD, each line tagged with the cluster when
/// there is a label, else as it comes.
async fn pump(mut from: impl AsyncRead + Unpin, label: Option<String>, to: Stream) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => match &label {
                Some(label) => {
                    for line in lines.push(&buf[..n]) {
                        write_out(to, &tag(label, &line));
                    }
                }
                None => write_out(to, &buf[..n]),
            },
        }
    }
    if let (Some(label), Some(last)) = (&label, lines.finish()) {
        write_out(to, &tag(label, &last));
    }
}

/// One whole line at a time, so that lines of different clusters never mix.
/// A closed stdout does not stop the commands.
fn write_out(to: Stream, bytes: &[u8]) {
    let _ = match to {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            if let Some(&last) = bytes.last() {
                STDOUT_AT_LINE_START.store(last == b'\n', std::sync::atomic::Ordering::SeqCst);
            }
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Stream::Err => std::io::stderr().lock().write_all(bytes),
    };
}

/// Sends `signal` to every running CMD: to its process group when it has one
/// of its own (several clusters), else to it alone.
fn forward(running: &[(usize, i32)], signal: i32, grouped: bool) {
    for &(_, pid) in running {
        let target = if grouped { -pid } else { pid };
        // SAFETY: kill(2) has no memory effects; a process that has just
        // ended makes it fail with ESRCH, which changes nothing.
        unsafe {
            libc::kill(target, signal);
        }
    }
}
