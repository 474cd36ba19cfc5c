"""Redeploys with `make kind-up` against the cluster stand-in (cluster_stub.py), on three
nodes (KIND_NODES=3: the overlay multinode): a changed secret rolls exactly the pods
that read it; while a DAG run is running, a redeploy that would replace the scheduler
(or the object store, Postgres, the data holder, the setup Jobs) is refused and names
the run, and FORCE=1 overrides it; one that replaces none of them goes ahead; every
rollout is waited for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import stand_in
import stub_state
from test_k8s_up_scripts import script, stop_port_forward, stub, unwaited

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(900)]

__all__ = ["stub"]  # the fixture, shared with test_k8s_up_scripts.py

CONTEXT = "kind-apod"
RUN_ID = "manual__2024-01-02T00:00:00+00:00"


def generations(env: dict[str, str]) -> dict[str, int]:
    return dict(stand_in.state(env)["clusters"][CONTEXT]["generation"])


def rolled(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {key for key, generation in after.items() if before.get(key) != generation}


def set_secret(path: Path, name: str, value: str) -> None:
    """Edit the secrets file as a user would."""
    text = re.sub(rf"^{name}=.*$", f"{name}={value}", path.read_text(), flags=re.M)
    path.write_text(text)


def applies(env: dict[str, str]) -> int:
    return sum(stand_in.without_globals(c)[1:3] == ["apply", "-k"] for c in stand_in.calls(env))


def test_redeploys_roll_what_changed_and_never_kill_a_run(stub, monkeypatch):
    env = {**stub, "KIND_NODES": "3"}
    monkeypatch.setenv("CLUSTER_STUB_STATE", env["CLUSTER_STUB_STATE"])
    try:
        first = script("k8s-kind-up.sh", env)
        assert first.returncode == 0, first.stderr[-3000:]
        cluster = stand_in.state(env)["clusters"][CONTEXT]
        # kind's node names, after the stand-in's prefix (its nodes are containers).
        prefix = env["CLUSTER_STUB_NODE_PREFIX"]
        assert cluster["nodes"] == [
            f"{prefix}apod-control-plane",
            f"{prefix}apod-worker",
            f"{prefix}apod-worker2",
        ]
        assert "Deployment/apod/apod-data-holder" in cluster["objects"]
        assert unwaited(cluster) == []

        # A secret only the API server reads: only it rolls, and is waited for.
        before = generations(env)
        set_secret(Path(env["APOD_K8S_SECRETS_FILE"]), "AIRFLOW_ADMIN_PASSWORD", "a-new-login")
        changed = script("k8s-kind-up.sh", env)
        assert changed.returncode == 0, changed.stderr[-3000:]
        assert rolled(before, generations(env)) == {"Deployment/apod/airflow-api-server"}
        assert unwaited(stand_in.state(env)["clusters"][CONTEXT]) == []

        # A run is running. The same build again replaces nothing: it goes ahead.
        with stub_state.changing() as state:
            state["clusters"][CONTEXT]["airflow"]["runs"].append(
                {
                    "dag_run_id": RUN_ID,
                    "run_type": "manual",
                    "logical_date": None,
                    "start_date": "2024-01-02T00:00:05Z",
                    "conf": {},
                    "state": "running",
                    "tasks": {},
                }
            )
        before = generations(env)
        same = script("k8s-kind-up.sh", env)
        assert same.returncode == 0, same.stderr[-3000:]
        assert generations(env) == before

        # A new JWT secret, which the scheduler reads, would replace it: refused, naming
        # the run; nothing is applied, not even the Secrets.
        set_secret(Path(env["APOD_K8S_SECRETS_FILE"]), "AIRFLOW_JWT_SECRET", "b" * 64)
        calls, applied = len(stand_in.calls(env)), applies(env)
        refused = script("k8s-kind-up.sh", env)
        assert refused.returncode != 0
        assert RUN_ID in refused.stderr
        assert "statefulset/airflow-scheduler" in refused.stderr
        assert "FORCE=1" in refused.stderr
        assert applies(env) == applied
        assert not [c for c in stand_in.calls(env)[calls:] if "kind: Secret" in (c["stdin"] or "")]
        assert generations(env) == before

        # FORCE=1 replaces it, and waits for the rollout.
        forced = script("k8s-kind-up.sh", {**env, "FORCE": "1"})
        assert forced.returncode == 0, forced.stderr[-3000:]
        assert "StatefulSet/apod/airflow-scheduler" in rolled(before, generations(env))
        assert unwaited(stand_in.state(env)["clusters"][CONTEXT]) == []
    finally:
        stop_port_forward(env)
