#!/usr/bin/env python3
"""`make lineage DATE=YYYY-MM-DD`: where one loaded date of the dataset came from.

    scripts/lineage.py 2024-01-15              # this checkout (runs by hand, `make steps`)
    scripts/lineage.py 2024-01-15 --compose    # the compose stack's data volume and Postgres
    scripts/lineage.py 2024-01-15 --json       # one JSON object instead of the table

Two read-only containers, each asking the store its image knows:
  apod-version lineage --date D    the data repository: the first committed version of
                                   apod_data.csv holding D (commit, time, DVC md5, run)
  apod-load provenance --date D    Postgres: the row's run_id, extracted_at, loaded_at
By hand the repository is this checkout (mounted read-only at its own path) and Postgres
is APOD_DATABASE_URL (or _FILE, or libpq's PG* variables), passed by name; without any,
only the repository is asked. With --compose: the stack's data volume (read-only), its
object store on 127.0.0.1:APOD_S3_PORT and its Postgres on 127.0.0.1:APOD_PG_PORT as the
loader role, from APOD_ENV_FILE or .env.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "dags"), str(REPO / "scripts")]

import deploy_env  # noqa: E402

from apod_pipeline.by_hand import Placement, container  # noqa: E402
from apod_pipeline.settings import Settings  # noqa: E402
from apod_pipeline.steps import (  # noqa: E402
    DATA,
    DATA_CSV,
    DATABASE_URL,
    S3_ACCESS_KEY_ID,
    S3_ENDPOINT_ENV,
    S3_SECRET_ACCESS_KEY,
    Volume,
)

SHOWN = (
    ("date", "date"),
    ("run_id", "run id (Postgres: the run that last wrote the row)"),
    ("loaded_at", "loaded at"),
    ("extracted_at", "extracted at"),
    ("commit", "git commit (first version holding the date)"),
    ("committed_at", "committed at"),
    ("md5", "DVC md5 of that version"),
    ("commit_run_id", "run named by that commit"),
    ("repo", "data repository"),
)


def ask(run, what: str) -> dict:
    """Run one container; its JSON summary (last stdout line), or exit with its reason."""
    result = subprocess.run(
        run.argv(), env=run.cli_environment(), capture_output=True, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        sys.stderr.write(result.stderr[-2000:])
        print(f"lineage: {what} failed (exit {result.returncode})", file=sys.stderr)
        raise SystemExit(result.returncode or 1)
    return json.loads(lines[-1])


def database_secrets(environ: dict[str, str]) -> dict[str, str]:
    names = (DATABASE_URL.env, f"{DATABASE_URL.env}_FILE", *DATABASE_URL.alternatives)
    return {name: environ[name] for name in names if environ.get(name)}


def by_hand(settings: Settings, day: str, environ: dict[str, str]):
    checkout = Volume("checkout", str(REPO))
    placement = Placement(
        volumes={checkout.name: checkout.path},
        read_only=frozenset({checkout.name}),
        user=f"{os.getuid()}:{os.getgid()}",
        environment={"HOME": "/tmp"},  # noqa: S108 - the user has no home in the image
    )
    version = container(
        settings.image("version"),
        ["lineage", "--date", day, "--csv", f"{REPO}/data/{DATA_CSV}"],
        placement,
        volumes=(checkout,),
    )
    secrets = database_secrets(environ)
    load = None
    if secrets:
        load = container(
            settings.image("load"),
            ["provenance", "--date", day],
            Placement(volumes={}),
            secrets=secrets,
        )
    return version, load


def on_compose(settings: Settings, day: str, environ: dict[str, str]):
    env_file = Path(environ.get("APOD_ENV_FILE") or REPO / ".env")
    if not env_file.is_file():
        raise SystemExit(f"lineage: no {env_file}: is the compose stack set up (make up)?")
    stack = deploy_env.read_env(env_file)
    volumes = {DATA.name: stack.get("APOD_DATA_VOLUME") or settings.data_volume}
    # A version the data volume's DVC cache lacks comes from the stack's object store,
    # on its published port (the container shares the host's network).
    store = {
        S3_ENDPOINT_ENV: f"http://127.0.0.1:{stack.get('APOD_S3_PORT') or '8333'}",
        S3_ACCESS_KEY_ID.env: stack.get("APOD_S3_ACCESS_KEY_ID", ""),
        S3_SECRET_ACCESS_KEY.env: stack.get("APOD_S3_SECRET_ACCESS_KEY", ""),
    }
    version = container(
        settings.image("version"),
        ["lineage", "--date", day],
        Placement(volumes=volumes, read_only=frozenset(volumes)),
        volumes=(DATA,),
        secrets=store,
    )
    password = quote(stack.get("APOD_LOADER_PASSWORD", ""), safe="")
    port = stack.get("APOD_PG_PORT") or "5433"
    url = f"postgresql://apod_loader:{password}@127.0.0.1:{port}/apod"
    load = container(
        settings.image("load"),
        ["provenance", "--date", day],
        Placement(volumes={}),
        secrets={DATABASE_URL.env: url},
    )
    return version, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lineage.py", description="Print where one loaded date of the dataset came from."
    )
    parser.add_argument("date", help="the date, YYYY-MM-DD")
    parser.add_argument("--compose", action="store_true", help="the compose stack's data")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    try:
        settings = Settings.from_env(environ)
    except (ValueError, LookupError) as exc:
        parser.error(str(exc))
    render = on_compose if args.compose else by_hand
    version_run, load_run = render(settings, args.date, environ)
    found = ask(version_run, "apod-version lineage")
    lineage = {
        "date": args.date,
        "commit": found["commit"],
        "committed_at": found["committed_at"],
        "md5": found["md5"],
        "commit_run_id": found["run_id"],
        "repo": found["repo"],
    }
    if load_run is None:
        print("lineage: no APOD_DATABASE_URL (or PG*): Postgres not asked", file=sys.stderr)
    else:
        row = ask(load_run, "apod-load provenance")
        lineage |= {key: row[key] for key in ("run_id", "loaded_at", "extracted_at")}
    if args.json:
        print(json.dumps(lineage, sort_keys=True))
    else:
        width = max(len(label) for _, label in SHOWN)
        for key, label in SHOWN:
            if key in lineage:
                print(f"{label:<{width}}  {lineage[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
