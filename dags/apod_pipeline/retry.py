"""Retry only failures that a retry can fix, judged by the step's exit code.

Exit 5 (upstream or store unavailable) and unexpected errors take the task's normal
retries with exponential backoff; exit 2, 3 and 4 mean the same input will fail the same
way, so the task fails at once. Each renderer knows where its operator leaves the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.sdk import RetryDecision, RetryPolicy

from apod_pipeline.exit_codes import NOT_RETRYABLE

if TYPE_CHECKING:
    from airflow.sdk import Context

# DockerOperator's failure message: "Docker container failed: {'Error': None, 'StatusCode': 4}"
_DOCKER_STATUS = re.compile(r"'StatusCode':\s*(\d+)")


def docker_exit_code(exception: BaseException, context: Context | None) -> int | None:
    match = _DOCKER_STATUS.search(str(exception))
    return int(match.group(1)) if match else None


def pod_exit_code(exception: BaseException, context: Context | None) -> int | None:
    """The base container's exit code from the finished pod the operator kept."""
    task = (context or {}).get("task")
    pod = getattr(task, "remote_pod", None)
    statuses = (pod.status.container_statuses if pod and pod.status else None) or []
    for status in statuses:
        if status.name == getattr(task, "base_container_name", "base"):
            terminated = status.state.terminated if status.state else None
            return terminated.exit_code if terminated else None
    return None


ExitCodeOf = Callable[[BaseException, "Context | None"], "int | None"]


class ExitCodeRetryPolicy(RetryPolicy):
    def __init__(self, exit_code_of: ExitCodeOf) -> None:
        self.exit_code_of = exit_code_of

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        code = self.exit_code_of(exception, context)
        if code in NOT_RETRYABLE:
            return RetryDecision.fail(f"exit code {code} ({NOT_RETRYABLE[code]}): not retried")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        # Only a has_retry_policy flag is serialized; the worker evaluates the policy
        # from the parsed DAG file, so there is nothing to rebuild it from.
        return {"exit_code_of": self.exit_code_of.__name__}


DOCKER_RETRY_POLICY = ExitCodeRetryPolicy(docker_exit_code)
POD_RETRY_POLICY = ExitCodeRetryPolicy(pod_exit_code)
