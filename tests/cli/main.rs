//! Offline integration tests: one binary, one module per concern, a small
//! helper per case (see `support`).

mod support;

mod concurrency;
mod corpus;
mod gen_bad_input;
mod gen_modes;
mod hostile;
mod kubectl;
mod kubectl_matrix;
mod parity;
mod parity_writes;
mod secrets;
mod yaml_quoting;
