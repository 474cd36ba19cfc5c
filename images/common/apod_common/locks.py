"""One exclusive lock for every step: an flock that waits a bounded time, then gives up."""

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from apod_common import exit_codes
from apod_common.clock import SYSTEM, Clock
from apod_common.errors import StepError
from apod_common.files import FILE_MODE

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.2


def _open(path: Path) -> int:
    if path.is_dir():
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    # A read-only descriptor is enough for flock, so any uid that may read the lock file
    # can take the lock, whoever created it.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, os.O_RDONLY)
    os.fchmod(fd, FILE_MODE)
    return fd


@contextlib.contextmanager
def exclusive(path: Path, timeout: float, what: str, clock: Clock = SYSTEM) -> Iterator[None]:
    """Hold an exclusive flock on `path` (a directory, or a lock file made when missing).

    A lock on a directory leaves no file behind; either way the kernel drops the lock when
    the process dies, so a killed run never leaves a stale lock. After `timeout` seconds of
    waiting: exit 5, retry later.
    """
    fd = _open(path)
    try:
        deadline = clock.monotonic() + max(timeout, 0)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock.monotonic() >= deadline:
                    raise StepError(
                        f"another run still holds the lock on {what} ({path}) after {timeout:g}s",
                        exit_codes.UPSTREAM_UNAVAILABLE,
                    ) from None
                if not announced:
                    log.info("waiting for another run to release the lock on %s", what)
                    announced = True
                clock.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
