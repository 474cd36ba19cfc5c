"""The Docker gate on the compose stack: what the scheduler can do with Docker.

From inside the scheduler container, through its DOCKER_HOST (the gate), with docker-py
as a compromised task or DAG would: each hostile call is refused with 403 and its
reason, and nothing happened on the engine. The demo run, which went through the same
gate, succeeded (test_compose_pipeline.py::test_demo_run_succeeds); here: the gate let
its step containers through. The gate's rules one by one: tests/unit and tests/docker.
"""

from __future__ import annotations

import json
import re

import pytest
from support.services import VERSION, docker

pytestmark = pytest.mark.compose

PREFIX = "refused by the APOD Docker gate: "

# Run in the scheduler: each attempt's (status, message) as JSON on stdout.
HOSTILE = r"""
import io, json, os, sys
import docker

args = json.loads(sys.argv[1])
client = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto", timeout=60)
label = {"org.apod.pipeline": "apod", "org.apod.test": args["marker"]}

def attempt(call):
    try:
        call()
        return [0, "allowed"]
    except docker.errors.APIError as exc:
        return [exc.status_code, exc.explanation or ""]

def create(image=args["step_image"], **host):
    host.setdefault("network_mode", args["network"])
    config = client.create_host_config(**host)
    return lambda: client.create_container(image, ["--help"], labels=label, host_config=config)

postgres = args["postgres"]
print(json.dumps({
    "privileged": attempt(create(privileged=True)),
    "bind mount of /": attempt(create(binds=["/:/host"])),
    "host network": attempt(create(network_mode="host")),
    "not a step image": attempt(create(image=args["other_image"])),
    "exec into Postgres": attempt(lambda: client.exec_create(postgres, ["psql", "-U", "postgres"])),
    "image tag": attempt(lambda: client.tag(args["step_image"], "apod-evil", args["marker"])),
    "build": attempt(lambda: list(client.build(
        fileobj=io.BytesIO(b"FROM scratch\n"), tag="apod-evil:" + args["marker"]))),
    "remove a container without the label": attempt(
        lambda: client.remove_container(postgres, force=True)),
}))
"""

EXPECTED = {
    "privileged": "privileged mode is refused",
    "bind mount of /": "host paths are refused",
    "host network": 'network mode "host" is refused',
    "not a step image": "is not a step image at this version",
    "exec into Postgres": "exec is refused",
    "image tag": "tagging images is refused",
    "build": "image builds are refused",
    "remove a container without the label": "is not the pipeline's",
}


def container(stack, service: str) -> dict:
    cid = stack.compose("ps", "-q", service).stdout.split()[0]
    return json.loads(docker("inspect", cid).stdout)[0]


@pytest.fixture(scope="module")
def hostile(compose_stack) -> dict:
    postgres = container(compose_stack, "postgres")
    args = {
        "marker": compose_stack.project,
        "network": compose_stack.network,
        "step_image": f"apod-transform:{VERSION}",
        "other_image": postgres["Config"]["Image"],
        "postgres": postgres["Id"],
    }
    result = compose_stack.compose(
        "exec", "-T", "airflow-scheduler", "python", "-c", HOSTILE, json.dumps(args)
    )
    return {"results": json.loads(result.stdout), "postgres": postgres, "args": args}


@pytest.mark.parametrize("attempt", list(EXPECTED))
def test_hostile_calls_from_the_scheduler_are_refused_with_their_reason(hostile, attempt):
    status, message = hostile["results"][attempt]
    assert status == 403, (attempt, message)
    assert message.startswith(PREFIX), message
    assert EXPECTED[attempt] in message, message


def test_the_hostile_calls_changed_nothing(compose_stack, hostile):
    postgres = container(compose_stack, "postgres")
    before = hostile["postgres"]
    assert postgres["Id"] == before["Id"]
    assert postgres["State"]["Running"] is True
    assert postgres["State"]["StartedAt"] == before["State"]["StartedAt"]
    marker = hostile["args"]["marker"]
    assert docker("image", "inspect", f"apod-evil:{marker}", check=False).returncode != 0
    made = docker("ps", "-aq", "--filter", f"label=org.apod.test={marker}").stdout.split()
    assert made == []


def test_the_demo_run_went_through_the_gate(compose_stack, hostile):
    assert compose_stack.demo["state"] == "success"
    log = compose_stack.compose("logs", "--no-color", "docker-gate").stdout
    created = re.findall(r"allowed POST (?:/v1\.[0-9]+)?/containers/create", log)
    # a container per step of the demo run (version too, even when it has nothing to do)
    assert len(created) >= 5, log[-3000:]
    # the hostile calls, logged with their reasons
    assert "refused POST /v1.41/containers/create: privileged mode is refused" in log
