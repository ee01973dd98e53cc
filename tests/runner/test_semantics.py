"""Argo semantics the upstream examples do not pin down: isolation, retries, deadlines, refs, CLI."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.runner import api, isolation
from pipelines.runner.errors import RunnerError, UnsupportedFeature
from tests.runner.stdout import printed


def write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(tmp_path: Path, text: str, **kwargs: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list]:
    workflow_run = api.prepare(str(write(tmp_path, text)), env=None, workdir=tmp_path / "wd", **kwargs)
    workflow = workflow_run.run()
    nodes = {n["displayName"]: n for n in workflow["status"]["nodes"].values()}
    return workflow, nodes, workflow_run.status.events


def manifest(name: str, templates: str, *, spec: str = "", entrypoint: str = "main") -> str:
    """A Workflow named `<name>-…`: `templates` is the YAML of its templates list and `spec` any
    further spec lines, both indented for the spec.
    """
    return (
        f"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{generateName: {name}-}}\n"
        f"spec:\n  entrypoint: {entrypoint}\n{spec}  templates:\n{templates}"
    )


#: Six nodes write /tmp/out, then wait until all six have written (a gate in the workdir), then read it
#: back: with a shared /tmp every node but the last writer would read another node's value.
FANOUT = manifest(
    "fanout",
    """\
  - name: main
    dag:
      tasks:
      - {name: w, template: write, arguments: {parameters: [{name: v, value: "{{item}}"}]}, withSequence: {count: "6", format: "v%02d"}}
      - {name: check, template: echo, depends: w, arguments: {parameters: [{name: v, value: "{{tasks.w.outputs.parameters.out}}"}]}}
  - name: write
    inputs: {parameters: [{name: v}]}
    container:
      image: busybox
      command: [sh, -c]
      args: ["echo {{inputs.parameters.v}} > /tmp/out; mkdir -p $KIOSK_WORKDIR/arrived-{{workflow.name}}; touch $KIOSK_WORKDIR/arrived-{{workflow.name}}/{{inputs.parameters.v}}; until [ $(ls $KIOSK_WORKDIR/arrived-{{workflow.name}} | wc -l) -ge 6 ]; do sleep 0.05; done; cat /tmp/out > /tmp/copy"]
    outputs: {parameters: [{name: out, valueFrom: {path: /tmp/copy}}]}
  - name: echo
    inputs: {parameters: [{name: v}]}
    container: {image: busybox, command: [echo, "{{inputs.parameters.v}}"]}
""",
)


@pytest.mark.parametrize("how", [isolation.UNSHARE, isolation.REWRITE])
def test_parallel_nodes_get_a_private_tmp(tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == isolation.UNSHARE and isolation.method() != isolation.UNSHARE:
        pytest.skip("mount namespaces are not available here; the rewrite fallback is tested instead")
    monkeypatch.setattr(isolation, "method", lambda: how)
    workflow, nodes, _ = run(tmp_path, FANOUT)
    assert workflow["status"]["phase"] == "Succeeded"
    assert json.loads(printed(tmp_path / "wd" / "runs" / workflow["metadata"]["name"], nodes["check"])) == [
        f"v{i:02d}" for i in range(6)
    ]
    assert not Path("/tmp/copy").exists() or Path("/tmp/copy").read_text().strip() not in {
        f"v{i:02d}" for i in range(6)
    }


RETRY = manifest(
    "retry",
    spec='  arguments: {parameters: [{name: pass-at, value: "2"}]}\n',
    templates="""\
  - name: main
    retryStrategy: {limit: "3", backoff: {duration: "300ms", factor: "2"}}
    container: {image: busybox, command: [sh, -c, "test {{retries}} -ge {{workflow.parameters.pass-at}}"]}
""",
)


class _Backoffs(threading.Event):
    """The engine's cancel event, recording each wait it is asked for: the backoffs, without a clock."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_retry_until_success_with_backoff(tmp_path: Path) -> None:
    engine = api.prepare(str(write(tmp_path, RETRY)), env=None, workdir=tmp_path / "wd", backoff_scale=1.0)
    engine.cancelled = backoffs = _Backoffs()
    workflow = engine.run()
    assert workflow["status"]["phase"] == "Succeeded"
    root = next(n for n in workflow["status"]["nodes"].values() if n["type"] == "Retry")
    assert [workflow["status"]["nodes"][c]["phase"] for c in root["children"]] == ["Failed", "Failed", "Succeeded"]
    assert backoffs.waits == pytest.approx([0.3, 0.6])  # duration 300ms, factor 2, before each retry


def test_retry_limit_exhausted(tmp_path: Path) -> None:
    workflow, nodes, _ = run(tmp_path, RETRY, parameters={"pass-at": "9"})
    assert workflow["status"]["phase"] == "Failed"
    assert sum(n["type"] == "Pod" for n in nodes.values()) == 4  # first try + limit 3


EXIT = manifest(
    "exit",
    spec="  onExit: report\n  parallelism: 1\n",
    templates="""\
  - name: main
    steps:
    - - {name: ok, template: run, arguments: {parameters: [{name: code, value: "0"}]}}
      - {name: bad, template: run, arguments: {parameters: [{name: code, value: "3"}]}, continueOn: {failed: true}}
      - {name: other, template: run, arguments: {parameters: [{name: code, value: "0"}]}}
    - - {name: worse, template: run, arguments: {parameters: [{name: code, value: "4"}]}}
    - - {name: never, template: run, arguments: {parameters: [{name: code, value: "0"}]}}
  - name: run
    inputs: {parameters: [{name: code}]}
    container: {image: busybox, command: [sh, -c, "exit {{inputs.parameters.code}}"]}
  - name: report
    container: {image: busybox, command: [sh, -c, "echo '{{workflow.status}} {{workflow.failures}}'"]}
""",
)


def test_continue_on_exit_handler_and_parallelism(tmp_path: Path) -> None:
    workflow, nodes, events = run(tmp_path, EXIT)
    assert workflow["status"]["phase"] == "Failed"
    assert nodes["bad"]["phase"] == "Failed" and nodes["worse"]["phase"] == "Failed"
    assert "never" not in nodes
    name = workflow["metadata"]["name"]
    report = printed(tmp_path / "wd" / "runs" / name, nodes[f"{name}.onExit"])
    assert report.startswith("Failed ")
    assert {f["displayName"] for f in json.loads(report.split(" ", 1)[1])} == {"bad", "worse"}
    pods = [e for e in events if workflow["status"]["nodes"][e[1]]["type"] == "Pod"]
    assert all(pods[i][0] != pods[i + 1][0] for i in range(len(pods) - 1))  # parallelism 1: never overlap


DEADLINE = manifest(
    "deadline",
    """\
  - name: main
    activeDeadlineSeconds: 1
    container: {image: busybox, command: [sh, -c, "echo $$ > /tmp/pid && exec sleep 300"]}
""",
)


def _stopped(tmp_path: Path, workflow: dict[str, Any]) -> bool:
    """Whether the sleeper the deadline should have stopped is gone (its PID, from its private /tmp)."""
    (pid_file,) = (tmp_path / "wd" / "runs" / workflow["metadata"]["name"]).rglob("pid")
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return True
    return False


def test_template_deadline_stops_the_process(tmp_path: Path) -> None:
    workflow, nodes, _ = run(tmp_path, DEADLINE)
    assert workflow["status"]["phase"] == "Failed"
    assert "deadline" in nodes["main"]["message"] if "main" in nodes else workflow["status"]["message"]
    assert _stopped(tmp_path, workflow)  # run() returned because the process was stopped, not because it ended


def test_workflow_deadline(tmp_path: Path) -> None:
    text = DEADLINE.replace("    activeDeadlineSeconds: 1\n", "").replace(
        "  entrypoint: main", "  entrypoint: main\n  activeDeadlineSeconds: 1"
    )
    workflow, _, _ = run(tmp_path, text)
    assert workflow["status"]["phase"] == "Failed"
    assert "deadline" in workflow["status"]["message"]
    assert _stopped(tmp_path, workflow)


LIBRARY = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: lib}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: world}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: hello, template: say, arguments: {parameters: [{name: m, value: "hello {{workflow.parameters.who}}"}]}}
    outputs: {parameters: [{name: said, valueFrom: {parameter: "{{tasks.hello.outputs.result}}"}, globalName: said}]}
  - name: say
    inputs: {parameters: [{name: m}]}
    script: {image: python:3, command: [python], source: "print('{{inputs.parameters.m}}')"}
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 1 * * *"
  workflowSpec:
    workflowTemplateRef: {name: lib}
    arguments: {parameters: [{name: who, value: cron}]}
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: caller}
spec:
  entrypoint: main
  arguments: {parameters: [{name: who, value: ref}]}  # the called template sees the caller's workflow
  templates:
  - name: main
    steps:
    - - {name: call, templateRef: {name: lib, template: main}}
"""


@pytest.mark.parametrize(
    ("target", "params", "said"),
    [
        ("lib", {}, "hello world"),
        ("lib", {"who": "you"}, "hello you"),
        ("nightly", {}, "hello cron"),
        ("caller", {}, "hello ref"),
    ],
)
def test_template_kinds_and_refs(tmp_path: Path, target: str, params: dict, said: str) -> None:
    library = write(tmp_path, LIBRARY, "lib.yaml")
    workflow = api.run(target, env=None, files=[library], parameters=params, workdir=tmp_path / "wd")
    assert workflow["status"]["phase"] == "Succeeded"
    dags = [n for n in workflow["status"]["nodes"].values() if n["type"] == "DAG"]
    assert [n["outputs"]["parameters"] for n in dags] == [[{"name": "said", "value": said}]]
    # Argo publishes a DAG's own globalName outputs only when a parent DAG runs it as a task.
    assert "outputs" not in workflow["status"]


NESTED = manifest(
    "nested",
    """\
  - name: main
    dag:
      tasks:
      - {name: inner, template: inner}
    outputs: {parameters: [{name: top, valueFrom: {parameter: "{{tasks.inner.outputs.parameters.said}}"}, globalName: top}]}
  - name: inner
    dag:
      tasks:
      - {name: say, template: say}
    outputs: {parameters: [{name: said, valueFrom: {parameter: "{{tasks.say.outputs.result}}"}, globalName: said}]}
  - name: say
    container: {image: busybox, command: [echo, hi]}
""",
)


def test_a_dag_task_publishes_its_global_outputs_the_root_dag_does_not(tmp_path: Path) -> None:
    workflow, nodes, _ = run(tmp_path, NESTED)
    assert workflow["status"]["phase"] == "Succeeded"
    assert nodes["inner"]["outputs"]["parameters"] == [{"name": "said", "value": "hi"}]
    assert workflow["status"]["outputs"] == {"parameters": [{"name": "said", "value": "hi"}]}


def test_unknown_reference_is_an_error(tmp_path: Path) -> None:
    library = write(tmp_path, LIBRARY.replace("{name: lib, template: main}", "{name: nope, template: main}"), "l.yaml")
    with pytest.raises(RunnerError, match="'nope' not found"):
        api.prepare("caller", env=None, files=[library], workdir=tmp_path)


@pytest.mark.parametrize(
    ("snippet", "feature"),
    [
        ("resource: {action: create, manifest: x}", "resource"),
        ("suspend: {}", "suspend"),
        ("container: {image: nginx, command: [nginx]}\n    daemon: true", "daemon"),
        ("container: {image: a, command: [echo]}\n    memoize: {key: k}", "memoize"),
        (
            "container: {image: a, command: [echo]}\n    outputs: {artifacts: [{name: a, path: /tmp/a}]}",
            "outputs.artifacts",
        ),
        ("container: {image: a}", "container without command"),
    ],
)
def test_unsupported_features_name_feature_and_template(tmp_path: Path, snippet: str, feature: str) -> None:
    text = f"kind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: t\n  templates:\n  - name: t\n    {snippet}\n"
    with pytest.raises(UnsupportedFeature) as caught:
        api.prepare(str(write(tmp_path, text)), env=None, workdir=tmp_path)
    assert caught.value.feature.startswith(feature) and caught.value.template == "t"


def test_cli_json_shape_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["run", str(write(tmp_path, RETRY)), "-o", "json", "--workdir", str(tmp_path / "w")])
    assert ok.exit_code == 0, ok.output
    workflow = json.loads(ok.stdout)
    assert workflow["kind"] == "Workflow" and workflow["status"]["phase"] == "Succeeded"
    for node in workflow["status"]["nodes"].values():
        assert {"id", "displayName", "templateName", "type", "phase", "startedAt", "finishedAt"} <= set(node)
        for child in node.get("children", []):
            assert child in workflow["status"]["nodes"]
    logs = list((tmp_path / "w" / "runs" / workflow["metadata"]["name"] / "logs").glob("*.log"))
    assert len(logs) == 3
    failed = runner.invoke(
        app, ["run", str(tmp_path / "wf.yaml"), "-p", "pass-at=9", "-o", "json", "--workdir", str(tmp_path / "w")]
    )
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["status"]["phase"] == "Failed"
    bad = write(
        tmp_path,
        "kind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: t\n  templates:\n"
        "  - name: t\n    resource: {action: get}\n",
        "bad.yaml",
    )
    refused = runner.invoke(app, ["run", str(bad), "--workdir", str(tmp_path / "w")])
    assert refused.exit_code == 2
    assert "'resource'" in refused.output and "'t'" in refused.output


def test_cli_table_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(write(tmp_path, FANOUT)), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "Succeeded" in result.output and "check" in result.output


def _plain(value: object) -> bool:
    """Only JSON's own types, exactly (a str subclass such as a Phase enum would leak into YAML/JSON)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_the_final_object_is_plain_data_that_survives_yaml_and_json(tmp_path: Path) -> None:
    """`-o json` and anything that dumps the final Workflow (safe_dump refuses enums) see plain data."""
    workflow, _, _ = run(tmp_path, FANOUT)
    assert _plain(workflow)
    assert yaml.safe_load(yaml.safe_dump(workflow)) == workflow == json.loads(json.dumps(workflow))
    assert workflow["status"]["progress"] == "7/7"
    cli = CliRunner().invoke(app, ["run", str(write(tmp_path, FANOUT)), "-o", "json", "--workdir", str(tmp_path / "c")])
    assert cli.exit_code == 0, cli.output
    printed = json.loads(cli.stdout)
    assert printed["status"]["phase"] == "Succeeded" and printed["status"]["progress"] == "7/7"
    assert {n["phase"] for n in printed["status"]["nodes"].values()} == {"Succeeded"}


OURS = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: ours}
spec:
  entrypoint: main
  podGC: {strategy: OnPodCompletion}
  ttlStrategy: {secondsAfterCompletion: 60}
  securityContext: {runAsNonRoot: true, runAsUser: 10001}
  volumes: [{name: tmp, emptyDir: {}}]
  templates:
  - name: main
    synchronization: {mutex: {name: m}}
    metrics: {prometheus: [{name: x, help: y, gauge: {value: "{{outputs.parameters.n}}"}}]}
    nodeSelector: {gpu: "true"}
    container:
      image: ghcr.io/kiosk/steps:1
      command: [python, -c]
      args: ["import os, pathlib; p = pathlib.Path('/tmp/outputs'); p.mkdir(exist_ok=True); (p / 'n').write_text(os.environ['KIOSK_WORKDIR'])"]
      resources: {limits: {cpu: "1"}}
      securityContext: {readOnlyRootFilesystem: true}
      volumeMounts: [{name: tmp, mountPath: /tmp}]
    outputs: {parameters: [{name: n, valueFrom: {path: /tmp/outputs/n}}]}
"""


def test_kubernetes_only_fields_are_accepted_no_ops(tmp_path: Path) -> None:
    path = write(tmp_path, OURS)
    workflow = api.run("ours", env=None, files=[path], workdir=tmp_path / "wd")
    assert workflow["status"]["phase"] == "Succeeded"
    node = next(iter(workflow["status"]["nodes"].values()))
    assert node["outputs"]["parameters"] == [{"name": "n", "value": str((tmp_path / "wd").resolve())}]


RESULTS = manifest(
    "results",
    """\
  - name: main
    steps:
    - - {name: quoted, template: say}
      - {name: expressed, template: say}
      - {name: unread, template: say}
      - {name: scripted, template: py}
    - - name: use
        template: say
        when: "{{steps.quoted.outputs.result}} == hi"
      - name: also
        template: say
        when: "{{=steps['expressed'].outputs.result == 'hi'}}"
  - name: say
    container: {image: busybox, command: [echo, hi]}
  - name: py
    script: {image: python, command: [python], source: "print('hi')"}
""",
)


def test_stdout_is_a_result_only_where_the_parent_template_references_it(tmp_path: Path) -> None:
    # Argo's includeScriptOutput: a `{{steps.X.outputs.result}}` or `steps['X'].outputs.result` in the
    # parent steps/DAG template; a script template gets no result either when nothing references it.
    workflow, nodes, _ = run(tmp_path, RESULTS)
    assert workflow["status"]["phase"] == "Succeeded"
    assert nodes["quoted"]["outputs"]["result"] == nodes["expressed"]["outputs"]["result"] == "hi"
    for name in ("unread", "scripted", "use", "also"):
        assert "result" not in nodes[name]["outputs"], name
        assert nodes[name]["outputs"]["exitCode"] == "0"


def test_a_pod_at_the_root_records_no_result(tmp_path: Path) -> None:
    _, nodes, _ = run(tmp_path, RESULTS.replace("entrypoint: main", "entrypoint: say"))
    (pod,) = nodes.values()
    assert pod["outputs"] == {"exitCode": "0"}


def test_the_step_name_of_a_node_strips_loops_and_retries() -> None:
    from pipelines.runner.workflow_run import step_or_task_name

    assert step_or_task_name("wf[0].fan(0:a.b)(1)") == "fan"
    assert step_or_task_name("wf.dag.task") == "task"
    assert step_or_task_name("wf[1].step.onExit") == "onExit"


@pytest.mark.parametrize(
    ("spec_level", "template_level", "refused"),
    [
        ("", "archiveLocation: {archiveLogs: true}", "archiveLocation.archiveLogs"),
        ("archiveLogs: true", "", "spec.archiveLogs"),
        ("archiveLogs: true", "archiveLocation: {archiveLogs: false}", None),
        ("archiveLogs: false", "", None),
    ],
)
def test_archived_logs_are_refused(tmp_path: Path, spec_level: str, template_level: str, refused: str | None) -> None:
    text = manifest(
        "archive",
        spec=f"  {spec_level}\n",
        entrypoint="hello",
        templates=f"""\
  - name: hello
    {template_level}
    container: {{image: busybox, command: [echo, hi]}}
""",
    )
    if refused is None:
        assert run(tmp_path, text)[0]["status"]["phase"] == "Succeeded"
        return
    with pytest.raises(UnsupportedFeature) as caught:
        api.prepare(str(write(tmp_path, text)), env=None, workdir=tmp_path / "wd").run()
    assert f"{refused!r} in template 'hello'" in str(caught.value)
    assert "artifact repository" in str(caught.value)


WORKING_DIRS = manifest(
    "cwd",
    """\
  - name: main
    steps:
    - - {name: plain, template: write}
      - {name: declared, template: write-in-tmp}
  - name: write
    container: {image: busybox, command: [sh, -c, "echo heads > result.txt && pwd > /tmp/pwd"]}
    outputs: {parameters: [{name: pwd, valueFrom: {path: /tmp/pwd}}]}
  - name: write-in-tmp
    container: {image: busybox, workingDir: /tmp/src, command: [sh, -c, "echo tails > result.txt && pwd > /tmp/pwd"]}
    outputs: {parameters: [{name: pwd, valueFrom: {path: /tmp/pwd}}]}
""",
)


@pytest.mark.parametrize("how", [isolation.UNSHARE, isolation.REWRITE])
def test_a_relative_write_lands_in_the_nodes_own_directory(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == isolation.UNSHARE and isolation.method() != isolation.UNSHARE:
        pytest.skip("mount namespaces are not available here; the rewrite fallback is tested instead")
    monkeypatch.setattr(isolation, "method", lambda: how)
    caller = tmp_path / "caller"
    caller.mkdir()
    monkeypatch.chdir(caller)  # neither the checkout nor the caller's directory is a pod's
    workflow, nodes, _ = run(tmp_path, WORKING_DIRS)
    assert workflow["status"]["phase"] == "Succeeded"
    run_dir = tmp_path / "wd" / "runs" / workflow["metadata"]["name"]
    written = {p.read_text().strip(): p for p in run_dir.rglob("result.txt")}
    assert sorted(written) == ["heads", "tails"]
    plain = Path(_pwd(nodes["plain"]))
    assert plain == written["heads"].parent and run_dir in plain.parents
    assert written["tails"].parent.name == "src"  # workingDir /tmp/src: the node's private /tmp/src
    assert list(caller.iterdir()) == []


def _pwd(node: dict[str, Any]) -> str:
    (value,) = [p["value"] for p in node["outputs"]["parameters"] if p["name"] == "pwd"]
    return value
