#!/usr/bin/env bash
# Headless Chromium: the benchmark tests open report.html and screenshot it.
# Debian package, needs root; exits at once when the binary is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(command -v chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$(basename "$0"): needs Debian/Ubuntu apt-get; install chromium yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Several install scripts may need apt: refresh the index only when no script did in the last hour.
stamp=/var/lib/apt/lists/.kiosk-updated
if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  touch "$stamp"
fi
# Without systemd the package's service would not start anyway; tests start their own instance.
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
