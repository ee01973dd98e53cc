"""The built steps image runs its steps under the rendered securityContext, enforced by runc itself.

The image is the archive `kiosk images build` wrote (`.ci/install.d/60-images.sh` builds it); runc
runs it with the securityContext and limits of the local env's rendered synthetic-data template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.images import archive
from pipelines.images.build import images_dir
from pipelines.tools import REPO_ROOT, in_ci
from testkit.runc_bundle import Bundle, Limits, Security
from tests.fixtures.tools import require_tool

PYTHON = "/app/.venv/bin/python"
TEMPLATE = REPO_ROOT / "argocd" / "workflows" / "local" / "workflowtemplate-synthetic-data.yaml"
#: Printed from inside the container: who it runs as, what it may write, its capabilities and seccomp.
PROBE = """
import json, os
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "root": writable("/probe"), "tmp": writable("/tmp/probe"),
                  "root_read_only": bool(os.statvfs("/").f_flag & os.ST_RDONLY),
                  "cap_eff": status["CapEff"].strip(), "seccomp": status["Seccomp"].strip()}))
"""


def _rendered() -> tuple[dict[str, Any], dict[str, Any]]:
    spec = yaml.safe_load(TEMPLATE.read_text())["spec"]
    (container,) = [t["container"] for t in spec["templates"] if "container" in t]
    return spec["securityContext"], container


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    entry = archive.read_index(images_dir()).get("kiosk-steps")
    if entry is None:
        message = "no steps image in .tools/images (run .ci/install.d/60-images.sh)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    _, container = _rendered()
    assert entry["reference"] == container["image"]
    return Bundle.create(archive=images_dir() / entry["archive"], path=tmp_path_factory.mktemp("steps-bundle"))


@pytest.fixture(scope="module")
def security() -> Security:
    return Security.from_rendered(*_rendered())


@pytest.fixture(scope="module")
def runc() -> Path:
    return require_tool("runc")


def test_steps_container_help_runs(bundle: Bundle, security: Security, runc: Path) -> None:
    result = bundle.run(runc, [PYTHON, "-m", "steps.synth", "--help"], security=security)
    assert result.returncode == 0, result.stderr
    assert "--output-uri" in result.stdout


def test_steps_container_hardening_holds(bundle: Bundle, security: Security, runc: Path) -> None:
    result = bundle.run(runc, [PYTHON, "-c", PROBE], security=security)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "uid": 10001,
        "gid": 10001,
        "root": False,
        "tmp": True,
        "root_read_only": True,
        "cap_eff": "0000000000000000",
        "seccomp": "2",
    }


def test_steps_container_step_writes_outputs(bundle: Bundle, security: Security, runc: Path) -> None:
    args = [PYTHON, "-m", "steps.synth", "--output-uri=file:///tmp/store/images", "--count=3", "--width=32"]
    args += ["--height=32", "--workers=1", "--outputs-dir=/tmp/outputs"]
    script = (
        f"import subprocess, os; subprocess.run({args!r}, check=True); print(sorted(os.listdir('/tmp/store/images')))"
    )
    result = bundle.run(runc, [PYTHON, "-c", script], security=security)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".png") == 3


def test_steps_container_memory_limit_kills(bundle: Bundle, security: Security, runc: Path) -> None:
    hog = "block = bytearray(512 * 2**20); print('survived', len(block))"
    result = bundle.run(runc, [PYTHON, "-c", hog], security=security, limits=Limits(memory=128 * 2**20))
    assert result.returncode == 137, (result.returncode, result.stdout, result.stderr)
    assert "survived" not in result.stdout
