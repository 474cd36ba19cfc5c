"""The Role of the scheduler's service account grants exactly the requests the installed
KubernetesPodOperator makes, read from its source (tests/k8s/rbac_scan.py): the
operator, its pod manager and the hook methods they call, each request with its own verb
(a watch is not a list)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from k8s_render import REPO, by_kind_name, kustomize_command, render_overlay
from rbac_scan import scan_code

pytestmark = pytest.mark.k8s

ROLE = ("Role", "apod-airflow-pod-launcher")
# pods/exec serves only the XCom sidecar (do_xcom_push) and Istio's sidecar, neither used.
NOT_GRANTED = {("pods/exec", "create")}


def provider_scan():
    provider = pytest.importorskip("airflow.providers.cncf.kubernetes")
    root = Path(provider.__file__).parent

    def source(path: str) -> str:
        return (root / path).read_text(encoding="utf-8")

    # Synchronous mode only: the DAG's tasks do not defer (asserted below), so the async
    # pod manager and hook (the triggerer's) never run. The DAG's own subclass counts too.
    ours = (REPO / "dags" / "apod_pipeline" / "kubernetes.py").read_text(encoding="utf-8")
    return scan_code(
        [
            ("operators/pod.py", source("operators/pod.py"), ["KubernetesPodOperator"]),
            ("utils/pod_manager.py", source("utils/pod_manager.py"), ["PodManager"]),
            ("apod_pipeline/kubernetes.py", ours, ["ApodPodOperator"]),
        ],
        (source("hooks/kubernetes.py"), "KubernetesHook"),
    )


def granted() -> set[tuple[str, str]]:
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    role = by_kind_name(render_overlay("kind"))[ROLE]
    return {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_role_grants_exactly_what_the_pod_operator_requests():
    scan = provider_scan()
    assert scan.needed, "no API calls found: the provider's layout changed"
    needed = scan.needed - NOT_GRANTED
    assert needed <= granted(), f"missing: {sorted(needed - granted())}"
    assert granted() <= needed, f"granted but never requested: {sorted(granted() - needed)}"


def test_the_scan_follows_the_operator_into_the_hook():
    scan = provider_scan()
    assert "get_pod" in scan.hook_methods
    from_hook = {(r.resource, r.verb) for r in scan.requests if r.where.startswith("hook:")}
    assert ("pods", "get") in from_hook


def test_the_dag_tasks_run_synchronously_and_push_no_xcom():
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    from apod_pipeline.kubernetes import pod_task
    from apod_pipeline.settings import Settings
    from apod_pipeline.steps import steps

    for step in steps(Settings()):
        task = pod_task(step, Settings())
        assert task.deferrable is False, step.task_id
        assert task.do_xcom_push is False, step.task_id


# --- the scanner itself, on code written to trip it --------------------------------------

OPERATOR = textwrap.dedent(
    """
    class Operator:
        def poll(self):
            self.client.list_namespaced_pod(namespace="x")
            self.client.list_namespaced_event(namespace="x", watch=True)

        def follow(self):
            w = watch.Watch()
            for event in w.stream(self.client.list_namespaced_pod, namespace="x"):
                pass
            for line in w.stream(self.client.read_namespaced_pod_log, name="p"):
                pass

        def either(self, watching):
            self.client.list_namespaced_job(namespace="x", watch=watching)

        def exec_(self):
            kubernetes_stream(self.client.connect_get_namespaced_pod_exec, "p", "x")

        def through_hook(self):
            return self.hook.fetch("p")
    """
)
HOOK = textwrap.dedent(
    """
    class Hook:
        def fetch(self, name):
            return self._read(name)

        def _read(self, name):
            return self.core_v1_client.read_namespaced_pod(name=name, namespace="x")

        def never_called(self):
            self.core_v1_client.delete_namespaced_pod(name="p", namespace="x")
    """
)


def test_the_scanner_keeps_watch_apart_from_list():
    needed = scan_code([("op", OPERATOR, ["Operator"])], (HOOK, "Hook")).needed
    assert ("pods", "list") in needed  # a plain list call
    assert ("pods", "watch") in needed  # the same method handed to Watch.stream
    assert ("events", "watch") in needed
    assert ("events", "list") not in needed
    assert {("jobs", "list"), ("jobs", "watch")} <= needed  # watch= unknown: both
    assert ("pods/log", "get") in needed  # a followed log is still a get
    assert ("pods/exec", "create") in needed


def test_the_scanner_follows_hook_calls_but_not_unused_hook_methods():
    scan = scan_code([("op", OPERATOR, ["Operator"])], (HOOK, "Hook"))
    assert ("pods", "get") in scan.needed  # Operator -> Hook.fetch -> Hook._read
    assert ("pods", "delete") not in scan.needed
    without_hook = scan_code([("op", OPERATOR, ["Operator"])], ("class Hook: pass", "Hook"))
    assert ("pods", "get") not in without_hook.needed
