#!/usr/bin/env bash
# checkov runs in its own uv tool environment: it pins an old boto3 that must never enter the
# project's lock. This pre-warms uv's cache so `kiosk lint` starts checkov offline-fast, and
# installs a wrapper so `find_tool("checkov")` finds the pinned version.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=3.3.30
command -v uvx >/dev/null || { echo "uvx not found (install uv)" >&2; exit 1; }
wrapper="$(printf '#!/usr/bin/env bash\nexec uvx --from "checkov==%s" checkov "$@"\n' "$version")"
# `checkov --version` imports all of checkov (~20 s), so only warm when the pin changed.
if [ -x .tools/bin/checkov ] && [ "$(cat .tools/bin/checkov)" = "$wrapper" ]; then
  echo "checkov ${version} is installed"
  exit 0
fi
uvx --from "checkov==${version}" checkov --version
printf '%s\n' "$wrapper" > .tools/bin/checkov
chmod +x .tools/bin/checkov
