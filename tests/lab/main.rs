//! Tests against the loopback Kubernetes lab (`tests/lab-env/lab.sh up`).
//!
//! A real kube-apiserver (RBAC, anonymous auth on, aggregation layer) with the
//! Clusternet socket-proxy RBAC, and the hub stand-in registered as the
//! APIService `v1alpha1.proxies.clusternet.io`. The tests run the product
//! binary, then real `kubectl` with its output, and read what reached the
//! stand-in from its record file (JSON lines, one per request).
//!
//! The lab is described by `tests/lab-env/state/lab.env` (or `$CLUSTERNET_LAB_ENV`):
//! when it is missing the tests FAIL (they never skip). They are opt-in, so
//! that a plain `cargo test` needs no lab: `tests/lab-env/test.sh` brings the lab
//! up, runs them (`--features lab-tests`) and brings it down.

mod support;

mod auth;
mod failures;
mod negative;
mod routes;

// The cluster-aware features.
mod all;
mod by_name;
mod list;
mod many;
mod parent_token;
mod verify;

// A command run with a temporary kubeconfig per cluster.
mod exec;

// A real child kube-apiserver behind the stand-in.
mod child;
// Child credentials held by the hub, and short-lived tokens from the child.
mod hub_credentials;
// The GitHub Action as CI uses it.
mod action;
// Keyless CI: the parent trusts the CI system's OIDC tokens.
mod oidc;

// `proxy`: the child for clients without full kubeconfig impersonation.
mod proxy;

// Guard rails: X.509 v1 client certificates, verify on what is not generated.
mod guard_rails;

// What other parties write on the parent: hostile ManagedClusters and Secrets.
mod hostile;

// Looking after generated kubeconfigs: status --verify, prune.
mod maintain;

// The hub over time: streaming, its request timeout, agents' sessions.
mod hub_over_time;

// Reaching the parent through forward proxies (proxy-url, HTTPS_PROXY).
mod proxies;
