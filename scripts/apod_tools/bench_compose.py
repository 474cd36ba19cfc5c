"""One-day runs of apod_etl on a compose stack of the bench's own (its project name,
ports, volumes and network; removed at the end), timed by Airflow itself: each run's
start_date/end_date from the REST API. The first run after the stack came up is
reported apart. Every run asks for a day the stack's table does not hold yet."""

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

from apod_tools.bench_report import Report
from apod_tools.project import REPO

SECTION = "compose (a stack of the bench's own)"
DAG_ID = "apod_etl"
RUNS_AFTER_FIRST = int(os.environ.get("APOD_BENCH_COMPOSE_RUNS", "5"))


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


def timed_run(stack: Stack, day: str) -> dict:
    """One run for `day`, followed to its end; Airflow's own timestamps of it."""
    api = stack.api()
    run = api.start_run(DAG_ID, day, day, 300)
    summary = api.follow(DAG_ID, run["dag_run_id"], 1200)
    if summary["state"] != "success":
        raise RuntimeError(f"compose run for {day} ended {summary['state']}: {summary['tasks']}")
    detail = api.call(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{airflow_api.quote(run['dag_run_id'])}"
    )
    queued, start, end = (parse_time(detail[k]) for k in ("queued_at", "start_date", "end_date"))
    return {"queued": (start - queued).total_seconds(), "run": (end - start).total_seconds()}


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
                   f"{rest[-1]['day']}..{rest[0]['day']}", digits=1)  # fmt: skip
        report.add(SECTION, "later one-day runs: queued to start (median)",
                   statistics.median(queued), "s", digits=1)  # fmt: skip
        report.notes.append(
            "**Compose** runs are timed by Airflow (the run's start_date to end_date, from "
            "the REST API), each for a day the stack had not loaded, on a stack the bench "
            "started for itself with the offline test server serving the archive."
        )
    finally:
        down = stack.script("compose-down.sh", "--volumes", timeout=600)
        if down.returncode != 0:
            print(f"compose-down.sh failed: {down.stderr[-2000:]}", flush=True)
