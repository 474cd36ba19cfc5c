"""What build_dag applies for alerts, the same on both DAGs, and what a message says.

The callbacks themselves run for real in tests/integration/test_alerts_dags_test.py
(`airflow dags test`, a real SMTP server and webhook receiver) and, for the lateness
deadline, in the fault tier's Airflow stack (tests/faults/test_faults_airflow.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.dags


@pytest.fixture(scope="module", params=["docker", "kubernetes"])
def dag(request):
    from apod_pipeline import docker, kubernetes

    return {"docker": docker, "kubernetes": kubernetes}[request.param].dag()


def test_every_task_alerts_once_failed_for_good_and_never_on_a_retry(dag):
    from apod_pipeline import alerts

    for task in dag.tasks:
        assert list(task.on_failure_callback) == [alerts.task_failed], task.task_id
        assert not task.on_retry_callback, task.task_id
    assert dag.on_failure_callback is alerts.run_failed


def test_the_deadline_is_the_data_interval_end_plus_the_setting(dag):
    from airflow.sdk import SyncCallback
    from airflow.sdk.definitions.deadline import DagRunLogicalDateDeadline

    from apod_pipeline.dag import DATA_INTERVAL

    (deadline,) = dag.deadline
    assert isinstance(deadline.reference, DagRunLogicalDateDeadline)
    assert deadline.interval == DATA_INTERVAL + timedelta(hours=6)
    assert isinstance(deadline.callback, SyncCallback)
    assert deadline.callback.path == "apod_pipeline.alerts.late_run"
    assert deadline.callback.kwargs == {"late_after": "6h"}


def test_the_data_interval_is_the_schedules_own(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable

    from apod_pipeline.dag import DATA_INTERVAL

    timetable = coerce_to_core_timetable(dag.timetable)
    interval = timetable.infer_manual_data_interval(run_after=datetime(2024, 1, 2, 3, tzinfo=UTC))
    assert interval.end - interval.start == DATA_INTERVAL


@pytest.mark.parametrize(("text", "late"), [("90m", "90m"), ("1d", "1d"), ("45s", "45s")])
def test_the_lateness_setting_moves_the_deadline(text, late):
    from apod_pipeline import docker
    from apod_pipeline.dag import DATA_INTERVAL
    from apod_pipeline.settings import Settings

    settings = Settings.from_env({"APOD_ALERT_LATE_AFTER": text})
    (deadline,) = docker.dag(settings).deadline
    assert deadline.interval == DATA_INTERVAL + settings.alert_late_after
    assert deadline.callback.kwargs == {"late_after": late}


@pytest.mark.parametrize("text", ["6", "six hours", "-1h", "1.5h", "6 hours"])
def test_a_bad_lateness_setting_names_its_variable(text):
    from apod_pipeline.settings import Settings

    with pytest.raises(ValueError, match="APOD_ALERT_LATE_AFTER"):
        Settings.from_env({"APOD_ALERT_LATE_AFTER": text})


def test_the_redaction_patterns_are_the_steps_own():
    from apod_common import redaction
    from apod_pipeline import alerts

    assert alerts.URL_USERINFO.pattern == redaction._URL_USERINFO.pattern
    assert alerts.KEY_VALUE.pattern == redaction._KEY_VALUE.pattern
    assert alerts.KEY_VALUE.flags == redaction._KEY_VALUE.flags
    assert alerts.MASK == redaction.MASK
    text = "got https://user:pw@store/x and password=hunter2&api_key=abc"
    assert alerts.redact(text) == redaction.Redactor()(text)


def test_a_pod_tasks_alert_reads_the_steps_summary_and_exit_code():
    """On Kubernetes the failure carries no output: ApodPodOperator keeps the summary."""
    from airflow.sdk.exceptions import AirflowException

    from apod_pipeline import alerts, kubernetes

    task = kubernetes.dag().get_task("load_postgres")
    task.summary = (
        '{"step": "load", "status": "failed", "exit_code": 5,'
        ' "reason": "database unavailable: postgresql://apod_loader:s3cret@postgres/apod"}'
    )
    ti = SimpleNamespace(
        dag_id="apod_etl_k8s",
        run_id="scheduled__2024-01-02T00:00:00+00:00",
        task_id="load_postgres",
        try_number=4,
        max_tries=3,
        log_url="http://127.0.0.1:8080/dags/apod_etl_k8s/runs/x/tasks/load_postgres?try_number=4",
    )
    context = {
        "ti": ti,
        "task": task,
        "exception": AirflowException("Pod apod-load-postgres-x returned a failure."),
        "data_interval_start": datetime(2024, 1, 2, tzinfo=UTC),
        "data_interval_end": datetime(2024, 1, 3, tzinfo=UTC),
    }
    alert = alerts.task_alert(context)
    assert alert.subject.startswith("[apod] apod_etl_k8s: task load_postgres failed")
    lines = dict(alert.lines())
    assert lines["Task"] == "load_postgres, try 4 of 4"
    assert lines["Exit code"] == "5 (upstream or store unavailable; retries used up)"
    assert lines["Reason"] == "database unavailable: postgresql://***@postgres/apod"
    assert lines["Data interval"] == "2024-01-02T00:00:00+00:00 to 2024-01-03T00:00:00+00:00"
    assert lines["Log"] == ti.log_url
    assert "s3cret" not in alert.text


@pytest.mark.parametrize(
    ("run_type", "state"),
    [
        ("manual", "running"),
        ("backfill", "queued"),
        ("scheduled", "success"),
        ("scheduled", "failed"),
    ],
)
def test_only_an_unfinished_scheduled_run_is_late(run_type, state, caplog):
    """What the scheduler hands a deadline's callback: the run as the REST API shows it."""
    from apod_pipeline import alerts

    dag_run = {"dag_id": "apod_etl", "dag_run_id": "r1", "run_type": run_type, "state": state}
    with caplog.at_level("INFO", logger=alerts.__name__):
        alerts.late_run({"dag_run": dag_run}, late_after="6h")
    assert "no lateness alert" in caplog.text


def test_a_late_alert_says_how_late_and_links_the_run():
    from apod_pipeline import alerts

    alert = alerts.late_alert(
        {
            "dag_id": "apod_etl",
            "dag_run_id": "scheduled__2024-01-02T00:00:00+00:00",
            "state": "running",
            "data_interval_start": "2024-01-02T00:00:00Z",
            "data_interval_end": "2024-01-03T00:00:00Z",
        },
        "6h",
    )
    assert alert.subject == "[apod] apod_etl: run late (run scheduled__2024-01-02T00:00:00+00:00)"
    lines = dict(alert.lines())
    assert lines["Reason"] == "still running 6h after its data interval ended"
    assert lines["Data interval"] == "2024-01-02T00:00:00+00:00 to 2024-01-03T00:00:00+00:00"
    assert lines["Run in the UI"].endswith(
        "/dags/apod_etl/runs/scheduled__2024-01-02T00%3A00%3A00%2B00%3A00"
    )
