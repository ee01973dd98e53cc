//go:build tools

// Package tools pins the control-plane binaries `kiosk cluster` runs: kube-apiserver and kubectl from
// k8s.io/kubernetes (whose ./staging replaces rule out `go install ...@version`, kubernetes/kubernetes#79384,
// hence the replace lines in go.mod) and etcd's server.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
