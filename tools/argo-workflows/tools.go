//go:build tools

// Package tools pins Argo's own workflow-controller and executor (argoexec), which `kiosk cluster`
// runs. argoexec is built from tools/argoexec (a patched copy of the same module).
package tools

import (
	_ "github.com/argoproj/argo-workflows/v4/cmd/workflow-controller"
)
