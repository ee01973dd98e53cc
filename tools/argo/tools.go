//go:build tools

// Package tools pins Argo's own CLI, `argo` (its `argo server` is the argo-server `kiosk cluster up
// --with argo-server` starts), from the same patched module copy as tools/argo-workflows (see go.mod).
package tools

import _ "github.com/argoproj/argo-workflows/v4/cmd/argo"
