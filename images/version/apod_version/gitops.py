"""The git side: compare with HEAD, commit only our paths, push."""

import logging
import subprocess
from pathlib import Path

from apod_common import exit_codes
from apod_common.errors import StepError
from apod_version.tools import Tools

log = logging.getLogger("version")

NO_PUSH = ("none", "-")  # APOD_GIT_REMOTE values that turn the git push off


def git_dir(tools: Tools) -> Path:
    """The common git dir (shared by worktrees), where the run lock lives."""
    out = tools.git_ok("rev-parse", "--git-common-dir", code=exit_codes.BAD_INPUT).strip()
    path = Path(out)
    return path if path.is_absolute() else tools.repo / path


def shared_with_group(tools: Tools) -> bool:
    """Whether the repository is group-shared (`git init --shared=group`, as --init-repo
    makes it), so that files this run creates must stay writable for the group."""
    value = tools.git("config", "--get", "core.sharedRepository").stdout.strip().lower()
    return value in ("group", "true", "1", "all", "world", "everybody")


def head_blob(tools: Tools, rel: str) -> bytes | None:
    """The bytes of `rel` at HEAD, or None (no such file, or no commit yet)."""
    proc = subprocess.run(
        ["git", "-C", str(tools.repo), "cat-file", "blob", f"HEAD:{rel}"],
        env=tools.env,
        capture_output=True,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def same_as_head(tools: Tools, files: list[tuple[Path, str]]) -> bool:
    for path, rel in files:
        current = path.read_bytes() if path.exists() else None
        if current != head_blob(tools, rel):
            return False
    return True


def push_remote(tools: Tools, wanted: str | None) -> str | None:
    """The git remote to push to: APOD_GIT_REMOTE, else origin when it exists, else none."""
    names = tools.git_ok("remote").split()
    if wanted:
        if wanted.lower() in NO_PUSH:
            return None
        if wanted not in names:
            raise StepError(
                f"APOD_GIT_REMOTE={wanted!r} is not a remote of {tools.repo} "
                f"(remotes: {', '.join(names) or 'none'})",
                exit_codes.USAGE,
            )
        return wanted
    return "origin" if "origin" in names else None


def current_branch(tools: Tools) -> str | None:
    result = tools.git("symbolic-ref", "-q", "--short", "HEAD")
    return result.stdout.strip() or None if result.ok else None


def commit_only(tools: Tools, rels: list[str], message: str) -> str:
    """Commit exactly `rels` as they are in the working tree.

    `git commit --only` builds the commit from HEAD plus these paths, so whatever else is
    staged stays staged and unstaged edits stay unstaged. Hooks are skipped: a checkout's
    hooks call the developer's tools, which the image does not have.
    """
    tools.git_ok("add", "--", *rels)
    tools.git_ok("commit", "-q", "--only", "--no-verify", "-F", "-", "--", *rels, stdin=message)
    return tools.git_ok("rev-parse", "HEAD").strip()


def push(tools: Tools, remote_name: str) -> bool:
    """Push the current branch; False when there is no branch to push (detached HEAD)."""
    branch = current_branch(tools)
    if branch is None:
        log.warning("HEAD is detached: nothing to push to %s", remote_name)
        return False
    result = tools.git("push", "-q", remote_name, f"HEAD:refs/heads/{branch}")
    if not result.ok:
        raise StepError(
            f"git push to {remote_name} failed (the commit stays; the next run pushes it): "
            f"{result.last_line()}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    log.info("pushed %s to %s", branch, remote_name)
    return True
