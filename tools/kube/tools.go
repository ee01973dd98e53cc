//go:build tools

// Package tools pins the cluster binaries `kiosk cluster` runs: kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, kube-proxy and kubectl from
// k8s.io/kubernetes (whose ./staging replaces rule out `go install ...@version`, kubernetes/kubernetes#79384,
// hence the replace lines in go.mod) and etcd's server.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
