"""DAG `depends` / `dependencies`: Argo's enhanced depends logic (docs/enhanced-depends-logic.md).

A bare task name means `(T.Succeeded || T.Skipped || T.Daemoned)`, widened by the task's own
`continueOn` (workflow/common/ancestry.go `expandDependency`). A task runs once every task its
expression names is fulfilled; a false expression makes it Omitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipelines.runner.errors import RunnerError
from pipelines.runner.phase import Phase, TaskResult

_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9_\-]+(?:\.[A-Za-z]+)?)")


@dataclass(frozen=True)
class TaskState:
    """What `depends` can see of a finished task: its phase, and its children's for fan-outs."""

    phase: Phase
    children: tuple[Phase, ...] = ()
    continue_failed: bool = False
    continue_error: bool = False

    def __post_init__(self) -> None:  # phases read back from JSON arrive as plain strings
        object.__setattr__(self, "phase", Phase(self.phase))
        object.__setattr__(self, "children", tuple(Phase(p) for p in self.children))


def _tokens(expression: str) -> list[str]:
    out, pos = [], 0
    text = expression.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise RunnerError(f"invalid depends {expression!r}: unexpected {text[pos:].strip()[:20]!r}")
        out.append(match.group(1))
        pos = match.end()
    return out


def depends_of(task: Mapping) -> str:
    """The task's condition as a depends expression (`dependencies` are an AND of bare names)."""
    if task.get("depends") and task.get("dependencies"):
        raise RunnerError(f"task {task.get('name')!r}: use either depends or dependencies, not both")
    if task.get("dependencies"):
        return " && ".join(task["dependencies"])
    return str(task.get("depends") or "")


def referenced_tasks(expression: str) -> list[str]:
    names = []
    for token in _tokens(expression):
        if token not in ("&&", "||", "!", "(", ")"):
            name = token.split(".")[0]
            if name not in names:
                names.append(name)
    return names


#: The phase each plain result stands for.
_RESULT_PHASE = {
    TaskResult.SUCCEEDED: Phase.SUCCEEDED,
    TaskResult.FAILED: Phase.FAILED,
    TaskResult.ERRORED: Phase.ERROR,
    TaskResult.SKIPPED: Phase.SKIPPED,
}


def _result(state: TaskState, result: str) -> bool:
    if result not in set(TaskResult):
        raise RunnerError(f"invalid depends result {result!r}: expected one of {', '.join(TaskResult)}")
    result = TaskResult(result)
    if result in _RESULT_PHASE:
        return state.phase is _RESULT_PHASE[result]
    if result is TaskResult.COMPLETED:
        return state.phase in (Phase.SUCCEEDED, Phase.FAILED)
    if result is TaskResult.ANY_SUCCEEDED:
        return any(p is Phase.SUCCEEDED for p in state.children)
    if result is TaskResult.ALL_FAILED:
        return bool(state.children) and all(p is Phase.FAILED for p in state.children)
    return False  # Daemoned: the local runner has no daemons


def evaluate(expression: str, states: Mapping[str, TaskState]) -> bool:
    """True when the task should run; every referenced task must already be fulfilled."""
    tokens = _tokens(expression)
    pos = 0

    def atom() -> bool:
        nonlocal pos
        if pos >= len(tokens):
            raise RunnerError(f"invalid depends {expression!r}: unexpected end")
        token = tokens[pos]
        pos += 1
        if token == "!":
            return not atom()
        if token == "(":
            value = disjunction()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise RunnerError(f"invalid depends {expression!r}: missing ')'")
            pos += 1
            return value
        if token in ("&&", "||", ")"):
            raise RunnerError(f"invalid depends {expression!r}: unexpected {token!r}")
        name, _, result = token.partition(".")
        if name not in states:
            raise RunnerError(f"invalid depends {expression!r}: no task named {name!r}")
        state = states[name]
        if result:
            return _result(state, result)
        ok = state.phase in (Phase.SUCCEEDED, Phase.SKIPPED)
        ok = ok or (state.continue_failed and state.phase is Phase.FAILED)
        return ok or (state.continue_error and state.phase is Phase.ERROR)

    def conjunction() -> bool:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] == "&&":
            pos += 1
            right = atom()
            value = value and right
        return value

    def disjunction() -> bool:
        nonlocal pos
        value = conjunction()
        while pos < len(tokens) and tokens[pos] == "||":
            pos += 1
            right = conjunction()
            value = value or right
        return value

    if not tokens:
        return True
    value = disjunction()
    if pos != len(tokens):
        raise RunnerError(f"invalid depends {expression!r}: unexpected {tokens[pos]!r}")
    return value


def check_names(expression: str, names: Sequence[str], template: str) -> None:
    for name in referenced_tasks(expression):
        if name not in names:
            raise RunnerError(f"template {template!r}: depends {expression!r} names unknown task {name!r}")
