//go:build tools

// Package tools pins Argo's executor, argoexec, from the same module as tools/argo-workflows, built
// from a patched copy (see go.mod).
package tools

import _ "github.com/argoproj/argo-workflows/v4/cmd/argoexec"
