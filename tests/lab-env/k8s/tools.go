//go:build tools

// Package tools pins the upstream Kubernetes commands that the lab builds.
// Nothing here is compiled: `go build k8s.io/kubernetes/cmd/...` is run by lab.sh.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
