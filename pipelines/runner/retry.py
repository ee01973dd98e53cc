"""`retryStrategy`: which attempts are retried, and how long to wait between them (Argo durations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.runner.errors import RunnerError, UnsupportedFeature
from pipelines.runner.phase import Phase, RetryPolicy
from pipelines.runner.templating import param_text, substitute
from steps.common.durations import ARGO, parse_duration


def duration_s(value: Any) -> float:
    """Argo durations in seconds: a bare number is seconds; Go-style `1m30s`, `2h`, `500ms` otherwise."""
    try:
        return parse_duration(str(value), ARGO).total_seconds()
    except ValueError:
        raise RunnerError(f"invalid duration {value!r}") from None


@dataclass(frozen=True)
class RetryStrategy:
    """A template's `retryStrategy` (`limit` substituted; `expression` is substituted when it is used)."""

    limit: int | None
    policy: RetryPolicy
    expression: str
    delay: float
    factor: float
    cap: float | None
    max_total: float | None

    @classmethod
    def parse(cls, retry: dict[str, Any], scope: dict[str, str], template: str) -> RetryStrategy:
        limit = retry.get("limit")
        limit = int(substitute(param_text(limit), scope, f"template {template!r}")) if limit is not None else None
        policy = retry.get("retryPolicy", RetryPolicy.ON_FAILURE)
        if policy not in set(RetryPolicy):
            raise UnsupportedFeature(f"retryStrategy.retryPolicy={policy}", template)
        backoff = retry.get("backoff") or {}
        return cls(
            limit=limit,
            policy=RetryPolicy(policy),
            expression=str(retry.get("expression") or ""),
            delay=duration_s(backoff["duration"]) if backoff.get("duration") else 0.0,
            factor=float(backoff.get("factor", 1) or 1),
            cap=duration_s(backoff["cap"]) if backoff.get("cap") else None,
            max_total=duration_s(backoff["maxDuration"]) if backoff.get("maxDuration") else None,
        )

    def may_retry(self, phase: Phase, attempt: int) -> bool:
        """Whether the policy and the limit allow another attempt after `attempt` ended in `phase`."""
        return phase in self.policy.retries and (self.limit is None or attempt < self.limit)

    def wait_s(self, attempt: int) -> float:
        """The backoff before attempt `attempt + 1`, unscaled."""
        wait = self.delay * self.factor**attempt
        return min(wait, self.cap) if self.cap is not None else wait
