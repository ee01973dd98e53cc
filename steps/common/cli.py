"""Turn argv into a step's params model and run the step, with one-line errors.

Flags are parsed by pydantic-settings' `CliApp`, so the params model alone defines flag names
(kebab-case), help text, defaults and choices.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, CliApp, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from steps.common.errors import StepError
from steps.common.params_base import StepParams

P = TypeVar("P", bound=StepParams)


class CliError(StepError):
    pass


def _cli_model(model: type[P]) -> type[BaseSettings]:
    class _Cli(BaseSettings, model):  # type: ignore[misc, valid-type]
        model_config = SettingsConfigDict(
            cli_kebab_case=True,
            cli_implicit_flags=True,
            cli_exit_on_error=False,
            cli_prog_name=f"python -m {model.step_module}",
            cli_avoid_json=True,
            extra="forbid",
            frozen=True,
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # Only argv counts: a stray environment variable must not change what a step does.
            return (init_settings,)

    _Cli.__name__ = model.__name__
    return _Cli


def _one_line(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        flag = "--" + "-".join(str(p) for p in item["loc"]).replace("_", "-") if item["loc"] else "arguments"
        value = item.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        parts.append(f"{flag}: {item['msg']}{shown}")
    return "; ".join(parts)


def _flag(name: str, model: type[P]) -> str:
    field = model.model_fields[name]
    return "--" + (field.alias or name).replace("_", "-")


def _explicit_bools(model: type[P], argv: Sequence[str]) -> list[str]:
    """Rewrite `--flag=true|false` (how Argo passes booleans) into `--flag` / `--no-flag`.

    Both forms must work: people type `--dry-run`, rendered templates pass `--dry-run=false`.
    """
    bools = {_flag(n, model) for n, f in model.model_fields.items() if f.annotation is bool}
    out = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag in bools:
            lowered = value.strip().lower()
            if lowered not in {"true", "false"}:
                raise CliError(f"invalid arguments: {flag}: expected true or false (got {value!r})")
            arg = flag if lowered == "true" else "--no-" + flag[2:]
        out.append(arg)
    return out


def parse_args(model: type[P], argv: Sequence[str]) -> P:
    """Parse `argv` (without the program name) into `model`; raise CliError with a one-line message."""
    try:
        parsed = CliApp.run(_cli_model(model), cli_args=_explicit_bools(model, argv))
    except ValidationError as error:
        raise CliError(f"invalid arguments: {_one_line(error)}") from None
    except SettingsError as error:  # unknown flags or bad syntax, from argparse
        raise CliError(f"invalid arguments: {' '.join(str(error).split())}") from None
    return model.model_validate(parsed.model_dump(by_alias=True))


def main(model: type[P], run: Callable[[P], int | None], argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m steps.<name>`: parse, run, and map StepError to a one-line exit."""
    args = sys.argv[1:] if argv is None else argv
    name = model.step_module
    try:
        params = parse_args(model, args)
        code = run(params) or 0
    except StepError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    raise SystemExit(code)
