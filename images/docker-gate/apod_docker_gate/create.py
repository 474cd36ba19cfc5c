"""The rules of POST /containers/create: a step image at the deployed tag, its own user
(non-root), its steps' volumes and variables, the stack's network or none, the
pipeline's label; nothing that reaches the host (privileged mode, capabilities, devices,
host namespaces, host paths, published ports, another runtime)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from apod_docker_gate.jsondoc import (
    BOOLEAN,
    NUMBER_VALUE,
    TEXT,
    Rule,
    anything,
    command,
    dump_json,
    empty,
    fields,
    null,
    one_of,
    parse_json,
    show,
    strings,
)
from apod_docker_gate.model import Facts, Forward, Refused, Request, query, target
from apod_docker_gate.policy import ImageRule, Policy

CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
# A numeric uid other than 0, and optionally a numeric group: a name could be root's.
NON_ROOT_USER = re.compile(r"[1-9][0-9]{0,9}(?::[0-9]{1,10})?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

NOT_NEEDED = "the steps need no such setting"
HOST_NAMESPACE = "host namespaces are refused (a step runs in its own)"
HOST_PATH = "host paths are refused (a step mounts the stack's named volumes only)"


def host_config_rules(image: ImageRule, policy: Policy) -> dict[str, Rule]:
    def network_mode(where: str, value: Any) -> None:
        if value not in policy.networks:
            allowed = " or ".join(policy.networks)
            raise Refused(
                f"network mode {show(value)} is refused: a step joins {allowed} only"
                + (" (host network)" if value == "host" else "")
            )

    def mounts(where: str, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            raise Refused(f"{where} must be a list", 400)
        for n, mount in enumerate(value):
            mount_fields(f"{where}[{n}]", mount, image)

    def security_opt(where: str, value: Any) -> None:
        strings(where, value)
        for option in value or ():
            if option not in ("no-new-privileges", "no-new-privileges:true"):
                raise Refused(f"security options are refused but no-new-privileges: {show(option)}")

    def log_config(where: str, value: Any) -> None:
        if value is None:
            return
        fields(
            where,
            value,
            {
                # Local drivers only: another would send the output off the host.
                "Type": one_of("only a local log driver", "", "json-file", "local"),
                "Config": log_options,
            },
        )

    def restart_policy(where: str, value: Any) -> None:
        if value is None:
            return
        fields(
            where,
            value,
            {
                "Name": one_of("a restart policy is refused (a run retries)", "", "no"),
                "MaximumRetryCount": one_of("a restart policy is refused", 0),
            },
        )

    return {
        "NetworkMode": network_mode,
        "Mounts": mounts,
        "Privileged": one_of("privileged mode is refused", False),
        "CapAdd": empty("added capabilities are refused"),
        "Capabilities": null("a capability set is refused"),
        "CapDrop": strings,
        "SecurityOpt": security_opt,
        "Devices": empty("devices are refused"),
        "DeviceRequests": empty("devices are refused"),
        "DeviceCgroupRules": empty("devices are refused"),
        "Binds": empty(HOST_PATH),
        "VolumesFrom": empty("another container's volumes are refused"),
        "VolumeDriver": empty("volume drivers are refused (they can bind host paths)"),
        "PidMode": one_of(HOST_NAMESPACE, ""),
        "IpcMode": one_of(HOST_NAMESPACE, "", "private", "none"),
        "UTSMode": one_of(HOST_NAMESPACE, ""),
        "UsernsMode": one_of(HOST_NAMESPACE, ""),
        "CgroupnsMode": one_of(HOST_NAMESPACE, "", "private"),
        "Cgroup": empty(HOST_NAMESPACE),
        "CgroupParent": empty("another cgroup parent is refused"),
        "PortBindings": empty("publishing ports on the host is refused"),
        "PublishAllPorts": one_of("publishing ports on the host is refused", False),
        "Sysctls": empty("kernel parameters are refused"),
        "GroupAdd": empty("supplementary groups are refused"),
        "Runtime": empty("another container runtime is refused"),
        "Isolation": one_of(NOT_NEEDED, "", "default"),
        # An empty list would unmask /proc paths: only the engine's default.
        "MaskedPaths": null("changing the masked /proc paths is refused"),
        "ReadonlyPaths": null("changing the read-only /proc paths is refused"),
        "OomKillDisable": one_of("disabling the OOM killer is refused", False),
        "OomScoreAdj": one_of("an OOM score adjustment is refused", 0),
        "Links": empty(NOT_NEEDED),
        "ExtraHosts": empty(NOT_NEEDED),
        "Dns": empty(NOT_NEEDED),
        "DnsOptions": empty(NOT_NEEDED),
        "DnsSearch": empty(NOT_NEEDED),
        "Tmpfs": empty(NOT_NEEDED),
        "StorageOpt": empty(NOT_NEEDED),
        "Ulimits": empty(NOT_NEEDED),
        "ContainerIDFile": empty(HOST_PATH),
        "BlkioWeightDevice": empty(NOT_NEEDED),
        "BlkioDeviceReadBps": empty(NOT_NEEDED),
        "BlkioDeviceWriteBps": empty(NOT_NEEDED),
        "BlkioDeviceReadIOps": empty(NOT_NEEDED),
        "BlkioDeviceWriteIOps": empty(NOT_NEEDED),
        "CpuRealtimePeriod": one_of("real-time scheduling is refused", 0),
        "CpuRealtimeRuntime": one_of("real-time scheduling is refused", 0),
        "LogConfig": log_config,
        "RestartPolicy": restart_policy,
        "ConsoleSize": anything,
        "AutoRemove": BOOLEAN,
        "ReadonlyRootfs": BOOLEAN,
        "Init": BOOLEAN,
        # Limits: they only restrict the container.
        "Memory": NUMBER_VALUE,
        "MemoryReservation": NUMBER_VALUE,
        "MemorySwap": NUMBER_VALUE,
        "MemorySwappiness": NUMBER_VALUE,
        "KernelMemory": NUMBER_VALUE,
        "KernelMemoryTCP": NUMBER_VALUE,
        "NanoCpus": NUMBER_VALUE,
        "CpuShares": NUMBER_VALUE,
        "CpuPeriod": NUMBER_VALUE,
        "CpuQuota": NUMBER_VALUE,
        "CpuCount": NUMBER_VALUE,
        "CpuPercent": NUMBER_VALUE,
        "CpusetCpus": TEXT,
        "CpusetMems": TEXT,
        "PidsLimit": NUMBER_VALUE,
        "BlkioWeight": NUMBER_VALUE,
        "IOMaximumIOps": NUMBER_VALUE,
        "IOMaximumBandwidth": NUMBER_VALUE,
        "ShmSize": NUMBER_VALUE,
    }


def log_options(where: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Refused(f"{where} must map names to strings", 400)
    for name in value:
        if name not in ("max-size", "max-file", "compress"):
            raise Refused(f"log option {name!r} is refused")


def mount_fields(where: str, mount: Any, image: ImageRule) -> None:
    def mount_type(at: str, value: Any) -> None:
        if value != "volume":
            source = mount.get("Source")
            raise Refused(
                f"{show(value)} mounts are refused (a step mounts the stack's named volumes "
                f"only): {at}, Source {show(source)}"
            )

    fields(
        where,
        mount,
        {
            "Type": mount_type,
            "Source": TEXT,
            "Target": TEXT,
            "ReadOnly": BOOLEAN,
            "Consistency": TEXT,
            "BindOptions": null(HOST_PATH),
            # A volume's driver options can make it a bind of any host path.
            "VolumeOptions": empty("volume options are refused (they can bind host paths)"),
            "TmpfsOptions": null(NOT_NEEDED),
        },
    )
    pair = (mount.get("Source"), mount.get("Target"))
    if pair not in image.mounts:
        allowed = ", ".join(f"{s}:{t}" for s, t in sorted(image.mounts))
        raise Refused(
            f"volume {show(pair[0])} at {show(pair[1])} is refused: this image's steps "
            f"mount {allowed}"
        )


def networking_config(network_mode: Any) -> Rule:
    def rule(where: str, value: Any) -> None:
        if value is None:
            return

        def endpoints(at: str, config: Any) -> None:
            if config is None:
                return
            if not isinstance(config, dict):
                raise Refused(f"{at} must be a JSON object", 400)
            for name, settings in config.items():
                if name != network_mode or settings not in (None, {}):
                    raise Refused(f"endpoint settings are refused: {at}.{show(name)}")

        fields(where, value, {"EndpointsConfig": endpoints})

    return rule


def user_rule(policy: Policy, facts: Facts, body: dict) -> Rule:
    def rule(where: str, value: Any) -> None:
        TEXT(where, value)
        if value:
            if not NON_ROOT_USER.fullmatch(value):
                raise Refused(
                    f"user {show(value)} is refused: a numeric uid other than 0 "
                    "(root), optionally :gid"
                )
            return
        image = body.get("Image")
        user = facts.image_user(image)
        if user is None:
            raise Refused(f"image {image} is not on this engine", 404)
        if not NON_ROOT_USER.fullmatch(user):
            raise Refused(f"image {image} runs as {user or 'root'}: give a non-root User")

    return rule


def config_rules(policy: Policy, facts: Facts, body: dict) -> dict[str, Rule]:
    image_name = body.get("Image")
    image = policy.images.get(image_name) if isinstance(image_name, str) else None

    def image_rule(where: str, value: Any) -> None:
        if image is None:
            raise Refused(
                f"image {show(value)} is not a step image at this version "
                f"(allowed: {', '.join(sorted(policy.images))})"
            )

    def labels(where: str, value: Any) -> None:
        key, wanted = policy.label
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise Refused(f"a container needs the label {key}={wanted}")
        if value.get(key) != wanted:
            raise Refused(f"a container needs the label {key}={wanted}")

    def env(where: str, value: Any) -> None:
        strings(where, value)
        for entry in value or ():
            name, equals, _ = entry.partition("=")
            if not equals or not ENV_NAME.fullmatch(name):
                raise Refused(f"an entry of {where} is not NAME=value", 400)
            if name not in image.env:
                raise Refused(
                    f"environment variable {name} is refused: the steps of {image_name} "
                    f"are given {', '.join(sorted(image.env)) or 'none'}"
                )

    return {
        "Image": image_rule,
        "User": user_rule(policy, facts, body),
        "Labels": labels,
        "Env": env,
        "Cmd": command,
        "Entrypoint": null("replacing the step image's entrypoint is refused"),
        "Hostname": TEXT,
        "Domainname": TEXT,
        "WorkingDir": TEXT,
        "AttachStdin": one_of("attaching stdin is refused", False),
        "AttachStdout": BOOLEAN,
        "AttachStderr": BOOLEAN,
        "Tty": BOOLEAN,
        "OpenStdin": one_of("stdin is refused", False),
        "StdinOnce": one_of("stdin is refused", False),
        "ExposedPorts": empty(NOT_NEEDED),
        "Volumes": empty("anonymous volumes are refused"),
        "NetworkDisabled": BOOLEAN,
        "MacAddress": empty(NOT_NEEDED),
        "Healthcheck": null(NOT_NEEDED),
        "ArgsEscaped": one_of(NOT_NEEDED, False),
        "OnBuild": empty(NOT_NEEDED),
        "Shell": empty(NOT_NEEDED),
        "StopSignal": TEXT,
        "StopTimeout": NUMBER_VALUE,
        "Runtime": empty("another container runtime is refused"),
        "HostConfig": lambda where, value: None,  # checked below, once the image is known
        "NetworkingConfig": lambda where, value: None,
    }


def check_create(request: Request, _: Mapping[str, str], policy: Policy, facts: Facts) -> Forward:
    params = query(request, {"name": CONTAINER_NAME})
    body = parse_json(request.body, "container configuration")
    if not isinstance(body, dict):
        raise Refused("the container configuration must be a JSON object", 400)
    rules = config_rules(policy, facts, body)
    # The image first: the other rules depend on it (its volumes, its variables).
    rules["Image"]("Image", body.get("Image"))
    fields("", body, rules)
    for required in ("User", "Labels"):  # absent: the image's user; no label
        if required not in body:
            rules[required](required, None)
    host_config = body.get("HostConfig")
    if not isinstance(host_config, dict):
        raise Refused("HostConfig with the network mode is required")
    host_rules = host_config_rules(policy.images[body["Image"]], policy)
    fields("HostConfig", host_config, host_rules)
    if "NetworkMode" not in host_config:
        host_rules["NetworkMode"]("HostConfig.NetworkMode", None)
    networking_config(host_config["NetworkMode"])("NetworkingConfig", body.get("NetworkingConfig"))
    return Forward(
        "POST", target(request, params), dump_json(body), content_type="application/json"
    )
