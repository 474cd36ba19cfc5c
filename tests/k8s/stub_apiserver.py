"""The Kubernetes API of the cluster stand-in, for what KubernetesPodOperator asks of it
while a step pod cannot start: the requests of tests/k8s/rbac_scan.py's list (pods
create, get, list, patch, delete; pods/log get; events list) in one namespace, over
HTTP, as the operator's kubernetes client sends them.

It serves one kubectl context of the stand-in's state (stub_state.py): pods live there
beside what `kubectl apply` put, and every request is authorised against the Role bound
to the service account apod-airflow as applied (k8s/base/airflow/rbac.yaml): a request
the Role does not grant is 403, as the real API server answers it.

A pod is placed as the kube-scheduler and kubelet would: a claim it mounts that the
cluster lacks leaves it Pending and unscheduled (Unschedulable, with the scheduler's
event), an image not loaded leaves it scheduled and waiting (ErrImagePull). A pod that
could start is refused (501): the stand-in runs pods only through `kubectl apply` and
its Airflow API (stub_pods.py), and this server exists for the pods that never start.

    with serve(context) as (url, token): ...     kubeconfig(path, url, token) for clients
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import re
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Iterator

import stub_state

ROLE_BINDING = "apod-airflow-pod-launcher"
SERVICE_ACCOUNT = "apod-airflow"
POD_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/(pods|events)(?:/([^/]+))?(?:/(log))?")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def selector_matches(selector: str, values: dict[str, str]) -> bool:
    """A label or field selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if values.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if values.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in values:
                return False
        elif term not in values:
            return False
    return True


def pod_fields(pod: dict) -> dict[str, str]:
    return {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"]["namespace"],
        "status.phase": pod["status"]["phase"],
    }


def place(pod: dict, cluster: dict) -> dict:
    """The status a new pod gets, and the event the scheduler or kubelet records."""
    import stub_pods

    spec, namespace = pod["spec"], pod["metadata"]["namespace"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes", [])
        if "persistentVolumeClaim" in v
    ]
    missing = [
        c
        for c in claims
        if stub_state.key("PersistentVolumeClaim", namespace, c) not in cluster["objects"]
    ]
    if missing:
        message = (
            f'0/1 nodes are available: persistentvolumeclaim "{missing[0]}" not found. '
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": now(),
                }
            ],
        }
        return {"status": status, "event": ("Warning", "FailedScheduling", message)}
    absent = [i for i in stub_pods.images_of(spec) if i not in cluster["loaded"]]
    if absent:
        message = f'Failed to pull image "{absent[0]}": not found'
        waiting = {"reason": "ErrImagePull", "message": message}
        status = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": waiting},
                }
                for c in spec["containers"]
            ],
        }
        return {"status": status, "event": ("Warning", "Failed", message)}
    return {}


class Api(http.server.BaseHTTPRequestHandler):
    context = ""
    token = ""

    def log_message(self, *args):
        pass

    # --- plumbing --------------------------------------------------------------------

    def send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def failure(self, code: int, reason: str, message: str) -> None:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        self.send(code, {**body, "message": message, "reason": reason, "code": code})

    def body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def route(self) -> tuple[str, str, str | None, str | None, dict] | None:
        url = urllib.parse.urlsplit(self.path)
        match = POD_PATH.fullmatch(url.path)
        if not match:
            return None
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        return (*match.groups(), query)

    def allowed(self, namespace: str, resource: str, verb: str, cluster: dict) -> bool:
        """The bearer token is the service account's, and its Role grants the request."""
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.failure(401, "Unauthorized", "Unauthorized")
            return False
        binding = cluster["objects"].get(stub_state.key("RoleBinding", namespace, ROLE_BINDING))
        role = binding and cluster["objects"].get(
            stub_state.key("Role", namespace, binding["roleRef"]["name"])
        )
        bound = binding and any(
            s.get("kind") == "ServiceAccount" and s.get("name") == SERVICE_ACCOUNT
            for s in binding.get("subjects", [])
        )
        granted = (
            bound
            and role
            and any(
                "" in rule.get("apiGroups", [])
                and resource in rule.get("resources", [])
                and verb in rule.get("verbs", [])
                for rule in role.get("rules", [])
            )
        )
        if not granted:
            self.failure(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "system:serviceaccount:{namespace}:'
                f'{SERVICE_ACCOUNT}" cannot {verb} resource "{resource}" in the namespace '
                f'"{namespace}"',
            )
        return bool(granted)

    # --- requests --------------------------------------------------------------------

    def handle_request(self, method: str) -> None:
        route = self.route()
        if route is None:
            return self.failure(404, "NotFound", f"the stand-in serves no {self.path}")
        namespace, kind, name, sub, query = route
        resource = f"{kind}/{sub}" if sub else kind
        verb = {
            "POST": "create",
            "PATCH": "patch",
            "DELETE": "delete",
            "GET": "get" if name else ("watch" if query.get("watch") == "true" else "list"),
        }[method]
        with stub_state.changing() as state:
            cluster = state["clusters"][self.context]
            if not self.allowed(namespace, resource, verb, cluster):
                return None
            if kind == "events":
                return self.events(cluster, namespace, query)
            if method == "POST":
                return self.create(cluster, namespace, self.body())
            if name is None:
                return self.list(cluster, namespace, query)
            key = stub_state.key("Pod", namespace, name)
            pod = cluster["objects"].get(key)
            if pod is None:
                return self.failure(404, "NotFound", f'pods "{name}" not found')
            if sub == "log":
                return self.failure(
                    400, "BadRequest", f'container of pod "{name}" is waiting to start'
                )
            if method == "PATCH":
                return self.patch(pod, self.body())
            if method == "DELETE":
                del cluster["objects"][key]
                cluster.setdefault("deleted_pods", []).append(name)
            return self.send(200, pod)

    def create(self, cluster: dict, namespace: str, pod: dict) -> None:
        name = pod["metadata"]["name"]
        key = stub_state.key("Pod", namespace, name)
        if key in cluster["objects"]:
            return self.failure(409, "AlreadyExists", f'pods "{name}" already exists')
        pod["metadata"] |= {
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": now(),
            "resourceVersion": secrets.token_hex(4),
        }
        placed = place(pod, cluster)
        if not placed:
            return self.failure(
                501,
                "NotImplemented",
                "the stand-in's API starts no pod; it serves pods that cannot start",
            )
        pod["status"] = placed["status"]
        event_type, reason, message = placed["event"]
        cluster.setdefault("events", []).append(
            {
                "metadata": {"name": f"{name}.{secrets.token_hex(4)}", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
                "type": event_type,
                "reason": reason,
                "message": message,
            }
        )
        cluster["objects"][key] = pod
        return self.send(201, pod)

    def list(self, cluster: dict, namespace: str, query: dict) -> None:
        pods = [
            pod
            for key, pod in cluster["objects"].items()
            if key.startswith(f"Pod/{namespace}/")
            and selector_matches(
                query.get("labelSelector", ""), pod["metadata"].get("labels") or {}
            )
            and selector_matches(query.get("fieldSelector", ""), pod_fields(pod))
        ]
        self.send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods})

    def patch(self, pod: dict, body: object) -> None:
        content_type = self.headers.get("Content-Type", "")
        if not isinstance(body, dict) or "json-patch" in content_type:
            return self.failure(415, "UnsupportedMediaType", "the stand-in merges maps only")

        def merge(target: dict, change: dict) -> None:
            for key, value in change.items():
                if value is None:
                    target.pop(key, None)
                elif isinstance(value, dict) and isinstance(target.get(key), dict):
                    merge(target[key], value)
                else:
                    target[key] = value

        merge(pod, body)
        return self.send(200, pod)

    def events(self, cluster: dict, namespace: str, query: dict) -> None:
        items = [
            {"apiVersion": "v1", "kind": "Event", **event}
            for event in cluster.get("events", [])
            if event["metadata"]["namespace"] == namespace
            and selector_matches(
                query.get("fieldSelector", ""),
                {"involvedObject.name": event["involvedObject"]["name"]},
            )
        ]
        self.send(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": items})

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def do_PATCH(self):
        self.handle_request("PATCH")

    def do_DELETE(self):
        self.handle_request("DELETE")


@contextlib.contextmanager
def serve(context: str) -> Iterator[tuple[str, str]]:
    """(URL, bearer token) of an API server for `context`, while the block runs."""
    token = secrets.token_hex(16)
    handler = type("ContextApi", (Api,), {"context": context, "token": token})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", token
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(path, url: str, token: str, namespace: str = "apod") -> None:
    """A kubeconfig whose current context is that server, as the service account."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": {"server": url}}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {
                "name": "stand-in",
                "context": {"cluster": "stand-in", "user": SERVICE_ACCOUNT, "namespace": namespace},
            }
        ],
        "current-context": "stand-in",
    }
    path.write_text(json.dumps(config))
