"""Crashes under a running pipeline, on real parts, at the cheapest level where each is
real: the Postgres server SIGKILLed mid-load (a Postgres container of the test's own and
the apod-load image, no Airflow), and /data full (a size-limited tmpfs volume and the
step images) during load_csv and during version. Each ends as a clean run of the same
input ends (rows, CSV bytes, DVC md5), and the alert the task's last try would send is
delivered through e-mail and webhook (crash.last_try_alert).

The scheduler killed mid-run needs Airflow: tests/faults/test_faults_airflow.py. The
Docker engine restarted under a step: tests/faults/test_faults_engine.py.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from support.services import docker, docker_volume, fresh_database, image

from apod_common import exit_codes
from faults.crash import last_try_alert, postgres_server, small_volume, wait_for_server
from faults.world import CONTENT, World, clean_run, wait_for, world

pytestmark = [
    pytest.mark.faults,
    pytest.mark.docker,
    pytest.mark.integration,
    pytest.mark.timeout(600),
]

MONTH = ("2024-01-01", "2024-01-31")
FIRST = ("2024-01-01", "2024-01-10")


def run_id(label: str) -> str:
    return f"manual__crash_{label}_{secrets.token_hex(3)}"


def staged(w: World, rid: str, start: str, end: str) -> None:
    w.extract(rid, start, end).expect(0)
    w.transform(rid).expect(0)


def load_waits_on_a_row(w: World) -> bool:
    """The load's INSERT waits for another transaction's uncommitted row: every row before
    that one is inserted or updated inside its own open transaction by then."""
    return bool(
        w.db.query(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.datname = %s AND a.application_name = 'apod-load' "
            "AND l.locktype = 'transactionid' AND NOT l.granted",
            w.db.name,
        )
    )


@contextlib.contextmanager
def row_held(w: World, day: str) -> Iterator[None]:
    """An open transaction holding `day`, which a load reaching that date waits for. Its
    server may die under it: the rollback then has nothing left to roll back."""
    holder = psycopg.connect(w.db.url)
    try:
        holder.execute(
            "INSERT INTO apod.apod_entries (date, title, explanation, media_type, run_id, "
            "extracted_at) VALUES (%s, 'held', '', 'image', 'holder', now())",
            [day],
        )
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            holder.rollback()
        with contextlib.suppress(psycopg.Error):
            holder.close()


def assert_alerted(caught: list, task_id: str, code: int, secret: str | None = None) -> None:
    """One e-mail and one webhook, naming the task's last try, its exit code and reason."""
    assert sorted(c.channel for c in caught) == ["mail", "webhook"]
    for alert in caught:
        assert f"task {task_id} failed" in alert.subject
        assert f"Task: {task_id}, try 4 of 4" in alert.text
        assert f"Exit code: {code} (" in alert.text
        reason = next(line for line in alert.text.splitlines() if line.startswith("Reason: "))
        assert "no reason recorded" not in reason
        assert secret is None or secret not in alert.text


# --- the Postgres server SIGKILLed mid-load ----------------------------------------------


def test_postgres_server_sigkilled_mid_load_keeps_the_committed_rows_and_the_retry_converges(
    server, monkeypatch
):
    clean = clean_run(server, *MONTH)
    with postgres_server("crash") as (container, db), world(server, db, "pgcrash") as w:
        first = run_id("first")
        staged(w, first, *FIRST)
        w.load_postgres(first).expect(0)
        before = w.rows()  # a committed load: 10 days
        rid = run_id("kill")
        staged(w, rid, *MONTH)
        with row_held(w, "2024-01-31"), w.running("load", "postgres", "--run-id", rid) as step:
            # 01-01..01-30 are written inside the load's open transaction; 01-31 waits.
            wait_for(lambda: load_waits_on_a_row(w), 60, "the load to block mid-INSERT")
            docker("kill", "--signal", "KILL", container)  # the whole server, not the client
            lost = step.finish(timeout=120)
        assert lost.returncode == exit_codes.UPSTREAM_UNAVAILABLE, lost.stderr
        assert "lost Postgres at" in lost.summary["reason"], lost.summary
        assert db.password not in lost.output

        docker("start", container)  # the server starts again on the same volume
        wait_for_server(db)
        logs = docker("logs", container)
        assert "not properly shut down" in logs.stdout + logs.stderr  # recovered from its WAL
        assert w.rows() == before  # every column: the committed load, none of the killed one

        caught = last_try_alert(lost, "load_postgres", monkeypatch)
        assert_alerted(caught, "load_postgres", exit_codes.UPSTREAM_UNAVAILABLE, db.password)

        retry = w.load_postgres(rid).expect(0)  # the task's retry
        assert (retry.summary["inserted"], retry.summary["unchanged"]) == (21, 10)
        rows = w.rows()
    assert [row[: len(CONTENT)] for row in rows] == clean.content()
    assert rows[:10] == before  # the committed rows were never rewritten


# --- /data full during load_csv and during version -----------------------------------------


def fill(w: World) -> None:
    """Take every free block of /data with one file (a month's CSV is a few KiB)."""
    script = (
        'dd if=/dev/zero of=/data/.filler bs=4k 2>/dev/null; df -k /data | awk "NR==2 {print \\$4}"'
    )
    left = docker("run", "--rm", "-v", f"{w.data}:/data", "--entrypoint", "sh",
                  image("version"), "-c", script).stdout  # fmt: skip
    assert int(left.strip()) == 0


def make_room(w: World) -> None:
    w.sh("rm -f /data/.filler")


def repository_intact(w: World, head: str) -> None:
    """git fsck finds nothing wrong, HEAD is where it was, DVC reads the repository."""
    assert w.git("rev-parse", "HEAD").strip() == head
    w.git("fsck", "--full", "--no-progress")  # raises on a non-zero exit
    w.sh("dvc status --quiet >/dev/null 2>&1 || test $? -eq 1")  # 1: the data changed


@pytest.fixture
def full_world(server) -> Iterator[World]:
    """A world whose /data is a 16 MiB tmpfs: a month's pipeline needs well under that."""
    with (
        fresh_database("apod_faults_full") as db,
        small_volume("full-data", "16m") as data,
        docker_volume("apod-faults-full-dvc") as remote,
    ):
        docker("run", "--rm", "-v", f"{remote}:/dvc-remote", "--entrypoint", "true",
               image("version"))  # fmt: skip
        yield World(server=server, db=db, data=data, remote=remote)


def test_data_full_during_load_csv_and_version_keeps_the_data_and_the_next_run_converges(
    full_world: World, server, monkeypatch
):
    w = full_world
    clean = clean_run(server, *MONTH)
    w.pipeline(run_id("first"), *FIRST)
    first = w.snapshot()
    rid = run_id("full")
    staged(w, rid, *MONTH)
    w.load_postgres(rid).expect(0)

    fill(w)  # /data full under load_csv
    csv_full = w.load_csv(rid)
    assert csv_full.returncode == exit_codes.UPSTREAM_UNAVAILABLE, csv_full.stderr
    reason = csv_full.summary["reason"]
    assert "no space left" in reason.lower(), reason
    assert "\n" not in reason
    assert w.csv_bytes() == first.csv  # the previous CSV, byte for byte
    repository_intact(w, first.head)
    assert_alerted(last_try_alert(csv_full, "load_csv", monkeypatch), "load_csv", 5)
    make_room(w)
    w.load_csv(rid).expect(0)  # the retry, with room

    fill(w)  # /data full under version
    version_full = w.version(rid)
    assert version_full.returncode == exit_codes.UPSTREAM_UNAVAILABLE, version_full.stderr
    reason = version_full.summary["reason"]
    assert "no space left" in reason.lower(), reason
    assert "\n" not in reason
    repository_intact(w, first.head)
    assert_alerted(last_try_alert(version_full, "version", monkeypatch), "version", 5)
    make_room(w)
    w.version(rid).expect(0)  # the next run with room

    got = w.snapshot()
    assert got.content() == clean.content()
    assert (got.csv, got.dvc_file, got.tree) == (clean.csv, clean.dvc_file, clean.tree)
    assert got.commits == first.commits + 1
    w.git("fsck", "--full", "--no-progress")
