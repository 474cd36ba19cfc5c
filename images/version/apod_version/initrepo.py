"""Make the CSV's directory a git + DVC repository (compose and Kubernetes keep the data
repository on the shared volume, where nothing else would create it).

Atomic: the repository is built in a private directory beside the data (git init, dvc
init, the remote, .gitignore, the initial commit), then moved in with `.git` last. A
repository is there only once it is complete; an attempt that fails leaves nothing behind
(a killed one, at most its build directory, which the next attempt removes).
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

from apod_common import exit_codes, files, locks
from apod_common.errors import StepError
from apod_version import remote
from apod_version.childenv import child_env
from apod_version.message import INIT_MESSAGE
from apod_version.tools import Tools

log = logging.getLogger("version")

# Other steps' working files on the shared volume; the dataset's own line is dvc add's.
IGNORED = ("/raw/", "/staging/")
BUILD_PREFIX = ".apod-init-"
# Moved into place in this order: `.git` last, so that a repository appears complete.
CREATED = (".dvcignore", ".gitignore", ".dvc", ".git")
COMMITTED = (".gitignore", ".dvcignore", ".dvc/.gitignore", ".dvc/config")


def gitignore_text(existing: str) -> str:
    """`existing` with the IGNORED lines appended when missing."""
    lines = existing.splitlines()
    missing = [entry for entry in IGNORED if entry not in lines]
    if not missing:
        return existing
    prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
    return prefix + "".join(f"{entry}\n" for entry in missing)


def init_repo(directory: Path, dvc_remote: str | None, timeout: float) -> None:
    """git + DVC repository with its default remote and an initial commit, made once, even
    when two runs race for it (they serialise on a lock of the directory itself)."""
    if not dvc_remote:
        raise StepError(
            f"{directory} is not a git repository and --init-repo needs APOD_DVC_REMOTE "
            "(the DVC remote the new repository pushes to)",
            exit_codes.USAGE,
        )
    with locks.exclusive(directory, timeout, what=f"initialising {directory}"):
        if (directory / ".git").exists():
            return
        for stale in directory.glob(f"{BUILD_PREFIX}*"):
            log.info("removing %s, left by an initialisation that did not finish", stale.name)
            shutil.rmtree(stale, ignore_errors=True)
        log.info("initialising a git + DVC repository in %s", directory)
        # Group-writable, so a pod of another uid in group 0 can commit after us.
        os.umask(0o002)
        build = Path(tempfile.mkdtemp(prefix=BUILD_PREFIX, dir=directory))
        try:
            _build(build, directory, remote.normalise(dvc_remote))
            _move_in(build, directory)
        finally:
            shutil.rmtree(build, ignore_errors=True)


def _build(build: Path, directory: Path, dvc_remote: str) -> None:
    tools = Tools(build, child_env(os.environ, build))
    tools.git_ok("init", "-q", "--shared=group", "-b", "main")
    tools.dvc_ok("init", "-q")
    remote.configure_new_repo(build, dvc_remote)
    gitignore = directory / ".gitignore"
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    files.atomic_write(build / ".gitignore", gitignore_text(existing).encode("utf-8"))
    tools.git_ok("add", "--", *COMMITTED)
    tools.git_ok("commit", "-q", "--no-verify", "-F", "-", "--", *COMMITTED, stdin=INIT_MESSAGE)


def _move_in(build: Path, directory: Path) -> None:
    dvc_dir = directory / ".dvc"
    if dvc_dir.exists():
        # Only a run killed between moving `.dvc` and `.git` leaves one of ours: the same
        # config as this attempt's. Anything else is someone's DVC project: not ours to replace.
        ours = (dvc_dir / "config").is_file() and (dvc_dir / "config").read_bytes() == (
            build / ".dvc" / "config"
        ).read_bytes()
        if not ours:
            raise StepError(
                f"{directory} has a .dvc directory but no git repository; remove it or make "
                f"{directory} a git repository yourself",
                exit_codes.BAD_INPUT,
            )
        shutil.rmtree(dvc_dir)
    for name in CREATED:
        os.replace(build / name, directory / name)
    files.fsync_dir(directory)
