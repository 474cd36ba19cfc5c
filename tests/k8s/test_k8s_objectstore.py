"""The object store's Kubernetes workload (k8s/base/objectstore/objectstore.yaml): restricted
pod security, and its pod run with Docker as the kubelet would run it (read-only root,
no capabilities, uid 10001, the Secret's keys as files of mode 0440, a PVC at /data)
serves S3 with exactly that key, with the bucket made on start.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from k8s_podrun import Cluster, docker_run
from k8s_pss import project_violations, restricted_violations
from support.objectstore import BUCKET, ObjectStore, new_keys
from support.services import VERSION, docker, docker_volume, image, require_images

pytestmark = [pytest.mark.k8s]

MANIFEST = Path(__file__).resolve().parents[2] / "k8s/base/objectstore/objectstore.yaml"


class Removal:
    """`docker rm -f` of a container when closed."""

    def __init__(self, name: str):
        self.name = name

    def close(self) -> None:
        docker("rm", "-f", self.name, check=False)


def objects() -> dict[str, dict]:
    return {obj["kind"]: obj for obj in yaml.safe_load_all(MANIFEST.read_text())}


def pod_of(statefulset: dict, claim: str) -> dict:
    """The pod the StatefulSet makes: its template, the claim of its volumeClaimTemplate
    as a volume, and the image tagged as an overlay tags it."""
    template = copy.deepcopy(statefulset["spec"]["template"])
    spec = template["spec"]
    for claim_template in statefulset["spec"].get("volumeClaimTemplates", []):
        name = claim_template["metadata"]["name"]
        spec["volumes"].append({"name": name, "persistentVolumeClaim": {"claimName": claim}})
    for container in spec["containers"]:
        container["image"] = f"{container['image']}:{VERSION}"
    return template


def test_the_workload_is_restricted_and_reached_through_its_service():
    found = objects()
    statefulset, service = found["StatefulSet"], found["Service"]
    pod = pod_of(statefulset, "data-objectstore-0")
    assert restricted_violations(pod["spec"]) == []
    assert project_violations(pod["spec"], VERSION) == []
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    (container,) = pod["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]] == 8333
    # Only the two S3 keys of apod-secrets reach the store; none of the other secrets.
    (keys,) = [v for v in pod["spec"]["volumes"] if "secret" in v]
    assert keys["secret"]["secretName"] == "apod-secrets"
    assert sorted(i["key"] for i in keys["secret"]["items"]) == [
        "s3-access-key-id",
        "s3-secret-access-key",
    ]
    claim = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_the_pod_serves_s3_with_the_secrets_key(tmp_path: Path):
    require_images("objectstore")
    access_key, secret_key = new_keys()
    name = f"apod-test-k8s-objectstore-{secrets.token_hex(4)}"
    with docker_volume("apod-test-k8s-objectstore") as volume:
        cluster = Cluster(
            workdir=tmp_path,
            secrets={
                "apod-secrets": {
                    "s3-access-key-id": access_key,
                    "s3-secret-access-key": secret_key,
                    "database-url": "postgresql://not-for-the-store",
                }
            },
            claims={"data-objectstore-0": volume},
            network="bridge",
        )
        pod = pod_of(objects()["StatefulSet"], "data-objectstore-0")
        started = docker_run(pod, "objectstore", cluster, name=name, detach=True,
                             extra=("-p", "127.0.0.1::8333"))  # fmt: skip
        assert started.returncode == 0, started.stderr
        try:
            mapping = docker("port", name, "8333/tcp").stdout.split()[0]
            store = ObjectStore(name, volume, f"http://{mapping}", access_key, secret_key)
            deadline = time.monotonic() + 120
            while docker("exec", name, "objectstore-healthcheck", check=False).returncode:
                assert time.monotonic() < deadline, store.logs()[-3000:]
                time.sleep(1)
            store.client().put_object(Bucket=BUCKET, Key="probe", Body=b"k8s")
            assert store.object_keys() == ["probe"]
            # The other secret of apod-secrets was not mounted into the store.
            listing = docker("exec", name, "ls", "/run/secrets/objectstore").stdout.split()
            assert listing == ["s3-access-key-id", "s3-secret-access-key"]
            assert secret_key not in store.logs()
        finally:
            docker("rm", "-f", name, check=False)
    assert image("objectstore") == pod["spec"]["containers"][0]["image"]


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_the_version_pod_pushes_to_the_store_pod(tmp_path: Path):
    """The DAG's version pod with the deployments' settings (APOD_DVC_REMOTE=s3://…,
    APOD_S3_ENDPOINT=http://objectstore:8333): the key by secretKeyRef, no DVC remote
    volume; run beside the store's own pod on one network, it pushes and commits."""
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    from support.airflow_render import render_pods

    from apod_pipeline.settings import Settings

    require_images("objectstore", "version")
    settings = Settings(dvc_remote=f"s3://{BUCKET}/apod", s3_endpoint="http://objectstore:8333")
    pods = dict(render_pods(start_date="2024-01-01", end_date="2024-01-01", settings=settings))
    version = pods["version"]
    (container,) = version["spec"]["containers"]
    env = {var["name"]: var for var in container.get("env", [])}
    assert env["APOD_DVC_REMOTE"]["value"] == f"s3://{BUCKET}/apod"
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://objectstore:8333"
    for name, key in (
        ("AWS_ACCESS_KEY_ID", "s3-access-key-id"),
        ("AWS_SECRET_ACCESS_KEY", "s3-secret-access-key"),
    ):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "apod-secrets", "key": key}
    assert "/dvc-remote" not in [m["mountPath"] for m in container["volumeMounts"]]

    access_key, secret_key = new_keys()
    network = f"apod-test-k8s-s3-{secrets.token_hex(4)}"
    store_name = f"apod-test-k8s-objectstore-{secrets.token_hex(4)}"
    docker("network", "create", network)
    try:
        with (
            docker_volume("apod-test-k8s-objectstore") as store_volume,
            docker_volume("apod-test-k8s-data") as data,
            # Leaves before its volume goes (a volume in use is not removed).
            contextlib.closing(Removal(store_name)),
        ):
            cluster = Cluster(
                workdir=tmp_path,
                secrets={
                    "apod-secrets": {
                        "s3-access-key-id": access_key,
                        "s3-secret-access-key": secret_key,
                    }
                },
                claims={"data-objectstore-0": store_volume, "apod-data": data},
                network=network,
            )
            store_pod = pod_of(objects()["StatefulSet"], "data-objectstore-0")
            started = docker_run(store_pod, "objectstore", cluster, name=store_name,
                                 detach=True, extra=("--network-alias", "objectstore"))  # fmt: skip
            assert started.returncode == 0, started.stderr
            deadline = time.monotonic() + 120
            while docker("exec", store_name, "objectstore-healthcheck", check=False).returncode:
                assert time.monotonic() < deadline, docker("logs", store_name).stderr[-3000:]
                time.sleep(1)
            csv = b"date,title\n2024-01-01,NGC 1232\n"
            subprocess.run(
                ["docker", "run", "--rm", "-i", "-v", f"{data}:/data", "--entrypoint", "sh",
                 image("version"), "-c", "cat > /data/apod_data.csv"],
                input=csv, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            result = docker_run(version, container["name"], cluster)
            assert result.returncode == 0, result.stderr[-3000:]
            assert secret_key not in result.stdout + result.stderr
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            md5 = hashlib.md5(csv, usedforsecurity=False).hexdigest()
            assert summary["md5"] == md5
            assert summary["dvc_pushed"] is True
            # The CSV's content-addressed object, as the store's filer lists it.
            listing = docker(
                "exec", store_name, "bash", "-c",
                'weed shell -master=127.0.0.1:9333 -filer=127.0.0.1:8888 <<<"$1" 2>&1',
                "weed-shell", f"fs.ls /buckets/{BUCKET}/apod/files/md5/{md5[:2]}",
            ).stdout  # fmt: skip
            assert md5[2:] in listing, listing
    finally:
        docker("rm", "-f", store_name, check=False)
        docker("network", "rm", network, check=False)
