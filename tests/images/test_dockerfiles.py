"""The step images: what their Dockerfiles promise, that their modules exist, and that the rendered
workflow templates use exactly the images the config names.

No engine runs here, so the Dockerfiles are read, not built; hadolint runs through the lint check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from pipelines.config import ENVIRONMENTS, load_config
from pipelines.lint.base import LintContext
from pipelines.lint.checks import hadolint
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool

DOCKERFILES = sorted((REPO_ROOT / "images").glob("*.Dockerfile"))
STEP_PACKAGES = sorted(p.parent for p in (REPO_ROOT / "steps").glob("*/params.py"))


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", dockerfile.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    defaults = {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value.strip('"')
    return defaults


def expand(text: str, args: dict[str, str]) -> str:
    """Substitute ARG defaults until none is left: a default may name earlier ARGs, as Docker allows."""
    for _ in range(len(args) + 1):
        text, count = re.subn(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), text)
        if not count:
            break
    return text


def from_default(reference: str, args: dict[str, str]) -> str:
    """A FROM that is one build arg (`FROM ${PYTHON_IMAGE}`, so other bases can be passed) means its default."""
    while (whole := re.fullmatch(r"\$\{(\w+)\}", reference)) is not None:
        reference = args[whole.group(1)]
    return reference


def _title(dockerfile: Path) -> str:
    labels = " ".join(rest for keyword, rest in instructions(dockerfile) if keyword == "LABEL")
    found = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', labels)
    assert found, f"{dockerfile.name}: no org.opencontainers.image.title label"
    return found.group(1)


def test_every_configured_image_has_exactly_one_dockerfile():
    """The image names every environment's config uses (CPU, and GPU where it has GPUs) are exactly the
    titles of the Dockerfiles: a new image without a Dockerfile, or a Dockerfile no config uses, fails.
    """
    configured = set()
    for env in ENVIRONMENTS:
        cfg = load_config(env)
        configured |= {cfg.image.name, cfg.image.gpu_name}
    titles = [_title(d) for d in DOCKERFILES]
    assert len(titles) == len(set(titles)), titles
    assert set(titles) == configured


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_with_optional_digest(dockerfile: Path):
    args = arg_defaults(dockerfile)
    assert "BASE_DIGEST" in args and args["BASE_DIGEST"] == ""
    for stage in stages(dockerfile):
        image = expand(stage[0][1].split()[0], args)
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"[\w.-]*\d[\w.-]*", tag), f"{image} has no version tag"
        assert tag != "latest"
        raw = from_default(stage[0][1].split()[0], args)
        if "${UV_VERSION}" not in raw:
            assert raw.endswith("${BASE_DIGEST}"), f"{raw}: digest pinning by build arg missing"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_is_non_root_without_build_tools(dockerfile: Path):
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 3, "multi-stage: uv, build and runtime"
    final = all_stages[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, f"USER {users[-1]}: numeric UID >= 10000 needed"
    final_text = " ".join(rest for _, rest in final)
    assert "--from=uv" not in final_text and "/usr/local/bin/uv" not in final_text
    for tool in ("build-essential", "gcc", "g++", "make", "git", "curl", "wget"):
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", final_text), f"{tool} in final stage"
    labels = " ".join(rest for keyword, rest in final if keyword == "LABEL")
    for key in ("title", "source", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    # Read-only root filesystem: nothing may need to write outside /tmp.
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_entrypoint_runs_an_existing_step_module(dockerfile: Path):
    final = {k: v for k, v in stages(dockerfile)[-1] if k in {"ENTRYPOINT", "CMD"}}
    entrypoint, cmd = json.loads(final["ENTRYPOINT"]), json.loads(final["CMD"])
    assert entrypoint == ["python", "-m"]
    module = cmd[0]
    assert module.startswith("steps.")
    assert (REPO_ROOT / module.replace(".", "/") / "__main__.py").is_file()


def test_images_carry_every_step_package():
    """Both images install the whole `steps` package, so every step must be runnable with -m."""
    assert STEP_PACKAGES, "no step packages found"
    for package in STEP_PACKAGES:
        assert (package / "__main__.py").is_file(), f"{package.name}: no __main__.py"
        assert (package / "main.py").is_file(), f"{package.name}: no main.py"
    for dockerfile in DOCKERFILES:
        copies = [rest for keyword, rest in instructions(dockerfile) if keyword == "COPY"]
        assert "steps/ steps/" in copies


def test_gpu_image_swaps_onnxruntime_for_the_gpu_build():
    """Runs the GPU image's own `uv export` against the lock: onnxruntime-gpu in, the CPU build out."""
    text = " ".join(rest for _, rest in instructions(REPO_ROOT / "images" / "steps-gpu.Dockerfile"))
    export = re.search(r"uv export (.*?) --output-file", text)
    assert export, "the GPU image no longer exports the lock"
    assert "uv pip sync" in text and "--require-hashes" in text
    assert "WITH_TENSORRT" in text
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    done = subprocess.run(
        [uv, "export", *export.group(1).split()], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    names = {line.split("==")[0] for line in done.stdout.splitlines() if "==" in line and not line[0].isspace()}
    assert "onnxruntime-gpu" in names and "onnxruntime" not in names, sorted(names)


def test_dockerignore_admits_only_what_the_build_needs():
    lines = [ln for ln in (REPO_ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied = {
        source.rstrip("/")
        for dockerfile in DOCKERFILES
        for keyword, rest in instructions(dockerfile)
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }
    # exactly what the builds copy from the context: nothing more gets in, nothing they need is missing
    assert allowed == copied
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]
    assert set(packages["wheel"]["packages"]) <= copied  # the packages the project installs


def test_hadolint_check_is_clean_and_catches_problems(tmp_path: Path):
    if hadolint.hadolint_path() is None:
        require_tool("hadolint")
    clean = hadolint.CHECK.run(LintContext(repo=REPO_ROOT, envs=()))
    assert (clean.checked, clean.findings, clean.missing_tool) == (len(DOCKERFILES), [], None)

    (tmp_path / "images").mkdir()
    shutil.copy(DOCKERFILES[0], tmp_path / "images" / DOCKERFILES[0].name)
    (tmp_path / "images" / "bad.Dockerfile").write_text("FROM python\nRUN pip install requests\nCMD python -m x\n")
    bad = hadolint.CHECK.run(LintContext(repo=tmp_path, envs=()))
    codes = {f.message.split()[0] for f in bad.findings}
    assert {f.target.split(":")[0] for f in bad.findings} == {"images/bad.Dockerfile"}
    assert {"DL3006", "DL3013", "DL3042", "DL3025", "DL3049"} <= codes
