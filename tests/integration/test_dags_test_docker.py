"""`airflow dags test apod_etl <date>` end to end on the real Docker engine.

A throwaway AIRFLOW_HOME (sqlite), the step images, the repository's APOD test server,
a fresh Postgres database prepared by `apod-load init-db`, and two Docker volumes (data,
DVC remote) created and removed here. Containers use the host network so 127.0.0.1
means the same thing to them as to the test.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from support.alerting import AlertCatcher, alert_settings, connection_env
from support.dags_test import (
    AIRFLOW,
    admin_query,
    airflow,
    dags_test_env,
    drop_role,
    init_db,
    of_latest_run,
    role_url,
)
from support.services import (
    STEP_IMAGES,
    apod_test_server,
    docker,
    docker_volume,
    fresh_database,
    image,
    require_images,
    volume_cat,
    volume_git,
)

from apod_pipeline.settings import Settings
from apod_pipeline.steps import steps

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

DATE = "2024-01-02"
RANGE = ("2024-01-01", "2024-01-10")
TASKS = {step.task_id for step in steps(Settings())}


def task_states(home: Path) -> dict[str, str]:
    """The task states of the latest `apod_etl` run."""
    query = "SELECT task_id, state FROM task_instance WHERE dag_id = 'apod_etl' AND run_id = {run}"
    return dict(of_latest_run(home, query))


def stored_text(home: Path) -> str:
    """Everything Airflow kept about the runs: rendered fields, XComs, task logs."""
    parts = []
    with sqlite3.connect(home / "airflow.db") as conn:
        for table, column in (
            ("rendered_task_instance_fields", "rendered_fields"),
            ("xcom", "value"),
        ):
            parts += [str(row[0]) for row in conn.execute(f"SELECT {column} FROM {table}")]
    for log in (home / "logs").rglob("*"):
        if log.is_file():
            parts.append(log.read_text(errors="replace"))
    return "\n".join(parts)


def rendered_fields(home: Path) -> dict[str, dict]:
    query = (
        "SELECT task_id, rendered_fields FROM rendered_task_instance_fields"
        " WHERE dag_id = 'apod_etl' AND run_id = {run}"
    )
    return {task_id: json.loads(fields) for task_id, fields in of_latest_run(home, query)}


def xcom_summaries(home: Path) -> dict[str, dict]:
    with sqlite3.connect(home / "airflow.db") as conn:
        rows = conn.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = 'apod_etl' AND key = 'return_value'"
        ).fetchall()
    summaries = {}
    for task_id, value in rows:
        decoded = json.loads(value)
        summaries[task_id] = json.loads(decoded) if isinstance(decoded, str) else decoded
    return summaries


def csv_dates(text: str) -> list[str]:
    return [row["date"] for row in csv.DictReader(io.StringIO(text))]


@pytest.fixture
def airflow_home(tmp_path):
    home = tmp_path / "airflow-home"
    home.mkdir()
    return home


def test_dags_test_runs_the_pipeline_and_a_rerun_changes_nothing(airflow_home, monkeypatch):
    require_images(*STEP_IMAGES)
    if not AIRFLOW.exists():
        pytest.skip(f"no airflow CLI at {AIRFLOW}")
    # A fresh named volume takes the owner of the image's mount point; without one it
    # is root's, and version (uid 10001) could not push to the DVC remote.
    owner = docker(
        "run",
        "--rm",
        "--entrypoint",
        "stat",
        image("version"),
        "-c",
        "%u",
        "/dvc-remote",
        check=False,
    )
    assert owner.stdout.strip() == "10001", "apod-version needs /dvc-remote owned by uid 10001"
    nasa_key = "canary-key-" + secrets.token_hex(8)
    # The test server accepts the canary key only: extract gets it from the connection
    # through private_environment, or every request is refused.
    monkeypatch.setenv("APOD_TESTSERVER_VALID_KEYS", nasa_key)
    monkeypatch.setenv("APOD_TESTSERVER_INVALID_KEYS", "DEMO_KEY")
    loader_role = "apod_dagstest_loader_" + secrets.token_hex(4)
    loader_password = "pw:@/" + secrets.token_hex(12)  # URI-special characters on purpose
    with contextlib.ExitStack() as stack:
        # Unwound last-in first-out: the role goes once the database it has grants in is gone.
        stack.callback(drop_role, loader_role)
        server = stack.enter_context(apod_test_server())
        # Alerts on: none of these runs may send one (the first fails once, then succeeds).
        catcher = stack.enter_context(AlertCatcher())
        db = stack.enter_context(fresh_database("apod_dagstest"))
        data = stack.enter_context(docker_volume("apod-dagstest-data"))
        remote = stack.enter_context(docker_volume("apod-dagstest-dvc"))
        init_db(db, loader_role, loader_password)
        env = dags_test_env(
            airflow_home,
            data=data,
            remote=remote,
            api_url=server.url,
            db_url=role_url(db, loader_role, loader_password, scheme="postgres"),
            AIRFLOW_CONN_APOD_NASA_API=json.dumps(
                {"conn_type": "http", "host": "api.nasa.gov", "password": nasa_key}
            ),
            **connection_env(alert_settings(catcher)),
        )
        migrated = airflow(env, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]

        # The first request is rate limited for an hour: extract exits 5 at once, the task
        # is retried (retry_delay) and then succeeds. A retry that succeeds alerts nobody.
        server.control("faults", {"faults": [{"status": 429, "retry_after": 3600}]})
        first = airflow(env, "dags", "test", "apod_etl", DATE)
        states = task_states(airflow_home)
        assert states == dict.fromkeys(TASKS, "success"), first.stderr[-5000:]
        tries = "SELECT try_number FROM task_instance WHERE task_id = 'extract' AND run_id = {run}"
        assert of_latest_run(airflow_home, tries) == [(2,)], first.stderr[-5000:]

        csv_text = volume_cat(data, "/data/apod_data.csv")
        assert csv_dates(csv_text) == [DATE]
        rows = admin_query(db.name, "SELECT date::text FROM apod.apod_entries ORDER BY date")
        assert [r[0] for r in rows] == [DATE]
        summaries = xcom_summaries(airflow_home)
        assert summaries["extract"]["status"] == "ok"
        assert summaries["version"]["status"] == "ok"
        rendered = rendered_fields(airflow_home)
        assert set(rendered) == TASKS
        assert rendered["extract"]["command"][:4] == ["--start", DATE, "--end", DATE]
        assert rendered["extract"]["environment"] == {"APOD_API_URL": server.url}
        assert rendered["load_postgres"]["environment"] == {}

        log = volume_git(data, "log", "--format=%H")
        head_files = volume_git(data, "show", "--name-only", "--format=", "HEAD").split()
        assert "apod_data.csv.dvc" in head_files
        assert "apod_data.csv" not in head_files
        assert volume_git(data, "ls-files").split().count("apod_data.csv") == 0

        # Same date again: the API answers as for the batch just versioned, so extract
        # exits 99 (nothing to do) and it is skipped, and everything after it.
        second = airflow(env, "dags", "test", "apod_etl", DATE)
        states = task_states(airflow_home)
        assert states == dict.fromkeys(TASKS, "skipped"), second.stderr[-5000:]
        assert volume_git(data, "log", "--format=%H") == log
        assert volume_cat(data, "/data/apod_data.csv") == csv_text
        assert admin_query(db.name, "SELECT count(*) FROM apod.apod_entries")[0][0] == 1

        # A manual backfill of a range in one run, through the params.
        conf = json.dumps({"start_date": RANGE[0], "end_date": RANGE[1]})
        third = airflow(env, "dags", "test", "--conf", conf, "apod_etl", "2024-02-01")
        states = task_states(airflow_home)
        assert states == dict.fromkeys(TASKS, "success"), third.stderr[-5000:]
        served_range = requests.get(
            server.url,
            params={"api_key": nasa_key, "start_date": RANGE[0], "end_date": RANGE[1]},
            timeout=10,
        ).json()
        expected_dates = [e["date"] for e in served_range]
        assert len(expected_dates) > 1
        assert csv_dates(volume_cat(data, "/data/apod_data.csv")) == expected_dates
        rows = admin_query(db.name, "SELECT date::text FROM apod.apod_entries ORDER BY date")
        assert [r[0] for r in rows] == expected_dates
        assert len(volume_git(data, "log", "--format=%H").split()) == len(log.split()) + 1

        assert catcher.caught() == []  # three runs, one retry: no alert

        # No secret value anywhere Airflow stores or shows things.
        kept = stored_text(airflow_home) + "".join(
            r.stdout + r.stderr for r in (first, second, third)
        )
        for secret in (nasa_key, loader_password, quote(loader_password, safe="")):
            assert secret not in kept


def test_bad_input_fails_at_once_and_the_container_is_removed(monkeypatch, tmp_path):
    """The retry policy reads the real provider's failure for a real container's exit 3."""
    require_images("transform")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    from airflow.providers.docker.exceptions import DockerContainerFailedException
    from airflow.sdk import RetryAction
    from support.airflow_render import render_context

    from apod_pipeline import docker as docker_dag

    with docker_volume("apod-dagstest-empty") as data:
        dag = docker_dag.dag(Settings(docker_network="host", data_volume=data))
        task = dag.get_task("transform")  # no raw batch on an empty volume: exit 3
        task.render_template_fields(
            render_context(dag, task, run_id="manual__nothing", logical_date=DATE)
        )
        with pytest.raises(DockerContainerFailedException) as failure:
            task.execute({})
        decision = task.retry_policy.evaluate(failure.value, 1, 4)
        assert decision.action == RetryAction.FAIL, str(failure.value)
        left = docker("ps", "-aq", "--filter", f"volume={data}").stdout
        assert left.strip() == ""
