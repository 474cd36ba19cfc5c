"""Faults that need Airflow itself, on the session's compose stack (the e2e tier's
`compose_stack`, reused: no stack of their own), whose alerts go to its own alert catcher
(e2e/stack.py ALERTS):

- the scheduler container SIGKILLed mid-run and started again: the run finishes, with no
  duplicate row, no half-written CSV and no half commit, the month's rows and CSV lines
  as a clean run's;
- a scheduled run held past its deadline: one lateness alert, by e-mail and webhook;
- a run made to fail: the catcher's page and log show its alerts (make demo-alerts).

Each leaves the stack as it found it but for the runs it added: the same services up,
the DAG unpaused, no container of its own left.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from e2e.stack import DAG_ID, Stack
from support.services import apod_test_server, docker

from faults.world import clean_run, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.compose, pytest.mark.timeout(1200)]

MONTH = ("2024-01-01", "2024-01-31")
# The scheduler counts its own job dead after this long without a heartbeat (Airflow's
# [scheduler] scheduler_health_check_threshold default): a scheduler started again resets
# the running tasks of the dead one at once, instead of at its next orphan check.
HEALTH_THRESHOLD = 30
SET_FAULTS = """\
import json, sys, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8000/_control/" + sys.argv[1], data=sys.argv[2].encode(),
    method="POST", headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(request, timeout=10).status)
"""


def server_control(stack: Stack, path: str, payload: dict) -> None:
    """A call to the stack's APOD test server's control API (not published: from inside)."""
    stack.compose("exec", "-T", "apod-testserver", "python", "-c", SET_FAULTS, path,
                  json.dumps(payload))  # fmt: skip


def scheduler_id(stack: Stack) -> str:
    return stack.compose("ps", "-q", "airflow-scheduler").stdout.strip()


def wait_healthy(container: str, timeout: float = 300) -> None:
    def healthy() -> bool:
        state = docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        return state == "healthy"

    wait_for(healthy, timeout, f"{container} to be healthy", interval=2)


def step_containers(stack: Stack) -> list[str]:
    """Step containers on the stack's network (the DockerOperator's, labelled)."""
    return docker(
        "ps", "-aq", "--filter", "label=org.apod.pipeline=apod",
        "--filter", f"network={stack.network}",
    ).stdout.split()  # fmt: skip


def data_lines(csv: str, start: str, end: str) -> list[str]:
    return [line for line in csv.splitlines()[1:] if start <= line[:10] <= end]


# --- the scheduler killed mid-run -------------------------------------------------------


def test_scheduler_killed_mid_run_and_started_again_finishes_the_run(compose_stack: Stack):
    stack = compose_stack
    api = stack.api()
    with apod_test_server() as server:
        clean = clean_run(server, *MONTH)  # the same fixtures the stack's test server serves
    before_steps = set(step_containers(stack))
    # The month's one request answers after 20 s: extract is surely running when the
    # scheduler dies (its container goes on; the task process that followed it does not).
    server_control(stack, "faults", {"faults": [{"delay": 20}]})
    run = api.trigger(DAG_ID, *MONTH)
    run_id = run["dag_run_id"]
    wait_for(
        lambda: api.run_state(DAG_ID, run_id)[1].get("extract") == "running",
        300,
        "extract to run",
        interval=1,
    )
    scheduler = scheduler_id(stack)
    docker("kill", "--signal", "KILL", scheduler)
    time.sleep(HEALTH_THRESHOLD + 5)  # down long enough to be known dead
    docker("start", scheduler)
    wait_healthy(scheduler)

    summary = api.follow(DAG_ID, run_id, timeout=900)
    assert summary["state"] == "success", summary
    extract = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/extract")
    assert extract["try_number"] >= 2  # the interrupted try was reset and run again

    # No duplicate row, and the month's rows are a clean run's.
    rows = stack.psql(
        "SELECT date::text, count(*) OVER (PARTITION BY date) FROM apod.apod_entries "
        f"WHERE date BETWEEN '{MONTH[0]}' AND '{MONTH[1]}' ORDER BY date"
    )
    assert [r[0] for r in rows] == [r[0] for r in clean.content()]
    assert {r[1] for r in rows} == {"1"}
    # The CSV whole and holding the month as a clean run writes it.
    csv = stack.in_data_volume("cat", "/data/apod_data.csv")
    clean_csv = clean.csv.decode()
    assert csv.splitlines()[0] == clean_csv.splitlines()[0]
    assert data_lines(csv, *MONTH) == data_lines(clean_csv, *MONTH)
    dates = [line[:10] for line in csv.splitlines()[1:]]
    assert len(dates) == len(set(dates))
    # No half commit: the repository is sound, clean, and its .dvc file is this CSV's.
    git = ("git", "-c", "safe.directory=/data", "-C", "/data")
    stack.in_data_volume(*git, "fsck", "--full", "--no-progress")
    assert stack.in_data_volume(*git, "status", "--porcelain").strip() == ""
    dvc_file = stack.in_data_volume("cat", "/data/apod_data.csv.dvc")
    md5 = stack.in_data_volume("md5sum", "/data/apod_data.csv").split()[0]
    assert f"md5: {md5}" in dvc_file

    # The killed try's container outlived the task that would have removed it.
    for container in set(step_containers(stack)) - before_steps:
        docker("rm", "-f", container, check=False)


# --- a scheduled run past its deadline ------------------------------------------------


def scheduled_run(api, logical_date: datetime) -> str | None:
    """The id of the scheduled run of that logical date (named after its run_after)."""
    runs = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after")["dag_runs"]
    for run in runs:
        logical = run.get("logical_date") or ""
        if run["run_type"] == "scheduled" and logical.replace("Z", "+00:00") == (
            logical_date.isoformat()
        ):
            return run["dag_run_id"]
    return None


def test_a_scheduled_run_past_its_deadline_alerts_once(compose_stack: Stack):
    """The scheduler is made to create the scheduled run of the day before yesterday, as
    it does for a day whose run never started: its data interval ended a day ago, more
    than the 6 h the deadline allows, and it is held running. The deadline is missed once,
    the callback runs in the scheduler's executor, one message goes to each channel."""
    stack = compose_stack
    api = stack.api()
    before = len(stack.alerts("run late"))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=2), today - timedelta(days=1)
    server_control(stack, "faults", {"faults": [{"delay": 20}]})  # held running a while
    # What the scheduler reads to create the next scheduled run (the dag table).
    stack.psql(
        f"UPDATE dag SET next_dagrun = '{start.isoformat()}', "
        f"next_dagrun_data_interval_start = '{start.isoformat()}', "
        f"next_dagrun_data_interval_end = '{end.isoformat()}', "
        f"next_dagrun_create_after = '{end.isoformat()}' WHERE dag_id = '{DAG_ID}'",
        database="airflow",
    )
    run_id = wait_for(lambda: scheduled_run(api, start), 300, "the scheduler to create the run")
    wait_for(lambda: len(stack.alerts(f"run late (run {run_id})")) >= 2, 300, "the late alert")
    summary = api.follow(DAG_ID, run_id, timeout=600)
    assert summary["state"] == "success", summary
    time.sleep(10)  # a few more scheduler loops: the missed deadline is not handled twice
    late = stack.alerts("run late")
    assert len(late) - before == 2, [a["subject"] for a in late]
    mine = [a for a in late if run_id in a["subject"]]
    assert sorted(a["channel"] for a in mine) == ["mail", "webhook"]
    for alert in mine:
        assert "Reason: still " in alert["text"]
        assert "6h after its data interval ended" in alert["text"]
        assert f"Data interval: {start.isoformat()}" in alert["text"]
        assert f"/dags/{DAG_ID}/runs/" in alert["text"]
    # The manual runs of the session were late by the same measure: none of them alerted.
    assert {a["subject"] for a in late} == {a["subject"] for a in mine}


# --- the alert path, as make demo-alerts shows it ------------------------------------------


def test_a_run_made_to_fail_shows_on_the_catchers_page_and_log(compose_stack: Stack):
    stack = compose_stack
    summary = stack.run_dag("1995-06-15")  # before the first APOD: extract refuses it
    assert summary["exit_code"] == 1, summary["log"][-3000:]
    run_id = summary["run_id"]
    wait_for(lambda: len(stack.alerts(run_id)) >= 4, 180, "the task's and the run's alerts")
    alerts = stack.alerts(run_id)
    subjects = sorted(a["subject"] for a in alerts)
    assert subjects == sorted(
        [f"[apod] {DAG_ID}: task extract failed (run {run_id})"] * 2
        + [f"[apod] {DAG_ID}: run failed (run {run_id})"] * 2
    )
    task = next(a for a in alerts if a["channel"] == "mail" and "task" in a["subject"])
    assert "Exit code: 2 (bad arguments; not retried)" in task["text"]
    assert "Reason: --start 1995-06-15 is before the first APOD" in task["text"]
    assert f"http://127.0.0.1:{stack.env['APOD_UI_PORT']}/dags/{DAG_ID}/runs/" in task["text"]
    port = stack.env["APOD_ALERTS_PORT"]
    page = requests.get(f"http://127.0.0.1:{port}/", timeout=10).text
    assert f"task extract failed (run {run_id})" in page
    log = stack.compose("logs", "--no-color", "alertcatcher").stdout
    assert f"mail caught: [apod] {DAG_ID}: task extract failed (run {run_id})" in log
