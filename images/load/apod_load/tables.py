"""The target table: its name, its definition, and making sure it exists."""

import argparse
import logging
import re
from dataclasses import dataclass

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_common.schema import CONTENT_COLUMNS, MEDIA_TYPES, PROVENANCE_COLUMNS

log = logging.getLogger("load")

DEFAULT_TABLE = "apod.apod_entries"
# Lower-case unquoted identifiers only: the name then means the same thing in SQL, in
# to_regclass() and in a human's psql session, and never needs quoting rules.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Columns the load writes, in table order; loaded_at is the table's own.
LOADED_COLUMNS = CONTENT_COLUMNS + PROVENANCE_COLUMNS
# What "the same entry" means: everything the CSV holds except the key.
COMPARED_COLUMNS = tuple(c for c in CONTENT_COLUMNS if c != "date")


@dataclass(frozen=True)
class TableName:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    def identifier(self):
        from psycopg import sql

        return sql.Identifier(self.schema, self.name)


def parse_table(text: str) -> TableName:
    """argparse type for --table: `schema.table`, both plain lower-case identifiers."""
    schema, dot, name = text.partition(".")
    if not dot or not _IDENTIFIER.match(schema) or not _IDENTIFIER.match(name):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not schema.table with lower-case identifiers (e.g. {DEFAULT_TABLE})"
        )
    return TableName(schema, name)


def parse_role(text: str) -> str:
    """argparse type for --loader-role: a plain lower-case identifier."""
    if not _IDENTIFIER.match(text) or text.startswith("pg_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain lower-case role name")
    return text


def create_table_sql(table: TableName):
    from psycopg import sql

    media_types = sql.SQL(", ").join(sql.Literal(m) for m in MEDIA_TYPES)
    return sql.SQL(
        """
        CREATE TABLE IF NOT EXISTS {table} (
            date            date        PRIMARY KEY,
            title           text        NOT NULL,
            explanation     text        NOT NULL,
            media_type      text        NOT NULL CHECK (media_type IN ({media_types})),
            url             text,
            hdurl           text,
            thumbnail_url   text,
            copyright       text,
            service_version text,
            run_id          text        NOT NULL,
            extracted_at    timestamptz NOT NULL,
            loaded_at       timestamptz NOT NULL DEFAULT now()
        )
        """
    ).format(table=table.identifier(), media_types=media_types)


def table_exists(conn, table: TableName) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [str(table)]).fetchone()[0]


def ensure_table(conn, table: TableName) -> bool:
    """Create the schema and table when missing; True when this call created the table.

    Looks first and creates only when needed, so a role without CREATE rights (the
    loader) can load into a table that already exists.
    """
    from psycopg import errors, sql

    if table_exists(conn, table):
        return False
    log.info("table %s does not exist: creating it", table)
    try:
        with conn.transaction():  # a savepoint: a refusal must not poison the caller's work
            schema_exists = conn.execute(
                "SELECT to_regnamespace(%s) IS NOT NULL", [table.schema]
            ).fetchone()[0]
            if not schema_exists:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema))
                )
            conn.execute(create_table_sql(table))
            conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    table.identifier(),
                    sql.Literal("APOD entries, one per date; written by apod-load postgres"),
                )
            )
    except errors.InsufficientPrivilege as exc:
        raise StepError(
            f"table {table} does not exist and this role may not create it "
            f"({exc.diag.message_primary}); run `apod-load init-db` as the admin first",
            exit_codes.UPSTREAM_REFUSED,
        ) from None
    return True
