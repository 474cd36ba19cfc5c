"""The "restricted" Pod Security Standard (Kubernetes 1.34), checked on a pod spec.

Each rule of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(baseline and restricted profiles, as the namespace's `enforce: restricted` label makes
the admission controller apply them) is one check below, plus this project's own rules:
a read-only root filesystem, pinned image tags and imagePullPolicy IfNotPresent.
"""

from __future__ import annotations

from k8s_render import containers

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {
    None,
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def restricted_violations(spec: dict) -> list[str]:
    """Every way `spec` breaks the restricted profile; empty when it meets it."""
    out: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    all_containers = [*containers(spec), *spec.get("ephemeralContainers", [])]

    # baseline
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"pod: {field} is true")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("pod: windowsOptions.hostProcess")
    for volume in spec.get("volumes", []):
        types = set(volume) - {"name"}
        if "hostPath" in types:
            out.append(f"volume {volume['name']}: hostPath")
        if not types <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {volume['name']}: type {sorted(types)} not allowed")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            out.append(f"pod: unsafe sysctl {sysctl['name']}")
    if (pod_sc.get("appArmorProfile") or {}).get("type") not in (
        None,
        "RuntimeDefault",
        "Localhost",
    ):
        out.append("pod: appArmorProfile not RuntimeDefault/Localhost")
    for where, sc in [("pod", pod_sc)] + [
        (c["name"], c.get("securityContext") or {}) for c in all_containers
    ]:
        se = sc.get("seLinuxOptions") or {}
        if se.get("type") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            out.append(f"{where}: seLinuxOptions not allowed")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_sc.get("runAsUser") == 0:
        out.append("pod: runAsUser 0")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_OK:
        out.append(f"pod: seccompProfile {pod_seccomp}")

    for c in all_containers:
        name = c["name"]
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"{name}: windowsOptions.hostProcess")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                out.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{name}: procMount {sc['procMount']}")
        if (sc.get("appArmorProfile") or {}).get("type") not in (
            None,
            "RuntimeDefault",
            "Localhost",
        ):
            out.append(f"{name}: appArmorProfile")
        # restricted
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            out.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in SECCOMP_OK:
            out.append(f"{name}: seccompProfile {seccomp}")
        if seccomp is None and pod_seccomp is None:
            out.append(f"{name}: no seccompProfile (pod or container)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities do not drop ALL")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            out.append(f"{name}: adds capabilities {sorted(extra)}")
    return out


def project_violations(spec: dict, tag: str) -> list[str]:
    """This project's rules on top: read-only root, pinned tags, IfNotPresent, and an
    fsGroup only with fsGroupChangePolicy OnRootMismatch (otherwise storage that applies
    fsGroup re-owns every file at each start, and Postgres refuses a group-writable
    PGDATA)."""
    out = []
    pod_sc = spec.get("securityContext") or {}
    if "fsGroup" in pod_sc and pod_sc.get("fsGroupChangePolicy") != "OnRootMismatch":
        out.append("pod: fsGroup without fsGroupChangePolicy OnRootMismatch")
    for c in containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{c['name']}: root filesystem is not read-only")
        if c.get("imagePullPolicy") != "IfNotPresent":
            out.append(f"{c['name']}: imagePullPolicy {c.get('imagePullPolicy')}")
        image = c["image"]
        name, _, image_tag = image.rpartition(":")
        if not name or image_tag in ("", "latest") or "/" in image_tag:
            out.append(f"{c['name']}: image {image} has no pinned tag")
        elif name.startswith("apod-") and name != "apod-postgres" and image_tag != tag:
            out.append(f"{c['name']}: image {image} is not tagged {tag}")
    return out
