"""scripts/k8s_rollout.py, offline: the Secrets' checksums on the pod templates change
for exactly the workloads that read a changed key, and the kustomization it writes
renders them, valid; the waits cover every workload. (The run guard and the rollouts
themselves, through the up scripts: test_k8s_redeploy.py.)"""

from __future__ import annotations

import json
import shutil

import k8s_rollout
import k8s_secrets
import pytest
from k8s_render import (
    REPO,
    by_kind_name,
    kustomize_command,
    pod_spec,
    render,
    render_overlay,
    secret_refs,
    validate,
)

pytestmark = pytest.mark.k8s

VALUES = {name: f"value-of-{name.lower()}" for name in k8s_secrets.GENERATED}


@pytest.fixture(scope="module")
def kind():
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    return render_overlay("kind")


def annotations(objs: list[dict], values: dict[str, str]) -> dict[str, str]:
    patches = k8s_rollout.checksum_patches(objs, k8s_secrets.secret_data(values))
    return {
        f"{p['kind']}/{p['metadata']['name']}": p["spec"]["template"]["metadata"]["annotations"][
            k8s_rollout.CHECKSUM
        ]
        for p in patches
    }


def test_the_pods_secret_keys_are_the_ones_the_manifests_reference(kind):
    for obj in kind:
        spec = pod_spec(obj)
        if spec:
            assert k8s_rollout.secret_keys(spec) == secret_refs(spec), obj["metadata"]["name"]


@pytest.mark.parametrize("name", k8s_secrets.GENERATED)
def test_a_changed_secret_changes_the_template_of_exactly_the_pods_that_read_it(kind, name):
    before = annotations(kind, VALUES)
    after = annotations(kind, {**VALUES, name: "changed"})
    old, new = k8s_secrets.secret_data(VALUES), k8s_secrets.secret_data({**VALUES, name: "changed"})
    changed_keys = {(s, k) for s in old for k in old[s] if old[s][k] != new[s][k]}
    readers = {
        f"{o['kind']}/{o['metadata']['name']}"
        for o in kind
        if pod_spec(o) and o["kind"] != "Pod" and secret_refs(pod_spec(o)) & changed_keys
    }
    assert {w for w in after if after[w] != before.get(w)} == readers
    # Every workload that reads a Secret has one, and only those.
    assert set(before) == {
        f"{o['kind']}/{o['metadata']['name']}"
        for o in kind
        if pod_spec(o) and secret_refs(pod_spec(o))
    }


def test_the_nasa_key_rolls_nothing(kind):
    """Only the DAG's extract pods read it, and each run starts new ones."""
    assert annotations(kind, VALUES) == annotations(kind, {**VALUES, "NASA_API_KEY": "other"})


def test_the_written_kustomization_renders_the_checksums_and_validates(kind, tmp_path):
    overlay = REPO / ".cache" / "k8s" / "test-kustomize" / "kind"  # render_overlay's
    out = REPO / ".cache" / "k8s" / f"test-rollout-{tmp_path.name}"
    patches = k8s_rollout.checksum_patches(kind, k8s_secrets.secret_data(VALUES))
    try:
        k8s_rollout.write_layer(overlay, out, patches)
        objs = render(str(out.relative_to(REPO)))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    expected = annotations(kind, VALUES)
    for obj in objs:
        validate(obj)
        spec_annotations = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {})
        found = (spec_annotations.get("annotations") or {}).get(k8s_rollout.CHECKSUM)
        assert found == expected.get(f"{obj['kind']}/{obj['metadata']['name']}"), obj["metadata"]
    # Nothing else changed.
    strip = json.loads(json.dumps(objs))
    for obj in strip:
        template = (obj.get("spec") or {}).get("template") or {}
        (template.get("metadata") or {}).get("annotations", {}).pop(k8s_rollout.CHECKSUM, None)
        if template.get("metadata", {}).get("annotations") == {}:
            del template["metadata"]["annotations"]
    assert by_kind_name(strip) == by_kind_name(kind)


def test_the_plan_waits_for_every_workload_statefulsets_first(kind):
    waits = k8s_rollout.waits(kind)
    workloads = {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in kind if pod_spec(o)}
    assert set(waits) == workloads
    kinds = [w.split("/")[0] for w in waits]
    assert kinds == sorted(kinds, key=["statefulset", "job", "deployment"].index)


def test_kubectls_json_output_is_read_in_every_shape():
    one, two = {"kind": "A", "metadata": {}}, {"kind": "B", "metadata": {}}
    assert k8s_rollout.json_stream(json.dumps(one, indent=4)) == [one]
    assert k8s_rollout.json_stream(json.dumps(one) + "\n" + json.dumps(two, indent=2)) == [one, two]
    assert k8s_rollout.json_stream(json.dumps({"kind": "List", "items": [one, two]})) == [one, two]
    assert k8s_rollout.json_stream("\n") == []
