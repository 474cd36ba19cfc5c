"""`apod-version restore`: the data of a clone of the data repository, back from its DVC
remote, checked byte for byte against the md5 that git holds.

A fresh `git clone` has the .dvc files but not the data: this pulls it (at HEAD, or at
`--rev`), from the committed default remote or APOD_DVC_REMOTE, with the credentials of
the environment, and fails unless every file it restores has the md5 its .dvc file names.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from apod_common import exit_codes, locks
from apod_common.errors import StepError
from apod_common.files import md5_of
from apod_version import gitops, remote
from apod_version.childenv import child_env
from apod_version.dvcfile import DvcOut, parse_dvc_file
from apod_version.tools import Tools
from apod_version.versioning import LOCK_NAME

log = logging.getLogger("version")


@dataclass(frozen=True)
class RestoreOptions:
    repo: Path
    rev: str | None = None
    dvc_remote: str | None = None  # APOD_DVC_REMOTE
    lock_timeout: float = 300.0
    environ: dict[str, str] = field(default_factory=dict)


def tracked_dvc_files(tools: Tools) -> list[str]:
    """The .dvc files git holds at the checked-out revision (paths relative to the repo)."""
    out = tools.git_ok("ls-files", "-z", "--", "*.dvc", code=exit_codes.BAD_INPUT)
    return sorted(name for name in out.split("\0") if name)


def commit_of(tools: Tools, rev: str) -> str:
    # Never an option to git, whatever the caller typed.
    result = (
        None
        if rev.startswith("-")
        else tools.git("rev-parse", "-q", "--verify", f"{rev}^{{commit}}")
    )
    if result is None or not result.ok:
        raise StepError(f"no commit {rev!r} in {tools.repo}", exit_codes.BAD_INPUT)
    return result.stdout.strip()


def checked(repo: Path, rel: str) -> tuple[str, DvcOut]:
    """The output a .dvc file describes, as restored: it must have the recorded md5."""
    dvc_path = repo / rel
    try:
        out = parse_dvc_file(dvc_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StepError(f"{rel}: {exc}", exit_codes.BAD_INPUT) from exc
    data = dvc_path.parent / (out.path or dvc_path.name.removesuffix(".dvc"))
    shown = data.relative_to(repo).as_posix()
    if not data.exists():
        # `dvc pull` can end with a warning only, when the remote lacks an object.
        raise StepError(
            f"{shown} was not restored: the DVC remote lacks md5 {out.md5}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    if not out.is_directory:
        actual = md5_of(data)
        if actual != out.md5:
            raise StepError(
                f"{shown} restored with md5 {actual}, but {rel} says {out.md5}",
                exit_codes.FAILURE,
            )
    return shown, out


def restore(options: RestoreOptions) -> dict:
    repo = options.repo
    if not (repo / ".git").exists():
        raise StepError(
            f"{repo} is not a git repository: clone the data repository there first",
            exit_codes.BAD_INPUT,
        )
    tools = Tools(repo, child_env(options.environ, repo, repo), dvc_cwd=repo)
    if gitops.shared_with_group(tools):
        os.umask(0o002)
    lock_path = gitops.git_dir(tools) / LOCK_NAME
    with locks.exclusive(lock_path, options.lock_timeout, what=f"the repository {repo}"):
        if options.rev:
            tools.git_ok("checkout", "-q", "--detach", commit_of(tools, options.rev))
        if not (repo / ".dvc").is_dir():
            raise StepError(f"{repo} is not a DVC project (no .dvc/)", exit_codes.BAD_INPUT)
        commit = tools.git_ok("rev-parse", "HEAD", code=exit_codes.BAD_INPUT).strip()
        tracked = tracked_dvc_files(tools)
        if not tracked:
            raise StepError(
                f"no data version at {commit[:12]}: no .dvc file is committed there",
                exit_codes.BAD_INPUT,
            )
        target = remote.resolve(repo, options.dvc_remote, tools.env)
        result = tools.dvc("pull", *tracked)
        if not result.ok:
            raise StepError(
                f"dvc pull from remote {target.name!r} ({target.url}) failed: {result.last_line()}",
                exit_codes.UPSTREAM_UNAVAILABLE,
            )
        restored = [checked(repo, rel) for rel in tracked]
    for path, out in restored:
        log.info("restored %s: md5 %s, size %d", path, out.md5, out.size)
    return {
        "repo": str(repo),
        "commit": commit,
        "remote": target.url,
        "restored": [{"path": path, "md5": out.md5, "size": out.size} for path, out in restored],
    }
