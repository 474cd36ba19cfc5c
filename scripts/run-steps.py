#!/usr/bin/env python3
"""`make steps`: the pipeline's step images run with plain `docker run` (no Airflow), on
this checkout's data/ directory, committing the .dvc change into this checkout.

    scripts/run-steps.py 2024-01-01 2024-03-31

The steps, their arguments and their order are the DAGs' (dags/apod_pipeline), rendered
by apod_pipeline.by_hand. Reads APOD_API_URL, NASA_API_KEY (or NASA_API_KEY_FILE),
APOD_DATABASE_URL (or _FILE, or libpq's PG* variables), APOD_EXTRACT_CONCURRENCY,
APOD_DVC_REMOTE, APOD_GIT_REMOTE, APOD_RUN_ID (default "manual", the steps' own: a rerun
resumes the same batch) and APOD_LOG_LEVEL from the environment, as the host sees them:
the containers use the host's network, so 127.0.0.1 means the same thing inside. Secrets
are handed to `docker run` by variable name (-e NAME), never by value; *_FILE variables
and PGPASSFILE are mounted read-only. Standard library only: a plain python3 runs it, no
virtualenv needed.
"""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "dags"), str(REPO / "scripts")]

from apod_pipeline.by_hand import DEFAULT_RUN_ID, checkout_placement  # noqa: E402
from apod_pipeline.settings import Settings  # noqa: E402
from apod_pipeline.steps import END, RUN_ID, START, Checkout  # noqa: E402
from apod_tools.runner import Runner, failure  # noqa: E402


def log(message: str) -> None:
    print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} run-steps: {message}", file=sys.stderr, flush=True)


def default_dvc_remote(repo: Path) -> str:
    """The URL of the checkout's default DVC remote, as committed in .dvc/config."""
    config = configparser.ConfigParser()
    config.read(repo / ".dvc" / "config")
    name = config["core"]["remote"]
    return config[f"'remote \"{name}\"'"]["url"]


def local_path(url: str) -> str | None:
    """A local remote's absolute directory; None for a URL (s3://, ssh://)."""
    if "://" in url and not url.startswith("file://"):
        return None
    return os.path.abspath(url.removeprefix("file://"))


def checkout(repo: Path, environ: dict[str, str]) -> Checkout:
    given = environ.get("APOD_DVC_REMOTE") or None
    local = local_path(given or default_dvc_remote(repo))
    return Checkout(
        path=str(repo),
        # A local one made absolute as the host means it: the container's working
        # directory is not ours.
        dvc_remote=None if given is None else local or given,
        local_remote=local,
        git_remote=environ.get("APOD_GIT_REMOTE") or "none",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run-steps.py", description="Run the pipeline's steps by hand with docker run."
    )
    parser.add_argument("start", help="first day, YYYY-MM-DD")
    parser.add_argument("end", nargs="?", help="last day, inclusive (default: START)")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    run_id = environ.get("APOD_RUN_ID") or DEFAULT_RUN_ID
    where = checkout(REPO, environ)
    for directory in (where.data_dir, where.local_remote):
        if directory:  # before Docker creates them, owned by root
            Path(directory).mkdir(parents=True, exist_ok=True)
    # Every container writes as you, so the files it leaves in your checkout are yours.
    passed = {"HOME": "/tmp"}  # noqa: S108 - the user has no home in the image
    if environ.get("APOD_LOG_LEVEL"):
        passed["APOD_LOG_LEVEL"] = environ["APOD_LOG_LEVEL"]
    placement = checkout_placement(where, user=f"{os.getuid()}:{os.getgid()}", environment=passed)
    try:
        settings = Settings.from_env(environ)
    except (ValueError, LookupError) as exc:
        parser.error(str(exc))
    runner = Runner(settings, placement, environ, checkout=where, capture=False, log=log)
    start, end = args.start, args.end or args.start
    log(f"run {run_id}: {start}..{end}")
    failed = failure(runner.pipeline({START: start, END: end, RUN_ID: run_id}))
    if failed:
        return failed.returncode
    log(f"run {run_id} finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
