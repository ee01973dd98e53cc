#!/usr/bin/env bash
# Builds Argo CD (tools/argocd, argo-cd v3.6.1) into .tools/bin/argocd for `kiosk cluster up
# --with argocd`: one binary, started as argocd-repo-server or argocd-application-controller by
# ARGOCD_BINARY_NAME. Copies from the same module (no download): hack/git-verify-wrapper.sh and
# hack/gpg-wrapper.sh onto .tools/bin (repo-server execs them even with GPG off), and the CRDs and
# argocd-cm/argocd-rbac-cm/argocd-secret into .tools/share/argocd/.
# Every argo-cd 3.6.x go.mod says `go 1.27.0`, newer than .ci/install.d/10-go.sh's Go: this script
# alone sets GOTOOLCHAIN, so the go command fetches that toolchain from the Go module proxy.
# Cold (2 cores) about 7 minutes; the stamp (wrapper sources + Go version) makes a rerun a no-op.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH" GOTOOLCHAIN=go1.27.3
command -v go >/dev/null || { echo "go not found: run .ci/install.d/10-go.sh" >&2; exit 1; }
mkdir -p .tools/bin .tools/share
wrapper=tools/argocd out=.tools/bin/argocd stamp=.tools/argocd.stamp start=$SECONDS

# argo-cd's module, copied to .tools/src, which tools/argocd `replace`s it with (Go refuses build
# overlays inside the module cache), with one edit that must apply: the local cluster listens on
# 127.0.0.1 only, but the application-controller binds its metrics (and /healthz) to a hard-coded
# "0.0.0.0:<port>" (controller/appcontroller.go; there is no flag). The copy binds 127.0.0.1.
argocd_patch=1  # bump when the edit below changes: the copy and the binary are rebuilt
version="$(awk '{sub(/^require /, "")} $1 == "github.com/argoproj/argo-cd/v3" && $2 ~ /^v/ {print $2; exit}' "$wrapper/go.mod")"
src=.tools/src/argo-cd-$version
if [ "$(cat "$src/.kiosk-patch" 2>/dev/null)" != "$argocd_patch" ]; then
  # Outside any module: the wrapper replaces this module with the copy that is not there yet.
  dir="$(cd "$(mktemp -d)" && go mod download -json "github.com/argoproj/argo-cd/v3@$version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$src.partial" && mkdir -p .tools/src
  cp -r "$dir" "$src.partial" && chmod -R u+w "$src.partial"
  python3 - "$src.partial/controller/appcontroller.go" <<'PY'
import pathlib
import sys

path = pathlib.Path(sys.argv[1])
old, new = 'fmt.Sprintf("0.0.0.0:%d", metricsPort)', 'fmt.Sprintf("127.0.0.1:%d", metricsPort)'
text = path.read_text()
if text.count(old) != 1:
    sys.exit(f"55-argocd.sh: cannot patch {path}: {old!r} is not there exactly once")
path.write_text(text.replace(old, new))
PY
  echo "$argocd_patch" > "$src.partial/.kiosk-patch"
  rm -rf "$src" && mv "$src.partial" "$src"
fi

sum="$( (go env GOVERSION; echo "$argocd_patch"; cat "$wrapper"/go.mod "$wrapper"/go.sum "$wrapper"/*.go) | sha256sum | cut -d' ' -f1)"
if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
  echo "argocd is up to date"
else
  (cd "$wrapper" && go build -trimpath -o "../../$out.partial" github.com/argoproj/argo-cd/v3/cmd)
  mv "$out.partial" "$out"
  echo "$sum" > "$stamp"
  echo "built $out in $((SECONDS - start)) s"
fi

module=$src
install -m 0755 "$module/hack/git-verify-wrapper.sh" "$module/hack/gpg-wrapper.sh" .tools/bin/
share=.tools/share/argocd
rm -rf "$share.partial" && mkdir -p "$share.partial"
cp "$module"/manifests/crds/application-crd.yaml "$module"/manifests/crds/appproject-crd.yaml \
  "$module"/manifests/base/config/argocd-cm.yaml "$module"/manifests/base/config/argocd-rbac-cm.yaml \
  "$module"/manifests/base/config/argocd-secret.yaml "$share.partial/"
rm -rf "$share" && mv "$share.partial" "$share"
# Argo CD's cache is Debian's redis-server, which the Debian packages' script installs.
command -v redis-server >/dev/null || echo "redis-server not found: run .ci/install.d/40-debian-packages.sh" >&2
