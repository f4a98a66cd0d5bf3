//! The agents' sessions with the hub. clusternet-agent (with the
//! SocketConnection gate) holds a websocket to the hub, and the hub keeps the
//! session in memory while it is up: the moment the agent stops, the hub
//! answers `whose agent is disconnected`, whatever the ManagedCluster's
//! `Ready` condition still says (it stays True for about a minute).
//!
//! Here an agent is a process (`agent-standin`) holding one connection to
//! the hub stand-in's Unix socket: it says `session <cluster-id>`, the hub
//! answers `ok`, and the session lasts until the connection ends (the agent
//! stopped, or the hub did: then the agent dials again, as the real one does).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cluster IDs with an agent session up (a count: an agent may have
/// dialled again before its old connection was seen to end).
#[derive(Debug, Default, Clone)]
pub(crate) struct Sessions(Arc<Mutex<BTreeMap<String, usize>>>);

impl Sessions {
    pub(crate) fn has(&self, id: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(id).is_some_and(|n| *n > 0)
    }

    fn add(&self, id: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_string()).or_default() += 1;
    }

    fn remove(&self, id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                map.remove(id);
            }
        }
    }

    /// Accepts agents on `path` (a stale socket file is replaced), each
    /// session logged on stdout (`agent session up: <id>`, `... down: <id>`).
    pub(crate) fn listen(&self, path: &Path) -> io::Result<()> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let sessions = self.clone();
        std::thread::Builder::new().name("agent-accept".into()).spawn(move || {
            for conn in listener.incoming().flatten() {
                let sessions = sessions.clone();
                let _ = std::thread::Builder::new().name("agent-session".into()).spawn(move || sessions.serve(conn));
            }
        })?;
        Ok(())
    }

    fn serve(&self, conn: UnixStream) {
        let mut reader = BufReader::new(conn);
        let mut hello = String::new();
        if reader.by_ref().take(300).read_line(&mut hello).is_err() {
            return;
        }
        let Some(id) = hello.trim().strip_prefix("session ").filter(|id| !id.is_empty()).map(str::to_string) else {
            return;
        };
        self.add(&id);
        say(&format!("agent session up: {id}"));
        if reader.get_mut().write_all(b"ok\n").is_ok() {
            // Until the agent goes away (anything it sends is ignored).
            let mut buf = [0u8; 64];
            while matches!(reader.get_mut().read(&mut buf), Ok(n) if n > 0) {}
        }
        self.remove(&id);
        say(&format!("agent session down: {id}"));
    }
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// An agent for cluster `id`: dials the hub at `path`, holds the session,
/// and dials again (every `retry`) whenever it ends. Prints `session up` each
/// time the hub took it. Never returns.
pub fn run_agent(path: &Path, id: &str, retry: Duration) -> ! {
    let mut announced_down = true;
    loop {
        if let Ok(mut conn) = UnixStream::connect(path)
            && conn.write_all(format!("session {id}\n").as_bytes()).is_ok()
        {
            let mut reader = BufReader::new(conn.try_clone().expect("a Unix socket clones"));
            let mut ack = String::new();
            if reader.read_line(&mut ack).is_ok() && ack.trim() == "ok" {
                say(&format!("session up: {id}"));
                announced_down = false;
                let mut buf = [0u8; 64];
                while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            }
            drop(conn);
        }
        if !announced_down {
            say(&format!("session down: {id} (the hub went away); dialling again"));
            announced_down = true;
        }
        std::thread::sleep(retry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_as_long_as_its_agent_connection() {
        let dir = std::env::temp_dir().join(format!("testkit-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agents.sock");
        let sessions = Sessions::default();
        sessions.listen(&path).unwrap();
        let mut conn = UnixStream::connect(&path).unwrap();
        conn.write_all(b"session c1\n").unwrap();
        let mut ack = String::new();
        BufReader::new(conn.try_clone().unwrap()).read_line(&mut ack).unwrap();
        assert_eq!(ack, "ok\n");
        assert!(sessions.has("c1") && !sessions.has("c2"));
        drop(conn);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sessions.has("c1") {
            assert!(std::time::Instant::now() < deadline, "the session outlived its connection");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
