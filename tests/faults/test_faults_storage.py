"""Storage faults: Postgres away or killed mid-transaction, the CSV writer killed
mid-write, the DVC remote missing or read-only, two version steps at once.

Every scenario runs the step images with `docker run` in a world of its own (a fresh
database, fresh data and DVC-remote volumes) and ends by checking that a re-run converges
to what one clean run of the same input leaves (`world.clean_run`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
import threading
from collections.abc import Iterator

import psycopg
import pytest

from apod_common import exit_codes, layout
from apod_common.schema import STAGED_COLUMNS
from faults.tcpproxy import TcpProxy
from faults.world import World, clean_run, wait_for

pytestmark = [
    pytest.mark.faults,
    pytest.mark.docker,
    pytest.mark.integration,
    pytest.mark.timeout(300),
]

MONTH = ("2024-01-01", "2024-01-31")
SIGKILLED = 128 + signal.SIGKILL  # what `docker run` returns for a SIGKILLed pid 1


def run_id(label: str) -> str:
    return f"manual__storage_{label}_{secrets.token_hex(3)}"


def staged(w: World, rid: str, start: str, end: str) -> None:
    """extract + transform: the staged batch both loads read."""
    w.extract(rid, start, end).expect(0)
    w.transform(rid).expect(0)


def load_sessions(w: World) -> list[tuple]:
    return w.db.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'apod-load'",
        w.db.name,
    )


def load_waits_on_a_row(w: World) -> bool:
    """The load's INSERT waits for another transaction's uncommitted row: by then it has
    inserted and updated every row before that one, inside its own open transaction."""
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
    """An open transaction that has inserted `day` without committing: a load that reaches
    that date blocks on it mid-INSERT. Rolled back when the block ends."""
    holder = psycopg.connect(w.db.url)
    try:
        holder.execute(
            "INSERT INTO apod.apod_entries (date, title, explanation, media_type, run_id, "
            "extracted_at) VALUES (%s, 'held', '', 'image', 'holder', now())",
            [day],
        )
        yield
    finally:
        holder.rollback()
        holder.close()


# --- 1. Postgres unreachable ---------------------------------------------------------------


def test_postgres_unreachable_exits_5_and_the_retry_converges(w: World, server):
    clean = clean_run(server, *MONTH)
    proxy = TcpProxy(w.db.host, w.db.port).start()
    proxy.stop()  # the port is closed: "connection refused", as for a database that is down
    w.database_url = f"postgresql://{w.db.role}:{w.db.password}@127.0.0.1:{proxy.port}/{w.db.name}"
    rid = run_id("down")
    staged(w, rid, *MONTH)
    try:
        down, csv = w.loads(rid)
        assert down.returncode == exit_codes.UPSTREAM_UNAVAILABLE, down.stderr
        reason = down.summary["reason"]
        assert f"cannot connect to Postgres at 127.0.0.1:{proxy.port}/{w.db.name}" in reason
        assert "\n" not in reason
        assert len(reason) < 400
        assert w.db.password not in down.output
        assert w.rows() == []
        csv.expect(0)  # the other load does not depend on the database

        proxy.start()  # the database is back on the same address: the task's retry
        retry = w.load_postgres(rid).expect(0)
    finally:
        proxy.stop()
    assert (retry.summary["inserted"], retry.summary["table_created"]) == (31, True)
    w.version(rid).expect(0)
    got = w.snapshot()
    assert got.content() == clean.content()
    assert {row[9] for row in got.rows} == {rid}
    assert (got.csv, got.dvc_file, got.tree) == (clean.csv, clean.dvc_file, clean.tree)


def test_connection_cut_mid_transaction_exits_5_and_leaves_no_partial_rows(w: World, server):
    clean = clean_run(server, *MONTH)
    w.pipeline(run_id("first"), "2024-01-01", "2024-01-10")
    before = w.rows()
    proxy = TcpProxy(w.db.host, w.db.port).start()
    w.database_url = f"postgresql://{w.db.role}:{w.db.password}@127.0.0.1:{proxy.port}/{w.db.name}"
    rid = run_id("cut")
    staged(w, rid, *MONTH)
    try:
        with row_held(w, "2024-01-31"), w.running("load", "postgres", "--run-id", rid) as step:
            wait_for(lambda: load_waits_on_a_row(w), 60, "the load to block mid-INSERT")
            assert proxy.cut() >= 1  # the network drops the session mid-transaction
            lost = step.finish(timeout=60)
    finally:
        proxy.stop()
    assert lost.returncode == exit_codes.UPSTREAM_UNAVAILABLE, lost.stderr
    assert lost.summary["reason"].startswith(
        f"lost Postgres at 127.0.0.1:{proxy.port}/{w.db.name} while loading into apod.apod_entries"
    )
    assert w.db.password not in lost.stdout + lost.stderr
    wait_for(lambda: not load_sessions(w), 60, "Postgres to end the lost session")
    assert w.rows() == before  # every column: nothing of the batch, not even loaded_at

    w.database_url = ""
    retry = w.load_postgres(rid).expect(0)
    assert (retry.summary["inserted"], retry.summary["unchanged"]) == (21, 10)
    w.load_csv(rid).expect(0)
    w.version(rid).expect(0)
    got = w.snapshot()
    assert got.content() == clean.content()
    assert got.rows[:10] == before  # the first run's rows were never rewritten
    assert (got.csv, got.dvc_file) == (clean.csv, clean.dvc_file)


# --- 2. load postgres SIGKILLed mid-transaction ----------------------------------------------


def test_load_postgres_sigkilled_mid_transaction_leaves_no_partial_rows(w: World, server):
    clean = clean_run(server, *MONTH)
    w.pipeline(run_id("first"), "2024-01-01", "2024-01-10")
    before = w.rows()
    rid = run_id("kill")
    staged(w, rid, *MONTH)
    with row_held(w, "2024-01-31"):
        with w.running("load", "postgres", "--run-id", rid) as step:
            # The load is inside its INSERT: 01-01..01-30 are done in its open
            # transaction (20 of them new), 01-31 waits for the holder.
            wait_for(lambda: load_waits_on_a_row(w), 60, "the load to block mid-INSERT")
            step.signal(signal.SIGKILL)
            killed = step.finish(timeout=60)
        assert killed.returncode == SIGKILLED, killed.stderr
    wait_for(lambda: not load_sessions(w), 60, "Postgres to end the killed load's session")
    assert w.rows() == before

    rerun = w.load_postgres(rid).expect(0)
    assert (rerun.summary["inserted"], rerun.summary["updated"]) == (21, 0)
    assert rerun.summary["table_rows"] == 31
    w.load_csv(rid).expect(0)
    w.version(rid).expect(0)
    got = w.snapshot()
    assert got.content() == clean.content()
    assert got.rows[:10] == before
    assert (got.csv, got.dvc_file, got.tree) == (clean.csv, clean.dvc_file, clean.tree)


# --- 3. load csv killed mid-write -------------------------------------------------------------

BIG_ROWS = 60_000  # ~100 MB of CSV: the write and fsync take long enough to be caught
FILLER = "Stars and dust and nebulae in a long explanation " * 30  # ~1.5 KB, no quoting


def synthetic_batch(rid: str) -> tuple[bytes, list[bytes]]:
    """A staged batch of BIG_ROWS dates from 1800-01-01 on (before any real APOD day),
    and the dataset lines the CSV load must write for it."""
    import datetime as dt

    first = dt.date(1800, 1, 1)
    staged_lines, content_lines = [], []
    for n in range(BIG_ROWS):
        day = (first + dt.timedelta(days=n)).isoformat()
        content = f"{day},Synthetic {n},{FILLER}{n},image,https://example.org/{n}.jpg,,,,v1"
        content_lines.append(content.encode() + b"\n")
        staged_lines.append(f"{content},{rid},2024-06-01T12:00:00+00:00\n")
    header = ",".join(STAGED_COLUMNS) + "\n"
    return (header + "".join(staged_lines)).encode(), content_lines


def temp_files(w: World) -> list[str]:
    return sorted(
        p.name for p in w.mountpoint.iterdir() if p.name.startswith(f".{layout.CSV_NAME}.")
    )


def test_load_csv_killed_mid_write_keeps_the_old_file(w: World):
    w.pipeline(run_id("first"), "2024-01-01", "2024-01-10")
    before = w.csv_bytes()
    head = w.snapshot().head
    rid = run_id("big")
    batch, new_lines = synthetic_batch(rid)
    w.put(f"staging/{layout.batch_name(rid)}/apod.csv", batch)

    with w.running("load", "csv", "--run-id", rid) as step:
        wait_for(
            lambda: temp_files(w) or step.process.poll() is not None,
            120,
            "the CSV writer's temp file",
            interval=0.005,
        )
        step.signal(signal.SIGSTOP)  # frozen mid-write: look before killing it
        assert temp_files(w), "the writer finished before it could be stopped"
        assert w.csv_bytes() == before
        step.signal(signal.SIGKILL)
        killed = step.finish(timeout=60)
    assert killed.returncode == SIGKILLED, killed.stderr
    assert w.csv_bytes() == before  # byte for byte the previous dataset
    stray = temp_files(w)
    assert len(stray) == 1  # the dead writer's temp file...
    # ...is not the dataset: versioning now finds the data unchanged and commits nothing.
    w.version(run_id("after_kill")).expect(exit_codes.NOTHING_TO_DO)
    assert w.snapshot().head == head

    rerun = w.load_csv(rid).expect(0)
    assert (rerun.summary["added"], rerun.summary["updated"]) == (BIG_ROWS, 0)
    assert rerun.summary["rows"] == BIG_ROWS + 10
    old_header, *old_lines = before.splitlines(keepends=True)
    assert w.csv_bytes() == old_header + b"".join(new_lines) + b"".join(old_lines)
    assert temp_files(w) == []  # the next writer cleared the dead one's leftover
    again = w.load_csv(rid).expect(0)
    assert again.summary["changed"] is False
    w.version(rid).expect(0)
    assert f"rows: {BIG_ROWS + 10}" in w.git("log", "-1", "--format=%B")


# --- 4. DVC remote missing or read-only ---------------------------------------------------------


def test_dvc_remote_unavailable_commits_nothing_and_the_next_run_catches_up(w: World):
    w.pipeline(run_id("first"), "2024-01-01", "2024-01-10")
    first = w.snapshot()
    pushed_before = w.remote_files()
    assert len(pushed_before) == 1

    rid = run_id("remote")
    staged(w, rid, "2024-01-11", "2024-01-20")
    for load in w.loads(rid):
        load.expect(0)

    # No volume mounted at /dvc-remote: only the image's own empty directory is there.
    missing = w.version(rid, remote=None)
    assert missing.returncode == exit_codes.UPSTREAM_UNAVAILABLE, missing.stderr
    assert missing.summary["reason"] == (
        "DVC remote 'local' is not reachable: no volume is mounted at /dvc-remote "
        "(pushing into the container's own directory would lose the data)"
    )
    # The remote mounted read-only: dvc push fails.
    readonly = w.version(rid, remote="ro")
    assert readonly.returncode == exit_codes.UPSTREAM_UNAVAILABLE, readonly.stderr
    reason = readonly.summary["reason"]
    assert reason.startswith("dvc push to remote 'local' (/dvc-remote) failed, nothing committed")
    for result in (missing, readonly):
        assert "\n" not in result.summary["reason"]
        assert result.stderr.strip().splitlines()[-1].endswith(result.summary["reason"])
    after_failures = w.snapshot()
    assert (after_failures.head, after_failures.commits) == (first.head, first.commits)
    assert w.remote_files() == pushed_before

    caught_up = w.version(rid).expect(0)
    md5 = caught_up.summary["md5"]
    assert caught_up.summary["dvc_pushed"] is True
    got = w.snapshot()
    assert got.commits == first.commits + 1
    assert md5 in got.dvc_file
    assert w.remote_files() == pushed_before | {md5}
    assert "in sync" in w.sh("python -m dvc status -c", remote=True)
    # A clone of the data repository restores the exact CSV from the remote alone.
    pulled = w.sh(
        "git clone -q /data /tmp/clone && cd /tmp/clone && python -m dvc pull -q && "
        "sha256sum apod_data.csv",
        remote=True,
    )
    assert pulled.split()[0] == hashlib.sha256(w.csv_bytes()).hexdigest()


# --- 5. two version steps at once ----------------------------------------------------------------


@contextlib.contextmanager
def host_flock(path) -> Iterator[None]:
    """Hold the flock the version step takes, from the host, so that the two runs both
    start, both wait, and then race for it when it is released."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def race(w: World, lock_path, rids: tuple[str, str]) -> list:
    env = {"APOD_DVC_REMOTE": "/dvc-remote"}
    with contextlib.ExitStack() as stack:
        with host_flock(lock_path):
            steps = [
                stack.enter_context(
                    w.running("version", "--run-id", rid, "--init-repo", env=env, remote="rw")
                )
                for rid in rids
            ]
            for step in steps:
                wait_for(
                    lambda s=step: "waiting for another run to release the lock" in s.logs(),
                    120,
                    f"{step.container} to wait for the lock",
                    interval=0.2,
                )
        # released: both go for it at once
        results = [None, None]
        threads = [
            threading.Thread(target=lambda i=i: results.__setitem__(i, steps[i].finish()))
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results


def check_repository(w: World) -> None:
    assert w.git("rev-list", "--min-parents=2", "HEAD") == ""  # linear: no merges
    assert w.git("status", "--porcelain") == ""
    w.git("fsck", "--no-progress")
    assert "in sync" in w.sh("python -m dvc status -c", remote=True)


def test_two_version_steps_at_once_serialise(w: World):
    rid = run_id("v1")
    staged(w, rid, "2024-01-01", "2024-01-10")
    for load in w.loads(rid):
        load.expect(0)
    # Round 1, a fresh volume: both would create the repository.
    first = race(w, w.mountpoint, (f"{rid}_a", f"{rid}_b"))
    assert sorted(r.returncode for r in first) == [0, exit_codes.NOTHING_TO_DO], first
    winner = next(r for r in first if r.returncode == 0)
    assert w.snapshot().commits == 2  # the initial commit and one data commit
    check_repository(w)

    # Round 2, new data in an existing repository: both would commit it.
    rid2 = run_id("v2")
    staged(w, rid2, "2024-01-11", "2024-01-20")
    for load in w.loads(rid2):
        load.expect(0)
    second = race(w, w.path(".git/apod-version.lock"), (f"{rid2}_a", f"{rid2}_b"))
    assert sorted(r.returncode for r in second) == [0, exit_codes.NOTHING_TO_DO], second
    winner2 = next(r for r in second if r.returncode == 0)
    got = w.snapshot()
    assert got.commits == 3
    subjects = w.git("log", "--format=%s").splitlines()
    assert subjects == [
        f"data: update apod_data.csv (run {winner2.summary['run_id']})",
        f"data: update apod_data.csv (run {winner.summary['run_id']})",
        "data: initialise the APOD data repository (git + DVC)",
    ]
    assert winner2.summary["md5"] in got.dvc_file
    assert w.remote_files() == {winner.summary["md5"], winner2.summary["md5"]}
    check_repository(w)
