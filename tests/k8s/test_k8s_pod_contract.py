"""The pods the DAG apod_etl_k8s launches, run with Docker exactly as rendered (image,
args, env with the Secret's values, PVCs as volumes at the same paths, uid/gid,
read-only root, no capabilities, no privilege escalation), in DAG order, leave the
same result as the four images run by hand: same rows in Postgres, same CSV bytes, same
DVC hash in the .dvc file, same objects in the DVC remote.

The pods name their images as a cluster with a registry does (APOD_IMAGE_REGISTRY, each
step image under its own content tag in APOD_IMAGE_TAGS, a pull secret): the step images
are pushed to the project's registry (images/registry, one for the test session) under a
repository of this test's own, the local tags that push made are removed, and the pods
pull them back (imagePullPolicy IfNotPresent: `docker run --pull missing`).

The pods get the cluster's settings (the ConfigMap's): the DVC remote is the object
store, so the version pod pushes to a real one (images/objectstore, one for the module)
with the key of apod-secrets delivered as the rendered pod says (secretKeyRef -> env),
and the CSV's content-addressed object is read back from the bucket through S3.

The data PVC is backed two ways: by a named Docker volume, and by what a real cluster's
PersistentVolume is on kind (local-path) and minikube (hostpath): a host directory owned
by root, mode 0777, that the kubelet does not re-own (fsGroup does not apply to those).
On the latter the pods commit once the first time, with no failed attempt, and a second
run commits nothing.

Real Docker, Postgres, git, DVC and S3; the NASA API is the repository's test server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_podrun import Cluster, docker_run
from k8s_render import REPO, deployment_settings
from support.airflow_render import render_pods
from support.objectstore import ObjectStore, object_key, object_store
from support.registry import Registry
from support.services import (
    STEP_IMAGES,
    VERSION,
    apod_test_server,
    docker,
    docker_volume,
    fresh_database,
    image,
    require_images,
    volume_git,
)

from apod_pipeline.by_hand import Placement
from apod_pipeline.exit_codes import NOTHING_TO_DO
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.runner import Runner

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(1500)]

sys.path.insert(0, str(REPO / "scripts"))
import k8s_images  # noqa: E402 - scripts/ is no package

FIRST, LAST = "2024-01-01", "2024-01-31"
CONTENT = (
    "date, title, explanation, media_type, url, hdurl, thumbnail_url, copyright, service_version"
)
QUERY = f"SELECT {CONTENT} FROM apod.apod_entries ORDER BY date"


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
        "run", "--rm", "-v", f"{volume}:/v:ro", "-w", "/v", "--entrypoint", "find",
        image("version"), ".", "-type", "f",
    )  # fmt: skip
    return sorted(result.stdout.split())


def bucket_files(store: ObjectStore, prefix: str) -> list[str]:
    """The objects under the remote's prefix, named as `remote_files` names a local
    remote's files (DVC lays out both alike)."""
    keys = [key for key in store.object_keys() if key.startswith(f"{prefix}/")]
    return sorted(f"./{key.removeprefix(prefix + '/')}" for key in keys)


@contextlib.contextmanager
def named_volume() -> Iterator[str]:
    with docker_volume("apod-k8s-data") as data:
        yield data


@contextlib.contextmanager
def provisioned_directory() -> Iterator[str]:
    """A host directory as local-path/hostpath provision it: root:root, 0777. Made and
    removed by root in a throwaway container (what the pods leave is uid 10001's)."""
    parent = Path(tempfile.mkdtemp(prefix="apod-k8s-pv-"))

    def as_root(script: str) -> None:
        docker(
            "run", "--rm", "--user", "0:0", "--network", "none", "-v", f"{parent}:/pv",
            "--entrypoint", "sh", image("version"), "-c", script,
        )  # fmt: skip

    try:
        as_root("mkdir /pv/data && chmod 0777 /pv/data")
        info = (parent / "data").stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o777)
        yield str(parent / "data")
    finally:
        as_root("rm -rf /pv/data")
        shutil.rmtree(parent, ignore_errors=True)


BACKINGS = {"named volume": named_volume, "root-owned 0777 directory": provisioned_directory}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[ObjectStore]:
    """One object store for the module; each case pushes under a prefix of its own."""
    with object_store(tmp_path_factory.mktemp("objectstore-keys")) as running:
        yield running


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> Iterator[dict[str, str]]:
    """The step images in the registry under a repository of this module's own (what
    `make k8s-push` does, scripts/k8s_images.py), their local registry tags removed again
    by the push; the tags the pods' pulls make are removed after. Step image -> reference."""
    require_images(*STEP_IMAGES)
    prefix = f"{registry.host}/hk8s-pods-{secrets.token_hex(3)}"
    try:
        references = k8s_images.publish(
            VERSION, prefix, push=True, may_build=False, names=k8s_images.step_images()
        )
        for reference in references.values():
            assert registry.has(reference), reference
            assert docker("image", "inspect", reference, check=False).returncode != 0
        yield references
    finally:
        for tag in registry.local_tags():
            if tag.startswith(prefix + "/"):
                docker("image", "rm", tag, check=False)


@pytest.fixture(scope="module")
def by_hand() -> dict:
    """The steps as `make steps` runs them (docker run, secrets by variable name), once."""
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    require_images(*STEP_IMAGES)
    with (
        apod_test_server() as server,
        fresh_database("apod_k8s_hand") as db,
        docker_volume("apod-k8s-data") as data,
        docker_volume("apod-k8s-dvc") as remote,
    ):
        runner = Runner(
            Settings(api_url=server.url),
            Placement(volumes={DATA.name: data, DVC_REMOTE.name: remote}),
            {"APOD_DATABASE_URL": db.url},
        )
        values = {START: FIRST, END: LAST, RUN_ID: "manual__by_hand"}
        for task_id, run in runner.pipeline(values).items():
            assert run.returncode == 0, f"by hand {task_id}: {run.stderr[-2000:]}"
        return {
            "csv": read(data, "apod_data.csv"),
            "dvc_file": read(data, "apod_data.csv.dvc"),
            "remote": remote_files(remote),
            "rows": db.query(QUERY),
        }


def run_pods(
    settings: Settings, cluster: Cluster, run_id: str
) -> dict[str, subprocess.CompletedProcess]:
    """The DAG's pods of one manual run, in order, until one fails or has nothing to do."""
    pods = render_pods(
        logical_date=None, start_date=FIRST, end_date=LAST, run_id=run_id, settings=settings
    )
    results = {}
    for task, pod in pods:
        (container,) = pod["spec"]["containers"]
        results[task] = docker_run(pod, container["name"], cluster)
        if results[task].returncode != 0:
            break
    return results


@pytest.mark.parametrize("backing", list(BACKINGS))
def test_dag_pods_run_in_docker_leave_what_the_by_hand_run_leaves(
    backing, by_hand, store, pushed, tmp_path
):
    prefix = f"apod-k8s-{list(BACKINGS).index(backing)}"
    with (
        apod_test_server() as server,
        fresh_database("apod_k8s_pods") as pod_db,
        BACKINGS[backing]() as data,
    ):
        # The cluster's settings, with what its Services are here: the test server for
        # APOD_API_URL, the store's host port for http://objectstore:8333.
        remote = deployment_settings().dvc_remote
        assert remote.startswith(f"s3://{store.bucket}/")
        (registry,) = {ref.rpartition("/apod-")[0] for ref in pushed.values()}
        settings = deployment_settings(
            api_url=server.url,
            s3_endpoint=store.endpoint,
            dvc_remote=f"s3://{store.bucket}/{prefix}",
            image_registry=registry,
            image_tags=tuple((name, ref.rpartition(":")[2]) for name, ref in pushed.items()),
            image_pull_secret="regcred",
        )
        cluster = Cluster(
            workdir=tmp_path,
            secrets={
                "apod-secrets": {
                    "nasa-api-key": "DEMO_KEY",
                    "database-url": pod_db.url,
                    "s3-access-key-id": store.access_key,
                    "s3-secret-access-key": store.secret_key,
                }
            },
            claims={"apod-data": data},
        )
        first = run_pods(settings, cluster, "manual__k8s_contract")
        # Every pod succeeded the first time: no failed attempt for a retry to get past.
        for task, result in first.items():
            assert result.returncode == 0, f"pod {task}: {result.stderr[-3000:]}"
            assert result.stdout.strip().splitlines()[-1].startswith("{"), task
            output = result.stdout + result.stderr
            assert pod_db.password not in output
            assert store.secret_key not in output
        assert len(first) == 5
        # Each pod ran its step image as pulled from the registry.
        for reference in pushed.values():
            digests = docker("image", "inspect", "--format", "{{json .RepoDigests}}", reference)
            assert reference.rpartition(":")[0] + "@sha256:" in digests.stdout

        csv = read(data, "apod_data.csv")
        assert csv == by_hand["csv"]
        assert len(csv.decode().splitlines()) == 1 + 31
        dvc_file = read(data, "apod_data.csv.dvc")
        assert b"md5: " in dvc_file
        assert dvc_file == by_hand["dvc_file"]
        # The store holds what the by-hand run's local remote holds, and the CSV's
        # content-addressed object is the CSV.
        summary = json.loads(first["version"].stdout.strip().splitlines()[-1])
        md5 = hashlib.md5(csv, usedforsecurity=False).hexdigest()
        assert summary["md5"] == md5
        assert summary["dvc_pushed"] is True
        assert bucket_files(store, prefix) == by_hand["remote"] != []
        assert store.read_when_served(object_key(prefix, md5)) == csv
        rows = pod_db.query(QUERY)
        assert len(rows) == 31
        assert rows == by_hand["rows"]
        # Everything the pods wrote is on the data volume (the root filesystem was read-only).
        assert any(path.startswith("/v/raw/") for path in files(data))
        assert any(path.startswith("/v/staging/") for path in files(data))
        # One data commit on top of the repository's first; nothing half-made left.
        commits = volume_git(data, "log", "--format=%s").splitlines()
        assert len(commits) == 2, commits
        assert volume_git(data, "status", "--porcelain") == ""

        # A second run of the same range changes nothing and commits nothing: its extract
        # gets the same answers as the versioned batch's and stops there.
        second = run_pods(settings, cluster, "manual__k8s_contract_again")
        assert list(second) == ["extract"]
        assert second["extract"].returncode == NOTHING_TO_DO, second["extract"].stderr[-3000:]
        assert read(data, "apod_data.csv") == csv
        assert volume_git(data, "log", "--format=%s").splitlines() == commits
        assert bucket_files(store, prefix) == by_hand["remote"]
