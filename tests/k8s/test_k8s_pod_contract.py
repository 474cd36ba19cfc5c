"""The pods the DAG apod_etl_k8s launches, run with Docker exactly as rendered (image,
args, env with the Secret's values, PVCs as volumes at the same paths, uid/gid,
read-only root, no capabilities, no privilege escalation), in DAG order, leave the
same result as the four images run by hand: same rows in Postgres, same CSV bytes, same
DVC hash in the .dvc file, same objects in the DVC remote.

Real Docker, Postgres, git and DVC; the NASA API is the repository's test server.
"""

from __future__ import annotations

import subprocess

import pytest
from k8s_podrun import Cluster, docker_run
from support.airflow_render import render_pods
from support.services import (
    STEP_IMAGES,
    apod_test_server,
    docker,
    docker_volume,
    fresh_database,
    image,
    require_images,
)

from apod_pipeline.by_hand import Placement
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.runner import Runner

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(1200)]

FIRST, LAST = "2024-01-01", "2024-01-31"
CONTENT = (
    "date, title, explanation, media_type, url, hdurl, thumbnail_url, copyright, service_version"
)


def by_hand(volume: str, remote: str, api_url: str, db_url: str, run_id: str) -> None:
    """The steps as `make steps` runs them: docker run, secrets by variable name."""
    runner = Runner(
        Settings(api_url=api_url),
        Placement(volumes={DATA.name: volume, DVC_REMOTE.name: remote}),
        {"APOD_DATABASE_URL": db_url},
    )
    for task_id, run in runner.pipeline({START: FIRST, END: LAST, RUN_ID: run_id}).items():
        assert run.returncode == 0, f"by hand {task_id}: {run.stderr[-2000:]}"


def read(volume: str, path: str) -> bytes:
    command = ["run", "--rm", "-v", f"{volume}:/v:ro", "--entrypoint", "cat", image("version")]
    return subprocess.run(
        ["docker", *command, f"/v/{path}"],
        capture_output=True,
        check=True,
    ).stdout


def files(volume: str) -> list[str]:
    listing = docker(
        "run", "--rm", "-v", f"{volume}:/v:ro", "--entrypoint", "find", image("version"), "/v"
    )
    return listing.stdout.split()


def remote_files(volume: str) -> list[str]:
    result = docker(
        "run",
        "--rm",
        "-v",
        f"{volume}:/v:ro",
        "-w",
        "/v",
        "--entrypoint",
        "find",
        image("version"),
        ".",
        "-type",
        "f",
    )
    return sorted(result.stdout.split())


def test_dag_pods_run_in_docker_leave_what_the_by_hand_run_leaves(tmp_path):
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    require_images(*STEP_IMAGES)
    with (
        apod_test_server() as server,
        fresh_database("apod_k8s_pods") as pod_db,
        fresh_database("apod_k8s_hand") as hand_db,
        docker_volume("apod-k8s-data") as pod_data,
        docker_volume("apod-k8s-dvc") as pod_remote,
        docker_volume("apod-k8s-hand-data") as hand_data,
        docker_volume("apod-k8s-hand-dvc") as hand_remote,
    ):
        # What the scheduler's APOD_API_URL would give the pods: the test server.
        pods = render_pods(
            logical_date=None,
            start_date=FIRST,
            end_date=LAST,
            run_id="manual__k8s_contract",
            settings=Settings(api_url=server.url),
        )
        cluster = Cluster(
            workdir=tmp_path,
            secrets={"apod-secrets": {"nasa-api-key": "DEMO_KEY", "database-url": pod_db.url}},
            claims={"apod-data": pod_data, "apod-dvc-remote": pod_remote},
        )
        for task, pod in pods:
            (container,) = pod["spec"]["containers"]
            result = docker_run(pod, container["name"], cluster)
            assert result.returncode == 0, f"pod {task}: {result.stderr[-3000:]}"
            assert result.stdout.strip().splitlines()[-1].startswith("{"), task
            assert pod_db.password not in result.stdout + result.stderr

        by_hand(hand_data, hand_remote, server.url, hand_db.url, "manual__by_hand")

        csv = read(pod_data, "apod_data.csv")
        assert csv == read(hand_data, "apod_data.csv")
        assert len(csv.decode().splitlines()) == 1 + 31
        dvc_file = read(pod_data, "apod_data.csv.dvc")
        assert b"md5: " in dvc_file
        assert dvc_file == read(hand_data, "apod_data.csv.dvc")
        assert remote_files(pod_remote) == remote_files(hand_remote) != []
        query = f"SELECT {CONTENT} FROM apod.apod_entries ORDER BY date"
        rows = pod_db.query(query)
        assert len(rows) == 31
        assert rows == hand_db.query(query)
        # Everything the pods wrote is on the data volume (the root filesystem was read-only).
        assert any(path.startswith("/v/raw/") for path in files(pod_data))
        assert any(path.startswith("/v/staging/") for path in files(pod_data))
