"""The four step images run by hand with `docker run`, as a user would without Airflow.

Real Docker, real Postgres, real git + DVC; the NASA API is the repository's test server.
The steps are the pipeline's one definition, rendered by apod_pipeline.by_hand and run by
scripts/apod_tools (what `make steps` runs, on named volumes here).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from support.services import (
    REPO,
    STEP_IMAGES,
    apod_test_server,
    docker_volume,
    fresh_database,
    require_images,
    volume_cat,
    volume_git,
)

from apod_pipeline.by_hand import Placement
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.runner import Runner, StepRun

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

FIRST, LAST = "2024-01-01", "2024-01-31"


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def pg_content(db, columns: list[str]) -> list[dict]:
    rows = db.query(f"SELECT {', '.join(columns)} FROM apod.apod_entries ORDER BY date")
    return [
        {c: ("" if v is None else str(v)) for c, v in zip(columns, row, strict=True)}
        for row in rows
    ]


def served(server, first: str, last: str) -> list[dict]:
    query = urlencode({"api_key": "DEMO_KEY", "start_date": first, "end_date": last})
    with urllib.request.urlopen(f"{server.url}?{query}", timeout=10) as response:  # noqa: S310
        return json.load(response)


def test_four_steps_on_a_shared_volume_agree_and_an_unchanged_rerun_stops_early():
    """A re-run whose API answers are the last versioned batch's stops at extract (exit 99,
    and says why in its summary): nothing loaded, nothing committed, every store as it was."""
    require_images(*STEP_IMAGES)
    with (
        apod_test_server() as server,
        fresh_database("apod_byhand") as db,
        docker_volume("apod-test-data") as data,
        docker_volume("apod-test-dvc") as remote,
    ):
        expected = served(server, FIRST, LAST)
        runner = Runner(
            Settings(api_url=server.url),
            Placement(volumes={DATA.name: data, DVC_REMOTE.name: remote}),
            {"APOD_DATABASE_URL": db.url},
        )

        def pipeline(run_id: str) -> dict[str, StepRun]:
            return runner.pipeline({START: FIRST, END: LAST, RUN_ID: run_id})

        first = pipeline("manual__first")
        assert list(first) == list(runner.steps)  # every step ran
        for step, result in first.items():
            assert result.returncode == 0, f"{step}: {result.stderr[-2000:]}"
        csv_text = volume_cat(data, "/data/apod_data.csv")
        rows = csv_rows(csv_text)
        columns = list(rows[0])
        assert [r["date"] for r in rows] == [e["date"] for e in expected]
        assert pg_content(db, columns) == rows
        log = volume_git(data, "log", "--format=%H %s")
        assert len(log.splitlines()) == 2  # repository initialisation + this run's data commit
        changed = volume_git(data, "show", "--name-only", "--format=", "HEAD").split()
        assert "apod_data.csv.dvc" in changed
        assert "apod_data.csv" not in changed
        loaded_at = db.query("SELECT max(loaded_at) FROM apod.apod_entries")

        second = pipeline("manual__second")
        assert list(second) == ["extract"], "the steps after an early stop ran"
        assert second["extract"].returncode == 99, second["extract"].stderr
        summary = second["extract"].summary
        assert summary["status"] == "skipped"
        assert summary["reason"].startswith("unchanged:")
        assert "manual__first" in summary["reason"]
        assert volume_cat(data, "/data/apod_data.csv") == csv_text
        assert volume_git(data, "log", "--format=%H %s") == log
        assert db.query("SELECT max(loaded_at) FROM apod.apod_entries") == loaded_at
        assert db.query("SELECT count(*) FROM apod.apod_entries")[0][0] == len(expected)


def test_nothing_to_extract_skips_every_step_downstream():
    """Exit 99 skips what comes after, by hand as in the DAGs: no load, no version."""
    require_images("extract")
    with apod_test_server() as server, docker_volume("apod-test-empty") as data:
        runner = Runner(
            Settings(api_url=server.url),
            Placement(volumes={DATA.name: data, DVC_REMOTE.name: None}),
        )
        assert served(server, "1995-06-17", "1995-06-19") == []  # days the sample lacks
        runs = runner.pipeline({START: "1995-06-17", END: "1995-06-19", RUN_ID: "manual__none"})
        assert list(runs) == ["extract"]
        assert runs["extract"].returncode == 99, runs["extract"].stderr


def checkout_of_this_tree(target: Path) -> Path:
    """A clone of this repository whose `make steps` code is this working tree's: the
    runner, the pipeline's definition and VERSION, committed or not."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    for name in ("Makefile", "VERSION"):
        shutil.copy2(REPO / name, target / name)
    for tree in ("mk", "scripts", "dags"):
        shutil.copytree(
            REPO / tree,
            target / tree,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return target


def test_make_steps_commits_the_dvc_file_into_the_checkout(tmp_path: Path):
    """`make steps` on a clone of this repository: the .dvc file committed into it, the
    CSV beside it, a re-run commits nothing; no secret in the output."""
    require_images(*STEP_IMAGES)
    if (
        subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, check=False
        ).returncode
        != 0
    ):
        pytest.skip("the repository has no commit to clone yet")
    checkout = checkout_of_this_tree(tmp_path / "checkout")
    remote = tmp_path / "dvc-remote"
    with apod_test_server() as server, fresh_database("apod_makesteps") as db:
        env = {
            **os.environ,
            "APOD_API_URL": server.url,
            "APOD_DATABASE_URL": db.url,
            "APOD_DVC_REMOTE": str(remote),
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@localhost",
        }
        head = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        result = subprocess.run(
            ["make", "-C", str(checkout), "steps", f"START={FIRST}", f"END={LAST}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert db.url not in result.stderr + result.stdout
        assert db.password not in result.stderr + result.stdout
        commits = subprocess.run(
            ["git", "-C", str(checkout), "log", "--format=%H", f"{head}..HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(commits) == 1
        files = subprocess.run(
            ["git", "-C", str(checkout), "show", "--name-only", "--format=", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert "data/apod_data.csv.dvc" in files
        assert all(f.startswith("data/") and not f.endswith(".csv") for f in files)
        rows = csv_rows((checkout / "data" / "apod_data.csv").read_text(encoding="utf-8"))
        assert db.query("SELECT count(*) FROM apod.apod_entries")[0][0] == len(rows) == 31

        again = subprocess.run(
            ["make", "-C", str(checkout), "steps", f"START={FIRST}", f"END={LAST}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert again.returncode == 0, again.stderr[-3000:]
        after = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert after == commits[0]
