#!/usr/bin/env python3
"""Keep an Airflow logs volume from filling: delete the files last changed more than
APOD_LOG_RETENTION_DAYS days ago, then the directories left empty; again every
APOD_LOG_GROOM_INTERVAL seconds (default 900). Standard library only.

    apod-log-groomer DIR            (a sidecar beside the scheduler and the DAG processor)
    apod-log-groomer DIR --once     one sweep, then exit

Symbolic links (the scheduler's `latest`) are left alone, and so is DIR itself. Each
sweep prints one line: what it removed. Exit codes: 0 (--once: swept), 2 usage or a
missing/invalid setting.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

DAY = 86400
DEFAULT_INTERVAL = 900


def sweep(root: Path, retention_days: float, now: float | None = None) -> tuple[int, int]:
    """(files, directories) removed under root. A directory goes when it is empty and
    either this sweep emptied it or it is itself older than the cutoff: one Airflow has
    just made for a log it is about to open stays."""
    cutoff = (time.time() if now is None else now) - retention_days * DAY
    files = directories = 0
    emptied: set[Path] = set()  # folders this sweep removed something from
    for folder, _subfolders, names in os.walk(root, topdown=False):
        here = Path(folder)
        for name in names:
            path = here / name
            try:
                if not path.is_symlink() and path.lstat().st_mtime < cutoff:
                    path.unlink()
                    files += 1
                    emptied.add(here)
            except FileNotFoundError:
                pass  # the writer rotated or removed it meanwhile
        if here == root:
            continue
        try:
            if here in emptied or here.stat().st_mtime < cutoff:
                here.rmdir()  # only when empty
                directories += 1
                emptied.add(here.parent)
        except OSError:
            pass
    return files, directories


def setting(name: str, default: float | None = None) -> float:
    text = os.environ.get(name, "")
    if not text:
        if default is None:
            raise ValueError(f"{name} is not set")
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise ValueError(f"{name} must be a number above 0, not {text!r}")
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apod-log-groomer", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="the logs volume (/opt/airflow/logs)")
    parser.add_argument("--once", action="store_true", help="one sweep, then exit")
    args = parser.parse_args(argv)
    try:
        days = setting("APOD_LOG_RETENTION_DAYS")
        interval = setting("APOD_LOG_GROOM_INTERVAL", DEFAULT_INTERVAL)
    except ValueError as exc:
        print(f"apod-log-groomer: {exc}", file=sys.stderr)
        return 2
    if not args.dir.is_dir():
        print(f"apod-log-groomer: {args.dir} is not a directory", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while True:
        files, directories = sweep(args.dir, days)
        print(
            f"apod-log-groomer: {args.dir}: removed {files} file(s) and {directories} "
            f"empty folder(s) older than {days:g} day(s)",
            flush=True,
        )
        if args.once or stop.wait(interval):
            return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
