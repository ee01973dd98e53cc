//go:build tools

// Package tools pins Argo CD's all-in-one command (argocd-repo-server,
// argocd-application-controller, ... chosen by ARGOCD_BINARY_NAME). Upstream's ./gitops-engine
// replace makes `go install ...@version` impossible, hence this wrapper.
package tools

import (
	_ "github.com/argoproj/argo-cd/v3/cmd"
)
