"""Rendered workflow templates reference exactly the images the config names, and only step modules
that exist. Reads `argocd/workflows/<env>/*.yaml` (from `kiosk render`) and `pipelines/config/`.

Skips only while no rendered tree exists; once `kiosk render` has run, any mismatch fails.
"""

from __future__ import annotations

import pytest
import yaml

from pipelines.config import ENVIRONMENTS, load_config
from pipelines.tools import REPO_ROOT

WORKFLOWS = REPO_ROOT / "argocd" / "workflows"
ENVS = sorted(d.name for d in WORKFLOWS.glob("*") if d.is_dir() and any(d.glob("*.yaml")))


def test_rendered_tree_exists():
    assert sorted(ENVIRONMENTS) == ENVS, "run `kiosk render`"


def config_images(env: str) -> set[str]:
    """The images the typed config names for `env`: the CPU image, plus the GPU one where GPUs are used."""
    config = load_config(env)
    images = {config.image.ref(gpu=False)}
    if config.gpu.count > 0:
        images.add(config.image.ref(gpu=True))
    return images


def _containers(node):
    """Every container-like mapping (container, script, initContainers, sidecars) in a manifest."""
    if isinstance(node, dict):
        if isinstance(node.get("image"), str):
            yield node
        for value in node.values():
            yield from _containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value)


def rendered(env: str) -> list[dict]:
    docs = []
    for path in sorted((WORKFLOWS / env).glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.mark.parametrize("env", ENVS)
def test_rendered_images_are_exactly_the_configured_ones(env: str):
    used = {c["image"] for doc in rendered(env) for c in _containers(doc)}
    configured = config_images(env)
    assert used, f"argocd/workflows/{env} references no image"
    assert used == configured, (
        f"only rendered: {sorted(used - configured)}; only configured: {sorted(configured - used)}"
    )


@pytest.mark.parametrize("env", ENVS)
def test_rendered_step_modules_exist(env: str):
    modules = set()
    for doc in rendered(env):
        for container in _containers(doc):
            argv = [*container.get("command", []), *container.get("args", [])]
            for i, token in enumerate(argv[:-1]):
                if token == "-m" and str(argv[i + 1]).startswith("steps."):
                    modules.add(argv[i + 1])
    for module in sorted(modules):
        assert (REPO_ROOT / module.replace(".", "/") / "__main__.py").is_file(), f"{module} has no __main__.py"
