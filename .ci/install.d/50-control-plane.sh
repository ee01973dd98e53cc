#!/usr/bin/env bash
# Builds the local cluster `kiosk cluster` runs into .tools/bin: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet and kube-proxy (tools/kube), kubectl from the same kubernetes module, Argo's workflow-controller (tools/argo-workflows), argoexec (tools/argoexec) and the
# `argo` CLI, whose `argo server` is argo-server (tools/argo).
# Cold (empty Go caches, 2 cores) this is the longest install step: see docs/cluster.md, "First build
# and start". Each binary has a stamp of its wrapper's sources and the Go version, so a rerun
# is a no-op.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
command -v go >/dev/null || { echo "go not found: run .ci/install.d/10-go.sh" >&2; exit 1; }
mkdir -p .tools/bin

# build NAME WRAPPER PACKAGE [EXTRA [LDFLAGS]]: go build PACKAGE inside tools/WRAPPER into
# .tools/bin/NAME; EXTRA (e.g. the patched module copy's marker) and LDFLAGS are part of the stamp.
build() {
  local name=$1 wrapper=tools/$2 package=$3 extra=${4:-} ldflags=${5:-} out=.tools/bin/$1 stamp=.tools/$1.stamp sum start
  sum="$( (go env GOVERSION; echo "$package"; echo "$extra"; echo "$ldflags"; cat "$wrapper"/go.mod "$wrapper"/go.sum "$wrapper"/*.go) | sha256sum | cut -d' ' -f1)"
  if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "$name is up to date"
    return
  fi
  start=$SECONDS
  (cd "$wrapper" && go build -trimpath -ldflags="$ldflags" -o "../../$out.partial" "$package")
  mv "$out.partial" "$out"
  echo "$sum" > "$stamp"
  echo "built $out in $((SECONDS - start)) s"
}

# Argo's module, copied to .tools/src, which tools/argo-workflows and tools/argoexec `replace` it
# with (Go refuses build overlays inside the module cache). Two edits, each of which must apply:
# - argoexec: workflow/executor/osspecific/signal_linux.go is a symlink upstream to
#   signal_darwin.go, and module zips drop symlinks (undefined: Setpgid). Restored as a copy.
# - workflow-controller: the local cluster listens on 127.0.0.1 only, but upstream binds /healthz
#   to a hard-coded ":6060" (cmd/workflow-controller/main.go; two clusters on one host collide)
#   and the metrics server to ":<port>" (util/telemetry/exporter_prometheus.go), every interface.
#   The copy binds /healthz to $KIOSK_CONTROLLER_HEALTHZ_ADDRESS (default 127.0.0.1:6060) and
#   metrics to 127.0.0.1.
argo_patch=2  # bump when the edits below change: the copy and both binaries are rebuilt
argo_version="$(awk '{sub(/^require /, "")} $1 == "github.com/argoproj/argo-workflows/v4" {print $2; exit}' tools/argo-workflows/go.mod)"
src=.tools/src/argo-workflows-$argo_version
if [ "$(cat "$src/.kiosk-patch" 2>/dev/null)" != "$argo_patch" ]; then
  # Outside any module: both wrappers replace this module with the copy that is not there yet.
  dir="$(cd "$(mktemp -d)" && go mod download -json "github.com/argoproj/argo-workflows/v4@$argo_version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$src.partial" && mkdir -p .tools/src
  cp -r "$dir" "$src.partial" && chmod -R u+w "$src.partial"
  cp "$src.partial/workflow/executor/osspecific/signal_darwin.go" "$src.partial/workflow/executor/osspecific/signal_linux.go"
  python3 - "$src.partial" <<'PY'
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
healthz = (
    'func() string { if a := os.Getenv("KIOSK_CONTROLLER_HEALTHZ_ADDRESS"); a != "" { return a }; '
    'return "127.0.0.1:6060" }()'
)
edits = [
    ("cmd/workflow-controller/main.go", 'http.ListenAndServe(":6060", nil)', f"http.ListenAndServe({healthz}, nil)"),
    ("util/telemetry/exporter_prometheus.go", 'fmt.Sprintf(":%v", m.config.port())', 'fmt.Sprintf("127.0.0.1:%v", m.config.port())'),
]
for rel, old, new in edits:
    path = root / rel
    text = path.read_text()
    if text.count(old) != 1:
        sys.exit(f"50-control-plane.sh: cannot patch {rel}: {old!r} is not there exactly once")
    path.write_text(text.replace(old, new))
PY
  echo "$argo_patch" > "$src.partial/.kiosk-patch"
  rm -rf "$src" && mv "$src.partial" "$src"
fi

# cmd/argo embeds the UI bundle (ui/dist/app), which the module does not ship and which cannot be
# built here (ui/yarn.lock takes argo-ui from a git host). Upstream's Makefile without STATIC_FILES
# touches an empty ui/dist/app/index.html; so does this, outside the patch marker above, so that the
# controller and argoexec are not rebuilt for it. argo-server then serves its API and an empty UI page.
mkdir -p "$src/ui/dist/app" && touch "$src/ui/dist/app/index.html"

# argo-server (`argo server`) listens on ":<port>", every interface (server/apiserver/argoserver.go);
# the local cluster binds 127.0.0.1 only. Edited in place, under its own marker, because only
# cmd/argo compiles that file: the controller and argoexec keep their builds.
argo_cli_patch=1  # bump when the edit below changes: the argo binary is rebuilt
if [ "$(cat "$src/.kiosk-patch-argo" 2>/dev/null)" != "$argo_cli_patch" ]; then
  python3 - "$src" <<'PY'
import pathlib
import sys

path = pathlib.Path(sys.argv[1]) / "server/apiserver/argoserver.go"
text = path.read_text()
for old, new in [
    ('address := fmt.Sprintf(":%d", port)', 'address := fmt.Sprintf("127.0.0.1:%d", port)'),
    ('url := "http://localhost" + address', 'url := "http://" + address'),
    ('url = "https://localhost" + address', 'url = "https://" + address'),
]:
    if text.count(old) != 1:
        sys.exit(f"50-control-plane.sh: cannot patch {path}: {old!r} is not there exactly once")
    text = text.replace(old, new)
path.write_text(text)
PY
  echo "$argo_cli_patch" > "$src/.kiosk-patch-argo"
fi

# A release's version stamp (hack/lib/version.sh upstream sets the same variables): without it
# kube-apiserver and kubectl report v0.0.0-master+$Format:%H$, which Helm's kubeVersion checks
# (the serving chart wants >=1.27) and kubectl's version-skew warning read as v0.0.0.
kube_version="$(awk '{sub(/^require /, "")} $1 == "k8s.io/kubernetes" {print $2; exit}' tools/kube/go.mod)"
kube_minor="${kube_version#v*.}" && kube_minor="${kube_minor%%.*}"
kube_ldflags=""
for var in gitVersion="$kube_version" gitMajor="$(echo "${kube_version#v}" | cut -d. -f1)" gitMinor="$kube_minor" gitTreeState=clean; do
  kube_ldflags+=" -X k8s.io/component-base/version.$var -X k8s.io/client-go/pkg/version.$var"
done

build etcd kube go.etcd.io/etcd/server/v3
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "" "$kube_ldflags"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "" "$kube_ldflags"
for component in kube-controller-manager kube-scheduler kubelet kube-proxy; do
  build "$component" kube "k8s.io/kubernetes/cmd/$component" "" "$kube_ldflags"
done
build workflow-controller argo-workflows github.com/argoproj/argo-workflows/v4/cmd/workflow-controller "$argo_patch"
# Static, as upstream's Makefile builds it (CGO_ENABLED=0): the same binary runs as a host process under
# the agent and inside the executor image `kiosk images build` makes (.ci/install.d/60-images.sh).
CGO_ENABLED=0 build argoexec argoexec github.com/argoproj/argo-workflows/v4/cmd/argoexec "$argo_patch CGO_ENABLED=0"
build argo argo github.com/argoproj/argo-workflows/v4/cmd/argo "$argo_patch $argo_cli_patch ui-placeholder"
