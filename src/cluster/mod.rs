//! Everything that talks to a cluster, and the only module that uses the kube
//! client: connecting, ManagedClusters, the hub-proxy token, the child
//! credentials the hub holds, probing a generated kubeconfig through the socket
//! proxy, the child's TokenRequest API through it, the upstream of `proxy`,
//! and the GitHub Actions token endpoint.

pub mod actions;
pub mod client;
pub mod deployer;
pub mod diagnose;
pub mod forward_proxy;
pub mod hub_token;
pub mod managed;
pub mod probe;
pub mod server_cert;
pub mod tls;
pub mod token_request;
pub mod transport;
pub mod upstream;
