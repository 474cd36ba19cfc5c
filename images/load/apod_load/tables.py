"""The target table: its definition, its columns, and making sure it exists.

Its constraints state the rules the stores enforce (apod_common.rules, `stored=True`):
a date that is a real day, a title, a media type of schema.MEDIA_TYPES.
"""

import logging

from psycopg import errors, sql

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_common.schema import CONTENT_COLUMNS, MEDIA_TYPES, PROVENANCE_COLUMNS
from apod_load.names import TableName

log = logging.getLogger("load")

# Columns the load writes, in table order; loaded_at is the table's own.
LOADED_COLUMNS = CONTENT_COLUMNS + PROVENANCE_COLUMNS
# What "the same entry" means: everything the CSV holds except the key.
COMPARED_COLUMNS = tuple(c for c in CONTENT_COLUMNS if c != "date")


def identifier(table: TableName) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


def create_table_sql(table: TableName) -> sql.Composed:
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
    ).format(table=identifier(table), media_types=media_types)


def table_exists(conn, table: TableName) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [str(table)]).fetchone()[0]


def ensure_table(conn, table: TableName) -> bool:
    """Create the schema and table when missing; True when this call created the table.

    Looks first and creates only when needed, so a role without CREATE rights (the
    loader) can load into a table that already exists.
    """
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
                    identifier(table),
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
