//! Everything that talks to a cluster, and the only module that uses the kube
//! client: connecting, ManagedClusters, the hub-proxy token, and probing a
//! generated kubeconfig through the socket proxy.

pub mod client;
pub mod diagnose;
pub mod hub_token;
pub mod managed;
pub mod probe;
pub mod tls;
pub mod transport;
