"""Idempotency: the whole pipeline (five `docker run`s) repeated on the same day, the same
range, overlapping ranges and after an upstream edit, compared with one clean run of the
same input in a world of its own (`world.clean_run`).

What is compared across worlds is what must not depend on the run: the content columns
of every row, the CSV bytes, the `.dvc` file (the data's md5), the git tree and the number
of commits. Within one world, repeated runs must also leave the provenance columns
(`run_id`, `extracted_at`, `loaded_at`) and HEAD exactly as they were.
"""

from __future__ import annotations

import csv
import io
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from apod_common import exit_codes
from faults.world import World, clean_run

pytestmark = [
    pytest.mark.faults,
    pytest.mark.docker,
    pytest.mark.integration,
    pytest.mark.timeout(300),
]

MONTH = ("2024-01-01", "2024-01-31")
DAY = "2024-01-05"
INIT_AND_ONE_DATA_COMMIT = 2  # --init-repo's initial commit + the data's first version


def run_id(label: str) -> str:
    return f"manual__idem_{label}_{secrets.token_hex(3)}"


def records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_same_day_three_times_equals_one_clean_run(w: World, server):
    clean = clean_run(server, DAY)
    runs = [w.pipeline(run_id(f"day{n}"), DAY) for n in range(3)]
    first = runs[0]
    assert [r["version"].returncode for r in runs] == [0, *[exit_codes.NOTHING_TO_DO] * 2]
    for again in runs[1:]:
        assert again["load_postgres"].summary["unchanged"] == 1
        assert again["load_csv"].summary["changed"] is False
    got = w.snapshot()
    # The first run's rows, never rewritten: its run id and load time are still there.
    assert [row[9] for row in got.rows] == [first["load_postgres"].summary["run_id"]]
    assert got.content() == clean.content()
    assert len(got.rows) == 1
    assert got.csv == clean.csv
    assert got.dvc_file == clean.dvc_file
    assert got.tree == clean.tree
    assert got.commits == clean.commits == INIT_AND_ONE_DATA_COMMIT


def test_same_range_twice_changes_nothing_and_makes_no_commit(w: World, server):
    clean = clean_run(server, *MONTH)
    w.pipeline(run_id("once"), *MONTH)
    once = w.snapshot()
    twice_steps = w.pipeline(run_id("twice"), *MONTH)
    assert twice_steps["version"].returncode == exit_codes.NOTHING_TO_DO
    assert twice_steps["load_postgres"].summary["unchanged"] == 31
    twice = w.snapshot()
    assert twice == once  # every column of every row, the CSV, HEAD itself
    assert once.content() == clean.content()
    assert (once.csv, once.dvc_file, once.tree) == (clean.csv, clean.dvc_file, clean.tree)
    assert once.commits == INIT_AND_ONE_DATA_COMMIT


def test_overlapping_ranges_end_like_one_run_of_their_union(w: World, server):
    clean = clean_run(server, *MONTH)
    early, late = run_id("early"), run_id("late")
    first = w.pipeline(early, "2024-01-01", "2024-01-20")
    second = w.pipeline(late, "2024-01-10", "2024-01-31")
    assert first["version"].returncode == 0
    assert second["version"].returncode == 0
    pg = second["load_postgres"].summary
    assert (pg["inserted"], pg["updated"], pg["unchanged"]) == (11, 0, 11)
    got = w.snapshot()
    assert got.content() == clean.content()
    assert got.csv == clean.csv
    assert got.dvc_file == clean.dvc_file
    assert got.tree == clean.tree
    # The 11 overlapping days were not rewritten: they keep the first run's provenance.
    assert [row[9] for row in got.rows] == [early] * 20 + [late] * 11
    # History differs from the single run on purpose: the data changed twice, so there are
    # two data versions (each a state that existed and was pushed), not one.
    assert got.commits == clean.commits + 1
    subjects = w.git("log", "--format=%s").splitlines()
    assert subjects[:2] == [
        f"data: update apod_data.csv (run {late})",
        f"data: update apod_data.csv (run {early})",
    ]


def test_two_runs_in_flight_side_by_side_end_like_one_run_of_their_union(w: World, server):
    """Overlapping runs at once (as a backfill's may be): each step of one runs while the
    other's steps run, on the same volume, table and data repository. Their locks leave
    what one run of the union leaves, and a sound repository."""
    clean = clean_run(server, *MONTH)
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(w.pipeline, run_id("side_a"), "2024-01-01", "2024-01-20"),
            pool.submit(w.pipeline, run_id("side_b"), "2024-01-10", "2024-01-31"),
        ]
        steps = [run.result() for run in runs]
    got = w.snapshot()
    assert got.content() == clean.content()
    assert got.csv == clean.csv
    assert got.dvc_file == clean.dvc_file
    assert got.tree == clean.tree
    # One data commit per run that changed the data: the second to version may find its
    # batch already in the CSV the first committed.
    versions = sorted(step["version"].returncode for step in steps)
    assert versions in ([0, 0], [0, exit_codes.NOTHING_TO_DO])
    assert got.commits == clean.commits + versions.count(0) - 1
    assert w.git("fsck", "--strict", "--no-dangling", "--no-progress").strip() == ""
    assert w.git("status", "--porcelain") == ""


def test_an_upstream_edit_updates_one_row_and_makes_one_commit(w: World, server):
    edited_day = "2024-01-15"
    first_run = run_id("before")
    w.pipeline(first_run, *MONTH)
    before = w.snapshot()

    served = requests.get(
        server.url, params={"api_key": "DEMO_KEY", "date": edited_day}, timeout=10
    ).json()
    new_title = served["title"] + " (corrected)"
    server.control(f"entries/{edited_day}", {**served, "title": new_title}, method="PUT")

    second_run = run_id("after")
    steps = w.pipeline(second_run, *MONTH)
    pg, csv_load = steps["load_postgres"].summary, steps["load_csv"].summary
    assert (pg["inserted"], pg["updated"], pg["unchanged"]) == (0, 1, 30)
    assert (csv_load["added"], csv_load["updated"], csv_load["unchanged"]) == (0, 1, 30)
    assert steps["version"].returncode == 0
    after = w.snapshot()

    # Postgres: that row carries the new title and the new run; every other row is
    # untouched, its run id and loaded_at included.
    index = next(i for i, row in enumerate(before.rows) if row[0] == edited_day)
    old_row, new_row = before.rows[index], after.rows[index]
    assert new_row[1] == new_title
    assert new_row[2:9] == old_row[2:9]
    assert new_row[9] == second_run
    assert new_row[11] > old_row[11]  # loaded_at moved on
    assert after.rows[:index] + after.rows[index + 1 :] == (
        before.rows[:index] + before.rows[index + 1 :]
    )
    assert {row[9] for i, row in enumerate(after.rows) if i != index} == {first_run}

    # CSV: the same records, but that title.
    old_records, new_records = records(before.csv), records(after.csv)
    expected = [list(r) for r in old_records]
    expected[index + 1][1] = new_title  # +1: the header
    assert new_records == expected

    # git: exactly one new commit, holding the new md5.
    assert after.commits == before.commits + 1
    assert w.git("rev-parse", "HEAD^").strip() == before.head
    assert steps["version"].summary["md5"] in after.dvc_file
    assert after.dvc_file != before.dvc_file
    assert w.git("log", "-1", "--format=%s").strip() == (
        f"data: update apod_data.csv (run {second_run})"
    )
    assert w.git("diff", "--name-only", "HEAD^", "HEAD").split() == ["apod_data.csv.dvc"]
