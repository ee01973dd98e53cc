#!/usr/bin/env bash
# Builds the real node's runtime into .tools/bin: containerd, ctr and containerd-shim-runc-v2
# (tools/containerd), runc (tools/runc, with cgo and libseccomp so pods' seccomp profiles are
# enforced), and the CNI plugins bridge, host-local, loopback and portmap into .tools/cni/bin
# (tools/cni-plugins), CoreDNS, the cluster's DNS (tools/coredns), and crane (tools/crane), whose
# registry on 127.0.0.1 is containerd's mirror. kubelet and kube-proxy are built with the control
# plane (50-control-plane.sh).
# Each binary has a stamp of its wrapper's sources, build flags and the Go version: a rerun is a no-op.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/bin:$PATH"
command -v go >/dev/null || { echo "go not found: run .ci/install.d/10-go.sh" >&2; exit 1; }
mkdir -p .tools/bin .tools/cni/bin

# runc's seccomp support links libseccomp through cgo: its headers come from Debian. kube-proxy's
# nftables mode programs Services through the `nft` command (Debian's nftables).
apt_install() {
  command -v apt-get >/dev/null || { echo "45-node.sh: needs Debian packages $* (apt-get not found)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null; }
}
pkg-config --exists libseccomp 2>/dev/null || apt_install libseccomp-dev pkg-config
command -v nft >/dev/null || apt_install nftables

# build OUT WRAPPER PACKAGE CGO TAGS [LDFLAGS]: go build PACKAGE inside tools/WRAPPER into OUT.
build() {
  local out=$1 wrapper=tools/$2 package=$3 cgo=$4 tags=$5 ldflags=${6:-} stamp sum start
  stamp=.tools/$(basename "$out").stamp
  sum="$( (go env GOVERSION; echo "$package $cgo $tags $ldflags"; cat "$wrapper"/go.mod "$wrapper"/go.sum "$wrapper"/*.go) | sha256sum | cut -d' ' -f1)"
  if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "$(basename "$out") is up to date"
    return
  fi
  start=$SECONDS
  (cd "$wrapper" && CGO_ENABLED=$cgo GOFLAGS=-mod=readonly go build -trimpath -tags "$tags" -ldflags="$ldflags" \
    -o "$OLDPWD/$out.partial" "$package")
  mv "$out.partial" "$out"
  echo "$sum" > "$stamp"
  echo "built $out in $((SECONDS - start)) s"
}

version() { awk -v m="$1" '{sub(/^require /, "")} $1 == m {print $2; exit}' "tools/$2/go.mod"; }
containerd=$(version github.com/containerd/containerd/v2 containerd)
runc=$(version github.com/opencontainers/runc runc)
# No btrfs/devmapper/zfs snapshotters (overlayfs is the node's), so containerd needs no C headers.
snapshotters="no_btrfs no_devmapper no_zfs"
stamp_version="-X github.com/containerd/containerd/v2/version.Version=$containerd"
build .tools/bin/containerd containerd github.com/containerd/containerd/v2/cmd/containerd 0 "$snapshotters" "$stamp_version"
build .tools/bin/ctr containerd github.com/containerd/containerd/v2/cmd/ctr 0 "$snapshotters" "$stamp_version"
build .tools/bin/containerd-shim-runc-v2 containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 0 "" "$stamp_version"
build .tools/bin/runc runc github.com/opencontainers/runc 1 "seccomp urfave_cli_no_docs" "-X main.version=${runc#v}"
for plugin in main/bridge ipam/host-local main/loopback meta/portmap; do
  build ".tools/cni/bin/$(basename "$plugin")" cni-plugins "github.com/containernetworking/plugins/plugins/$plugin" 0 ""
done
# The cluster's DNS: CoreDNS with the plugins tools/coredns/main.go names.
build .tools/bin/coredns coredns . 0 ""
# The node's registry mirror (`crane registry serve`) and what loads images into it (`crane push`).
build .tools/bin/crane crane github.com/google/go-containerregistry/cmd/crane 0 ""
