"""The real `argo` CLI (built from the pinned argo-workflows module) against the local cluster,
through argo-server, in the environment `eval "$(uv run kiosk cluster env)"` gives.

Every `argo` command in README.md and docs/*.md runs as written, through bash, save what names
another env (SUBSTITUTIONS: the dev namespace and bucket become the local ones) and placeholders
(a workflow name, a template name, a parameter). A command that fails, or that submits a workflow
that does not Succeed, fails the test; so does a new command no rule makes runnable.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kubernetes import client as k8s

from pipelines.cluster import workflows
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import NAMESPACE, ArgoServer, Cluster
from tests.fixtures import documented as docs

STORE = "'file://$KIOSK_WORKDIR/argo-cli'"  # the dev bucket's stand-in: a store of this test's own
SUBSTITUTIONS = [
    ("-n kiosk-dev", f"-n {NAMESPACE}"),
    ("s3://kiosk-data-dev", STORE),
    ("workflowtemplate/batch-inference -p k=v", f"workflowtemplate/batch-inference -p input-uri={STORE}/uploads"),
    ("workflowtemplate/NAME", f"workflowtemplate/synthetic-data -p output-uri={STORE}/synth -p count=2"),
    (" WF", " {run}"),
    (" .tools/src/", f" {REPO_ROOT / '.tools' / 'src'}/"),  # upstream's examples, run from the test's own dir
]
#: mentions in prose that name a command without its workflow
FRAGMENTS = {
    "argo watch": "argo watch {run}",
    "argo get -o json": "argo get {run} -o json",
    "argo lint --offline": f"argo lint --offline {REPO_ROOT / 'argocd' / 'workflows' / 'local'}",
}
IMAGES = 6


def documented() -> list[str]:
    return docs.commands("argo")


def runnable(command: str, run: str) -> str:
    command = FRAGMENTS.get(command, command)
    for old, new in SUBSTITUTIONS:
        command = command.replace(old, new)
    return command.replace("{run}", run)


def argo(server: ArgoServer, command: str, cwd: Path, timeout_s: float = 420) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=server.env, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)  # argo logs colours even a pipe


def submitted(output: str) -> str | None:
    match = re.search(r"^Name:\s+(\S+)", output, flags=re.M)
    return match[1] if match else None


def my_workflow(cwd: Path) -> None:
    """The table's `my-workflow.yaml`: one container echoing its parameter `k`."""
    (cwd / "my-workflow.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: my-workflow-}\nspec:\n"
        "  entrypoint: main\n  serviceAccountName: kiosk-workflow\n"
        "  arguments: {parameters: [{name: k, value: x}]}\n  templates:\n  - name: main\n"
        "    inputs: {parameters: [{name: k}]}\n"
        '    container: {image: busybox, command: [echo, "k={{inputs.parameters.k}}"]}\n'
    )


def test_documented_argo_commands_run(cluster: Cluster, argo_server: ArgoServer, tmp_path: Path) -> None:
    commands = documented()
    assert any(c.startswith("argo submit") for c in commands) and any(c.startswith("argo logs") for c in commands)
    synth = f"argo submit --from workflowtemplate/synthetic-data -p output-uri={STORE}/uploads -p count={IMAGES}"
    argo(argo_server, f"{synth} -p width=128 -p height=128 --watch", tmp_path)
    my_workflow(tmp_path)
    run, names = "", []
    for command in commands:
        output = argo(argo_server, runnable(command, run), tmp_path)
        name = submitted(output) or ""
        names += [name] if name else []
        if name.startswith("batch-inference-") and not run:
            run = name
    finished = {name: workflows.wait(cluster.api, NAMESPACE, name, 420) for name in names}
    phases = {name: wf["status"]["phase"] for name, wf in finished.items()}
    assert set(phases.values()) == {"Succeeded"}, phases
    assert run, "no documented command submitted batch-inference"


def test_argo_lists_and_logs_show_ours(cluster: Cluster, argo_server: ArgoServer, tmp_path: Path) -> None:
    templates = argo(argo_server, "argo template list", tmp_path).split()
    rendered = {p.stem.removeprefix("workflowtemplate-") for p in (REPO_ROOT / "argocd/workflows/local").glob("w*")}
    assert rendered and rendered <= set(templates), templates
    crons = k8s.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", NAMESPACE, "cronworkflows"
    )
    listed = argo(argo_server, "argo cron list", tmp_path)
    assert crons["items"] and all(c["metadata"]["name"] in listed for c in crons["items"]), listed

    # batch-inference's podGC (OnPodSuccess) deletes a finished step's pod, and its log with it: the
    # logs are read as the run goes (`--log`), as with `argo logs --follow`.
    store = "'file://$KIOSK_WORKDIR/argo-cli-logs'"
    synth = f"argo submit --from workflowtemplate/synthetic-data -p output-uri={store}/uploads -p count=3 --wait"
    argo(argo_server, synth, tmp_path)
    params = f"-p input-uri={store}/uploads -p output-uri={store}/outputs"
    logs = argo(argo_server, f"argo submit --from workflowtemplate/batch-inference {params} --log", tmp_path)
    run = submitted(logs)
    assert run and workflows.get(cluster.api, NAMESPACE, run)["status"]["phase"] == "Succeeded"
    assert re.search(rf"^{run}-\S+: steps\.ingest: 3 to process", logs, flags=re.M), logs
    assert re.search(rf"^{run}-\S+: steps\.report: 3 processed, 0 failed", logs, flags=re.M), logs
    assert run in argo(argo_server, "argo list", tmp_path)
