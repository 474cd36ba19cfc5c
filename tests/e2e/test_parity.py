"""One range, three ways of running the pipeline, one result.

The same range goes through `make steps` (the by-hand runner, in a clone of this tree),
through a DAG run on the compose stack (the e2e tier's own) and through the pods the
Kubernetes DAG renders, run with Docker as the kubelet would (tests/k8s/k8s_podrun).
All three must leave identical Postgres rows (content columns) for the range, identical
CSV bytes and the identical DVC hash, with the data pushed to each one's DVC remote (the
compose stack's: its object store).

The compose stack has loaded other days before (its demo run, other tests), so the two
other paths start from the CSV the stack holds just before its run: the CSV is a merge,
and the three merges of the same batch into the same file must agree byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.objectstore import object_key
from support.services import (
    REPO,
    STEP_IMAGES,
    apod_test_server,
    docker_volume,
    fresh_database,
    image,
    require_images,
)

from apod_pipeline.settings import Settings
from e2e.stack import CSV, DVC_FILE, dvc_md5, seed_volume, volume_file

pytestmark = [pytest.mark.compose, pytest.mark.docker, pytest.mark.k8s, pytest.mark.timeout(1800)]

# Every odd entry of the committed sample but January 2024 (which the other compose tests
# use): missing days, empty explanations, \r\n and U+FFFD in titles, no url, videos,
# copyrights with newlines. Many 31-day chunks, so extract works concurrently too.
FIRST, LAST = "1995-06-16", "2023-12-31"
CONTENT = ("date", "title", "explanation", "media_type", "url", "hdurl", "thumbnail_url",
           "copyright", "service_version")  # fmt: skip
ROWS_JSON = (
    # jsonb: printed on one line, whatever newlines the values hold (escaped).
    f"SELECT coalesce(jsonb_agg(jsonb_build_array({', '.join(CONTENT)}) ORDER BY date), '[]') "
    f"FROM apod.apod_entries WHERE date BETWEEN '{FIRST}' AND '{LAST}'"
)


def k8s_tools():
    """tests/k8s's pod runner and tests/docker's clone of this tree (no packages)."""
    for tier in ("k8s", "docker"):
        path = str(REPO / "tests" / tier)
        if path not in sys.path:
            sys.path.append(path)
    from k8s_podrun import Cluster, docker_run
    from test_steps_by_hand import checkout_of_this_tree

    return Cluster, docker_run, checkout_of_this_tree


def remote_has(volume_or_dir: str, md5: str) -> bool:
    """Whether a DVC remote (a volume, or a host directory) holds the object."""
    listing = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{volume_or_dir}:/r:ro",
         "--entrypoint", "find", image("version"), "/r", "-type", "f"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return any(path.endswith(f"/{md5[:2]}/{md5[2:]}") for path in listing)


def by_make_steps(checkout: Path, api_url: str, db_url: str, remote: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APOD_", "NASA_", "PG"))}
    env |= {
        "APOD_API_URL": api_url,
        "APOD_DATABASE_URL": db_url,
        "APOD_DVC_REMOTE": str(remote),
        "APOD_RUN_ID": "manual__parity_by_hand",
        "GIT_AUTHOR_NAME": "parity",
        "GIT_AUTHOR_EMAIL": "parity@localhost",
        "GIT_COMMITTER_NAME": "parity",
        "GIT_COMMITTER_EMAIL": "parity@localhost",
    }
    result = subprocess.run(
        ["make", "-C", str(checkout), "steps", f"START={FIRST}", f"END={LAST}"],
        env=env, capture_output=True, text=True, check=False, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, f"make steps: {result.stderr[-3000:]}"


def by_pods(tmp_path: Path, api_url: str, db_url: str, data: str, remote: str) -> None:
    from support.airflow_render import render_pods

    cluster_type, docker_run, _ = k8s_tools()
    pods = render_pods(
        logical_date=None,
        start_date=FIRST,
        end_date=LAST,
        run_id="manual__parity_pods",
        settings=Settings(api_url=api_url),
    )
    cluster = cluster_type(
        workdir=tmp_path / "pods",
        secrets={"apod-secrets": {"nasa-api-key": "DEMO_KEY", "database-url": db_url}},
        claims={"apod-data": data, "apod-dvc-remote": remote},
    )
    for task, pod in pods:
        (container,) = pod["spec"]["containers"]
        result = docker_run(pod, container["name"], cluster)
        assert result.returncode == 0, f"pod {task}: {result.stderr[-3000:]}"


def test_make_steps_compose_and_pods_leave_the_same_rows_csv_and_dvc_hash(compose_stack, tmp_path):
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    require_images(*STEP_IMAGES)
    _, _, checkout_of_this_tree = k8s_tools()
    stack_env = compose_stack.env
    seed = volume_file(stack_env["APOD_DATA_VOLUME"], CSV)

    summary = compose_stack.run_dag(FIRST, LAST)
    assert summary["exit_code"] == 0, summary["log"][-3000:]
    assert summary["state"] == "success", summary
    compose = {
        "csv": volume_file(stack_env["APOD_DATA_VOLUME"], CSV),
        "dvc": volume_file(stack_env["APOD_DATA_VOLUME"], DVC_FILE),
        "rows": json.loads(compose_stack.psql(ROWS_JSON)[0][0]),
    }
    assert compose["csv"] != seed, "the compose run did not change the CSV"

    checkout = checkout_of_this_tree(tmp_path / "checkout")
    (checkout / "data").mkdir(exist_ok=True)
    (checkout / "data" / CSV).write_bytes(seed)
    hand_remote = tmp_path / "dvc-remote"
    with (
        apod_test_server() as server,  # the sample, as the stack's offline server serves
        fresh_database("apod_parity_hand") as hand_db,
        fresh_database("apod_parity_pods") as pod_db,
        docker_volume("apod-parity-data") as pod_data,
        docker_volume("apod-parity-dvc") as pod_remote,
    ):
        by_make_steps(checkout, server.url, hand_db.url, hand_remote)
        seed_volume(pod_data, seed)
        by_pods(tmp_path, server.url, pod_db.url, pod_data, pod_remote)
        hand = {
            "csv": (checkout / "data" / CSV).read_bytes(),
            "dvc": (checkout / "data" / DVC_FILE).read_bytes(),
            "rows": hand_db.query(ROWS_JSON)[0][0],
        }
        pods = {
            "csv": volume_file(pod_data, CSV),
            "dvc": volume_file(pod_data, DVC_FILE),
            "rows": pod_db.query(ROWS_JSON)[0][0],
        }
        assert pods["rows"]
        assert len(pods["rows"]) == len(compose["rows"])
        assert hand["rows"] == compose["rows"] == pods["rows"]
        assert hand["csv"] == compose["csv"] == pods["csv"]
        md5 = dvc_md5(compose["dvc"])
        assert dvc_md5(hand["dvc"]) == md5 == dvc_md5(pods["dvc"])
        assert object_key("apod", md5) in compose_stack.object_store().object_keys()
        assert remote_has(str(hand_remote), md5)
        assert remote_has(pod_remote, md5)
