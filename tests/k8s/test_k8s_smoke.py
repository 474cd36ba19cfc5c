"""scripts/k8s_smoke.py (make k8s-smoke) against the cluster stand-in: the up script, a
DAG run whose pods the stand-in runs with Docker (the rendered pods, their images pulled
from the session's registry under their content tags), the reads through `kubectl exec`
(psql in the Postgres pod, a restricted reader pod on apod-data), the by-hand run, and
the verdicts. The
cluster's DVC remote is a real object store holding the Secret's keys (its endpoint set
like an overlay's): the version pod pushes there. Also: the run it asked for is the only
one the stand-in's scheduler started (make k8s-run)."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from pathlib import Path

import k8s_secrets
import k8s_smoke
import pytest
import stand_in
from k8s_render import REPO, airflow_config
from support.objectstore import object_key, object_store
from support.services import (
    STEP_IMAGES,
    apod_test_server,
    docker,
    docker_volume,
    fresh_database,
    image,
    require_images,
)

pytestmark = [pytest.mark.k8s, pytest.mark.docker, pytest.mark.timeout(1500)]

PG_MAJOR = (REPO / "images" / "postgres" / "PG_MAJOR").read_text().strip()
FIRST, LAST = "2024-01-01", "2024-01-31"


def test_the_smoke_passes_on_the_stand_in_and_starts_only_its_run(tmp_path, registry):
    pytest.importorskip("airflow.providers.cncf.kubernetes")
    require_images(*STEP_IMAGES, "airflow", "objectstore")
    if docker("image", "inspect", f"apod-postgres:{PG_MAJOR}", check=False).returncode != 0:
        pytest.skip(f"apod-postgres:{PG_MAJOR} not built")
    postgres = f"apod-postgres:hk8s-smoke-{secrets.token_hex(3)}"
    stand_in.private_postgres(postgres)
    env = stand_in.environment(tmp_path, registry=registry, APOD_LOCAL_POSTGRES=postgres)
    # The secrets file the up script keeps: made first, so the store gets its S3 key.
    made = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "k8s_secrets.py"), "init",
         env["APOD_K8S_SECRETS_FILE"]],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    values = k8s_secrets.read_env(Path(env["APOD_K8S_SECRETS_FILE"]))
    with (
        stand_in.removing_content_tags(),
        apod_test_server() as server,
        fresh_database("hk8s_smoke") as db,
        docker_volume("hk8s-smoke-data") as data,
        object_store(
            tmp_path / "store-keys",
            keys=(values["APOD_S3_ACCESS_KEY_ID"], values["APOD_S3_SECRET_ACCESS_KEY"]),
        ) as store,
    ):
        env |= {
            "CLUSTER_STUB_RUN_PODS": "1",
            "CLUSTER_STUB_CLAIMS": json.dumps({"apod-data": data}),
            "CLUSTER_STUB_DATABASE": db.url,
            # The cluster's API and object store: an overlay pointing APOD_API_URL at the
            # test server and APOD_S3_ENDPOINT at the store.
            "CLUSTER_STUB_CONFIG": json.dumps(
                {"APOD_API_URL": server.url, "APOD_S3_ENDPOINT": store.endpoint}
            ),
        }
        try:
            smoke = subprocess.run(
                [sys.executable, str(REPO / "scripts" / "k8s_smoke.py"), "kind", "--keep",
                 "--start", FIRST, "--end", LAST],
                env=env, capture_output=True, text=True, timeout=1400,
            )  # fmt: skip
            state = stand_in.state(env)
            pushed = store.object_keys()
            csv = subprocess.run(
                ["docker", "run", "--rm", "-v", f"{data}:/v:ro", "--entrypoint", "cat",
                 image("version"), "/v/apod_data.csv"],
                capture_output=True, check=True,
            ).stdout  # fmt: skip
        finally:
            subprocess.run([str(REPO / "scripts" / "k8s-kind-down.sh")], env=env, check=False)
            stand_in.remove_docker_objects(env)
            docker("image", "rm", postgres, check=False)
    verdicts = [line for line in smoke.stdout.splitlines() if line.startswith("k8s-smoke: ")]
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr[-4000:]
    checks = [line.split()[2] for line in verdicts if line.split()[1] in ("PASS", "FAIL")]
    assert checks == ["run", "rows", "csv", "dvc", "git"]
    assert all(line.split()[1] == "PASS" for line in verdicts[:-1]), verdicts
    assert verdicts[-1] == "k8s-smoke: 5 of 5 checks passed"
    assert "31 rows for 2024-01-01..2024-01-31" in smoke.stdout
    # The version pod pushed the CSV to the store, under the ConfigMap's remote.
    prefix = airflow_config()["APOD_DVC_REMOTE"].removeprefix(f"s3://{store.bucket}/")
    assert object_key(prefix, hashlib.md5(csv, usedforsecurity=False).hexdigest()) in pushed

    (cluster,) = state["clusters"].values()
    (run,) = cluster["airflow"]["runs"]  # no scheduled run beside it
    assert run["run_type"] == "manual"
    assert run["conf"] == {"start_date": FIRST, "end_date": LAST}
    assert run["state"] == "success"
    assert cluster["airflow"]["paused"] is False
    # The reader pod was removed again.
    assert "apod-smoke-reader" not in cluster["pods"]


def test_the_verdicts_fail_on_any_difference():
    csv = b"date,title\n2024-01-01,a\n"
    dvc = b"outs:\n- md5: 0123\n  size: 25\n"
    same = k8s_smoke.Evidence(rows=csv, csv=csv, dvc_file=dvc, commits=["data", "init"])
    assert all(ok for ok, _ in k8s_smoke.compare(same, same, FIRST, LAST))
    for field, other in (
        ("rows", b"date,title\n"),
        ("csv", csv + b"2024-01-02,b\n"),
        ("dvc_file", b"outs:\n- md5: 4567\n  size: 25\n"),
        ("commits", ["data", "data", "init"]),
    ):
        changed = k8s_smoke.Evidence(**{**same.__dict__, field: other})
        verdicts = k8s_smoke.compare(changed, same, FIRST, LAST)
        assert [ok for ok, _ in verdicts].count(False) == 1, (field, verdicts)
