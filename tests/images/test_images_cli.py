"""`kiosk images build`: what it refuses without its tools, and which public images it stands in for."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from pipelines.cluster.controlplane import EXECUTOR_IMAGE
from pipelines.images import catalog
from pipelines.tools import REPO_ROOT
from tests.fixtures.upstream_examples import examples_dir


def _specs() -> list[catalog.ImageSpec]:
    return catalog.catalog(uv_version="0", steps_tag="localhost/kiosk-steps:dev", executor_image=EXECUTOR_IMAGE)


def test_images_build_without_tools_exits_2(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    argv = [sys.executable, "-c", "from pipelines.cli import main; main()", "images", "build"]
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("kiosk images build: missing ") and "mmdebstrap (Debian package mmdebstrap)" in line


def test_images_stand_ins_are_images_the_examples_name() -> None:
    named = set()
    for example in examples_dir().rglob("*.yaml"):
        named |= set(re.findall(r"image: *['\"]?([^\s'\"{}]+)", example.read_text()))
    qualified = {f"docker.io/{'library/' if '/' not in n else ''}{n}{'' if ':' in n else ':latest'}" for n in named}
    stand_ins = {ref for spec in _specs() if spec.stands_in or spec.name == "argosay" for ref in spec.references}
    assert stand_ins <= qualified, stand_ins - qualified


def test_images_dependencies_come_first() -> None:
    seen: set[str] = set()
    for spec in _specs():
        assert set(spec.depends) <= seen, spec.name
        seen.add(spec.name)
