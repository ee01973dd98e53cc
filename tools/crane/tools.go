//go:build tools

// Package tools pins crane (go-containerregistry's CLI), whose `crane registry serve` is the real
// node's local registry mirror and `crane push` loads the built images into it.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
