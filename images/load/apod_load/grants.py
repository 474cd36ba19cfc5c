"""`init-db`: the schema, the table, and a loader role that may load and nothing more.

Runs as the database's admin (owner of the database, CREATEROLE; no superuser needed).
Every statement is idempotent and the whole run is one transaction.
"""

import logging

from psycopg import errors, sql

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_load.names import TableName
from apod_load.tables import ensure_table, identifier
from apod_load.upsert import lock_key

log = logging.getLogger("load")

# Role attributes a loader must not have; init-db cannot always remove them (that may
# take a superuser), so it says so loudly.
_DANGEROUS = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")


def init_db(conn, table: TableName, role: str, password: str | None) -> dict:
    conn.add_notice_handler(lambda notice: log.info("postgres: %s", notice.message_primary))
    with conn.transaction():
        # Same lock as the loads: init-db never changes rights under a running load.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(table)])
        database, admin = conn.execute("SELECT current_database(), current_user").fetchone()
        if role == admin:
            raise StepError(
                f"--loader-role {role} is the role init-db runs as; the loader must be "
                "a separate, least-privileged role",
                exit_codes.USAGE,
            )
        table_created = ensure_table(conn, table)
        role_created, password_set = _ensure_role(conn, role, password)

        ident = sql.Identifier
        db, schema, loader = ident(database), ident(table.schema), ident(role)
        statements = [
            # Revoke first, then grant: a rerun also removes rights granted by hand since.
            "REVOKE ALL ON TABLE {table} FROM PUBLIC, {loader}",
            "GRANT SELECT, INSERT, UPDATE ON TABLE {table} TO {loader}",
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {loader}",
            "REVOKE CREATE ON DATABASE {db} FROM PUBLIC, {loader}",
            "GRANT USAGE ON SCHEMA {schema} TO {loader}",
            "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, {loader}",
        ]
        public = conn.execute("SELECT to_regnamespace('public') IS NOT NULL").fetchone()[0]
        if public and table.schema != "public":
            statements.append("REVOKE CREATE ON SCHEMA public FROM PUBLIC, {loader}")
        for template in statements:
            conn.execute(
                sql.SQL(template).format(
                    table=identifier(table), loader=loader, db=db, schema=schema
                )
            )
    log.info("role %s may now load into %s (SELECT, INSERT, UPDATE; TEMP)", role, table)
    return {
        "table": str(table),
        "loader_role": role,
        "role_created": role_created,
        "password_set": password_set,
        "table_created": table_created,
        "grants": [
            f"CONNECT, TEMPORARY ON DATABASE {database}",
            f"USAGE ON SCHEMA {table.schema}",
            f"SELECT, INSERT, UPDATE ON TABLE {table}",
        ],
    }


def _ensure_role(conn, role: str, password: str | None) -> tuple[bool, bool]:
    """Create the login role if missing; set its password when one is given."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in (*_DANGEROUS, "rolcanlogin"))
    row = conn.execute(
        sql.SQL("SELECT {} FROM pg_roles WHERE rolname = %s").format(columns), [role]
    ).fetchone()
    if row is None and not password:
        raise StepError(
            f"role {role} does not exist and no password was given to create it: set "
            "APOD_LOADER_PASSWORD or APOD_LOADER_PASSWORD_FILE",
            exit_codes.USAGE,
        )
    if row is not None:
        flags = zip(_DANGEROUS, row[: len(_DANGEROUS)], strict=True)
        risky = [name.removeprefix("rol") for name, value in flags if value]
        if risky:
            log.warning("role %s has %s: it can do more than load", role, ", ".join(risky))
    verifier = _verifier(conn, role, password) if password else None
    try:
        if row is None:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                    "NOREPLICATION PASSWORD {}"
                ).format(sql.Identifier(role), sql.Literal(verifier))
            )
            log.info("created login role %s", role)
            return True, True
        if verifier:
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(verifier)
                )
            )
        elif not row[-1]:
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN").format(sql.Identifier(role)))
    except errors.InsufficientPrivilege as exc:
        raise StepError(
            f"cannot create or alter role {role}: {exc.diag.message_primary} "
            "(init-db needs a role with CREATEROLE that owns the database)",
            exit_codes.UPSTREAM_REFUSED,
        ) from None
    return False, bool(verifier)


def _verifier(conn, role: str, password: str) -> str:
    """The password hashed by libpq (SCRAM, per the server's password_encryption), so the
    clear text never travels in a statement that a server log could record."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode()).decode("ascii")
