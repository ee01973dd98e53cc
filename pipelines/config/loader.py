"""Load `base.yaml` + an environment overlay, and name the file and field of any error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.config.model import KioskConfig

CONFIG_DIR = Path(__file__).resolve().parent
ENVIRONMENTS = ("local", "dev", "staging", "prod")


class ConfigError(ValueError):
    """Invalid configuration; the message names the file and the field."""


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by the overlay, and so is
    a mapping by an empty one: `node_selector: {}` clears it, as `tolerations: []` does a list.
    """
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and value and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _defines(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return False
    return True


def load_config(env: str, config_dir: Path = CONFIG_DIR) -> KioskConfig:
    """The validated config of `env`. Errors name the file that set the offending field."""
    base_path = config_dir / "base.yaml"
    overlay_path = config_dir / f"{env}.yaml"
    if not overlay_path.is_file():
        known = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml") if p.stem != "base"))
        raise ConfigError(f"unknown environment {env!r} (no {overlay_path}); known: {known}")
    base, overlay = _read(base_path), _read(overlay_path)
    for path, data in ((base_path, base), (overlay_path, overlay)):
        if "env" in data:
            raise ConfigError(f"{path}: env: not a setting: an environment's name is its file's name")
    try:
        return KioskConfig.model_validate({**_merge(base, overlay), "env": env})
    except ValidationError as error:
        lines = []
        for item in error.errors():
            loc = tuple(item["loc"])
            source = overlay_path if _defines(overlay, loc) else base_path
            field = ".".join(str(p) for p in loc) or "(top level)"
            lines.append(f"{source}: {field}: {item['msg']}")
        raise ConfigError("; ".join(lines)) from None
