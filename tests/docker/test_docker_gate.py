"""The Docker gate (images/docker-gate) in front of the real Docker engine.

One gate container for the module, on a network and data volume of its own, published
on a loopback port; its request timeout is 2 s so that the slow-request cases are quick.
Through it: DockerOperator runs every step as the DAG builds it; each allowed call on a
container of the pipeline works; each refused one answers 403 with its reason and
changes nothing; malformed, oversized, slow and smuggled requests are refused while the
gate keeps serving. The rules one by one: tests/unit/test_docker_gate_rules.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import socket
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker as docker_py
import pytest
from support.services import VERSION, docker, image, require_images

from apod_pipeline import docker_contract
from apod_pipeline.settings import Settings
from apod_pipeline.steps import steps

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

REQUEST_TIMEOUT = 2  # the gate's APOD_GATE_REQUEST_TIMEOUT here
PREFIX = "refused by the APOD Docker gate: "
# The deployments' remote: version then mounts the data volume only.
DVC_REMOTE = "s3://apod-dvc/apod"


@dataclass
class Gate:
    name: str
    port: int
    network: str
    volume: str
    marker: str  # a label value on every container the tests make directly
    made: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return Settings(
            image_tag=VERSION,
            docker_url=self.url,
            docker_network=self.network,
            data_volume=self.volume,
            dvc_remote=DVC_REMOTE,
        )

    def client(self) -> docker_py.APIClient:
        return docker_py.APIClient(base_url=self.url, version="auto", timeout=60)

    def labels(self, pipeline: bool = True) -> dict[str, str]:
        labels = {"org.apod.test": self.marker}
        if pipeline:
            labels[docker_contract.PIPELINE_LABEL] = docker_contract.PIPELINE
        return labels

    def pipeline_container(self, client: docker_py.APIClient) -> str:
        """A container as the pipeline makes one (step image, label), through the gate."""
        container = client.create_container(
            f"apod-transform:{VERSION}",
            ["--help"],
            labels=self.labels(),
            host_config=client.create_host_config(network_mode="none"),
        )["Id"]
        self.made.append(container)
        return container

    def exists(self, container: str) -> bool:
        return docker("container", "inspect", container, check=False).returncode == 0


def wait_healthy(name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if not state["Running"] or time.monotonic() > deadline:
            logs = docker("logs", name, check=False)
            pytest.fail(f"the gate is not healthy: {state}\n{logs.stdout}{logs.stderr}")
        time.sleep(1)


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    require_images("docker-gate", "extract", "transform", "load", "version")
    suffix = secrets.token_hex(4)
    the_gate = Gate(
        name=f"apod-test-gate-{suffix}",
        port=0,
        network=f"apod-test-gate-net-{suffix}",
        volume=f"apod-test-gate-data-{suffix}",
        marker=suffix,
    )
    docker("network", "create", the_gate.network)
    docker("volume", "create", the_gate.volume)
    try:
        docker(
            "run", "-d", "--name", the_gate.name,
            "--group-add", str(os.stat("/var/run/docker.sock").st_gid),
            "-v", "/var/run/docker.sock:/var/run/docker.sock",
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges:true",
            "-e", f"APOD_DOCKER_NETWORK={the_gate.network}",
            "-e", f"APOD_DATA_VOLUME={the_gate.volume}",
            "-e", f"APOD_DVC_REMOTE={DVC_REMOTE}",
            "-e", f"APOD_GATE_REQUEST_TIMEOUT={REQUEST_TIMEOUT}",
            "-p", "127.0.0.1::2375",
            image("docker-gate"),
        )  # fmt: skip
        wait_healthy(the_gate.name)
        the_gate.port = int(docker("port", the_gate.name, "2375/tcp").stdout.split(":")[-1])
        yield the_gate
    finally:
        ours = docker(
            "ps", "-aq", "--filter", f"label=org.apod.test={suffix}",
        ).stdout.split() + docker(
            "ps", "-aq", "--filter", f"network={the_gate.network}",
        ).stdout.split()  # fmt: skip
        for container in {*ours, *the_gate.made, the_gate.name}:
            docker("rm", "-f", container, check=False)
        docker("network", "rm", the_gate.network, check=False)
        docker("volume", "rm", "-f", the_gate.volume, check=False)


def refusal(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(docker_py.errors.APIError) as caught:
        call(*args, **kwargs)
    return caught.value.status_code, caught.value.explanation or ""


# --- the gate itself ----------------------------------------------------------------------


def test_the_gate_runs_as_its_own_user_with_the_socket_s_group_only(gate):
    info = json.loads(docker("inspect", gate.name).stdout)[0]
    assert info["Config"]["User"] == "10002:10002"
    assert info["HostConfig"]["GroupAdd"] == [str(os.stat("/var/run/docker.sock").st_gid)]
    uids = {
        row.split()[1] for row in docker("top", gate.name, "-eo", "pid,uid").stdout.splitlines()[1:]
    }
    assert uids == {"10002"}  # HAProxy and the checker alike
    assert info["Config"]["Healthcheck"]["Test"][-1] == "health"
    policy = docker("exec", gate.name, "python3", "-m", "apod_docker_gate", "policy").stdout
    assert f"apod-extract:{VERSION}: volumes {gate.volume}:/data;" in policy


# --- what the pipeline does passes --------------------------------------------------------


def test_docker_operator_runs_every_step_through_the_gate(gate):
    """The DAG's own operator, with the DAG's own arguments (its command aside: --help),
    makes, attaches to, starts, waits for and removes each step's container."""
    from airflow.providers.docker.operators.docker import DockerOperator

    from apod_pipeline.docker import ApodDockerOperator, docker_kwargs

    for step in steps(gate.settings):
        kwargs = docker_kwargs(step, gate.settings)
        kwargs["command"] = ["--help"]
        operator = ApodDockerOperator(**kwargs)
        operator._private_environment = {ref.env: "not-a-secret" for ref in step.secrets}
        lines = DockerOperator.execute(operator, {})
        assert "usage" in "\n".join(lines).lower(), (step.task_id, lines)
    left = docker("ps", "-aq", "--filter", f"network={gate.network}").stdout.split()
    assert left == []  # auto_remove="force": removed through the gate too


def test_a_refused_call_fails_the_task_with_the_gate_s_reason(gate):
    from airflow.providers.docker.operators.docker import DockerOperator

    from apod_pipeline.docker import ApodDockerOperator, docker_kwargs

    step = next(s for s in steps(gate.settings) if s.task_id == "transform")
    kwargs = docker_kwargs(step, gate.settings)
    operator = ApodDockerOperator(**{**kwargs, "command": ["--help"], "privileged": True})
    with pytest.raises(docker_py.errors.APIError) as caught:
        DockerOperator.execute(operator, {})
    # What the task log shows: the exception's text, with the reason.
    assert "403 Client Error" in str(caught.value)
    assert PREFIX + "privileged mode is refused" in str(caught.value)


def secrets_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("nasa-api-key")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"key"))
    return buffer.getvalue()


def test_every_allowed_call_on_a_pipeline_container(gate):
    client = gate.client()
    assert client.ping()
    assert client.version()["ApiVersion"]
    transform = f"apod-transform:{VERSION}"
    assert client.images(name=transform)  # what DockerOperator asks before it would pull
    container = gate.pipeline_container(client)
    # The secrets go in before the start; the step images may not have the directory
    # (then the engine, not the gate, says so).
    response = client.put(
        client._url("/containers/{0}/archive", container),
        params={"path": docker_contract.SECRETS_DIR},
        data=secrets_tar(),
    )
    assert response.status_code in (200, 404), response.text
    assert not response.text.startswith('{"message": "' + PREFIX)
    stream = client.attach(container, stdout=True, stderr=True, stream=True)
    client.start(container)
    output = b"".join(stream)
    assert b"usage" in output.lower()
    assert client.wait(container)["StatusCode"] == 0
    assert b"usage" in client.logs(container).lower()
    assert client.inspect_container(container)["Config"]["Labels"]["org.apod.test"]
    client.stop(container, timeout=1)
    client.remove_container(container, force=True)
    assert not gate.exists(container)


# --- what the pipeline does not do is refused ---------------------------------------------


def test_hostile_containers_are_refused_and_never_made(gate):
    client = gate.client()
    step_image = f"apod-transform:{VERSION}"

    def create(image_name=step_image, user=None, entrypoint=None, **host) -> tuple[int, str]:
        host.setdefault("network_mode", gate.network)
        return refusal(
            client.create_container,
            image_name,
            ["--help"],
            user=user,
            entrypoint=entrypoint,
            labels=gate.labels(),
            host_config=client.create_host_config(**host),
        )

    cases = {
        "privileged mode is refused": create(privileged=True),
        "host paths are refused": create(binds=["/:/host"]),
        '"bind" mounts are refused': create(
            mounts=[docker_py.types.Mount("/host", "/", type="bind")]
        ),
        'network mode "host" is refused': create(network_mode="host"),
        "is not a step image at this version": create(image_name=f"apod-airflow:{VERSION}"),
        'user "0" is refused': create(user="0"),
        "added capabilities are refused": create(cap_add=["SYS_ADMIN"]),
        "host namespaces are refused": create(pid_mode="host"),
        "another container's volumes are refused": create(volumes_from=[gate.name]),
        "devices are refused": create(devices=["/dev/mem:/dev/mem"]),
        "replacing the step image's entrypoint is refused": create(entrypoint=["sh"]),
    }
    for reason, (status, message) in cases.items():
        assert status == 403, (reason, message)
        assert message.startswith(PREFIX), (reason, message)
        assert reason in message, (reason, message)
    made = docker("ps", "-aq", "--filter", f"label=org.apod.test={gate.marker}").stdout.split()
    assert made == []


@pytest.fixture
def foreign(gate) -> Iterator[str]:
    """A container that is not the pipeline's (made directly, as Postgres is)."""
    container = docker(
        "create", "--network", "none", "--label", f"org.apod.test={gate.marker}",
        image("transform"), "--help",
    ).stdout.strip()  # fmt: skip
    gate.made.append(container)
    yield container
    docker("rm", "-f", container, check=False)


def test_calls_on_a_container_that_is_not_the_pipeline_s_are_refused(gate, foreign):
    client = gate.client()
    for call, args in (
        (client.start, ()),
        (client.inspect_container, ()),
        (client.logs, ()),
        (client.stop, ()),
        (client.wait, ()),
        (client.remove_container, ()),
        (client.exec_create, (["sh"],)),
        (client.put_archive, (docker_contract.SECRETS_DIR, secrets_tar())),
    ):
        status, message = refusal(call, foreign, *args)
        assert status == 403, (call.__name__, message)
        assert message.startswith(PREFIX), (call.__name__, message)
    state = json.loads(docker("inspect", "-f", "{{json .State}}", foreign).stdout)
    assert state["Status"] == "created"  # never started, never removed


def test_exec_images_volumes_networks_and_the_system_are_refused(gate):
    client = gate.client()
    ours = gate.pipeline_container(client)
    tag = f"apod-test-gate-retag-{gate.marker}"
    calls = {
        "exec is refused": lambda: client.exec_create(ours, ["sh"]),
        "tagging images is refused": lambda: client.tag(f"apod-transform:{VERSION}", tag),
        "pushing images is refused": lambda: client.push(f"apod-transform:{VERSION}"),
        "pulling or importing images is refused": lambda: client.pull("apod-transform", "x"),
        "removing images is refused": lambda: client.remove_image(f"apod-transform:{VERSION}"),
        "image builds are refused": lambda: list(
            client.build(fileobj=io.BytesIO(b"FROM scratch\n"), tag=tag)
        ),
        "volume calls are refused": lambda: client.create_volume(f"apod-test-gate-{gate.marker}"),
        "network calls are refused": lambda: client.connect_container_to_network(ours, "host"),
        "system, registry and plugin calls are refused": client.info,
        "listing containers is refused": client.containers,
        "committing containers to images is refused": lambda: client.commit(ours, tag),
    }
    for reason, call in calls.items():
        status, message = refusal(call)
        assert (status, message) == (403, PREFIX + reason) or (
            status == 403 and message.startswith(PREFIX + reason)
        ), (reason, status, message)
    assert docker("image", "inspect", tag, check=False).returncode != 0
    client.remove_container(ours, force=True)


# --- requests the gate cannot read --------------------------------------------------------


def exchange(gate: Gate, data: bytes, wait: float = 10) -> bytes:
    """Send raw bytes and nothing more, read until the gate closes the connection."""
    with socket.create_connection(("127.0.0.1", gate.port), timeout=wait) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # else the gate keeps it open for the next request
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def statuses(answer: bytes) -> list[int]:
    """The status of each response, in order (a body may run into the next status line)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", answer)]


def message(answer: bytes) -> str:
    return json.loads(answer.partition(b"\r\n\r\n")[2].split(b"\r\n")[-1] or b"{}")["message"]


def assert_serving(gate: Gate) -> None:
    assert gate.client().ping()
    assert json.loads(docker("inspect", "-f", "{{json .State}}", gate.name).stdout)["Running"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /_ping HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET /_ping HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100_000 + b"\r\n\r\n", 400),
        (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
        (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"2\r\n{}\r\n0\r\n\r\n", 411),
        (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{not json", 400),
        (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]", 400),
        (b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
         b"ab", 400),
    ],
    ids=["garbage", "bad-header", "huge-header", "huge-body", "chunked", "bad-json",
         "json-array", "two-lengths"],
)  # fmt: skip
def test_what_cannot_be_read_is_refused_and_the_gate_keeps_serving(gate, data, status):
    answer = exchange(gate, data)
    assert statuses(answer)[:1] == [status], answer[:500]
    if status != 400 or b"json" in answer[:300]:
        assert message(answer).startswith(PREFIX)
    assert_serving(gate)


@pytest.mark.parametrize(
    "data",
    [b"GET /_ping HTTP/1.1\r\nHost:", b"POST /containers/create HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 100\r\n\r\n{\"Image\":"],
    ids=["slow-head", "slow-body"],
)  # fmt: skip
def test_a_slow_request_times_out_while_others_are_served(gate, data):
    with socket.create_connection(("127.0.0.1", gate.port), timeout=30) as slow:
        slow.sendall(data)
        started = time.monotonic()
        assert gate.client().ping()  # not held up by the slow one
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := slow.recv(65536):
                answer += chunk
        assert time.monotonic() - started >= REQUEST_TIMEOUT - 1
    assert statuses(answer)[:1] in ([408], []), answer[:300]  # 408, or closed
    assert_serving(gate)


# --- smuggling: a request the gate did not check never reaches the engine ---------------


def test_smuggled_requests_never_reach_the_engine(gate, foreign):
    client = gate.client()
    ours = gate.pipeline_container(client)

    def delete(path: str) -> bytes:
        return f"DELETE {path}?force=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode()

    kill = delete(f"/containers/{foreign}")
    attempts = {
        "pipelined": b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n" + kill,
        "in-a-body": (
            f"POST /containers/{ours}/wait HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(kill)}\r\n\r\n".encode() + kill
        ),
        "length-and-chunked": (
            f"POST /containers/{ours}/start HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode() + kill
        ),
        "dot-dot": delete(f"/containers/{ours}/../{foreign}"),
        "encoded": delete(f"/containers/%2E%2E/{foreign}"),
        "short-id": delete(f"/containers/{foreign[:12]}"),
        "absolute": delete(f"http://docker/containers/{foreign}"),
        "attach-then-more": (
            f"POST /containers/{foreign}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode() + kill
        ),
    }  # fmt: skip
    for name, data in attempts.items():
        answer = exchange(gate, data, wait=REQUEST_TIMEOUT + 5)
        codes = statuses(answer)
        assert codes, name
        assert all(code != 204 for code in codes), (name, answer[:400])
        assert any(code in (400, 403, 411) for code in codes), (name, answer[:400])
        assert gate.exists(foreign), name
    assert gate.exists(ours)
    client.remove_container(ours, force=True)
    assert_serving(gate)
