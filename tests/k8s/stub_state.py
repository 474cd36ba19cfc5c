"""What the cluster stand-in remembers between calls: one JSON file in
$CLUSTER_STUB_STATE, changed under a lock (the port-forward's Airflow API runs in its
own process beside the scripts' calls).

    kind      cluster name -> its node image
    minikube  profile -> its node (memory, CPUs, Kubernetes version, driver)
    clusters  kubectl context -> what is in that cluster:
      loaded      image -> image ID, what `kind load` / `minikube image load` put there
                  ("pulled": what its nodes pulled from a registry, stub_registry.py)
      nodes       kind: the Docker containers that stand for its nodes
      config_path kind: whether containerd reads /etc/containerd/certs.d (the config's patch)
      objects     "Kind/namespace/name" -> the object as applied
      generation  key -> how often its pod template changed (1 when created)
      observed    key -> the generation a wait saw finished (rollout status, Job Complete)
      pods        pod name -> the Docker container that runs it
      airflow     the Airflow API's DAG: paused or not, its runs
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path


def directory() -> Path:
    path = Path(os.environ["CLUSTER_STUB_STATE"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _empty() -> dict:
    return {"kind": {}, "minikube": {}, "clusters": {}}


def read() -> dict:
    path = directory() / "state.json"
    return json.loads(path.read_text()) if path.exists() else _empty()


@contextlib.contextmanager
def changing() -> Iterator[dict]:
    """The state, written back when the block ends (not when it raises)."""
    with open(directory() / "state.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read()
        yield data
        tmp = directory() / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(directory() / "state.json")


def new_cluster() -> dict:
    return {
        "loaded": {},
        "nodes": [],
        "config_path": False,
        # What every cluster has from the start (the local-registry ConfigMap goes to one).
        "objects": {
            key("Namespace", None, name): {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name},
            }
            for name in ("default", "kube-public", "kube-system")
        },
        "generation": {},
        "observed": {},
        "pods": {},
        "airflow": {"paused": True, "runs": []},
    }


def key(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind}/{namespace or ''}/{name}"
