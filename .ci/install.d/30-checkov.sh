#!/usr/bin/env bash
# checkov runs in its own uv tool environment: it pins an old boto3 that must never enter the
# project's lock. This pre-warms uv's cache so `kiosk lint` starts checkov offline-fast, and
# installs a wrapper so `find_tool("checkov")` finds the pinned version.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=3.3.30
command -v uvx >/dev/null || { echo "uvx not found (install uv)" >&2; exit 1; }
uvx --from "checkov==${version}" checkov --version
cat > .tools/bin/checkov <<WRAPPER
#!/usr/bin/env bash
exec uvx --from "checkov==${version}" checkov "\$@"
WRAPPER
chmod +x .tools/bin/checkov
