"""`apod-load init-db` and the least-privileged loader role it makes, on the test Postgres.

The database's owner gets CREATEROLE and plays apod_admin (owner of the database, no
superuser), as in the compose and Kubernetes deployments.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import errors, sql
from support.services import fresh_database, superuser

from apod_common import exit_codes, layout
from apod_common.csvfile import to_csv_bytes
from apod_common.schema import STAGED_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
TABLE = "apod.apod_entries"


def load(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "APOD_"))}
    base["PYTHONPATH"] = os.pathsep.join(str(REPO / "images" / p) for p in ("common", "load"))
    return subprocess.run(
        [sys.executable, "-m", "apod_load", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=120,
        check=False,
    )


def summary(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def stage(data_dir: Path, run_id: str, count: int) -> None:
    rows = [
        {
            **dict.fromkeys(STAGED_COLUMNS, ""),
            "date": f"2024-02-{day:02d}",
            "title": f"Title {day}",
            "explanation": "Explanation",
            "media_type": "image",
            "run_id": run_id,
            "extracted_at": "2024-03-01T00:00:00Z",
        }
        for day in range(1, count + 1)
    ]
    path = layout.staged_batch(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=list(STAGED_COLUMNS))
    path.write_bytes(to_csv_bytes(frame, STAGED_COLUMNS))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(database, loader role name, loader password file, loader URL); all removed after."""
    loader = f"apod_load_loader_{secrets.token_hex(4)}"
    password = "L0ader-" + secrets.token_urlsafe(18)
    password_file = tmp_path_factory.mktemp("secret") / "loader-password"
    password_file.write_text(password + "\n")
    try:
        with fresh_database("apod_load") as db:
            with superuser() as conn:
                conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(db.role)))
                # As in the deployments: only roles granted CONNECT may connect.
                conn.execute(
                    sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db.name))
                )
            url = f"postgresql://{loader}:{password}@{db.host}:{db.port}/{db.name}"
            yield db, loader, password_file, url
    finally:
        # After the database is gone (and the loader's grants with it) the role can go.
        with superuser() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(loader)))


def init_db(db, loader: str, **env: str) -> subprocess.CompletedProcess:
    return load("init-db", "--loader-role", loader, env={"APOD_DATABASE_URL": db.url, **env})


@pytest.fixture(scope="module")
def initialised(setup):
    db, loader, password_file, _ = setup
    result = init_db(db, loader, APOD_LOADER_PASSWORD_FILE=str(password_file))
    assert result.returncode == 0, result.stderr
    return result


def test_init_db_creates_table_and_role_once(setup, initialised):
    db, loader, password_file, _ = setup
    first = summary(initialised)
    assert (first["role_created"], first["password_set"], first["table_created"]) == (
        True,
        True,
        True,
    )
    assert (first["table"], first["loader_role"]) == (TABLE, loader)
    again = init_db(db, loader, APOD_LOADER_PASSWORD_FILE=str(password_file))
    assert again.returncode == 0, again.stderr
    assert (summary(again)["role_created"], summary(again)["table_created"]) == (False, False)
    # Without a password an existing role is left as it is.
    bare = init_db(db, loader)
    assert bare.returncode == 0, bare.stderr
    assert summary(bare)["password_set"] is False
    password = password_file.read_text().strip()
    for result in (initialised, again, bare):
        assert password not in result.stdout + result.stderr

    attributes = db.query(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit "
        "FROM pg_roles WHERE rolname = %s",
        loader,
    )
    assert attributes == [(True, False, False, False, False)]
    rights = db.query(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = %s AND table_schema = 'apod' AND table_name = 'apod_entries' "
        "ORDER BY 1",
        loader,
    )
    assert [r[0] for r in rights] == ["INSERT", "SELECT", "UPDATE"]


def test_init_db_needs_a_password_to_create_the_role(setup):
    db, _, _, _ = setup
    result = init_db(db, f"apod_load_nobody_{secrets.token_hex(3)}")
    assert result.returncode == exit_codes.USAGE, result.stderr
    assert "APOD_LOADER_PASSWORD" in result.stderr


def test_the_loader_loads(setup, initialised, tmp_path):
    db, _, _, url = setup
    stage(tmp_path, "manual__loader", 7)
    args = ("postgres", "--run-id", "manual__loader", "--data-dir", str(tmp_path))
    first = load(*args, env={"APOD_DATABASE_URL": url})
    assert first.returncode == 0, first.stderr
    assert (summary(first)["inserted"], summary(first)["table_created"]) == (7, False)
    again = load(*args, env={"APOD_DATABASE_URL": url})
    assert again.returncode == 0, again.stderr
    assert summary(again)["unchanged"] == 7
    assert db.query("SELECT count(*) FROM apod.apod_entries")[0][0] == 7


FORBIDDEN = [
    "CREATE TABLE apod.sneaky (x int)",
    "CREATE TABLE public.sneaky (x int)",
    "CREATE TABLE sneaky (x int)",
    "CREATE SCHEMA sneaky",
    "CREATE VIEW apod.sneaky AS SELECT 1",
    "CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP TABLE apod.apod_entries",
    "DROP SCHEMA apod CASCADE",
    "TRUNCATE apod.apod_entries",
    "DELETE FROM apod.apod_entries",
    "ALTER TABLE apod.apod_entries ADD COLUMN sneaky int",
    "ALTER TABLE apod.apod_entries DROP CONSTRAINT apod_entries_media_type_check",
    "CREATE INDEX sneaky ON apod.apod_entries (title)",
    "COMMENT ON TABLE apod.apod_entries IS 'mine now'",
    "CREATE DATABASE sneaky",
    "CREATE ROLE sneaky",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_loader_cannot_do_more(setup, initialised, statement):
    _, _, _, url = setup
    with (
        psycopg.connect(url, autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_the_loader_may_use_temporary_tables_only(setup, initialised):
    _, _, _, url = setup
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMP TABLE scratch (x int) ON COMMIT DROP")
        conn.rollback()


def test_loader_without_the_table_is_told_to_run_init_db(setup, initialised, tmp_path):
    db, _, _, url = setup
    stage(tmp_path, "manual__elsewhere", 2)
    result = load(
        "postgres", "--run-id", "manual__elsewhere", "--data-dir", str(tmp_path),
        "--table", "apod.not_there", env={"APOD_DATABASE_URL": url},
    )  # fmt: skip
    assert result.returncode == exit_codes.UPSTREAM_REFUSED, result.stderr
    assert "init-db" in result.stderr
    assert db.query("SELECT to_regclass('apod.not_there')")[0][0] is None


def test_init_db_rotates_the_password(setup, initialised):
    db, loader, password_file, url = setup
    new_password = "R0tated-" + secrets.token_urlsafe(12)
    try:
        result = init_db(db, loader, APOD_LOADER_PASSWORD=new_password)
        assert result.returncode == 0, result.stderr
        assert new_password not in result.stdout + result.stderr
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=5).close()
        psycopg.connect(url.replace(password_file.read_text().strip(), new_password)).close()
    finally:
        restored = init_db(db, loader, APOD_LOADER_PASSWORD_FILE=str(password_file))
        assert restored.returncode == 0, restored.stderr
    psycopg.connect(url).close()
