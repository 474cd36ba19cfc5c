"""The Airflow REST API behind the cluster stand-in's `kubectl port-forward`: the calls
scripts/airflow_api.py makes, against the cluster's state.

It logs in only with the admin password of the applied Secret apod-airflow-secrets, and
keeps the scheduler's one rule that matters for `make k8s-run`: unpausing a DAG whose
slot (yesterday's interval, catchup=False) is due and holds no run starts a scheduled
run for it at once. A triggered run is 409 when a run holds its logical date. With
CLUSTER_STUB_RUN_PODS=1 a manual run launches the DAG's pods with Docker
(stub_pods.run_dag); otherwise it succeeds at once.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import secrets
import threading
import urllib.parse

import stub_pods
import stub_state

DAG_ID = "apod_etl_k8s"
TASKS = ("extract", "transform", "load_postgres", "load_csv", "version")
FINISHED = {"success", "failed"}


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def due_slot(runs: list[dict], now: dt.datetime) -> dict:
    """The next scheduled slot, as the DAG's next_dagrun_* fields."""
    start = dt.datetime.combine(now.date(), dt.time(), dt.UTC) - dt.timedelta(days=1)
    if any(run.get("logical_date") == iso(start) for run in runs):
        start += dt.timedelta(days=1)
    end = start + dt.timedelta(days=1)
    return {
        "next_dagrun_logical_date": iso(start),
        "next_dagrun_data_interval_start": iso(start),
        "next_dagrun_data_interval_end": iso(end),
        "next_dagrun_run_after": iso(end),
    }


class Api(http.server.BaseHTTPRequestHandler):
    context = ""
    tokens: set[str] = set()  # noqa: RUF012 - shared by the server's handlers on purpose

    # --- plumbing --------------------------------------------------------------------

    def log_message(self, *args):
        pass

    def send(self, status: int, body: dict | None = None) -> None:
        payload = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header.removeprefix("Bearer ") in self.tokens:
            return True
        self.send(401, {"detail": "Not authenticated"})
        return False

    def runs(self, runs: list[dict]) -> dict:
        """GET /api/v2/dags/~/dagRuns: every DAG's runs, `state` (repeatable) filtering."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        states = set(query.get("state", []))
        found = [{"dag_id": DAG_ID, **run} for run in runs if not states or run["state"] in states]
        return {"dag_runs": found, "total_entries": len(found)}

    def parts(self) -> list[str]:
        path = urllib.parse.urlsplit(self.path).path
        return [urllib.parse.unquote(p) for p in path.strip("/").split("/")]

    # --- endpoints -------------------------------------------------------------------

    def do_GET(self):
        parts = self.parts()
        if parts == ["api", "v2", "monitor", "health"]:
            return self.send(200, {"metadatabase": {"status": "healthy"}})
        if not self.authorised():
            return None
        airflow = stub_state.read()["clusters"][self.context]["airflow"]
        if parts == ["api", "v2", "dags", "~", "dagRuns"]:
            return self.send(200, self.runs(airflow["runs"]))
        if parts[:3] != ["api", "v2", "dags"] or len(parts) < 4 or parts[3] != DAG_ID:
            return self.send(404, {"detail": "not found"})
        if len(parts) == 4:
            now = dt.datetime.now(dt.UTC)
            return self.send(
                200,
                {"dag_id": DAG_ID, "is_paused": airflow["paused"]} | due_slot(airflow["runs"], now),
            )
        run = next((r for r in airflow["runs"] if r["dag_run_id"] == parts[5]), None)
        if run is None:
            return self.send(404, {"detail": "no such run"})
        if len(parts) == 6:
            return self.send(200, run)
        if len(parts) == 7:
            instances = [
                {"task_id": t, "map_index": -1, "state": s} for t, s in run["tasks"].items()
            ]
            return self.send(200, {"task_instances": instances, "total_entries": len(instances)})
        if len(parts) == 8:
            return self.send(200, {"task_id": parts[7], "try_number": 1})
        return self.send(200, {"content": [{"event": "the stand-in keeps no task logs"}]})

    def do_POST(self):
        parts = self.parts()
        if parts == ["auth", "token"]:
            return self.login(self.body())
        if not self.authorised():
            return None
        if parts != ["api", "v2", "dags", DAG_ID, "dagRuns"]:
            return self.send(404, {"detail": "not found"})
        body = self.body()
        with stub_state.changing() as state:
            airflow = state["clusters"][self.context]["airflow"]
            logical = body.get("logical_date")
            if logical and any(r.get("logical_date") == logical for r in airflow["runs"]):
                return self.send(409, {"detail": f"a run holds logical date {logical}"})
            run = {
                "dag_run_id": f"manual__{iso(dt.datetime.now(dt.UTC))}",
                "run_type": "manual",
                "logical_date": logical,
                "conf": body.get("conf") or {},
                "note": body.get("note"),
                "state": "queued",
                "tasks": dict.fromkeys(TASKS, "none"),
            }
            airflow["runs"].append(run)
        threading.Thread(target=self.execute, args=(run,), daemon=False).start()
        return self.send(200, run)

    def do_PATCH(self):
        if not self.authorised():
            return None
        if self.parts() != ["api", "v2", "dags", DAG_ID]:
            return self.send(404, {"detail": "not found"})
        paused = bool(self.body().get("is_paused"))
        with stub_state.changing() as state:
            airflow = state["clusters"][self.context]["airflow"]
            airflow["paused"] = paused
            slot = due_slot(airflow["runs"], dt.datetime.now(dt.UTC))
            due = dt.datetime.fromisoformat(slot["next_dagrun_run_after"]) <= dt.datetime.now(
                dt.UTC
            )
            if not paused and due:
                # What the scheduler does at once for an unpaused DAG (catchup=False).
                airflow["runs"].append(
                    {
                        "dag_run_id": f"scheduled__{slot['next_dagrun_logical_date']}",
                        "run_type": "scheduled",
                        "logical_date": slot["next_dagrun_logical_date"],
                        "conf": {},
                        "state": "queued",
                        "tasks": dict.fromkeys(TASKS, "none"),
                    }
                )
        return self.send(200, {"dag_id": DAG_ID, "is_paused": paused})

    # --- the work behind them --------------------------------------------------------

    def login(self, body: dict) -> None:
        cluster = stub_state.read()["clusters"][self.context]
        password = stub_pods.secret_values(cluster, "apod-airflow-secrets").get("admin-password")
        if body.get("username") != "admin" or not password or body.get("password") != password:
            return self.send(401, {"detail": "Invalid credentials"})
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return self.send(201, {"access_token": token})

    def execute(self, run: dict) -> None:
        def update(**fields) -> None:
            with stub_state.changing() as state:
                for stored in state["clusters"][self.context]["airflow"]["runs"]:
                    if stored["dag_run_id"] == run["dag_run_id"]:
                        stored.update(fields)

        def set_task(task: str, task_state: str) -> None:
            with stub_state.changing() as state:
                for stored in state["clusters"][self.context]["airflow"]["runs"]:
                    if stored["dag_run_id"] == run["dag_run_id"]:
                        stored["tasks"][task] = task_state

        update(state="running")
        if os.environ.get("CLUSTER_STUB_RUN_PODS") == "1":
            try:
                final = stub_pods.run_dag(self.context, run["dag_run_id"], run["conf"], set_task)
            except Exception as exc:  # noqa: BLE001 - the run fails, as a scheduler's would
                update(error=str(exc))
                final = "failed"
        else:
            for task in TASKS:
                set_task(task, "success")
            final = "success"
        update(state=final)


def serve(address: str, port: int, context: str) -> None:
    handler = type("ContextApi", (Api,), {"context": context, "tokens": set()})
    http.server.ThreadingHTTPServer((address, port), handler).serve_forever()
