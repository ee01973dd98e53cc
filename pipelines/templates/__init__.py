"""Hera definitions, one module per WorkflowTemplate/CronWorkflow, each exposing `build(cfg, env)`.

Modules are discovered, never listed: a new template is one new module. Modules whose name starts
with `_` hold shared helpers.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pipelines.config import KioskConfig


def modules() -> list[Any]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if not callable(getattr(module, "build", None)):
            raise TypeError(f"{module.__name__} must expose build(cfg, env)")
        found.append(module)
    return found


def build_all(cfg: KioskConfig, env: str) -> list[dict[str, Any]]:
    """Every workflow object of `env`, as plain dicts ready to be written."""
    return [module.build(cfg, env).to_dict() for module in modules()]
