//go:build tools

// Package tools pins runc, the OCI runtime containerd's shim starts each container with (built
// with cgo and libseccomp, so that the seccomp profile a pod asks for is enforced).
package tools

import (
	_ "github.com/opencontainers/runc"
)
