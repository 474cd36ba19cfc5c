#!/usr/bin/env python3
"""Roll an overlay out without killing a run (standard library only): what the up
scripts do between tagging the images and `kubectl apply -k`.

    k8s_rollout.py plan OVERLAY OUT --context C --secrets-file F [--namespace N]

1. Renders OVERLAY as `kubectl apply -k` would send it (`kubectl create -k --dry-run=client
   -o json`: kustomize's output, as JSON).
2. Writes OUT, a kustomization over OVERLAY that gives each Deployment, StatefulSet and
   Job the annotation `apod.pipeline/secret-checksum`: a hash of the Secret keys its pod
   reads (env secretKeyRef, envFrom, secret and projected volumes), from the values of
   the secrets file. Pods read a Secret when they start, so a changed key must change
   the pod template of exactly the workloads that read it, and no other. (ConfigMaps
   need nothing: kustomize's generator puts a hash of the content into their name.)
3. Refuses, when a workload labelled `apod.pipeline/rollout: after-runs` (the scheduler,
   which runs the tasks; the object store and Postgres, which a run writes to; the data
   holder; the two setup Jobs) would get a new pod template while a DAG run is running:
   it names the run and the workloads, and exits 3. FORCE=1 replaces them anyway.
   Whether a template changes is read from the object's last-applied configuration
   (what `kubectl apply` compares with); whether a run is running, from Airflow's REST
   API through a short-lived `kubectl port-forward` to the API server.
4. Prints the plan, one line each: `rerun job/<name>` for a Job to delete before the
   apply (its template changed, and a Job's cannot be; or it has not completed), then
   `wait <kind>/<name>` for every workload, in the order the up script waits:
   StatefulSets, Jobs, Deployments. A Job that completed and did not change is left
   alone: nothing starts that was not asked for.

Exit codes: 0 planned, 1 kubectl or the API failed, 2 usage, 3 refused (a run is running).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_api import REFUSED as REFUSED_LOGIN
from airflow_api import Airflow, ApiError
from deploy_env import read_env
from k8s_secrets import secret_data

CHECKSUM = "apod.pipeline/secret-checksum"
GUARD_LABEL, GUARD_VALUE = "apod.pipeline/rollout", "after-runs"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
WORKLOADS = ("StatefulSet", "Job", "Deployment")  # also the order of the waits
API_SERVICE, API_PORT = "svc/airflow-api-server", 8080
PORT_FORWARD_WAIT = 60  # seconds for the API to answer through the port-forward
OK, FAILED, REFUSED = 0, 1, 3  # 2: usage (argparse)


class Refused(Exception):
    pass


class KubectlError(Exception):
    pass


# --- the rendered objects ------------------------------------------------------------


def json_stream(text: str) -> list[dict]:
    """Objects of kubectl's -o json output: one object, several in a row, or a List."""
    decoder, objects, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            break
        value, i = decoder.raw_decode(text, i)
        objects += value.get("items", []) if value.get("kind") == "List" else [value]
    return objects


def pod_template(obj: Mapping | None) -> dict | None:
    if not obj or obj.get("kind") not in WORKLOADS:
        return None
    return (obj.get("spec") or {}).get("template")


def secret_keys(spec: Mapping) -> set[tuple[str, str]]:
    """(Secret, key) pairs a pod spec reads; key "*" for a whole Secret."""
    refs: set[tuple[str, str]] = set()
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                refs.add((source["secretRef"]["name"], "*"))
    for volume in spec.get("volumes", []):
        sources = []
        if "secret" in volume:
            sources.append({"name": volume["secret"]["secretName"], **volume["secret"]})
        sources += [
            s["secret"] for s in (volume.get("projected") or {}).get("sources", []) if "secret" in s
        ]
        for source in sources:
            items = source.get("items") or [{"key": "*"}]
            refs |= {(source["name"], item["key"]) for item in items}
    return refs


def checksum(refs: set[tuple[str, str]], data: Mapping[str, Mapping[str, str]]) -> str:
    """sha256 of the values read, by name: any of them changing changes it."""
    digest = hashlib.sha256()
    for name, key in sorted(refs):
        secret = data.get(name)
        if secret is None:
            raise KeyError(f"Secret {name} is read but never created")
        values = sorted(secret.items()) if key == "*" else [(key, secret[key])]
        for item, value in values:
            digest.update(f"{name}/{item}\0{value}\0".encode())
    return digest.hexdigest()


def checksum_patches(objects: list[dict], data: Mapping[str, Mapping[str, str]]) -> list[dict]:
    """A strategic-merge patch per workload that reads a Secret."""
    patches = []
    for obj in objects:
        template = pod_template(obj)
        refs = secret_keys(template["spec"]) if template else set()
        if refs:
            annotations = {CHECKSUM: checksum(refs, data)}
            patches.append(
                {
                    "apiVersion": obj["apiVersion"],
                    "kind": obj["kind"],
                    "metadata": {"name": obj["metadata"]["name"]},
                    "spec": {"template": {"metadata": {"annotations": annotations}}},
                }
            )
    return patches


def write_layer(overlay: Path, out: Path, patches: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated by scripts/k8s_rollout.py; do not edit, do not commit.",
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        f"  - {json.dumps(os.path.relpath(overlay.resolve(), out.resolve()))}",
    ]
    if patches:
        lines += ["patches:", *(f"  - patch: {json.dumps(json.dumps(p))}" for p in patches)]
    path = out / "kustomization.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ref(obj: Mapping) -> str:
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def waits(objects: list[dict]) -> list[str]:
    found = [o for o in objects if o["kind"] in WORKLOADS]
    found.sort(key=lambda o: WORKLOADS.index(o["kind"]))  # stable: render order within
    return [ref(o) for o in found]


# --- the cluster ---------------------------------------------------------------------


class Kubectl:
    def __init__(self, context: str, namespace: str):
        self.context, self.namespace = context, namespace

    def argv(self, *args: str) -> list[str]:
        return ["kubectl", "--context", self.context, "--namespace", self.namespace, *args]

    def __call__(self, *args: str) -> str:
        result = subprocess.run(self.argv(*args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args[:3])}: {result.stderr.strip()}")
        return result.stdout

    def render(self, directory: Path) -> list[dict]:
        """What `apply -k` sends: the kustomization, as JSON."""
        return json_stream(self("create", "-k", str(directory), "--dry-run=client", "-o", "json"))

    @contextlib.contextmanager
    def port_forward(self, service: str, remote: int) -> Iterator[PortForward]:
        """A port-forward to `service`, bound to 127.0.0.1, while the block runs."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            local = sock.getsockname()[1]
        process = subprocess.Popen(
            self.argv("port-forward", "--address", "127.0.0.1", service, f"{local}:{remote}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield PortForward(f"http://127.0.0.1:{local}", process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def live(self, obj: Mapping) -> dict | None:
        """The object of that kind and name in the cluster, or None."""
        text = self(
            "get", obj["kind"].lower(), obj["metadata"]["name"], "-o", "json", "--ignore-not-found"
        )
        return json.loads(text) if text.strip() else None


def last_applied(live: Mapping) -> dict:
    """What the last `kubectl apply` sent ({} when it was made otherwise)."""
    annotations = live["metadata"].get("annotations") or {}
    return json.loads(annotations.get(LAST_APPLIED) or "{}")


def changes(live: Mapping | None, obj: Mapping) -> bool:
    """Whether applying obj gives the live object a new pod template."""
    return live is not None and pod_template(last_applied(live)) != pod_template(obj)


def complete(job: Mapping) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True)
class PortForward:
    url: str
    process: subprocess.Popen

    def check(self) -> None:
        if self.process.poll() is not None:
            error = (self.process.stderr.read() if self.process.stderr else "").strip()
            raise KubectlError(f"kubectl port-forward exited: {error or 'no reason given'}")


def guarded(obj: Mapping) -> bool:
    return (obj["metadata"].get("labels") or {}).get(GUARD_LABEL) == GUARD_VALUE


def running_runs(kubectl: Kubectl, password: str) -> list[dict]:
    """Airflow's DAG runs in state running, through the API server."""
    with kubectl.port_forward(API_SERVICE, API_PORT) as forward:
        api = Airflow(forward.url, "admin", password, timeout=15)
        deadline = time.monotonic() + PORT_FORWARD_WAIT
        while True:
            try:
                answer = api.call("GET", "/api/v2/dags/~/dagRuns?state=running&limit=100")
                return answer.get("dag_runs") or []
            except ApiError as exc:
                # Unreachable: the port-forward may not listen yet. Anything else stands.
                if exc.status is not None or exc.code == REFUSED_LOGIN:
                    raise
                forward.check()
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def guard(kubectl: Kubectl, changing: list[str], password: str, force: bool) -> str:
    """Refused when `changing` (guarded workloads) would be replaced during a run; else
    what to tell the user."""
    if not changing:
        return ""
    what = ", ".join(changing)
    if force:
        return f"FORCE=1: replacing {what} without looking for running DAG runs"
    try:
        runs = running_runs(kubectl, password)
    except (ApiError, KubectlError, OSError) as exc:
        raise Refused(
            f"not replacing {what}: could not ask Airflow whether a DAG run is running "
            f"({exc}); FORCE=1 replaces them anyway"
        ) from None
    if runs:
        names = "; ".join(
            f"{run['dag_id']} {run['dag_run_id']} (running since {run.get('start_date') or '?'})"
            for run in runs
        )
        raise Refused(
            f"not replacing {what} while DAG run(s) are running: {names}. Run this again "
            "when it has finished (make k8s-run follows a run), or with FORCE=1 to replace "
            "them now: the run's running tasks then fail and are retried"
        )
    return f"replacing {what}: no DAG run is running"


@dataclass(frozen=True)
class Plan:
    reruns: list[str]  # job/<name>: delete before the apply
    waits: list[str]  # <kind>/<name>, in order
    message: str

    def lines(self) -> list[str]:
        return [*(f"rerun {job}" for job in self.reruns), *(f"wait {w}" for w in self.waits)]


def plan(
    kubectl: Kubectl, overlay: Path, out: Path, secrets: Mapping[str, str], force: bool
) -> Plan:
    """Write OUT and say what the apply replaces and waits for."""
    data = secret_data(secrets)
    write_layer(overlay, out, checksum_patches(kubectl.render(overlay), data))
    objects = kubectl.render(out)
    live = {ref(o): kubectl.live(o) for o in objects if o["kind"] in WORKLOADS}
    changing = [
        ref(o) for o in objects if ref(o) in live and guarded(o) and changes(live[ref(o)], o)
    ]
    message = guard(kubectl, changing, secrets["AIRFLOW_ADMIN_PASSWORD"], force)
    reruns = [
        ref(o)
        for o in objects
        if o["kind"] == "Job"
        and (live[ref(o)] is None or changes(live[ref(o)], o) or not complete(live[ref(o)]))
    ]
    return Plan(reruns, waits(objects), message)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="k8s_rollout.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("plan", help="checksums, the run guard, the waits")
    command.add_argument("overlay", type=Path, help="the tagged overlay (scripts/k8s_overlay.py)")
    command.add_argument("out", type=Path, help="where the kustomization to apply is written")
    command.add_argument("--context", required=True)
    command.add_argument("--namespace", default="apod")
    command.add_argument("--secrets-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        secrets = read_env(args.secrets_file)
        planned = plan(
            Kubectl(args.context, args.namespace),
            args.overlay,
            args.out,
            secrets,
            os.environ.get("FORCE") == "1",
        )
    except Refused as exc:
        print(f"k8s_rollout: {exc}", file=sys.stderr)
        return REFUSED
    except (KubectlError, KeyError, OSError, ValueError) as exc:
        print(f"k8s_rollout: {exc}", file=sys.stderr)
        return FAILED
    if planned.message:
        print(f"k8s_rollout: {planned.message}", file=sys.stderr)
    print("\n".join(planned.lines()))
    return OK


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
