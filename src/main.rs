//! `clusternet-kubeconfig`: see the README and `--help`.
//!
//! `main` only runs the program and turns its outcome into an exit code; every
//! message is printed once, by `run`.

fn main() -> std::process::ExitCode {
    clusternet_kubeconfig::run()
}
