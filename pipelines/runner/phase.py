"""Argo's node and workflow phases, node types and retry policies: one type each, no bare strings.

They are `StrEnum`s, so they compare equal to the strings in Argo's JSON (`"Succeeded"`) and
serialize as them, and the phase sets below are the only place a reader needs to look.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """A node's (and a workflow's) phase, spelled as Argo's `NodePhase`/`WorkflowPhase`."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    SKIPPED = "Skipped"
    OMITTED = "Omitted"

    @property
    def failed(self) -> bool:
        """Failed or Error: what fails a parent unless the step continues on it."""
        return self in FAILED

    @property
    def completed(self) -> bool:
        """Ran to an end (Succeeded, Failed, Error), as opposed to Skipped or Omitted."""
        return self in COMPLETED

    @property
    def done(self) -> bool:
        """Final: nothing about the node changes any more."""
        return self in DONE


#: The phases that fail a parent (Argo's `FailedOrError`).
FAILED = frozenset({Phase.FAILED, Phase.ERROR})
#: The phases of a node that ran (used by the DAG phase rule, `assessDAGPhase`).
COMPLETED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR})
#: Final phases (Argo's `Fulfilled`).
DONE = frozenset({*COMPLETED, Phase.SKIPPED, Phase.OMITTED})


class NodeType(StrEnum):
    """The `type` of a node in `status.nodes`."""

    POD = "Pod"
    STEPS = "Steps"
    STEP_GROUP = "StepGroup"
    DAG = "DAG"
    TASK_GROUP = "TaskGroup"
    RETRY = "Retry"
    SKIPPED = "Skipped"


class RetryPolicy(StrEnum):
    """`retryStrategy.retryPolicy`, and which phases of an attempt each one retries."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    ON_ERROR = "OnError"
    ON_TRANSIENT_ERROR = "OnTransientError"

    @property
    def retries(self) -> frozenset[Phase]:
        if self is RetryPolicy.ALWAYS:
            return FAILED
        if self is RetryPolicy.ON_FAILURE:
            return frozenset({Phase.FAILED})
        return frozenset({Phase.ERROR})


class TaskResult(StrEnum):
    """The results a DAG `depends` expression can test (`A.Succeeded`, `B.AnySucceeded`)."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERRORED = "Errored"
    SKIPPED = "Skipped"
    COMPLETED = "Completed"
    ANY_SUCCEEDED = "AnySucceeded"
    ALL_FAILED = "AllFailed"
    DAEMONED = "Daemoned"
