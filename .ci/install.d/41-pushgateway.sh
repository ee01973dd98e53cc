#!/usr/bin/env bash
# Prometheus Pushgateway: the benchmark tests push step metrics to it, Prometheus scrapes it.
# Debian package, needs root; exits at once when the binary is already on PATH.
set -euo pipefail
if command -v prometheus-pushgateway >/dev/null 2>&1; then
  echo "prometheus-pushgateway already installed: $(command -v prometheus-pushgateway)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$(basename "$0"): needs Debian/Ubuntu apt-get; install prometheus-pushgateway yourself" >&2
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
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
command -v prometheus-pushgateway
