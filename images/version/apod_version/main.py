"""CLI wiring: arguments and environment in, one summary dict out.

The CLI boundary: the work (and DVC with it) is imported only once the arguments are good,
so that `--help` and usage errors stay fast.
"""

import argparse
import sys

from apod_common import layout, runner, settings
from apod_version.paths import absolute

TRUTHY = ("1", "true", "yes", "on")

DESCRIPTION = """\
Version the APOD dataset: `dvc add` the CSV, `dvc push` it to the default DVC remote, then
commit only its .dvc file (and the .gitignore beside it) to git and push when a git remote
is configured. Unchanged data: no new commit, exit 99.
"""

EPILOG = """\
environment:
  APOD_DVC_REMOTE      URL/path of the DVC remote for this repository (written to
                       .dvc/config.local, never committed); required with --init-repo.
                       s3://BUCKET/PREFIX (an S3-compatible store) or ssh://USER@HOST/PATH
                       work too; a new repository commits only that URL, no endpoint
  AWS_ENDPOINT_URL_S3  the S3 endpoint (e.g. http://objectstore:8333)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or their _FILE forms, or
  AWS_SHARED_CREDENTIALS_FILE)   the S3 key; checked before anything is added
  APOD_GIT_REMOTE      git remote to push to (default: origin when it exists; "none": no push)
  APOD_INIT_REPO=1     same as --init-repo
  APOD_DATA_DIR        where the dataset lives (default /data)
  APOD_RUN_ID          run id when --run-id is not given
  GIT_AUTHOR_NAME/EMAIL, GIT_COMMITTER_NAME/EMAIL   commit identity
                       (default "APOD pipeline" <apod-pipeline@localhost>)

exit codes: 0 committed, 99 data unchanged, 2 bad arguments, 3 no CSV / not a repository,
4 the object store refused the S3 credentials, 5 DVC remote or git remote unavailable or
lock timeout (retry later), 1 unexpected.

restore: `apod-version restore [--repo DIR] [--rev REV]` pulls the data of a clone of
the data repository back from its DVC remote (see `apod-version restore --help`).

lineage: `apod-version lineage --date YYYY-MM-DD` prints the first committed version of
the CSV that held that date: commit, time, DVC md5, run (`apod-version lineage --help`).
"""

RESTORE_DESCRIPTION = """\
Restore the data of a clone of the data repository: `dvc pull` every .dvc file committed
at HEAD (or --rev) from the default DVC remote (or APOD_DVC_REMOTE), then check each file
against the md5 its .dvc file holds.
"""

RESTORE_EPILOG = """\
environment: APOD_DVC_REMOTE, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
(or _FILE forms, or AWS_SHARED_CREDENTIALS_FILE), APOD_DATA_DIR: as for the step.

exit codes: 0 restored, 2 bad arguments, 3 not a repository / no data version at that
revision / unknown revision, 4 S3 credentials refused, 5 remote unavailable or lacking
the data, 1 restored bytes differ from the md5 in git, or unexpected.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = runner.parser("version", DESCRIPTION, EPILOG)
    runner.add_run_id(parser, "the pipeline run this version belongs to")
    parser.add_argument(
        "--csv", help=f"the dataset CSV (default: $APOD_DATA_DIR/{layout.CSV_NAME}, /data/...)"
    )
    parser.add_argument("--repo", help="the git repository (default: the one holding the CSV)")
    parser.add_argument(
        "--init-repo",
        action="store_true",
        default=None,
        help="make the CSV's directory a git + DVC repository when it is in none",
    )
    parser.add_argument(
        "--no-push",
        action="store_true",
        help="commit locally only: no dvc push, no git push (the next run pushes both)",
    )
    runner.add_lock_timeout(parser, 300.0, "another version run on the same repository")
    return parser


def build_restore_parser() -> argparse.ArgumentParser:
    parser = runner.parser("version restore", RESTORE_DESCRIPTION, RESTORE_EPILOG)
    parser.add_argument(
        "--repo", help="the clone of the data repository (default: $APOD_DATA_DIR, /data)"
    )
    parser.add_argument("--rev", help="check out this commit, tag or branch first (detached)")
    runner.add_lock_timeout(parser, 300.0, "a version run on the same repository")
    return parser


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["restore"]:
        return restore_main(argv[1:])
    if argv[:1] == ["lineage"]:
        from apod_version import lineage

        return lineage.main(argv[1:])
    args = build_parser().parse_args(argv)

    from apod_version import s3
    from apod_version.versioning import Options, run

    init = args.init_repo
    if init is None:
        init = (settings.env("APOD_INIT_REPO", "") or "").lower() in TRUTHY
    options = Options(
        run_id=settings.run_id(args.run_id),
        csv=absolute(args.csv or layout.dataset_csv(settings.data_dir())),
        repo=absolute(args.repo) if args.repo else None,
        init_repo=init,
        push=not args.no_push,
        lock_timeout=args.lock_timeout,
        # Not a secret as a whole (a path, mostly): its credentials, if any, are masked by
        # the redactor's URL rule, and kept out of committed config (remote.strip_userinfo).
        dvc_remote=settings.env_or_file("APOD_DVC_REMOTE"),
        git_remote=settings.env("APOD_GIT_REMOTE"),
        environ=s3.credentials_environment(),
    )
    return run(options)


def restore_main(argv: list[str]) -> dict:
    args = build_restore_parser().parse_args(argv)

    from apod_version import s3
    from apod_version.restore import RestoreOptions, restore

    return restore(
        RestoreOptions(
            repo=absolute(args.repo or settings.data_dir()),
            rev=args.rev,
            dvc_remote=settings.env_or_file("APOD_DVC_REMOTE"),
            lock_timeout=args.lock_timeout,
            environ=s3.credentials_environment(),
        )
    )


def cli() -> None:
    raise SystemExit(runner.run("version", main))
