"""One version run at a time per repository: an flock that waits, then gives up."""

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import StepError

log = logging.getLogger("version")

_POLL_SECONDS = 0.2


@contextlib.contextmanager
def exclusive(path: Path, timeout: float, what: str = "the repository") -> Iterator[None]:
    """Hold an exclusive flock on `path` (a file or a directory) for the block.

    The kernel drops the lock when the process dies, so a killed run never leaves a
    stale lock behind.
    """
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        deadline = time.monotonic() + max(timeout, 0)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StepError(
                        f"another version run still holds the lock on {what} ({path}) "
                        f"after {timeout:g}s",
                        exit_codes.UPSTREAM_UNAVAILABLE,
                    ) from None
                if not announced:
                    log.info("waiting for another version run to release %s", path)
                    announced = True
                time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
