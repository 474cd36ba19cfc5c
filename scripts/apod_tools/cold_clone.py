"""A throwaway clone of this checkout that is cold without making anything else cold.

Nothing the user or another process uses is removed or retagged: the clone gets a
VERSION of its own (`<version>.dev<stamp>`, a PEP 440 version the packages accept, so
every apod-<name> tag and every layer is new), base images and a Postgres tag of its own
(ensure-base-image.sh's APOD_LOCAL_DEBIAN / APOD_LOCAL_PYTHON, APOD_LOCAL_POSTGRES), a
HOME of its own (no compose plugin linked, no pip or Debian bootstrap cache; the user's
configuration under ~/.config is kept) and a compose stack of its own (deploy_env's env
file: project, ports, volumes, network). `teardown` removes all of it, also after a
failure. The engine-wide BuildKit cache mounts are emptied only when asked (--prune-cache).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import deploy_env

from apod_tools.bench_cold import Line
from apod_tools.docker import docker
from apod_tools.project import REPO

# Make's own steering, and what would lead the clone to this checkout's tools.
_SCRUBBED = (
    "VERSION",
    "PYTHON",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "DOCKER_BUILDKIT",
    "DOCKER_CONFIG",
    "XDG_CACHE_HOME",
)


@dataclass
class ColdClone:
    prefix: str
    stamp: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"))
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="apod-cold-")))
    version: str = ""
    commit: str = ""
    stack: dict[str, str] = field(default_factory=dict)
    own_tags: dict[str, str] = field(default_factory=dict)  # base and Postgres tags
    demo_ran: bool = False

    @property
    def checkout(self) -> Path:
        return self.root / "clone"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def env_file(self) -> Path:
        return self.root / "stack.env"

    def _own_tags(self) -> dict[str, str]:
        pg_major = (self.checkout / "images" / "postgres" / "PG_MAJOR").read_text().strip()
        return {
            "APOD_LOCAL_DEBIAN": f"{self.prefix}-debian:cold{self.stamp}",
            "APOD_LOCAL_PYTHON": f"{self.prefix}-python:cold{self.stamp}",
            "APOD_LOCAL_POSTGRES": f"apod-postgres:{pg_major}-cold{self.stamp}",
        }

    def make(self, with_changes: bool) -> None:
        """Clone HEAD (and, with_changes, the checkout's uncommitted changes), give it its
        own VERSION and the env file of its own stack."""
        subprocess.run(
            ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(self.checkout)], check=True
        )
        self.commit = _git(self.checkout, "rev-parse", "HEAD")
        if with_changes:
            _copy_changes(self.checkout)
        self._refuse_shared_postgres_tag()
        self.own_tags = self._own_tags()
        version_file = self.checkout / "VERSION"
        self.version = f"{version_file.read_text().strip()}.dev{self.stamp}"
        version_file.write_text(self.version + "\n", encoding="utf-8")
        self.home.mkdir()
        self.stack = deploy_env.new_stack(self.env_file, self.prefix)

    def _refuse_shared_postgres_tag(self) -> None:
        # A commit whose scripts ignore APOD_LOCAL_POSTGRES would retag the user's
        # apod-postgres:<major>: refuse rather than touch it. Its builder's tags are in
        # images/build.toml (scripts/build-images.sh before it).
        builder = "images/build.toml"
        if not (self.checkout / builder).is_file():
            builder = "scripts/build-images.sh"
        for script in (builder, "scripts/compose-lib.sh"):
            if "APOD_LOCAL_POSTGRES" not in (self.checkout / script).read_text():
                raise RuntimeError(
                    f"{script} of {self.commit[:12]} has no APOD_LOCAL_POSTGRES: its build "
                    "would retag this machine's apod-postgres image (use --with-changes, or a "
                    "later commit)"
                )

    def environ(self) -> dict[str, str]:
        env = deploy_env.stack_environ(self.env_file)
        for name in _SCRUBBED:
            env.pop(name, None)
        # A new user's shell has no virtualenv of this checkout on its PATH.
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
        )
        real_home = Path(os.environ.get("HOME", "/root"))
        env |= {
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_CONFIG_HOME": os.environ.get("XDG_CONFIG_HOME", str(real_home / ".config")),
            "APOD_CACHE_DIR": str(self.home / ".cache" / "apod"),
            **self.own_tags,
        }
        return env

    def run_make_demo(
        self, echo: Callable[[Line], None], timeout: float
    ) -> tuple[list[Line], float, int]:
        """`make demo` in the clone: its output lines, stamped as they arrive, the seconds
        to its exit, and its exit code."""
        started = time.monotonic()
        self.demo_ran = True
        process = subprocess.Popen(
            ["make", "demo"],
            cwd=self.checkout,
            env=self.environ(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=1,
            start_new_session=True,  # its whole group can be stopped on a timeout
        )
        lines = []
        try:
            assert process.stdout is not None
            for text in process.stdout:
                line = Line(time.monotonic() - started, text.rstrip("\n"))
                lines.append(line)
                echo(line)
                if line.at > timeout:
                    raise TimeoutError(f"make demo ran longer than {timeout:.0f}s")
            code = process.wait()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        return lines, time.monotonic() - started, code

    def _build_settings(self) -> dict:
        """Where the clone's builder writes (its images/build.toml's [build])."""
        return tomllib.loads((self.checkout / "images" / "build.toml").read_text())["build"]

    def build_report(self) -> dict | None:
        """The JSON build report of the demo's image builds (tools/apod_build/report.py);
        None when no build ran."""
        path = self.checkout / self._build_settings()["report"]
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def build_logs(self) -> dict[str, str]:
        """Every build log (the report's nodes', and ensure-base-image.sh's own), by name."""
        logs = self.checkout / self._build_settings()["logs"]
        return {p.name: p.read_text(errors="replace") for p in sorted(logs.glob("*.log"))}

    def keep_logs(self, lines: list[Line], into: Path) -> None:
        """The run's output, its build logs and build report, kept in this checkout (the
        clone goes)."""
        shutil.rmtree(into, ignore_errors=True)
        into.mkdir(parents=True)
        (into / "make-demo.log").write_text(
            "".join(f"{line.at:8.1f} {line.text}\n" for line in lines), encoding="utf-8"
        )
        for name, text in self.build_logs().items():
            (into / name).write_text(text, encoding="utf-8")
        report = self.build_report()
        if report is not None:
            (into / "build-report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")

    def teardown(self) -> list[str]:
        """Remove the stack, its volumes and network, the clone's images and bases and
        the directory; what could not be removed is returned (and reported)."""
        left = []
        if self.stack and self.checkout.exists():
            script = self.checkout / "scripts" / "compose-down.sh"
            down = subprocess.run([str(script), "--volumes"], env=self.environ(), text=True,
                                  capture_output=True, timeout=600, check=False)  # fmt: skip
            if down.returncode != 0:
                left.append(f"compose-down.sh: {down.stderr.strip()[-300:]}")
        left += _remove_by_label(self.stack)
        if self.version:
            left += _remove_images(self.version, list(self.own_tags.values()))
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            left.append(f"directory {self.root}")
        return left


def prune_cache_mounts() -> str:
    """Empty BuildKit's cache mounts (the wheels): engine-wide, so only when asked."""
    result = docker("builder", "prune", "-f", "--filter", "type=exec.cachemount", check=False)
    return (result.stdout.strip().splitlines() or ["nothing"])[-1]


def _git(checkout: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _copy_changes(clone: Path) -> None:
    """The checkout's uncommitted changes: the tracked diff, applied, and the untracked
    files git does not ignore, copied."""
    diff = subprocess.run(
        ["git", "-C", str(REPO), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    if diff:
        subprocess.run(
            ["git", "-C", str(clone), "apply", "--whitespace=nowarn", "-"], input=diff, check=True
        )
    untracked = _git(REPO, "ls-files", "--others", "--exclude-standard", "-z")
    for name in filter(None, untracked.split("\0")):
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def _remove_by_label(stack: dict[str, str]) -> list[str]:
    """Whatever of the stack compose-down.sh left (it needs the compose plugin, which a
    failed run may not have installed): found by the project's label and its names."""
    if not stack:
        return []
    left = []
    project = f"label=com.docker.compose.project={stack['APOD_COMPOSE_PROJECT']}"
    containers = docker("ps", "-aq", "--filter", project, check=False).stdout.split()
    steps = docker(
        "ps",
        "-aq",
        "--filter",
        "label=org.apod.pipeline=apod",
        "--filter",
        f"network={stack['APOD_DOCKER_NETWORK']}",
        check=False,
    ).stdout.split()
    if containers or steps:
        docker("rm", "-f", *containers, *steps, check=False)
    volumes = set(docker("volume", "ls", "-q", "--filter", project, check=False).stdout.split())
    volumes |= {v for k, v in stack.items() if k.endswith("_VOLUME")}
    for volume in sorted(volumes):
        if _exists("volume", volume) and docker("volume", "rm", volume, check=False).returncode:
            left.append(f"volume {volume}")
    network = stack["APOD_DOCKER_NETWORK"]
    if _exists("network", network) and docker("network", "rm", network, check=False).returncode:
        left.append(f"network {network}")
    return left


def _exists(kind: str, name: str) -> bool:
    return docker(kind, "inspect", name, check=False).returncode == 0


def _remove_images(version: str, own: list[str]) -> list[str]:
    """The clone's apod-* images, then its own bases (children before their parents)."""
    listing = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout
    present = set(listing.split())
    tags = sorted(t for t in present if t.endswith(f":{version}"))
    tags += [t for t in reversed(own) if t in present]
    left = []
    for tag in tags:
        if docker("rmi", tag, check=False).returncode != 0:
            left.append(f"image {tag}")
    return left
