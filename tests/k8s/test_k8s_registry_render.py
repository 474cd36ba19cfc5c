"""Images from a registry, one setting: with APOD_IMAGE_REGISTRY and
APOD_IMAGE_PULL_SECRET, every image of every overlay and every pod the DAG launches
(rendered by the operator itself, with the settings the overlay gives the scheduler) is
pulled from that registry under its own content tag, with that pull secret; and
without them, the local names of today and no pull secret."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from k8s_pss import project_violations, restricted_violations
from k8s_render import (
    OVERLAYS,
    REPO,
    config_maps,
    containers,
    kustomize_command,
    pod_spec,
    render_overlay,
    validate,
)
from support.services import VERSION

pytestmark = pytest.mark.k8s

sys.path.insert(0, str(REPO / "scripts"))
import k8s_images  # noqa: E402 - scripts/ is no package
import k8s_overlay  # noqa: E402

from apod_build import content_tags  # noqa: E402
from apod_pipeline.settings import Settings  # noqa: E402

REGISTRY = "127.0.0.1:5000/apod"
PULL_SECRET = "regcred"  # the Secret's name


@pytest.fixture(scope="module")
def tags() -> dict[str, str]:
    names = k8s_images.cluster_images()
    return {n: t for n, t in content_tags.content_tags(REPO, names).items() if n in names}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tags) -> tuple[str, list[dict]]:
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    naming = k8s_overlay.naming_from(tags, REGISTRY, PULL_SECRET)
    return request.param, render_overlay(request.param, naming, f"{request.param}-registry")


def pod_specs(objs: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", pod_spec(o)) for o in objs if pod_spec(o)]


def scheduler_settings(objs: list[dict]) -> Settings:
    """The DAG's settings as the scheduler reads them: the ConfigMap its pod names."""
    (config,) = [d for n, d in config_maps(objs).items() if n.startswith("apod-airflow-config")]
    return Settings.from_env({**config, "APOD_K8S_NAMESPACE": "apod"})


def test_every_image_of_every_overlay_comes_from_the_registry_with_the_secret(rendered, tags):
    _, objs = rendered
    found = pod_specs(objs)
    assert found
    for where, spec in found:
        assert spec["imagePullSecrets"] == [{"name": PULL_SECRET}], where
        for container in containers(spec):
            repository, _, tag = container["image"].rpartition(":")
            assert repository.startswith(f"{REGISTRY}/apod-"), (where, container["image"])
            name = repository.removeprefix(f"{REGISTRY}/apod-")
            assert tag == tags[name], (where, container["image"])
            assert container["imagePullPolicy"] == "IfNotPresent"
        assert restricted_violations(spec) == [], where
    accounts = [o for o in objs if o["kind"] == "ServiceAccount"]
    assert accounts
    for account in accounts:
        assert account["imagePullSecrets"] == [{"name": PULL_SECRET}]
    for obj in objs:
        validate(obj)


def test_every_pod_the_dag_launches_comes_from_the_registry_with_the_secret(rendered, tags):
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    from support.airflow_render import render_pods

    _, objs = rendered
    settings = scheduler_settings(objs)
    pods = render_pods(
        logical_date=None, start_date="2024-01-01", end_date="2024-01-31",
        settings=settings,
    )  # fmt: skip
    assert [task for task, _ in pods] == [
        "extract", "transform", "load_postgres", "load_csv", "version",
    ]  # fmt: skip
    step_tags = {name: tags[name] for name in k8s_images.step_images()}
    for task, pod in pods:
        spec = pod["spec"]
        assert spec["imagePullSecrets"] == [{"name": PULL_SECRET}], task
        (container,) = spec["containers"]
        name = "load" if task.startswith("load_") else task
        assert container["image"] == f"{REGISTRY}/apod-{name}:{step_tags[name]}"
        assert restricted_violations(spec) == [], task
        validate(pod)
    # The one setting carries every step image's tag, and only theirs.
    assert dict(settings.image_tags) == step_tags


def test_without_the_settings_the_local_names_and_no_pull_secret(monkeypatch):
    if kustomize_command() is None:
        pytest.skip("no kubectl or kustomize on PATH")
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    from support.airflow_render import render_pods

    monkeypatch.delenv("APOD_IMAGE_REGISTRY", raising=False)
    monkeypatch.delenv("APOD_IMAGE_PULL_SECRET", raising=False)
    objs = render_overlay("kind", k8s_overlay.naming_from(), "kind-local-names")
    for where, spec in pod_specs(objs):
        assert "imagePullSecrets" not in spec, where
        assert project_violations(spec, VERSION) == [], where
        for container in containers(spec):
            assert container["image"].startswith("apod-"), where
    assert all("imagePullSecrets" not in o for o in objs if o["kind"] == "ServiceAccount")
    for task, pod in render_pods(settings=scheduler_settings(objs)):
        assert not pod["spec"].get("imagePullSecrets"), task  # the operator renders []
        assert pod["spec"]["containers"][0]["image"].startswith("apod-"), task


def test_make_k8s_render_takes_the_registry_from_the_environment(tmp_path):
    """APOD_IMAGE_REGISTRY / APOD_IMAGE_PULL_SECRET alone name everything: the one setting."""
    target = REPO / ".cache" / "k8s" / f"test-registry-env-{os.getpid()}"
    env = {**os.environ, "APOD_IMAGE_REGISTRY": REGISTRY, "APOD_IMAGE_PULL_SECRET": PULL_SECRET}
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "k8s_overlay.py"), "minikube", str(target)],
        env=env, check=True,
    )  # fmt: skip
    text = (target / "kustomization.yaml").read_text()
    assert f"APOD_IMAGE_REGISTRY={REGISTRY}" in text
    assert f"APOD_IMAGE_PULL_SECRET={PULL_SECRET}" in text
    assert text.count(f'newName: "{REGISTRY}/apod-') == len(k8s_images.cluster_images())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("APOD_IMAGE_REGISTRY", "https://registry.example.com"),
        ("APOD_IMAGE_REGISTRY", "Registry Example"),
        ("APOD_IMAGE_TAGS", "extract"),
        ("APOD_IMAGE_TAGS", "extract=a b"),
    ],
)
def test_a_malformed_setting_is_refused_with_its_name(variable, value):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


def test_the_settings_name_each_image_with_its_own_tag():
    settings = Settings.from_env(
        {
            "APOD_IMAGE_TAG": "1.0",
            "APOD_IMAGE_TAGS": "extract=1.0-k8s.aaaaaaaaaaaa,load=1.0-k8s.bbbbbbbbbbbb",
            "APOD_IMAGE_REGISTRY": "registry.example.com:443/team/apod/",
        }
    )
    assert (
        settings.image("extract")
        == "registry.example.com:443/team/apod/apod-extract:1.0-k8s.aaaaaaaaaaaa"
    )
    assert (
        settings.image("load")
        == "registry.example.com:443/team/apod/apod-load:1.0-k8s.bbbbbbbbbbbb"
    )
    assert settings.image("transform") == "registry.example.com:443/team/apod/apod-transform:1.0"
