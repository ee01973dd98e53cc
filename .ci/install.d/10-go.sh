#!/usr/bin/env bash
# Go toolchain for tools/argo-validate. A machine Go >= the go.mod's `go` line is used as is;
# otherwise the exact toolchain comes from the Go module proxy (golang.org/toolchain), the same
# source `GOTOOLCHAIN=auto` uses, because Debian's golang-go is too old for argo-workflows v4.
set -euo pipefail
cd "$(dirname "$0")/../.."
want="$(awk '/^go /{print $2}' tools/argo-validate/go.mod)"
have="$(command -v go >/dev/null 2>&1 && go env GOVERSION | sed 's/^go//' || true)"
if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" = "$want" ]; then
  echo "go $have already satisfies go $want"
  exit 0
fi
if [ -x .tools/go/bin/go ] && [ "$(.tools/go/bin/go env GOVERSION)" = "go$want" ]; then
  ln -sf ../go/bin/go .tools/bin/go
  exit 0
fi
arch="$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')"
version="v0.0.1-go${want}.linux-${arch}"
proxy="${GOPROXY:-https://proxy.golang.org}"; proxy="${proxy%%,*}"
echo "fetching go ${want} from ${proxy}"
python3 - "$proxy" "$version" <<'PY'
import io, os, shutil, stat, sys, urllib.request, zipfile
proxy, version = sys.argv[1], sys.argv[2]
prefix = f"golang.org/toolchain@{version}/"
data = urllib.request.urlopen(f"{proxy}/golang.org/toolchain/@v/{version}.zip", timeout=300).read()
shutil.rmtree(".tools/go.partial", ignore_errors=True)
with zipfile.ZipFile(io.BytesIO(data)) as archive:
    for info in archive.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        target = os.path.join(".tools/go.partial", info.filename[len(prefix):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        # Module zips carry no file modes; the toolchain's programs live in bin/ and pkg/tool/.
        rel = info.filename[len(prefix):]
        if rel.startswith(("bin/", "pkg/tool/")):
            os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
shutil.rmtree(".tools/go", ignore_errors=True)
os.rename(".tools/go.partial", ".tools/go")
PY
ln -sf ../go/bin/go .tools/bin/go
.tools/bin/go version
