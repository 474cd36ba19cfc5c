"""Stand-in for kind, minikube and kubectl, for driving the up/down/run/smoke scripts
where no cluster can run. Installed under each tool's name (tests/k8s/stand_in.py); every
call appends its argv (and what it read on stdin) to $CLUSTER_STUB_LOG as a JSON line.

It refuses what the real tools refuse: a flag the command does not have (stub_cli.py),
a context no cluster was made for, an image that is not in the local Docker engine, the
docker driver as root without --force, a change to a Job's pod template. And it keeps
state (stub_state.py), so that a script's waits mean something:
  - a Job is Complete only once it was applied (after a delete, not before) and its
    images were loaded into that cluster: then it "ran";
  - a rollout finishes only for an applied Deployment/StatefulSet whose images were
    loaded; otherwise it times out, as a pod stuck in ErrImagePull would;
  - each wait records the generation it saw, so a test can ask whether every workload
    of the last apply was waited for.
`kubectl port-forward` serves the Airflow API (stub_airflow.py); pods applied with
`apply -f -` and `exec` into them run with Docker (stub_pods.py).

Settings: CLUSTER_STUB_LOG, CLUSTER_STUB_STATE, CLUSTER_STUB_KUSTOMIZE (a kubectl whose
`kustomize` renders `apply -k`), CLUSTER_STUB_CONFIG (JSON merged into the applied
apod-airflow-config: a stand-in for an overlay), the tools' versions
(CLUSTER_STUB_KIND_VERSION, CLUSTER_STUB_MINIKUBE_VERSION, CLUSTER_STUB_KUBECTL_VERSION,
CLUSTER_STUB_MINIKUBE_KNOWS: comma-separated Kubernetes versions), and stub_pods.py's.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import stub_registry
import stub_state
import yaml
from stub_cli import CommandLine, UsageError, parse

KIND_VERSION = os.environ.get("CLUSTER_STUB_KIND_VERSION", "v0.33.0")
MINIKUBE_VERSION = os.environ.get("CLUSTER_STUB_MINIKUBE_VERSION", "v1.37.0")
KUBECTL_VERSION = os.environ.get("CLUSTER_STUB_KUBECTL_VERSION", "v1.34.1")
MINIKUBE_KNOWS = os.environ.get("CLUSTER_STUB_MINIKUBE_KNOWS", "v1.34.11,v1.34.0,v1.33.5")
# minikube's exit code for DRV_AS_ROOT (ExDriverPermission) and for an unknown profile.
EXIT_DRIVER_PERMISSION, EXIT_PROFILE_NOT_FOUND = 57, 85
TYPES = {
    "job": "Job", "jobs": "Job", "job.batch": "Job",
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
    "configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "secret": "Secret", "secrets": "Secret",
    "service": "Service", "services": "Service", "svc": "Service",
}  # fmt: skip
WORKLOADS = ("Deployment", "StatefulSet", "Job")
CLUSTER_SCOPED = ("Namespace",)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The one jsonpath the up scripts ask of a Job (scripts/k8s-lib.sh wait_job).
JOB_CONDITIONS = '{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}'


class Refused(Exception):
    """What the real tool prints before exiting 1."""


def say(*lines: str) -> None:
    print("\n".join(lines), file=sys.stderr)


def record(tool: str, argv: list[str], stdin: str | None) -> None:
    with open(os.environ["CLUSTER_STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, "args": argv, "stdin": stdin}) + "\n")


def docker_image_id(image: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() if result.returncode == 0 else None


def load_images(cluster: dict, images: list[str], refusal: str) -> None:
    if not images:
        raise Refused("ERROR: no image given")
    for image in images:
        image_id = docker_image_id(image)
        if image_id is None:
            raise Refused(refusal.format(image=image))
        cluster["loaded"][image] = image_id


def drop_cluster(state: dict, context: str) -> None:
    import stub_pods

    cluster = state["clusters"].pop(context, None)
    for container in (cluster or {}).get("pods", {}).values():
        stub_pods.remove(container)
    stub_registry.remove_nodes((cluster or {}).get("nodes", []))


# --- kind ----------------------------------------------------------------------------


def kind(line: CommandLine, stdin: str | None) -> int:
    name = line.get("--name", "kind")
    with stub_state.changing() as state:
        clusters = state["kind"]
        if line.command == ("version",):
            print(f"kind {KIND_VERSION} go1.24.6 linux/amd64")
        elif line.command == ("get", "clusters"):
            if clusters:
                print("\n".join(sorted(clusters)))
            else:
                say("No kind clusters found.")
        elif line.command == ("create", "cluster"):
            if name in clusters:
                raise Refused(
                    "ERROR: failed to create cluster: node(s) already exist for a cluster "
                    f'with the name "{name}"'
                )
            config = (
                yaml.safe_load(Path(line.get("--config")).read_text())
                if line.get("--config")
                else {}
            )
            if config and (config.get("kind"), config.get("apiVersion")) != (
                "Cluster",
                "kind.x-k8s.io/v1alpha4",
            ):
                raise Refused(
                    "ERROR: failed to create cluster: unknown apiVersion or kind in --config"
                )
            nodes = config.get("nodes") or [{"role": "control-plane"}]
            roles = [node.get("role", "control-plane") for node in nodes]
            if roles.count("control-plane") != 1 or set(roles) - {"control-plane", "worker"}:
                raise Refused(f"ERROR: failed to create cluster: node roles {roles}")
            clusters[name] = {"image": line.get("--image") or nodes[0].get("image")}
            cluster = stub_state.new_cluster()
            try:
                cluster["nodes"] = stub_registry.start_nodes(name, config)
            except RuntimeError as exc:
                raise Refused(f"ERROR: failed to create cluster: {exc}") from None
            cluster["config_path"] = stub_registry.config_path_enabled(config)
            state["clusters"][f"kind-{name}"] = cluster
            say(f'Creating cluster "{name}" ...')
        elif line.command == ("get", "nodes"):
            if name in clusters:
                print("\n".join(state["clusters"][f"kind-{name}"]["nodes"]))
            else:
                say(f'No kind nodes found for cluster "{name}".')
        elif line.command == ("delete", "cluster"):
            clusters.pop(name, None)
            drop_cluster(state, f"kind-{name}")
            say(f'Deleting cluster "{name}" ...')
        elif line.command == ("load", "docker-image"):
            if name not in clusters:
                raise Refused(f'ERROR: no nodes found for cluster "{name}"')
            load_images(
                state["clusters"][f"kind-{name}"],
                line.positional,
                'ERROR: image: "{image}" not present locally',
            )
    return 0


# --- minikube ------------------------------------------------------------------------


def minikube(line: CommandLine, stdin: str | None) -> int:
    profile = line.get("--profile", "minikube")
    with stub_state.changing() as state:
        profiles = state["minikube"]
        if line.command == ("version",):
            print(
                MINIKUBE_VERSION
                if line.switch("--short")
                else f"minikube version: {MINIKUBE_VERSION}"
            )
        elif line.command == ("config", "defaults"):
            if line.positional != ["kubernetes-version"] or line.get("--output") != "json":
                raise Refused("stand-in: only `config defaults kubernetes-version -o json`")
            print(json.dumps(MINIKUBE_KNOWS.split(",")))
        elif line.command == ("status",):
            if profile not in profiles:
                say(f'Profile "{profile}" not found. Run "minikube profile list" to view all.')
                return EXIT_PROFILE_NOT_FOUND
            print("host: Running\nkubelet: Running\napiserver: Running")
        elif line.command == ("start",):
            return start_minikube(state, profile, line)
        elif line.command == ("image", "load"):
            if profile not in profiles:
                raise Refused(f'Profile "{profile}" not found.')
            load_images(
                state["clusters"][profile],
                line.positional,
                "X Exiting due to GUEST_IMAGE_LOAD: {image}",
            )
        elif line.command == ("delete",):
            profiles.pop(profile, None)
            drop_cluster(state, profile)
            say(f'Removed all traces of the "{profile}" cluster.')
        elif line.command == ("profile", "list"):
            listing = [
                {"Name": name, "Status": "OK", "Config": node}
                for name, node in sorted(profiles.items())
            ]
            # Compact, as minikube (Go's encoding/json) prints it.
            print(json.dumps({"invalid": [], "valid": listing}, separators=(",", ":")))
    return 0


def start_minikube(state: dict, profile: str, line: CommandLine) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from k8s_doctor import quantity_mib

    driver = line.get("--driver", "docker")
    if os.geteuid() == 0 and driver in ("docker", "podman") and not line.switch("--force"):
        say(
            f'X Exiting due to DRV_AS_ROOT: The "{driver}" driver should not be used with '
            "root privileges. If you wish to continue as root, use --force."
        )
        return EXIT_DRIVER_PERMISSION
    state["minikube"][profile] = {
        "Name": profile,
        "Driver": driver,
        # minikube's default on a small host, when --memory is not given.
        "Memory": quantity_mib(line.get("--memory", "2200")),
        "CPUs": int(line.get("--cpus", "2")),
        "KubernetesConfig": {"KubernetesVersion": line.get("--kubernetes-version", "stable")},
    }
    state["clusters"].setdefault(profile, stub_state.new_cluster())
    say(f'* Done! kubectl is now configured to use "{profile}" cluster')
    return 0


# --- kubectl -------------------------------------------------------------------------


def object_key(obj: dict, namespace: str) -> str:
    kind_ = obj["kind"]
    ns = None if kind_ in CLUSTER_SCOPED else obj["metadata"].get("namespace") or namespace
    return stub_state.key(kind_, ns, obj["metadata"]["name"])


def target(positional: list[str], namespace: str) -> list[str]:
    """`TYPE NAME...` or `TYPE/NAME` -> object keys."""
    if len(positional) == 1 and "/" in positional[0]:
        kind_name, name = positional[0].split("/", 1)
        names = [name]
    else:
        kind_name, names = positional[0], positional[1:]
    if kind_name not in TYPES:
        raise Refused(f'error: the server doesn\'t have a resource type "{kind_name}"')
    kind_ = TYPES[kind_name]
    ns = None if kind_ in CLUSTER_SCOPED else namespace
    return [stub_state.key(kind_, ns, name) for name in names]


def not_found(key: str) -> Refused:
    kind_, _, name = key.split("/", 2)
    return Refused(f'Error from server (NotFound): {kind_.lower()}s "{name}" not found')


def template(obj: dict) -> dict | None:
    spec = obj.get("spec") or {}
    return spec.get("template")


def pod_images(obj: dict) -> list[str]:
    import stub_pods

    found = template(obj)
    return stub_pods.images_of(found["spec"]) if found else []


def ready(cluster: dict, key: str) -> bool:
    """A workload runs once it was applied and every image it names is in the cluster:
    loaded into it, or pulled by its nodes from a registry (stub_registry.py)."""
    obj = cluster["objects"].get(key)
    return obj is not None and not stub_registry.absent(cluster, pod_images(obj))


def apply_object(cluster: dict, obj: dict, namespace: str, server_side: bool = False) -> str:
    key = object_key(obj, namespace)
    kind_, ns, name = key.split("/", 2)
    if ns and stub_state.key("Namespace", None, ns) not in cluster["objects"]:
        raise Refused(f'Error from server (NotFound): namespaces "{ns}" not found')
    if kind_ == "ConfigMap" and name.startswith("apod-airflow-config"):
        obj.setdefault("data", {}).update(json.loads(os.environ.get("CLUSTER_STUB_CONFIG") or "{}"))
    if not server_side:
        # What client-side apply keeps to compute the next apply's patch: the object as
        # sent, without this annotation.
        sent = json.loads(json.dumps(obj))
        sent["metadata"].get("annotations", {}).pop(LAST_APPLIED, None)
        annotations = obj["metadata"].setdefault("annotations", {})
        annotations[LAST_APPLIED] = json.dumps(sent, sort_keys=True)
    old = cluster["objects"].get(key)
    verb = "created" if old is None else "unchanged" if old == obj else "configured"
    if kind_ in WORKLOADS:
        if old is not None and template(old) != template(obj):
            if kind_ == "Job":
                raise Refused(
                    f'The Job "{name}" is invalid: spec.template: Invalid value: field is immutable'
                )
            cluster["generation"][key] += 1
        cluster["generation"].setdefault(key, 1)
    if kind_ == "Pod" and old is None:
        import stub_pods

        try:
            cluster["pods"][name] = stub_pods.start_pod(obj, cluster)
        except RuntimeError as exc:
            raise Refused(f"stand-in: pod {name}: {exc}") from None
    cluster["objects"][key] = obj
    return f"{kind_.lower()}/{name} {verb}"


def kubectl(line: CommandLine, stdin: str | None) -> int:
    if line.command == ("version",):
        minor = KUBECTL_VERSION.split(".")[1]
        print(
            json.dumps(
                {"clientVersion": {"major": "1", "minor": minor, "gitVersion": KUBECTL_VERSION}}
            )
        )
        return 0
    context = line.get("--context")
    namespace = line.get("--namespace", "default")
    if context is None:
        raise Refused(
            "stand-in: every call names its --context (the scripts never use the current one)"
        )
    if context not in stub_state.read()["clusters"]:
        raise Refused(f'error: context "{context}" does not exist')
    if line.command == ("port-forward",):
        return port_forward(line, context, namespace)
    if line.command == ("exec",):
        return exec_(line, context, namespace)
    if line.command == ("wait",):
        return wait(line, context, namespace)
    with stub_state.changing() as state:
        cluster = state["clusters"][context]
        handler = KUBECTL_COMMANDS[line.command]
        return handler(line, cluster, namespace, stdin)


def get(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    (key,) = target(line.positional, namespace)
    obj = cluster["objects"].get(key)
    if obj is None:
        if line.switch("--ignore-not-found"):
            return 0
        raise not_found(key)
    obj = json.loads(json.dumps(obj))
    if obj["kind"] == "Job":
        complete = ready(cluster, key)
        obj["status"] = (
            {"conditions": [{"type": "Complete", "status": "True"}]} if complete else {"active": 1}
        )
        if complete:
            cluster["observed"][key] = cluster["generation"][key]
    output = line.get("--output", "")
    if output == "json":
        print(json.dumps(obj))
    elif output == "yaml":
        print(yaml.safe_dump(obj))
    elif output.startswith("jsonpath="):
        if output.removeprefix("jsonpath=") != JOB_CONDITIONS or obj["kind"] != "Job":
            raise Refused(f"stand-in: jsonpath not understood: {output}")
        conditions = obj["status"].get("conditions") or []
        print("".join(f"{c['type']} " for c in conditions if c["status"] == "True"), end="")
    else:
        print(f"NAME\n{obj['metadata']['name']}")
    return 0


def create(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    if line.command == ("create", "namespace"):
        (name,) = line.positional
        key = stub_state.key("Namespace", None, name)
        if key in cluster["objects"]:
            raise Refused(f'Error from server (AlreadyExists): namespaces "{name}" already exists')
        cluster["objects"][key] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        }
        print(f"namespace/{name} created")
        return 0
    (name,) = line.positional
    if line.get("--dry-run") != "client" or line.get("--output") != "yaml":
        raise Refused("stand-in: secrets are only rendered (--dry-run=client -o yaml)")
    folder = Path(line.get("--from-file"))
    data = {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(folder.iterdir())}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}
    print(yaml.safe_dump(secret), end="")
    return 0


def kustomize(directory: str) -> str:
    rendered = subprocess.run(
        [os.environ["CLUSTER_STUB_KUSTOMIZE"], "kustomize", directory],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if rendered.returncode != 0:
        raise Refused(f"error: {rendered.stderr.strip()}")
    return rendered.stdout


def render(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    """`create -k DIR --dry-run=client -o json`: each object as it would be sent, one
    JSON document after the other, as kubectl prints them."""
    if line.get("--dry-run") != "client" or line.get("--output") != "json":
        raise Refused("stand-in: create only renders (-k DIR --dry-run=client -o json)")
    if not line.get("--kustomize"):
        raise Refused("stand-in: create renders -k DIR only")
    for obj in yaml.safe_load_all(kustomize(line.get("--kustomize"))):
        if obj:
            print(json.dumps(obj, indent=4))
    return 0


def apply(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    if line.get("--kustomize"):
        text = kustomize(line.get("--kustomize"))
    elif line.get("--filename") == "-":
        text = stdin or ""
    else:
        raise Refused("stand-in: apply takes -k DIR or -f -")
    objects = [o for o in yaml.safe_load_all(text) if o]
    # Namespaces first, as kubectl orders what it applies.
    objects.sort(key=lambda o: o["kind"] != "Namespace")
    for obj in objects:
        print(apply_object(cluster, obj, namespace, line.switch("--server-side")))
    return 0


def delete(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    import stub_pods

    for key in target(line.positional, namespace):
        if key not in cluster["objects"]:
            if line.switch("--ignore-not-found"):
                continue
            raise not_found(key)
        obj = cluster["objects"].pop(key)
        for table in ("generation", "observed"):
            cluster[table].pop(key, None)
        if obj["kind"] == "Pod":
            stub_pods.remove(cluster["pods"].pop(obj["metadata"]["name"], ""))
        print(f'{obj["kind"].lower()} "{obj["metadata"]["name"]}" deleted')
    return 0


def rollout_status(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    (key,) = target(line.positional, namespace)
    if key not in cluster["objects"]:
        raise not_found(key)
    if not line.get("--timeout"):
        raise Refused("stand-in: a rollout wait without --timeout would wait forever")
    kind_, _, name = key.split("/", 2)
    if not ready(cluster, key):
        raise Refused("error: timed out waiting for the condition")
    cluster["observed"][key] = cluster["generation"][key]
    print(f'{kind_.lower()} "{name}" successfully rolled out')
    return 0


def logs(line: CommandLine, cluster: dict, namespace: str, stdin: str | None) -> int:
    return 0


KUBECTL_COMMANDS = {
    ("get",): get,
    ("create",): render,
    ("create", "namespace"): create,
    ("create", "secret", "generic"): create,
    ("apply",): apply,
    ("delete",): delete,
    ("rollout", "status"): rollout_status,
    ("logs",): logs,
}


def port_forward(line: CommandLine, context: str, namespace: str) -> int:
    import stub_airflow

    service, ports = line.positional
    cluster = stub_state.read()["clusters"][context]
    (key,) = target([service], namespace)
    if key not in cluster["objects"]:
        raise not_found(key)
    deployment = stub_state.key("Deployment", namespace, key.rsplit("/", 1)[1])
    if not ready(cluster, deployment):
        raise Refused(
            "error: unable to forward port because pod is not running. Current status=Pending"
        )
    local, _, remote = ports.partition(":")
    if remote != "8080":
        raise Refused(f"stand-in: the Service forwards 8080, not {remote}")
    print(f"Forwarding from {line.get('--address', '127.0.0.1')}:{local} -> 8080", flush=True)
    stub_airflow.serve(line.get("--address", "127.0.0.1"), int(local), context)
    return 0


def exec_(line: CommandLine, context: str, namespace: str) -> int:
    import stub_pods

    (pod,) = line.positional
    if not line.after_dash:
        raise Refused("error: you must specify at least one command for the container")
    cluster = stub_state.read()["clusters"][context]
    if pod == stub_pods.POSTGRES_POD:
        if not ready(cluster, stub_state.key("StatefulSet", namespace, "postgres")):
            raise Refused(f'Error from server (NotFound): pods "{pod}" not found')
        return stub_pods.exec_postgres(line.after_dash)
    if pod not in cluster["pods"]:
        raise Refused(f'Error from server (NotFound): pods "{pod}" not found')
    return stub_pods.exec_in(cluster["pods"][pod], line.after_dash, line.switch("--stdin"))


def wait(line: CommandLine, context: str, namespace: str) -> int:
    import stub_pods

    if line.get("--for") != "condition=Ready":
        raise Refused(f"stand-in: waits only --for=condition=Ready, not {line.get('--for')}")
    (key,) = target(line.positional, namespace)
    kind_, _, name = key.split("/", 2)
    container = stub_state.read()["clusters"][context]["pods"].get(name)
    if kind_ != "Pod" or container is None:
        raise not_found(key)
    timeout = float(line.get("--timeout", "30s").rstrip("s"))
    if not stub_pods.wait_running(container, timeout):
        raise Refused(f"error: timed out waiting for the condition on pods/{name}")
    print(f"pod/{name} condition met")
    return 0


# --- entry ---------------------------------------------------------------------------

TOOLS = {"kind": kind, "minikube": minikube, "kubectl": kubectl}


def main(argv: list[str]) -> int:
    tool = Path(argv[0]).name
    try:
        line = parse(tool, argv[1:])
    except UsageError as exc:
        record(tool, argv[1:], None)
        say(str(exc))
        return 1
    stdin = None
    if line.get("--filename") == "-" or (tool == "kubectl" and line.switch("--stdin")):
        stdin = sys.stdin.read() if line.get("--filename") == "-" else None
    record(tool, argv[1:], stdin)
    try:
        return TOOLS[tool](line, stdin)
    except Refused as exc:
        say(str(exc))
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
