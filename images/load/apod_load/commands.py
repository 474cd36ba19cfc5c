"""The commands behind the CLI boundary: parsed arguments in, summary dict out.

Each command imports what it works with when it runs: `csv` needs pandas and no psycopg,
`postgres` psycopg and no pandas, and every task would otherwise pay both imports.
"""

import argparse
import logging
from pathlib import Path

from apod_common import exit_codes, layout, settings, staging
from apod_common.errors import StepError

log = logging.getLogger("load")


def load_postgres(args: argparse.Namespace) -> dict:
    from apod_load import database, upsert

    target = database.target_from_env()
    run_id = settings.run_id(args.run_id)
    batch = staging.locate(settings.data_dir(args.data_dir), run_id)
    log.info("loading %s into %s", batch.path, args.table)
    with database.session(target, f"loading into {args.table}") as conn:
        result = upsert.load(conn, batch, args.table, run_id, args.lock_timeout)
    log.info(
        "%s: %d rows: %d inserted, %d updated, %d unchanged; table holds %d",
        args.table,
        result.rows,
        result.inserted,
        result.updated,
        result.unchanged,
        result.table_rows,
    )
    return {
        "run_id": run_id,
        "table": str(args.table),
        "database": str(target),
        "rows": result.rows,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "table_rows": result.table_rows,
        "table_created": result.table_created,
    }


def load_csv(args: argparse.Namespace) -> dict:
    from apod_load import dataset

    run_id = settings.run_id(args.run_id)
    data_dir = settings.data_dir(args.data_dir)
    batch = staging.locate(data_dir, run_id)
    output = Path(args.output) if args.output else layout.dataset_csv(data_dir)
    log.info("merging %s into %s", batch.path, output)
    summary = dataset.load_csv(batch, output, args.lock_timeout)
    return {"run_id": run_id, **summary}


def init_db(args: argparse.Namespace) -> dict:
    from apod_load import database, grants

    target = database.target_from_env()
    password = settings.secret("APOD_LOADER_PASSWORD")
    with database.session(target, "initialising the database") as conn:
        summary = grants.init_db(conn, args.table, args.loader_role, password)
    return {"database": str(target), **summary}


def provenance(args: argparse.Namespace) -> dict:
    from apod_load import database
    from apod_load.provenance import row_provenance

    target = database.target_from_env()
    with database.session(target, f"reading {args.table}") as conn:
        found = row_provenance(conn, args.table, args.date)
    if found is None:
        raise StepError(f"{args.date} is not in {args.table}", exit_codes.BAD_INPUT)
    return {"database": str(target), "table": str(args.table), "date": args.date, **found}


COMMANDS = {
    "postgres": load_postgres,
    "csv": load_csv,
    "init-db": init_db,
    "provenance": provenance,
}
