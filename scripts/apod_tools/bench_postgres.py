"""The Postgres load measured several ways on one server: the project's upsert (as a
library call, split into its stage and merge by EXPLAIN, and end to end through the
apod-load image), a plain COPY into the durable indexed table, a bare COPY into an
unlogged unindexed one, and a row-by-row loop. Needs psycopg and the load packages."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

from apod_common import layout
from apod_common.schema import STAGED_COLUMNS
from apod_common.staging import StagedBatch
from apod_load.names import DEFAULT_TABLE, parse_table
from apod_load.tables import ensure_table
from apod_load.upsert import COPY_BLOCK_BYTES, _copy_sql, _stage_sql, load, upsert_sql
from apod_pipeline.by_hand import Placement
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, RUN_ID
from apod_tools.bench_report import Report, Target
from apod_tools.docker import docker_volume
from apod_tools.postgres import Database, fresh_database
from apod_tools.project import image
from apod_tools.runner import Runner

SECTION = "Postgres load"
ROWS = int(os.environ.get("APOD_BENCH_ROWS", "100000"))
ROW_LOOP_SECONDS = float(os.environ.get("APOD_BENCH_ROW_LOOP_SECONDS", "60"))
SETTINGS_SHOWN = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
                  "wal_level", "shared_buffers", "work_mem")  # fmt: skip
ISSUE_6 = "issue 6"
TABLE = parse_table(DEFAULT_TABLE)
WORDS = ("nebula", "galaxy", "comet", "aurora", "eclipse", "planet", "cluster", "dust", "star",
         "light", "orbit", "telescope", "spiral", "supernova", "moon", "horizon")  # fmt: skip


def synthetic_batch(path: Path, rows: int) -> None:
    """A staged batch of `rows` distinct dates from 1700 on, none in the real archive."""
    first = dt.date(1700, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(STAGED_COLUMNS)
        for i in range(rows):
            explanation = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(150))[:1000]
            writer.writerow([
                (first + dt.timedelta(days=i)).isoformat(), f'Synthetic entry {i}, "quoted"',
                explanation, "image", f"https://apod.example/image/{i}.jpg",
                f"https://apod.example/image/{i}_hd.jpg", "", f"Author {i % 97}", "v1",
                "bench", "2026-01-01T00:00:00+00:00",
            ])  # fmt: skip


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def server_settings(db: Database) -> dict[str, str]:
    with psycopg.connect(db.url) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SETTINGS_SHOWN}


def copy_file(conn, statement, path: Path) -> None:
    with conn.cursor() as cursor, cursor.copy(statement) as copy, path.open("rb") as source:
        while block := source.read(COPY_BLOCK_BYTES):
            copy.write(block)


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def explained_upsert(db: Database, path: Path, work_mem: str | None = None) -> dict:
    """The project's load, statement by statement (its own SQL), with the merge under
    EXPLAIN (ANALYZE, BUFFERS, WAL): where the time goes."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("SELECT set_config('TimeZone', 'UTC', true)")
            if work_mem:
                conn.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
            ensure_table(conn, TABLE)
            conn.execute(_stage_sql())
            _, stage = timed(copy_file, conn, _copy_sql(STAGED_COLUMNS), path)
            explain = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) ") + upsert_sql(TABLE)
            (plan,), merge_wall = timed(
                lambda: conn.execute(explain, {"run_id": "bench"}).fetchone()[0]
            )
            commit_from = time.perf_counter()
        commit = time.perf_counter() - commit_from
        total = time.perf_counter() - started
    nodes = list(plan_nodes(plan["Plan"]))
    sort = next(n for n in nodes if n["Node Type"] == "Sort")
    insert = next(n for n in nodes if n["Node Type"] == "ModifyTable")
    below_insert = sum(child["Actual Total Time"] for child in insert.get("Plans", []))
    return {
        "stage": stage,
        "merge": plan["Execution Time"] / 1000,
        "merge_wall": merge_wall,
        "sort": sort["Actual Total Time"] / 1000,
        "sort_method": sort.get("Sort Method", "?"),
        "sort_space": f"{sort.get('Sort Space Used', 0):,} kB, {sort.get('Sort Space Type')}",
        "sort_kb": sort.get("Sort Space Used", 0),
        "sort_on_disk": sort.get("Sort Space Type") == "Disk",
        "insert": (insert["Actual Total Time"] - below_insert) / 1000,
        "wal_mb": insert.get("WAL Bytes", 0) / 1e6,
        "commit": commit,
        "total": total,
    }


def row_upsert_sql(table: str) -> sql.Composed:
    """The same upsert as the project's, one row at a time."""
    names = [sql.Identifier(c) for c in STAGED_COLUMNS]
    updates = [sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in names[1:]]
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (date) DO UPDATE SET {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(names),
        sql.SQL(", ").join([sql.Placeholder()] * len(names)),
        sql.SQL(", ").join(updates),
    )


def row_loop(db: Database, path: Path) -> tuple[int, float]:
    """Rows upserted one per transaction within ROW_LOOP_SECONDS, and the seconds taken."""
    with psycopg.connect(db.url) as conn:
        conn.execute("CREATE TABLE row_loop (LIKE apod.apod_entries INCLUDING ALL)")
        conn.commit()
        statement = row_upsert_sql("row_loop")
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            done, start = 0, time.perf_counter()
            for row in reader:
                conn.execute(statement, [value or None for value in row])
                conn.commit()  # one day per run: every row its own transaction
                done += 1
                if time.perf_counter() - start > ROW_LOOP_SECONDS:
                    break
            return done, time.perf_counter() - start


def plain_copy(db: Database, path: Path, table: str, create: str) -> float:
    """Seconds for one COPY of the batch into a new table, committed."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(sql.SQL(create).format(sql.Identifier(table)))
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, STAGED_COLUMNS))
        )
        return timed(copy_file, conn, statement, path)[1]


def image_load(db: Database, path: Path) -> tuple[float, dict]:
    """`apod-load postgres` through its image, as the pipeline runs it: the wall time of
    `docker run` and the step's summary."""
    run_id = "bench-image-load"
    with docker_volume("apod-bench-load") as volume, path.open("rb") as batch:
        staged = str(Path(DATA.path) / layout.staged_batch(Path("."), run_id))
        subprocess.run(
            ["docker", "run", "-i", "--rm", "-v", f"{volume}:{DATA.path}", "--entrypoint", "sh",
             image("load"), "-c", 'mkdir -p "$(dirname "$0")" && cat > "$0"', staged],
            stdin=batch, check=True, capture_output=True,
        )  # fmt: skip
        runner = Runner(
            Settings(),
            Placement(volumes={DATA.name: volume, DVC_REMOTE.name: None}),
            {"APOD_DATABASE_URL": db.url},
        )
        run = runner.run("load_postgres", {RUN_ID: run_id}).expect()
    return run.seconds, run.summary


def bench_postgres(report: Report, scratch: Path) -> None:
    print(f"Postgres load of {ROWS:,} synthetic rows", flush=True)
    path = scratch / "apod.csv"
    synthetic_batch(path, ROWS)
    add = report.add
    add(SECTION, "synthetic batch", path.stat().st_size / 1e6, "MB", f"{ROWS:,} rows", digits=0)
    with fresh_database("apod_bench_load") as db:
        for name, value in server_settings(db).items():
            report.fact(f"Postgres {name}", value)
        with psycopg.connect(db.url, autocommit=True) as conn:
            result, upsert = timed(load, conn, StagedBatch(path, STAGED_COLUMNS), TABLE, "b", 60)
            _, again = timed(load, conn, StagedBatch(path, STAGED_COLUMNS), TABLE, "b", 60)
        if result.inserted != ROWS:
            raise RuntimeError(f"the upsert inserted {result.inserted} of {ROWS} rows")
        durable = plain_copy(db, path, "durable_copy", "CREATE TABLE {} (LIKE apod.apod_entries "
                             "INCLUDING ALL)")  # fmt: skip
        bare = plain_copy(db, path, "bare_copy", "CREATE UNLOGGED TABLE {} (LIKE "
                          "apod.apod_entries INCLUDING DEFAULTS)")  # fmt: skip
        looped, loop_seconds = row_loop(db, path)
    with fresh_database("apod_bench_split") as db:
        split = explained_upsert(db, path)
    # Room for the dedupe sort in memory: an in-memory sort needs more than its spill.
    work_mem = f"{max(64, split['sort_kb'] * 4 // 1024)}MB"
    with fresh_database("apod_bench_sort") as db:
        in_memory = explained_upsert(db, path, work_mem)
    with fresh_database("apod_bench_image") as db:
        through_image, summary = image_load(db, path)

    upsert_rate, loop_rate = ROWS / upsert, looped / loop_seconds
    add(SECTION, "project upsert (library call: COPY to stage + INSERT ON CONFLICT)",
        upsert_rate, "rows/s", f"{upsert:.2f} s, one transaction", digits=0)  # fmt: skip
    add(SECTION, "project upsert, same batch again (nothing changes)", again, "s")
    add(SECTION, "apod-load postgres through its image, docker run wall", through_image, "s",
        f"{summary.get('inserted')} inserted")  # fmt: skip
    add(SECTION, "row-by-row INSERT ON CONFLICT, commit per row", loop_rate, "rows/s",
        f"{looped:,} rows in {loop_seconds:.1f} s"
        + ("" if looped == ROWS else " (time-boxed by APOD_BENCH_ROW_LOOP_SECONDS)"),
        digits=0)  # fmt: skip
    add(SECTION, "plain COPY into the durable, indexed table", ROWS / durable, "rows/s",
        f"{durable:.2f} s", digits=0)  # fmt: skip
    add(SECTION, "bare COPY into an unlogged, unindexed table", ROWS / bare, "rows/s",
        f"{bare:.2f} s", digits=0)  # fmt: skip
    add(SECTION, "upsert / row-by-row (speed)", upsert_rate / loop_rate, "x",
        target=Target(">=", 5, ISSUE_6), digits=1)  # fmt: skip
    add(SECTION, "upsert time / bare COPY time", upsert / bare, "x",
        target=Target("<=", 1.5, ISSUE_6))  # fmt: skip
    add(SECTION, "upsert time / durable COPY time", upsert / durable, "x")
    add(SECTION, "EXPLAIN split: stage (COPY into the temp table)", split["stage"], "s")
    add(SECTION, "EXPLAIN split: merge (INSERT ... ON CONFLICT), execution", split["merge"], "s")
    add(SECTION, "EXPLAIN split: merge, of which the dedupe sort", split["sort"], "s",
        f"{split['sort_method']}, {split['sort_space']}")  # fmt: skip
    add(SECTION, "EXPLAIN split: merge, of which the insert (heap, index)", split["insert"], "s",
        f"{split['wal_mb']:.0f} MB of WAL")  # fmt: skip
    add(SECTION, "EXPLAIN split: commit (WAL flush)", split["commit"], "s")
    add(SECTION, f"merge with work_mem {work_mem}", in_memory["merge"], "s",
        f"sort: {in_memory['sort_method']}, {in_memory['sort_space']}")  # fmt: skip

    stage_share = split["stage"] / split["total"] * 100
    change = (in_memory["merge"] - split["merge"]) / split["merge"] * 100
    report.notes += [
        f"**Upsert against the bare `COPY`** ({upsert / bare:.2f}x the time; its target and "
        f"verdict are in the table). Replayed statement by "
        f"statement, the load spent {split['stage']:.2f} s staging (a `COPY` into the temp "
        f"table, {stage_share:.0f} % of its {split['total']:.2f} s), {split['merge']:.2f} s in "
        f"the merge ({split['sort']:.2f} s of it the dedupe sort, {split['sort_method']}, "
        f"{split['sort_space']}; {split['insert']:.2f} s inserting into the heap and the unique "
        f"index, {split['wal_mb']:.0f} MB of WAL) and {split['commit']:.2f} s committing. "
        f"The bare `COPY` writes once, with no index and no WAL.",
        f"**A durable load of this table costs** {durable:.2f} s with a plain `COPY` into it "
        f"(indexed, logged; no stage, no dedupe, no upsert): {durable / bare:.2f}x the bare "
        f"`COPY`, and the project's upsert takes {upsert / durable:.2f}x that.",
        f"**Sort memory.** With work_mem {work_mem} the dedupe sort ran as "
        f"{in_memory['sort_method']} ({in_memory['sort_space']}) and the merge took "
        f"{in_memory['merge']:.2f} s, {change:+.0f} % against the default's "
        f"{split['merge']:.2f} s.",
        f"**Through the image** `apod-load postgres` took {through_image:.2f} s from `docker "
        f"run` to exit, {through_image - upsert:+.2f} s against the library call (container "
        f"start, imports, connecting).",
        f"**Row by row** commits every row (one day per run, as a daily schedule alone would "
        f"load the archive); time-boxed at {ROW_LOOP_SECONDS:.0f} s (APOD_BENCH_ROW_LOOP_SECONDS).",
    ]
