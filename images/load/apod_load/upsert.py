"""`postgres`: upsert the staged batch in one transaction (COPY into a temp table, then
INSERT ... ON CONFLICT), so a failure or a kill leaves the table exactly as it was."""

import hashlib
import logging
from dataclasses import dataclass

from psycopg import sql

from apod_common.errors import NothingToDo
from apod_common.staging import StagedBatch
from apod_load.names import TableName
from apod_load.tables import COMPARED_COLUMNS, LOADED_COLUMNS, ensure_table, identifier

log = logging.getLogger("load")

STAGE_TABLE = "apod_load_stage"
COPY_BLOCK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LoadResult:
    rows: int
    inserted: int
    updated: int
    unchanged: int
    table_rows: int
    table_created: bool


def lock_key(table: TableName) -> int:
    """The advisory lock id that serialises loads into one table (stable across versions)."""
    digest = hashlib.sha256(f"apod_load:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _stage_sql() -> sql.Composed:
    # Text columns: COPY only splits the CSV; casts and constraints apply in the INSERT,
    # where the target table's rules (and nothing looser) decide what is valid.
    columns = sql.SQL(", ").join(
        sql.SQL("{} text").format(sql.Identifier(c)) for c in LOADED_COLUMNS
    )
    return sql.SQL(
        "CREATE TEMP TABLE {stage} (ord bigint GENERATED ALWAYS AS IDENTITY, {columns}) "
        "ON COMMIT DROP"
    ).format(stage=sql.Identifier(STAGE_TABLE), columns=columns)


def _copy_sql(columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {stage} ({columns}) FROM STDIN (FORMAT csv, HEADER true)").format(
        stage=sql.Identifier(STAGE_TABLE),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )


def upsert_sql(table: TableName) -> sql.Composed:
    """One statement: dedupe the stage (last row per date wins, as in the CSV), upsert,
    count. Unchanged rows are not touched at all, so loaded_at/run_id stay as they were."""
    ident = sql.Identifier
    loaded = sql.SQL(", ").join(ident(c) for c in LOADED_COLUMNS)
    casts = {
        "date": sql.SQL("s.date::date"),
        "explanation": sql.SQL("COALESCE(s.explanation, '')"),
        "run_id": sql.SQL("COALESCE(s.run_id, %(run_id)s)"),
        "extracted_at": sql.SQL("s.extracted_at::timestamptz"),
    }
    select = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(casts.get(c, sql.SQL("s.{}").format(ident(c))), ident(c))
        for c in LOADED_COLUMNS
    )
    updated = [*COMPARED_COLUMNS, "run_id", "extracted_at"]
    assignments = sql.SQL(", ").join(
        sql.SQL("{col} = EXCLUDED.{col}").format(col=ident(c)) for c in updated
    )
    current = sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in COMPARED_COLUMNS)
    incoming = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(ident(c)) for c in COMPARED_COLUMNS)
    return sql.SQL(
        """
        WITH batch AS (
            SELECT DISTINCT ON (s.date::date) {select}
            FROM {stage} AS s
            ORDER BY s.date::date, s.ord DESC
        ), upserted AS (
            INSERT INTO {table} AS t ({loaded})
            SELECT {loaded} FROM batch
            ON CONFLICT (date) DO UPDATE SET {assignments}, loaded_at = now()
            WHERE ({current}) IS DISTINCT FROM ({incoming})
            RETURNING (t.xmax = 0) AS inserted
        )
        SELECT (SELECT count(*) FROM batch),
               count(*) FILTER (WHERE inserted),
               count(*) FILTER (WHERE NOT inserted)
        FROM upserted
        """
    ).format(
        select=select,
        stage=ident(STAGE_TABLE),
        table=identifier(table),
        loaded=loaded,
        assignments=assignments,
        current=current,
        incoming=incoming,
    )


def load(
    conn, batch: StagedBatch, table: TableName, run_id: str, lock_timeout: float
) -> LoadResult:
    """Run the whole load in one transaction on `conn` (an autocommit connection)."""
    with conn.transaction():
        conn.execute("SELECT set_config('TimeZone', 'UTC', true)")
        # Bounded wait for a concurrent load of the same table; LockNotAvailable -> exit 5.
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout * 1000)}ms"]
        )
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(table)])
        created = ensure_table(conn, table)
        conn.execute(_stage_sql())
        with conn.cursor() as cursor:
            with cursor.copy(_copy_sql(batch.columns)) as copy, batch.path.open("rb") as source:
                while block := source.read(COPY_BLOCK_BYTES):
                    copy.write(block)
            copied = cursor.rowcount
        log.info("copied %d staged rows from %s", copied, batch.path)
        if copied <= 0:
            raise NothingToDo(f"staged batch {batch.path} has no rows")
        rows, inserted, updated = conn.execute(upsert_sql(table), {"run_id": run_id}).fetchone()
        if rows != copied:
            log.warning("%d staged rows repeat a date; the last of each wins", copied - rows)
        table_rows = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(identifier(table))
        ).fetchone()[0]
    return LoadResult(
        rows=rows,
        inserted=inserted,
        updated=updated,
        unchanged=rows - inserted - updated,
        table_rows=table_rows,
        table_created=created,
    )
