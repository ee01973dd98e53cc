#!/usr/bin/env bash
# GNU make runs the checks (`make ci`). The polyglot image has it; install it where it is missing.
set -euo pipefail
if command -v make >/dev/null 2>&1; then
  echo "make already installed: $(command -v make)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$(basename "$0"): needs Debian/Ubuntu apt-get; install make yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends make >/dev/null
command -v make
