//! Tests against the loopback Kubernetes lab (`lab/lab.sh up`).
