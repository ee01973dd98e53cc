#!/usr/bin/env bash
# Builds the images the real node runs (`kiosk images build`: buildah + mmdebstrap, see docs/cluster.md,
# "Images") into .tools/images/<name>.tar + index.json, after the Go tools (argoexec, built static by
# 50-control-plane.sh) and the Debian packages. The whole step is
# stamped (Dockerfile, uv.lock, pyproject.toml, pipelines/ and steps/ sources, the pause program),
# so a rerun with nothing changed is a no-op; `kiosk images build` keeps per-image stamps as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
mkdir -p .tools/images
stamp=.tools/argoexec.stamp  # 50-control-plane.sh's, of the static argoexec the executor image holds
sum="$( (cat "$stamp"; git ls-files -s images pyproject.toml uv.lock README.md pipelines steps; git diff HEAD -- images pyproject.toml uv.lock README.md pipelines steps) | sha256sum | cut -d' ' -f1)"
if [ -f .tools/images/index.json ] && [ "$(cat .tools/images/build.stamp 2>/dev/null)" = "$sum" ]; then
  echo "images are up to date"
  exit 0
fi
start=$SECONDS
uv run kiosk images build
echo "$sum" > .tools/images/build.stamp
echo "built the images in $((SECONDS - start)) s"
