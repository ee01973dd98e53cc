"""`{{...}}` substitution over a flat scope, the way Argo's fasttemplate pass does it.

Scope keys are the dotted names users write (`inputs.parameters.message`,
`steps.flip-coin.outputs.result`); `{{= expr }}` sees the same scope as nested maps.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from pipelines.runner.errors import RunnerError
from pipelines.runner.expressions import evaluate_expr, to_text

_TAG = re.compile(r"\{\{\s*(=)?(.*?)\s*\}\}", re.DOTALL)
# Tags with these prefixes must resolve; anything else (e.g. a shell or Helm `{{`) is left alone.
_STRICT = ("inputs.", "outputs.", "steps.", "tasks.", "item", "workflow.", "pod.", "retries", "node.")


def nested(scope: dict[str, str]) -> dict[str, Any]:
    """The flat scope as nested maps, for expr-lang; JSON-looking `item` values stay structured."""
    root: dict[str, Any] = {}
    for key in sorted(scope, key=len):
        parts = key.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = scope[key]
    if "item" in scope:
        with contextlib.suppress(ValueError):
            root["item"] = json.loads(scope["item"])
    return root


def substitute(text: str, scope: dict[str, str], where: str, strict: bool = True) -> str:
    if "{{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        expression = match.group(2).strip()
        if match.group(1):
            return to_text(evaluate_expr(expression, nested(scope)))
        if expression in scope:
            return scope[expression]
        if strict and expression.startswith(_STRICT):
            raise RunnerError(f"{where}: failed to resolve {{{{{expression}}}}}")
        return match.group(0)

    return _TAG.sub(replace, text)


def substitute_all(value: Any, scope: dict[str, str], where: str, strict: bool = True) -> Any:
    if isinstance(value, str):
        return substitute(value, scope, where, strict)
    if isinstance(value, list):
        return [substitute_all(v, scope, where, strict) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, scope, where, strict) for k, v in value.items()}
    return value


def param_text(value: Any) -> str:
    """Argo parameters are strings; YAML scalars and structures are rendered the way Argo does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return ""
    return str(value)
