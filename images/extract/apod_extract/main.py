"""CLI wiring: arguments and environment in, extract.run, summary out."""

from __future__ import annotations

import argparse
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from apod_common import exit_codes, runner, settings
from apod_common.errors import StepError
from apod_extract import dates
from apod_extract.client import ApodClient, RetryPolicy
from apod_extract.extract import DEFAULT_CONCURRENCY, Request, run

DEFAULT_API_URL = "https://api.nasa.gov/planetary/apod"
# The gateway's quota belongs to the key, not to a connection: more requests at once
# only reach the 429s sooner.
MAX_CONCURRENCY = 16

ENVIRONMENT = """\
environment:
  APOD_API_URL        endpoint (default https://api.nasa.gov/planetary/apod)
  NASA_API_KEY        API key (default DEMO_KEY); or NASA_API_KEY_FILE naming a file
  APOD_RUN_ID         run id when --run-id is not given
  APOD_DATA_DIR       data directory when --data-dir is not given (default /data)
  APOD_LOG_LEVEL      log level on stderr (default INFO)

exit codes: 0 done, 2 bad arguments, 4 the API refused (4xx), 5 the API stayed
unavailable or the rate limit ran out (finished chunks are kept: rerun to resume),
99 no entries in the range, or the same answers as the last batch loaded and versioned
(manifest still written)."""


def build_parser() -> argparse.ArgumentParser:
    parser = runner.parser(
        "extract",
        "Fetch APOD entries for START..END from the API, at most --chunk-days days per "
        "request, and write each answer untouched to <data-dir>/raw/<run id>/ with a "
        "manifest.json. The last stdout line is a JSON summary.",
        ENVIRONMENT,
    )
    parser.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first day")
    parser.add_argument("--end", metavar="YYYY-MM-DD", help="last day, inclusive (default START)")
    runner.add_run_id(parser, "names the batch folder")
    parser.add_argument("--data-dir", metavar="DIR", help="data root (default $APOD_DATA_DIR)")
    parser.add_argument(
        "--chunk-days",
        type=int,
        default=dates.MAX_CHUNK_DAYS,
        metavar="N",
        help=f"days per request, 1..{dates.MAX_CHUNK_DAYS} (default %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)"
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=5,
        metavar="N",
        help="retries per chunk after timeouts, 5xx, 429 or bad bodies (default 5)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="longest wait for one retry; a longer Retry-After stops the run (default 120)",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="first retry delay, doubled each time, with jitter (default 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"most requests in flight at once, 1..{MAX_CONCURRENCY}; fewer while the API "
        "pushes back (default %(default)s)",
    )
    parser.add_argument(
        "--refetch",
        action="store_true",
        help="fetch every chunk again, even those an earlier attempt of this run id left",
    )
    parser.add_argument(
        "--always-load",
        action="store_true",
        help="go through even when the API answers as for the last batch loaded and "
        "versioned (by default: exit 99, nothing to do)",
    )
    return parser


def _check_numbers(args: argparse.Namespace) -> None:
    problems = []
    if not 1 <= args.chunk_days <= dates.MAX_CHUNK_DAYS:
        problems.append(f"--chunk-days must be 1..{dates.MAX_CHUNK_DAYS}")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        problems.append(f"--concurrency must be 1..{MAX_CONCURRENCY}")
    if args.timeout <= 0:
        problems.append("--timeout must be > 0")
    if args.max_retries < 0:
        problems.append("--max-retries must be >= 0")
    if args.max_wait < 0 or args.backoff < 0:
        problems.append("--max-wait and --backoff must be >= 0")
    if problems:
        raise StepError("; ".join(problems), exit_codes.USAGE)


def public_url(url: str) -> str:
    """`url` without credentials (no user:password@, no api_key in the query), for the
    manifest: a file, which the runner's redactor does not see."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "api_key"])
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def _api_url() -> str:
    url = settings.env("APOD_API_URL", DEFAULT_API_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = public_url(url) if parts.hostname else "(not a URL)"
        raise StepError(f"APOD_API_URL must be an http(s) URL, got {shown}", exit_codes.USAGE)
    return url


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    start = dates.parse_day(args.start, "--start")
    end = dates.parse_day(args.end, "--end") if args.end else start
    dates.check_range(start, end)
    _check_numbers(args)

    api_key = settings.secret("NASA_API_KEY", "DEMO_KEY")
    url = _api_url()
    client = ApodClient(
        url,
        api_key,
        timeout=args.timeout,
        policy=RetryPolicy(args.max_retries, args.backoff, args.max_wait),
    )
    request = Request(
        start=start,
        end=end,
        run_id=settings.run_id(args.run_id),
        data_dir=settings.data_dir(args.data_dir),
        chunk_days=args.chunk_days,
        refetch=args.refetch,
        always_load=args.always_load,
        concurrency=args.concurrency,
        api_url=public_url(url),
    )
    return run(request, client)


def cli() -> None:
    raise SystemExit(runner.run("extract", main))
