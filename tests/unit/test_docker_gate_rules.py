"""The Docker gate's rule engine (images/docker-gate): every rule, allowed and refused.

The body a create starts from is the one DockerOperator sends for the extract step,
built with docker-py's own types from the operator's arguments (apod_pipeline.docker);
each refused case changes one thing in it. The engine's facts (a container's labels, an
image's USER) are a table here; tests/docker/test_docker_gate.py asks the real engine.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from typing import ClassVar
from urllib.parse import urlencode

import pytest
from docker.types import ContainerConfig, HostConfig, LogConfig, Mount

from apod_docker_gate import rules
from apod_docker_gate.model import Forward, Refused, Request
from apod_docker_gate.policy import Policy
from apod_pipeline import docker_contract
from apod_pipeline.settings import Settings
from apod_pipeline.steps import steps

pytestmark = pytest.mark.unit

SETTINGS = Settings(
    image_tag="1.2.3", docker_network="net-x", data_volume="data-x", dvc_volume="dvc-x"
)
POLICY = Policy.from_settings(SETTINGS)
OURS = "a" * 64  # labelled as the pipeline's
FOREIGN = "b" * 64  # another container (Postgres, say)
GONE = "c" * 64
API = "/v1.41"


class Facts:
    """What the engine would answer."""

    containers: ClassVar = {
        OURS: {"org.apod.pipeline": "apod", "org.apod.step": "extract"},
        FOREIGN: {},
    }
    users: ClassVar = {SETTINGS.image(s.image): "10001:0" for s in steps(SETTINGS)}

    def container_labels(self, container_id):
        return self.containers.get(container_id)

    def image_user(self, image):
        return self.users.get(image)


def step(task_id: str):
    return next(s for s in steps(SETTINGS) if s.task_id == task_id)


def operator_body(task_id: str = "extract") -> dict:
    """What DockerOperator posts for a step: its create_container/create_host_config
    arguments, with the renderer's values."""
    the_step = step(task_id)
    host = HostConfig(
        "1.41",
        auto_remove=False,
        mounts=[
            Mount(v.path, docker_contract.volume_source(v, SETTINGS), type="volume")
            for v in the_step.volumes
        ],
        network_mode=SETTINGS.docker_network,
        cpu_shares=512,
        port_bindings={},
        mem_limit="256m",
        log_config=LogConfig(config={}),
        ulimits=[],
    )
    env = {**the_step.environment, **{s.env: "secret" for s in the_step.secrets}}
    config = ContainerConfig(
        "1.41",
        SETTINGS.image(the_step.image),
        ["--run-id", "manual__1"],
        environment=env,
        ports=[],
        host_config=host,
        labels=docker_contract.labels(the_step),
    )
    return json.loads(json.dumps(config))


def check(method: str, target: str, body: bytes = b"", **headers: str) -> Forward:
    return rules.check(Request(method, target, headers, body), POLICY, Facts())


def create(body, query: str = "") -> Forward:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return check("POST", f"{API}/containers/create{query}", data)


def refused(call, *args, **kwargs) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args, **kwargs)
    return caught.value


# --- what is allowed is derived from the steps -------------------------------------


def test_the_policy_is_the_step_definition_in_the_deployment_names():
    assert set(POLICY.images) == {SETTINGS.image(s.image) for s in steps(SETTINGS)}
    assert POLICY.images["apod-extract:1.2.3"].mounts == {("data-x", "/data")}
    # version mounts the DVC volume only where its remote is a path (the default here)
    assert POLICY.images["apod-version:1.2.3"].mounts == {
        ("data-x", "/data"),
        ("dvc-x", "/dvc-remote"),
    }
    assert POLICY.images["apod-extract:1.2.3"].env == {
        "APOD_API_URL",
        "NASA_API_KEY",
        "NASA_API_KEY_FILE",
    }
    assert POLICY.images["apod-transform:1.2.3"].env == frozenset()
    assert POLICY.networks == ("net-x", "none")
    assert POLICY.label == ("org.apod.pipeline", "apod")
    assert POLICY.longest_step == max(s.execution_timeout for s in steps(SETTINGS))


def test_an_s3_remote_takes_the_dvc_volume_off_the_list():
    policy = Policy.from_settings(Settings(image_tag="1", dvc_remote="s3://bucket/x"))
    assert policy.images["apod-version:1"].mounts == {("apod-data", "/data")}


# --- create: allowed -----------------------------------------------------------------


@pytest.mark.parametrize("task_id", [s.task_id for s in steps(SETTINGS)])
def test_every_step_container_as_the_operator_makes_it_is_allowed(task_id):
    body = operator_body(task_id)
    forward = create(body)
    assert forward.method == "POST"
    assert forward.target == f"{API}/containers/create"
    assert json.loads(forward.body) == body
    assert forward.content_type == "application/json"


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["HostConfig"].update(NetworkMode="none"),
        lambda b: b.update(User="10001:0"),
        lambda b: b.update(User="4242"),
        lambda b: b["HostConfig"].update(CapDrop=["ALL"], ReadonlyRootfs=True, Init=True),
        lambda b: b["HostConfig"].update(SecurityOpt=["no-new-privileges:true"]),
        lambda b: b["HostConfig"].update(Memory=1, NanoCpus=5, PidsLimit=64),
        lambda b: b["HostConfig"]["Mounts"][0].update(ReadOnly=True),
        lambda b: b["HostConfig"].update(LogConfig={"Type": "json-file", "Config": {}}),
        lambda b: b.update(NetworkingConfig={"EndpointsConfig": {"net-x": {}}}),
        lambda b: b.update(SomeFutureField=None),  # unknown, but null
        lambda b: b.pop("User"),  # absent: the image's own USER (10001:0)
        lambda b: b["Labels"].update({"another": "label"}),
    ],
    ids=[
        "network-none",
        "user-uid-gid",
        "user-uid",
        "more-restricted",
        "no-new-privileges",
        "limits",
        "read-only-volume",
        "json-file-log",
        "own-endpoint",
        "unknown-null",
        "image-user",
        "more-labels",
    ],
)
def test_allowed_variations(change):
    body = operator_body()
    change(body)
    assert json.loads(create(body).body) == body


def test_a_container_name_is_allowed():
    assert create(operator_body(), "?name=apod-step_1").target.endswith("?name=apod-step_1")


def test_the_version_step_mounts_its_dvc_volume():
    body = operator_body("version")
    assert {m["Source"] for m in body["HostConfig"]["Mounts"]} == {"data-x", "dvc-x"}
    create(body)


# --- create: refused, one thing changed at a time ------------------------------------

HOST_REFUSALS = {
    "privileged": ({"Privileged": True}, "privileged mode is refused"),
    "cap-add": ({"CapAdd": ["SYS_ADMIN"]}, "added capabilities are refused"),
    "capabilities": ({"Capabilities": ["CAP_SYS_ADMIN"]}, "a capability set is refused"),
    "devices": ({"Devices": [{"PathOnHost": "/dev/sda"}]}, "devices are refused"),
    "device-requests": ({"DeviceRequests": [{"Count": -1}]}, "devices are refused"),
    "device-rules": ({"DeviceCgroupRules": ["a *:* rwm"]}, "devices are refused"),
    "binds-root": ({"Binds": ["/:/host"]}, "host paths are refused"),
    "binds-named": ({"Binds": ["data-x:/data"]}, "host paths are refused"),
    "volumes-from": ({"VolumesFrom": ["apod-docker-gate-1"]}, "another container's volumes"),
    "volume-driver": ({"VolumeDriver": "local"}, "volume drivers are refused"),
    "host-network": ({"NetworkMode": "host"}, 'network mode "host" is refused'),
    "bridge": ({"NetworkMode": "bridge"}, "a step joins net-x or none only"),
    "default-network": ({"NetworkMode": ""}, "a step joins net-x or none only"),
    "container-network": ({"NetworkMode": f"container:{FOREIGN}"}, "is refused"),
    "pid-host": ({"PidMode": "host"}, "host namespaces are refused"),
    "pid-container": ({"PidMode": f"container:{FOREIGN}"}, "host namespaces are refused"),
    "ipc-host": ({"IpcMode": "host"}, "host namespaces are refused"),
    "uts-host": ({"UTSMode": "host"}, "host namespaces are refused"),
    "userns-host": ({"UsernsMode": "host"}, "host namespaces are refused"),
    "cgroupns-host": ({"CgroupnsMode": "host"}, "host namespaces are refused"),
    "seccomp": ({"SecurityOpt": ["seccomp=unconfined"]}, "security options are refused"),
    "apparmor": ({"SecurityOpt": ["apparmor=unconfined"]}, "security options are refused"),
    "sysctls": ({"Sysctls": {"net.ipv4.ip_forward": "1"}}, "kernel parameters are refused"),
    "group-add": ({"GroupAdd": ["0"]}, "supplementary groups are refused"),
    "ports": ({"PortBindings": {"80/tcp": [{"HostPort": "80"}]}}, "publishing ports"),
    "publish-all": ({"PublishAllPorts": True}, "publishing ports"),
    "runtime": ({"Runtime": "runc-privileged"}, "another container runtime"),
    "unmask-proc": ({"MaskedPaths": []}, "masked /proc paths"),
    "writable-proc": ({"ReadonlyPaths": []}, "read-only /proc paths"),
    "cgroup-parent": ({"CgroupParent": "/"}, "another cgroup parent"),
    "oom-score": ({"OomScoreAdj": -1000}, "OOM score adjustment"),
    "oom-kill": ({"OomKillDisable": True}, "disabling the OOM killer"),
    "syslog": ({"LogConfig": {"Type": "syslog", "Config": {}}}, "only a local log driver"),
    "log-option": ({"LogConfig": {"Type": "", "Config": {"tag": "x"}}}, "log option 'tag'"),
    "restart": ({"RestartPolicy": {"Name": "always"}}, "a restart policy is refused"),
    "tmpfs": ({"Tmpfs": {"/run": ""}}, "the steps need no such setting"),
    "extra-hosts": ({"ExtraHosts": ["x:1.2.3.4"]}, "the steps need no such setting"),
    "links": ({"Links": ["postgres:db"]}, "the steps need no such setting"),
    "cidfile": ({"ContainerIDFile": "/etc/x"}, "host paths are refused"),
    "realtime": ({"CpuRealtimeRuntime": 1000}, "real-time scheduling"),
    "lower-case": ({"privileged": True}, "write the field as the Docker API names it"),
    "long-s": ({"Bind\u017f": ["/:/host"]}, "write the field as the Docker API names it"),
    "unknown": ({"SomethingNew": True}, "HostConfig.SomethingNew is not allowed"),
    "wrong-type": ({"Memory": "1g"}, "has the wrong type"),
}


@pytest.mark.parametrize("name", list(HOST_REFUSALS))
def test_host_config_refusals(name):
    change, reason = HOST_REFUSALS[name]
    body = operator_body()
    body["HostConfig"].update(change)
    exc = refused(create, body)
    assert reason in exc.reason
    assert exc.status in (400, 403)
    assert exc.message.startswith("refused by the APOD Docker gate: ")


def mount(**change):
    return {"Target": "/data", "Source": "data-x", "Type": "volume", "ReadOnly": False, **change}


MOUNT_REFUSALS = {
    "bind-root": (mount(Type="bind", Source="/"), '"bind" mounts are refused'),
    "bind-socket": (mount(Type="bind", Source="/var/run/docker.sock"), "mounts are refused"),
    "tmpfs": (mount(Type="tmpfs", Source=""), '"tmpfs" mounts are refused'),
    "other-volume": (mount(Source="apod-pgdata"), 'volume "apod-pgdata" at "/data"'),
    "dvc-volume-on-extract": (mount(Source="dvc-x", Target="/dvc-remote"), "is refused"),
    "wrong-target": (mount(Target="/opt/apod"), 'at "/opt/apod" is refused'),
    "driver-options": (
        mount(VolumeOptions={"DriverConfig": {"Name": "local", "Options": {"device": "/"}}}),
        "volume options are refused",
    ),
    "bind-options": (mount(BindOptions={"Propagation": "shared"}), "host paths are refused"),
}


@pytest.mark.parametrize("name", list(MOUNT_REFUSALS))
def test_mount_refusals(name):
    mounted, reason = MOUNT_REFUSALS[name]
    body = operator_body()
    body["HostConfig"]["Mounts"] = [mounted]
    assert reason in refused(create, body).reason


CONFIG_REFUSALS = {
    "other-image": ({"Image": "postgres:15-bookworm"}, "is not a step image at this version"),
    "airflow-image": ({"Image": "apod-airflow:1.2.3"}, "is not a step image"),
    "other-tag": ({"Image": "apod-extract:0.0.1"}, "is not a step image"),
    "digest": ({"Image": "apod-extract@sha256:" + "0" * 64}, "is not a step image"),
    "no-image": ({"Image": None}, "is not a step image"),
    "root": ({"User": "0"}, 'user "0" is refused'),
    "root-name": ({"User": "root"}, 'user "root" is refused'),
    "root-group": ({"User": "0:0"}, "is refused"),
    "a-name": ({"User": "apod"}, "a numeric uid"),
    "entrypoint": ({"Entrypoint": ["/bin/sh", "-c"]}, "replacing the step image's entrypoint"),
    "empty-entrypoint": ({"Entrypoint": []}, "replacing the step image's entrypoint"),
    "ld-preload": (
        {"Env": ["NASA_API_KEY=x", "LD_PRELOAD=/data/x.so"]},
        "environment variable LD_PRELOAD is refused: the steps of apod-extract:1.2.3 are given",
    ),
    "pythonpath": ({"Env": ["PYTHONPATH=/data"]}, "environment variable PYTHONPATH is refused"),
    "env-no-equals": ({"Env": ["NASA_API_KEY"]}, "is not NAME=value"),
    "no-label": ({"Labels": {}}, "needs the label org.apod.pipeline=apod"),
    "wrong-label": ({"Labels": {"org.apod.pipeline": "other"}}, "needs the label"),
    "stdin": ({"AttachStdin": True}, "attaching stdin is refused"),
    "open-stdin": ({"OpenStdin": True}, "stdin is refused"),
    "healthcheck": ({"Healthcheck": {"Test": ["CMD", "sh"]}}, "the steps need no such"),
    "anonymous-volume": ({"Volumes": {"/x": {}}}, "anonymous volumes are refused"),
    "other-network-endpoint": (
        {"NetworkingConfig": {"EndpointsConfig": {"host": {}}}},
        "endpoint settings are refused",
    ),
    "endpoint-settings": (
        {"NetworkingConfig": {"EndpointsConfig": {"net-x": {"IPAddress": "10.0.0.9"}}}},
        "endpoint settings are refused",
    ),
    "no-host-config": ({"HostConfig": None}, "HostConfig with the network mode is required"),
    "lower-case": ({"shell": ["/bin/sh"]}, "write the field as the Docker API names it"),
    "unknown": ({"Platform": "linux"}, "Platform is not allowed"),
}


@pytest.mark.parametrize("name", list(CONFIG_REFUSALS))
def test_config_refusals(name):
    change, reason = CONFIG_REFUSALS[name]
    body = operator_body()
    body.update(change)
    assert reason in refused(create, body).reason


def test_a_missing_label_or_user_is_not_a_way_around():
    body = operator_body()
    del body["Labels"]
    assert "needs the label" in refused(create, body).reason
    body = operator_body()
    del body["HostConfig"]["NetworkMode"]
    assert "a step joins net-x or none only" in refused(create, body).reason


def test_an_image_whose_user_is_root_needs_a_user():
    class RootImage(Facts):
        users: ClassVar = {"apod-extract:1.2.3": ""}

    body = operator_body()
    request = Request("POST", "/containers/create", {}, json.dumps(body).encode())
    exc = refused(rules.check, request, POLICY, RootImage())
    assert "runs as root: give a non-root User" in exc.reason

    class NoImage(Facts):
        users: ClassVar = {}

    assert refused(rules.check, request, POLICY, NoImage()).status == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "is not valid JSON"),
        (b'["a list"]', "must be a JSON object"),
        (b'{"Image": "x", "Image": "apod-extract:1.2.3"}', "appears twice"),
        (b'{"Memory": NaN}', "NaN is not JSON"),
        (b'{"Memory": 1e400}', "a number JSON cannot carry"),
        (b'\xef\xbb\xbf{"Image": "x"}', "is not valid JSON"),
        (b'{"Image": "\xff"}', "is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
        (b"", "is not valid JSON"),
    ],
    ids=["text", "array", "duplicate", "nan", "infinite", "bom", "latin1", "deep", "empty"],
)
def test_bodies_that_do_not_parse_are_refused(body, reason):
    if body.startswith(b'{"Memory"'):
        template = operator_body()
        template["HostConfig"]["Memory"] = "PLACEHOLDER"
        body = json.dumps(template).replace('"PLACEHOLDER"', body[11:-1].decode()).encode()
    exc = refused(create, body)
    assert reason in exc.reason
    assert exc.status == 400


def test_duplicate_keys_in_another_case_are_refused():
    body = json.dumps(operator_body())[:-1] + ', "image": "postgres:15"}'
    assert "appears twice" in refused(create, body.encode()).reason


def test_the_forwarded_body_is_the_checked_object_not_the_bytes_sent():
    text = json.dumps(operator_body(), indent=4).replace('"Image"', '"\\u0049mage"')
    forward = create(text.encode())
    assert b"\\u0049" not in forward.body
    assert json.loads(forward.body) == operator_body()


def test_create_takes_a_name_only():
    assert "query parameter 'platform'" in refused(create, operator_body(), "?platform=x").reason
    assert "is not allowed here" in refused(create, operator_body(), "?name=../x").reason
    assert "given twice" in refused(create, operator_body(), "?name=a&name=b").reason


# --- the pipeline's own containers -----------------------------------------------------

CONTAINER_CALLS = [
    ("POST", f"{OURS}/start", ""),
    ("POST", f"{OURS}/attach", "logs=0&stdout=1&stderr=1&stream=1"),
    ("POST", f"{OURS}/wait", ""),
    ("POST", f"{OURS}/wait", "condition=next-exit"),
    ("GET", f"{OURS}/logs", "stdout=1&stderr=1&follow=0&timestamps=0&tail=all"),
    ("GET", f"{OURS}/json", ""),
    ("POST", f"{OURS}/stop", "t=10"),
    ("DELETE", OURS, "v=False&link=False&force=True"),
]


@pytest.mark.parametrize(("method", "path", "query"), CONTAINER_CALLS)
def test_calls_on_the_pipeline_s_containers_are_allowed(method, path, query):
    target = f"{API}/containers/{path}" + (f"?{query}" if query else "")
    forward = check(method, target)
    assert (forward.method, forward.target, forward.body) == (method, target, b"")
    assert forward.upgrade is False


@pytest.mark.parametrize(("method", "path", "query"), CONTAINER_CALLS)
def test_the_same_calls_on_another_container_are_refused(method, path, query):
    target = f"{API}/containers/{path.replace(OURS, FOREIGN)}" + (f"?{query}" if query else "")
    exc = refused(check, method, target)
    assert exc.status == 403
    assert f"container {FOREIGN[:12]} is not the pipeline's" in exc.reason


def test_a_container_that_does_not_exist_is_404():
    assert refused(check, "POST", f"/containers/{GONE}/start").status == 404


def test_attach_keeps_its_upgrade_and_only_attach_does():
    forward = check("POST", f"/containers/{OURS}/attach?stream=1", upgrade="tcp")
    assert forward.upgrade is True
    assert check("POST", f"/containers/{OURS}/start", upgrade="tcp").upgrade is False


@pytest.mark.parametrize(
    ("method", "target", "reason"),
    [
        ("POST", f"/containers/{OURS[:12]}/start", "full 64-digit id only"),
        ("POST", "/containers/apod-e2e-postgres-1/start", "full 64-digit id only"),
        ("DELETE", "/containers/apod-e2e-postgres-1", "full 64-digit id only"),
        ("POST", f"/containers/{OURS}/start?x=1", "query parameter 'x'"),
        ("POST", f"/containers/{OURS}/attach?stdin=1", "query parameter 'stdin'"),
        ("POST", f"/containers/{OURS}/attach?detachKeys=x", "query parameter 'detachKeys'"),
        ("DELETE", f"/containers/{OURS}?link=1", "query parameter link='1'"),
        ("POST", f"/containers/{OURS}/wait?condition=x", "query parameter condition='x'"),
        ("POST", f"/containers/{OURS}/kill", "this call on a container is refused"),
        ("POST", f"/containers/{OURS}/rename?name=x", "this call on a container is refused"),
        ("POST", f"/containers/{OURS}/update", "this call on a container is refused"),
        ("GET", f"/containers/{OURS}/export", "this call on a container is refused"),
        ("GET", f"/containers/{OURS}/archive?path=/", "reading files out of a container"),
        ("HEAD", f"/containers/{OURS}/archive?path=/run/apod-secrets", "reading files out"),
        ("POST", f"/containers/{OURS}/exec", "exec is refused"),
        ("POST", f"/containers/{FOREIGN}/exec", "exec is refused"),
        ("POST", "/exec/" + "d" * 64 + "/start", "exec is refused"),
    ],
)
def test_other_container_calls_are_refused(method, target, reason):
    assert reason in refused(check, method, target).reason


def test_a_body_on_a_call_that_takes_none_is_refused():
    # A second request hidden in a body is never even read as one.
    smuggled = f"DELETE /containers/{FOREIGN}?force=1 HTTP/1.1\r\n\r\n".encode()
    assert "takes no body" in refused(check, "POST", f"/containers/{OURS}/wait", smuggled).reason


# --- the secrets archive ----------------------------------------------------------------


def tar(*members: tuple[str, bytes | None], kind: bytes = tarfile.REGTYPE, mode="w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            info.size = len(data or b"")
            archive.addfile(info, io.BytesIO(data or b""))
    return buffer.getvalue()


SECRETS = urlencode({"path": docker_contract.SECRETS_DIR})


def test_secrets_go_into_the_one_directory():
    body = tar(("nasa-api-key", b"k"), ("./database-url", b"u"))
    forward = check("PUT", f"{API}/containers/{OURS}/archive?{SECRETS}", body)
    assert forward.target == f"{API}/containers/{OURS}/archive?path=%2Frun%2Fapod-secrets"
    assert (forward.body, forward.content_type) == (body, "application/x-tar")


@pytest.mark.parametrize(
    ("container", "query", "body", "reason"),
    [
        (OURS, "path=/etc", tar(("x", b"")), 'into /run/apod-secrets only, not "/etc"'),
        (OURS, "path=/run/apod-secrets/", tar(("x", b"")), "files may be put into"),
        (OURS, "", tar(("x", b"")), "files may be put into /run/apod-secrets only, not null"),
        (OURS, f"{SECRETS}&noOverwriteDirNonDir=0", tar(("x", b"")), "noOverwriteDirNonDir"),
        (FOREIGN, SECRETS, tar(("x", b"")), "is not the pipeline's"),
        (OURS, SECRETS, tar(("../../opt/apod/x", b"")), "plain files directly in"),
        (OURS, SECRETS, tar(("sub/x", b"")), "plain files directly in"),
        (OURS, SECRETS, tar(("link", None), kind=tarfile.SYMTYPE), "plain files directly in"),
        (OURS, SECRETS, tar(("dir", None), kind=tarfile.DIRTYPE), "plain files directly in"),
        (OURS, SECRETS, tar(("x", b"k"), mode="w:gz"), "not an uncompressed tar"),
        (OURS, SECRETS, b"not a tar at all" * 64, "not an uncompressed tar"),
    ],
    ids=["etc", "trailing-slash", "no-path", "extra-param", "foreign", "dotdot", "subdir",
         "symlink", "directory", "gzip", "garbage"],
)  # fmt: skip
def test_secrets_archive_refusals(container, query, body, reason):
    target = f"/containers/{container}/archive" + (f"?{query}" if query else "")
    assert reason in refused(check, "PUT", target, body).reason


# --- ping, version, images ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"), [("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", f"{API}/_ping"),
                       ("GET", "/version"), ("GET", f"{API}/version")],
)  # fmt: skip
def test_ping_and_version(method, target):
    assert check(method, target) == Forward(method, target)


def images_query(filters) -> str:
    return urlencode({"only_ids": 0, "all": 0, "filters": json.dumps(filters)})


def test_the_step_images_may_be_listed_by_reference():
    forward = check("GET", f"{API}/images/json?" + images_query({"reference": ["apod-load:1.2.3"]}))
    assert forward.target == f"{API}/images/json?" + images_query(
        {"reference": ["apod-load:1.2.3"]}
    )
    check(
        "GET", "/images/json?" + urlencode({"filters": '{"reference": {"apod-load:1.2.3": true}}'})
    )


@pytest.mark.parametrize(
    "query",
    [
        "only_ids=0&all=0",
        images_query({"reference": ["postgres:15"]}),
        images_query({"reference": ["apod-load:1.2.3", "apod-airflow:1.2.3"]}),
        images_query({"reference": ["apod-load:1.2.3"], "dangling": ["true"]}),
        images_query({"reference": []}),
        images_query({"label": ["x"]}),
        "filters=not-json",
        "all=1&" + images_query({"reference": ["apod-load:1.2.3"]}),
    ],
)
def test_other_image_listings_are_refused(query):
    exc = refused(check, "GET", f"/images/json?{query}")
    assert exc.status in (400, 403)


# --- everything else ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "reason"),
    [
        ("POST", "/build?t=apod-extract:1.2.3", "image builds are refused"),
        ("POST", f"{API}/images/create?fromImage=apod-extract&tag=1.2.3", "pulling or importing"),
        ("POST", "/images/load", "image calls other than listing"),
        ("POST", "/images/apod-extract:1.2.3/tag?repo=apod-extract&tag=2", "tagging images"),
        ("POST", "/images/apod-extract:1.2.3/push", "pushing images is refused"),
        ("DELETE", "/images/apod-extract:1.2.3", "removing images is refused"),
        ("GET", "/images/apod-extract:1.2.3/json", "image calls other than listing"),
        ("POST", f"/commit?container={OURS}", "committing containers"),
        ("POST", "/volumes/create", "volume calls are refused"),
        ("DELETE", "/volumes/data-x", "volume calls are refused"),
        ("POST", "/networks/create", "network calls are refused"),
        ("POST", "/networks/net-x/connect", "network calls are refused"),
        ("POST", "/swarm/init", "swarm calls are refused"),
        ("POST", "/services/create", "swarm calls are refused"),
        ("GET", "/secrets", "swarm calls are refused"),
        ("GET", "/info", "system, registry and plugin calls"),
        ("GET", "/events", "system, registry and plugin calls"),
        ("POST", "/system/prune", "system, registry and plugin calls"),
        ("POST", "/plugins/pull", "system, registry and plugin calls"),
        ("POST", "/auth", "system, registry and plugin calls"),
        ("GET", f"{API}/containers/json?all=1", "listing containers is refused"),
        ("POST", "/containers/prune", "pruning containers is refused"),
        ("GET", "/containers/create", "full 64-digit id only"),
        ("PUT", "/_ping", rules.DEFAULT),
        ("GET", "/", rules.DEFAULT),
        ("GET", "/v2.0/_ping", rules.DEFAULT),
        ("GET", f"{API}/containers/{OURS}/../{FOREIGN}/json", "full 64-digit id only"),
        ("GET", f"{API}/containers/%2e%2e/{FOREIGN}/json", "full 64-digit id only"),
        ("GET", f"//containers/{OURS}/json", rules.DEFAULT),
    ],
)
def test_everything_else_is_refused_with_its_reason(method, target, reason):
    exc = refused(check, method, target)
    assert exc.status == 403
    assert reason in exc.reason
    assert "\n" not in exc.message


def test_a_target_that_is_not_a_path_is_refused():
    assert refused(check, "GET", "http://docker/_ping").status == 400


def test_query_strings_that_do_not_parse_are_refused():
    assert refused(check, "GET", "/_ping?x").status == 400
    assert "query parameter 'x'" in refused(check, "GET", "/_ping?x=1").reason


def test_every_reason_is_one_line_and_its_own():
    reasons = [reason for _, _, reason in rules.REFUSALS] + [rules.DEFAULT]
    assert all("\n" not in r for r in reasons)
    assert len(set(reasons)) == len(reasons)


ODD_VALUES = (None, True, False, 0, -1, 1.5, "", "x", "host", [], ["x"], [1], [{}], {}, {"a": 1})


def test_any_value_of_any_field_is_checked_or_refused_never_an_error():
    """Every field the rules know, and a few they do not, with values of every JSON
    type: the check returns the request to forward or a refusal, nothing else."""
    from apod_docker_gate.create import config_rules, host_config_rules

    body = operator_body("version")
    config_fields = [*config_rules(POLICY, Facts(), body), "Other"]
    host_fields = [*host_config_rules(POLICY.images["apod-version:1.2.3"], POLICY), "Other"]
    mount_fields = ["Type", "Source", "Target", "ReadOnly", "VolumeOptions", "Other"]
    reasons = []
    for value in ODD_VALUES:
        cases = [("config", name) for name in config_fields]
        cases += [("host", name) for name in host_fields]
        cases += [("mount", name) for name in mount_fields]
        for where, name in cases:
            changed = copy.deepcopy(body)
            {"config": changed, "host": changed["HostConfig"]}.get(
                where, changed["HostConfig"]["Mounts"][0]
            )[name] = value
            try:
                create(changed)
            except Refused as exc:
                reasons.append(exc.message)
    assert reasons  # most of them are refused...
    assert [r for r in reasons if "\n" in r] == []  # ... each with a one-line reason


def test_a_reason_is_one_line_whatever_the_body_holds():
    body = operator_body()
    body["Odd\nKey"] = 1
    assert refused(create, body).reason == "Odd\\nKey is not allowed"
    body = operator_body()
    body["HostConfig"]["SecurityOpt"] = ["a\nb"]
    assert "\n" not in refused(create, body).reason
