"""`kiosk apply`, `kiosk submit`, `kiosk get` and `kiosk logs` through the CLI, on the session's cluster."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cluster import kube, workflows
from tests.cluster.conftest import NAMESPACE, Cluster


def _kiosk(cluster: Cluster, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--kubeconfig", str(cluster.state.kubeconfig)])
    return result.exit_code, result.output


def _manifest(tmp_path: Path, script: str) -> Path:
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "cli-"},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": "kiosk-workflow",
            "arguments": {"parameters": [{"name": "message", "value": "default"}]},
            "templates": [
                {
                    "name": "main",
                    "inputs": {"parameters": [{"name": "message"}]},
                    "container": {"image": "busybox", "command": ["sh", "-c", script]},
                }
            ],
        },
    }
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(workflow))
    return path


def test_apply_server_dry_run_prints_every_object(cluster: Cluster) -> None:
    code, output = _kiosk(cluster, "apply", "--env", "local", "--dry-run", "server")
    assert code == 0, output
    assert "WorkflowTemplate" in output and "batch-inference" in output and "server dry run" in output
    assert "rejected" not in output


def test_submit_watch_get_logs(cluster: Cluster, tmp_path: Path) -> None:
    path = _manifest(tmp_path, "echo said {{inputs.parameters.message}}")
    result = CliRunner().invoke(
        app,
        [
            "submit",
            str(path),
            "-p",
            "message=hello-kiosk",
            "--watch",
            "-o",
            "json",
            "--kubeconfig",
            str(cluster.state.kubeconfig),
        ],
    )
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout)
    assert final["status"]["phase"] == "Succeeded"
    name = final["metadata"]["name"]
    code, output = _kiosk(cluster, "get", name, "-n", NAMESPACE, "-o", "json")
    assert code == 0 and json.loads(output)["metadata"]["name"] == name
    code, output = _kiosk(cluster, "logs", name, "-n", NAMESPACE)
    assert code == 0 and f"{name}: said hello-kiosk" in output, output


def test_submit_watch_exits_1_unless_succeeded(cluster: Cluster, tmp_path: Path) -> None:
    code, output = _kiosk(cluster, "submit", str(_manifest(tmp_path, "exit 5")), "--watch")
    assert code == 1, output
    assert "Failed" in output


def test_submit_rejects_an_undeclared_parameter(cluster: Cluster, tmp_path: Path) -> None:
    code, output = _kiosk(cluster, "submit", str(_manifest(tmp_path, "true")), "-p", "nope=1")
    assert code == 1 and "nope" in output


def test_logs_follow_streams_lines_while_the_pod_runs(cluster: Cluster, tmp_path: Path) -> None:
    # A gate, not a sleep: the pod prints `second` only once the test has seen `first` stream out
    # and opened the gate, so a follow that delivered lines only at the end would never finish.
    gate = cluster.workdir / f"logs-gate-{tmp_path.name}"
    script = f'echo first; until [ -e "$KIOSK_WORKDIR/{gate.name}" ]; do sleep 0.1; done; echo second'
    created = workflows.create(cluster.api, workflows.from_file(_manifest(tmp_path, script), NAMESPACE, {}))
    name = created["metadata"]["name"]
    seen: list[tuple[str, str]] = []

    def on_line(node: str, line: str) -> None:
        seen.append((node, line))
        if line == "first":
            gate.touch()

    try:
        final = workflows.follow(
            cluster.api,
            NAMESPACE,
            name,
            on_line,
            pods_root=kube.pods_root(str(cluster.state.kubeconfig)),
            timeout_s=120,
        )
    finally:
        gate.touch()  # never leave the pod waiting
    assert final["status"]["phase"] == "Succeeded"
    assert seen == [(name, "first"), (name, "second")]
    code, output = _kiosk(cluster, "logs", name, "-n", NAMESPACE, "--follow")
    assert code == 0 and output.splitlines() == [f"{name}: first", f"{name}: second"], output
