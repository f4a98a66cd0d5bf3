//! Test support for clusternet-kubeconfig (not shipped).
