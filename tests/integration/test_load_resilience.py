"""`apod-load postgres` when things go wrong: concurrent loads, an unreachable server, a
SIGKILL in the middle of the transaction; and how fast a large batch goes in.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from support.services import fresh_database

from apod_common import exit_codes, layout
from apod_common.csvfile import to_csv_bytes
from apod_common.schema import STAGED_COLUMNS
from apod_load.names import parse_table
from apod_load.upsert import lock_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def synthetic(count: int, *, start: str = "1900-01-01", title: str = "Title", size: int = 1000):
    """`count` staged rows on consecutive dates, explanations of about `size` bytes."""
    dates = pd.date_range(start, periods=count, freq="D").strftime("%Y-%m-%d")
    numbers = pd.Series(range(count)).astype(str)
    filler = ('Stars, "dust" and\nnebulae; ünïcödé ✓ 星. ' * (size // 40 + 1))[:size]
    return pd.DataFrame(
        {
            "date": dates,
            "title": title + " " + numbers,
            "explanation": filler + numbers,
            "media_type": "image",
            "url": "https://apod.nasa.gov/apod/image/" + numbers + ".jpg",
            "hdurl": "",
            "thumbnail_url": "",
            "copyright": "",
            "service_version": "v1",
            "run_id": "manual__synthetic",
            "extracted_at": "2024-06-01T12:00:00+00:00",
        },
        columns=list(STAGED_COLUMNS),
    )


def stage(data_dir: Path, run_id: str, frame: pd.DataFrame) -> Path:
    path = layout.staged_batch(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_csv_bytes(frame, STAGED_COLUMNS))
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "apod_load", *args]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "APOD_"))}
    base["PYTHONPATH"] = os.pathsep.join(str(REPO / "images" / p) for p in ("common", "load"))
    return {**base, **extra}


def load(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args), capture_output=True, text=True, env=child_env(env), timeout=500, check=False
    )


def summary(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def db():
    with fresh_database("apod_load") as database:
        yield database


def test_concurrent_loads_wait_for_each_other(db, tmp_path):
    table = "apod.t_concurrent"
    stage(tmp_path, "run_a", synthetic(300, start="2000-01-01", title="A"))
    stage(tmp_path, "run_b", synthetic(300, start="2000-06-01", title="B"))  # 148 dates overlap
    env = child_env({"APOD_DATABASE_URL": db.url})
    base = ("--data-dir", str(tmp_path), "--table", table)

    holder = psycopg.connect(db.url)  # holds the loads' advisory lock in an open transaction
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(parse_table(table))])
        loads = [
            subprocess.Popen(
                command("postgres", "--run-id", run, *base),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for run in ("run_a", "run_b")
        ]

        def waiting() -> int:
            return db.query(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = %s",
                db.name,
            )[0][0]

        wait_for(lambda: waiting() == 2, 60, "both loads to wait on the advisory lock")
        time.sleep(0.5)
        assert all(p.poll() is None for p in loads)
        assert db.query("SELECT to_regclass(%s)", table)[0][0] is None  # nothing done yet
    finally:
        holder.rollback()
        holder.close()

    results = [summary(p.communicate(timeout=120)[0]) for p in loads]
    assert [p.returncode for p in loads] == [0, 0], results
    # One ran after the other: the second saw every row of the first, none half-written.
    first, second = sorted(results, key=lambda r: r["updated"])
    assert (first["inserted"], first["updated"]) == (300, 0)
    assert (second["inserted"], second["updated"]) == (152, 148)
    assert second["table_rows"] == 452
    assert sorted(r["table_created"] for r in results) == [False, True]
    titles = db.query(
        f"SELECT DISTINCT left(title, 1) FROM {table} "
        "WHERE date BETWEEN '2000-06-01' AND '2000-10-26'"
    )
    assert len(titles) == 1  # the overlap holds one run's rows, not a mix


def test_lock_timeout_gives_up_with_exit_5(db, tmp_path):
    table = "apod.t_lock_timeout"
    stage(tmp_path, "run_a", synthetic(5))
    holder = psycopg.connect(db.url)
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(parse_table(table))])
        result = load(
            "postgres", "--run-id", "run_a", "--data-dir", str(tmp_path), "--table", table,
            "--lock-timeout", "1", env={"APOD_DATABASE_URL": db.url},
        )  # fmt: skip
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == exit_codes.UPSTREAM_UNAVAILABLE, result.stderr
    assert "lock timeout" in result.stderr
    assert db.query("SELECT to_regclass(%s)", table)[0][0] is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("how", ["url", "url_file", "libpq"])
def test_unreachable_postgres_exits_5_without_showing_the_password(tmp_path, how):
    stage(tmp_path, "r1", synthetic(3))
    port = _closed_port()
    password = "Pa55-Never-Print-Me-7d1f"
    url = f"postgresql://apod_loader:{password}@127.0.0.1:{port}/apod"
    if how == "url":
        env = {"APOD_DATABASE_URL": url}
    elif how == "url_file":
        (tmp_path / "url").write_text(url + "\n")
        env = {"APOD_DATABASE_URL_FILE": str(tmp_path / "url")}
    else:
        env = {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            "PGUSER": "apod_loader",
            "PGDATABASE": "apod",
            "PGPASSWORD": password,
        }
    result = load("postgres", "--run-id", "r1", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == exit_codes.UPSTREAM_UNAVAILABLE, result.stderr
    assert f"cannot connect to Postgres at 127.0.0.1:{port}/apod" in result.stderr
    assert summary(result.stdout)["exit_code"] == exit_codes.UPSTREAM_UNAVAILABLE
    output = result.stdout + result.stderr
    assert password not in output
    assert "Pa55" not in output


def test_silent_server_times_out_with_exit_5(tmp_path):
    """A port that accepts TCP but never speaks: libpq gives up after connect_timeout."""
    stage(tmp_path, "r1", synthetic(3))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://apod_loader:Quiet-Secret-123@127.0.0.1:{port}/apod"
        result = load(
            "postgres", "--run-id", "r1", "--data-dir", str(tmp_path),
            env={"APOD_DATABASE_URL": url},
        )  # fmt: skip
    assert result.returncode == exit_codes.UPSTREAM_UNAVAILABLE, result.stderr
    assert "timeout" in result.stderr
    assert f"cannot connect to Postgres at 127.0.0.1:{port}/apod" in result.stderr
    assert "Quiet-Secret-123" not in result.stdout + result.stderr
    # libpq's own "timeout expired" (above): it gave up after connect_timeout, not at once
    # and not never; how long that takes is a setting (apod_load.database), not timed here.


def test_sigkill_mid_transaction_leaves_no_partial_rows(db, tmp_path):
    table = "apod.t_sigkill"
    env = {"APOD_DATABASE_URL": db.url}
    base = ("--data-dir", str(tmp_path), "--table", table)
    stage(tmp_path, "small", synthetic(50, start="1950-01-01", title="Before"))
    assert load("postgres", "--run-id", "small", *base, env=env).returncode == 0
    before = db.query(f"SELECT * FROM {table} ORDER BY date")

    # 150,000 rows (~160 MB) that update the 50 and add the rest: seconds of COPY.
    stage(tmp_path, "big", synthetic(150_000, start="1800-01-01", title="After"))
    victim = subprocess.Popen(
        command("postgres", "--run-id", "big", *base),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(env),
    )

    def copying() -> bool:
        return bool(
            db.query(
                "SELECT 1 FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) "
                "WHERE a.datname = %s AND a.application_name = 'apod-load' "
                "AND p.tuples_processed > 0",
                db.name,
            )
        )

    wait_for(copying, 60, "the load's COPY to start")
    assert victim.poll() is None, "the load finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL

    def backend_gone() -> bool:
        return not db.query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND application_name = 'apod-load'",
            db.name,
        )

    wait_for(backend_gone, 60, "Postgres to end the killed load's session")
    assert db.query(f"SELECT * FROM {table} ORDER BY date") == before

    rerun = load("postgres", "--run-id", "big", *base, env=env)
    assert rerun.returncode == 0, rerun.stderr
    got = summary(rerun.stdout)
    assert (got["rows"], got["inserted"], got["updated"]) == (150_000, 149_950, 50)
    assert got["table_rows"] == 150_000
    again = summary(load("postgres", "--run-id", "big", *base, env=env).stdout)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 150_000)
