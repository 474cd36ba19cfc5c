"""Object-store faults for the version step (issue 15): the store down during the push,
wrong credentials, the bucket gone. Each ends with nothing committed and a reason that
says which, without the secret; the first two also with the next run delivering.

The pipeline's own steps run by hand in a world of their own (faults.world); version
pushes to a real object store (images/objectstore) through a TCP forwarder the test can
take away at the moment the first object upload starts.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest
from support.objectstore import ObjectStore, new_keys, object_key, object_store
from support.services import require_images

from apod_common import exit_codes
from faults.tcpproxy import TcpProxy
from faults.world import World

pytestmark = [
    pytest.mark.faults,
    pytest.mark.docker,
    pytest.mark.integration,
    pytest.mark.timeout(600),
]

DAY = "2024-01-05"


@pytest.fixture
def store(tmp_path) -> Iterator[ObjectStore]:
    require_images("objectstore")
    with object_store(tmp_path / "keys") as running:
        yield running


def run_id(label: str) -> str:
    return f"manual__s3_{label}_{secrets.token_hex(3)}"


def csv_ready(w: World) -> str:
    """extract, transform, load_csv: the CSV version pushes."""
    rid = run_id("csv")
    w.extract(rid, DAY).expect(0)
    w.transform(rid).expect(0)
    w.load_csv(rid).expect(0)
    return rid


def data_commits(w: World) -> list[str]:
    """Commits that touched the .dvc file (none before the first good version run)."""
    return w.sh("git log --format=%H -- apod_data.csv.dvc 2>/dev/null || true").split()


def version(w: World, env: dict[str, str], label: str = "s3"):
    # remote=None: no DVC remote volume; the store is the remote.
    return w.version(run_id(label), env=env, remote=None)


class UploadTrap(TcpProxy):
    """Forwards to the store until a client starts uploading an object (an HTTP PUT):
    then the port closes and every connection drops, as when the store's node dies.
    Once only: started again, it forwards everything."""

    tripped = False

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        super()._pump(_Watched(source, self), sink)

    def trip(self) -> bool:
        if self.tripped:
            return False
        self.tripped = True
        self.stop()
        return True


class _Watched:
    """A socket whose received bytes are looked at before they are forwarded."""

    def __init__(self, sock: socket.socket, trap: UploadTrap):
        self._sock, self._trap = sock, trap

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        if (data.startswith(b"PUT ") or b"\r\nPUT " in data) and self._trap.trip():
            return b""
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def test_store_down_during_the_push_commits_nothing_and_the_next_run_pushes(
    w: World, store: ObjectStore
):
    csv_ready(w)
    port = int(store.endpoint.rsplit(":", 1)[1])
    trap = UploadTrap("127.0.0.1", port).start()
    prefix = f"apod-{secrets.token_hex(4)}"
    env = store.remote_env(prefix, AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{trap.port}")
    try:
        failed = version(w, env, "down").expect(exit_codes.UPSTREAM_UNAVAILABLE)
        assert trap.tripped, "the push never started an upload"
        assert failed.summary["reason"].startswith("dvc push to remote 'store'"), failed.summary
        assert "nothing committed" in failed.summary["reason"]
        assert store.secret_key not in failed.output
        assert data_commits(w) == []
        assert not [k for k in store.object_keys() if k.startswith(f"{prefix}/")]

        trap.start()  # the store is back, on the same address
        done = version(w, env, "again").expect(0)
    finally:
        trap.stop()
    md5 = done.summary["md5"]
    assert object_key(prefix, md5) in store.object_keys()
    assert len(data_commits(w)) == 1


def test_store_stopped_before_the_run_is_exit_5_at_once(w: World, store: ObjectStore):
    csv_ready(w)
    env = store.remote_env(f"apod-{secrets.token_hex(4)}")
    store.crash()
    failed = version(w, env, "stopped").expect(exit_codes.UPSTREAM_UNAVAILABLE)
    # "At once": the pre-flight listing said so, before any push could retry its way.
    assert "is not usable: no S3 endpoint answers at" in failed.summary["reason"]
    assert store.endpoint in failed.summary["reason"]
    assert "dvc push" not in failed.output
    assert data_commits(w) == []


@pytest.mark.parametrize("wrong", ["secret", "key-id"])
def test_wrong_credentials_are_a_clear_error_without_the_secret(
    w: World, store: ObjectStore, wrong: str
):
    csv_ready(w)
    other_id, other_secret = new_keys()
    overrides = {"AWS_SECRET_ACCESS_KEY": other_secret, "APOD_LOG_LEVEL": "DEBUG"}
    if wrong == "key-id":
        overrides["AWS_ACCESS_KEY_ID"] = other_id
    env = store.remote_env(f"apod-{secrets.token_hex(4)}", **overrides)
    failed = version(w, env, "wrong").expect(exit_codes.UPSTREAM_REFUSED)
    reason = failed.summary["reason"]
    expected = "secret key is wrong" if wrong == "secret" else "does not know this S3 access key"
    assert expected in reason, reason
    for secret in (other_secret, store.secret_key):
        assert secret not in failed.output
    assert data_commits(w) == []


def test_a_vanished_bucket_is_a_clear_error_until_the_store_makes_it_again(
    w: World, store: ObjectStore
):
    csv_ready(w)
    prefix = f"apod-{secrets.token_hex(4)}"
    store.delete_bucket()
    failed = version(w, store.remote_env(prefix), "vanished").expect(
        exit_codes.UPSTREAM_UNAVAILABLE
    )
    assert "bucket apod-dvc does not exist" in failed.summary["reason"]
    assert data_commits(w) == []

    # The store makes its bucket when it starts: the next run pushes and commits.
    store.crash()
    store.start()
    done = version(w, store.remote_env(prefix), "remade").expect(0)
    assert object_key(prefix, done.summary["md5"]) in store.object_keys()
    assert len(data_commits(w)) == 1
