#!/usr/bin/env bash
# Builds the images the real node runs (`kiosk images build`: buildah + mmdebstrap, see docs/cluster.md,
# "Images") into .tools/images/<name>.tar + index.json, after the Go tools (argoexec) and the Debian
# packages. argoexec goes into its image statically linked: .tools/bin/argoexec is a cgo build, so a
# CGO_ENABLED=0 one is built into .tools/images/bin with a stamp of its own. The whole step is
# stamped (Dockerfile, uv.lock, pyproject.toml, pipelines/ and steps/ sources, the pause program),
# so a rerun with nothing changed is a no-op; `kiosk images build` keeps per-image stamps as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
mkdir -p .tools/images/bin

wrapper=tools/argoexec out=.tools/images/bin/argoexec stamp=.tools/images/bin/argoexec.stamp
sum="$( (go env GOVERSION; echo CGO_ENABLED=0; cat "$wrapper"/go.mod "$wrapper"/go.sum "$wrapper"/*.go; cat .tools/src/argo-workflows-*/.kiosk-patch) | sha256sum | cut -d' ' -f1)"
if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
  echo "static argoexec is up to date"
else
  start=$SECONDS
  (cd "$wrapper" && CGO_ENABLED=0 go build -trimpath -o "../../$out.partial" github.com/argoproj/argo-workflows/v4/cmd/argoexec)
  mv "$out.partial" "$out"
  echo "$sum" > "$stamp"
  echo "built static $out in $((SECONDS - start)) s"
fi

sum="$( (cat "$stamp"; git ls-files -s images pyproject.toml uv.lock README.md pipelines steps; git diff HEAD -- images pyproject.toml uv.lock README.md pipelines steps) | sha256sum | cut -d' ' -f1)"
if [ -f .tools/images/index.json ] && [ "$(cat .tools/images/build.stamp 2>/dev/null)" = "$sum" ]; then
  echo "images are up to date"
  exit 0
fi
start=$SECONDS
uv run kiosk images build
echo "$sum" > .tools/images/build.stamp
echo "built the images in $((SECONDS - start)) s"
