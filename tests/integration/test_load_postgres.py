"""`apod-load postgres` (and `csv` beside it) against the real test Postgres.

Every test runs `python -m apod_load` as a child process, as the container does, on a
database created for this module and dropped afterwards; each test loads its own table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support.services import fresh_database

from apod_common import exit_codes, layout
from apod_common.csvfile import read_csv_bytes, to_csv_bytes
from apod_common.schema import CONTENT_COLUMNS, STAGED_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
HOSTILE = [
    "Robert'); DROP TABLE apod.apod_entries; --",
    "x'); DELETE FROM apod.apod_entries WHERE ('1'='1",
    'say "hello", "world"',
    ",,,",
    '""',
    "line one\nline two\n\nline four",
    "crlf\r\nline\r\n",
    "bare\rreturn",
    "\n\\.\n",
    "\\.",
    "\\N",
    "NULL",
    " padded ",
    "ünïcödé ✓ 星空 🚀 ﷽",
    "replacement \ufffd char",
]
BIG = "Ω" * 500_000  # 1 MB of UTF-8


def entry(day: int, **fields) -> dict:
    row = dict.fromkeys(STAGED_COLUMNS, "")
    row.update(
        date=(dt.date(2024, 1, 1) + dt.timedelta(days=day - 1)).isoformat(),
        title=f"Title {day}",
        explanation=f"Explanation {day}",
        media_type="image",
        url=f"https://apod.nasa.gov/apod/image/{day}.jpg",
        service_version="v1",
        run_id="manual__first",
        extracted_at="2024-06-01T12:00:00+00:00",
    )
    row.update(fields)
    return row


def hostile_rows() -> list[dict]:
    rows = [
        entry(i, **{c: text for c in CONTENT_COLUMNS if c not in ("date", "media_type")})
        for i, text in enumerate(HOSTILE, start=1)
    ]
    rows.append(entry(len(rows) + 1, explanation=BIG, media_type="video"))
    rows.append(entry(len(rows) + 1, explanation="", copyright="", hdurl="", media_type="other"))
    return rows


def stage(data_dir: Path, run_id: str, rows: list[dict]) -> Path:
    path = layout.staged_batch(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=list(STAGED_COLUMNS))
    path.write_bytes(to_csv_bytes(frame, STAGED_COLUMNS))
    return path


def load(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "APOD_"))}
    base["PYTHONPATH"] = os.pathsep.join(str(REPO / "images" / p) for p in ("common", "load"))
    return subprocess.run(
        [sys.executable, "-m", "apod_load", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=240,
        check=False,
    )


def summary(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def db():
    with fresh_database("apod_load") as database:
        yield database


@pytest.fixture
def table(request) -> str:
    return f"apod.t_{request.node.name.split('[')[0].removeprefix('test_')[:40]}"


@pytest.fixture
def run(db, tmp_path, table):
    """run(command, run_id, *extra) -> CompletedProcess, on this test's data dir and table."""

    def _run(command: str, run_id: str, *extra: str, env: dict | None = None):
        args = [command, "--run-id", run_id, "--data-dir", str(tmp_path)]
        if command == "postgres":
            args += ["--table", table]
        return load(*args, *extra, env={"APOD_DATABASE_URL": db.url, **(env or {})})

    return _run


def snapshot(db, table: str) -> list[tuple]:
    return db.query(f"SELECT * FROM {table} ORDER BY date")


def test_insert_then_rerun_changes_nothing(db, tmp_path, table, run):
    rows = hostile_rows()
    stage(tmp_path, "manual__first", rows)
    first = run("postgres", "manual__first")
    assert first.returncode == 0, first.stderr
    got = summary(first)
    assert got["table_created"] is True
    assert (got["rows"], got["inserted"], got["updated"], got["unchanged"]) == (
        len(rows),
        len(rows),
        0,
        0,
    )
    assert got["table_rows"] == len(rows)
    before = snapshot(db, table)

    # The same batch again, then the same content staged by a later run.
    again = run("postgres", "manual__first")
    later_rows = [
        {**r, "run_id": "manual__later", "extracted_at": "2025-01-01T00:00:00Z"} for r in rows
    ]
    stage(tmp_path, "manual__later", later_rows)
    later = run("postgres", "manual__later")
    for result in (again, later):
        assert result.returncode == 0, result.stderr
        got = summary(result)
        assert (got["inserted"], got["updated"], got["unchanged"]) == (0, 0, len(rows))
        assert got["table_created"] is False
    assert snapshot(db, table) == before  # loaded_at, run_id, extracted_at untouched


def test_changed_title_updates_exactly_one_row(db, tmp_path, table, run):
    rows = [entry(i) for i in range(1, 11)]
    stage(tmp_path, "manual__first", rows)
    assert run("postgres", "manual__first").returncode == 0
    before = {r[0]: r for r in snapshot(db, table)}

    rows[3] = {**rows[3], "title": "A better title", "run_id": "manual__fix"}
    stage(tmp_path, "manual__fix", [{**r, "run_id": "manual__fix"} for r in rows])
    result = run("postgres", "manual__fix")
    assert result.returncode == 0, result.stderr
    got = summary(result)
    assert (got["rows"], got["inserted"], got["updated"], got["unchanged"]) == (10, 0, 1, 9)

    after = {r[0]: r for r in snapshot(db, table)}
    changed = [day for day in after if after[day] != before[day]]
    assert changed == [dt.date(2024, 1, 4)]
    title, run_id, loaded_at = db.query(
        f"SELECT title, run_id, loaded_at FROM {table} WHERE date = '2024-01-04'"
    )[0]
    assert (title, run_id) == ("A better title", "manual__fix")
    assert loaded_at > before[dt.date(2024, 1, 4)][-1]


def test_postgres_and_csv_end_identical(db, tmp_path, table, run):
    rows = hostile_rows()
    # A repeated date inside one batch: both stores keep the last one.
    rows.append({**rows[0], "title": "second copy wins"})
    stage(tmp_path, "manual__first", rows)
    pg = run("postgres", "manual__first")
    csv = run("csv", "manual__first")
    assert pg.returncode == 0, pg.stderr
    assert csv.returncode == 0, csv.stderr
    assert summary(pg)["table_rows"] == summary(csv)["rows"] == len(rows) - 1

    columns = ", ".join(CONTENT_COLUMNS)
    in_table = pd.DataFrame(
        db.query(f"SELECT {columns} FROM {table} ORDER BY date"),
        columns=list(CONTENT_COLUMNS),
    )
    in_table["date"] = in_table["date"].map(dt.date.isoformat)
    in_table = in_table.fillna("")  # NULL in Postgres is "" in the CSV
    in_csv = read_csv_bytes((tmp_path / "apod_data.csv").read_bytes())
    pd.testing.assert_frame_equal(in_table, in_csv, check_dtype=False)
    assert in_csv.loc[0, "title"] == "second copy wins"
    assert db.query(f"SELECT count(*) FROM {table} WHERE copyright IS NULL")[0][0] == 2
    assert db.query(f"SELECT explanation FROM {table} WHERE media_type = 'other'")[0][0] == ""


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"media_type": "gif"}, "check constraint"),  # fails in the INSERT
        ({"date": "2024-02-30"}, "out of range"),  # fails in the INSERT's cast
        ({"title": ""}, "not-null"),
        ({"extracted_at": "yesterday-ish"}, "invalid input syntax"),
    ],
)
def test_rejected_batch_leaves_the_table_as_it_was(db, tmp_path, table, run, bad, message):
    stage(tmp_path, "manual__first", [entry(i) for i in range(1, 6)])
    assert run("postgres", "manual__first").returncode == 0
    before = snapshot(db, table)

    # Many good rows (updates and inserts) first, the bad one last.
    rows = [entry(i, title=f"Changed {i}") for i in range(1, 2000)]
    rows.append(entry(2000, **bad))
    stage(tmp_path, "manual__bad", rows)
    result = run("postgres", "manual__bad")
    assert result.returncode == exit_codes.BAD_INPUT, result.stderr
    assert message in summary(result)["reason"]
    assert len(result.stderr.strip().splitlines()[-1]) < 1000
    assert snapshot(db, table) == before


def test_malformed_csv_mid_copy_leaves_the_table_as_it_was(db, tmp_path, table, run):
    stage(tmp_path, "manual__first", [entry(i) for i in range(1, 6)])
    assert run("postgres", "manual__first").returncode == 0
    before = snapshot(db, table)

    path = stage(tmp_path, "manual__bad", [entry(i, title=f"Changed {i}") for i in range(1, 5000)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('2030-01-01,"unterminated quote,E,image,,,,,,r,2024-01-01T00:00:00Z\n')
    result = run("postgres", "manual__bad")
    assert result.returncode == exit_codes.BAD_INPUT, result.stderr
    assert "COPY" in summary(result)["reason"]
    assert snapshot(db, table) == before


def test_wrong_password_is_refused_and_never_shown(db, tmp_path, run):
    stage(tmp_path, "manual__first", [entry(1)])
    wrong = "Wr0ng-Pa55word-" + db.password[:6]
    url = f"postgresql://{db.role}:{wrong}@{db.host}:{db.port}/{db.name}"
    result = run("postgres", "manual__first", env={"APOD_DATABASE_URL": url})
    assert result.returncode == exit_codes.UPSTREAM_REFUSED, result.stderr
    assert "password authentication failed" in result.stderr
    assert wrong not in result.stdout + result.stderr


def test_libpq_variables_work_without_a_url(db, tmp_path, table):
    stage(tmp_path, "manual__first", [entry(1), entry(2)])
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{db.host}:{db.port}:{db.name}:{db.role}:{db.password}\n")
    passfile.chmod(0o600)
    env = {
        "PGHOST": db.host,
        "PGPORT": str(db.port),
        "PGUSER": db.role,
        "PGDATABASE": db.name,
        "PGPASSFILE": str(passfile),
    }
    args = ("postgres", "--run-id", "manual__first", "--data-dir", str(tmp_path))
    result = load(*args, "--table", table, env=env)
    assert result.returncode == 0, result.stderr
    assert summary(result)["inserted"] == 2
    assert summary(result)["database"] == f"{db.host}:{db.port}/{db.name}"
