#!/usr/bin/env bash
# Builds tools/argo-validate into .tools/bin/argo-validate. The first build compiles much of
# Kubernetes (minutes); a stamp of the sources and the Go version skips rebuilding when unchanged.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
command -v go >/dev/null || { echo "go not found: run .ci/install.d/10-go.sh" >&2; exit 1; }
out=.tools/bin/argo-validate
stamp=.tools/argo-validate.stamp
sum="$( (go env GOVERSION; cat tools/argo-validate/go.mod tools/argo-validate/go.sum tools/argo-validate/*.go) | sha256sum | cut -d' ' -f1)"
if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
  echo "argo-validate is up to date"
  exit 0
fi
(cd tools/argo-validate && go build -trimpath -o "../../$out.partial" .)
mv "$out.partial" "$out"
echo "$sum" > "$stamp"
echo "built $out"
