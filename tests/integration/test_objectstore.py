"""DVC against the real object store (images/objectstore): push, then a fresh clone pulls
the same bytes; and what a client sees when the store is down, the key is wrong or the
bucket has vanished.

DVC runs as a child process (`python -m dvc`, with dvc-s3) in a git + DVC repository
whose committed config names only `s3://<bucket>/<prefix>`: the endpoint and the key come
from the standard AWS_* variables, as the version step and a person restoring data get them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.objectstore import BUCKET, new_keys, object_key, object_store

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.timeout(600)]

ROWS = [
    "date,title,explanation,media_type",
    '2024-01-01,"NGC 1232: A Grand Design Spiral","Galaxies, stars — and dust ✨",image',
    '2024-01-02,"Comet ""Tsuchinshan–ATLAS""","A tail of 30° over the horizon",image',
]


def _dvc_s3_missing() -> str | None:
    if shutil.which("git") is None:
        return "git is not installed"
    probe = subprocess.run(
        [sys.executable, "-c", "import dvc, dvc_s3"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return f"dvc with dvc-s3 is not importable by {sys.executable} (make venv installs it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _need_dvc_s3():
    reason = _dvc_s3_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One store for the tests that leave it as they found it (each repository has its own
    prefix in the bucket)."""
    with object_store(tmp_path_factory.mktemp("keys")) as running:
        yield running


@pytest.fixture
def own_store(tmp_path: Path):
    """A store of the test's own, for the tests that crash it or delete its bucket."""
    with object_store(tmp_path / "keys") as running:
        yield running


@dataclass
class Run:
    returncode: int
    output: str


@dataclass
class DataRepo:
    path: Path
    env: dict[str, str]  # no key, no endpoint: every call says which it uses
    prefix: str

    def run(self, *argv: str, cwd: Path | None = None, aws: dict | None = None) -> Run:
        result = subprocess.run(
            argv,
            cwd=cwd or self.path,
            env={**self.env, **(aws or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        return Run(result.returncode, result.stdout + result.stderr)

    def dvc(self, *args: str, cwd: Path | None = None, aws: dict | None = None) -> Run:
        return self.run(sys.executable, "-m", "dvc", *args, cwd=cwd, aws=aws)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        result = self.run("git", *args, cwd=cwd)
        assert result.returncode == 0, result.output
        return result.output

    def write_csv(self, *rows: str) -> bytes:
        data = ("\n".join([*ROWS, *rows]) + "\n").encode()
        (self.path / "apod_data.csv").write_bytes(data)
        return data

    def commit_version(self, aws: dict) -> str:
        """dvc add + dvc push + commit the .dvc file: the version step's order."""
        assert self.dvc("add", "apod_data.csv").returncode == 0
        pushed = self.dvc("push", aws=aws)
        assert pushed.returncode == 0, pushed.output
        self.git("add", "apod_data.csv.dvc", ".gitignore")
        self.git("commit", "-q", "-m", "data: update apod_data.csv")
        return md5_of(self.path / "apod_data.csv.dvc")


def md5_of(dvc_file: Path) -> str:
    for line in dvc_file.read_text().splitlines():
        if line.strip().startswith("- md5:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no md5 in {dvc_file}")


@pytest.fixture
def repo(tmp_path: Path) -> DataRepo:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "DVC_", "AWS_", "APOD_")) and k != "PYTHONPATH"
    }
    env.update(
        HOME=str(home),
        DVC_NO_ANALYTICS="1",
        # Without a key botocore would ask the EC2 metadata address; nothing of ours is there.
        AWS_EC2_METADATA_DISABLED="true",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="APOD test",
        GIT_AUTHOR_EMAIL="apod-test@localhost",
        GIT_COMMITTER_NAME="APOD test",
        GIT_COMMITTER_EMAIL="apod-test@localhost",
    )
    data = DataRepo(tmp_path / "data", env, prefix=f"apod-{secrets.token_hex(4)}")
    data.path.mkdir()
    data.git("init", "-q", "-b", "main")
    assert data.dvc("init", "-q").returncode == 0
    assert data.dvc("config", "core.analytics", "false").returncode == 0
    added = data.dvc("remote", "add", "-d", "store", f"s3://{BUCKET}/{data.prefix}")
    assert added.returncode == 0, added.output
    data.git("add", ".dvc", ".dvcignore")
    data.git("commit", "-q", "-m", "DVC repository, remote on the object store")
    return data


def fresh_clone(repo: DataRepo, tmp_path: Path) -> Path:
    clone = tmp_path / f"clone-{secrets.token_hex(3)}"
    repo.git("clone", "-q", str(repo.path), str(clone), cwd=tmp_path)
    return clone


def test_push_then_a_fresh_clone_pulls_the_same_bytes(store, repo: DataRepo, tmp_path: Path):
    data = repo.write_csv()
    md5 = repo.commit_version(store.aws_env())
    assert md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()

    # Content-addressed, through the S3 API: <prefix>/files/md5/<2>/<30>.
    key = object_key(repo.prefix, md5)
    assert key in store.object_keys()
    stored = store.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert stored == data

    # Nothing that reaches the store is in git: not the key, not the endpoint.
    history = repo.git("log", "-p", "--all")
    committed = (repo.path / ".dvc" / "config").read_text()
    for value in (store.access_key, store.secret_key, store.endpoint):
        assert value not in history
        assert value not in committed

    clone = fresh_clone(repo, tmp_path)
    pulled = repo.dvc("pull", cwd=clone, aws=store.aws_env())
    assert pulled.returncode == 0, pulled.output
    assert (clone / "apod_data.csv").read_bytes() == data
    assert md5_of(clone / "apod_data.csv.dvc") == md5


def test_every_version_stays_restorable(store, repo: DataRepo, tmp_path: Path):
    first = repo.write_csv()
    repo.commit_version(store.aws_env())
    first_commit = repo.git("rev-parse", "HEAD").strip()
    second = repo.write_csv('2024-01-03,"Moon",Craters,image')
    repo.commit_version(store.aws_env())

    clone = fresh_clone(repo, tmp_path)
    assert repo.dvc("pull", cwd=clone, aws=store.aws_env()).returncode == 0
    assert (clone / "apod_data.csv").read_bytes() == second
    # An older version: its commit, then the same one command.
    repo.git("checkout", "-q", first_commit, cwd=clone)
    pulled = repo.dvc("pull", cwd=clone, aws=store.aws_env())
    assert pulled.returncode == 0, pulled.output
    assert (clone / "apod_data.csv").read_bytes() == first


@pytest.mark.parametrize("wrong", ["secret", "key-id"])
def test_a_wrong_key_fails_the_push_without_printing_any_secret(store, repo: DataRepo, wrong):
    repo.write_csv()
    assert repo.dvc("add", "apod_data.csv").returncode == 0
    other_id, other_secret = new_keys()
    if wrong == "secret":
        aws = store.aws_env(AWS_SECRET_ACCESS_KEY=other_secret)
    else:
        aws = store.aws_env(AWS_ACCESS_KEY_ID=other_id, AWS_SECRET_ACCESS_KEY=other_secret)
    pushed = repo.dvc("push", aws=aws)
    assert pushed.returncode != 0
    assert "403" in pushed.output or "Forbidden" in pushed.output, pushed.output
    for secret in (other_secret, store.secret_key):
        assert secret not in pushed.output
    assert not [key for key in store.object_keys() if key.startswith(f"{repo.prefix}/")]


def test_no_key_at_all_is_named_as_such(store, repo: DataRepo):
    repo.write_csv()
    assert repo.dvc("add", "apod_data.csv").returncode == 0
    aws = {"AWS_ENDPOINT_URL_S3": store.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    pushed = repo.dvc("push", aws=aws)
    assert pushed.returncode != 0
    assert "Unable to locate credentials" in pushed.output, pushed.output


def test_the_store_down_fails_the_push_and_the_next_push_delivers(own_store, repo: DataRepo):
    pushed_before = repo.write_csv()
    first_md5 = repo.commit_version(own_store.aws_env())
    data = repo.write_csv('2024-01-03,"Moon",Craters,image')
    assert repo.dvc("add", "apod_data.csv").returncode == 0
    md5 = md5_of(repo.path / "apod_data.csv.dvc")
    down_endpoint = own_store.endpoint
    own_store.crash()

    pushed = repo.dvc("push", aws=own_store.aws_env(AWS_ENDPOINT_URL_S3=down_endpoint))
    assert pushed.returncode != 0
    assert "Could not connect to the endpoint URL" in pushed.output, pushed.output
    assert own_store.secret_key not in pushed.output

    own_store.start()
    # What the store acknowledged before it was killed is still there.
    assert own_store.read_when_served(object_key(repo.prefix, first_md5)) == pushed_before
    pushed = repo.dvc("push", aws=own_store.aws_env())
    assert pushed.returncode == 0, pushed.output
    stored = own_store.client().get_object(Bucket=BUCKET, Key=object_key(repo.prefix, md5))
    assert stored["Body"].read() == data


def test_a_vanished_bucket_is_a_clear_error_until_the_store_makes_it_again(
    own_store, repo: DataRepo, tmp_path: Path
):
    repo.write_csv()
    repo.commit_version(own_store.aws_env())
    own_store.delete_bucket()

    repo.write_csv('2024-01-03,"Moon",Craters,image')
    assert repo.dvc("add", "apod_data.csv").returncode == 0
    pushed = repo.dvc("push", aws=own_store.aws_env())
    assert pushed.returncode != 0
    assert "NoSuchBucket" in pushed.output or "bucket does not exist" in pushed.output, (
        pushed.output
    )

    clone = fresh_clone(repo, tmp_path)
    pulled = repo.dvc("pull", cwd=clone, aws=own_store.aws_env())
    assert pulled.returncode != 0
    assert not (clone / "apod_data.csv").exists()

    # A restart makes the (empty) bucket again; the next push delivers the new version.
    own_store.crash()
    own_store.start()
    pushed = repo.dvc("push", aws=own_store.aws_env())
    assert pushed.returncode == 0, pushed.output
