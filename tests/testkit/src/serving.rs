//! A long-running product process started by a test (`clusternet-kubeconfig
//! proxy`): waited for until it prints `Starting to serve on <address>`,
//! stopped with SIGTERM, and killed (by its own process id) if the test ends
//! first.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a start may take.
const START: Duration = Duration::from_secs(30);

pub struct Serving {
    child: Child,
    /// What it printed after `Starting to serve on `.
    pub listening: String,
    stderr: PathBuf,
}

impl Serving {
    /// Starts `cmd` (its stderr goes to the file `stderr`) and waits for its
    /// `Starting to serve on ...` line; panics with its stderr if none comes.
    pub fn start(mut cmd: Command, stderr: PathBuf) -> Serving {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&stderr).expect("create the stderr file")))
            .spawn()
            .expect("start the server process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START).unwrap_or_default();
        match line.trim_end().strip_prefix("Starting to serve on ") {
            Some(addr) => Serving { listening: addr.to_string(), child, stderr },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("no `Starting to serve on` line: {line:?}; stderr: {err}");
            }
        }
    }

    /// Sends SIGTERM and waits: the exit status and everything on stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = self.child.wait().expect("wait for the server process");
        (status, std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    /// Everything on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
