"""CLI wiring: arguments and environment in, one summary dict out.

The CLI boundary: the commands (and psycopg, pandas with them) are imported only once the
arguments are good, so that `--help` and usage errors stay fast.
"""

import argparse

from apod_common import layout, runner
from apod_load.names import DEFAULT_LOADER_ROLE, DEFAULT_TABLE, parse_role, parse_table

DESCRIPTION = """\
Load a staged APOD batch (/data/staging/<run>/apod.csv, written by transform) into its
stores. `postgres` upserts it into a table in one transaction; `csv` merges it into the
dataset CSV; `init-db` (run once, as the database admin) creates the table and a
least-privileged loader role; `provenance` prints where the row of a date came from.
"""

DATABASE_ENV = """\
database (postgres, init-db):
  APOD_DATABASE_URL    postgresql://user:password@host:port/db (secret; never printed)
  APOD_DATABASE_URL_FILE  file holding that URL (instead of APOD_DATABASE_URL)
  PGHOST, PGPORT, PGUSER, PGPASSWORD, PGPASSFILE, PGDATABASE, PGSSLMODE ...
                       libpq's own variables, used when no URL is given (or to complete it)
"""

EXIT_CODES = """\
exit codes: 0 done, 99 nothing to do (empty batch), 2 bad arguments, 3 staged batch
missing or rejected (the table is left as it was), 4 refused by Postgres (bad
credentials, no permission), 5 Postgres unreachable or lock timeout (retry), 1 unexpected.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = runner.parser("load", DESCRIPTION, EXIT_CODES)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def batch_arguments(sub: argparse.ArgumentParser) -> None:
        runner.add_run_id(sub, "the run whose staged batch to load")
        sub.add_argument("--data-dir", help="the shared data directory ($APOD_DATA_DIR, /data)")
        runner.add_lock_timeout(sub, 600.0, "a concurrent load of the same store")

    postgres = commands.add_parser(
        "postgres",
        help="upsert the batch into Postgres",
        description="Upsert the staged batch into a Postgres table in one transaction:\n"
        "COPY into a temporary table, then INSERT ... ON CONFLICT (date) DO UPDATE of the\n"
        "rows whose content changed; unchanged rows are not touched. Creates the schema\n"
        "and table when missing (and allowed to).",
        epilog=DATABASE_ENV + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch_arguments(postgres)
    postgres.add_argument(
        "--table",
        type=parse_table,
        default=parse_table(DEFAULT_TABLE),
        help=f"schema.table to load into ({DEFAULT_TABLE})",
    )

    csv = commands.add_parser(
        "csv",
        help="merge the batch into the dataset CSV",
        description="Merge the staged batch's content columns into the dataset CSV: one\n"
        "row per date (the batch wins), sorted by date, written atomically, and not\n"
        "rewritten at all when its bytes would not change.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch_arguments(csv)
    csv.add_argument("--output", help=f"the dataset CSV (<data-dir>/{layout.CSV_NAME})")

    init = commands.add_parser(
        "init-db",
        help="create the table and the least-privileged loader role (as the admin)",
        description="Run as the database admin. Create schema and table, create the loader\n"
        "login role when missing, and grant it exactly what `postgres` needs: CONNECT and\n"
        "TEMPORARY on the database, USAGE on the schema, SELECT/INSERT/UPDATE on the\n"
        "table. Idempotent.",
        epilog=DATABASE_ENV + "  APOD_LOADER_PASSWORD (or APOD_LOADER_PASSWORD_FILE)\n"
        "                       the loader's password: required to create the role, and\n"
        "                       set again on every run when given\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "--loader-role",
        type=parse_role,
        default=DEFAULT_LOADER_ROLE,
        help=f"the login role to create and grant ({DEFAULT_LOADER_ROLE})",
    )
    init.add_argument(
        "--table",
        type=parse_table,
        default=parse_table(DEFAULT_TABLE),
        help=f"schema.table the loader loads into ({DEFAULT_TABLE})",
    )
    provenance = commands.add_parser(
        "provenance",
        help="print where the table's row for a date came from (read-only)",
        description="Print the provenance of the row for one date: the run that last\n"
        "wrote its content (run_id), when it was extracted and when it was loaded.\n"
        "Read-only: the loader role may run it.",
        epilog=DATABASE_ENV + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    provenance.add_argument("--date", type=runner.iso_date, required=True, help="YYYY-MM-DD")
    provenance.add_argument(
        "--table",
        type=parse_table,
        default=parse_table(DEFAULT_TABLE),
        help=f"schema.table to read ({DEFAULT_TABLE})",
    )
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)

    from apod_load.commands import COMMANDS

    return COMMANDS[args.command](args)


def cli() -> None:
    raise SystemExit(runner.run("load", main))
