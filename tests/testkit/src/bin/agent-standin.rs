//! `agent-standin`: clusternet-agent's session with the hub, for one cluster.
//!
//! ```text
//! agent-standin --hub-socket STATE/hub-agents.sock --cluster-id ID
//! ```
//!
//! Holds one connection to the hub stand-in (`hub-standin --agents-socket`)
//! while it runs: the hub has a session for the cluster exactly as long. It
//! dials again whenever the hub goes away. Stop it (SIGTERM) to end the
//! session at once, as stopping the real agent does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: agent-standin --hub-socket PATH --cluster-id ID";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut socket, mut id) = (None, None);
    let mut args = argv.iter();
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--hub-socket" => &mut socket,
            "--cluster-id" => &mut id,
            _ => {
                eprintln!("agent-standin: unknown argument {flag:?}; {USAGE}");
                return ExitCode::from(2);
            }
        };
        *slot = args.next().cloned();
    }
    let (Some(socket), Some(id)) = (socket, id.filter(|i| !i.is_empty() && !i.contains(char::is_whitespace))) else {
        eprintln!("agent-standin: {USAGE}");
        return ExitCode::from(2);
    };
    testkit::run_agent(&PathBuf::from(socket), &id, Duration::from_millis(200))
}
