"""Alerts for the nights nobody watches, the same for both DAGs (applied by dag.build_dag).

Three events send one message each through every channel that is set:
- a task that fails for good: its retries are used up, or its exit code is one a retry
  cannot fix (retry.py). A retry that then succeeds sends nothing (no on_retry_callback);
- a run that fails;
- a scheduled run still unfinished `Settings.alert_late_after` after its data interval
  ended (a deadline alert: the scheduler marks the deadline missed once, and the
  executor runs `late_run`). Manual runs and backfills are left out: their data
  intervals lie in the past, so they would be "late" from the start.

Where each runs: a task's callback in the task's own process (the scheduler's on
compose and Kubernetes: LocalExecutor); a run's, and a task's that was killed from
outside, in the DAG processor; the deadline's in an executor (the scheduler's) process.

The channels are Airflow connections, looked up when an alert is sent, never at parse
time: `apod_smtp` (e-mail through the smtp provider's SmtpNotifier) and
`apod_alert_webhook` (one JSON POST with a Slack-compatible `text`). Either is off when
its connection is absent or empty (alert_channels.py says what "empty" is). A channel
that fails is logged and never fails the task or hides the other channel.

What a message says (Alert.text): the DAG, run, task and try, the step's exit code and
what it means, the step's one-line reason (the `reason` of its summary line, which the
step's own redactor wrote), the data interval and the link to the task's log in the UI.
Everything is passed through Airflow's secrets masker and the steps' redaction
patterns before it leaves (`redact`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from apod_pipeline.exit_codes import MEANING, NOT_RETRYABLE, UNEXPECTED
from apod_pipeline.lineage import parse_summary, summary_line

if TYPE_CHECKING:
    from airflow.sdk import Context

    from apod_pipeline.settings import Settings

log = logging.getLogger(__name__)

SMTP_CONN_ID = "apod_smtp"
WEBHOOK_CONN_ID = "apod_alert_webhook"
SUBJECT_PREFIX = "[apod]"
REASON_LIMIT = 500  # characters of a reason kept in a message

# The steps' redaction patterns (images/common/apod_common/redaction.py; a DAG test keeps
# them equal): the Airflow image carries none of the step libraries.
MASK = "***"
URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/\s:@]*:[^\s\"']*|[^/\s:@\"']+)@"
)
KEY_VALUE = re.compile(
    r"(?P<key>(?:\bpassword|api_key)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE
)


def redact(text: str) -> str:
    """Every secret Airflow's masker knows in this process (connection passwords, the
    database URI), then the steps' patterns: URL user-info, password=, api_key=."""
    # The SDK's masker; airflow.sdk.log re-exports only mask_secret.
    from airflow.sdk._shared.secrets_masker import redact as airflow_redact

    text = str(airflow_redact(str(text)))
    text = URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    return KEY_VALUE.sub(rf"\g<key>{MASK}", text)


@dataclass(frozen=True)
class Alert:
    event: str  # "task failed", "run failed", "run late"
    dag_id: str
    run_id: str
    interval: tuple[str | None, str | None] = (None, None)
    task_id: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    link: str | None = None
    note: str | None = None

    @property
    def subject(self) -> str:
        what = f"task {self.task_id} failed" if self.event == "task failed" else self.event
        return redact(f"{SUBJECT_PREFIX} {self.dag_id}: {what} (run {self.run_id})")

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order a reader needs them."""
        start, end = self.interval
        pairs = [("DAG", self.dag_id), ("Run", self.run_id)]
        if start or end:
            pairs.append(("Data interval", f"{start or '?'} to {end or '?'}"))
        else:
            pairs.append(("Data interval", "none (a manual run without a logical date)"))
        if self.task_id:
            tries = f" of {self.max_tries}" if self.max_tries else ""
            pairs.append(("Task", f"{self.task_id}, try {self.try_number or '?'}{tries}"))
        if self.event == "task failed":
            pairs.append(("Exit code", exit_code_text(self.exit_code)))
        if self.reason:
            pairs.append(("Reason", self.reason[:REASON_LIMIT]))
        if self.note:
            pairs.append(("Note", self.note))
        if self.link:
            pairs.append(("Log" if self.task_id else "Run in the UI", self.link))
        return [(label, redact(value)) for label, value in pairs]

    @property
    def text(self) -> str:
        """The message: the subject, then one `Label: value` line each."""
        return "\n".join([self.subject, *(f"{label}: {value}" for label, value in self.lines())])


def exit_code_text(code: int | None) -> str:
    if code is None:
        return "none (the step did not finish: stopped, timed out or lost)"
    meaning = MEANING.get(code, UNEXPECTED)
    retried = "not retried" if code in NOT_RETRYABLE else "retries used up"
    return f"{code} ({meaning}; {retried})"


def _iso(value: Any) -> str | None:
    """A date and time as the messages write them (ISO 8601, +00:00), whether Airflow
    handed a datetime or, to a deadline's callback, the REST API's text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def ui_link(dag_id: str, run_id: str) -> str:
    """The run's page in the UI, from `[api] base_url` as Airflow builds its own links."""
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"


def step_output(exception: BaseException | None, task: Any) -> dict[str, Any]:
    """The failed step's summary: DockerOperator's failure carries the container's output
    lines (`logs`); ApodPodOperator keeps the summary it read from the pod's log."""
    lines = getattr(exception, "logs", None)
    if lines:
        text = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in lines]
        return parse_summary(summary_line(text))
    return parse_summary(getattr(task, "summary", None))


def step_exit_code(exception: BaseException | None, context: Context, task: Any) -> int | None:
    """The step's exit code, read where the task's retry policy reads it (retry.py)."""
    exit_code_of = getattr(getattr(task, "retry_policy", None), "exit_code_of", None)
    if exception is None or exit_code_of is None:
        return None
    try:
        return exit_code_of(exception, context)
    except Exception:  # an alert must go out even when the code cannot be read
        log.warning("could not read the step's exit code", exc_info=True)
        return None


def task_alert(context: Context) -> Alert:
    ti = context["ti"]
    task = context.get("task") or getattr(ti, "task", None)
    exception = context.get("exception")
    summary = step_output(exception, task)
    code = summary.get("exit_code")
    if not isinstance(code, int):
        code = step_exit_code(exception, context, task)
    reason = summary.get("reason")
    if not reason and exception is not None:
        reason = " ".join(f"{type(exception).__name__}: {exception}".split())
    max_tries = getattr(ti, "max_tries", None)
    return Alert(
        event="task failed",
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        interval=(_iso(context.get("data_interval_start")), _iso(context.get("data_interval_end"))),
        task_id=ti.task_id,
        try_number=getattr(ti, "try_number", None),
        # max_tries counts the retries; the first try is one more.
        max_tries=max_tries + 1 if isinstance(max_tries, int) and max_tries >= 0 else None,
        exit_code=code,
        reason=reason or "no reason recorded: see the log",
        link=getattr(ti, "log_url", None),
    )


def run_alert(context: Context) -> Alert:
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or context["ti"].dag_id
    run_id = context.get("run_id") or context["dag_run"].run_id
    ti = context.get("ti")
    last = f"last failed task: {ti.task_id}" if ti is not None else None
    why = context.get("reason")
    return Alert(
        event="run failed",
        dag_id=dag_id,
        run_id=run_id,
        interval=(_iso(context.get("data_interval_start")), _iso(context.get("data_interval_end"))),
        reason=f"{why}" if why else None,
        note=last,
        link=ui_link(dag_id, run_id),
    )


def late_alert(dag_run: Mapping[str, Any], late_after: str) -> Alert:
    dag_id, run_id = dag_run["dag_id"], dag_run["dag_run_id"]
    return Alert(
        event="run late",
        dag_id=dag_id,
        run_id=run_id,
        interval=(_iso(dag_run.get("data_interval_start")), _iso(dag_run.get("data_interval_end"))),
        reason=f"still {dag_run.get('state')} {late_after} after its data interval ended",
        link=ui_link(dag_id, run_id),
    )


def send(alert: Alert) -> int:
    """Deliver through every channel that is set; the number that took it."""
    # Imported only when an alert goes out: the smtp provider is no parse-time import.
    from apod_pipeline import alert_channels

    delivered = 0
    for channel in alert_channels.CHANNELS:
        try:
            if channel(alert):
                delivered += 1
        except Exception as exc:  # noqa: BLE001 - one broken channel must not silence the others
            log.error("alert channel %s failed: %s", channel.__name__, redact(str(exc)))
    if not delivered:
        log.info("alert not sent (no channel is set): %s", alert.subject)
    return delivered


# --- the callbacks -------------------------------------------------------------------


def task_failed(context: Context) -> None:
    """on_failure_callback of every task: runs once a task has failed for good."""
    send(task_alert(context))


def run_failed(context: Context) -> None:
    """on_failure_callback of the DAG: runs once per failed run."""
    send(run_alert(context))


def late_run(context: dict, late_after: str = "") -> None:
    """The deadline alert's callback. `context` is what the scheduler passes a deadline
    callback: the run as the REST API shows it, taken when the deadline was missed."""
    dag_run = context.get("dag_run") or {}
    run_id, run_type, state = (dag_run.get(k) for k in ("dag_run_id", "run_type", "state"))
    if run_type != "scheduled":
        log.info("run %s is %s, not scheduled: no lateness alert", run_id, run_type)
        return
    if state in ("success", "failed"):
        # Finished after all (a failed run has alerted already): nothing is late.
        log.info("run %s finished (%s): no lateness alert", run_id, state)
        return
    send(late_alert(dag_run, late_after))


def _duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- what build_dag applies ----------------------------------------------------------

TASK_ARGUMENTS = {"on_failure_callback": task_failed}


def dag_arguments(settings: Settings, data_interval: timedelta) -> dict[str, Any]:
    """The DAG's failure callback and its lateness deadline. `data_interval` is one data
    interval of the schedule: a run's data interval ends that long after its logical
    date, the deadline's reference."""
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    late_after = settings.alert_late_after
    return {
        "on_failure_callback": run_failed,
        "deadline": DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=data_interval + late_after,
            callback=SyncCallback(late_run, kwargs={"late_after": _duration_text(late_after)}),
            name="apod-late",
        ),
    }
