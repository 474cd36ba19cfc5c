"""apod_etl on the compose stack, end to end: REST API in, Postgres + CSV + git/DVC out."""

from __future__ import annotations

import json
import re

import pytest
from support.services import SAMPLE_FIXTURES

pytestmark = pytest.mark.compose

STEPS = ("extract", "transform", "load_postgres", "load_csv", "version")


def fixture_dates() -> list[str]:
    """Dates the offline test server can serve (the committed sample), oldest first."""
    dates: set[str] = set()
    for path in SAMPLE_FIXTURES.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data.values() if isinstance(data, dict) else data
        dates.update(entry["date"] for entry in entries if isinstance(entry, dict))
    return sorted(dates)


def state(stack) -> dict:
    """What a run leaves behind: rows, the CSV's bytes, the .dvc file's commits."""
    md5 = stack.in_data_volume("md5sum", "/data/apod_data.csv").split()[0]
    return {
        "rows": int(stack.psql("SELECT count(*) FROM apod.apod_entries")[0][0]),
        "csv_md5": md5,
        "csv": stack.in_data_volume("cat", "/data/apod_data.csv"),
        "commits": stack.commits_of_dvc_file(),
    }


@pytest.fixture(scope="module")
def fresh_day(compose_stack) -> str:
    """A sample date the stack has not loaded yet, so its run must change every store."""
    loaded = {row[0] for row in compose_stack.psql("SELECT date::text FROM apod.apod_entries")}
    candidates = [d for d in fixture_dates() if d.startswith("2024-01") and d not in loaded]
    if not candidates:
        pytest.fail("every January 2024 sample date is already loaded; use a fresh stack")
    return candidates[0]


@pytest.fixture(scope="module")
def first_run(compose_stack, fresh_day) -> tuple[dict, dict, dict]:
    before = state(compose_stack)
    summary = compose_stack.run_dag(fresh_day)
    after = state(compose_stack)
    return before, summary, after


def test_demo_run_succeeds(compose_stack):
    demo = compose_stack.demo
    assert demo["state"] == "success", demo["log"][-3000:]
    assert demo["exit_code"] == 0
    assert set(demo["tasks"]) == set(STEPS)
    assert all(demo["tasks"][t] == "success" for t in STEPS[:-1]), demo["tasks"]
    # version: a commit on a fresh stack, skipped when the demo date was already versioned
    assert demo["tasks"]["version"] in ("success", "skipped")


def test_one_day_run_loads_both_stores_and_commits(compose_stack, fresh_day, first_run):
    before, summary, after = first_run
    assert summary["state"] == "success", summary["log"][-3000:]
    assert summary["tasks"] == dict.fromkeys(STEPS, "success")

    rows = compose_stack.psql(
        f"SELECT date::text, title, media_type FROM apod.apod_entries WHERE date = '{fresh_day}'"
    )
    assert len(rows) == 1
    assert rows[0][1], "empty title"
    assert rows[0][2] in ("image", "video", "other")
    assert after["rows"] == before["rows"] + 1

    csv_dates = re.findall(r"^(\d{4}-\d{2}-\d{2}),", after["csv"], re.M)
    assert fresh_day in csv_dates
    assert csv_dates == sorted(set(csv_dates)), "CSV not deduplicated and sorted by date"
    assert len(csv_dates) == after["rows"], "Postgres and the CSV disagree"

    assert len(after["commits"]) == len(before["commits"]) + 1
    assert summary["run_id"] in after["commits"][0]
    # The committed .dvc file names exactly the CSV now in the volume.
    dvc_file = compose_stack.in_data_volume("git", "-C", "/data", "show", "HEAD:apod_data.csv.dvc")
    assert f"md5: {after['csv_md5']}" in dvc_file


def test_same_day_again_changes_nothing(compose_stack, fresh_day, first_run):
    _, _, after_first = first_run
    summary = compose_stack.run_dag(fresh_day)
    again = state(compose_stack)

    assert summary["state"] == "success", summary["log"][-3000:]
    assert summary["tasks"]["version"] == "skipped"  # exit 99: data unchanged
    assert again["rows"] == after_first["rows"]
    assert compose_stack.psql(
        f"SELECT count(*) FROM apod.apod_entries WHERE date = '{fresh_day}'"
    ) == [["1"]]
    assert again["csv_md5"] == after_first["csv_md5"]
    assert again["commits"] == after_first["commits"]


def test_step_containers_are_removed(compose_stack, first_run):
    from support.services import docker

    left = docker("ps", "-a", "-q", "--filter", "label=org.apod.pipeline=apod").stdout.split()
    assert left == []
