"""Make the CSV's directory a git + DVC repository (compose and Kubernetes keep the data
repository on the shared volume, where nothing else would create it)."""

import logging
import os
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_version import lock, remote
from apod_version.childenv import child_env
from apod_version.message import INIT_MESSAGE
from apod_version.tools import Tools

log = logging.getLogger("version")

# Other steps' working files on the shared volume; the dataset's own line is dvc add's.
IGNORED = ("/raw/", "/staging/")


def gitignore_text(existing: str) -> str:
    """`existing` with the IGNORED lines appended when missing."""
    lines = existing.splitlines()
    missing = [entry for entry in IGNORED if entry not in lines]
    if not missing:
        return existing
    prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
    return prefix + "".join(f"{entry}\n" for entry in missing)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def init_repo(directory: Path, dvc_remote: str | None, timeout: float) -> None:
    """git init + dvc init + default remote + an initial commit, once, even when two runs
    race for it (they serialise on a lock of the directory itself)."""
    if not dvc_remote:
        raise StepError(
            f"{directory} is not a git repository and --init-repo needs APOD_DVC_REMOTE "
            "(the DVC remote the new repository pushes to)",
            exit_codes.USAGE,
        )
    with lock.exclusive(directory, timeout, what=f"initialising {directory}"):
        if (directory / ".git").exists():
            return
        log.info("initialising a git + DVC repository in %s", directory)
        # Group-writable, so a pod of another uid in group 0 can commit after us.
        os.umask(0o002)
        env = child_env(os.environ, directory)
        tools = Tools(directory, env)
        tools.git_ok("init", "-q", "--shared=group", "-b", "main")
        tools.dvc_ok("init", "-q")
        remote.configure_new_repo(directory, remote.normalise(dvc_remote))
        gitignore = directory / ".gitignore"
        existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
        _write_atomic(gitignore, gitignore_text(existing))
        paths = [".gitignore", ".dvcignore", ".dvc/.gitignore", ".dvc/config"]
        tools.git_ok("add", "--", *paths)
        tools.git_ok("commit", "-q", "--no-verify", "-F", "-", "--", *paths, stdin=INIT_MESSAGE)
