//! Offline integration tests: one binary, one module per concern, a small
//! helper per case (see `support`).

mod support;

mod action;
mod child_token_flags;
mod completions;
mod concurrency;
mod connect;
mod corpus;
mod dry_run;
mod exec;
mod fail_closed;
mod gen_bad_input;
mod gen_modes;
mod guard_rails;
mod hostile;
mod kubectl;
mod kubectl_matrix;
mod oidc;
mod parity;
mod parity_writes;
mod proxy;
mod readme;
mod refresh;
mod secrets;
mod snapshots;
mod status;
mod transport;
mod verify_hostile;
mod yaml_quoting;
