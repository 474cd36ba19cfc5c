"""Airflow's own Backfill on the compose stack: a week through `POST /api/v2/backfills`
(the REST API's default max_active_runs, so its runs are in flight side by side), folded
into one range run (dags/README.md, "Backfill").

The runs must leave exactly what one range run of the week leaves: the week's rows
(content columns), the CSV's bytes and the DVC md5, compared with the steps run by hand
for that range from the CSV the stack held just before the backfill (the CSV is a merge:
the two merges of the same batch into the same file must agree byte for byte).
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import combinations

import pytest
from airflow_api import quote
from support.services import (
    STEP_IMAGES,
    apod_test_server,
    docker_volume,
    fresh_database,
    require_images,
)

from apod_common.schema import CONTENT_COLUMNS
from apod_pipeline.backfill import FOLD_KEY
from apod_pipeline.by_hand import Placement
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.runner import Runner
from e2e.stack import CSV, DAG_ID, DVC_FILE, dvc_md5, seed_volume, volume_file

pytestmark = [pytest.mark.compose, pytest.mark.docker, pytest.mark.timeout(1200)]

# A week of the committed sample that no other compose test uses: 2020-06-10 is missing,
# and the two days before it hold no entry.
FIRST, LAST = "2020-06-06", "2020-06-12"
DAYS = 7
ROWS_JSON = (
    f"SELECT coalesce(jsonb_agg(jsonb_build_array({', '.join(CONTENT_COLUMNS)}) ORDER BY date), "
    "'[]') "
    f"FROM apod.apod_entries WHERE date BETWEEN '{FIRST}' AND '{LAST}'"
)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def task_states(api, run_id: str) -> dict[str, str]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}/taskInstances"
    return {ti["task_id"]: ti["state"] for ti in api.call("GET", path)["task_instances"]}


def fold_plan(api, run_id: str) -> dict:
    run = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id)}"
    path = f"{run}/taskInstances/extract/xcomEntries/{FOLD_KEY}"
    value = api.call("GET", path)["value"]
    return value if isinstance(value, dict) else json.loads(value)


def by_hand(seed: bytes) -> dict:
    """One range run of the week with the step images, from the stack's CSV of before."""
    with (
        apod_test_server() as server,  # the sample, as the stack's offline server serves
        fresh_database("apod_backfill_hand") as db,
        docker_volume("apod-backfill-data") as data,
        docker_volume("apod-backfill-dvc") as remote,
    ):
        seed_volume(data, seed)
        runner = Runner(
            Settings(api_url=server.url),
            Placement(volumes={DATA.name: data, DVC_REMOTE.name: remote}),
            {"APOD_DATABASE_URL": db.url},
        )
        runs = runner.pipeline({START: FIRST, END: LAST, RUN_ID: "manual__backfill_range"})
        assert [run.returncode for run in runs.values()] == [0] * 5, runs
        return {
            "rows": db.query(ROWS_JSON)[0][0],
            "csv": volume_file(data, CSV),
            "dvc": volume_file(data, DVC_FILE),
        }


def test_a_backfill_week_folds_into_one_range_run_and_leaves_what_it_leaves(compose_stack):
    require_images(*STEP_IMAGES)
    api = compose_stack.api()
    volume = compose_stack.env["APOD_DATA_VOLUME"]
    seed = volume_file(volume, CSV)
    commits = compose_stack.commits_of_dvc_file()

    created = api.create_backfill(DAG_ID, FIRST, LAST)
    assert created["max_active_runs"] > 1  # the runs may be in flight side by side
    runs = api.backfill_runs(DAG_ID, FIRST, LAST, DAYS, timeout=900)
    assert len(runs) == DAYS
    assert all(run["state"] == "success" for run in runs), runs
    spans = [(moment(run["start_date"]), moment(run["end_date"])) for run in runs]
    assert any(
        start < other_end and other_start < end
        for (start, end), (other_start, other_end) in combinations(spans, 2)
    ), "no two runs were in flight at once"

    # The first day's run led: it fetched, loaded and versioned the whole week; every
    # other run followed its plan and started no container.
    leader = runs[0]["dag_run_id"]
    plan = {"start": FIRST, "end": LAST, "leader": leader, "clear_number": 0}
    assert [fold_plan(api, run["dag_run_id"]) for run in runs] == [plan] * DAYS
    assert task_states(api, leader) == dict.fromkeys(
        ("extract", "transform", "load_postgres", "load_csv", "version"), "success"
    )
    for run in runs[1:]:
        states = task_states(api, run["dag_run_id"])
        assert states.pop("extract") == "success", run
        assert set(states.values()) == {"skipped"}, run
    after = compose_stack.commits_of_dvc_file()
    assert after[1:] == commits, "not one data commit"
    assert leader in after[0]

    stack = {
        "rows": json.loads(compose_stack.psql(ROWS_JSON)[0][0]),
        "csv": volume_file(volume, CSV),
        "dvc": volume_file(volume, DVC_FILE),
    }
    assert len(stack["rows"]) == 4  # the sample's entries in the week
    hand = by_hand(seed)
    assert hand["rows"] == stack["rows"]
    assert hand["csv"] == stack["csv"]
    assert dvc_md5(hand["dvc"]) == dvc_md5(stack["dvc"])
