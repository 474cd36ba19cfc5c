"""apod_etl on the compose stack, end to end: REST API in, Postgres + CSV + git/DVC out."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from support.services import SAMPLE_FIXTURES

from e2e.stack import DAG_ID

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


@contextlib.contextmanager
def containers_created(network: str) -> Iterator[list[dict]]:
    """The engine's `create` event (id, image, labels) of every container made in the block
    that joined `network`: this stack's, not those other work on the engine makes
    meanwhile. Step containers remove themselves, so what they were is only seen while
    they exist."""
    watcher = subprocess.Popen(
        ["docker", "events", "--format", "{{json .}}",
         "--filter", "type=container", "--filter", "event=create",
         "--filter", "type=network", "--filter", "event=connect"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    created: list[dict] = []
    try:
        yield created
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=30)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        joined = {
            e["Actor"]["Attributes"].get("container")
            for e in events
            if e["Type"] == "network" and e["Actor"]["Attributes"].get("name") == network
        }
        created += [
            e["Actor"] for e in events if e["Type"] == "container" and e["Actor"]["ID"] in joined
        ]


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
    with containers_created(compose_stack.network) as created:
        summary = compose_stack.run_dag(fresh_day)
    summary["containers_created"] = created
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


def test_step_containers_are_labelled_and_removed(compose_stack, first_run):
    from support.services import docker

    _, summary, _ = first_run
    step_images = {f"apod-{name}" for name in ("extract", "transform", "load", "version")}
    steps = [
        c
        for c in summary["containers_created"]
        if c["Attributes"]["image"].split(":")[0] in step_images
    ]
    # Every step of the run ran in a container of its own, each carrying both labels...
    assert {c["Attributes"].get("org.apod.step") for c in steps} == set(STEPS), steps
    assert {c["Attributes"].get("org.apod.pipeline") for c in steps} == {"apod"}
    # ... and none of them is left, nor any other container with the label.
    existing = set(docker("ps", "-a", "-q", "--no-trunc").stdout.split())
    assert {c["ID"] for c in steps} & existing == set()
    left = docker(
        "ps", "-a", "-q", "--filter", "label=org.apod.pipeline=apod",
        "--filter", f"network={compose_stack.network}",
    ).stdout.split()  # fmt: skip
    assert left == []


def test_manual_runs_start_no_scheduled_run(compose_stack, first_run):
    """Unpausing the DAG would start the run of its last complete day at once; the first
    manual run took that slot instead, so every run is one that was asked for."""
    api = compose_stack.api()
    runs = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
    # A backfill's runs (tests/e2e/test_compose_backfill.py) were asked for too.
    runs = [run for run in runs if run["run_type"] != "backfill"]
    assert {run["run_type"] for run in runs} == {"manual"}, runs
    asked = {compose_stack.demo["run_id"], first_run[1]["run_id"]}
    assert asked <= {run["dag_run_id"] for run in runs}
    claimed = [run for run in runs if run["logical_date"]]
    assert [run["dag_run_id"] for run in claimed] == [compose_stack.demo["run_id"]]
    dag = api.call("GET", f"/api/v2/dags/{DAG_ID}")
    assert dag["is_paused"] is False
    # The schedule goes on from the interval after the slot: nothing is due now.
    next_run = datetime.fromisoformat(dag["next_dagrun_run_after"].replace("Z", "+00:00"))
    assert next_run > datetime.now(UTC)
    assert dag["next_dagrun_logical_date"] > claimed[0]["logical_date"]


def test_the_execution_api_is_built_before_the_first_task_calls_it(compose_stack):
    """The API server's health check asks the execution API too: its first request builds
    it (seconds on two cores), and that must be the health check's, not a task's."""
    log = compose_stack.compose("logs", "--no-color", "airflow-api-server").stdout
    first = re.search(r"method=(\w+) path=(/execution/\S*)", log)
    assert first, "no execution API request in the API server's log"
    assert first.groups() == ("GET", "/execution/health"), first.group(0)


def test_compose_parses_only_its_own_dag(compose_stack):
    """APOD_DEPLOYMENT=compose: the Kubernetes DAG (no cluster here) is not listed, and
    its file is no import error."""
    api = compose_stack.api()
    assert [dag["dag_id"] for dag in api.call("GET", "/api/v2/dags")["dags"]] == [DAG_ID]
    assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0
