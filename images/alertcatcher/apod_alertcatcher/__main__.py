"""apod-alertcatcher: catch alerts by SMTP and webhook until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from apod_alertcatcher.catcher import AlertCatcher


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError("must be a port number (1-65535)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="apod-alertcatcher",
        description="Catch the pipeline's alerts (SMTP and webhook) and show them on a page.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of both servers")
    parser.add_argument("--smtp-port", type=_port, default=1025, help="SMTP port (1025)")
    parser.add_argument("--http-port", type=_port, default=8025, help="page and webhook (8025)")
    parser.add_argument("--keep", type=int, default=200, help="alerts kept in memory (200)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        catcher = AlertCatcher(args.host, args.smtp_port, args.http_port, args.keep).start()
    except OSError as exc:
        print(f"apod-alertcatcher: cannot listen: {exc}", file=sys.stderr)
        return 2
    print(
        f"apod-alertcatcher: SMTP on {args.host}:{catcher.smtp_port}, "
        f"page and webhook on {catcher.url}",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    catcher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
