"""Alerts of a run made to fail, through the real callbacks: `airflow dags test apod_etl`
on the real Docker engine, the APOD test server refusing the key (extract exits 4, which
is not retried), and the alert catcher's real SMTP server (aiosmtpd, with a login) and
webhook receiver on 127.0.0.1.

A run that fails once and then succeeds sends nothing: test_dags_test_docker.py checks
that on its first run (one refused request, then a clean retry), at no extra run's cost.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from support.alerting import AlertCatcher, alert_settings, connection_env
from support.dags_test import AIRFLOW, airflow, dags_test_env, of_latest_run
from support.services import apod_test_server, docker_volume, require_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

DATE = "2024-01-02"


def test_a_refused_key_sends_one_mail_and_one_webhook_per_failed_task_and_per_run(
    tmp_path: Path, monkeypatch
):
    require_images("extract")
    if not AIRFLOW.exists():
        pytest.skip(f"no airflow CLI at {AIRFLOW}")
    home = tmp_path / "airflow-home"
    home.mkdir()
    refused_key = "refused-key-" + secrets.token_hex(8)
    monkeypatch.setenv("APOD_TESTSERVER_VALID_KEYS", "the-only-good-key")
    login = ("alerts@example.org", "smtp-pw:@/" + secrets.token_hex(8))
    with (
        apod_test_server() as server,
        docker_volume("apod-alerts-data") as data,
        AlertCatcher(credentials=login) as catcher,
    ):
        settings = alert_settings(catcher, login)
        env = dags_test_env(
            home,
            data=data,
            remote=data,  # never reached: the run stops at extract
            api_url=server.url,
            db_url="postgres://nobody@127.0.0.1:9/none",  # never reached either
            AIRFLOW_CONN_APOD_NASA_API=json.dumps({"conn_type": "http", "password": refused_key}),
            **connection_env(settings),
        )
        migrated = airflow(env, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        result = airflow(env, "dags", "test", "apod_etl", DATE)

        states = dict(
            of_latest_run(home, "SELECT task_id, state FROM task_instance WHERE run_id = {run}")
        )
        assert states["extract"] == "failed", result.stderr[-5000:]
        assert set(states.values()) == {"failed", "upstream_failed"}
        query = "SELECT run_id, data_interval_start, data_interval_end FROM dag_run"
        run_id, *interval = of_latest_run(home, query + " WHERE run_id = {run}")[0]
        start, end = (datetime.fromisoformat(t).replace(tzinfo=UTC).isoformat() for t in interval)
        mails, hooks = catcher.caught("mail"), catcher.caught("webhook")

    # One per failed task (extract: its dependants never ran), one for the run.
    assert sorted(m.subject for m in mails) == sorted(h.subject for h in hooks)
    task = [m for m in mails if "task extract failed" in m.subject]
    run = [m for m in mails if "run failed" in m.subject]
    assert (len(task), len(run), len(mails)) == (1, 1, 2), [m.subject for m in mails]
    assert {m.login for m in mails} == {login[0]}  # the server's login was used
    assert {r for m in mails for r in m.recipients} == {"night-ops@example.org"}

    text = task[0].text
    expected = [
        "DAG: apod_etl",
        f"Run: {run_id}",
        f"Data interval: {start} to {end}",
        "Task: extract, try 1 of 4",
        "Exit code: 4 (refused by upstream; not retried)",
        f"/dags/apod_etl/runs/{quote(run_id)}/tasks/extract?try_number=1",
    ]
    for line in expected:
        assert line in text, text
    reason = next(line for line in text.splitlines() if line.startswith("Reason: "))
    assert "403" in reason or "key" in reason.lower(), reason
    hook = next(h for h in hooks if "task extract failed" in h.subject)
    assert hook.text.splitlines()[1:] == text.splitlines()[1:]  # the same fields, in text
    assert hook.payload["alert"]["Exit code"].startswith("4 ")
    assert "Reason: task_failure" in run[0].text
    assert "last failed task: extract" in run[0].text

    sent = json.dumps([[c.subject, c.text, c.payload] for c in mails + hooks])
    secret_values = [
        refused_key,
        login[1],
        quote(login[1], safe=""),
        settings["APOD_ALERT_WEBHOOK_URL"].rsplit("/", 1)[1],
    ]
    assert [s for s in secret_values if s in sent] == []
