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
    if not tokens:
        return True
    return _Evaluation(expression, tokens, states).whole()


def _fulfilled(state: TaskState) -> bool:
    """A bare task name: Succeeded or Skipped, or Failed/Errored under continueOn."""
    ok = state.phase in (Phase.SUCCEEDED, Phase.SKIPPED)
    ok = ok or (state.continue_failed and state.phase is Phase.FAILED)
    return ok or (state.continue_error and state.phase is Phase.ERROR)


class _Evaluation:
    """A recursive-descent pass over the tokens: `||` of `&&` of atoms (`!x`, `(...)`, `task[.Result]`).

    Both sides of `&&` and `||` are evaluated, so a bad name anywhere is an error.
    """

    def __init__(self, expression: str, tokens: list[str], states: Mapping[str, TaskState]) -> None:
        self.expression, self.tokens, self.states, self.pos = expression, tokens, states, 0

    def fail(self, what: str) -> RunnerError:
        return RunnerError(f"invalid depends {self.expression!r}: {what}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def whole(self) -> bool:
        value = self.disjunction()
        if self.pos != len(self.tokens):
            raise self.fail(f"unexpected {self.tokens[self.pos]!r}")
        return value

    def atom(self) -> bool:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end")
        self.pos += 1
        if token == "!":
            return not self.atom()
        if token == "(":
            value = self.disjunction()
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            return value
        if token in ("&&", "||", ")"):
            raise self.fail(f"unexpected {token!r}")
        name, _, result = token.partition(".")
        if name not in self.states:
            raise self.fail(f"no task named {name!r}")
        state = self.states[name]
        return _result(state, result) if result else _fulfilled(state)

    def conjunction(self) -> bool:
        value = self.atom()
        while self.peek() == "&&":
            self.pos += 1
            right = self.atom()
            value = value and right
        return value

    def disjunction(self) -> bool:
        value = self.conjunction()
        while self.peek() == "||":
            self.pos += 1
            right = self.conjunction()
            value = value or right
        return value


def check_names(expression: str, names: Sequence[str], template: str) -> None:
    for name in referenced_tasks(expression):
        if name not in names:
            raise RunnerError(f"template {template!r}: depends {expression!r} names unknown task {name!r}")
