"""Every step container in every rendered file speaks its step's CLI.

The args of each container template are parsed back through `steps.common.cli.parse_args` with the
params model of the step it runs, after `{{...}}` placeholders get a valid value for their flag.
"""

from __future__ import annotations

import importlib
import re
import typing
from typing import Any, Literal

import pytest
import yaml

from pipelines.tools import REPO_ROOT
from steps.common.cli import parse_args
from steps.common.params_base import StepParams

FILES = sorted((REPO_ROOT / "argocd" / "workflows").glob("*/*.yaml"))
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
INPUT = re.compile(r"^inputs\.parameters\.([A-Za-z0-9_-]+)$")


def containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in FILES:
        doc = yaml.safe_load(path.read_text())
        spec = doc.get("spec", {})
        spec = spec.get("workflowSpec", spec)
        for template in spec.get("templates", []):
            if "container" in template:
                found.append((f"{path.relative_to(REPO_ROOT)}::{template['name']}", template))
    return found


CASES = containers()


def params_model(command: list[str]) -> type[StepParams]:
    assert command[:2] == ["python", "-m"] and len(command) == 3, f"not `python -m steps.<name>`: {command}"
    module = importlib.import_module(f"{command[2]}.params")
    models = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, StepParams) and v.step_module == command[2]
    ]
    assert len(models) == 1, f"{command[2]}.params must define exactly one model with step_module={command[2]!r}"
    return models[0]


def flag_field(model: type[StepParams], flag: str) -> str:
    for name, info in model.model_fields.items():
        if (info.alias or name).replace("_", "-") == flag:
            return name
    raise AssertionError(f"--{flag} is no field of {model.__name__}")


def sample(model: type[StepParams], field: str) -> str:
    """A value the field accepts: its default when it has one, otherwise one of its type."""
    info = model.model_fields[field]
    annotation = info.annotation
    if not info.is_required():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, bool):
            return "true" if default else "false"
        if not isinstance(default, list):
            return str(default)
    if annotation is bool:
        return "true"
    if typing.get_origin(annotation) is Literal:
        return str(typing.get_args(annotation)[0])
    if annotation is int:
        return "1"
    if annotation is float:
        return "0.5"
    if typing.get_origin(annotation) is list:
        return '["sample"]'
    return "s3://bucket/sample" if field.endswith("uri") else "sample"


def resolve(template: dict[str, Any], model: type[StepParams], flag: str, value: str) -> str:
    inputs = {p["name"]: p for p in template.get("inputs", {}).get("parameters", [])}
    field = flag_field(model, flag)
    match = PLACEHOLDER.fullmatch(value)
    if match and (name := INPUT.match(match.group(1))):
        assert name.group(1) in inputs, f"--{flag} uses undeclared input {name.group(1)!r}"
        return inputs[name.group(1)].get("default", sample(model, field))
    if match:  # a whole value from a global (e.g. --attempt={{retries}}): one of the flag's type
        return sample(model, field)
    # Globals inside a literal (e.g. a URI with {{workflow.name}}): any name-like text will do.
    return PLACEHOLDER.sub("sample", value)


@pytest.mark.parametrize(("case", "template"), CASES, ids=[c for c, _ in CASES])
def test_container_args_parse_with_the_step_cli(case: str, template: dict[str, Any]) -> None:
    model = params_model(template["container"]["command"])
    argv = []
    passed = set()
    for arg in template["container"]["args"]:
        flag, sep, value = arg.partition("=")
        assert flag.startswith("--") and sep, f"{case}: arg {arg!r} is not --flag=value"
        flag = flag[2:]
        passed.add(flag_field(model, flag))
        argv.append(f"--{flag}={resolve(template, model, flag, value)}")
    parse_args(model, argv)
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert required <= passed, f"{case}: required flags not passed: {sorted(required - passed)}"


@pytest.mark.parametrize(("case", "template"), CASES, ids=[c for c, _ in CASES])
def test_inputs_are_the_models_fields_with_its_help_and_choices(case: str, template: dict[str, Any]) -> None:
    model = params_model(template["container"]["command"])
    used = set(PLACEHOLDER.findall(" ".join(template["container"]["args"])))
    for param in template.get("inputs", {}).get("parameters", []):
        field = flag_field(model, param["name"])
        info = model.model_fields[field]
        assert f"inputs.parameters.{param['name']}" in used, f"{case}: input {param['name']} is never passed"
        assert param.get("description") == info.description, f"{case}: {param['name']} description"
        choices = (
            ["true", "false"]
            if info.annotation is bool
            else [str(c) for c in typing.get_args(info.annotation)]
            if typing.get_origin(info.annotation) is Literal
            else None
        )
        assert param.get("enum") == choices, f"{case}: {param['name']} enum"


def test_contract_sees_every_step() -> None:
    steps = {t["container"]["command"][2] for _, t in CASES}
    on_disk = {f"steps.{p.parent.name}" for p in (REPO_ROOT / "steps").glob("*/params.py")}
    assert steps == on_disk
