"""`apod-load provenance --date D`: where the table's row for a date came from.

Read-only, as the loader role may: the run that last wrote the row's content, when its
entry was extracted and when it was loaded (the provenance columns the CSV leaves out).
"""

from psycopg import sql

from apod_load.names import TableName
from apod_load.tables import identifier


def row_provenance(conn, table: TableName, day: str) -> dict | None:
    """run_id, extracted_at and loaded_at (ISO 8601) of the row for `day`, or None."""
    query = sql.SQL("SELECT run_id, extracted_at, loaded_at FROM {} WHERE date = %s").format(
        identifier(table)
    )
    row = conn.execute(query, [day]).fetchone()
    if row is None:
        return None
    run_id, extracted_at, loaded_at = row
    return {
        "run_id": run_id,
        "extracted_at": extracted_at.isoformat(),
        "loaded_at": loaded_at.isoformat(),
    }
