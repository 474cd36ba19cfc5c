"""python -m apod_testserver: serve APOD fixtures until interrupted."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
from pathlib import Path

from apod_testserver.archive import ArchiveError
from apod_testserver.server import ApodTestServer, Config

SAMPLE = Path("tests", "fixtures", "apod")
# Where the year files sit when APOD_ARCHIVE_DIR names the whole archive folder.
ARCHIVE_YEARS = Path("ellanan-apod-api", "api", "_data", "years")


def committed_sample() -> Path:
    """The repository's sample next to this package in a checkout (absent in the image)."""
    for folder in Path(__file__).resolve().parents:
        if (folder / SAMPLE).is_dir():
            return folder / SAMPLE
    return SAMPLE


def fixtures_dir(cli_value: str | None) -> Path:
    chosen = Path(cli_value or os.environ.get("APOD_ARCHIVE_DIR") or committed_sample())
    return chosen / ARCHIVE_YEARS if (chosen / ARCHIVE_YEARS).is_dir() else chosen


def key_list(name: str) -> frozenset[str] | None:
    value = os.environ.get(name)
    return None if value is None else frozenset(k.strip() for k in value.split(",") if k.strip())


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be a number of seconds >= 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="apod_testserver",
        description=(
            "Serve APOD entries from YYYY.json fixtures the way api.nasa.gov does "
            "(GET /planetary/apod), with a /_control API for fault injection. "
            "Keys: env APOD_TESTSERVER_INVALID_KEYS (comma list) are refused; when "
            "APOD_TESTSERVER_VALID_KEYS is set only those and DEMO_KEY pass."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port, 0 for any free one (default %(default)s)"
    )
    parser.add_argument(
        "--fixtures",
        metavar="DIR",
        help="folder of YYYY.json files (default: $APOD_ARCHIVE_DIR, else the repository's "
        "tests/fixtures/apod sample)",
    )
    parser.add_argument(
        "--today", type=_day, help="the server's today, YYYY-MM-DD (default: UTC date of the clock)"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=1000,
        metavar="N",
        help="requests per key per window (default %(default)s)",
    )
    parser.add_argument(
        "--rate-window",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="length of the rolling rate-limit window (default %(default)s)",
    )
    parser.add_argument(
        "--fail-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability that an APOD request gets a 500 (default %(default)s)",
    )
    latency = parser.add_argument_group(
        "latency model",
        "The real service scrapes one apod.nasa.gov page per day it answers, and its "
        "gateway cuts answers that take too long with a 504 page. Off by default.",
    )
    latency.add_argument(
        "--day-cost",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="time per day answered: a range of D days takes D times this, a single date "
        "once (default %(default)s)",
    )
    latency.add_argument(
        "--gateway-timeout",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="an answer that would take longer gets 504 with an HTML page after this long; "
        "0: no time-out (default %(default)s)",
    )
    latency.add_argument(
        "--hang-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability that the service never answers a request: the gateway time-out "
        "cuts it, or without one it waits until the client gives up (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for --fail-rate, --hang-rate and count=N picks"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config(
        fixtures=fixtures_dir(args.fixtures),
        host=args.host,
        port=args.port,
        today=args.today,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        fail_rate=args.fail_rate,
        seed=args.seed,
        day_cost=args.day_cost,
        gateway_timeout=args.gateway_timeout or None,
        hang_rate=args.hang_rate,
        invalid_keys=key_list("APOD_TESTSERVER_INVALID_KEYS") or frozenset(),
        valid_keys=key_list("APOD_TESTSERVER_VALID_KEYS"),
        log=None if args.quiet else sys.stderr,
    )
    try:
        server = ApodTestServer(config)
    except ArchiveError as exc:
        print(
            f"apod_testserver: {exc} (give --fixtures DIR or set APOD_ARCHIVE_DIR)", file=sys.stderr
        )
        return 2
    except OSError as exc:
        print(f"apod_testserver: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    # As PID 1 in a container SIGTERM would otherwise be ignored and `docker stop` would hang.
    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"apod_testserver: {len(server.archive)} entries from {config.fixtures}",
        file=sys.stderr,
    )
    if config.day_cost or config.gateway_timeout or config.hang_rate:
        print(
            f"apod_testserver: latency model: {config.day_cost:g} s per day answered, "
            f"gateway time-out {config.gateway_timeout or 0:g} s (0: none), "
            f"hang rate {config.hang_rate:g}",
            file=sys.stderr,
        )
    print(f"listening on {server.base_url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(f"apod_testserver: served {server.stats.summary()}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
