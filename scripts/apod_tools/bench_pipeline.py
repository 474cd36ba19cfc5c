"""The whole APOD archive by hand (the step images with `docker run`, as `make steps`),
against the repository's test server: answering at once, and under the latency model of
the real service (a cost per day answered, a gateway that cuts long answers)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from apod_pipeline.by_hand import Placement
from apod_pipeline.settings import Settings
from apod_pipeline.steps import DATA, DVC_REMOTE, END, RUN_ID, START
from apod_tools.bench_report import Report, Target
from apod_tools.docker import docker_volume, volume_git
from apod_tools.postgres import fresh_database
from apod_tools.runner import Runner
from apod_tools.testserver import apod_test_server

FIRST_DATE = "1995-06-16"
ARCHIVE = "full archive by hand"
LATENCY = "full archive under the latency model"
# The model of issue 12: 20 ms per day answered, a gateway cut after 10 s.
LATENCY_SWITCHES = ("--day-cost", "0.02", "--gateway-timeout", "10")
ISSUE_6, ISSUE_12, ISSUE_24 = "issue 6", "issue 12", "issue 24"


def last_date() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def runner(server, data: str, remote: str | None, db_url: str | None, **settings) -> Runner:
    return Runner(
        Settings(api_url=server.url, **settings),
        Placement(volumes={DATA.name: data, DVC_REMOTE.name: remote}),
        {"APOD_DATABASE_URL": db_url} if db_url else {},
    )


def pipeline(steps: Runner, run_id: str) -> tuple[float, dict]:
    """Every step once, as `make steps` runs them; the wall time and the runs."""
    started = time.perf_counter()
    runs = steps.pipeline({START: FIRST_DATE, END: last_date(), RUN_ID: run_id})
    wall = time.perf_counter() - started
    for name, run in runs.items():
        if not run.ok:
            raise RuntimeError(f"{name} failed ({run.returncode}): {run.stderr[-1500:]}")
    return wall, runs


def commits(volume: str) -> int:
    return int(volume_git(volume, "rev-list", "--count", "HEAD").strip())


def bench_archive(report: Report, archive: Path) -> None:
    print(f"{ARCHIVE}: {FIRST_DATE}..{last_date()} from {archive}", flush=True)
    add = report.add
    with (
        apod_test_server(archive) as server,
        fresh_database("apod_bench") as db,
        docker_volume("apod-bench-data") as data,
        docker_volume("apod-bench-dvc") as remote,
    ):
        steps = runner(server, data, remote, db.url)
        wall, runs = pipeline(steps, "bench-1")
        rows = db.query("SELECT count(*) FROM apod.apod_entries")[0][0]
        for name, run in runs.items():
            add(ARCHIVE, f"step {name}", run.seconds, "s")
        add(ARCHIVE, "four steps, wall", wall, "s", target=Target("<", 6, ISSUE_24))
        add(ARCHIVE, "API requests", runs["extract"].summary["requests"],
            note=f"{runs['extract'].summary['chunks']} chunks",
            target=Target("<=", 400, ISSUE_6), digits=0)  # fmt: skip
        add(ARCHIVE, "entries extracted", runs["extract"].summary["entries"], digits=0)
        add(ARCHIVE, "rows in Postgres", rows, digits=0)
        add(ARCHIVE, "rows in the CSV", runs["load_csv"].summary.get("rows"), digits=0)
        before = commits(data)
        loaded = db.query("SELECT max(loaded_at) FROM apod.apod_entries")[0][0]
        wall2, runs2 = pipeline(steps, "bench-2")
        rows2 = db.query("SELECT count(*) FROM apod.apod_entries")[0][0]
        rewritten = db.query("SELECT count(*) FROM apod.apod_entries WHERE loaded_at > %s", loaded)[
            0
        ][0]
        add(ARCHIVE, "re-run of the whole archive (nothing changed), wall", wall2, "s",
            note=f"steps run: {', '.join(runs2)}", target=Target("<", 3, ISSUE_24))  # fmt: skip
        add(ARCHIVE, "re-run: new rows", rows2 - rows, target=Target("<=", 0, ISSUE_6), digits=0)
        add(ARCHIVE, "re-run: rows written again", rewritten, digits=0)
        add(ARCHIVE, "re-run: new commits", commits(data) - before,
            note=last_word(runs2), target=Target("<=", 0, ISSUE_6), digits=0)  # fmt: skip


def last_word(runs: dict) -> str:
    """The last step a run ran, its exit code and, when it stopped early, why."""
    name, run = list(runs.items())[-1]
    reason = run.summary.get("reason", "")
    return f"{name} exit code {run.returncode}" + (f": {reason}" if reason else "")


def extract_alone(server, concurrency: int | None) -> tuple[float, dict, dict]:
    """extract over the whole archive on a fresh volume: wall, its summary, server stats."""
    server.control("reset")
    with docker_volume("apod-bench-latency") as data:
        steps = runner(server, data, None, None, extract_concurrency=concurrency)
        values = {START: FIRST_DATE, END: last_date(), RUN_ID: "bench-latency"}
        run = steps.run("extract", values).expect()
    return run.seconds, run.summary, server.stats()


def bench_latency(report: Report, archive: Path) -> None:
    from apod_extract.extract import DEFAULT_CONCURRENCY

    print(f"{LATENCY}: test server {' '.join(LATENCY_SWITCHES)}", flush=True)
    add = report.add
    with apod_test_server(archive, *LATENCY_SWITCHES) as server:
        walls = {}
        for concurrency, label in ((1, "1"), (None, f"{DEFAULT_CONCURRENCY} (the default)")):
            wall, summary, stats = extract_alone(server, concurrency)
            walls[label] = wall
            add(LATENCY, f"extract alone, concurrency {label}: wall", wall, "s")
            add(LATENCY, f"extract alone, concurrency {label}: requests", summary["requests"],
                note=f"{summary['chunks']} chunks", digits=0)  # fmt: skip
            add(LATENCY, f"extract alone, concurrency {label}: most in flight",
                stats["max_in_flight"], digits=0)  # fmt: skip
        first, default = walls.values()
        add(LATENCY, "extract alone: concurrency 1 / default (wall)", first / default, "x")

        server.control("reset")
        with (
            fresh_database("apod_bench_latency") as db,
            docker_volume("apod-bench-latency-data") as data,
            docker_volume("apod-bench-latency-dvc") as remote,
        ):
            wall, runs = pipeline(runner(server, data, remote, db.url), "bench-latency")
            stats = server.stats()
            rows = db.query("SELECT count(*) FROM apod.apod_entries")[0][0]
        extract = runs["extract"].summary
        add(LATENCY, "whole pipeline by hand (make steps), default concurrency: wall", wall, "s",
            target=Target("<", 80, ISSUE_12))  # fmt: skip
        add(LATENCY, "whole pipeline: most requests in flight", stats["max_in_flight"],
            target=Target("<=", 8, ISSUE_12), digits=0)  # fmt: skip
        add(LATENCY, "whole pipeline: requests / chunks", extract["requests"] / extract["chunks"],
            "x", f"{extract['requests']} requests, {extract['chunks']} chunks",
            target=Target("<=", 1.1, ISSUE_12))  # fmt: skip
        add(LATENCY, "whole pipeline: rows loaded / entries served", rows / extract["entries"],
            "x", f"{rows} rows", target=Target(">=", 1, ISSUE_12))  # fmt: skip
    report.notes.append(
        f"**Latency model** (test server {' '.join(LATENCY_SWITCHES)}): extract alone took "
        f"{first:.1f} s one request at a time and {default:.1f} s at the default concurrency, "
        f"{first / default:.1f}x faster; the whole pipeline by hand took {wall:.1f} s."
    )


def archive_dir() -> Path | None:
    path = os.environ.get("APOD_ARCHIVE_DIR")
    return Path(path) if path and Path(path).is_dir() else None
