#!/usr/bin/env bash
# Builds the local control plane `kiosk cluster` runs into .tools/bin: etcd and kube-apiserver
# (tools/kube), Argo's workflow-controller (tools/argo-workflows) and argoexec (tools/argoexec).
# Cold (empty Go caches, 2 cores) this is the longest install step: see README "Run on the real
# Argo locally". Each binary has a stamp of its wrapper's sources and the Go version, so a rerun
# is a no-op.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
command -v go >/dev/null || { echo "go not found: run .ci/install.d/10-go.sh" >&2; exit 1; }
mkdir -p .tools/bin

# build NAME WRAPPER PACKAGE: go build PACKAGE inside tools/WRAPPER into .tools/bin/NAME.
build() {
  local name=$1 wrapper=tools/$2 package=$3 out=.tools/bin/$1 stamp=.tools/$1.stamp sum start
  sum="$( (go env GOVERSION; echo "$package"; cat "$wrapper"/go.mod "$wrapper"/go.sum "$wrapper"/*.go) | sha256sum | cut -d' ' -f1)"
  if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "$name is up to date"
    return
  fi
  start=$SECONDS
  (cd "$wrapper" && go build -trimpath -o "../../$out.partial" "$package")
  mv "$out.partial" "$out"
  echo "$sum" > "$stamp"
  echo "built $out in $((SECONDS - start)) s"
}

# argoexec's module copy: workflow/executor/osspecific/signal_linux.go is a symlink upstream to
# signal_darwin.go, and module zips drop symlinks (undefined: Setpgid). Restore it in a copy of the
# module that tools/argoexec/go.mod replaces the module with.
argo_version="$(awk '{sub(/^require /, "")} $1 == "github.com/argoproj/argo-workflows/v4" {print $2; exit}' tools/argo-workflows/go.mod)"
src=.tools/src/argo-workflows-$argo_version
if [ ! -f "$src/workflow/executor/osspecific/signal_linux.go" ]; then
  dir="$(cd tools/argo-workflows && go mod download -json "github.com/argoproj/argo-workflows/v4@$argo_version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$src.partial" && mkdir -p .tools/src
  cp -r "$dir" "$src.partial" && chmod -R u+w "$src.partial"
  cp "$src.partial/workflow/executor/osspecific/signal_darwin.go" "$src.partial/workflow/executor/osspecific/signal_linux.go"
  rm -rf "$src" && mv "$src.partial" "$src"
fi

build etcd kube go.etcd.io/etcd/server/v3
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver
build workflow-controller argo-workflows github.com/argoproj/argo-workflows/v4/cmd/workflow-controller
build argoexec argoexec github.com/argoproj/argo-workflows/v4/cmd/argoexec
