"""The compose stack's object store after the demo run (issue 15): the version step pushed
the CSV to the stack's S3 store by default, a fresh clone of the data volume's repository
gets that CSV back byte for byte with the documented restore command (docs/object-store.md,
"Restore a version"), and the store's key shows up in no command line, container
configuration, task log or the data repository."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from urllib.parse import quote

import pytest
from support.objectstore import object_key
from support.services import REPO, docker, docker_volume, image

from e2e.stack import DAG_ID

pytestmark = pytest.mark.compose

AIRFLOW_ENV = REPO / "k8s" / "base" / "airflow" / "airflow.env"
DVC_FILE = "apod_data.csv.dvc"


def default_remote() -> tuple[str, str]:
    """(bucket, prefix) of the DVC remote every compose and Kubernetes run pushes to."""
    match = re.search(r"^APOD_DVC_REMOTE=s3://([^/\s]+)/(\S+)$", AIRFLOW_ENV.read_text(), re.M)
    assert match, f"{AIRFLOW_ENV} names no s3:// DVC remote"
    return match.group(1), match.group(2)


def committed_md5(stack, rev: str = "HEAD") -> str:
    dvc_file = stack.in_data_volume("git", "-C", "/data", "show", f"{rev}:{DVC_FILE}")
    match = re.search(r"md5: ([0-9a-f]{32})", dvc_file)
    assert match, dvc_file
    return match.group(1)


def keys_of(stack) -> tuple[str, str]:
    env = stack.env
    return env["APOD_S3_ACCESS_KEY_ID"], env["APOD_S3_SECRET_ACCESS_KEY"]


def shows_a_key(text: str, keys: tuple[str, str]) -> bool:
    # A plain bool for the assertions: pytest would print the operands of `key in text`.
    return any(key in text for key in keys)


def test_the_demo_version_is_in_the_stack_bucket(compose_stack):
    assert compose_stack.demo["tasks"].get("version") == "success", compose_stack.demo
    bucket, prefix = default_remote()
    md5 = committed_md5(compose_stack)
    store = compose_stack.object_store()  # on the published loopback port, the stack's key
    assert store.bucket == bucket
    key = object_key(prefix, md5)
    assert key in store.object_keys()
    pushed = store.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.md5(pushed).hexdigest() == md5  # noqa: S324 - DVC's content address
    # The committed DVC config names the bucket and prefix only: no endpoint, no key.
    config = compose_stack.in_data_volume("git", "-C", "/data", "show", "HEAD:.dvc/config")
    assert f"s3://{bucket}/{prefix}" in config
    assert "objectstore" not in config
    assert "8333" not in config


def test_a_fresh_clone_of_the_data_repository_restores_the_csv(compose_stack):
    md5 = committed_md5(compose_stack)
    access_key, secret_key = keys = keys_of(compose_stack)
    env = compose_stack.env
    with docker_volume("apod-e2e-restore") as clone:
        # The data repository lives on the stack's data volume: cloned from there by the
        # image's own user, who owns it (git refuses a repository of another user).
        docker(
            "run", "--rm", "--network", "none",
            "-v", f"{env['APOD_DATA_VOLUME']}:/src:ro", "-v", f"{clone}:/data",
            "--entrypoint", "git", image("version"), "clone", "-q", "/src", "/data",
        )  # fmt: skip
        ls = docker("run", "--rm", "-v", f"{clone}:/data", "--entrypoint", "ls", image("version"),
                    "-A", "/data").stdout.split()  # fmt: skip
        assert DVC_FILE in ls
        assert "apod_data.csv" not in ls
        # The documented restore command (docs/object-store.md): the key by name only.
        restored = subprocess.run(
            ["docker", "run", "--rm", "--network", compose_stack.network,
             "-v", f"{clone}:/data",
             "-e", "AWS_ENDPOINT_URL_S3=http://objectstore:8333",
             "-e", "AWS_ACCESS_KEY_ID", "-e", "AWS_SECRET_ACCESS_KEY",
             image("version"), "restore"],
            env=os.environ | {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        leaked = shows_a_key(restored.stdout + restored.stderr, keys)
        assert not leaked
        assert restored.returncode == 0, restored.stderr[-3000:]
        csv_md5 = docker(
            "run", "--rm", "-v", f"{clone}:/data:ro", "--entrypoint", "md5sum", image("version"),
            "/data/apod_data.csv",
        ).stdout.split()[0]  # fmt: skip
    assert csv_md5 == md5


def test_the_store_key_is_in_no_command_line_config_log_or_history(compose_stack):
    keys = keys_of(compose_stack)
    label = f"label=com.docker.compose.project={compose_stack.project}"
    ids = docker("ps", "-aq", "--filter", label).stdout.split()
    infos = json.loads(docker("inspect", *ids).stdout)
    assert any(i["Config"]["Labels"]["com.docker.compose.service"] == "objectstore" for i in infos)
    for info in infos:
        service = info["Config"]["Labels"]["com.docker.compose.service"]
        argv = json.dumps([info["Path"], info["Args"], info["Config"]["Cmd"],
                           info["Config"]["Entrypoint"]])  # fmt: skip
        leaked = shows_a_key(argv, keys)
        assert not leaked, f"{service}: the S3 key is on its command line"
        if service == "objectstore":
            # The store reads its key from the secret files, not its environment.
            leaked = shows_a_key(json.dumps(info["Config"]["Env"]), keys)
            assert not leaked, "the store's environment holds its key"
        if info["State"]["Running"]:
            cmdlines = docker(
                "exec", info["Id"], "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null || true"
            ).stdout  # fmt: skip
            assert cmdlines, service
            leaked = shows_a_key(cmdlines, keys)
            assert not leaked, f"{service}: a process has the S3 key on its command line"
    # The data repository: its whole history, and the uncommitted local config.
    history = compose_stack.in_data_volume("git", "-C", "/data", "log", "-p", "--all")
    local = compose_stack.in_data_volume("sh", "-c", "cat /data/.dvc/config*")
    assert "s3://" in local
    leaked = [shows_a_key(text, keys) for text in (history, local)]
    assert leaked == [False, False], "(git history, .dvc/config*) hold the S3 key"
    # The version task's log of the demo run, which names the version it pushed.
    run_id = compose_stack.demo["run_id"]
    (commit,) = [c.split()[0] for c in compose_stack.commits_of_dvc_file() if run_id in c]
    api = compose_stack.api()
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/version"
    try_number = api.call("GET", base).get("try_number") or 1
    task_log = json.dumps(api.call("GET", f"{base}/logs/{try_number}"))
    assert committed_md5(compose_stack, commit) in task_log, task_log[-2000:]
    leaked = shows_a_key(task_log, keys)
    assert not leaked, "the version task's log holds the S3 key"
