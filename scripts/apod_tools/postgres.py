"""Fresh databases on a Postgres server for one run of the bench or the tests.

The server is the throwaway one of scripts/ensure-test-postgres.sh: its libpq variables
are in the file named by APOD_TEST_PG_ENV (default .cache/test-postgres/env).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from apod_tools.project import REPO


class Unavailable(RuntimeError):
    """The Postgres server is not there (not started, or not answering)."""


def admin_env() -> dict[str, str]:
    """The server's libpq variables: PGHOST, PGPORT, PGUSER (a superuser), PGPASSFILE."""
    env_file = Path(os.environ.get("APOD_TEST_PG_ENV", REPO / ".cache" / "test-postgres" / "env"))
    if not env_file.exists():
        raise Unavailable(
            "test Postgres not started: run scripts/ensure-test-postgres.sh (make test does)"
        )
    return dict(re.findall(r"^export (\w+)=(.*)$", env_file.read_text(), re.M))


def superuser(dbname: str = "postgres") -> psycopg.Connection:
    """An autocommit connection as the server's superuser."""
    admin = admin_env()
    try:
        return psycopg.connect(
            host=admin["PGHOST"],
            port=admin["PGPORT"],
            user=admin["PGUSER"],
            dbname=dbname,
            passfile=admin["PGPASSFILE"],
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        raise Unavailable(f"test Postgres unreachable: {exc}") from exc


@dataclass
class Database:
    name: str
    role: str
    password: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}:{self.password}@{self.host}:{self.port}/{self.name}"

    def query(self, query: str, *params) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()


@contextlib.contextmanager
def fresh_database(prefix: str = "apod_test") -> Iterator[Database]:
    """A new database owned by a new login role with a random password; dropped after."""
    suffix = secrets.token_hex(4)
    name, role, password = f"{prefix}_{suffix}", f"{prefix}_owner_{suffix}", secrets.token_hex(16)
    with superuser() as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
        where = admin_env()
        try:
            yield Database(name, role, password, where["PGHOST"], int(where["PGPORT"]))
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
