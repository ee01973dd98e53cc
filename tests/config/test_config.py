"""Config: every environment validates, overlays carry only differences, errors name file + field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import ENVIRONMENTS, ConfigError, KioskConfig, load_config
from pipelines.config.loader import CONFIG_DIR

OVERLAYS = sorted(p for p in CONFIG_DIR.glob("*.yaml") if p.stem != "base")


def leaves(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Mapping leaves; lists are leaves because the loader replaces them whole."""
    if isinstance(data, dict) and data:
        return [leaf for key, value in data.items() for leaf in leaves(value, (*path, key))]
    return [(path, data)]


def base_value(path: tuple[str, ...]) -> Any:
    """The value base.yaml gives `path`, model defaults included."""
    node: Any = KioskConfig.model_validate(yaml.safe_load((CONFIG_DIR / "base.yaml").read_text())).model_dump()
    for part in path:
        node = node[part]
    return node


def test_overlays_are_exactly_the_environments() -> None:
    assert sorted(p.stem for p in OVERLAYS) == sorted(ENVIRONMENTS)


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_is_base_with_its_overlay(env: str) -> None:
    loaded = load_config(env).model_dump()
    overlay = yaml.safe_load((CONFIG_DIR / f"{env}.yaml").read_text()) or {}
    overridden = leaves(overlay)
    assert overridden, f"{env}.yaml changes nothing"
    assert [(path, _at(loaded, path)) for path, _ in overridden] == overridden
    base_yaml = yaml.safe_load((CONFIG_DIR / "base.yaml").read_text())
    base = leaves(KioskConfig.model_validate({**base_yaml, "env": env}).model_dump())
    kept = [(path, value) for path, value in base if not any(path[: len(o)] == o for o, _ in overridden)]
    assert [(path, _at(loaded, path)) for path, _ in kept] == kept


def repeated(overlay: dict[str, Any]) -> list[str]:
    """Fields an overlay sets to the value base already gives them."""
    return [".".join(path) for path, value in leaves(overlay) if value == base_value(path)]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_carries_only_differences(overlay: Path) -> None:
    assert repeated(yaml.safe_load(overlay.read_text()) or {}) == [], f"{overlay.name} repeats base; remove those"


def test_a_repeated_value_is_caught() -> None:
    overlay = {"inference": {"batch_size": base_value(("inference", "batch_size")), "parallelism": 999}}
    overlay["gpu"] = {"tolerations": base_value(("gpu", "tolerations"))}
    assert repeated(overlay) == ["inference.batch_size", "gpu.tolerations"]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _set(path: Path, dotted: str, value: Any) -> None:
    data = yaml.safe_load(path.read_text()) or {}
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("file", "field", "value"),
    [
        ("dev.yaml", "inference.batch_size", 0),
        ("base.yaml", "workflow.run_as_user", 0),
        ("prod.yaml", "service_account", "default"),
        ("staging.yaml", "storage.uri", "ftp://nope"),
        ("local.yaml", "retention.older_than", "soon"),
    ],
)
def test_invalid_value_names_file_and_field(config_dir: Path, file: str, field: str, value: Any) -> None:
    _set(config_dir / file, field, value)
    env = "dev" if file == "base.yaml" else file.removesuffix(".yaml")
    with pytest.raises(ConfigError) as error:
        load_config(env, config_dir)
    assert f"{config_dir / file}: {field}:" in str(error.value)


def test_unknown_field_is_named(config_dir: Path) -> None:
    _set(config_dir / "dev.yaml", "inference.batch_sise", 4)
    with pytest.raises(ConfigError, match=r"dev\.yaml: inference\.batch_sise: Extra inputs"):
        load_config("dev", config_dir)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_config_env_is_its_file_name(env: str) -> None:
    assert load_config(env).env == env


def test_env_key_in_yaml_is_refused(config_dir: Path) -> None:
    _set(config_dir / "prod.yaml", "env", "dev")
    with pytest.raises(ConfigError, match=r"prod\.yaml: env: not a setting"):
        load_config("prod", config_dir)


def test_kiosk_render_fails_with_one_line_naming_file_and_field(config_dir: Path, tmp_path: Path) -> None:
    _set(config_dir / "staging.yaml", "gpu.count", -1)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "render", "--config-dir", str(config_dir), "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"{config_dir / 'staging.yaml'}: gpu.count:" in result.stderr
    assert not (tmp_path / "argocd").exists(), "nothing may be written when the config is invalid"
