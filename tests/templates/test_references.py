"""Templates reference parameters through Hera's objects (`get_parameter`), so a wrong name fails
when the template is built, not later in a run; argument names come from the params models.
"""

from __future__ import annotations

import re

import pytest
from hera.workflows import Container, Parameter, Steps, WorkflowTemplate

from pipelines.config import load_config
from pipelines.templates import _common, _params
from pipelines.tools import REPO_ROOT
from steps.ingest.params import IngestParams

#: A reference spelled by hand: `{{inputs.parameters.x}}`, `{{tasks.t.outputs...}}`, `{{workflow.parameters.x}}`
#: built in an f-string (doubled braces). `{{workflow.name}}`, `{{item...}}` and metric templating have no
#: Hera object to come from.
HAND_BUILT = re.compile(r"\{\{\{\{(inputs\.parameters|tasks\.|steps\.|workflow\.parameters)")


def test_step_args_reference_the_containers_own_inputs() -> None:
    cfg = load_config("local")
    with WorkflowTemplate(name="t", entrypoint="ingest"):
        spec = _common.StepSpec(name="ingest", model=IngestParams, inputs=("input_uri", "force"), outputs={})
        container = _common.step_container(cfg, "t", spec)
    assert container.args[:2] == ["--input-uri={{inputs.parameters.input-uri}}", "--force={{inputs.parameters.force}}"]


def test_a_reference_to_a_missing_input_fails_at_build_time() -> None:
    with WorkflowTemplate(name="t", entrypoint="c"):
        container = Container(name="c", image="x", inputs=[Parameter(name="input-uri")])
        with pytest.raises(KeyError, match="output-uri"):
            _params.args(IngestParams, ("input_uri", "output_uri"), {}, lambda n: container.get_parameter(n).value)


def test_a_task_output_that_does_not_exist_fails_at_build_time() -> None:
    with WorkflowTemplate(name="t", entrypoint="s"):
        producer = Container(name="p", image="x", outputs=[Parameter(name="uri", value_from={"path": "/tmp/uri"})])
        with Steps(name="s"):
            step = producer(name="make")
            assert step.get_parameter("uri").value == "{{steps.make.outputs.parameters.uri}}"
            with pytest.raises(KeyError, match="urls"):
                step.get_parameter("urls")


def test_step_spec_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        _common.StepSpec("ingest", IngestParams, ("input_uri",), {})


@pytest.mark.parametrize(
    "path",
    sorted((REPO_ROOT / "pipelines" / "templates").glob("*.py")),
    ids=lambda p: p.name,
)
def test_no_template_spells_a_reference_by_hand(path) -> None:
    found = [f"{path.name}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1) if HAND_BUILT.search(line)]
    assert found == []
