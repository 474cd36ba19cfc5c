"""The Docker engine restarted while a step container runs.

Restarting the host's dockerd would stop every container of every stack on the machine,
the user's included, which no test may do. So the test starts a Docker engine of its own:
a second dockerd with its own --data-root, --exec-root, --pidfile and unix socket, its own
containerd (dockerd starts one under its exec root), no bridge and no iptables rules, in a
network namespace of its own (`unshare --net`): a dockerd started with --bridge=none in the
host's namespace deletes the host's docker0, cutting every container on the default
bridge (docs/RELIABILITY.md 6.4 tells how that was found). Its containers get no network
(--network none), which load_csv does not need.

load_csv runs there on the world's data volume (bind-mounted by its path) and waits for
the directory lock the test holds, so it is surely running when the engine is stopped
(SIGTERM, as `systemctl restart docker` stops it) and started again. The task's retry runs
on the main engine, as the pipeline's would. Needs root (dockerd), as the fault tier
already does to read volumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from support.services import image

from apod_pipeline.by_hand import Placement
from apod_pipeline.steps import DATA, DVC_REMOTE, RUN_ID
from faults.crash import last_try_alert
from faults.world import World, clean_run, wait_for

pytestmark = [
    pytest.mark.faults,
    pytest.mark.docker,
    pytest.mark.integration,
    pytest.mark.timeout(600),
]

MONTH = ("2024-01-01", "2024-01-31")
FIRST = ("2024-01-01", "2024-01-10")
STOP_TIMEOUT = 60  # seconds for dockerd to stop (it gives containers 10 s, then kills)


@dataclass
class Engine:
    """A dockerd of the test's own."""

    root: Path
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def argv(self) -> list[str]:
        return [
            "dockerd",
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"),
            "--host", self.host,
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
        ]  # fmt: skip

    def command(self) -> list[str]:
        """dockerd in a network namespace of its own (unshare execs it: same pid)."""
        return ["unshare", "--net", "--", *self.argv()]

    def docker(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "--host", self.host, *args],
            capture_output=True, text=True, check=check, timeout=300, **kw,
        )  # fmt: skip

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        log.close()
        wait_for(
            lambda: (
                self.docker("version", check=False).returncode == 0
                or self.process.poll() is not None
            ),
            60,
            "the test's dockerd to answer",
            interval=0.5,
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"dockerd exited: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, as systemd's `restart docker` sends it; wait until it has exited."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def log_tail(self) -> str:
        return (self.root / "dockerd.log").read_text(errors="replace")[-3000:]


def unmount_below(path: Path) -> None:
    """What a stopped dockerd leaves mounted under its roots (its network namespace)."""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(path))]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@contextlib.contextmanager
def private_engine() -> Iterator[Engine]:
    if os.geteuid() != 0 or not (shutil.which("dockerd") and shutil.which("unshare")):
        pytest.skip("a Docker engine of the test's own needs root, dockerd and unshare")
    root = Path(f"/var/tmp/apod-faults-dockerd-{secrets.token_hex(4)}")
    root.mkdir(mode=0o700)
    engine = Engine(root)
    try:
        engine.start()
        yield engine
    finally:
        if engine.process is not None and engine.process.poll() is None:
            # Its containers are the test's own: none survives the engine.
            ids = engine.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                engine.docker("rm", "-f", *ids, check=False)
        engine.stop()
        unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)


def load_image(engine: Engine, name: str) -> None:
    saved = subprocess.Popen(["docker", "save", name], stdout=subprocess.PIPE)
    engine.docker("load", "--quiet", stdin=saved.stdout)
    assert saved.wait(timeout=300) == 0


@contextlib.contextmanager
def directory_locked(path: Path) -> Iterator[None]:
    """Hold the flock load_csv takes on the data directory (apod_common.locks)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def test_engine_restarted_mid_step_stops_the_container_and_the_retry_converges(
    w: World, server, monkeypatch
):
    clean = clean_run(server, *MONTH)
    first = f"manual__engine_first_{secrets.token_hex(3)}"
    w.extract(first, *FIRST).expect(0)
    w.transform(first).expect(0)
    w.load_csv(first).expect(0)
    before = w.csv_bytes()
    rid = f"manual__engine_{secrets.token_hex(3)}"
    w.extract(rid, *MONTH).expect(0)
    w.transform(rid).expect(0)
    with private_engine() as engine:
        load_image(engine, image("load"))
        # The step exactly as the pipeline defines it, on the world's /data by its path,
        # without network, kept after it ends (no --rm) to be looked at.
        placement = Placement(
            volumes={DATA.name: str(w.mountpoint), DVC_REMOTE.name: None}, network="none"
        )
        command = w.runner().command("load_csv", {RUN_ID: rid}, None, placement)
        command = replace(command, options=tuple(o for o in command.options if o != "--rm"))
        name = f"apod-faults-engine-{secrets.token_hex(3)}"
        argv = ["docker", "--host", engine.host, *command.argv(options=("--name", name))[1:]]
        with directory_locked(w.mountpoint):
            attached = subprocess.Popen(
                argv,
                env=command.cli_environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            wait_for(
                lambda: (
                    "waiting for another run to release the lock"
                    in engine.docker("logs", name, check=False).stderr
                    or attached.poll() is not None
                ),
                120,
                "load_csv to wait for the lock",
                interval=0.2,
            )
            assert attached.poll() is None, attached.communicate()
            engine.stop()  # the engine goes down under the running step...
            out, err = attached.communicate(timeout=60)
            engine.start()  # ...and comes back
            state = engine.docker(
                "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name
            ).stdout.split()
            running = engine.docker("ps", "-q").stdout.split()

    # The engine stopped the container when it stopped (SIGTERM), and did not start it
    # again: the step died, the client that followed it lost it.
    assert state[0] == "exited", state
    assert int(state[1]) in (137, 143), state
    assert running == []
    assert attached.returncode != 0
    assert w.csv_bytes() == before  # nothing written: the step never got the lock
    lost = type("Lost", (), {"returncode": int(state[1]), "output": out + err})()
    caught = last_try_alert(lost, "load_csv", monkeypatch)
    assert sorted(c.channel for c in caught) == ["mail", "webhook"]
    assert f"Exit code: {state[1]} (unexpected error; retries used up)" in caught[0].text

    # The task's retry, on the engine that is up: the CSV a clean run's, byte for byte.
    w.load_csv(rid).expect(0)
    assert w.csv_bytes() == clean.csv
