"""Argo parameters and CLI args from a step's params model: the one place names are derived.

The params model (`steps/<step>/params.py`) is the single source of names, descriptions, defaults
and enums; everything here only translates it, so a renamed field breaks the render, not a run.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from hera.workflows import Parameter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from steps.common.params_base import StepParams


def argo_value(value: Any) -> str:
    """How a value travels as an Argo parameter and a step flag: bools lower-case, lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def kebab(model: type[StepParams], field: str) -> str:
    """The flag / parameter name of `field` (its alias wins, as it does on the CLI)."""
    info = _field(model, field)
    return (info.alias or field).replace("_", "-")


def _field(model: type[StepParams], field: str) -> FieldInfo:
    try:
        return model.model_fields[field]
    except KeyError:
        raise KeyError(f"{model.__name__} has no field {field!r} (steps/*/params.py changed?)") from None


def _enum(annotation: Any) -> list[str] | None:
    if annotation is bool:
        return ["true", "false"]
    if typing.get_origin(annotation) is Literal:
        return [argo_value(choice) for choice in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (found := _enum(arg)) is not None:
                return found
    return None


def parameters(
    model: type[StepParams],
    fields: Iterable[str],
    defaults: Mapping[str, Any] | None = None,
    *,
    as_arguments: bool = False,
) -> list[Parameter]:
    """Argo parameters for `fields` of `model`; `defaults` (config-derived) override the model's.

    Template inputs carry `default` (a caller may override it); workflow arguments carry `value`,
    which is what `argo submit -p` replaces.
    """
    defaults = dict(defaults or {})
    unknown = set(defaults) - set(fields)
    if unknown:
        raise KeyError(f"defaults for fields not exposed: {sorted(unknown)}")
    out = []
    for field in fields:
        info = _field(model, field)
        default: Any = defaults[field] if field in defaults else info.get_default(call_default_factory=True)
        kwargs: dict[str, Any] = {"name": kebab(model, field), "description": info.description}
        if default is not PydanticUndefined:
            kwargs["value" if as_arguments else "default"] = argo_value(default)
        if (enum := _enum(info.annotation)) is not None:
            kwargs["enum"] = enum
        out.append(Parameter(**kwargs))
    return out


def extra_parameter(
    name: str, description: str, default: Any = PydanticUndefined, *, as_arguments: bool = False
) -> Parameter:
    """A parameter that is no step's flag (DAG plumbing such as `parallelism` or `sweep`)."""
    kwargs: dict[str, Any] = {"name": name, "description": description}
    if default is not PydanticUndefined:
        kwargs["value" if as_arguments else "default"] = argo_value(default)
    return Parameter(**kwargs)


def args(
    model: type[StepParams], inputs: Iterable[str], literals: Mapping[str, Any], reference: Callable[[str], Any]
) -> list[str]:
    """`--flag=<reference to the input>` for each input field, then `--flag=<value>` for literals.

    `reference(name)` is the template's own reference to its input `name` (Hera's `get_parameter`).
    """
    out = [f"--{kebab(model, f)}={reference(kebab(model, f))}" for f in inputs]
    out += [f"--{kebab(model, f)}={argo_value(v)}" for f, v in literals.items()]
    return out


def arguments(model: type[StepParams], fields: Iterable[str], reference: Callable[[str], Any]) -> dict[str, Any]:
    """{parameter name: reference(name)} for `fields` of `model`: a task's arguments passing its
    caller's parameters of the same names through (`reference` is e.g. the caller's get_parameter).
    """
    return {kebab(model, f): reference(kebab(model, f)) for f in fields}
