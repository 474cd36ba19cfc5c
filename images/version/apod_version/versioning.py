"""The version step: lock, dvc add, dvc push, commit the metadata, git push."""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from apod_common import exit_codes, layout, locks, versioned
from apod_common.errors import NothingToDo, StepError
from apod_common.versioned import Versioned
from apod_version import gitops, paths, remote
from apod_version.childenv import child_env
from apod_version.dvcfile import parse_dvc_file
from apod_version.initrepo import init_repo
from apod_version.message import commit_message, count_rows
from apod_version.tools import Tools

log = logging.getLogger("version")

LOCK_NAME = "apod-version.lock"


@dataclass(frozen=True)
class Options:
    run_id: str
    csv: Path
    repo: Path | None = None
    init_repo: bool = False
    push: bool = True
    lock_timeout: float = 300.0
    dvc_remote: str | None = None  # APOD_DVC_REMOTE
    git_remote: str | None = None  # APOD_GIT_REMOTE
    environ: dict[str, str] = field(default_factory=dict)


def locate(options: Options) -> tuple[Path, Path]:
    """The git repository and the DVC project of the CSV, created when asked to."""
    csv = options.csv
    if not csv.is_file():
        raise StepError(f"dataset CSV {csv} not found", exit_codes.BAD_INPUT)
    if options.repo is not None:
        repo = options.repo
        if not paths.is_inside(csv, repo):
            raise StepError(f"{csv} is not inside --repo {repo}", exit_codes.USAGE)
        found = repo if (repo / ".git").exists() else None
    else:
        found = paths.git_root(csv.parent)
        repo = found or csv.parent
    if found is None:
        if not options.init_repo:
            raise StepError(
                f"{csv} is in no git repository; pass --init-repo (or APOD_INIT_REPO=1) "
                f"to make {repo} one",
                exit_codes.BAD_INPUT,
            )
        init_repo(repo, options.dvc_remote, options.lock_timeout)
    dvc_root = paths.dvc_root(csv, repo)
    if dvc_root is None:
        raise StepError(
            f"{repo} is a git repository but not a DVC project: run `dvc init` there",
            exit_codes.BAD_INPUT,
        )
    return repo, dvc_root


def dvc_add(tools: Tools, csv: Path) -> None:
    result = tools.dvc("add", str(csv))
    if not result.ok:
        reason = result.last_line()
        code = exit_codes.BAD_INPUT if "tracked by" in reason else exit_codes.FAILURE
        raise StepError(f"dvc add {csv.name} failed: {reason}", code)


def dvc_push(tools: Tools, dvc_file: Path, target: remote.Remote) -> None:
    result = tools.dvc("push", str(dvc_file))
    if not result.ok:
        raise StepError(
            f"dvc push to remote {target.name!r} ({target.url}) failed, "
            f"nothing committed: {result.last_line()}",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    log.info("data in DVC remote %r (%s)", target.name, target.url)


def remember(csv: Path, run_id: str, md5: str, commit: str | None) -> None:
    """Tell the next run's extract which batch is now loaded and versioned
    (apod_common.versioned), where the CSV lies in a data directory beside that batch."""
    data_dir = csv.parent
    if csv.name != layout.CSV_NAME or not layout.manifest_path(data_dir, run_id).is_file():
        return
    try:
        versioned.write(data_dir, Versioned(run_id, md5, commit))
    except OSError as exc:
        # The data is versioned: without the record the next run only goes all the way.
        log.warning("cannot record run %s as versioned: %s", run_id, exc.strerror)


def run(options: Options) -> dict:
    repo, dvc_root = locate(options)
    csv = options.csv
    tools = Tools(repo, child_env(options.environ, repo, dvc_root), dvc_cwd=dvc_root)
    if gitops.shared_with_group(tools):
        # Pods of another uid in the same group (gid 0) take turns on a shared volume.
        os.umask(0o002)
    lock_path = gitops.git_dir(tools) / LOCK_NAME
    with locks.exclusive(lock_path, options.lock_timeout, what=f"the repository {repo}"):
        git_remote = None
        target = None
        if options.push:
            git_remote = gitops.push_remote(tools, options.git_remote)
            target = remote.resolve(dvc_root, options.dvc_remote, tools.env)
        elif options.dvc_remote:
            remote.override(dvc_root, options.dvc_remote)

        dvc_add(tools, csv)
        dvc_file = paths.dvc_file(csv)
        out = parse_dvc_file(dvc_file.read_text(encoding="utf-8"))
        rows = count_rows(csv)
        files = [
            (path, paths.relative(path, repo))
            for path in (dvc_file, paths.gitignore_beside(csv))
            if path.exists()
        ]
        unchanged = gitops.same_as_head(tools, files)
        log.info("%s: md5 %s, size %d, rows %d", csv.name, out.md5, out.size, rows)

        # Data first: git must never point at data the remote lacks. Even unchanged data
        # is pushed, so an earlier run whose push failed is made good.
        if target is not None:
            dvc_push(tools, dvc_file, target)
        if unchanged:
            if git_remote:
                gitops.push(tools, git_remote)
            remember(csv, options.run_id, out.md5, None)
            raise NothingToDo(f"data unchanged (md5 {out.md5})")

        message = commit_message(options.run_id, csv.name, out.md5, out.size, rows)
        sha = gitops.commit_only(tools, [rel for _, rel in files], message)
        log.info("committed %s: %s", sha[:12], ", ".join(rel for _, rel in files))
        git_pushed = gitops.push(tools, git_remote) if git_remote else False
        remember(csv, options.run_id, out.md5, sha)

    return {
        "run_id": options.run_id,
        "repo": str(repo),
        "csv": str(csv),
        "md5": out.md5,
        "size": out.size,
        "rows": rows,
        "commit": sha,
        "committed": True,
        "dvc_pushed": target is not None,
        "git_pushed": git_pushed,
    }
