"""The four step images run by hand with `docker run`, as a user would without Airflow.

Real Docker, real Postgres, real git + DVC; the NASA API is the repository's test server.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from support.services import (
    REPO,
    apod_test_server,
    docker,
    docker_volume,
    fresh_database,
    image,
    require_images,
    volume_cat,
    volume_git,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

STEPS = ("extract", "transform", "load", "version")
START, END = "2024-01-01", "2024-01-31"


def run_step(
    name: str,
    volume: str,
    *args: str,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """docker run one step on the shared volume; secrets travel by variable name only."""
    env = env or {}
    flags = ["--rm", "--network", "host", "-v", f"{volume}:/data", *extra]
    for key in env:
        flags += ["-e", key]
    return docker("run", *flags, image(name), *args, env={**os.environ, **env}, check=False)


def summary(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def pg_content(db, columns: list[str]) -> list[dict]:
    rows = db.query(f"SELECT {', '.join(columns)} FROM apod.apod_entries ORDER BY date")
    return [
        {c: ("" if v is None else str(v)) for c, v in zip(columns, row, strict=True)}
        for row in rows
    ]


@pytest.mark.parametrize("name", [*STEPS, "testserver"])
def test_image_runs_as_non_root_and_answers_help(name):
    require_images(name)
    user = docker("image", "inspect", "-f", "{{.Config.User}}", image(name)).stdout.strip()
    assert user, "the image sets no USER"
    assert user.split(":")[0] not in ("0", "root")
    uid = docker("run", "--rm", "--entrypoint", "id", image(name), "-u").stdout.strip()
    assert uid != "0"
    result = docker("run", "--rm", image(name), "--help", check=False)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


@pytest.mark.parametrize(
    ("name", "forbidden"),
    [("extract", "pandas"), ("load", "dvc"), ("transform", "dvc"), ("version", "pandas")],
)
def test_images_carry_only_their_own_libraries(name, forbidden):
    require_images(name)
    result = docker(
        "run",
        "--rm",
        "--entrypoint",
        "python",
        image(name),
        "-c",
        f"import {forbidden}",
        check=False,
    )
    assert result.returncode != 0


def test_four_steps_on_a_shared_volume_agree_and_rerun_changes_nothing():
    require_images(*STEPS)
    with (
        apod_test_server() as server,
        fresh_database("apod_byhand") as db,
        docker_volume("apod-test-data") as data,
        docker_volume("apod-test-dvc") as remote,
    ):
        served = json.loads(
            __import__("requests")
            .get(
                server.url,
                params={"api_key": "DEMO_KEY", "start_date": START, "end_date": END},
                timeout=10,
            )
            .text
        )
        env = {"APOD_API_URL": server.url, "APOD_DATABASE_URL": db.url}

        def pipeline(run_id: str) -> dict[str, subprocess.CompletedProcess]:
            results = {
                "extract": run_step(
                    "extract", data, "--start", START, "--end", END, "--run-id", run_id, env=env
                )
            }
            results["transform"] = run_step("transform", data, "--run-id", run_id)
            results["load_postgres"] = run_step(
                "load", data, "postgres", "--run-id", run_id, env=env
            )
            results["load_csv"] = run_step("load", data, "csv", "--run-id", run_id)
            results["version"] = run_step(
                "version",
                data,
                "--run-id",
                run_id,
                "--init-repo",
                env={"APOD_DVC_REMOTE": "/dvc-remote"},
                extra=("-v", f"{remote}:/dvc-remote"),
            )
            return results

        first = pipeline("manual__first")
        for step, result in first.items():
            assert result.returncode == 0, f"{step}: {result.stderr[-2000:]}"
        csv_text = volume_cat(data, "/data/apod_data.csv")
        rows = csv_rows(csv_text)
        columns = list(rows[0])
        assert [r["date"] for r in rows] == [e["date"] for e in served]
        assert pg_content(db, columns) == rows
        log = volume_git(data, "log", "--format=%H %s")
        assert len(log.splitlines()) == 2  # repository initialisation + this run's data commit
        changed = volume_git(data, "show", "--name-only", "--format=", "HEAD").split()
        assert "apod_data.csv.dvc" in changed
        assert "apod_data.csv" not in changed
        loaded_at = db.query("SELECT max(loaded_at) FROM apod.apod_entries")

        second = pipeline("manual__second")
        assert second["extract"].returncode == 0
        assert second["load_postgres"].returncode == 0
        assert summary(second["load_postgres"])["inserted"] == 0
        assert summary(second["load_postgres"])["updated"] == 0
        assert second["version"].returncode == 99, second["version"].stderr
        assert volume_cat(data, "/data/apod_data.csv") == csv_text
        assert volume_git(data, "log", "--format=%H %s") == log
        assert db.query("SELECT max(loaded_at) FROM apod.apod_entries") == loaded_at
        assert db.query("SELECT count(*) FROM apod.apod_entries")[0][0] == len(served)


def test_make_steps_commits_the_dvc_file_into_the_checkout(tmp_path: Path):
    """`scripts/run-steps.sh` (what `make steps` runs) on a clone of this repository."""
    require_images(*STEPS)
    if (
        subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, check=False
        ).returncode
        != 0
    ):
        pytest.skip("the repository has no commit to clone yet")
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(REPO), str(checkout)], check=True)
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
            [str(checkout / "scripts" / "run-steps.sh"), START, END],
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
            [str(checkout / "scripts" / "run-steps.sh"), START, END],
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
