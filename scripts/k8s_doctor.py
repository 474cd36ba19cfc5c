#!/usr/bin/env python3
"""Check what `make kind-up` / `make minikube-up` drive before they start (standard
library only): Docker, kind or minikube, kubectl, and room for the stack.

    k8s_doctor.py kind          what kind-up needs
    k8s_doctor.py minikube      what minikube-up needs
    k8s_doctor.py               both (make k8s-doctor)

One line per check: `ok`, `warn` (works, with a caveat) or `FAIL` (the up script would
fail, or the stack would not fit), each FAIL with how to get what is missing. The
versions and the node size are k8s/tools.env's; the environment overrides them
(KUBERNETES_VERSION, KIND_VERSION, MINIKUBE_K8S_VERSION, MINIKUBE_MEMORY, MINIKUBE_CPUS,
MINIKUBE_DRIVER, KIND_NODE_IMAGE, MINIKUBE_PROFILE).

Exit codes: 0 nothing failed, 1 something failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy_env import read_env

REPO = Path(__file__).resolve().parents[1]
TOOLS_FILE = REPO / "k8s" / "tools.env"
OK, WARN, FAIL = "ok", "warn", "FAIL"
MIB = 2**20
# What kubectl promises: one minor older or newer than the API server.
KUBECTL_SKEW = 1


@dataclass(frozen=True)
class Finding:
    level: str
    what: str
    detail: str
    fix: str = ""  # how to get what is missing

    def lines(self) -> list[str]:
        out = [f"  {self.level:<4}  {self.what}: {self.detail}"]
        out += [f"        {line}" for line in self.fix.splitlines()]
        return out


def settings(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """k8s/tools.env, each value overridden by the environment's."""
    values = read_env(TOOLS_FILE)
    values["MINIKUBE_K8S_VERSION"] = values["KUBERNETES_VERSION"]
    names = [*values, "KIND_NODE_IMAGE", "MINIKUBE_DRIVER", "MINIKUBE_PROFILE"]
    values |= {name: environ[name] for name in names if environ.get(name)}
    values.setdefault("MINIKUBE_DRIVER", "docker")
    values.setdefault("MINIKUBE_PROFILE", "apod")
    return values


def run(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess | None:
    """The command's result; None when it is not on PATH or does not answer in time."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def version_tuple(text: str) -> tuple[int, ...] | None:
    """(major, minor, patch) of the first vX.Y[.Z] in text."""
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def quantity_mib(text: str) -> int:
    """minikube's --memory: 6g, 6144mb, 6144 (MB) -> MiB."""
    match = re.fullmatch(r"(\d+)\s*([kmgt]?)i?b?", text.strip().lower())
    if not match:
        raise ValueError(f"not a memory size: {text!r} (e.g. 6g, 6144mb)")
    unit = {"k": 2**10, "": MIB, "m": MIB, "g": 2**30, "t": 2**40}[match.group(2)]
    return int(match.group(1)) * unit // MIB


def millicpus(text: str) -> int:
    """A Kubernetes CPU quantity (1850m, 2) in millicores."""
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def kube_mib(text: str) -> int:
    """A Kubernetes memory quantity in Mi or Gi, in MiB."""
    match = re.fullmatch(r"(\d+)(Mi|Gi)", text.strip())
    if not match:
        raise ValueError(f"not a quantity in Mi or Gi: {text!r}")
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


def platform_names() -> tuple[str, str]:
    """(os, arch) as the tools' download URLs spell them."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    return ("darwin" if sys.platform == "darwin" else "linux"), arch


# --- Docker --------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerHost:
    version: str
    memory_mib: int  # what the engine's containers may use (Docker Desktop: its VM)
    cpus: int


def docker_host() -> DockerHost | Finding:
    if shutil.which("docker") is None:
        return Finding(
            FAIL,
            "docker",
            "not on PATH (kind and minikube's docker driver run the node as a container)",
            "get it: scripts/ensure-docker.sh (Debian, as root) or "
            "https://docs.docker.com/engine/install/",
        )
    info = run("docker", "info", "--format", "{{json .}}")
    if info is None or info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1] if info else "no answer"
        return Finding(
            FAIL,
            "docker",
            f"the engine does not answer ({reason})",
            "start it: scripts/ensure-docker.sh (as root), or Docker Desktop; as a user, "
            "be in the docker group (sudo usermod -aG docker $USER, then log in again)",
        )
    data = json.loads(info.stdout)
    return DockerHost(
        version=str(data.get("ServerVersion", "?")),
        memory_mib=int(data.get("MemTotal", 0)) // MIB,
        cpus=int(data.get("NCPU", 0)),
    )


def available_mib() -> int | None:
    """MemAvailable of this host, when Docker runs on it (Linux); None elsewhere."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) // 1024 if match else None


def check_docker(host: DockerHost | Finding) -> Finding:
    if isinstance(host, Finding):
        return host
    return Finding(OK, "docker", f"engine {host.version} answers")


def check_room(
    host: DockerHost | Finding, config: Mapping[str, str], cluster: str
) -> list[Finding]:
    """The node the stack needs against what Docker has (and, for minikube, what it asks)."""
    if isinstance(host, Finding):
        return []
    wanted_mib = quantity_mib(config["MINIKUBE_MEMORY"])
    wanted_cpus = int(config["MINIKUBE_CPUS"])
    floor_mib = kube_mib(config["STACK_MEMORY_REQUESTS"])
    floor_millicpus = millicpus(config["STACK_CPU_REQUESTS"])
    findings = []
    node = (
        f"minikube node {wanted_cpus} CPUs, {wanted_mib} MiB"
        if cluster == "minikube"
        else f"kind node = the Docker host ({host.cpus} CPUs, {host.memory_mib} MiB)"
    )
    node_cpus, node_mib = (
        (wanted_cpus, wanted_mib) if cluster == "minikube" else (host.cpus, host.memory_mib)
    )
    resize = (
        "raise MINIKUBE_MEMORY / MINIKUBE_CPUS (k8s/tools.env or the environment)"
        if cluster == "minikube"
        else "give Docker more (Docker Desktop: Settings > Resources) or use a larger host"
    )
    if node_cpus * 1000 < floor_millicpus or node_mib < floor_mib:
        findings.append(
            Finding(
                FAIL,
                "node size",
                f"{node}; the stack asks for {floor_millicpus}m CPU and {floor_mib} MiB at "
                "its busiest (control plane, Airflow, Postgres, object store, two load pods, a "
                "rollout's surge): "
                "pods would stay Pending",
                resize,
            )
        )
    elif cluster == "minikube" and (wanted_mib > host.memory_mib or wanted_cpus > host.cpus):
        findings.append(
            Finding(
                FAIL,
                "node size",
                f"{node} asked, Docker has {host.cpus} CPUs and {host.memory_mib} MiB "
                "(minikube refuses more than Docker has)",
                "lower MINIKUBE_MEMORY / MINIKUBE_CPUS, at least "
                f"{floor_millicpus}m CPU and {floor_mib} MiB, or give Docker more",
            )
        )
    else:
        findings.append(Finding(OK, "node size", f"{node}"))
    free = available_mib()
    if free is not None and free < wanted_mib:
        findings.append(
            Finding(
                WARN,
                "free memory",
                f"{free} MiB available now, the stack may use up to {wanted_mib} MiB: "
                "close something, or expect swapping and slow pods",
            )
        )
    return findings


# --- the tools -----------------------------------------------------------------------


def kubectl_fix(cluster_version: str) -> str:
    os_name, arch = platform_names()
    return (
        f"get kubectl {cluster_version}: https://dl.k8s.io/release/{cluster_version}/bin/"
        f"{os_name}/{arch}/kubectl (chmod +x, first on PATH)"
    )


def check_kubectl(config: Mapping[str, str], key: str) -> Finding:
    cluster_version = config[key]
    cluster_minor = version_tuple(cluster_version)[1]
    result = run("kubectl", "version", "--client", "-o", "json")
    if result is None:
        return Finding(FAIL, "kubectl", "not on PATH", kubectl_fix(cluster_version))
    try:
        client = json.loads(result.stdout)["clientVersion"]
        found = client["gitVersion"]
        minor = int(re.match(r"\d+", client["minor"]).group(0))
    except (ValueError, KeyError, AttributeError):
        return Finding(
            FAIL, "kubectl", "`kubectl version --client -o json` gave no version",
            kubectl_fix(cluster_version),
        )  # fmt: skip
    if abs(minor - cluster_minor) > KUBECTL_SKEW:
        return Finding(
            FAIL,
            "kubectl",
            f"{found} is more than {KUBECTL_SKEW} minor away from the cluster's "
            f"{cluster_version} (outside kubectl's supported skew)",
            kubectl_fix(cluster_version),
        )
    return Finding(OK, "kubectl", f"{found} (cluster {cluster_version})")


def kind_fix(release: str) -> str:
    os_name, arch = platform_names()
    return (
        f"get kind {release}: https://kind.sigs.k8s.io/dl/{release}/kind-{os_name}-{arch} "
        f"(chmod +x, on PATH), or: go install sigs.k8s.io/kind@{release}"
    )


def check_kind(config: Mapping[str, str]) -> Finding:
    release = config["KIND_VERSION"]
    result = run("kind", "version")
    if result is None:
        return Finding(FAIL, "kind", "not on PATH", kind_fix(release))
    found = version_tuple(result.stdout)
    if found is None:
        return Finding(FAIL, "kind", f"`kind version` said {result.stdout.strip()!r}")
    text = "v" + ".".join(map(str, found))
    pinned = version_tuple(release)
    if config.get("KIND_NODE_IMAGE"):
        return Finding(OK, "kind", f"{text}, node image KIND_NODE_IMAGE as you set it")
    node = f"kindest/node {config['KUBERNETES_VERSION']} of k8s/kind-cluster.yaml"
    if found < pinned:
        return Finding(
            FAIL,
            "kind",
            f"{text} is older than {release}, the release that built the pinned {node} "
            "(an older kind may not drive a newer node image)",
            kind_fix(release)
            + f"\nor: KIND_NODE_IMAGE=<the {config['KUBERNETES_VERSION'][:5]} image your "
            "release's notes list, by digest>",
        )
    if found > pinned:
        return Finding(
            WARN,
            "kind",
            f"{text} is newer than {release}, which built the pinned {node}: best effort; "
            "KIND_NODE_IMAGE=<the image your release's notes list> if creating the node fails",
        )
    return Finding(OK, "kind", f"{text}, built the pinned {node}")


def minikube_fix() -> str:
    os_name, arch = platform_names()
    return (
        "get minikube: https://storage.googleapis.com/minikube/releases/latest/"
        f"minikube-{os_name}-{arch} (chmod +x, on PATH); https://minikube.sigs.k8s.io/docs/start/"
    )


def check_minikube(config: Mapping[str, str]) -> list[Finding]:
    wanted = config["MINIKUBE_K8S_VERSION"]
    result = run("minikube", "version", "--short")
    if result is None:
        return [Finding(FAIL, "minikube", "not on PATH", minikube_fix())]
    found = result.stdout.strip() or "?"
    known = run("minikube", "config", "defaults", "kubernetes-version", "-o", "json")
    try:
        versions = json.loads(known.stdout) if known and known.returncode == 0 else None
    except ValueError:
        versions = None
    findings = []
    if versions is None:
        findings.append(
            Finding(WARN, "minikube", f"{found}: could not list the Kubernetes versions it knows")
        )
    elif wanted in versions:
        findings.append(Finding(OK, "minikube", f"{found} knows Kubernetes {wanted}"))
    else:
        same_minor = [v for v in versions if version_tuple(v)[:2] == version_tuple(wanted)[:2]]
        fix = minikube_fix()
        if same_minor:
            fix = f"or: MINIKUBE_K8S_VERSION={same_minor[0]} (the newest 1.{version_tuple(wanted)[1]} it knows)\n{fix}"  # noqa: E501
        findings.append(
            Finding(
                FAIL,
                "minikube",
                f"{found} does not know Kubernetes {wanted} (it would search the internet for "
                "it and may stop with K8S_FAIL_CONNECT)",
                fix,
            )
        )
    if os.geteuid() == 0 and config["MINIKUBE_DRIVER"] in ("docker", "podman"):
        findings.append(
            Finding(
                OK,
                "root",
                f"minikube-up adds --force: the {config['MINIKUBE_DRIVER']} driver refuses "
                "root otherwise (DRV_AS_ROOT)",
            )
        )
    findings += check_existing_profile(config)
    return findings


def check_existing_profile(config: Mapping[str, str]) -> list[Finding]:
    """A profile made before keeps its size: minikube cannot resize a node."""
    listing = run("minikube", "profile", "list", "-o", "json")
    if listing is None or listing.returncode != 0:
        return []
    try:
        profiles = json.loads(listing.stdout)
    except ValueError:
        return []
    wanted_mib = quantity_mib(config["MINIKUBE_MEMORY"])
    wanted_cpus = int(config["MINIKUBE_CPUS"])
    for profile in [*(profiles.get("valid") or []), *(profiles.get("invalid") or [])]:
        if profile.get("Name") != config["MINIKUBE_PROFILE"]:
            continue
        node = profile.get("Config") or {}
        memory, cpus = int(node.get("Memory") or 0), int(node.get("CPUs") or 0)
        if memory < wanted_mib or cpus < wanted_cpus:
            return [
                Finding(
                    WARN,
                    "minikube profile",
                    f"{config['MINIKUBE_PROFILE']} exists with {cpus} CPUs, {memory} MiB; "
                    "minikube-up reuses it as it is",
                    "to resize: make minikube-down, then make minikube-up",
                )
            ]
    return []


# --- all of it -----------------------------------------------------------------------

CLUSTERS: dict[str, Callable[[Mapping[str, str], DockerHost | Finding], list[Finding]]] = {
    "kind": lambda config, host: [
        check_docker(host),
        check_kind(config),
        check_kubectl(config, "KUBERNETES_VERSION"),
        *check_room(host, config, "kind"),
    ],
    "minikube": lambda config, host: [
        check_docker(host),
        *check_minikube(config),
        check_kubectl(config, "MINIKUBE_K8S_VERSION"),
        *check_room(host, config, "minikube"),
    ],
}


def diagnose(cluster: str, config: Mapping[str, str]) -> list[Finding]:
    return CLUSTERS[cluster](config, docker_host())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="k8s_doctor.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("cluster", nargs="?", choices=sorted(CLUSTERS), help="default: both")
    args = parser.parse_args(argv)
    try:
        config = settings()
        quantity_mib(config["MINIKUBE_MEMORY"])
        kube_mib(config["STACK_MEMORY_REQUESTS"])
        millicpus(config["STACK_CPU_REQUESTS"])
        int(config["MINIKUBE_CPUS"])
    except (OSError, KeyError, ValueError) as exc:
        print(f"k8s-doctor: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for cluster in [args.cluster] if args.cluster else sorted(CLUSTERS):
        findings = diagnose(cluster, config)
        print(f"k8s-doctor: what {cluster}-up needs")
        for finding in findings:
            print("\n".join(finding.lines()))
        failed += sum(finding.level == FAIL for finding in findings)
    if failed:
        print(f"k8s-doctor: {failed} problem(s) above; fix them, then run make k8s-doctor again")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
