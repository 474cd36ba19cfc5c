"""The version image against the real object store (images/objectstore): it pushes each
data version to S3 and commits only `s3://bucket/prefix`; `apod-version restore` in a
fresh clone of the data repository brings any version back, byte for byte.

The image runs as the pipeline runs it (apod_pipeline.by_hand: every variable by name,
secrets never on a command line), on host networking so that the store's published
port means the same inside as outside.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.objectstore import BUCKET, ObjectStore, object_key, object_store
from support.services import docker, docker_volume, image, require_images, volume_cat, volume_git

from apod_pipeline.by_hand import Placement, container
from apod_pipeline.steps import DATA
from apod_tools.runner import StepRun, execute

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

HEADER = "date,title,explanation,media_type\n"
FIRST = HEADER + '2024-01-01,"NGC 1232","Galaxies, stars — and dust ✨",image\n'
SECOND = FIRST + '2024-01-02,"Comet ""Tsuchinshan–ATLAS""","A tail of 30°",image\n'
SECRETS_DIR = "/run/secrets/aws"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    require_images("version", "objectstore")
    with object_store(tmp_path_factory.mktemp("keys")) as running:
        yield running


@dataclass
class DataVolume:
    """A volume at /data holding the CSV: the data repository once version has run."""

    name: str

    def write_csv(self, text: str) -> bytes:
        data = text.encode()
        docker_stdin(self.name, "cat > /data/apod_data.csv", data)
        return data

    def version(self, env: dict[str, str], *args: str, options: tuple = ()) -> StepRun:
        run_id = f"manual__{secrets.token_hex(3)}"
        return run_image(self.name, ("--run-id", run_id, *args), env, options)

    def git(self, *args: str) -> str:
        return volume_git(self.name, *args)

    def cat(self, rel: str) -> str:
        return volume_cat(self.name, f"/data/{rel}")


def docker_stdin(volume: str, script: str, data: bytes) -> None:
    """A shell script in the version image, as its own user, with `data` on stdin."""
    subprocess.run(
        ["docker", "run", "--rm", "-i", "-v", f"{volume}:/data", "--entrypoint", "sh",
         image("version"), "-c", script],
        input=data, capture_output=True, check=True, timeout=120,
    )  # fmt: skip


def run_image(volume: str, args: tuple[str, ...], env: dict[str, str], options=()) -> StepRun:
    """apod-version (or `restore`) with `volume` at /data, the environment passed by name."""
    command = container(
        image("version"), args, Placement(volumes={DATA.name: volume}), volumes=(DATA,),
        environment=env,
    )  # fmt: skip
    return execute(command, "version", options=options)


@pytest.fixture
def data() -> Iterator[DataVolume]:
    with docker_volume("apod-test-s3-data") as name:
        yield DataVolume(name)


@pytest.fixture
def clone_of(request):
    """clone_of(data) -> a fresh `git clone` of the data repository on a volume of its
    own, at /data/clone (the image's own /data gives the volume its owner)."""
    made: list[str] = []

    def make(source: DataVolume) -> DataVolume:
        name = f"apod-test-s3-clone-{secrets.token_hex(4)}"
        made.append(name)
        docker(
            "run", "--rm", "-v", f"{source.name}:/src:ro", "-v", f"{name}:/data",
            "--entrypoint", "git", image("version"), "-c", "safe.directory=*",
            "clone", "-q", "/src", "/data/clone",
        )  # fmt: skip
        return DataVolume(name)

    yield make
    for name in made:
        docker("volume", "rm", "-f", name, check=False)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def committed_md5(volume: DataVolume, rel: str = "apod_data.csv.dvc") -> str:
    for line in volume.cat(rel).splitlines():
        if line.strip().startswith("- md5:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no md5 in {rel}")


def restore(clone: DataVolume, env: dict[str, str], *args: str) -> StepRun:
    return run_image(clone.name, ("restore", "--repo", "/data/clone", *args), env)


def test_version_pushes_to_the_store_and_commits_no_endpoint_and_no_key(store, data):
    prefix = f"apod-{secrets.token_hex(4)}"
    csv = data.write_csv(FIRST)
    run = data.version(store.remote_env(prefix), "--init-repo").expect(0)

    assert run.summary["dvc_pushed"] is True
    assert run.summary["md5"] == md5(csv) == committed_md5(data)
    # The CSV's content-addressed object, through the S3 API, holds the CSV's bytes.
    key = object_key(prefix, md5(csv))
    assert key in store.object_keys()
    assert store.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == csv
    # Committed: the bucket URL only; the endpoint and the key live in the environment.
    config = data.git("show", "HEAD:.dvc/config")
    assert f"url = s3://{BUCKET}/{prefix}" in config
    # (The endpoint depends on where one stands: http://objectstore:8333 inside compose.)
    history = data.git("log", "-p", "--all")
    for value in (store.access_key, store.secret_key, store.endpoint):
        assert value not in history
    for value in (store.access_key, store.secret_key):
        assert value not in run.output


def test_credentials_from_files_at_debug_level_print_no_secret(store, data, tmp_path: Path):
    """*_FILE secrets as Docker and Kubernetes mount them; every git/dvc call logged."""
    keys = tmp_path / "aws"
    keys.mkdir()
    for name, value in (("key_id", store.access_key), ("secret", store.secret_key)):
        (keys / name).write_text(value + "\n", encoding="ascii")
        (keys / name).chmod(0o644)
    keys.chmod(0o755)
    env = {
        "APOD_DVC_REMOTE": f"s3://{BUCKET}/apod-{secrets.token_hex(4)}",
        "AWS_ENDPOINT_URL_S3": store.endpoint,
        "AWS_ACCESS_KEY_ID_FILE": f"{SECRETS_DIR}/key_id",
        "AWS_SECRET_ACCESS_KEY_FILE": f"{SECRETS_DIR}/secret",
        "APOD_LOG_LEVEL": "DEBUG",
    }
    data.write_csv(FIRST)
    run = data.version(env, "--init-repo", options=("-v", f"{keys}:{SECRETS_DIR}:ro")).expect(0)
    assert "running dvc push" in run.stderr  # the debug log did show dvc's calls
    assert store.secret_key not in run.output


def test_a_fresh_clone_restores_every_version_byte_for_byte(store, data, clone_of):
    prefix = f"apod-{secrets.token_hex(4)}"
    env = store.remote_env(prefix)
    first = data.write_csv(FIRST)
    data.version(env, "--init-repo").expect(0)
    first_commit = data.git("rev-parse", "HEAD").strip()
    second = data.write_csv(SECOND)
    data.version(env).expect(0)

    clone = clone_of(data)
    # What a teammate with the credentials has: the clone, the endpoint and the key.
    restored = restore(clone, store.aws_env()).expect(0)
    assert restored.summary["restored"] == [
        {"path": "apod_data.csv", "md5": md5(second), "size": len(second)}
    ]
    assert clone.cat("clone/apod_data.csv").encode() == second
    assert committed_md5(clone, "clone/apod_data.csv.dvc") == md5(second)

    older = restore(clone, store.aws_env(), "--rev", first_commit).expect(0)
    assert older.summary["commit"] == first_commit
    assert clone.cat("clone/apod_data.csv").encode() == first
    assert store.secret_key not in restored.output + older.output


def test_restore_names_what_is_missing(store, data, clone_of):
    prefix = f"apod-{secrets.token_hex(4)}"
    data.write_csv(FIRST)
    data.version(store.remote_env(prefix), "--init-repo").expect(0)
    clone = clone_of(data)

    no_key = {"AWS_ENDPOINT_URL_S3": store.endpoint}
    refused = restore(clone, no_key).expect(4)
    assert "no S3 credentials" in refused.summary["reason"]
    unknown = restore(clone, store.aws_env(), "--rev", "no-such-version").expect(3)
    assert "no commit 'no-such-version'" in unknown.summary["reason"]
    # The first commit is the empty repository: no data version to restore there.
    initial = data.git("rev-list", "--max-parents=0", "HEAD").strip()
    empty = restore(clone, store.aws_env(), "--rev", initial).expect(3)
    assert "no .dvc file is committed there" in empty.summary["reason"]
    not_a_clone = run_image(clone.name, ("restore", "--repo", "/data"), store.aws_env()).expect(3)
    assert "is not a git repository" in not_a_clone.summary["reason"]
    # Nothing came back while it failed.
    assert "apod_data.csv" not in docker_ls(clone.name)


def test_restore_fails_when_the_store_lacks_the_data(store, data, clone_of):
    """The objects deleted behind git's back: restore says so, never "restored"."""
    prefix = f"apod-{secrets.token_hex(4)}"
    csv = data.write_csv(FIRST)
    data.version(store.remote_env(prefix), "--init-repo").expect(0)
    store.client().delete_object(Bucket=BUCKET, Key=object_key(prefix, md5(csv)))

    lacking = restore(clone_of(data), store.aws_env()).expect(5)
    assert lacking.summary["status"] == "failed"
    assert "dvc pull" in lacking.summary["reason"] or "lacks" in lacking.summary["reason"]


def docker_ls(volume: str) -> list[str]:
    listing = docker(
        "run", "--rm", "-v", f"{volume}:/data:ro", "--entrypoint", "ls", image("version"),
        "/data/clone",
    )  # fmt: skip
    return listing.stdout.split()


def test_summary_is_json_and_the_endpoint_unreachable_is_exit_5(data):
    """No store at all at the endpoint: exit 5 before anything is added or committed."""
    data.write_csv(FIRST)
    env = {
        "APOD_DVC_REMOTE": f"s3://{BUCKET}/apod",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",  # discard port: nothing listens
        "AWS_ACCESS_KEY_ID": "apod0000000000000000",
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24),
    }
    run = data.version(env, "--init-repo").expect(5)
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert "no S3 endpoint answers at http://127.0.0.1:9" in summary["reason"]
    assert env["AWS_SECRET_ACCESS_KEY"] not in run.output
    # Initialised, but no data commit: the .dvc file is in no commit.
    assert "apod_data.csv.dvc" not in data.git("log", "--all", "--name-only", "--format=")
