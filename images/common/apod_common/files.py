"""Files on the shared volume: one atomic write and one file-mode policy for every step.

Mode policy. The images run as uid 10001, group 0; a person runs them with their own uid
(`make steps`), and a pod of another uid in group 0 may take over a volume. So whatever the
umask:
- a file a step writes is FILE_MODE (0664: owner and group rewrite it, others read it),
- a directory a step creates is DIR_MODE (0775: owner and group add files to it),
- a file that is replaced keeps the mode it had, so a mode someone chose on purpose stays.
Nothing the steps write is secret; secrets never reach a file.

Atomic write. The bytes go to a temp file beside the target (`.<name>.<random>.tmp`), are
fsynced, renamed over the target, and the directory is fsynced: a reader sees the old file
or the whole new one, and a crash leaves the old one plus at most a temp file, which
`temp_files` finds for the next run to remove.

Many files at once (extract's chunks): `atomic_write(..., durable=False)` leaves out the
fsyncs, and `make_durable` then syncs the whole batch side by side before anything names
those files (the manifest): one at a time, two fsyncs per file were most of the step's
time on a loaded disk. Until then a crash of the machine may lose such a file, never
leave a half-written one under its name for a reader that checks its bytes.
"""

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FILE_MODE = 0o664
DIR_MODE = 0o775
TEMP_SUFFIX = ".tmp"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5_of(path: Path) -> str:
    """The md5 DVC 3 records for a file: of its bytes, as they are."""
    digest = hashlib.md5()  # noqa: S324 - DVC's content address, not a security measure
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_dirs(path: Path) -> None:
    """`path` with its missing parents, each new one DIR_MODE; existing ones stay as they are."""
    missing = []
    for directory in (path, *path.parents):
        if directory.is_dir():
            break
        missing.append(directory)
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # another step made it meanwhile: it is that step's to set
        os.chmod(directory, DIR_MODE)


def temp_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write(
    path: Path, data: bytes, mtime: dt.datetime | None = None, durable: bool = True
) -> None:
    """Replace `path` by `data` atomically (see the module); `mtime` stamps the new file.
    `durable=False`: no fsync; the caller passes the path to `make_durable` later."""
    make_dirs(path.parent)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = FILE_MODE
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)  # mkstemp makes 0600, whatever the policy says
            if mtime is not None:
                os.utime(handle.fileno(), (mtime.timestamp(), mtime.timestamp()))
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if durable:
        fsync_dir(path.parent)


# fsyncs in flight at once: the file system commits concurrent ones together.
_SYNC_THREADS = 8


def make_durable(paths: Iterable[Path]) -> None:
    """fsync every file of `paths` (side by side), then each of their directories once."""
    paths = list(paths)
    with ThreadPoolExecutor(min(_SYNC_THREADS, max(len(paths), 1))) as pool:
        list(pool.map(_fsync_file, paths))
    for directory in sorted({path.parent for path in paths}):
        fsync_dir(directory)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> bool:
    """Delete `path` durably; False when there was nothing to delete."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def temp_files(directory: Path, target: Path | None = None) -> list[Path]:
    """Temp files that atomic writes into `directory` (of `target` only, when given) left."""
    prefix = temp_prefix(target) if target is not None else "."
    return sorted(
        p for p in directory.iterdir() if p.name.startswith(prefix) and p.name.endswith(TEMP_SUFFIX)
    )


def fsync_dir(directory: Path) -> None:
    # A rename or an unlink is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
