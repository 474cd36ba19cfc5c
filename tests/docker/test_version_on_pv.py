"""The four step images on what a real cluster's PersistentVolume is: a host directory
owned by root, mode 0777, as kind's local-path and minikube's hostpath provisioners make
it (a named Docker volume takes the image user's owner instead and hides the problem).

As their images' own non-root user, first time: the steps fill Postgres and the CSV, and
the version step makes the data repository and commits once; a re-run commits nothing.
Before the fix, libgit2 (inside `dvc init`) refused /data ("not owned by current user"),
the step exited 1 and left a half-made repository behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.services import (
    STEP_IMAGES,
    apod_test_server,
    docker,
    fresh_database,
    image,
    require_images,
    volume_cat,
    volume_git,
)

from apod_pipeline.by_hand import Placement
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.runner import Runner

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

FIRST, LAST = "2024-01-01", "2024-01-31"


def as_root(parent: Path, script: str) -> None:
    """A shell script as root in a throwaway container with `parent` at /pv: the test
    may run as any user, and what the steps leave belongs to uid 10001."""
    docker(
        "run", "--rm", "--user", "0:0", "--network", "none", "-v", f"{parent}:/pv",
        "--entrypoint", "sh", image("version"), "-c", script,
    )  # fmt: skip


@contextlib.contextmanager
def provisioned_volumes() -> Iterator[tuple[Path, Path]]:
    """Two host directories as a provisioner makes them: root:root, mode 0777."""
    parent = Path(tempfile.mkdtemp(prefix="apod-test-pv-"))
    try:
        as_root(parent, "mkdir /pv/data /pv/remote && chown 0:0 /pv/data /pv/remote "
                "&& chmod 0777 /pv/data /pv/remote")  # fmt: skip
        yield parent / "data", parent / "remote"
    finally:
        as_root(parent, "rm -rf /pv/data /pv/remote")
        shutil.rmtree(parent, ignore_errors=True)


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid, info.st_mode & 0o7777


def test_the_pipeline_works_first_time_on_root_owned_0777_volumes():
    require_images(*STEP_IMAGES)
    with (
        apod_test_server() as server,
        fresh_database("apod_pv") as db,
        provisioned_volumes() as (data, remote),
    ):
        assert owner_and_mode(data) == owner_and_mode(remote) == (0, 0, 0o777)
        runner = Runner(
            Settings(api_url=server.url),
            Placement(volumes={DATA.name: str(data), DVC_REMOTE.name: str(remote)}),
            {"APOD_DATABASE_URL": db.url},
        )
        first = runner.pipeline({START: FIRST, END: LAST, RUN_ID: "manual__pv_first"})
        assert list(first) == list(runner.steps)  # every step ran, none failed first
        for step, run in first.items():
            assert run.returncode == 0, f"{step}: {run.stderr[-3000:]}"

        csv_text = volume_cat(str(data), "/data/apod_data.csv")
        rows = list(csv.DictReader(io.StringIO(csv_text)))
        assert len(rows) == 31
        assert [r["date"] for r in rows] == [f"2024-01-{d:02d}" for d in range(1, 32)]
        columns = list(rows[0])
        loaded = db.query(f"SELECT {', '.join(columns)} FROM apod.apod_entries ORDER BY date")
        as_text = [["" if v is None else str(v) for v in row] for row in loaded]
        assert [dict(zip(columns, row, strict=True)) for row in as_text] == rows

        subjects = volume_git(str(data), "log", "--format=%s").splitlines()
        assert len(subjects) == 2, subjects  # the repository's initial commit + one data commit
        assert subjects[0].startswith("data: update apod_data.csv (run manual__pv_first)")
        assert volume_git(str(data), "status", "--porcelain") == ""
        assert not list(data.glob(".apod-init-*"))
        assert first["version"].summary["md5"] in volume_cat(str(data), "/data/apod_data.csv.dvc")
        assert any(remote.rglob("*")), "the data never reached the DVC remote"
        # The steps changed nothing about the volumes themselves.
        assert owner_and_mode(data) == owner_and_mode(remote) == (0, 0, 0o777)

        # All the way again (not extract's early stop): version finds the data unchanged.
        second = runner.pipeline(
            {START: FIRST, END: LAST, RUN_ID: "manual__pv_second"},
            arguments={"extract": ("--always-load",)},
        )
        assert second["load_postgres"].summary["inserted"] == 0
        assert second["load_csv"].summary["changed"] is False
        assert second["version"].returncode == 99, second["version"].stderr[-3000:]
        assert volume_cat(str(data), "/data/apod_data.csv") == csv_text
        assert volume_git(str(data), "log", "--format=%s").splitlines() == subjects
