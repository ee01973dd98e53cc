"""The step CLI contract: every params model parses its own flags, and bad input is one line, exit 2."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Literal, get_args, get_origin

import pytest

from pipelines.tools import REPO_ROOT
from steps.common.cli import CliError, parse_args
from steps.common.params_base import StepParams

STEPS_DIR = REPO_ROOT / "steps"
PARAMS_MODULES = sorted(p.parent.name for p in STEPS_DIR.glob("*/params.py"))


def _model(step: str) -> type[StepParams]:
    module = importlib.import_module(f"steps.{step}.params")
    models = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, StepParams) and value.step_module == f"steps.{step}"
    ]
    assert len(models) == 1, f"steps/{step}/params.py must define exactly one params model"
    return models[0]


def _sample(annotation: object, name: str) -> str:
    """A valid value for a required field, as Argo would pass it."""
    if get_origin(annotation) is Literal:
        return str(get_args(annotation)[0])
    if annotation is int:
        return "1"
    if annotation is float:
        return "0.5"
    if annotation is bool:
        return "true"
    if get_origin(annotation) is list:
        return '["a"]'
    return "file:///tmp/x" if name.endswith(("uri", "store")) else "x"


def _required_args(model: type[StepParams]) -> list[str]:
    args = []
    for name, field in model.model_fields.items():
        if field.is_required():
            flag = (field.alias or name).replace("_", "-")
            args.append(f"--{flag}={_sample(field.annotation, name)}")
    return args


def test_every_step_has_a_params_model() -> None:
    assert {"ingest", "infer", "report", "cleanup", "synth", "benchmark"} <= set(PARAMS_MODULES)


@pytest.mark.parametrize("step", PARAMS_MODULES)
def test_required_flags_round_trip(step: str) -> None:
    model = _model(step)
    parsed = parse_args(model, _required_args(model))
    assert isinstance(parsed, model)
    for name, field in model.model_fields.items():
        if not field.is_required():
            assert getattr(parsed, name) == field.get_default(call_default_factory=True)


@pytest.mark.parametrize("step", PARAMS_MODULES)
def test_every_field_is_documented(step: str) -> None:
    for name, field in _model(step).model_fields.items():
        assert field.description, f"steps.{step}: field {name} has no description (it becomes Argo/CLI help)"


@pytest.mark.parametrize("step", PARAMS_MODULES)
def test_unknown_flag_is_rejected(step: str) -> None:
    model = _model(step)
    with pytest.raises(CliError, match="bogus"):
        parse_args(model, [*_required_args(model), "--bogus=1"])


@pytest.mark.parametrize("step", PARAMS_MODULES)
def test_missing_required_flag_is_named(step: str) -> None:
    model = _model(step)
    required = _required_args(model)
    with pytest.raises(CliError, match=required[0].split("=")[0].lstrip("-")):
        parse_args(model, required[1:])


def test_booleans_accept_argo_and_human_forms() -> None:
    from steps.cleanup.params import CleanupParams

    base = ["--store=file:///tmp/s", "--prefix=uploads", "--older-than=3d"]
    assert parse_args(CleanupParams, [*base, "--dry-run=false"]).dry_run is False
    assert parse_args(CleanupParams, [*base, "--dry-run=TRUE"]).dry_run is True
    assert parse_args(CleanupParams, [*base, "--no-dry-run"]).dry_run is False
    assert parse_args(CleanupParams, [*base, "--json"]).json_report is True
    with pytest.raises(CliError, match="--dry-run: expected true or false"):
        parse_args(CleanupParams, [*base, "--dry-run=maybe"])


def test_lists_accept_json_and_repeats() -> None:
    from steps.cleanup.params import CleanupParams

    base = ["--store=file:///tmp/s", "--older-than=3d"]
    assert parse_args(CleanupParams, [*base, '--prefix=["a","b"]']).prefix == ["a", "b"]
    assert parse_args(CleanupParams, [*base, "--prefix=a", "--prefix", "b"]).prefix == ["a", "b"]


def test_environment_does_not_leak_into_params(monkeypatch: pytest.MonkeyPatch) -> None:
    from steps.cleanup.params import CleanupParams

    monkeypatch.setenv("MAX_DELETES", "1")
    monkeypatch.setenv("max_deletes", "1")
    parsed = parse_args(CleanupParams, ["--store=file:///tmp/s", "--prefix=a", "--older-than=3d"])
    assert parsed.max_deletes == CleanupParams.model_fields["max_deletes"].default


@pytest.mark.parametrize("step", PARAMS_MODULES)
def test_bad_value_is_one_line_exit_2(step: str) -> None:
    model = _model(step)
    result = subprocess.run(
        [sys.executable, "-m", f"steps.{step}", *_required_args(model), "--outputs-dir"],
        capture_output=True,
        text=True,
        cwd=STEPS_DIR.parent,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"steps.{step}: error:"), result.stderr
