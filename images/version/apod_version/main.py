"""CLI wiring: arguments and environment in, one summary dict out.

The CLI boundary: the work (and DVC with it) is imported only once the arguments are good,
so that `--help` and usage errors stay fast.
"""

import argparse
import os

from apod_common import cli as runner
from apod_common import layout, settings
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
                       .dvc/config.local, never committed); required with --init-repo
  APOD_GIT_REMOTE      git remote to push to (default: origin when it exists; "none": no push)
  APOD_INIT_REPO=1     same as --init-repo
  APOD_DATA_DIR        where the dataset lives (default /data)
  APOD_RUN_ID          run id when --run-id is not given
  GIT_AUTHOR_NAME/EMAIL, GIT_COMMITTER_NAME/EMAIL   commit identity
                       (default "APOD pipeline" <apod-pipeline@localhost>)

exit codes: 0 committed, 99 data unchanged, 2 bad arguments, 3 no CSV / not a repository,
5 DVC remote or git remote unavailable or lock timeout (retry later), 1 unexpected.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = runner.parser("version", DESCRIPTION, EPILOG)
    parser.add_argument("--run-id", help="the pipeline run this version belongs to")
    parser.add_argument(
        "--csv", help="the dataset CSV (default: $APOD_DATA_DIR/apod_data.csv, /data/...)"
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
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for another version run on the same repository (300)",
    )
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)

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
        environ=dict(os.environ),
    )
    return run(options)


def cli() -> None:
    raise SystemExit(runner.run("version", main))
