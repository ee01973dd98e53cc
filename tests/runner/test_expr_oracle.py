"""The expression table of test_expr_closures.py, evaluated by the real engine.

`expr_oracle/main.go` runs Argo's own `{{= }}` path (expr-lang with Argo's function map) at the
argo-workflows version tools/argo-validate pins. It is built offline from the Go module cache that
`.ci/install.d/20-argo-validate.sh` fills, so this needs `go` (skipped locally without it, failing in CI).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines.argo_module import go_mod
from pipelines.runner.expressions import evaluate_expr, to_text
from pipelines.tools import REPO_ROOT, in_ci
from tests.fixtures.tools import require_tool
from tests.runner.test_expr_closures import CASES, ENV, LANE, TEMPLATE_LANE

SOURCE = Path(__file__).parent / "expr_oracle" / "main.go"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = require_tool("go")
    build = tmp_path_factory.mktemp("expr-oracle")
    shutil.copy(go_mod().parent / "go.sum", build / "go.sum")
    (build / "go.mod").write_text(
        re.sub(r"^module .*$", "module exproracle", go_mod().read_text(), count=1, flags=re.M)
    )
    shutil.copy(SOURCE, build / "main.go")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off")  # nothing downloads at test time
    done = subprocess.run(
        [str(go), "build", "-o", "oracle", "."], cwd=build, env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        message = f"cannot build the expr-lang oracle offline (run .ci/install): {done.stderr[-2000:]}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return build / "oracle"


def ask(oracle: Path, requests: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    lines = "".join(json.dumps({"expr": e, "env": env}) + "\n" for e, env in requests)
    done = subprocess.run([str(oracle)], input=lines, capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_table_matches_expr_lang(oracle: Path) -> None:
    answers = ask(oracle, [(case[0], ENV) for case in CASES])
    assert len(answers) == len(CASES)
    wrong = {}
    for case, answer in zip(CASES, answers, strict=True):
        if len(case) == 3:
            if "error" not in answer:
                wrong[case[0]] = f"expr-lang accepts it: {answer}"
        elif "error" in answer or answer["value"] != case[1]:
            wrong[case[0]] = f"table says {case[1]!r}, expr-lang says {answer}"
    assert not wrong


def test_lane_expressions_match_expr_lang_on_random_inputs(oracle: Path) -> None:
    rng = random.Random(20261124)  # fixed seed: one oracle batch, reproducible
    requests = []
    for _ in range(60):
        shards = [
            rng.choice(["a", "b", "é", "x y", '"q"', ""]) + str(rng.randrange(9)) for _ in range(rng.randrange(20))
        ]
        lanes = rng.randint(1, 8)
        env = {
            "inputs": {
                "parameters": {"shards": json.dumps(shards), "lanes": str(lanes), "lane": str(rng.randrange(lanes))}
            }
        }
        requests += [(LANE, env), (TEMPLATE_LANE, env)]
    for (expression, env), answer in zip(requests, ask(oracle, requests), strict=True):
        if expression == TEMPLATE_LANE:
            assert "unknown pointer #index" in answer["error"]
        else:
            assert to_text(evaluate_expr(expression, env)) == answer["value"]


RENDERED = sorted((REPO_ROOT / "argocd" / "workflows").glob("*/*.yaml"))
TAG = re.compile(r"\{\{=(.*?)\}\}", re.S)


def _rendered_expressions() -> list[tuple[str, str]]:
    """Every `{{= }}` expression and retryStrategy.expression in the rendered tree (file, expression)."""
    import yaml

    found: list[tuple[str, str]] = []

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "retryStrategy" and isinstance(value, dict) and "expression" in value:
                    found.append((name, "retry:" + value["expression"]))
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, name)
        elif isinstance(node, str):
            found.extend((name, match.group(1).strip()) for match in TAG.finditer(node))

    for path in RENDERED:
        for document in yaml.safe_load_all(path.read_text()):
            walk(document, f"{path.parent.name}/{path.name}")
    return sorted(set(found))


def test_rendered_expressions_run_on_the_real_engine(oracle: Path) -> None:
    """The template's expressions are what Argo evaluates at run time: `argo lint` does not compile them.

    The runner accepting an expression proves nothing if Argo rejects it (expr-lang binds `#index` only
    in map/reduce, for instance), so each rendered one is compiled and run by the real engine, and the
    runner must agree with it.
    """
    expressions = _rendered_expressions()
    assert expressions, "the rendered tree has no expressions: did the templates change?"
    env = dict(ENV, lastRetry={"exitCode": "1", "status": "Failed"})
    requests = [(e.removeprefix("retry:"), env) for _, e in expressions]
    answers = ask(oracle, requests)
    errors = {f"{name}: {e}": a["error"] for (name, e), a in zip(expressions, answers, strict=True) if "error" in a}
    assert not errors, errors
    for (name, expression), answer in zip(expressions, answers, strict=True):
        ours = evaluate_expr(expression.removeprefix("retry:"), env)
        assert to_text(ours) == to_text(answer["value"]), f"{name}: {expression}"
