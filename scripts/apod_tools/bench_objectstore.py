"""How long the object store takes to stop cleanly: the figure behind its grace period
(docker-compose.yml stop_grace_period, the StatefulSet's terminationGracePeriodSeconds,
images/objectstore/entrypoint.sh). A store of the bench's own with throwaway keys (in
docker's environment, never on its command line), stopped with `docker stop` as compose
and the kubelet stop it; container and volume removed after."""

from __future__ import annotations

import os
import secrets
import time

from apod_tools.bench_report import Report
from apod_tools.docker import docker, docker_volume
from apod_tools.project import image

SECTION = "images"
# docker stop's wait before SIGKILL: longer than the deployments' grace period, so that
# the figure is weed's own stop, not a kill.
STOP_WAIT = 60
READY_TRIES = 240  # `objectstore-healthcheck` probes, one per second at most


def bench_objectstore_stop(report: Report) -> None:
    tag = image("objectstore")
    name = f"apod-bench-objectstore-{secrets.token_hex(4)}"
    keys = {
        "OBJECTSTORE_ACCESS_KEY": f"apod{secrets.token_hex(8)}",
        "OBJECTSTORE_SECRET_KEY": secrets.token_urlsafe(24),
    }
    with docker_volume("apod-bench-objectstore") as volume:
        try:
            docker("run", "-d", "--name", name, "-v", f"{volume}:/data",
                   *(arg for key in keys for arg in ("-e", key)), tag,
                   env={**os.environ, **keys})  # fmt: skip
            for _ in range(READY_TRIES):
                if docker("exec", name, "objectstore-healthcheck", check=False).returncode == 0:
                    break
                time.sleep(1)
            else:
                raise RuntimeError(f"{name} never became ready")
            started = time.perf_counter()
            docker("stop", "-t", str(STOP_WAIT), name)
            stopped = time.perf_counter() - started
            code = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
            report.add(SECTION, f"{tag} graceful stop (`docker stop`)", stopped, "s",
                       f"exit code {code} (137: killed at the {STOP_WAIT} s limit)",
                       digits=1)  # fmt: skip
        finally:
            docker("rm", "-f", name, check=False)
