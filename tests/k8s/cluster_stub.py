#!/usr/bin/env python3
"""Stand-in for kind, minikube and kubectl, for testing the up/down scripts where no
cluster can run. Installed under each tool's name; every call appends its argv (and
what it read on stdin) to $CLUSTER_STUB_LOG as one JSON line. It keeps just enough
state (clusters, profiles, the namespace) in $CLUSTER_STUB_STATE for the scripts'
create-or-reuse logic, and `kubectl port-forward` serves the health endpoint the
scripts wait for on the address and port it was given.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import sys
from pathlib import Path

TOOL = Path(sys.argv[0]).name
ARGS = sys.argv[1:]
STATE = Path(os.environ["CLUSTER_STUB_STATE"])


def record(stdin: str | None = None) -> None:
    with open(os.environ["CLUSTER_STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": TOOL, "args": ARGS, "stdin": stdin}) + "\n")


def flag(name: str) -> str | None:
    for i, arg in enumerate(ARGS):
        if arg == name and i + 1 < len(ARGS):
            return ARGS[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def state(name: str) -> set[str]:
    path = STATE / name
    return set(path.read_text().split()) if path.exists() else set()


def set_state(name: str, values: set[str]) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / name).write_text("\n".join(sorted(values)))


def kind() -> int:
    record()
    if ARGS[:2] == ["get", "clusters"]:
        print("\n".join(sorted(state("kind"))))
    elif ARGS[:2] == ["create", "cluster"]:
        set_state("kind", state("kind") | {flag("--name")})
    elif ARGS[:2] == ["delete", "cluster"]:
        set_state("kind", state("kind") - {flag("--name")})
    return 0


def minikube() -> int:
    record()
    profile = flag("--profile")
    if ARGS[0] == "status":
        return 0 if profile in state("minikube") else 7
    if ARGS[0] == "start":
        set_state("minikube", state("minikube") | {profile})
    elif ARGS[0] == "delete":
        set_state("minikube", state("minikube") - {profile})
    elif ARGS[:2] == ["profile", "list"]:
        # Compact, as minikube (Go's encoding/json) prints it.
        listing = {"invalid": [], "valid": [{"Name": p} for p in sorted(state("minikube"))]}
        print(json.dumps(listing, separators=(",", ":")))
    return 0


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/api/v2/monitor/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def kubectl() -> int:
    verb = [
        a
        for a in ARGS
        if not a.startswith("-") and a not in (flag("--context"), flag("--namespace"))
    ]
    if verb[:2] == ["create", "secret"] and "--dry-run=client" in ARGS:
        record()
        folder = Path(flag("--from-file"))
        data = {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(folder.iterdir())}
        print(
            json.dumps(
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": verb[3]}, "data": data}
            )
        )
        return 0
    if verb[:1] == ["apply"] and flag("-f") == "-":
        record(sys.stdin.read())
        return 0
    record()
    if verb[:2] == ["get", "namespace"]:
        return 0 if "namespace" in state("kubectl") else 1
    if verb[:2] == ["create", "namespace"]:
        set_state("kubectl", state("kubectl") | {"namespace"})
    elif verb[:2] == ["get", "job"]:
        print("Complete ", end="")
    elif verb[:1] == ["port-forward"]:
        local = verb[-1].split(":")[0]
        server = http.server.HTTPServer((flag("--address"), int(local)), Health)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit({"kind": kind, "minikube": minikube, "kubectl": kubectl}[TOOL]())
