#!/usr/bin/env bash
# Builds tools/gofakes3 (gofakes3's in-memory S3 server, pinned in its go.mod) into
# .tools/bin/gofakes3, the server benchmarks/cleanup.py prefers over moto. A stamp of the sources
# and the Go version skips rebuilding when unchanged. Offline-friendly: the module cache is tried
# first (GOPROXY=off), the proxy only when a module is missing from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
command -v go >/dev/null || { echo "go not found: run .ci/install.d/10-go.sh" >&2; exit 1; }
out=.tools/bin/gofakes3
stamp=.tools/gofakes3.stamp
sum="$( (go env GOVERSION; cat tools/gofakes3/go.mod tools/gofakes3/go.sum tools/gofakes3/*.go) | sha256sum | cut -d' ' -f1)"
if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
  echo "gofakes3 is up to date"
  exit 0
fi
cd tools/gofakes3
GOFLAGS=-mod=readonly GOPROXY=off go build -trimpath -o "../../$out.partial" . 2>/dev/null \
  || GOFLAGS=-mod=readonly go build -trimpath -o "../../$out.partial" .
cd ../..
mv "$out.partial" "$out"
echo "$sum" > "$stamp"
echo "built $out"
