"""The docker CLI, throwaway volumes, and reading what the steps left on a volume."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator

from apod_tools.project import image


def docker(
    *args: str, env: dict | None = None, check: bool = True, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, check=check, timeout=timeout
    )


def docker_available() -> bool:
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


@contextlib.contextmanager
def docker_volume(prefix: str) -> Iterator[str]:
    """A new named volume `<prefix>-<random>`, removed when the block ends."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    docker("volume", "create", name)
    try:
        yield name
    finally:
        docker("volume", "rm", "-f", name, check=False)


def volume_cat(volume: str, path: str) -> str:
    """A file on a volume mounted at /data, read by a throwaway container (the host may
    not own it)."""
    return docker(
        "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "cat", image("version"), path
    ).stdout


def volume_git(volume: str, *args: str) -> str:
    """git in the version image on a volume mounted at /data (the data repository)."""
    return docker(
        "run", "--rm", "-v", f"{volume}:/data", "-w", "/data", "--entrypoint", "git",
        image("version"), "-c", "safe.directory=/data", *args,
    ).stdout  # fmt: skip
