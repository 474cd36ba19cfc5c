"""Lineage on the real Docker path: `airflow dags test apod_etl` (DockerOperator, the step
images, the APOD test server serving one hostile entry, a fresh Postgres database), then
Airflow's own asset events are compared with the data repository and Postgres, and the
lineage commands of the two images answer for a loaded date.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from datetime import datetime
from pathlib import Path

import pytest
from support.dags_test import (
    AIRFLOW,
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

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

RANGE = ("2024-01-01", "2024-01-31")
HOSTILE_DAY = "2024-01-20"


def asset_events(home: Path) -> dict[str, dict]:
    """The latest run's asset events: asset name -> extra."""
    query = (
        "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
        " WHERE e.source_run_id = {run}"
    )
    return {name: json.loads(extra) for name, extra in of_latest_run(home, query)}


def test_asset_events_name_the_version_and_the_rows_and_lineage_finds_them(tmp_path):
    require_images(*STEP_IMAGES)
    if not AIRFLOW.exists():
        pytest.skip(f"no airflow CLI at {AIRFLOW}")
    home = tmp_path / "airflow-home"
    home.mkdir()
    loader_role = "apod_lineage_loader_" + secrets.token_hex(4)
    loader_password = secrets.token_hex(12)
    with contextlib.ExitStack() as stack:
        stack.callback(drop_role, loader_role)
        server = stack.enter_context(apod_test_server())
        db = stack.enter_context(fresh_database("apod_lineage"))
        data = stack.enter_context(docker_volume("apod-lineage-data"))
        remote = stack.enter_context(docker_volume("apod-lineage-dvc"))
        init_db(db, loader_role, loader_password)
        hostile = {"date": HOSTILE_DAY, "title": "x", "explanation": "y", "media_type": "hologram"}
        server.control(f"entries/{HOSTILE_DAY}", hostile, method="PUT")
        loader_url = role_url(db, loader_role, loader_password)
        env = dags_test_env(
            home,
            data=data,
            remote=remote,
            api_url=server.url,
            db_url=role_url(db, loader_role, loader_password, scheme="postgres"),
        )
        assert airflow(env, "db", "migrate").returncode == 0
        conf = json.dumps({"start_date": RANGE[0], "end_date": RANGE[1]})
        run = airflow(env, "dags", "test", "--conf", conf, "apod_etl", "2024-02-01")
        events = asset_events(home)
        assert set(events) == {"apod_data.csv", "apod.apod_entries"}, run.stderr[-5000:]

        csv_event, table_event = events["apod_data.csv"], events["apod.apod_entries"]
        head = volume_git(data, "log", "-1", "--format=%H", "--", "apod_data.csv.dvc").strip()
        dvc_file = volume_cat(data, "/data/apod_data.csv.dvc")
        assert csv_event["commit"] == head
        assert f"md5: {csv_event['md5']}" in dvc_file
        assert csv_event["dvc_pushed"] is True
        assert csv_event["rows"] == 30 == table_event["rows"] == table_event["inserted"]
        assert table_event["table_rows"] == 30
        assert (table_event["updated"], table_event["unchanged"]) == (0, 0)
        for event in (csv_event, table_event):
            assert event["rejected"] == 1
            assert event["reject_reasons"] == {"unknown media_type": 1}
            assert event["accepted"] == 30
            rejected = volume_cat(data, event["rejected_file"])
            assert HOSTILE_DAY in rejected  # the rows stay where they were

        # From a loaded date back to its run and version, with the images' commands.
        found = docker(
            "run", "--rm", "-v", f"{data}:/data:ro", "-v", f"{remote}:/dvc-remote:ro",
            image("version"), "lineage", "--date", "2024-01-15",
        )  # fmt: skip
        lineage = json.loads(found.stdout.strip().splitlines()[-1])
        assert (lineage["commit"], lineage["md5"]) == (head, csv_event["md5"])
        assert lineage["run_id"].startswith("manual__")
        provenance = docker(
            "run", "--rm", "--network", "host", "-e", "APOD_DATABASE_URL",
            image("load"), "provenance", "--date", "2024-01-15",
            env={**os.environ, "APOD_DATABASE_URL": loader_url},
        )  # fmt: skip
        row = json.loads(provenance.stdout.strip().splitlines()[-1])
        assert row["run_id"] == lineage["run_id"]
        loaded, extracted = (datetime.fromisoformat(row[k]) for k in ("loaded_at", "extracted_at"))
        assert loaded >= extracted
        assert loader_password not in provenance.stdout + provenance.stderr
        gone = docker(
            "run", "--rm", "--network", "host", "-e", "APOD_DATABASE_URL",
            image("load"), "provenance", "--date", HOSTILE_DAY,
            env={**os.environ, "APOD_DATABASE_URL": loader_url}, check=False,
        )  # fmt: skip
        assert gone.returncode == 3, gone.stderr
