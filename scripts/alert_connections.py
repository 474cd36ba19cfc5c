#!/usr/bin/env python3
"""The alert settings of a deployment (compose's `.env`, Kubernetes' `k8s/.secrets.env`)
and the two Airflow connections they become (standard library only).

    alert_connections.py check FILE     say what is wrong with FILE's alert settings
                                        (exit 2), or which channels are on (exit 0)

The DAGs send alerts through the connections `apod_smtp` and `apod_alert_webhook`
(dags/apod_pipeline/alert_channels.py). Both deployments always define them, empty
(off) until the settings below are given:

    APOD_ALERT_WEBHOOK_URL   webhook URL (a secret: it usually holds a token)
    APOD_ALERT_EMAIL_TO      recipients, comma-separated; e-mail needs APOD_SMTP_HOST too
    APOD_ALERT_EMAIL_FROM    sender (default: APOD_SMTP_USER when it is an address, else
                             apod-pipeline@localhost)
    APOD_SMTP_HOST, APOD_SMTP_PORT (default 587), APOD_SMTP_USER, APOD_SMTP_PASSWORD
    APOD_SMTP_SECURITY       ssl, starttls or none (default: ssl on 465, else starttls)

docker-compose.yml writes the connections as JSON with these values interpolated (its
`x-alerting` block; a test keeps it equal to `connections()`); since compose cannot
escape a value into JSON, `check` (run by every `make up`) refuses a value holding a
double quote, a backslash or a control character. Kubernetes gets `connections()` as
keys of the Secret apod-airflow-secrets (scripts/k8s_secrets.py).

Exit codes: 0 fine, 2 a setting is wrong or FILE unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from deploy_env import read_env

# Connection id -> the environment variable Airflow reads it from.
SMTP = "AIRFLOW_CONN_APOD_SMTP"
WEBHOOK = "AIRFLOW_CONN_APOD_ALERT_WEBHOOK"
SETTINGS = (
    "APOD_ALERT_WEBHOOK_URL",
    "APOD_ALERT_EMAIL_TO",
    "APOD_ALERT_EMAIL_FROM",
    "APOD_SMTP_HOST",
    "APOD_SMTP_PORT",
    "APOD_SMTP_USER",
    "APOD_SMTP_PASSWORD",
    "APOD_SMTP_SECURITY",
)
DEFAULT_PORT = "587"  # mail submission, with STARTTLS
SECURITY = ("ssl", "starttls", "none")


def connections(values: Mapping[str, str]) -> dict[str, str]:
    """The two connections as Airflow's JSON, by the variable that carries each."""

    def get(name: str) -> str:
        return values.get(name, "")

    smtp = {
        "conn_type": "smtp",
        "host": get("APOD_SMTP_HOST"),
        "port": int(get("APOD_SMTP_PORT") or DEFAULT_PORT),
        "login": get("APOD_SMTP_USER"),
        "password": get("APOD_SMTP_PASSWORD"),
        "extra": {
            "to": get("APOD_ALERT_EMAIL_TO"),
            "from_email": get("APOD_ALERT_EMAIL_FROM"),
            "security": get("APOD_SMTP_SECURITY"),
        },
    }
    webhook = {"conn_type": "http", "password": get("APOD_ALERT_WEBHOOK_URL")}
    return {SMTP: json.dumps(smtp), WEBHOOK: json.dumps(webhook)}


def problems(values: Mapping[str, str]) -> list[str]:
    """What is wrong with the alert settings, one line each; never a value."""
    found = []
    for name in SETTINGS:
        text = values.get(name, "")
        if any(c in text for c in '"\\') or any(ord(c) < 0x20 for c in text):
            found.append(f"{name} holds a double quote, a backslash or a control character")
    port = values.get("APOD_SMTP_PORT", "")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        found.append("APOD_SMTP_PORT must be a port number (1-65535)")
    security = values.get("APOD_SMTP_SECURITY", "")
    if security and security not in SECURITY:
        found.append(f"APOD_SMTP_SECURITY must be one of {', '.join(SECURITY)}, or empty")
    url = values.get("APOD_ALERT_WEBHOOK_URL", "")
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        found.append("APOD_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
    to, host = values.get("APOD_ALERT_EMAIL_TO", ""), values.get("APOD_SMTP_HOST", "")
    if to and not host:
        found.append("APOD_ALERT_EMAIL_TO is set but APOD_SMTP_HOST is not: no mail can go out")
    if host and not to:
        found.append("APOD_SMTP_HOST is set but APOD_ALERT_EMAIL_TO is not: nobody to mail")
    if to and any("@" not in address for address in to.replace(";", ",").split(",")):
        found.append("APOD_ALERT_EMAIL_TO must be e-mail addresses, comma-separated")
    if values.get("APOD_SMTP_PASSWORD") and not values.get("APOD_SMTP_USER"):
        found.append("APOD_SMTP_PASSWORD is set but APOD_SMTP_USER is not")
    return found


def channels(values: Mapping[str, str]) -> list[str]:
    on = []
    if values.get("APOD_ALERT_EMAIL_TO") and values.get("APOD_SMTP_HOST"):
        on.append("e-mail")
    if values.get("APOD_ALERT_WEBHOOK_URL"):
        on.append("webhook")
    return on


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check FILE's alert settings").add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        values = read_env(args.file)
    except (OSError, ValueError) as exc:
        print(f"alert_connections: {args.file}: {exc}", file=sys.stderr)
        return 2
    found = problems(values)
    for problem in found:
        print(f"alert_connections: {args.file}: {problem}", file=sys.stderr)
    if found:
        return 2
    on = channels(values)
    print(f"alerts: {' and '.join(on) if on else 'off (no channel set)'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
