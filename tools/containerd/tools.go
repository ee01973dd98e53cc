//go:build tools

// Package tools pins containerd, its ctr client and its runc shim: the real node's container
// runtime, which kubelet talks CRI to (`kiosk cluster up --node kubelet`).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
)
