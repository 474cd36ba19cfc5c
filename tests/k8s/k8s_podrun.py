"""Run a container of a rendered pod spec with Docker, as the kubelet would run it.

What a pod says becomes a `docker run` flag:
  image, command (-> --entrypoint + its rest), args          the same process
  imagePullPolicy IfNotPresent / Always / Never              --pull missing / always / never
  env value / secretKeyRef / configMapKeyRef / fieldRef,     -e NAME (values travel in the
  envFrom configMapRef, $(VAR) expansion                     docker CLI's environment)
  persistentVolumeClaim                                      a Docker volume, same mountPath
  emptyDir                                                   a tmpfs, mode 1777, sizeLimit
  configMap / secret / projected volume                      files (defaultMode, fsGroup
                                                             group) bind-mounted read-only
  runAsUser/runAsGroup, fsGroup, supplementalGroups          --user uid:gid, --group-add
  readOnlyRootFilesystem                                     --read-only
  allowPrivilegeEscalation: false                            --security-opt no-new-privileges
  capabilities drop/add                                      --cap-drop / --cap-add
  seccompProfile RuntimeDefault                              Docker's default profile
  resources.limits cpu/memory                                --cpus / --memory
  workingDir                                                 --workdir
  hostname, subdomain (a StatefulSet's pod)                   --hostname, --domainname
                                                             <subdomain>.<namespace>.svc.cluster.local
One difference remains: an emptyDir is a fresh tmpfs per container, not shared between
the init containers and the main container of one pod (no manifest here relies on that).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


# What the kubelet does with a container's image, as `docker run --pull` says it.
PULL_POLICIES = {"IfNotPresent": "missing", "Always": "always", "Never": "never"}


def quantity_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(text))
    if not match or match.group(2) not in ("", *_QUANTITY):
        raise ValueError(f"unsupported quantity {text!r}")
    return int(float(match.group(1)) * _QUANTITY.get(match.group(2), 1))


def quantity_cpus(text: str) -> str:
    text = str(text)
    return str(int(text[:-1]) / 1000) if text.endswith("m") else text


@dataclass
class Cluster:
    """What a pod's references resolve to, for one test."""

    workdir: Path  # where configMap/secret volume files are written
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)  # PVC name -> Docker volume
    namespace: str = "apod"
    network: str = "host"


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) references to earlier variables; $$ escapes."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, text)


def container_env(pod: dict, container: dict, cluster: Cluster) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = cluster.config_maps[source["configMapRef"]["name"]]
        else:
            data = cluster.secrets[source["secretRef"]["name"]]
        env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env", []):
        if "valueFrom" not in var:
            env[var["name"]] = _expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[var["name"]] = cluster.secrets[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[var["name"]] = cluster.config_maps[ref["name"]][ref["key"]]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = cluster.namespace
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = pod["metadata"]["name"]
        else:
            raise NotImplementedError(f"env {var['name']}: {source}")
    return env


def _volume_files(volume: dict, cluster: Cluster) -> tuple[dict[str, str], int]:
    """path -> content of a configMap/secret/projected volume, and its file mode."""
    sources, mode = [], 0o644
    if "configMap" in volume:
        sources, mode = (
            [{"configMap": volume["configMap"]}],
            volume["configMap"].get("defaultMode", mode),
        )
    elif "secret" in volume:
        secret = {**volume["secret"], "name": volume["secret"]["secretName"]}
        sources, mode = [{"secret": secret}], volume["secret"].get("defaultMode", mode)
    elif "projected" in volume:
        sources, mode = volume["projected"]["sources"], volume["projected"].get("defaultMode", mode)
    files = {}
    for source in sources:
        if "configMap" in source:
            data = cluster.config_maps[source["configMap"]["name"]]
            spec = source["configMap"]
        elif "secret" in source:
            data = cluster.secrets[source["secret"]["name"]]
            spec = source["secret"]
        else:
            raise NotImplementedError(f"volume {volume['name']}: {source}")
        items = spec.get("items") or [{"key": k, "path": k} for k in data]
        files.update({item["path"]: data[item["key"]] for item in items})
    return files, mode


def docker_run_args(
    pod: dict, container_name: str, cluster: Cluster, *, name: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """(arguments after `docker run`, environment for the docker CLI) for one container."""
    spec = pod["spec"]
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    (container,) = [c for c in containers if c["name"] == container_name]
    pod_sc = spec.get("securityContext") or {}
    sc = {**pod_sc, **(container.get("securityContext") or {})}
    args: list[str] = ["--network", cluster.network]
    if name:
        args += ["--name", name]

    uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
    if sc.get("runAsNonRoot") and uid == 0:
        raise ValueError(f"{container_name}: runAsNonRoot with runAsUser 0")
    if uid is not None:
        args += ["--user", f"{uid}:{gid if gid is not None else 0}"]
    for group in [pod_sc.get("fsGroup"), *pod_sc.get("supplementalGroups", [])]:
        if group is not None:
            args += ["--group-add", str(group)]
    if sc.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if sc.get("privileged"):
        args.append("--privileged")
    capabilities = sc.get("capabilities") or {}
    for cap in capabilities.get("drop", []):
        args += ["--cap-drop", cap]
    for cap in capabilities.get("add", []):
        args += ["--cap-add", cap]
    if (sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", None):
        raise NotImplementedError(f"{container_name}: seccomp {sc['seccompProfile']}")
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        args += ["--memory", str(quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", quantity_cpus(limits["cpu"])]
    if container.get("workingDir"):
        args += ["--workdir", container["workingDir"]]
    if container.get("imagePullPolicy"):
        args += ["--pull", PULL_POLICIES[container["imagePullPolicy"]]]
    if spec.get("hostname"):
        # As the kubelet writes /etc/hosts: the pod's FQDN under its headless Service.
        args += ["--hostname", spec["hostname"]]
        if spec.get("subdomain"):
            args += ["--domainname", f"{spec['subdomain']}.{cluster.namespace}.svc.cluster.local"]

    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target, read_only = mount["mountPath"], mount.get("readOnly", False)
        if "subPath" in mount:
            raise NotImplementedError("subPath")
        if "persistentVolumeClaim" in volume:
            source = cluster.claims[volume["persistentVolumeClaim"]["claimName"]]
            args += ["-v", f"{source}:{target}" + (":ro" if read_only else "")]
        elif "emptyDir" in volume:
            options = f"type=tmpfs,destination={target},tmpfs-mode=1777"
            if volume["emptyDir"].get("sizeLimit"):
                options += f",tmpfs-size={quantity_bytes(volume['emptyDir']['sizeLimit'])}"
            args += ["--mount", options]
        else:
            files, mode = _volume_files(volume, cluster)
            folder = cluster.workdir / f"{name or container_name}-{mount['name']}"
            folder.mkdir(parents=True, exist_ok=True)
            for path, content in files.items():
                file = folder / path
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(content, encoding="utf-8")
                file.chmod(mode)
                # The kubelet gives projected files the fsGroup as their group.
                if pod_sc.get("fsGroup") is not None and os.geteuid() == 0:
                    os.chown(file, 0, pod_sc["fsGroup"])
            folder.chmod(0o755)
            args += ["-v", f"{folder}:{target}:ro"]

    env = container_env(pod, container, cluster)
    for key in env:
        args += ["-e", key]
    command = list(container.get("command") or [])
    rest = [_expand(a, env) for a in [*command[1:], *(container.get("args") or [])]]
    if command:
        args += ["--entrypoint", _expand(command[0], env)]
    return [*args, container["image"], *rest], env


def docker_run(
    pod: dict,
    container_name: str,
    cluster: Cluster,
    *,
    name: str | None = None,
    detach: bool = False,
    extra: tuple[str, ...] = (),
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    args, env = docker_run_args(pod, container_name, cluster, name=name)
    mode = ["-d"] if detach else ["--rm"]
    return subprocess.run(
        ["docker", "run", *mode, *extra, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
