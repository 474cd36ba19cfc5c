#!/usr/bin/env python3
"""Print what the alert catcher (compose service alertcatcher, profile `alerts`) caught
(standard library only).

    alerts_caught.py URL [--at-least N] [--timeout SECONDS]

Waits until the catcher at URL holds at least N alerts (a run's alert is sent by the DAG
processor, a little after the run has failed), then prints one line per alert: channel
and subject, then the text of the newest, and the page's address.

Exit codes: 0 done, 1 fewer than N alerts by the timeout, 5 the catcher does not answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def caught(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/messages", timeout=10) as response:  # noqa: S310
        return json.load(response)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the catcher's page, e.g. http://127.0.0.1:8025")
    parser.add_argument("--at-least", type=int, default=1, metavar="N")
    parser.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        parser.error("URL must be http:// or https://")
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            alerts = caught(url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"alerts_caught: the catcher at {url} does not answer: {exc}", file=sys.stderr)
            return 5
        if len(alerts) >= args.at_least or time.monotonic() > deadline:
            break
        time.sleep(2)
    for alert in alerts:
        print(f"{alert['channel']:8} {alert['subject']}")
    if alerts:
        print(f"\n{alerts[-1]['text']}")
    print(f"\nAll of them: {url}/")
    if len(alerts) < args.at_least:
        print(f"alerts_caught: {len(alerts)} of {args.at_least} alerts", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
