"""scripts/ensure-test-postgres.sh owns its server to the end: a second cluster (another
checkout's, the bench's) gets a free port beside the one the suite runs on, and `--run`
stops the server it started when its command ends, but never one that was running."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from support.services import pg_admin_env

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-test-postgres.sh"


def ensure(cluster: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "APOD_TEST_PG"))}
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**env, "APOD_TEST_PG_DIR": str(cluster)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def cluster():
    # Not under pytest's tmp_path: as root the server runs as `postgres`, which must reach it.
    root = Path(tempfile.mkdtemp(prefix="apod-other-checkout-"))
    root.chmod(0o755)
    yield root / "test-postgres"
    ensure(root / "test-postgres", "--stop")
    shutil.rmtree(root, ignore_errors=True)


def test_a_second_cluster_takes_a_free_port_and_run_stops_only_what_it_started(cluster):
    suite_port = pg_admin_env()["PGPORT"]
    probe = 'echo "$PGPORT"; psql -Atc "SELECT 1"'
    first = ensure(cluster, "--run", "bash", "-c", probe)
    assert first.returncode == 0, first.stderr
    port, answer = first.stdout.split()
    assert (answer, port != suite_port) == ("1", True)
    assert "stopping PostgreSQL" in first.stderr
    assert not (cluster / "data" / "postmaster.pid").exists()

    try:
        started = ensure(cluster)  # started by hand: --run must leave it running
        assert started.returncode == 0, started.stderr
        again = ensure(cluster, "--run", "bash", "-c", "exit 3")
        assert again.returncode == 3
        assert "stopping" not in again.stderr
        assert (cluster / "data" / "postmaster.pid").exists()
    finally:
        stopped = ensure(cluster, "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (cluster / "data" / "postmaster.pid").exists()
