"""apod_etl on a compose stack of the bench's own (its project name, ports, volumes and
network; removed at the end), timed by Airflow itself (the REST API's timestamps):

- one-day runs, start to end; the first after the stack came up is reported apart;
- one range run of a week against Airflow's own Backfill of a week (`POST /api/v2/backfills`,
  with the REST API's default max_active_runs and with the UI's), from the moment each was
  asked for to its last run's end.

Every run asks for days the stack does not hold yet: the backfills and the range run take
three weeks of the archive before the days of the one-day runs (a second pass over the
same week would only find the answers it versioned already, and stop at extract)."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import airflow_api
import deploy_env

from apod_tools.bench_report import Report, Target
from apod_tools.project import REPO

SECTION = "compose (a stack of the bench's own)"
DAG_ID = "apod_etl"
RUNS_AFTER_FIRST = int(os.environ.get("APOD_BENCH_COMPOSE_RUNS", "5"))
ISSUE_24 = "issue 24"
WEEK = 7
RUN_TIMEOUT = 1200
# The backfills measured: (what sets their max_active_runs, the value; None: the REST
# API's default, as `POST /api/v2/backfills` without it).
BACKFILLS = (("the REST API's default", None), ("the UI's default", 1))


class Stack:
    def __init__(self, env_file: Path) -> None:
        self.env_file = env_file

    def script(self, name: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(REPO / "scripts" / name), *args],
            cwd=REPO,
            env=deploy_env.stack_environ(self.env_file),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def api(self) -> airflow_api.Airflow:
        env = deploy_env.read_env(self.env_file)
        url = f"http://127.0.0.1:{env['APOD_UI_PORT']}"
        return airflow_api.Airflow(url, "admin", env["AIRFLOW_ADMIN_PASSWORD"])

    def loaded_dates(self) -> set[str]:
        query = "SELECT coalesce(json_agg(date::text), '[]') FROM apod.apod_entries"
        result = subprocess.run(
            ["bash", "-c", '. scripts/compose-lib.sh && compose "$@"', "compose", "exec", "-T",
             "postgres", "psql", "-U", "postgres", "-d", "apod", "-Atc", query],
            cwd=REPO, env=deploy_env.stack_environ(self.env_file),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        # No table yet before the first run: nothing is loaded.
        return set(json.loads(result.stdout)) if result.returncode == 0 else set()


def archive_dates(archive: Path) -> list[str]:
    dates = []
    for path in archive.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        dates += list(data) if isinstance(data, dict) else [e["date"] for e in data]
    return sorted(dates)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def timed_run(stack: Stack, day: str, last: str | None = None) -> dict:
    """One run for `day` (..`last`), followed to its end; Airflow's own timestamps of it."""
    api = stack.api()
    run = api.start_run(DAG_ID, day, last or day, 300)
    summary = api.follow(DAG_ID, run["dag_run_id"], RUN_TIMEOUT)
    if summary["state"] != "success":
        raise RuntimeError(f"compose run for {day} ended {summary['state']}: {summary['tasks']}")
    detail = api.call(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{airflow_api.quote(run['dag_run_id'])}"
    )
    queued, start, end = (parse_time(detail[k]) for k in ("queued_at", "start_date", "end_date"))
    return {
        "queued": (start - queued).total_seconds(),
        "run": (end - start).total_seconds(),
        "asked": (end - queued).total_seconds(),  # from the request to the end
    }


def weeks_before(day: str, count: int) -> list[tuple[str, str]]:
    """`count` weeks of consecutive days, the newest ending the day before `day`."""
    end = dt.date.fromisoformat(day) - dt.timedelta(days=1)
    weeks = []
    for _ in range(count):
        start = end - dt.timedelta(days=WEEK - 1)
        weeks.append((start.isoformat(), end.isoformat()))
        end = start - dt.timedelta(days=1)
    return weeks


def timed_backfill(stack: Stack, week: tuple[str, str], max_active_runs: int | None) -> dict:
    """Airflow's own Backfill of `week`, followed until all its runs ended: from its
    creation to the last run's end, and how its runs went."""
    api = stack.api()
    backfill = api.create_backfill(DAG_ID, *week, max_active_runs)
    runs = api.backfill_runs(DAG_ID, *week, WEEK, RUN_TIMEOUT)
    failed = [run["dag_run_id"] for run in runs if run["state"] != "success"]
    if failed:
        raise RuntimeError(f"backfill {week[0]}..{week[1]}: runs {failed} failed")
    # Only one backfill of a DAG may be active: the next waits for this one to be closed.
    api.wait_backfill_completed(backfill["id"], 300)
    last_end = max(parse_time(run["end_date"]) for run in runs)
    return {
        "asked": (last_end - parse_time(backfill["created_at"])).total_seconds(),
        "runs": len(runs),
        "max_active_runs": backfill["max_active_runs"],
    }


def bench_backfill(report: Report, stack: Stack, before: str) -> None:
    """A week as one range run, then as Airflow's Backfill, each on days new to the stack."""
    range_week, *backfill_weeks = weeks_before(before, 1 + len(BACKFILLS))
    ranged = timed_run(stack, *range_week)["asked"]
    report.add(SECTION, "one range run of a week: asked to end", ranged, "s",
               f"{range_week[0]}..{range_week[1]}", digits=1)  # fmt: skip
    for (whose, max_active_runs), week in zip(BACKFILLS, backfill_weeks, strict=True):
        backfill = timed_backfill(stack, week, max_active_runs)
        label = f"Backfill of a week, max_active_runs {backfill['max_active_runs']} ({whose})"
        report.add(SECTION, f"{label}: asked to end", backfill["asked"], "s",
                   f"{week[0]}..{week[1]}, {backfill['runs']} runs", digits=1)  # fmt: skip
        report.add(SECTION, f"{label} / one range run of a week", backfill["asked"] / ranged,
                   "x", target=Target("<=", 2, ISSUE_24))  # fmt: skip


def bench_compose(report: Report, archive: Path, scratch: Path) -> None:
    env_file = scratch / "bench-stack.env"
    settings = deploy_env.new_stack(env_file, "apod-bench", APOD_FIXTURES_DIR=str(archive))
    stack = Stack(env_file)
    print(f"compose: stack {settings['APOD_COMPOSE_PROJECT']} (its own; removed after)", flush=True)
    try:
        started = time.monotonic()
        up = stack.script("compose-up.sh", "--offline", "--no-build")
        if up.returncode != 0:
            raise RuntimeError(f"compose-up.sh failed ({up.returncode}): {up.stderr[-3000:]}")
        report.add(SECTION, "stack up to healthy, DAG parsed (images built)",
                   time.monotonic() - started, "s", digits=1)  # fmt: skip
        available = archive_dates(archive)
        timings = []
        for _ in range(1 + RUNS_AFTER_FIRST):
            loaded = stack.loaded_dates()
            # The newest archive day the stack has not loaded: fresh work for every run.
            day = next(d for d in reversed(available) if d not in loaded)
            timings.append(timed_run(stack, day) | {"day": day})
        first, rest = timings[0], timings[1:]
        report.add(SECTION, "first run after the stack came up: start to end", first["run"],
                   "s", f"{first['day']}; queued {first['queued']:.1f} s before it started",
                   digits=1)  # fmt: skip
        runs = [t["run"] for t in rest]
        queued = [t["queued"] for t in rest]
        report.add(SECTION, f"later one-day runs: start to end (median of {len(rest)})",
                   statistics.median(runs), "s",
                   f"min {min(runs):.1f} s, max {max(runs):.1f} s; days "
                   f"{rest[-1]['day']}..{rest[0]['day']}", target=Target("<", 6, ISSUE_24),
                   digits=1)  # fmt: skip
        report.add(SECTION, "later one-day runs: queued to start (median)",
                   statistics.median(queued), "s", digits=1)  # fmt: skip
        bench_backfill(report, stack, min(t["day"] for t in timings))
        report.notes.append(
            "**Compose** runs are timed by Airflow (the run's start_date to end_date, from "
            "the REST API), each for a day the stack had not loaded, on a stack the bench "
            "started for itself with the offline test server serving the archive. A week "
            "as one range run and as Airflow's Backfill are timed from the request (the "
            "run's queued_at, the backfill's created_at) to the last run's end_date, each "
            "on a week the stack had not loaded."
        )
    finally:
        down = stack.script("compose-down.sh", "--volumes", timeout=600)
        if down.returncode != 0:
            print(f"compose-down.sh failed: {down.stderr[-2000:]}", flush=True)
