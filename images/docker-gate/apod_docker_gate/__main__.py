"""apod-docker-gate: serve (the default), health, policy, haproxy-config.

  serve           the checker on a Unix socket and HAProxy in front of it on
                  APOD_GATE_PORT; ends (for the restart policy) when HAProxy does
  health          exit 0 when a ping through the whole gate reaches the engine
  policy          print what containers may be made of, from the deployment's settings
  haproxy-config  print HAProxy's configuration

Settings: the pipeline's (APOD_IMAGE_TAG, APOD_DOCKER_NETWORK, APOD_DATA_VOLUME,
APOD_DVC_VOLUME, APOD_DVC_REMOTE: dags/apod_pipeline/settings.py) and the gate's:
APOD_GATE_PORT (2375), APOD_GATE_DOCKER_SOCKET (/var/run/docker.sock),
APOD_GATE_REQUEST_TIMEOUT (10 s for a request's head and body), APOD_GATE_RUN_DIR
(/tmp/apod-docker-gate).
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from apod_docker_gate import haproxy
from apod_docker_gate.engine import Engine
from apod_docker_gate.http import Limits
from apod_docker_gate.policy import Policy
from apod_docker_gate.server import Checker
from apod_pipeline.settings import Settings

log = logging.getLogger("apod-docker-gate")
HAPROXY = "/usr/sbin/haproxy"


def port() -> int:
    return int(os.environ.get("APOD_GATE_PORT") or 2375)


def limits() -> Limits:
    return Limits(timeout=float(os.environ.get("APOD_GATE_REQUEST_TIMEOUT") or 10))


def run_dir() -> Path:
    return Path(os.environ.get("APOD_GATE_RUN_DIR") or "/tmp/apod-docker-gate")  # noqa: S108


def haproxy_config(policy: Policy) -> str:
    return haproxy.config(policy, str(run_dir() / "checker.sock"), port(), limits())


def serve(policy: Policy) -> int:
    engine = Engine(os.environ.get("APOD_GATE_DOCKER_SOCKET") or "/var/run/docker.sock")
    if not engine.ping():
        log.warning("the Docker engine does not answer at %s (yet)", engine.socket_path)
    directory = run_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    checker = Checker(str(directory / "checker.sock"), policy, engine, limits())
    threading.Thread(target=checker.serve_forever, name="checker", daemon=True).start()
    config = directory / "haproxy.cfg"
    config.write_text(haproxy_config(policy))
    log.info("allowed:\n%s", policy.describe())
    proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)])
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        proxy.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = proxy.wait()
    if stopping.is_set():
        return 0
    log.error("HAProxy ended with exit code %s", code)
    return code or 1


def health() -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port(), timeout=5)
    try:
        connection.request("GET", "/_ping")
        response = connection.getresponse()
        ok = response.status == 200 and response.read() == b"OK"
    except OSError as exc:
        print(f"the gate does not answer: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    if command in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if command == "health":
        return health()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="docker-gate %(levelname)s %(message)s"
    )
    policy = Policy.from_settings(Settings.from_env())
    if command == "policy":
        print(policy.describe())
        return 0
    if command == "haproxy-config":
        print(haproxy_config(policy))
        return 0
    if command == "serve":
        return serve(policy)
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
