#!/usr/bin/env bash
# Debian packages the tests start themselves, on loopback:
#   prometheus, prometheus-pushgateway - the benchmark step's Prometheus tests;
#   chromium                           - the benchmark tests open report.html and screenshot it;
#   strace                             - the file store's tests see its fsync calls happen;
#   redis-server                       - Argo CD's cache (`kiosk cluster up --with argocd`);
#   buildah, mmdebstrap, runc, busybox - `kiosk images build` (runc runs buildah's RUN steps and the
#                                        image tests' containers; busybox-static is the busybox base).
# Needs root and apt-get; installs only what is missing from PATH, so a warm machine costs nothing.
set -euo pipefail
declare -A wanted=([prometheus]=prometheus [prometheus-pushgateway]=prometheus-pushgateway [chromium]=chromium [strace]=strace [redis-server]=redis-server [buildah]=buildah [mmdebstrap]=mmdebstrap [runc]=runc [busybox]=busybox-static [gcc]=gcc)
missing=()
for binary in "${!wanted[@]}"; do
  if command -v "$binary" >/dev/null 2>&1; then
    echo "$binary already installed: $(command -v "$binary")"
  else
    missing+=("${wanted[$binary]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$(basename "$0"): needs Debian/Ubuntu apt-get; install ${missing[*]} yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# Without systemd the packages' services do not start; the tests start their own instances.
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for binary in "${!wanted[@]}"; do command -v "$binary"; done
