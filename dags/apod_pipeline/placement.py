"""Where a pod that mounts the data volume may run, on a cluster of several nodes.

The `multinode` overlay on ReadWriteOnce storage (k8s/README.md, "More than one node")
runs a holder pod that keeps `apod-data` mounted, so the volume stays attached to the
holder's node; every other pod that mounts it must be scheduled there too, or it waits
for a Multi-Attach that never comes. The rule is a required pod affinity to the holder,
by its `app.kubernetes.io/name` label, on the node's hostname. On one node, or on
ReadWriteMany storage, there is no holder and no rule.

Standard library only: the DAG's pods (apod_pipeline.kubernetes) and the smoke test's
reader pod (scripts/k8s_smoke.py) take the same dict, in the Kubernetes API's shape.
"""

from __future__ import annotations

from typing import Any

NAME_LABEL = "app.kubernetes.io/name"
NODE_TOPOLOGY = "kubernetes.io/hostname"


def beside_data_holder(holder: str | None) -> dict[str, Any] | None:
    """The pod affinity that puts a pod on the holder's node; None without a holder."""
    if not holder:
        return None
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {NAME_LABEL: holder}},
                    "topologyKey": NODE_TOPOLOGY,
                }
            ]
        }
    }
