"""`apod-version lineage --date D`: the version of the dataset that first held a date.

The data repository's history is the git history of the CSV's .dvc file: one commit per
data version, naming the run in its subject and the data's md5 in the .dvc file. For a
date, this reads each version's CSV by that md5 (from the DVC cache, else through DVC
from the remote) and answers with the first version holding the date: its commit, time,
md5 and run.

The pipeline only merges into the CSV (load csv adds and updates rows, never drops one),
so the versions holding a date are the last ones of the history: a binary search finds
the first of them in a few reads, whatever the length of the history.
"""

import argparse
import csv
import logging
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from apod_common import exit_codes, layout, runner, settings
from apod_common.errors import StepError
from apod_common.files import md5_of
from apod_version import paths
from apod_version.childenv import child_env
from apod_version.dvcfile import DvcOut, parse_dvc_file
from apod_version.message import run_of_subject
from apod_version.tools import Tools

log = logging.getLogger("version")

DESCRIPTION = """\
Print the lineage of one date of the dataset: the first committed version of the CSV that
held it (git commit, commit time, DVC md5, the run named in the commit). Read-only: no
lock, no commit, no push.
"""

EPILOG = """\
environment: APOD_DATA_DIR (default /data). A version the DVC cache lacks is read from
the remote the repository's config names (APOD_DVC_REMOTE is not read: this command
writes nothing); AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or _FILE
forms) for an S3 remote, as for the step.

exit codes: 0 found, 2 bad arguments, 3 not a repository / no committed version holds
the date, 5 a version is neither in the cache nor on the remote, 1 unexpected.
"""

# APOD explanations are long; the csv module's default field limit (128 KiB) is too small.
_FIELD_LIMIT = 16 * 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = runner.parser("version lineage", DESCRIPTION, EPILOG)
    parser.add_argument("--date", type=runner.iso_date, required=True, help="the date, YYYY-MM-DD")
    parser.add_argument(
        "--csv", help=f"the dataset CSV (default: $APOD_DATA_DIR/{layout.CSV_NAME}, /data/...)"
    )
    parser.add_argument("--repo", help="the git repository (default: the one holding the CSV)")
    return parser


@dataclass(frozen=True)
class Version:
    """One commit of the .dvc file: a version of the data."""

    commit: str
    committed_at: str  # ISO 8601, the committer's
    subject: str
    out: DvcOut


class History:
    """The versions of one DVC-tracked CSV in one repository, oldest first."""

    def __init__(self, tools: Tools, csv_path: Path, dvc_root: Path):
        self.tools = tools
        self.csv = csv_path
        self.dvc_root = dvc_root
        self.dvc_file = paths.relative(paths.dvc_file(csv_path), tools.repo)

    def versions(self) -> list[Version]:
        log_text = self.tools.git_ok(
            "log", "--reverse", "--format=%H%x1f%cI%x1f%s", "--", self.dvc_file
        )
        found = []
        for line in log_text.splitlines():
            commit, committed_at, subject = line.split("\x1f", 2)
            shown = self.tools.git("show", f"{commit}:{self.dvc_file}")
            if not shown.ok:  # the commit that deleted the .dvc file
                continue
            try:
                out = parse_dvc_file(shown.stdout)
            except ValueError as exc:
                log.warning("%s in %s: %s; skipped", self.dvc_file, commit[:12], exc)
                continue
            found.append(Version(commit, committed_at, subject, out))
        return found

    @cache  # noqa: B019 - one History per command; a version is read at most once
    def dates(self, version: Version) -> frozenset[str]:
        """The dates the CSV of `version` holds."""
        cached = self.cache_path(version.out.md5)
        if cached.is_file():
            return csv_dates(cached)
        log.info("md5 %s is not in the DVC cache: reading it through DVC", version.out.md5)
        with tempfile.TemporaryDirectory(prefix="apod-lineage-") as scratch:
            copy = Path(scratch) / self.csv.name
            target = self.csv.relative_to(self.dvc_root).as_posix()
            result = self.tools.dvc(
                "get", str(self.dvc_root), target, "--rev", version.commit, "-o", str(copy)
            )
            if not result.ok or not copy.is_file():
                raise StepError(
                    f"version {version.commit[:12]} (md5 {version.out.md5}) is neither in "
                    f"the DVC cache nor on the remote: {result.last_line()}",
                    exit_codes.UPSTREAM_UNAVAILABLE,
                )
            actual = md5_of(copy)
            if actual != version.out.md5:
                raise StepError(
                    f"DVC gave md5 {actual} for version {version.commit[:12]}, "
                    f"which names {version.out.md5}",
                    exit_codes.FAILURE,
                )
            return csv_dates(copy)

    def cache_path(self, md5: str) -> Path:
        """Where DVC 3 keeps a file of this md5 in the project's cache."""
        return self.cache_dir() / "files" / "md5" / md5[:2] / md5[2:]

    @cache  # noqa: B019 - as above
    def cache_dir(self) -> Path:
        out = self.tools.dvc_ok("cache", "dir", code=exit_codes.BAD_INPUT).strip()
        return Path(out.splitlines()[-1]) if out else self.dvc_root / ".dvc" / "cache"


def csv_dates(path: Path) -> frozenset[str]:
    csv.field_size_limit(_FIELD_LIMIT)
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if "date" not in header:
            raise StepError(f"{path} has no date column", exit_codes.BAD_INPUT)
        column = header.index("date")
        return frozenset(row[column] for row in reader if len(row) > column)


def first_holding(history: History, versions: list[Version], day: str) -> Version | None:
    """The oldest version whose CSV holds `day` (versions holding it are a suffix)."""
    if not versions or day not in history.dates(versions[-1]):
        return None
    low, high = 0, len(versions) - 1
    while low < high:
        middle = (low + high) // 2
        if day in history.dates(versions[middle]):
            high = middle
        else:
            low = middle + 1
    return versions[low]


def locate(csv_arg: str | None, repo_arg: str | None) -> tuple[Path, Path, Path]:
    """The CSV, its git repository and its DVC project."""
    csv_path = paths.absolute(csv_arg or layout.dataset_csv(settings.data_dir()))
    repo = paths.absolute(repo_arg) if repo_arg else paths.git_root(csv_path.parent)
    if repo is None or not (repo / ".git").exists():
        raise StepError(f"{csv_path} is in no git repository", exit_codes.BAD_INPUT)
    if not paths.is_inside(csv_path, repo):
        raise StepError(f"{csv_path} is not inside --repo {repo}", exit_codes.USAGE)
    dvc_root = paths.dvc_root(csv_path, repo)
    if dvc_root is None:
        raise StepError(f"{repo} is not a DVC project", exit_codes.BAD_INPUT)
    return csv_path, repo, dvc_root


def lineage(day: str, csv_arg: str | None, repo_arg: str | None, environ: dict) -> dict:
    csv_path, repo, dvc_root = locate(csv_arg, repo_arg)
    tools = Tools(repo, child_env(environ, repo, dvc_root), dvc_cwd=dvc_root)
    history = History(tools, csv_path, dvc_root)
    versions = history.versions()
    first = first_holding(history, versions, day)
    if first is None:
        where = "no committed version" if versions else "no version (nothing committed yet)"
        raise StepError(f"{day} is in {where} of {history.dvc_file}", exit_codes.BAD_INPUT)
    log.info(
        "%s first held by %s (%s), md5 %s, %d version(s) in all",
        day,
        first.commit[:12],
        first.committed_at,
        first.out.md5,
        len(versions),
    )
    return {
        "date": day,
        "repo": str(repo),
        "dvc_file": history.dvc_file,
        "commit": first.commit,
        "committed_at": first.committed_at,
        "md5": first.out.md5,
        "size": first.out.size,
        "run_id": run_of_subject(first.subject),
        "versions": len(versions),
        "latest_commit": versions[-1].commit,
        "latest_md5": versions[-1].out.md5,
    }


def main(argv: list[str]) -> dict:
    args = build_parser().parse_args(argv)

    from apod_version import s3

    return lineage(args.date, args.csv, args.repo, s3.credentials_environment())
