"""The one exception type steps raise to stop with a meaningful exit code, and what makes
a failure a full disk."""

import errno
import os
from pathlib import Path

from apod_common import exit_codes

# A full disk or quota: what the OS, and git and DVC after it, say of it.
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
_OUT_OF_SPACE_TEXT = tuple(os.strerror(code) for code in OUT_OF_SPACE)
# Free bytes under which a failure is taken for a full disk whatever it said: a child may
# word ENOSPC its own way (DVC's state database says "disk I/O error").
LOW_SPACE = 1 << 20


class StepError(Exception):
    """A failure with a one-line reason and the exit code that classifies it."""

    def __init__(self, reason: str, code: int = exit_codes.FAILURE):
        super().__init__(reason)
        self.reason = " ".join(str(reason).split())  # always one line
        self.code = code


class NothingToDo(StepError):
    """Not a failure: the step has no work (the DAG marks the task skipped)."""

    def __init__(self, reason: str):
        super().__init__(reason, exit_codes.NOTHING_TO_DO)


def out_of_space(failure: BaseException | str, where: Path | None = None) -> bool:
    """A full disk: an OSError of ENOSPC/EDQUOT, a message (a child's: git, DVC) that says
    so, or any failure while the file system holding `where` has less than LOW_SPACE free.
    The retry, once space is freed, goes on: so, like an unavailable store, exit 5."""
    if isinstance(failure, OSError) and failure.errno in OUT_OF_SPACE:
        return True
    text = failure.reason if isinstance(failure, StepError) else str(failure)
    if any(phrase in text for phrase in _OUT_OF_SPACE_TEXT):
        return True
    free = free_bytes(where) if where is not None else None
    return free is not None and free < LOW_SPACE


def free_bytes(where: Path) -> int | None:
    """What an unprivileged writer may still use on the file system holding `where`."""
    try:
        stat = os.statvfs(where)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize
