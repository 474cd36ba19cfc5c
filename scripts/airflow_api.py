#!/usr/bin/env python3
"""Drive a deployment's Airflow through its REST API (standard library only).

    airflow_api.py wait DAG                      until the API answers and DAG is parsed
    airflow_api.py unpause DAG
    airflow_api.py run DAG --start S [--end E]   trigger, unpause, follow to the end
    airflow_api.py follow DAG RUN_ID             follow an existing run to the end

`run` starts only the run it asks for. Unpausing a DAG makes the scheduler start the
run of its last complete interval at once (catchup=False); when that run is due, the
manual run is triggered while the DAG is still paused with that interval's logical date,
and the scheduler, finding a run there, skips it and schedules the next interval.

Logs in as AIRFLOW_ADMIN_USERNAME (admin) with AIRFLOW_ADMIN_PASSWORD, from the
environment or else from the env file (.env); the password is never printed. Task
states are printed to stderr as they change; the last stdout line is a JSON summary.

Exit codes: 0 success, 1 the run failed, 2 usage, 3 timed out, 4 login refused,
5 API unreachable or an unexpected answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from deploy_env import value as env_file_value

OK, FAILED, USAGE, TIMEOUT, REFUSED, UNAVAILABLE = 0, 1, 2, 3, 4, 5
FINISHED_RUN_STATES = {"success", "failed"}
LOG_TAIL_LINES = 40


class ApiError(Exception):
    def __init__(self, message: str, code: int = UNAVAILABLE, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status  # the HTTP status of the answer, when there was one


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Airflow:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30):
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ApiError(f"--url must be http(s), got {base_url!r}", USAGE)
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        self._token: str | None = None

    def _request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.base_url}{path}"  # scheme checked in __init__
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token and not path.startswith("/auth/"):
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"{self.base_url} unreachable: {reason}") from None

    def login(self) -> None:
        status, payload = self._request(
            "POST", "/auth/token", {"username": self.username, "password": self._password}
        )
        if status in (401, 403):
            raise ApiError(f"login as {self.username!r} refused (HTTP {status})", REFUSED)
        if status != 201:
            raise ApiError(f"POST /auth/token answered HTTP {status}")
        self._token = json.loads(payload)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """The JSON of a 2xx answer; logs in first when needed."""
        if self._token is None:
            self.login()
        status, payload = self._request(method, path, body)
        if status == 401:  # the token expired during a long follow
            self.login()
            status, payload = self._request(method, path, body)
        if status == 404:
            raise ApiError(f"{method} {path}: not found", FAILED, status)
        if not 200 <= status < 300:
            detail = payload.decode("utf-8", "replace")[:300]
            raise ApiError(f"{method} {path} answered HTTP {status}: {detail}", status=status)
        return json.loads(payload) if payload else {}

    # --- operations ---------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        last_error = "not tried"
        while time.monotonic() < deadline:
            try:
                return self.call("GET", f"/api/v2/dags/{quote(dag_id)}")
            except ApiError as exc:
                if exc.code == REFUSED:
                    raise
                last_error = str(exc)
            time.sleep(3)
        raise ApiError(f"DAG {dag_id} did not appear within {timeout:.0f}s ({last_error})", TIMEOUT)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{quote(dag_id)}", {"is_paused": False})

    def trigger(self, dag_id: str, start: str, end: str, slot: dict | None = None) -> dict:
        """A manual run with conf {start_date, end_date}; with `slot` (due_slot's fields),
        in the logical date and data interval of a scheduled run."""
        body = {"logical_date": None, "conf": {"start_date": start, "end_date": end}}
        if slot:
            body |= slot
            body["note"] = (
                f"Manual run for {start}..{end}, in the slot of the scheduled run of "
                f"{slot['logical_date']}, so that unpausing the DAG started no other run."
            )
        return self.call("POST", f"/api/v2/dags/{quote(dag_id)}/dagRuns", body)

    def start_run(self, dag_id: str, start: str, end: str, timeout: float) -> dict:
        """Trigger one run and make sure it can start, and that nothing else does."""
        dag = self.wait_for_dag(dag_id, timeout)
        if not dag.get("is_paused"):
            return self.trigger(dag_id, start, end)
        run = None
        slot = due_slot(dag, datetime.now(UTC))
        if slot:
            try:
                run = self.trigger(dag_id, start, end, slot)
                log(f"the run takes the slot of the scheduled run of {slot['logical_date']}")
            except ApiError as exc:
                if exc.status != 409:
                    raise
                # A run already holds that logical date: the scheduler skips it anyway.
        if run is None:
            run = self.trigger(dag_id, start, end)
        self.unpause(dag_id)
        log(f"DAG {dag_id} unpaused; its next scheduled run: the interval after that slot")
        return run

    def create_backfill(
        self, dag_id: str, first: str, last: str, max_active_runs: int | None = None
    ) -> dict:
        """Airflow's own Backfill of the days first..last (as the UI and `airflow backfill
        create` make one); without max_active_runs, the REST API's default."""
        body: dict = {
            "dag_id": dag_id,
            "from_date": f"{first}T00:00:00Z",
            "to_date": f"{last}T00:00:00Z",
        }
        if max_active_runs is not None:
            body["max_active_runs"] = max_active_runs
        return self.call("POST", "/api/v2/backfills", body)

    def backfill_runs(
        self, dag_id: str, first: str, last: str, days: int, timeout: float, poll: float = 1.0
    ) -> list[dict]:
        """The backfill runs of the days first..last in date order, once all `days` of them
        have finished."""
        query = (
            f"/api/v2/dags/{quote(dag_id)}/dagRuns?run_type=backfill&limit={days + 1}"
            f"&logical_date_gte={first}T00:00:00Z&logical_date_lte={last}T00:00:00Z"
        )
        deadline = time.monotonic() + timeout
        while True:
            runs = self.call("GET", query)["dag_runs"]
            if len(runs) >= days and all(r["state"] in FINISHED_RUN_STATES for r in runs):
                return sorted(runs, key=lambda run: run["logical_date"])
            if time.monotonic() > deadline:
                states = {r["dag_run_id"]: r["state"] for r in runs}
                raise ApiError(f"backfill {first}..{last} unfinished after {timeout:.0f}s: "
                               f"{states}", TIMEOUT)  # fmt: skip
            time.sleep(poll)

    def wait_backfill_completed(self, backfill_id: int, timeout: float) -> dict:
        """Until the scheduler marks the backfill completed (it looks every 30 s): only one
        backfill of a DAG may be active."""
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.call("GET", f"/api/v2/backfills/{backfill_id}")
            if backfill.get("completed_at"):
                return backfill
            if time.monotonic() > deadline:
                raise ApiError(
                    f"backfill {backfill_id} not completed after {timeout:.0f}s", TIMEOUT
                )
            time.sleep(2)

    def run_state(self, dag_id: str, run_id: str) -> tuple[str, dict[str, str]]:
        run = self.call("GET", f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}")
        instances = self.call(
            "GET", f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances"
        )["task_instances"]
        tasks = {}
        for ti in instances:
            key = (
                ti["task_id"]
                if ti.get("map_index", -1) < 0
                else f"{ti['task_id']}[{ti['map_index']}]"
            )
            tasks[key] = ti.get("state") or "none"
        return run["state"], tasks

    def task_log_tail(self, dag_id: str, run_id: str, task_id: str) -> str:
        run = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}"
        base = f"{run}/taskInstances/{quote(task_id)}"
        try_number = self.call("GET", base).get("try_number") or 1
        content = self.call("GET", f"{base}/logs/{try_number}").get("content") or []
        return "\n".join(format_log_event(event) for event in content[-LOG_TAIL_LINES:])

    def follow(self, dag_id: str, run_id: str, timeout: float, poll: float = 2.0) -> dict:
        started = time.monotonic()
        seen: dict[str, str] = {}
        last_run_state = None
        while True:
            try:
                run_state, tasks = self.run_state(dag_id, run_id)
            except ApiError as exc:
                # A busy API server (one worker, two cores) may miss a poll; the run goes on.
                if exc.status is not None or time.monotonic() - started > timeout:
                    raise
                log(f"  (no answer this time: {exc})")
                time.sleep(poll)
                continue
            if run_state != last_run_state:
                log(f"run {run_id}: {run_state}")
                last_run_state = run_state
            for task, state in tasks.items():
                if seen.get(task) != state:
                    log(f"  {task:<16} {seen.get(task, '-')} -> {state}")
                    seen[task] = state
            if run_state in FINISHED_RUN_STATES:
                break
            if time.monotonic() - started > timeout:
                raise ApiError(f"run {run_id} still {run_state} after {timeout:.0f}s", TIMEOUT)
            time.sleep(poll)
        summary = {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": run_state,
            "tasks": seen,
            "seconds": round(time.monotonic() - started, 1),
        }
        if run_state != "success":
            for task, state in seen.items():
                if state == "failed":
                    log(f"last lines of {task}'s log:")
                    try:
                        print(self.task_log_tail(dag_id, run_id, task), file=sys.stderr)
                    except ApiError as exc:
                        log(f"  (log not available: {exc})")
        return summary


def due_slot(dag: dict, now: datetime) -> dict | None:
    """The logical date and data interval of the scheduled run that unpausing the DAG
    would start at once; None when none is due (or the API did not say)."""
    fields = {
        "logical_date": dag.get("next_dagrun_logical_date"),
        "data_interval_start": dag.get("next_dagrun_data_interval_start"),
        "data_interval_end": dag.get("next_dagrun_data_interval_end"),
    }
    run_after = dag.get("next_dagrun_run_after")
    if not all(fields.values()) or not run_after:
        return None
    if datetime.fromisoformat(run_after.replace("Z", "+00:00")) > now:
        return None
    return fields


def format_log_event(event: dict | str) -> str:
    """One line per structured log event, with the exception when there is one."""
    if not isinstance(event, dict):
        return str(event)
    line = f"  {event.get('level', ''):<7} {event.get('event', '')}"
    for error in event.get("error_detail") or []:
        line += f"\n  {'':<7} {error.get('exc_type')}: {error.get('exc_value')}"
    return line


def quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Drive the compose deployment's Airflow through its REST API.",
        epilog="Exit codes: 0 success, 1 run failed, 2 usage, 3 timeout, 4 login refused, "
        "5 API unreachable.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("AIRFLOW_API_URL", "http://127.0.0.1:8080"),
        help="API server base URL (env AIRFLOW_API_URL; default %(default)s)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".env",
        help="dotenv file holding AIRFLOW_ADMIN_PASSWORD when the environment does not",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds (default 1800)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("wait", "wait until the API answers and the DAG is parsed"),
        ("unpause", "unpause the DAG"),
    ):
        sub.add_parser(name, help=text).add_argument("dag_id")
    run = sub.add_parser("run", help="trigger with conf {start_date, end_date}, unpause, follow")
    run.add_argument("dag_id")
    run.add_argument("--start", required=True, help="YYYY-MM-DD")
    run.add_argument("--end", help="YYYY-MM-DD (default: --start)")
    follow = sub.add_parser("follow", help="follow an existing run to its end")
    follow.add_argument("dag_id")
    follow.add_argument("run_id")
    args = parser.parse_args(argv)
    for name in ("start", "end"):
        value = getattr(args, name, None)
        if value and not _is_date(value):
            parser.error(f"--{name} must be YYYY-MM-DD, got {value!r}")
    return args


def _is_date(text: str) -> bool:
    try:
        time.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return len(text) == 10


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    password = os.environ.get("AIRFLOW_ADMIN_PASSWORD") or env_file_value(
        args.env_file, "AIRFLOW_ADMIN_PASSWORD"
    )
    if not password:
        log(f"no AIRFLOW_ADMIN_PASSWORD in the environment or in {args.env_file}")
        return USAGE
    try:
        api = Airflow(args.url, os.environ.get("AIRFLOW_ADMIN_USERNAME", "admin"), password)
        if args.command == "wait":
            api.wait_for_dag(args.dag_id, args.timeout)
            log(f"DAG {args.dag_id} is parsed")
            return OK
        if args.command == "unpause":
            api.unpause(args.dag_id)
            log(f"DAG {args.dag_id} unpaused")
            return OK
        if args.command == "run":
            end = args.end or args.start
            run = api.start_run(args.dag_id, args.start, end, min(args.timeout, 300))
            log(f"triggered {args.dag_id} run {run['dag_run_id']} for {args.start}..{end}")
            run_id = run["dag_run_id"]
        else:
            run_id = args.run_id
        summary = api.follow(args.dag_id, run_id, args.timeout)
    except ApiError as exc:
        log(f"error: {exc}")
        return exc.code
    print(json.dumps(summary))
    return OK if summary["state"] == "success" else FAILED


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
