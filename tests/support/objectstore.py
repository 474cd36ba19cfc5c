"""The object store image (images/objectstore) run for a test: keys made like the stack's
other secrets, handed over as *_FILE secrets, the S3 port on a free port of 127.0.0.1, the
container and its data volume removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.services import docker, image, require_images

BUCKET = "apod-dvc"
PREFIX = "apod-test-s3"
SECRETS_MOUNT = "/run/secrets/objectstore"


def object_key(prefix: str, md5: str) -> str:
    """Where DVC 3 keeps a file in a cloud remote: content-addressed by its md5."""
    return f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"


def new_keys() -> tuple[str, str]:
    """An access key id and a secret key as the deployments generate them."""
    return f"apod{secrets.token_hex(8)}", secrets.token_urlsafe(24)


def write_key_files(directory: Path, access_key: str, secret_key: str) -> Path:
    """The two *_FILE secrets; readable by the container's uid (10001), not by the world
    outside the test's own temporary directory."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name, value in (("access_key", access_key), ("secret_key", secret_key)):
        path = directory / name
        path.write_text(value + "\n", encoding="ascii")
        path.chmod(0o644)
    return directory


@dataclass
class ObjectStore:
    container: str
    volume: str
    endpoint: str  # http://127.0.0.1:<port>, as the host sees it
    access_key: str
    secret_key: str
    bucket: str = BUCKET

    def aws_env(self, **overrides: str) -> dict[str, str]:
        """What a DVC client needs: the standard AWS_* names, the endpoint included."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            **overrides,
        }

    def remote_env(self, prefix: str, **overrides: str) -> dict[str, str]:
        """What the version step needs to push under `prefix` of the bucket."""
        return self.aws_env(APOD_DVC_REMOTE=f"s3://{self.bucket}/{prefix}", **overrides)

    def read_when_served(self, key: str, within: float = 60) -> bytes:
        """The object's bytes once a restarted store serves it: the S3 API answers as soon as
        it is up, but the volume server that holds the object re-registers with the master a
        few seconds later (longer on a busy machine), and until then the object reads as
        missing."""
        deadline = time.monotonic() + within
        while True:
            try:
                return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        """A signed S3 client (botocore, which dvc-s3 brings), one attempt per call."""
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )

    def object_keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in listing.get("Contents", [])]

    def logs(self) -> str:
        result = docker("logs", self.container, check=False)
        return result.stdout + result.stderr

    def admin_shell(self, command: str) -> str:
        """`weed shell` inside the container, on its loopback (the admin side of the store)."""
        result = docker(
            "exec",
            self.container,
            "bash",
            "-c",
            'weed shell -master=127.0.0.1:9333 -filer=127.0.0.1:8888 <<<"$1" 2>&1',
            "weed-shell",
            command,
            check=False,
        )
        return result.stdout + result.stderr

    def delete_bucket(self) -> None:
        """The bucket gone, objects and all, as an operator's mistake would leave it."""
        self.admin_shell(f"s3.bucket.delete -name {self.bucket}")
        listed = self.admin_shell("s3.bucket.list")
        assert self.bucket not in listed, listed

    def health(self) -> str:
        return docker(
            "inspect", "-f", "{{.State.Health.Status}}", self.container, check=False
        ).stdout.strip()

    def stop(self) -> None:
        """A clean stop (its time: docs/BENCHMARKS.md, images, "apod-objectstore graceful stop")."""
        docker("stop", "-t", "60", self.container)

    def crash(self) -> None:
        """SIGKILL: the store gone at once, as when its node dies."""
        docker("kill", self.container)

    def start(self) -> None:
        """Start the stopped container again; the host port is a new one."""
        docker("start", self.container)
        self.endpoint = host_endpoint(self.container)
        self.wait_ready()

    def running(self) -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", self.container, check=False)
        return state.stdout.strip() == "true"

    def wait_ready(self, timeout: float = 90) -> None:
        """Until the image's own healthcheck passes (sooner than Docker's next interval)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            probe = docker("exec", self.container, "objectstore-healthcheck", check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"object store {self.container} not ready:\n{self.logs()[-3000:]}")

    def wait_healthy(self, timeout: float = 90) -> None:
        """Until Docker itself reports the container healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            if self.health() == "healthy":
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.container} is {self.health()}:\n{self.logs()[-3000:]}")


def run_container(
    name: str, volume: str, key_dir: Path, *extra: str, env: dict[str, str] | None = None
):
    """docker run -d the object store with the keys as *_FILE secrets; returns the result."""
    flags = [
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "127.0.0.1::8333",
        "-v",
        f"{volume}:/data",
        "-v",
        f"{key_dir}:{SECRETS_MOUNT}:ro",
        "-e",
        f"OBJECTSTORE_ACCESS_KEY_FILE={SECRETS_MOUNT}/access_key",
        "-e",
        f"OBJECTSTORE_SECRET_KEY_FILE={SECRETS_MOUNT}/secret_key",
        *extra,
        image("objectstore"),
    ]
    return docker(*flags, env={**os.environ, **(env or {})}, check=False)


def host_endpoint(container: str) -> str:
    mapping = docker("port", container, "8333/tcp").stdout.split()[0]
    return f"http://{mapping}"


@contextlib.contextmanager
def object_store(
    key_dir: Path, volume: str | None = None, *extra: str, keys: tuple[str, str] | None = None
) -> Iterator[ObjectStore]:
    """A running, healthy object store with fresh keys (or `keys`: access key id, secret
    key); removed (with its volume unless one was given: a volume name or a host
    directory) when the block ends. `extra` are more `docker run` options."""
    require_images("objectstore")
    access_key, secret_key = keys or new_keys()
    write_key_files(key_dir, access_key, secret_key)
    suffix = secrets.token_hex(4)
    name = f"{PREFIX}-objectstore-{suffix}"
    own_volume = volume is None
    volume = volume or f"{PREFIX}-objectstore-data-{suffix}"
    try:
        result = run_container(name, volume, key_dir, *extra)
        if result.returncode != 0:
            pytest.fail(f"docker run {image('objectstore')} failed: {result.stderr}")
        store = ObjectStore(name, volume, host_endpoint(name), access_key, secret_key)
        store.wait_ready()
        yield store
    finally:
        docker("rm", "-f", name, check=False)
        if own_volume:
            docker("volume", "rm", "-f", volume, check=False)
