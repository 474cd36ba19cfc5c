"""The builder of one node: a base by its command, an image by `docker build` (BuildKit
or the plain builder, images/build.toml's [builders]), its output to a log file."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apod_build.content_tags import LABEL_KEY
from apod_build.dockerfile import without_run_mounts
from apod_build.graph import BASE, Base, Graph
from apod_build.labels import labels

BUILDKIT, PLAIN = "buildkit", "plain"
TITLES = {BUILDKIT: "BuildKit", PLAIN: "plain builder"}


def log(message: str) -> None:
    print(f"apod_build: {message}", file=sys.stderr, flush=True)


def _answers(*command: str) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@dataclass(frozen=True)
class Builder:
    kind: str  # BUILDKIT or PLAIN
    docker: str  # the docker client that builds
    env: Mapping[str, str]
    args: Mapping[str, str]
    without_run_mounts: bool

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @classmethod
    def choose(cls, graph: Graph, environ: Mapping[str, str] = os.environ) -> Builder:
        """BuildKit when docker has buildx, or when a client older than 23 (Debian's
        docker.io) is found, which drives the engine's BuildKit itself; the plain builder
        otherwise, or when APOD_BUILDKIT=0."""
        kind, client = PLAIN, "docker"
        if environ.get("APOD_BUILDKIT") != "0":
            if _answers("docker", "buildx", "version") is not None:
                kind = BUILDKIT
            else:
                for candidate in ("docker", "/usr/bin/docker"):
                    version = _answers(candidate, "version", "--format", "{{.Client.Version}}")
                    major = (version or "").partition(".")[0]
                    if major.isdigit() and 18 <= int(major) < 23:
                        kind, client = BUILDKIT, candidate
                        break
        return cls.of(graph, kind, client)

    @classmethod
    def of(cls, graph: Graph, kind: str, client: str = "docker") -> Builder:
        """The builder of this kind, as images/build.toml's [builders] describe it."""
        spec = graph.settings["builders"][kind]
        return cls(
            kind,
            client,
            dict(spec.get("env", {})),
            dict(spec.get("args", {})),
            bool(spec.get("without-run-mounts", False)),
        )


@dataclass
class Processes:
    """The commands running now, to stop them all when the run is stopped."""

    running: set[subprocess.Popen] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, command: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(command, **kwargs)
        with self.lock:
            self.running.add(process)
        return process

    def done(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.running.discard(process)

    def stop_all(self) -> None:
        with self.lock:
            for process in self.running:
                process.terminate()


def image_size(docker: str, image: str) -> int:
    """The image's size in bytes; 0 when the engine does not hold it."""
    size = _answers(docker, "image", "inspect", "-f", "{{.Size}}", image)
    return int(size) if size and size.isdigit() else 0


def _created(docker: str, image: str) -> dt.datetime | None:
    created = _answers(docker, "image", "inspect", "-f", "{{.Created}}", image)
    if not created:
        return None
    # The engine gives nanoseconds; fromisoformat takes microseconds.
    created = re.sub(r"(\.\d{6})\d*", r"\1", created.replace("Z", "+00:00"))
    try:
        return dt.datetime.fromisoformat(created)
    except ValueError:
        return None


@dataclass
class NodeBuilder:
    graph: Graph
    builder: Builder
    logs: Path  # the log directory, absolute
    content_tags: Mapping[str, str]
    processes: Processes
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    base_images: dict[str, str] = field(default_factory=dict)  # base name -> image

    def log_path(self, node: str) -> Path:
        base = node.startswith(BASE)
        return self.logs / (f"base-{node.removeprefix(BASE)}.log" if base else f"{node}.log")

    def make_base(self, base: Base) -> tuple[str, bool]:
        """(the base's image, whether it was made now): the environment's when its
        argument is set there, else what its command prints."""
        path = self.log_path(base.node)
        if self.environ.get(base.arg):
            image, made = self.environ[base.arg], False
            path.write_text(f"{base.arg}={image}: named by the environment\n", encoding="utf-8")
        else:
            image, made = self._make(base, path)
        self.base_images[base.name] = image
        return image, made

    def _make(self, base: Base, path: Path) -> tuple[str, bool]:
        """Run the base's command, its messages to the terminal and the base's log."""
        started = dt.datetime.now(dt.UTC)
        with path.open("w", encoding="utf-8") as log_file:
            process = self.processes.run(
                [str(self.graph.root / base.make[0]), *base.make[1:]],
                cwd=self.graph.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=self.environ,
            )  # fmt: skip
            try:
                stdout = _tee(process, log_file)
            finally:
                self.processes.done(process)
        if process.returncode != 0 or not stdout.strip():
            raise BuildFailed(f"{' '.join(base.make)} failed (exit {process.returncode})")
        image = stdout.strip().splitlines()[-1]
        created = _created(self.builder.docker, image)
        # A second of slack: the engine's clock and ours, rounded differently.
        return image, created is not None and created >= started - dt.timedelta(seconds=1)

    def command(self, name: str, tag: str) -> list[str]:
        """The `docker build` of one image, under `tag`."""
        image = self.graph.image(name)
        dockerfile = self.graph.root / image.dockerfile
        if self.builder.without_run_mounts:
            rewritten = self.logs / f"{name}.Dockerfile"
            rewritten.write_text(without_run_mounts(dockerfile.read_text(encoding="utf-8")))
            dockerfile = rewritten
        args = {**self.graph.build_args(name), **self.builder.args}
        args |= {self.graph.bases[b].arg: self.base_images[b] for b in image.bases}
        image_labels = labels(self.graph, name, self.environ)
        image_labels[LABEL_KEY] = self.content_tags[name]
        command = [self.builder.docker, "build", "-f", str(dockerfile)]
        for key, value in args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in image_labels.items():
            command += ["--label", f"{key}={value}"]
        return [*command, "-t", tag, "."]

    def build_image(self, name: str, tag: str) -> None:
        path = self.log_path(name)
        command = self.command(name, tag)
        with path.open("w", encoding="utf-8") as log_file:
            process = self.processes.run(
                command, cwd=self.graph.root, stdout=log_file, stderr=subprocess.STDOUT,
                env={**self.environ, **self.builder.env},
            )  # fmt: skip
            try:
                code = process.wait()
            finally:
                self.processes.done(process)
        if code != 0:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            print("\n".join(lines[-30:]), file=sys.stderr)
            raise BuildFailed(f"{tag} failed (full log: {path})")


class BuildFailed(Exception):
    pass


def _tee(process: subprocess.Popen, log_file) -> str:
    """The process's stdout; its stderr, as it comes, copied to our stderr and the log."""
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(process.stdout.read()), daemon=True)
    reader.start()
    for line in process.stderr:
        sys.stderr.write(line)
        log_file.write(line)
        log_file.flush()
    process.wait()
    reader.join()
    return "".join(out)
